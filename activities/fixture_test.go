package activities

// Payload tests: the real SDK against qa.HTTPFixtures, which fails the test
// on any request without a matching fixture and compares JSON bodies. They
// pin the exact requests each step sends (method, path, query, body).

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/qa"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cohort-dev/cohort/roster"
)

const (
	fxAccount   = "acc-1"
	fxWorkspace = int64(900)
	fxEmail     = "ana.lima@example.com"
	fxUserID    = "7064349174826396"
	fxPolicy    = "POL1"
	fxTag       = "CohortParticipant"
)

var fxParticipant = roster.Participant{
	Email:       fxEmail,
	DisplayName: "Ana Lima 🚀",
	Schema:      "ana_lima",
	ClusterName: "cohort-ana-lima",
}

var fxSpec = ClusterSpec{PolicyID: fxPolicy, SparkVersion: "15.4.x-cpu-ml-scala2.12", NodeType: "Standard_DS3_v2"}

func fxSettings() Settings {
	return Settings{
		WorkspaceID:      fxWorkspace,
		WorkspaceHost:    "https://adb-900.1.azuredatabricks.net/",
		Catalog:          "cohort",
		SchemaPrivileges: []string{"USE_SCHEMA", "CREATE_TABLE", "SELECT"},
		SharedGrants: []Grant{
			{Securable: "schema", Name: "shared.data", Privileges: []string{"USE_SCHEMA", "SELECT"}},
			{Securable: "catalog", Name: "shared", Privileges: []string{"USE_CATALOG"}},
		},
		PolicyName:       "Personal Compute",
		NodeType:         "Standard_DS3_v2",
		Autotermination:  60,
		TagKey:           fxTag,
		StopPollInterval: 10 * time.Millisecond,
		AssignmentWait:   300 * time.Millisecond,
	}
}

// fixtureActivities builds Activities over real SDK clients pointed at an
// HTTP fixture server.
func fixtureActivities(t *testing.T, fixtures qa.HTTPFixtures, s Settings) *Activities {
	t.Helper()
	cfg, server := fixtures.Config(t)
	t.Cleanup(server.Close)
	cfg.RetryTimeoutSeconds = 3
	cfg.RateLimitPerSecond = sdkRateLimit
	w, err := databricks.NewWorkspaceClient((*databricks.Config)(cfg))
	if err != nil {
		t.Fatalf("workspace client: %v", err)
	}
	a, err := databricks.NewAccountClient(&databricks.Config{
		Host:                server.URL,
		AccountID:           fxAccount,
		Token:               "x",
		Credentials:         config.PatCredentials{},
		RetryTimeoutSeconds: 3,
		RateLimitPerSecond:  sdkRateLimit,
	})
	if err != nil {
		t.Fatalf("account client: %v", err)
	}
	acc, ws := FromClients(a, w)
	return &Activities{Account: acc, Workspace: ws, Settings: s}
}

// run executes one activity in Temporal's test activity environment (a real
// activity context: heartbeats, logger, heartbeat details).
func run[In, Out any](t *testing.T, a *Activities, fn func(*Activities) any, in In, heartbeat ...any) (Out, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(tLogger{t})
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if len(heartbeat) > 0 {
		env.SetHeartbeatDetails(heartbeat[0])
	}
	var out Out
	val, err := env.ExecuteActivity(fn(a), in)
	if err != nil {
		return out, err
	}
	if err := val.Get(&out); err != nil {
		t.Fatalf("decode result: %v", err)
	}
	return out, nil
}

func apiErr(code, msg string) map[string]any {
	return map[string]any{"error_code": code, "message": msg}
}

func scimErr(status, detail string) map[string]any {
	return map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"detail":  detail,
		"status":  status,
	}
}

// wantAppErr asserts err is an ApplicationError of the given type and
// retryability.
func wantAppErr(t *testing.T, err error, typ string, retryable bool) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want an ApplicationError of type %s", err, typ)
	}
	if ae.Type() != typ || ae.NonRetryable() == retryable {
		t.Fatalf("error type %s retryable %v, want %s retryable %v (%v)", ae.Type(), !ae.NonRetryable(), typ, retryable, err)
	}
	return ae
}

const (
	usersPath   = "/api/2.0/accounts/acc-1/scim/v2/Users"
	usersLookup = usersPath + "?attributes=id%2CuserName&count=10000&filter=userName+eq+%22ana.lima%40example.com%22&startIndex=1"
	assignPath  = "/api/2.0/accounts/acc-1/workspaces/900/permissionassignments/principals/7064349174826396"
)

var createUserBody = map[string]any{
	"userName":    fxEmail,
	"displayName": "Ana Lima 🚀",
	"emails":      []any{map[string]any{"value": fxEmail, "primary": true}},
}

var assignedUser = map[string]any{
	"permissions": []string{"USER"},
	"principal":   map[string]any{"principal_id": 7064349174826396, "user_name": fxEmail},
}

func TestProvisionUser_createsAndAssigns(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "POST", Resource: usersPath, Status: 201,
			ExpectedRequest: createUserBody,
			Response:        map[string]any{"id": fxUserID, "userName": fxEmail, "active": true},
		},
		{
			Method: "PUT", Resource: assignPath,
			ExpectedRequest: map[string]any{"permissions": []string{"USER"}},
			Response:        assignedUser,
		},
	}, fxSettings())
	got, err := run[ProvisionUserInput, ProvisionUserResult](t, a, func(a *Activities) any { return a.ProvisionUser },
		ProvisionUserInput{Participant: fxParticipant})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ProvisionUserResult{UserID: fxUserID, Created: true}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// A conflict is resolved with exactly one SCIM list request (the fixture
// server fails the test on a second one: there is no stub for startIndex=2).
func TestProvisionUser_conflictAdoptsWithOneLookup(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "POST", Resource: usersPath, Status: 409, ExpectedRequest: createUserBody,
			Response: scimErr("409", "User with email ana.lima@example.com already exists in this account."),
		},
		{
			Method: "GET", Resource: usersLookup,
			Response: map[string]any{
				"schemas":      []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
				"totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
				"Resources": []any{map[string]any{"id": fxUserID, "userName": fxEmail}},
			},
		},
		{Method: "PUT", Resource: assignPath, Response: assignedUser},
	}, fxSettings())
	got, err := run[ProvisionUserInput, ProvisionUserResult](t, a, func(a *Activities) any { return a.ProvisionUser },
		ProvisionUserInput{Participant: fxParticipant})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ProvisionUserResult{UserID: fxUserID, Created: false}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// When the PUT answers without naming the principal, the assignment is
// confirmed by listing the workspace's assignments.
func TestProvisionUser_confirmsByList(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "POST", Resource: usersPath, Status: 201, Response: map[string]any{"id": fxUserID, "userName": fxEmail}},
		{Method: "PUT", Resource: assignPath, Response: map[string]any{}},
		{
			Method: "GET", Resource: "/api/2.0/accounts/acc-1/workspaces/900/permissionassignments?",
			Response: map[string]any{"permission_assignments": []any{assignedUser}},
		},
	}, fxSettings())
	if _, err := run[ProvisionUserInput, ProvisionUserResult](t, a, func(a *Activities) any { return a.ProvisionUser },
		ProvisionUserInput{Participant: fxParticipant}); err != nil {
		t.Fatal(err)
	}
}

// "Principal X not in workspace Y" is retried within AssignmentWait, then
// reported as the retryable ErrPrincipalNotReady.
func TestProvisionUser_principalNotReady(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "POST", Resource: usersPath, Status: 201, Response: map[string]any{"id": fxUserID, "userName": fxEmail}},
		{
			Method: "PUT", Resource: assignPath, Status: 400, ReuseRequest: true,
			Response: apiErr("INVALID_PARAMETER_VALUE", "Principal 7064349174826396 not in workspace 900"),
		},
	}, fxSettings())
	_, err := run[ProvisionUserInput, ProvisionUserResult](t, a, func(a *Activities) any { return a.ProvisionUser },
		ProvisionUserInput{Participant: fxParticipant})
	wantAppErr(t, err, ErrPrincipalNotReady, true)
}

// A refused user (400) fails at once.
func TestProvisionUser_refused(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "POST", Resource: usersPath, Status: 400, Response: scimErr("400", "User name is not allowed")},
	}, fxSettings())
	_, err := run[ProvisionUserInput, ProvisionUserResult](t, a, func(a *Activities) any { return a.ProvisionUser },
		ProvisionUserInput{Participant: fxParticipant})
	wantAppErr(t, err, ErrInvalidInput, false)
}

const (
	schemasPath = "/api/2.1/unity-catalog/schemas"
	grantsPath  = "/api/2.1/unity-catalog/permissions/"
)

func grantFixture(securable, name string, privs ...string) qa.HTTPFixture {
	return qa.HTTPFixture{
		Method: "PATCH", Resource: grantsPath + securable + "/" + name,
		ExpectedRequest: map[string]any{"changes": []any{map[string]any{"principal": fxEmail, "add": privs}}},
		Response: map[string]any{"privilege_assignments": []any{
			map[string]any{"principal": "admins", "privileges": []string{"ALL_PRIVILEGES"}},
			map[string]any{"principal": fxEmail, "privileges": privs},
		}},
	}
}

func TestProvisionSchema_createsAndGrants(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "POST", Resource: schemasPath,
			ExpectedRequest: map[string]any{"catalog_name": "cohort", "name": "ana_lima"},
			Response:        map[string]any{"name": "ana_lima", "catalog_name": "cohort", "full_name": "cohort.ana_lima"},
		},
		grantFixture("catalog", "cohort", "USE_CATALOG"),
		grantFixture("schema", "cohort.ana_lima", "USE_SCHEMA", "CREATE_TABLE", "SELECT"),
		grantFixture("schema", "shared.data", "USE_SCHEMA", "SELECT"),
		grantFixture("catalog", "shared", "USE_CATALOG"),
	}, fxSettings())
	got, err := run[ProvisionSchemaInput, ProvisionSchemaResult](t, a, func(a *Activities) any { return a.ProvisionSchema },
		ProvisionSchemaInput{Participant: fxParticipant, Catalog: "Cohort"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ProvisionSchemaResult{FullName: "cohort.ana_lima", Created: true}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestProvisionSchema_existingSchemaIsPresent(t *testing.T) {
	s := fxSettings()
	s.SharedGrants = nil
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "POST", Resource: schemasPath, Status: 409,
			Response: apiErr("SCHEMA_ALREADY_EXISTS", "Schema 'ana_lima' already exists"),
		},
		grantFixture("catalog", "cohort", "USE_CATALOG"),
		grantFixture("schema", "cohort.ana_lima", "USE_SCHEMA", "CREATE_TABLE", "SELECT"),
	}, s)
	got, err := run[ProvisionSchemaInput, ProvisionSchemaResult](t, a, func(a *Activities) any { return a.ProvisionSchema },
		ProvisionSchemaInput{Participant: fxParticipant, Catalog: "cohort"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ProvisionSchemaResult{FullName: "cohort.ana_lima", Created: false}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestProvisionSchema_principalNotReady(t *testing.T) {
	s := fxSettings()
	s.SharedGrants = nil
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "POST", Resource: schemasPath, Status: 409, Response: apiErr("SCHEMA_ALREADY_EXISTS", "Schema 'ana_lima' already exists")},
		{
			Method: "PATCH", Resource: grantsPath + "catalog/cohort", Status: 404,
			Response: apiErr("PRINCIPAL_DOES_NOT_EXIST", "Could not find principal with name ana.lima@example.com"),
		},
	}, s)
	_, err := run[ProvisionSchemaInput, ProvisionSchemaResult](t, a, func(a *Activities) any { return a.ProvisionSchema },
		ProvisionSchemaInput{Participant: fxParticipant, Catalog: "cohort"})
	wantAppErr(t, err, ErrPrincipalNotReady, true)
}

const (
	clustersList = "/api/2.1/clusters/list?filter_by.policy_id=POL1&page_size=100"
	clusterID    = "0301-123456-abcd1234"
)

var createClusterBody = map[string]any{
	"apply_policy_default_values": true,
	"autotermination_minutes":     60,
	"cluster_name":                "cohort-ana-lima",
	"custom_tags":                 map[string]any{"ResourceClass": "SingleNode", fxTag: fxEmail},
	"data_security_mode":          "SINGLE_USER",
	"node_type_id":                "Standard_DS3_v2",
	"num_workers":                 0,
	"policy_id":                   fxPolicy,
	"single_user_name":            fxEmail,
	"spark_conf":                  map[string]any{"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
	"spark_version":               "15.4.x-cpu-ml-scala2.12",
	"idempotency_token":           idempotencyToken(fxEmail),
}

func permissionsFixture(id string) qa.HTTPFixture {
	return qa.HTTPFixture{
		Method: "PATCH", Resource: "/api/2.0/permissions/clusters/" + id,
		ExpectedRequest: map[string]any{"access_control_list": []any{
			map[string]any{"user_name": fxEmail, "permission_level": "CAN_RESTART"},
		}},
		Response: map[string]any{
			"object_id": "/clusters/" + id, "object_type": "cluster",
			"access_control_list": []any{
				map[string]any{"user_name": fxEmail, "all_permissions": []any{map[string]any{"permission_level": "CAN_RESTART", "inherited": false}}},
				map[string]any{"group_name": "admins", "all_permissions": []any{map[string]any{
					"permission_level": "CAN_MANAGE", "inherited": true, "inherited_from_object": []string{"/clusters/"}}}},
			},
		},
	}
}

// stopFixtures: the terminate, and the read-back that ends the stop step
// (TERMINATING: Databricks finishes the stop on its own).
func stopFixtures(id string) qa.HTTPFixtures {
	return qa.HTTPFixtures{
		{Method: "POST", Resource: "/api/2.1/clusters/delete", ExpectedRequest: map[string]any{"cluster_id": id}, Response: map[string]any{}},
		{Method: "GET", Resource: "/api/2.1/clusters/get?cluster_id=" + id, Response: map[string]any{"cluster_id": id, "state": "TERMINATING"}},
	}
}

// A cluster that still reads RUNNING after the terminate (not yet visible,
// or started again meanwhile) is terminated again; a read that fails
// transiently is repeated the same way.
func TestStopCluster_terminatesAgainUntilStopping(t *testing.T) {
	get := "/api/2.1/clusters/get?cluster_id=" + clusterID
	del := qa.HTTPFixture{Method: "POST", Resource: "/api/2.1/clusters/delete", ExpectedRequest: map[string]any{"cluster_id": clusterID}, Response: map[string]any{}}
	fx := qa.HTTPFixtures{
		del,
		{Method: "GET", Resource: get, Response: map[string]any{"cluster_id": clusterID, "state": "RUNNING"}},
		del,
		{Method: "GET", Resource: get, Status: 400, Response: apiErr("REQUEST_LIMIT_EXCEEDED", "slow down")},
		del,
		{Method: "GET", Resource: get, Response: map[string]any{"cluster_id": clusterID, "state": "TERMINATED"}},
	}
	a := fixtureActivities(t, fx, fxSettings())
	state, err := a.stopCluster(context.Background(), clusterID, "RUNNING")
	if err != nil || state != "TERMINATED" {
		t.Fatalf("stopCluster = %s, %v; want TERMINATED", state, err)
	}
}

// A participant whose user this run created cannot have a cluster yet: the
// create goes out without a clusters/list first (the fixtures would fail an
// unexpected request).
func TestProvisionCluster_createsSingleNode(t *testing.T) {
	fx := qa.HTTPFixtures{
		{Method: "POST", Resource: "/api/2.1/clusters/create", ExpectedRequest: createClusterBody, Response: map[string]any{"cluster_id": clusterID}},
		permissionsFixture(clusterID),
	}
	a := fixtureActivities(t, append(fx, stopFixtures(clusterID)...), fxSettings())
	got, err := run[ProvisionClusterInput, ProvisionClusterResult](t, a, func(a *Activities) any { return a.ProvisionCluster },
		ProvisionClusterInput{Participant: fxParticipant, Spec: fxSpec, BatchID: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	want := ProvisionClusterResult{
		ClusterID: clusterID, State: "TERMINATING", Created: true,
		URL: "https://adb-900.1.azuredatabricks.net/compute/clusters/" + clusterID,
	}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func tagged(id string, start int64, state, email string) map[string]any {
	return map[string]any{
		"cluster_id": id, "start_time": start, "state": state, "policy_id": fxPolicy,
		"custom_tags": map[string]any{"ResourceClass": "SingleNode", fxTag: email},
	}
}

// An existing tagged cluster is adopted (the oldest of several), never
// duplicated: there is no create fixture.
func TestProvisionCluster_adoptsOldestTagged(t *testing.T) {
	fx := qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{"clusters": []any{
			tagged("c-newer", 2000, "RUNNING", fxEmail),
			tagged("c-other", 500, "RUNNING", "someone@example.com"),
			tagged("c-older", 1000, "RUNNING", "Ana.Lima@Example.com"),
		}}},
		permissionsFixture("c-older"),
	}
	a := fixtureActivities(t, append(fx, stopFixtures("c-older")...), fxSettings())
	got, err := run[ProvisionClusterInput, ProvisionClusterResult](t, a, func(a *Activities) any { return a.ProvisionCluster },
		ProvisionClusterInput{Participant: fxParticipant, Spec: fxSpec, Lookup: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != "c-older" || got.Created || got.State != "TERMINATING" {
		t.Errorf("got %+v, want c-older adopted and TERMINATING", got)
	}
}

// An adopted cluster that is already TERMINATED needs no terminate call.
func TestProvisionCluster_alreadyTerminated(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{"clusters": []any{tagged(clusterID, 1, "TERMINATED", fxEmail)}}},
		permissionsFixture(clusterID),
	}, fxSettings())
	got, err := run[ProvisionClusterInput, ProvisionClusterResult](t, a, func(a *Activities) any { return a.ProvisionCluster },
		ProvisionClusterInput{Participant: fxParticipant, Spec: fxSpec, Lookup: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "TERMINATED" || got.Created {
		t.Errorf("got %+v", got)
	}
}

// A create that fails after being applied (here a 500 the SDK does not
// retry) is resolved by listing again and adopting the cluster.
func TestProvisionCluster_createErrorAdoptsApplied(t *testing.T) {
	fx := qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{}},
		{Method: "POST", Resource: "/api/2.1/clusters/create", Status: 500, Response: apiErr("INTERNAL_ERROR", "boom")},
		{Method: "GET", Resource: clustersList, Response: map[string]any{"clusters": []any{tagged(clusterID, 1, "PENDING", fxEmail)}}},
		permissionsFixture(clusterID),
	}
	a := fixtureActivities(t, append(fx, stopFixtures(clusterID)...), fxSettings())
	got, err := run[ProvisionClusterInput, ProvisionClusterResult](t, a, func(a *Activities) any { return a.ProvisionCluster },
		ProvisionClusterInput{Participant: fxParticipant, Spec: fxSpec, Lookup: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != clusterID || got.State != "TERMINATING" {
		t.Errorf("got %+v", got)
	}
}

// A create refused by the policy fails at once, after a second look.
func TestProvisionCluster_policyViolation(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{}},
		{
			Method: "POST", Resource: "/api/2.1/clusters/create", Status: 400,
			Response: apiErr("INVALID_PARAMETER_VALUE", "Validation failed for data_security_mode, the value must be present"),
		},
		{Method: "GET", Resource: clustersList, Response: map[string]any{}},
	}, fxSettings())
	_, err := run[ProvisionClusterInput, ProvisionClusterResult](t, a, func(a *Activities) any { return a.ProvisionCluster },
		ProvisionClusterInput{Participant: fxParticipant, Spec: fxSpec, Lookup: true})
	ae := wantAppErr(t, err, ErrInvalidInput, false)
	var step string
	if err := ae.Details(&step); err != nil || step != StepCreateCluster {
		t.Errorf("details step = %q (%v), want %q", step, err, StepCreateCluster)
	}
}

// A retried attempt goes straight to the cluster its last heartbeat named.
func TestProvisionCluster_resumesFromHeartbeat(t *testing.T) {
	fx := qa.HTTPFixtures{
		{Method: "GET", Resource: "/api/2.1/clusters/get?cluster_id=" + clusterID, Response: tagged(clusterID, 1, "RUNNING", fxEmail)},
		permissionsFixture(clusterID),
	}
	a := fixtureActivities(t, append(fx, stopFixtures(clusterID)...), fxSettings())
	got, err := run[ProvisionClusterInput, ProvisionClusterResult](t, a, func(a *Activities) any { return a.ProvisionCluster },
		ProvisionClusterInput{Participant: fxParticipant, Spec: fxSpec, Lookup: true}, progress{ClusterID: clusterID, State: "RUNNING"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != clusterID || got.State != "TERMINATING" {
		t.Errorf("got %+v", got)
	}
}

// The participant must end with exactly CAN_RESTART as a direct permission.
func TestProvisionCluster_permissionReadBackMismatch(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{"clusters": []any{tagged(clusterID, 1, "TERMINATED", fxEmail)}}},
		{
			Method: "PATCH", Resource: "/api/2.0/permissions/clusters/" + clusterID,
			Response: map[string]any{"access_control_list": []any{
				map[string]any{"user_name": fxEmail, "all_permissions": []any{map[string]any{"permission_level": "CAN_MANAGE"}}},
			}},
		},
	}, fxSettings())
	_, err := run[ProvisionClusterInput, ProvisionClusterResult](t, a, func(a *Activities) any { return a.ProvisionCluster },
		ProvisionClusterInput{Participant: fxParticipant, Spec: fxSpec, Lookup: true})
	wantAppErr(t, err, ErrClusterLaunchFailed, true)
}

func TestSetupBatch_resolvesSpec(t *testing.T) {
	s := fxSettings()
	s.NodeType = "smallest"
	s.CreateCatalog = true
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/cohort?", Status: 404, Response: apiErr("CATALOG_DOES_NOT_EXIST", "Catalog 'cohort' does not exist.")},
		{Method: "POST", Resource: "/api/2.1/unity-catalog/catalogs", Response: map[string]any{"name": "cohort"}},
		{Method: "GET", Resource: "/api/2.1/unity-catalog/schemas/shared.data?", Response: map[string]any{"full_name": "shared.data"}},
		{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/shared?", Response: map[string]any{"name": "shared"}},
		{Method: "GET", Resource: "/api/2.0/policies/clusters/list?", Response: map[string]any{"policies": []any{
			map[string]any{"policy_id": "OTHER", "name": "Shared Compute"},
			map[string]any{"policy_id": fxPolicy, "name": "Personal Compute", "policy_family_id": "personal-vm"},
		}}},
		{Method: "GET", Resource: "/api/2.1/clusters/spark-versions", Response: map[string]any{"versions": []any{
			map[string]any{"key": "14.3.x-cpu-ml-scala2.12", "name": "14.3 LTS ML (includes Apache Spark 3.5.0, Scala 2.12)"},
			map[string]any{"key": "15.4.x-cpu-ml-scala2.12", "name": "15.4 LTS ML (includes Apache Spark 3.5.0, Scala 2.12)"},
			map[string]any{"key": "16.0.x-cpu-ml-scala2.12", "name": "16.0 ML (includes Apache Spark 3.5.0, Scala 2.12)"},
			map[string]any{"key": "15.4.x-scala2.12", "name": "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)"},
		}}},
		{Method: "GET", Resource: "/api/2.1/clusters/list-node-types", Response: map[string]any{"node_types": []any{
			map[string]any{"node_type_id": "Standard_DS4_v2", "num_cores": 8, "memory_mb": 28672, "category": "General Purpose", "node_instance_type": map[string]any{"local_disks": 1}},
			map[string]any{"node_type_id": "Standard_DS3_v2", "num_cores": 4, "memory_mb": 14336, "category": "General Purpose", "node_instance_type": map[string]any{"local_disks": 1}},
			map[string]any{"node_type_id": "Standard_NC4as_T4_v3", "num_cores": 4, "memory_mb": 28672, "num_gpus": 1, "category": "GPU Accelerated"},
		}}},
	}, s)
	got, err := run[SetupBatchInput, SetupBatchResult](t, a, func(a *Activities) any { return a.SetupBatch }, SetupBatchInput{BatchID: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	want := SetupBatchResult{Catalog: "cohort", Cluster: ClusterSpec{PolicyID: fxPolicy, SparkVersion: "15.4.x-cpu-ml-scala2.12", NodeType: "Standard_DS3_v2"}}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestSetupBatch_missingPolicy(t *testing.T) {
	s := fxSettings()
	s.SharedGrants = nil
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/cohort?", Response: map[string]any{"name": "cohort"}},
		{Method: "GET", Resource: "/api/2.0/policies/clusters/list?", Response: map[string]any{"policies": []any{}}},
	}, s)
	_, err := run[SetupBatchInput, SetupBatchResult](t, a, func(a *Activities) any { return a.SetupBatch }, SetupBatchInput{})
	wantAppErr(t, err, ErrNotFound, false)
}

func TestSetupBatch_missingCatalogNotCreated(t *testing.T) {
	s := fxSettings()
	s.CreateCatalog = false
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/cohort?", Status: 404, Response: apiErr("CATALOG_DOES_NOT_EXIST", "Catalog 'cohort' does not exist.")},
	}, s)
	_, err := run[SetupBatchInput, SetupBatchResult](t, a, func(a *Activities) any { return a.SetupBatch }, SetupBatchInput{})
	wantAppErr(t, err, ErrNotFound, false)
}

func TestSetupBatch_missingSharedSchema(t *testing.T) {
	s := fxSettings()
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/cohort?", Response: map[string]any{"name": "cohort"}},
		{Method: "GET", Resource: "/api/2.1/unity-catalog/schemas/shared.data?", Status: 404, Response: apiErr("SCHEMA_DOES_NOT_EXIST", "Schema 'shared.data' does not exist.")},
	}, s)
	_, err := run[SetupBatchInput, SetupBatchResult](t, a, func(a *Activities) any { return a.SetupBatch }, SetupBatchInput{})
	ae := wantAppErr(t, err, ErrNotFound, false)
	if got := ae.Message(); got != "check shared grant: schema shared.data does not exist" {
		t.Errorf("message = %q", got)
	}
}

// Without the low-level client the typed create is used: same body, no token.
func TestProvisionCluster_typedCreateWithoutRaw(t *testing.T) {
	body := map[string]any{}
	for k, v := range createClusterBody {
		if k != "idempotency_token" {
			body[k] = v
		}
	}
	fx := qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{}},
		{Method: "POST", Resource: "/api/2.1/clusters/create", ExpectedRequest: body, Response: map[string]any{"cluster_id": clusterID}},
		permissionsFixture(clusterID),
	}
	a := fixtureActivities(t, append(fx, stopFixtures(clusterID)...), fxSettings())
	a.Workspace.Raw = nil
	got, err := run[ProvisionClusterInput, ProvisionClusterResult](t, a, func(a *Activities) any { return a.ProvisionCluster },
		ProvisionClusterInput{Participant: fxParticipant, Spec: fxSpec, Lookup: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != clusterID || !got.Created {
		t.Errorf("got %+v", got)
	}
}

func TestIdempotencyToken(t *testing.T) {
	a, b := idempotencyToken("Ana.Lima@Example.com"), idempotencyToken("ana.lima@example.com")
	if a != b || len(a) > 64 || a == idempotencyToken("bo@example.com") {
		t.Errorf("tokens %q %q: want stable per lower-cased email, distinct per participant, <= 64 chars", a, b)
	}
}
