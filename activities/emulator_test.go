package activities

// Integration tests: the activities drive the real SDK (built by NewClients,
// authenticated from DATABRICKS_TOKEN) against the emulator on httptest, and
// the end state is checked through the SDK too.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

const (
	emuToken     = "dapi-activities-admin"
	emuUserToken = "dapi-activities-user"
	emuAccount   = "acc-activities"
	emuWorkspace = int64(4455667788990011)
)

// emuEnv is one emulator plus the activities and raw SDK clients over it.
type emuEnv struct {
	t    *testing.T
	emu  *emulator.Server
	srv  *httptest.Server
	acts *Activities
	a    *databricks.AccountClient
	w    *databricks.WorkspaceClient
	spec wire.ClusterSpec
	// records is what the participants' runs recorded, by email, as the
	// participant workflow carries it forward (see provisionUser,
	// provisionSchema and offboard).
	records map[string]*record
}

// record is what a participant's runs recorded so far.
type record struct {
	wire.PriorRunsResult
	createdNow bool // the user was created by the latest provisionUser
}

func (e *emuEnv) record(email string) *record {
	if e.records == nil {
		e.records = map[string]*record{}
	}
	r := e.records[strings.ToLower(email)]
	if r == nil {
		r = &record{}
		e.records[strings.ToLower(email)] = r
	}
	return r
}

type setupOpts struct {
	emulator     emulator.Options
	retryTimeout time.Duration
	// wrap, if set, wraps the emulator's handler (see startEmulatorBehind).
	wrap func(http.Handler) http.Handler
}

// setup starts an emulator, builds the clients through NewClients with the
// token in DATABRICKS_TOKEN (as in production: unified auth only), seeds a
// shared schema for the shared grants and runs SetupBatch.
func setup(t *testing.T, o setupOpts) *emuEnv {
	t.Helper()
	eo := o.emulator
	eo.Token, eo.UserToken, eo.AccountID, eo.WorkspaceID = emuToken, emuUserToken, emuAccount, emuWorkspace
	eo.Latency, eo.RateLimits = "none", "none"
	if eo.Seed == 0 {
		eo.Seed = 42
	}
	// As an admin prepares a workspace: the shared catalog with the shared
	// data, and Cohort's catalog, made beforehand (the metastore has no root
	// storage). Assignments stay flaky right after a user's creation, for a
	// window short enough for one attempt's AssignmentWait to ride out.
	if eo.Catalogs == nil {
		eo.Catalogs = []string{"main", "cohort"}
	}
	if eo.AssignmentFlakyWindow == 0 {
		eo.AssignmentFlakyWindow = 300 * time.Millisecond
	}
	if eo.ClusterStartDelay == 0 {
		eo.ClusterStartDelay = 50 * time.Millisecond
	}
	if eo.ClusterStopDelay == 0 {
		eo.ClusterStopDelay = 50 * time.Millisecond
	}
	emu, srv, a, w := startEmulatorBehind(t, eo, emuToken, o.retryTimeout, o.wrap)
	acc, ws := FromClients(a, w)
	e := &emuEnv{t: t, emu: emu, srv: srv, a: a, w: w}
	e.acts = &Activities{
		Account: acc, Workspace: ws,
		Limits: NewLimits(RateRates{SCIMWrite: 500, SCIMList: 400, SCIMGet: 500, SCIMPatch: 500, PermissionsWrite: 500,
			PermissionsRead: 500, Assignments: 500, UnityCatalog: 500, Clusters: 500}, 1),
		Settings: Settings{
			WorkspaceID:      emuWorkspace,
			WorkspaceHost:    "https://adb-4455667788990011.11.azuredatabricks.net",
			Catalog:          "cohort",
			SchemaPrivileges: []string{"USE_SCHEMA", "CREATE_TABLE", "CREATE_VOLUME", "SELECT", "MODIFY"},
			SharedGrants: []Grant{
				{Securable: "catalog", Name: "main", Privileges: []string{"USE_CATALOG"}},
				{Securable: "schema", Name: "main.shared", Privileges: []string{"USE_SCHEMA", "SELECT"}},
			},
			PolicyName:       "Personal Compute",
			NodeType:         "Standard_DS3_v2",
			Autotermination:  60,
			TagKey:           fxTag,
			StopPollInterval: 20 * time.Millisecond,
			AssignmentWait:   2 * time.Second,
		},
	}
	if _, err := w.Schemas.Create(context.Background(), catalog.CreateSchema{CatalogName: "main", Name: "shared"}); err != nil {
		t.Fatalf("seed shared schema: %v", err)
	}
	res, err := run[wire.SetupBatchInput, wire.SetupBatchResult](t, e.acts, func(a *Activities) any { return a.SetupBatch }, wire.SetupBatchInput{BatchID: "b1"})
	if err != nil {
		t.Fatalf("SetupBatch: %v", err)
	}
	e.spec = res.Cluster
	return e
}

// startEmulator serves an emulator with options eo on httptest and builds
// the SDK clients through NewClients with token in DATABRICKS_TOKEN, as in
// production (unified auth only; the environment's other Databricks
// settings cleared). A zero retryTimeout is 5 s.
func startEmulator(t *testing.T, eo emulator.Options, token string, retryTimeout time.Duration) (*emulator.Server, *httptest.Server, *databricks.AccountClient, *databricks.WorkspaceClient) {
	t.Helper()
	return startEmulatorBehind(t, eo, token, retryTimeout, nil)
}

// startEmulatorBehind is startEmulator with the emulator's handler wrapped
// by wrap (nil: not wrapped), to watch or hold the requests it answers.
func startEmulatorBehind(t *testing.T, eo emulator.Options, token string, retryTimeout time.Duration,
	wrap func(http.Handler) http.Handler) (*emulator.Server, *httptest.Server, *databricks.AccountClient, *databricks.WorkspaceClient) {
	t.Helper()
	emu, err := emulator.New(eo)
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	var h http.Handler = emu
	if wrap != nil {
		h = wrap(emu)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); emu.Close() })
	for _, k := range []string{"DATABRICKS_HOST", "DATABRICKS_ACCOUNT_ID", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
		"ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_TENANT_ID", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE"} {
		t.Setenv(k, "")
	}
	t.Setenv("DATABRICKS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("DATABRICKS_TOKEN", token)
	if retryTimeout == 0 {
		retryTimeout = 5 * time.Second
	}
	a, w, err := NewClients(Connection{
		AccountHost: srv.URL, AccountID: emuAccount, WorkspaceHost: srv.URL, WorkspaceID: emuWorkspace,
		RetryTimeout: retryTimeout, HTTPTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("NewClients: %v", err)
	}
	return emu, srv, a, w
}

// control calls the emulator's control API with the admin token.
func (e *emuEnv) control(method, path string, body any, out any) {
	e.t.Helper()
	var r *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+emuToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		e.t.Fatalf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			e.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (e *emuEnv) fault(endpoint, mode string, count int) {
	e.t.Helper()
	e.control("POST", "/emulator/v1/faults", map[string]any{"endpoint": endpoint, "mode": mode, "count": count}, nil)
}

// requests returns how many answers an endpoint gave with a status.
func (e *emuEnv) requests(endpoint, status string) int64 {
	var st struct {
		Requests map[string]map[string]int64 `json:"requests"`
	}
	e.control("GET", "/emulator/v1/stats", nil, &st)
	return st.Requests[endpoint][status]
}

func participant(email string) roster.Participant {
	local := strings.NewReplacer(".", "_", "-", "_").Replace(strings.Split(email, "@")[0])
	return roster.Participant{Email: email, DisplayName: "Ana Lima 🚀 José", Schema: local, ClusterName: "cohort-" + local}
}

// provisionUser runs steps create_user and assign_workspace, as the
// participant workflow does: one activity each.
func (e *emuEnv) provisionUser(p roster.Participant) (wire.CreateUserResult, error) {
	u, err := run[wire.CreateUserInput, wire.CreateUserResult](e.t, e.acts, func(a *Activities) any { return a.CreateUser },
		wire.CreateUserInput{Participant: p})
	if err != nil {
		return u, err
	}
	rec := e.record(p.Email)
	rec.createdNow = u.Created
	if u.Created {
		rec.CreatedUserID = u.UserID
	}
	_, err = run[wire.AssignWorkspaceInput, wire.AssignWorkspaceResult](e.t, e.acts, func(a *Activities) any { return a.AssignWorkspace },
		wire.AssignWorkspaceInput{Email: p.Email, UserID: u.UserID})
	return u, err
}

// provisionSchema runs steps create_schema and grant, and records the
// schema and what was added.
func (e *emuEnv) provisionSchema(p roster.Participant) (wire.CreateSchemaResult, error) {
	rec := e.record(p.Email)
	s, err := run[wire.CreateSchemaInput, wire.CreateSchemaResult](e.t, e.acts, func(a *Activities) any { return a.CreateSchema },
		wire.CreateSchemaInput{Participant: p, Catalog: "cohort", Recorded: rec.Schema})
	if err != nil {
		return s, err
	}
	rec.Schema = s.FullName
	g, err := run[wire.GrantInput, wire.GrantResult](e.t, e.acts, func(a *Activities) any { return a.Grant },
		wire.GrantInput{Principal: p.Email, Catalog: "cohort", Schema: s.FullName, PrincipalCreated: rec.createdNow})
	rec.Grants, rec.GrantsRecorded = wire.MergeGrants(rec.Grants, g.Added), true
	return s, err
}

// provisionCluster runs steps create_cluster, set_permission and
// stop_cluster; the result's State is the stop's.
func (e *emuEnv) provisionCluster(p roster.Participant, lookup bool) (wire.CreateClusterResult, error) {
	c, err := run[wire.CreateClusterInput, wire.CreateClusterResult](e.t, e.acts, func(a *Activities) any { return a.CreateCluster },
		wire.CreateClusterInput{Participant: p, Spec: e.spec, BatchID: "b1", Lookup: lookup})
	if err != nil {
		return c, err
	}
	if _, err := run[wire.SetPermissionInput, wire.SetPermissionResult](e.t, e.acts, func(a *Activities) any { return a.SetPermission },
		wire.SetPermissionInput{Principal: p.Email, ClusterID: c.ClusterID}); err != nil {
		return c, err
	}
	stop, err := run[wire.StopClusterInput, wire.StopClusterResult](e.t, e.acts, func(a *Activities) any { return a.StopCluster },
		wire.StopClusterInput{ClusterID: c.ClusterID, State: c.State})
	c.State = stop.State
	return c, err
}

// provision runs the seven steps and fails the test on error.
func (e *emuEnv) provision(p roster.Participant) (wire.CreateUserResult, wire.CreateSchemaResult, wire.CreateClusterResult) {
	e.t.Helper()
	u, err := e.provisionUser(p)
	if err != nil {
		e.t.Fatalf("user: %v", err)
	}
	s, err := e.provisionSchema(p)
	if err != nil {
		e.t.Fatalf("schema: %v", err)
	}
	c, err := e.provisionCluster(p, !u.Created)
	if err != nil {
		e.t.Fatalf("cluster: %v", err)
	}
	return u, s, c
}

// checkState verifies the participant's whole end state through the SDK.
func (e *emuEnv) checkState(p roster.Participant, userID, clusterID string) {
	e.t.Helper()
	ctx := context.Background()
	email := strings.ToLower(p.Email)

	users, err := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "` + email + `"`})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(users) != 1 || users[0].Id != userID || users[0].DisplayName != p.DisplayName {
		e.t.Errorf("users named %s = %+v, want exactly one with id %s and display name %q", email, users, userID, p.DisplayName)
	}

	as, err := e.a.WorkspaceAssignment.ListAll(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: emuWorkspace})
	if err != nil {
		e.t.Fatal(err)
	}
	var perms [][]iam.WorkspacePermission
	for _, x := range as {
		if x.Principal != nil && userID != "" && x.Principal.UserName == email {
			perms = append(perms, x.Permissions)
		}
	}
	if len(perms) != 1 || !slices.Equal(perms[0], []iam.WorkspacePermission{iam.WorkspacePermissionUser}) {
		e.t.Errorf("workspace assignments of %s = %v, want one with [USER]", email, perms)
	}

	full := "cohort." + strings.ToLower(p.Schema)
	if _, err := e.w.Schemas.GetByFullName(ctx, full); err != nil {
		e.t.Errorf("schema %s: %v", full, err)
	}
	wantGrants := map[[2]string][]string{
		{"catalog", "cohort"}:     {"USE_CATALOG"},
		{"schema", full}:          {"CREATE_TABLE", "CREATE_VOLUME", "MODIFY", "SELECT", "USE_SCHEMA"},
		{"catalog", "main"}:       {"USE_CATALOG"},
		{"schema", "main.shared"}: {"SELECT", "USE_SCHEMA"},
	}
	for sec, want := range wantGrants {
		g, err := e.w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: sec[0], FullName: sec[1], Principal: email})
		if err != nil {
			e.t.Errorf("grants on %v: %v", sec, err)
			continue
		}
		var got []string
		for _, pa := range g.PrivilegeAssignments {
			if strings.EqualFold(pa.Principal, email) {
				for _, pr := range pa.Privileges {
					got = append(got, string(pr))
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			e.t.Errorf("grants of %s on %v = %v, want %v", email, sec, got, want)
		}
	}
	// Nothing granted to anyone else on the participant's schema.
	g, err := e.w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: "schema", FullName: full})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, pa := range g.PrivilegeAssignments {
		if !strings.EqualFold(pa.Principal, email) {
			e.t.Errorf("schema %s grants %v to %s, want only the participant", full, pa.Privileges, pa.Principal)
		}
	}

	all, err := e.w.Clusters.ListAll(ctx, compute.ListClustersRequest{FilterBy: &compute.ListClustersFilterBy{PolicyId: e.spec.PolicyID}})
	if err != nil {
		e.t.Fatal(err)
	}
	var mine []compute.ClusterDetails
	for _, c := range all {
		if strings.EqualFold(c.CustomTags[fxTag], email) {
			mine = append(mine, c)
		}
	}
	if len(mine) != 1 {
		e.t.Fatalf("clusters tagged %s = %d, want exactly 1", email, len(mine))
	}
	c := mine[0]
	if c.ClusterId != clusterID || !stopped(c.State) || c.PolicyId != e.spec.PolicyID ||
		c.SingleUserName != email || c.DataSecurityMode != compute.DataSecurityModeSingleUser || c.NumWorkers != 0 ||
		c.SparkConf["spark.databricks.cluster.profile"] != "singleNode" || c.CustomTags["ResourceClass"] != "SingleNode" {
		e.t.Errorf("cluster = %+v, want %s TERMINATING or TERMINATED, single node, SINGLE_USER for %s under policy %s", c, clusterID, email, e.spec.PolicyID)
	}
	acl, err := e.w.Clusters.GetPermissions(ctx, compute.GetClusterPermissionsRequest{ClusterId: c.ClusterId})
	if err != nil {
		e.t.Fatal(err)
	}
	if got := directLevels(acl, email); !slices.Equal(got, []compute.ClusterPermissionLevel{compute.ClusterPermissionLevelCanRestart}) {
		e.t.Errorf("participant's direct levels = %v, want [CAN_RESTART]", got)
	}
	adminsInherited := false
	for _, x := range acl.AccessControlList {
		if x.GroupName == "admins" {
			for _, p := range x.AllPermissions {
				adminsInherited = adminsInherited || (p.Inherited && p.PermissionLevel == compute.ClusterPermissionLevelCanManage)
			}
		}
	}
	if !adminsInherited {
		e.t.Errorf("admins' inherited CAN_MANAGE missing from %+v", acl.AccessControlList)
	}
	if got := directLevels(acl, emulator.AdminUserName); !slices.Equal(got, []compute.ClusterPermissionLevel{compute.ClusterPermissionLevelCanManage}) {
		e.t.Errorf("creator's direct levels = %v, want [CAN_MANAGE] untouched", got)
	}
}

func TestEmulator_setupBatchResolvesSpec(t *testing.T) {
	e := setup(t, setupOpts{})
	// The newest ML LTS is listed without a minor version (18.x-...), which
	// SDKs before v0.173.0 sorted last.
	if e.spec.PolicyID == "" || e.spec.SparkVersion != "18.x-cpu-ml-scala2.13" || e.spec.NodeType != "Standard_DS3_v2" {
		t.Errorf("spec = %+v, want the Personal Compute policy, 18.x LTS ML, Standard_DS3_v2", e.spec)
	}
	// Smallest: the emulator's smallest general-purpose node with a local disk.
	e.acts.Settings.NodeType = "smallest"
	res, err := run[wire.SetupBatchInput, wire.SetupBatchResult](t, e.acts, func(a *Activities) any { return a.SetupBatch }, wire.SetupBatchInput{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cluster.NodeType != "Standard_DS3_v2" {
		t.Errorf("smallest node type = %s, want Standard_DS3_v2", res.Cluster.NodeType)
	}
	e.acts.Settings.NodeType = "Standard_Nope"
	_, err = run[wire.SetupBatchInput, wire.SetupBatchResult](t, e.acts, func(a *Activities) any { return a.SetupBatch }, wire.SetupBatchInput{})
	wantAppErr(t, err, wire.ErrNotReady, false)
}

func TestEmulator_provisionParticipant(t *testing.T) {
	e := setup(t, setupOpts{})
	p := participant("Ana.Lima@Example.com")
	u, s, c := e.provision(p)
	if !u.Created || !s.Created || !c.Created {
		t.Errorf("created = %v %v %v, want all true on a first run", u.Created, s.Created, c.Created)
	}
	if s.FullName != "cohort.ana_lima" || !stopped(compute.State(c.State)) ||
		c.URL != "https://adb-4455667788990011.11.azuredatabricks.net/compute/clusters/"+c.ClusterID {
		t.Errorf("results = %+v %+v", s, c)
	}
	e.checkState(p, u.UserID, c.ClusterID)
}

// Every activity repeated gives the same end state and adopts instead of
// creating.
func TestEmulator_idempotent(t *testing.T) {
	e := setup(t, setupOpts{})
	p := participant("bo@example.com")
	u1, s1, c1 := e.provision(p)
	for i := range 2 {
		u2, s2, c2 := e.provision(p)
		if u2.UserID != u1.UserID || s2.FullName != s1.FullName || c2.ClusterID != c1.ClusterID {
			t.Fatalf("repeat %d: %+v %+v %+v, want the same objects as %+v %+v %+v", i, u2, s2, c2, u1, s1, c1)
		}
		if u2.Created || s2.Created || c2.Created {
			t.Errorf("repeat %d created something: %v %v %v", i, u2.Created, s2.Created, c2.Created)
		}
	}
	// Each step on its own, again.
	if _, err := e.provisionSchema(p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.provisionUser(p); err != nil {
		t.Fatal(err)
	}
	// A conflict costs exactly one SCIM list request (setup's readiness
	// checks list the account's users once more).
	if n := e.requests("scim.users.list", "200"); n != 4 {
		t.Errorf("SCIM list requests = %d, want 4 (one per adopting CreateUser, one at setup)", n)
	}
	e.checkState(p, u1.UserID, c1.ClusterID)
}

// A cluster the participant started again is found, re-permissioned and
// terminated again.
func TestEmulator_restartedClusterIsStoppedAgain(t *testing.T) {
	e := setup(t, setupOpts{})
	p := participant("cy@example.com")
	u, _, c := e.provision(p)
	// A cluster can be started once it is TERMINATED.
	if _, err := e.w.Clusters.WaitGetClusterTerminated(context.Background(), c.ClusterID, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Clusters.Start(context.Background(), compute.StartCluster{ClusterId: c.ClusterID}); err != nil {
		t.Fatal(err)
	}
	c2, err := e.provisionCluster(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if c2.ClusterID != c.ClusterID || !stopped(compute.State(c2.State)) {
		t.Errorf("got %+v", c2)
	}
	e.checkState(p, u.UserID, c.ClusterID)
}

func TestEmulator_userCreateAppliedThenFails(t *testing.T) {
	for _, mode := range []string{"applied_then_503", "applied_then_reset"} {
		t.Run(mode, func(t *testing.T) {
			e := setup(t, setupOpts{})
			p := participant("dee@example.com")
			e.fault("scim.users.create", mode, 1)
			u, err := e.provisionUser(p)
			if err != nil {
				t.Fatal(err)
			}
			if u.Created {
				t.Errorf("Created = true, want the applied user adopted")
			}
			_, _, c := e.provision(p)
			e.checkState(p, u.UserID, c.ClusterID) // exactly one user
		})
	}
}

func TestEmulator_clusterCreateAppliedThenFails(t *testing.T) {
	for _, mode := range []string{"applied_then_503", "applied_then_reset"} {
		t.Run(mode, func(t *testing.T) {
			e := setup(t, setupOpts{})
			p := participant("eve@example.com")
			u, err := e.provisionUser(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.provisionSchema(p); err != nil {
				t.Fatal(err)
			}
			e.fault("clusters.create", mode, 1)
			c, err := e.provisionCluster(p, false) // a first run: no lookup before the create
			if err != nil {
				t.Fatal(err)
			}
			e.checkState(p, u.UserID, c.ClusterID) // exactly one cluster
		})
	}
}

// A 500 on create (not retried by the SDK, not applied) is a retryable
// failure; the next attempt creates the one cluster.
func TestEmulator_clusterCreate500IsRetryable(t *testing.T) {
	e := setup(t, setupOpts{})
	p := participant("fay@example.com")
	u, err := e.provisionUser(p)
	if err != nil {
		t.Fatal(err)
	}
	e.fault("clusters.create", "500", 1)
	_, err = e.provisionCluster(p, false)
	wantAppErr(t, err, wire.ErrUnavailable, true)
	c, err := e.provisionCluster(p, true) // the retry attempt looks
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.provisionSchema(p); err != nil {
		t.Fatal(err)
	}
	e.checkState(p, u.UserID, c.ClusterID)
}

func TestEmulator_refusedUserIsInvalidInput(t *testing.T) {
	e := setup(t, setupOpts{})
	e.control("PUT", "/emulator/v1/rules", map[string]any{"refuse_users": []string{"^refused@"}}, nil)
	_, err := e.provisionUser(participant("refused@example.com"))
	wantAppErr(t, err, wire.ErrInvalidInput, false)
}

// 429s that outlast the SDK's retry window surface as wire.ErrThrottled with a
// jittered NextRetryDelay.
func TestEmulator_throttledBeyondSDKWindow(t *testing.T) {
	e := setup(t, setupOpts{retryTimeout: time.Second})
	e.fault("scim.users.create", "429", 20)
	_, err := e.provisionUser(participant("gus@example.com"))
	ae := wantAppErr(t, err, wire.ErrThrottled, true)
	if d := ae.NextRetryDelay(); d < throttleBase || d >= throttleBase+throttleJitter {
		t.Errorf("NextRetryDelay = %v", d)
	}
	if n := e.requests("scim.users.create", "429"); n < 1 {
		t.Errorf("429s answered = %d", n)
	}
}

// Right after assignment the principal is invisible for a while: grants and
// the cluster fail retryably, then succeed.
func TestEmulator_assignmentLag(t *testing.T) {
	clock := emulator.NewManualClock()
	e := setup(t, setupOpts{emulator: emulator.Options{AssignmentLag: 700 * time.Millisecond, Now: clock.Now}})
	p := participant("hal@example.com")
	u, err := e.provisionUser(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.provisionSchema(p)
	wantAppErr(t, err, wire.ErrPrincipalNotReady, true)
	_, err = e.provisionCluster(p, false)
	wantAppErr(t, err, wire.ErrPrincipalNotReady, true)
	clock.Advance(701 * time.Millisecond)
	if _, err := e.provisionSchema(p); err != nil {
		t.Fatal(err)
	}
	c, err := e.provisionCluster(p, true)
	if err != nil {
		t.Fatal(err)
	}
	e.checkState(p, u.UserID, c.ClusterID)
}

// Several participants in parallel, as a worker runs them.
func TestEmulator_parallelParticipants(t *testing.T) {
	e := setup(t, setupOpts{})
	emails := []string{"p1@example.com", "p2@example.com", "p3@example.com", "p4@example.com", "p5@example.com", "p6@example.com"}
	type out struct {
		user, cluster string
		err           error
	}
	results := make(chan out, len(emails))
	for _, m := range emails {
		go func() {
			p := participant(m)
			u, err := e.provisionUser(p)
			if err == nil {
				_, err = e.provisionSchema(p)
			}
			var c wire.CreateClusterResult
			if err == nil {
				c, err = e.provisionCluster(p, false)
			}
			results <- out{u.UserID, c.ClusterID, err}
		}()
	}
	got := map[string]out{}
	for _, m := range emails {
		r := <-results
		if r.err != nil {
			t.Fatalf("participant failed: %v", r.err)
		}
		got[m] = r
	}
	for _, m := range emails {
		p := participant(m)
		users, err := e.a.Users.ListAll(context.Background(), iam.ListAccountUsersRequest{Filter: `userName eq "` + m + `"`})
		if err != nil || len(users) != 1 {
			t.Fatalf("users %s = %d (%v)", m, len(users), err)
		}
		var cid string
		for _, r := range got {
			if r.user == users[0].Id {
				cid = r.cluster
			}
		}
		e.checkState(p, users[0].Id, cid)
	}
}

// The earlier shape's ProvisionAccess runs user, assignment, schema and
// grants as one activity; an attempt that resumes from a recorded user skips
// the SCIM create.
func TestEmulator_provisionAccess(t *testing.T) {
	e := setup(t, setupOpts{})
	p := participant("ida@example.com")
	got, err := run[wire.ProvisionAccessInput, wire.ProvisionAccessResult](t, e.acts, func(a *Activities) any { return a.ProvisionAccess },
		wire.ProvisionAccessInput{Participant: p, Catalog: "cohort"})
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID == "" || !got.UserCreated || got.Schema != "cohort.ida" {
		t.Fatalf("got %+v, want a created user and schema cohort.ida", got)
	}
	creates := e.emu.Stats().Requests["scim.users.create"]
	again, err := run[wire.ProvisionAccessInput, wire.ProvisionAccessResult](t, e.acts, func(a *Activities) any { return a.ProvisionAccess },
		wire.ProvisionAccessInput{Participant: p, Catalog: "cohort"}, progress{UserID: got.UserID, UserCreated: true})
	if err != nil {
		t.Fatal(err)
	}
	if again != got {
		t.Errorf("resumed attempt = %+v, want %+v", again, got)
	}
	if after := e.emu.Stats().Requests["scim.users.create"]; fmt.Sprint(after) != fmt.Sprint(creates) {
		t.Errorf("scim creates went from %v to %v: a resumed attempt must not create the user again", creates, after)
	}
	c, err := e.provisionCluster(p, !got.UserCreated)
	if err != nil {
		t.Fatal(err)
	}
	e.checkState(p, got.UserID, c.ClusterID)
}

// An account user synced from Entra has a userName that differs from the
// email, and the create conflicts on the email: the user is found by email
// and adopted (reactivated when inactive), and the grants, the cluster's
// single user and its permission name the userName.
func TestEmulator_adoptsUserByEmailAndReactivates(t *testing.T) {
	for _, inactive := range []bool{false, true} {
		t.Run(fmt.Sprintf("inactive=%v", inactive), func(t *testing.T) {
			e := setup(t, setupOpts{emulator: emulator.Options{Users: []emulator.SeedUser{
				{UserName: "synced-0042@tenant.example", Email: "kai@example.com", Inactive: inactive},
			}}})
			p := participant("kai@example.com")
			u, err := run[wire.CreateUserInput, wire.CreateUserResult](t, e.acts, func(a *Activities) any { return a.CreateUser },
				wire.CreateUserInput{Participant: p})
			if err != nil {
				t.Fatal(err)
			}
			if u.Created || u.UserName != "synced-0042@tenant.example" || u.Reactivated != inactive {
				t.Fatalf("CreateUser = %+v, want the synced user adopted (reactivated: %v)", u, inactive)
			}
			got, err := e.a.Users.GetById(context.Background(), u.UserID)
			if err != nil || !got.Active {
				t.Fatalf("user after CreateUser: %+v, %v; want active", got, err)
			}
			if _, err := run[wire.AssignWorkspaceInput, wire.AssignWorkspaceResult](t, e.acts, func(a *Activities) any { return a.AssignWorkspace },
				wire.AssignWorkspaceInput{Email: p.Email, UserID: u.UserID}); err != nil {
				t.Fatal(err)
			}
			s, err := run[wire.CreateSchemaInput, wire.CreateSchemaResult](t, e.acts, func(a *Activities) any { return a.CreateSchema },
				wire.CreateSchemaInput{Participant: p, Catalog: "cohort"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := run[wire.GrantInput, wire.GrantResult](t, e.acts, func(a *Activities) any { return a.Grant },
				wire.GrantInput{Principal: u.UserName, Catalog: "cohort", Schema: s.FullName}); err != nil {
				t.Fatal(err)
			}
			c, err := run[wire.CreateClusterInput, wire.CreateClusterResult](t, e.acts, func(a *Activities) any { return a.CreateCluster },
				wire.CreateClusterInput{Participant: p, Spec: e.spec, Lookup: true, UserName: u.UserName})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := run[wire.SetPermissionInput, wire.SetPermissionResult](t, e.acts, func(a *Activities) any { return a.SetPermission },
				wire.SetPermissionInput{Principal: u.UserName, ClusterID: c.ClusterID}); err != nil {
				t.Fatal(err)
			}
			cl, err := e.w.Clusters.GetByClusterId(context.Background(), c.ClusterID)
			if err != nil || cl.SingleUserName != u.UserName {
				t.Errorf("cluster single user = %q (%v), want %s", cl.SingleUserName, err, u.UserName)
			}
			if n := e.requests("scim.users.create", "201"); n != 0 {
				t.Errorf("%d users created, want the synced one adopted", n)
			}
		})
	}
}

// Right after a user's creation the assignment PUT fails now and then, with
// "Principal ... not in workspace ..." or with a 200 whose body carries an
// error: the step rides both out within its wait.
func TestEmulator_flakyAssignmentIsRetried(t *testing.T) {
	e := setup(t, setupOpts{emulator: emulator.Options{
		AssignmentFlakyShare: 1, AssignmentErrorBodyShare: 0.5, AssignmentFlakyWindow: 700 * time.Millisecond,
	}})
	for _, email := range []string{"lia@example.com", "max@example.com"} {
		p := participant(email)
		u, err := e.provisionUser(p)
		if err != nil {
			t.Fatalf("%s: %v", email, err)
		}
		as, err := e.a.WorkspaceAssignment.ListAll(context.Background(), iam.ListWorkspaceAssignmentRequest{WorkspaceId: emuWorkspace})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(as, func(x iam.PermissionAssignment) bool { return x.Principal != nil && x.Principal.UserName == email }) {
			t.Errorf("%s (user %s) is not assigned to the workspace", email, u.UserID)
		}
	}
	if n := e.requests("assignments.put", "404") + e.requests("assignments.put", "200"); n < 4 {
		t.Errorf("assignment PUTs = %d, want the flaky answers retried", n)
	}
}

// A 200 whose body carries an error did nothing: the PUT is sent again,
// with no listing to confirm what was not done.
func TestEmulator_assignmentErrorBodyIsRetriedWithoutListing(t *testing.T) {
	e := setup(t, setupOpts{emulator: emulator.Options{
		AssignmentFlakyShare: 1, AssignmentErrorBodyShare: 1, AssignmentFlakyWindow: 400 * time.Millisecond,
	}})
	p := participant("noa@example.com")
	lists := e.requests("assignments.list", "200") // setup's readiness check lists them once
	if _, err := e.provisionUser(p); err != nil {
		t.Fatal(err)
	}
	if n := e.requests("assignments.put", "200"); n < 2 {
		t.Errorf("assignment PUTs = %d, want the refused one sent again", n)
	}
	if n := e.requests("assignments.list", "200") - lists; n != 0 {
		t.Errorf("assignment lists = %d, want none: an answer with an error confirms nothing", n)
	}
}

// The account user cap is not retried, and the failure names it.
func TestEmulator_userCapIsNotRetried(t *testing.T) {
	e := setup(t, setupOpts{emulator: emulator.Options{MaxAccountUsers: 1}})
	if _, err := e.provisionUser(participant("first@example.com")); err != nil {
		t.Fatal(err)
	}
	_, err := e.provisionUser(participant("second@example.com"))
	ae := wantAppErr(t, err, wire.ErrQuotaExceeded, false)
	if !strings.Contains(ae.Message(), "cap") || !strings.Contains(ae.Message(), "limit of 1") {
		t.Errorf("message %q does not name the cap", ae.Message())
	}
}

// A cluster purged after the retention period is gone for the permission
// and stop steps (the participant workflow then creates another), and the
// cluster step, looking, creates a new one.
func TestEmulator_purgedClusterIsGone(t *testing.T) {
	clock := emulator.NewManualClock()
	e := setup(t, setupOpts{emulator: emulator.Options{Now: clock.Now, ClusterRetention: time.Hour}})
	p := participant("noa@example.com")
	u, _, c := e.provision(p)
	clock.Advance(2 * time.Hour)
	_, err := run[wire.SetPermissionInput, wire.SetPermissionResult](t, e.acts, func(a *Activities) any { return a.SetPermission },
		wire.SetPermissionInput{Principal: p.Email, ClusterID: c.ClusterID})
	wantAppErr(t, err, wire.ErrClusterGone, false)
	_, err = run[wire.StopClusterInput, wire.StopClusterResult](t, e.acts, func(a *Activities) any { return a.StopCluster },
		wire.StopClusterInput{ClusterID: c.ClusterID, State: "RUNNING"})
	wantAppErr(t, err, wire.ErrClusterGone, false)
	again, err := e.provisionCluster(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Created || again.ClusterID == c.ClusterID {
		t.Errorf("cluster step = %+v, want a new cluster for the purged %s", again, c.ClusterID)
	}
	e.checkState(p, u.UserID, again.ClusterID)
}

// createClusterKnown runs step create_cluster as a reconcile does: looking,
// with the cluster id Cohort recorded for the participant.
func (e *emuEnv) createClusterKnown(p roster.Participant, known string) (wire.CreateClusterResult, error) {
	return run[wire.CreateClusterInput, wire.CreateClusterResult](e.t, e.acts, func(a *Activities) any { return a.CreateCluster },
		wire.CreateClusterInput{Participant: p, Spec: e.spec, BatchID: "b1", Lookup: true, KnownClusterID: known})
}

// clusterCalls counts the clusters get, list and create requests since
// the last call (every status), and starts counting again.
func (e *emuEnv) clusterCalls() (get, list, create int64) {
	e.t.Helper()
	st := e.emu.Stats()
	sum := func(k string) (n int64) {
		for _, c := range st.Requests[k] {
			n += c
		}
		return n
	}
	e.control("POST", "/emulator/v1/stats/reset", nil, nil)
	return sum("clusters.get"), sum("clusters.list"), sum("clusters.create")
}

// A reconcile's cluster step finds the participant's cluster by the id
// Cohort recorded: one clusters/get, no listing, nothing created.
func TestEmulator_knownClusterIsOneGet(t *testing.T) {
	e := setup(t, setupOpts{})
	p := participant("ivo@example.com")
	// Others' clusters under the policy: a listing would page through them.
	for i := range 3 {
		e.provision(participant(fmt.Sprintf("other%d@example.com", i)))
	}
	u, _, c := e.provision(p)
	e.clusterCalls()
	got, err := e.createClusterKnown(p, c.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != c.ClusterID || got.Created {
		t.Errorf("cluster step = %+v, want %s adopted", got, c.ClusterID)
	}
	if get, list, create := e.clusterCalls(); get != 1 || list != 0 || create != 0 {
		t.Errorf("cluster step sent %d get, %d list, %d create; want 1 get and nothing else", get, list, create)
	}
	e.checkState(p, u.UserID, c.ClusterID)
}

// A recorded cluster that is gone (purged after the retention, or
// permanently deleted) sends the step to the listing, then a create.
func TestEmulator_knownClusterGoneIsRecreated(t *testing.T) {
	clock := emulator.NewManualClock()
	e := setup(t, setupOpts{emulator: emulator.Options{Now: clock.Now, ClusterRetention: time.Hour}})
	purged, deleted := participant("pia@example.com"), participant("dan@example.com")
	pu, _, pc := e.provision(purged)
	du, _, dc := e.provision(deleted)
	if err := e.w.Clusters.PermanentDelete(context.Background(), compute.PermanentDeleteCluster{ClusterId: dc.ClusterID}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	for _, tc := range []struct {
		p      roster.Participant
		userID string
		old    string
	}{{purged, pu.UserID, pc.ClusterID}, {deleted, du.UserID, dc.ClusterID}} {
		e.clusterCalls()
		got, err := e.createClusterKnown(tc.p, tc.old)
		if err != nil {
			t.Fatalf("%s: %v", tc.p.Email, err)
		}
		if !got.Created || got.ClusterID == tc.old {
			t.Errorf("%s: cluster step = %+v, want a new cluster for the gone %s", tc.p.Email, got, tc.old)
		}
		if get, list, create := e.clusterCalls(); get != 1 || list != 1 || create != 1 {
			t.Errorf("%s: cluster step sent %d get, %d list, %d create; want 1 each", tc.p.Email, get, list, create)
		}
		if _, err := run[wire.SetPermissionInput, wire.SetPermissionResult](t, e.acts, func(a *Activities) any { return a.SetPermission },
			wire.SetPermissionInput{Principal: tc.p.Email, ClusterID: got.ClusterID}); err != nil {
			t.Fatal(err)
		}
		if _, err := run[wire.StopClusterInput, wire.StopClusterResult](t, e.acts, func(a *Activities) any { return a.StopCluster },
			wire.StopClusterInput{ClusterID: got.ClusterID, State: got.State}); err != nil {
			t.Fatal(err)
		}
		e.checkState(tc.p, tc.userID, got.ClusterID)
	}
}

// A recorded id naming a cluster tagged for someone else is not adopted:
// the participant gets their own (found by the listing, or created).
func TestEmulator_knownClusterOfAnotherIsNotAdopted(t *testing.T) {
	e := setup(t, setupOpts{})
	owner, withOwn, without := participant("ola@example.com"), participant("eli@example.com"), participant("rui@example.com")
	_, _, oc := e.provision(owner)
	_, _, wc := e.provision(withOwn)
	e.clusterCalls()
	got, err := e.createClusterKnown(withOwn, oc.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != wc.ClusterID || got.Created {
		t.Errorf("%s: cluster step = %+v, want their own %s, not %s's %s", withOwn.Email, got, wc.ClusterID, owner.Email, oc.ClusterID)
	}
	if get, list, create := e.clusterCalls(); get != 1 || list != 1 || create != 0 {
		t.Errorf("%s: cluster step sent %d get, %d list, %d create; want 1 get, 1 list", withOwn.Email, get, list, create)
	}

	if _, err := e.provisionUser(without); err != nil {
		t.Fatal(err)
	}
	got, err = e.createClusterKnown(without, oc.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created || got.ClusterID == oc.ClusterID {
		t.Errorf("%s: cluster step = %+v, want a new cluster, not %s's %s", without.Email, got, owner.Email, oc.ClusterID)
	}
	c, err := e.w.Clusters.GetByClusterId(context.Background(), oc.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	if c.CustomTags[fxTag] != owner.Email {
		t.Errorf("%s's cluster is tagged %q now", owner.Email, c.CustomTags[fxTag])
	}
}
