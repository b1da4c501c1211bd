package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/cohort-dev/cohort/emulator"
)

// The emulator's own description of itself (GET /emulator/v1/config): rate
// classes and latencies at time scale 1, and the time scale.
type (
	EmuConfig     = emulator.Config
	RateClass     = emulator.RateClass
	EndpointInfo  = emulator.EndpointInfo
	ClusterTiming = emulator.ClusterTiming
)

// MinCalls is the fewest calls one participant needs: create the user,
// assign it to the workspace, create its schema, grant on the catalog and on
// the schema, create the cluster, set CAN_RESTART, terminate the cluster and
// read it back as TERMINATING once. (The cluster need not reach RUNNING: a
// PENDING cluster may be terminated; nor TERMINATED, which Databricks reaches
// on its own.)
var MinCalls = []string{
	"scim.users.create", "assignments.put",
	"schemas.create", "grants.update", "grants.update",
	"clusters.create", "permissions.update", "clusters.delete", "clusters.get",
}

// callAfter says which MinCalls (by index) each call must wait for: the
// schema needs nothing, grants need the user assigned and the schema, the
// cluster needs the user assigned (its single user must be in the
// workspace), its permission and terminate need the cluster. The critical
// path is the longest chain through them.
var callAfter = [][]int{
	{}, {0},
	{}, {1, 2}, {3},
	{1}, {5}, {5}, {7},
}

// criticalPath is the longest chain of MinCalls, with latency(i) for call i.
func criticalPath(latency func(i int) float64) float64 {
	end := make([]float64, len(MinCalls))
	var longest float64
	for i := range MinCalls { // callAfter only points back
		var start float64
		for _, j := range callAfter[i] {
			start = math.Max(start, end[j])
		}
		end[i] = start + latency(i)
		longest = math.Max(longest, end[i])
	}
	return longest
}

// Bound is the lower bound on provisioning N participants: the busiest
// rate-limited class's minimum calls at its rate, plus one participant's
// critical path (the longest chain of its calls that must follow each other,
// at typical latencies), at the emulator's time scale.
type Bound struct {
	N          int
	Class      string  // the busiest class
	IdealSec   float64 // expected wall of an ideal schedule (see IdealSchedule)
	Calls      int     // its minimum calls per participant
	RPS        float64 // its rate at time scale 1
	RateSec    float64 // Calls*N / (RPS*scale)
	PathSec    float64 // critical path / scale
	TotalSec   float64
	TimeScale  float64
	PerClass   map[string]float64 // seconds per class for N, scaled
	Unmodelled []string           // MinCalls endpoints the config does not know
}

// LowerBound computes the bound for n participants from the emulator's config.
func LowerBound(cfg EmuConfig, n int) Bound {
	scale := cfg.TimeScale
	if scale <= 0 {
		scale = 1
	}
	b := Bound{N: n, TimeScale: scale, PerClass: map[string]float64{}}
	classOf := map[string]RateClass{}
	for _, c := range cfg.Classes {
		for _, e := range c.Endpoints {
			classOf[e] = c
		}
	}
	calls := map[string]int{}
	for _, e := range MinCalls {
		if _, ok := cfg.Endpoints[e]; !ok {
			b.Unmodelled = append(b.Unmodelled, e)
		}
		if c, ok := classOf[e]; ok && c.RPS > 0 {
			calls[c.Name]++
		}
	}
	pathMS := criticalPath(func(i int) float64 { return cfg.Endpoints[MinCalls[i]].TypicalMS })
	names := make([]string, 0, len(calls))
	for name := range calls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var rps float64
		for _, c := range cfg.Classes {
			if c.Name == name {
				rps = c.RPS
			}
		}
		sec := float64(calls[name]*n) / (rps * scale)
		b.PerClass[name] = sec
		if sec > b.RateSec {
			b.Class, b.Calls, b.RPS, b.RateSec = name, calls[name], rps, sec
		}
	}
	b.PathSec = pathMS / 1000 / scale
	b.TotalSec = b.RateSec + b.PathSec
	b.IdealSec = IdealSchedule(cfg, b, 200, 1)
	return b
}

// IdealSchedule is the expected wall time of a perfect orchestrator: the
// participants start exactly at the busiest class's rate (participant i at
// i*Calls/rate), each then makes its calls as soon as the calls they depend on
// returned, with latencies drawn like the emulator draws them
// (triangular min/typical/max), and the
// batch ends when the last participant's last call returns. The bound's
// typical critical path leaves out that spread; the last participant to
// finish is not always the last one started. It is the mean over trials
// seeded runs.
func IdealSchedule(cfg EmuConfig, b Bound, trials int, seed uint64) float64 {
	if b.N <= 0 || trials <= 0 {
		return 0
	}
	scale := b.TimeScale
	step := 0.0
	if b.RateSec > 0 {
		step = b.RateSec / float64(b.N)
	}
	rng := rand.New(rand.NewPCG(seed, 0x626f756e64))
	var sum float64
	for range trials {
		var worst float64
		for i := range b.N {
			path := criticalPath(func(i int) float64 {
				info := cfg.Endpoints[MinCalls[i]]
				return emulator.Triangular(rng.Float64(), info.MinMS, info.TypicalMS, info.MaxMS) / 1000 / scale
			})
			worst = math.Max(worst, float64(i+1)*step+path)
		}
		sum += worst
	}
	return sum / float64(trials)
}

// Duration returns the bound as a duration.
func (b Bound) Duration() time.Duration { return time.Duration(b.TotalSec * float64(time.Second)) }

// String explains the bound in one line.
func (b Bound) String() string {
	return fmt.Sprintf("%s: %d call(s)/participant x %d / (%g/s x %g) = %.1fs, + critical path %.1fs (typical latencies) = %.1fs; "+
		"an ideal schedule with the emulator's latency spread would take %.1fs (%.2fx the bound)",
		b.Class, b.Calls, b.N, b.RPS, b.TimeScale, b.RateSec, b.PathSec, b.TotalSec, b.IdealSec, b.IdealSec/b.TotalSec)
}

// EmuStats is GET /emulator/v1/stats.
type EmuStats struct {
	Requests map[string]map[string]int64 `json:"requests"`
	// Writes is the part of Requests to mutating endpoints (the emulator's
	// routes say which), whatever the answer.
	Writes    map[string]map[string]int64 `json:"writes"`
	Throttled map[string]int64            `json:"throttled"`
	Faults    map[string]int64            `json:"faults"`
	Objects   map[string]any              `json:"objects"`
}

// ParseStats decodes a stats answer.
func ParseStats(data []byte) (EmuStats, error) {
	var s EmuStats
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("decode emulator stats: %w", err)
	}
	return s, nil
}

// Total is the number of answers to one endpoint, every status.
func (s EmuStats) Total(endpoint string) int64 {
	var n int64
	for _, c := range s.Requests[endpoint] {
		n += c
	}
	return n
}

// Status counts answers with one HTTP status over all endpoints.
func (s EmuStats) Status(status string) int64 {
	var n int64
	for _, m := range s.Requests {
		n += m[status]
	}
	return n
}

// WriteCount is the number of requests to mutating endpoints.
func (s EmuStats) WriteCount() int64 {
	var n int64
	for _, m := range s.Writes {
		for _, c := range m {
			n += c
		}
	}
	return n
}

// Sum counts every answer.
func (s EmuStats) Sum() int64 {
	var n int64
	for e := range s.Requests {
		n += s.Total(e)
	}
	return n
}

// Sub returns s minus an earlier snapshot (for per-phase counts).
func (s EmuStats) Sub(before EmuStats) EmuStats {
	out := EmuStats{Requests: subCounts(s.Requests, before.Requests), Writes: subCounts(s.Writes, before.Writes), Throttled: map[string]int64{}}
	for e, n := range s.Throttled {
		if d := n - before.Throttled[e]; d != 0 {
			out.Throttled[e] = d
		}
	}
	return out
}

// subCounts is a minus b, per endpoint and status, leaving out zeros.
func subCounts(a, b map[string]map[string]int64) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for e, m := range a {
		for st, n := range m {
			if d := n - b[e][st]; d != 0 {
				if out[e] == nil {
					out[e] = map[string]int64{}
				}
				out[e][st] = d
			}
		}
	}
	return out
}

// EndpointRate is calls per participant to one endpoint.
type EndpointRate struct {
	Endpoint string
	PerP     float64
}

// PerParticipant lists calls per participant per endpoint, busiest first
// (ties by name), for endpoints with any call.
func (s EmuStats) PerParticipant(n int) []EndpointRate {
	var out []EndpointRate
	for e := range s.Requests {
		if t := s.Total(e); t > 0 {
			out = append(out, EndpointRate{e, float64(t) / float64(max(n, 1))})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PerP != out[j].PerP {
			return out[i].PerP > out[j].PerP
		}
		return out[i].Endpoint < out[j].Endpoint
	})
	return out
}

// shortEndpoint abbreviates an endpoint key for the table.
func shortEndpoint(e string) string {
	r := strings.NewReplacer("scim.users.", "scim.", "assignments.", "assign.", "permissions.", "perm.", "clusters.", "cl.")
	return r.Replace(e)
}

// compactCalls renders the top k endpoints per participant, and the total.
func compactCalls(rates []EndpointRate, k int) string {
	var parts []string
	var total float64
	for i, r := range rates {
		total += r.PerP
		if i < k {
			parts = append(parts, fmt.Sprintf("%s %s", shortEndpoint(r.Endpoint), trimFloat(r.PerP)))
		}
	}
	if len(rates) > k {
		parts = append(parts, "...")
	}
	return fmt.Sprintf("%s (all: %s)", strings.Join(parts, ", "), trimFloat(total))
}

func trimFloat(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", math.Round(f*100)/100)
	}
}
