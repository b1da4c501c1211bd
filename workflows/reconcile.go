package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/wire"
)

// reconciling is a reconcile run's state: what the earlier runs said, and
// the changes it made so far.
type reconciling struct {
	prior   wire.PriorRunsResult
	changes []string
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
	if !u.Created && r.prior.CreatedUserID != "" && r.prior.CreatedUserID != u.UserID {
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
	return stepOptions(TaskQueue, 2*time.Minute, 0, st, "read the earlier runs of this participant")
}

// priorRunsInput names this run's workflow, and the run to leave out.
func priorRunsInput(ctx workflow.Context) wire.PriorRunsInput {
	info := workflow.GetInfo(ctx)
	return wire.PriorRunsInput{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID}
}
