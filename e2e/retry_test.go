package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

// TestRetryFailed is scenario 6: the emulator refuses some participants'
// accounts permanently; they are reported failed with the reason while all
// others succeed; once the cause is removed, `starter retry-failed` provisions
// exactly them and re-runs nobody else.
func TestRetryFailed(t *testing.T) {
	t.Parallel()
	const n = 80
	// Call counts are compared exactly, so assignments are not flaky here.
	s := newScenario(t, "retry", "s6.e2e.example", 0, 6, "--assignment-flaky-share", "0")
	s.startWorker()
	file := s.writeRoster("roster.csv", roster.Synthesize(n, 6, s.domain))
	all := s.participants(file)
	var refused, others []roster.Participant
	var pats []string
	isRefused := map[string]bool{}
	for i, p := range all {
		if i%10 == 3 {
			refused = append(refused, p)
			isRefused[p.Email] = true
			pats = append(pats, regexp.QuoteMeta(p.Email))
		} else {
			others = append(others, p)
		}
	}
	s.emu.refuseUsers(t, "(?i)^("+strings.Join(pats, "|")+")$")

	batch, r := s.submit(1, 5*time.Minute, "--wait", file)
	wantDone := fmt.Sprintf("done: %d ok, %d failed", len(others), len(refused))
	if !strings.Contains(r.stdout, wantDone) {
		t.Errorf("submit --wait stdout lacks %q:\n%s", wantDone, r.stdout)
	}

	// status lists exactly the refused, with step and reason.
	st := s.starter(time.Minute, "status", batch)
	if st.code != 1 {
		t.Errorf("status exit code %d, want 1\n%s", st.code, st)
	}
	failedLines := map[string]string{}
	for _, line := range strings.Split(st.stdout, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "FAILED "); ok {
			email, _, _ := strings.Cut(rest, " ")
			failedLines[email] = line
		}
	}
	if len(failedLines) != len(refused) {
		t.Errorf("status lists %d FAILED participants, want %d\n%s", len(failedLines), len(refused), st.stdout)
	}
	for _, p := range refused {
		line := failedLines[p.Email]
		if !strings.Contains(line, "at create_user: ") || !strings.Contains(line, "not allowed") {
			t.Errorf("status line for %s = %q, want \"FAILED %s at create_user: <reason from Databricks>\"", p.Email, line, p.Email)
		}
	}

	// The report: failed rows with step and reason, ok rows for the others.
	rows := s.report(batch)
	byEmail := map[string]map[string]string{}
	for _, row := range rows {
		byEmail[row["email"]] = row
	}
	for _, p := range refused {
		row := byEmail[p.Email]
		if row["status"] != "failed" || row["failed_step"] != "create_user" || !strings.Contains(row["last_error"], "not allowed") {
			t.Errorf("report row %s: status %q, failed_step %q, last_error %q; want failed, create_user, the reason",
				p.Email, row["status"], row["failed_step"], row["last_error"])
		}
		if row["user_id"] != "" || row["cluster_id"] != "" {
			t.Errorf("report row %s: user_id %q, cluster_id %q; want none for a refused user", p.Email, row["user_id"], row["cluster_id"])
		}
	}
	var okRows []map[string]string
	for _, row := range rows {
		if row["status"] == "ok" {
			okRows = append(okRows, row)
		}
	}
	found := s.verifyParticipants(s.domain, others)
	s.checkReport(okRows, others, found)

	// Remove the cause and retry exactly the failed.
	firstRuns := workflowRuns(t, s.tc, s.ns, workflows.ParticipantWorkflowName, n)
	before := s.emu.stats(t)
	s.emu.refuseUsers(t)
	rr := s.starter(5*time.Minute, "retry-failed", "--wait", batch)
	wantRetry := fmt.Sprintf("retrying %d failed participants", len(refused))
	if rr.code != 0 || !strings.Contains(rr.stdout, wantRetry) {
		t.Fatalf("retry-failed: exit %d, want 0 and %q\n%s", rr.code, wantRetry, rr)
	}
	after := s.emu.stats(t)
	for _, ep := range []string{"scim.users.create", "assignments.put", "clusters.create", "permissions.update", "clusters.delete"} {
		if d := after.ok(ep) - before.ok(ep); d != int64(len(refused)) {
			t.Errorf("retry: %d successful %s calls, want %d (one per retried participant)", d, ep, len(refused))
		}
	}
	// The schema does not wait for the user: the first run made the refused
	// participants' schemas, and the retry finds them.
	if ok, conflict := after.ok("schemas.create")-before.ok("schemas.create"),
		after.Requests["schemas.create"]["409"]-before.Requests["schemas.create"]["409"]; ok != 0 || conflict != int64(len(refused)) {
		t.Errorf("retry: schemas.create %d created, %d already there; want 0 and %d (kept from the first run)", ok, conflict, len(refused))
	}
	runs := workflowRuns(t, s.tc, s.ns, workflows.ParticipantWorkflowName, n+len(refused))
	for _, p := range all {
		id := workflows.ParticipantWorkflowID(p.Email)
		want := 1
		if isRefused[p.Email] {
			want = 2
		}
		if firstRuns[id] != 1 || runs[id] != want {
			t.Errorf("%s: %d run(s) after the batch, %d after the retry; want 1 and %d", id, firstRuns[id], runs[id], want)
		}
	}

	s.expectAllOK(batch, all)
	again := s.starter(time.Minute, "retry-failed", batch)
	if again.code != 0 || !strings.Contains(again.stdout, "nothing to retry") {
		t.Errorf("second retry-failed: exit %d, want 0 and \"nothing to retry\"\n%s", again.code, again)
	}
}
