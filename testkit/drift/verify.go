package drift

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/roster"
)

// Finding is one thing a participant lacks (or, ExtraClusters, has too much
// of), as the drift Kind that causes it.
type Finding struct {
	Email  string
	Kind   Kind
	Detail string
}

func (f Finding) String() string { return fmt.Sprintf("%s: %s: %s", f.Email, f.Kind, f.Detail) }

// Verify checks one participant; see VerifyAll.
func (e *Env) Verify(ctx context.Context, p roster.Participant) ([]Finding, error) {
	m, err := e.VerifyAll(ctx, []roster.Participant{p}, 1)
	return m[strings.ToLower(p.Email)], err
}

// VerifyAll checks, through the REST API, that each participant has
// everything Cohort gives them:
//
//   - an account user with userName = their email, active (user_missing,
//     user_inactive);
//   - its workspace assignment with permission USER (not_assigned);
//   - a schema in Expect.Catalog marked as theirs (wire.SchemaOwnerProperty
//     = OwnerMark), the roster's name or another (schema_missing);
//   - USE_CATALOG on the catalog, Expect.SchemaPrivileges on their schema and
//     every Expect.SharedGrants privilege (grant_missing);
//   - a cluster under Expect.PolicyName tagged Expect.TagKey=email
//     (cluster_gone), exactly one (extra_clusters: more than one), on whose
//     oldest they hold a direct CAN_RESTART (permission_missing).
//
// It reads what can be listed once (users, assignments, schemas, the
// catalog's and shared securables' grants, the policy's clusters) and per
// participant only their schema's grants and their cluster's permissions,
// parallel at a time. The result maps each email (lower case) to its
// findings, empty when intact; the error is a read that failed.
func (e *Env) VerifyAll(ctx context.Context, ps []roster.Participant, parallel int) (map[string][]Finding, error) {
	snap, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Finding, len(ps))
	var mu sync.Mutex
	var firstErr error
	work := make(chan roster.Participant)
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				fs, err := e.verifyOne(ctx, snap, p)
				mu.Lock()
				out[strings.ToLower(p.Email)] = fs
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range ps {
		work <- p
	}
	close(work)
	wg.Wait()
	return out, firstErr
}

// snapshot is what VerifyAll reads once for everyone.
type snapshot struct {
	users    map[string]iam.User        // by lower-cased userName
	assigned map[int64][]string         // principal id -> permissions
	schemas  []catalog.SchemaInfo       // the catalog's
	grants   map[string]map[string]bool // "type:name" -> "principal|PRIV"
	clusters map[string][]compute.ClusterDetails
}

func (e *Env) snapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{users: map[string]iam.User{}, assigned: map[int64][]string{}, grants: map[string]map[string]bool{}}
	users, err := e.Account.Users.ListAll(ctx, iam.ListAccountUsersRequest{Attributes: userAttributes})
	if err != nil {
		return nil, fmt.Errorf("list account users: %w", err)
	}
	for _, u := range users {
		s.users[strings.ToLower(u.UserName)] = u
	}
	as, err := e.Account.WorkspaceAssignment.ListAll(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: e.WorkspaceID})
	if err != nil {
		return nil, fmt.Errorf("list the assignments of workspace %d: %w", e.WorkspaceID, err)
	}
	for _, a := range as {
		if a.Principal == nil {
			continue
		}
		for _, perm := range a.Permissions {
			s.assigned[a.Principal.PrincipalId] = append(s.assigned[a.Principal.PrincipalId], string(perm))
		}
	}
	if s.schemas, err = e.Workspace.Schemas.ListAll(ctx, catalog.ListSchemasRequest{CatalogName: e.Expect.Catalog}); err != nil {
		return nil, fmt.Errorf("list the schemas of catalog %s: %w", e.Expect.Catalog, err)
	}
	securables := []struct{ typ, name string }{{"catalog", e.Expect.Catalog}}
	for _, g := range e.Expect.SharedGrants {
		securables = append(securables, struct{ typ, name string }{strings.ToLower(g.Securable), strings.ToLower(g.Name)})
	}
	for _, sec := range securables {
		k := sec.typ + ":" + sec.name
		if _, done := s.grants[k]; done {
			continue
		}
		held, err := e.grantsOn(ctx, sec.typ, sec.name)
		if err != nil {
			return nil, err
		}
		s.grants[k] = held
	}
	if s.clusters, err = e.policyClusters(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// grantsOn reads a securable's grants as a set of "principal|PRIVILEGE"
// (principal lower-cased).
func (e *Env) grantsOn(ctx context.Context, typ, name string) (map[string]bool, error) {
	resp, err := e.Workspace.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: typ, FullName: name})
	if err != nil {
		return nil, fmt.Errorf("get grants on %s %s: %w", typ, name, err)
	}
	held := map[string]bool{}
	for _, pa := range resp.PrivilegeAssignments {
		for _, pr := range pa.Privileges {
			held[strings.ToLower(pa.Principal)+"|"+strings.ToUpper(string(pr))] = true
		}
	}
	return held, nil
}

// missing lists the privileges of want that principal does not hold.
func missing(held map[string]bool, principal string, want []string) []string {
	var out []string
	for _, w := range want {
		if !held[strings.ToLower(principal)+"|"+strings.ToUpper(w)] {
			out = append(out, strings.ToUpper(w))
		}
	}
	sort.Strings(out)
	return out
}

func (e *Env) verifyOne(ctx context.Context, s *snapshot, p roster.Participant) ([]Finding, error) {
	email := strings.ToLower(p.Email)
	var fs []Finding
	add := func(k Kind, format string, args ...any) {
		fs = append(fs, Finding{Email: email, Kind: k, Detail: fmt.Sprintf(format, args...)})
	}

	// The user and its assignment.
	if u, ok := s.users[email]; !ok {
		add(UserMissing, "no account user with userName %s", email)
	} else {
		if !u.Active {
			add(UserInactive, "account user %s is inactive", u.Id)
		}
		id, err := strconv.ParseInt(u.Id, 10, 64)
		if err != nil {
			return fs, fmt.Errorf("%s: user id %q is not an int64", email, u.Id)
		}
		if !slices.Contains(s.assigned[id], string(iam.WorkspacePermissionUser)) {
			add(NotAssigned, "user %s is not assigned to workspace %d (permissions %v)", u.Id, e.WorkspaceID, s.assigned[id])
		}
	}

	// Grants on the catalog and the shared securables.
	if m := missing(s.grants["catalog:"+e.Expect.Catalog], email, []string{string(catalog.PrivilegeUseCatalog)}); len(m) > 0 {
		add(GrantMissing, "lacks %s on catalog %s", strings.Join(m, ","), e.Expect.Catalog)
	}
	for _, g := range e.Expect.SharedGrants {
		typ, name := strings.ToLower(g.Securable), strings.ToLower(g.Name)
		if m := missing(s.grants[typ+":"+name], email, g.Privileges); len(m) > 0 {
			add(GrantMissing, "lacks %s on %s %s", strings.Join(m, ","), typ, name)
		}
	}

	// Their schema, and its grants.
	if full, why := e.theirSchema(s, p); full == "" {
		add(SchemaMissing, "%s", why)
	} else {
		held, err := e.grantsOn(ctx, "schema", full)
		switch {
		case errors.Is(err, apierr.ErrNotFound):
			add(SchemaMissing, "schema %s was listed, then not found", full)
		case err != nil:
			return fs, err
		default:
			if m := missing(held, email, e.Expect.SchemaPrivileges); len(m) > 0 {
				add(GrantMissing, "lacks %s on schema %s", strings.Join(m, ","), full)
			}
		}
	}

	// Their cluster, and its permission.
	cs := s.clusters[email]
	switch len(cs) {
	case 0:
		add(ClusterGone, "no cluster under policy %q tagged %s=%s", e.Expect.PolicyName, e.Expect.TagKey, email)
		return fs, nil
	case 1:
	default:
		ids := make([]string, len(cs))
		for i, c := range cs {
			ids[i] = c.ClusterId + " " + string(c.State)
		}
		add(ExtraClusters, "%d clusters tagged %s=%s: %s", len(cs), e.Expect.TagKey, email, strings.Join(ids, ", "))
	}
	id := cs[0].ClusterId
	perms, err := e.Workspace.Clusters.GetPermissions(ctx, compute.GetClusterPermissionsRequest{ClusterId: id})
	switch {
	case errors.Is(err, apierr.ErrNotFound):
		add(ClusterGone, "cluster %s was listed, then its permissions not found", id)
	case err != nil:
		return fs, fmt.Errorf("%s: read permissions of cluster %s: %w", email, id, err)
	case !hasDirect(perms, email, compute.ClusterPermissionLevelCanRestart):
		add(PermissionMissing, "no direct CAN_RESTART on cluster %s", id)
	}
	return fs, nil
}

// theirSchema finds the participant's schema in the listing: the roster's
// name if it carries their mark, else any schema carrying it (Cohort takes
// <schema>_2, ... when the name is someone else's). Empty, with why, if none.
func (e *Env) theirSchema(s *snapshot, p roster.Participant) (full, why string) {
	mark := OwnerMark(p.Email)
	want := strings.ToLower(p.Schema)
	var other string
	var rosterMark *string
	for _, sc := range s.schemas {
		m := sc.Properties[ownerProperty]
		if strings.EqualFold(sc.Name, want) {
			rosterMark = &m
			if m == mark {
				return strings.ToLower(sc.FullName), ""
			}
		} else if m == mark && other == "" {
			other = strings.ToLower(sc.FullName)
		}
	}
	if other != "" {
		return other, ""
	}
	if rosterMark != nil {
		return "", fmt.Sprintf("schema %s exists but is not marked as theirs (%s = %q)", e.schemaFullName(p.Schema), ownerProperty, *rosterMark)
	}
	return "", fmt.Sprintf("no schema %s (nor another marked as theirs) in catalog %s", e.schemaFullName(p.Schema), e.Expect.Catalog)
}

// Kinds of a participant's findings, sorted, without duplicates.
func FindingKinds(fs []Finding) []Kind {
	var out []Kind
	for _, f := range fs {
		if !slices.Contains(out, f.Kind) {
			out = append(out, f.Kind)
		}
	}
	slices.Sort(out)
	return out
}
