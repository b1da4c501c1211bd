package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

func newPlanEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(PlanWorkflow, workflow.RegisterOptions{Name: PlanWorkflowName})
	env.RegisterActivityWithOptions(stub[wire.PlanWorkspaceInput, wire.PlanWorkspaceResult], activity.RegisterOptions{Name: wire.PlanWorkspaceName})
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

var planIn = PlanInput{Roster: roster.Ref{Key: "abcdef0123456789", Count: 5}, Pending: roster.Ref{Key: "fedcba", Count: 3}, Provisioned: 2}

func TestPlanWorkflow(t *testing.T) {
	notReady := wire.PlanWorkspaceResult{New: 2, Existing: 1, ExistingEmails: []string{"staff@example.com"}, Catalog: "cohort",
		Checks: []wire.Check{{Name: "catalog", Blocking: true, Detail: "no storage root", Fix: "set catalog.storage_root"}, {Name: "policy", OK: true}}}
	tests := []struct {
		name      string
		result    wire.PlanWorkspaceResult
		errs      []error // returned by the attempts before the result
		wantErr   string
		wantReady bool
	}{
		{name: "ready", result: wire.PlanWorkspaceResult{New: 3, Checks: []wire.Check{{Name: "catalog", OK: true}}}, wantReady: true},
		{name: "not ready is a result, not a failure", result: notReady},
		{name: "throttled, then answered", result: notReady, errs: []error{temporal.NewApplicationError("429", wire.ErrThrottled)}},
		{name: "roster missing", errs: []error{temporal.NewNonRetryableApplicationError("load roster: gone", wire.ErrNotFound, nil)}, wantErr: "load roster: gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newPlanEnv(t)
			calls := 0
			env.OnActivity(wire.PlanWorkspaceName, mock.Anything, wire.PlanWorkspaceInput{Roster: planIn.Roster, Pending: planIn.Pending}).Return(
				func(_ context.Context, in wire.PlanWorkspaceInput) (wire.PlanWorkspaceResult, error) {
					calls++
					if calls <= len(tt.errs) {
						return wire.PlanWorkspaceResult{}, tt.errs[calls-1]
					}
					return tt.result, nil
				})
			env.ExecuteWorkflow(PlanWorkflowName, planIn)
			err := env.GetWorkflowError()
			if tt.wantErr != "" {
				var ae *temporal.ApplicationError
				if !errors.As(err, &ae) || ae.Message() != tt.wantErr || calls != 1 {
					t.Fatalf("error = %v after %d calls, want %q at once", err, calls, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got PlanResult
			if err := env.GetWorkflowResult(&got); err != nil {
				t.Fatal(err)
			}
			if got.Total != 5 || got.Provisioned != 2 || got.New != tt.result.New || got.Ready() != tt.wantReady || len(got.Checks) != len(tt.result.Checks) {
				t.Errorf("result = %+v, want %+v with total 5, provisioned 2, ready %v", got, tt.result, tt.wantReady)
			}
		})
	}
}

func TestPlanWorkflow_needsARoster(t *testing.T) {
	env := newPlanEnv(t)
	env.ExecuteWorkflow(PlanWorkflowName, PlanInput{})
	var ae *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != wire.ErrInvalidInput {
		t.Fatalf("error = %v, want InvalidInput", err)
	}
}

func TestPlanWorkflowID(t *testing.T) {
	if got := PlanWorkflowID("abcdef0123456789abcdef", "20261201T220000Z-a1b2c3"); got != "cohort-plan/abcdef012345-20261201T220000Z-a1b2c3" {
		t.Errorf("id = %s", got)
	}
}
