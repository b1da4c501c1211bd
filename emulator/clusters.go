package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
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

// ---- policy enforcement ----

var mapAttrPrefixes = []string{"spark_conf.", "custom_tags.", "spark_env_vars.", "azure_attributes.", "autoscale.", "workload_type."}

func getAttr(m map[string]any, path string) (any, bool) {
	if path == "cluster_type" {
		return "all-purpose", true
	}
	for _, p := range mapAttrPrefixes {
		if rest, ok := strings.CutPrefix(path, p); ok {
			sub, _ := m[strings.TrimSuffix(p, ".")].(map[string]any)
			v, ok := sub[rest]
			return v, ok && v != nil
		}
	}
	v, ok := m[path]
	return v, ok && v != nil
}

func setAttr(m map[string]any, path string, v any) {
	if path == "cluster_type" {
		return
	}
	for _, p := range mapAttrPrefixes {
		if rest, ok := strings.CutPrefix(path, p); ok {
			name := strings.TrimSuffix(p, ".")
			sub, _ := m[name].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
				m[name] = sub
			}
			sub[rest] = v
			return
		}
	}
	m[path] = v
}

// canon renders a JSON value for comparison (numbers normalised).
func canon(v any) string {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func toFloat(v any) (float64, bool) {
	f, err := strconv.ParseFloat(canon(v), 64)
	return f, err == nil
}

type policyRule struct {
	Type         string   `json:"type"`
	Value        any      `json:"value"`
	Values       []any    `json:"values"`
	DefaultValue any      `json:"defaultValue"`
	MinValue     *float64 `json:"minValue"`
	MaxValue     *float64 `json:"maxValue"`
	Pattern      string   `json:"pattern"`
	Hidden       bool     `json:"hidden"`
	IsOptional   bool     `json:"isOptional"`
}

func parseDefinition(def string) (map[string]policyRule, error) {
	dec := json.NewDecoder(strings.NewReader(def))
	dec.UseNumber()
	var rules map[string]policyRule
	if err := dec.Decode(&rules); err != nil {
		return nil, err
	}
	return rules, nil
}

// applyPolicy enforces a policy definition on a create request in place. It
// returns the first violation, worded like the real service.
func applyPolicy(req map[string]any, def string, applyDefaults bool) error {
	rules, err := parseDefinition(def)
	if err != nil {
		return fmt.Errorf("Requests for the policy cannot be satisfied due to the malformed policy definition: %v", err)
	}
	for _, path := range sortedKeys(rules) {
		r := rules[path]
		v, present := getAttr(req, path)
		useDefault := func() {
			if !present && r.DefaultValue != nil && applyDefaults {
				setAttr(req, path, r.DefaultValue)
				v, present = r.DefaultValue, true
			}
		}
		switch r.Type {
		case "fixed":
			if !present {
				setAttr(req, path, r.Value)
				continue
			}
			if canon(v) != canon(r.Value) {
				return fmt.Errorf("Validation failed for %s, the value must be %s (is %s)", path, canon(r.Value), canon(v))
			}
			continue
		case "forbidden":
			if present {
				return fmt.Errorf("Validation failed for %s, the value must not be present", path)
			}
			continue
		case "unlimited":
			useDefault()
			continue
		case "allowlist", "blocklist", "range", "regex":
			useDefault()
			if !present {
				if r.IsOptional {
					continue
				}
				return fmt.Errorf("Validation failed for %s, the value must be present", path)
			}
		default:
			return fmt.Errorf("Requests for the policy cannot be satisfied due to the malformed policy definition: unknown type %q for %s", r.Type, path)
		}
		switch r.Type {
		case "allowlist", "blocklist":
			found := false
			var vals []string
			for _, a := range r.Values {
				vals = append(vals, canon(a))
				if canon(a) == canon(v) {
					found = true
				}
			}
			if r.Type == "allowlist" && !found {
				return fmt.Errorf("Validation failed for %s, the value must be one of [%s] (is %s)", path, strings.Join(vals, ", "), canon(v))
			}
			if r.Type == "blocklist" && found {
				return fmt.Errorf("Validation failed for %s, the value must not be one of [%s] (is %s)", path, strings.Join(vals, ", "), canon(v))
			}
		case "range":
			f, ok := toFloat(v)
			if !ok || (r.MinValue != nil && f < *r.MinValue) || (r.MaxValue != nil && f > *r.MaxValue) {
				return fmt.Errorf("Validation failed for %s, the value must be within the range allowed by the policy (is %s)", path, canon(v))
			}
		case "regex":
			re, err := regexp.Compile("^(?:" + r.Pattern + ")$")
			if err != nil {
				return fmt.Errorf("Requests for the policy cannot be satisfied due to the malformed policy definition: bad pattern for %s", path)
			}
			if !re.MatchString(canon(v)) {
				return fmt.Errorf("Validation failed for %s, the value must match the regular expression %s (is %s)", path, r.Pattern, canon(v))
			}
		}
	}
	return nil
}

// ---- handlers ----

// createClusterReq type-checks the fields the emulator interprets.
type createClusterReq struct {
	ClusterName            string            `json:"cluster_name"`
	SparkVersion           string            `json:"spark_version"`
	NodeTypeID             string            `json:"node_type_id"`
	DriverNodeTypeID       string            `json:"driver_node_type_id"`
	NumWorkers             *int              `json:"num_workers"`
	Autoscale              *autoscale        `json:"autoscale"`
	AutoterminationMinutes *int              `json:"autotermination_minutes"`
	DataSecurityMode       string            `json:"data_security_mode"`
	SingleUserName         string            `json:"single_user_name"`
	PolicyID               string            `json:"policy_id"`
	ApplyPolicyDefaults    bool              `json:"apply_policy_default_values"`
	SparkConf              map[string]string `json:"spark_conf"`
	CustomTags             map[string]string `json:"custom_tags"`
	SparkEnvVars           map[string]string `json:"spark_env_vars"`
	IdempotencyToken       string            `json:"idempotency_token"`
	InstancePoolID         string            `json:"instance_pool_id"`
}

type autoscale struct {
	MinWorkers int `json:"min_workers"`
	MaxWorkers int `json:"max_workers"`
}

var dataSecurityModes = map[string]bool{
	"NONE": true, "SINGLE_USER": true, "USER_ISOLATION": true, "LEGACY_TABLE_ACL": true, "LEGACY_PASSTHROUGH": true,
	"LEGACY_SINGLE_USER": true, "LEGACY_SINGLE_USER_STANDARD": true, "DATA_SECURITY_MODE_AUTO": true,
	"DATA_SECURITY_MODE_STANDARD": true, "DATA_SECURITY_MODE_DEDICATED": true,
}

// clusterSpec validates a create or edit body and returns the spec to store
// (policy applied) and the request as sent. It answers errors itself.
// Callers hold s.mu.
func (s *Server) clusterSpec(c *call, req map[string]any) (spec, original map[string]any, typed createClusterReq, ok bool) {
	if req == nil {
		c.fail(http.StatusBadRequest, "MALFORMED_REQUEST", "Could not parse request object: expected a JSON object")
		return nil, nil, typed, false
	}
	original = map[string]any{}
	for k, v := range req {
		if k != "idempotency_token" && k != "cluster_id" {
			original[k] = v
		}
	}
	if err := remarshal(req, &typed); err != nil {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid cluster spec: "+err.Error())
		return nil, nil, typed, false
	}
	if len(typed.IdempotencyToken) > 64 {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("idempotency_token must be at most 64 characters (is %d).", len(typed.IdempotencyToken)))
		return nil, nil, typed, false
	}
	delete(req, "idempotency_token")
	delete(req, "apply_policy_default_values")
	delete(req, "cluster_id")
	if typed.PolicyID != "" {
		if typed.PolicyID != personalComputePolicyID {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Cluster policy %s does not exist.", typed.PolicyID))
			return nil, nil, typed, false
		}
		if err := applyPolicy(req, s.policyDef, typed.ApplyPolicyDefaults); err != nil {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", err.Error())
			return nil, nil, typed, false
		}
		if err := remarshal(req, &typed); err != nil {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid cluster spec: "+err.Error())
			return nil, nil, typed, false
		}
	}
	if typed.SparkVersion == "auto:latest-ml" {
		typed.SparkVersion = latestMLVersion
		req["spark_version"] = latestMLVersion
	}
	if msg := validateClusterSpec(&typed); msg != "" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", msg)
		return nil, nil, typed, false
	}
	if typed.DriverNodeTypeID == "" && typed.NodeTypeID != "" {
		req["driver_node_type_id"] = typed.NodeTypeID
	}
	if typed.NumWorkers == nil && typed.Autoscale == nil {
		req["num_workers"] = 0
	}
	if typed.NumWorkers != nil && *typed.NumWorkers == 0 && typed.SparkConf["spark.databricks.cluster.profile"] == "singleNode" {
		req["is_single_node"] = true
	}
	dsm := typed.DataSecurityMode
	if dsm == "SINGLE_USER" || dsm == "DATA_SECURITY_MODE_DEDICATED" || dsm == "LEGACY_SINGLE_USER" || dsm == "LEGACY_SINGLE_USER_STANDARD" {
		if typed.SingleUserName == "" {
			req["single_user_name"] = c.caller.name
		}
	}
	if typed.SingleUserName != "" {
		name := typed.SingleUserName
		if strings.EqualFold(name, AdminUserName) {
			req["single_user_name"] = AdminUserName
		} else if u, ok := s.workspaceUser(name); ok && u.Active {
			req["single_user_name"] = u.UserName
		} else {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid single_user_name %s: Principal: UserName(%s) does not exist in the workspace.", name, name))
			return nil, nil, typed, false
		}
	}
	return req, original, typed, true
}

func (s *Server) createCluster(c *call) {
	var req map[string]any
	if !c.decode(&req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	spec, original, typed, ok := s.clusterSpec(c, req)
	if !ok {
		return
	}
	s.purgeClusters(now)
	if typed.IdempotencyToken != "" {
		for _, cl := range s.st.Clusters {
			if cl.IdempotencyToken == typed.IdempotencyToken && cl.State != stateTerminated && cl.State != stateTerminating {
				c.ok(map[string]any{"cluster_id": cl.ID})
				return
			}
		}
	}
	if max := s.opts.MaxClustersPerUser; on(max) && typed.PolicyID != "" {
		n := 0
		for _, cl := range s.st.Clusters {
			if cl.Creator == c.caller.name && fmt.Sprint(cl.Spec["policy_id"]) == typed.PolicyID {
				n++
			}
		}
		if n >= max {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Cannot create cluster: policy %s (%s) allows at most %d clusters per user (max_clusters_per_user) and %s already has %d.", personalComputeName, typed.PolicyID, max, c.caller.name, n))
			return
		}
	}
	cl := &cluster{
		ID:               s.newClusterID(now),
		Spec:             spec,
		Request:          original,
		State:            statePending,
		StateMessage:     "Finding instances for new nodes, acquiring more instances if necessary",
		StartTime:        now.UnixMilli(),
		StartDelayMs:     s.startDelay().Milliseconds(),
		StopDelayMs:      s.stopDelay().Milliseconds(),
		IdempotencyToken: typed.IdempotencyToken,
		Creator:          c.caller.name,
		ACL:              map[string]string{aclKey("user_name", c.caller.name): levelManage},
		Seq:              s.st.nextSeq(),
	}
	cl.NextState, cl.NextAt = stateRunning, cl.StartTime+cl.StartDelayMs
	s.recordEvent(cl, cl.StartTime, eventCreating, map[string]any{"user": c.caller.name, "attributes": original, "cluster_size": clusterSize(spec)})
	s.st.Clusters[cl.ID] = cl
	s.put(kindCluster, cl.ID, cl)
	c.ok(map[string]any{"cluster_id": cl.ID})
}

// editCluster replaces a cluster's spec (the policy enforced as on create). A
// RUNNING cluster restarts with it; a TERMINATED one keeps it for its next
// start; other states are refused as Databricks does.
func (s *Server) editCluster(c *call) {
	var req map[string]any
	if !c.decode(&req) {
		return
	}
	id, _ := req["cluster_id"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.lookupCluster(c, id)
	if !ok {
		return
	}
	if cl.level(c.caller) != levelManage {
		c.fail(http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("User %s does not have Manage permission on cluster %s.", c.caller.name, id))
		return
	}
	if cl.State != stateRunning && cl.State != stateTerminated {
		c.fail(http.StatusBadRequest, "INVALID_STATE", fmt.Sprintf("Cluster %s is in unexpected state %s.", id, titleCase(cl.State)))
		return
	}
	spec, original, _, ok := s.clusterSpec(c, req)
	if !ok {
		return
	}
	now := s.now().UnixMilli()
	s.recordEvent(cl, now, eventEdited, map[string]any{"user": c.caller.name, "attributes": original, "previous_attributes": cl.Request,
		"cluster_size": clusterSize(spec), "previous_cluster_size": clusterSize(cl.Spec)})
	cl.Spec, cl.Request = spec, original
	if cl.State == stateRunning {
		cl.runEnded(now)
		cl.State, cl.StateMessage = statePending, "Restarting the cluster with the new configuration"
		cl.StartDelayMs = s.startDelay().Milliseconds()
		cl.NextState, cl.NextAt = stateRunning, now+cl.StartDelayMs
		s.recordEvent(cl, now, eventRestarting, map[string]any{"user": c.caller.name})
	}
	s.put(kindCluster, cl.ID, cl)
	c.ok(map[string]any{})
}

func remarshal(in map[string]any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	return dec.Decode(out)
}

func validateClusterSpec(r *createClusterReq) string {
	if r.SparkVersion == "" {
		return "Missing required field: spark_version"
	}
	found := false
	for _, v := range sparkVersions {
		if v.Key == r.SparkVersion {
			found = true
		}
	}
	if !found {
		return fmt.Sprintf("Invalid spark version %s.", r.SparkVersion)
	}
	if r.InstancePoolID == "" {
		if r.NodeTypeID == "" {
			return "Missing required field: node_type_id"
		}
		for _, id := range []string{r.NodeTypeID, r.DriverNodeTypeID} {
			if id == "" {
				continue
			}
			if _, ok := findNodeType(id); !ok {
				var ids []string
				for _, n := range nodeTypes {
					ids = append(ids, n.ID)
				}
				return fmt.Sprintf("Node type %s is not supported. Supported node types: %s", id, strings.Join(ids, ", "))
			}
		}
	}
	if r.NumWorkers != nil && *r.NumWorkers < 0 {
		return fmt.Sprintf("num_workers must be non-negative (is %d).", *r.NumWorkers)
	}
	if r.Autoscale != nil && (r.Autoscale.MinWorkers < 0 || r.Autoscale.MaxWorkers < r.Autoscale.MinWorkers) {
		return "Invalid autoscale: min_workers must be non-negative and not exceed max_workers."
	}
	if m := r.AutoterminationMinutes; m != nil && *m != 0 && (*m < 10 || *m > 10000) {
		return fmt.Sprintf("Invalid autotermination_minutes %d: must be 0 (disabled) or between 10 and 10000.", *m)
	}
	if r.DataSecurityMode != "" && !dataSecurityModes[r.DataSecurityMode] {
		return fmt.Sprintf("Invalid data_security_mode %s.", r.DataSecurityMode)
	}
	return ""
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

// level returns the caller's effective direct level on a cluster ("" = none).
func (cl *cluster) level(p principal) string {
	if p.admin {
		return levelManage
	}
	best := cl.ACL[aclKey("user_name", p.name)]
	for _, g := range []string{"users", "account users"} {
		if l := cl.ACL[aclKey("group_name", g)]; levelRank(l) > levelRank(best) {
			best = l
		}
	}
	return best
}

func levelRank(l string) int {
	switch l {
	case levelAttach:
		return 1
	case levelRestart:
		return 2
	case levelManage:
		return 3
	}
	return 0
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

// pinCluster pins (or unpins) a cluster: a pinned cluster is kept after
// termination and cannot be permanently deleted. At most MaxPinnedClusters
// are pinned per workspace.
func (s *Server) pinCluster(pin bool) func(*call) {
	return func(c *call) {
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
		if cl.Pinned == pin {
			c.ok(map[string]any{})
			return
		}
		if pin {
			n := 0
			for _, o := range s.st.Clusters {
				if o.Pinned {
					n++
				}
			}
			if max := s.opts.MaxPinnedClusters; on(max) && n >= max {
				c.fail(http.StatusBadRequest, "QUOTA_EXCEEDED", fmt.Sprintf("Cannot pin cluster %s: the workspace already has %d pinned clusters, the maximum allowed. Unpin a cluster first.", id, n))
				return
			}
			cl.Pinned = true
			s.recordEvent(cl, s.now().UnixMilli(), eventPinned, map[string]any{"user": c.caller.name})
		} else {
			cl.Pinned = false
			cl.UnpinnedAt = s.now().UnixMilli()
			s.recordEvent(cl, cl.UnpinnedAt, eventUnpinned, map[string]any{"user": c.caller.name})
		}
		s.put(kindCluster, cl.ID, cl)
		c.ok(map[string]any{})
	}
}

var clusterStates = map[string]bool{"PENDING": true, "RUNNING": true, "RESTARTING": true, "RESIZING": true, "TERMINATING": true, "TERMINATED": true, "ERROR": true, "UNKNOWN": true}

const maxClusterPage = 100

func (s *Server) listClusters(c *call) {
	q := c.r.URL.Query()
	states := map[string]bool{}
	for _, v := range q["filter_by.cluster_states"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.ToUpper(strings.TrimSpace(st))
			if st == "" {
				continue
			}
			if !clusterStates[st] {
				c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid cluster state %s.", st))
				return
			}
			states[st] = true
		}
	}
	sources := map[string]bool{}
	for _, v := range q["filter_by.cluster_sources"] {
		for _, src := range strings.Split(v, ",") {
			if src = strings.ToUpper(strings.TrimSpace(src)); src != "" {
				sources[src] = true
			}
		}
	}
	policy := q.Get("filter_by.policy_id")
	pinned := q.Get("filter_by.is_pinned") == "true"
	if v := q.Get("filter_by.is_pinned"); v != "" && v != "true" && v != "false" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid filter_by.is_pinned %q.", v))
		return
	}
	size := maxClusterPage
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid page_size %q.", v))
			return
		}
		if n > 0 {
			size = min(n, maxClusterPage)
		}
	}
	from := 0
	if tok := q.Get("page_token"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "c:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "c:") || n < 0 {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid page token %q.", tok))
			return
		}
		from = n
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeClusters(s.now())
	var matches []*cluster
	for _, cl := range s.st.Clusters {
		if len(states) > 0 && !states[cl.State] {
			continue
		}
		if policy != "" && fmt.Sprint(cl.Spec["policy_id"]) != policy {
			continue
		}
		if len(sources) > 0 && !sources["API"] {
			continue
		}
		if pinned && !cl.Pinned {
			continue
		}
		matches = append(matches, cl)
	}
	sort.Slice(matches, func(i, j int) bool { return matches[i].Seq > matches[j].Seq })
	from = min(from, len(matches))
	to := min(from+size, len(matches))
	out := []map[string]any{}
	for _, cl := range matches[from:to] {
		out = append(out, s.render(cl))
	}
	resp := map[string]any{"clusters": out}
	if to < len(matches) {
		resp["next_page_token"] = base64.RawURLEncoding.EncodeToString([]byte("c:" + strconv.Itoa(to)))
	}
	if from > 0 {
		resp["prev_page_token"] = base64.RawURLEncoding.EncodeToString([]byte("c:" + strconv.Itoa(max(0, from-size))))
	}
	c.ok(resp)
}

func (s *Server) sparkVersions(c *call) {
	c.ok(map[string]any{"versions": sparkVersions})
}

func (s *Server) listNodeTypes(c *call) {
	out := make([]map[string]any, 0, len(nodeTypes))
	for _, n := range nodeTypes {
		out = append(out, n.render())
	}
	c.ok(map[string]any{"node_types": out})
}

func (s *Server) listPolicies(c *call) {
	c.ok(map[string]any{"policies": []map[string]any{s.personalComputePolicy()}, "total_count": 1})
}

func (s *Server) getPolicy(c *call) {
	id := c.query("policy_id")
	if id == "" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: policy_id")
		return
	}
	if id != personalComputePolicyID {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Cluster policy %s does not exist.", id))
		return
	}
	c.ok(s.personalComputePolicy())
}

func (s *Server) getPolicyFamily(c *call) {
	id := c.params[0]
	if id != personalComputeFamilyID {
		c.fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Policy family %s does not exist.", id))
		return
	}
	c.ok(personalComputeFamily())
}

// ---- cluster permissions ----

func (s *Server) permissionsCluster(c *call) (*cluster, bool) {
	id := c.params[0]
	cl, ok := s.st.Clusters[id]
	if ok && s.expire(cl, s.now()) {
		ok = false
	}
	if !ok {
		c.fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Cluster %s does not exist.", id))
		return nil, false
	}
	return cl, true
}

func (s *Server) renderPermissions(cl *cluster) map[string]any {
	var acl []map[string]any
	for _, k := range sortedKeys(cl.ACL) {
		kind, name, _ := strings.Cut(k, ":")
		e := map[string]any{kind: name, "all_permissions": []map[string]any{{"permission_level": cl.ACL[k], "inherited": false}}}
		if kind == "user_name" {
			if u := s.st.userByName(name); u != nil {
				e["display_name"] = u.DisplayName
			}
		}
		acl = append(acl, e)
	}
	acl = append(acl, map[string]any{
		"group_name": "admins",
		"all_permissions": []map[string]any{{
			"permission_level": levelManage, "inherited": true, "inherited_from_object": []string{"/clusters/"},
		}},
	})
	return map[string]any{"object_id": "/clusters/" + cl.ID, "object_type": "cluster", "access_control_list": acl}
}

func (s *Server) getClusterPermissions(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.permissionsCluster(c)
	if !ok {
		return
	}
	c.ok(s.renderPermissions(cl))
}

func (s *Server) clusterPermissionLevels(c *call) {
	s.mu.Lock()
	_, ok := s.permissionsCluster(c)
	s.mu.Unlock()
	if !ok {
		return
	}
	c.ok(map[string]any{"permission_levels": []map[string]string{
		{"permission_level": levelAttach, "description": "Can attach notebooks to the cluster and view the Spark UI."},
		{"permission_level": levelRestart, "description": "Can attach, start, restart and terminate the cluster."},
		{"permission_level": levelManage, "description": "Can manage the cluster, including its permissions."},
	}})
}

// updateClusterPermissions handles PATCH (merge) and PUT (replace direct entries).
func (s *Server) updateClusterPermissions(replace bool) func(*call) {
	return func(c *call) {
		var req struct {
			AccessControlList []struct {
				UserName             string `json:"user_name"`
				GroupName            string `json:"group_name"`
				ServicePrincipalName string `json:"service_principal_name"`
				PermissionLevel      string `json:"permission_level"`
			} `json:"access_control_list"`
		}
		if !c.decode(&req) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		cl, ok := s.permissionsCluster(c)
		if !ok {
			return
		}
		if cl.level(c.caller) != levelManage {
			c.fail(http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("User %s does not have Manage permission on cluster %s.", c.caller.name, cl.ID))
			return
		}
		updates := map[string]string{}
		for _, e := range req.AccessControlList {
			n := 0
			for _, v := range []string{e.UserName, e.GroupName, e.ServicePrincipalName} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Exactly one of user_name, group_name or service_principal_name must be set in each access control entry.")
				return
			}
			if levelRank(e.PermissionLevel) == 0 {
				c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Permission level %s is not supported for clusters; supported levels: %s, %s, %s.", e.PermissionLevel, levelAttach, levelRestart, levelManage))
				return
			}
			var key string
			switch {
			case e.UserName != "":
				if strings.EqualFold(e.UserName, AdminUserName) {
					key = aclKey("user_name", AdminUserName)
					break
				}
				u, ok := s.workspaceUser(e.UserName)
				if !ok {
					c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Principal: UserName(%s) does not exist", e.UserName))
					return
				}
				key = aclKey("user_name", u.UserName)
			case e.GroupName != "":
				g := strings.ToLower(e.GroupName)
				if g == "admins" {
					c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Cannot change admins's %s permission on /clusters/%s: it is inherited.", levelManage, cl.ID))
					return
				}
				if !builtinGroups[g] {
					c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Principal: GroupName(%s) does not exist", e.GroupName))
					return
				}
				key = aclKey("group_name", g)
			default:
				c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Principal: ServicePrincipalName(%s) does not exist", e.ServicePrincipalName))
				return
			}
			updates[key] = e.PermissionLevel
		}
		if replace {
			cl.ACL = map[string]string{}
		}
		for k, l := range updates {
			cl.ACL[k] = l
		}
		s.put(kindCluster, cl.ID, cl)
		c.ok(s.renderPermissions(cl))
	}
}
