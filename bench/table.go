package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// row is one way at one N.
type row struct {
	Way        string
	N          int
	TimeScale  float64
	Wall       time.Duration // extrapolated to N for sampled ways
	Sample     int           // 0: all N were provisioned
	SampleWall time.Duration
	Bound      Bound
	Calls      []EndpointRate
	Status429  int64
	Stats      EmuStats
	Cohort     *cohortResult
	Note       string
}

func yamlUnmarshal(b []byte, v any) error { return yaml.Unmarshal(b, v) }

// serverName says which Temporal server the cohort way ran on.
func serverName(o *options) string {
	if o.temporalKind == "postgres" {
		return "Temporal server on PostgreSQL (server and PostgreSQL processes together)"
	}
	return "Temporal dev server"
}

func printHeader(o *options, args []string) {
	fmt.Printf("## Cohort benchmark, %s\n\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Printf("command: `go run ./bench %s`\n\n", strings.Join(args, " "))
	fmt.Printf("machine: %d CPU (nproc), %s, %s, %s/%s\n\n", runtime.NumCPU(), memTotal(), goVersion(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("emulator: --latency %s --rate-limits %s --time-scale %g --seed %d, a fresh emulator and a fresh participant domain per way\n",
		o.latency, o.rateLimits, o.timeScale, o.seed)
	if len(o.emulatorFlags) > 0 {
		fmt.Printf("emulator, also: %s\n", strings.Join(o.emulatorFlags, " "))
	}
	fmt.Printf("cohort's Temporal: %s\n", serverName(o))
	if len(o.dynamic) > 0 {
		fmt.Printf("dev server: --dynamic-config-value %s\n", strings.Join(o.dynamic, " --dynamic-config-value "))
	}
	if len(o.batchOverrides) > 0 {
		keys := make([]string, 0, len(o.batchOverrides))
		for k := range o.batchOverrides {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, o.batchOverrides[k]))
		}
		fmt.Printf("batch overrides (BENCH.yaml): %s\n", strings.Join(parts, " "))
	}
	if len(o.extraConfig) > 0 {
		fmt.Printf("extra config: %s\n", strings.Join(o.extraConfig, ", "))
		for _, c := range o.extraConfig {
			if b, err := os.ReadFile(c); err == nil {
				fmt.Printf("```yaml\n%s```\n", b)
			}
		}
	}
	if o.concurrent && len(o.ways) > 1 {
		fmt.Printf("baselines ran at the same time as Cohort, each on its own emulator (they are latency-bound and idle the CPU)\n")
	}
	fmt.Println()
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "? GiB RAM"
	}
	_, hwm := parseStatusMem(strings.Replace(string(b), "MemTotal", "VmHWM", 1))
	return fmt.Sprintf("%.0f GiB RAM", float64(hwm)/(1<<30))
}

func goVersion() string {
	out, err := exec.Command("go", "version").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%.1fh", d.Hours())
	case d >= 10*time.Second:
		return fmt.Sprintf("%.0fs", d.Seconds())
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}

func printTable(o *options, rows []row) {
	if len(rows) == 0 {
		return
	}
	fmt.Println("| way | N | time-scale | wall | lower bound | wall/bound | ideal schedule (wall/ideal) | API calls per participant (top endpoints) | 429s | history events/participant | worker CPU/participant | worker peak RSS |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
	for _, r := range rows {
		wall := fmtDur(r.Wall)
		if r.Sample > 0 && r.Sample < r.N {
			wall = fmt.Sprintf("%s (extrapolated from %d: %s)", wall, r.Sample, fmtDur(r.SampleWall))
		}
		ratio := r.Wall.Seconds() / r.Bound.TotalSec
		hist, cpu, rss := "-", "-", "-"
		if c := r.Cohort; c != nil {
			hist = fmt.Sprintf("%.1f", float64(c.Hist.Events)/float64(r.N))
			cpu = fmt.Sprintf("%.2f ms", float64(c.WorkerCPU.Microseconds())/1000/float64(r.N))
			rss = fmt.Sprintf("%.0f MB", float64(c.WorkerHWM)/(1<<20))
		}
		ideal := fmt.Sprintf("%s (%.2f)", fmtDur(time.Duration(r.Bound.IdealSec*float64(time.Second))), r.Wall.Seconds()/r.Bound.IdealSec)
		fmt.Printf("| %s | %d | %g | %s | %s | %.2f | %s | %s | %d | %s | %s | %s |\n", r.Way, r.N, r.TimeScale, wall,
			fmtDur(r.Bound.Duration()), ratio, ideal, compactCalls(r.Calls, 6), r.Status429, hist, cpu, rss)
	}
	fmt.Println()

	// Speedups per N.
	byN := map[int]map[string]row{}
	var ns []int
	for _, r := range rows {
		if byN[r.N] == nil {
			byN[r.N] = map[string]row{}
			ns = append(ns, r.N)
		}
		byN[r.N][r.Way] = r
	}
	for _, n := range ns {
		c, ok := byN[n]["cohort"]
		if !ok || c.Wall <= 0 {
			continue
		}
		var parts []string
		for way, r := range byN[n] {
			if way != "cohort" {
				parts = append(parts, fmt.Sprintf("%.1fx faster than %s", r.Wall.Seconds()/c.Wall.Seconds(), way))
			}
		}
		sort.Strings(parts)
		if len(parts) > 0 {
			fmt.Printf("- N=%d: Cohort is %s.\n", n, strings.Join(parts, ", "))
		}
	}
	fmt.Println()

	for _, r := range rows {
		fmt.Printf("### %s, N=%d\n\n", r.Way, r.N)
		fmt.Printf("- lower bound: %s\n", r.Bound)
		var pc []string
		for _, k := range slices.Sorted(maps.Keys(r.Bound.PerClass)) {
			pc = append(pc, fmt.Sprintf("%s %.1fs", k, r.Bound.PerClass[k]))
		}
		fmt.Printf("- minimum-call time per rate class at N: %s\n", strings.Join(pc, ", "))
		if r.Note != "" {
			fmt.Printf("- note: %s\n", r.Note)
		}
		var all []string
		for _, c := range r.Calls {
			all = append(all, fmt.Sprintf("%s %s", c.Endpoint, trimFloat(c.PerP)))
		}
		per := r.N
		if r.Sample > 0 {
			per = r.Sample
		}
		fmt.Printf("- API calls per participant (over %d): %s\n", per, strings.Join(all, ", "))
		if len(r.Stats.Throttled) > 0 {
			fmt.Printf("- 429s by endpoint: %s\n", counts(r.Stats.Throttled))
		}
		var errs []string
		for _, e := range slices.Sorted(maps.Keys(r.Stats.Requests)) {
			for st, n := range r.Stats.Requests[e] {
				if st >= "400" || st == "0" {
					errs = append(errs, fmt.Sprintf("%s %s x%d", e, st, n))
				}
			}
		}
		if len(errs) > 0 {
			sort.Strings(errs)
			fmt.Printf("- error answers: %s\n", strings.Join(errs, ", "))
		}
		if c := r.Cohort; c != nil {
			h := c.Hist
			fmt.Printf("- starter: exit %d, %q\n", c.ExitCode, c.StarterTail)
			fmt.Printf("- Temporal runs: %d (%s); by status: %s; still running after the starter returned: %d\n",
				h.Runs, counts(h.RunsByType), counts(h.ByStatus), h.StillOpen)
			var ev []string
			for _, t := range slices.Sorted(maps.Keys(h.ByType)) {
				ev = append(ev, fmt.Sprintf("%s %.2f (max run %d)", t, float64(h.ByType[t])/float64(r.N), h.MaxByType[t]))
			}
			fmt.Printf("- history events per participant: %.2f total = %s\n", float64(h.Events)/float64(r.N), strings.Join(ev, " + "))
			fmt.Printf("- max history length of any single run: %d (%s)\n", h.Max, h.MaxRun)
			fmt.Printf("- worker: CPU %.1fs total (%.2f ms/participant), peak RSS (VmHWM) %.0f MB, max sampled RSS %.0f MB\n",
				c.WorkerCPU.Seconds(), float64(c.WorkerCPU.Microseconds())/1000/float64(r.N), float64(c.WorkerHWM)/(1<<20), float64(c.WorkerRSSMax)/(1<<20))
			fmt.Printf("- %s: CPU %.1fs total (%.2f ms/participant, %.0f%% of one core over the wall time), peak RSS %.0f MB\n",
				serverName(o), c.ServerCPU.Seconds(), float64(c.ServerCPU.Microseconds())/1000/float64(r.N), 100*c.ServerCPU.Seconds()/c.Wall.Seconds(), float64(c.ServerHWM)/(1<<20))
			fmt.Printf("- timeline: %s\n", timelineSummary(c.Timeline, r.N, r.Bound))
			fmt.Printf("- machine load average (1, 5, 15 min) at the starter's launch / exit: %s / %s\n", c.LoadAt[0], c.LoadAt[1])
			fmt.Printf("- fixed part: %s\n", c.Breakdown.fixed())
			fmt.Printf("- milestones (s since the starter's launch): %s\n", c.Breakdown.timeline())
			if c.Breakdown.LastPath != "" {
				fmt.Printf("- last participant's steps (scheduled/started/done, s since launch): %s\n", c.Breakdown.LastPath)
			}
		}
		fmt.Println()
	}
}

// timelineSummary says when the rate-limited phase ended: when all users
// were created, when the last cluster terminate was sent, and how that
// compares with the bound's rate term.
func timelineSummary(tl []timelinePoint, n int, b Bound) string {
	if len(tl) == 0 {
		return "no samples"
	}
	var parts []string
	at := func(pred func(timelinePoint) bool) (time.Duration, bool) {
		for _, p := range tl {
			if pred(p) {
				return p.At, true
			}
		}
		return 0, false
	}
	if t, ok := at(func(p timelinePoint) bool { return p.Creates >= int64(n)/2 }); ok {
		parts = append(parts, fmt.Sprintf("half the users created at %s", fmtDur(t)))
	}
	if t, ok := at(func(p timelinePoint) bool { return p.Creates >= int64(n) }); ok {
		parts = append(parts, fmt.Sprintf("all users created at %s (rate term of the bound %.0fs)", fmtDur(t), b.RateSec))
	}
	if t, ok := at(func(p timelinePoint) bool { return p.Terminate >= int64(n) }); ok {
		parts = append(parts, fmt.Sprintf("every cluster terminating at %s", fmtDur(t)))
	}
	last := tl[len(tl)-1]
	parts = append(parts, fmt.Sprintf("last sample %s: %d creates, %d terminates, %d 429s", fmtDur(last.At), last.Creates, last.Terminate, last.Throttled))
	// Creates per second over 30 s windows: the achieved SCIM write rate.
	var rates []string
	var prev timelinePoint
	for _, p := range tl {
		if p.At-prev.At >= 30*time.Second {
			rates = append(rates, fmt.Sprintf("%.1f", float64(p.Creates-prev.Creates)/(p.At-prev.At).Seconds()))
			prev = p
		}
	}
	if len(rates) > 0 {
		parts = append(parts, "user creates/s per ~30s window: "+strings.Join(rates, " "))
	}
	return strings.Join(parts, "; ")
}

// counts renders "key n, key n" in key order.
func counts[V int | int64](m map[string]V) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
