package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// A participant run that never finishes (its workflow tasks fail each time,
// as for an address gRPC cannot carry in a header, or a step hangs) is
// stopped at the participant timeout and becomes that participant's failure,
// named and with a reason a person can act on; the others are not held up.
func TestChunkWorkflow_participantTimesOut(t *testing.T) {
	tests := []struct {
		name        string
		timeout     time.Duration // ChunkInput.ParticipantTimeout
		step        time.Duration // ChunkInput.StepTimeout
		wantTimeout time.Duration // the children's run timeout
		wantText    string
	}{
		{"configured", 2 * time.Hour, 30 * time.Minute, 2 * time.Hour, "did not finish within 2h"},
		// A chunk started before participant_timeout existed: 10 step timeouts.
		{"default from the step timeout", 0, 30 * time.Minute, 5 * time.Hour, "did not finish within 5h"},
		{"default from no step timeout", 0, 0, 5 * time.Hour, "did not finish within 5h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			ps := people(3)
			env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
			var timeouts []time.Duration
			env.OnWorkflow(ParticipantWorkflowName, mock.Anything, mock.Anything).Return(
				func(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
					timeouts = append(timeouts, workflow.GetInfo(ctx).WorkflowRunTimeout)
					if in.Participant.Email == ps[1].Email {
						// Stuck: runs past any bound.
						if err := workflow.Sleep(ctx, 100*time.Hour); err != nil {
							return ParticipantResult{}, err
						}
					}
					return ParticipantResult{Email: in.Participant.Email, ClusterID: "c"}, nil
				})
			env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 3}, Limit: 3, Window: 3,
				Setup: setup, StepTimeout: tt.step, ParticipantTimeout: tt.timeout})
			var got ChunkResult
			if err := env.GetWorkflowResult(&got); err != nil {
				t.Fatal(err)
			}
			for i, d := range timeouts {
				if d != tt.wantTimeout {
					t.Errorf("child %d's run timeout = %s, want %s", i, d, tt.wantTimeout)
				}
			}
			if len(got.Outcomes) != 3 {
				t.Fatalf("got %d outcomes, want 3", len(got.Outcomes))
			}
			stuck := got.Outcomes[1]
			if stuck.Email != ps[1].Email || stuck.Status != StatusFailed || stuck.Step != wire.StepWorkflow ||
				!strings.Contains(stuck.Error, tt.wantText) || !strings.Contains(stuck.Error, "its workflow tasks kept failing (see the worker log) or a step hung") {
				t.Errorf("stuck participant's outcome = %+v, want failed at step %q: %s: its workflow tasks kept failing (see the worker log) or a step hung",
					stuck, wire.StepWorkflow, tt.wantText)
			}
			for _, i := range []int{0, 2} {
				if o := got.Outcomes[i]; o.Status != StatusOK || o.Email != ps[i].Email {
					t.Errorf("outcome %d = %+v, want ok", i, o)
				}
			}
			want := Counts{Total: 3, OK: 2, Failed: 1, FailedByStep: []StepCount{{Step: wire.StepWorkflow, N: 1}}}
			if fmt.Sprint(got.Counts) != fmt.Sprint(want) {
				t.Errorf("counts = %+v, want %+v", got.Counts, want)
			}
		})
	}
}

// Waiting for a run another batch started is bounded too: when that run
// does not finish within the participant timeout, the participant fails by
// name rather than the chunk waiting for ever.
func TestChunkWorkflow_awaitTimesOut(t *testing.T) {
	env := newEnv(t)
	ps := people(2)
	env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
	env.OnWorkflow(ParticipantWorkflowName, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
			if in.Participant.Email == ps[0].Email {
				return ParticipantResult{}, &temporal.ChildWorkflowExecutionAlreadyStartedError{}
			}
			return ParticipantResult{Email: in.Participant.Email}, nil
		})
	env.OnActivity(wire.AwaitParticipantName, mock.Anything, mock.Anything).Return(
		func(context.Context, wire.AwaitParticipantInput) (wire.AwaitParticipantResult, error) {
			return wire.AwaitParticipantResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, nil)
		})
	env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b2", Roster: roster.Ref{Key: "k", Count: 2}, Limit: 2, Window: 2,
		Setup: setup, ParticipantTimeout: 90 * time.Minute})
	var got ChunkResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	o := got.Outcomes[0]
	if o.Status != StatusFailed || o.Step != wire.StepWorkflow || !strings.Contains(o.Error, "waited 90m for its run started by another batch") {
		t.Errorf("outcome = %+v, want failed at step workflow after waiting 90m", o)
	}
	if got.Outcomes[1].Status != StatusOK {
		t.Errorf("outcome 1 = %+v, want ok", got.Outcomes[1])
	}
}

// An address too long for a workflow ID would fail the chunk's every
// workflow task at Temporal (starting no one after it): it fails by name
// without a run, and the others are started.
func TestChunkWorkflow_idTooLongFailsByName(t *testing.T) {
	env := newEnv(t)
	ps := people(3)
	ps[1].Email = strings.Repeat("a", 990) + "@example.com"
	env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: ps}, nil)
	env.OnWorkflow(ParticipantWorkflowName, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
			if in.Participant.Email == ps[1].Email {
				t.Errorf("a run was started for the %d-byte address", len(ps[1].Email))
			}
			return ParticipantResult{Email: in.Participant.Email}, nil
		})
	env.ExecuteWorkflow(ChunkWorkflowName, ChunkInput{BatchID: "b3", Roster: roster.Ref{Key: "k", Count: 3}, Limit: 3, Window: 1, Setup: setup})
	var got ChunkResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if o := got.Outcomes[1]; o.Email != ps[1].Email || o.Status != StatusFailed || o.Step != wire.StepWorkflow || !strings.Contains(o.Error, "over Temporal's 1000") {
		t.Errorf("outcome = %+v, want failed by name at step workflow", o)
	}
	if got.Outcomes[0].Status != StatusOK || got.Outcomes[2].Status != StatusOK || got.Counts.Running != 0 {
		t.Errorf("outcomes = %+v, counts %+v, want the others ok and none running", got.Outcomes, got.Counts)
	}
}

// The batch hands its participant timeout to every chunk.
func TestBatchWorkflow_passesParticipantTimeout(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.SetupBatchName, mock.Anything, mock.Anything).Return(setup, nil)
	var got []time.Duration
	env.OnWorkflow(ChunkWorkflowName, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in ChunkInput) (ChunkResult, error) {
			got = append(got, in.ParticipantTimeout)
			return ChunkResult{Index: in.Index, Counts: Counts{Total: in.Limit, OK: in.Limit}}, nil
		})
	env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "b4", Roster: roster.Ref{Key: "k", Count: 5}, ChunkSize: 2, MaxInFlight: 2,
		ParallelChunks: 1, ChunksPerRun: 10, StepTimeout: time.Minute, ParticipantTimeout: 90 * time.Minute})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d chunks, want 3", len(got))
	}
	for i, d := range got {
		if d != 90*time.Minute {
			t.Errorf("chunk %d's participant timeout = %s, want 1h30m", i, d)
		}
	}
}

func TestClipError_boundsStoredBytes(t *testing.T) {
	for _, s := range []string{strings.Repeat("<", 5000), strings.Repeat("山", 5000), strings.Repeat("a\"", 5000), "short"} {
		got := ClipError(s)
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if len(b)-2 > maxErrorLen {
			t.Errorf("ClipError(%.10q...) stores %d bytes, want at most %d", s, len(b)-2, maxErrorLen)
		}
		if !utf8.ValidString(got) {
			t.Errorf("ClipError(%.10q...) split a rune", s)
		}
		if s == "short" && got != s {
			t.Errorf("ClipError(%q) = %q, want it unchanged", s, got)
		}
	}
}
