package usage

import (
	"slices"
	"strings"
	"time"
)

// Bounds of one participant's ledger entry, so that a file stays a few
// kilobytes whatever happens during an event.
const (
	// MaxClusters is how many clusters an entry keeps one by one; the
	// oldest gone ones beyond it are folded into Entry.Folded.
	MaxClusters = 16
	// MaxActions is how many budget actions an entry lists (the latest).
	MaxActions = 32
	// MaxGrants is how many grants an entry lists (the latest; their sum
	// is kept whole in GrantedHours).
	MaxGrants = 32
	// MaxDays is how many days of daily totals an entry keeps (the latest).
	MaxDays = 400
	// maxAtLast bounds the events remembered at the last millisecond read.
	maxAtLast = 16
	// budgetEndWindow is how long after Cohort's budget terminated a
	// cluster a USER_REQUEST end counts as the budget's.
	budgetEndWindow = 15 * time.Minute
)

// Cluster is what the ledger knows of one of a participant's clusters:
// its closed runs' totals and where its event log was read to.
type Cluster struct {
	ID       string `json:"id"`
	NodeType string `json:"node_type,omitempty"`
	// LastEvent is the time (ms) of the latest event applied, and AtLast
	// the events of that millisecond already applied: the next read starts
	// there and skips them, so re-reading never counts an event twice.
	LastEvent int64    `json:"last_event,omitempty"`
	AtLast    []string `json:"at_last,omitempty"`
	// RunningSince (ms) is the start of a run not yet ended, 0 when none.
	RunningSince int64 `json:"running_since,omitempty"`
	// ClosedMS is the length of its ended runs, in milliseconds.
	ClosedMS int64 `json:"closed_ms"`
	// Starts counts the runs someone started: the run a cluster's creation
	// makes (Cohort's own, stopped at once) is run time, not a start.
	Starts int `json:"starts"`
	// Creating says the cluster's creation was read and its first run not
	// yet; InCreation that the run going on is the creation's.
	Creating   bool `json:"creating,omitempty"`
	InCreation bool `json:"in_creation,omitempty"`
	// SetupMS is the run time of the creation's run: Cohort's provisioning
	// (it creates the cluster and stops it at once), billed but not the
	// participant's use.
	SetupMS int64 `json:"setup_ms,omitempty"`
	// LastRun (ms) is the end of its latest ended run.
	LastRun int64 `json:"last_run,omitempty"`
	// Ends counts its ended runs by how they ended (EndInactivity, ...).
	Ends map[string]int `json:"ends,omitempty"`
	// Gone says the cluster no longer exists (purged, deleted): its totals
	// stay; its event log is not read again.
	Gone bool `json:"gone,omitempty"`
}

// Apply folds a read of the cluster's event log into c: events at or before
// the point c was read to are skipped (LastEvent, AtLast), the rest sorted
// and de-duplicated and walked from c's state. budgetStops are the times
// (ms) Cohort's budget terminated the cluster: a USER_REQUEST end just after
// one is the budget's. day, if set, is told of each ended run's interval.
// It returns the runs this read ended or started (an ongoing one has End 0).
func (c *Cluster) Apply(events []Event, budgetStops []int64, day func(start, end int64)) []Run {
	evs := slices.Clone(events)
	slices.SortFunc(evs, eventOrder)
	evs = slices.CompactFunc(evs, func(a, b Event) bool { return a.Time == b.Time && a.key() == b.key() })
	var out []Run
	for _, e := range evs {
		if e.Time < c.LastEvent || (e.Time == c.LastEvent && slices.Contains(c.AtLast, e.key())) {
			continue
		}
		if e.Time > c.LastEvent {
			c.LastEvent, c.AtLast = e.Time, nil
		}
		if len(c.AtLast) < maxAtLast {
			c.AtLast = append(c.AtLast, e.key())
		}
		switch e.Type {
		case EventCreating:
			c.Creating = true
		case EventRunning:
			if c.RunningSince == 0 {
				c.RunningSince = max(e.Time, 1)
				c.InCreation, c.Creating = c.Creating, false
				if !c.InCreation {
					c.Starts++
				}
				out = append(out, Run{Start: c.RunningSince})
			}
		case EventTerminating, EventTerminated:
			c.Creating = false // a creation stopped before it ran made no run
			if c.RunningSince == 0 {
				continue // the end of a run already ended (TERMINATING, then TERMINATED)
			}
			r := Run{Start: c.RunningSince, End: e.Time, Ended: endOf(e, budgetStops)}
			c.close(r, day)
			if n := len(out); n > 0 && out[n-1].Start == r.Start && out[n-1].End == 0 {
				out[n-1] = r
			} else {
				out = append(out, r)
			}
		}
	}
	return out
}

// close ends the running run as r. The creation's run is Cohort's
// provisioning (SetupMS), not the participant's.
func (c *Cluster) close(r Run, day func(start, end int64)) {
	if c.InCreation {
		c.SetupMS += max(r.End-r.Start, 0)
		c.RunningSince, c.InCreation = 0, false
		return
	}
	c.ClosedMS += max(r.End-r.Start, 0)
	c.LastRun = max(c.LastRun, r.End)
	if c.Ends == nil {
		c.Ends = map[string]int{}
	}
	c.Ends[r.Ended]++
	c.RunningSince = 0
	if day != nil {
		day(r.Start, r.End)
	}
}

// endOf says how a run ended from its ending event's reason.
func endOf(e Event, budgetStops []int64) string {
	reason := strings.ToUpper(strings.TrimSpace(e.Reason))
	if reason == EndUser || reason == "" {
		for _, t := range budgetStops {
			if e.Time >= t && e.Time-t <= budgetEndWindow.Milliseconds() {
				return EndBudget
			}
		}
	}
	if reason == "" {
		return EndUnknown
	}
	return reason
}

// RunningMS is the cluster's total run time in ms up to now (ms), the
// ongoing run's part included.
func (c Cluster) RunningMS(now int64) int64 {
	t := c.ClosedMS
	if c.RunningSince > 0 && !c.InCreation && now > c.RunningSince {
		t += now - c.RunningSince
	}
	return t
}

// Grant is extra hours an organizer gave a participant (starter budget grant).
type Grant struct {
	At    time.Time `json:"at"`
	Hours float64   `json:"hours"`
}

// Action is something the budget did to a participant's cluster.
type Action struct {
	At        time.Time `json:"at"`
	Kind      string    `json:"kind"` // ActionRestrict, ActionRestore
	ClusterID string    `json:"cluster_id,omitempty"`
	Detail    string    `json:"detail"`
}

// Kinds of budget actions.
const (
	// ActionRestrict: over budget, the cluster terminated (if running) and
	// the participant's permission lowered to CAN_ATTACH_TO.
	ActionRestrict = "restrict"
	// ActionRestore: under budget again, CAN_RESTART given back.
	ActionRestore = "restore"
)

// Entry is one participant's ledger: everything usage and the budget
// carry from one run to the next.
type Entry struct {
	Email    string    `json:"email"`
	Clusters []Cluster `json:"clusters,omitempty"`
	// Folded holds the totals of gone clusters past MaxClusters.
	Folded Cluster `json:"folded"`
	// ReadAt is when the event logs were last read.
	ReadAt time.Time `json:"read_at,omitempty"`
	// Daily is run time per UTC day ("2026-01-15") in ms, of ended runs.
	Daily map[string]int64 `json:"daily,omitempty"`
	// GrantedHours sums every grant; Grants lists the latest.
	GrantedHours float64 `json:"granted_hours,omitempty"`
	Grants       []Grant `json:"grants,omitempty"`
	// Restricted says the budget lowered their permission and has not
	// given it back.
	Restricted bool     `json:"restricted,omitempty"`
	Actions    []Action `json:"actions,omitempty"`
}

// Cluster returns the entry's cluster id, adding it when new.
func (e *Entry) Cluster(id string) *Cluster {
	for i := range e.Clusters {
		if e.Clusters[i].ID == id {
			return &e.Clusters[i]
		}
	}
	e.Clusters = append(e.Clusters, Cluster{ID: id})
	return &e.Clusters[len(e.Clusters)-1]
}

// ClusterIDs are the clusters whose event logs are still read.
func (e *Entry) ClusterIDs() []string {
	var ids []string
	for _, c := range e.Clusters {
		if !c.Gone {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// BudgetStops are the times (ms) the budget terminated the cluster id.
func (e *Entry) BudgetStops(id string) []int64 {
	var ts []int64
	for _, a := range e.Actions {
		if a.Kind == ActionRestrict && a.ClusterID == id {
			ts = append(ts, a.At.UnixMilli())
		}
	}
	return ts
}

// RestrictedCluster says the budget's latest action on cluster id lowered
// the permission (and no restore came after it).
func (e *Entry) RestrictedCluster(id string) bool {
	for i := len(e.Actions) - 1; i >= 0; i-- {
		if e.Actions[i].ClusterID == id {
			return e.Actions[i].Kind == ActionRestrict
		}
	}
	return false
}

// AddDay adds an ended run's interval to the daily totals, split at UTC
// midnights.
func (e *Entry) AddDay(start, end int64) {
	if e.Daily == nil {
		e.Daily = map[string]int64{}
	}
	for start < end {
		t := time.UnixMilli(start).UTC()
		next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC).UnixMilli()
		e.Daily[t.Format(time.DateOnly)] += min(end, next) - start
		start = next
	}
}

// MarkGone records that a cluster no longer exists: an ongoing run is
// closed at the last read that saw it (its true end was purged with it).
func (e *Entry) MarkGone(id string) {
	c := e.Cluster(id)
	if c.Gone {
		return
	}
	if c.RunningSince > 0 {
		end := max(e.ReadAt.UnixMilli(), c.RunningSince)
		c.close(Run{Start: c.RunningSince, End: end, Ended: EndPurged}, e.AddDay)
	}
	c.Gone = true
}

// AddGrant records a grant of hours.
func (e *Entry) AddGrant(g Grant) {
	e.GrantedHours += g.Hours
	e.Grants = append(e.Grants, g)
	if n := len(e.Grants); n > MaxGrants {
		e.Grants = slices.Clone(e.Grants[n-MaxGrants:])
	}
}

// AddAction records a budget action.
func (e *Entry) AddAction(a Action) {
	e.Actions = append(e.Actions, a)
	if n := len(e.Actions); n > MaxActions {
		e.Actions = slices.Clone(e.Actions[n-MaxActions:])
	}
	switch a.Kind {
	case ActionRestrict:
		e.Restricted = true
	case ActionRestore:
		e.Restricted = false
	}
}

// bound keeps the entry within its bounds: gone clusters past MaxClusters
// folded (oldest first), daily totals past MaxDays dropped (oldest first).
func (e *Entry) bound() {
	for len(e.Clusters) > MaxClusters {
		i := slices.IndexFunc(e.Clusters, func(c Cluster) bool { return c.Gone })
		if i < 0 {
			i = 0 // more live clusters than the bound: fold the oldest anyway
		}
		c := e.Clusters[i]
		e.Folded.ClosedMS += c.RunningMS(e.ReadAt.UnixMilli())
		e.Folded.SetupMS += c.SetupMS
		e.Folded.Starts += c.Starts
		e.Folded.LastRun = max(e.Folded.LastRun, c.LastRun)
		for k, n := range c.Ends {
			if e.Folded.Ends == nil {
				e.Folded.Ends = map[string]int{}
			}
			e.Folded.Ends[k] += n
		}
		e.Folded.Gone = true
		e.Clusters = slices.Delete(e.Clusters, i, i+1)
	}
	if len(e.Daily) > MaxDays {
		days := make([]string, 0, len(e.Daily))
		for d := range e.Daily {
			days = append(days, d)
		}
		slices.Sort(days)
		for _, d := range days[:len(days)-MaxDays] {
			delete(e.Daily, d)
		}
	}
}

// Totals is a participant's usage up to a moment.
type Totals struct {
	RunningMS int64
	Starts    int
	// LastRun is the end of the latest run, or the moment itself while one
	// runs; zero when they never ran.
	LastRun time.Time
	Running bool
	Ends    map[string]int
	// SetupMS is the run time of the clusters' creation runs (Cohort's).
	SetupMS int64
}

// Hours is the run time in hours.
func (t Totals) Hours() float64 { return float64(t.RunningMS) / float64(time.Hour.Milliseconds()) }

// Totals sums the entry's clusters up to now.
func (e *Entry) Totals(now time.Time) Totals {
	t := Totals{Ends: map[string]int{}}
	last := int64(0)
	for _, c := range append([]Cluster{e.Folded}, e.Clusters...) {
		t.RunningMS += c.RunningMS(now.UnixMilli())
		t.Starts += c.Starts
		last = max(last, c.LastRun)
		t.SetupMS += c.SetupMS
		if c.RunningSince > 0 && !c.InCreation {
			t.Running = true
			last = max(last, now.UnixMilli())
		}
		for k, n := range c.Ends {
			t.Ends[k] += n
		}
	}
	if last > 0 {
		t.LastRun = time.UnixMilli(last).UTC()
	}
	return t
}
