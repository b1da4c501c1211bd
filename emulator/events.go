package emulator

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Cluster event types the state machine emits (compute.EventType; the API has
// no TERMINATED event: a run ends at TERMINATING, and clusters/get's
// terminated_time says when the nodes were gone).
const (
	eventCreating      = "CREATING"
	eventStarting      = "STARTING"
	eventRunning       = "RUNNING"
	eventDriverHealthy = "DRIVER_HEALTHY"
	eventRestarting    = "RESTARTING"
	eventTerminating   = "TERMINATING"
	eventEdited        = "EDITED"
	eventPinned        = "PINNED"
	eventUnpinned      = "UNPINNED"
)

// eventTypes is every type POST clusters/events accepts in event_types (the
// SDK's EventType enum, v0.175.0); the emulator emits only the few above.
var eventTypes = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`ADD_NODES_FAILED AUTOMATIC_CLUSTER_UPDATE AUTOSCALING_BACKOFF
		AUTOSCALING_FAILED AUTOSCALING_STATS_REPORT CLUSTER_MIGRATED CREATING DBFS_DOWN DECOMMISSION_ENDED
		DECOMMISSION_STARTED DEFERRED_POLICY_ENFORCEMENT_FAILED DEFERRED_POLICY_ENFORCEMENT_SCHEDULED
		DID_NOT_EXPAND_DISK DRIVER_HEALTHY DRIVER_NOT_RESPONDING DRIVER_UNAVAILABLE EDITED EXPANDED_DISK
		FAILED_TO_EXPAND_DISK INIT_SCRIPTS_FINISHED INIT_SCRIPTS_STARTED METASTORE_DOWN NODES_LOST
		NODE_BLACKLISTED NODE_EXCLUDED_DECOMMISSIONED PINNED RESIZING RESTARTING RUNNING SPARK_EXCEPTION
		STARTING TERMINATING UC_VOLUME_MISCONFIGURED UNPINNED UPSIZE_COMPLETED`) {
		eventTypes[t] = true
	}
}

// clusterEvent is one entry of a cluster's event log, stored with the
// cluster, so a permanent delete or a purge takes the log with it and the
// journal keeps it with no record kind of its own.
type clusterEvent struct {
	Timestamp int64          `json:"timestamp"` // unix ms at which the transition happened
	Type      string         `json:"type"`
	Details   map[string]any `json:"details,omitempty"`
}

// DefaultEventRetention is how long cluster events are kept [Est]: the
// Clusters API docs promise events of terminated clusters "within 30 days".
const DefaultEventRetention = 720 * time.Hour

// Paging of clusters/events (docs/databricks-api.md §1.6).
const (
	defaultEventLimit = 50
	maxEventLimit     = 500
)

// recordEvent appends an event at unix ms at and drops the events past the
// retention. Callers hold s.mu; the caller's put journals it with the
// cluster (events appended by advance are not journalled: a reload replays
// the same transitions from the stored deadlines, so they come back).
func (s *Server) recordEvent(cl *cluster, at int64, typ string, details map[string]any) {
	cl.Events = append(cl.Events, clusterEvent{Timestamp: at, Type: typ, Details: details})
	if cut := s.eventCutoff(at); cut > 0 {
		i := 0
		for i < len(cl.Events) && cl.Events[i].Timestamp < cut {
			i++
		}
		cl.Events = cl.Events[i:]
	}
}

// eventCutoff is the oldest timestamp still kept at unix ms now (0: all).
func (s *Server) eventCutoff(now int64) int64 {
	if !on(s.opts.EventRetention) {
		return 0
	}
	return now - s.scaled(s.opts.EventRetention).Milliseconds()
}

// clusterSize is details.cluster_size: a fixed size or an autoscale range.
func clusterSize(spec map[string]any) map[string]any {
	if as, ok := spec["autoscale"].(map[string]any); ok {
		return map[string]any{"autoscale": as}
	}
	return map[string]any{"num_workers": intAttr(spec, "num_workers")}
}

// ---- auto-termination and the busy control ----

// becomeRunning moves a cluster to RUNNING at unix ms at (its start delay
// done, or the control API's keep-running) and schedules its
// auto-termination. Callers hold s.mu.
func (s *Server) becomeRunning(cl *cluster, at int64) {
	cl.State, cl.StateMessage = stateRunning, ""
	cl.LastRestartedTime = at
	cl.runStarted(at)
	s.scheduleIdle(cl, at)
	workers := intAttr(cl.Spec, "num_workers")
	s.recordEvent(cl, at, eventRunning, map[string]any{"current_num_workers": workers, "target_num_workers": workers})
	s.recordEvent(cl, at, eventDriverHealthy, nil)
}

// scheduleIdle sets a RUNNING cluster's auto-termination: autotermination_minutes
// after it became active or its busy period ends, whichever is later, as
// Databricks measures inactivity. A cluster kept running, or without
// auto-termination, gets no deadline. Callers hold s.mu.
func (s *Server) scheduleIdle(cl *cluster, activeFrom int64) {
	cl.NextState, cl.NextAt = "", 0
	m := intAttr(cl.Spec, "autotermination_minutes")
	if m <= 0 || cl.KeepRunning {
		return
	}
	cl.NextState = stateTerminating
	cl.NextAt = max(activeFrom, cl.BusyUntil) + s.scaled(time.Duration(m)*time.Minute).Milliseconds()
}

// markBusy is the control API's POST /clusters/busy: a participant works in a
// notebook on the cluster for d (before scaling) from now, so it is not
// auto-terminated before d + autotermination_minutes. A PENDING cluster
// counts its inactivity from whichever is later, RUNNING or the busy end.
// Repeating it extends (never shortens) the busy period; a terminate ends it.
// It answers the status and body to send.
func (s *Server) markBusy(id string, d time.Duration) (int, any) {
	if d <= 0 {
		return http.StatusBadRequest, apiError{ErrorCode: "MALFORMED_REQUEST",
			Message: fmt.Sprintf("want {\"cluster_id\": \"<id>\", \"duration\": \"90m\"} with a positive duration (got %v)", d)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	cl, status, out := s.controlCluster(id, now)
	if cl == nil {
		return status, out
	}
	if cl.State != statePending && cl.State != stateRunning {
		return http.StatusBadRequest, apiError{ErrorCode: "INVALID_STATE",
			Message: fmt.Sprintf("cluster %s is %s: start it first (clusters/start), then mark it busy", id, cl.State)}
	}
	cl.BusyUntil = max(cl.BusyUntil, now.UnixMilli()+s.scaled(d).Milliseconds())
	if cl.State == stateRunning {
		s.scheduleIdle(cl, cl.LastRestartedTime)
	}
	s.put(kindCluster, cl.ID, cl)
	return http.StatusOK, s.busyAnswer(cl)
}

// controlCluster finds a live cluster for the control API, or the 400 to
// answer. Callers hold s.mu.
func (s *Server) controlCluster(id string, now time.Time) (*cluster, int, any) {
	cl, ok := s.st.Clusters[id]
	if ok && s.expire(cl, now) {
		ok = false
	}
	if !ok {
		return nil, http.StatusBadRequest, apiError{ErrorCode: "INVALID_PARAMETER_VALUE",
			Message: fmt.Sprintf("want {\"cluster_id\": \"<id>\"} naming an existing cluster (got %q)", id)}
	}
	return cl, 0, nil
}

// busyAnswer is the control API's view of a cluster's activity: its state,
// the busy end and the auto-termination deadline (unix ms, 0: none yet).
func (s *Server) busyAnswer(cl *cluster) map[string]any {
	out := map[string]any{"cluster_id": cl.ID, "state": cl.State, "busy_until": cl.BusyUntil, "keep_running": cl.KeepRunning}
	if cl.NextState == stateTerminating {
		out["auto_terminates_at"] = cl.NextAt
	}
	return out
}

// ---- POST /api/2.x/clusters/events ----

// eventsRequest is compute.GetEvents.
type eventsRequest struct {
	ClusterID  string   `json:"cluster_id"`
	StartTime  int64    `json:"start_time"`
	EndTime    int64    `json:"end_time"`
	Order      string   `json:"order"`
	EventTypes []string `json:"event_types"`
	Offset     int64    `json:"offset"`
	Limit      int64    `json:"limit"`
	PageSize   int      `json:"page_size"`
	PageToken  string   `json:"page_token"`
}

// validate checks the request as Databricks documents it; it returns the
// message of a 400 INVALID_PARAMETER_VALUE, or "".
func (r *eventsRequest) validate() string {
	switch r.Order {
	case "", "ASC", "DESC":
	default:
		return fmt.Sprintf("Invalid order %q: must be ASC or DESC.", r.Order)
	}
	for _, t := range r.EventTypes {
		if !eventTypes[t] {
			return fmt.Sprintf("Invalid event type %s.", t)
		}
	}
	switch {
	case r.Limit < 0 || r.Limit > maxEventLimit:
		return fmt.Sprintf("limit must be between 0 and %d (is %d).", maxEventLimit, r.Limit)
	case r.Offset < 0:
		return fmt.Sprintf("offset must be non-negative (is %d).", r.Offset)
	case r.StartTime < 0 || r.EndTime < 0:
		return "start_time and end_time must be non-negative epoch milliseconds."
	case r.EndTime > 0 && r.StartTime > r.EndTime:
		return fmt.Sprintf("start_time %d is after end_time %d.", r.StartTime, r.EndTime)
	case r.Offset > 0 && r.Order != "ASC" && r.EndTime == 0:
		return "end_time is required when offset is set and the order is DESC."
	case (r.PageToken != "" || r.PageSize != 0) && (r.Offset > 0 || r.Limit > 0):
		return "page_token and page_size cannot be combined with offset or limit."
	}
	return ""
}

// clusterEvents answers POST clusters/events. Paging comes in two styles, as
// the API has both: offset/limit answered with next_page (the request for the
// next page, absent on the last) and total_count, which the SDK's
// Clusters.Events iterator follows; and page_size/page_token answered with
// next_page_token/prev_page_token.
func (s *Server) clusterEvents(c *call) {
	var req eventsRequest
	if !c.decode(&req) {
		return
	}
	if msg := req.validate(); msg != "" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", msg)
		return
	}
	tokenMode := req.PageToken != "" || req.PageSize != 0
	if req.PageToken != "" {
		off, end, ok := parseEventsToken(req.PageToken)
		if !ok {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid page_token %q.", req.PageToken))
			return
		}
		req.Offset, req.EndTime = off, end
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.lookupCluster(c, req.ClusterID)
	if !ok {
		return
	}
	if levelRank(cl.level(c.caller)) < levelRank(levelAttach) {
		c.fail(http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("User %s does not have permission to view the events of cluster %s.", c.caller.name, cl.ID))
		return
	}
	now := s.now().UnixMilli()
	if req.EndTime == 0 && (tokenMode || req.Order != "ASC") {
		// Freeze the window so that events recorded while a client pages do
		// not shift the offsets of a newest-first read.
		req.EndTime = now
	}
	matches := s.filterEvents(cl, &req, now)
	page := pageSize(req)
	from := min(int(req.Offset), len(matches))
	to := min(from+page, len(matches))
	out := make([]map[string]any, 0, to-from)
	for _, e := range matches[from:to] {
		ev := map[string]any{"cluster_id": cl.ID, "timestamp": e.Timestamp, "type": e.Type}
		if e.Details != nil {
			ev["details"] = e.Details
		}
		out = append(out, ev)
	}
	resp := map[string]any{"events": out}
	switch {
	case tokenMode:
		if to < len(matches) {
			resp["next_page_token"] = eventsToken(int64(to), req.EndTime)
		}
		if from > 0 {
			resp["prev_page_token"] = eventsToken(int64(max(0, from-page)), req.EndTime)
		}
	default:
		resp["total_count"] = len(matches)
		if to < len(matches) {
			next := map[string]any{"cluster_id": cl.ID, "offset": to, "limit": page}
			if req.Order != "" {
				next["order"] = req.Order
			}
			if req.StartTime > 0 {
				next["start_time"] = req.StartTime
			}
			if req.EndTime > 0 {
				next["end_time"] = req.EndTime
			}
			if len(req.EventTypes) > 0 {
				next["event_types"] = req.EventTypes
			}
			resp["next_page"] = next
		}
	}
	c.ok(resp)
}

// filterEvents returns a cluster's retained events within the request's
// window and types, in the requested order (oldest first for ASC).
func (s *Server) filterEvents(cl *cluster, req *eventsRequest, now int64) []clusterEvent {
	types := map[string]bool{}
	for _, t := range req.EventTypes {
		types[t] = true
	}
	cut := s.eventCutoff(now)
	var out []clusterEvent
	for _, e := range cl.Events {
		if e.Timestamp < cut || e.Timestamp < req.StartTime || (req.EndTime > 0 && e.Timestamp > req.EndTime) {
			continue
		}
		if len(types) > 0 && !types[e.Type] {
			continue
		}
		out = append(out, e)
	}
	// Events are appended in transition order; a stable sort keeps events
	// of one instant (RUNNING, DRIVER_HEALTHY) in the order they happened.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp < out[j].Timestamp })
	if req.Order != "ASC" {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// pageSize is the events per page: limit (default 50), or page_size clamped
// into [0,500] as documented (0: the server's choice, 50).
func pageSize(req eventsRequest) int {
	if req.Limit > 0 {
		return int(req.Limit)
	}
	if req.PageSize > 0 {
		return min(req.PageSize, maxEventLimit)
	}
	return defaultEventLimit
}

func eventsToken(offset, end int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("ev:" + strconv.FormatInt(offset, 10) + ":" + strconv.FormatInt(end, 10)))
}

func parseEventsToken(tok string) (offset, end int64, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, 0, false
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 || parts[0] != "ev" {
		return 0, 0, false
	}
	offset, err1 := strconv.ParseInt(parts[1], 10, 64)
	end, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || offset < 0 || end < 0 {
		return 0, 0, false
	}
	return offset, end, true
}
