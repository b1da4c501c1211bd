// Package usage is what Cohort knows of how much each participant used
// their cluster: the running intervals read from the Clusters API's event
// log, folded into a ledger that keeps the totals after Databricks forgets
// the events (their retention, a purged cluster), an estimate of DBUs and
// cost from the node type, and the budget's verdict. It holds no SDK and no
// Temporal: the activities feed it events and store what it returns.
package usage

import "cmp"

// Event types of the Clusters API's event log that a run's start and end
// are read from (compute.EventType's values).
const (
	EventCreating    = "CREATING"
	EventRunning     = "RUNNING"
	EventTerminating = "TERMINATING"
	EventTerminated  = "TERMINATED"
)

// How a run ended, as the ledger counts it. The termination reason's code
// is kept as Databricks gives it (INACTIVITY, USER_REQUEST, ...), except a
// termination Cohort's budget made, which is EndBudget.
const (
	EndInactivity = "INACTIVITY"
	EndUser       = "USER_REQUEST"
	EndBudget     = "budget"
	EndUnknown    = "unknown"
	// EndPurged: the cluster was purged (or deleted) before its run's end
	// was read; the run is closed at the last read that saw it.
	EndPurged = "purged"
)

// Event is one entry of a cluster's event log, as usage needs it.
type Event struct {
	ClusterID string `json:"cluster_id"`
	// Time is when it happened, in milliseconds since the Unix epoch.
	Time int64  `json:"time"`
	Type string `json:"type"`
	// Reason is the termination reason's code of a TERMINATING or
	// TERMINATED event ("" otherwise).
	Reason string `json:"reason,omitempty"`
}

// key identifies an event among those of the same millisecond.
func (e Event) key() string { return e.Type + "/" + e.Reason }

// eventOrder sorts events by time, then so that of one millisecond a
// creation comes first and a start before an end (a run of zero length,
// not a lost end).
func eventOrder(a, b Event) int {
	rank := func(t string) int {
		switch t {
		case EventCreating:
			return -1
		case EventRunning:
			return 0
		case EventTerminating:
			return 1
		case EventTerminated:
			return 2
		}
		return 3
	}
	return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(rank(a.Type), rank(b.Type)), cmp.Compare(a.Reason, b.Reason))
}

// Run is one running interval of a cluster: from a RUNNING event to the
// next TERMINATING or TERMINATED one.
type Run struct {
	Start int64 `json:"start"`
	// End is 0 while the cluster still runs.
	End   int64  `json:"end,omitempty"`
	Ended string `json:"ended,omitempty"`
}

// Runs is the running intervals of one cluster's events, in any order and
// with duplicates (pages read twice, an out-of-order page): sorted and
// de-duplicated first. A RUNNING event while running (a restart, a resize)
// continues the run; an end without a start ends nothing; a RUNNING with no
// end after it is a run still going (End 0).
func Runs(events []Event) []Run {
	var c Cluster
	return c.Apply(events, nil, nil)
}
