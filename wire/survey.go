package wire

import (
	"slices"
	"strings"

	"github.com/cohort-dev/cohort/roster"
)

// A reconcile (issue 18) reads the event once, in bulk, before it writes
// anything: ReadEvent lists the account's users, the workspace's
// assignments, the catalog's schemas, the catalog's and the shared
// securables' grants and the clusters under the policy, and stores that
// snapshot; SurveyChunk compares each participant of a chunk with it (plus
// the two reads no list can answer: their schema's grants and their
// cluster's permissions) and says what drifted. Only a participant with
// drift gets a participant run, with the Survey in its input, and that run
// writes only what drifted.

// The same read feeds an offboard's dry run: ReadEvent with AllClusters
// (an offboard removes every cluster tagged for the participant, under any
// policy), then PlanOffboardChunk lists each participant's plan against it,
// reading per participant only their own schema's grants.

// A reconcile's chunks need not wait for the read to start reading: from
// change survey-prefetch on, each chunk starts with the batch and runs
// PrefetchSurvey, which reads (per participant) what their earlier runs
// recorded and, by those records, their schema's grants and their
// cluster's permissions, while ReadEvent lists; the batch then signals the
// chunk the read (EventReadSignal), and SurveyChunk compares against it,
// reading again only where the records guessed another schema or cluster
// than the read shows. Unity Catalog's reads, the scarcest, then start
// when the batch does.

// Activity names and steps of the read.
const (
	ReadEventName         = "ReadEvent"
	PrefetchSurveyName    = "PrefetchSurvey"
	SurveyChunkName       = "SurveyChunk"
	PlanOffboardChunkName = "PlanOffboardChunk"
	StepReadEvent         = "read_event"
	StepLoadChunk         = "load_roster" // a chunk loading its participants (and their cluster candidates)
	StepSurvey            = "survey"
)

// Drift kinds, in the order reports list them.
const (
	DriftUserMissing       = "user_missing"       // no account user with the participant's address
	DriftUserInactive      = "user_inactive"      // the account user is deactivated
	DriftNotAssigned       = "not_assigned"       // the user holds no assignment to the workspace
	DriftSchemaMissing     = "schema_missing"     // their schema is gone (or is no longer theirs)
	DriftGrantMissing      = "grant_missing"      // a privilege Cohort gives them is not held
	DriftClusterGone       = "cluster_gone"       // no cluster tagged for them under the policy
	DriftPermissionMissing = "permission_missing" // no direct CAN_RESTART on their cluster
	DriftExtraClusters     = "extra_clusters"     // more than one cluster tagged for them (reported, never deleted)
)

// DriftKinds lists every kind in report order.
var DriftKinds = []string{DriftUserMissing, DriftUserInactive, DriftNotAssigned, DriftSchemaMissing,
	DriftGrantMissing, DriftClusterGone, DriftPermissionMissing, DriftExtraClusters}

// ReadEventInput: activity ReadEvent. Catalog and PolicyID are the batch's
// setup's when it ran before; empty, the configured catalog and policy.
// AllClusters (an offboard's dry run) lists every cluster of the workspace
// instead of those under the policy, which is then not resolved.
//
// ClustersOnly reads the clusters and nothing else: the once-per-batch
// listing that a provisioning batch (under the policy) and an offboard
// (AllClusters) take their participants' cluster candidates from
// (LoadChunkInput.Clusters), so that no participant lists them.
type ReadEventInput struct {
	BatchID      string `json:"batch_id"`
	Catalog      string `json:"catalog"`
	PolicyID     string `json:"policy_id"`
	AllClusters  bool   `json:"all_clusters,omitempty"`
	ClustersOnly bool   `json:"clusters_only,omitempty"`
}

// ReadEventResult names the stored snapshot (roster.Store.PutBlob) and says
// how much it holds and what it cost.
type ReadEventResult struct {
	Snapshot string `json:"snapshot"`
	Users    int    `json:"users"`
	Assigned int    `json:"assigned"`
	Schemas  int    `json:"schemas"`
	Clusters int    `json:"clusters"`
	// Reads is how many list pages and reads the snapshot took.
	Reads int `json:"reads"`
}

// SurveyChunkInput: activity SurveyChunk, for one chunk's slice of the
// roster. WorkflowIDs are the participants' workflow IDs, in roster order,
// whose earlier runs say what Cohort recorded (schema, cluster, user, grants).
type SurveyChunkInput struct {
	Snapshot    string     `json:"snapshot"`
	Roster      roster.Ref `json:"roster"`
	Offset      int        `json:"offset"`
	Limit       int        `json:"limit"`
	Catalog     string     `json:"catalog"`
	WorkflowIDs []string   `json:"workflow_ids"`
	// Prefetch, when set, names what PrefetchSurvey stored for the same
	// participants: their earlier runs are not read again, and its reads
	// stand wherever they read what the survey would.
	Prefetch string `json:"prefetch,omitempty"`
}

// PrefetchSurveyInput: activity PrefetchSurvey, for one chunk's slice of
// the roster, before the batch's read (see SurveyChunkInput). Catalog
// empty: the configured one.
type PrefetchSurveyInput struct {
	Roster      roster.Ref `json:"roster"`
	Offset      int        `json:"offset"`
	Limit       int        `json:"limit"`
	Catalog     string     `json:"catalog"`
	WorkflowIDs []string   `json:"workflow_ids"`
}

// PrefetchSurveyResult names the stored prefetch (roster.Store.PutBlob)
// and says how many reads it took.
type PrefetchSurveyResult struct {
	Prefetch string `json:"prefetch"`
	Reads    int    `json:"reads"`
}

// EventReadSignal carries a reconcile batch's setup and read to the chunks
// it started before them (ChunkInput.AwaitRead).
const EventReadSignal = "event-read"

// SurveyChunkResult has one Survey per participant of the chunk, in roster order.
type SurveyChunkResult struct {
	Surveys []Survey `json:"surveys"`
	// Reads is how many per-participant reads (grants, permissions) it took.
	Reads int `json:"reads"`
}

// Survey is what one participant's environment looks like against what
// they should have.
type Survey struct {
	// Offboarded: their latest run offboarded them; a reconcile leaves them
	// alone (a submit onboards them again).
	Offboarded bool `json:"offboarded,omitempty"`
	// Drift lists the kinds found (DriftKinds order); none: unchanged.
	Drift []string `json:"drift,omitempty"`
	// Details says, one line each, what was found ("cluster 0102-x gone").
	Details []string `json:"details,omitempty"`
	// Notes are findings that need no write (an account user that is not
	// the one Cohort created, say).
	Notes []string `json:"notes,omitempty"`

	// What exists now: the account user, their schema (full name), their
	// cluster (the one recorded, else the oldest tagged for them).
	UserID     string `json:"user_id,omitempty"`
	UserName   string `json:"user_name,omitempty"`
	Schema     string `json:"schema,omitempty"`
	ClusterID  string `json:"cluster_id,omitempty"`
	ClusterURL string `json:"cluster_url,omitempty"`
	// ExtraClusters are the other clusters tagged for them (kept: Cohort
	// cannot tell that it created them).
	ExtraClusters []string `json:"extra_clusters,omitempty"`
	// Prior is what the participant's earlier runs recorded, carried into a
	// repair run so that it reads nothing again and its result carries the
	// record forward.
	Prior PriorRunsResult `json:"prior"`
}

// Has reports whether any of kinds drifted.
func (s *Survey) Has(kinds ...string) bool {
	for _, k := range kinds {
		if slices.Contains(s.Drift, k) {
			return true
		}
	}
	return false
}

// Add records a drift of kind with its detail.
func (s *Survey) Add(kind, detail string) {
	if !slices.Contains(s.Drift, kind) {
		s.Drift = append(s.Drift, kind)
		slices.SortFunc(s.Drift, func(a, b string) int {
			return slices.Index(DriftKinds, a) - slices.Index(DriftKinds, b)
		})
	}
	s.Details = append(s.Details, detail)
}

// Unchanged says nothing drifted and the participant is not offboarded.
func (s *Survey) Unchanged() bool { return !s.Offboarded && len(s.Drift) == 0 }

// Repairs says whether anything drifted that a write repairs (extra
// clusters are only reported: Cohort never deletes a cluster it may not
// have created).
func (s *Survey) Repairs() bool {
	return slices.ContainsFunc(s.Drift, func(k string) bool { return k != DriftExtraClusters })
}

// ExtraClustersNote says what a reconcile does with extra clusters.
func ExtraClustersNote(ids []string) string {
	return "more clusters tagged for them: " + strings.Join(ids, ", ") + " (left as they are: Cohort cannot tell it created them; delete them by hand if it did)"
}

// PlanOffboardChunkInput: activity PlanOffboardChunk, an offboard's dry run
// of one chunk's slice of the roster against the batch's read (a snapshot
// of ReadEvent with AllClusters). WorkflowIDs are the participants'
// workflow IDs, in roster order, whose earlier runs say what Cohort
// created and granted.
type PlanOffboardChunkInput struct {
	Snapshot    string          `json:"snapshot"`
	Roster      roster.Ref      `json:"roster"`
	Offset      int             `json:"offset"`
	Limit       int             `json:"limit"`
	Catalog     string          `json:"catalog,omitempty"`
	Options     OffboardOptions `json:"options"`
	WorkflowIDs []string        `json:"workflow_ids"`
}

// PlanOffboardChunkResult has one plan per participant of the chunk, in
// roster order.
type PlanOffboardChunkResult struct {
	Plans []PlanOffboardResult `json:"plans"`
	// Reads is how many per-participant reads (their schema's grants) it took.
	Reads int `json:"reads"`
}
