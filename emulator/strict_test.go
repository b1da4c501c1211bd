package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

// Contract tests for the production rules the emulator enforces by default
// (issue 10 §2, issue 12 §4), each driven through the real SDK.

func TestStrict_catalogNeedsStorage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		opts     Options
		req      catalog.CreateCatalog
		wantRoot string // prefix; "" = the create fails
	}{
		{"no metastore root, no storage_root", Options{}, catalog.CreateCatalog{Name: "cohort"}, ""},
		{"no metastore root, managed location", Options{}, catalog.CreateCatalog{Name: "cohort", StorageRoot: "abfss://c@acct.dfs.core.windows.net/cohort"}, "abfss://c@acct.dfs.core.windows.net/cohort"},
		{"metastore root", Options{MetastoreRoot: "abfss://m@acct.dfs.core.windows.net/root"}, catalog.CreateCatalog{Name: "cohort"}, "abfss://m@acct.dfs.core.windows.net/root/__unitystorage/catalogs/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, tc.opts)
			got, err := e.w.Catalogs.Create(ctx, tc.req)
			if tc.wantRoot == "" {
				wantErr(t, err, metastoreRootMissing, []error{apierr.ErrInvalidState, apierr.ErrBadRequest})
				if ae := apiErr(t, err); ae.StatusCode != 400 || ae.ErrorCode != "INVALID_STATE" {
					t.Errorf("answer %d %s, want 400 INVALID_STATE", ae.StatusCode, ae.ErrorCode)
				}
				return
			}
			if err != nil || !strings.HasPrefix(got.StorageRoot, tc.wantRoot) {
				t.Fatalf("create = %+v, %v; want storage root %s...", got, err, tc.wantRoot)
			}
			schemas, err := e.w.Schemas.ListAll(ctx, catalog.ListSchemasRequest{CatalogName: "cohort"})
			var names []string
			for _, s := range schemas {
				names = append(names, s.Name)
			}
			if err != nil || !slices.Equal(names, []string{"default", "information_schema"}) {
				t.Errorf("a new catalog holds %v, %v; want default and information_schema", names, err)
			}
		})
	}

	// The workspace catalog exists, named after the workspace, and every
	// workspace user may create objects in its default schema.
	e := setup(t, Options{WorkspaceName: "adb-event-2027", Catalogs: []string{}})
	ws, err := e.w.Catalogs.GetByName(ctx, "adb_event_2027")
	if err != nil || ws.Name != "adb_event_2027" {
		t.Fatalf("workspace catalog = %+v, %v", ws, err)
	}
	g, err := e.w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: "schema", FullName: "adb_event_2027.default", Principal: "users"})
	if err != nil || len(g.PrivilegeAssignments) != 1 || !slices.Contains(g.PrivilegeAssignments[0].Privileges, catalog.PrivilegeCreateTable) {
		t.Errorf("grants on the workspace catalog's default schema = %+v, %v", g, err)
	}
	_, err = e.w.Catalogs.GetByName(ctx, "main")
	wantErr(t, err, "Catalog 'main' does not exist.", []error{apierr.ErrNotFound})
}

func TestStrict_quotas(t *testing.T) {
	ctx := context.Background()
	t.Run("schemas per catalog, default shape", func(t *testing.T) {
		e := setup(t, Options{MaxSchemasPerCatalog: 4}) // default and information_schema count
		for _, n := range []string{"p1", "p2"} {
			if _, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: n}); err != nil {
				t.Fatalf("create %s: %v", n, err)
			}
		}
		_, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "p3"})
		wantErr(t, err, "Cannot create schema 'main.p3': catalog 'main' has reached its limit of 4 schemas.", []error{apierr.ErrBadRequest}, apierr.ErrTooManyRequests)
		if ae := apiErr(t, err); ae.ErrorCode != "QUOTA_EXCEEDED" || ae.StatusCode != 400 {
			t.Errorf("answer %d %s, want 400 QUOTA_EXCEEDED", ae.StatusCode, ae.ErrorCode)
		}
	})
	t.Run("schemas per catalog, configured shape", func(t *testing.T) {
		shape, err := ParseErrorShape("403:RESOURCE_LIMIT:too many schemas in {catalog} ({limit})")
		if err != nil {
			t.Fatal(err)
		}
		e := setup(t, Options{MaxSchemasPerCatalog: 2, SchemaQuotaError: shape})
		_, err = e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "p1"})
		wantErr(t, err, "too many schemas in main (2)", []error{apierr.ErrPermissionDenied})
	})
	t.Run("account users, SCIM shape", func(t *testing.T) {
		e := setup(t, Options{MaxAccountUsers: 2, Users: []SeedUser{{UserName: "staff@org.com"}}})
		e.user("p1@event.org")
		_, err := e.a.Users.Create(ctx, iam.User{UserName: "p2@event.org"})
		wantErr(t, err, "account acc-test-1 has reached its limit of 2 users and service principals", []error{apierr.ErrBadRequest})
		if ae := apiErr(t, err); ae.ErrorCode != "SCIM_400" {
			t.Errorf("error code %s, want SCIM_400 (a SCIM body)", ae.ErrorCode)
		}
	})
	t.Run("account users, configured JSON shape", func(t *testing.T) {
		e := setup(t, Options{MaxAccountUsers: 1, UserQuotaError: ErrorShape{Status: 400, Code: "QUOTA_EXCEEDED", Message: "limit {limit}"}})
		e.user("p1@event.org")
		_, err := e.a.Users.Create(ctx, iam.User{UserName: "p2@event.org"})
		if ae := apiErr(t, err); ae.ErrorCode != "QUOTA_EXCEEDED" || ae.Message != "limit 1" {
			t.Errorf("answer %s %q", ae.ErrorCode, ae.Message)
		}
	})
	for _, bad := range []string{"", "400", "abc:X:m", "200:X:m", "400:X:"} {
		if _, err := ParseErrorShape(bad); err == nil {
			t.Errorf("ParseErrorShape(%q) accepted", bad)
		}
	}
}

func TestStrict_clusterRetentionAndPins(t *testing.T) {
	clock := NewManualClock()
	path := filepath.Join(t.TempDir(), "emu.jsonl")
	e := setup(t, Options{Now: clock.Now, ClusterRetention: time.Hour, MaxPinnedClusters: 2, StatePath: path})
	ctx := context.Background()
	u := e.participant("keep@event.org")
	var ids []string
	for i := range 3 {
		w, err := e.w.Clusters.Create(ctx, participantCluster(fmt.Sprintf("evt-%d", i), u.UserName))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ClusterId)
		if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: w.ClusterId}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second) // all TERMINATED
	for _, id := range ids[:2] {
		if err := e.w.Clusters.Pin(ctx, compute.PinCluster{ClusterId: id}); err != nil {
			t.Fatalf("pin %s: %v", id, err)
		}
	}
	if err := e.w.Clusters.Pin(ctx, compute.PinCluster{ClusterId: ids[0]}); err != nil {
		t.Errorf("pinning a pinned cluster: %v, want a no-op", err)
	}
	err := e.w.Clusters.Pin(ctx, compute.PinCluster{ClusterId: ids[2]})
	wantErr(t, err, "already has 2 pinned clusters", []error{apierr.ErrBadRequest})
	pinned, err := e.w.Clusters.ListAll(ctx, compute.ListClustersRequest{FilterBy: &compute.ListClustersFilterBy{IsPinned: true}})
	if err != nil || len(pinned) != 2 {
		t.Errorf("pinned list = %d, %v; want 2", len(pinned), err)
	}
	err = e.w.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: ids[0]})
	wantErr(t, err, "Cannot delete pinned cluster "+ids[0], []error{apierr.ErrInvalidState})

	// Past the retention the unpinned cluster is gone; the pinned ones stay.
	clock.Advance(time.Hour)
	_, err = e.w.Clusters.GetByClusterId(ctx, ids[2])
	wantErr(t, err, fmt.Sprintf("Cannot access cluster %s that was terminated or unpinned more than 1h0m0s ago.", ids[2]), []error{apierr.ErrInvalidState}, apierr.ErrResourceDoesNotExist)
	all, err := e.w.Clusters.ListAll(ctx, compute.ListClustersRequest{})
	if err != nil || len(all) != 2 {
		t.Errorf("after retention %d clusters listed, %v; want the 2 pinned", len(all), err)
	}
	_, err = e.w.Clusters.GetPermissionsByClusterId(ctx, ids[2])
	wantErr(t, err, "does not exist", []error{apierr.ErrNotFound})

	// Unpinning restarts the retention clock.
	if err := e.w.Clusters.Unpin(ctx, compute.UnpinCluster{ClusterId: ids[1]}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Minute)
	if _, err := e.w.Clusters.GetByClusterId(ctx, ids[1]); err != nil {
		t.Errorf("unpinned an hour ago less a minute: %v", err)
	}
	// Unpin, then permanent delete: afterwards get and permissions say it does not exist.
	if err := e.w.Clusters.Unpin(ctx, compute.UnpinCluster{ClusterId: ids[0]}); err != nil {
		t.Fatal(err)
	}
	if err := e.w.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: ids[0]}); err != nil {
		t.Fatalf("permanent delete after unpin: %v", err)
	}
	_, err = e.w.Clusters.GetByClusterId(ctx, ids[0])
	wantErr(t, err, "does not exist", []error{apierr.ErrResourceDoesNotExist})
	_, err = e.w.Clusters.GetPermissionsByClusterId(ctx, ids[0])
	wantErr(t, err, "does not exist", []error{apierr.ErrNotFound})
	if got := e.emu.Stats().Objects; got.PurgedClusters != 1 || got.Clusters != 1 || got.PinnedClusters != 0 {
		t.Errorf("objects = %+v", got)
	}

	// Pins, unpins and purges survive a restart.
	if err := e.w.Clusters.Pin(ctx, compute.PinCluster{ClusterId: ids[1]}); err != nil {
		t.Fatal(err)
	}
	restarted, err := New(Options{Token: testToken, AccountID: testAccount, WorkspaceID: testWorkspace, StatePath: path, Now: clock.Now, ClusterRetention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Close()
	if got := restarted.Stats().Objects; got.PurgedClusters != 1 || got.PinnedClusters != 1 || got.Clusters != 1 {
		t.Errorf("objects after restart = %+v", got)
	}
}

func TestStrict_personalComputePolicy(t *testing.T) {
	ctx := context.Background()
	overrides := `{"autotermination_minutes": {"type": "fixed", "value": 60}, "node_type_id": {"type": "allowlist", "values": ["Standard_DS3_v2"], "defaultValue": "Standard_DS3_v2"}}`
	e := setup(t, Options{PolicyOverrides: overrides, MaxClustersPerUser: 2})
	u := e.participant("pc@event.org")

	pol, err := e.w.ClusterPolicies.GetByName(ctx, "Personal Compute")
	if err != nil {
		t.Fatal(err)
	}
	var def map[string]policyRule
	if err := json.Unmarshal([]byte(pol.Definition), &def); err != nil {
		t.Fatalf("definition is not a JSON string of rules: %v", err)
	}
	if def["autotermination_minutes"].Type != "fixed" || len(def["node_type_id"].Values) != 1 || def["num_workers"].Type != "fixed" ||
		def["data_security_mode"].DefaultValue != "SINGLE_USER" || def["instance_pool_id"].Type != "forbidden" || def["cluster_type"].Value != "all-purpose" {
		t.Errorf("merged definition = %s", pol.Definition)
	}
	if pol.PolicyFamilyDefinitionOverrides != overrides || pol.MaxClustersPerUser != 2 || pol.PolicyFamilyId != "personal-vm" {
		t.Errorf("policy = overrides %q, max %d, family %s", pol.PolicyFamilyDefinitionOverrides, pol.MaxClustersPerUser, pol.PolicyFamilyId)
	}
	fam, err := e.w.PolicyFamilies.GetByPolicyFamilyId(ctx, "personal-vm")
	if err != nil || strings.Contains(fam.Definition, `"value": 60`) {
		t.Errorf("the family shows the overrides: %+v, %v", fam, err)
	}

	tests := []struct {
		name   string
		mutate func(*compute.CreateCluster)
		msg    string
	}{
		{"fixed by the override", func(c *compute.CreateCluster) { c.AutoterminationMinutes = 30 }, "Validation failed for autotermination_minutes, the value must be 60 (is 30)"},
		{"narrowed allowlist", func(c *compute.CreateCluster) { c.NodeTypeId = "Standard_DS4_v2" }, "Validation failed for node_type_id, the value must be one of [Standard_DS3_v2] (is Standard_DS4_v2)"},
		{"fixed single node", func(c *compute.CreateCluster) { c.NumWorkers = 1 }, "Validation failed for num_workers, the value must be 0 (is 1)"},
		{"pool forbidden", func(c *compute.CreateCluster) { c.InstancePoolId = "p" }, "Validation failed for instance_pool_id, the value must not be present"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := participantCluster("evt-pc", u.UserName)
			req.AutoterminationMinutes = 60
			tc.mutate(&req)
			_, err := e.w.Clusters.Create(ctx, req)
			wantErr(t, err, tc.msg, []error{apierr.ErrInvalidParameterValue})
		})
	}

	// apply_policy_default_values fills what the policy defaults and fixes.
	req := compute.CreateCluster{ClusterName: "evt-min", PolicyId: pol.PolicyId, ApplyPolicyDefaultValues: true,
		SparkVersion: "18.x-cpu-ml-scala2.13", SingleUserName: u.UserName}
	w, err := e.w.Clusters.Create(ctx, req)
	if err != nil {
		t.Fatalf("create with defaults: %v", err)
	}
	cl, err := e.w.Clusters.GetByClusterId(ctx, w.ClusterId)
	if err != nil || cl.DataSecurityMode != compute.DataSecurityModeSingleUser || cl.NodeTypeId != "Standard_DS3_v2" || cl.AutoterminationMinutes != 60 ||
		cl.SparkConf["spark.databricks.cluster.profile"] != "singleNode" {
		t.Errorf("defaults not applied: %+v, %v", cl, err)
	}
	// Edit is held to the policy too.
	_, err = e.w.Clusters.Edit(ctx, compute.EditCluster{ClusterId: w.ClusterId, ClusterName: "evt-min", PolicyId: pol.PolicyId,
		SparkVersion: "18.x-cpu-ml-scala2.13", NumWorkers: 2, SingleUserName: u.UserName, ApplyPolicyDefaultValues: true})
	wantErr(t, err, "", []error{apierr.ErrBadRequest}) // PENDING: INVALID_STATE, or the policy once RUNNING
	if _, err := e.w.Clusters.Create(ctx, req); err != nil {
		t.Fatalf("second cluster: %v", err)
	}
	// max_clusters_per_user counts the creator's clusters under the policy.
	_, err = e.w.Clusters.Create(ctx, req)
	wantErr(t, err, "allows at most 2 clusters per user", []error{apierr.ErrInvalidParameterValue})

	if _, err := New(Options{Token: "x", PolicyOverrides: `{"num_workers": 3}`}); err == nil {
		t.Errorf("an override that is not a rule was accepted")
	}
}

func TestStrict_editFollowsPolicy(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now})
	ctx := context.Background()
	u := e.participant("edit@event.org")
	w, err := e.w.Clusters.Create(ctx, participantCluster("evt-edit", u.UserName))
	if err != nil {
		t.Fatal(err)
	}
	edit := compute.EditCluster{ClusterId: w.ClusterId, ClusterName: "evt-edit", PolicyId: personalComputePolicyID, ApplyPolicyDefaultValues: true,
		SparkVersion: "18.x-cpu-ml-scala2.13", NodeTypeId: "Standard_DS3_v2", SingleUserName: u.UserName, DataSecurityMode: compute.DataSecurityModeSingleUser}
	_, err = e.w.Clusters.Edit(ctx, edit)
	wantErr(t, err, "is in unexpected state Pending", []error{apierr.ErrInvalidState})
	clock.Advance(time.Second)
	bad := edit
	bad.NumWorkers = 2
	_, err = e.w.Clusters.Edit(ctx, bad)
	wantErr(t, err, "Validation failed for num_workers", []error{apierr.ErrInvalidParameterValue})
	if _, err := e.w.Clusters.Edit(ctx, edit); err != nil {
		t.Fatalf("edit RUNNING: %v", err)
	}
	cl, _ := e.w.Clusters.GetByClusterId(ctx, w.ClusterId)
	if cl.SparkVersion != "18.x-cpu-ml-scala2.13" || cl.State != compute.StatePending {
		t.Errorf("after edit = %s %s, want the new runtime, restarting", cl.SparkVersion, cl.State)
	}
}

func TestStrict_scimIdentities(t *testing.T) {
	e := setup(t, Options{Users: []SeedUser{
		{UserName: "ana.lima@tenant.onmicrosoft.com", Email: "ana@uni.edu", DisplayName: "Ana (Entra)"},
		{UserName: "old@uni.edu", Inactive: true},
	}})
	ctx := context.Background()
	tests := []struct {
		name, userName, email, conflict string
	}{
		{"email held by a user with another userName", "ana@uni.edu", "", "ana@uni.edu"},
		{"email in the emails list", "someone@uni.edu", "ANA@uni.edu", "ana@uni.edu"},
		{"inactive user blocks its email", "old@uni.edu", "", "old@uni.edu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := iam.User{UserName: tc.userName}
			if tc.email != "" {
				u.Emails = []iam.ComplexValue{{Value: tc.email, Primary: true}}
			}
			_, err := e.a.Users.Create(ctx, u)
			wantErr(t, err, fmt.Sprintf("User with email %s already exists in this account. Note: emails are case insensitive", tc.conflict), []error{apierr.ErrResourceConflict})
		})
	}
	// A lookup by userName misses the Entra user; one by emails.value finds it.
	byName, _ := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "ana@uni.edu"`})
	byEmail, err := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `emails.value eq "ana@uni.edu"`})
	if len(byName) != 0 || err != nil || len(byEmail) != 1 || byEmail[0].UserName != "ana.lima@tenant.onmicrosoft.com" {
		t.Errorf("by userName %d, by email %+v, %v", len(byName), byEmail, err)
	}
	inactive, err := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `active eq false`})
	if err != nil || len(inactive) != 1 || inactive[0].Active {
		t.Errorf("inactive = %+v, %v", inactive, err)
	}

	// Deactivate and reactivate with SCIM PATCH, as iam.PartialUpdate sends it.
	p := e.user("p@event.org")
	patch := func(ops ...iam.Patch) error {
		return e.a.Users.Patch(ctx, iam.PartialUpdate{Id: p.Id, Schemas: []iam.PatchSchema{iam.PatchSchemaUrnIetfParamsScimApiMessages20PatchOp}, Operations: ops})
	}
	if err := patch(iam.Patch{Op: iam.PatchOpReplace, Path: "active", Value: false}); err != nil {
		t.Fatalf("PATCH active false: %v", err)
	}
	got, _ := e.a.Users.GetById(ctx, p.Id)
	if got.Active {
		t.Errorf("after PATCH active=false the user is active")
	}
	if err := patch(iam.Patch{Op: iam.PatchOpReplace, Value: map[string]any{"active": true, "displayName": "P again"}}); err != nil {
		t.Fatalf("PATCH without path: %v", err)
	}
	if got, _ := e.a.Users.GetById(ctx, p.Id); !got.Active || got.DisplayName != "P again" {
		t.Errorf("after PATCH = %+v", got)
	}
	bad := []struct {
		name string
		do   func() error
		msg  string
		is   error
	}{
		{"no PatchOp schema", func() error {
			return e.a.Users.Patch(ctx, iam.PartialUpdate{Id: p.Id, Operations: []iam.Patch{{Op: iam.PatchOpReplace, Path: "active", Value: false}}})
		}, "schemas must contain", apierr.ErrBadRequest},
		{"unknown path", func() error { return patch(iam.Patch{Op: iam.PatchOpReplace, Path: "password", Value: "x"}) }, "Unsupported patch path", apierr.ErrBadRequest},
		{"userName taken", func() error { return patch(iam.Patch{Op: iam.PatchOpReplace, Path: "userName", Value: "old@uni.edu"}) }, "already exists", apierr.ErrResourceConflict},
		{"unknown user", func() error {
			return e.a.Users.Patch(ctx, iam.PartialUpdate{Id: "42", Schemas: []iam.PatchSchema{iam.PatchSchemaUrnIetfParamsScimApiMessages20PatchOp}, Operations: []iam.Patch{{Op: iam.PatchOpReplace, Path: "active", Value: false}}})
		}, "not found", apierr.ErrNotFound},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.do(), tc.msg, []error{tc.is}) })
	}
	var cfg Config
	e.control("GET", "/emulator/v1/config", nil, &cfg)
	for _, c := range cfg.Classes {
		if c.Name == "scim_patch" && !slices.Contains(c.Endpoints, "scim.users.patch") {
			t.Errorf("scim_patch class = %+v", c)
		}
	}

	// Seeding through the control API, as Cohort's tests need.
	var seeded struct {
		ID     string `json:"id"`
		Active bool   `json:"active"`
	}
	if st := e.control("POST", "/emulator/v1/users", SeedUser{UserName: "mentor@org.com", Email: "m@org.com", Inactive: true, Assigned: true}, &seeded); st != 200 || seeded.ID == "" || seeded.Active {
		t.Fatalf("seed user: %d %+v", st, seeded)
	}
	if st := e.control("POST", "/emulator/v1/users", SeedUser{UserName: "x@org.com", Email: "M@org.com"}, nil); st != 400 {
		t.Errorf("seeding a user whose email is taken: %d, want 400", st)
	}
	if err := e.a.Users.DeleteById(ctx, seeded.ID); err != nil {
		t.Errorf("SCIM DELETE of a seeded user: %v", err)
	}
	if n := e.emu.Stats().Requests["scim.users.patch"]["200"]; n != 2 {
		t.Errorf("patch stats = %d, want 2", n)
	}
}

func TestStrict_flakyAssignment(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		bodies   float64
		wantBody bool
	}{
		{"HTTP error", -1, false},
		{"200 with an error field", 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewManualClock()
			e := setup(t, Options{Now: clock.Now, AssignmentFlakyShare: 1, AssignmentErrorBodyShare: tc.bodies, AssignmentFlakyWindow: time.Minute})
			u := e.user("new@event.org")
			pid := mustID(t, u.Id)
			put := iam.UpdateWorkspaceAssignments{WorkspaceId: testWorkspace, PrincipalId: pid, Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}}
			pa, err := e.a.WorkspaceAssignment.Update(ctx, put)
			want := fmt.Sprintf("Principal %d not in workspace %d", pid, testWorkspace)
			if tc.wantBody {
				if err != nil || pa.Error != want || len(pa.Permissions) != 0 {
					t.Fatalf("PUT = %+v, %v; want 200 with error %q", pa, err, want)
				}
			} else {
				wantErr(t, err, want, []error{apierr.ErrNotFound})
			}
			list, _ := e.a.WorkspaceAssignment.ListAll(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: testWorkspace})
			if len(list) != 0 {
				t.Errorf("a failed PUT was applied: %+v", list)
			}
			clock.Advance(time.Minute)
			if pa, err := e.a.WorkspaceAssignment.Update(ctx, put); err != nil || pa.Error != "" {
				t.Errorf("PUT after the window = %+v, %v", pa, err)
			}
		})
	}
	// The default share fails some, not all, of a batch's first PUTs.
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now, AssignmentFlakyShare: DefaultAssignmentFlakyShare})
	failed := 0
	for i := range 200 {
		u := e.user(fmt.Sprintf("b%d@event.org", i))
		pa, err := e.a.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: testWorkspace, PrincipalId: mustID(t, u.Id), Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}})
		if err != nil || pa.Error != "" {
			failed++
		}
	}
	// 200 draws at 0.1: 20 expected, [5, 40] is far outside any plausible run.
	if failed < 5 || failed > 40 {
		t.Errorf("%d of 200 first PUTs failed at share %g", failed, DefaultAssignmentFlakyShare)
	}
}

func TestStrict_int64AsStrings(t *testing.T) {
	e := setup(t, Options{Int64AsStringShare: 1})
	ctx := context.Background()
	u := e.user("int@event.org")
	path := fmt.Sprintf("/api/2.0/accounts/%s/workspaces/%d/permissionassignments/principals/%s", testAccount, testWorkspace, u.Id)
	st, body := e.raw("PUT", path, testToken, `{"permissions":["USER"]}`)
	if st != 200 || !strings.Contains(string(body), `"principal_id":"`+u.Id+`"`) {
		t.Fatalf("PUT answer %d %s, want principal_id as a string", st, body)
	}
	list, err := e.a.WorkspaceAssignment.ListAll(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: testWorkspace})
	if err != nil || len(list) != 1 || list[0].Principal.PrincipalId != mustID(t, u.Id) {
		t.Errorf("SDK v0.175 reads the quoted id: %+v, %v", list, err)
	}
	cat, err := e.w.Catalogs.GetByName(ctx, "main")
	if err != nil || cat.CreatedAt == 0 {
		t.Errorf("catalog created_at as a string: %+v, %v", cat, err)
	}
}

func TestStrict_offboarding(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	u := e.participant("leaver@event.org")
	if _, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "leaver"}); err != nil {
		t.Fatal(err)
	}
	grant := func(change catalog.PermissionsChange, omit bool) (*catalog.UpdatePermissionsResponse, error) {
		return e.w.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "catalog", FullName: "main", Changes: []catalog.PermissionsChange{change}, OmitPermissionsInResponse: omit})
	}
	resp, err := grant(catalog.PermissionsChange{Principal: u.UserName, Add: []catalog.Privilege{catalog.PrivilegeUseCatalog}}, true)
	if err != nil || len(resp.PrivilegeAssignments) != 0 {
		t.Errorf("omit_permissions_in_response: %+v, %v; want no assignments", resp, err)
	}
	if resp, err = grant(catalog.PermissionsChange{Principal: u.UserName, Remove: []catalog.Privilege{catalog.PrivilegeUseCatalog}}, false); err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.PrivilegeAssignments {
		if a.Principal == u.UserName {
			t.Errorf("remove left %+v", a)
		}
	}

	if st := e.control("POST", "/emulator/v1/tables", map[string]string{"schema": "main.leaver", "name": "results"}, nil); st != 200 {
		t.Fatalf("seed table: %d", st)
	}
	err = e.w.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: "main.leaver"})
	wantErr(t, err, "is not empty", []error{apierr.ErrBadRequest})
	if ae := apiErr(t, err); ae.ErrorCode != "SCHEMA_NOT_EMPTY" {
		t.Errorf("code %s, want SCHEMA_NOT_EMPTY", ae.ErrorCode)
	}
	err = e.w.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: "main.information_schema", Force: true})
	wantErr(t, err, "system schema", []error{apierr.ErrInvalidParameterValue})
	if err := e.w.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: "main.leaver", Force: true}); err != nil {
		t.Errorf("force delete: %v", err)
	}

	// Freeze, deactivate, delete; the stats tell each write apart from the reads.
	e.emu.stats.reset()
	if err := e.a.WorkspaceAssignment.DeleteByWorkspaceIdAndPrincipalId(ctx, testWorkspace, mustID(t, u.Id)); err != nil {
		t.Fatal(err)
	}
	if err := e.a.Users.Patch(ctx, iam.PartialUpdate{Id: u.Id, Schemas: []iam.PatchSchema{iam.PatchSchemaUrnIetfParamsScimApiMessages20PatchOp},
		Operations: []iam.Patch{{Op: iam.PatchOpReplace, Path: "active", Value: false}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Users.GetById(ctx, u.Id); err != nil {
		t.Fatal(err)
	}
	if err := e.a.Users.DeleteById(ctx, u.Id); err != nil {
		t.Fatal(err)
	}
	st := e.emu.Stats()
	if st.WriteCount() != 3 || st.Writes["assignments.delete"]["200"] != 1 || st.Writes["scim.users.patch"]["200"] != 1 || st.Writes["scim.users.delete"]["204"] != 1 || st.Reads["scim.users.get"]["200"] != 1 {
		t.Errorf("writes %v, reads %v", st.Writes, st.Reads)
	}
}

func TestStrict_journalKeepsNewState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "emu.jsonl")
	e := setup(t, Options{StatePath: path, Users: []SeedUser{{UserName: "staff@org.com", Email: "s@org.com", Inactive: true}}})
	ctx := context.Background()
	if _, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "t"}); err != nil {
		t.Fatal(err)
	}
	e.control("POST", "/emulator/v1/tables", map[string]string{"schema": "main.t", "name": "x"}, nil)
	at := time.Now()
	before := dump(t, e.emu, at)
	restarted, err := New(Options{Token: testToken, AccountID: testAccount, WorkspaceID: testWorkspace, StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Close()
	if after := dump(t, restarted, at); after != before {
		t.Errorf("state differs after restart:\n%s\n%s", before, after)
	}
	srv := httptest.NewServer(restarted)
	defer srv.Close()
	e2 := &env{t: t, emu: restarted, srv: srv}
	e2.w = e2.workspaceClient(testToken, 1)
	err = e2.w.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: "main.t"})
	wantErr(t, err, "not empty", []error{apierr.ErrBadRequest})
	if got := restarted.Stats().Objects; got.InactiveUsers != 1 {
		t.Errorf("objects = %+v", got)
	}
}
