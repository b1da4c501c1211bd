package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/roster"
)

// environment is what one participant was found to have in the emulator.
type environment struct {
	UserID    string
	Schema    string // full name
	SchemaID  string
	ClusterID string
}

// problems reports at most maxProblems errors, then how many more there were,
// so a systematic failure over 200 people stays readable.
type problems struct {
	t *testing.T
	n int
}

const maxProblems = 25

func (p *problems) add(format string, args ...any) {
	p.t.Helper()
	p.n++
	if p.n <= maxProblems {
		p.t.Errorf(format, args...)
	}
}

func (p *problems) done() {
	p.t.Helper()
	if p.n > maxProblems {
		p.t.Errorf("... and %d more problems (%d in all)", p.n-maxProblems, p.n)
	}
}

// verifyParticipants checks, through the emulator's REST endpoints with the
// real SDK clients, that every participant in want has exactly one account
// user (with their display name), one workspace assignment with permission
// USER, USE_CATALOG on the catalog, one schema on which they and nobody else
// hold exactly the configured privileges, and exactly one stopped
// (TERMINATING or TERMINATED) single-node cluster under the Personal Compute
// policy, tagged with their email, on which they hold a direct CAN_RESTART
// and no CAN_MANAGE. Nobody else on domain may have a user or a cluster. It
// returns what it found.
func (s *scenario) verifyParticipants(domain string, want []roster.Participant) map[string]environment {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := s.emu.accountClient(t)
	w := s.emu.workspaceClient(t, emuToken)
	p := &problems{t: t}
	defer p.done()

	suffix := "@" + strings.ToLower(domain)
	onDomain := func(email string) bool { return strings.HasSuffix(strings.ToLower(email), suffix) }
	wanted := map[string]roster.Participant{}
	for _, pt := range want {
		wanted[pt.Email] = pt
	}
	found := make(map[string]environment, len(want))

	// Account users.
	users, err := retry(ctx, func() ([]iam.User, error) { return a.Users.ListAll(ctx, iam.ListAccountUsersRequest{}) })
	if err != nil {
		t.Fatalf("list account users: %v", err)
	}
	usersOf := map[string][]iam.User{}
	for _, u := range users {
		if onDomain(u.UserName) {
			usersOf[strings.ToLower(u.UserName)] = append(usersOf[strings.ToLower(u.UserName)], u)
		}
	}
	for email, us := range usersOf {
		if _, ok := wanted[email]; !ok {
			p.add("account user %s (ids %v): not in the roster, want no user", email, userIDs(us))
		}
	}
	for _, pt := range want {
		us := usersOf[pt.Email]
		if len(us) != 1 {
			p.add("%s: %d account users %v, want exactly 1", pt.Email, len(us), userIDs(us))
			continue
		}
		if us[0].DisplayName != pt.DisplayName {
			p.add("%s: user displayName = %q, want %q", pt.Email, us[0].DisplayName, pt.DisplayName)
		}
		found[pt.Email] = environment{UserID: us[0].Id}
	}

	// Workspace assignments.
	assignments, err := retry(ctx, func() ([]iam.PermissionAssignment, error) {
		return a.WorkspaceAssignment.ListAll(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: emuWorkspace})
	})
	if err != nil {
		t.Fatalf("list workspace assignments: %v", err)
	}
	assigned := map[string][]iam.PermissionAssignment{}
	for _, pa := range assignments {
		if pa.Principal != nil {
			id := strconv.FormatInt(pa.Principal.PrincipalId, 10)
			assigned[id] = append(assigned[id], pa)
		}
	}
	for _, pt := range want {
		env, ok := found[pt.Email]
		if !ok {
			continue
		}
		as := assigned[env.UserID]
		if len(as) != 1 {
			p.add("%s (user %s): %d workspace assignments, want exactly 1", pt.Email, env.UserID, len(as))
			continue
		}
		if got := as[0].Permissions; !slices.Equal(got, []iam.WorkspacePermission{iam.WorkspacePermissionUser}) {
			p.add("%s: workspace assignment permissions = %v, want [USER]", pt.Email, got)
		}
	}

	// USE_CATALOG on the shared catalog.
	catalogName := s.cfg.Catalog.Name
	cg, err := retry(ctx, func() (*catalog.GetPermissionsResponse, error) {
		return w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: "catalog", FullName: catalogName})
	})
	if err != nil {
		t.Fatalf("get grants on catalog %s: %v", catalogName, err)
	}
	catalogPrivs := map[string][]string{}
	for _, pa := range cg.PrivilegeAssignments {
		catalogPrivs[strings.ToLower(pa.Principal)] = privileges(pa.Privileges)
	}
	for principal, privs := range catalogPrivs {
		if _, ok := wanted[principal]; !ok && onDomain(principal) {
			p.add("catalog %s grants %v to %s, who is not in the roster", catalogName, privs, principal)
		}
	}
	for _, pt := range want {
		if !slices.Contains(catalogPrivs[pt.Email], string(catalog.PrivilegeUseCatalog)) {
			p.add("%s: privileges on catalog %s = %v, want USE_CATALOG", pt.Email, catalogName, catalogPrivs[pt.Email])
		}
	}

	// One schema each, with exactly the configured privileges, for them only.
	schemas, err := retry(ctx, func() ([]catalog.SchemaInfo, error) {
		return w.Schemas.ListAll(ctx, catalog.ListSchemasRequest{CatalogName: catalogName})
	})
	if err != nil {
		t.Fatalf("list schemas of %s: %v", catalogName, err)
	}
	schemaByName := map[string]catalog.SchemaInfo{}
	for _, sc := range schemas {
		if _, dup := schemaByName[sc.Name]; dup {
			p.add("schema %s listed twice", sc.FullName)
		}
		schemaByName[sc.Name] = sc
	}
	wantPrivs := slices.Sorted(slices.Values(s.cfg.Catalog.SchemaPrivileges))
	for _, pt := range want {
		sc, ok := schemaByName[pt.Schema]
		if !ok {
			p.add("%s: no schema %s.%s", pt.Email, catalogName, pt.Schema)
			continue
		}
		env := found[pt.Email]
		env.Schema, env.SchemaID = sc.FullName, sc.SchemaId
		found[pt.Email] = env
		sg, err := retry(ctx, func() (*catalog.GetPermissionsResponse, error) {
			return w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: "schema", FullName: sc.FullName})
		})
		if err != nil {
			p.add("%s: get grants on schema %s: %v", pt.Email, sc.FullName, err)
			continue
		}
		var mine []string
		for _, pa := range sg.PrivilegeAssignments {
			if strings.EqualFold(pa.Principal, pt.Email) {
				mine = append(mine, privileges(pa.Privileges)...)
			} else {
				p.add("%s: schema %s grants %v to %s too, want grants to the participant only", pt.Email, sc.FullName, privileges(pa.Privileges), pa.Principal)
			}
		}
		slices.Sort(mine)
		if !slices.Equal(mine, wantPrivs) {
			p.add("%s: privileges on %s = %v, want %v", pt.Email, sc.FullName, mine, wantPrivs)
		}
	}

	// Exactly one cluster each, stopped, single node, under the policy.
	policyID := s.policyID(ctx)
	clusters, err := retry(ctx, func() ([]compute.ClusterDetails, error) {
		return w.Clusters.ListAll(ctx, compute.ListClustersRequest{})
	})
	if err != nil {
		t.Fatalf("list clusters: %v", err)
	}
	tagKey := s.cfg.Cluster.TagKey
	clustersOf := map[string][]compute.ClusterDetails{}
	for _, c := range clusters {
		if tag := c.CustomTags[tagKey]; onDomain(tag) {
			clustersOf[strings.ToLower(tag)] = append(clustersOf[strings.ToLower(tag)], c)
		}
	}
	for email, cs := range clustersOf {
		if _, ok := wanted[email]; !ok {
			p.add("%d cluster(s) tagged %s=%s, who is not in the roster", len(cs), tagKey, email)
		}
	}
	for _, pt := range want {
		cs := clustersOf[pt.Email]
		if len(cs) != 1 {
			ids := make([]string, len(cs))
			for i, c := range cs {
				ids[i] = c.ClusterId
			}
			p.add("%s: %d clusters tagged %s %v, want exactly 1", pt.Email, len(cs), tagKey, ids)
			continue
		}
		c := cs[0]
		env := found[pt.Email]
		env.ClusterID = c.ClusterId
		found[pt.Email] = env
		for _, chk := range []struct {
			what      string
			got, want any
		}{
			{"state is TERMINATING or TERMINATED", c.State == compute.StateTerminating || c.State == compute.StateTerminated, true},
			{"policy_id", c.PolicyId, policyID},
			{"cluster_name", c.ClusterName, pt.ClusterName},
			{"num_workers", c.NumWorkers, 0},
			{"data_security_mode", c.DataSecurityMode, compute.DataSecurityModeSingleUser},
			{"single_user_name", strings.ToLower(c.SingleUserName), pt.Email},
			{"spark.databricks.cluster.profile", c.SparkConf["spark.databricks.cluster.profile"], "singleNode"},
			{"ResourceClass tag", c.CustomTags["ResourceClass"], "SingleNode"},
			{"autotermination_minutes", c.AutoterminationMinutes, s.cfg.Cluster.AutoterminationMinutes},
		} {
			if fmt.Sprint(chk.got) != fmt.Sprint(chk.want) {
				p.add("%s: cluster %s %s = %v, want %v", pt.Email, c.ClusterId, chk.what, chk.got, chk.want)
			}
		}
		perms, err := retry(ctx, func() (*compute.ClusterPermissions, error) {
			return w.Clusters.GetPermissions(ctx, compute.GetClusterPermissionsRequest{ClusterId: c.ClusterId})
		})
		if err != nil {
			p.add("%s: get permissions of cluster %s: %v", pt.Email, c.ClusterId, err)
			continue
		}
		direct, manage := false, false
		for _, acl := range perms.AccessControlList {
			if !strings.EqualFold(acl.UserName, pt.Email) {
				continue
			}
			for _, perm := range acl.AllPermissions {
				if perm.PermissionLevel == compute.ClusterPermissionLevelCanRestart && !perm.Inherited {
					direct = true
				}
				if perm.PermissionLevel == compute.ClusterPermissionLevelCanManage {
					manage = true
				}
			}
		}
		if !direct {
			p.add("%s: no direct CAN_RESTART on cluster %s (acl %s)", pt.Email, c.ClusterId, aclString(perms))
		}
		if manage {
			p.add("%s: holds CAN_MANAGE on cluster %s (acl %s), want CAN_RESTART only", pt.Email, c.ClusterId, aclString(perms))
		}
	}
	return found
}

// policyID looks the cluster policy up by its configured name.
func (s *scenario) policyID(ctx context.Context) string {
	s.t.Helper()
	w := s.emu.workspaceClient(s.t, emuToken)
	policies, err := retry(ctx, func() ([]compute.Policy, error) {
		return w.ClusterPolicies.ListAll(ctx, compute.ListClusterPoliciesRequest{})
	})
	if err != nil {
		s.t.Fatalf("list cluster policies: %v", err)
	}
	for _, pol := range policies {
		if pol.Name == s.cfg.Cluster.PolicyName {
			return pol.PolicyId
		}
	}
	s.t.Fatalf("no cluster policy named %q", s.cfg.Cluster.PolicyName)
	return ""
}

func privileges(ps []catalog.Privilege) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

func userIDs(us []iam.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Id
	}
	return out
}

func aclString(p *compute.ClusterPermissions) string {
	var parts []string
	for _, acl := range p.AccessControlList {
		who := cmp.Or(acl.UserName, acl.GroupName, acl.ServicePrincipalName)
		for _, perm := range acl.AllPermissions {
			s := who + ":" + string(perm.PermissionLevel)
			if perm.Inherited {
				s += "(inherited)"
			}
			parts = append(parts, s)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// checkReport checks the report has one row per participant, in any order,
// with status ok and the ids found in the emulator.
func (s *scenario) checkReport(rows []map[string]string, want []roster.Participant, found map[string]environment) {
	t := s.t
	t.Helper()
	p := &problems{t: t}
	defer p.done()
	if len(rows) != len(want) {
		p.add("report has %d rows, want %d", len(rows), len(want))
	}
	byEmail := map[string]map[string]string{}
	for _, r := range rows {
		e := strings.ToLower(r["email"])
		if _, dup := byEmail[e]; dup {
			p.add("report lists %s twice", e)
		}
		byEmail[e] = r
	}
	for _, pt := range want {
		r, ok := byEmail[pt.Email]
		if !ok {
			p.add("report lacks %s", pt.Email)
			continue
		}
		env := found[pt.Email]
		for _, chk := range []struct{ col, want string }{
			{"status", "ok"},
			{"last_error", ""},
			{"display_name", pt.DisplayName},
			{"user_id", env.UserID},
			{"schema", env.Schema},
			{"cluster_id", env.ClusterID},
		} {
			if r[chk.col] != chk.want {
				p.add("report row %s: %s = %q, want %q", pt.Email, chk.col, r[chk.col], chk.want)
			}
		}
		if u := r["cluster_url"]; !strings.HasPrefix(u, strings.TrimRight(s.cfg.Databricks.WorkspaceHost, "/")+"/") ||
			!strings.HasSuffix(u, "/"+env.ClusterID) {
			p.add("report row %s: cluster_url = %q, want the workspace's page of cluster %s", pt.Email, u, env.ClusterID)
		}
	}
}

// retry calls f until it succeeds, returns a client error (4xx), or has
// failed 8 times: the faults scenario's emulator fails 10% of all requests,
// reads included, and the SDK does not retry every kind (500, connection
// resets).
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var v T
	var err error
	for attempt := range 8 {
		v, err = f()
		var apiErr *apierr.APIError
		if err == nil || (errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 && apiErr.StatusCode != 429) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
	return v, err
}
