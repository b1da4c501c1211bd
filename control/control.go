// Package control is what the starter CLI does, as a library: submit a
// validated roster as a batch, follow its progress, list outcomes, and retry
// the failed participants. It talks to Temporal only; the worker does the
// Databricks work.
package control

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

// Client drives batches. Batch is the fan-out shape new batches get.
type Client struct {
	Temporal  client.Client
	Namespace string
	UIAddress string
	Store     roster.Store
	Batch     config.Batch
}

// ErrBatchRunning is returned for work that needs a finished batch.
var ErrBatchRunning = errors.New("batch is still running")

// ErrNoBatch is returned for a batch id Temporal does not know.
var ErrNoBatch = errors.New("no such batch")

// Submission says what Submit did.
type Submission struct {
	BatchID     string
	Roster      roster.Ref
	Provisioned int  // participants already provisioned by earlier batches
	Existing    bool // the batch had been submitted before: nothing new started
}

// DefaultBatchID names a batch after the day it is submitted and its roster's
// content, so the same file submitted twice the same day is the same batch.
func DefaultBatchID(day time.Time, ref roster.Ref) string {
	return day.Format("2006-01-02") + "-" + ref.Key[:4]
}

// Submit stores the roster and starts its batch, or finds the batch already
// started for the same roster under the same id.
// (starter reconcile replaced --recheck: re-running everyone's steps is a
// reconcile, which never stops a cluster a participant is using.)
func (c *Client) Submit(ctx context.Context, participants []roster.Participant, batchID string) (Submission, error) {
	if batchID != "" {
		// Before anything is stored: see workflows.ValidateBatchID.
		if err := workflows.ValidateBatchID(batchID); err != nil {
			return Submission{}, fmt.Errorf("batch id: %w", err)
		}
	}
	ref, err := c.Store.Put(participants)
	if err != nil {
		return Submission{}, fmt.Errorf("store roster: %w", err)
	}
	if batchID == "" {
		batchID = DefaultBatchID(time.Now(), ref)
	}
	sub := Submission{BatchID: batchID, Roster: ref}
	sub.Provisioned, err = c.countProvisioned(ctx, participants)
	if err != nil {
		return sub, err
	}

	prev, err := c.batchInput(ctx, batchID)
	switch {
	case err == nil:
		if prev.Roster.Key != ref.Key {
			return sub, fmt.Errorf("batch %s already holds a different roster (%d participants); choose another --batch id", batchID, prev.Roster.Count)
		}
		st, err := c.describe(ctx, batchID)
		if err != nil {
			return sub, err
		}
		if st == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || st == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			sub.Existing = true // running, or finished: nothing to start
			return sub, nil
		}
		// The batch itself failed (its setup, say) or was terminated: once
		// the cause is fixed, submitting the file again runs it again; its
		// participants that completed meanwhile are not re-run.
	case !errors.Is(err, ErrNoBatch):
		return sub, err
	}

	err = c.startBatch(ctx, c.batchInputFor(batchID, ref), fmt.Sprintf("batch %s: %d participants", batchID, ref.Count),
		enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING)
	if err != nil {
		return sub, fmt.Errorf("start batch %s: %w", batchID, err)
	}
	return sub, nil
}

// batchInputFor is the input of a provisioning batch of roster ref, with the
// configured batch settings (a lifecycle batch adds its mode to it).
func (c *Client) batchInputFor(batchID string, ref roster.Ref) workflows.BatchInput {
	return workflows.BatchInput{
		BatchID: batchID, Roster: ref,
		ChunkSize: c.Batch.ChunkSize, MaxInFlight: c.Batch.MaxInFlight,
		ParallelChunks: c.Batch.ParallelChunks, ChunksPerRun: c.Batch.ChunksPerRun,
		StepTimeout: c.Batch.StepTimeout, ParticipantTimeout: c.Batch.ParticipantTimeoutOrDefault(),
	}
}

// startBatch starts the batch workflow of in.BatchID with the one set of
// start options every batch shares; only the reuse and conflict policies
// differ: a submit joins a running batch and reruns only a failed one, a
// retry or a lifecycle run is always a new run and never joins one.
func (c *Client) startBatch(ctx context.Context, in workflows.BatchInput, summary string,
	reuse enumspb.WorkflowIdReusePolicy, conflict enumspb.WorkflowIdConflictPolicy) error {
	_, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.BatchWorkflowID(in.BatchID),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDReusePolicy:    reuse,
		WorkflowIDConflictPolicy: conflict,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.BatchAttr.ValueSet(in.BatchID)),
		StaticSummary:            summary,
	}, workflows.BatchWorkflowName, in)
	return err
}

// countProvisioned counts the participants whose participant workflow last
// completed, from Temporal's visibility store (eventually consistent: an
// estimate for people, never used for decisions).
func (c *Client) countProvisioned(ctx context.Context, ps []roster.Participant) (int, error) {
	seen, err := c.provisioned(ctx, ps)
	return len(seen), err
}

// batchInput reads the input of a batch's current run (the first event of its
// history), which holds the rosters and attempts.
func (c *Client) batchInput(ctx context.Context, batchID string) (workflows.BatchInput, error) {
	var in workflows.BatchInput
	it := c.Temporal.GetWorkflowHistory(ctx, workflows.BatchWorkflowID(batchID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return in, fmt.Errorf("batch %s: %w", batchID, ErrNoBatch)
	}
	ev, err := it.Next()
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return in, fmt.Errorf("batch %s: %w", batchID, ErrNoBatch)
		}
		return in, fmt.Errorf("read batch %s: %w", batchID, err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return in, fmt.Errorf("read batch %s: first event is %s", batchID, ev.GetEventType())
	}
	if err := converter.GetDefaultDataConverter().FromPayloads(attrs.GetInput(), &in); err != nil {
		return in, fmt.Errorf("decode batch %s input: %w", batchID, err)
	}
	return in, nil
}

// PhaseNoWorker is the phase of a running batch whose progress no worker
// answered (none is running, or all are restarting).
const PhaseNoWorker = "no worker answering"

// Progress is where a batch stands.
type Progress struct {
	BatchID string
	Attempt int
	Status  enumspb.WorkflowExecutionStatus
	Phase   string
	Total   int
	Counts  workflows.Counts
	// Failure is why the batch itself failed (not a participant), if it did.
	Failure string
	// Unanswered is why a running batch's progress query went unanswered
	// (Phase is PhaseNoWorker): no worker polling, or a worker that cannot
	// run the batch's workflow task.
	Unanswered string
}

// describe returns the status of the batch workflow's latest run, or
// ErrNoBatch.
func (c *Client) describe(ctx context.Context, batchID string) (enumspb.WorkflowExecutionStatus, error) {
	desc, err := c.Temporal.DescribeWorkflowExecution(ctx, workflows.BatchWorkflowID(batchID), "")
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return 0, fmt.Errorf("batch %s: %w", batchID, ErrNoBatch)
		}
		return 0, fmt.Errorf("describe batch %s: %w", batchID, err)
	}
	return desc.GetWorkflowExecutionInfo().GetStatus(), nil
}

// Closed says whether the batch's current attempt has ended.
func (p Progress) Closed() bool {
	return p.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
		p.Status != enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW
}

// Progress asks a running batch, and its running chunks, for their counts, or
// reads a finished batch's result.
func (c *Client) Progress(ctx context.Context, batchID string) (Progress, error) {
	p := Progress{BatchID: batchID}
	id := workflows.BatchWorkflowID(batchID)
	var err error
	if p.Status, err = c.describe(ctx, batchID); err != nil {
		return p, err
	}
	switch p.Status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		var bp workflows.BatchProgress
		v, err := c.Temporal.QueryWorkflow(ctx, id, "", workflows.ProgressQuery)
		if err != nil {
			// Queries need a live worker; the batch itself is safe in
			// Temporal meanwhile, so this is news, not an error.
			p.Phase, p.Unanswered = PhaseNoWorker, err.Error()
			return p, nil
		}
		if err := v.Get(&bp); err != nil {
			return p, fmt.Errorf("decode batch %s progress: %w", batchID, err)
		}
		p.Attempt, p.Phase, p.Total, p.Counts = bp.Attempt, bp.Phase, bp.Total, bp.Done
		for _, chunk := range bp.Active {
			v, err := c.Temporal.QueryWorkflow(ctx, chunk, "", workflows.ProgressQuery)
			if err != nil {
				continue // not started yet, or just finished: counted next time
			}
			var cc workflows.Counts
			if v.Get(&cc) == nil {
				p.Counts = p.Counts.Add(cc)
			}
		}
		p.Counts.Total = p.Total
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var r workflows.BatchResult
		if err := c.Temporal.GetWorkflow(ctx, id, "").Get(ctx, &r); err != nil {
			return p, fmt.Errorf("read batch %s result: %w", batchID, err)
		}
		in, err := c.batchInput(ctx, batchID)
		if err != nil {
			return p, err
		}
		p.Attempt, p.Phase, p.Total, p.Counts = in.Attempt(), "done", in.Current().Count, r.Counts
	default:
		p.Phase = "ended"
		err := c.Temporal.GetWorkflow(ctx, id, "").Get(ctx, nil)
		if err != nil {
			p.Failure = rootMessage(err)
		} else {
			p.Failure = "batch workflow " + strings.ToLower(p.Status.String())
		}
	}
	return p, nil
}

// Wait follows a batch until its current attempt ends, calling report with
// each new reading (every interval, and at once when the batch ends). It
// rides out a Temporal server that is briefly unreachable (a restart, say)
// for up to a minute.
func (c *Client) Wait(ctx context.Context, batchID string, interval time.Duration, report func(Progress)) (Progress, error) {
	const patience = time.Minute
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := c.ended(ctx, batchID)
	t := time.NewTicker(interval)
	defer t.Stop()
	var failingSince time.Time
	for {
		p, err := c.Progress(ctx, batchID)
		switch {
		case err == nil:
			failingSince = time.Time{}
			report(p)
			if p.Closed() {
				return p, nil
			}
		case errors.Is(err, ErrNoBatch) || ctx.Err() != nil:
			return p, err
		case failingSince.IsZero():
			failingSince = time.Now()
		case time.Since(failingSince) > patience:
			return p, err
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-t.C:
		case <-ended:
			ended = nil // read now; from here on, every interval
		}
	}
}

// ended long-polls the batch's workflow for its end (following its
// continue-as-new runs) and closes the returned channel when the poll
// returns: the batch ended, or the poll failed (a server restart, ctx
// done). Wait then reads the progress at once rather than up to an interval
// later, which was on average half a second more in every submit --wait; a
// poll that failed only costs that one early reading.
func (c *Client) ended(ctx context.Context, batchID string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		_ = c.Temporal.GetWorkflow(ctx, workflows.BatchWorkflowID(batchID), "").Get(ctx, nil)
	}()
	return ch
}

// Outcomes merges every attempt of a finished batch into one outcome per
// participant, in roster order; a later attempt's outcome replaces an
// earlier one.
func (c *Client) Outcomes(ctx context.Context, batchID string) ([]workflows.Outcome, error) {
	out, _, err := c.outcomes(ctx, batchID)
	return out, err
}

// outcomes is Outcomes, also returning the input of the batch's current run.
func (c *Client) outcomes(ctx context.Context, batchID string) ([]workflows.Outcome, workflows.BatchInput, error) {
	st, err := c.describe(ctx, batchID)
	if err != nil {
		return nil, workflows.BatchInput{}, err
	}
	if !(Progress{Status: st}).Closed() {
		return nil, workflows.BatchInput{}, fmt.Errorf("batch %s: %w (see: starter status %s)", batchID, ErrBatchRunning, batchID)
	}
	in, err := c.batchInput(ctx, batchID)
	if err != nil {
		return nil, in, err
	}
	var out []workflows.Outcome
	index := map[string]int{}
	for attempt := 0; attempt <= in.Attempt(); attempt++ {
		r := in.AttemptRoster(attempt)
		for chunk := 0; chunk < in.ChunksOf(r); chunk++ {
			var res workflows.ChunkResult
			id := workflows.ChunkWorkflowID(batchID, attempt, chunk)
			if err := c.Temporal.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
				return nil, in, fmt.Errorf("read outcomes of %s: %w", id, err)
			}
			for _, o := range res.Outcomes {
				if i, ok := index[o.Email]; ok {
					out[i] = o
					continue
				}
				index[o.Email] = len(out)
				out = append(out, o)
			}
		}
	}
	return out, in, nil
}

// RetryFailed starts a new attempt of a finished batch for exactly its failed
// participants, and returns how many that is (0: nothing to do).
func (c *Client) RetryFailed(ctx context.Context, batchID string) (int, error) {
	outcomes, in, err := c.outcomes(ctx, batchID)
	if err != nil {
		return 0, err
	}
	failed := map[string]bool{}
	for _, o := range outcomes {
		if o.Status != workflows.StatusOK {
			failed[o.Email] = true
		}
	}
	if len(failed) == 0 {
		return 0, nil
	}
	var again []roster.Participant
	for attempt := 0; attempt <= in.Attempt() && len(again) < len(failed); attempt++ {
		r := in.AttemptRoster(attempt)
		ps, err := c.Store.Load(r, 0, r.Count)
		if err != nil {
			return 0, fmt.Errorf("load roster of batch %s: %w", batchID, err)
		}
		for _, p := range ps {
			if failed[p.Email] {
				again = append(again, p)
				delete(failed, p.Email)
			}
		}
	}
	ref, err := c.Store.Put(again)
	if err != nil {
		return 0, fmt.Errorf("store retry roster: %w", err)
	}
	next := in
	next.Retries = append(append([]roster.Ref(nil), in.Retries...), ref)
	next.NextChunk, next.Done, next.Setup, next.Read = 0, workflows.Counts{}, nil, nil // a retry reads the event afresh
	if next.ParticipantTimeout == 0 {                                                  // a batch submitted before there was one
		next.ParticipantTimeout = c.Batch.ParticipantTimeoutOrDefault()
	}
	err = c.startBatch(ctx, next, fmt.Sprintf("batch %s: retry %d of %d failed participants", batchID, next.Attempt(), ref.Count),
		enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL)
	if err != nil {
		return 0, fmt.Errorf("start retry of batch %s: %w", batchID, err)
	}
	return ref.Count, nil
}

// BatchURL is the Web UI page of a batch's workflow.
func (c *Client) BatchURL(batchID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", strings.TrimRight(c.UIAddress, "/"),
		url.PathEscape(c.Namespace), url.PathEscape(workflows.BatchWorkflowID(batchID)))
}

// FailuresURL is the Web UI list of a batch's failed participants.
func (c *Client) FailuresURL(batchID string) string {
	q := fmt.Sprintf("%s = '%s' AND WorkflowType = '%s' AND ExecutionStatus = 'Failed'", workflows.BatchAttr.GetName(), batchID,
		workflows.ParticipantWorkflowName)
	return fmt.Sprintf("%s/namespaces/%s/workflows?query=%s", strings.TrimRight(c.UIAddress, "/"),
		url.PathEscape(c.Namespace), url.QueryEscape(q))
}

// FailedBySteps lists failure counts by step in a stable order.
func FailedBySteps(c workflows.Counts) []string {
	var out []string
	for _, sc := range c.FailedByStep {
		out = append(out, fmt.Sprintf("%s %d", sc.Step, sc.N))
	}
	return out
}

// rootMessage is the innermost message of a workflow failure chain.
func rootMessage(err error) string {
	msg := err.Error()
	for e := err; e != nil; e = errors.Unwrap(e) {
		var appErr *temporal.ApplicationError
		if errors.As(e, &appErr) {
			msg = appErr.Message()
		}
	}
	return msg
}
