package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// BatchInput starts a batch, and carries its state across continue-as-new.
// The roster itself is never an input: at 100,000 rows it would be ~12 MB,
// far over Temporal's 2 MiB payload limit. Chunks page through the store.
type BatchInput struct {
	BatchID string     `json:"batch_id"`
	Roster  roster.Ref `json:"roster"`
	// Retries are the stored sub-rosters of failed participants that each
	// retry-failed ran, oldest first. A run works on the last one, or on
	// Roster when there is none; a report merges them all, later ones winning.
	Retries []roster.Ref `json:"retries,omitempty"`
	// ChunkSize participants per chunk workflow; MaxInFlight participant
	// workflows at once across ParallelChunks chunks; ChunksPerRun chunks
	// before the batch continues as new. See config.Batch.
	ChunkSize      int           `json:"chunk_size"`
	MaxInFlight    int           `json:"max_in_flight"`
	ParallelChunks int           `json:"parallel_chunks"`
	ChunksPerRun   int           `json:"chunks_per_run"`
	StepTimeout    time.Duration `json:"step_timeout"`
	// ParticipantTimeout bounds each participant run: see
	// ChunkInput.ParticipantTimeout and config.Batch.ParticipantTimeout.
	ParticipantTimeout time.Duration `json:"participant_timeout,omitempty"`
	// Recheck: see ChunkInput.Recheck (kept for batches started before
	// reconcile replaced it; nothing sets it now; when it can go:
	// participant_legacy.go).
	Recheck bool `json:"recheck,omitempty"`
	// Mode is wire.ModeProvision (""), ModeReconcile or ModeOffboard (with
	// Offboard's choices). An offboard needs no setup: it is skipped.
	Mode     string               `json:"mode,omitempty"`
	Offboard wire.OffboardOptions `json:"offboard,omitempty"`
	// DryRun, in a reconcile, reads only: the outcomes list the drift and
	// no participant run is started (an offboard's is Offboard.DryRun).
	DryRun bool `json:"dry_run,omitempty"`

	// Carried across continue-as-new.
	NextChunk int                    `json:"next_chunk,omitempty"`
	Done      Counts                 `json:"done"`
	Setup     *wire.SetupBatchResult `json:"setup,omitempty"`
	// Read is a reconcile's (or an offboard dry run's) read of the event
	// (ReadEvent), done once.
	Read *wire.ReadEventResult `json:"read,omitempty"`
}

// BatchResult sums every chunk. Per-participant outcomes stay in the chunk
// results (the starter's report reads them), so this stays small at any size.
type BatchResult struct {
	BatchID string `json:"batch_id"`
	Chunks  int    `json:"chunks"`
	Counts  Counts `json:"counts"`
}

// BatchProgress answers ProgressQuery. Done sums the finished chunks; the
// starter adds the live counts of the chunks in Active.
type BatchProgress struct {
	BatchID string                 `json:"batch_id"`
	Attempt int                    `json:"attempt"`
	Phase   string                 `json:"phase"` // setup, provisioning, done
	Total   int                    `json:"total"`
	Chunks  int                    `json:"chunks"`
	Done    Counts                 `json:"done"`
	Active  []string               `json:"active"` // workflow IDs of running chunks
	Setup   *wire.SetupBatchResult `json:"setup,omitempty"`
	Read    *wire.ReadEventResult  `json:"read,omitempty"`
}

// readOnce is the change that has a reconcile read the event once (ReadEvent)
// and run only the participants with drift. Reconciles started before it
// run every participant's steps, as they did.
const readOnce = "reconcile-read-once"

// offboardReadOnce is the change that has an offboard's dry run read the
// event once (ReadEvent, every cluster of the workspace) and plan each
// chunk against it (PlanOffboardChunk). Dry runs started before it plan
// each participant with live reads (PlanOffboard), as they did.
const offboardReadOnce = "offboard-dry-run-read-once"

// surveyPrefetch is the change that starts a reconcile's first chunks with
// its read, so their per-participant reads (PrefetchSurvey) overlap the
// batch's lists instead of following them; the batch signals them the
// setup and the read (wire.EventReadSignal). Reconciles started before it
// start their chunks after the read, as they did.
const surveyPrefetch = "reconcile-survey-prefetch"

// clustersListedOnce is the change that has a provisioning batch (the
// clusters under the policy) and an offboard (every cluster of the
// workspace) list the clusters once (ReadEvent with clusters_only) and hand
// each participant the ids found tagged for them, so that no participant's
// lookup lists the clusters (issue 18). Batches started before it leave
// the lookup to each participant, as they did.
const clustersListedOnce = "clusters-listed-once"

// Attempt is the number of the attempt this input runs: 0 for the submitted
// roster, n for the n-th retry.
func (in BatchInput) Attempt() int { return len(in.Retries) }

// AttemptRoster is the roster of attempt n.
func (in BatchInput) AttemptRoster(n int) roster.Ref {
	if n == 0 {
		return in.Roster
	}
	return in.Retries[n-1]
}

// Current is the roster this run works on.
func (in BatchInput) Current() roster.Ref { return in.AttemptRoster(in.Attempt()) }

// ChunksOf is the number of chunks a roster makes.
func (in BatchInput) ChunksOf(r roster.Ref) int {
	if in.ChunkSize <= 0 {
		return 0
	}
	return (r.Count + in.ChunkSize - 1) / in.ChunkSize
}

// Chunks is the number of chunks of the current attempt.
func (in BatchInput) Chunks() int { return in.ChunksOf(in.Current()) }

// BatchWorkflow provisions a submitted roster. It sets up what the batch
// shares once, then runs chunk workflows, ParallelChunks at a time so one
// chunk's tail overlaps the next one's start, and continues as new every
// ChunksPerRun chunks so that no run nears Temporal's history limits.
func BatchWorkflow(ctx workflow.Context, in BatchInput) (BatchResult, error) {
	if in.BatchID == "" {
		// Started by a schedule (starter reconcile --every), whose runs get
		// the action's workflow ID with the scheduled time appended: that is
		// the batch's id, so each run's chunks and report are its own.
		in.BatchID = strings.TrimPrefix(workflow.GetInfo(ctx).WorkflowExecution.ID, BatchWorkflowID(""))
	}
	if in.Setup == nil && (in.Mode == wire.ModeOffboard || in.Mode == wire.ModeUsage) {
		in.Setup = &wire.SetupBatchResult{} // the activities use the configured catalog and node type
	}
	if err := in.validate(); err != nil {
		return BatchResult{}, err
	}
	progress := BatchProgress{BatchID: in.BatchID, Attempt: in.Attempt(), Phase: "setup", Total: in.Current().Count,
		Chunks: in.Chunks(), Done: in.Done, Setup: in.Setup}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (BatchProgress, error) { return progress, nil }); err != nil {
		return BatchResult{}, err
	}

	// A reconcile reads the event (ReadEvent) while the setup runs: the
	// read resolves the catalog and the policy itself. An offboard's dry
	// run reads it too, with every cluster of the workspace; provisioning
	// and an offboard list the clusters alone (clustersListedOnce).
	var readF workflow.Future
	if rin, ok := eventRead(ctx, in); ok {
		actx := workflow.WithActivityOptions(ctx, activityOptions(wire.ReadEventName, in.StepTimeout,
			"read the event's users, assignments, schemas, grants and clusters (list calls)"))
		readF = workflow.ExecuteActivity(actx, wire.ReadEventName, rin)
	}
	window := max(in.MaxInFlight/in.ParallelChunks, 1)
	sel := workflow.NewSelector(ctx)
	startedThisRun := 0
	// A reconcile's first chunks start with the read, and prefetch their
	// participants' reads until it is done (change surveyPrefetch).
	var early []workflow.ChildWorkflowFuture
	if readF != nil && in.Mode == wire.ModeReconcile && workflow.GetVersion(ctx, surveyPrefetch, workflow.DefaultVersion, 1) == 1 {
		for in.NextChunk < in.Chunks() && len(progress.Active) < in.ParallelChunks && startedThisRun < in.ChunksPerRun {
			early = append(early, startChunk(ctx, sel, in, in.NextChunk, window, true, &progress))
			in.NextChunk++
			startedThisRun++
		}
	}
	if in.Setup == nil {
		actx := workflow.WithActivityOptions(ctx, activityOptions(wire.SetupBatchName, in.StepTimeout, ""))
		var setup wire.SetupBatchResult
		if err := workflow.ExecuteActivity(actx, wire.SetupBatchName, wire.SetupBatchInput{BatchID: in.BatchID, Roster: in.Current()}).Get(ctx, &setup); err != nil {
			return BatchResult{}, err // the activity error names the step and keeps its type
		}
		in.Setup = &setup
		progress.Setup = &setup
	}
	if readF != nil {
		progress.Phase = "reading"
		var read wire.ReadEventResult
		if err := readF.Get(ctx, &read); err != nil {
			return BatchResult{}, err
		}
		in.Read, progress.Read = &read, &read
	}
	signalRead(ctx, early, EventRead{Setup: *in.Setup, Snapshot: readSnapshot(in.Read)})
	progress.Phase = phaseOf(in)

	for {
		for in.NextChunk < in.Chunks() && len(progress.Active) < in.ParallelChunks && startedThisRun < in.ChunksPerRun {
			startChunk(ctx, sel, in, in.NextChunk, window, false, &progress)
			in.NextChunk++
			startedThisRun++
		}
		if len(progress.Active) == 0 {
			break
		}
		sel.Select(ctx)
	}
	in.Done = progress.Done

	if in.NextChunk < in.Chunks() {
		// Every chunk of this run has finished, so nothing is in flight: the
		// next run starts with a fresh history and only the counts.
		return BatchResult{}, workflow.NewContinueAsNewError(ctx, BatchWorkflowName, in)
	}
	progress.Phase = "done"
	return BatchResult{BatchID: in.BatchID, Chunks: in.Chunks(), Counts: in.Done}, nil
}

// eventRead says whether this run reads the event (once per batch: not
// again after continue-as-new) and with what: a reconcile (change
// readOnce) the clusters under the policy, an offboard's dry run (change
// offboardReadOnce) every cluster of the workspace.
func eventRead(ctx workflow.Context, in BatchInput) (wire.ReadEventInput, bool) {
	rin := wire.ReadEventInput{BatchID: in.BatchID}
	if in.Setup != nil {
		rin.Catalog, rin.PolicyID = in.Setup.Catalog, in.Setup.Cluster.PolicyID
	}
	switch {
	case in.Read != nil:
		return rin, false
	case in.Mode == wire.ModeReconcile:
		return rin, workflow.GetVersion(ctx, readOnce, workflow.DefaultVersion, 1) == 1
	case in.Mode == wire.ModeOffboard && in.Offboard.DryRun:
		rin.PolicyID, rin.AllClusters = "", true
		return rin, workflow.GetVersion(ctx, offboardReadOnce, workflow.DefaultVersion, 1) == 1
	case in.Mode == wire.ModeProvision && !in.Recheck:
		rin.ClustersOnly = true
		return rin, workflow.GetVersion(ctx, clustersListedOnce, workflow.DefaultVersion, 1) == 1
	case in.Mode == wire.ModeOffboard:
		rin.PolicyID, rin.AllClusters, rin.ClustersOnly = "", true, true
		return rin, workflow.GetVersion(ctx, clustersListedOnce, workflow.DefaultVersion, 1) == 1
	}
	return rin, false
}

// signalRead sends the setup and the read to the chunks started before
// them. A chunk that already ended (it could not load its participants)
// cannot take it; its end is counted as it is.
func signalRead(ctx workflow.Context, early []workflow.ChildWorkflowFuture, read EventRead) {
	sent := make([]workflow.Future, len(early))
	for i, f := range early {
		sent[i] = f.SignalChildWorkflow(ctx, wire.EventReadSignal, read)
	}
	for _, f := range sent {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("could not signal a chunk the event's read", "error", err)
		}
	}
}

func readSnapshot(r *wire.ReadEventResult) string {
	if r == nil {
		return ""
	}
	return r.Snapshot
}

// clustersOnly says whether the batch's read is the listing of the clusters
// alone (clustersListedOnce): what provisioning and an offboard read.
func clustersOnly(in BatchInput) bool {
	return in.Mode == wire.ModeProvision || (in.Mode == wire.ModeOffboard && !in.Offboard.DryRun)
}

// startChunk starts chunk index of the current attempt. An early chunk
// (a reconcile's, started with its read) awaits the setup and the read by
// signal (ChunkInput.AwaitRead).
func startChunk(ctx workflow.Context, sel workflow.Selector, in BatchInput, index, window int, early bool, progress *BatchProgress) workflow.ChildWorkflowFuture {
	id := ChunkWorkflowID(in.BatchID, in.Attempt(), index)
	offset := index * in.ChunkSize
	limit := min(in.ChunkSize, in.Current().Count-offset)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: id,
		TaskQueue:  TaskQueue,
		// Resetting or re-running a batch attempt runs its chunks again; their
		// participants that completed are not re-run (see ChunkWorkflow).
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(BatchAttr.ValueSet(in.BatchID)),
		StaticSummary:         fmt.Sprintf("chunk %d of %d (participants %d-%d) of batch %s", index+1, in.Chunks(), offset+1, offset+limit, in.BatchID),
	})
	cin := ChunkInput{
		BatchID: in.BatchID, Index: index, Roster: in.Current(), Offset: offset, Limit: limit,
		Window: window, StepTimeout: in.StepTimeout, ParticipantTimeout: in.ParticipantTimeout, Recheck: in.Recheck,
		Mode: in.Mode, Offboard: in.Offboard, DryRun: in.DryRun, AwaitRead: early,
	}
	if !early {
		cin.Setup = *in.Setup
	}
	switch {
	case in.Read != nil && clustersOnly(in):
		cin.Clusters = in.Read.Snapshot
	case in.Read != nil:
		cin.Snapshot = in.Read.Snapshot
	}
	f := workflow.ExecuteChildWorkflow(cctx, ChunkWorkflowName, cin)
	progress.Active = append(progress.Active, id)
	sel.AddFuture(f, func(f workflow.Future) {
		var r ChunkResult
		if err := f.Get(ctx, &r); err != nil {
			// The chunk could not even load its participants (a missing
			// roster store, say): count them failed so every row has an end.
			workflow.GetLogger(ctx).Error("chunk failed", "chunk", id, "error", err)
			r.Counts = Counts{Total: limit, Failed: limit, FailedByStep: []StepCount{{Step: "load_roster", N: limit}}}
		}
		progress.Done = progress.Done.Add(r.Counts)
		progress.Active = remove(progress.Active, id)
	})
	return f
}

// phaseOf names the working phase of a batch of in's mode.
func phaseOf(in BatchInput) string {
	switch {
	case in.Mode == wire.ModeReconcile && in.DryRun:
		return "planning"
	case in.Mode == wire.ModeReconcile:
		return "reconciling"
	case in.Mode == wire.ModeOffboard && in.Offboard.DryRun:
		return "planning"
	case in.Mode == wire.ModeOffboard:
		return "offboarding"
	case in.Mode == wire.ModeUsage:
		return "reading usage"
	}
	return "provisioning"
}

func remove(ids []string, id string) []string {
	out := ids[:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

func (in BatchInput) validate() error {
	if in.BatchID == "" || in.Roster.Key == "" {
		return temporal.NewNonRetryableApplicationError("batch needs a batch id and a stored roster", wire.ErrInvalidInput, nil)
	}
	// The starter refuses such ids; a batch started another way must not
	// name another batch's chunks either.
	if err := ValidateBatchRef(in.BatchID); err != nil {
		return temporal.NewNonRetryableApplicationError("batch id: "+err.Error(), wire.ErrInvalidInput, nil)
	}
	if in.ChunkSize < 1 || in.MaxInFlight < 1 || in.ParallelChunks < 1 || in.ChunksPerRun < 1 {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("batch %s: chunk size, max in flight, parallel chunks and chunks per run must be positive", in.BatchID),
			wire.ErrInvalidInput, nil)
	}
	return nil
}
