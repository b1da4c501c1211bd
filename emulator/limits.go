package emulator

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// endpointKeys lists every stable endpoint key, in display order.
var endpointKeys = []string{
	"scim.users.create", "scim.users.list", "scim.users.get", "scim.users.delete", "scim.users.patch", "scim.me",
	"assignments.put", "assignments.list", "assignments.delete", "assignments.permissions",
	"catalogs.get", "catalogs.list", "catalogs.create",
	"schemas.create", "schemas.get", "schemas.list", "schemas.delete",
	"grants.get", "grants.update", "grants.effective", "metastores.summary",
	"clusters.create", "clusters.get", "clusters.list", "clusters.delete", "clusters.permanent_delete",
	"clusters.start", "clusters.edit", "clusters.pin", "clusters.unpin", "clusters.spark_versions", "clusters.list_node_types",
	"clusters.events",
	"policies.list", "policies.get", "policy_families.get",
	"permissions.get", "permissions.update", "permissions.set", "permissions.levels",
	wellKnownKey,
}

// wellKnownKey is the unauthenticated discovery document's endpoint: no
// auth and no faults.
const wellKnownKey = "wellknown"

// latencyRange is a per-endpoint latency in milliseconds at time scale 1.
type latencyRange struct {
	Min     float64 `json:"min_ms"`
	Typical float64 `json:"typical_ms"`
	Max     float64 `json:"max_ms"`
}

// realisticLatency holds the [Est] figures of docs/databricks-api.md §3.2.
var realisticLatency = map[string]latencyRange{
	"scim.users.create":         {300, 500, 1000},
	"scim.users.list":           {300, 500, 1000},
	"scim.users.get":            {300, 400, 1000},
	"scim.users.delete":         {300, 500, 1000},
	"scim.users.patch":          {300, 500, 1000},
	"scim.me":                   {100, 200, 500},
	"assignments.put":           {500, 1000, 3000},
	"assignments.list":          {300, 600, 1500},
	"assignments.delete":        {500, 1000, 3000},
	"assignments.permissions":   {200, 300, 800},
	"catalogs.get":              {200, 300, 1000},
	"catalogs.list":             {200, 400, 1000},
	"catalogs.create":           {300, 600, 1000},
	"schemas.create":            {200, 500, 1000},
	"schemas.get":               {200, 300, 1000},
	"schemas.list":              {200, 400, 1000},
	"schemas.delete":            {200, 500, 1000},
	"grants.get":                {200, 300, 1000},
	"grants.update":             {200, 500, 1000},
	"grants.effective":          {200, 300, 1000},
	"metastores.summary":        {100, 200, 500},
	"clusters.create":           {500, 1000, 2000},
	"clusters.get":              {100, 200, 500},
	"clusters.list":             {200, 400, 1000},
	"clusters.delete":           {300, 500, 1000},
	"clusters.permanent_delete": {300, 600, 1200},
	"clusters.start":            {300, 600, 1200},
	"clusters.edit":             {300, 600, 1200},
	"clusters.pin":              {200, 400, 800},
	"clusters.unpin":            {200, 400, 800},
	"clusters.spark_versions":   {300, 500, 1000},
	"clusters.list_node_types":  {500, 1000, 2000},
	"clusters.events":           {200, 400, 1000},
	"policies.list":             {200, 300, 600},
	"policies.get":              {100, 200, 500},
	"policy_families.get":       {100, 200, 500},
	"permissions.get":           {200, 300, 600},
	"permissions.update":        {200, 400, 600},
	"permissions.set":           {200, 400, 600},
	"permissions.levels":        {100, 200, 400},
}

type latencyModel struct {
	mode string
	mu   sync.Mutex
	rng  *rand.Rand
}

func newLatencyModel(mode string, seed int64) (*latencyModel, error) {
	switch mode {
	case "none", "realistic":
	default:
		return nil, fmt.Errorf("emulator: latency %q: want none or realistic", mode)
	}
	return &latencyModel{mode: mode, rng: rand.New(rand.NewPCG(uint64(seed), 0x6c6174))}, nil
}

func (l *latencyModel) table() map[string]latencyRange {
	out := map[string]latencyRange{}
	for _, k := range endpointKeys {
		if l.mode == "realistic" {
			out[k] = realisticLatency[k]
		} else {
			out[k] = latencyRange{}
		}
	}
	return out
}

// sample draws a latency (unscaled) from a triangular distribution.
func (l *latencyModel) sample(key string) time.Duration {
	if l.mode != "realistic" {
		return 0
	}
	r, ok := realisticLatency[key]
	if !ok || r.Max <= 0 {
		return 0
	}
	l.mu.Lock()
	u := l.rng.Float64()
	l.mu.Unlock()
	return time.Duration(Triangular(u, r.Min, r.Typical, r.Max) * float64(time.Millisecond))
}

// Triangular maps u in [0,1) onto the triangular distribution with minimum a,
// mode c and maximum b: how the emulator draws latencies and cluster delays
// (exported so a benchmark can model the same spread).
func Triangular(u, a, c, b float64) float64 {
	if b <= a {
		return a
	}
	f := (c - a) / (b - a)
	if u < f {
		return a + math.Sqrt(u*(b-a)*(c-a))
	}
	return b - math.Sqrt((1-u)*(b-a)*(b-c))
}

// rateClass is a token bucket shared by a set of endpoints.
type rateClass struct {
	Name      string   `json:"name"`
	RPS       float64  `json:"rps"`
	Burst     int      `json:"burst"`
	Endpoints []string `json:"endpoints"`
	Published bool     `json:"published"` // false = [Est] default
	Source    string   `json:"source"`

	lim *rate.Limiter
}

// rateClassDefaults are the azure figures: published ones from the limits page and
// [Est] defaults for APIs without a published figure.
var rateClassDefaults = []rateClass{
	{Name: "scim_write", RPS: 5, Published: true, Source: "Account SCIM POST/PUT/DELETE 5 req/s", Endpoints: []string{"scim.users.create", "scim.users.delete"}},
	{Name: "scim_list", RPS: 4, Published: true, Source: "Account SCIM LIST 240 req/min", Endpoints: []string{"scim.users.list"}},
	{Name: "scim_get", RPS: 20, Published: true, Source: "Account SCIM GET 20 req/s", Endpoints: []string{"scim.users.get", "scim.me"}},
	{Name: "scim_patch", RPS: 2, Published: true, Source: "Account SCIM PATCH 2 req/s", Endpoints: []string{"scim.users.patch"}},
	{Name: "permissions_read", RPS: 100, Published: true, Source: "Permissions API GET 100 req/s", Endpoints: []string{"permissions.get", "permissions.levels"}},
	{Name: "permissions_write", RPS: 30, Published: true, Source: "Permissions API PATCH/PUT 30 req/s", Endpoints: []string{"permissions.update", "permissions.set"}},
	{Name: "assignments", RPS: 10, Source: "[Est] no published figure; workspace assignment is slow and flaky", Endpoints: []string{"assignments.put", "assignments.list", "assignments.delete", "assignments.permissions"}},
	{Name: "unity_catalog", RPS: 25, Source: "[Est] no published figure", Endpoints: []string{"catalogs.get", "catalogs.list", "catalogs.create", "schemas.create", "schemas.get", "schemas.list", "schemas.delete", "grants.get", "grants.update", "grants.effective", "metastores.summary"}},
	{Name: "clusters", RPS: 30, Source: "[Est] no published figure; 'WebApp limits 30 calls/sec' anecdote", Endpoints: []string{"clusters.create", "clusters.get", "clusters.list", "clusters.delete", "clusters.permanent_delete", "clusters.start", "clusters.edit", "clusters.pin", "clusters.unpin", "clusters.spark_versions", "clusters.list_node_types"}},
	{Name: "cluster_events", RPS: 30, Source: "[Est] no published figure; as the Clusters API", Endpoints: []string{"clusters.events"}},
	{Name: "policies", RPS: 50, Source: "[Est] no published figure", Endpoints: []string{"policies.list", "policies.get", "policy_families.get"}},
}

type rateLimits struct {
	mode    string
	classes []*rateClass
	byKey   map[string]*rateClass
}

func newRateLimits(mode string, overrides map[string]float64, timeScale float64) (*rateLimits, error) {
	switch mode {
	case "none", "azure":
	default:
		return nil, fmt.Errorf("emulator: rate limits %q: want none or azure", mode)
	}
	known := map[string]rateClass{}
	for _, c := range rateClassDefaults {
		known[c.Name] = c
	}
	rps := map[string]float64{}
	bursts := map[string]float64{}
	for k, v := range overrides {
		name, isBurst := strings.CutSuffix(k, ".burst")
		if _, ok := known[name]; !ok {
			return nil, fmt.Errorf("emulator: unknown rate-limit class %q (known: %s)", name, strings.Join(classNames(), ", "))
		}
		if v <= 0 {
			return nil, fmt.Errorf("emulator: rate limit %s=%v must be positive", k, v)
		}
		if isBurst {
			bursts[name] = v
		} else {
			rps[name] = v
		}
	}
	rl := &rateLimits{mode: mode, byKey: map[string]*rateClass{}}
	for _, def := range rateClassDefaults {
		c := def
		r, overridden := rps[c.Name]
		_, burstOverridden := bursts[c.Name]
		if mode == "none" && !overridden && !burstOverridden {
			continue
		}
		if overridden {
			c.RPS = r
			c.Source = "override"
		}
		c.Burst = int(math.Max(1, math.Ceil(c.RPS)))
		if b, ok := bursts[c.Name]; ok {
			c.Burst = int(math.Max(1, b))
		}
		c.lim = rate.NewLimiter(rate.Limit(c.RPS*timeScale), c.Burst)
		rl.classes = append(rl.classes, &c)
		for _, k := range c.Endpoints {
			rl.byKey[k] = &c
		}
	}
	return rl, nil
}

func classNames() []string {
	var n []string
	for _, c := range rateClassDefaults {
		n = append(n, c.Name)
	}
	sort.Strings(n)
	return n
}

// take consumes a token for endpoint key; when none is available it reports how
// long until one is.
func (rl *rateLimits) take(key string, now time.Time) (time.Duration, bool) {
	c, ok := rl.byKey[key]
	if !ok {
		return 0, true
	}
	r := c.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Second, false
	}
	d := r.DelayFrom(now)
	if d == 0 {
		return 0, true
	}
	r.CancelAt(now)
	return d, false
}

// faultMode is a kind of injected failure.
type faultMode string

const (
	faultNone             faultMode = ""
	fault503              faultMode = "503"
	fault500              faultMode = "500"
	fault429              faultMode = "429"
	faultReset            faultMode = "reset"
	faultAppliedThen503   faultMode = "applied_then_503"
	faultAppliedThenReset faultMode = "applied_then_reset"
)

func (m faultMode) applied() bool { return m == faultAppliedThen503 || m == faultAppliedThenReset }

func parseFaultMode(s string) (faultMode, bool) {
	switch m := faultMode(s); m {
	case fault503, fault500, fault429, faultReset, faultAppliedThen503, faultAppliedThenReset:
		return m, true
	}
	return faultNone, false
}

// faultInjector decides, per request, whether to fail it. Random decisions hash
// (seed, endpoint, n-th request to that endpoint), so a run is reproducible per
// endpoint regardless of how requests to different endpoints interleave.
type faultInjector struct {
	p    float64
	seed int64

	mu     sync.Mutex
	n      map[string]uint64
	queued map[string][]faultMode
}

func newFaultInjector(p float64, seed int64) *faultInjector {
	return &faultInjector{p: p, seed: seed, n: map[string]uint64{}, queued: map[string][]faultMode{}}
}

func (f *faultInjector) enqueue(key string, m faultMode, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range count {
		f.queued[key] = append(f.queued[key], m)
	}
}

func (f *faultInjector) pending() map[string][]faultMode {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]faultMode{}
	for k, v := range f.queued {
		if len(v) > 0 {
			out[k] = append([]faultMode(nil), v...)
		}
	}
	return out
}

func (f *faultInjector) next(key string, mutation bool) faultMode {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.queued[key]; len(q) > 0 {
		f.queued[key] = q[1:]
		return q[0]
	}
	if f.p <= 0 {
		return faultNone
	}
	f.n[key]++
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(f.seed))
	binary.LittleEndian.PutUint64(b[8:], f.n[key])
	h.Write(b[:])
	h.Write([]byte(key))
	x := splitmix(h.Sum64())
	u := float64(x>>11) / (1 << 53)
	if u >= f.p {
		return faultNone
	}
	modes := []faultMode{fault503, fault500, faultReset}
	if mutation {
		modes = append(modes, faultAppliedThen503, faultAppliedThenReset)
	}
	return modes[splitmix(x)%uint64(len(modes))]
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unknownWriteKey counts requests with a method other than GET or HEAD to
// paths the emulator does not serve (they might have been writes).
const unknownWriteKey = "unknown.write"

// Stats is the observability snapshot served at GET /emulator/v1/stats.
type Stats struct {
	// Requests counts answers per endpoint key and HTTP status ("0" = dropped connection).
	Requests map[string]map[string]int64 `json:"requests"`
	// Writes is the part of Requests that went to mutating endpoints (every
	// POST, PUT, PATCH and DELETE endpoint, and unknown.write), whatever the
	// answer: a refused or failed write still reached the emulator.
	Writes map[string]map[string]int64 `json:"writes"`
	// Reads is the rest of Requests (GET endpoints, and unknown GETs).
	Reads map[string]map[string]int64 `json:"reads"`
	// Throttled counts 429s from the rate limiter per endpoint.
	Throttled map[string]int64 `json:"throttled"`
	// Faults counts injected faults per endpoint.
	Faults  map[string]int64 `json:"faults"`
	Objects ObjectCounts     `json:"objects"`
}

// WriteCount is the number of requests to mutating endpoints.
func (s Stats) WriteCount() int64 {
	var n int64
	for _, m := range s.Writes {
		for _, c := range m {
			n += c
		}
	}
	return n
}

type statsRecorder struct {
	mutating  map[string]bool // endpoint keys that write; fixed at start
	mu        sync.Mutex
	requests  map[string]map[string]int64
	throttled map[string]int64
	faults    map[string]int64
}

func newStatsRecorder() *statsRecorder {
	r := &statsRecorder{mutating: map[string]bool{unknownWriteKey: true}}
	r.reset()
	return r
}

func (r *statsRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = map[string]map[string]int64{}
	r.throttled = map[string]int64{}
	r.faults = map[string]int64{}
}

func (r *statsRecorder) request(key string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.requests[key]
	if m == nil {
		m = map[string]int64{}
		r.requests[key] = m
	}
	m[strconv.Itoa(status)]++
}

func (r *statsRecorder) throttle(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.throttled[key]++
}

func (r *statsRecorder) fault(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults[key]++
}

func (r *statsRecorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Stats{Requests: map[string]map[string]int64{}, Writes: map[string]map[string]int64{}, Reads: map[string]map[string]int64{},
		Throttled: map[string]int64{}, Faults: map[string]int64{}}
	for k, m := range r.requests {
		c, rw := map[string]int64{}, map[string]int64{}
		for s, n := range m {
			c[s], rw[s] = n, n
		}
		st.Requests[k] = c
		if r.mutating[k] {
			st.Writes[k] = rw
		} else {
			st.Reads[k] = rw
		}
	}
	for k, n := range r.throttled {
		st.Throttled[k] = n
	}
	for k, n := range r.faults {
		st.Faults[k] = n
	}
	return st
}
