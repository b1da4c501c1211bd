package activities

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/compute"

	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/usage"
	"github.com/cohort-dev/cohort/wire"
)

// usageEnv is an emulator on a manual clock with one provisioned
// participant, their roster stored and a ledger.
type usageEnv struct {
	*emuEnv
	clock   *emulator.ManualClock
	p       roster.Participant
	cluster string
	ref     roster.Ref
	own     *databricks.WorkspaceClient // the participant's own token
}

func newUsageEnv(t *testing.T) *usageEnv {
	clock := emulator.NewManualClock()
	e := setup(t, setupOpts{emulator: emulator.Options{Now: clock.Now, ClusterRetention: 48 * time.Hour}})
	e.acts.Limits = NewLimits(RateRates{Clusters: 500, ClusterEvents: 500, PermissionsRead: 500, PermissionsWrite: 500}, 1)
	dir := t.TempDir()
	e.acts.Roster = roster.Store{Dir: dir}
	e.acts.Ledger = usage.Store{Dir: dir + "/ledger"}
	e.acts.Now = clock.Now
	p := participant("ines@example.com")
	_, _, c := e.provision(p)
	ref, err := e.acts.Roster.Put([]roster.Participant{p})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		Token string `json:"token"`
	}
	e.control("POST", "/emulator/v1/tokens", map[string]any{"user_name": p.Email}, &tok)
	own, err := databricks.NewWorkspaceClient(&databricks.Config{Host: e.srv.URL, Token: tok.Token, RetryTimeoutSeconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	return &usageEnv{emuEnv: e, clock: clock, p: p, cluster: c.ClusterID, ref: ref, own: own}
}

// read runs UsageChunk for the participant and returns their usage.
func (u *usageEnv) read() wire.ParticipantUsage {
	u.t.Helper()
	r, err := run[wire.UsageChunkInput, wire.UsageChunkResult](u.t, u.acts, func(a *Activities) any { return a.UsageChunk },
		wire.UsageChunkInput{Roster: u.ref, Limit: 1, WorkflowIDs: []string{"cohort-participant/" + u.p.Email}, ClusterIDs: [][]string{{u.cluster}}})
	if err != nil {
		u.t.Fatalf("UsageChunk: %v", err)
	}
	if len(r.Usage) != 1 || r.Usage[0].Error != "" {
		u.t.Fatalf("UsageChunk = %+v, want one participant's usage", r)
	}
	return r.Usage[0]
}

// start starts the cluster with the participant's own token.
func (u *usageEnv) start() error {
	_, err := u.own.Clusters.Start(context.Background(), compute.StartCluster{ClusterId: u.cluster})
	return err
}

func near(got, want float64) bool { return math.Abs(got-want) < 1.0/60 }

// The usage read follows a participant's cluster through a start, a run
// past the budget (terminated, permission lowered: their own start is
// refused), a grant (CAN_RESTART back, they start again), and the
// cluster's purge, which keeps its hours. Re-reading counts nothing twice.
func TestEmulator_usageAndBudget(t *testing.T) {
	u := newUsageEnv(t)
	u.clock.Advance(time.Second) // TERMINATING -> TERMINATED
	if got := u.read(); got.State != usage.StateNeverStarted || got.Starts != 0 || got.Action != "" {
		t.Fatalf("before any start: %+v, want never started", got)
	}
	if err := u.start(); err != nil {
		t.Fatalf("participant's start: %v", err)
	}
	u.clock.Advance(time.Second) // PENDING -> RUNNING
	u.control("POST", "/emulator/v1/clusters/busy", map[string]any{"cluster_id": u.cluster, "duration": "5h"}, nil)
	u.clock.Advance(30 * time.Minute)
	got := u.read()
	if !got.Running || got.Starts != 1 || !near(got.Hours, 0.5) || got.State != usage.StateActive {
		t.Fatalf("after 30 min running: %+v, want running, 1 start, 0.5 h", got)
	}
	if again := u.read(); again.Starts != 1 || !near(again.Hours, 0.5) {
		t.Errorf("re-read: %+v, want the same 1 start and 0.5 h", again)
	}
	// A usage batch's read (no cluster ids given) takes the cluster from
	// the ledger: no earlier run is read (there is no Temporal here).
	r, err := run[wire.UsageChunkInput, wire.UsageChunkResult](t, u.acts, func(a *Activities) any { return a.UsageChunk },
		wire.UsageChunkInput{Roster: u.ref, Limit: 1, WorkflowIDs: []string{"cohort-participant/" + u.p.Email}})
	if err != nil || len(r.Usage) != 1 || r.Usage[0].ClusterID != u.cluster || r.Usage[0].Starts != 1 {
		t.Errorf("read without cluster ids: %+v, %v; want the ledger's cluster", r, err)
	}

	u.acts.Settings.Budget = usage.Budget{HoursPerParticipant: 1, WarnFraction: 0.8}
	u.clock.Advance(40 * time.Minute)
	got = u.read()
	if got.State != usage.StateOverBudget || got.Action != wire.BudgetRestrict {
		t.Fatalf("after 70 min with a 1 h budget: %+v, want over budget, restrict", got)
	}
	res, err := run[wire.EnforceBudgetInput, wire.EnforceBudgetResult](t, u.acts, func(a *Activities) any { return a.EnforceBudget },
		wire.EnforceBudgetInput{Email: u.p.Email, ClusterIDs: got.ClusterIDs, Action: got.Action, Hours: got.Hours, Limit: got.Limit})
	if err != nil {
		t.Fatalf("EnforceBudget: %v", err)
	}
	if len(res.Changes) != 2 {
		t.Errorf("budget changes = %q, want the terminate and the lowered permission", res.Changes)
	}
	c, err := u.w.Clusters.Get(context.Background(), compute.GetClusterRequest{ClusterId: u.cluster})
	if err != nil || !stopped(c.State) {
		t.Fatalf("cluster after the budget: %v, %v; want terminating", c.State, err)
	}
	// A reconcile's survey takes the budget's CAN_ATTACH_TO for no drift.
	surveys, _ := u.readAndSurvey([]roster.Participant{u.p}, false)
	if s := surveys[0]; s.Has(wire.DriftPermissionMissing) || !slices.ContainsFunc(s.Notes, func(n string) bool { return strings.Contains(n, "over the budget") }) {
		t.Errorf("survey of the restricted participant = %+v, want no permission drift, a note", s)
	}
	u.clock.Advance(5 * time.Minute)
	err = u.start()
	if !errors.Is(err, apierr.ErrPermissionDenied) {
		t.Fatalf("participant's start over budget: %v, want permission denied", err)
	}
	got = u.read()
	if got.Running || !near(got.Hours, 70.0/60) || got.Ends[usage.EndBudget] != 1 || got.Action != "" || !got.Restricted {
		t.Fatalf("after the budget's stop: %+v, want 70 min, one run ended by the budget, no further action", got)
	}

	if _, err := u.acts.Ledger.Update(u.p.Email, func(e *usage.Entry) error {
		e.AddGrant(usage.Grant{At: u.clock.Now(), Hours: 1})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got = u.read()
	if got.Action != wire.BudgetRestore || !near(got.Left, 2-70.0/60) {
		t.Fatalf("after a 1 h grant: %+v, want restore with 50 min left", got)
	}
	if _, err := run[wire.EnforceBudgetInput, wire.EnforceBudgetResult](t, u.acts, func(a *Activities) any { return a.EnforceBudget },
		wire.EnforceBudgetInput{Email: u.p.Email, ClusterIDs: got.ClusterIDs, Action: got.Action}); err != nil {
		t.Fatalf("EnforceBudget restore: %v", err)
	}
	u.clock.Advance(5 * time.Minute)
	if err := u.start(); err != nil {
		t.Fatalf("participant's start after the grant: %v", err)
	}
	u.clock.Advance(time.Second)
	if _, err := u.w.Clusters.Delete(context.Background(), compute.DeleteCluster{ClusterId: u.cluster}); err != nil {
		t.Fatal(err)
	}
	u.clock.Advance(10 * time.Minute)
	got = u.read()
	if got.Starts != 2 || got.Running || got.Restricted {
		t.Fatalf("after a second run: %+v, want 2 starts, stopped, not restricted", got)
	}
	hours := got.Hours

	u.clock.Advance(72 * time.Hour) // past the retention: purged
	got = u.read()
	if got.Hours != hours || got.Starts != 2 || len(got.ClusterIDs) != 0 {
		t.Errorf("after the purge: %+v, want the %.3f h and 2 starts kept, no cluster read any more", got, hours)
	}
	e, err := u.acts.Ledger.Load(u.p.Email)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(e.Actions, func(a usage.Action) bool { return a.Kind == usage.ActionRestore }) || len(e.Actions) != 2 {
		t.Errorf("ledger actions = %+v, want the restrict and the restore", e.Actions)
	}
}

// The budget never acts on a cluster that is not tagged for the
// participant (one Cohort did not create for them).
func TestEmulator_budgetLeavesUntaggedClusterAlone(t *testing.T) {
	u := newUsageEnv(t)
	r, err := run[wire.EnforceBudgetInput, wire.EnforceBudgetResult](t, u.acts, func(a *Activities) any { return a.EnforceBudget },
		wire.EnforceBudgetInput{Email: "someone-else@example.com", ClusterIDs: []string{u.cluster}, Action: wire.BudgetRestrict})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Changes) != 1 {
		t.Errorf("changes = %q, want the cluster left alone", r.Changes)
	}
	perms, err := u.w.Clusters.GetPermissions(context.Background(), compute.GetClusterPermissionsRequest{ClusterId: u.cluster})
	if err != nil {
		t.Fatal(err)
	}
	if got := directLevels(perms, u.p.Email); !slices.Equal(got, []compute.ClusterPermissionLevel{compute.ClusterPermissionLevelCanRestart}) {
		t.Errorf("owner's permission = %v, want CAN_RESTART untouched", got)
	}
}
