package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/cohort-dev/cohort/testkit/drift"
)

// driftSize is "a few hundred": the read's pages and the survey's per-
// participant reads are exercised at more than one page of clusters.
const driftSize = 200

// writesBetween is what went to mutating endpoints between two stats reads.
func writesBetween(before, after stats) map[string]int64 {
	out := map[string]int64{}
	for ep, codes := range after.Writes {
		for code, n := range codes {
			out[ep] += n - before.Writes[ep][code]
		}
	}
	for ep, n := range out {
		if n == 0 {
			delete(out, ep)
		}
	}
	return out
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// participantRuns counts the participant workflow runs a batch started.
func (s *scenario) participantRuns(ctx context.Context, t *testing.T, batch string) int64 {
	t.Helper()
	resp, err := s.tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: s.ns,
		Query:     fmt.Sprintf("CohortBatch = %q AND WorkflowType = 'Participant'", batch),
	})
	if err != nil {
		t.Fatalf("count participant runs of %s: %v", batch, err)
	}
	return resp.GetCount()
}

// TestReconcile_driftOfEveryKind: an event of a few hundred, then an admin
// (and one participant) acting between two runs: one drift of every kind,
// each on its own participant, and one participant running their cluster.
// The dry run lists exactly that drift and writes nothing; the reconcile
// repairs exactly that, sends no write for anyone else (and starts no run
// for them), leaves the running cluster running; a second reconcile finds
// nothing to do and writes nothing.
func TestReconcile_driftOfEveryKind(t *testing.T) {
	s := newScenario(t, "drift", "d18.e2e.example", 0, 18)
	s.startWorker()
	ps := people(driftSize, s.domain)
	file := s.plainRoster("event.csv", ps)
	batch, _ := s.submit(0, 5*time.Minute, "--wait", file)
	want := s.participants(file)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w := s.emu.workspaceClient(t, emuToken)
	env := s.verifyParticipants(s.domain, want)
	who := func(i int) string { return want[i].Email }
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// The drift, each kind on its own participant, made through the SDK as
	// an admin would (testkit/drift), and one participant at work: their
	// cluster runs.
	dk, err := drift.Connect(s.emu.url, emuToken, emuAccountID, emuWorkspace, drift.ExpectFromConfig(s.cfg), 30*time.Second)
	must("connect", err)
	dk.Emulator = &drift.Control{URL: s.emu.url, Token: emuToken}
	kinds := []drift.Kind{drift.UserMissing, drift.UserInactive, drift.NotAssigned, drift.SchemaMissing, drift.GrantMissing,
		drift.ClusterGone, drift.PermissionMissing, drift.ExtraClusters, drift.Running}
	var targets []drift.Target
	for i, k := range kinds {
		targets = append(targets, drift.Target{Participant: want[i+1], Kind: k})
	}
	applied, errs := dk.MakeAll(ctx, targets)
	for _, err := range errs {
		must("make drift", err)
	}
	drifted := map[string]string{}
	for _, a := range applied[:8] {
		drifted[a.Email] = string(a.Kind)
	}
	extraID, runner := applied[7].ClusterID, who(9)
	pw := s.emu.workspaceClient(t, s.emu.userToken(t, runner))

	// The dry run: exactly the drift, no write, exit 1.
	before := s.emu.stats(t)
	r := s.starter(5*time.Minute, "reconcile", "--dry-run", batch)
	if r.code != 1 {
		t.Fatalf("reconcile --dry-run: exit %d, want 1 (drift found)\n%s", r.code, r)
	}
	if ws := writesBetween(before, s.emu.stats(t)); len(ws) > 0 {
		t.Errorf("the dry run wrote: %v", ws)
	}
	listed := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		email, rest, ok := strings.Cut(strings.TrimSpace(line), " [")
		if !ok || !strings.Contains(email, "@") {
			continue
		}
		kinds, _, _ := strings.Cut(rest, "]")
		listed[email] = kinds
	}
	if fmt.Sprint(sortedMap(listed)) != fmt.Sprint(sortedMap(drifted)) {
		t.Errorf("dry run listed %v, want exactly %v\n%s", sortedMap(listed), sortedMap(drifted), r.stdout)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("%d participants: %d unchanged, 8 drifted", driftSize, driftSize-8)) {
		t.Errorf("dry run summary missing or wrong:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, extraID) {
		t.Errorf("dry run does not name the extra cluster %s:\n%s", extraID, r.stdout)
	}

	// The reconcile: exactly those repaired, nothing written for the rest.
	before = s.emu.stats(t)
	r = s.starter(5*time.Minute, "reconcile", "--wait", batch)
	if r.code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	recBatch := batchIDFrom(t, r.stdout)
	ws := writesBetween(before, s.emu.stats(t))
	// What the seven repairs need (user_missing: a create, its assignment,
	// its grants and its cluster permission), each at most once per
	// drifted participant, and the assignment PUT's retries while a fresh
	// user is not yet visible.
	limits := map[string]int64{
		"scim.users.create":  1, // user_missing; user_inactive is one PATCH, no create
		"scim.users.patch":   1,
		"assignments.put":    2 + 10,
		"schemas.create":     1,
		"grants.update":      3 * 4,
		"clusters.create":    1,
		"clusters.delete":    1, // the re-created cluster's stop; never the running one
		"permissions.update": 3,
	}
	for ep, n := range ws {
		if n > limits[ep] {
			t.Errorf("reconcile sent %d %s, want at most %d (all writes: %v)", n, ep, limits[ep], ws)
		}
	}
	if n := s.participantRuns(ctx, t, recBatch); n != 7 {
		t.Errorf("reconcile started %d participant runs, want 7 (the drift a write repairs; none for the %d unchanged)", n, driftSize-8)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("(%d unchanged, 8 drifted)", driftSize-8)) {
		t.Errorf("reconcile summary: want %d unchanged, 8 drifted\n%s", driftSize-8, r.stdout)
	}
	c, err := w.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: env[runner].ClusterID})
	must("read running cluster", err)
	if c.State != compute.StateRunning && c.State != compute.StatePending {
		t.Errorf("%s's cluster is %s after reconcile, want still running", runner, c.State)
	}
	rows := s.report(recBatch)
	unchanged := 0
	for _, row := range rows {
		if row["changes"] == "unchanged" {
			unchanged++
		}
		if kinds, drifted := drifted[row["email"]]; drifted && row["drift"] != kinds {
			t.Errorf("report row %s: drift %q, want %q", row["email"], row["drift"], kinds)
		}
	}
	if unchanged != driftSize-8 { // the runner among them: a running cluster is no drift
		t.Errorf("report: %d rows unchanged, want %d", unchanged, driftSize-8)
	}

	// The organizer deletes the extra cluster by hand, the participant
	// stops theirs: everyone has exactly their environment again.
	must("delete extra cluster", w.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: extraID}))
	_, err = pw.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: env[runner].ClusterID})
	must("stop running cluster", err)
	after := s.verifyParticipants(s.domain, want)
	for i, p := range want {
		if i == 1 || i == 6 {
			continue // a new user, a new cluster
		}
		if after[p.Email].ClusterID != env[p.Email].ClusterID || after[p.Email].UserID != env[p.Email].UserID {
			t.Errorf("%s: user/cluster %s/%s after reconcile, want the same %s/%s", p.Email,
				after[p.Email].UserID, after[p.Email].ClusterID, env[p.Email].UserID, env[p.Email].ClusterID)
		}
	}

	// A second reconcile finds nothing, writes nothing, runs no one.
	before = s.emu.stats(t)
	r = s.starter(5*time.Minute, "reconcile", "--dry-run", batch)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%d unchanged, 0 drifted", driftSize)) {
		t.Errorf("second dry run: want exit 0 and nothing drifted\n%s", r)
	}
	r = s.starter(5*time.Minute, "reconcile", "--wait", batch)
	if r.code != 0 {
		t.Fatalf("second reconcile: %s", r)
	}
	if ws := writesBetween(before, s.emu.stats(t)); len(ws) > 0 {
		t.Errorf("the second reconcile wrote %d requests: %v", sum(ws), ws)
	}
	if n := s.participantRuns(ctx, t, batchIDFrom(t, r.stdout)); n != 0 {
		t.Errorf("the second reconcile started %d participant runs, want none", n)
	}
}

func sortedMap(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
