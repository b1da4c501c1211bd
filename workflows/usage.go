package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/usage"
	"github.com/cohort-dev/cohort/wire"
)

// reconcileUsage is the change that has a reconcile's chunk read its
// participants' usage and apply the budget beside its survey and runs
// (issue 19). Chunks started before it do not.
const reconcileUsage = "reconcile-usage"

// usageChunkOptions: reads only, paced per class; it heartbeats.
func usageChunkOptions(st time.Duration) workflow.ActivityOptions {
	return activityOptions(wire.UsageChunkName, st, "read the chunk's cluster event logs into the usage ledger")
}

// enforceBudgetOptions: a few cluster and permission calls on the compute queue.
func enforceBudgetOptions(st time.Duration, email, action string) workflow.ActivityOptions {
	return activityOptions(wire.EnforceBudgetName, st, "budget: "+action+" "+email)
}

// readUsage reads the usage of a chunk's participants (UsageChunk), then
// runs the budget's actions (EnforceBudget, each its own activity, all at
// once), and returns per participant their usage and what the budget did.
// clusterIDs, when set, are the clusters known per participant (a
// reconcile's); nil reads them from the participants' earlier runs. A
// failed read fails every participant at step usage; a failed action, that
// participant at step budget.
func readUsage(ctx workflow.Context, in ChunkInput, ps []roster.Participant, clusterIDs [][]string) ([]usageOutcome, error) {
	st := cmp.Or(in.StepTimeout, 30*time.Minute)
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = ParticipantWorkflowID(p.Email)
	}
	var r wire.UsageChunkResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, usageChunkOptions(st)), wire.UsageChunkName,
		wire.UsageChunkInput{Roster: in.Roster, Offset: in.Offset, Limit: in.Limit, WorkflowIDs: ids, ClusterIDs: clusterIDs,
			NodeType: in.Setup.Cluster.NodeType}).Get(ctx, &r)
	if err != nil {
		return nil, err
	}
	if len(r.Usage) != len(ps) {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("usage answered for %d of %d participants", len(r.Usage), len(ps)), wire.ErrInvalidInput, nil)
	}
	out := make([]usageOutcome, len(ps))
	futures := make([]workflow.Future, len(ps))
	for i, u := range r.Usage {
		out[i].usage = u
		if u.Action == "" || u.Error != "" {
			continue
		}
		actx := workflow.WithActivityOptions(ctx, enforceBudgetOptions(st, ps[i].Email, u.Action))
		futures[i] = workflow.ExecuteActivity(actx, wire.EnforceBudgetName, wire.EnforceBudgetInput{
			Email: ps[i].Email, ClusterIDs: u.ClusterIDs, Action: u.Action, Hours: u.Hours, Limit: u.Limit})
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		var er wire.EnforceBudgetResult
		if err := f.Get(ctx, &er); err != nil {
			out[i].err = err
			continue
		}
		out[i].changes = er.Changes
		out[i].usage.Restricted = out[i].usage.Action == wire.BudgetRestrict
	}
	return out, nil
}

// usageOutcome is one participant's usage and what the budget did.
type usageOutcome struct {
	usage   wire.ParticipantUsage
	changes []string
	err     error
}

// notes are the lines an outcome lists for the usage: the budget's actions
// and, near the budget, a warning.
func (u usageOutcome) notes() []string {
	notes := slices.Clone(u.changes)
	if u.usage.State == usage.StateNearBudget {
		notes = append(notes, fmt.Sprintf("near the budget: %.2f of %.2f hours used", u.usage.Hours, u.usage.Limit))
	}
	return notes
}

// usageChunk is a usage batch's chunk: its participants' usage read and
// the budget applied, one outcome each, no participant run.
func usageChunk(ctx workflow.Context, in ChunkInput, ps []roster.Participant, res ChunkResult) ChunkResult {
	uos, err := readUsage(ctx, in, ps, nil)
	if err != nil {
		return failAll(res, ps, wire.ModeUsage, wire.StepUsage, err)
	}
	res.Counts = Counts{}
	for i, p := range ps {
		o := Outcome{ParticipantResult: ParticipantResult{Email: p.Email, DisplayName: p.DisplayName, Mode: wire.ModeUsage}, Status: StatusOK}
		withUsage(&o, uos[i])
		res.Counts.Total++
		res.Counts.Running++
		res.Outcomes[i] = o
		res.Counts.record(o)
	}
	return res
}

// withUsage adds a participant's usage to their outcome; a failed read or
// budget action fails it at that step.
func withUsage(o *Outcome, uo usageOutcome) {
	u := uo.usage
	o.Usage = &u
	if o.ClusterID == "" {
		o.ClusterID = u.ClusterID
	}
	o.Changes = append(o.Changes, uo.notes()...)
	switch {
	case u.Error != "":
		o.Status, o.Step, o.Error = StatusFailed, wire.StepUsage, ClipError(u.Error)
	case uo.err != nil:
		f := failedOutcome(uo.err)
		o.Status, o.Step, o.Error = StatusFailed, wire.StepBudget, ClipError(f.Error)
	}
}

// pendingUsage is a reconcile chunk's usage read, running beside its
// survey and runs (startReconcileUsage); done once it has ended.
type pendingUsage struct {
	done bool
	uos  []usageOutcome
	err  error
}

// startReconcileUsage, in a reconcile that reads the event (not a dry
// run), starts reading the chunk's usage and applying the budget beside
// the survey and the runs: its pages (clusters/events) are paced by a class
// of their own, so it adds calls but no wall time while the survey's Unity
// Catalog reads, the scarcest, are the bound. The clusters read are those
// the ledger knows (else the earlier runs'); a cluster a run re-creates
// now has no usage yet but its creation, and is read from the next day.
// A chunk started before the read (in.AwaitRead) starts it once the
// batch's setup has come (the node type prices the usage). Nil when the
// chunk reads no usage.
func startReconcileUsage(ctx workflow.Context, in *ChunkInput, ps []roster.Participant) *pendingUsage {
	if in.Mode != wire.ModeReconcile || in.DryRun || (in.Snapshot == "" && !in.AwaitRead) {
		return nil
	}
	if workflow.GetVersion(ctx, reconcileUsage, workflow.DefaultVersion, 1) != 1 {
		return nil
	}
	p := &pendingUsage{}
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { p.done = true }()
		if p.err = workflow.Await(ctx, func() bool { return !in.AwaitRead }); p.err != nil {
			return
		}
		p.uos, p.err = readUsage(ctx, *in, ps, nil)
	})
	return p
}

// finishReconcileUsage waits for the chunk's usage read (p) and adds each
// participant's usage, and what the budget did, to their outcome.
func finishReconcileUsage(ctx workflow.Context, p *pendingUsage, res *ChunkResult) {
	if p == nil {
		return
	}
	if err := workflow.Await(ctx, func() bool { return p.done }); err != nil {
		return
	}
	uos, err := p.uos, p.err
	if err != nil {
		// The reconcile itself is done: its outcomes stand, each noting
		// that the usage could not be read.
		note := "usage not read: " + ClipError(failedOutcome(err).Error)
		for i := range res.Outcomes {
			res.Outcomes[i].Changes = append(res.Outcomes[i].Changes, note)
		}
		return
	}
	for i := range res.Outcomes {
		o := &res.Outcomes[i]
		if o.Status != StatusOK {
			continue
		}
		unchanged := o.Unchanged
		withUsage(o, uos[i])
		if o.Status != StatusOK { // the budget's action failed
			if unchanged {
				res.Counts.Unchanged--
				o.Unchanged = false
			}
			res.Counts.OK--
			res.Counts.Failed++
			res.Counts.AddFailed(o.Step, 1)
		}
	}
}
