package drift

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
)

const (
	testToken     = "dapi-drift-admin"
	testAccount   = "acc-drift"
	testWorkspace = int64(700600500400)
)

// setup starts an in-process emulator as strict as Azure, with Cohort's
// catalog made beforehand, starts that take an hour (so only keep-running
// makes a cluster RUNNING) and stops that take 20 ms; it returns an Env on
// Cohort's default config.
func setup(t *testing.T) *Env {
	t.Helper()
	emu, err := emulator.New(emulator.Options{
		Token: testToken, AccountID: testAccount, WorkspaceID: testWorkspace,
		Catalogs:             []string{config.Default().Catalog.Name},
		AssignmentFlakyShare: -1, // the hand-made provisioning below does not retry
		ClusterStartDelay:    time.Hour,
		ClusterStopDelay:     20 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { srv.Close(); emu.Close() })
	e, err := Connect(srv.URL, testToken, testAccount, testWorkspace, ExpectFromConfig(config.Default()), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e.Emulator = &Control{URL: srv.URL, Token: testToken}
	e.Poll = 10 * time.Millisecond
	return e
}

// provision gives p what Cohort's seven steps give (README, "What each
// participant gets"): an account user assigned to the workspace, their
// schema marked as theirs, USE_CATALOG and the schema privileges, a
// single-node cluster under Personal Compute tagged with their email, on
// which they hold CAN_RESTART, terminated.
func provision(t *testing.T, e *Env, p roster.Participant) {
	t.Helper()
	ctx := context.Background()
	u, err := e.Account.Users.Create(ctx, iam.User{UserName: p.Email, DisplayName: p.DisplayName, Emails: []iam.ComplexValue{{Value: p.Email, Primary: true}}})
	if err != nil {
		t.Fatalf("create user %s: %v", p.Email, err)
	}
	id, err := principalID(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Account.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: testWorkspace, PrincipalId: id,
		Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}}); err != nil {
		t.Fatalf("assign %s: %v", p.Email, err)
	}
	sc, err := e.Workspace.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: e.Expect.Catalog, Name: p.Schema,
		Properties: map[string]string{ownerProperty: OwnerMark(p.Email)}})
	if err != nil {
		t.Fatalf("create schema for %s: %v", p.Email, err)
	}
	privs := make([]catalog.Privilege, len(e.Expect.SchemaPrivileges))
	for i, pr := range e.Expect.SchemaPrivileges {
		privs[i] = catalog.Privilege(pr)
	}
	for _, g := range []catalog.UpdatePermissions{
		{SecurableType: "catalog", FullName: e.Expect.Catalog, Changes: []catalog.PermissionsChange{{Principal: p.Email, Add: []catalog.Privilege{catalog.PrivilegeUseCatalog}}}},
		{SecurableType: "schema", FullName: sc.FullName, Changes: []catalog.PermissionsChange{{Principal: p.Email, Add: privs}}},
	} {
		if _, err := e.Workspace.Grants.Update(ctx, g); err != nil {
			t.Fatalf("grant on %s to %s: %v", g.FullName, p.Email, err)
		}
	}
	policy, err := e.PolicyID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runtime, err := e.Workspace.Clusters.SelectSparkVersion(ctx, compute.SparkVersionRequest{Latest: true, LongTermSupport: true, ML: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.Workspace.Clusters.Create(ctx, compute.CreateCluster{
		ClusterName: p.ClusterName, SparkVersion: runtime, NodeTypeId: "Standard_DS3_v2", PolicyId: policy,
		NumWorkers: 0, ForceSendFields: []string{"NumWorkers"},
		SparkConf:        map[string]string{"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
		CustomTags:       map[string]string{"ResourceClass": "SingleNode", e.Expect.TagKey: p.Email},
		DataSecurityMode: compute.DataSecurityModeSingleUser, SingleUserName: p.Email,
		AutoterminationMinutes: 60, ApplyPolicyDefaultValues: true,
	})
	if err != nil {
		t.Fatalf("create cluster for %s: %v", p.Email, err)
	}
	if _, err := e.Workspace.Clusters.UpdatePermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: w.ClusterId,
		AccessControlList: []compute.ClusterAccessControlRequest{{UserName: p.Email, PermissionLevel: compute.ClusterPermissionLevelCanRestart}}}); err != nil {
		t.Fatalf("CAN_RESTART for %s: %v", p.Email, err)
	}
	if _, err := e.Workspace.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: w.ClusterId}); err != nil {
		t.Fatalf("terminate %s: %v", w.ClusterId, err)
	}
}

func participants(t *testing.T, n int) []roster.Participant {
	t.Helper()
	r, err := roster.Parse("drift.csv", roster.Synthesize(n, 3, "drift.example.com"), roster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Participants
}

// TestMakeAndVerify: Verify finds nothing on intact participants; each kind
// of drift, made on its own participant, is what Verify then finds there and
// only there; a running cluster is RUNNING and no finding.
func TestMakeAndVerify(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ps := participants(t, len(Kinds)+1)
	for _, p := range ps {
		provision(t, e, p)
	}
	intact := ps[len(Kinds)]

	all, err := e.VerifyAll(ctx, ps, 4)
	if err != nil {
		t.Fatalf("VerifyAll after provisioning: %v", err)
	}
	for _, p := range ps {
		if fs := all[p.Email]; len(fs) != 0 {
			t.Errorf("%s freshly provisioned: findings %v, want none", p.Email, fs)
		}
	}
	if len(all) != len(ps) {
		t.Errorf("VerifyAll answered %d participants, want %d", len(all), len(ps))
	}

	var targets []Target
	for i, k := range Kinds {
		targets = append(targets, Target{ps[i], k})
	}
	made, errs := e.MakeAll(ctx, targets)
	if errs != nil {
		t.Fatalf("MakeAll: %v", errs)
	}
	applied := map[Kind]Applied{}
	for i, a := range made {
		k := Kinds[i]
		if a.Detail == "" || a.Kind != k || a.Email != ps[i].Email {
			t.Errorf("MakeAll[%s] = %+v, want the kind, the email and what was done", k, a)
		}
		applied[k] = a
	}

	all, err = e.VerifyAll(ctx, ps, 4)
	if err != nil {
		t.Fatalf("VerifyAll after the drift: %v", err)
	}
	for i, k := range Kinds {
		p := ps[i]
		got := FindingKinds(all[p.Email])
		switch k {
		case Running:
			if len(got) != 0 {
				t.Errorf("%s (running): findings %v, want none", p.Email, all[p.Email])
			}
		case UserMissing:
			// Deleting a user drops its assignment, grants and cluster ACL entries too.
			if !slices.Contains(got, UserMissing) {
				t.Errorf("%s (user_missing): findings %v, want user_missing", p.Email, all[p.Email])
			}
			for _, g := range got {
				if g != UserMissing && g != GrantMissing && g != PermissionMissing {
					t.Errorf("%s (user_missing): finding %s, want only what a deleted user loses", p.Email, g)
				}
			}
		default:
			if !slices.Equal(got, []Kind{k}) {
				t.Errorf("%s (%s): findings %v, want exactly %s", p.Email, k, all[p.Email], k)
			}
		}
	}
	if fs := all[intact.Email]; len(fs) != 0 {
		t.Errorf("%s left alone: findings %v, want none", intact.Email, fs)
	}
	if fs, err := e.Verify(ctx, intact); err != nil || len(fs) != 0 {
		t.Errorf("Verify(%s) = %v, %v, want nothing", intact.Email, fs, err)
	}
	if fs, err := e.Verify(ctx, ps[slices.Index(Kinds, GrantMissing)]); err != nil || len(fs) != 1 || !strings.Contains(fs[0].Detail, "USE_SCHEMA") {
		t.Errorf("Verify(grant_missing) = %v, %v, want the revoked USE_SCHEMA named", fs, err)
	}

	run := applied[Running]
	if st, err := e.ClusterState(ctx, run.ClusterID); err != nil || st != compute.StateRunning {
		t.Errorf("running cluster %s: %s, %v, want RUNNING", run.ClusterID, st, err)
	}
	if extra := applied[ExtraClusters]; extra.ClusterID == "" {
		t.Errorf("extra_clusters: no cluster id in %+v", extra)
	} else if cs := all[extra.Email]; len(cs) != 1 || !strings.Contains(cs[0].Detail, extra.ClusterID) {
		t.Errorf("extra_clusters finding %v does not name the copy %s", cs, extra.ClusterID)
	}

	// A drift needs what it acts on, and says what it looked for.
	for _, tc := range []struct {
		p    roster.Participant
		k    Kind
		want string
	}{
		{ps[slices.Index(Kinds, UserMissing)], UserInactive, "no account user"},
		{ps[slices.Index(Kinds, SchemaMissing)], GrantMissing, "no schema"},
		{ps[slices.Index(Kinds, ClusterGone)], Running, "no cluster tagged"},
		{ps[slices.Index(Kinds, PermissionMissing)], PermissionMissing, "no direct CAN_RESTART"},
		{intact, Kind("cluster_on_fire"), "unknown drift kind"},
	} {
		if _, err := e.Make(ctx, tc.p, tc.k); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Make(%s) on %s: error %v, want one containing %q", tc.k, tc.p.Email, err, tc.want)
		}
	}
}

// TestMake_one: Make alone (listing the clusters itself) makes a drift
// Verify sees; a participant whose email is written in capitals is the same
// participant.
func TestMake_one(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	p := participants(t, 1)[0]
	provision(t, e, p)
	upper := p
	upper.Email = strings.ToUpper(p.Email)
	a, err := e.Make(ctx, upper, ExtraClusters)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := e.Verify(ctx, upper)
	if err != nil || !slices.Equal(FindingKinds(fs), []Kind{ExtraClusters}) || !strings.Contains(fs[0].Detail, a.ClusterID) {
		t.Errorf("after Make(extra_clusters) = %+v: findings %v, %v, want extra_clusters naming the copy", a, fs, err)
	}
	if _, err := e.Make(ctx, upper, PermissionMissing); err != nil {
		t.Fatal(err)
	}
	if fs, _ := e.Verify(ctx, p); !slices.Equal(FindingKinds(fs), []Kind{ExtraClusters, PermissionMissing}) {
		t.Errorf("after permission_missing on the oldest cluster: findings %v", fs)
	}
}

// TestVerify_schemaMark: a schema under the roster's name that is not marked
// as the participant's is not theirs; one marked as theirs under another
// name (Cohort's <schema>_2) is.
func TestVerify_schemaMark(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ps := participants(t, 2)
	p, other := ps[0], ps[1]
	provision(t, e, p)
	full := e.schemaFullName(p.Schema)
	if err := e.Workspace.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: full, Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Workspace.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: e.Expect.Catalog, Name: p.Schema,
		Properties: map[string]string{ownerProperty: OwnerMark(other.Email)}}); err != nil {
		t.Fatal(err)
	}
	fs, err := e.Verify(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := FindingKinds(fs); !slices.Equal(got, []Kind{SchemaMissing}) || !strings.Contains(fs[0].Detail, "not marked as theirs") {
		t.Errorf("schema marked as someone else's: findings %v, want schema_missing saying so", fs)
	}
	if _, err := e.Make(ctx, p, SchemaMissing); err == nil || !strings.Contains(err.Error(), "not marked as") {
		t.Errorf("Make(schema_missing) on someone else's schema: %v, want a refusal", err)
	}

	// Theirs under another name, with their grants: intact.
	sc, err := e.Workspace.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: e.Expect.Catalog, Name: p.Schema + "_2",
		Properties: map[string]string{ownerProperty: OwnerMark(p.Email)}})
	if err != nil {
		t.Fatal(err)
	}
	privs := make([]catalog.Privilege, len(e.Expect.SchemaPrivileges))
	for i, pr := range e.Expect.SchemaPrivileges {
		privs[i] = catalog.Privilege(pr)
	}
	if _, err := e.Workspace.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "schema", FullName: sc.FullName,
		Changes: []catalog.PermissionsChange{{Principal: p.Email, Add: privs}}}); err != nil {
		t.Fatal(err)
	}
	if fs, err := e.Verify(ctx, p); err != nil || len(fs) != 0 {
		t.Errorf("schema %s marked as theirs: findings %v, %v, want none", sc.FullName, fs, err)
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%s) = %s, %v", k, got, err)
		}
	}
	if _, err := ParseKind("user-missing"); err == nil || !strings.Contains(err.Error(), "user_missing") {
		t.Errorf("ParseKind(user-missing): %v, want an error listing the known kinds", err)
	}
}
