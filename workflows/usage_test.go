package workflows

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// usagesOf4: never started, active, near the budget, over it (restrict).
func usagesOf4(ps []roster.Participant) []wire.ParticipantUsage {
	return []wire.ParticipantUsage{
		{Email: ps[0].Email, State: "never started"},
		{Email: ps[1].Email, ClusterID: "c1", ClusterIDs: []string{"c1"}, Hours: 2, Starts: 1, State: "active"},
		{Email: ps[2].Email, ClusterID: "c2", ClusterIDs: []string{"c2"}, Hours: 8.5, Limit: 10, Left: 1.5, State: "near budget"},
		{Email: ps[3].Email, ClusterID: "c3", ClusterIDs: []string{"c3"}, Hours: 11, Limit: 10, State: "over budget", Action: wire.BudgetRestrict},
	}
}

// A usage chunk reads its participants' usage with one activity, runs the
// budget's action for the one over it (and only for them), and gives each
// an outcome with their usage; no participant run is started.
func TestChunkWorkflow_usage(t *testing.T) {
	tests := []struct {
		name      string
		enforce   error
		wantState string // the over-budget participant's outcome status
		wantStep  string
	}{
		{"budget applied", nil, StatusOK, ""},
		{"budget action fails", appErr(wire.ErrPermissionDenied, wire.StepBudget, true), StatusFailed, wire.StepBudget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			ps := people(4)
			env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
			var usageIn wire.UsageChunkInput
			env.OnActivity(wire.UsageChunkName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in wire.UsageChunkInput) (wire.UsageChunkResult, error) {
					usageIn = in
					return wire.UsageChunkResult{Usage: usagesOf4(ps)}, nil
				})
			var mu sync.Mutex
			var enforced []wire.EnforceBudgetInput
			env.OnActivity(wire.EnforceBudgetName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in wire.EnforceBudgetInput) (wire.EnforceBudgetResult, error) {
					mu.Lock()
					defer mu.Unlock()
					enforced = append(enforced, in)
					return wire.EnforceBudgetResult{Changes: []string{"cluster c3 terminated", "permission lowered"}}, tt.enforce
				})
			env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "usage-b1", Roster: roster.Ref{Key: "k", Count: 4}, Limit: 4, Window: 2,
				Setup: setup, Mode: wire.ModeUsage})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			var got ChunkResult
			if err := env.GetWorkflowResult(&got); err != nil {
				t.Fatal(err)
			}
			if len(usageIn.WorkflowIDs) != 4 || usageIn.ClusterIDs != nil || usageIn.NodeType != "Standard_DS3_v2" {
				t.Errorf("usage input = %+v, want four workflow ids, no cluster ids (read from earlier runs), the node type", usageIn)
			}
			want := []wire.EnforceBudgetInput{{Email: ps[3].Email, ClusterIDs: []string{"c3"}, Action: wire.BudgetRestrict, Hours: 11, Limit: 10}}
			if !reflect.DeepEqual(enforced, want) {
				t.Errorf("budget actions = %+v, want %+v", enforced, want)
			}
			for i, o := range got.Outcomes {
				if o.Usage == nil || o.Usage.Email != ps[i].Email || o.Mode != wire.ModeUsage {
					t.Errorf("outcome %d = %+v, want their usage in mode usage", i, o)
				}
			}
			if o := got.Outcomes[2]; !slices.Contains(o.Changes, "near the budget: 8.50 of 10.00 hours used") {
				t.Errorf("near-budget outcome changes = %q, want the warning", o.Changes)
			}
			o := got.Outcomes[3]
			if o.Status != tt.wantState || o.Step != tt.wantStep {
				t.Errorf("over-budget outcome = %s at %q, want %s at %q", o.Status, o.Step, tt.wantState, tt.wantStep)
			}
			if tt.enforce == nil && (!o.Usage.Restricted || !slices.Contains(o.Changes, "cluster c3 terminated")) {
				t.Errorf("over-budget outcome = %+v, want restricted with the actions listed", o)
			}
			wantOK := 4
			if tt.enforce != nil {
				wantOK = 3
			}
			if got.Counts.OK != wantOK || got.Counts.Total != 4 || got.Counts.Running != 0 {
				t.Errorf("counts = %+v, want %d ok of 4", got.Counts, wantOK)
			}
		})
	}
}

// A reconcile chunk reads the usage beside its survey (started before the
// survey ends), of the clusters the ledger knows, and adds it to the
// outcomes after its runs.
func TestChunkWorkflow_reconcileReadsUsage(t *testing.T) {
	env := newSurveyEnv(t)
	ps := people(5)
	env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	env.OnActivity(wire.SurveyChunkName, mock.Anything, mock.Anything).After(time.Minute).Return(
		func(context.Context, wire.SurveyChunkInput) (wire.SurveyChunkResult, error) {
			note("survey")
			return wire.SurveyChunkResult{Surveys: surveysOf5()}, nil
		})
	env.OnWorkflow(ParticipantWorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in ParticipantInput) (ParticipantResult, error) {
			note("run")
			return ParticipantResult{Email: in.Participant.Email, Mode: wire.ModeReconcile, ClusterID: "new-" + in.Participant.Email}, nil
		})
	var usageIn wire.UsageChunkInput
	env.OnActivity(wire.UsageChunkName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.UsageChunkInput) (wire.UsageChunkResult, error) {
			note("usage")
			usageIn = in
			us := make([]wire.ParticipantUsage, 5)
			for i := range us {
				us[i] = wire.ParticipantUsage{Email: ps[i].Email, Hours: float64(i), State: "active"}
			}
			return wire.UsageChunkResult{Usage: us}, nil
		})
	env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 5}, Limit: 5, Window: 2,
		Setup: setup, Mode: wire.ModeReconcile, Snapshot: "snap"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var got ChunkResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if usageIn.ClusterIDs != nil || usageIn.NodeType != setup.Cluster.NodeType {
		t.Errorf("usage input: cluster ids %q, node type %q; want the ledger's clusters (none passed) and the setup's node type", usageIn.ClusterIDs, usageIn.NodeType)
	}
	if len(order) < 2 || order[0] != "usage" || order[1] != "survey" {
		t.Errorf("order = %v, want the usage read beside the survey (before it ends), not after the runs", order)
	}
	for i, o := range got.Outcomes {
		if o.Usage == nil || o.Usage.Hours != float64(i) {
			t.Errorf("outcome %d usage = %+v, want %d hours", i, o.Usage, i)
		}
	}
	if got.Counts.OK != 5 || got.Counts.Unchanged != 1 {
		t.Errorf("counts = %+v, want the reconcile's (5 ok, 1 unchanged)", got.Counts)
	}
}
