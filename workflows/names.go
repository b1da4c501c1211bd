// Package workflows holds Cohort's deterministic orchestration: one batch
// workflow per submitted roster, chunk workflows that fan out to one
// participant workflow per person, and the participant workflow that runs the
// provisioning activities. It never imports the Databricks SDK.
package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Task queues. Workflows and light activities run on TaskQueue; the step
// activities run on the queue of the Databricks API they call, so that one
// API's backlog (the SCIM rate, clusters waiting to stop) never starves the
// others of slots, and so the server can pace the scarcest across every
// worker (TaskQueueActivitiesPerSecond on AccountTaskQueue).
const (
	TaskQueue           = "cohort"
	AccountTaskQueue    = "cohort-account"    // CreateUser: account SCIM (and the earlier shape's ProvisionAccess)
	AssignmentTaskQueue = "cohort-assignment" // AssignWorkspace: account workspace assignment
	CatalogTaskQueue    = "cohort-catalog"    // CreateSchema, Grant: Unity Catalog
	ComputeTaskQueue    = "cohort-compute"    // CreateCluster, SetPermission, StopCluster (and ProvisionCluster)
)

// Workflow type names are a wire contract, like activity names.
const (
	BatchWorkflowName       = "Batch"
	ChunkWorkflowName       = "Chunk"
	ParticipantWorkflowName = "Participant"
)

// ProgressQuery is answered by batch and chunk workflows.
const ProgressQuery = "progress"

// Custom search attributes. The worker registers them when missing so the Web
// UI can filter one batch or one person; with ExecutionStatus = 'Failed', a
// batch's failures. (A participant's outcome is its workflow's status, so it
// needs no attribute of its own, nor the history event an upsert would cost.)
var (
	BatchAttr = temporal.NewSearchAttributeKeyKeyword("CohortBatch")
	EmailAttr = temporal.NewSearchAttributeKeyKeyword("CohortEmail")
)

// Participant outcomes, as reported by chunks, status and report.
const (
	StatusOK     = "ok"
	StatusFailed = "failed"
)

// BatchWorkflowID is the ID of a batch's workflow. Batch IDs come from the
// roster's date and content, so re-submitting a file finds the same batch.
func BatchWorkflowID(batchID string) string { return "cohort-batch/" + batchID }

// ChunkWorkflowID is the ID of one chunk of a batch's attempt: attempt 0 is
// the submitted roster, attempt n its n-th retry of the failed participants.
func ChunkWorkflowID(batchID string, attempt, index int) string {
	if attempt == 0 {
		return fmt.Sprintf("cohort-batch/%s/chunk-%05d", batchID, index)
	}
	return fmt.Sprintf("cohort-batch/%s/retry-%d/chunk-%05d", batchID, attempt, index)
}

// ParticipantWorkflowID is one ID per person across all batches and days, so
// a participant is never provisioned twice at once and a completed one is not
// started again (reuse policy ALLOW_DUPLICATE_FAILED_ONLY).
func ParticipantWorkflowID(email string) string {
	return "cohort-participant/" + strings.ToLower(email)
}
