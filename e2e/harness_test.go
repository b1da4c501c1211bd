package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/roster"
)

// scenario is one end-to-end test's world: its own Temporal namespace on the
// shared dev server, its own emulator, its own worker processes and a roster
// email domain no other scenario uses.
type scenario struct {
	t        *testing.T
	ns       string
	domain   string
	dir      string
	temporal *temporalServer
	emu      *emulator
	configs  []string      // --config files, in order
	cfg      config.Config // what they add up to
	tc       client.Client // the test's own Temporal client in ns
	worker   *process
	workers  int
	// workerArgs are added to every worker's command line.
	workerArgs []string
}

// testConfig layers over examples/cohort.yaml and the emulator's fragment: a
// 200-person batch crosses chunk boundaries (chunk_size 60) and continues as
// new (chunks_per_run 2); stops are polled fast; the SDK's own retry window
// is short so Temporal's retries are exercised. The emulator enforces no
// rate limits here, so Cohort's own pacing (Azure's published limits, 5 user
// creations a second) is raised: pacing is a benchmark's subject, and at 5/s
// the scenarios' 1,200 participants would take four minutes more.
const testConfig = `cluster:
  stop_poll_interval: 200ms
batch:
  chunk_size: 60
  max_in_flight: 80
  parallel_chunks: 2
  chunks_per_run: 2
  step_timeout: 3m
roster_dir: %s
databricks:
  retry_timeout: 5s
rate_limits:
  scim_write: 100
  scim_list: 100
  scim_get: 100
  scim_patch: 100
  permissions_write: 100
  permissions_read: 100
  assignments: 100
  unity_catalog: 100
  clusters: 100
`

// newScenario starts an emulator (faults is the fraction of requests it
// fails transiently; emuArgs are more of its flags) and prepares configs; the
// worker is started separately.
func newScenario(t *testing.T, ns, domain string, faults float64, seed int64, emuArgs ...string) *scenario {
	t.Helper()
	need(t, "emulator", "worker", "starter")
	s := &scenario{t: t, ns: ns, domain: domain, dir: t.TempDir(), temporal: shared(t)}
	s.emu = startEmulator(t, s.dir, faults, seed, emuArgs...)
	testYAML := filepath.Join(s.dir, "test.yaml")
	if err := os.WriteFile(testYAML, fmt.Appendf(nil, testConfig, filepath.Join(s.dir, "rosters")), 0o644); err != nil {
		t.Fatal(err)
	}
	s.configs = []string{filepath.Join(moduleDir, "examples", "cohort.yaml"), s.emu.configPath, testYAML}
	cfg, err := config.Load(s.configs...)
	if err != nil {
		t.Fatalf("load the test's config: %v", err)
	}
	s.cfg = cfg
	s.tc = s.temporal.client(t, ns)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("temporal server logs:\n%s", s.temporal.logTail())
		}
	})
	return s
}

func (s *scenario) commonArgs() []string {
	var args []string
	for _, c := range s.configs {
		args = append(args, "--config", c)
	}
	return append(args, "--address", s.temporal.address(), "--namespace", s.ns)
}

// startWorker starts a worker process and waits until it polls. It is
// stopped (SIGTERM) in t.Cleanup if still running.
func (s *scenario) startWorker() *process {
	t := s.t
	t.Helper()
	s.workers++
	p, err := startProcess(s.dir, fmt.Sprintf("worker-%d", s.workers), bins.worker, append(s.commonArgs(), s.workerArgs...),
		[]string{"DATABRICKS_TOKEN=" + emuToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		switch {
		case p.killed:
		case !p.running():
			t.Errorf("%s exited on its own: %v", p.name, p.err)
		default:
			// Graceful shutdown on SIGTERM is part of the contract: exit 0.
			if err := p.stop(20 * time.Second); err != nil {
				t.Errorf("stop %s: %v", p.name, err)
			}
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", p.name, p.logTail())
		}
	})
	if _, err := p.waitLog(`"worker started"`, 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.logTail())
	}
	s.worker = p
	return p
}

// killWorker SIGKILLs the current worker.
func (s *scenario) killWorker() {
	s.t.Helper()
	if err := s.worker.kill(); err != nil {
		s.t.Fatal(err)
	}
}

// result is one starter run.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("starter %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// starter runs `starter CMD [common flags] ARGS...` and returns its output
// and exit code; it fails the test if the run exceeds timeout.
func (s *scenario) starter(timeout time.Duration, cmd string, args ...string) result {
	t := s.t
	t.Helper()
	full := append(append([]string{cmd}, s.commonArgs()...), args...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, bins.starter, full...)
	c.Dir = s.dir
	c.Env = cleanEnv()
	c.SysProcAttr = sysProcAttr()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	start := time.Now()
	err := c.Run()
	r := result{args: append([]string{cmd}, args...), stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("starter %s: no exit within %s\nstdout:\n%s\nstderr:\n%s", cmd, timeout, r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run starter: %v", err)
	}
	summary := firstLine(r.stdout)
	if summary == "" {
		summary = firstLine(r.stderr)
	}
	t.Logf("starter %s: exit %d in %s; %s", strings.Join(r.args, " "), r.code,
		time.Since(start).Round(10*time.Millisecond), summary)
	return r
}

// submit runs `starter submit ARGS...`, wants exit code want, and returns the
// batch id from its first line.
func (s *scenario) submit(want int, timeout time.Duration, args ...string) (string, result) {
	s.t.Helper()
	r := s.starter(timeout, "submit", args...)
	if r.code != want {
		s.t.Fatalf("exit code %d, want %d\n%s", r.code, want, r)
	}
	return batchIDFrom(s.t, r.stdout), r
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// writeRoster writes a roster file into the scenario's directory.
func (s *scenario) writeRoster(name string, data []byte) string {
	s.t.Helper()
	path := filepath.Join(s.dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// participants parses a roster the way the starter does, with the same
// naming rules, for the expected schema and cluster names.
func (s *scenario) participants(path string) []roster.Participant {
	s.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	r, err := roster.Parse(filepath.Base(path), data, roster.Options{Naming: s.cfg.RosterNaming()})
	if err != nil {
		s.t.Fatalf("parse %s: %v", path, err)
	}
	return r.Participants
}

// report runs `starter report BATCH --format csv` and returns its rows by
// column name.
func (s *scenario) report(batchID string) []map[string]string {
	t := s.t
	t.Helper()
	r := s.starter(time.Minute, "report", batchID, "--format", "csv")
	if r.code != 0 {
		t.Fatalf("report exit code %d, want 0\n%s", r.code, r)
	}
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v\n%s", err, r.stdout)
	}
	if len(recs) == 0 {
		t.Fatalf("report is empty")
	}
	header := recs[0]
	for _, col := range []string{"email", "display_name", "user_id", "schema", "cluster_id", "cluster_url", "status", "last_error"} {
		if !slices.Contains(header, col) {
			t.Fatalf("report header %v lacks %q", header, col)
		}
	}
	rows := make([]map[string]string, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, col := range header {
			row[col] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// emails lists the participants' emails.
func emails(ps []roster.Participant) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Email
	}
	return out
}

// expectAllOK checks a finished batch whose participants (want) should all
// have succeeded: `starter status` exits 0 and counts them all ok, the
// scenario's own emulator holds exactly their environments and nothing more,
// and the report lists them with the ids the emulator holds.
func (s *scenario) expectAllOK(batchID string, want []roster.Participant) map[string]environment {
	t := s.t
	t.Helper()
	st := s.starter(time.Minute, "status", batchID)
	wantLine := fmt.Sprintf("%d participants, %d ok, 0 failed", len(want), len(want))
	if st.code != 0 || !strings.Contains(st.stdout, wantLine) {
		t.Errorf("status: exit %d, want 0 and %q\n%s", st.code, wantLine, st)
	}
	stats := s.emu.stats(t)
	t.Logf("emulator requests: %s", stats.summary())
	n := len(want)
	// Catalogs: the workspace catalog and Cohort's, which the admin made.
	assertObjects(t, stats.Objects, objectCounts{Users: n, Assignments: n, Catalogs: 2, Schemas: n, Clusters: n})
	found := s.verifyParticipants(s.domain, want)
	s.checkReport(s.report(batchID), want, found)
	return found
}
