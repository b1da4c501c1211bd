package emulator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/compute"
)

// participantCluster is the create body Cohort sends (docs/databricks-api.md §1.6).
func participantCluster(name, user string) compute.CreateCluster {
	return compute.CreateCluster{
		ApplyPolicyDefaultValues: true,
		AutoterminationMinutes:   30,
		ClusterName:              name,
		CustomTags:               map[string]string{"ResourceClass": "SingleNode", "EventParticipant": user},
		DataSecurityMode:         compute.DataSecurityModeSingleUser,
		NodeTypeId:               "Standard_DS3_v2",
		NumWorkers:               0,
		PolicyId:                 personalComputePolicyID,
		SingleUserName:           user,
		SparkConf:                map[string]string{"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
		SparkVersion:             "15.4.x-cpu-ml-scala2.12",
		ForceSendFields:          []string{"NumWorkers"},
	}
}

func TestRuntimesAndNodeTypes(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	versions := []struct {
		req  compute.SparkVersionRequest
		want string
	}{
		// The newest ML LTS has a key without a minor version (SDK v0.173+).
		{compute.SparkVersionRequest{ML: true, LongTermSupport: true, Latest: true}, "18.x-cpu-ml-scala2.13"},
		{compute.SparkVersionRequest{ML: true, Latest: true}, "18.x-cpu-ml-scala2.13"},
		{compute.SparkVersionRequest{ML: true, GPU: true, LongTermSupport: true, Latest: true}, "18.x-gpu-ml-scala2.13"},
		{compute.SparkVersionRequest{LongTermSupport: true, Latest: true}, "18.x-scala2.13"},
		{compute.SparkVersionRequest{Photon: true, LongTermSupport: true, Latest: true}, "18.x-photon-scala2.13"},
		{compute.SparkVersionRequest{ML: true, LongTermSupport: true, Latest: true, Scala: "2.12"}, "16.4.x-cpu-ml-scala2.12"},
		{compute.SparkVersionRequest{Beta: true, ML: true, Latest: true}, "19.x-cpu-ml-scala2.13"},
	}
	for _, tc := range versions {
		got, err := e.w.Clusters.SelectSparkVersion(ctx, tc.req)
		if err != nil || got != tc.want {
			t.Errorf("SelectSparkVersion(%+v) = %q, %v; want %q", tc.req, got, err, tc.want)
		}
	}
	nodes := []struct {
		req  compute.NodeTypeRequest
		want string
	}{
		{compute.NodeTypeRequest{}, "Standard_F4s"},
		{compute.NodeTypeRequest{MinCores: 4, MinMemoryGB: 14}, "Standard_DS3_v2"},
		{compute.NodeTypeRequest{MinMemoryGB: 16}, "Standard_D4as_v5"},
		{compute.NodeTypeRequest{MinMemoryGB: 16, LocalDisk: true}, "Standard_D4ds_v5"},
		{compute.NodeTypeRequest{MinCores: 8, MinMemoryGB: 64}, "Standard_E8ds_v4"},
		{compute.NodeTypeRequest{MinGPUs: 1}, "Standard_NC4as_T4_v3"},
		{compute.NodeTypeRequest{Category: "Compute Optimized"}, "Standard_F4s"},
	}
	for _, tc := range nodes {
		got, err := e.w.Clusters.SelectNodeType(ctx, tc.req)
		if err != nil || got != tc.want {
			t.Errorf("SelectNodeType(%+v) = %q, %v; want %q", tc.req, got, err, tc.want)
		}
	}
	nts, err := e.w.Clusters.ListNodeTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nts.NodeTypes {
		if n.NodeTypeId == "Standard_DS3_v2" && (n.NumCores != 4 || n.MemoryMb != 14336) {
			t.Errorf("Standard_DS3_v2 = %v cores %d MB, want 4 and 14336", n.NumCores, n.MemoryMb)
		}
	}

	pol, err := e.w.ClusterPolicies.GetByName(ctx, "Personal Compute")
	if err != nil || pol.PolicyFamilyId != "personal-vm" || !pol.IsDefault || !strings.Contains(pol.Definition, `"data_security_mode"`) {
		t.Fatalf("policy = %+v, %v", pol, err)
	}
	if p, err := e.w.ClusterPolicies.GetByPolicyId(ctx, pol.PolicyId); err != nil || p.Name != "Personal Compute" {
		t.Errorf("get policy = %+v, %v", p, err)
	}
	_, err = e.w.ClusterPolicies.GetByPolicyId(ctx, "NOPE")
	wantErr(t, err, "does not exist", []error{apierr.ErrInvalidParameterValue})
	fam, err := e.w.PolicyFamilies.GetByPolicyFamilyId(ctx, "personal-vm")
	if err != nil || fam.Definition != pol.Definition {
		t.Errorf("policy family = %+v, %v", fam, err)
	}
	_, err = e.w.PolicyFamilies.GetByPolicyFamilyId(ctx, "job-cluster")
	wantErr(t, err, "does not exist", []error{apierr.ErrNotFound})
}

func TestClusters_lifecycle(t *testing.T) {
	// Transitions take 50 ms of a clock that moves only when told to, so the
	// states in between are seen for sure.
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now})
	ctx := context.Background()
	u := e.participant("runner@event.org")
	wait, err := e.w.Clusters.Create(ctx, participantCluster("evt-runner", u.UserName))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got, _ := e.w.Clusters.GetByClusterId(ctx, wait.ClusterId); got.State != compute.StatePending {
		t.Errorf("after create state = %s, want PENDING", got.State)
	}
	clock.Advance(time.Second)
	cl, err := wait.GetWithTimeout(20 * time.Second)
	if err != nil {
		t.Fatalf("wait RUNNING: %v", err)
	}
	if cl.State != compute.StateRunning || cl.SingleUserName != u.UserName || cl.CreatorUserName != AdminUserName ||
		cl.DriverNodeTypeId != "Standard_DS3_v2" || cl.DefaultTags["ClusterId"] != cl.ClusterId ||
		cl.RuntimeEngine != compute.RuntimeEngineStandard || cl.AzureAttributes == nil || cl.AzureAttributes.Availability != "ON_DEMAND_AZURE" {
		t.Errorf("running cluster = %+v", cl)
	}
	_, err = e.w.Clusters.Start(ctx, compute.StartCluster{ClusterId: cl.ClusterId})
	wantErr(t, err, fmt.Sprintf("Cluster %s is in unexpected state Running.", cl.ClusterId), []error{apierr.ErrInvalidState, apierr.ErrBadRequest})

	tw, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: cl.ClusterId})
	if err != nil {
		t.Fatalf("terminate: %v", err)
	}
	clock.Advance(time.Second)
	done, err := tw.GetWithTimeout(20 * time.Second)
	if err != nil || done.State != compute.StateTerminated || done.TerminationReason == nil || done.TerminationReason.Code != "USER_REQUEST" {
		t.Fatalf("wait TERMINATED = %+v, %v", done, err)
	}
	if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Errorf("terminate of a terminated cluster: %v, want a no-op", err)
	}
	if _, err := e.w.Clusters.Start(ctx, compute.StartCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Errorf("start terminated: %v", err)
	}
	got, _ := e.w.Clusters.GetByClusterId(ctx, cl.ClusterId)
	if got.State != compute.StatePending {
		t.Errorf("after start state = %s, want PENDING", got.State)
	}
	// Terminate straight from PENDING.
	if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Errorf("terminate PENDING: %v", err)
	}
	got, _ = e.w.Clusters.GetByClusterId(ctx, cl.ClusterId)
	if got.State != compute.StateTerminating {
		t.Errorf("after terminate state = %s, want TERMINATING", got.State)
	}

	if err := e.w.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Fatalf("permanent delete: %v", err)
	}
	_, err = e.w.Clusters.GetByClusterId(ctx, cl.ClusterId)
	wantErr(t, err, fmt.Sprintf("Cluster %s does not exist", cl.ClusterId), []error{apierr.ErrResourceDoesNotExist, apierr.ErrNotFound})
	err = e.w.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: cl.ClusterId})
	wantErr(t, err, "does not exist", []error{apierr.ErrInvalidParameterValue}, apierr.ErrResourceDoesNotExist)
	_, err = e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: "0000-000000-nope"})
	wantErr(t, err, "Cluster 0000-000000-nope does not exist", []error{apierr.ErrInvalidParameterValue})
	_, err = e.w.Clusters.Start(ctx, compute.StartCluster{ClusterId: "0000-000000-nope"})
	wantErr(t, err, "does not exist", []error{apierr.ErrInvalidParameterValue})
}

func TestClusters_createValidation(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	u := e.participant("valid@event.org")
	stranger := e.user("stranger@event.org") // in the account, not in the workspace
	tests := []struct {
		name   string
		mutate func(*compute.CreateCluster)
		msg    string
	}{
		{"no data_security_mode, no defaults", func(c *compute.CreateCluster) { c.DataSecurityMode = ""; c.ApplyPolicyDefaultValues = false }, "Validation failed for data_security_mode, the value must be present"},
		{"dedicated alias not in personal-vm's allowlist", func(c *compute.CreateCluster) { c.DataSecurityMode = compute.DataSecurityModeDataSecurityModeDedicated }, "Validation failed for data_security_mode, the value must be one of [SINGLE_USER, LEGACY_SINGLE_USER, LEGACY_SINGLE_USER_STANDARD]"},
		{"node type not allowed", func(c *compute.CreateCluster) { c.NodeTypeId = "Standard_E8ds_v4" }, "Validation failed for node_type_id"},
		{"workers", func(c *compute.CreateCluster) { c.NumWorkers = 2 }, "Validation failed for num_workers, the value must be 0 (is 2)"},
		{"profile", func(c *compute.CreateCluster) { c.SparkConf["spark.databricks.cluster.profile"] = "serverless" }, "Validation failed for spark_conf.spark.databricks.cluster.profile"},
		{"spark master", func(c *compute.CreateCluster) { c.SparkConf["spark.master"] = "yarn" }, "Validation failed for spark_conf.spark.master"},
		{"pool forbidden", func(c *compute.CreateCluster) { c.InstancePoolId = "pool-1" }, "Validation failed for instance_pool_id, the value must not be present"},
		{"unknown runtime", func(c *compute.CreateCluster) { c.SparkVersion = "99.9.x-scala2.12" }, "Invalid spark version 99.9.x-scala2.12."},
		{"autotermination", func(c *compute.CreateCluster) { c.AutoterminationMinutes = 5 }, "Invalid autotermination_minutes 5"},
		{"unknown policy", func(c *compute.CreateCluster) { c.PolicyId = "NOPE" }, "Cluster policy NOPE does not exist."},
		{"unknown single user", func(c *compute.CreateCluster) { c.SingleUserName = "ghost@event.org" }, "Principal: UserName(ghost@event.org) does not exist"},
		{"single user not in workspace", func(c *compute.CreateCluster) { c.SingleUserName = stranger.UserName }, "Principal: UserName(stranger@event.org) does not exist"},
		{"no policy, unknown node type", func(c *compute.CreateCluster) { c.PolicyId = ""; c.NodeTypeId = "Standard_Z1" }, "Node type Standard_Z1 is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := participantCluster("evt-bad", u.UserName)
			tc.mutate(&req)
			_, err := e.w.Clusters.Create(ctx, req)
			wantErr(t, err, tc.msg, []error{apierr.ErrInvalidParameterValue, apierr.ErrBadRequest})
		})
	}
	if n := e.emu.Stats().Objects.Clusters; n != 0 {
		t.Errorf("invalid creates left %d clusters", n)
	}
	// Policy fills fixed and default values the caller omitted.
	req := participantCluster("evt-min", u.UserName)
	req.SparkConf = map[string]string{"spark.master": "local[*, 4]"}
	req.CustomTags = nil
	req.AutoterminationMinutes = 0
	w, err := e.w.Clusters.Create(ctx, req)
	if err != nil {
		t.Fatalf("create minimal: %v", err)
	}
	cl, err := e.w.Clusters.GetByClusterId(ctx, w.ClusterId)
	if err != nil {
		t.Fatal(err)
	}
	if cl.SparkConf["spark.databricks.cluster.profile"] != "singleNode" || cl.CustomTags["ResourceClass"] != "SingleNode" || cl.AutoterminationMinutes != 4320 || cl.NumWorkers != 0 {
		t.Errorf("policy defaults not applied: %+v", cl)
	}
}

func TestClusters_idempotencyToken(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	u := e.participant("idem@event.org")
	c, err := client.New((*config.Config)(e.config(testToken, 4)))
	if err != nil {
		t.Fatal(err)
	}
	create := func(token string) (string, error) {
		body := map[string]any{
			"cluster_name": "evt-idem", "spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_DS3_v2",
			"num_workers": 0, "data_security_mode": "SINGLE_USER", "single_user_name": u.UserName,
			"policy_id": personalComputePolicyID, "apply_policy_default_values": true,
			"spark_conf":        map[string]string{"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
			"idempotency_token": token,
		}
		var resp struct {
			ClusterID string `json:"cluster_id"`
		}
		err := c.Do(ctx, "POST", "/api/2.1/clusters/create", map[string]string{"Content-Type": "application/json"}, nil, body, &resp)
		return resp.ClusterID, err
	}
	first, err := create("participant-idem-1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := create("participant-idem-1")
	if err != nil || second != first {
		t.Errorf("second create with the same token = %q, %v; want %q", second, err, first)
	}
	if _, err := e.w.Clusters.DeleteAndWait(ctx, compute.DeleteCluster{ClusterId: first}); err != nil {
		t.Fatal(err)
	}
	third, err := create("participant-idem-1")
	if err != nil || third == first {
		t.Errorf("create after terminate = %q, %v; want a new cluster", third, err)
	}
	_, err = create(strings.Repeat("x", 65))
	wantErr(t, err, "at most 64 characters", []error{apierr.ErrInvalidParameterValue})
}

func TestClusters_list(t *testing.T) {
	// The clock stands still: the terminated cluster stays TERMINATING for
	// every subtest (with the wall clock its 50 ms stop delay ran out midway).
	clock := NewManualClock()
	e := setup(t, Options{ClusterStartDelay: time.Hour, Now: clock.Now})
	ctx := context.Background()
	u := e.participant("lister@event.org")
	var ids []string
	for i := range 5 {
		w, err := e.w.Clusters.Create(ctx, participantCluster(fmt.Sprintf("evt-%d", i), u.UserName))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ClusterId)
	}
	noPolicy := participantCluster("evt-free", u.UserName)
	noPolicy.PolicyId = ""
	if _, err := e.w.Clusters.Create(ctx, noPolicy); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: ids[0]}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  compute.ListClustersRequest
		want int
	}{
		{"all", compute.ListClustersRequest{}, 6},
		{"paged by 2", compute.ListClustersRequest{PageSize: 2}, 6},
		{"pending", compute.ListClustersRequest{FilterBy: &compute.ListClustersFilterBy{ClusterStates: []compute.State{compute.StatePending}}}, 5},
		{"pending or terminating", compute.ListClustersRequest{FilterBy: &compute.ListClustersFilterBy{ClusterStates: []compute.State{compute.StatePending, compute.StateTerminating}}}, 6},
		{"policy, paged", compute.ListClustersRequest{PageSize: 3, FilterBy: &compute.ListClustersFilterBy{PolicyId: personalComputePolicyID}}, 5},
		{"pinned", compute.ListClustersRequest{FilterBy: &compute.ListClustersFilterBy{IsPinned: true}}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.w.Clusters.ListAll(ctx, tc.req)
			if err != nil || len(got) != tc.want {
				t.Errorf("ListAll = %d clusters, %v; want %d", len(got), err, tc.want)
			}
			seen := map[string]bool{}
			for _, c := range got {
				if seen[c.ClusterId] {
					t.Errorf("cluster %s listed twice", c.ClusterId)
				}
				seen[c.ClusterId] = true
			}
		})
	}
	_, err := e.w.Clusters.ListAll(ctx, compute.ListClustersRequest{FilterBy: &compute.ListClustersFilterBy{ClusterStates: []compute.State{"SLEEPING"}}})
	wantErr(t, err, "Invalid cluster state", []error{apierr.ErrInvalidParameterValue})
}

func TestClusterPermissions_participantNeedsCanRestart(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	u := e.participant("owner@event.org")
	cl, err := e.w.Clusters.CreateAndWait(ctx, participantCluster("evt-owner", u.UserName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Clusters.DeleteAndWait(ctx, compute.DeleteCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Fatal(err)
	}

	perms, err := e.w.Clusters.GetPermissionsByClusterId(ctx, cl.ClusterId)
	if err != nil {
		t.Fatal(err)
	}
	if perms.ObjectId != "/clusters/"+cl.ClusterId || perms.ObjectType != "cluster" {
		t.Errorf("object = %s %s", perms.ObjectId, perms.ObjectType)
	}
	var adminsInherited, creatorManage bool
	for _, a := range perms.AccessControlList {
		for _, p := range a.AllPermissions {
			if a.GroupName == "admins" && p.Inherited && p.PermissionLevel == compute.ClusterPermissionLevelCanManage && len(p.InheritedFromObject) == 1 && p.InheritedFromObject[0] == "/clusters/" {
				adminsInherited = true
			}
			if a.UserName == AdminUserName && !p.Inherited && p.PermissionLevel == compute.ClusterPermissionLevelCanManage {
				creatorManage = true
			}
			if a.UserName == u.UserName {
				t.Errorf("participant has an ACL entry before any grant: %+v", a)
			}
		}
	}
	if !adminsInherited || !creatorManage {
		t.Errorf("ACL = %+v; want inherited admins CAN_MANAGE and creator CAN_MANAGE", perms.AccessControlList)
	}

	var tok struct {
		Token string `json:"token"`
	}
	if st := e.control("POST", "/emulator/v1/tokens", map[string]string{"user_name": u.UserName}, &tok); st != 200 || tok.Token == "" {
		t.Fatalf("POST tokens: %d %+v", st, tok)
	}
	pw := e.workspaceClient(tok.Token, 1)
	_, err = pw.Clusters.Start(ctx, compute.StartCluster{ClusterId: cl.ClusterId})
	wantErr(t, err, "does not have Restart or Manage permission", []error{apierr.ErrPermissionDenied})
	_, err = pw.Clusters.UpdatePermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: cl.ClusterId,
		AccessControlList: []compute.ClusterAccessControlRequest{{UserName: u.UserName, PermissionLevel: compute.ClusterPermissionLevelCanManage}}})
	wantErr(t, err, "does not have Manage permission", []error{apierr.ErrPermissionDenied})

	stranger := e.user("stranger@event.org")
	_, err = e.w.Clusters.UpdatePermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: cl.ClusterId,
		AccessControlList: []compute.ClusterAccessControlRequest{{UserName: stranger.UserName, PermissionLevel: compute.ClusterPermissionLevelCanRestart}}})
	wantErr(t, err, "Principal: UserName(stranger@event.org) does not exist", []error{apierr.ErrInvalidParameterValue})

	perms, err = e.w.Clusters.UpdatePermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: cl.ClusterId,
		AccessControlList: []compute.ClusterAccessControlRequest{{UserName: u.UserName, PermissionLevel: compute.ClusterPermissionLevelCanRestart}}})
	if err != nil {
		t.Fatalf("PATCH CAN_RESTART: %v", err)
	}
	if n := len(perms.AccessControlList); n != 3 {
		t.Errorf("after PATCH the ACL has %d entries, want creator, participant, admins", n)
	}
	if _, err := pw.Clusters.Start(ctx, compute.StartCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Fatalf("participant start with CAN_RESTART: %v", err)
	}
	if _, err := pw.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Fatalf("participant terminate with CAN_RESTART: %v", err)
	}

	// PUT replaces every direct entry: the creator's CAN_MANAGE is gone.
	perms, err = e.w.Clusters.SetPermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: cl.ClusterId,
		AccessControlList: []compute.ClusterAccessControlRequest{{UserName: u.UserName, PermissionLevel: compute.ClusterPermissionLevelCanAttachTo}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range perms.AccessControlList {
		if a.UserName == AdminUserName {
			t.Errorf("PUT kept creator entry %+v", a)
		}
	}
	levels, err := e.w.Clusters.GetPermissionLevelsByClusterId(ctx, cl.ClusterId)
	if err != nil || len(levels.PermissionLevels) != 3 {
		t.Errorf("levels = %+v, %v", levels, err)
	}

	bad := []struct {
		name string
		acl  []compute.ClusterAccessControlRequest
		msg  string
	}{
		{"bad level", []compute.ClusterAccessControlRequest{{UserName: u.UserName, PermissionLevel: "CAN_FLY"}}, "Permission level CAN_FLY is not supported"},
		{"admins group", []compute.ClusterAccessControlRequest{{GroupName: "admins", PermissionLevel: compute.ClusterPermissionLevelCanAttachTo}}, "Cannot change admins's CAN_MANAGE"},
		{"unknown group", []compute.ClusterAccessControlRequest{{GroupName: "ghosts", PermissionLevel: compute.ClusterPermissionLevelCanAttachTo}}, "Principal: GroupName(ghosts) does not exist"},
	}
	for _, tc := range bad {
		_, err := e.w.Clusters.UpdatePermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: cl.ClusterId, AccessControlList: tc.acl})
		wantErr(t, err, tc.msg, []error{apierr.ErrInvalidParameterValue})
	}
	_, err = e.w.Clusters.GetPermissionsByClusterId(ctx, "0000-000000-nope")
	wantErr(t, err, "does not exist", []error{apierr.ErrNotFound})
}

// TestClusters_keepRunning: the control API brings a started cluster to
// RUNNING at once and keeps it there past its auto-termination, until a
// terminate; a stopped cluster must be started first.
func TestClusters_keepRunning(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now, ClusterStartDelay: time.Hour})
	ctx := context.Background()
	u := e.participant("keeper@event.org")
	wait, err := e.w.Clusters.Create(ctx, participantCluster("evt-keeper", u.UserName)) // auto-terminates after 30 min
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	id := wait.ClusterId
	state := func() compute.State {
		t.Helper()
		c, err := e.w.Clusters.GetByClusterId(ctx, id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		return c.State
	}
	var out map[string]any
	if st := e.control("POST", "/emulator/v1/clusters/keep-running", map[string]string{"cluster_id": id}, &out); st != 200 || out["state"] != "RUNNING" {
		t.Fatalf("keep-running of a PENDING cluster = %d %v, want 200 RUNNING", st, out)
	}
	if got := state(); got != compute.StateRunning {
		t.Fatalf("after keep-running state = %s, want RUNNING (not after the hour's start delay)", got)
	}
	clock.Advance(24 * time.Hour) // far past autotermination_minutes 30
	if got := state(); got != compute.StateRunning {
		t.Errorf("a day later state = %s, want RUNNING (in use: no auto-termination)", got)
	}
	if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id}); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	if got := state(); got != compute.StateTerminating {
		t.Errorf("after terminate state = %s, want TERMINATING", got)
	}
	if st := e.control("POST", "/emulator/v1/clusters/keep-running", map[string]string{"cluster_id": id}, nil); st != 400 {
		t.Errorf("keep-running of a TERMINATING cluster = %d, want 400 (start it first)", st)
	}
	clock.Advance(time.Minute)
	// Started again without keep-running: the terminate cleared it, so the
	// cluster auto-terminates 30 minutes after it runs.
	if _, err := e.w.Clusters.Start(ctx, compute.StartCluster{ClusterId: id}); err != nil {
		t.Fatalf("start: %v", err)
	}
	clock.Advance(time.Hour + 31*time.Minute)
	if got := state(); got != compute.StateTerminating && got != compute.StateTerminated {
		t.Errorf("started again, 31 min after running state = %s, want auto-terminated", got)
	}
	if st := e.control("POST", "/emulator/v1/clusters/keep-running", map[string]string{"cluster_id": "0000-000000-nope"}, nil); st != 400 {
		t.Errorf("keep-running of an unknown cluster = %d, want 400", st)
	}
}
