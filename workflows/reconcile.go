package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// reconciling is a reconcile run's state: what the earlier runs said, and
// the changes it made so far.
type reconciling struct {
	prior wire.PriorRunsResult
	// survey, when set, is what the batch's read found (ReadEvent,
	// SurveyChunk): the run repairs only that drift.
	survey  *wire.Survey
	changes []string
}

// surveyed is a participant run's survey, nil when it has none (provision,
// or a reconcile of a batch started before the read).
type surveyed struct{ *wire.Survey }

func (r *reconciling) surveyed() surveyed {
	if r == nil {
		return surveyed{}
	}
	return surveyed{r.survey}
}

// repair says the run repairs a survey's drift only.
func (s surveyed) repair() bool { return s.Survey != nil }

// needs says whether a step runs: always without a survey; with one, when
// any of kinds drifted.
func (s surveyed) needs(kinds ...string) bool { return s.Survey == nil || s.Has(kinds...) }

// ready is a future that is already resolved to v: the answer of a step a
// repair does not need to run.
func ready(ctx workflow.Context, v any) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	set.SetValue(v)
	return f
}

// describeGrants writes grants as "USE_SCHEMA on schema c.s; ...".
func describeGrants(gs []wire.SecurableGrant) string {
	parts := make([]string, 0, len(gs))
	for _, g := range gs {
		parts = append(parts, strings.Join(g.Privileges, ",")+" on "+g.Type+" "+g.Name)
	}
	return strings.Join(parts, "; ")
}

func (r *reconciling) change(format string, a ...any) {
	r.changes = append(r.changes, fmt.Sprintf(format, a...))
}

// userStep records what create_user found: a user it had to create again
// (deleted since).
func (r *reconciling) userStep(u wire.CreateUserResult) {
	switch {
	case u.Created && r.prior.Runs == 0:
		r.change("user created (id %s): not provisioned before", u.UserID)
	case u.Created:
		r.change("user re-created (id %s)", u.UserID)
	case u.Reactivated:
		r.change("user %s was inactive: reactivated", u.UserID)
	}
	if r.survey == nil && !u.Created && r.prior.CreatedUserID != "" && r.prior.CreatedUserID != u.UserID {
		r.change("account user %s is not the one Cohort created (%s; re-created by someone since?): an offboard keeps it", u.UserID, r.prior.CreatedUserID)
	}
}

// clusterStep records what create_cluster found: a cluster it had to create
// (the earlier one purged or deleted), stopped again.
func (r *reconciling) clusterStep(c wire.CreateClusterResult) {
	if !c.Created {
		return
	}
	if r.prior.ClusterID != "" && r.prior.ClusterID != c.ClusterID {
		r.change("cluster %s gone: re-created as %s (stopped)", r.prior.ClusterID, c.ClusterID)
		return
	}
	r.change("cluster re-created as %s (stopped)", c.ClusterID)
}

// reconcileParticipant re-asserts a participant's environment, as a run of
// their participant workflow (mode reconcile): the user active, the
// assignment, the schema, the grants, a cluster with CAN_RESTART. Every
// step is the provisioning step, so whatever is in place is left as it is;
// the cluster is looked up by tag, so a purged or deleted one is created
// again, and only a cluster this run created is stopped: one the
// participant is running is never stopped or restarted. A participant
// offboarded since is left alone (a submit onboards them again).
func reconcileParticipant(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
	p := in.Participant
	if in.Survey != nil {
		// The batch's read found drift: repair only that (the survey carries
		// the earlier runs' record).
		return provisionSteps(ctx, in, &reconciling{prior: in.Survey.Prior, survey: in.Survey})
	}
	var prior wire.PriorRunsResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, priorRunsOptions(in.StepTimeout)),
		wire.PriorRunsName, priorRunsInput(ctx)).Get(ctx, &prior)
	if err != nil {
		return ParticipantResult{Email: p.Email, DisplayName: p.DisplayName, Mode: wire.ModeReconcile},
			stepFailedAs("reconcile", p, wire.StepPriorRuns, wire.PriorRunsName, err)
	}
	if prior.Offboarded {
		return ParticipantResult{Email: p.Email, DisplayName: p.DisplayName, Mode: wire.ModeReconcile,
			UserCreated: prior.UserCreated, CreatedUserID: prior.CreatedUserID, Schema: prior.Schema,
			Grants: prior.Grants, GrantsRecorded: prior.GrantsRecorded, Offboarded: true,
			Changes: []string{"left alone: offboarded (submit onboards them again)"}}, nil
	}
	return provisionSteps(ctx, in, &reconciling{prior: prior})
}

// priorRunsOptions: a read of Temporal's own records, on the main queue.
func priorRunsOptions(st time.Duration) workflow.ActivityOptions {
	return activityOptions(wire.PriorRunsName, st, "read the earlier runs of this participant")
}

// priorRunsInput names this run's workflow, and the run to leave out.
func priorRunsInput(ctx workflow.Context) wire.PriorRunsInput {
	info := workflow.GetInfo(ctx)
	return wire.PriorRunsInput{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID}
}

// surveyChunkOptions: reads only, paced per class; it heartbeats. name is
// SurveyChunk, or PrefetchSurvey (its first part, the same summary).
func surveyChunkOptions(name string, st time.Duration) workflow.ActivityOptions {
	return activityOptions(name, st, "read what the chunk's participants have, against the batch's read of the event")
}

// surveyChunk, in a reconcile that read the event (in.Snapshot), compares
// the chunk's participants with that read: one survey each, in roster
// order. Nil for every other chunk. A chunk started before the read
// (in.AwaitRead) prefetches while it waits for the batch's signal, and
// takes the setup and the read from it.
func surveyChunk(ctx workflow.Context, in *ChunkInput, ps []roster.Participant) ([]wire.Survey, error) {
	if in.Mode != wire.ModeReconcile || (in.Snapshot == "" && !in.AwaitRead) {
		return nil, nil
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = ParticipantWorkflowID(p.Email)
	}
	st := cmp.Or(in.StepTimeout, 30*time.Minute)
	sin := wire.SurveyChunkInput{Roster: in.Roster, Offset: in.Offset, Limit: in.Limit, WorkflowIDs: ids}
	if in.AwaitRead {
		pctx := workflow.WithActivityOptions(ctx, surveyChunkOptions(wire.PrefetchSurveyName, st))
		prefetchF := workflow.ExecuteActivity(pctx, wire.PrefetchSurveyName, wire.PrefetchSurveyInput{
			Roster: in.Roster, Offset: in.Offset, Limit: in.Limit, WorkflowIDs: ids})
		// The batch signals once its setup and read have ended; if either
		// fails, the batch fails and its chunks end with it (the parent
		// close policy terminates them): this wait is never endless.
		var read EventRead
		workflow.GetSignalChannel(ctx, wire.EventReadSignal).Receive(ctx, &read)
		in.Setup, in.Snapshot, in.AwaitRead = read.Setup, read.Snapshot, false
		var pre wire.PrefetchSurveyResult
		if err := prefetchF.Get(ctx, &pre); err != nil {
			return nil, err
		}
		sin.Prefetch = pre.Prefetch
	}
	sin.Snapshot, sin.Catalog = in.Snapshot, in.Setup.Catalog
	var r wire.SurveyChunkResult
	actx := workflow.WithActivityOptions(ctx, surveyChunkOptions(wire.SurveyChunkName, st))
	if err := workflow.ExecuteActivity(actx, wire.SurveyChunkName, sin).Get(ctx, &r); err != nil {
		return nil, err
	}
	if len(r.Surveys) != len(ps) {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("survey answered for %d of %d participants", len(r.Surveys), len(ps)), wire.ErrInvalidInput, nil)
	}
	return r.Surveys, nil
}

// surveyedOutcome is the outcome of a surveyed participant who needs no
// run (done): unchanged, offboarded (left alone), drift a write cannot
// repair (extra clusters), or any drift in a dry run, which lists it.
func surveyedOutcome(s wire.Survey, dryRun bool) (o Outcome, done bool) {
	r := ParticipantResult{Mode: wire.ModeReconcile, UserID: s.UserID, Schema: s.Schema, ClusterID: s.ClusterID, ClusterURL: s.ClusterURL,
		Grants: s.Prior.Grants, GrantsRecorded: s.Prior.GrantsRecorded, Drift: s.Drift}
	// As a run would record it: results of earlier versions kept no user id.
	r.CreatedUserID, r.UserCreated = userOwnership(wire.CreateUserResult{UserID: s.UserID}, s.Prior)
	switch {
	case s.Offboarded:
		r.Offboarded = true
		r.Changes = []string{"left alone: offboarded (submit onboards them again)"}
		return Outcome{ParticipantResult: r, Status: StatusOK}, true
	case s.Unchanged():
		r.Changes = s.Notes
		return Outcome{ParticipantResult: r, Status: StatusOK, Unchanged: true}, true
	case dryRun:
		extra := wire.ExtraClustersNote(s.ExtraClusters)
		for _, d := range s.Details {
			if d != extra {
				d = "would repair: " + d
			}
			r.Changes = append(r.Changes, d)
		}
		r.Changes = append(r.Changes, s.Notes...)
		return Outcome{ParticipantResult: r, Status: StatusOK}, true
	case !s.Repairs():
		r.Changes = append(slices.Clone(s.Notes), wire.ExtraClustersNote(s.ExtraClusters))
		return Outcome{ParticipantResult: r, Status: StatusOK}, true
	}
	return Outcome{}, false
}
