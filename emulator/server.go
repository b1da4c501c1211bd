package emulator

// One concern, the server's frame: options, routing, authentication, fault
// injection and the call helpers every handler uses. Handlers live in a file per API.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Server. The zero value (plus a Token) is a fast, in-memory,
// fault-free emulator.
type Options struct {
	// Token is the admin personal access token; UserToken is a second, non-admin PAT
	// that gets 403 PERMISSION_DENIED on admin APIs.
	Token, UserToken string
	// AccountID is the account id expected in account paths; WorkspaceID the id of the
	// only workspace.
	AccountID   string
	WorkspaceID int64
	// StatePath is the journal file; "" keeps everything in memory.
	StatePath string
	// Latency is "none" (default) or "realistic".
	Latency string
	// RateLimits is "none" (default) or "azure".
	RateLimits string
	// Limits overrides rate-limit classes, requests per second ("CLASS") or burst
	// ("CLASS.burst"). With RateLimits "none" only the classes listed here are enforced.
	Limits map[string]float64
	// Faults is the fraction of requests that fail transiently.
	Faults float64
	// Seed makes ids, latencies and faults reproducible.
	Seed int64
	// TimeScale speeds up latencies, cluster transitions and rate windows (default 1).
	TimeScale float64
	// AssignmentLag is how long (before scaling) a freshly assigned principal stays
	// invisible to grants, permissions and cluster single_user_name.
	AssignmentLag time.Duration
	// ClusterStartDelay and ClusterStopDelay override PENDING->RUNNING and
	// TERMINATING->TERMINATED (before scaling).
	ClusterStartDelay, ClusterStopDelay time.Duration
	// Now is the clock of cluster transitions, the assignment lag and rate
	// windows (nil: time.Now). Tests pass a ManualClock's Now to step time
	// instead of sleeping.
	Now func() time.Time
	// Logger receives request and journal logs; nil discards them.
	Logger *slog.Logger

	// Strictness (issue 10 §2): every field below is as strict as a real Azure
	// workspace at its zero value; set it to relax the emulator for a rehearsal.
	// Numbers follow one convention: 0 is the production default, a negative
	// value switches the behaviour off.

	// WorkspaceName names the workspace (default "cohort-emulator"); its
	// workspace catalog is the name lower-cased with '-' as '_'.
	WorkspaceName string
	// Catalogs are catalogs an admin made beforehand (in the GUI, with a managed
	// location); by default only the workspace catalog exists.
	Catalogs []string
	// MetastoreRoot is the metastore's root storage URL. Empty (the default for
	// metastores Unity Catalog created automatically) makes a catalog create
	// without storage_root fail with 400 INVALID_STATE.
	MetastoreRoot string
	// MaxAccountUsers caps users plus service principals in the account (0:
	// 10000); UserQuotaError is the answer past it.
	MaxAccountUsers int
	UserQuotaError  ErrorShape
	// MaxSchemasPerCatalog caps schemas per catalog, default and
	// information_schema included (0: 10000); SchemaQuotaError is the answer.
	MaxSchemasPerCatalog int
	SchemaQuotaError     ErrorShape
	// ClusterRetention is how long a terminated, unpinned cluster is kept
	// before it is permanently deleted (0: 720h; before scaling).
	ClusterRetention time.Duration
	// EventRetention is how long cluster events are kept (0: 720h [Est];
	// negative: for ever; before scaling).
	EventRetention time.Duration
	// MaxPinnedClusters caps pinned clusters per workspace (0: 100).
	MaxPinnedClusters int
	// PolicyOverrides is a JSON object merged into the Personal Compute
	// family's definition, as policy_family_definition_overrides does ("" =
	// Azure's personal-vm as shipped). MaxClustersPerUser is the policy's
	// max_clusters_per_user (0: unset, no limit).
	PolicyOverrides    string
	MaxClustersPerUser int
	// AssignmentFlakyShare is the share of workspace assignment PUTs that fail
	// within AssignmentFlakyWindow of the principal's creation (0: 0.1, window
	// 0: 20s before scaling); AssignmentErrorBodyShare is the share of those
	// failures answered 200 with a non-empty "error" and not applied (0: 0.2).
	// AssignmentFlakyError is the HTTP answer of the others.
	AssignmentFlakyShare     float64
	AssignmentFlakyWindow    time.Duration
	AssignmentErrorBodyShare float64
	AssignmentFlakyError     ErrorShape
	// Int64AsStringShare is the share of answers in which 64-bit integers
	// Cohort reads (assignment principal_id, cluster times, UC created_at and
	// updated_at) are sent as JSON strings (0: 0.1).
	Int64AsStringShare float64
	// Users are account users that exist before Cohort runs (staff, Entra
	// synced users whose userName differs from their email, inactive ones).
	Users []SeedUser
}

// Default identities and ids.
const (
	DefaultAccountID   = "00000000-0000-4000-8000-0000000c0407"
	DefaultWorkspaceID = int64(1234567890123456)
	// AdminUserName is the identity behind Options.Token.
	AdminUserName = "admin@emulator.local"
	// UserTokenUserName is the identity behind Options.UserToken (not an account user).
	UserTokenUserName = "user@emulator.local"
)

// Server is a stateful Databricks emulator. It implements http.Handler.
type Server struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	routes []*route

	mu         sync.Mutex // guards everything below
	st         *state
	journal    *journal
	rng        *rand.Rand
	refuse     []*regexp.Regexp
	assignedAt map[int64]time.Time
	assignTry  map[int64]uint64 // assignment PUTs per principal (flakiness draws)
	int64Draws map[string]uint64
	policyDef  string // the Personal Compute definition in force
	closed     bool

	latency *latencyModel
	limits  *rateLimits
	faults  *faultInjector
	stats   *statsRecorder
}

// New builds a Server, loading and compacting the journal at opts.StatePath if set.
func New(opts Options) (*Server, error) {
	if opts.Token == "" {
		return nil, errors.New("emulator: admin token is required")
	}
	if opts.UserToken != "" && opts.UserToken == opts.Token {
		return nil, errors.New("emulator: user token must differ from admin token")
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.WorkspaceID == 0 {
		opts.WorkspaceID = DefaultWorkspaceID
	}
	if opts.WorkspaceID < 0 {
		return nil, fmt.Errorf("emulator: workspace id %d must be positive", opts.WorkspaceID)
	}
	if opts.TimeScale == 0 {
		opts.TimeScale = 1
	}
	if opts.TimeScale < 0 {
		return nil, fmt.Errorf("emulator: time scale %v must be positive", opts.TimeScale)
	}
	if opts.Faults < 0 || opts.Faults > 1 {
		return nil, fmt.Errorf("emulator: faults %v must be within [0,1]", opts.Faults)
	}
	if opts.Latency == "" {
		opts.Latency = "none"
	}
	if opts.RateLimits == "" {
		opts.RateLimits = "none"
	}
	if err := opts.strictDefaults(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lat, err := newLatencyModel(opts.Latency, opts.Seed)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lim, err := newRateLimits(opts.RateLimits, opts.Limits, opts.TimeScale)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:       opts,
		log:        logger,
		now:        opts.Now,
		st:         newState(),
		rng:        rand.New(rand.NewPCG(uint64(opts.Seed), 0x636f686f7274)),
		assignedAt: map[int64]time.Time{},
		assignTry:  map[int64]uint64{},
		int64Draws: map[string]uint64{},
		latency:    lat,
		limits:     lim,
		faults:     newFaultInjector(opts.Faults, opts.Seed),
		stats:      newStatsRecorder(),
	}
	def, err := mergePolicy(personalComputeDefinition, opts.PolicyOverrides)
	if err != nil {
		return nil, err
	}
	s.policyDef = def
	s.routes = s.buildRoutes()
	for _, rt := range s.routes {
		if rt.mutation {
			s.stats.mutating[rt.key] = true
		}
	}
	if err := s.seed(); err != nil {
		return nil, err
	}
	if opts.StatePath != "" {
		j, err := openJournal(opts.StatePath, s.st, logger)
		if err != nil {
			return nil, err
		}
		s.journal = j
	}
	return s, nil
}

// Close compacts and closes the journal. The Server keeps answering from memory.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.journal == nil {
		s.closed = true
		return nil
	}
	s.closed = true
	return s.journal.close(s.st)
}

// Stats returns request, throttle and fault counters plus object counts.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	s.mu.Lock()
	st.Objects = s.st.counts()
	s.mu.Unlock()
	return st
}

func (s *Server) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.opts.TimeScale)
}

// principal is the identity behind a bearer token.
type principal struct {
	name  string
	admin bool
}

// route is one Databricks endpoint.
type route struct {
	method   string
	pattern  []string // path segments; "*" matches one segment, "**" the rest
	key      string   // stable endpoint key
	admin    bool     // needs the admin token
	mutation bool
	handle   func(*call)
}

// call is one request in flight.
type call struct {
	r      *http.Request
	params []string
	body   []byte
	caller principal

	status int
	header http.Header
	out    []byte
}

func (c *call) query(name string) string { return c.r.URL.Query().Get(name) }

func (c *call) reply(status int, v any) {
	c.status = status
	if v == nil {
		c.out = nil
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		c.fail(http.StatusInternalServerError, "INTERNAL_ERROR", "encode response: "+err.Error())
		return
	}
	c.header.Set("Content-Type", "application/json")
	c.out = b
}

func (c *call) ok(v any) { c.reply(http.StatusOK, v) }

// fail answers with the standard Databricks error body.
func (c *call) fail(status int, code, msg string) {
	c.reply(status, apiError{ErrorCode: code, Message: msg})
}

// scimFail answers with a SCIM error body (status as a string).
func (c *call) scimFail(status int, detail, scimType string) {
	c.reply(status, scimError{
		Schemas:  []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		Detail:   detail,
		Status:   strconv.Itoa(status),
		ScimType: scimType,
	})
	c.header.Set("Content-Type", "application/scim+json")
}

// decode parses the JSON body into v; an empty body is {}. On failure it answers
// 400 MALFORMED_REQUEST and returns false.
func (c *call) decode(v any) bool {
	body := bytes.TrimSpace(c.body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		c.fail(http.StatusBadRequest, "MALFORMED_REQUEST", "Could not parse request object: "+err.Error())
		return false
	}
	if dec.More() {
		c.fail(http.StatusBadRequest, "MALFORMED_REQUEST", "Could not parse request object: trailing data after JSON value")
		return false
	}
	return true
}

type apiError struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

type scimError struct {
	Schemas  []string `json:"schemas"`
	Detail   string   `json:"detail"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const maxBody = 8 << 20

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key := "unknown"
	status := 0
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
			status = http.StatusInternalServerError
			writeJSON(w, status, apiError{ErrorCode: "INTERNAL_ERROR", Message: fmt.Sprintf("internal emulator error: %v", p)})
			s.stats.request(key, status)
		}
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "endpoint", key, "status", status, "elapsed", time.Since(start))
	}()

	if strings.HasPrefix(r.URL.Path, "/emulator/v1/") || r.URL.Path == "/emulator/v1" {
		key = "control"
		status = s.serveControl(w, r)
		return
	}

	rt, params := s.match(r.Method, r.URL.Path)
	if rt == nil {
		status = http.StatusNotFound
		writeJSON(w, status, apiError{ErrorCode: "ENDPOINT_NOT_FOUND", Message: fmt.Sprintf("No API found for '%s %s'", r.Method, r.URL.Path)})
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			key = unknownWriteKey
		}
		s.stats.request(key, status)
		return
	}
	key = rt.key
	c := &call{r: r, params: params, header: http.Header{}}

	if key != wellKnownKey {
		p, ok := s.authenticate(r)
		if !ok {
			status = http.StatusUnauthorized
			writeJSON(w, status, apiError{ErrorCode: "UNAUTHENTICATED", Message: "Invalid access token."})
			s.stats.request(key, status)
			return
		}
		c.caller = p
		if msg := s.checkWorkspaceHeader(r, rt); msg != "" {
			status = http.StatusBadRequest
			writeJSON(w, status, apiError{ErrorCode: "INVALID_PARAMETER_VALUE", Message: msg})
			s.stats.request(key, status)
			return
		}
		if rt.admin && !p.admin {
			status = http.StatusForbidden
			writeJSON(w, status, apiError{ErrorCode: "PERMISSION_DENIED", Message: fmt.Sprintf("User %s is not authorized to perform this operation: only account and workspace admins may call %s.", p.name, key)})
			s.stats.request(key, status)
			return
		}
		if wait, ok := s.limits.take(key, s.now()); !ok {
			status = http.StatusTooManyRequests
			secs := int(wait.Seconds() + 0.999)
			if secs < 1 {
				secs = 1
			}
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeJSON(w, status, apiError{ErrorCode: "REQUEST_LIMIT_EXCEEDED", Message: fmt.Sprintf("%s RPC token bucket limit has been exceeded.", key)})
			s.stats.request(key, status)
			s.stats.throttle(key)
			return
		}
		if d := s.latency.sample(key); d > 0 {
			select {
			case <-time.After(s.scaled(d)):
			case <-r.Context().Done():
			}
		}
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		status = http.StatusBadRequest
		writeJSON(w, status, apiError{ErrorCode: "MALFORMED_REQUEST", Message: "Could not read request body."})
		s.stats.request(key, status)
		return
	}
	c.body = body

	mode := faultNone
	if key != wellKnownKey {
		mode = s.faults.next(key, rt.mutation)
	}
	if mode != faultNone && !mode.applied() {
		s.stats.fault(key)
		status = s.injectFault(w, mode)
		s.stats.request(key, status)
		return
	}

	rt.handle(c)
	if c.status == 0 {
		c.status = http.StatusOK
	}
	s.mu.Lock()
	s.quoteInt64s(c, key)
	s.mu.Unlock()

	if mode.applied() {
		s.stats.fault(key)
		if mode == faultAppliedThenReset {
			status = s.injectFault(w, faultReset)
		} else {
			status = s.injectFault(w, fault503)
		}
		s.stats.request(key, status)
		return
	}

	for k, vs := range c.header {
		w.Header()[k] = vs
	}
	status = c.status
	w.WriteHeader(status)
	if len(c.out) > 0 {
		_, _ = w.Write(c.out)
	}
	s.stats.request(key, status)
}

// injectFault writes a transient failure and returns the status recorded for it
// (0 for a dropped connection).
func (s *Server) injectFault(w http.ResponseWriter, m faultMode) int {
	switch m {
	case fault500:
		writeJSON(w, http.StatusInternalServerError, apiError{ErrorCode: "INTERNAL_ERROR", Message: "Internal error in the emulated service (injected fault)."})
		return http.StatusInternalServerError
	case fault429:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, apiError{ErrorCode: "REQUEST_LIMIT_EXCEEDED", Message: "Request limit exceeded (injected fault)."})
		return http.StatusTooManyRequests
	case faultReset:
		if resetConnection(w) {
			return 0
		}
		writeJSON(w, http.StatusServiceUnavailable, apiError{ErrorCode: "TEMPORARILY_UNAVAILABLE", Message: "The service is temporarily unavailable (injected fault)."})
		return http.StatusServiceUnavailable
	default:
		writeJSON(w, http.StatusServiceUnavailable, apiError{ErrorCode: "TEMPORARILY_UNAVAILABLE", Message: "The service is temporarily unavailable (injected fault)."})
		return http.StatusServiceUnavailable
	}
}

// resetConnection drops the client connection with a TCP RST, so the client sees
// "connection reset by peer".
func resetConnection(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
	return true
}

func (s *Server) authenticate(r *http.Request) (principal, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return principal{}, false
	}
	if tok == s.opts.Token {
		return principal{name: AdminUserName, admin: true}, true
	}
	if s.opts.UserToken != "" && tok == s.opts.UserToken {
		return principal{name: UserTokenUserName}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name, ok := s.st.Tokens[tok]; ok {
		return principal{name: name}, true
	}
	return principal{}, false
}

// checkWorkspaceHeader refuses a workspace call whose routing header names
// another workspace. SDK v0.140+ sends X-Databricks-Workspace-Id, older ones
// (and Cohort's raw requests) X-Databricks-Org-Id; both are accepted, and
// neither is required. Account calls ignore them.
func (s *Server) checkWorkspaceHeader(r *http.Request, rt *route) string {
	if len(rt.pattern) > 2 && rt.pattern[2] == "accounts" {
		return ""
	}
	want := strconv.FormatInt(s.opts.WorkspaceID, 10)
	for _, h := range []string{"X-Databricks-Workspace-Id", "X-Databricks-Org-Id"} {
		if v := r.Header.Get(h); v != "" && v != want {
			return fmt.Sprintf("Header %s: %s names workspace %s, but this is workspace %s.", h, v, v, want)
		}
	}
	return ""
}

// match finds the route for method and path. A path may end in "?" (SDK quirk).
func (s *Server) match(method, path string) (*route, []string) {
	path = strings.TrimSuffix(path, "?")
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, rt := range s.routes {
		if rt.method != method {
			continue
		}
		if params, ok := matchSegs(rt.pattern, segs); ok {
			return rt, params
		}
	}
	return nil, nil
}

func matchSegs(pattern, segs []string) ([]string, bool) {
	var params []string
	for i, p := range pattern {
		if p == "**" {
			if i >= len(segs) {
				return nil, false
			}
			rest := strings.Join(segs[i:], "/")
			if rest == "" {
				return nil, false
			}
			return append(params, rest), true
		}
		if i >= len(segs) {
			return nil, false
		}
		if p == "*" {
			params = append(params, segs[i])
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	if len(segs) != len(pattern) {
		return nil, false
	}
	return params, true
}

func (s *Server) buildRoutes() []*route {
	var rs []*route
	add := func(method, path, key string, admin, mutation bool, h func(*call)) {
		rs = append(rs, &route{method: method, pattern: strings.Split(strings.Trim(path, "/"), "/"), key: key, admin: admin, mutation: mutation, handle: h})
	}
	const acc = "api/2.0/accounts/*/"
	add("GET", "/.well-known/databricks-config", wellKnownKey, false, false, s.wellKnown)
	add("GET", "/api/2.0/preview/scim/v2/Me", "scim.me", false, false, s.scimMe)

	add("POST", acc+"scim/v2/Users", "scim.users.create", true, true, s.accountScope(s.createUser))
	add("GET", acc+"scim/v2/Users", "scim.users.list", true, false, s.accountScope(s.listUsers))
	add("GET", acc+"scim/v2/Users/*", "scim.users.get", true, false, s.accountScope(s.getUser))
	add("DELETE", acc+"scim/v2/Users/*", "scim.users.delete", true, true, s.accountScope(s.deleteUser))
	add("PATCH", acc+"scim/v2/Users/*", "scim.users.patch", true, true, s.accountScope(s.patchUser))

	add("GET", acc+"workspaces/*/permissionassignments", "assignments.list", true, false, s.accountScope(s.listAssignments))
	add("GET", acc+"workspaces/*/permissionassignments/permissions", "assignments.permissions", true, false, s.accountScope(s.assignmentLevels))
	add("PUT", acc+"workspaces/*/permissionassignments/principals/*", "assignments.put", true, true, s.accountScope(s.putAssignment))
	add("DELETE", acc+"workspaces/*/permissionassignments/principals/*", "assignments.delete", true, true, s.accountScope(s.deleteAssignment))

	const uc = "/api/2.1/unity-catalog/"
	add("GET", uc+"catalogs", "catalogs.list", false, false, s.listCatalogs)
	add("POST", uc+"catalogs", "catalogs.create", true, true, s.createCatalog)
	add("GET", uc+"catalogs/*", "catalogs.get", false, false, s.getCatalog)
	add("GET", uc+"schemas", "schemas.list", false, false, s.listSchemas)
	add("POST", uc+"schemas", "schemas.create", true, true, s.createSchema)
	add("GET", uc+"schemas/*", "schemas.get", false, false, s.getSchema)
	add("DELETE", uc+"schemas/*", "schemas.delete", true, true, s.deleteSchema)
	add("GET", uc+"permissions/*/*", "grants.get", false, false, s.getGrants)
	add("PATCH", uc+"permissions/*/*", "grants.update", true, true, s.updateGrants)
	add("GET", uc+"effective-permissions/*/*", "grants.effective", false, false, s.effectivePermissions)
	add("GET", uc+"metastore_summary", "metastores.summary", false, false, s.metastoreSummary)

	for _, v := range []string{"2.0", "2.1"} {
		cl := "/api/" + v + "/clusters/"
		add("POST", cl+"create", "clusters.create", true, true, s.createCluster)
		add("GET", cl+"get", "clusters.get", false, false, s.getCluster)
		add("GET", cl+"list", "clusters.list", false, false, s.listClusters)
		add("POST", cl+"delete", "clusters.delete", false, true, s.terminateCluster)
		add("POST", cl+"permanent-delete", "clusters.permanent_delete", true, true, s.permanentDeleteCluster)
		add("POST", cl+"start", "clusters.start", false, true, s.startCluster)
		add("POST", cl+"edit", "clusters.edit", false, true, s.editCluster)
		add("POST", cl+"pin", "clusters.pin", true, true, s.pinCluster(true))
		add("POST", cl+"unpin", "clusters.unpin", true, true, s.pinCluster(false))
		add("GET", cl+"spark-versions", "clusters.spark_versions", false, false, s.sparkVersions)
		add("GET", cl+"list-node-types", "clusters.list_node_types", false, false, s.listNodeTypes)
		add("POST", cl+"events", "clusters.events", false, false, s.clusterEvents)
	}
	add("GET", "/api/2.0/policies/clusters/list", "policies.list", false, false, s.listPolicies)
	add("GET", "/api/2.0/policies/clusters/get", "policies.get", false, false, s.getPolicy)
	add("GET", "/api/2.0/policy-families/*", "policy_families.get", false, false, s.getPolicyFamily)

	add("GET", "/api/2.0/permissions/clusters/*/permissionLevels", "permissions.levels", false, false, s.clusterPermissionLevels)
	add("GET", "/api/2.0/permissions/clusters/*", "permissions.get", false, false, s.getClusterPermissions)
	add("PATCH", "/api/2.0/permissions/clusters/*", "permissions.update", false, true, s.updateClusterPermissions(false))
	add("PUT", "/api/2.0/permissions/clusters/*", "permissions.set", false, true, s.updateClusterPermissions(true))
	return rs
}

// accountScope checks the account id in the path (first parameter) and strips it.
func (s *Server) accountScope(h func(*call)) func(*call) {
	return func(c *call) {
		acc := c.params[0]
		if acc == "" {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Account ID must be set in the request path.")
			return
		}
		if acc != s.opts.AccountID {
			c.fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Account %s does not exist.", acc))
			return
		}
		c.params = c.params[1:]
		h(c)
	}
}

func (s *Server) wellKnown(c *call) {
	host := "http://" + c.r.Host
	c.ok(map[string]any{
		"oidc_endpoint": host + "/oidc",
		"account_id":    s.opts.AccountID,
		"workspace_id":  strconv.FormatInt(s.opts.WorkspaceID, 10),
		"cloud":         "azure",
		"host_type":     "workspace",
	})
}

func (s *Server) scimMe(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.header.Set("X-Databricks-Org-Id", strconv.FormatInt(s.opts.WorkspaceID, 10))
	if u := s.st.userByName(c.caller.name); u != nil {
		c.ok(u.render(nil, nil))
		return
	}
	c.ok(map[string]any{
		"schemas":  []string{scimUserSchema},
		"id":       "1",
		"userName": c.caller.name,
		"active":   true,
	})
}

// ManualClock is a clock that moves only when told to: Options.Now for tests
// that step through cluster transitions or the assignment lag.
type ManualClock struct{ ns atomic.Int64 }

// NewManualClock starts a clock at the current time.
func NewManualClock() *ManualClock {
	c := &ManualClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

// Now is the clock's time.
func (c *ManualClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
