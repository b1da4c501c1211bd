package activities

// The usage read and the budget (issue 19): UsageChunk pages each
// participant's cluster event log from where their ledger was read to,
// folds the new events into the ledger (usage.Store) and says what the
// budget wants; EnforceBudget terminates an over-budget participant's
// running cluster and lowers their own permission entry to CAN_ATTACH_TO,
// or gives CAN_RESTART back. Neither touches a cluster that is not the one
// Cohort recorded for the participant and tagged for them, nor anyone
// else's permission entry.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"golang.org/x/sync/errgroup"

	"github.com/cohort-dev/cohort/usage"
	"github.com/cohort-dev/cohort/wire"
)

// usageConcurrency bounds a chunk's participants read at once: enough that
// the events class's rate, not latency, bounds the read.
const usageConcurrency = 32

// eventsPageSize is the page of clusters/events asked for (the API's maximum).
const eventsPageSize = 500

// usageEventTypes are the event types the read asks for: runs start at
// RUNNING and end at TERMINATING (the API has no TERMINATED event); CREATING
// and EDITED carry the node type.
var usageEventTypes = []compute.EventType{compute.EventTypeCreating, compute.EventTypeEdited,
	compute.EventTypeRunning, compute.EventTypeTerminating}

// UsageChunk reads the usage of a chunk's participants: for each, the
// clusters Cohort recorded (their earlier runs, or the ids the reconcile's
// survey passed) and those their ledger holds, each cluster's event log
// from where the ledger was read to, folded into the ledger. A participant
// whose read failed for good (permission denied, say) gets an Error and
// the others go on; a throttled or unavailable read fails the activity to
// be retried (the ledger makes a re-read count nothing twice).
func (a *Activities) UsageChunk(ctx context.Context, in wire.UsageChunkInput) (wire.UsageChunkResult, error) {
	const step = wire.StepUsage
	ctx, _, stop := withPulse(ctx)
	defer stop()
	ps, err := a.Roster.Load(in.Roster, in.Offset, in.Limit)
	if err != nil {
		return wire.UsageChunkResult{}, invalid(step, "load roster %s: %v", in.Roster.Key, err)
	}
	if len(in.WorkflowIDs) != len(ps) || (in.ClusterIDs != nil && len(in.ClusterIDs) != len(ps)) {
		return wire.UsageChunkResult{}, invalid(step, "%d workflow ids and %d cluster id lists for %d participants", len(in.WorkflowIDs), len(in.ClusterIDs), len(ps))
	}
	nodeType := cmp.Or(in.NodeType, a.Settings.NodeType)
	out := wire.UsageChunkResult{Usage: make([]wire.ParticipantUsage, len(ps))}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(usageConcurrency)
	for i, p := range ps {
		g.Go(func() error {
			known, err := a.knownClusters(gctx, in, i, p.Email)
			if err != nil {
				return err
			}
			u, pages, err := a.participantUsage(gctx, p.Email, known, nodeType)
			if err != nil {
				if t := errorType(err); t == wire.ErrThrottled || t == wire.ErrUnavailable || gctx.Err() != nil {
					return err
				}
				u = wire.ParticipantUsage{Email: strings.ToLower(p.Email), Error: clip(err.Error(), maxUsageError)}
			}
			if a.ObserveUsage != nil && u.Error == "" {
				a.ObserveUsage(u)
			}
			mu.Lock()
			out.Usage[i], out.Pages = u, out.Pages+pages
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return wire.UsageChunkResult{}, err
	}
	return out, nil
}

// knownClusters are the clusters to read for participant i besides those
// their ledger holds: the ones the input names (a reconcile's), else, when
// the ledger has no cluster still there, the one their earlier runs
// recorded (PriorRuns: Temporal reads, so only the first read of an event,
// or after a purge, pays them).
func (a *Activities) knownClusters(ctx context.Context, in wire.UsageChunkInput, i int, email string) ([]string, error) {
	if in.ClusterIDs != nil {
		return in.ClusterIDs[i], nil
	}
	if e, err := a.Ledger.Load(email); err == nil && len(e.ClusterIDs()) > 0 {
		return nil, nil
	}
	prior, err := a.PriorRuns(ctx, wire.PriorRunsInput{WorkflowID: in.WorkflowIDs[i]})
	if err != nil || prior.ClusterID == "" {
		return nil, err
	}
	return []string{prior.ClusterID}, nil
}

// maxUsageError bounds a participant's error in a chunk's result, so 250
// long SDK messages stay far under Temporal's payload limit.
const maxUsageError = 400

// clip cuts s to at most n bytes, at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// clusterRead is one cluster's new events.
type clusterRead struct {
	id       string
	events   []usage.Event
	nodeType string
	gone     bool
}

// participantUsage reads one participant's clusters' new events and folds
// them into their ledger.
func (a *Activities) participantUsage(ctx context.Context, email string, known []string, nodeType string) (wire.ParticipantUsage, int, error) {
	const step = wire.StepUsage
	email = strings.ToLower(strings.TrimSpace(email))
	e, err := a.Ledger.Load(email)
	if err != nil {
		return wire.ParticipantUsage{}, 0, invalid(step, "%v", err)
	}
	ids := slices.Clone(known)
	for _, id := range e.ClusterIDs() {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	pages := 0
	var reads []clusterRead
	for _, id := range ids {
		if id == "" || slices.ContainsFunc(e.Clusters, func(c usage.Cluster) bool { return c.ID == id && c.Gone }) {
			continue
		}
		since := int64(0)
		if i := slices.IndexFunc(e.Clusters, func(c usage.Cluster) bool { return c.ID == id }); i >= 0 {
			since = e.Clusters[i].LastEvent
		}
		r, n, err := a.clusterEvents(ctx, id, since)
		pages += n
		if err != nil {
			return wire.ParticipantUsage{}, pages, err
		}
		reads = append(reads, r)
	}
	now := a.now()
	e, err = a.Ledger.Update(email, func(e *usage.Entry) error {
		for _, r := range reads {
			if r.gone {
				e.MarkGone(r.id)
				continue
			}
			stops := e.BudgetStops(r.id)
			c := e.Cluster(r.id)
			c.NodeType = cmp.Or(r.nodeType, c.NodeType, nodeType)
			c.Apply(r.events, stops, e.AddDay)
		}
		e.ReadAt = now
		return nil
	})
	if err != nil {
		return wire.ParticipantUsage{}, pages, invalid(step, "%v", err)
	}
	return a.usageOf(e, known, now), pages, nil
}

// clusterEvents pages a cluster's event log after since (ms; 0: all it
// keeps), oldest first, each page paced at the events class. A cluster that
// no longer exists is gone, not an error.
func (a *Activities) clusterEvents(ctx context.Context, id string, since int64) (clusterRead, int, error) {
	const step = wire.StepUsage
	r := clusterRead{id: id}
	wrap := func(err error) error {
		return classify(step, fmt.Errorf("read the event log of cluster %s: %w", id, err))
	}
	if err := a.Limits.Wait(ctx, ClassEvents); err != nil {
		return r, 0, wrap(err)
	}
	pages := 1
	it := a.Workspace.Clusters.Events(ctx, compute.GetEvents{ClusterId: id, StartTime: since, Order: compute.GetEventsOrderAsc,
		Limit: eventsPageSize, EventTypes: usageEventTypes})
	for n := 0; it.HasNext(ctx); n++ {
		ev, err := it.Next(ctx)
		if err != nil {
			cerr := wrap(err)
			if errorType(cerr) == wire.ErrClusterGone {
				r.gone = true
				return r, pages, nil
			}
			return r, pages, cerr
		}
		r.events = append(r.events, eventOf(ev))
		if d := ev.Details; d != nil && d.Attributes != nil && d.Attributes.NodeTypeId != "" {
			r.nodeType = d.Attributes.NodeTypeId
		}
		if (n+1)%eventsPageSize == 0 {
			if err := a.Limits.Wait(ctx, ClassEvents); err != nil {
				return r, pages, wrap(err)
			}
			pages++
		}
	}
	return r, pages, nil
}

// eventOf is the part of an SDK event usage needs.
func eventOf(ev compute.ClusterEvent) usage.Event {
	e := usage.Event{ClusterID: ev.ClusterId, Time: ev.Timestamp, Type: string(ev.Type)}
	if ev.Details != nil && ev.Details.Reason != nil {
		e.Reason = string(ev.Details.Reason.Code)
	}
	return e
}

// usageOf is a participant's usage from their ledger, with the budget's
// verdict and the action it wants now.
func (a *Activities) usageOf(e usage.Entry, known []string, now time.Time) wire.ParticipantUsage {
	t := e.Totals(now)
	v := a.Settings.Budget.Judge(t.Hours(), e.GrantedHours)
	u := wire.ParticipantUsage{Email: e.Email, ClusterIDs: e.ClusterIDs(), Hours: t.Hours(), Starts: t.Starts, LastRun: t.LastRun,
		Running: t.Running, Ends: t.Ends, State: usage.State(t, v), Limit: v.Limit, Left: v.Left, Restricted: e.Restricted}
	for _, id := range known {
		if slices.Contains(u.ClusterIDs, id) {
			u.ClusterID = id
			break
		}
	}
	if u.ClusterID == "" && len(u.ClusterIDs) > 0 {
		u.ClusterID = u.ClusterIDs[len(u.ClusterIDs)-1]
	}
	unrestricted := slices.ContainsFunc(u.ClusterIDs, func(id string) bool { return !e.RestrictedCluster(id) })
	switch {
	case len(u.ClusterIDs) == 0: // nothing left to act on (purged, offboarded)
	case v.Over && (!e.Restricted || t.Running || unrestricted): // a cluster re-created since is restricted too
		u.Action = wire.BudgetRestrict
	case !v.Over && e.Restricted:
		u.Action = wire.BudgetRestore // budget raised, granted, or switched off
	}
	return u
}

// EnforceBudget does what the budget wants for one participant: restrict
// (each of their clusters that is tagged for them terminated if it runs,
// and their own permission entry lowered from CAN_RESTART to CAN_ATTACH_TO,
// so they cannot start it again) or restore (CAN_RESTART back). Every
// action is recorded in their ledger. A cluster not tagged for them is
// left alone: Cohort did not create it for them.
func (a *Activities) EnforceBudget(ctx context.Context, in wire.EnforceBudgetInput) (wire.EnforceBudgetResult, error) {
	const step = wire.StepBudget
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if email == "" || (in.Action != wire.BudgetRestrict && in.Action != wire.BudgetRestore) {
		return wire.EnforceBudgetResult{}, invalid(step, "enforce budget: participant %q, action %q: expected an address and restrict or restore", in.Email, in.Action)
	}
	principal := strings.ToLower(cmp.Or(strings.TrimSpace(in.UserName), email))
	var out wire.EnforceBudgetResult
	for _, id := range in.ClusterIDs {
		c, ok, err := a.budgetCluster(ctx, step, email, id)
		if err != nil {
			return out, err
		}
		if !ok {
			out.Changes = append(out.Changes, fmt.Sprintf("cluster %s is gone or not tagged for them: left alone", id))
			continue
		}
		var changes []string
		at := a.now()
		if in.Action == wire.BudgetRestrict {
			changes, err = a.restrict(ctx, c, principal, in.Hours, in.Limit)
		} else {
			changes, err = a.restore(ctx, c.ClusterId, principal)
		}
		if err != nil {
			return out, err
		}
		if _, err := a.Ledger.Update(email, func(e *usage.Entry) error {
			e.AddAction(usage.Action{At: at, Kind: in.Action, ClusterID: id, Detail: strings.Join(changes, "; ")})
			return nil
		}); err != nil {
			return out, invalid(step, "%v", err)
		}
		out.Changes = append(out.Changes, changes...)
	}
	return out, nil
}

// budgetCluster reads cluster id, one Cohort recorded for the participant,
// and says whether it is there and still Cohort's cluster for them
// (ownCluster).
func (a *Activities) budgetCluster(ctx context.Context, step, email, id string) (*compute.ClusterDetails, bool, error) {
	wrap := func(err error) error { return classify(step, fmt.Errorf("get cluster %s: %w", id, err)) }
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return nil, false, wrap(err)
	}
	c, err := a.Workspace.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id})
	if err != nil {
		cerr := wrap(err)
		if errorType(cerr) == wire.ErrClusterGone {
			return nil, false, nil
		}
		return nil, false, cerr
	}
	ours, _ := a.ownCluster(c.CustomTags, email, true)
	return c, a.Settings.TagKey != "" && ours, nil
}

// restrict terminates the cluster if it runs and lowers the participant's
// own entry to CAN_ATTACH_TO (a PATCH of that entry alone: everyone else's
// stays as it is). An entry of CAN_MANAGE is not Cohort's to lower.
func (a *Activities) restrict(ctx context.Context, c *compute.ClusterDetails, principal string, hours, limit float64) ([]string, error) {
	const step = wire.StepBudget
	id := c.ClusterId
	var changes []string
	if !stopped(c.State) {
		if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
			return changes, classify(step, fmt.Errorf("terminate cluster %s: %w", id, err))
		}
		if _, err := a.Workspace.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id}); err != nil {
			if cerr := classify(step, fmt.Errorf("terminate cluster %s: %w", id, err)); errorType(cerr) != wire.ErrClusterGone {
				return changes, cerr
			}
		}
		changes = append(changes, fmt.Sprintf("cluster %s terminated: %.2f of %.2f budget hours used", id, hours, limit))
	}
	levels, err := a.directLevelsOf(ctx, step, id, principal)
	if err != nil {
		return changes, err
	}
	switch {
	case slices.Contains(levels, compute.ClusterPermissionLevelCanManage):
		changes = append(changes, fmt.Sprintf("they hold CAN_MANAGE on cluster %s (not given by Cohort): left as it is, so they can still start it", id))
		return changes, nil
	case slices.Equal(levels, []compute.ClusterPermissionLevel{compute.ClusterPermissionLevelCanAttachTo}):
		return changes, nil
	}
	if err := a.setLevel(ctx, step, id, principal, compute.ClusterPermissionLevelCanAttachTo); err != nil {
		return changes, err
	}
	return append(changes, fmt.Sprintf("permission on cluster %s lowered to CAN_ATTACH_TO (over budget: starter budget grant gives more hours)", id)), nil
}

// restore gives the participant CAN_RESTART back on the cluster.
func (a *Activities) restore(ctx context.Context, id, principal string) ([]string, error) {
	const step = wire.StepBudget
	levels, err := a.directLevelsOf(ctx, step, id, principal)
	if err != nil {
		return nil, err
	}
	if slices.Contains(levels, compute.ClusterPermissionLevelCanRestart) || slices.Contains(levels, compute.ClusterPermissionLevelCanManage) {
		return nil, nil
	}
	if err := a.setLevel(ctx, step, id, principal, compute.ClusterPermissionLevelCanRestart); err != nil {
		return nil, err
	}
	return []string{fmt.Sprintf("CAN_RESTART on cluster %s given back (within budget again)", id)}, nil
}

// directLevelsOf reads the cluster's permissions and returns the levels
// the principal holds directly.
func (a *Activities) directLevelsOf(ctx context.Context, step, id, principal string) ([]compute.ClusterPermissionLevel, error) {
	what := "read permissions of cluster " + id
	if err := a.Limits.Wait(ctx, ClassPermissionsRead); err != nil {
		return nil, classify(step, fmt.Errorf("%s: %w", what, err))
	}
	perms, err := a.Workspace.Clusters.GetPermissions(ctx, compute.GetClusterPermissionsRequest{ClusterId: id})
	if err != nil {
		return nil, classify(step, fmt.Errorf("%s: %w", what, err))
	}
	return directLevels(perms, principal), nil
}

// setLevel PATCHes the principal's own entry to level and checks it reads
// back so.
func (a *Activities) setLevel(ctx context.Context, step, id, principal string, level compute.ClusterPermissionLevel) error {
	what := fmt.Sprintf("set %s for %s on cluster %s", level, principal, id)
	if err := a.Limits.Wait(ctx, ClassPermissionsWrite); err != nil {
		return classify(step, fmt.Errorf("%s: %w", what, err))
	}
	perms, err := a.Workspace.Clusters.UpdatePermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: id,
		AccessControlList: []compute.ClusterAccessControlRequest{{UserName: principal, PermissionLevel: level}}})
	if err != nil {
		return classify(step, fmt.Errorf("%s: %w", what, err))
	}
	if got := directLevels(perms, principal); !slices.Equal(got, []compute.ClusterPermissionLevel{level}) {
		// A PATCH that kept the higher level: state the whole list with PUT,
		// every other direct entry as it is.
		if perms, err = a.putLevel(ctx, step, id, principal, level, perms); err != nil {
			return err
		}
		if got := directLevels(perms, principal); !slices.Equal(got, []compute.ClusterPermissionLevel{level}) {
			return inconsistent(step, wire.ErrUnavailable, "%s: direct permissions read back as %v", what, got)
		}
	}
	return nil
}

// putLevel replaces the cluster's direct entries (PUT) with those of
// perms, the principal's set to level: inherited entries are not sent (they
// are the workspace's), everyone else's direct entry is sent unchanged.
func (a *Activities) putLevel(ctx context.Context, step, id, principal string, level compute.ClusterPermissionLevel, perms *compute.ClusterPermissions) (*compute.ClusterPermissions, error) {
	what := fmt.Sprintf("state %s for %s on cluster %s (PUT, every other entry kept)", level, principal, id)
	acl := []compute.ClusterAccessControlRequest{{UserName: principal, PermissionLevel: level}}
	if perms != nil {
		for _, e := range perms.AccessControlList {
			if strings.EqualFold(e.UserName, principal) {
				continue
			}
			for _, p := range e.AllPermissions {
				if !p.Inherited {
					acl = append(acl, compute.ClusterAccessControlRequest{UserName: e.UserName, GroupName: e.GroupName,
						ServicePrincipalName: e.ServicePrincipalName, PermissionLevel: p.PermissionLevel})
				}
			}
		}
	}
	if err := a.Limits.Wait(ctx, ClassPermissionsWrite); err != nil {
		return nil, classify(step, fmt.Errorf("%s: %w", what, err))
	}
	out, err := a.Workspace.Clusters.SetPermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: id, AccessControlList: acl})
	if err != nil {
		return nil, classify(step, fmt.Errorf("%s: %w", what, err))
	}
	return out, nil
}
