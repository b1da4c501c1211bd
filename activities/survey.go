package activities

// The reconcile's read (issue 18): ReadEvent lists the event's state once
// per batch, in pages, and stores it; SurveyChunk compares each participant
// of a chunk with it. Together they cost, per participant, one grants read
// (their schema's: no list answers it) and one permissions read (their
// cluster's), plus the pages of the lists, and write nothing.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// surveyConcurrency bounds a chunk's participants in flight: a participant
// costs two Temporal reads and two Databricks reads one after the other
// (~0.7 s at Azure latencies), so 32 keep the scarcest class (Unity
// Catalog, 25/s) at its rate from one chunk alone; the limiter paces them.
const surveyConcurrency = 32

// eventSnapshot is what ReadEvent stores: the event's state from the list
// calls, keyed for SurveyChunk's lookups.
type eventSnapshot struct {
	Catalog string `json:"catalog"`
	// Users by lower-cased userName and e-mail address.
	Users map[string]snapUser `json:"users"`
	// Assigned are the ids of the principals holding a workspace assignment.
	Assigned map[string]bool `json:"assigned"`
	// Schemas of the catalog by full name (lower case): their owner mark.
	Schemas map[string]string `json:"schemas"`
	// Held is, per securable ("catalog:name", "schema:name") read whole (the
	// catalog and the shared grants), what each principal (lower case)
	// holds on it directly.
	Held map[string]map[string][]string `json:"held"`
	// Clusters under the policy (every cluster of the workspace when
	// AllClusters), by the participant tag's value (lower case).
	Clusters map[string][]snapCluster `json:"clusters"`
	// AllClusters says Clusters lists every cluster, under any policy: what
	// an offboard's dry run needs (an offboard removes them all).
	AllClusters bool `json:"all_clusters,omitempty"`
	// ClustersOnly says the read listed the clusters and nothing else (the
	// once-per-batch listing of a provisioning batch or an offboard): the
	// users, assignments, schemas and grants are not in it.
	ClustersOnly bool `json:"clusters_only,omitempty"`
}

type snapUser struct {
	ID       string `json:"id"`
	UserName string `json:"user_name"`
	Active   bool   `json:"active"`
}

type snapCluster struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	StartTime int64  `json:"start_time"`
	// Mark is the cluster's wire.ClusterOwnerTag ("": unmarked).
	Mark string `json:"mark,omitempty"`
}

func securableKey(typ, name string) string { return strings.ToLower(typ) + ":" + strings.ToLower(name) }

// ReadEvent is the reconcile's bulk read: the account's users (SCIM list,
// pages of 1,000), the workspace's assignments, the catalog's schemas, the
// catalog's and the shared securables' grants, and the clusters under the
// policy (pages of 100; with AllClusters, for an offboard's dry run, every
// cluster of the workspace), each paced at its class. With ClustersOnly it
// lists the clusters alone: the once-per-batch listing from which a
// provisioning batch's and an offboard's participants take their cluster
// candidates (LoadChunk). It stores the snapshot in
// the roster store (it is far over Temporal's payload limit at 10,000
// participants) and returns its key. It writes nothing to Databricks.
func (a *Activities) ReadEvent(ctx context.Context, in wire.ReadEventInput) (wire.ReadEventResult, error) {
	const step = wire.StepReadEvent
	ctx, _, stop := withPulse(ctx)
	defer stop()
	cat := strings.ToLower(cmp.Or(in.Catalog, a.Settings.Catalog))
	snap := eventSnapshot{Catalog: cat, Users: map[string]snapUser{}, Assigned: map[string]bool{},
		Schemas: map[string]string{}, Held: map[string]map[string][]string{}, Clusters: map[string][]snapCluster{}, AllClusters: in.AllClusters,
		ClustersOnly: in.ClustersOnly}
	var out wire.ReadEventResult

	// The lists are independent, each paced at its own class: they run
	// together, and each fills its own part of the snapshot.
	g, gctx := errgroup.WithContext(ctx)
	var schemaPages, clusterPages, policyReads int
	var shared []securableGrant
	var held []map[string][]string
	if !in.ClustersOnly {
		shared, held = a.readAccess(gctx, g, cat, &snap, &out, &schemaPages)
	}
	g.Go(func() error {
		policyID := in.PolicyID
		if policyID == "" && !in.AllClusters { // read while the batch's setup runs: resolve it here
			p, err := a.findPolicy(gctx)
			if err != nil {
				return err
			}
			policyReads, policyID = 1, p.PolicyId
		}
		var err error
		clusterPages, out.Clusters, err = a.readClusters(gctx, policyID, &snap)
		return err
	})
	if err := g.Wait(); err != nil {
		return out, err
	}
	for i, sg := range shared {
		snap.Held[securableKey(sg.Type, sg.Name)] = held[i]
	}
	out.Assigned, out.Schemas = len(snap.Assigned), len(snap.Schemas)
	out.Reads = policyReads + clusterPages
	if !in.ClustersOnly {
		out.Reads += out.Users/scimPageSize + 1 + 1 + schemaPages + len(shared)
	}

	b, err := json.Marshal(snap)
	if err != nil {
		return out, classify(step, fmt.Errorf("encode the event's snapshot: %w", err))
	}
	if out.Snapshot, err = a.Roster.PutBlob(b); err != nil {
		return out, classify(step, err)
	}
	return out, nil
}

// readAccess starts, in g, the reads of everything but the clusters: the
// account's users, the workspace's assignments, the catalog's schemas and
// the grants on the catalog and the shared securables. It returns the
// shared securables and where their grants land once g is done.
func (a *Activities) readAccess(gctx context.Context, g *errgroup.Group, cat string, snap *eventSnapshot, out *wire.ReadEventResult, schemaPages *int) ([]securableGrant, []map[string][]string) {
	const step = wire.StepReadEvent
	g.Go(func() error {
		users, err := a.listAccountUsers(gctx)
		if err != nil {
			return classify(step, fmt.Errorf("list account users: %w", err))
		}
		out.Users = len(users)
		// As lookupUser decides: the user holding the address among its
		// e-mails (the first listed) wins over one whose userName it is.
		// (Databricks, and the emulator, refuse a user whose address is
		// another's userName, so the two agree anyway; this keeps them so.)
		for _, u := range users {
			snap.Users[strings.ToLower(u.UserName)] = snapUser{ID: u.Id, UserName: u.UserName, Active: u.Active}
		}
		byEmail := map[string]bool{}
		for _, u := range users {
			for _, e := range u.Emails {
				if k := strings.ToLower(e.Value); k != "" && !byEmail[k] {
					byEmail[k] = true
					snap.Users[k] = snapUser{ID: u.Id, UserName: u.UserName, Active: u.Active}
				}
			}
		}
		return nil
	})
	g.Go(func() error { return a.readAssigned(gctx, snap) })
	g.Go(func() (err error) {
		*schemaPages, err = a.readSchemas(gctx, snap)
		return err
	})
	var shared []securableGrant
	for _, sg := range a.desiredGrants(cat, "") {
		if sg.Type != "schema" || sg.Name != "" { // the participant's own schema is read per participant
			shared = append(shared, sg)
		}
	}
	held := make([]map[string][]string, len(shared))
	for i, sg := range shared {
		g.Go(func() (err error) {
			held[i], err = a.allPrivileges(gctx, sg.Type, sg.Name)
			if err != nil {
				return classify(step, err)
			}
			return nil
		})
	}
	return shared, held
}

// readAssigned lists the workspace's permission assignments (one request).
func (a *Activities) readAssigned(ctx context.Context, snap *eventSnapshot) error {
	const step = wire.StepReadEvent
	if a.Settings.WorkspaceID == 0 {
		return invalid(step, "list workspace assignments: no workspace id configured")
	}
	wrap := func(err error) error {
		return classify(step, fmt.Errorf("list assignments of workspace %d: %w", a.Settings.WorkspaceID, err))
	}
	if err := a.Limits.Wait(ctx, ClassAssignments); err != nil {
		return wrap(err)
	}
	it := a.Account.Assignments.List(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: a.Settings.WorkspaceID})
	for it.HasNext(ctx) {
		as, err := it.Next(ctx)
		if err != nil {
			return wrap(err)
		}
		if as.Principal != nil && len(as.Permissions) > 0 {
			snap.Assigned[fmt.Sprint(as.Principal.PrincipalId)] = true
		}
	}
	return nil
}

// readSchemas lists the catalog's schemas (pages of 1,000) with their
// owner marks, and returns the pages read.
func (a *Activities) readSchemas(ctx context.Context, snap *eventSnapshot) (int, error) {
	const step = wire.StepReadEvent
	wrap := func(err error) error {
		return classify(step, fmt.Errorf("list schemas of catalog %s: %w", snap.Catalog, err))
	}
	const pageSize = 1000
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return 0, wrap(err)
	}
	it := a.Workspace.SchemaList.List(ctx, catalog.ListSchemasRequest{CatalogName: snap.Catalog, MaxResults: pageSize})
	n := 0
	for ; it.HasNext(ctx); n++ {
		sc, err := it.Next(ctx)
		if err != nil {
			return 0, wrap(err)
		}
		full := strings.ToLower(cmp.Or(sc.FullName, snap.Catalog+"."+sc.Name))
		snap.Schemas[full] = sc.Properties[wire.SchemaOwnerProperty]
		if (n+1)%pageSize == 0 {
			if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
				return 0, wrap(err)
			}
		}
	}
	return n/pageSize + 1, nil
}

// allPrivileges reads what every principal holds directly on a securable
// (one Grants.Get with no principal).
func (a *Activities) allPrivileges(ctx context.Context, typ, name string) (map[string][]string, error) {
	what := fmt.Sprintf("read grants on %s %s", typ, name)
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	resp, err := a.Workspace.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: typ, FullName: name})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	held := map[string][]string{}
	for _, pa := range resp.PrivilegeAssignments {
		k := strings.ToLower(pa.Principal)
		held[k] = append(held[k], privilegeNames(pa.Privileges)...)
	}
	return held, nil
}

// readClusters lists the clusters under the policy (pages of 100, every
// state; with snap.AllClusters, every cluster of the workspace) and keeps
// those tagged for a participant. It returns the pages read and the
// clusters kept.
func (a *Activities) readClusters(ctx context.Context, policyID string, snap *eventSnapshot) (pages, kept int, err error) {
	const step = wire.StepReadEvent
	if a.Settings.TagKey == "" {
		return 0, 0, invalid(step, "list clusters: no participant tag key configured")
	}
	var filter *compute.ListClustersFilterBy
	what := "list every cluster of the workspace"
	if !snap.AllClusters {
		if policyID == "" {
			return 0, 0, invalid(step, "list clusters: the batch's setup resolved no cluster policy")
		}
		filter, what = &compute.ListClustersFilterBy{PolicyId: policyID}, "list clusters under policy "+policyID
	}
	wrap := func(err error) error { return classify(step, fmt.Errorf("%s: %w", what, err)) }
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return 0, 0, wrap(err)
	}
	it := a.Workspace.Clusters.List(ctx, compute.ListClustersRequest{FilterBy: filter, PageSize: clusterListPageSize})
	n := 0
	for ; it.HasNext(ctx); n++ {
		c, err := it.Next(ctx)
		if err != nil {
			return 0, 0, wrap(err)
		}
		if tag := strings.ToLower(c.CustomTags[a.Settings.TagKey]); tag != "" {
			snap.Clusters[tag] = append(snap.Clusters[tag], snapCluster{ID: c.ClusterId, State: string(c.State), StartTime: c.StartTime,
				Mark: c.CustomTags[wire.ClusterOwnerTag]})
			kept++
		}
		if (n+1)%clusterListPageSize == 0 {
			if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
				return 0, 0, wrap(err)
			}
		}
	}
	return n/clusterListPageSize + 1, kept, nil
}

// SurveyChunk compares each participant of a chunk with the snapshot
// ReadEvent stored, after reading what their earlier runs recorded
// (Temporal) and the two things no list answers: the grants on their
// schema and the permissions of their cluster. It writes nothing.
func (a *Activities) SurveyChunk(ctx context.Context, in wire.SurveyChunkInput) (wire.SurveyChunkResult, error) {
	const step = wire.StepSurvey
	ctx, _, stop := withPulse(ctx)
	defer stop()
	snap, ps, err := a.chunkOfRead(step, in.Snapshot, nil, in.Roster, in.Offset, in.Limit, len(in.WorkflowIDs))
	if err != nil {
		return wire.SurveyChunkResult{}, err
	}
	var pre []prefetched
	if in.Prefetch != "" {
		if pre, err = a.loadPrefetch(step, in.Prefetch, len(ps)); err != nil {
			return wire.SurveyChunkResult{}, err
		}
	}
	cat := strings.ToLower(cmp.Or(in.Catalog, snap.Catalog))
	out := wire.SurveyChunkResult{Surveys: make([]wire.Survey, len(ps))}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(surveyConcurrency)
	for i, p := range ps {
		g.Go(func() error {
			var known *prefetched
			if pre != nil {
				known = &pre[i]
			} else {
				prior, err := a.PriorRuns(gctx, wire.PriorRunsInput{WorkflowID: in.WorkflowIDs[i]})
				if err != nil {
					return err
				}
				known = &prefetched{Prior: prior}
			}
			s, reads, err := a.survey(gctx, snap, cat, p, known)
			if err != nil {
				return err
			}
			mu.Lock()
			out.Surveys[i], out.Reads = s, out.Reads+reads
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return wire.SurveyChunkResult{}, err
	}
	return out, nil
}

// survey is one participant's comparison: what they should have (their user
// active and theirs, assigned, their schema, Cohort's grants, one cluster
// with CAN_RESTART) against what the snapshot and two reads show. known
// holds their earlier runs, and the two reads where PrefetchSurvey made
// them on the same schema and cluster.
func (a *Activities) survey(ctx context.Context, snap *eventSnapshot, cat string, p roster.Participant, known *prefetched) (wire.Survey, int, error) {
	const step = wire.StepSurvey
	prior := known.Prior
	email := strings.ToLower(strings.TrimSpace(p.Email))
	s := wire.Survey{Prior: prior}
	if prior.Offboarded {
		s.Offboarded = true
		return s, 0, nil
	}
	reads := 0

	u, found := snap.Users[email]
	principal := email
	switch {
	case !found:
		s.Add(wire.DriftUserMissing, "no account user "+email)
	case !u.Active:
		s.Add(wire.DriftUserInactive, fmt.Sprintf("account user %s is deactivated", u.ID))
	}
	if found {
		s.UserID, s.UserName, principal = u.ID, u.UserName, cmp.Or(u.UserName, email)
		if !snap.Assigned[u.ID] {
			s.Add(wire.DriftNotAssigned, "not assigned to the workspace")
		}
		if prior.CreatedUserID != "" && prior.CreatedUserID != u.ID {
			s.Notes = append(s.Notes, fmt.Sprintf("account user %s is not the one Cohort created (%s; re-created by someone since?): an offboard keeps it",
				u.ID, prior.CreatedUserID))
		}
	}

	full := strings.ToLower(cmp.Or(prior.Schema, cat+"."+p.Schema))
	mark, exists := snap.Schemas[full]
	switch {
	case !exists:
		s.Add(wire.DriftSchemaMissing, "schema "+full+" is gone")
	case mark != ownerMark(email) && !(mark == "" && full == strings.ToLower(prior.Schema)):
		s.Add(wire.DriftSchemaMissing, "schema "+full+" is not theirs (another participant's, or not created by Cohort for them)")
	default:
		s.Schema = full
	}

	if found {
		for _, g := range a.desiredGrants(cat, s.Schema) {
			var held []string
			if h, ok := snap.Held[securableKey(g.Type, g.Name)]; ok {
				held = h[strings.ToLower(principal)]
			} else if g.Type == "schema" && g.Name == s.Schema && s.Schema != "" && known.Schema == s.Schema {
				held = known.Held[strings.ToLower(principal)]
			} else if g.Type == "schema" && g.Name == s.Schema && s.Schema != "" {
				privs, err := a.directPrivileges(ctx, principal, g)
				if err != nil {
					return s, reads, classify(step, err)
				}
				reads++
				held = privilegeNames(privs)
			} else {
				continue // a securable the snapshot has no read of (its schema is gone)
			}
			if missing := missingNames(held, g.Privileges); len(missing) > 0 {
				s.Add(wire.DriftGrantMissing, fmt.Sprintf("lacks %s on %s %s", strings.Join(missing, ","), g.Type, g.Name))
			}
		}
	}

	// Only Cohort's clusters count (ownCluster): one anyone else made with
	// their tag is neither theirs nor drift, and a repair leaves it alone.
	var cs []snapCluster
	for _, c := range snap.Clusters[email] {
		tags := map[string]string{a.Settings.TagKey: email, wire.ClusterOwnerTag: c.Mark}
		if ours, why := a.ownCluster(tags, email, c.ID == prior.ClusterID); !ours {
			s.Notes = append(s.Notes, "cluster "+c.ID+" "+why+": left alone")
			continue
		}
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(x, y snapCluster) int {
		return cmp.Or(cmp.Compare(x.StartTime, y.StartTime), cmp.Compare(x.ID, y.ID))
	})
	if i := slices.IndexFunc(cs, func(c snapCluster) bool { return c.ID == prior.ClusterID }); i > 0 {
		cs[0], cs[i] = cs[i], cs[0] // the recorded one is theirs
	}
	switch {
	case len(cs) == 0 && prior.ClusterID != "":
		s.Add(wire.DriftClusterGone, "cluster "+prior.ClusterID+" is gone (purged or deleted)")
	case len(cs) == 0:
		s.Add(wire.DriftClusterGone, "no cluster tagged for them")
	default:
		s.ClusterID, s.ClusterURL = cs[0].ID, a.clusterURL(cs[0].ID)
		if prior.ClusterID != "" && prior.ClusterID != cs[0].ID {
			s.Notes = append(s.Notes, fmt.Sprintf("cluster %s is gone; %s is tagged for them", prior.ClusterID, cs[0].ID))
		}
		if len(cs) > 1 {
			for _, c := range cs[1:] {
				s.ExtraClusters = append(s.ExtraClusters, c.ID)
			}
			s.Add(wire.DriftExtraClusters, wire.ExtraClustersNote(s.ExtraClusters))
		}
	}
	if found && s.ClusterID != "" {
		perms := known.Perms
		if known.ClusterID != s.ClusterID {
			var err error
			if perms, err = a.clusterPermissions(ctx, s.ClusterID); err != nil {
				return s, reads, classify(step, err)
			}
			reads++
		}
		ok := slices.Contains(directLevels(perms, principal), compute.ClusterPermissionLevelCanRestart)
		switch {
		case !ok && a.budgetRestricted(email, s.ClusterID):
			s.Notes = append(s.Notes, "CAN_ATTACH_TO on cluster "+s.ClusterID+": over the budget (starter budget grant gives more hours)")
		case !ok:
			s.Add(wire.DriftPermissionMissing, "no CAN_RESTART on cluster "+s.ClusterID)
		}
	}
	return s, reads, nil
}

// budgetRestricted says the budget lowered the participant's permission
// on the cluster: a reconcile must not give CAN_RESTART back (the usage
// read does, once they are within the budget again). An unreadable ledger
// counts as not restricted.
func (a *Activities) budgetRestricted(email, clusterID string) bool {
	e, err := a.Ledger.Load(email)
	return err == nil && e.RestrictedCluster(clusterID)
}

// missingNames is missingPrivileges for names: the wanted privileges not in
// held (ALL_PRIVILEGES covers everything).
func missingNames(held []string, want []catalog.Privilege) []string {
	if slices.Contains(held, string(catalog.PrivilegeAllPrivileges)) {
		return nil
	}
	var missing []string
	for _, p := range want {
		if !slices.Contains(held, string(p)) {
			missing = append(missing, string(p))
		}
	}
	return missing
}

// loadSnapshot loads and decodes what ReadEvent stored under key; a
// missing or unreadable one is final (the batch's read is gone).
func (a *Activities) loadSnapshot(step, key string) (*eventSnapshot, error) {
	b, err := a.Roster.LoadBlob(key)
	if err != nil {
		return nil, finalNotFound(err)
	}
	snap, err := decodeSnapshot(b)
	if err != nil {
		return nil, invalid(step, "the event's snapshot %s: %v", key, err)
	}
	return snap, nil
}

// finalNotFound is a store read that failed: final, what it names is gone.
func finalNotFound(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), wire.ErrNotFound, err)
}

// chunkOfRead loads what a chunk-level activity of a read works on: the
// snapshot under key (which need, if set, may refuse) and the chunk's
// slice of the roster (chunkOfRoster).
func (a *Activities) chunkOfRead(step, key string, need func(*eventSnapshot) error, ref roster.Ref, offset, limit, ids int) (*eventSnapshot, []roster.Participant, error) {
	snap, err := a.loadSnapshot(step, key)
	if err != nil {
		return nil, nil, err
	}
	if snap.ClustersOnly {
		return nil, nil, invalid(step, "the snapshot %s is a listing of the clusters only, not the event's read", key)
	}
	if need != nil {
		if err := need(snap); err != nil {
			return nil, nil, err
		}
	}
	ps, err := a.chunkOfRoster(step, ref, offset, limit, ids)
	return snap, ps, err
}

// chunkOfRoster loads a chunk's slice of the roster, which must match the
// ids workflow IDs the chunk sent.
func (a *Activities) chunkOfRoster(step string, ref roster.Ref, offset, limit, ids int) ([]roster.Participant, error) {
	ps, err := a.Roster.Load(ref, offset, limit)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("load roster %s: %v", ref.Key, err), wire.ErrNotFound, err)
	}
	if ids != len(ps) {
		return nil, invalid(step, "%d workflow ids for %d participants", ids, len(ps))
	}
	return ps, nil
}

// decodeSnapshot reads what ReadEvent stored.
func decodeSnapshot(b []byte) (*eventSnapshot, error) {
	var snap eventSnapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, err
	}
	return &snap, nil
}
