// Package wire holds what crosses the wire between Cohort's workflows and
// its activities: activity names, step names, error types, and every
// activity's input and result. It is a leaf: it imports no Databricks or
// Temporal SDK, so the workflows package can depend on it without pulling
// the Databricks SDK in (`go list -deps ./workflows` shows none).
//
// Names and JSON field names are a wire contract with running workflow
// histories: renaming one needs workflow versioning.
package wire

import "github.com/cohort-dev/cohort/roster"

// Activity names, as Temporal registers them.
const (
	SetupBatchName       = "SetupBatch"
	LoadChunkName        = "LoadChunk"
	AwaitParticipantName = "AwaitParticipant"

	// A participant's seven steps, one activity each.
	CreateUserName      = "CreateUser"
	AssignWorkspaceName = "AssignWorkspace"
	CreateSchemaName    = "CreateSchema"
	GrantName           = "Grant"
	CreateClusterName   = "CreateCluster"
	SetPermissionName   = "SetPermission"
	StopClusterName     = "StopCluster"

	// The earlier participant shape's two activities are in legacy.go.
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
	// StepSetup is batch setup (not a participant step).
	StepSetup = "setup_batch"
)

// Steps lists the participant steps in order, with the activity that runs
// each.
var Steps = []struct{ Step, Activity string }{
	{StepCreateUser, CreateUserName},
	{StepAssignWorkspace, AssignWorkspaceName},
	{StepCreateSchema, CreateSchemaName},
	{StepGrant, GrantName},
	{StepCreateCluster, CreateClusterName},
	{StepSetPermission, SetPermissionName},
	{StepStopCluster, StopClusterName},
}

// Error types of the application errors activities return. The workflows
// and the retry policies switch on these, never on message text.
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
	// ErrClusterGone: the cluster a step works on no longer exists (deleted
	// by someone, or purged 30 days after termination). The step is not
	// retried; the participant workflow creates (or finds) another cluster.
	ErrClusterGone = "ClusterGone"
	// ErrQuotaExceeded: a Databricks cap was reached (users per account,
	// schemas per catalog). Not retried: the message names the cap.
	ErrQuotaExceeded = "QuotaExceeded"
)

// ErrNotReady: a readiness check failed (batch setup refused to start a
// batch that cannot finish). The message lists every blocking problem and
// its fix. Not retried.
const ErrNotReady = "WorkspaceNotReady"

// NonRetryable lists the error types the retry policies must not retry.
var NonRetryable = []string{ErrInvalidInput, ErrPermissionDenied, ErrUnauthenticated, ErrNotFound, ErrClusterGone, ErrQuotaExceeded, ErrNotReady}

// SetupBatchInput asks for the once-per-batch work: make sure the shared
// catalog exists and resolve the cluster spec (policy id, runtime, node type)
// so that participants do not each look them up.
type SetupBatchInput struct {
	BatchID string `json:"batch_id"`
	// Roster is the batch's current roster, for the readiness checks that
	// depend on it (room under the user and schema caps). Empty in histories
	// of earlier workers: those checks then count no participants.
	Roster roster.Ref `json:"roster,omitempty"`
}

// ClusterSpec is the resolved, per-batch part of every participant's cluster.
type ClusterSpec struct {
	PolicyID     string `json:"policy_id"`
	SparkVersion string `json:"spark_version"`
	NodeType     string `json:"node_type"`

	// What batch setup took from the policy's definition (see
	// activities/plan.go). Zero values mean "as before": the configured
	// autotermination, the singleNode spark.master and ResourceClass tag.

	// AutoterminationMinutes, when > 0, is the value the policy fixes; it
	// replaces the configured one.
	AutoterminationMinutes int `json:"autotermination_minutes,omitempty"`
	// SparkMaster and ResourceClass, when set, are the values the policy
	// fixes for spark_conf.spark.master and custom_tags.ResourceClass.
	SparkMaster   string `json:"spark_master,omitempty"`
	ResourceClass string `json:"resource_class,omitempty"`
	// Omit* leave an attribute out of the create: the policy forbids it, or
	// supplies its default.
	OmitAutotermination bool `json:"omit_autotermination,omitempty"`
	OmitSparkMaster     bool `json:"omit_spark_master,omitempty"`
	OmitResourceClass   bool `json:"omit_resource_class,omitempty"`
}

// SetupBatchResult is what SetupBatch resolved.
type SetupBatchResult struct {
	Catalog string      `json:"catalog"`
	Cluster ClusterSpec `json:"cluster"`
}

// LoadChunkInput pages through a stored roster.
type LoadChunkInput struct {
	Roster roster.Ref `json:"roster"`
	Offset int        `json:"offset"`
	Limit  int        `json:"limit"`
	// Clusters, when set, is the batch's listing of the clusters (a
	// ReadEventResult.Snapshot of ReadEvent with ClustersOnly): the result
	// then says, per participant, the ids of the clusters tagged for them.
	Clusters string `json:"clusters,omitempty"`
}

// LoadChunkResult is one page of participants.
type LoadChunkResult struct {
	Participants []roster.Participant `json:"participants"`
	// Tagged, with LoadChunkInput.Clusters, holds for each participant (in
	// roster order) the ids of the clusters the batch's listing found
	// tagged for them: candidates, each read again by id before anything
	// is done with it. Nil without a listing.
	Tagged [][]string `json:"tagged,omitempty"`
}

// ClusterOwnerTag is the custom tag that marks a cluster Cohort created for
// a participant: its value is the sha256 of their lower-cased email, as
// SchemaOwnerProperty marks a schema. The participant tag alone anyone can
// set (an admin's look-alike, a cluster re-created by someone else); a
// cluster is Cohort's when it carries both, or, unmarked (created by an
// earlier version), when it is the one Cohort recorded.
const ClusterOwnerTag = "CohortOwner"

// AwaitParticipantInput names a participant workflow that was already started
// (by an earlier batch, or running in another one).
type AwaitParticipantInput struct {
	WorkflowID string `json:"workflow_id"`
}

// AwaitParticipantResult is that workflow's outcome. Status is "ok" or "failed".
type AwaitParticipantResult struct {
	Status string      `json:"status"`
	Result Provisioned `json:"result"`          // when ok
	Step   string      `json:"step,omitempty"`  // where it failed, when failed
	Error  string      `json:"error,omitempty"` // why it failed, when failed
}

// StepFailure says where and why a participant failed: the details of a
// failed participant workflow, which AwaitParticipant reads back.
type StepFailure struct {
	Step string `json:"step"`
	// Activity is the activity that failed (empty in failures recorded by
	// the earlier two-activity shape).
	Activity string `json:"activity,omitempty"`
	Reason   string `json:"reason"`
}

// Provisioned is what one participant got: the participant workflow's result
// and a row of the report.
type Provisioned struct {
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	UserID      string `json:"user_id"`
	Schema      string `json:"schema"` // full name, catalog.schema
	ClusterID   string `json:"cluster_id"`
	ClusterURL  string `json:"cluster_url"`
	// UserCreated says Cohort created the account user, in this run or an
	// earlier run of the participant's workflow. False also for results
	// recorded before the field existed: such a user counts as existing
	// before the event, so offboarding never removes it.
	UserCreated bool `json:"user_created,omitempty"`
	// CreatedUserID is the id of the account user Cohort created for the
	// participant (in this run or an earlier one; carried forward by every
	// run). Offboarding removes a user, and its assignment, only when the
	// user found has this id: one re-created by someone else since is left
	// alone. Empty when Cohort did not create the user, and in results
	// recorded before the field existed.
	CreatedUserID string `json:"created_user_id,omitempty"`
	// Grants are the privileges Cohort added that the principal did not
	// already hold (the union over the participant's runs since the last
	// offboard, which revokes them). GrantsRecorded says Grants is such a
	// record: false in results of earlier versions, which kept none.
	Grants         []SecurableGrant `json:"grants,omitempty"`
	GrantsRecorded bool             `json:"grants_recorded,omitempty"`
	// Mode is the run's mode: "" (provision: submit, retry-failed),
	// ModeReconcile or ModeOffboard.
	Mode string `json:"mode,omitempty"`
	// Offboarded says the participant's environment was removed (by this
	// offboard run, or, for a reconcile that left them alone, by an earlier
	// one): a later submit onboards them again.
	Offboarded bool `json:"offboarded,omitempty"`
	// Changes lists what the run changed: for a reconcile, what had drifted
	// and was fixed; for an offboard, what was removed and what was kept;
	// for an offboard dry run, what would be.
	Changes []string `json:"changes,omitempty"`
	// Drift lists the kinds of drift (DriftKinds) a reconcile found; with
	// a dry run, what it would repair.
	Drift []string `json:"drift,omitempty"`
	// Usage is what a usage read (a usage batch, or the daily reconcile)
	// found: the participant's hours and the budget's verdict.
	Usage *ParticipantUsage `json:"usage,omitempty"`
}

// CreateUserInput: step create_user.
type CreateUserInput struct {
	Participant roster.Participant `json:"participant"`
	// Inactive, set by a reconcile's repair, is the deactivated account
	// user the survey found (its id and userName): it is reactivated with
	// one PATCH, without the create (answered 409) and lookup that find it
	// otherwise.
	Inactive *KnownUser `json:"inactive,omitempty"`
}

// KnownUser is an account user a read found.
type KnownUser struct {
	ID       string `json:"id"`
	UserName string `json:"user_name"`
}

// CreateUserResult carries the account user id (SCIM id, int64 as a string).
type CreateUserResult struct {
	UserID string `json:"user_id"`
	// UserName is the user's SCIM userName: the principal of grants, cluster
	// permissions and single_user_name. An adopted user's (synced from Entra)
	// may differ from the email. Empty in results of earlier workers: the
	// email.
	UserName string `json:"user_name,omitempty"`
	// Created is false when an existing user was adopted: only then can the
	// participant already have a cluster worth looking for.
	Created bool `json:"created"`
	// Reactivated says the adopted user was inactive and was reactivated.
	Reactivated bool `json:"reactivated,omitempty"`
}

// AssignWorkspaceInput: step assign_workspace, for the user CreateUser
// returned.
type AssignWorkspaceInput struct {
	Email  string `json:"email"`
	UserID string `json:"user_id"`
}

// AssignWorkspaceResult is empty: the step's end is the assignment.
type AssignWorkspaceResult struct{}

// CreateSchemaInput: step create_schema, the participant's schema in Catalog.
type CreateSchemaInput struct {
	Participant roster.Participant `json:"participant"`
	Catalog     string             `json:"catalog"`
	// Recorded is the schema (full name) the participant's earlier runs
	// recorded, when the workflow knows it (a reconcile): that name is kept
	// (adopted, or created again) unless another participant's mark is on
	// it. Empty: the roster's name, or the one a collision led to before.
	Recorded string `json:"recorded,omitempty"`
}

// CreateSchemaResult carries the schema's full name ("catalog.schema").
type CreateSchemaResult struct {
	FullName string `json:"full_name"`
	Created  bool   `json:"created"`
	// Renamed says why the schema is not the roster's name: that name (and
	// any tried before this one) belongs to someone else.
	Renamed string `json:"renamed,omitempty"`
}

// SchemaOwnerProperty is the schema property that marks the participant a
// schema was created for: the hex sha256 of the lower-cased email (not the
// email itself: schema properties are visible to whoever can browse it).
const SchemaOwnerProperty = "cohort.participant.sha256"

// SecurableGrant is privileges on one securable: Type "catalog" or
// "schema", Name its full name (lower case).
type SecurableGrant struct {
	Type       string   `json:"type"`
	Name       string   `json:"name"`
	Privileges []string `json:"privileges"`
}

// GrantInput: step grant, the participant's privileges on the catalog, their
// schema (full name) and the shared grants. Principal is the user's userName.
type GrantInput struct {
	Principal string `json:"principal"`
	Catalog   string `json:"catalog"`
	Schema    string `json:"schema"`
	// PrincipalCreated says the principal holds nothing Cohort did not give:
	// it was created by this run (or, for results of earlier versions that
	// kept no record, by Cohort). Everything granted then counts as added,
	// with no read; otherwise the step reads what the principal holds first.
	PrincipalCreated bool `json:"principal_created,omitempty"`
}

// GrantResult lists what the step added that the principal did not hold.
// Recorded is always true (a result of an earlier version, which kept no
// record, reads as false).
type GrantResult struct {
	Added    []SecurableGrant `json:"added,omitempty"`
	Recorded bool             `json:"recorded,omitempty"`
}

// CreateClusterInput: step create_cluster.
type CreateClusterInput struct {
	Participant roster.Participant `json:"participant"`
	Spec        ClusterSpec        `json:"spec"`
	BatchID     string             `json:"batch_id"`
	// Lookup says the participant may already have a cluster (their user
	// existed before this run): look for one of Cohort's before creating
	// (by id: see Listed). A user created by this run cannot have one, so a
	// first-day participant costs no read at all. Retried attempts always
	// look.
	Lookup bool `json:"lookup,omitempty"`
	// UserName is the cluster's single user (the user's userName); empty
	// means the participant's email.
	UserName string `json:"user_name,omitempty"`
	// KnownClusterID is the cluster Cohort recorded for the participant (an
	// earlier run's result). The step reads it with one clusters/get and
	// adopts it when it still exists and is still Cohort's for the
	// participant; only when it is gone (or not theirs) does it look
	// further (Tagged, or in inputs without Listed a listing under the
	// policy).
	KnownClusterID string `json:"known_cluster_id,omitempty"`
	// Listed says the batch listed the clusters once (ReadEvent with
	// ClustersOnly) and Tagged holds the ids it found tagged for the
	// participant: a lookup reads those by id and never lists, and after a
	// create error the step relies on the idempotency_token (a repeated
	// create returns the cluster the failed one made). False in inputs of
	// batches started before the listing: they list as they did.
	Listed bool     `json:"listed,omitempty"`
	Tagged []string `json:"tagged,omitempty"`
}

// CreateClusterResult identifies the participant's cluster.
type CreateClusterResult struct {
	ClusterID string `json:"cluster_id"`
	URL       string `json:"url"`   // the cluster's page in the workspace
	State     string `json:"state"` // as last read
	Created   bool   `json:"created"`
}

// SetPermissionInput: step set_permission, CAN_RESTART for Principal (the
// user's userName) on the cluster.
type SetPermissionInput struct {
	Principal string `json:"principal"`
	ClusterID string `json:"cluster_id"`
}

// SetPermissionResult is empty: the step's end is the permission.
type SetPermissionResult struct{}

// StopClusterInput: step stop_cluster. State is the cluster's last known
// state (a cluster adopted as TERMINATED needs no call).
type StopClusterInput struct {
	ClusterID string `json:"cluster_id"`
	State     string `json:"state,omitempty"`
}

// StopClusterResult is the state the cluster was read back in
// (TERMINATING or TERMINATED).
type StopClusterResult struct {
	State string `json:"state"`
}

// Lifecycle: the runs after day one (reconcile) and at the end (offboard).

// Modes of a batch and of a participant run.
const (
	// ModeProvision (""): submit and retry-failed. A participant provisioned
	// before is not run again; one offboarded since is onboarded again.
	ModeProvision = ""
	// ModeReconcile re-asserts every step; a purged cluster is re-created
	// (and stopped), a cluster found is never stopped.
	ModeReconcile = "reconcile"
	// ModeOffboard removes what the event gave the participant.
	ModeOffboard = "offboard"
)

// Lifecycle activity names.
const (
	PriorRunsName        = "PriorRuns"
	RemoveAssignmentName = "RemoveAssignment"
	RemoveClustersName   = "RemoveClusters"
	RevokeGrantsName     = "RevokeGrants"
	DropSchemaName       = "DropSchema"
	RemoveUserName       = "RemoveUser"
	PlanOffboardName     = "PlanOffboard"
)

// Lifecycle steps, as failures name them.
const (
	StepPriorRuns        = "prior_runs"
	StepRemoveAssignment = "remove_assignment"
	StepRemoveClusters   = "remove_clusters"
	StepRevokeGrants     = "revoke_grants"
	StepDropSchema       = "drop_schema"
	StepRemoveUser       = "remove_user"
	StepPlanOffboard     = "plan_offboard"
)

// OffboardOptions are the organizer's choices for an offboard.
type OffboardOptions struct {
	// DryRun reads only: each participant's outcome lists what would be
	// removed (activity PlanOffboard; no participant run is started).
	DryRun bool `json:"dry_run,omitempty"`
	// DeleteUsers deletes the account users Cohort created rather than
	// deactivating them.
	DeleteUsers bool `json:"delete_users,omitempty"`
	// DropSchemas drops the participants' schemas (with their contents).
	DropSchemas bool `json:"drop_schemas,omitempty"`
}

// PriorRunsInput names the participant workflow whose earlier runs are read;
// RunID is the asking run, left out.
type PriorRunsInput struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// PriorRunsResult is what the earlier runs of a participant's workflow say.
type PriorRunsResult struct {
	// Runs is how many earlier runs were read.
	Runs int `json:"runs"`
	// UserCreated: one of them created the account user (or recorded that an
	// earlier one had).
	UserCreated bool `json:"user_created,omitempty"`
	// LastMode is the mode of the latest earlier run, whatever its end.
	LastMode string `json:"last_mode,omitempty"`
	// Offboarded: the latest earlier run was an offboard (whatever its end),
	// or recorded that the participant had been offboarded.
	Offboarded bool `json:"offboarded,omitempty"`
	// ClusterID is the cluster of the latest completed run that had one.
	ClusterID string `json:"cluster_id,omitempty"`
	// CreatedUserID is the id of the latest account user Cohort created (a
	// CreateUser that created, or a result that recorded it); empty if none
	// is known.
	CreatedUserID string `json:"created_user_id,omitempty"`
	// Grants are what Cohort added and has not revoked since (see
	// Provisioned.Grants); GrantsRecorded says the runs kept that record.
	Grants         []SecurableGrant `json:"grants,omitempty"`
	GrantsRecorded bool             `json:"grants_recorded,omitempty"`
	// Schema is the participant's schema (full name) as the latest run that
	// named one recorded it.
	Schema string `json:"schema,omitempty"`
}

// RemoveAssignmentInput: step remove_assignment. Only the user Cohort
// created (the user found has CreatedUserID) loses the assignment.
// UserCreated alone (inputs of earlier versions) cannot tell which user.
type RemoveAssignmentInput struct {
	Email         string `json:"email"`
	UserCreated   bool   `json:"user_created"`
	CreatedUserID string `json:"created_user_id,omitempty"`
}

// RemoveAssignmentResult: the user found (empty if none) and what was done.
type RemoveAssignmentResult struct {
	UserID string `json:"user_id,omitempty"`
	Change string `json:"change,omitempty"` // for Provisioned.Changes; empty: nothing to do
}

// RemoveClustersInput: step remove_clusters, the participant's clusters that
// are Cohort's (see ClusterOwnerTag). Recorded is the cluster id Cohort
// recorded for them (their runs' results); with Listed, Tagged are the ids
// the batch's single listing found tagged for them. Each is read by id
// (clusters/get), and nothing is listed. Without Listed (inputs of batches
// started before the listing) the step lists every cluster, as it did.
type RemoveClustersInput struct {
	Email    string   `json:"email"`
	Recorded string   `json:"recorded,omitempty"`
	Listed   bool     `json:"listed,omitempty"`
	Tagged   []string `json:"tagged,omitempty"`
}

// RemoveClustersResult lists the clusters permanently deleted, and says of
// each cluster tagged for the participant that is not Cohort's why it was
// kept.
type RemoveClustersResult struct {
	ClusterIDs []string `json:"cluster_ids,omitempty"`
	Kept       []string `json:"kept,omitempty"`
}

// RevokeGrantsInput: step revoke_grants, what step grant added (Catalog
// empty: the configured one; Schema is the participant's schema name in it).
// With GrantsRecorded, exactly the recorded Grants still held are revoked;
// without (runs of earlier versions), what the user Cohort created
// (CreatedUserID) holds on the granted securables, and nothing of anyone
// else's.
type RevokeGrantsInput struct {
	Email          string           `json:"email"`
	Catalog        string           `json:"catalog,omitempty"`
	Schema         string           `json:"schema"`
	CreatedUserID  string           `json:"created_user_id,omitempty"`
	Grants         []SecurableGrant `json:"grants,omitempty"`
	GrantsRecorded bool             `json:"grants_recorded,omitempty"`
}

// RevokeGrantsResult lists what was revoked ("USE_CATALOG on catalog c")
// and what was kept, with why.
type RevokeGrantsResult struct {
	Revoked []string `json:"revoked,omitempty"`
	// RevokedGrants is Revoked as records, for PriorRuns.
	RevokedGrants []SecurableGrant `json:"revoked_grants,omitempty"`
	Kept          []string         `json:"kept,omitempty"`
}

// DropSchemaInput: step drop_schema (only with OffboardOptions.DropSchemas).
// The schema is dropped only if it carries Email's mark
// (SchemaOwnerProperty) or, unmarked, Recorded says the participant's runs
// recorded it. Inputs of earlier versions (no Email) drop as before.
type DropSchemaInput struct {
	Catalog  string `json:"catalog,omitempty"`
	Schema   string `json:"schema"`
	Email    string `json:"email,omitempty"`
	Recorded bool   `json:"recorded,omitempty"`
}

// DropSchemaResult: the schema's full name, and whether this call dropped it
// (Kept: why it was not, though it exists).
type DropSchemaResult struct {
	FullName string `json:"full_name"`
	Dropped  bool   `json:"dropped"`
	Kept     string `json:"kept,omitempty"`
}

// RemoveUserInput: step remove_user, deactivate (or, with Delete, delete)
// the user Cohort created: the user found must have CreatedUserID.
type RemoveUserInput struct {
	Email         string `json:"email"`
	UserCreated   bool   `json:"user_created"`
	CreatedUserID string `json:"created_user_id,omitempty"`
	Delete        bool   `json:"delete,omitempty"`
}

// RemoveUserResult: what was done (empty: nothing to do).
type RemoveUserResult struct {
	UserID string `json:"user_id,omitempty"`
	Change string `json:"change,omitempty"`
}

// PlanOffboardInput: the read-only look at what an offboard would remove.
type PlanOffboardInput struct {
	Participant roster.Participant `json:"participant"`
	Catalog     string             `json:"catalog,omitempty"`
	Options     OffboardOptions    `json:"options"`
	WorkflowID  string             `json:"workflow_id"`
}

// PlanOffboardResult lists it, in the offboard's order.
type PlanOffboardResult struct {
	UserID      string   `json:"user_id,omitempty"`
	UserCreated bool     `json:"user_created,omitempty"`
	Changes     []string `json:"changes"`
	// Step and Error, in a PlanOffboardChunkResult only, say why this
	// participant's plan could not be made (a final error: retrying would
	// not help); the chunk's other plans stand.
	Step  string `json:"step,omitempty"`
	Error string `json:"error,omitempty"`
}

// PlanWorkspaceName is the read-only activity behind `starter plan`.
const PlanWorkspaceName = "PlanWorkspace"

// Check is one readiness check of the workspace: what was checked, whether
// it passed, whether a failure stops a batch, what was found, and what an
// admin does about it. A check that could not run (it depends on one that
// failed) is not OK and not blocking, with the reason in Detail.
type Check struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Blocking bool   `json:"blocking,omitempty"`
	Detail   string `json:"detail"`
	Fix      string `json:"fix,omitempty"`
}

// PlanWorkspaceInput asks for the readiness checks and the classification
// of Pending: the roster's participants not already provisioned by Cohort
// (the starter knows those from Temporal). Both are stored rosters, never
// inline.
type PlanWorkspaceInput struct {
	Roster  roster.Ref `json:"roster"`
	Pending roster.Ref `json:"pending"`
}

// PlanWorkspaceResult is what the workspace says about the roster.
type PlanWorkspaceResult struct {
	Checks []Check `json:"checks"`
	// New participants have no account user yet; Existing have one that
	// Cohort did not provision (staff, Entra-synced, an earlier tool).
	New      int `json:"new"`
	Existing int `json:"existing"`
	// ExistingEmails are the first of the Existing ("(inactive)" marks
	// deactivated users), at most MaxListedEmails.
	ExistingEmails []string `json:"existing_emails,omitempty"`
	// Catalog and Cluster are what a batch would use.
	Catalog string      `json:"catalog"`
	Cluster ClusterSpec `json:"cluster"`
}

// MaxListedEmails bounds the emails a plan lists, so its result stays small.
const MaxListedEmails = 50

// Ready reports whether no check blocks.
func (r PlanWorkspaceResult) Ready() bool {
	for _, c := range r.Checks {
		if c.Blocking {
			return false
		}
	}
	return true
}
