package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Page sizes of the bulk listings an unchanged reconcile needs (issue 18):
// account users in SCIM pages of 1,000 (as plan reads them), clusters in
// pages of 100 (the most clusters/list answers); the workspace's
// assignments and a catalog's schemas come in one answer.
const (
	scimReadPage    = 1000
	clustersPerPage = 100
)

// Read is one kind of read an unchanged reconcile cannot do without.
type Read struct {
	Endpoint string
	Calls    int
	// Paged: the calls are the pages of one listing, each asked with the
	// previous page's token, so they follow each other.
	Paged bool
	What  string
}

// ReconcileReads lists the fewest reads that tell whether n participants
// still have everything (issue 18's "read once, in bulk"): one SCIM listing
// of the account's users, one of the workspace's assignments, one of the
// catalog's schemas, the grants of the catalog and of each shared
// securable, one listing of the clusters under the policy (filtered by
// Cohort's tag), and per participant only what has no list: their schema's
// grants and their cluster's permissions.
func ReconcileReads(n, sharedGrants int) []Read {
	pages := func(per int) int { return max(1, (n+per-1)/per) }
	return []Read{
		{"scim.users.list", pages(scimReadPage), true, fmt.Sprintf("account users, pages of %d", scimReadPage)},
		{"assignments.list", 1, false, "the workspace's assignments"},
		{"schemas.list", 1, false, "the catalog's schemas"},
		{"grants.get", 1 + sharedGrants, false, "grants on the catalog and the shared securables"},
		{"clusters.list", pages(clustersPerPage), true, fmt.Sprintf("clusters under the policy, pages of %d", clustersPerPage)},
		{"grants.get", n, false, "each participant's schema grants"},
		{"permissions.get", n, false, "each participant's cluster permissions"},
	}
}

// perObject are the reads made once per participant (the last of a
// participant's reads: they follow the listings that name the objects).
var perObject = []string{"grants.get", "permissions.get"}

// ReadBound is the lower bound on an unchanged reconcile of N participants,
// computed as LowerBound does for provisioning: the busiest rate-limited
// class's calls at its rate, plus a critical path at typical latencies,
// all divided by the time scale. Here the path is one per-participant read
// (the last read can start no earlier than the rate allows and takes its
// latency), and the rate term is replaced by the longest paged listing when
// that chain of pages takes longer (pages follow each other whatever the
// rate).
type ReadBound struct {
	N          int
	Class      string // the busiest class
	Calls      int    // its calls for N
	RPS        float64
	RateSec    float64 // Calls / (RPS*scale)
	Chain      string  // the longest paged listing
	ChainSec   float64 // its pages x typical latency / scale
	PathSec    float64 // one per-participant read at typical latency / scale
	TotalSec   float64 // max(RateSec, ChainSec) + PathSec
	TimeScale  float64
	Pages      int                // list calls in the plan
	Calls1     int                // every call in the plan
	PerClass   map[string]float64 // seconds per class for N, scaled
	Unmodelled []string           // plan endpoints the config does not know
}

// LowerReadBound computes the bound from the emulator's config.
func LowerReadBound(cfg EmuConfig, n, sharedGrants int) ReadBound {
	scale := cfg.TimeScale
	if scale <= 0 {
		scale = 1
	}
	b := ReadBound{N: n, TimeScale: scale, PerClass: map[string]float64{}}
	classOf := map[string]RateClass{}
	for _, c := range cfg.Classes {
		for _, e := range c.Endpoints {
			classOf[e] = c
		}
	}
	calls := map[string]int{}
	rps := map[string]float64{}
	for _, r := range ReconcileReads(n, sharedGrants) {
		b.Calls1 += r.Calls
		if strings.HasSuffix(r.Endpoint, ".list") {
			b.Pages += r.Calls
		}
		info, ok := cfg.Endpoints[r.Endpoint]
		if !ok && !slices.Contains(b.Unmodelled, r.Endpoint) {
			b.Unmodelled = append(b.Unmodelled, r.Endpoint)
		}
		if r.Paged {
			if sec := float64(r.Calls) * info.TypicalMS / 1000 / scale; sec > b.ChainSec {
				b.Chain, b.ChainSec = fmt.Sprintf("%s x%d", r.Endpoint, r.Calls), sec
			}
		}
		if c, ok := classOf[r.Endpoint]; ok && c.RPS > 0 {
			calls[c.Name] += r.Calls
			rps[c.Name] = c.RPS
		}
	}
	names := make([]string, 0, len(calls))
	for name := range calls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sec := float64(calls[name]) / (rps[name] * scale)
		b.PerClass[name] = sec
		if sec > b.RateSec {
			b.Class, b.Calls, b.RPS, b.RateSec = name, calls[name], rps[name], sec
		}
	}
	for _, e := range perObject {
		b.PathSec = math.Max(b.PathSec, cfg.Endpoints[e].TypicalMS/1000/scale)
	}
	b.TotalSec = math.Max(b.RateSec, b.ChainSec) + b.PathSec
	return b
}

// Duration returns the bound as a duration.
func (b ReadBound) Duration() time.Duration { return time.Duration(b.TotalSec * float64(time.Second)) }

// String explains the bound in one line.
func (b ReadBound) String() string {
	return fmt.Sprintf("%s: %d reads / (%g/s x %g) = %.1fs (longest paged listing %s: %.1fs), + one per-participant read %.2fs (typical latency) = %.1fs; "+
		"%d reads in all, %d of them list pages",
		b.Class, b.Calls, b.RPS, b.TimeScale, b.RateSec, b.Chain, b.ChainSec, b.PathSec, b.TotalSec, b.Calls1, b.Pages)
}
