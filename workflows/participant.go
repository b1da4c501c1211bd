package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/activities"
	"github.com/cohort-dev/cohort/roster"
)

// a refers to the activities through a nil pointer: workflows need only the
// methods' names and signatures (the names are activities.*Name).
var a *activities.Activities

// ParticipantInput is everything one participant's provisioning needs. The
// batch-wide parts (catalog, resolved cluster spec) were resolved once by
// SetupBatch.
type ParticipantInput struct {
	BatchID     string                 `json:"batch_id"`
	Participant roster.Participant     `json:"participant"`
	Catalog     string                 `json:"catalog"`
	Cluster     activities.ClusterSpec `json:"cluster"`
	// StepTimeout bounds each activity's retries (ScheduleToClose).
	StepTimeout time.Duration `json:"step_timeout"`
}

// ParticipantResult is what an organizer sends to the participant. It is
// activities.Provisioned, so that AwaitParticipant can hand back an earlier
// run's result typed.
type ParticipantResult = activities.Provisioned

// ParticipantFailedError is the error type a participant workflow fails with;
// its details are a StepFailure.
const ParticipantFailedError = "ParticipantFailed"

// StepFailure says where and why a participant failed.
type StepFailure = activities.StepFailure

// Activity option presets. Every activity has a StartToCloseTimeout; the
// ScheduleToCloseTimeout (the step timeout) bounds queueing behind rate limits
// plus all retries. Non-retryable error types come from activities.NonRetryable.
func retryPolicy() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        2 * time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		NonRetryableErrorTypes: activities.NonRetryable,
	}
}

// accessOptions: user, assignment, schema and grants, on the queue the server
// paces to the SCIM write rate across all workers. The activity heartbeats
// all along, so a worker killed mid-step (or a completion lost while the
// Temporal server was down) is retried within HeartbeatTimeout, not after
// StartToCloseTimeout.
func accessOptions(stepTimeout time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:              AccountTaskQueue,
		StartToCloseTimeout:    5 * time.Minute,
		HeartbeatTimeout:       30 * time.Second,
		ScheduleToCloseTimeout: stepTimeout,
		RetryPolicy:            retryPolicy(),
	}
}

// clusterOptions: the cluster activity heartbeats once it runs past a few
// seconds (it may wait for the clusters rate or repeat a terminate), so a
// crashed worker is noticed within HeartbeatTimeout and the idempotent steps
// are re-run elsewhere, resuming at the recorded cluster.
func clusterOptions(stepTimeout time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:              ComputeTaskQueue,
		StartToCloseTimeout:    20 * time.Minute,
		HeartbeatTimeout:       30 * time.Second,
		ScheduleToCloseTimeout: stepTimeout,
		RetryPolicy:            retryPolicy(),
	}
}

// ParticipantWorkflow gives one participant a ready environment: account user
// assigned to the workspace, schema with grants, and a stopped personal cluster
// they may restart. The seven steps (see activities) run as two activities,
// access and cluster, so that a participant costs few history events; each
// step is idempotent, and a failure names its step.
func ParticipantWorkflow(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
	p := in.Participant
	res := ParticipantResult{Email: p.Email, DisplayName: p.DisplayName}
	if in.StepTimeout <= 0 {
		in.StepTimeout = 30 * time.Minute
	}

	var access activities.ProvisionAccessResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, accessOptions(in.StepTimeout)),
		a.ProvisionAccess, activities.ProvisionAccessInput{Participant: p, Catalog: in.Catalog}).Get(ctx, &access)
	if err != nil {
		return res, fail(p, activities.StepCreateUser, err)
	}
	res.UserID, res.Schema = access.UserID, access.Schema

	var cluster activities.ProvisionClusterResult
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, clusterOptions(in.StepTimeout)),
		a.ProvisionCluster, activities.ProvisionClusterInput{Participant: p, Spec: in.Cluster, BatchID: in.BatchID,
			Lookup: !access.UserCreated}).Get(ctx, &cluster)
	if err != nil {
		return res, fail(p, activities.StepCreateCluster, err)
	}
	res.ClusterID, res.ClusterURL = cluster.ClusterID, cluster.URL

	return res, nil
}

// fail turns an activity error into the participant's failure: the step comes
// from the activity error's details when it has them (the activity knows which
// of its steps failed), else from the heartbeat of an activity that timed out
// (the step it was in), else the activity's first step. A step that gave up at
// its timeout says so, with the last attempt's reason.
func fail(p roster.Participant, step string, err error) error {
	reason := err.Error()
	detailed := false
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		reason = appErr.Message()
		var s string
		if appErr.HasDetails() && appErr.Details(&s) == nil && s != "" {
			step, detailed = s, true
		}
	}
	// Retries that ran into the step timeout end either in a timeout (that
	// wraps the last attempt's error) or in the last attempt's error with
	// retry state TIMEOUT: both are looked for apart.
	var timeoutErr *temporal.TimeoutError
	var actErr *temporal.ActivityError
	switch {
	case errors.As(err, &timeoutErr):
		reason = "gave up after the step timeout: " + lastFailure(timeoutErr)
		var hb struct {
			Step string `json:"step"`
		}
		if !detailed && timeoutErr.HasLastHeartbeatDetails() && timeoutErr.LastHeartbeatDetails(&hb) == nil && hb.Step != "" {
			step = hb.Step
		}
	case errors.As(err, &actErr) && actErr.RetryState() == enumspb.RETRY_STATE_TIMEOUT:
		reason = "gave up after the step timeout: " + reason
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("provision %s: %s: %s", p.Email, step, reason),
		ParticipantFailedError, nil, StepFailure{Step: step, Reason: reason})
}

func lastFailure(err *temporal.TimeoutError) string {
	if cause := errors.Unwrap(err); cause != nil {
		var appErr *temporal.ApplicationError
		if errors.As(cause, &appErr) {
			return appErr.Message()
		}
		return cause.Error()
	}
	return err.Error()
}
