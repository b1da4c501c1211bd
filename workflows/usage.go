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
// participants' usage and apply the budget after its runs (issue 19).
// Chunks started before it do not.
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

// reconcileUsageChunk, in a reconcile that read the event (not a dry run),
// reads the chunk's usage after its runs and applies the budget, adding
// each participant's usage to their outcome. The clusters read are those
// the survey and the runs know.
func reconcileUsageChunk(ctx workflow.Context, in ChunkInput, ps []roster.Participant, surveys []wire.Survey, res *ChunkResult) {
	if in.Mode != wire.ModeReconcile || in.DryRun || surveys == nil {
		return
	}
	if workflow.GetVersion(ctx, reconcileUsage, workflow.DefaultVersion, 1) != 1 {
		return
	}
	ids := make([][]string, len(ps))
	for i, s := range surveys {
		for _, id := range []string{s.Prior.ClusterID, s.ClusterID, res.Outcomes[i].ClusterID} {
			if id != "" && !slices.Contains(ids[i], id) {
				ids[i] = append(ids[i], id)
			}
		}
		if ids[i] == nil {
			ids[i] = []string{}
		}
	}
	uos, err := readUsage(ctx, in, ps, ids)
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
