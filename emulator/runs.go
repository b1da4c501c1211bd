package emulator

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// runTotals is the emulator's own account of how long a cluster ran: a
// ground truth for tests of a usage read, kept apart from the event log so
// that neither the event retention nor a purge loses it. It is stored with
// the cluster (so a reload replays it with the cluster's transitions) and,
// once the cluster is gone, in state.Gone.
type runTotals struct {
	// Runs counts the times the cluster reached RUNNING.
	Runs int `json:"runs"`
	// RanMs is the clock time spent RUNNING in closed runs; a run ends at
	// TERMINATING, at the RESTARTING of an edit or when the cluster goes.
	RanMs int64 `json:"ran_ms"`
	// RunningSince is when the open run started (0: not RUNNING).
	RunningSince int64 `json:"running_since,omitempty"`
	// LastRunningAt is when the last run started (0: never ran).
	LastRunningAt int64 `json:"last_running_at,omitempty"`
	// The cluster's name and single user, and when it went (purge or
	// permanent delete), filled in for a cluster that is gone.
	ClusterName    string `json:"cluster_name,omitempty"`
	SingleUserName string `json:"single_user_name,omitempty"`
	GoneAt         int64  `json:"gone_at,omitempty"`
}

// runStarted opens a run at unix ms at. Callers hold s.mu.
func (cl *cluster) runStarted(at int64) {
	cl.Runs.Runs++
	cl.Runs.RunningSince, cl.Runs.LastRunningAt = at, at
}

// runEnded closes the open run, if any, at unix ms at. Callers hold s.mu.
func (cl *cluster) runEnded(at int64) {
	if cl.Runs.RunningSince == 0 {
		return
	}
	cl.Runs.RanMs += max(0, at-cl.Runs.RunningSince)
	cl.Runs.RunningSince = 0
}

// forgetCluster removes a cluster (purge or permanent delete at unix ms at)
// and keeps its run totals. Callers hold s.mu.
func (s *Server) forgetCluster(cl *cluster, at int64) {
	cl.runEnded(at)
	t := cl.Runs
	t.ClusterName, t.SingleUserName = fmt.Sprint(cl.Spec["cluster_name"]), singleUser(cl)
	t.GoneAt = at
	delete(s.st.Clusters, cl.ID)
	s.del(kindCluster, cl.ID)
	s.st.Gone[cl.ID] = &t
	s.put(kindGone, cl.ID, &t)
}

func singleUser(cl *cluster) string {
	if u, ok := cl.Spec["single_user_name"].(string); ok {
		return u
	}
	return ""
}

// clusterRuns is the control API's GET /clusters/runs: every cluster's run
// totals, those of purged and permanently deleted ones included, with the
// time run in emulated seconds (clock time times the time scale; an open run
// counts up to now).
func (s *Server) clusterRuns() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.purgeClusters(now)
	ms := now.UnixMilli()
	out := []map[string]any{}
	row := func(id, state string, t runTotals) {
		ran := t.RanMs
		if t.RunningSince != 0 {
			ran += max(0, ms-t.RunningSince)
		}
		r := map[string]any{"cluster_id": id, "state": state, "cluster_name": t.ClusterName, "runs": t.Runs,
			"ran_seconds": float64(ran) * s.opts.TimeScale / 1000, "last_running_at": t.LastRunningAt}
		if t.SingleUserName != "" {
			r["single_user_name"] = t.SingleUserName
		}
		if t.GoneAt != 0 {
			r["gone_at"] = t.GoneAt
		}
		out = append(out, r)
	}
	for _, id := range slices.Sorted(maps.Keys(s.st.Clusters)) {
		cl := s.st.Clusters[id]
		t := cl.Runs
		t.ClusterName, t.SingleUserName = fmt.Sprint(cl.Spec["cluster_name"]), singleUser(cl)
		row(id, cl.State, t)
	}
	for _, id := range slices.Sorted(maps.Keys(s.st.Gone)) {
		row(id, "GONE", *s.st.Gone[id])
	}
	sort.SliceStable(out, func(i, j int) bool { return fmt.Sprint(out[i]["cluster_name"]) < fmt.Sprint(out[j]["cluster_name"]) })
	return map[string]any{"time_scale": s.opts.TimeScale, "clusters": out}
}
