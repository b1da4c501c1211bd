package workflows

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

func people(n int) []roster.Participant {
	ps := make([]roster.Participant, n)
	for i := range ps {
		ps[i] = roster.Participant{Email: fmt.Sprintf("p%02d@example.com", i), DisplayName: fmt.Sprintf("P %d", i)}
	}
	return ps
}

var setup = wire.SetupBatchResult{Catalog: "cohort", Cluster: wire.ClusterSpec{PolicyID: "pc", SparkVersion: "15.4.x-cpu-ml-scala2.12", NodeType: "Standard_DS3_v2"}}

// One participant's failure never stops the others, the window bounds the
// participants in flight, and every participant gets an outcome in order.
func TestChunkWorkflow_partialFailureAndWindow(t *testing.T) {
	env := newEnv(t)
	ps := people(7)
	env.OnActivity(wire.LoadChunkName, mock.Anything, wire.LoadChunkInput{Roster: roster.Ref{Key: "k", Count: 7}, Offset: 0, Limit: 7}).
		Return(wire.LoadChunkResult{Participants: ps}, nil)
	inFlight, maxInFlight := 0, 0
	env.OnWorkflow(ParticipantWorkflowName, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
			inFlight++
			maxInFlight = max(maxInFlight, inFlight)
			defer func() { inFlight-- }()
			if err := workflow.Sleep(ctx, time.Minute); err != nil {
				return ParticipantResult{}, err
			}
			if in.Participant.Email == "p03@example.com" || in.Participant.Email == "p05@example.com" {
				return ParticipantResult{}, temporal.NewNonRetryableApplicationError("provision: grant: no", ParticipantFailedError, nil,
					StepFailure{Step: wire.StepGrant, Reason: "Could not find principal"})
			}
			if in.Catalog != "cohort" || in.Cluster.PolicyID != "pc" {
				return ParticipantResult{}, errors.New("batch setup not passed down")
			}
			return ParticipantResult{Email: in.Participant.Email, UserID: "u-" + in.Participant.Email, ClusterID: "c-" + in.Participant.Email}, nil
		})
	env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 7}, Limit: 7, Window: 3, Setup: setup})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var got ChunkResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if maxInFlight != 3 {
		t.Errorf("max participants in flight = %d, want the window, 3", maxInFlight)
	}
	if len(got.Outcomes) != 7 {
		t.Fatalf("got %d outcomes, want 7", len(got.Outcomes))
	}
	for i, o := range got.Outcomes {
		if o.Email != ps[i].Email || o.DisplayName != ps[i].DisplayName {
			t.Errorf("outcome %d is %s, want %s (roster order)", i, o.Email, ps[i].Email)
		}
		failed := i == 3 || i == 5
		switch {
		case failed && (o.Status != StatusFailed || o.Step != wire.StepGrant || o.Error != "Could not find principal"):
			t.Errorf("outcome %d = %+v, want failed at grant with the reason", i, o)
		case !failed && (o.Status != StatusOK || o.ClusterID != "c-"+o.Email):
			t.Errorf("outcome %d = %+v, want ok with its cluster", i, o)
		}
	}
	want := Counts{Total: 7, OK: 5, Failed: 2, FailedByStep: []StepCount{{Step: wire.StepGrant, N: 2}}}
	if fmt.Sprint(got.Counts) != fmt.Sprint(want) {
		t.Errorf("counts = %+v, want %+v", got.Counts, want)
	}
}

// chunkMock answers chunk children with counts derived from their input:
// every participant ok but one failed per chunk; chunk 1 is slow.
func chunkMock(started *[]int) any {
	return func(ctx workflow.Context, in ChunkInput) (ChunkResult, error) {
		*started = append(*started, in.Index)
		d := time.Minute
		if in.Index == 1 {
			d = 10 * time.Minute
		}
		if err := workflow.Sleep(ctx, d); err != nil {
			return ChunkResult{}, err
		}
		return ChunkResult{Index: in.Index, Counts: Counts{Total: in.Limit, OK: in.Limit - 1, Failed: 1,
			FailedByStep: []StepCount{{Step: wire.StepCreateUser, N: 1}}}}, nil
	}
}

// The batch sets up once, runs ChunksPerRun chunks (ParallelChunks at a
// time), waits for the ones still in flight, and continues as new carrying
// only counts and its position, never the roster.
func TestBatchWorkflow_continueAsNewWithChunksInFlight(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.SetupBatchName, mock.Anything, mock.Anything).Return(setup, nil).Once()
	var started []int
	env.OnWorkflow(ChunkWorkflowName, mock.Anything, mock.Anything).Return(chunkMock(&started))
	in := BatchInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 45}, ChunkSize: 10, MaxInFlight: 20,
		ParallelChunks: 2, ChunksPerRun: 3, StepTimeout: time.Hour}
	env.ExecuteWorkflow(BatchWorkflowName, in)

	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("error = %v, want continue-as-new", err)
	}
	var next BatchInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	slices.Sort(started)
	if fmt.Sprint(started) != "[0 1 2]" {
		t.Errorf("chunks started = %v, want [0 1 2]", started)
	}
	// Chunk 1 was still running when chunk 2 finished: its counts must be in
	// the carried state all the same.
	want := Counts{Total: 30, OK: 27, Failed: 3, FailedByStep: []StepCount{{Step: wire.StepCreateUser, N: 3}}}
	if next.NextChunk != 3 || fmt.Sprint(next.Done) != fmt.Sprint(want) || next.Setup == nil || *next.Setup != setup {
		t.Errorf("carried = next %d, done %+v, setup %v; want next 3, done %+v, setup %v", next.NextChunk, next.Done, next.Setup, want, setup)
	}
	if next.Roster != in.Roster || next.ChunkSize != 10 {
		t.Errorf("carried roster %+v / chunk size %d changed", next.Roster, next.ChunkSize)
	}

	// The next run finishes the last two chunks without setting up again.
	env2 := newEnv(t)
	var started2 []int
	env2.OnWorkflow(ChunkWorkflowName, mock.Anything, mock.Anything).Return(chunkMock(&started2))
	env2.ExecuteWorkflow(BatchWorkflowName, next)
	if err := env2.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BatchResult
	if err := env2.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	wantAll := Counts{Total: 45, OK: 40, Failed: 5, FailedByStep: []StepCount{{Step: wire.StepCreateUser, N: 5}}}
	slices.Sort(started2)
	if fmt.Sprint(started2) != "[3 4]" || res.Chunks != 5 || fmt.Sprint(res.Counts) != fmt.Sprint(wantAll) {
		t.Errorf("second run: started %v, result %+v; want [3 4] and %+v", started2, res, wantAll)
	}
}

// A batch whose setup fails (no Personal Compute policy, say) fails at once
// with the reason and starts no chunk.
func TestBatchWorkflow_setupFails(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.SetupBatchName, mock.Anything, mock.Anything).Return(wire.SetupBatchResult{},
		temporal.NewNonRetryableApplicationError("find cluster policy \"Personal Compute\": not found", wire.ErrNotFound, nil))
	env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 3}, ChunkSize: 10,
		MaxInFlight: 5, ParallelChunks: 1, ChunksPerRun: 1, StepTimeout: time.Hour})
	var ae *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != wire.ErrNotFound {
		t.Fatalf("error = %v, want the setup's NotFound", err)
	}
}

// A chunk that cannot load its roster still gives each of its participants
// an end (failed at load_roster), and the other chunks go on.
func TestBatchWorkflow_chunkFailureCountsItsParticipants(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.SetupBatchName, mock.Anything, mock.Anything).Return(setup, nil)
	env.OnWorkflow(ChunkWorkflowName, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in ChunkInput) (ChunkResult, error) {
			if in.Index == 0 {
				return ChunkResult{}, temporal.NewNonRetryableApplicationError("load roster: gone", wire.ErrNotFound, nil)
			}
			return ChunkResult{Counts: Counts{Total: in.Limit, OK: in.Limit}}, nil
		})
	env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 15}, ChunkSize: 10,
		MaxInFlight: 5, ParallelChunks: 2, ChunksPerRun: 5, StepTimeout: time.Hour})
	var res BatchResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := Counts{Total: 15, OK: 5, Failed: 10, FailedByStep: []StepCount{{Step: "load_roster", N: 10}}}
	if fmt.Sprint(res.Counts) != fmt.Sprint(want) {
		t.Errorf("counts = %+v, want %+v", res.Counts, want)
	}
}

// Progress is queryable while chunks run.
func TestBatchWorkflow_progressQuery(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.SetupBatchName, mock.Anything, mock.Anything).Return(setup, nil)
	var started []int
	env.OnWorkflow(ChunkWorkflowName, mock.Anything, mock.Anything).Return(chunkMock(&started))
	var mid BatchProgress
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(ProgressQuery)
		if err != nil {
			t.Error(err)
			return
		}
		if err := v.Get(&mid); err != nil {
			t.Error(err)
		}
	}, 5*time.Minute)
	env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 20}, ChunkSize: 10,
		MaxInFlight: 5, ParallelChunks: 2, ChunksPerRun: 5, StepTimeout: time.Hour})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	// At 5 minutes chunk 0 (1 minute) is done and chunk 1 (10 minutes) runs.
	if mid.Phase != "provisioning" || mid.Total != 20 || mid.Done.Total != 10 || len(mid.Active) != 1 ||
		mid.Active[0] != ChunkWorkflowID("b1", 0, 1) {
		t.Errorf("progress at 5m = %+v, want chunk 0 done and chunk 1 active", mid)
	}
}
