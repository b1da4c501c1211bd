package activities

// What an offboard's verdicts are computed from (issue 18): the offboard
// steps and a dry run without the batch's read ask Databricks live, one
// participant at a time; a dry run with the read (ReadEvent with
// AllClusters) answers the same questions from the snapshot, and reads
// live only what no list answers (the grants on the participant's own
// schema). The verdicts themselves (planOffboard, planRevoke,
// schemaVerdict) are written once, against offboardView.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/cohort-dev/cohort/wire"
)

// offboardView answers the questions an offboard asks before it decides.
// Errors are classified at step (apierr.ErrNotFound from privileges: the
// securable or the principal is gone, and the caller treats it as done).
type offboardView interface {
	// user is the participant's account user, nil if there is none.
	user(ctx context.Context, step, email string) (*iam.User, error)
	// assigned says whether the user holds a workspace assignment.
	assigned(ctx context.Context, step, userID string) (bool, error)
	// clusters are every cluster (any policy, any state) tagged for email,
	// with their custom tags (the verdict, ownCluster, reads the mark).
	clusters(ctx context.Context, step, email string) ([]compute.ClusterDetails, error)
	// privileges are what who holds directly on one securable; its error
	// is unclassified (planRevoke classifies it, after looking for
	// apierr.ErrNotFound).
	privileges(ctx context.Context, who string, g securableGrant) ([]catalog.Privilege, error)
	// schema says whether the schema full exists and its owner mark.
	schema(ctx context.Context, step, full string) (exists bool, mark string, err error)
}

// liveView reads Databricks for each question: what the offboard steps
// read before they write.
type liveView struct{ a *Activities }

func (v liveView) user(ctx context.Context, step, email string) (*iam.User, error) {
	return v.a.lookupUser(ctx, step, email)
}

func (v liveView) assigned(ctx context.Context, step, userID string) (bool, error) {
	return v.a.assigned(ctx, step, userID)
}

func (v liveView) clusters(ctx context.Context, step, email string) ([]compute.ClusterDetails, error) {
	return v.a.taggedClusters(ctx, step, email)
}

func (v liveView) privileges(ctx context.Context, who string, g securableGrant) ([]catalog.Privilege, error) {
	return v.a.directPrivileges(ctx, who, g)
}

func (v liveView) schema(ctx context.Context, step, full string) (bool, string, error) {
	if err := v.a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return false, "", classify(step, fmt.Errorf("get schema %s: %w", full, err))
	}
	info, err := v.a.Workspace.Schemas.Get(ctx, catalog.GetSchemaRequest{FullName: full})
	switch {
	case errors.Is(err, apierr.ErrNotFound):
		return false, "", nil
	case err != nil:
		return false, "", classify(step, fmt.Errorf("get schema %s: %w", full, err))
	case info == nil:
		return true, "", nil
	}
	return true, info.Properties[wire.SchemaOwnerProperty], nil
}

// snapshotView answers from the batch's read of the event. Only a
// securable the read did not cover (the participant's own schema, a
// recorded grant on one outside the catalog) is read live, through a.
type snapshotView struct {
	a    *Activities
	snap *eventSnapshot
	// reads counts the live reads (nil: not counted).
	reads *atomic.Int64
}

// errGoneInSnapshot is what privileges says of a schema of the catalog
// that the read did not find: gone, as a live read's 404 would say.
var errGoneInSnapshot = fmt.Errorf("not in the event's read: %w", apierr.ErrNotFound)

func (v snapshotView) user(_ context.Context, step, email string) (*iam.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, invalid(step, "find user: participant has no email")
	}
	u, ok := v.snap.Users[email]
	if !ok {
		return nil, nil
	}
	return &iam.User{Id: u.ID, UserName: u.UserName, Active: u.Active}, nil
}

func (v snapshotView) assigned(_ context.Context, _, userID string) (bool, error) {
	return v.snap.Assigned[userID], nil
}

func (v snapshotView) clusters(_ context.Context, step, email string) ([]compute.ClusterDetails, error) {
	if !v.snap.AllClusters {
		return nil, invalid(step, "list clusters of %s: the event's read lists only the clusters under the policy, and an offboard removes those under any", email)
	}
	email = strings.ToLower(strings.TrimSpace(email))
	var out []compute.ClusterDetails
	for _, c := range v.snap.Clusters[email] {
		out = append(out, compute.ClusterDetails{ClusterId: c.ID, State: compute.State(c.State), StartTime: c.StartTime,
			CustomTags: map[string]string{v.a.Settings.TagKey: email, wire.ClusterOwnerTag: c.Mark}})
	}
	return out, nil
}

func (v snapshotView) privileges(ctx context.Context, who string, g securableGrant) ([]catalog.Privilege, error) {
	if held, ok := v.snap.Held[securableKey(g.Type, g.Name)]; ok {
		names := held[strings.ToLower(who)]
		out := make([]catalog.Privilege, len(names))
		for i, n := range names {
			out[i] = catalog.Privilege(n)
		}
		return out, nil
	}
	if g.Type == "schema" && strings.HasPrefix(g.Name, v.snap.Catalog+".") {
		if _, exists := v.snap.Schemas[g.Name]; !exists {
			return nil, fmt.Errorf("read grants of %s on schema %s: %w", who, g.Name, errGoneInSnapshot)
		}
	}
	if v.reads != nil {
		v.reads.Add(1)
	}
	return v.a.directPrivileges(ctx, who, g) // no list answers it
}

func (v snapshotView) schema(ctx context.Context, step, full string) (bool, string, error) {
	if !strings.HasPrefix(full, v.snap.Catalog+".") {
		return liveView{v.a}.schema(ctx, step, full) // outside the catalog the read listed
	}
	mark, exists := v.snap.Schemas[full]
	return exists, mark, nil
}

// PlanOffboardChunk is an offboard's dry run of a whole chunk against the
// batch's read (ReadEvent with AllClusters): for each participant, what
// their earlier runs recorded (Temporal), then planOffboard answered from
// the snapshot, which reads live only the grants on their own schema. It
// costs no SCIM lookup, assignments list or cluster listing per
// participant, and writes nothing. A participant whose plan fails for good
// (an error retrying would not cure) gets it in their plan; any other
// error fails the chunk's activity, which is retried.
func (a *Activities) PlanOffboardChunk(ctx context.Context, in wire.PlanOffboardChunkInput) (wire.PlanOffboardChunkResult, error) {
	const step = wire.StepPlanOffboard
	ctx, _, stop := withPulse(ctx)
	defer stop()
	allClusters := func(snap *eventSnapshot) error {
		if !snap.AllClusters {
			return invalid(step, "the event's snapshot %s lists only the clusters under the policy; an offboard's dry run needs every cluster (ReadEvent with all_clusters)", in.Snapshot)
		}
		return nil
	}
	snap, ps, err := a.chunkOfRead(step, in.Snapshot, allClusters, in.Roster, in.Offset, in.Limit, len(in.WorkflowIDs))
	if err != nil {
		return wire.PlanOffboardChunkResult{}, err
	}
	var reads atomic.Int64
	v := snapshotView{a: a, snap: snap, reads: &reads}
	out := wire.PlanOffboardChunkResult{Plans: make([]wire.PlanOffboardResult, len(ps))}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(surveyConcurrency)
	for i, p := range ps {
		g.Go(func() error {
			prior, err := a.PriorRuns(gctx, wire.PriorRunsInput{WorkflowID: in.WorkflowIDs[i]})
			if err != nil {
				return err
			}
			plan, err := a.planOffboard(gctx, v, wire.PlanOffboardInput{Participant: p, Catalog: in.Catalog, Options: in.Options,
				WorkflowID: in.WorkflowIDs[i]}, prior)
			if err != nil && !final(err) {
				return err
			}
			if err != nil {
				plan = wire.PlanOffboardResult{UserCreated: prior.UserCreated, Step: step, Error: err.Error()}
				var appErr *temporal.ApplicationError
				if errors.As(err, &appErr) {
					plan.Error = appErr.Message()
				}
			}
			out.Plans[i] = plan // each goroutine writes its own element
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return wire.PlanOffboardChunkResult{}, err
	}
	out.Reads = int(reads.Load())
	return out, nil
}

// final says whether an activity error is one Temporal does not retry.
func final(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && (appErr.NonRetryable() || slices.Contains(wire.NonRetryable, appErr.Type()))
}
