// Package workflows holds Cohort's deterministic orchestration: one batch
// workflow per submitted roster, chunk workflows that fan out to one
// participant workflow per person, and the participant workflow that runs the
// provisioning activities. It never imports the Databricks SDK.
package workflows

import (
	"fmt"
	"regexp"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Task queues. Workflows and light activities run on TaskQueue; the step
// activities run on the queue of the Databricks API they call, so that one
// API's backlog (the SCIM rate, clusters waiting to stop) never starves the
// others of slots, and so the server can cap the scarcest across every
// worker (TaskQueueActivitiesPerSecond on AccountTaskQueue, per partition;
// each worker's own limiter does the exact pacing: see worker/main.go).
// Which activity runs on which queue is the wiring table's (wiring.go).
const (
	TaskQueue           = "cohort"
	AccountTaskQueue    = "cohort-account"    // account SCIM
	AssignmentTaskQueue = "cohort-assignment" // account workspace assignment
	CatalogTaskQueue    = "cohort-catalog"    // Unity Catalog
	ComputeTaskQueue    = "cohort-compute"    // clusters and their permissions
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

// Batch ids. A batch id is part of the workflow IDs of the batch and its
// chunks, of lifecycle batches and schedules derived from it, and of the
// gRPC headers that carry them; one containing a "/" could name another
// batch's chunk ("victim/chunk-00000"), one with a line break or of 1,200
// characters fails at Temporal after the roster was stored. So:
//
//   - an id a person chooses (submit --batch) is 1 to 64 of A-Z a-z 0-9 . _ -,
//     starting with a letter or digit, and does not start with a prefix
//     Cohort's own ids use (reconcile-, offboard-, roster-);
//   - an id a command is given (BATCH) may also be one Cohort derived: a
//     lifecycle batch (reconcile-SOURCE-20260115T080000Z) or a scheduled
//     run, whose time Temporal appends with colons (…-2026-01-15T08:00:00Z),
//     so it allows ":" and up to MaxBatchRefLen characters.
//
// Neither can contain "/", so a batch's workflow ID ("cohort-batch/" + id)
// never equals another batch's chunk ID ("cohort-batch/ID/chunk-…") and a
// schedule ID ("cohort-reconcile/" + source) never another's.
var (
	batchIDPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	batchRefPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
)

// MaxBatchRefLen bounds every batch id, derived ones included.
const MaxBatchRefLen = 255

// reservedBatchPrefixes begin the ids Cohort derives (control.LifecycleBatchID,
// control.TargetOfRoster's source); a chosen id starting so could become the
// id of a future reconcile or offboard.
var reservedBatchPrefixes = []string{"reconcile-", "offboard-", "roster-", "usage-"}

// ValidateBatchID checks an id a person chose for a new batch.
func ValidateBatchID(id string) error {
	if !batchIDPattern.MatchString(id) {
		return fmt.Errorf("expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. 2026-01-15-day1), got %s", quoteID(id))
	}
	for _, p := range reservedBatchPrefixes {
		if strings.HasPrefix(id, p) {
			return fmt.Errorf("expected an id not starting with %q (Cohort's own reconcile and offboard batches start so), got %s", p, quoteID(id))
		}
	}
	return nil
}

// ValidateBatchRef checks the id of an existing batch: one a person chose,
// or one Cohort derived (see above).
func ValidateBatchRef(id string) error {
	if len(id) > MaxBatchRefLen || !batchRefPattern.MatchString(id) {
		return fmt.Errorf("expected a batch id: letters, digits, '.', '_', '-' or ':', starting with a letter or digit, at most %d characters, got %s",
			MaxBatchRefLen, quoteID(id))
	}
	return nil
}

// quoteID quotes an id for a message, shortened when long.
func quoteID(id string) string {
	const show = 40
	if len(id) <= show {
		return fmt.Sprintf("%q", id)
	}
	r := []rune(id)
	if len(r) > show {
		r = r[:show]
	}
	return fmt.Sprintf("%q... (%d bytes)", string(r), len(id))
}

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
