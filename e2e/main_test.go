package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohort-dev/cohort/testkit/ports"
)

// Everything the package's tests share: the binaries, built once, and one
// Temporal dev server, started by the first test that needs it and stopped
// when the package's tests end.
var (
	// moduleDir is the root of the Cohort module (the parent of e2e/).
	moduleDir string
	// workDir holds the binaries and the shared server's database and logs.
	workDir string

	bins struct {
		temporal, emulator, worker, starter string
	}
	// setupErr says why a binary is missing; tests that need it fail with it.
	setupErr = map[string]error{}

	sharedOnce   sync.Once
	sharedServer *temporalServer
	sharedErr    error
)

// namespaces are created by the shared dev server: one per scenario, so that
// workers pointed at different emulators never share a task queue and each
// scenario can count its own workflows.
var namespaces = []string{"batch", "worker-crash", "server-restart", "faults", "delta", "retry", "bad-input", "metrics", "steps", "plan", "reconcile", "drift", "offboard", "offboard-ids", "collision", "usage",
	"batch-ids", "csv", "wedge", "property"}

const temporalInstall = "go install github.com/temporalio/cli/cmd/temporal@v1.5.1"

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	var err error
	moduleDir, err = filepath.Abs("..")
	if err == nil {
		_, err = os.Stat(filepath.Join(moduleDir, "go.mod"))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot find the module root: %v\n", err)
		return 1
	}
	workDir, err = os.MkdirTemp("", "cohort-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	buildAll()

	code := m.Run()

	if sharedServer != nil {
		if err := sharedServer.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: stop temporal: %v\n", err)
		}
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: kept the shared server's files for inspection: %s\n", workDir)
	} else {
		os.RemoveAll(workDir)
	}
	return code
}

// buildAll builds the emulator, worker and starter into workDir/bin and
// finds the Temporal CLI. Failures are recorded, not fatal: a test that needs
// the missing binary fails with the reason.
func buildAll() {
	binDir := filepath.Join(workDir, "bin")
	goBin, err := exec.LookPath("go")
	if err != nil {
		for _, k := range []string{"emulator", "worker", "starter"} {
			setupErr[k] = fmt.Errorf("go command not found: %w", err)
		}
	}
	for _, b := range []struct {
		key, pkg string
		out      *string
	}{
		{"emulator", "./emulator/cmd/databricks-emulator", &bins.emulator},
		{"worker", "./worker", &bins.worker},
		{"starter", "./starter", &bins.starter},
	} {
		if setupErr[b.key] != nil {
			continue
		}
		out := filepath.Join(binDir, filepath.Base(b.pkg))
		start := time.Now()
		cmd := exec.Command(goBin, "build", "-o", out, b.pkg)
		cmd.Dir = moduleDir
		if msg, err := cmd.CombinedOutput(); err != nil {
			setupErr[b.key] = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, msg)
			continue
		}
		fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", b.pkg, time.Since(start).Round(100*time.Millisecond))
		*b.out = out
	}

	bins.temporal, setupErr["temporal"] = findTemporalCLI(goBin)
}

// findTemporalCLI looks for the Temporal CLI as $TEMPORAL_CLI, on PATH, then
// in $(go env GOPATH)/bin.
func findTemporalCLI(goBin string) (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("TEMPORAL_CLI=%s: %v; install the CLI with: %s", p, err, temporalInstall)
		}
		return p, nil
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	if goBin != "" {
		out, err := exec.Command(goBin, "env", "GOPATH").Output()
		if err == nil {
			for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
				p := filepath.Join(dir, "bin", "temporal")
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
			}
		}
	}
	return "", errors.New("the Temporal CLI was not found ($TEMPORAL_CLI, PATH, $(go env GOPATH)/bin); install it with: " + temporalInstall)
}

// need fails the test unless the named binaries were built or found.
func need(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := setupErr[n]; err != nil {
			t.Fatalf("%s unavailable: %v", n, err)
		}
	}
}

// shared returns the package's Temporal dev server, starting it on first use.
// private starts a dev server of the test's own, for a scenario that stops
// and restarts it while the others go on with the shared one; it stops in
// t.Cleanup.
func private(t *testing.T, ns string) *temporalServer {
	t.Helper()
	need(t, "temporal")
	s := &temporalServer{bin: bins.temporal, dir: t.TempDir(), namespaces: []string{ns}}
	s.db = filepath.Join(s.dir, "temporal.db")
	var err error
	if s.port, err = ports.Free(); err != nil {
		t.Fatal(err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("start a Temporal dev server: %v\n%s", err, s.logTail())
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop the Temporal dev server: %v", err)
		}
	})
	return s
}

func shared(t *testing.T) *temporalServer {
	t.Helper()
	need(t, "temporal")
	sharedOnce.Do(func() {
		s := &temporalServer{
			bin:        bins.temporal,
			dir:        filepath.Join(workDir, "temporal"),
			namespaces: namespaces,
		}
		if sharedErr = os.MkdirAll(s.dir, 0o755); sharedErr != nil {
			return
		}
		s.db = filepath.Join(s.dir, "temporal.db")
		s.port, sharedErr = ports.Free()
		if sharedErr != nil {
			return
		}
		sharedServer = s
		sharedErr = s.start()
	})
	if sharedErr != nil {
		if sharedServer != nil {
			t.Log(sharedServer.logTail())
		}
		t.Fatalf("start the Temporal dev server: %v", sharedErr)
	}
	return sharedServer
}
