package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

const (
	testToken     = "dapi-test-admin"
	testUserToken = "dapi-test-user"
	testAccount   = "acc-test-1"
	testWorkspace = int64(900800700600)
)

// env is one emulator on httptest plus real SDK clients pointed at it.
type env struct {
	t   *testing.T
	emu *Server
	srv *httptest.Server
	a   *databricks.AccountClient
	w   *databricks.WorkspaceClient
}

// setup starts an emulator with opts (test defaults filled in) and builds an
// account and a workspace client with PAT auth over plain http.
func setup(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	if opts.UserToken == "" {
		opts.UserToken = testUserToken
	}
	if opts.AccountID == "" {
		opts.AccountID = testAccount
	}
	if opts.WorkspaceID == 0 {
		opts.WorkspaceID = testWorkspace
	}
	if opts.ClusterStartDelay == 0 {
		opts.ClusterStartDelay = 50 * time.Millisecond
	}
	// Relaxations for tests about other things; the strict tests set these.
	if opts.Catalogs == nil {
		opts.Catalogs = []string{"main"} // made by the admin before the event
	}
	if opts.AssignmentFlakyShare == 0 {
		opts.AssignmentFlakyShare = -1
	}
	if opts.ClusterStopDelay == 0 {
		opts.ClusterStopDelay = 50 * time.Millisecond
	}
	emu, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(func() {
		srv.Close()
		emu.Close()
	})
	e := &env{t: t, emu: emu, srv: srv}
	e.a = e.accountClient(opts.Token, 4)
	e.w = e.workspaceClient(opts.Token, 4)
	return e
}

func (e *env) config(token string, retrySeconds int) *databricks.Config {
	return &databricks.Config{
		Host:                e.srv.URL,
		Token:               token,
		AccountID:           e.emu.opts.AccountID,
		AuthType:            "pat",
		RetryTimeoutSeconds: retrySeconds,
		HTTPTimeoutSeconds:  10,
		RateLimitPerSecond:  1000,
	}
}

func (e *env) accountClient(token string, retrySeconds int) *databricks.AccountClient {
	e.t.Helper()
	a, err := databricks.NewAccountClient(e.config(token, retrySeconds))
	if err != nil {
		e.t.Fatalf("NewAccountClient: %v", err)
	}
	return a
}

func (e *env) workspaceClient(token string, retrySeconds int) *databricks.WorkspaceClient {
	e.t.Helper()
	w, err := databricks.NewWorkspaceClient(e.config(token, retrySeconds))
	if err != nil {
		e.t.Fatalf("NewWorkspaceClient: %v", err)
	}
	return w
}

// user creates an account user and returns it.
func (e *env) user(name string) *iam.User {
	e.t.Helper()
	u, err := e.a.Users.Create(context.Background(), iam.User{UserName: name, DisplayName: "P " + name})
	if err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

// participant creates an account user and assigns it to the workspace.
func (e *env) participant(name string) *iam.User {
	e.t.Helper()
	u := e.user(name)
	e.assign(u)
	return u
}

func (e *env) assign(u *iam.User) {
	e.t.Helper()
	_, err := e.a.WorkspaceAssignment.Update(context.Background(), iam.UpdateWorkspaceAssignments{
		WorkspaceId: testWorkspace, PrincipalId: mustID(e.t, u.Id), Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser},
	})
	if err != nil {
		e.t.Fatalf("assign %s: %v", u.UserName, err)
	}
}

// control calls the emulator control API with the admin token.
func (e *env) control(method, path string, body any, out any) int {
	e.t.Helper()
	status, b := e.raw(method, path, testToken, body)
	if out != nil && status < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return status
}

// raw sends a request without the SDK. body may be a string (sent verbatim).
func (e *env) raw(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func mustID(t *testing.T, id string) int64 {
	t.Helper()
	var n int64
	if err := json.Unmarshal([]byte(id), &n); err != nil {
		t.Fatalf("id %q is not an int64: %v", id, err)
	}
	return n
}

// wantErr asserts err matches every sentinel in is and none in isNot, and that its
// message contains msg.
func wantErr(t *testing.T, err error, msg string, is []error, isNot ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want one containing %q", msg)
	}
	for _, s := range is {
		if !errors.Is(err, s) {
			t.Errorf("errors.Is(%v, %v) = false, want true", err, s)
		}
	}
	for _, s := range isNot {
		if errors.Is(err, s) {
			t.Errorf("errors.Is(%v, %v) = true, want false", err, s)
		}
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not contain %q", err, msg)
	}
}

func apiErr(t *testing.T, err error) *apierr.APIError {
	t.Helper()
	var ae *apierr.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *apierr.APIError", err)
	}
	return ae
}

func TestWorkspaceHeader(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name, ws string
		ok       bool
	}{{"matching id", "900800700600", true}, {"other workspace", "42", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.config(testToken, 1)
			cfg.WorkspaceID = tc.ws // the SDK sends it as X-Databricks-Workspace-Id
			w, err := databricks.NewWorkspaceClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Clusters.ListAll(ctx, compute.ListClustersRequest{})
			if tc.ok && err != nil {
				t.Errorf("list with header %s: %v", tc.ws, err)
			}
			if !tc.ok {
				wantErr(t, err, "names workspace 42", []error{apierr.ErrInvalidParameterValue})
			}
		})
	}
	for _, h := range []string{"X-Databricks-Org-Id", "X-Databricks-Workspace-Id"} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/2.1/clusters/list", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set(h, "900800700600")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s matching: %v %v", h, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}
