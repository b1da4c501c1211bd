package activities

// Payload tests: the real SDK against qa.HTTPFixtures, which fails the test
// on any request without a matching fixture and compares JSON bodies. They
// pin the exact requests each step sends (method, path, query, body).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/qa"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
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

var fxSpec = wire.ClusterSpec{PolicyID: fxPolicy, SparkVersion: "15.4.x-cpu-ml-scala2.12", NodeType: "Standard_DS3_v2"}

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
	// The SDK's fixture server marks fixtures used without a lock, and the
	// readiness checks read concurrently: one request at a time keeps the
	// fixtures consistent.
	serial := &serialTransport{rt: http.DefaultTransport}
	cfg.HTTPTransport = serial
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
		HTTPTransport:       serial,
	})
	if err != nil {
		t.Fatalf("account client: %v", err)
	}
	acc, ws := FromClients(a, w)
	return &Activities{Account: acc, Workspace: ws, Settings: s}
}

// serialTransport sends one request at a time.
type serialTransport struct {
	mu sync.Mutex
	rt http.RoundTripper
}

func (s *serialTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp, err := s.rt.RoundTrip(r)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	// The body is read after RoundTrip returns: read it here, under the
	// lock, so the next request waits for the whole answer.
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
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
	usersLookup = usersPath + "?attributes=id%2CuserName%2Cemails%2Cactive&count=10000&filter=userName+eq+%22ana.lima%40example.com%22+or+emails.value+eq+%22ana.lima%40example.com%22&startIndex=1"
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

func TestCreateUser_creates(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "POST", Resource: usersPath, Status: 201,
			ExpectedRequest: createUserBody,
			Response:        map[string]any{"id": fxUserID, "userName": fxEmail, "active": true},
		},
	}, fxSettings())
	got, err := runCreateUser(t, a)
	if err != nil {
		t.Fatal(err)
	}
	if want := (wire.CreateUserResult{UserID: fxUserID, UserName: fxEmail, Created: true}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func runCreateUser(t *testing.T, a *Activities) (wire.CreateUserResult, error) {
	t.Helper()
	return run[wire.CreateUserInput, wire.CreateUserResult](t, a, func(a *Activities) any { return a.CreateUser },
		wire.CreateUserInput{Participant: fxParticipant})
}

func runAssign(t *testing.T, a *Activities) error {
	t.Helper()
	_, err := run[wire.AssignWorkspaceInput, wire.AssignWorkspaceResult](t, a, func(a *Activities) any { return a.AssignWorkspace },
		wire.AssignWorkspaceInput{Email: fxEmail, UserID: fxUserID})
	return err
}

// A conflict is resolved with exactly one SCIM list request (the fixture
// server fails the test on a second one: there is no stub for startIndex=2).
func TestCreateUser_conflictAdoptsWithOneLookup(t *testing.T) {
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
				"Resources": []any{map[string]any{"id": fxUserID, "userName": fxEmail, "active": true,
					"emails": []any{map[string]any{"value": fxEmail, "primary": true}}}},
			},
		},
	}, fxSettings())
	got, err := runCreateUser(t, a)
	if err != nil {
		t.Fatal(err)
	}
	if want := (wire.CreateUserResult{UserID: fxUserID, UserName: fxEmail, Created: false}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// A refused user (400) fails at once.
func TestCreateUser_refused(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "POST", Resource: usersPath, Status: 400, Response: scimErr("400", "User name is not allowed")},
	}, fxSettings())
	_, err := runCreateUser(t, a)
	wantAppErr(t, err, wire.ErrInvalidInput, false)
}

func TestAssignWorkspace_assigns(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "PUT", Resource: assignPath,
			ExpectedRequest: map[string]any{"permissions": []string{"USER"}},
			Response:        assignedUser,
		},
	}, fxSettings())
	if err := runAssign(t, a); err != nil {
		t.Fatal(err)
	}
}

// When the PUT answers without naming the principal, the assignment is
// confirmed by listing the workspace's assignments.
func TestAssignWorkspace_confirmsByList(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "PUT", Resource: assignPath, Response: map[string]any{}},
		{
			Method: "GET", Resource: "/api/2.0/accounts/acc-1/workspaces/900/permissionassignments?",
			Response: map[string]any{"permission_assignments": []any{assignedUser}},
		},
	}, fxSettings())
	if err := runAssign(t, a); err != nil {
		t.Fatal(err)
	}
}

// "Principal X not in workspace Y" is retried within AssignmentWait, then
// reported as the retryable wire.ErrPrincipalNotReady.
func TestAssignWorkspace_principalNotReady(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "PUT", Resource: assignPath, Status: 400, ReuseRequest: true,
			Response: apiErr("INVALID_PARAMETER_VALUE", "Principal 7064349174826396 not in workspace 900"),
		},
	}, fxSettings())
	wantAppErr(t, runAssign(t, a), wire.ErrPrincipalNotReady, true)
}

const (
	schemasPath = "/api/2.1/unity-catalog/schemas"
	grantsPath  = "/api/2.1/unity-catalog/permissions/"
)

// grantFixture expects the participant's privileges on one securable, asks
// for no assignments in the answer, and gets none.
func grantFixture(securable, name string, privs ...string) qa.HTTPFixture {
	return qa.HTTPFixture{
		Method: "PATCH", Resource: grantsPath + securable + "/" + name,
		ExpectedRequest: map[string]any{
			"changes":                      []any{map[string]any{"principal": fxEmail, "add": privs}},
			"omit_permissions_in_response": true,
		},
		Response: map[string]any{},
	}
}

func runCreateSchema(t *testing.T, a *Activities, catalog string) (wire.CreateSchemaResult, error) {
	t.Helper()
	return run[wire.CreateSchemaInput, wire.CreateSchemaResult](t, a, func(a *Activities) any { return a.CreateSchema },
		wire.CreateSchemaInput{Participant: fxParticipant, Catalog: catalog})
}

// runGrant runs step grant for a user created by this run (no reads).
func runGrant(t *testing.T, a *Activities) error {
	t.Helper()
	_, err := runGrantFor(t, a, true)
	return err
}

func runGrantFor(t *testing.T, a *Activities, created bool) (wire.GrantResult, error) {
	t.Helper()
	return run[wire.GrantInput, wire.GrantResult](t, a, func(a *Activities) any { return a.Grant },
		wire.GrantInput{Principal: fxEmail, Catalog: "cohort", Schema: "cohort.ana_lima", PrincipalCreated: created})
}

// heldFixture answers the read of what the participant holds on one
// securable.
func heldFixture(securable, name string, privs ...string) qa.HTTPFixture {
	pas := []any{}
	if len(privs) > 0 {
		pas = append(pas, map[string]any{"principal": fxEmail, "privileges": privs})
	}
	return qa.HTTPFixture{
		Method: "GET", Resource: grantsPath + securable + "/" + name + "?principal=ana.lima%40example.com",
		Response: map[string]any{"privilege_assignments": pas},
	}
}

func TestCreateSchema_creates(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "POST", Resource: schemasPath,
			ExpectedRequest: map[string]any{"catalog_name": "cohort", "name": "ana_lima",
				"properties": map[string]any{wire.SchemaOwnerProperty: ownerMark(fxEmail)}},
			Response: map[string]any{"name": "ana_lima", "catalog_name": "cohort", "full_name": "cohort.ana_lima"},
		},
	}, fxSettings())
	got, err := runCreateSchema(t, a, "Cohort")
	if err != nil {
		t.Fatal(err)
	}
	if want := (wire.CreateSchemaResult{FullName: "cohort.ana_lima", Created: true}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// An existing schema marked as the participant's is theirs (a repeat, or an
// SDK retry of a create the server had applied).
func TestCreateSchema_existingSchemaIsPresent(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "POST", Resource: schemasPath, Status: 409,
			Response: apiErr("SCHEMA_ALREADY_EXISTS", "Schema 'ana_lima' already exists"),
		},
		{
			Method: "GET", Resource: schemasPath + "/cohort.ana_lima?",
			Response: map[string]any{"full_name": "cohort.ana_lima", "properties": map[string]any{wire.SchemaOwnerProperty: ownerMark(fxEmail)}},
		},
	}, fxSettings())
	got, err := runCreateSchema(t, a, "cohort")
	if err != nil {
		t.Fatal(err)
	}
	if want := (wire.CreateSchemaResult{FullName: "cohort.ana_lima", Created: false}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// For a user that existed before, what it holds is read first; only what
// is missing is granted, and recorded as added.
func TestGrant_readsHeldFirst(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		heldFixture("catalog", "cohort", "USE_CATALOG"),
		heldFixture("schema", "cohort.ana_lima"),
		grantFixture("schema", "cohort.ana_lima", "USE_SCHEMA", "CREATE_TABLE", "SELECT"),
		heldFixture("schema", "shared.data", "SELECT"),
		grantFixture("schema", "shared.data", "USE_SCHEMA"),
		heldFixture("catalog", "shared", "ALL_PRIVILEGES"),
	}, fxSettings())
	got, err := runGrantFor(t, a, false)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.GrantResult{Recorded: true, Added: []wire.SecurableGrant{
		{Type: "schema", Name: "cohort.ana_lima", Privileges: []string{"USE_SCHEMA", "CREATE_TABLE", "SELECT"}},
		{Type: "schema", Name: "shared.data", Privileges: []string{"USE_SCHEMA"}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestGrant_catalogSchemaAndSharedData(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		grantFixture("catalog", "cohort", "USE_CATALOG"),
		grantFixture("schema", "cohort.ana_lima", "USE_SCHEMA", "CREATE_TABLE", "SELECT"),
		grantFixture("schema", "shared.data", "USE_SCHEMA", "SELECT"),
		grantFixture("catalog", "shared", "USE_CATALOG"),
	}, fxSettings())
	if err := runGrant(t, a); err != nil {
		t.Fatal(err)
	}
}

// An answer that carries the assignments anyway (a server that ignores
// omit_permissions_in_response) is checked for the participant's privileges.
func TestGrant_answerLackingPrivilegesIsRetried(t *testing.T) {
	s := fxSettings()
	s.SharedGrants = nil
	fx := grantFixture("catalog", "cohort", "USE_CATALOG")
	fx.Response = map[string]any{"privilege_assignments": []any{
		map[string]any{"principal": "admins", "privileges": []string{"ALL_PRIVILEGES"}},
		map[string]any{"principal": fxEmail, "privileges": []string{"BROWSE"}},
	}}
	a := fixtureActivities(t, qa.HTTPFixtures{fx}, s)
	wantAppErr(t, runGrant(t, a), wire.ErrUnavailable, true)
}

func TestGrant_principalNotReady(t *testing.T) {
	s := fxSettings()
	s.SharedGrants = nil
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "PATCH", Resource: grantsPath + "catalog/cohort", Status: 404,
			Response: apiErr("PRINCIPAL_DOES_NOT_EXIST", "Could not find principal with name ana.lima@example.com"),
		},
	}, s)
	wantAppErr(t, runGrant(t, a), wire.ErrPrincipalNotReady, true)
}

const (
	clustersList = "/api/2.1/clusters/list?filter_by.policy_id=POL1&page_size=100"
	clusterID    = "0301-123456-abcd1234"
)

var createClusterBody = map[string]any{
	"apply_policy_default_values": true,
	"autotermination_minutes":     60,
	"cluster_name":                "cohort-ana-lima",
	"custom_tags":                 map[string]any{"ResourceClass": "SingleNode", fxTag: fxEmail, wire.ClusterOwnerTag: ownerMark(fxEmail)},
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

func runCreateCluster(t *testing.T, a *Activities, lookup bool, heartbeat ...any) (wire.CreateClusterResult, error) {
	t.Helper()
	return run[wire.CreateClusterInput, wire.CreateClusterResult](t, a, func(a *Activities) any { return a.CreateCluster },
		wire.CreateClusterInput{Participant: fxParticipant, Spec: fxSpec, BatchID: "b1", Lookup: lookup}, heartbeat...)
}

func runSetPermission(t *testing.T, a *Activities, id string) error {
	t.Helper()
	_, err := run[wire.SetPermissionInput, wire.SetPermissionResult](t, a, func(a *Activities) any { return a.SetPermission },
		wire.SetPermissionInput{Principal: fxEmail, ClusterID: id})
	return err
}

func runStopCluster(t *testing.T, a *Activities, id, state string) (wire.StopClusterResult, error) {
	t.Helper()
	return run[wire.StopClusterInput, wire.StopClusterResult](t, a, func(a *Activities) any { return a.StopCluster },
		wire.StopClusterInput{ClusterID: id, State: state})
}

// A participant whose user this run created cannot have a cluster yet: the
// create goes out without a clusters/list first (the fixtures would fail an
// unexpected request).
func TestCreateCluster_createsSingleNode(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "POST", Resource: "/api/2.1/clusters/create", ExpectedRequest: createClusterBody, Response: map[string]any{"cluster_id": clusterID}},
	}, fxSettings())
	got, err := runCreateCluster(t, a, false)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.CreateClusterResult{
		ClusterID: clusterID, State: "PENDING", Created: true,
		URL: "https://adb-900.1.azuredatabricks.net/compute/clusters/" + clusterID,
	}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func tagged(id string, start int64, state, email string) map[string]any {
	return map[string]any{
		"cluster_id": id, "start_time": start, "state": state, "policy_id": fxPolicy,
		"custom_tags": map[string]any{"ResourceClass": "SingleNode", fxTag: email, wire.ClusterOwnerTag: ownerMark(email)},
	}
}

// An existing tagged cluster is adopted (the oldest of several), never
// duplicated: there is no create fixture.
func TestCreateCluster_adoptsOldestTagged(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{"clusters": []any{
			tagged("c-newer", 2000, "RUNNING", fxEmail),
			tagged("c-other", 500, "RUNNING", "someone@example.com"),
			tagged("c-older", 1000, "TERMINATED", "Ana.Lima@Example.com"),
		}}},
	}, fxSettings())
	got, err := runCreateCluster(t, a, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != "c-older" || got.Created || got.State != "TERMINATED" {
		t.Errorf("got %+v, want c-older adopted as TERMINATED", got)
	}
}

// A create that fails after being applied (here a 500 the SDK does not
// retry) is resolved by listing again and adopting the cluster.
func TestCreateCluster_createErrorAdoptsApplied(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{}},
		{Method: "POST", Resource: "/api/2.1/clusters/create", Status: 500, Response: apiErr("INTERNAL_ERROR", "boom")},
		{Method: "GET", Resource: clustersList, Response: map[string]any{"clusters": []any{tagged(clusterID, 1, "PENDING", fxEmail)}}},
	}, fxSettings())
	got, err := runCreateCluster(t, a, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != clusterID || got.State != "PENDING" {
		t.Errorf("got %+v", got)
	}
}

// A create refused by the policy fails at once, after a second look.
func TestCreateCluster_policyViolation(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{}},
		{
			Method: "POST", Resource: "/api/2.1/clusters/create", Status: 400,
			Response: apiErr("INVALID_PARAMETER_VALUE", "Validation failed for data_security_mode, the value must be present"),
		},
		{Method: "GET", Resource: clustersList, Response: map[string]any{}},
	}, fxSettings())
	_, err := runCreateCluster(t, a, true)
	ae := wantAppErr(t, err, wire.ErrInvalidInput, false)
	var step string
	if err := ae.Details(&step); err != nil || step != wire.StepCreateCluster {
		t.Errorf("details step = %q (%v), want %q", step, err, wire.StepCreateCluster)
	}
}

// A retried attempt goes straight to the cluster its last heartbeat named.
func TestCreateCluster_resumesFromHeartbeat(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: "/api/2.1/clusters/get?cluster_id=" + clusterID, Response: tagged(clusterID, 1, "RUNNING", fxEmail)},
	}, fxSettings())
	got, err := runCreateCluster(t, a, true, progress{ClusterID: clusterID})
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != clusterID || got.State != "RUNNING" || got.Created {
		t.Errorf("got %+v", got)
	}
}

func TestSetPermission_canRestart(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{permissionsFixture(clusterID)}, fxSettings())
	if err := runSetPermission(t, a, clusterID); err != nil {
		t.Fatal(err)
	}
}

// The participant must end with exactly CAN_RESTART as a direct permission.
func TestSetPermission_readBackMismatch(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{
		{
			Method: "PATCH", Resource: "/api/2.0/permissions/clusters/" + clusterID,
			Response: map[string]any{"access_control_list": []any{
				map[string]any{"user_name": fxEmail, "all_permissions": []any{map[string]any{"permission_level": "CAN_MANAGE"}}},
			}},
		},
	}, fxSettings())
	wantAppErr(t, runSetPermission(t, a, clusterID), wire.ErrClusterLaunchFailed, true)
}

// A cluster deleted since its creation is ErrClusterGone, not retried: the
// participant workflow makes another.
func TestSetPermission_clusterGone(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{{
		Method: "PATCH", Resource: "/api/2.0/permissions/clusters/" + clusterID, Status: 404,
		Response: apiErr("RESOURCE_DOES_NOT_EXIST", "Cluster "+clusterID+" does not exist"),
	}}, fxSettings())
	wantAppErr(t, runSetPermission(t, a, clusterID), wire.ErrClusterGone, false)
}

func TestStopCluster_terminatesAndReadsBack(t *testing.T) {
	a := fixtureActivities(t, stopFixtures(clusterID), fxSettings())
	got, err := runStopCluster(t, a, clusterID, "PENDING")
	if err != nil || got.State != "TERMINATING" {
		t.Fatalf("StopCluster = %+v, %v; want TERMINATING", got, err)
	}
}

// An adopted cluster that is already TERMINATED needs no call at all.
func TestStopCluster_alreadyTerminated(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{}, fxSettings())
	got, err := runStopCluster(t, a, clusterID, "TERMINATED")
	if err != nil || got.State != "TERMINATED" {
		t.Fatalf("StopCluster = %+v, %v; want TERMINATED", got, err)
	}
}

func TestStopCluster_clusterGone(t *testing.T) {
	a := fixtureActivities(t, qa.HTTPFixtures{{
		Method: "POST", Resource: "/api/2.1/clusters/delete", Status: 400,
		Response: apiErr("INVALID_PARAMETER_VALUE", "Cluster "+clusterID+" does not exist"),
	}}, fxSettings())
	_, err := runStopCluster(t, a, clusterID, "RUNNING")
	wantAppErr(t, err, wire.ErrClusterGone, false)
}

// The earlier shape's two activities still run the steps in order, for
// participant runs it started before an upgrade.
func TestLegacyActivities(t *testing.T) {
	s := fxSettings()
	s.SharedGrants = nil
	fx := qa.HTTPFixtures{
		{Method: "POST", Resource: usersPath, Status: 201, ExpectedRequest: createUserBody, Response: map[string]any{"id": fxUserID, "userName": fxEmail}},
		{Method: "PUT", Resource: assignPath, Response: assignedUser},
		{Method: "POST", Resource: schemasPath, Response: map[string]any{"full_name": "cohort.ana_lima"}},
		grantFixture("catalog", "cohort", "USE_CATALOG"),
		grantFixture("schema", "cohort.ana_lima", "USE_SCHEMA", "CREATE_TABLE", "SELECT"),
		{Method: "POST", Resource: "/api/2.1/clusters/create", ExpectedRequest: createClusterBody, Response: map[string]any{"cluster_id": clusterID}},
		permissionsFixture(clusterID),
	}
	a := fixtureActivities(t, append(fx, stopFixtures(clusterID)...), s)
	access, err := run[wire.ProvisionAccessInput, wire.ProvisionAccessResult](t, a, func(a *Activities) any { return a.ProvisionAccess },
		wire.ProvisionAccessInput{Participant: fxParticipant, Catalog: "cohort"})
	if want := (wire.ProvisionAccessResult{UserID: fxUserID, UserCreated: true, Schema: "cohort.ana_lima"}); err != nil || access != want {
		t.Fatalf("ProvisionAccess = %+v, %v; want %+v", access, err, want)
	}
	cluster, err := run[wire.ProvisionClusterInput, wire.ProvisionClusterResult](t, a, func(a *Activities) any { return a.ProvisionCluster },
		wire.ProvisionClusterInput{Participant: fxParticipant, Spec: fxSpec, BatchID: "b1"})
	if err != nil || cluster.ClusterID != clusterID || cluster.State != "TERMINATING" {
		t.Fatalf("ProvisionCluster = %+v, %v; want %s TERMINATING", cluster, err, clusterID)
	}
}

// readinessFixtures are the read-only requests of the readiness checks that
// SetupBatch runs first (plan.go), for a ready workspace: an account admin
// (one SCIM page, then the empty page that ends the listing; the
// workspace's assignments), the catalog owned by the caller, the shared
// securables, the policy, runtimes, node types and the catalog's schemas.
// The extra fixtures come first, so they win.
func readinessFixtures(extra ...qa.HTTPFixture) qa.HTTPFixtures {
	scim := "/api/2.0/accounts/" + fxAccount + "/scim/v2/Users?attributes=id%2CuserName%2Cemails%2Cactive&count=1000&startIndex="
	return append(extra, qa.HTTPFixtures{
		{Method: "GET", Resource: scim + "1", Response: map[string]any{"totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
			"Resources": []any{map[string]any{"id": "7", "userName": "admin@example.com", "active": true}}}},
		{Method: "GET", Resource: scim + "2", Response: map[string]any{"totalResults": 1, "startIndex": 2, "itemsPerPage": 0}},
		{Method: "GET", Resource: fmt.Sprintf("/api/2.0/accounts/%s/workspaces/%d/permissionassignments?", fxAccount, fxWorkspace),
			Response: map[string]any{"permission_assignments": []any{}}},
		{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/cohort?", Response: map[string]any{"name": "cohort", "owner": "admin@example.com"}},
		{Method: "GET", Resource: "/api/2.0/preview/scim/v2/Me?", Response: map[string]any{"userName": "admin@example.com"}},
		{Method: "GET", Resource: "/api/2.1/unity-catalog/schemas/shared.data?", Response: map[string]any{"full_name": "shared.data"}},
		{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/shared?", Response: map[string]any{"name": "shared"}},
		{Method: "GET", Resource: "/api/2.0/policies/clusters/list?", Response: map[string]any{"policies": []any{
			map[string]any{"policy_id": "OTHER", "name": "Shared Compute"},
			map[string]any{"policy_id": fxPolicy, "name": "Personal Compute", "policy_family_id": "personal-vm",
				"definition": `{"num_workers": {"type": "fixed", "value": 0}, "autotermination_minutes": {"type": "fixed", "value": 90}}`},
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
		{Method: "GET", Resource: "/api/2.1/unity-catalog/schemas?catalog_name=cohort&max_results=1000", Response: map[string]any{"schemas": []any{
			map[string]any{"name": "default"}, map[string]any{"name": "information_schema"}}}},
	}...)
}

func TestSetupBatch_resolvesSpec(t *testing.T) {
	s := fxSettings()
	s.NodeType = "smallest"
	s.CreateCatalog = true
	s.StorageRoot = "abfss://cohort@acct.dfs.core.windows.net/cohort"
	a := fixtureActivities(t, readinessFixtures(
		qa.HTTPFixture{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/cohort?", Status: 404, Response: apiErr("CATALOG_DOES_NOT_EXIST", "Catalog 'cohort' does not exist.")},
		qa.HTTPFixture{Method: "POST", Resource: "/api/2.1/unity-catalog/catalogs",
			ExpectedRequest: map[string]any{"name": "cohort", "storage_root": s.StorageRoot, "comment": "Created by Cohort for participant schemas"},
			Response:        map[string]any{"name": "cohort"}},
	), s)
	got, err := run[wire.SetupBatchInput, wire.SetupBatchResult](t, a, func(a *Activities) any { return a.SetupBatch }, wire.SetupBatchInput{BatchID: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	want := wire.SetupBatchResult{Catalog: "cohort", Cluster: wire.ClusterSpec{PolicyID: fxPolicy, SparkVersion: "15.4.x-cpu-ml-scala2.12", NodeType: "Standard_DS3_v2",
		AutoterminationMinutes: 90}}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// Setup failures are readiness findings: WorkspaceNotReady, not retried,
// naming the check and its fix (the emulator tests in plan_test.go cover
// each check; these pin the wording).
func TestSetupBatch_notReady(t *testing.T) {
	tests := []struct {
		name     string
		settings func(*Settings)
		fixtures []qa.HTTPFixture
		want     string
	}{
		{"missing policy", func(s *Settings) { s.SharedGrants = nil }, []qa.HTTPFixture{
			{Method: "GET", Resource: "/api/2.0/policies/clusters/list?", Response: map[string]any{"policies": []any{}}}},
			`policy: no cluster policy named "Personal Compute" is visible to the caller`},
		{"missing catalog not created", func(s *Settings) { s.CreateCatalog = false; s.SharedGrants = nil }, []qa.HTTPFixture{
			{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/cohort?", Status: 404, Response: apiErr("CATALOG_DOES_NOT_EXIST", "Catalog 'cohort' does not exist.")}},
			"catalog: catalog cohort does not exist and catalog.create_if_missing is false"},
		{"missing shared schema", nil, []qa.HTTPFixture{
			{Method: "GET", Resource: "/api/2.1/unity-catalog/schemas/shared.data?", Status: 404, Response: apiErr("SCHEMA_DOES_NOT_EXIST", "Schema 'shared.data' does not exist.")}},
			"shared_grants: check shared grant: schema shared.data does not exist (fix: create the shared catalog or schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fxSettings()
			if tt.settings != nil {
				tt.settings(&s)
			}
			a := fixtureActivities(t, readinessFixtures(tt.fixtures...), s)
			_, err := run[wire.SetupBatchInput, wire.SetupBatchResult](t, a, func(a *Activities) any { return a.SetupBatch }, wire.SetupBatchInput{})
			ae := wantAppErr(t, err, wire.ErrNotReady, false)
			if !strings.Contains(ae.Message(), tt.want) {
				t.Errorf("message = %q, want it to contain %q", ae.Message(), tt.want)
			}
		})
	}
}

// Without the low-level client the typed create is used: same body, no token.
func TestCreateCluster_typedCreateWithoutRaw(t *testing.T) {
	body := map[string]any{}
	for k, v := range createClusterBody {
		if k != "idempotency_token" {
			body[k] = v
		}
	}
	a := fixtureActivities(t, qa.HTTPFixtures{
		{Method: "GET", Resource: clustersList, Response: map[string]any{}},
		{Method: "POST", Resource: "/api/2.1/clusters/create", ExpectedRequest: body, Response: map[string]any{"cluster_id": clusterID}},
	}, fxSettings())
	a.Workspace.Raw = nil
	got, err := runCreateCluster(t, a, true)
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

// A catalog someone else owns: the caller's effective privileges decide
// (MANAGE, USE_CATALOG and CREATE_SCHEMA, or ALL_PRIVILEGES).
func TestSetupBatch_catalogRightsByEffectivePermissions(t *testing.T) {
	effective := "/api/2.1/unity-catalog/effective-permissions/catalog/cohort?principal=admin%40example.com"
	privs := func(ps ...string) map[string]any {
		var out []any
		for _, p := range ps {
			out = append(out, map[string]any{"privilege": p, "inherited_from_type": "METASTORE"})
		}
		return map[string]any{"privilege_assignments": []any{map[string]any{"principal": "admin@example.com", "privileges": out}}}
	}
	for _, tt := range []struct {
		name string
		held []string
		want string // in the error; "" = ready
	}{
		{"manage and create schema", []string{"USE_CATALOG", "MANAGE", "CREATE_SCHEMA"}, ""},
		{"all privileges", []string{"ALL_PRIVILEGES"}, ""},
		{"use catalog only", []string{"USE_CATALOG"}, "catalog_rights: the caller admin@example.com does not own catalog cohort (owner data-team) and lacks MANAGE, CREATE_SCHEMA on it (fix: GRANT MANAGE, USE CATALOG, CREATE SCHEMA ON CATALOG cohort TO `admin@example.com`"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := fxSettings()
			s.SharedGrants = nil
			a := fixtureActivities(t, readinessFixtures(
				qa.HTTPFixture{Method: "GET", Resource: "/api/2.1/unity-catalog/catalogs/cohort?", Response: map[string]any{"name": "cohort", "owner": "data-team"}},
				qa.HTTPFixture{Method: "GET", Resource: effective, Response: privs(tt.held...)},
			), s)
			_, err := run[wire.SetupBatchInput, wire.SetupBatchResult](t, a, func(a *Activities) any { return a.SetupBatch }, wire.SetupBatchInput{})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ae := wantAppErr(t, err, wire.ErrNotReady, false)
			if !strings.Contains(ae.Message(), tt.want) {
				t.Errorf("message = %q, want it to contain %q", ae.Message(), tt.want)
			}
		})
	}
}
