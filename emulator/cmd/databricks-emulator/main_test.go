package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/emulator"
)

// start runs the binary and returns its host once it prints "listening on".
func start(t *testing.T, bin string, args ...string) (*exec.Cmd, string, []string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("emulator exited before listening; output %q", seen)
			}
			seen = append(seen, l)
			if host, ok := strings.CutPrefix(l, "listening on "); ok {
				go func() {
					for range lines {
					}
				}()
				return cmd, host, seen
			}
		case <-timeout:
			t.Fatalf("no 'listening on' line; output %q", seen)
		}
	}
}

func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit after SIGTERM")
	}
}

func TestCommand_endToEnd(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "databricks-emulator")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	state := filepath.Join(dir, "state.jsonl")
	cfgPath := filepath.Join(dir, "worker.yaml")
	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(`{"policy_family_definition_overrides": {"autotermination_minutes": {"type": "fixed", "value": 60}}, "max_clusters_per_user": 3}`), 0o644)
	args := []string{"--listen", "127.0.0.1:0", "--token", "dapi-e2e", "--account-id", "acc-e2e", "--workspace-id", "4242",
		"--state", state, "--write-config", cfgPath, "--limit", "scim_write=100", "--seed", "3",
		"--metastore-root", "abfss://m@a.dfs.core.windows.net/r", "--catalog", "shared", "--catalog", "cohort",
		"--max-schemas-per-catalog", "50", "--assignment-flaky-share", "0", "--cluster-retention", "48h", "--event-retention", "72h",
		"--schema-quota-error", "400:QUOTA_EXCEEDED:full {catalog}", "--policy-overrides", policy, "--int64-as-string-share", "0"}
	cmd, host, out := start(t, bin, args...)
	if strings.HasSuffix(host, ":0") || !strings.HasPrefix(host, "http://127.0.0.1:") {
		t.Fatalf("host = %q, want the real port", host)
	}
	joined := strings.Join(out, "\n")
	for _, want := range []string{"account id: acc-e2e", "workspace id: 4242", "token: dapi-e2e", "host: " + host} {
		if !strings.Contains(joined, want) {
			t.Errorf("startup output lacks %q:\n%s", want, joined)
		}
	}
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "dapi-e2e") {
		t.Errorf("config contains the token")
	}
	// The worker reads it as it is (unknown keys would be refused).
	c, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("the worker cannot load the written config: %v\n%s", err, cfg)
	}
	if d := c.Databricks; d.AccountHost != host || d.WorkspaceHost != host || d.AccountID != "acc-e2e" || d.WorkspaceID != 4242 {
		t.Errorf("config databricks = %+v, want both hosts %s, account acc-e2e, workspace 4242", d, host)
	}

	client := func(host string) *databricks.AccountClient {
		a, err := databricks.NewAccountClient(&databricks.Config{Host: host, Token: "dapi-e2e", AccountID: "acc-e2e", AuthType: "pat", RetryTimeoutSeconds: 3})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ctx := context.Background()
	req, _ := http.NewRequest("GET", host+"/emulator/v1/config", nil)
	req.Header.Set("Authorization", "Bearer dapi-e2e")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ec emulator.Config
	json.NewDecoder(resp.Body).Decode(&ec)
	resp.Body.Close()
	st := ec.Strict
	if st.MetastoreRoot != "abfss://m@a.dfs.core.windows.net/r" || len(st.Catalogs) != 2 || st.MaxSchemasPerCatalog != 50 || st.AssignmentFlakyShare >= 0 ||
		st.ClusterRetention != "48h0m0s" || st.EventRetention != "72h0m0s" || st.SchemaQuotaError.Message != "full {catalog}" || st.MaxClustersPerUser != 3 ||
		!strings.Contains(st.PolicyDefinition, `"value":60`) || st.Int64AsStringShare >= 0 || st.MaxAccountUsers != 10000 || st.MaxPinnedClusters != 100 {
		t.Errorf("strict config = %+v", st)
	}
	u, err := client(host).Users.Create(ctx, iam.User{UserName: "e2e@event.org"})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	stop(t, cmd)

	_, host2, _ := start(t, bin, args...)
	got, err := client(host2).Users.GetById(ctx, u.Id)
	if err != nil || got.UserName != "e2e@event.org" {
		t.Fatalf("user after restart = %+v, %v", got, err)
	}
}

func TestRun_badFlags(t *testing.T) {
	tests := [][]string{
		{"--latency", "slow"},
		{"--rate-limits", "aws"},
		{"--limit", "nonsense"},
		{"--limit", "warp=3"},
		{"--faults", "2"},
		{"--metastore-root", "not-a-url"},
		{"--user-quota-error", "nonsense"},
		{"--assignment-flaky-share", "1.5"},
		{"--policy-overrides", "/nonexistent/policy.json"},
		{"--workspace-name", "has space"},
		{"extra-arg"},
	}
	for _, args := range tests {
		var sb strings.Builder
		if err := run(context.Background(), append([]string{"--listen", "127.0.0.1:0"}, args...), &sb, &sb); err == nil {
			t.Errorf("run(%v) succeeded, want an error", args)
		}
	}
}
