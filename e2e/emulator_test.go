package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"

	emu "github.com/cohort-dev/cohort/emulator"
)

// Emulator identities. The account id and workspace id differ from the
// emulator's defaults so a config that ignored --write-config would fail.
const (
	emuToken     = "dapi-e2e-admin"
	emuUserToken = "dapi-e2e-user"
	emuAccountID = "e2e00000-0000-4000-8000-00000000c0de"
	emuWorkspace = int64(7001002003004005)
)

// emulator is one databricks-emulator process.
type emulator struct {
	url        string
	configPath string // the worker config fragment it wrote (--write-config)
	proc       *process
}

// startEmulator runs an emulator in dir with a journal file there, failing
// the test if it does not listen within a few seconds. It stops in
// t.Cleanup. extra flags override the defaults (no latency, no rate limits).
func startEmulator(t *testing.T, dir string, faults float64, seed int64, extra ...string) *emulator {
	t.Helper()
	need(t, "emulator")
	e := &emulator{configPath: filepath.Join(dir, "emulator.yaml")}
	args := []string{
		"--listen", "127.0.0.1:0",
		"--token", emuToken, "--user-token", emuUserToken,
		"--account-id", emuAccountID, "--workspace-id", strconv.FormatInt(emuWorkspace, 10),
		"--state", filepath.Join(dir, "emulator.state"),
		"--latency", "none", "--rate-limits", "none",
		"--faults", strconv.FormatFloat(faults, 'g', -1, 64), "--seed", strconv.FormatInt(seed, 10),
		"--write-config", e.configPath,
		// Strict as a real workspace, prepared as an admin would: the
		// metastore has no root storage, so the admin made Cohort's catalog
		// beforehand.
		"--catalog", "cohort",
	}
	args = append(args, extra...)
	p, err := startProcess(dir, "emulator", bins.emulator, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.proc = p
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("emulator logs:\n%s", p.logTail())
		}
		if err := p.stop(10 * time.Second); err != nil {
			t.Errorf("stop emulator: %v", err)
		}
	})
	line, err := p.waitLog("listening on http://", 30*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.logTail())
	}
	e.url = strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	if _, err := os.Stat(e.configPath); err != nil {
		t.Fatalf("emulator --write-config: %v", err)
	}
	return e
}

// stats is the emulator's GET /emulator/v1/stats, decoded into the
// emulator's own types.
type (
	stats        emu.Stats
	objectCounts = emu.ObjectCounts
)

// ok counts the 2xx answers of an endpoint.
func (s stats) ok(endpoint string) int64 {
	var n int64
	for code, c := range s.Requests[endpoint] {
		if strings.HasPrefix(code, "2") {
			n += c
		}
	}
	return n
}

// total counts every answer of an endpoint.
func (s stats) total(endpoint string) int64 {
	var n int64
	for _, c := range s.Requests[endpoint] {
		n += c
	}
	return n
}

func (e *emulator) stats(t *testing.T) stats {
	t.Helper()
	var s stats
	e.control(t, http.MethodGet, "/stats", nil, &s)
	return s
}

// refuseUsers makes SCIM user creation fail permanently for userNames
// matching any of the patterns; none removes the rule.
func (e *emulator) refuseUsers(t *testing.T, patterns ...string) {
	t.Helper()
	if patterns == nil {
		patterns = []string{}
	}
	e.control(t, http.MethodPut, "/rules", map[string]any{"refuse_users": patterns}, nil)
}

// queueFaults makes the next count requests to endpoint fail in mode.
func (e *emulator) queueFaults(t *testing.T, endpoint, mode string, count int) {
	t.Helper()
	e.control(t, http.MethodPost, "/faults", map[string]any{"endpoint": endpoint, "mode": mode, "count": count}, nil)
}

// pendingFaults returns the queued faults not yet served.
func (e *emulator) pendingFaults(t *testing.T) map[string][]string {
	t.Helper()
	var resp struct {
		Queued map[string][]string `json:"queued"`
	}
	e.control(t, http.MethodGet, "/faults", nil, &resp)
	return resp.Queued
}

// userToken returns a token that acts as the given account user.
func (e *emulator) userToken(t *testing.T, userName string) string {
	t.Helper()
	var resp struct {
		Token string `json:"token"`
	}
	e.control(t, http.MethodPost, "/tokens", map[string]any{"user_name": userName}, &resp)
	if resp.Token == "" {
		t.Fatalf("POST /emulator/v1/tokens for %s: no token", userName)
	}
	return resp.Token
}

func (e *emulator) control(t *testing.T, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.url+"/emulator/v1"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+emuToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /emulator/v1%s = %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

// sdkConfig is how one would configure the SDK for a real workspace, with a
// personal access token; the emulator serves account and workspace APIs on
// one host.
func (e *emulator) sdkConfig(token string) *databricks.Config {
	return &databricks.Config{
		Host:                e.url,
		Token:               token,
		AccountID:           emuAccountID,
		WorkspaceID:         strconv.FormatInt(emuWorkspace, 10),
		AuthType:            "pat",
		RetryTimeoutSeconds: 30,
		HTTPTimeoutSeconds:  30,
		RateLimitPerSecond:  10000, // the SDK's default 15/s would make checking 200 people slow
	}
}

func (e *emulator) accountClient(t *testing.T) *databricks.AccountClient {
	t.Helper()
	cfg := e.sdkConfig(emuToken)
	cfg.WorkspaceID = ""
	a, err := databricks.NewAccountClient(cfg)
	if err != nil {
		t.Fatalf("NewAccountClient: %v", err)
	}
	return a
}

func (e *emulator) workspaceClient(t *testing.T, token string) *databricks.WorkspaceClient {
	t.Helper()
	w, err := databricks.NewWorkspaceClient(e.sdkConfig(token))
	if err != nil {
		t.Fatalf("NewWorkspaceClient: %v", err)
	}
	return w
}

// waitObjects polls the emulator until pred holds for its object counts.
func (e *emulator) waitObjects(t *testing.T, what string, timeout time.Duration, pred func(objectCounts) bool) objectCounts {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		o := e.stats(t).Objects
		if pred(o) {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulator objects %+v: still not %s after %s", o, what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// summary is a one-line digest of the requests answered, per endpoint and
// status, for the test log.
func (s stats) summary() string {
	var parts []string
	for ep, byCode := range s.Requests {
		var codes []string
		for code, n := range byCode {
			codes = append(codes, fmt.Sprintf("%s:%d", code, n))
		}
		slices.Sort(codes)
		parts = append(parts, ep+"{"+strings.Join(codes, " ")+"}")
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
