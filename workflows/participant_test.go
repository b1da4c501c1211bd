package workflows

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/activities"
	"github.com/cohort-dev/cohort/roster"
)

var taro = roster.Participant{Email: "taro@example.com", DisplayName: "山田 太郎", Schema: "taro_1a2b3c4d", ClusterName: "cohort-taro-1a2b3c4d"}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BatchWorkflow, workflow.RegisterOptions{Name: BatchWorkflowName})
	env.RegisterWorkflowWithOptions(ChunkWorkflow, workflow.RegisterOptions{Name: ChunkWorkflowName})
	env.RegisterWorkflowWithOptions(ParticipantWorkflow, workflow.RegisterOptions{Name: ParticipantWorkflowName})
	acts := &activities.Activities{}
	for name, fn := range map[string]any{
		activities.SetupBatchName: acts.SetupBatch, activities.ProvisionAccessName: acts.ProvisionAccess,
		activities.ProvisionClusterName: acts.ProvisionCluster,
		activities.LoadChunkName:        acts.LoadChunk, activities.AwaitParticipantName: acts.AwaitParticipant,
	} {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

func appErr(typ string, step string, nonRetryable bool) error {
	return temporal.NewApplicationErrorWithOptions("databricks said no", typ, temporal.ApplicationErrorOptions{
		NonRetryable: nonRetryable, Details: []any{step},
	})
}

// mockProvisioning mocks every provisioning activity succeeding, except those in fail.
func mockProvisioning(env *testsuite.TestWorkflowEnvironment, fail map[string]error) {
	ret := func(name string, ok any) []any {
		if err, bad := fail[name]; bad {
			return []any{reflect.Zero(reflect.TypeOf(ok)).Interface(), err}
		}
		return []any{ok, nil}
	}
	env.OnActivity(activities.ProvisionAccessName, mock.Anything, mock.Anything).
		Return(ret(activities.ProvisionAccessName, activities.ProvisionAccessResult{UserID: "7064349174826396", UserCreated: true, Schema: "cohort.taro_1a2b3c4d"})...).Maybe()
	env.OnActivity(activities.ProvisionClusterName, mock.Anything, mock.Anything).
		Return(ret(activities.ProvisionClusterName, activities.ProvisionClusterResult{ClusterID: "0101-000000-abc", URL: "https://adb/compute/clusters/0101-000000-abc", State: "TERMINATED"})...).Maybe()
}

func TestParticipantWorkflow_steps(t *testing.T) {
	tests := []struct {
		name     string
		fail     map[string]error
		wantStep string // "" = success
	}{
		{name: "all steps succeed"},
		{name: "user refused", fail: map[string]error{activities.ProvisionAccessName: appErr(activities.ErrInvalidInput, activities.StepCreateUser, true)}, wantStep: activities.StepCreateUser},
		{name: "assignment denied", fail: map[string]error{activities.ProvisionAccessName: appErr(activities.ErrPermissionDenied, activities.StepAssignWorkspace, true)}, wantStep: activities.StepAssignWorkspace},
		{name: "grant invalid", fail: map[string]error{activities.ProvisionAccessName: appErr(activities.ErrInvalidInput, activities.StepGrant, true)}, wantStep: activities.StepGrant},
		{name: "cluster policy violation", fail: map[string]error{activities.ProvisionClusterName: appErr(activities.ErrInvalidInput, activities.StepCreateCluster, true)}, wantStep: activities.StepCreateCluster},
		{name: "permission denied on ACL", fail: map[string]error{activities.ProvisionClusterName: appErr(activities.ErrPermissionDenied, activities.StepSetPermission, true)}, wantStep: activities.StepSetPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			mockProvisioning(env, tt.fail)
			env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort"})
			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			err := env.GetWorkflowError()
			if tt.wantStep == "" {
				if err != nil {
					t.Fatalf("got error %v, want success", err)
				}
				var got ParticipantResult
				if err := env.GetWorkflowResult(&got); err != nil {
					t.Fatal(err)
				}
				want := ParticipantResult{Email: taro.Email, DisplayName: taro.DisplayName, UserID: "7064349174826396",
					Schema: "cohort.taro_1a2b3c4d", ClusterID: "0101-000000-abc", ClusterURL: "https://adb/compute/clusters/0101-000000-abc"}
				if got != want {
					t.Fatalf("result = %+v, want %+v", got, want)
				}
				return
			}
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) || ae.Type() != ParticipantFailedError {
				t.Fatalf("error = %v, want a %s application error", err, ParticipantFailedError)
			}
			var sf StepFailure
			if err := ae.Details(&sf); err != nil {
				t.Fatal(err)
			}
			if sf.Step != tt.wantStep || sf.Reason != "databricks said no" {
				t.Fatalf("failure = %+v, want step %s with the activity's reason", sf, tt.wantStep)
			}
			if !ae.NonRetryable() {
				t.Fatal("a participant's failure must not be retried as a whole workflow")
			}
		})
	}
}

// A retryable failure (throttling, 5xx) is retried by the activity's policy
// and the participant still succeeds.
func TestParticipantWorkflow_retryableErrorsAreRetried(t *testing.T) {
	for _, typ := range []string{activities.ErrThrottled, activities.ErrUnavailable, activities.ErrPrincipalNotReady} {
		t.Run(typ, func(t *testing.T) {
			env := newEnv(t)
			calls := 0
			env.OnActivity(activities.ProvisionAccessName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, _ activities.ProvisionAccessInput) (activities.ProvisionAccessResult, error) {
					calls++
					if calls < 3 {
						return activities.ProvisionAccessResult{}, appErr(typ, activities.StepCreateUser, false)
					}
					return activities.ProvisionAccessResult{UserID: "42", Schema: "cohort.x"}, nil
				})
			env.OnActivity(activities.ProvisionClusterName, mock.Anything, mock.Anything).Return(activities.ProvisionClusterResult{ClusterID: "c"}, nil)
			env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort"})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("got %v, want success after retries", err)
			}
			if calls != 3 {
				t.Fatalf("ProvisionAccess ran %d times, want 3", calls)
			}
		})
	}
}

// A step that keeps failing retryably gives up at the step timeout and the
// participant fails with the last reason, instead of retrying forever.
func TestParticipantWorkflow_stepTimeout(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(activities.ProvisionAccessName, mock.Anything, mock.Anything).Return(activities.ProvisionAccessResult{UserID: "42", Schema: "cohort.x"}, nil)
	env.OnActivity(activities.ProvisionClusterName, mock.Anything, mock.Anything).Return(
		activities.ProvisionClusterResult{}, appErr(activities.ErrThrottled, activities.StepCreateCluster, false))
	env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort", StepTimeout: 5 * time.Minute})
	var ae *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != ParticipantFailedError {
		t.Fatalf("error = %v, want %s", err, ParticipantFailedError)
	}
	var sf StepFailure
	if err := ae.Details(&sf); err != nil {
		t.Fatal(err)
	}
	if sf.Step != activities.StepCreateCluster || sf.Reason != "databricks said no" {
		t.Fatalf("failure = %+v, want step %q and the last reason", sf, activities.StepCreateCluster)
	}
}

// A timeout names the step timeout and the last attempt's reason; the step
// comes from that attempt's error, else from the heartbeat.
func TestFail_timeout(t *testing.T) {
	last := appErr(activities.ErrThrottled, activities.StepSetPermission, false)
	tests := []struct {
		name     string
		err      error
		wantStep string
	}{
		{"the last attempt names its step", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, last), activities.StepSetPermission},
		{"a bare timeout keeps the activity's first step", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil), activities.StepCreateCluster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ae *temporal.ApplicationError
			if !errors.As(fail(taro, activities.StepCreateCluster, tt.err), &ae) {
				t.Fatal("not an ApplicationError")
			}
			var sf StepFailure
			if err := ae.Details(&sf); err != nil {
				t.Fatal(err)
			}
			if sf.Step != tt.wantStep || !strings.HasPrefix(sf.Reason, "gave up after the step timeout: ") {
				t.Errorf("failure = %+v, want step %s and the step timeout named", sf, tt.wantStep)
			}
		})
	}
}

// The cluster step looks for an existing cluster only when the participant's
// user existed before this run: a brand-new user cannot have one.
func TestParticipantWorkflow_clusterLookupOnlyForExistingUsers(t *testing.T) {
	for _, created := range []bool{true, false} {
		env := newEnv(t)
		env.OnActivity(activities.ProvisionAccessName, mock.Anything, mock.Anything).
			Return(activities.ProvisionAccessResult{UserID: "42", UserCreated: created, Schema: "cohort.x"}, nil)
		var got activities.ProvisionClusterInput
		env.OnActivity(activities.ProvisionClusterName, mock.Anything, mock.Anything).Return(
			func(_ context.Context, in activities.ProvisionClusterInput) (activities.ProvisionClusterResult, error) {
				got = in
				return activities.ProvisionClusterResult{ClusterID: "c"}, nil
			})
		env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort"})
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		if got.Lookup == created {
			t.Errorf("user created = %v: cluster lookup = %v, want %v", created, got.Lookup, !created)
		}
	}
}
