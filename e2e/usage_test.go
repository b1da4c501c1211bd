package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/compute"
)

// usageScale is the emulator's time scale in the usage scenario: an
// emulated day is a minute, an emulated minute 42 ms.
const usageScale = 1440

// emulated converts real hours (Cohort's figures) into emulated minutes.
func emulated(realHours float64) float64 { return realHours * 60 * usageScale }

// usageJSON is starter usage --format json.
type usageJSON struct {
	Participants []struct {
		Email      string  `json:"email"`
		ClusterID  string  `json:"cluster_id"`
		Hours      float64 `json:"hours"`
		Starts     int     `json:"starts"`
		State      string  `json:"state"`
		SetupHours float64 `json:"setup_hours"`
		EndedBy    string  `json:"ended_by"`
		BudgetLeft string  `json:"budget_left"`
	} `json:"participants"`
	Totals struct {
		NeverStarted int      `json:"never_started"`
		OverBudget   int      `json:"over_budget"`
		Remind       []string `json:"remind"`
	} `json:"totals"`
}

func (u usageJSON) of(t *testing.T, email string) (hours float64, starts int, state, endedBy string) {
	t.Helper()
	for _, p := range u.Participants {
		if p.Email == email {
			return p.Hours, p.Starts, p.State, p.EndedBy
		}
	}
	t.Fatalf("starter usage lists no %s", email)
	return
}

// ranMinutes is the emulator's own account of how long each cluster ran
// (GET /emulator/v1/clusters/runs, purged ones included), in emulated
// minutes, by cluster id.
func (s *scenario) ranMinutes(t *testing.T) map[string]float64 {
	t.Helper()
	var runs struct {
		Clusters []struct {
			ClusterID  string  `json:"cluster_id"`
			RanSeconds float64 `json:"ran_seconds"`
		} `json:"clusters"`
	}
	s.emu.control(t, http.MethodGet, "/clusters/runs", nil, &runs)
	out := map[string]float64{}
	for _, c := range runs.Clusters {
		out[c.ClusterID] = c.RanSeconds / 60
	}
	return out
}

// agreesWithEmulator checks the hours of the participants named (whose
// clusters are stopped: a running one's figure moves with the clock), with
// their clusters' creation runs (Cohort's setup hours), against what the
// emulator says their cluster ran: within an emulated minute.
func (s *scenario) agreesWithEmulator(t *testing.T, u usageJSON, cluster map[string]string, emails ...string) {
	t.Helper()
	ran := s.ranMinutes(t)
	for _, p := range u.Participants {
		if !slices.Contains(emails, p.Email) {
			continue
		}
		got := emulated(p.Hours + p.SetupHours)
		if want := ran[cluster[p.Email]]; math.Abs(got-want) > 1 {
			t.Errorf("%s: usage says %.2f emulated min (setup included), the emulator ran cluster %s %.2f min", p.Email, got, cluster[p.Email], want)
		}
	}
}

// usage runs starter usage --format json on batch and decodes it.
func (s *scenario) usage(batch string, wantCode int) usageJSON {
	s.t.Helper()
	r := s.starter(3*time.Minute, "usage", "--format", "json", batch)
	if r.code != wantCode {
		s.t.Fatalf("usage: exit %d, want %d\n%s", r.code, wantCode, r)
	}
	var u usageJSON
	if err := json.Unmarshal([]byte(r.stdout), &u); err != nil {
		s.t.Fatalf("usage output: %v\n%s", err, r)
	}
	return u
}

// run is one run the test made the emulator do: from RUNNING to the
// auto-termination it announced, in emulated minutes.
type run struct{ minutes float64 }

// runFor starts the participant's cluster with their own token, waits for
// RUNNING, marks it busy for busy (emulated) and returns the run the
// emulator announces: RUNNING until its auto-termination.
func (s *scenario) runFor(ctx context.Context, t *testing.T, token, id, busy string) run {
	t.Helper()
	pw := s.emu.workspaceClient(t, token)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		_, err := pw.Clusters.Start(ctx, compute.StartCluster{ClusterId: id})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("start %s with the participant's token: %v", id, err)
		}
	}
	w := s.emu.workspaceClient(t, emuToken)
	var c *compute.ClusterDetails
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if c, err = w.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id}); err == nil && c.State == compute.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s never RUNNING: %v %v", id, c, err)
		}
	}
	var ans struct {
		AutoTerminatesAt int64 `json:"auto_terminates_at"`
	}
	s.emu.control(t, http.MethodPost, "/clusters/busy", map[string]any{"cluster_id": id, "duration": busy}, &ans)
	if ans.AutoTerminatesAt == 0 {
		t.Fatalf("busy %s: no auto-termination announced", id)
	}
	ms := ans.AutoTerminatesAt - c.LastRestartedTime
	return run{minutes: float64(ms) / 60000 * usageScale}
}

// waitStopped waits until cluster id is TERMINATING or TERMINATED.
func (s *scenario) waitStopped(ctx context.Context, t *testing.T, id string) {
	t.Helper()
	w := s.emu.workspaceClient(t, emuToken)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		c, err := w.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id})
		if err == nil && (c.State == compute.StateTerminating || c.State == compute.StateTerminated) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s not stopped after a minute: %v %v", id, c, err)
		}
	}
}

// TestUsage: four participants on an emulator whose day is a minute: one
// never starts, one starts once (and their cluster is purged afterwards),
// one starts on two days, one runs past a 6-hour budget. starter usage's
// hours agree with the runs the emulator made within an emulated minute;
// the one past the budget is stopped and cannot start their cluster with
// their own token until a budget grant and the next read; the purged
// cluster's hours stay in the totals.
func TestUsage(t *testing.T) {
	s := newScenario(t, "usage", "s19.e2e.example", 0, 19,
		"--time-scale", fmt.Sprint(usageScale), "--cluster-retention", "12h")
	// 6 emulated hours of budget, in Cohort's (real) hours.
	budget := filepath.Join(s.dir, "budget.yaml")
	if err := os.WriteFile(budget, fmt.Appendf(nil, "budget:\n  cluster_hours_per_participant: %g\nrate_limits:\n  cluster_events: 100\n",
		6.0/usageScale), 0o644); err != nil {
		t.Fatal(err)
	}
	s.configs = append(s.configs, budget)
	s.startWorker()
	ps := people(4, s.domain)
	never, once, daily, over := ps[0][0], ps[1][0], ps[2][0], ps[3][0]
	file := s.plainRoster("event.csv", ps)
	batch, _ := s.submit(0, 3*time.Minute, "--wait", file)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cluster := map[string]string{}
	for email, cs := range s.tagged(ctx, t) {
		cluster[email] = cs[0].ClusterId
	}
	w := s.emu.workspaceClient(t, emuToken)
	// The daily and the over-budget participants' clusters are pinned
	// (kept past the retention); the once participant's is purged 12
	// emulated hours after its run.
	for _, e := range []string{daily, over} {
		if err := w.Clusters.Pin(ctx, compute.PinCluster{ClusterId: cluster[e]}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	for _, p := range ps {
		tokens[p[0]] = s.emu.userToken(t, p[0])
	}
	for _, e := range []string{once, daily, over} {
		s.waitStopped(ctx, t, cluster[e])
	}

	want := map[string]float64{} // emulated minutes
	want[once] += s.runFor(ctx, t, tokens[once], cluster[once], "30m").minutes
	want[daily] += s.runFor(ctx, t, tokens[daily], cluster[daily], "10m").minutes
	overStart := time.Now()
	s.runFor(ctx, t, tokens[over], cluster[over], "10h")
	s.waitStopped(ctx, t, cluster[once])
	s.waitStopped(ctx, t, cluster[daily])

	u := s.usage(batch, 0)
	check := func(u usageJSON, email string, wantStarts int, wantState string) {
		t.Helper()
		h, starts, state, _ := u.of(t, email)
		if math.Abs(emulated(h)-want[email]) > 1 || starts != wantStarts || state != wantState {
			t.Errorf("%s: %.2f emulated min, %d starts, %s; want %.2f (within a minute), %d, %s", email, emulated(h), starts, state, want[email], wantStarts, wantState)
		}
	}
	check(u, never, 0, "never started")
	check(u, once, 1, "active")
	check(u, daily, 1, "active")
	s.agreesWithEmulator(t, u, cluster, never, once, daily)
	if u.Totals.NeverStarted != 1 || len(u.Totals.Remind) != 1 || u.Totals.Remind[0] != never {
		t.Errorf("totals = %+v, want %s alone to remind", u.Totals, never)
	}

	// Past 6 emulated hours (15 s), the next read stops them.
	time.Sleep(time.Until(overStart.Add(16 * time.Second)))
	r := s.starter(3*time.Minute, "usage", "--format", "csv", batch)
	if r.code != 0 || !strings.Contains(r.stdout, over) {
		t.Fatalf("usage past the budget: %s", r)
	}
	usageBatch := batchIDFrom(t, r.stderr)
	s.waitStopped(ctx, t, cluster[over])
	_, err := s.emu.workspaceClient(t, tokens[over]).Clusters.Start(ctx, compute.StartCluster{ClusterId: cluster[over]})
	if !errors.Is(err, apierr.ErrPermissionDenied) {
		t.Errorf("%s starts their cluster over budget: %v, want a permission error", over, err)
	}
	if perms, err := w.Clusters.GetPermissions(ctx, compute.GetClusterPermissionsRequest{ClusterId: cluster[over]}); err != nil {
		t.Errorf("%s's cluster ACL: %v", over, err)
	} else if !strings.Contains(aclString(perms), over+":CAN_ATTACH_TO") {
		t.Errorf("%s's cluster ACL %s, want CAN_ATTACH_TO", over, aclString(perms))
	}
	st := s.starter(time.Minute, "status", usageBatch)
	if !strings.Contains(st.stdout, "terminated") || !strings.Contains(st.stdout, "CAN_ATTACH_TO") || !strings.Contains(st.stdout, "1 over budget") {
		t.Errorf("status of the usage batch: want the budget's actions and 1 over budget\n%s", st)
	}

	// A day later: the once participant's cluster is purged, the daily one
	// starts again; a grant lets the one over budget start again.
	time.Sleep(time.Until(overStart.Add(60 * time.Second)))
	want[daily] += s.runFor(ctx, t, tokens[daily], cluster[daily], "5m").minutes
	s.waitStopped(ctx, t, cluster[daily])
	if _, err := w.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: cluster[once]}); err == nil {
		t.Errorf("cluster %s of %s not purged after a day (retention 12 h)", cluster[once], once)
	}
	if g := s.starter(time.Minute, "budget", "grant", over, fmt.Sprintf("+%g", 24.0/usageScale)); g.code != 0 || !strings.Contains(g.stdout, "CAN_RESTART back") {
		t.Errorf("budget grant: %s", g)
	}
	u = s.usage(batch, 0)
	check(u, once, 1, "active")
	check(u, daily, 2, "active")
	s.agreesWithEmulator(t, u, cluster, never, once, daily, over) // the purged cluster's hours included
	if _, _, state, endedBy := u.of(t, over); state == "over budget" || !strings.Contains(endedBy, "budget 1") {
		t.Errorf("%s after the grant: %s, ended by %q; want within budget, one run ended by the budget", over, state, endedBy)
	}
	if _, err := s.emu.workspaceClient(t, tokens[over]).Clusters.Start(ctx, compute.StartCluster{ClusterId: cluster[over]}); err != nil {
		t.Errorf("%s starts their cluster after the grant: %v", over, err)
	}

	// The HTML page for the sponsor, and the schedule.
	page := filepath.Join(s.dir, "usage.html")
	if r := s.starter(time.Minute, "usage", "--cached", "--format", "html", "--out", page, batch); r.code != 0 {
		t.Errorf("usage --format html: %s", r)
	} else if b, err := os.ReadFile(page); err != nil || !strings.Contains(string(b), never) {
		t.Errorf("html page: %v, want it to name %s", err, never)
	}
	if r := s.starter(time.Minute, "usage", "--every", "24h", batch); r.code != 0 || !strings.Contains(r.stdout, "created schedule cohort-usage/"+batch) {
		t.Errorf("usage --every: %s", r)
	}
	if r := s.starter(time.Minute, "usage", "--every", "off", batch); r.code != 0 || !strings.Contains(r.stdout, "removed schedule") {
		t.Errorf("usage --every off: %s", r)
	}
}
