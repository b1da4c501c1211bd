package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"golang.org/x/sync/errgroup"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// prefetched is what PrefetchSurvey read for one participant before the
// batch's read of the event existed: their earlier runs, and by what those
// recorded, the grants on their schema and the permissions of their
// cluster. SurveyChunk takes a read only where the event's read shows the
// same schema or cluster; anywhere else it reads again, so a wrong guess
// costs a read, never a wrong survey.
type prefetched struct {
	Prior wire.PriorRunsResult `json:"prior"`
	// Schema is the schema (full name, lower case) whose grants Held are,
	// by principal (lower case); empty: not read.
	Schema string              `json:"schema,omitempty"`
	Held   map[string][]string `json:"held,omitempty"`
	// ClusterID is the cluster whose permissions Perms are; empty: not read.
	ClusterID string                      `json:"cluster_id,omitempty"`
	Perms     *compute.ClusterPermissions `json:"perms,omitempty"`
}

// PrefetchSurvey reads, for each participant of a chunk, what SurveyChunk
// will need that the batch's read of the event cannot give: their earlier
// runs (Temporal), and the grants on the schema and the permissions of the
// cluster those runs recorded (else the schema the roster derives). It runs
// while ReadEvent lists, and stores what it read for SurveyChunk. A read
// that fails (the schema or cluster is gone) is left to the survey, which
// decides by the event's read whether it needs one. It writes nothing.
func (a *Activities) PrefetchSurvey(ctx context.Context, in wire.PrefetchSurveyInput) (wire.PrefetchSurveyResult, error) {
	const step = wire.StepSurvey
	ctx, _, stop := withPulse(ctx)
	defer stop()
	ps, err := a.chunkOfRoster(step, in.Roster, in.Offset, in.Limit, len(in.WorkflowIDs))
	if err != nil {
		return wire.PrefetchSurveyResult{}, err
	}
	cat := strings.ToLower(cmp.Or(in.Catalog, a.Settings.Catalog))
	pre := make([]prefetched, len(ps))
	var out wire.PrefetchSurveyResult
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(surveyConcurrency)
	for i, p := range ps {
		g.Go(func() error {
			prior, err := a.PriorRuns(gctx, wire.PriorRunsInput{WorkflowID: in.WorkflowIDs[i]})
			if err != nil {
				return err
			}
			var reads int
			if pre[i], reads, err = a.prefetch(gctx, cat, p, prior); err != nil {
				return err
			}
			mu.Lock()
			out.Reads += reads
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return wire.PrefetchSurveyResult{}, classify(step, err)
	}
	b, err := json.Marshal(pre)
	if err != nil {
		return out, classify(step, err)
	}
	if out.Prefetch, err = a.Roster.PutBlob(b); err != nil {
		return out, classify(step, err)
	}
	return out, nil
}

// prefetch is PrefetchSurvey's reads for one participant, by what their
// earlier runs (prior) recorded; it returns them and how many it made.
func (a *Activities) prefetch(ctx context.Context, cat string, p roster.Participant, prior wire.PriorRunsResult) (prefetched, int, error) {
	pre := prefetched{Prior: prior}
	if prior.Offboarded {
		return pre, 0, nil // the survey leaves them alone
	}
	reads := 0
	full := strings.ToLower(cmp.Or(prior.Schema, cat+"."+p.Schema))
	if a.grantsSchema(cat, full) {
		reads++
		if held, err := a.allPrivileges(ctx, "schema", full); err == nil {
			pre.Schema, pre.Held = full, held
		} else if ctx.Err() != nil {
			return pre, reads, ctx.Err()
		}
	}
	if id := prior.ClusterID; id != "" {
		reads++
		if perms, err := a.clusterPermissions(ctx, id); err == nil {
			pre.ClusterID, pre.Perms = id, perms
		} else if ctx.Err() != nil {
			return pre, reads, ctx.Err()
		}
	}
	return pre, reads, nil
}

// grantsSchema says whether Cohort grants anything on schema full (the
// configured schema privileges are not empty).
func (a *Activities) grantsSchema(cat, full string) bool {
	for _, g := range a.desiredGrants(cat, full) {
		if g.Type == "schema" && g.Name == full {
			return true
		}
	}
	return false
}

// loadPrefetch loads what PrefetchSurvey stored under key, which must hold
// one entry per participant of the chunk (n).
func (a *Activities) loadPrefetch(step, key string, n int) ([]prefetched, error) {
	b, err := a.Roster.LoadBlob(key)
	if err != nil {
		return nil, finalNotFound(err)
	}
	var pre []prefetched
	if err := json.Unmarshal(b, &pre); err != nil {
		return nil, invalid(step, "the survey's prefetch %s: %v", key, err)
	}
	if len(pre) != n {
		return nil, invalid(step, "the survey's prefetch %s holds %d participants, the chunk %d", key, len(pre), n)
	}
	return pre, nil
}

// clusterPermissions reads a cluster's permissions (one GET), paced at the
// permissions-read rate.
func (a *Activities) clusterPermissions(ctx context.Context, id string) (*compute.ClusterPermissions, error) {
	what := "read permissions of cluster " + id
	if err := a.Limits.Wait(ctx, ClassPermissionsRead); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	perms, err := a.Workspace.Clusters.GetPermissions(ctx, compute.GetClusterPermissionsRequest{ClusterId: id})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return perms, nil
}
