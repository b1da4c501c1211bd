package activities

import (
	"time"

	"github.com/cohort-dev/cohort/roster"
)

// Activity names are a wire contract with running workflow histories: renaming
// one needs workflow versioning. Workflows refer to the methods through a nil
// *Activities, so these names are what Temporal registers.
const (
	SetupBatchName       = "SetupBatch"
	ProvisionAccessName  = "ProvisionAccess"
	ProvisionClusterName = "ProvisionCluster"
	LoadChunkName        = "LoadChunk"
	AwaitParticipantName = "AwaitParticipant"
)

// Steps, in the order a participant goes through them. They name where a
// participant failed in results and reports.
const (
	StepCreateUser      = "create_user"
	StepAssignWorkspace = "assign_workspace"
	StepCreateSchema    = "create_schema"
	StepGrant           = "grant"
	StepCreateCluster   = "create_cluster"
	StepSetPermission   = "set_permission"
	StepStopCluster     = "stop_cluster"
)

// Error types of the *temporal.ApplicationError values activities return. The
// workflows and the retry policies switch on these, never on message text.
const (
	// ErrInvalidInput: Databricks rejected the request as malformed or against
	// policy (400). Not retried: the participant fails with the reason.
	ErrInvalidInput = "InvalidInput"
	// ErrPermissionDenied: the configured identity may not do this (403). Not retried.
	ErrPermissionDenied = "PermissionDenied"
	// ErrUnauthenticated: the credentials were refused (401). Not retried.
	ErrUnauthenticated = "Unauthenticated"
	// ErrNotFound: a configured object (catalog, policy, shared schema) is missing. Not retried.
	ErrNotFound = "NotFound"
	// ErrThrottled: 429 / REQUEST_LIMIT_EXCEEDED that outlasted the SDK's own
	// retries. Retried after a jittered delay (NextRetryDelay).
	ErrThrottled = "Throttled"
	// ErrUnavailable: 5xx, timeouts and connection errors. Retried with backoff.
	ErrUnavailable = "Unavailable"
	// ErrPrincipalNotReady: the user is not yet visible in the workspace
	// (read-after-write lag of workspace assignment). Retried.
	ErrPrincipalNotReady = "PrincipalNotReady"
	// ErrClusterLaunchFailed: the cluster reached a state it cannot be stopped
	// from, or Databricks answered inconsistently. Retried.
	ErrClusterLaunchFailed = "ClusterLaunchFailed"
)

// NonRetryable lists the error types the retry policies must not retry.
var NonRetryable = []string{ErrInvalidInput, ErrPermissionDenied, ErrUnauthenticated, ErrNotFound}

// SetupBatchInput asks for the once-per-batch work: make sure the shared
// catalog exists and resolve the cluster spec (policy id, runtime, node type)
// so that participants do not each look them up.
type SetupBatchInput struct {
	BatchID string `json:"batch_id"`
}

// ClusterSpec is the resolved, per-batch part of every participant's cluster.
type ClusterSpec struct {
	PolicyID     string `json:"policy_id"`
	SparkVersion string `json:"spark_version"`
	NodeType     string `json:"node_type"`
}

// SetupBatchResult is what SetupBatch resolved.
type SetupBatchResult struct {
	Catalog string      `json:"catalog"`
	Cluster ClusterSpec `json:"cluster"`
}

// ProvisionAccessInput covers steps create_user, assign_workspace,
// create_schema and grant: everything but the cluster.
type ProvisionAccessInput struct {
	Participant roster.Participant `json:"participant"`
	Catalog     string             `json:"catalog"`
}

// ProvisionAccessResult carries the account user id and the schema's full name.
type ProvisionAccessResult struct {
	UserID string `json:"user_id"`
	// UserCreated is false when the user existed before this run: only then
	// can the participant already have a cluster worth looking for.
	UserCreated bool   `json:"user_created"`
	Schema      string `json:"schema"`
}

// ProvisionUserInput covers steps create_user and assign_workspace.
type ProvisionUserInput struct {
	Participant roster.Participant `json:"participant"`
}

// ProvisionUserResult carries the account user id (SCIM id, int64 as a string).
type ProvisionUserResult struct {
	UserID  string `json:"user_id"`
	Created bool   `json:"created"` // false when an existing user was adopted
}

// ProvisionSchemaInput covers steps create_schema and grant.
type ProvisionSchemaInput struct {
	Participant roster.Participant `json:"participant"`
	Catalog     string             `json:"catalog"`
}

// ProvisionSchemaResult carries the schema's full name ("catalog.schema").
type ProvisionSchemaResult struct {
	FullName string `json:"full_name"`
	Created  bool   `json:"created"`
}

// ProvisionClusterInput covers steps create_cluster, set_permission and
// stop_cluster (terminate, then confirm TERMINATED while heartbeating).
type ProvisionClusterInput struct {
	Participant roster.Participant `json:"participant"`
	Spec        ClusterSpec        `json:"spec"`
	BatchID     string             `json:"batch_id"`
	// Lookup says the participant may already have a cluster (their user
	// existed before this run): look for it by tag before creating. A user
	// created by this run cannot have one, so a first-day participant costs
	// no clusters/list, which at 10,000 participants would page through
	// 10,000 clusters each time. Retried attempts always look.
	Lookup bool `json:"lookup,omitempty"`
}

// ProvisionClusterResult identifies the participant's cluster.
type ProvisionClusterResult struct {
	ClusterID string `json:"cluster_id"`
	URL       string `json:"url"`   // the cluster's page in the workspace
	State     string `json:"state"` // TERMINATED on success
	Created   bool   `json:"created"`
}

// LoadChunkInput pages through a stored roster.
type LoadChunkInput struct {
	Roster roster.Ref `json:"roster"`
	Offset int        `json:"offset"`
	Limit  int        `json:"limit"`
}

// LoadChunkResult is one page of participants.
type LoadChunkResult struct {
	Participants []roster.Participant `json:"participants"`
}

// AwaitParticipantInput names a participant workflow that was already started
// (by an earlier batch, or running in another one).
type AwaitParticipantInput struct {
	WorkflowID string `json:"workflow_id"`
}

// StepFailure says where and why a participant failed: the details of a
// failed participant workflow (workflows.StepFailure is this type), which
// AwaitParticipant reads back.
type StepFailure struct {
	Step   string `json:"step"`
	Reason string `json:"reason"`
}

// Provisioned is what one participant got: the participant workflow's result
// (workflows.ParticipantResult is this type) and a row of the report.
type Provisioned struct {
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	UserID      string `json:"user_id"`
	Schema      string `json:"schema"` // full name, catalog.schema
	ClusterID   string `json:"cluster_id"`
	ClusterURL  string `json:"cluster_url"`
}

// AwaitParticipantResult is that workflow's outcome. Status is "ok" or "failed".
type AwaitParticipantResult struct {
	Status string      `json:"status"`
	Result Provisioned `json:"result"`          // when ok
	Step   string      `json:"step,omitempty"`  // where it failed, when failed
	Error  string      `json:"error,omitempty"` // why it failed, when failed
}

// Settings are the non-secret provisioning settings the activities apply,
// taken from the worker's configuration.
type Settings struct {
	WorkspaceID      int64
	WorkspaceHost    string // for cluster URLs
	Catalog          string
	CreateCatalog    bool
	SchemaPrivileges []string
	SharedGrants     []Grant
	PolicyName       string
	SparkVersion     string // "" = latest ML LTS
	NodeType         string // "smallest" = SelectNodeType
	Autotermination  int
	TagKey           string
	// StopPollInterval is how long the stop step waits before terminating
	// again a cluster that still reads as running after a terminate.
	StopPollInterval time.Duration
	// AssignmentWait bounds how long one attempt waits for a fresh workspace
	// assignment to become visible before returning ErrPrincipalNotReady.
	AssignmentWait time.Duration
}

// Grant is a set of privileges on one securable ("catalog" or "schema").
type Grant struct {
	Securable  string
	Name       string
	Privileges []string
}
