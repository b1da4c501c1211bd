package activities

// Readiness checks against the emulator, strict as a real Azure workspace:
// a ready workspace, then each check failing on its own. Every plan must
// leave the workspace untouched (the emulator's write count).

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/compute"

	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

type planOpts struct {
	emulator emulator.Options
	token    string // default: the admin token
	settings func(*Settings)
}

type planEnv struct {
	t    *testing.T
	emu  *emulator.Server
	acts *Activities
}

// newPlanEnv starts an emulator (strict defaults unless opts relax them) and
// the activities over it, without running batch setup.
func newPlanEnv(t *testing.T, o planOpts) *planEnv {
	t.Helper()
	eo := o.emulator
	eo.Token, eo.UserToken, eo.AccountID, eo.WorkspaceID = emuToken, emuUserToken, emuAccount, emuWorkspace
	eo.Latency, eo.RateLimits, eo.Seed = "none", "none", 42
	eo.ClusterStartDelay, eo.ClusterStopDelay = 50*time.Millisecond, 50*time.Millisecond
	token := cmp.Or(o.token, emuToken)
	emu, _, a, w := startEmulator(t, eo, token, 0)
	acc, ws := FromClients(a, w)
	s := Settings{
		WorkspaceID: emuWorkspace, WorkspaceHost: "https://adb-4455667788990011.11.azuredatabricks.net",
		Catalog: "cohort", CreateCatalog: true, SchemaPrivileges: []string{"USE_SCHEMA", "SELECT"},
		PolicyName: "Personal Compute", NodeType: "Standard_DS3_v2", Autotermination: 60, TagKey: fxTag,
		StopPollInterval: 20 * time.Millisecond, AssignmentWait: 2 * time.Second,
	}
	if o.settings != nil {
		o.settings(&s)
	}
	return &planEnv{t: t, emu: emu, acts: &Activities{Account: acc, Workspace: ws, Settings: s, Roster: roster.Store{Dir: t.TempDir()}}}
}

func (e *planEnv) store(ps []roster.Participant) roster.Ref {
	e.t.Helper()
	ref, err := e.acts.Roster.Put(ps)
	if err != nil {
		e.t.Fatal(err)
	}
	return ref
}

func planRoster(n int) []roster.Participant {
	ps := make([]roster.Participant, n)
	for i := range ps {
		ps[i] = participant(fmt.Sprintf("p%d@example.com", i+1))
	}
	return ps
}

func (e *planEnv) plan(ps []roster.Participant) wire.PlanWorkspaceResult {
	e.t.Helper()
	ref := e.store(ps)
	res, err := run[wire.PlanWorkspaceInput, wire.PlanWorkspaceResult](e.t, e.acts, func(a *Activities) any { return a.PlanWorkspace },
		wire.PlanWorkspaceInput{Roster: ref})
	if err != nil {
		e.t.Fatalf("PlanWorkspace: %v", err)
	}
	if st := e.emu.Stats(); st.WriteCount() != 0 {
		e.t.Errorf("plan wrote to the workspace: %v", st.Writes)
	}
	return res
}

func checksByName(cs []wire.Check) map[string]wire.Check {
	m := map[string]wire.Check{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

var allChecks = []string{CheckAccountAdmin, CheckCatalog, CheckCatalogRights, CheckSharedGrants, CheckPolicy,
	CheckClusterSpec, CheckRuntime, CheckNodeType, CheckUserCap, CheckSchemaCap}

func TestPlanWorkspace_checks(t *testing.T) {
	const root = "abfss://cohort@emulatorstorage.dfs.core.windows.net/cohort"
	tests := []struct {
		name     string
		opts     planOpts
		roster   int
		blocking []string // the checks that must block; every other must pass
		detail   string   // in the first blocking check's detail
		fix      string   // in its fix
		spec     string   // in the resolved cluster spec (%+v), when ready
	}{
		{name: "ready: catalog made beforehand", opts: planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}}}, roster: 3},
		{name: "ready: catalog created at storage_root", opts: planOpts{settings: func(s *Settings) { s.StorageRoot = root }}, roster: 3},
		{name: "ready: metastore has root storage", opts: planOpts{emulator: emulator.Options{MetastoreRoot: "abfss://metastore@emulatorstorage.dfs.core.windows.net/root"}}, roster: 3},
		{name: "ready: smallest node type the policy allows", roster: 3, spec: "NodeType:Standard_DS4_v2",
			opts: planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, PolicyOverrides: `{"node_type_id": {"type": "allowlist", "values": ["Standard_DS5_v2", "Standard_DS4_v2"]}}`},
				settings: func(s *Settings) { s.NodeType = "smallest" }}},
		{name: "ready: runtime the policy fixes", roster: 3, spec: "SparkVersion:17.3.x-cpu-ml-scala2.13",
			opts: planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, PolicyOverrides: `{"spark_version": {"type": "fixed", "value": "17.3.x-cpu-ml-scala2.13"}}`}}},
		{name: "ready: ResourceClass tag left to the policy's default", roster: 3, spec: "OmitResourceClass:true",
			opts: planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, PolicyOverrides: `{"custom_tags.ResourceClass": {"type": "allowlist", "values": ["Small"], "defaultValue": "Small"}}`}}},
		{name: "policy caps clusters per user below the roster", roster: 3, blocking: []string{CheckClusterSpec},
			opts:   planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, MaxClustersPerUser: 2}},
			detail: "max_clusters_per_user is 2, but the caller creates a cluster for each of 3 participants"},
		{name: "policy requires an attribute Cohort does not set", roster: 3, blocking: []string{CheckClusterSpec},
			opts:   planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, PolicyOverrides: `{"custom_tags.CostCenter": {"type": "regex", "pattern": "CC-[0-9]+"}}`}},
			detail: "rule custom_tags.CostCenter is matching CC-[0-9]+ with no default, and Cohort does not set custom_tags.CostCenter"},
		{name: "no catalog and no storage root", roster: 3, blocking: []string{CheckCatalog},
			detail: "metastore has no root storage", fix: "catalog.storage_root"},
		{name: "no catalog and creating it not allowed", opts: planOpts{settings: func(s *Settings) { s.CreateCatalog = false; s.StorageRoot = root }},
			roster: 3, blocking: []string{CheckCatalog}, detail: "create_if_missing is false", fix: "create catalog cohort beforehand"},
		{name: "policy fixes num_workers to 2", roster: 3, blocking: []string{CheckClusterSpec},
			opts:   planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, PolicyOverrides: `{"num_workers": {"type": "fixed", "value": 2}}`}},
			detail: "rule num_workers is fixed to 2, but Cohort needs 0", fix: "policy_family_definition_overrides"},
		{name: "policy forbids single user", roster: 3, blocking: []string{CheckClusterSpec},
			opts:   planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, PolicyOverrides: `{"data_security_mode": {"type": "fixed", "value": "USER_ISOLATION"}}`}},
			detail: "rule data_security_mode is fixed to USER_ISOLATION"},
		{name: "policy narrows node types", roster: 3, blocking: []string{CheckNodeType},
			opts:   planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, PolicyOverrides: `{"node_type_id": {"type": "allowlist", "values": ["Standard_DS4_v2"]}}`}},
			detail: "node type Standard_DS3_v2: rule node_type_id is one of [Standard_DS4_v2]", fix: "cluster.node_type"},
		{name: "node type not offered", roster: 3, blocking: []string{CheckNodeType},
			opts:   planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}}, settings: func(s *Settings) { s.NodeType = "Standard_Nope" }},
			detail: "not offered"},
		{name: "runtime not offered", roster: 3, blocking: []string{CheckRuntime},
			opts:   planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}}, settings: func(s *Settings) { s.SparkVersion = "9.9.x-scala2.12" }},
			detail: "runtime 9.9.x-scala2.12 is not offered"},
		{name: "policy not found", roster: 3, blocking: []string{CheckPolicy},
			opts:   planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}}, settings: func(s *Settings) { s.PolicyName = "Event Compute" }},
			detail: `no cluster policy named "Event Compute"`, fix: "CAN_USE"},
		{name: "user cap smaller than the roster", roster: 3, blocking: []string{CheckUserCap},
			opts: planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, MaxAccountUsers: 3,
				Users: []emulator.SeedUser{{UserName: "staff@example.com"}}}, settings: func(s *Settings) { s.MaxAccountUsers = 3 }},
			detail: "1 account users of at most 3; this roster adds 3, leaving -1", fix: "raise the account's user limit"},
		{name: "schema cap", roster: 3, blocking: []string{CheckSchemaCap},
			opts: planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, MaxSchemasPerCatalog: 4},
				settings: func(s *Settings) { s.MaxSchemasPerCatalog = 4 }},
			detail: "2 schemas in catalog cohort of at most 4 (default and information_schema included); this roster adds 3, leaving -1"},
		{name: "shared schema missing", roster: 3, blocking: []string{CheckSharedGrants},
			opts: planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}}, settings: func(s *Settings) {
				s.SharedGrants = []Grant{{Securable: "schema", Name: "cohort.source_data", Privileges: []string{"SELECT"}}}
			}},
			detail: "schema cohort.source_data does not exist"},
		{name: "not an account admin, no rights on the catalog", roster: 3, blocking: []string{CheckAccountAdmin, CheckCatalogRights},
			opts:   planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}}, token: emuUserToken},
			detail: "list account users", fix: "account admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newPlanEnv(t, tt.opts)
			res := e.plan(planRoster(tt.roster))
			got := checksByName(res.Checks)
			var names []string
			for _, c := range res.Checks {
				names = append(names, c.Name)
			}
			if !slices.Equal(names, allChecks) {
				t.Errorf("checks = %v, want %v", names, allChecks)
			}
			for _, n := range allChecks {
				c := got[n]
				want := slices.Contains(tt.blocking, n)
				if c.Blocking != want || (!want && !c.OK && !strings.HasPrefix(c.Detail, "not checked")) {
					t.Errorf("%s = %+v, want blocking %v", n, c, want)
				}
				if c.Blocking && (c.OK || c.Fix == "") {
					t.Errorf("%s = %+v: a blocking check is not ok and names its fix", n, c)
				}
			}
			if res.Ready() != (len(tt.blocking) == 0) {
				t.Errorf("Ready() = %v with blocking %v", res.Ready(), tt.blocking)
			}
			if len(tt.blocking) > 0 {
				c := got[tt.blocking[0]]
				if !strings.Contains(c.Detail, tt.detail) || !strings.Contains(c.Fix, tt.fix) {
					t.Errorf("%s detail %q fix %q, want them to contain %q and %q", c.Name, c.Detail, c.Fix, tt.detail, tt.fix)
				}
			}
			if spec := fmt.Sprintf("%+v", res.Cluster); tt.spec != "" && !strings.Contains(spec, tt.spec) {
				t.Errorf("spec = %s, want %s", spec, tt.spec)
			}
			if tt.opts.token == "" && got[CheckUserCap].OK && res.New != tt.roster {
				t.Errorf("new = %d, want %d", res.New, tt.roster)
			}
		})
	}
}

// Participants who already have an account user are told apart from new
// ones, inactive ones marked.
func TestPlanWorkspace_existingUsers(t *testing.T) {
	e := newPlanEnv(t, planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, Users: []emulator.SeedUser{
		{UserName: "entra-sync-1234", Email: "p2@example.com"},
		{UserName: "p3@example.com", Inactive: true},
		{UserName: "staff@example.com"},
	}}})
	res := e.plan(planRoster(4))
	if res.New != 2 || res.Existing != 2 || !slices.Equal(res.ExistingEmails, []string{"p2@example.com", "p3@example.com (inactive)"}) {
		t.Errorf("new %d existing %d %v, want 2 new and p2 (by email), p3 (inactive)", res.New, res.Existing, res.ExistingEmails)
	}
	if c := checksByName(res.Checks)[CheckUserCap]; !c.OK || !strings.Contains(c.Detail, "3 account users") || !strings.Contains(c.Detail, "adds 2") {
		t.Errorf("user cap = %+v", c)
	}
}

// A policy that fixes autotermination and forbids spark.master is followed:
// setup takes the fixed value and leaves spark.master out, and a
// participant's cluster is created under it.
func TestSetupBatch_followsPolicy(t *testing.T) {
	e := newPlanEnv(t, planOpts{emulator: emulator.Options{Catalogs: []string{"cohort"}, AssignmentFlakyShare: -1,
		PolicyOverrides: `{"autotermination_minutes": {"type": "fixed", "value": 120}, "spark_conf.spark.master": {"type": "forbidden"}}`}})
	p := participant("ana@example.com")
	ref := e.store([]roster.Participant{p})
	res, err := run[wire.SetupBatchInput, wire.SetupBatchResult](t, e.acts, func(a *Activities) any { return a.SetupBatch }, wire.SetupBatchInput{BatchID: "b1", Roster: ref})
	if err != nil {
		t.Fatal(err)
	}
	want := wire.ClusterSpec{PolicyID: res.Cluster.PolicyID, SparkVersion: "18.x-cpu-ml-scala2.13", NodeType: "Standard_DS3_v2",
		AutoterminationMinutes: 120, OmitSparkMaster: true}
	if res.Cluster != want || res.Cluster.PolicyID == "" {
		t.Fatalf("spec = %+v, want %+v", res.Cluster, want)
	}
	u, err := run[wire.CreateUserInput, wire.CreateUserResult](t, e.acts, func(a *Activities) any { return a.CreateUser }, wire.CreateUserInput{Participant: p})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run[wire.AssignWorkspaceInput, wire.AssignWorkspaceResult](t, e.acts, func(a *Activities) any { return a.AssignWorkspace },
		wire.AssignWorkspaceInput{Email: p.Email, UserID: u.UserID}); err != nil {
		t.Fatal(err)
	}
	c, err := run[wire.CreateClusterInput, wire.CreateClusterResult](t, e.acts, func(a *Activities) any { return a.CreateCluster },
		wire.CreateClusterInput{Participant: p, Spec: res.Cluster, BatchID: "b1"})
	if err != nil {
		t.Fatalf("create cluster under the customised policy: %v", err)
	}
	got, err := e.acts.Workspace.Clusters.Get(context.Background(), compute.GetClusterRequest{ClusterId: c.ClusterID})
	if err != nil {
		t.Fatal(err)
	}
	if got.AutoterminationMinutes != 120 || got.SparkConf["spark.master"] != "" || got.NumWorkers != 0 || got.DataSecurityMode != compute.DataSecurityModeSingleUser {
		t.Errorf("cluster = autotermination %d, spark_conf %v, workers %d, mode %s", got.AutoterminationMinutes, got.SparkConf, got.NumWorkers, got.DataSecurityMode)
	}
}

// A batch that cannot finish fails at setup with every blocking problem,
// non-retryable, and creates nothing: not even the catalog it could create.
func TestSetupBatch_notReadyCreatesNothing(t *testing.T) {
	e := newPlanEnv(t, planOpts{
		emulator: emulator.Options{MetastoreRoot: "abfss://metastore@emulatorstorage.dfs.core.windows.net/root", MaxAccountUsers: 2,
			PolicyOverrides: `{"num_workers": {"type": "fixed", "value": 2}}`},
		settings: func(s *Settings) { s.MaxAccountUsers = 2 },
	})
	ref := e.store(planRoster(3))
	_, err := run[wire.SetupBatchInput, wire.SetupBatchResult](t, e.acts, func(a *Activities) any { return a.SetupBatch }, wire.SetupBatchInput{BatchID: "b1", Roster: ref})
	ae := wantAppErr(t, err, wire.ErrNotReady, false)
	for _, s := range []string{"2 blocking problem(s)", "cluster_spec: rule num_workers is fixed to 2", "user_cap: 0 account users of at most 2; this roster adds 3", "fix: "} {
		if !strings.Contains(ae.Message(), s) {
			t.Errorf("message %q does not say %q", ae.Message(), s)
		}
	}
	if st := e.emu.Stats(); st.WriteCount() != 0 {
		t.Errorf("a batch that cannot finish wrote: %v", st.Writes)
	}
}

// requestLog watches the requests a handler answers: each one's method and
// path, when it began and ended (in the order of a shared counter, not of a
// clock), and how many were in flight at once. Until holdFor requests to
// /api/ are in flight together it holds each one (at most holdMax), so that
// reads made one after another never overlap while reads made together
// always do, whatever the machine's speed.
type requestLog struct {
	next     http.Handler
	holdFor  int
	holdMax  time.Duration
	mu       sync.Mutex
	seq      int
	inFlight int
	maxIn    int
	together chan struct{} // closed once holdFor were in flight at once
	reqs     []loggedRequest
}

type loggedRequest struct {
	method, path string
	began, ended int
}

func (l *requestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		l.next.ServeHTTP(w, r)
		return
	}
	l.mu.Lock()
	l.seq++
	i := len(l.reqs)
	l.reqs = append(l.reqs, loggedRequest{method: r.Method, path: r.URL.Path, began: l.seq})
	l.inFlight++
	l.maxIn = max(l.maxIn, l.inFlight)
	if l.inFlight >= l.holdFor {
		select {
		case <-l.together:
		default:
			close(l.together)
		}
	}
	l.mu.Unlock()
	select {
	case <-l.together:
	case <-time.After(l.holdMax):
	}
	l.next.ServeHTTP(w, r)
	l.mu.Lock()
	l.seq++
	l.reqs[i].ended = l.seq
	l.inFlight--
	l.mu.Unlock()
}

// Batch setup's readiness reads are in flight together (issue 18: one after
// another they were most of a batch's fixed cost), and the one thing setup
// creates, the catalog, is created only after every read has answered and
// every check has passed.
func TestSetupBatch_readsTogetherThenCreates(t *testing.T) {
	log := &requestLog{holdFor: 4, holdMax: 5 * time.Second, together: make(chan struct{})}
	eo := emulator.Options{Token: emuToken, UserToken: emuUserToken, AccountID: emuAccount, WorkspaceID: emuWorkspace,
		Latency: "none", RateLimits: "none", Seed: 42}
	emu, _, ac, wc := startEmulatorBehind(t, eo, emuToken, 0, func(h http.Handler) http.Handler { log.next = h; return log })
	acc, ws := FromClients(ac, wc)
	a := &Activities{Account: acc, Workspace: ws, Roster: roster.Store{Dir: t.TempDir()}, Settings: Settings{
		WorkspaceID: emuWorkspace, WorkspaceHost: "https://adb-4455667788990011.11.azuredatabricks.net",
		Catalog: "cohort", CreateCatalog: true, StorageRoot: "abfss://cohort@emulatorstorage.dfs.core.windows.net/cohort",
		PolicyName: "Personal Compute", NodeType: "Standard_DS3_v2", Autotermination: 60, TagKey: fxTag,
	}}
	ref, err := a.Roster.Put(planRoster(3))
	if err != nil {
		t.Fatal(err)
	}
	res, err := run[wire.SetupBatchInput, wire.SetupBatchResult](t, a, func(a *Activities) any { return a.SetupBatch }, wire.SetupBatchInput{BatchID: "b1", Roster: ref})
	if err != nil {
		t.Fatal(err)
	}
	if res.Catalog != "cohort" || res.Cluster.PolicyID == "" {
		t.Errorf("setup = %+v, want catalog cohort and the policy", res)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.maxIn < log.holdFor {
		t.Errorf("at most %d readiness reads were in flight at once, want at least %d: %+v", log.maxIn, log.holdFor, log.reqs)
	}
	lastRead, writes := 0, 0
	for _, r := range log.reqs {
		if r.method == http.MethodGet {
			lastRead = max(lastRead, r.ended)
		}
	}
	for _, r := range log.reqs {
		if r.method != http.MethodGet {
			writes++
			if r.began < lastRead {
				t.Errorf("%s %s was sent before every readiness read had answered: %+v", r.method, r.path, log.reqs)
			}
		}
	}
	if st := emu.Stats(); writes != 1 || st.Writes["catalogs.create"]["201"]+st.Writes["catalogs.create"]["200"] != 1 {
		t.Errorf("setup sent %d writes (%v), want exactly the catalog's create", writes, st.Writes)
	}
}
