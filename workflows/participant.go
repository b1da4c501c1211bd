package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/activities"
	"github.com/cohort-dev/cohort/roster"
)

// a refers to the activities through a nil pointer: workflows only need the
// method values for their names and signatures.
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

// ParticipantResult is what an organizer sends to the participant.
type ParticipantResult struct {
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	UserID      string `json:"user_id"`
	Schema      string `json:"schema"` // full name, catalog.schema
	ClusterID   string `json:"cluster_id"`
	ClusterURL  string `json:"cluster_url"`
}

// ParticipantFailedError is the error type a participant workflow fails with;
// its details are a StepFailure.
const ParticipantFailedError = "ParticipantFailed"

// StepFailure says where and why a participant failed.
type StepFailure struct {
	Step   string `json:"step"`
	Reason string `json:"reason"`
}

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

func userOptions(stepTimeout time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:              AccountTaskQueue,
		StartToCloseTimeout:    3 * time.Minute,
		ScheduleToCloseTimeout: stepTimeout,
		RetryPolicy:            retryPolicy(),
	}
}

func schemaOptions(stepTimeout time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:              TaskQueue,
		StartToCloseTimeout:    3 * time.Minute,
		ScheduleToCloseTimeout: stepTimeout,
		RetryPolicy:            retryPolicy(),
	}
}

// clusterOptions: the cluster activity waits for TERMINATED while
// heartbeating, so a crashed worker is noticed within HeartbeatTimeout and the
// idempotent steps are re-run elsewhere.
func clusterOptions(stepTimeout time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:              ComputeTaskQueue,
		StartToCloseTimeout:    20 * time.Minute,
		HeartbeatTimeout:       time.Minute,
		ScheduleToCloseTimeout: stepTimeout,
		RetryPolicy:            retryPolicy(),
	}
}

// ParticipantWorkflow gives one participant a ready environment: account user
// assigned to the workspace, schema with grants, and a stopped personal cluster
// they may restart. The seven steps run as three activities grouped by API, so
// that a participant costs few history events; each step is idempotent.
func ParticipantWorkflow(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
	p := in.Participant
	res := ParticipantResult{Email: p.Email, DisplayName: p.DisplayName}
	if in.StepTimeout <= 0 {
		in.StepTimeout = 30 * time.Minute
	}

	var user activities.ProvisionUserResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, userOptions(in.StepTimeout)),
		a.ProvisionUser, activities.ProvisionUserInput{Participant: p}).Get(ctx, &user)
	if err != nil {
		return res, fail(ctx, p, activities.StepCreateUser, err)
	}
	res.UserID = user.UserID

	var schema activities.ProvisionSchemaResult
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, schemaOptions(in.StepTimeout)),
		a.ProvisionSchema, activities.ProvisionSchemaInput{Participant: p, Catalog: in.Catalog}).Get(ctx, &schema)
	if err != nil {
		return res, fail(ctx, p, activities.StepCreateSchema, err)
	}
	res.Schema = schema.FullName

	var cluster activities.ProvisionClusterResult
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, clusterOptions(in.StepTimeout)),
		a.ProvisionCluster, activities.ProvisionClusterInput{Participant: p, Spec: in.Cluster, BatchID: in.BatchID}).Get(ctx, &cluster)
	if err != nil {
		return res, fail(ctx, p, activities.StepCreateCluster, err)
	}
	res.ClusterID, res.ClusterURL = cluster.ClusterID, cluster.URL

	return res, nil
}

// fail turns an activity error into the participant's failure: the step comes
// from the activity error's details when it has them (the activity knows which
// of its steps failed), else the activity's first step.
func fail(ctx workflow.Context, p roster.Participant, step string, err error) error {
	reason := err.Error()
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		reason = appErr.Message()
		var s string
		if appErr.HasDetails() && appErr.Details(&s) == nil && s != "" {
			step = s
		}
	} else {
		var timeoutErr *temporal.TimeoutError
		if errors.As(err, &timeoutErr) {
			reason = "gave up after the step timeout: " + lastFailure(timeoutErr)
		}
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
