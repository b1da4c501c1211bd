package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/cohort-dev/cohort/wire"
	"github.com/cohort-dev/cohort/workflows"
)

// LoadChunk reads one page of a stored roster. A missing or altered roster is
// not something a retry can mend, so it fails at once. With in.Clusters (the
// batch's listing of the clusters, ReadEvent with ClustersOnly) it also says,
// per participant, the ids of the clusters tagged for them: the chunk's
// participants take their cluster candidates from there, so none of them
// lists the clusters.
func (a *Activities) LoadChunk(ctx context.Context, in wire.LoadChunkInput) (wire.LoadChunkResult, error) {
	ps, err := a.Roster.Load(in.Roster, in.Offset, in.Limit)
	if err != nil {
		return wire.LoadChunkResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("load roster %s [%d:+%d]: %v", in.Roster.Key, in.Offset, in.Limit, err), wire.ErrNotFound, err)
	}
	out := wire.LoadChunkResult{Participants: ps}
	if in.Clusters == "" {
		return out, nil
	}
	snap, err := a.loadSnapshot(wire.StepLoadChunk, in.Clusters)
	if err != nil {
		return wire.LoadChunkResult{}, err
	}
	out.Tagged = make([][]string, len(ps))
	for i, p := range ps {
		for _, c := range snap.Clusters[strings.ToLower(strings.TrimSpace(p.Email))] {
			out.Tagged[i] = append(out.Tagged[i], c.ID)
		}
	}
	return out, nil
}

// AwaitParticipant returns the outcome of a participant workflow that was
// started before: at once when it has closed, else when it does, heartbeating
// meanwhile so a worker crash hands the wait to another worker (the pulse
// sends nothing for a wait that ends within seconds).
func (a *Activities) AwaitParticipant(ctx context.Context, in wire.AwaitParticipantInput) (wire.AwaitParticipantResult, error) {
	ctx, _, stop := withPulse(ctx)
	defer stop()
	var result wire.Provisioned
	err := a.Temporal.GetWorkflow(ctx, in.WorkflowID, "").Get(ctx, &result)
	if err == nil {
		return wire.AwaitParticipantResult{Status: workflows.StatusOK, Result: result}, nil
	}
	if ctx.Err() != nil {
		return wire.AwaitParticipantResult{}, ctx.Err()
	}
	out := wire.AwaitParticipantResult{Status: workflows.StatusFailed, Step: "unknown", Error: err.Error()}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		out.Error = appErr.Message()
		var sf wire.StepFailure
		if appErr.HasDetails() && appErr.Details(&sf) == nil && sf.Step != "" {
			out.Step, out.Error = sf.Step, sf.Reason
		}
	}
	return out, nil
}
