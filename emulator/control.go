package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Config is the effective configuration served at GET /emulator/v1/config.
type Config struct {
	AccountID     string                  `json:"account_id"`
	WorkspaceID   int64                   `json:"workspace_id"`
	Latency       string                  `json:"latency"`
	RateLimits    string                  `json:"rate_limits"`
	Faults        float64                 `json:"faults"`
	Seed          int64                   `json:"seed"`
	TimeScale     float64                 `json:"time_scale"`
	AssignmentLag string                  `json:"assignment_lag"`
	Classes       []RateClass             `json:"rate_limit_classes"`
	Endpoints     map[string]EndpointInfo `json:"endpoints"`
	Clusters      ClusterTiming           `json:"clusters"`
	Persistent    bool                    `json:"persistent"`
	Strict        StrictConfig            `json:"strict"`
}

// StrictConfig reports the production rules in force (negative: off).
type StrictConfig struct {
	WorkspaceCatalog         string     `json:"workspace_catalog"`
	Catalogs                 []string   `json:"catalogs"`
	MetastoreRoot            string     `json:"metastore_root"`
	MaxAccountUsers          int        `json:"max_account_users"`
	UserQuotaError           ErrorShape `json:"user_quota_error"`
	MaxSchemasPerCatalog     int        `json:"max_schemas_per_catalog"`
	SchemaQuotaError         ErrorShape `json:"schema_quota_error"`
	ClusterRetention         string     `json:"cluster_retention"`
	EventRetention           string     `json:"event_retention"`
	MaxPinnedClusters        int        `json:"max_pinned_clusters"`
	PolicyDefinition         string     `json:"policy_definition"`
	MaxClustersPerUser       int        `json:"max_clusters_per_user"`
	AssignmentFlakyShare     float64    `json:"assignment_flaky_share"`
	AssignmentFlakyWindow    string     `json:"assignment_flaky_window"`
	AssignmentErrorBodyShare float64    `json:"assignment_error_body_share"`
	AssignmentFlakyError     ErrorShape `json:"assignment_flaky_error"`
	Int64AsStringShare       float64    `json:"int64_as_string_share"`
}

// RateClass describes one token bucket (rps and burst at time scale 1).
type RateClass struct {
	Name      string   `json:"name"`
	RPS       float64  `json:"rps"`
	Burst     int      `json:"burst"`
	Endpoints []string `json:"endpoints"`
	Published bool     `json:"published"`
	Source    string   `json:"source"`
}

// EndpointInfo is an endpoint's latency (ms at time scale 1) and rate-limit class.
type EndpointInfo struct {
	MinMS     float64 `json:"min_ms"`
	TypicalMS float64 `json:"typical_ms"`
	MaxMS     float64 `json:"max_ms"`
	RateClass string  `json:"rate_class,omitempty"`
	// Mutation is true for endpoints that write (counted in Stats.Writes).
	Mutation bool `json:"mutation"`
}

// ClusterTiming gives the cluster transition delays in ms at time scale 1.
type ClusterTiming struct {
	StartMinMS     float64 `json:"start_min_ms"`
	StartTypicalMS float64 `json:"start_typical_ms"`
	StartMaxMS     float64 `json:"start_max_ms"`
	StopMinMS      float64 `json:"stop_min_ms"`
	StopTypicalMS  float64 `json:"stop_typical_ms"`
	StopMaxMS      float64 `json:"stop_max_ms"`
}

// EffectiveConfig reports the settings in force.
func (s *Server) EffectiveConfig() Config {
	cfg := Config{
		AccountID: s.opts.AccountID, WorkspaceID: s.opts.WorkspaceID,
		Latency: s.opts.Latency, RateLimits: s.opts.RateLimits, Faults: s.opts.Faults,
		Seed: s.opts.Seed, TimeScale: s.opts.TimeScale, AssignmentLag: s.opts.AssignmentLag.String(),
		Classes: []RateClass{}, Endpoints: map[string]EndpointInfo{}, Persistent: s.opts.StatePath != "",
	}
	for _, c := range s.limits.classes {
		cfg.Classes = append(cfg.Classes, RateClass{Name: c.Name, RPS: c.RPS, Burst: c.Burst, Endpoints: c.Endpoints, Published: c.Published, Source: c.Source})
	}
	for k, r := range s.latency.table() {
		info := EndpointInfo{MinMS: r.Min, TypicalMS: r.Typical, MaxMS: r.Max}
		if c, ok := s.limits.byKey[k]; ok {
			info.RateClass = c.Name
		}
		info.Mutation = s.stats.mutating[k]
		cfg.Endpoints[k] = info
	}
	cfg.Clusters = s.clusterTiming()
	o := s.opts
	cfg.Strict = StrictConfig{
		WorkspaceCatalog: workspaceCatalogName(o.WorkspaceName), Catalogs: append([]string{}, o.Catalogs...), MetastoreRoot: o.MetastoreRoot,
		MaxAccountUsers: o.MaxAccountUsers, UserQuotaError: o.UserQuotaError,
		MaxSchemasPerCatalog: o.MaxSchemasPerCatalog, SchemaQuotaError: o.SchemaQuotaError,
		ClusterRetention: o.ClusterRetention.String(), EventRetention: o.EventRetention.String(), MaxPinnedClusters: o.MaxPinnedClusters,
		PolicyDefinition: s.policyDef, MaxClustersPerUser: o.MaxClustersPerUser,
		AssignmentFlakyShare: o.AssignmentFlakyShare, AssignmentFlakyWindow: o.AssignmentFlakyWindow.String(),
		AssignmentErrorBodyShare: o.AssignmentErrorBodyShare, AssignmentFlakyError: o.AssignmentFlakyError,
		Int64AsStringShare: o.Int64AsStringShare,
	}
	return cfg
}

// serveControl answers /emulator/v1/*; it returns the status written.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) int {
	p, ok := s.authenticate(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, apiError{ErrorCode: "UNAUTHENTICATED", Message: "Invalid access token."})
		return http.StatusUnauthorized
	}
	if !p.admin {
		writeJSON(w, http.StatusForbidden, apiError{ErrorCode: "PERMISSION_DENIED", Message: "The emulator control API needs the admin token."})
		return http.StatusForbidden
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{ErrorCode: "MALFORMED_REQUEST", Message: "Could not read request body."})
		return http.StatusBadRequest
	}
	bad := func(msg string) int {
		writeJSON(w, http.StatusBadRequest, apiError{ErrorCode: "MALFORMED_REQUEST", Message: msg})
		return http.StatusBadRequest
	}
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/emulator/v1"), "/")
	switch r.Method + " " + path {
	case "GET /stats":
		writeJSON(w, http.StatusOK, s.Stats())
	case "POST /stats/reset":
		s.stats.reset()
		writeJSON(w, http.StatusOK, map[string]any{})
	case "GET /config":
		writeJSON(w, http.StatusOK, s.EffectiveConfig())
	case "GET /rules":
		s.mu.Lock()
		pats := []string{}
		for _, re := range s.refuse {
			pats = append(pats, re.String())
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"refuse_users": pats})
	case "PUT /rules":
		var req struct {
			RefuseUsers []string `json:"refuse_users"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return bad("Could not parse request object: " + err.Error())
		}
		var res []*regexp.Regexp
		for _, p := range req.RefuseUsers {
			re, err := regexp.Compile(p)
			if err != nil {
				return bad(fmt.Sprintf("refuse_users: invalid regexp %q: %v", p, err))
			}
			res = append(res, re)
		}
		s.mu.Lock()
		s.refuse = res
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"refuse_users": append([]string{}, req.RefuseUsers...)})
	case "GET /faults":
		writeJSON(w, http.StatusOK, map[string]any{"queued": s.faults.pending()})
	case "POST /faults":
		var req struct {
			Endpoint string `json:"endpoint"`
			Mode     string `json:"mode"`
			Count    int    `json:"count"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return bad("Could not parse request object: " + err.Error())
		}
		if !knownEndpoint(req.Endpoint) {
			return bad(fmt.Sprintf("unknown endpoint %q; known: %s", req.Endpoint, strings.Join(endpointKeys, ", ")))
		}
		if req.Endpoint == wellKnownKey {
			return bad(fmt.Sprintf("%s is the unauthenticated discovery document: it never fails", wellKnownKey))
		}
		m, ok := parseFaultMode(req.Mode)
		if !ok {
			return bad(fmt.Sprintf("unknown mode %q; want 503, 500, 429, reset, applied_then_503 or applied_then_reset", req.Mode))
		}
		if req.Count == 0 {
			req.Count = 1
		}
		if req.Count < 0 || req.Count > 100000 {
			return bad("count must be between 1 and 100000")
		}
		s.faults.enqueue(req.Endpoint, m, req.Count)
		writeJSON(w, http.StatusOK, map[string]any{"queued": s.faults.pending()})
	case "POST /tokens":
		var req struct {
			UserName string `json:"user_name"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return bad("Could not parse request object: " + err.Error())
		}
		if req.UserName == "" {
			return bad("user_name is required")
		}
		var b [16]byte
		_, _ = rand.Read(b[:])
		tok := "dapi" + hex.EncodeToString(b[:])
		name := strings.ToLower(req.UserName)
		s.mu.Lock()
		s.st.Tokens[tok] = name
		s.put(kindToken, tok, name)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"token": tok, "user_name": name})
	case "POST /users":
		var su SeedUser
		if err := json.Unmarshal(body, &su); err != nil {
			return bad("Could not parse request object: " + err.Error())
		}
		s.mu.Lock()
		u, err := s.seedUser(su)
		s.mu.Unlock()
		if err != nil {
			return bad(err.Error())
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": u.ID, "user_name": u.UserName, "active": u.Active})
	case "POST /tables":
		var req struct {
			Schema string `json:"schema"`
			Name   string `json:"name"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return bad("Could not parse request object: " + err.Error())
		}
		s.mu.Lock()
		sc, ok := s.st.Schemas[strings.ToLower(req.Schema)]
		if ok && req.Name != "" {
			sc.Tables = append(sc.Tables, strings.ToLower(req.Name))
			s.put(kindSchema, sc.fullName(), sc)
		}
		s.mu.Unlock()
		if !ok || req.Name == "" {
			return bad(fmt.Sprintf("want {\"schema\": \"<catalog>.<schema>\", \"name\": \"<table>\"} naming an existing schema (got %q)", req.Schema))
		}
		writeJSON(w, http.StatusOK, map[string]any{"schema": sc.fullName(), "tables": sc.Tables})
	case "POST /clusters/keep-running":
		var req struct {
			ClusterID string `json:"cluster_id"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return bad("Could not parse request object: " + err.Error())
		}
		status, out := s.keepRunning(req.ClusterID)
		writeJSON(w, status, out)
		return status
	case "GET /clusters/runs":
		writeJSON(w, http.StatusOK, s.clusterRuns())
	case "POST /clusters/busy":
		var req struct {
			ClusterID string `json:"cluster_id"`
			Duration  string `json:"duration"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return bad("Could not parse request object: " + err.Error())
		}
		d, err := time.ParseDuration(req.Duration)
		if err != nil {
			return bad(fmt.Sprintf("duration %q: want a Go duration such as \"90m\" (emulated time, before scaling)", req.Duration))
		}
		status, out := s.markBusy(req.ClusterID, d)
		writeJSON(w, status, out)
		return status
	default:
		writeJSON(w, http.StatusNotFound, apiError{ErrorCode: "ENDPOINT_NOT_FOUND", Message: fmt.Sprintf("No emulator control API for '%s %s'", r.Method, r.URL.Path)})
		return http.StatusNotFound
	}
	return http.StatusOK
}

func knownEndpoint(k string) bool {
	for _, e := range endpointKeys {
		if e == k {
			return true
		}
	}
	return false
}
