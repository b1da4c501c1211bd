package workflows

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

func runTaroMode(env *testsuite.TestWorkflowEnvironment, mode string, opts wire.OffboardOptions) {
	env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort",
		Cluster: wire.ClusterSpec{PolicyID: "pc", SparkVersion: "16.4.x-cpu-ml-scala2.12", NodeType: "Standard_DS3_v2"},
		Mode:    mode, Offboard: opts})
}

// A reconcile looks the cluster up, by the id recorded first; one it finds (running, say) is never
// stopped, and nothing is recorded as changed.
func TestParticipantWorkflow_reconcileLeavesFoundClusterAlone(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.PriorRunsName, mock.Anything, mock.Anything).Return(wire.PriorRunsResult{UserCreated: true, ClusterID: taroClusterID}, nil)
	var lookup bool
	var known string
	mockSteps(env, 0, map[string]any{
		wire.CreateUserName:   wire.CreateUserResult{UserID: taroUserID},
		wire.CreateSchemaName: wire.CreateSchemaResult{FullName: "cohort.taro_1a2b3c4d"},
		wire.CreateClusterName: func(_ context.Context, in wire.CreateClusterInput) (wire.CreateClusterResult, error) {
			lookup, known = in.Lookup, in.KnownClusterID
			return wire.CreateClusterResult{ClusterID: taroClusterID, URL: taroURL, State: "RUNNING"}, nil
		},
	})
	runTaroMode(env, wire.ModeReconcile, wire.OffboardOptions{})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var got ParticipantResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if !lookup {
		t.Error("reconcile's cluster step did not look up the tagged cluster")
	}
	if known != taroClusterID {
		t.Errorf("reconcile's cluster step got known cluster id %q, want the recorded %s", known, taroClusterID)
	}
	env.AssertActivityNotCalled(t, wire.StopClusterName, mock.Anything, mock.Anything)
	if got.Mode != wire.ModeReconcile || len(got.Changes) != 0 || !got.UserCreated || got.ClusterID != taroClusterID {
		t.Errorf("result = %+v, want mode reconcile, no changes, the user still Cohort's, the same cluster", got)
	}
}

// A cluster purged since is created again, stopped, and recorded; so are a
// reactivated user and a re-created schema.
func TestParticipantWorkflow_reconcileRecreatesPurgedCluster(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.PriorRunsName, mock.Anything, mock.Anything).Return(wire.PriorRunsResult{UserCreated: true, ClusterID: "old"}, nil)
	mockSteps(env, 0, map[string]any{
		wire.CreateUserName: wire.CreateUserResult{UserID: taroUserID, Reactivated: true},
	})
	runTaroMode(env, wire.ModeReconcile, wire.OffboardOptions{})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var got ParticipantResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	env.AssertNumberOfCalls(t, wire.StopClusterName, 1)
	want := []string{"user " + taroUserID + " was inactive: reactivated", "schema cohort.taro_1a2b3c4d re-created (empty)",
		"cluster old gone: re-created as " + taroClusterID + " (stopped)"}
	if !reflect.DeepEqual(got.Changes, want) {
		t.Errorf("changes = %q, want %q", got.Changes, want)
	}
}

// Someone offboarded since is left alone by a reconcile.
func TestParticipantWorkflow_reconcileSkipsOffboarded(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.PriorRunsName, mock.Anything, mock.Anything).Return(wire.PriorRunsResult{Offboarded: true, UserCreated: true}, nil)
	runTaroMode(env, wire.ModeReconcile, wire.OffboardOptions{})
	var got ParticipantResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	env.AssertActivityNotCalled(t, wire.CreateUserName, mock.Anything, mock.Anything)
	if !got.Offboarded || !got.UserCreated {
		t.Errorf("result = %+v, want offboarded, user Cohort's", got)
	}
}

// An offboard runs its five steps in order, telling the identity steps
// whether Cohort created the user; the schema is dropped only when asked.
func TestParticipantWorkflow_offboardOrder(t *testing.T) {
	for _, tt := range []struct {
		name        string
		userCreated bool
		opts        wire.OffboardOptions
		want        []string
	}{
		{"created", true, wire.OffboardOptions{}, []string{wire.PriorRunsName, wire.RemoveAssignmentName, wire.RemoveClustersName, wire.RevokeGrantsName, wire.RemoveUserName}},
		{"drop and delete", true, wire.OffboardOptions{DropSchemas: true, DeleteUsers: true},
			[]string{wire.PriorRunsName, wire.RemoveAssignmentName, wire.RemoveClustersName, wire.RevokeGrantsName, wire.DropSchemaName, wire.RemoveUserName}},
		{"pre-existing", false, wire.OffboardOptions{}, []string{wire.PriorRunsName, wire.RemoveAssignmentName, wire.RemoveClustersName, wire.RevokeGrantsName, wire.RemoveUserName}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			var mu sync.Mutex
			var order []string
			var assignIn wire.RemoveAssignmentInput
			var userIn wire.RemoveUserInput
			record := func(name string) { mu.Lock(); order = append(order, name); mu.Unlock() }
			env.OnActivity(wire.PriorRunsName, mock.Anything, mock.Anything).Return(
				func(context.Context, wire.PriorRunsInput) (wire.PriorRunsResult, error) {
					record(wire.PriorRunsName)
					return wire.PriorRunsResult{UserCreated: tt.userCreated}, nil
				})
			env.OnActivity(wire.RemoveAssignmentName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in wire.RemoveAssignmentInput) (wire.RemoveAssignmentResult, error) {
					record(wire.RemoveAssignmentName)
					assignIn = in
					return wire.RemoveAssignmentResult{UserID: taroUserID, Change: "workspace assignment removed"}, nil
				})
			env.OnActivity(wire.RemoveClustersName, mock.Anything, mock.Anything).Return(
				func(context.Context, wire.RemoveClustersInput) (wire.RemoveClustersResult, error) {
					record(wire.RemoveClustersName)
					return wire.RemoveClustersResult{ClusterIDs: []string{taroClusterID}}, nil
				})
			env.OnActivity(wire.RevokeGrantsName, mock.Anything, mock.Anything).Return(
				func(context.Context, wire.RevokeGrantsInput) (wire.RevokeGrantsResult, error) {
					record(wire.RevokeGrantsName)
					return wire.RevokeGrantsResult{}, nil
				})
			env.OnActivity(wire.DropSchemaName, mock.Anything, mock.Anything).Return(
				func(context.Context, wire.DropSchemaInput) (wire.DropSchemaResult, error) {
					record(wire.DropSchemaName)
					return wire.DropSchemaResult{FullName: "cohort.taro_1a2b3c4d", Dropped: true}, nil
				}).Maybe()
			env.OnActivity(wire.RemoveUserName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in wire.RemoveUserInput) (wire.RemoveUserResult, error) {
					record(wire.RemoveUserName)
					userIn = in
					return wire.RemoveUserResult{UserID: taroUserID}, nil
				})
			runTaroMode(env, wire.ModeOffboard, tt.opts)
			var got ParticipantResult
			if err := env.GetWorkflowResult(&got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(order, tt.want) {
				t.Errorf("steps = %v, want %v", order, tt.want)
			}
			if assignIn.UserCreated != tt.userCreated || userIn.UserCreated != tt.userCreated || userIn.Delete != tt.opts.DeleteUsers {
				t.Errorf("identity steps got %+v and %+v, want user_created %t, delete %t", assignIn, userIn, tt.userCreated, tt.opts.DeleteUsers)
			}
			if !got.Offboarded || got.Mode != wire.ModeOffboard || !strings.Contains(strings.Join(got.Changes, ";"), "cluster "+taroClusterID+" permanently deleted") {
				t.Errorf("result = %+v, want offboarded with the cluster's deletion", got)
			}
		})
	}
}

// A failing offboard step names itself.
func TestParticipantWorkflow_offboardStepFails(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.PriorRunsName, mock.Anything, mock.Anything).Return(wire.PriorRunsResult{UserCreated: true}, nil)
	env.OnActivity(wire.RemoveAssignmentName, mock.Anything, mock.Anything).Return(wire.RemoveAssignmentResult{}, nil)
	env.OnActivity(wire.RemoveClustersName, mock.Anything, mock.Anything).Return(wire.RemoveClustersResult{},
		appErr(wire.ErrPermissionDenied, wire.StepRemoveClusters, true))
	runTaroMode(env, wire.ModeOffboard, wire.OffboardOptions{})
	wantStepFailure(t, env, wire.StepRemoveClusters, wire.RemoveClustersName, "databricks said no")
	env.AssertActivityNotCalled(t, wire.RevokeGrantsName, mock.Anything, mock.Anything)
}

// A submit that finds a participant offboarded onboards them again; an
// offboard dry run starts no participant run.
func TestChunkWorkflow_lifecycle(t *testing.T) {
	ps := people(2)
	t.Run("re-onboard", func(t *testing.T) {
		env := newEnv(t)
		env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
		var mu sync.Mutex
		starts := map[string]int{}
		env.OnWorkflow(ParticipantWorkflowName, mock.Anything, mock.Anything).Return(
			func(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
				mu.Lock()
				starts[in.Participant.Email]++
				n := starts[in.Participant.Email]
				mu.Unlock()
				if n == 1 {
					return ParticipantResult{}, &temporal.ChildWorkflowExecutionAlreadyStartedError{}
				}
				return ParticipantResult{Email: in.Participant.Email, ClusterID: "new"}, nil
			})
		env.OnActivity(wire.AwaitParticipantName, mock.Anything, mock.Anything).Return(
			func(_ context.Context, in wire.AwaitParticipantInput) (wire.AwaitParticipantResult, error) {
				// p00 was offboarded; p01 is provisioned.
				off := strings.HasSuffix(in.WorkflowID, "p00@example.com")
				return wire.AwaitParticipantResult{Status: StatusOK, Result: wire.Provisioned{ClusterID: "old", Offboarded: off}}, nil
			})
		env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b2", Roster: roster.Ref{Key: "k", Count: 2}, Limit: 2, Window: 2, Setup: setup})
		var got ChunkResult
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatal(err)
		}
		if got.Outcomes[0].ClusterID != "new" || got.Outcomes[0].Reused || got.Outcomes[1].ClusterID != "old" || !got.Outcomes[1].Reused {
			t.Errorf("outcomes = %+v, want p00 onboarded again, p01 reused", got.Outcomes)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		env := newEnv(t)
		env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
		env.OnActivity(wire.PlanOffboardName, mock.Anything, mock.Anything).Return(wire.PlanOffboardResult{Changes: []string{"would deactivate"}}, nil)
		env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b3", Roster: roster.Ref{Key: "k", Count: 2}, Limit: 2, Window: 1,
			Mode: wire.ModeOffboard, Offboard: wire.OffboardOptions{DryRun: true}})
		var got ChunkResult
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatal(err)
		}
		for i, o := range got.Outcomes {
			if o.Email != ps[i].Email || o.Status != StatusOK || len(o.Changes) != 1 {
				t.Errorf("outcome %d = %+v, want the plan", i, o)
			}
		}
	})
}
