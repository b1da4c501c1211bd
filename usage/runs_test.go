package usage

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

const min1 = int64(60_000)

func ev(t int64, typ string, reason ...string) Event {
	e := Event{ClusterID: "c1", Time: t, Type: typ}
	if len(reason) > 0 {
		e.Reason = reason[0]
	}
	return e
}

func TestRuns(t *testing.T) {
	tests := []struct {
		name   string
		events []Event
		want   []Run
	}{
		{"none", nil, nil},
		{"one run ended by inactivity",
			[]Event{ev(0, "CREATING"), ev(10*min1, EventRunning), ev(70*min1, EventTerminating, EndInactivity), ev(72*min1, EventTerminated, EndInactivity)},
			[]Run{{Start: 10 * min1, End: 70 * min1, Ended: EndInactivity}}},
		{"running without an end is still running",
			[]Event{ev(10*min1, EventRunning)},
			[]Run{{Start: 10 * min1}}},
		{"duplicate events count once",
			[]Event{ev(10*min1, EventRunning), ev(10*min1, EventRunning), ev(20*min1, EventTerminating, EndUser), ev(20*min1, EventTerminating, EndUser)},
			[]Run{{Start: 10 * min1, End: 20 * min1, Ended: EndUser}}},
		{"out of order pages",
			[]Event{ev(100*min1, EventTerminated, EndUser), ev(90*min1, EventRunning), ev(20*min1, EventTerminating, EndInactivity), ev(10*min1, EventRunning)},
			[]Run{{Start: 10 * min1, End: 20 * min1, Ended: EndInactivity}, {Start: 90 * min1, End: 100 * min1, Ended: EndUser}}},
		{"a restart's RUNNING continues the run",
			[]Event{ev(10*min1, EventRunning), ev(15*min1, "RESTARTING"), ev(16*min1, EventRunning), ev(30*min1, EventTerminated, EndUser)},
			[]Run{{Start: 10 * min1, End: 30 * min1, Ended: EndUser}}},
		{"an end without a start ends nothing",
			[]Event{ev(5*min1, EventTerminated, EndInactivity), ev(10*min1, EventRunning), ev(11*min1, EventTerminating)},
			[]Run{{Start: 10 * min1, End: 11 * min1, Ended: EndUnknown}}},
		{"start and end in one millisecond",
			[]Event{ev(10*min1, EventTerminating, EndUser), ev(10*min1, EventRunning)},
			[]Run{{Start: 10 * min1, End: 10 * min1, Ended: EndUser}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Runs(tt.events); !slices.Equal(got, tt.want) {
				t.Errorf("Runs = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestClusterApply_rereadCountsOnce(t *testing.T) {
	all := []Event{ev(10*min1, EventRunning), ev(40*min1, EventTerminating, EndInactivity), ev(50*min1, EventRunning)}
	var c Cluster
	c.Apply(all[:2], nil, nil)
	// The next read starts at the last event's time: it sees that event
	// again, then the new one; a third read sees the same page again.
	c.Apply(all[1:], nil, nil)
	c.Apply(all, nil, nil)
	if c.ClosedMS != 30*min1 || c.Starts != 2 || c.RunningSince != 50*min1 {
		t.Errorf("after re-reads: closed %d ms, %d starts, running since %d; want %d, 2, %d", c.ClosedMS, c.Starts, c.RunningSince, 30*min1, 50*min1)
	}
	if got := c.RunningMS(60 * min1); got != 40*min1 {
		t.Errorf("RunningMS(60 min) = %d, want %d", got, 40*min1)
	}
	if c.Ends[EndInactivity] != 1 {
		t.Errorf("ends = %v, want one INACTIVITY", c.Ends)
	}
}

// The run a cluster's creation makes is Cohort's (setup time), not the
// participant's: no start, no hours.
func TestClusterApply_creationRunIsNoStart(t *testing.T) {
	var c Cluster
	c.Apply([]Event{ev(0, EventCreating), ev(2*min1, EventRunning), ev(3*min1, EventTerminating, EndUser)}, nil, nil)
	if c.Starts != 0 || c.ClosedMS != 0 || c.SetupMS != min1 {
		t.Errorf("after creation: %d starts, %d ms, %d setup ms; want 0 starts, 0 ms, %d setup ms", c.Starts, c.ClosedMS, c.SetupMS, min1)
	}
	c.Apply([]Event{ev(60*min1, EventRunning)}, nil, nil)
	if c.Starts != 1 {
		t.Errorf("after a start: %d starts, want 1", c.Starts)
	}
	var d Cluster
	d.Apply([]Event{ev(min1, EventTerminating, EndUser), ev(min1, EventCreating), ev(60*min1, EventRunning)}, nil, nil)
	if d.Starts != 1 {
		t.Errorf("a start after a creation stopped before it ran: %d starts, want 1", d.Starts)
	}
	if s := State(Totals{Starts: 0, RunningMS: min1}, Verdict{}); s != StateNeverStarted {
		t.Errorf("state with only the creation's run = %q, want %q", s, StateNeverStarted)
	}
}

func TestClusterApply_budgetEnd(t *testing.T) {
	stop := time.UnixMilli(60 * min1)
	var c Cluster
	runs := c.Apply([]Event{ev(10*min1, EventRunning), ev(61*min1, EventTerminating, EndUser)}, []int64{stop.UnixMilli()}, nil)
	if len(runs) != 1 || runs[0].Ended != EndBudget {
		t.Errorf("runs = %+v, want one ended by the budget", runs)
	}
	var d Cluster
	runs = d.Apply([]Event{ev(10*min1, EventRunning), ev(200*min1, EventTerminating, EndUser)}, []int64{stop.UnixMilli()}, nil)
	if runs[0].Ended != EndUser {
		t.Errorf("a stop long after the budget's: ended %q, want USER_REQUEST", runs[0].Ended)
	}
}

func TestEntry_daysAndGone(t *testing.T) {
	base := time.Date(2026, 1, 15, 23, 0, 0, 0, time.UTC).UnixMilli()
	var e Entry
	c := e.Cluster("c1")
	c.Apply([]Event{ev(base, EventRunning), ev(base+2*60*min1, EventTerminated, EndInactivity)}, nil, e.AddDay)
	if e.Daily["2026-01-15"] != 60*min1 || e.Daily["2026-01-16"] != 60*min1 {
		t.Errorf("daily = %v, want an hour on each side of midnight", e.Daily)
	}
	c2 := e.Cluster("c2")
	c2.Apply([]Event{ev(base+3*60*min1, EventRunning)}, nil, e.AddDay)
	e.ReadAt = time.UnixMilli(base + 4*60*min1)
	e.MarkGone("c2")
	tot := e.Totals(time.UnixMilli(base + 10*60*min1))
	if tot.Hours() != 3 || tot.Running || tot.Starts != 2 || tot.Ends[EndPurged] != 1 {
		t.Errorf("totals = %+v (%.2f h), want 3 h, 2 starts, not running, one purged", tot, tot.Hours())
	}
	if ids := e.ClusterIDs(); !slices.Equal(ids, []string{"c1"}) {
		t.Errorf("clusters still read = %v, want [c1]", ids)
	}
}

func TestEntry_bound(t *testing.T) {
	var e Entry
	for i := range MaxClusters + 5 {
		c := e.Cluster(string(rune('a'+i)) + "x")
		c.ClosedMS, c.Starts, c.Gone = 60*min1, 1, true
	}
	for range MaxActions + 3 {
		e.AddAction(Action{Kind: ActionRestrict})
	}
	for range MaxGrants + 3 {
		e.AddGrant(Grant{Hours: 1})
	}
	e.bound()
	if len(e.Clusters) != MaxClusters || len(e.Actions) != MaxActions || len(e.Grants) != MaxGrants {
		t.Fatalf("kept %d clusters, %d actions, %d grants; want %d, %d, %d", len(e.Clusters), len(e.Actions), len(e.Grants), MaxClusters, MaxActions, MaxGrants)
	}
	if tot := e.Totals(time.Now()); tot.Hours() != float64(MaxClusters+5) || tot.Starts != MaxClusters+5 {
		t.Errorf("totals after folding = %.1f h, %d starts; want %d each", tot.Hours(), tot.Starts, MaxClusters+5)
	}
	if e.GrantedHours != float64(MaxGrants+3) {
		t.Errorf("granted = %v, want every grant summed (%d)", e.GrantedHours, MaxGrants+3)
	}
}

func TestStore_updateIsLockedAndPrivate(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "ledger")}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Update("A@x.org", func(e *Entry) error { e.AddGrant(Grant{Hours: 1}); return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	e, err := s.Load("a@X.org")
	if err != nil {
		t.Fatal(err)
	}
	if e.GrantedHours != 20 || e.Email != "a@x.org" {
		t.Errorf("after 20 concurrent grants: %v hours for %q, want 20 for a@x.org", e.GrantedHours, e.Email)
	}
	fi, err := os.Stat(s.path("a@x.org"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("ledger file mode %v, want 0600", fi.Mode().Perm())
	}
	if err := os.WriteFile(s.path("b@x.org"), make([]byte, maxEntrySize+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("b@x.org"); err == nil {
		t.Error("Load of an oversized file: no error")
	}
}

func TestBudgetJudge(t *testing.T) {
	b := Budget{HoursPerParticipant: 10, WarnFraction: 0.8}
	for _, tt := range []struct {
		used, granted float64
		over, near    bool
		left          float64
	}{
		{0, 0, false, false, 10}, {8, 0, false, true, 2}, {10, 0, true, false, 0}, {12, 5, false, true, 3}, {16, 5, true, false, 0},
	} {
		v := b.Judge(tt.used, tt.granted)
		if v.Over != tt.over || v.Near != tt.near || v.Left != tt.left {
			t.Errorf("Judge(%v used, %v granted) = %+v, want over %v near %v left %v", tt.used, tt.granted, v, tt.over, tt.near, tt.left)
		}
	}
	if v := (Budget{}).Judge(1000, 0); v.Over || v.Near {
		t.Errorf("budget off: %+v, want no verdict", v)
	}
}

func TestRatesEstimate(t *testing.T) {
	r := Rates{DBUPerHour: map[string]float64{"Standard_DS3_v2": 0.75}, PricePerDBU: 0.55}
	e := r.Estimate("standard_ds3_v2", 2)
	if !e.HasDBU || e.DBU != 1.5 || !e.HasCost || math.Abs(e.Cost-0.825) > 1e-9 {
		t.Errorf("estimate = %+v, want 1.5 DBU and its cost", e)
	}
	if e := r.Estimate("Standard_NC6", 2); e.HasDBU || e.HasCost {
		t.Errorf("unknown node type: %+v, want hours only", e)
	}
}
