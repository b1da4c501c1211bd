package wire

import (
	"time"

	"github.com/cohort-dev/cohort/roster"
)

// Usage (issue 19): a usage read pages each participant's cluster event log
// (UsageChunk, one activity per chunk, no participant workflow), folds it
// into the participant's ledger (usage.Store, beside the stored rosters)
// and says what the budget wants done; EnforceBudget does that for one
// participant (terminate and CAN_ATTACH_TO, or CAN_RESTART back), so each
// such action is an activity of its own in the chunk's history. It runs as
// a batch of its own (ModeUsage: starter usage) and in the daily reconcile.

// Activity names and steps of the usage read.
const (
	UsageChunkName    = "UsageChunk"
	EnforceBudgetName = "EnforceBudget"
	StepUsage         = "usage"
	StepBudget        = "budget"
)

// ModeUsage is a batch that reads usage and applies the budget only.
const ModeUsage = "usage"

// UsageChunkInput: activity UsageChunk, for one chunk's slice of the
// roster. WorkflowIDs are the participants' workflow IDs in roster order,
// whose earlier runs name the cluster Cohort recorded (read only for a
// participant whose ledger holds no cluster still there); ClusterIDs, when set
// (a reconcile, whose survey read them), are each participant's known
// clusters instead, and no earlier run is read. NodeType is the batch's
// resolved node type ("": the configured one), for the estimate.
type UsageChunkInput struct {
	Roster      roster.Ref `json:"roster"`
	Offset      int        `json:"offset"`
	Limit       int        `json:"limit"`
	WorkflowIDs []string   `json:"workflow_ids"`
	ClusterIDs  [][]string `json:"cluster_ids,omitempty"`
	NodeType    string     `json:"node_type,omitempty"`
}

// UsageChunkResult has one ParticipantUsage per participant, in roster order.
type UsageChunkResult struct {
	Usage []ParticipantUsage `json:"usage"`
	// Pages is how many clusters/events pages it read.
	Pages int `json:"pages"`
}

// Budget actions a ParticipantUsage asks for.
const (
	BudgetRestrict = "restrict" // terminate the running cluster, CAN_ATTACH_TO
	BudgetRestore  = "restore"  // CAN_RESTART back
)

// ParticipantUsage is one participant's usage up to the read, from their
// ledger (the whole event, not only what Databricks still keeps).
type ParticipantUsage struct {
	Email string `json:"email"`
	// ClusterID is their latest cluster; ClusterIDs every one still there.
	ClusterID  string    `json:"cluster_id,omitempty"`
	ClusterIDs []string  `json:"cluster_ids,omitempty"`
	Hours      float64   `json:"hours"`
	Starts     int       `json:"starts"`
	LastRun    time.Time `json:"last_run,omitzero"`
	Running    bool      `json:"running,omitempty"`
	// Ends counts runs by how they ended (INACTIVITY, USER_REQUEST, budget, ...).
	Ends map[string]int `json:"ends,omitempty"`
	// State: usage.StateNeverStarted, StateActive, StateNearBudget, StateOverBudget.
	State string `json:"state"`
	// Limit and Left are the budget's hours (0 with no budget).
	Limit float64 `json:"limit,omitempty"`
	Left  float64 `json:"left,omitempty"`
	// Action is what the budget wants done now (BudgetRestrict,
	// BudgetRestore, ""); Restricted says it has lowered their permission.
	Action     string `json:"action,omitempty"`
	Restricted bool   `json:"restricted,omitempty"`
	// Error says why their usage could not be read (the rest of the chunk was).
	Error string `json:"error,omitempty"`
}

// EnforceBudgetInput: activity EnforceBudget, for one participant.
// UserName is their workspace user name ("": the address).
type EnforceBudgetInput struct {
	Email      string   `json:"email"`
	UserName   string   `json:"user_name,omitempty"`
	ClusterIDs []string `json:"cluster_ids"`
	Action     string   `json:"action"`
	Hours      float64  `json:"hours"`
	Limit      float64  `json:"limit"`
}

// EnforceBudgetResult says what was done, a line each.
type EnforceBudgetResult struct {
	Changes []string `json:"changes,omitempty"`
}
