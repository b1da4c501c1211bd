package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cluster states.
const (
	statePending     = "PENDING"
	stateRunning     = "RUNNING"
	stateTerminating = "TERMINATING"
	stateTerminated  = "TERMINATED"
)

// Permission levels on clusters, weakest first.
const (
	levelAttach  = "CAN_ATTACH_TO"
	levelRestart = "CAN_RESTART"
	levelManage  = "CAN_MANAGE"
)

// cluster is an all-purpose cluster. Transitions are stored as absolute deadlines,
// so the state at any instant follows from the record alone (also after a restart).
type cluster struct {
	ID                string            `json:"cluster_id"`
	Spec              map[string]any    `json:"spec"`
	Request           map[string]any    `json:"request"`
	State             string            `json:"state"`
	StateMessage      string            `json:"state_message"`
	NextState         string            `json:"next_state,omitempty"`
	NextAt            int64             `json:"next_at,omitempty"` // unix ms
	StartTime         int64             `json:"start_time"`
	TerminatedTime    int64             `json:"terminated_time,omitempty"`
	LastRestartedTime int64             `json:"last_restarted_time,omitempty"`
	TerminationReason map[string]any    `json:"termination_reason,omitempty"`
	StartDelayMs      int64             `json:"start_delay_ms"`
	StopDelayMs       int64             `json:"stop_delay_ms"`
	IdempotencyToken  string            `json:"idempotency_token,omitempty"`
	Creator           string            `json:"creator"`
	ACL               map[string]string `json:"acl"` // "user_name:x" -> level
	Pinned            bool              `json:"pinned,omitempty"`
	UnpinnedAt        int64             `json:"unpinned_at,omitempty"` // unix ms of the last unpin
	// KeepRunning is set by the control API (POST /emulator/v1/clusters/keep-running):
	// the cluster is in use for good, so it is not auto-terminated while
	// RUNNING; BusyUntil (POST /emulator/v1/clusters/busy, unix ms) is the
	// end of a busy period, from which inactivity counts. A terminate clears
	// both (events.go).
	KeepRunning bool           `json:"keep_running,omitempty"`
	BusyUntil   int64          `json:"busy_until,omitempty"`
	Events      []clusterEvent `json:"events,omitempty"` // the event log, oldest first (events.go)
	Runs        runTotals      `json:"runs"`             // how long it ran (runs.go)
	Seq         int64          `json:"seq"`
}

// purgeAt is when a terminated, unpinned cluster is permanently deleted (0:
// never): the retention after its termination or its last unpin, whichever
// is later.
func (s *Server) purgeAt(cl *cluster) int64 {
	if cl.State != stateTerminated || cl.Pinned || !on(s.opts.ClusterRetention) {
		return 0
	}
	return max(cl.TerminatedTime, cl.UnpinnedAt) + s.scaled(s.opts.ClusterRetention).Milliseconds()
}

// expire advances a cluster and purges it when its retention has run out; it
// reports whether the cluster is gone. Callers hold s.mu.
func (s *Server) expire(cl *cluster, now time.Time) bool {
	s.advance(cl, now)
	at := s.purgeAt(cl)
	if at == 0 || now.UnixMilli() < at {
		return false
	}
	s.forgetCluster(cl, at)
	s.st.Purged[cl.ID] = at
	s.put(kindPurged, cl.ID, at)
	return true
}

// purgeClusters advances every cluster and purges the expired ones. Callers
// hold s.mu.
func (s *Server) purgeClusters(now time.Time) {
	for _, cl := range s.st.Clusters {
		s.expire(cl, now)
	}
}

func aclKey(kind, name string) string { return kind + ":" + name }

// advance moves the cluster through its timed transitions up to now.
func (s *Server) advance(cl *cluster, now time.Time) {
	ms := now.UnixMilli()
	for cl.NextAt != 0 && ms >= cl.NextAt {
		at := cl.NextAt
		switch cl.NextState {
		case stateRunning:
			s.becomeRunning(cl, at)
		case stateTerminating: // auto-termination after inactivity
			cl.State = stateTerminating
			cl.StateMessage = fmt.Sprintf("Inactive cluster terminated (inactive for %d minutes).", intAttr(cl.Spec, "autotermination_minutes"))
			cl.TerminationReason = map[string]any{"code": "INACTIVITY", "type": "SUCCESS",
				"parameters": map[string]string{"inactivity_duration_min": strconv.Itoa(intAttr(cl.Spec, "autotermination_minutes"))}}
			cl.NextState, cl.NextAt = stateTerminated, at+cl.StopDelayMs
			cl.BusyUntil = 0
			cl.runEnded(at)
			s.recordEvent(cl, at, eventTerminating, map[string]any{"reason": cl.TerminationReason})
		case stateTerminated:
			cl.State, cl.TerminatedTime = stateTerminated, at
			cl.NextState, cl.NextAt = "", 0
		default:
			cl.NextAt = 0
		}
	}
}

func intAttr(m map[string]any, k string) int {
	switch v := m[k].(type) {
	case json.Number:
		n, _ := v.Float64()
		return int(n)
	case float64:
		return int(v)
	case int:
		return v
	}
	return 0
}

// render answers a cluster as clusters/get does. Callers have advanced it
// (lookupCluster, listClusters).
func (s *Server) render(cl *cluster) map[string]any {
	out := map[string]any{}
	for k, v := range cl.Spec {
		out[k] = v
	}
	out["cluster_id"] = cl.ID
	out["state"] = cl.State
	out["state_message"] = cl.StateMessage
	out["start_time"] = cl.StartTime
	out["creator_user_name"] = cl.Creator
	out["cluster_source"] = "API"
	out["enable_elastic_disk"] = true
	out["disk_spec"] = map[string]any{}
	out["spec"] = cl.Request
	tags := map[string]string{
		"Vendor":      "Databricks",
		"Creator":     cl.Creator,
		"ClusterName": fmt.Sprint(cl.Spec["cluster_name"]),
		"ClusterId":   cl.ID,
	}
	out["default_tags"] = tags
	if nt, ok := findNodeType(fmt.Sprint(cl.Spec["driver_node_type_id"])); ok {
		workers := intAttr(cl.Spec, "num_workers")
		out["cluster_memory_mb"] = nt.MemoryMB * (1 + workers)
		out["cluster_cores"] = nt.Cores * float64(1+workers)
	}
	if cl.TerminatedTime != 0 {
		out["terminated_time"] = cl.TerminatedTime
	}
	if cl.LastRestartedTime != 0 {
		out["last_restarted_time"] = cl.LastRestartedTime
	}
	if cl.TerminationReason != nil {
		out["termination_reason"] = cl.TerminationReason
	}
	if cl.State == stateRunning {
		out["driver"] = map[string]any{"node_id": cl.ID + "-driver", "private_ip": "10.139.64.4", "start_timestamp": cl.LastRestartedTime}
		out["spark_context_id"] = cl.Seq
		out["jdbc_port"] = 10000
	}
	return out
}

// newClusterID returns an unused id like 0301-123456-abcd1234. Callers hold s.mu.
func (s *Server) newClusterID(now time.Time) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for {
		var b [8]byte
		for i := range b {
			b[i] = alphabet[s.rng.IntN(len(alphabet))]
		}
		id := now.UTC().Format("0102-150405") + "-" + string(b[:])
		if _, ok := s.st.Clusters[id]; !ok {
			return id
		}
	}
}

// clusterTiming is the cluster transition delays in ms at time scale 1: the
// configured ones, else the realistic ranges (docs/databricks-api.md §3.2), else
// quick fixed ones. The delays drawn and GET /emulator/v1/config both read it.
func (s *Server) clusterTiming() ClusterTiming {
	t := ClusterTiming{StartMinMS: 300, StartTypicalMS: 300, StartMaxMS: 300, StopMinMS: 200, StopTypicalMS: 200, StopMaxMS: 200}
	if s.opts.Latency == "realistic" {
		t = ClusterTiming{StartMinMS: 3 * 60000, StartTypicalMS: 5 * 60000, StartMaxMS: 8 * 60000,
			StopMinMS: 30000, StopTypicalMS: 60000, StopMaxMS: 180000}
	}
	if d := s.opts.ClusterStartDelay; d > 0 {
		v := float64(d) / float64(time.Millisecond)
		t.StartMinMS, t.StartTypicalMS, t.StartMaxMS = v, v, v
	}
	if d := s.opts.ClusterStopDelay; d > 0 {
		v := float64(d) / float64(time.Millisecond)
		t.StopMinMS, t.StopTypicalMS, t.StopMaxMS = v, v, v
	}
	return t
}

// startDelay is PENDING -> RUNNING (scaled). Callers hold s.mu.
func (s *Server) startDelay() time.Duration {
	t := s.clusterTiming()
	return s.drawDelay(t.StartMinMS, t.StartTypicalMS, t.StartMaxMS)
}

// stopDelay is TERMINATING -> TERMINATED (scaled). Callers hold s.mu.
func (s *Server) stopDelay() time.Duration {
	t := s.clusterTiming()
	return s.drawDelay(t.StopMinMS, t.StopTypicalMS, t.StopMaxMS)
}

// drawDelay draws a delay from a min/typical/max range in ms (a fixed one
// when the range is a point) and scales it. Callers hold s.mu.
func (s *Server) drawDelay(minMS, typicalMS, maxMS float64) time.Duration {
	ms := minMS
	if maxMS > minMS {
		ms = Triangular(s.rng.Float64(), minMS, typicalMS, maxMS)
	}
	return s.scaled(time.Duration(ms * float64(time.Millisecond)))
}

// lookupCluster finds a cluster by id, answering the real error for unknown ids.
// Callers hold s.mu.
func (s *Server) lookupCluster(c *call, id string) (*cluster, bool) {
	if id == "" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: cluster_id")
		return nil, false
	}
	cl, ok := s.st.Clusters[id]
	if ok && s.expire(cl, s.now()) {
		ok = false
	}
	if !ok {
		if _, purged := s.st.Purged[id]; purged {
			ago := s.opts.ClusterRetention.String()
			if d := int(s.opts.ClusterRetention.Hours() / 24); d >= 1 && s.opts.ClusterRetention%(24*time.Hour) == 0 {
				ago = fmt.Sprintf("%d days", d)
			}
			c.fail(http.StatusBadRequest, "INVALID_STATE", fmt.Sprintf("Cannot access cluster %s that was terminated or unpinned more than %s ago.", id, ago))
			return nil, false
		}
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Cluster %s does not exist", id))
		return nil, false
	}
	return cl, true
}
func (s *Server) clusterIDFromBody(c *call) (string, bool) {
	var req struct {
		ClusterID string `json:"cluster_id"`
	}
	if !c.decode(&req) {
		return "", false
	}
	return req.ClusterID, true
}

func (s *Server) getCluster(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.lookupCluster(c, c.query("cluster_id"))
	if !ok {
		return
	}
	c.ok(s.render(cl))
}

func (s *Server) terminateCluster(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.restartableCluster(c)
	if !ok {
		return
	}
	if cl.State == stateTerminating || cl.State == stateTerminated {
		c.ok(map[string]any{})
		return
	}
	now := s.now().UnixMilli()
	cl.runEnded(now)
	cl.KeepRunning, cl.BusyUntil = false, 0
	cl.State = stateTerminating
	cl.StateMessage = "Terminating the cluster"
	cl.TerminationReason = map[string]any{"code": "USER_REQUEST", "type": "SUCCESS", "parameters": map[string]string{"username": c.caller.name}}
	cl.StopDelayMs = s.stopDelay().Milliseconds()
	cl.NextState, cl.NextAt = stateTerminated, now+cl.StopDelayMs
	s.recordEvent(cl, now, eventTerminating, map[string]any{"reason": cl.TerminationReason, "user": c.caller.name})
	s.put(kindCluster, cl.ID, cl)
	c.ok(map[string]any{})
}

// restartableCluster finds the cluster named in the request body and checks
// that the caller may start or terminate it (CAN_RESTART or CAN_MANAGE); it
// answers the call itself when not. s.mu must be held.
func (s *Server) restartableCluster(c *call) (*cluster, bool) {
	id, ok := s.clusterIDFromBody(c)
	if !ok {
		return nil, false
	}
	cl, ok := s.lookupCluster(c, id)
	if !ok {
		return nil, false
	}
	if levelRank(cl.level(c.caller)) < levelRank(levelRestart) {
		c.fail(http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("User %s does not have Restart or Manage permission on cluster %s.", c.caller.name, id))
		return nil, false
	}
	return cl, true
}

func (s *Server) startCluster(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.restartableCluster(c)
	if !ok {
		return
	}
	id := cl.ID
	if cl.State != stateTerminated {
		c.fail(http.StatusBadRequest, "INVALID_STATE", fmt.Sprintf("Cluster %s is in unexpected state %s.", id, titleCase(cl.State)))
		return
	}
	now := s.now().UnixMilli()
	cl.State = statePending
	cl.StateMessage = "Starting Spark"
	cl.TerminationReason = nil
	cl.TerminatedTime = 0
	cl.StartDelayMs = s.startDelay().Milliseconds()
	cl.NextState, cl.NextAt = stateRunning, now+cl.StartDelayMs
	s.recordEvent(cl, now, eventStarting, map[string]any{"user": c.caller.name, "cluster_size": clusterSize(cl.Spec)})
	s.put(kindCluster, cl.ID, cl)
	c.ok(map[string]any{})
}

// keepRunning is the control API's POST /clusters/keep-running: a cluster
// that is starting (PENDING, e.g. right after clusters/start) reaches RUNNING
// now instead of after its start delay, and a RUNNING one loses its
// auto-termination deadline; either then stays RUNNING until someone
// terminates it, as a cluster with a notebook in use does (a busy period
// that never ends; POST /clusters/busy is the one that ends, events.go). A benchmark or
// test can so have a participant "running their cluster" at once (the start
// takes 3-8 minutes otherwise) and for as long as it needs. A stopped or
// stopping cluster is refused: start it first. It answers the status and
// body to send.
func (s *Server) keepRunning(id string) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	cl, ok := s.st.Clusters[id]
	if ok && s.expire(cl, now) {
		ok = false
	}
	if !ok {
		return http.StatusBadRequest, apiError{ErrorCode: "INVALID_PARAMETER_VALUE",
			Message: fmt.Sprintf("want {\"cluster_id\": \"<id>\"} naming an existing cluster (got %q)", id)}
	}
	cl.KeepRunning = true
	switch cl.State {
	case statePending:
		s.becomeRunning(cl, now.UnixMilli())
	case stateRunning:
		s.scheduleIdle(cl, cl.LastRestartedTime)
	default:
		cl.KeepRunning = false
		return http.StatusBadRequest, apiError{ErrorCode: "INVALID_STATE",
			Message: fmt.Sprintf("cluster %s is %s: start it first (clusters/start), then keep it running", id, cl.State)}
	}
	s.put(kindCluster, cl.ID, cl)
	return http.StatusOK, map[string]any{"cluster_id": cl.ID, "state": cl.State}
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return s[:1] + strings.ToLower(s[1:])
}

func (s *Server) permanentDeleteCluster(c *call) {
	id, ok := s.clusterIDFromBody(c)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.lookupCluster(c, id)
	if !ok {
		return
	}
	if cl.Pinned {
		c.fail(http.StatusBadRequest, "INVALID_STATE", fmt.Sprintf("Cannot delete pinned cluster %s. Unpin it first.", id))
		return
	}
	s.forgetCluster(cl, s.now().UnixMilli())
	c.ok(map[string]any{})
}
