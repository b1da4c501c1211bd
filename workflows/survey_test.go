package workflows

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

func newSurveyEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	env := newEnv(t)
	env.RegisterActivityWithOptions(stub[wire.SurveyChunkInput, wire.SurveyChunkResult], activity.RegisterOptions{Name: wire.SurveyChunkName})
	env.RegisterActivityWithOptions(stub[wire.PrefetchSurveyInput, wire.PrefetchSurveyResult], activity.RegisterOptions{Name: wire.PrefetchSurveyName})
	return env
}

// surveysOf5 is a chunk of five: unchanged, drifted (permission), offboarded,
// drifted (cluster gone), extra clusters only.
func surveysOf5() []wire.Survey {
	drift := func(kinds ...string) wire.Survey {
		s := wire.Survey{UserID: "u", Schema: "cohort.s", ClusterID: "c"}
		for _, k := range kinds {
			s.Add(k, k+" found")
		}
		return s
	}
	extra := drift()
	extra.ExtraClusters = []string{"c2"}
	extra.Add(wire.DriftExtraClusters, wire.ExtraClustersNote(extra.ExtraClusters))
	return []wire.Survey{drift(), drift(wire.DriftPermissionMissing), {Offboarded: true}, drift(wire.DriftClusterGone), extra}
}

// A reconcile chunk with the batch's read surveys its participants and runs
// only those whose drift a write repairs, each with its survey; the others
// end without a run: unchanged, left alone, or (extra clusters) reported.
func TestChunkWorkflow_reconcileRunsOnlyDrifted(t *testing.T) {
	for _, dry := range []bool{false, true} {
		t.Run(map[bool]string{false: "repair", true: "dry run"}[dry], func(t *testing.T) {
			env := newSurveyEnv(t)
			ps := people(5)
			env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
			var surveyIn wire.SurveyChunkInput
			env.OnActivity(wire.SurveyChunkName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in wire.SurveyChunkInput) (wire.SurveyChunkResult, error) {
					surveyIn = in
					return wire.SurveyChunkResult{Surveys: surveysOf5()}, nil
				})
			env.OnActivity(wire.UsageChunkName, mock.Anything, mock.Anything).Return(
				wire.UsageChunkResult{Usage: make([]wire.ParticipantUsage, 5)}, nil).Maybe()
			var mu sync.Mutex
			ran := map[string][]string{}
			env.OnWorkflow(ParticipantWorkflowName, mock.Anything, mock.Anything).Return(
				func(_ workflow.Context, in ParticipantInput) (ParticipantResult, error) {
					mu.Lock()
					defer mu.Unlock()
					if in.Survey == nil {
						ran[in.Participant.Email] = nil
					} else {
						ran[in.Participant.Email] = in.Survey.Drift
					}
					return ParticipantResult{Email: in.Participant.Email, Mode: wire.ModeReconcile, Drift: in.Survey.Drift}, nil
				}).Maybe()
			env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 5}, Limit: 5, Window: 2,
				Setup: setup, Mode: wire.ModeReconcile, Snapshot: "snap", DryRun: dry})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			var got ChunkResult
			if err := env.GetWorkflowResult(&got); err != nil {
				t.Fatal(err)
			}
			if surveyIn.Snapshot != "snap" || surveyIn.Catalog != "cohort" || len(surveyIn.WorkflowIDs) != 5 ||
				surveyIn.WorkflowIDs[1] != ParticipantWorkflowID(ps[1].Email) {
				t.Errorf("survey input = %+v, want the snapshot, the catalog and the five workflow ids", surveyIn)
			}
			want := map[string][]string{ps[1].Email: {wire.DriftPermissionMissing}, ps[3].Email: {wire.DriftClusterGone}}
			if dry {
				want = map[string][]string{}
			}
			if !reflect.DeepEqual(ran, want) {
				t.Errorf("participant runs = %v, want %v", ran, want)
			}
			c := got.Counts
			if c.Total != 5 || c.OK != 5 || c.Unchanged != 1 || c.Drifted != 3 || c.Running != 0 {
				t.Errorf("counts = %+v, want 5 ok, 1 unchanged, 3 drifted", c)
			}
			if !got.Outcomes[0].Unchanged || got.Outcomes[0].ClusterID != "c" || got.Outcomes[0].Email != ps[0].Email {
				t.Errorf("unchanged outcome = %+v, want unchanged with what the survey found", got.Outcomes[0])
			}
			if !got.Outcomes[2].Offboarded || got.Outcomes[2].Unchanged {
				t.Errorf("offboarded outcome = %+v, want left alone", got.Outcomes[2])
			}
			if o := got.Outcomes[4]; o.Unchanged || !slices.Contains(o.Changes, wire.ExtraClustersNote([]string{"c2"})) {
				t.Errorf("extra clusters outcome = %+v, want the clusters reported, no run", o)
			}
			if dry {
				if o := got.Outcomes[1]; !reflect.DeepEqual(o.Changes, []string{"would repair: permission_missing found"}) {
					t.Errorf("dry-run outcome changes = %q, want the drift as would-repair", o.Changes)
				}
			}
		})
	}
}

// A survey that fails fails the chunk's participants by name at step survey;
// none is run.
func TestChunkWorkflow_surveyFailsByName(t *testing.T) {
	env := newSurveyEnv(t)
	ps := people(3)
	env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
	env.OnActivity(wire.SurveyChunkName, mock.Anything, mock.Anything).Return(wire.SurveyChunkResult{},
		appErr(wire.ErrNotFound, wire.StepSurvey, true))
	env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 3}, Limit: 3, Window: 2,
		Setup: setup, Mode: wire.ModeReconcile, Snapshot: "snap"})
	var got ChunkResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.Counts.Failed != 3 || got.Counts.Running != 0 {
		t.Errorf("counts = %+v, want all 3 failed", got.Counts)
	}
	for i, o := range got.Outcomes {
		if o.Email != ps[i].Email || o.Step != wire.StepSurvey || o.Error != "databricks said no" {
			t.Errorf("outcome %d = %+v, want %s failed at survey with the reason", i, o, ps[i].Email)
		}
	}
}

// A repair runs only the steps its drift needs, and what they depend on:
// a missing permission is one SetPermission; a missing grant one Grant; a
// purged cluster a create, a permission and a stop. The result carries
// the record forward.
func TestParticipantWorkflow_repairRunsOnlyDriftedSteps(t *testing.T) {
	prior := wire.PriorRunsResult{Runs: 1, CreatedUserID: taroUserID, UserCreated: true, Schema: "cohort.taro_1a2b3c4d",
		ClusterID: taroClusterID, GrantsRecorded: true,
		Grants: []wire.SecurableGrant{{Type: "catalog", Name: "cohort", Privileges: []string{"USE_CATALOG"}}}}
	for _, tt := range []struct {
		kind string
		want []string
	}{
		{wire.DriftPermissionMissing, []string{wire.SetPermissionName}},
		{wire.DriftGrantMissing, []string{wire.GrantName}},
		{wire.DriftNotAssigned, []string{wire.AssignWorkspaceName}},
		{wire.DriftSchemaMissing, []string{wire.CreateSchemaName, wire.GrantName}},
		{wire.DriftClusterGone, []string{wire.CreateClusterName, wire.SetPermissionName, wire.StopClusterName}},
		{wire.DriftUserInactive, []string{wire.CreateUserName}},
		{wire.DriftUserMissing, []string{wire.CreateUserName, wire.AssignWorkspaceName, wire.GrantName, wire.SetPermissionName}},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			env := newEnv(t)
			var mu sync.Mutex
			var called []string
			var clusterIn wire.CreateClusterInput
			record := func(name string) { mu.Lock(); called = append(called, name); mu.Unlock() }
			results := map[string]any{
				wire.CreateUserName: func(context.Context, wire.CreateUserInput) (wire.CreateUserResult, error) {
					record(wire.CreateUserName)
					if tt.kind == wire.DriftUserMissing {
						return wire.CreateUserResult{UserID: "new-user", Created: true}, nil
					}
					return wire.CreateUserResult{UserID: taroUserID, Reactivated: true}, nil
				},
				wire.AssignWorkspaceName: func(context.Context, wire.AssignWorkspaceInput) (wire.AssignWorkspaceResult, error) {
					record(wire.AssignWorkspaceName)
					return wire.AssignWorkspaceResult{}, nil
				},
				wire.CreateSchemaName: func(context.Context, wire.CreateSchemaInput) (wire.CreateSchemaResult, error) {
					record(wire.CreateSchemaName)
					return wire.CreateSchemaResult{FullName: "cohort.taro_1a2b3c4d", Created: true}, nil
				},
				wire.GrantName: func(context.Context, wire.GrantInput) (wire.GrantResult, error) {
					record(wire.GrantName)
					return wire.GrantResult{Recorded: true, Added: []wire.SecurableGrant{{Type: "schema", Name: "cohort.taro_1a2b3c4d", Privileges: []string{"USE_SCHEMA"}}}}, nil
				},
				wire.CreateClusterName: func(_ context.Context, in wire.CreateClusterInput) (wire.CreateClusterResult, error) {
					record(wire.CreateClusterName)
					clusterIn = in
					return wire.CreateClusterResult{ClusterID: "new-cluster", URL: "https://adb/new", Created: true}, nil
				},
				wire.SetPermissionName: func(context.Context, wire.SetPermissionInput) (wire.SetPermissionResult, error) {
					record(wire.SetPermissionName)
					return wire.SetPermissionResult{}, nil
				},
				wire.StopClusterName: func(context.Context, wire.StopClusterInput) (wire.StopClusterResult, error) {
					record(wire.StopClusterName)
					return wire.StopClusterResult{}, nil
				},
			}
			mockSteps(env, 0, results)
			sv := wire.Survey{UserID: taroUserID, UserName: taro.Email, Schema: "cohort.taro_1a2b3c4d", ClusterID: taroClusterID,
				ClusterURL: taroURL, Prior: prior}
			switch tt.kind {
			case wire.DriftUserMissing:
				sv.UserID, sv.UserName = "", ""
			case wire.DriftSchemaMissing:
				sv.Schema = ""
			case wire.DriftClusterGone:
				sv.ClusterID, sv.ClusterURL = "", ""
			}
			sv.Add(tt.kind, "found")
			env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort",
				Cluster: wire.ClusterSpec{PolicyID: "pc"}, Mode: wire.ModeReconcile, Survey: &sv})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			var got ParticipantResult
			if err := env.GetWorkflowResult(&got); err != nil {
				t.Fatal(err)
			}
			env.AssertActivityNotCalled(t, wire.PriorRunsName, mock.Anything, mock.Anything)
			slices.Sort(called)
			want := slices.Sorted(slices.Values(tt.want))
			if !reflect.DeepEqual(called, want) {
				t.Errorf("activities run = %v, want only %v", called, want)
			}
			if got.Mode != wire.ModeReconcile || !reflect.DeepEqual(got.Drift, []string{tt.kind}) || len(got.Changes) == 0 {
				t.Errorf("result = %+v, want mode reconcile, drift %s, the repair listed", got, tt.kind)
			}
			if tt.kind == wire.DriftClusterGone && (clusterIn.Lookup || clusterIn.KnownClusterID != "") {
				t.Errorf("cluster create input = %+v, want no lookup (the survey's listing found none)", clusterIn)
			}
			switch tt.kind {
			case wire.DriftUserMissing:
				if got.CreatedUserID != "new-user" || !got.UserCreated {
					t.Errorf("result = %+v, want the new user recorded as Cohort's", got)
				}
			default:
				if got.CreatedUserID != taroUserID || !got.UserCreated || got.ClusterID == "" || got.Schema == "" || !got.GrantsRecorded ||
					!slices.ContainsFunc(got.Grants, func(g wire.SecurableGrant) bool { return g.Type == "catalog" }) {
					t.Errorf("result = %+v, want the record carried forward", got)
				}
			}
		})
	}
}

// A reconcile batch reads the event once, alongside its setup, and hands
// every chunk the snapshot; a dry run is handed down too.
func TestBatchWorkflow_reconcileReadsOnce(t *testing.T) {
	env := newSurveyEnv(t)
	env.OnActivity(wire.SetupBatchName, mock.Anything, mock.Anything).Return(setup, nil)
	var reads int
	env.OnActivity(wire.ReadEventName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.ReadEventInput) (wire.ReadEventResult, error) {
			reads++
			if in.Catalog != "" || in.PolicyID != "" {
				t.Errorf("read input = %+v, want none of setup's results: it runs alongside setup", in)
			}
			return wire.ReadEventResult{Snapshot: "snap"}, nil
		})
	var mu sync.Mutex
	var chunks []ChunkInput
	env.OnWorkflow(ChunkWorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in ChunkInput) (ChunkResult, error) {
			mu.Lock()
			chunks = append(chunks, in)
			mu.Unlock()
			return ChunkResult{Index: in.Index, Counts: Counts{Total: in.Limit, OK: in.Limit, Unchanged: in.Limit}}, nil
		})
	env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "reconcile-x", Roster: roster.Ref{Key: "k", Count: 5}, ChunkSize: 2,
		MaxInFlight: 4, ParallelChunks: 2, ChunksPerRun: 10, StepTimeout: 3600e9, Mode: wire.ModeReconcile, DryRun: true})
	var got BatchResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if reads != 1 || len(chunks) != 3 {
		t.Fatalf("reads = %d, chunks = %d; want 1 read for 3 chunks", reads, len(chunks))
	}
	// The first ParallelChunks start with the read and await it by signal;
	// those after it carry it.
	for _, c := range chunks {
		early := c.Index < 2
		if !c.DryRun || c.AwaitRead != early || (c.Snapshot == "snap") == early || (c.Setup.Catalog == "cohort") == early {
			t.Errorf("chunk %d input: await %v, snapshot %q, setup %+v, dry run %v; want early chunks awaiting the read and later ones carrying it and the setup",
				c.Index, c.AwaitRead, c.Snapshot, c.Setup, c.DryRun)
		}
	}
	if got.Counts.Unchanged != 5 {
		t.Errorf("batch counts = %+v, want 5 unchanged", got.Counts)
	}
}

// A reconcile's first chunks prefetch their participants' reads while the
// batch reads the event (which takes a while here), then survey against
// the read and the setup the batch signals them, with their prefetch; a
// chunk started after the read surveys without one. Nobody unchanged runs.
func TestBatchWorkflow_reconcileChunksPrefetchWhileReading(t *testing.T) {
	env := newSurveyEnv(t)
	env.OnActivity(wire.SetupBatchName, mock.Anything, mock.Anything).Return(setup, nil)
	var mu sync.Mutex
	var log []string
	note := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
	env.OnActivity(wire.ReadEventName, mock.Anything, mock.Anything).After(time.Minute).Return(
		func(_ context.Context, in wire.ReadEventInput) (wire.ReadEventResult, error) {
			note("read")
			return wire.ReadEventResult{Snapshot: "snap"}, nil
		})
	env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.LoadChunkInput) (wire.LoadChunkResult, error) {
			return wire.LoadChunkResult{Participants: people(5)[in.Offset : in.Offset+in.Limit]}, nil
		})
	env.OnActivity(wire.PrefetchSurveyName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.PrefetchSurveyInput) (wire.PrefetchSurveyResult, error) {
			note(fmt.Sprintf("prefetch %d", in.Offset))
			if len(in.WorkflowIDs) != in.Limit {
				t.Errorf("prefetch of %d participants got %d workflow ids", in.Limit, len(in.WorkflowIDs))
			}
			return wire.PrefetchSurveyResult{Prefetch: fmt.Sprintf("pre-%d", in.Offset)}, nil
		})
	var surveyed []wire.SurveyChunkInput
	env.OnActivity(wire.SurveyChunkName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.SurveyChunkInput) (wire.SurveyChunkResult, error) {
			mu.Lock()
			surveyed = append(surveyed, in)
			mu.Unlock()
			return wire.SurveyChunkResult{Surveys: make([]wire.Survey, in.Limit)}, nil
		})
	env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "reconcile-x", Roster: roster.Ref{Key: "k", Count: 5}, ChunkSize: 2,
		MaxInFlight: 4, ParallelChunks: 2, ChunksPerRun: 10, StepTimeout: 3600e9, Mode: wire.ModeReconcile})
	var got BatchResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.Counts.Unchanged != 5 || got.Counts.OK != 5 {
		t.Errorf("batch counts = %+v; want 5 unchanged (no participant run)", got.Counts)
	}
	if i := slices.Index(log, "read"); i != 2 || !slices.Contains(log[:i], "prefetch 0") || !slices.Contains(log[:i], "prefetch 2") {
		t.Errorf("order = %v, want both early chunks' prefetches before the read ends, and no other prefetch", log)
	}
	if len(surveyed) != 3 {
		t.Fatalf("%d chunk surveys, want 3", len(surveyed))
	}
	for _, in := range surveyed {
		wantPre := map[int]string{0: "pre-0", 2: "pre-2", 4: ""}[in.Offset]
		if in.Snapshot != "snap" || in.Catalog != setup.Catalog || in.Prefetch != wantPre {
			t.Errorf("survey of chunk at %d: snapshot %q, catalog %q, prefetch %q; want the read, the setup's catalog and %q",
				in.Offset, in.Snapshot, in.Catalog, in.Prefetch, wantPre)
		}
	}
}

// An offboard's dry run reads the event once, with every cluster of the
// workspace and no setup, hands every chunk the snapshot, and each chunk
// plans its participants against it with one activity: no PlanOffboard
// per participant, no participant run.
func TestBatchWorkflow_offboardDryRunReadsOnce(t *testing.T) {
	env := newSurveyEnv(t)
	env.RegisterActivityWithOptions(stub[wire.PlanOffboardChunkInput, wire.PlanOffboardChunkResult],
		activity.RegisterOptions{Name: wire.PlanOffboardChunkName})
	var reads int
	env.OnActivity(wire.ReadEventName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.ReadEventInput) (wire.ReadEventResult, error) {
			reads++
			if !in.AllClusters || in.PolicyID != "" {
				t.Errorf("read input = %+v, want every cluster of the workspace, under any policy", in)
			}
			return wire.ReadEventResult{Snapshot: "snap"}, nil
		})
	ps := people(5)
	env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.LoadChunkInput) (wire.LoadChunkResult, error) {
			return wire.LoadChunkResult{Participants: ps[in.Offset : in.Offset+in.Limit]}, nil
		})
	var mu sync.Mutex
	var planned []wire.PlanOffboardChunkInput
	env.OnActivity(wire.PlanOffboardChunkName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.PlanOffboardChunkInput) (wire.PlanOffboardChunkResult, error) {
			mu.Lock()
			planned = append(planned, in)
			mu.Unlock()
			r := wire.PlanOffboardChunkResult{Plans: make([]wire.PlanOffboardResult, in.Limit)}
			for i := range r.Plans {
				r.Plans[i] = wire.PlanOffboardResult{UserID: "u", Changes: []string{"would deactivate the account user u"}}
			}
			if in.Offset == 4 { // the last one cannot be planned
				r.Plans[0] = wire.PlanOffboardResult{Step: wire.StepPlanOffboard, Error: "find user: participant has no email"}
			}
			return r, nil
		})
	env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "offboard-x", Roster: roster.Ref{Key: "k", Count: 5}, ChunkSize: 2,
		MaxInFlight: 4, ParallelChunks: 2, ChunksPerRun: 10, StepTimeout: 3600e9, Mode: wire.ModeOffboard,
		Offboard: wire.OffboardOptions{DryRun: true, DropSchemas: true}})
	var got BatchResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if reads != 1 || len(planned) != 3 {
		t.Fatalf("reads = %d, chunk plans = %d; want 1 read for 3 chunks", reads, len(planned))
	}
	for _, in := range planned {
		if in.Snapshot != "snap" || !in.Options.DropSchemas || len(in.WorkflowIDs) != in.Limit ||
			in.WorkflowIDs[0] != ParticipantWorkflowID(ps[in.Offset].Email) {
			t.Errorf("chunk plan input = %+v, want the read's snapshot, the options and the chunk's workflow ids", in)
		}
	}
	if c := got.Counts; c.Total != 5 || c.OK != 4 || c.Failed != 1 {
		t.Errorf("batch counts = %+v, want 4 planned and 1 failed", c)
	}
}

// A chunk of an offboard's dry run with the batch's read ends each
// participant with their plan from PlanOffboardChunk, in roster order; a
// chunk without one (a batch started before the read) plans each with
// PlanOffboard, as it did.
func TestChunkWorkflow_offboardDryRunPlansAgainstTheRead(t *testing.T) {
	env := newSurveyEnv(t)
	env.RegisterActivityWithOptions(stub[wire.PlanOffboardChunkInput, wire.PlanOffboardChunkResult],
		activity.RegisterOptions{Name: wire.PlanOffboardChunkName})
	ps := people(3)
	env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
	env.OnActivity(wire.PlanOffboardChunkName, mock.Anything, mock.Anything).Return(wire.PlanOffboardChunkResult{Plans: []wire.PlanOffboardResult{
		{UserID: "1", Changes: []string{"would remove the workspace assignment"}},
		{UserID: "2", UserCreated: true, Changes: []string{"would deactivate the account user 2"}},
		{Step: wire.StepPlanOffboard, Error: "no email"},
	}}, nil).Once()
	env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 3}, Limit: 3, Window: 1,
		Mode: wire.ModeOffboard, Offboard: wire.OffboardOptions{DryRun: true}, Snapshot: "snap"})
	var got ChunkResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if o := got.Outcomes[1]; o.Email != ps[1].Email || o.Status != StatusOK || o.UserID != "2" || !o.UserCreated ||
		!slices.Equal(o.Changes, []string{"would deactivate the account user 2"}) || o.Mode != wire.ModeOffboard {
		t.Errorf("outcome 1 = %+v, want its plan", o)
	}
	if o := got.Outcomes[2]; o.Email != ps[2].Email || o.Status != StatusFailed || o.Step != wire.StepPlanOffboard || o.Error != "no email" {
		t.Errorf("outcome 2 = %+v, want failed at plan_offboard with the reason", o)
	}
	if c := got.Counts; c.Total != 3 || c.OK != 2 || c.Failed != 1 || c.Running != 0 {
		t.Errorf("counts = %+v, want 2 ok, 1 failed", c)
	}
}

// A chunk plan that fails (after its retries) fails the chunk's
// participants by name at step plan_offboard.
func TestChunkWorkflow_offboardPlanFailsByName(t *testing.T) {
	env := newSurveyEnv(t)
	env.RegisterActivityWithOptions(stub[wire.PlanOffboardChunkInput, wire.PlanOffboardChunkResult],
		activity.RegisterOptions{Name: wire.PlanOffboardChunkName})
	ps := people(2)
	env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
	env.OnActivity(wire.PlanOffboardChunkName, mock.Anything, mock.Anything).Return(wire.PlanOffboardChunkResult{},
		appErr(wire.ErrNotFound, wire.StepPlanOffboard, true))
	env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 2}, Limit: 2, Window: 1,
		Mode: wire.ModeOffboard, Offboard: wire.OffboardOptions{DryRun: true}, Snapshot: "snap"})
	var got ChunkResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	for i, o := range got.Outcomes {
		if o.Email != ps[i].Email || o.Status != StatusFailed || o.Step != wire.StepPlanOffboard || !strings.Contains(o.Error, "databricks said no") {
			t.Errorf("outcome %d = %+v, want failed by name at plan_offboard", i, o)
		}
	}
	if got.Counts.Failed != 2 {
		t.Errorf("counts = %+v, want 2 failed", got.Counts)
	}
}

// An offboard's dry run started before the read (its history has no marker
// of change offboardReadOnce) reads nothing in bulk and plans each
// participant with PlanOffboard, as it did.
func TestBatchWorkflow_offboardDryRunBeforeTheRead(t *testing.T) {
	env := newSurveyEnv(t)
	env.OnGetVersion(offboardReadOnce, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.OnActivity(wire.ReadEventName, mock.Anything, mock.Anything).Return(
		func(context.Context, wire.ReadEventInput) (wire.ReadEventResult, error) {
			t.Error("ReadEvent ran in a dry run started before the read")
			return wire.ReadEventResult{Snapshot: "snap"}, nil
		}).Maybe()
	ps := people(3)
	env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.LoadChunkInput) (wire.LoadChunkResult, error) {
			return wire.LoadChunkResult{Participants: ps[in.Offset : in.Offset+in.Limit]}, nil
		})
	env.OnActivity(wire.PlanOffboardName, mock.Anything, mock.Anything).Return(
		wire.PlanOffboardResult{Changes: []string{"would deactivate"}}, nil).Times(3)
	env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "offboard-old", Roster: roster.Ref{Key: "k", Count: 3}, ChunkSize: 2,
		MaxInFlight: 4, ParallelChunks: 2, ChunksPerRun: 10, StepTimeout: 3600e9, Mode: wire.ModeOffboard,
		Offboard: wire.OffboardOptions{DryRun: true}})
	var got BatchResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.Counts.OK != 3 {
		t.Errorf("batch counts = %+v, want 3 planned", got.Counts)
	}
}

// An unchanged participant's outcome says whose user it is as a run would:
// by the id Cohort created, else (results of earlier versions) by the
// earlier runs' user_created.
func TestSurveyedOutcome_userOwnership(t *testing.T) {
	for _, tt := range []struct {
		name  string
		prior wire.PriorRunsResult
		want  bool
	}{
		{"created, same id", wire.PriorRunsResult{CreatedUserID: "u"}, true},
		{"re-created by someone else", wire.PriorRunsResult{CreatedUserID: "other", UserCreated: true}, false},
		{"earlier version, no id", wire.PriorRunsResult{UserCreated: true}, true},
		{"staff", wire.PriorRunsResult{}, false},
	} {
		o, done := surveyedOutcome(wire.Survey{UserID: "u", Prior: tt.prior}, false)
		if !done || !o.Unchanged || o.UserCreated != tt.want {
			t.Errorf("%s: outcome %+v, want unchanged with user_created %v", tt.name, o, tt.want)
		}
	}
}
