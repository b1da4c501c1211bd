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
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

var taro = roster.Participant{Email: "taro@example.com", DisplayName: "山田 太郎", Schema: "taro_1a2b3c4d", ClusterName: "cohort-taro-1a2b3c4d"}

// stub stands for an activity in workflow tests: the mocks replace it, so
// only its name and signature matter.
func stub[In, Out any](context.Context, In) (Out, error) {
	var out Out
	return out, errors.New("not mocked")
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BatchWorkflow, workflow.RegisterOptions{Name: BatchWorkflowName})
	env.RegisterWorkflowWithOptions(ChunkWorkflow, workflow.RegisterOptions{Name: ChunkWorkflowName})
	env.RegisterWorkflowWithOptions(ParticipantWorkflow, workflow.RegisterOptions{Name: ParticipantWorkflowName})
	for name, fn := range map[string]any{
		wire.SetupBatchName:       stub[wire.SetupBatchInput, wire.SetupBatchResult],
		wire.LoadChunkName:        stub[wire.LoadChunkInput, wire.LoadChunkResult],
		wire.AwaitParticipantName: stub[wire.AwaitParticipantInput, wire.AwaitParticipantResult],
		wire.PriorRunsName:        stub[wire.PriorRunsInput, wire.PriorRunsResult],
		wire.RemoveAssignmentName: stub[wire.RemoveAssignmentInput, wire.RemoveAssignmentResult],
		wire.RemoveClustersName:   stub[wire.RemoveClustersInput, wire.RemoveClustersResult],
		wire.RevokeGrantsName:     stub[wire.RevokeGrantsInput, wire.RevokeGrantsResult],
		wire.DropSchemaName:       stub[wire.DropSchemaInput, wire.DropSchemaResult],
		wire.RemoveUserName:       stub[wire.RemoveUserInput, wire.RemoveUserResult],
		wire.PlanOffboardName:     stub[wire.PlanOffboardInput, wire.PlanOffboardResult],
		wire.CreateUserName:       stub[wire.CreateUserInput, wire.CreateUserResult],
		wire.AssignWorkspaceName:  stub[wire.AssignWorkspaceInput, wire.AssignWorkspaceResult],
		wire.CreateSchemaName:     stub[wire.CreateSchemaInput, wire.CreateSchemaResult],
		wire.GrantName:            stub[wire.GrantInput, wire.GrantResult],
		wire.CreateClusterName:    stub[wire.CreateClusterInput, wire.CreateClusterResult],
		wire.SetPermissionName:    stub[wire.SetPermissionInput, wire.SetPermissionResult],
		wire.StopClusterName:      stub[wire.StopClusterInput, wire.StopClusterResult],
		wire.ProvisionAccessName:  stub[wire.ProvisionAccessInput, wire.ProvisionAccessResult],
		wire.ProvisionClusterName: stub[wire.ProvisionClusterInput, wire.ProvisionClusterResult],
		wire.UsageChunkName:       stub[wire.UsageChunkInput, wire.UsageChunkResult],
		wire.EnforceBudgetName:    stub[wire.EnforceBudgetInput, wire.EnforceBudgetResult],
	} {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	// Provisioning batches and offboards list the clusters once
	// (clustersListedOnce): unless a test mocks it, the listing finds none.
	env.RegisterActivityWithOptions(func(context.Context, wire.ReadEventInput) (wire.ReadEventResult, error) {
		return wire.ReadEventResult{Snapshot: "listing"}, nil
	}, activity.RegisterOptions{Name: wire.ReadEventName})
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

func appErr(typ string, step string, nonRetryable bool) error {
	return temporal.NewApplicationErrorWithOptions("databricks said no", typ, temporal.ApplicationErrorOptions{
		NonRetryable: nonRetryable, Details: []any{step},
	})
}

const (
	taroUserID    = "7064349174826396"
	taroClusterID = "0101-000000-abc"
	taroURL       = "https://adb/compute/clusters/" + taroClusterID
)

// stepResults are the seven activities' results for taro, succeeding.
var stepResults = map[string]any{
	wire.CreateUserName:      wire.CreateUserResult{UserID: taroUserID, Created: true},
	wire.AssignWorkspaceName: wire.AssignWorkspaceResult{},
	wire.CreateSchemaName:    wire.CreateSchemaResult{FullName: "cohort.taro_1a2b3c4d", Created: true},
	wire.GrantName:           wire.GrantResult{},
	wire.CreateClusterName:   wire.CreateClusterResult{ClusterID: taroClusterID, URL: taroURL, State: "PENDING", Created: true},
	wire.SetPermissionName:   wire.SetPermissionResult{},
	wire.StopClusterName:     wire.StopClusterResult{State: "TERMINATING"},
}

// stepInputs are the seven activities' input types.
var stepInputs = map[string]any{
	wire.CreateUserName:      wire.CreateUserInput{},
	wire.AssignWorkspaceName: wire.AssignWorkspaceInput{},
	wire.CreateSchemaName:    wire.CreateSchemaInput{},
	wire.GrantName:           wire.GrantInput{},
	wire.CreateClusterName:   wire.CreateClusterInput{},
	wire.SetPermissionName:   wire.SetPermissionInput{},
	wire.StopClusterName:     wire.StopClusterInput{},
}

// mockSteps mocks every step activity succeeding after took (virtual time),
// except those in override: an error is returned as the activity's error, a
// function is called as the activity, anything else is its result.
func mockSteps(env *testsuite.TestWorkflowEnvironment, took time.Duration, override map[string]any) {
	for _, s := range wire.Steps {
		call := env.OnActivity(s.Activity, mock.Anything, mock.Anything)
		switch v := override[s.Activity].(type) {
		case nil:
			call.Return(stepResults[s.Activity], nil)
		case error:
			call.Return(reflect.Zero(reflect.TypeOf(stepResults[s.Activity])).Interface(), v)
		default:
			if reflect.TypeOf(v).Kind() == reflect.Func {
				call.Return(v)
			} else {
				call.Return(v, nil)
			}
		}
		call.After(took).Maybe()
	}
}

var wantTaro = ParticipantResult{Email: taro.Email, DisplayName: taro.DisplayName, UserID: taroUserID,
	Schema: "cohort.taro_1a2b3c4d", ClusterID: taroClusterID, ClusterURL: taroURL, UserCreated: true, CreatedUserID: taroUserID}

func runTaro(env *testsuite.TestWorkflowEnvironment, stepTimeout time.Duration) {
	env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort",
		Cluster: wire.ClusterSpec{PolicyID: "pc", SparkVersion: "16.4.x-cpu-ml-scala2.12", NodeType: "Standard_DS3_v2"}, StepTimeout: stepTimeout})
}

// wantStepFailure asserts the workflow failed, not to be retried, at step
// (run by activity) with the activity's reason.
func wantStepFailure(t *testing.T, env *testsuite.TestWorkflowEnvironment, step, activity, reason string) {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var ae *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != ParticipantFailedError {
		t.Fatalf("error = %v, want a %s application error", err, ParticipantFailedError)
	}
	var sf StepFailure
	if err := ae.Details(&sf); err != nil {
		t.Fatal(err)
	}
	if sf.Step != step || sf.Activity != activity || !strings.HasSuffix(sf.Reason, reason) {
		t.Fatalf("failure = %+v, want step %s (activity %s) with reason %q", sf, step, activity, reason)
	}
	if !strings.Contains(ae.Message(), step+" ("+activity+")") {
		t.Errorf("message %q does not name the step and its activity", ae.Message())
	}
	if !ae.NonRetryable() {
		t.Fatal("a participant's failure must not be retried as a whole workflow")
	}
}

func TestParticipantWorkflow_allStepsSucceed(t *testing.T) {
	env := newEnv(t)
	mockSteps(env, time.Second, nil)
	runTaro(env, 0)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("got error %v, want success", err)
	}
	var got ParticipantResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantTaro) {
		t.Fatalf("result = %+v, want %+v", got, wantTaro)
	}
	for _, s := range wire.Steps {
		env.AssertActivityNumberOfCalls(t, s.Activity, 1)
	}
}

// Each step failing non-retryably fails the participant at once, naming the
// step and its activity.
func TestParticipantWorkflow_stepFailsNonRetryably(t *testing.T) {
	for _, s := range wire.Steps {
		t.Run(s.Activity, func(t *testing.T) {
			env := newEnv(t)
			mockSteps(env, time.Second, map[string]any{s.Activity: appErr(wire.ErrInvalidInput, s.Step, true)})
			runTaro(env, 0)
			wantStepFailure(t, env, s.Step, s.Activity, "databricks said no")
			env.AssertActivityNumberOfCalls(t, s.Activity, 1)
		})
	}
}

// Each step failing retryably is retried by its own retry policy, and only
// that step is repeated: the others ran once.
func TestParticipantWorkflow_stepFailsRetryably(t *testing.T) {
	for _, s := range wire.Steps {
		t.Run(s.Activity, func(t *testing.T) {
			env := newEnv(t)
			calls := 0
			ok := reflect.ValueOf(stepResults[s.Activity])
			fn := func(args []reflect.Value) []reflect.Value {
				calls++
				if calls < 3 {
					return []reflect.Value{reflect.Zero(ok.Type()), reflect.ValueOf(appErr(wire.ErrUnavailable, s.Step, false))}
				}
				return []reflect.Value{ok, reflect.Zero(reflect.TypeFor[error]())}
			}
			// The activity's own signature: (context.Context, its input) -> (its result, error).
			typed := reflect.FuncOf([]reflect.Type{reflect.TypeFor[context.Context](), reflect.TypeOf(stepInputs[s.Activity])},
				[]reflect.Type{ok.Type(), reflect.TypeFor[error]()}, false)
			mockSteps(env, 0, map[string]any{s.Activity: reflect.MakeFunc(typed, fn).Interface()})
			runTaro(env, 0)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("got %v, want success after retries", err)
			}
			if calls != 3 {
				t.Fatalf("%s ran %d times, want 3", s.Activity, calls)
			}
			for _, o := range wire.Steps {
				if o.Activity != s.Activity {
					env.AssertActivityNumberOfCalls(t, o.Activity, 1)
				}
			}
		})
	}
}

// Throttling and principal-not-ready are retryable too.
func TestParticipantWorkflow_retryableTypes(t *testing.T) {
	for _, typ := range []string{wire.ErrThrottled, wire.ErrUnavailable, wire.ErrPrincipalNotReady} {
		t.Run(typ, func(t *testing.T) {
			env := newEnv(t)
			calls := 0
			mockSteps(env, 0, map[string]any{wire.GrantName: func(context.Context, wire.GrantInput) (wire.GrantResult, error) {
				if calls++; calls < 2 {
					return wire.GrantResult{}, appErr(typ, wire.StepGrant, false)
				}
				return wire.GrantResult{}, nil
			}})
			runTaro(env, 0)
			if err := env.GetWorkflowError(); err != nil || calls != 2 {
				t.Fatalf("got %v after %d grant calls, want success after one retry", err, calls)
			}
		})
	}
}

// A step that keeps failing retryably gives up at the step timeout and the
// participant fails with the last reason, instead of retrying forever.
func TestParticipantWorkflow_stepTimeout(t *testing.T) {
	env := newEnv(t)
	mockSteps(env, 0, map[string]any{wire.SetPermissionName: appErr(wire.ErrThrottled, wire.StepSetPermission, false)})
	runTaro(env, 5*time.Minute)
	wantStepFailure(t, env, wire.StepSetPermission, wire.SetPermissionName, "databricks said no")
}

// Independent steps run together: with every step taking a minute, the
// participant takes four (user and schema; assignment; grant and cluster;
// permission and stop), not seven.
func TestParticipantWorkflow_independentStepsRunTogether(t *testing.T) {
	env := newEnv(t)
	start := env.Now()
	mockSteps(env, time.Minute, nil)
	started := map[string]time.Duration{}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		started[info.ActivityType.Name] = env.Now().Sub(start).Truncate(time.Second)
	})
	runTaro(env, 0)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{
		wire.CreateUserName: 0, wire.CreateSchemaName: 0,
		wire.AssignWorkspaceName: time.Minute,
		wire.GrantName:           2 * time.Minute, wire.CreateClusterName: 2 * time.Minute,
		wire.SetPermissionName: 3 * time.Minute, wire.StopClusterName: 3 * time.Minute,
	}
	for name, at := range want {
		if got, ok := started[name]; !ok || got != at {
			t.Errorf("%s started at %v (ran: %v), want %v", name, got, ok, at)
		}
	}
	if took := env.Now().Sub(start).Truncate(time.Second); took != 4*time.Minute {
		t.Errorf("participant took %v, want 4m", took)
	}
}

// A user that existed before this run may have a cluster: only then does the
// cluster step look for one.
func TestParticipantWorkflow_clusterLookupOnlyForExistingUsers(t *testing.T) {
	for _, created := range []bool{true, false} {
		env := newEnv(t)
		var got wire.CreateClusterInput
		mockSteps(env, 0, map[string]any{
			wire.CreateUserName: wire.CreateUserResult{UserID: "42", Created: created},
			wire.CreateClusterName: func(_ context.Context, in wire.CreateClusterInput) (wire.CreateClusterResult, error) {
				got = in
				return wire.CreateClusterResult{ClusterID: "c"}, nil
			},
		})
		runTaro(env, 0)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		if got.Lookup == created {
			t.Errorf("user created = %v: cluster lookup = %v, want %v", created, got.Lookup, !created)
		}
	}
}

// A user that existed before may have the cluster an earlier run recorded:
// once the read of the earlier runs has answered, the cluster step gets its
// id, to read it before any listing.
func TestParticipantWorkflow_clusterStepGetsRecordedID(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.PriorRunsName, mock.Anything, mock.Anything).Return(wire.PriorRunsResult{UserCreated: true, ClusterID: "recorded"}, nil)
	var got wire.CreateClusterInput
	mockSteps(env, time.Minute, map[string]any{ // the read answers while the steps before the cluster's run
		wire.CreateUserName: wire.CreateUserResult{UserID: "42"},
		wire.CreateClusterName: func(_ context.Context, in wire.CreateClusterInput) (wire.CreateClusterResult, error) {
			got = in
			return wire.CreateClusterResult{ClusterID: "recorded"}, nil
		},
	})
	runTaro(env, 0)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if !got.Lookup || got.KnownClusterID != "recorded" {
		t.Errorf("cluster step input lookup %v, known cluster id %q; want a lookup with the recorded id", got.Lookup, got.KnownClusterID)
	}
}

// A cluster deleted between its creation and the permission or stop step is
// replaced once: the cluster step runs again, looking, and the steps after it
// work on the new cluster.
func TestParticipantWorkflow_clusterGoneIsReplaced(t *testing.T) {
	env := newEnv(t)
	var lookups []bool
	mockSteps(env, 0, map[string]any{
		wire.CreateClusterName: func(_ context.Context, in wire.CreateClusterInput) (wire.CreateClusterResult, error) {
			lookups = append(lookups, in.Lookup)
			if len(lookups) == 1 {
				return wire.CreateClusterResult{ClusterID: "gone"}, nil
			}
			return wire.CreateClusterResult{ClusterID: taroClusterID, URL: taroURL}, nil
		},
		wire.StopClusterName: func(_ context.Context, in wire.StopClusterInput) (wire.StopClusterResult, error) {
			if in.ClusterID == "gone" {
				return wire.StopClusterResult{}, appErr(wire.ErrClusterGone, wire.StepStopCluster, true)
			}
			return wire.StopClusterResult{State: "TERMINATING"}, nil
		},
	})
	runTaro(env, 0)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var got ParticipantResult
	if err := env.GetWorkflowResult(&got); err != nil || got.ClusterID != taroClusterID {
		t.Fatalf("result = %+v (%v), want the replacement cluster", got, err)
	}
	if len(lookups) != 2 || lookups[0] || !lookups[1] {
		t.Errorf("cluster step lookups = %v, want [false true]", lookups)
	}
}

// Runs recorded by the earlier shape (no version marker) go on as two
// activities.
func TestParticipantWorkflow_earlierShape(t *testing.T) {
	env := newEnv(t)
	env.OnGetVersion(sevenActivities, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.OnActivity(wire.ProvisionAccessName, mock.Anything, mock.Anything).
		Return(wire.ProvisionAccessResult{UserID: taroUserID, UserCreated: true, Schema: "cohort.taro_1a2b3c4d"}, nil).Once()
	env.OnActivity(wire.ProvisionClusterName, mock.Anything, mock.Anything).
		Return(wire.ProvisionClusterResult{ClusterID: taroClusterID, URL: taroURL, State: "TERMINATED"}, nil).Once()
	runTaro(env, 0)
	var got ParticipantResult
	if err := env.GetWorkflowResult(&got); err != nil || !reflect.DeepEqual(got, wantTaro) {
		t.Fatalf("result = %+v (%v), want %+v", got, err, wantTaro)
	}
}

// In the earlier shape a failure's step comes from the activity error's
// details; a timeout names the step timeout and the last attempt's reason.
func TestFail_timeout(t *testing.T) {
	last := appErr(wire.ErrThrottled, wire.StepSetPermission, false)
	tests := []struct {
		name     string
		err      error
		wantStep string
	}{
		{"the last attempt names its step", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, last), wire.StepSetPermission},
		{"a bare timeout keeps the activity's first step", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil), wire.StepCreateCluster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ae *temporal.ApplicationError
			if !errors.As(fail(taro, wire.StepCreateCluster, tt.err), &ae) {
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
