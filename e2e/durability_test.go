package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cohort-dev/cohort/roster"
)

// TestWorkerKilled is scenario 2: the worker is killed with SIGKILL three
// times during a batch, at different steps, and restarted each time; the
// batch completes with every participant provisioned exactly once.
func TestWorkerKilled(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "worker-crash", "s2.e2e.example", 0, 2)
	s.startWorker()
	file := s.writeRoster("roster.csv", roster.Synthesize(batchSize, 2, s.domain))
	want := s.participants(file)
	batch, _ := s.submit(0, time.Minute, file)

	kills := []struct {
		what string
		n    int
		of   func(objectCounts) int
	}{
		{"users", 20, func(o objectCounts) int { return o.Users }},
		{"clusters", 70, func(o objectCounts) int { return o.Clusters }},
		{"clusters", 140, func(o objectCounts) int { return o.Clusters }},
	}
	for i, k := range kills {
		o := s.emu.waitObjects(t, fmt.Sprintf("%s >= %d", k.what, k.n), 5*time.Minute,
			func(o objectCounts) bool { return k.of(o) >= k.n })
		s.killWorker()
		t.Logf("kill %d: SIGKILL %s at %+v", i+1, s.worker.name, o)
		s.startWorker()
	}
	// Activities running in a killed worker are retried once their
	// StartToCloseTimeout (user, schema: 3m) or HeartbeatTimeout (cluster: 1m)
	// expires, so this takes a few minutes.
	start := time.Now()
	waitBatch(t, s.tc, batch, 8*time.Minute)
	t.Logf("batch completed %s after the last restart", time.Since(start).Round(time.Second))
	s.expectAllOK(batch, want)
}

// TestTemporalRestart is scenario 3: the Temporal dev server is stopped,
// left down for a few seconds and started again on the same port and SQLite
// file mid-batch, while the worker keeps running; the batch completes with
// the same end state.
func TestTemporalRestart(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "server-restart", "s3.e2e.example", 0, 3)
	// A server of its own, so the others go on while this one restarts.
	s.temporal = private(t, "server-restart")
	s.tc = s.temporal.client(t, s.ns)
	s.startWorker()
	file := s.writeRoster("roster.csv", roster.Synthesize(batchSize, 3, s.domain))
	want := s.participants(file)
	batch, _ := s.submit(0, time.Minute, file)

	o := s.emu.waitObjects(t, "clusters >= 60", 5*time.Minute, func(o objectCounts) bool { return o.Clusters >= 60 })
	t.Logf("restarting the temporal server at %+v", o)
	s.temporal.restart(t, 5*time.Second)

	waitBatch(t, s.tc, batch, 8*time.Minute)
	if !s.worker.running() {
		t.Errorf("%s exited while the Temporal server was down (%v); want it to reconnect", s.worker.name, s.worker.err)
	}
	s.expectAllOK(batch, want)
}

// TestEmulatorFaults is scenario 4: an emulator failing 10% of requests
// transiently (503, 500, connection resets, and writes applied before a 503
// or a reset), plus queued applied-then-fail faults on every create; the
// batch completes with every participant provisioned exactly once.
func TestEmulatorFaults(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "faults", "s4.e2e.example", 0.1, 4)
	queued := []struct {
		endpoint, mode string
		count          int
	}{
		{"scim.users.create", "applied_then_503", 5},
		{"assignments.put", "applied_then_503", 3},
		{"schemas.create", "applied_then_503", 3},
		{"grants.update", "applied_then_503", 3},
		{"clusters.create", "applied_then_503", 5},
		{"clusters.create", "applied_then_reset", 2},
		{"permissions.update", "applied_then_503", 3},
		{"clusters.delete", "applied_then_503", 3},
	}
	for _, q := range queued {
		s.emu.queueFaults(t, q.endpoint, q.mode, q.count)
	}
	s.startWorker()
	file := s.writeRoster("roster.csv", roster.Synthesize(batchSize, 4, s.domain))
	want := s.participants(file)

	batch, r := s.submit(0, 8*time.Minute, "--wait", file)
	if !strings.Contains(r.stdout, "done: 200 ok, 0 failed") {
		t.Errorf("submit --wait stdout lacks %q:\n%s", "done: 200 ok, 0 failed", r.stdout)
	}
	if p := s.emu.pendingFaults(t); len(p) != 0 {
		t.Errorf("queued faults not served: %v", p)
	}
	st := s.emu.stats(t)
	var faults int64
	for _, n := range st.Faults {
		faults += n
	}
	t.Logf("emulator injected %d faults: %v", faults, st.Faults)
	if faults < 100 {
		t.Errorf("emulator injected %d faults, want at least 100 (10%% of the requests)", faults)
	}
	if n := st.Requests["clusters.create"]["503"]; n < 5 {
		t.Errorf("clusters.create answered 503 %d times, want at least the 5 queued applied_then_503", n)
	}
	s.expectAllOK(batch, want)
}
