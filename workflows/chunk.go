package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// ChunkInput is one slice of a batch's stored roster.
type ChunkInput struct {
	BatchID string     `json:"batch_id"`
	Index   int        `json:"index"`
	Roster  roster.Ref `json:"roster"`
	Offset  int        `json:"offset"`
	Limit   int        `json:"limit"`
	// Window bounds this chunk's participant workflows in flight.
	Window      int                   `json:"window"`
	Setup       wire.SetupBatchResult `json:"setup"`
	StepTimeout time.Duration         `json:"step_timeout"`
	// ParticipantTimeout bounds each participant run (its run
	// timeout) and each wait for a run another batch started; 0 (a chunk
	// started before it existed) is wire.DefaultParticipantTimeout.
	ParticipantTimeout time.Duration `json:"participant_timeout,omitempty"`
	// Recheck re-ran participants that completed before. Nothing sets it any
	// more (starter reconcile replaced submit --recheck); it is still honoured
	// for chunks started before, so their histories replay (when it can
	// go: participant_legacy.go).
	Recheck bool `json:"recheck,omitempty"`
	// Mode is the batch's mode (wire.ModeProvision, ModeReconcile,
	// ModeOffboard) with Offboard's choices; an offboard dry run starts no
	// participant run but PlanOffboard for each.
	Mode     string               `json:"mode,omitempty"`
	Offboard wire.OffboardOptions `json:"offboard,omitempty"`
	// Snapshot, in a reconcile, is the batch's read of the event
	// (wire.ReadEventResult): the chunk surveys its participants against it
	// and runs only those with drift. DryRun runs none: the outcomes list
	// the drift. In an offboard's dry run, the chunk plans its participants
	// against it (PlanOffboardChunk). Empty in batches started before the
	// read existed.
	Snapshot string `json:"snapshot,omitempty"`
	DryRun   bool   `json:"dry_run,omitempty"`
	// AwaitRead: a reconcile's chunk started before the batch's setup and
	// read (change surveyPrefetch). It prefetches its participants' reads
	// (PrefetchSurvey) until the batch signals both (wire.EventReadSignal,
	// an EventRead); Setup and Snapshot are empty until then.
	AwaitRead bool `json:"await_read,omitempty"`
	// Clusters, in provisioning and an offboard, is the batch's single
	// listing of the clusters (ReadEvent with clusters_only): LoadChunk
	// takes from it the ids tagged for each participant, and their runs
	// find their clusters by those ids and the recorded one, never by a
	// listing of their own. Empty in batches started before it.
	Clusters string `json:"clusters,omitempty"`
}

// EventRead is what a reconcile batch signals the chunks it started before
// its setup and read ended (ChunkInput.AwaitRead).
type EventRead struct {
	Setup    wire.SetupBatchResult `json:"setup"`
	Snapshot string                `json:"snapshot"`
}

// Outcome is the end of one participant in a batch: a row of the report.
type Outcome struct {
	ParticipantResult
	Status string `json:"status"` // StatusOK or StatusFailed
	// Reused says the participant had been provisioned before this batch (or
	// by another batch running at the same time) and was not started again.
	Reused bool `json:"reused,omitempty"`
	// Unchanged says a reconcile found nothing drifted: no run, no write.
	Unchanged bool   `json:"unchanged,omitempty"`
	Step      string `json:"step,omitempty"`  // where it failed
	Error     string `json:"error,omitempty"` // why it failed
}

// ChunkResult holds an outcome for every participant of the chunk, in roster order.
type ChunkResult struct {
	Index    int       `json:"index"`
	Outcomes []Outcome `json:"outcomes"`
	Counts   Counts    `json:"counts"`
}

// maxErrorLen keeps a chunk's result well under Temporal's payload limits
// even when every participant fails with a long message: it bounds the
// error's bytes as stored (JSON-escaped), not its length in Go.
const maxErrorLen = 400

// maxWorkflowIDLen is Temporal's default limit on a workflow ID
// (limit.maxIDLength). A child whose ID is longer is refused with the
// chunk's whole workflow task, again and again: the chunk never gets to
// start anyone after it. Such a participant fails by name instead.
const maxWorkflowIDLen = 1000

// maxSummaryLen keeps a child's static summary (an address and a batch id)
// under Temporal's limit on user metadata, whatever the address.
const maxSummaryLen = 200

// ChunkWorkflow provisions one slice of a batch: it loads the slice from the
// roster store, runs a participant workflow per person with at most Window in
// flight, and returns an outcome for every one of them. A failing participant
// never stops the others.
func ChunkWorkflow(ctx workflow.Context, in ChunkInput) (ChunkResult, error) {
	res := ChunkResult{Index: in.Index}
	counts := Counts{}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Counts, error) { return counts, nil }); err != nil {
		return res, err
	}

	var page wire.LoadChunkResult
	// A store that stays unreadable fails the chunk (its participants
	// counted failed at load_roster) rather than retrying forever.
	actx := workflow.WithActivityOptions(ctx, activityOptions(wire.LoadChunkName, cmp.Or(in.StepTimeout, 30*time.Minute), ""))
	if err := workflow.ExecuteActivity(actx, wire.LoadChunkName, wire.LoadChunkInput{
		Roster: in.Roster, Offset: in.Offset, Limit: in.Limit, Clusters: in.Clusters}).Get(ctx, &page); err != nil {
		return res, err
	}
	ps := page.Participants
	// The listing answered for every participant, or (a result that does
	// not fit) for none: they then look their clusters up as before.
	listed := in.Clusters != "" && len(page.Tagged) == len(ps)
	counts.Total = len(ps)
	res.Outcomes = make([]Outcome, len(ps))
	window := max(in.Window, 1)

	reuse := enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
	if in.Recheck || in.Mode != wire.ModeProvision {
		// A reconcile or offboard is a new run of every participant's workflow.
		reuse = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	}
	// Every participant run, and every wait for a run another batch started,
	// ends within the participant timeout: a run whose workflow tasks fail
	// each time (a workflow ID gRPC cannot carry, say) or whose step hangs
	// becomes that participant's failure, never an endless wait.
	// (Timeouts are no part of what a replay matches a command by, so
	// changing them needs no version.)
	timeout := cmp.Or(in.ParticipantTimeout, wire.DefaultParticipantTimeout(in.StepTimeout))
	awaitOpts := activityOptions(wire.AwaitParticipantName, timeout, "")
	awaitOpts.StartToCloseTimeout = timeout
	awaitCtx := workflow.WithActivityOptions(ctx, awaitOpts)

	// A read that failed (after its retries) fails every participant of
	// the chunk by name, at its step, with the reason.
	usage := startReconcileUsage(ctx, &in, ps)
	surveys, err := surveyChunk(ctx, &in, ps)
	if err != nil {
		return failAll(res, ps, wire.ModeReconcile, wire.StepSurvey, err), nil
	}
	plans, err := planOffboardChunk(ctx, in, ps)
	if err != nil {
		return failAll(res, ps, wire.ModeOffboard, wire.StepPlanOffboard, err), nil
	}
	if in.Mode == wire.ModeUsage {
		res = usageChunk(ctx, in, ps, res)
		counts = res.Counts
		return res, nil
	}

	sel := workflow.NewSelector(ctx)
	inFlight := 0
	finish := func(i int, o Outcome) {
		o.ParticipantResult.Email = ps[i].Email
		o.ParticipantResult.DisplayName = ps[i].DisplayName
		o.Error = ClipError(o.Error)
		res.Outcomes[i] = o
		counts.record(o)
		inFlight--
	}
	var start func(i int, again bool)
	start = func(i int, again bool) {
		p := ps[i]
		if plans != nil {
			inFlight++
			counts.Running++
			finish(i, plannedOutcome(plans[i]))
			return
		}
		if in.Mode == wire.ModeOffboard && in.Offboard.DryRun {
			planOffboard(ctx, sel, in, p, func(o Outcome) { finish(i, o) })
			inFlight++
			counts.Running++
			return
		}
		var survey *wire.Survey
		if surveys != nil {
			s := surveys[i]
			if o, done := surveyedOutcome(s, in.DryRun); done {
				inFlight++
				counts.Running++
				finish(i, o)
				return
			}
			survey = &s
		}
		if n := len(ParticipantWorkflowID(p.Email)); n > maxWorkflowIDLen && !again {
			inFlight++
			counts.Running++
			finish(i, Outcome{Status: StatusFailed, Step: wire.StepWorkflow, Error: fmt.Sprintf(
				"cannot be started: the workflow ID of this address is %d bytes, over Temporal's %d (no address this long is a valid user name)",
				n, maxWorkflowIDLen)})
			return
		}
		policy := reuse
		if again {
			// After waiting for a run whose outcome does not do (see rerun).
			policy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
		}
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            ParticipantWorkflowID(p.Email),
			TaskQueue:             TaskQueue,
			WorkflowIDReusePolicy: policy,
			WorkflowRunTimeout:    timeout, // participant runs never continue as new: the run is the execution
			// Participants finish what they started even if the batch is
			// cancelled: half a cluster setup helps nobody.
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
			TypedSearchAttributes: temporal.NewSearchAttributes(BatchAttr.ValueSet(in.BatchID), EmailAttr.ValueSet(p.Email)),
			StaticSummary:         shorten("participant "+p.Email+" (batch "+in.BatchID+")", maxSummaryLen),
		})
		pin := ParticipantInput{
			BatchID: in.BatchID, Participant: p, Catalog: in.Setup.Catalog, Cluster: in.Setup.Cluster,
			StepTimeout: in.StepTimeout, Mode: in.Mode, Offboard: in.Offboard, Survey: survey,
		}
		if listed {
			pin.ClustersListed, pin.Tagged = true, page.Tagged[i]
		}
		child := workflow.ExecuteChildWorkflow(cctx, ParticipantWorkflowName, pin)
		if !again {
			inFlight++
			counts.Running++
		}
		sel.AddFuture(child, func(f workflow.Future) {
			var r ParticipantResult
			err := f.Get(ctx, &r)
			var already *temporal.ChildWorkflowExecutionAlreadyStartedError
			if errors.As(err, &already) {
				// Provisioned before, or being provisioned by another batch
				// right now: take that run's outcome instead of starting twice.
				await := workflow.ExecuteActivity(awaitCtx, wire.AwaitParticipantName,
					wire.AwaitParticipantInput{WorkflowID: ParticipantWorkflowID(p.Email)})
				sel.AddFuture(await, func(f workflow.Future) {
					var ar wire.AwaitParticipantResult
					if err := f.Get(ctx, &ar); err != nil {
						var te *temporal.TimeoutError
						if errors.As(err, &te) {
							finish(i, Outcome{Status: StatusFailed, Step: wire.StepWorkflow, Error: fmt.Sprintf(
								"waited %s for its run started by another batch (%s), which did not finish: look at that run in the Web UI",
								humanDuration(timeout), ParticipantWorkflowID(p.Email))})
							return
						}
						finish(i, failedOutcome(err))
						return
					}
					if !again && rerun(in.Mode, ar) {
						start(i, true)
						return
					}
					finish(i, reusedOutcome(ar))
				})
				return
			}
			if err != nil {
				finish(i, childFailedOutcome(err, timeout))
				return
			}
			finish(i, Outcome{ParticipantResult: r, Status: StatusOK})
		})
	}

	next := 0
	for next < len(ps) || inFlight > 0 {
		for next < len(ps) && inFlight < window {
			start(next, false)
			next++
		}
		if inFlight > 0 { // participants that need no run end at once
			sel.Select(ctx)
		}
	}
	res.Counts = counts
	finishReconcileUsage(ctx, usage, &res)
	return res, nil
}

// failAll is a chunk's result when a step that serves all its participants
// (the survey, the offboard plan) failed: each failed at step, by name.
func failAll(res ChunkResult, ps []roster.Participant, mode, step string, err error) ChunkResult {
	o := failedOutcome(err)
	for i := range ps {
		res.Counts.Total, res.Counts.Running = len(ps), res.Counts.Running+1
		res.Outcomes[i] = Outcome{ParticipantResult: ParticipantResult{Email: ps[i].Email, DisplayName: ps[i].DisplayName, Mode: mode},
			Status: StatusFailed, Step: step, Error: ClipError(o.Error)}
		res.Counts.record(res.Outcomes[i])
	}
	return res
}

// failedOutcome reads the step and reason out of a participant's failure.
func failedOutcome(err error) Outcome {
	o := Outcome{Status: StatusFailed, Step: "unknown", Error: err.Error()}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		o.Error = appErr.Message()
		var sf StepFailure
		if appErr.Type() == ParticipantFailedError && appErr.HasDetails() && appErr.Details(&sf) == nil {
			o.Step, o.Error = sf.Step, sf.Reason
		}
	}
	var termErr *temporal.TerminatedError
	if errors.As(err, &termErr) {
		o.Error = "participant workflow was terminated"
	}
	return o
}

// childFailedOutcome is failedOutcome for a participant run, which also
// says so when the run was stopped at the participant timeout.
func childFailedOutcome(err error, timeout time.Duration) Outcome {
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return Outcome{Status: StatusFailed, Step: wire.StepWorkflow, Error: fmt.Sprintf(
			"did not finish within %s (batch.participant_timeout): its workflow tasks kept failing (see the worker log) or a step hung; "+
				"it was stopped, and starter retry-failed runs it again", humanDuration(timeout))}
	}
	return failedOutcome(err)
}

// humanDuration writes 2h, 90m or 45s rather than 2h0m0s.
func humanDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// shorten cuts s to at most n bytes, at a rune boundary.
// shorten cuts s, at a rune boundary, so that it takes at most n bytes in
// the JSON Temporal stores it as (encoding/json escapes <, >, & and control
// characters to six bytes each), marking a cut with "...". A byte cut alone
// would let 400 '<' grow to 2,400 bytes and split a rune.
func shorten(s string, n int) string {
	if jsonLen(s) <= n {
		return s
	}
	budget := n - len("...")
	used := 0
	for i, r := range s {
		c := jsonRuneLen(r)
		if used+c > budget {
			return s[:i] + "..."
		}
		used += c
	}
	return s
}

// ClipError is the error a chunk keeps of a participant's failure: at most
// maxErrorLen bytes as stored.
func ClipError(s string) string { return shorten(s, maxErrorLen) }

func jsonLen(s string) int {
	n := 0
	for _, r := range s {
		n += jsonRuneLen(r)
	}
	return n
}

// jsonRuneLen is how many bytes encoding/json writes for r inside a string.
func jsonRuneLen(r rune) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == 0x2028 || r == 0x2029 || r == utf8.RuneError:
		return 6
	}
	return utf8.RuneLen(r)
}

func reusedOutcome(ar wire.AwaitParticipantResult) Outcome {
	if ar.Status != StatusOK {
		return Outcome{Status: StatusFailed, Step: cmp.Or(ar.Step, "unknown"), Error: ar.Error}
	}
	return Outcome{ParticipantResult: ar.Result, Status: StatusOK, Reused: true}
}

// rerun says whether a chunk of this mode, having waited for a participant
// run that it could not start again, must run the participant once more
// rather than take that run's outcome: a submit onboards again someone
// that run offboarded; an offboard offboards someone that run provisioned.
// A reconcile takes any outcome of a run that was in progress.
func rerun(mode string, ar wire.AwaitParticipantResult) bool {
	switch mode {
	case wire.ModeProvision:
		return ar.Status == StatusOK && ar.Result.Offboarded
	case wire.ModeOffboard:
		return !(ar.Status == StatusOK && ar.Result.Mode == wire.ModeOffboard)
	}
	return false
}

// planOffboard runs the dry run's read-only look for one participant and
// hands its outcome to done.
func planOffboard(ctx workflow.Context, sel workflow.Selector, in ChunkInput, p roster.Participant, done func(Outcome)) {
	actx := workflow.WithActivityOptions(ctx, planOffboardOptions(cmp.Or(in.StepTimeout, 30*time.Minute)))
	f := workflow.ExecuteActivity(actx, wire.PlanOffboardName, wire.PlanOffboardInput{
		Participant: p, Catalog: in.Setup.Catalog, Options: in.Offboard, WorkflowID: ParticipantWorkflowID(p.Email)})
	sel.AddFuture(f, func(f workflow.Future) {
		var plan wire.PlanOffboardResult
		if err := f.Get(ctx, &plan); err != nil {
			o := failedOutcome(err)
			if o.Step == "unknown" {
				o.Step = wire.StepPlanOffboard
			}
			done(o)
			return
		}
		done(plannedOutcome(plan))
	})
}

// plannedOutcome is the outcome of an offboard's dry run of a participant:
// the plan, or (a chunk's plan) why it could not be made.
func plannedOutcome(plan wire.PlanOffboardResult) Outcome {
	if plan.Error != "" {
		return Outcome{Status: StatusFailed, Step: cmp.Or(plan.Step, wire.StepPlanOffboard), Error: plan.Error,
			ParticipantResult: ParticipantResult{Mode: wire.ModeOffboard}}
	}
	return Outcome{Status: StatusOK, ParticipantResult: ParticipantResult{UserID: plan.UserID, UserCreated: plan.UserCreated,
		Mode: wire.ModeOffboard, Changes: plan.Changes}}
}

// planOffboardChunk, in an offboard's dry run that read the event
// (in.Snapshot), plans the chunk's participants against that read with one
// activity: one plan each, in roster order. Nil for every other chunk
// (which plan each participant with live reads, or run them).
func planOffboardChunk(ctx workflow.Context, in ChunkInput, ps []roster.Participant) ([]wire.PlanOffboardResult, error) {
	if in.Mode != wire.ModeOffboard || !in.Offboard.DryRun || in.Snapshot == "" {
		return nil, nil
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = ParticipantWorkflowID(p.Email)
	}
	var r wire.PlanOffboardChunkResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, planOffboardChunkOptions(cmp.Or(in.StepTimeout, 30*time.Minute))),
		wire.PlanOffboardChunkName, wire.PlanOffboardChunkInput{Snapshot: in.Snapshot, Roster: in.Roster, Offset: in.Offset, Limit: in.Limit,
			Catalog: in.Setup.Catalog, Options: in.Offboard, WorkflowIDs: ids}).Get(ctx, &r)
	if err != nil {
		return nil, err
	}
	if len(r.Plans) != len(ps) {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("offboard plan answered for %d of %d participants", len(r.Plans), len(ps)), wire.ErrInvalidInput, nil)
	}
	return r.Plans, nil
}
