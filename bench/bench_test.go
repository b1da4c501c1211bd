package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/testkit/drift"
)

// azureConfig is GET /emulator/v1/config trimmed to what the bound reads
// (realistic latencies, azure limits).
const azureConfig = `{
 "latency":"realistic","rate_limits":"azure","time_scale":1,
 "rate_limit_classes":[
  {"name":"scim_write","rps":5,"burst":5,"endpoints":["scim.users.create","scim.users.delete"]},
  {"name":"scim_list","rps":4,"burst":4,"endpoints":["scim.users.list"]},
  {"name":"permissions_write","rps":30,"burst":30,"endpoints":["permissions.update","permissions.set"]},
  {"name":"assignments","rps":10,"burst":10,"endpoints":["assignments.put","assignments.list"]},
  {"name":"unity_catalog","rps":25,"burst":25,"endpoints":["schemas.create","grants.update"]},
  {"name":"clusters","rps":30,"burst":30,"endpoints":["clusters.create","clusters.get","clusters.delete","clusters.list"]}],
 "endpoints":{
  "scim.users.create":{"min_ms":300,"typical_ms":500,"max_ms":1000,"rate_class":"scim_write"},
  "assignments.put":{"min_ms":500,"typical_ms":1000,"max_ms":3000,"rate_class":"assignments"},
  "schemas.create":{"min_ms":200,"typical_ms":500,"max_ms":1000,"rate_class":"unity_catalog"},
  "grants.update":{"min_ms":200,"typical_ms":500,"max_ms":1000,"rate_class":"unity_catalog"},
  "clusters.create":{"min_ms":500,"typical_ms":1000,"max_ms":2000,"rate_class":"clusters"},
  "permissions.update":{"min_ms":200,"typical_ms":400,"max_ms":600,"rate_class":"permissions_write"},
  "clusters.delete":{"min_ms":300,"typical_ms":500,"max_ms":1000,"rate_class":"clusters"},
  "clusters.get":{"min_ms":100,"typical_ms":200,"max_ms":500,"rate_class":"clusters"}},
 "clusters":{"start_typical_ms":300000,"stop_min_ms":30000,"stop_typical_ms":60000,"stop_max_ms":180000}}`

func TestLowerBound(t *testing.T) {
	var cfg EmuConfig
	if err := jsonUnmarshal([]byte(azureConfig), &cfg, "config"); err != nil {
		t.Fatal(err)
	}
	// Critical path: the user (500 ms) and its assignment (1000 ms), then the
	// longer of the two grants (500+500 ms; the schema ran meanwhile) and
	// the cluster's create, terminate and read-back (1000+500+200 ms; its
	// permission, 400 ms, runs beside them) = 3.2 s (the cluster's stop is
	// not waited for).
	tests := []struct {
		name      string
		n         int
		scale     float64
		wantClass string
		wantRate  float64
		wantPath  float64
	}{
		{"1000 at scale 1: SCIM writes bind", 1000, 1, "scim_write", 200, 3.2},
		{"100 at scale 1", 100, 1, "scim_write", 20, 3.2},
		{"10000 at scale 10", 10000, 10, "scim_write", 200, 0.32},
		{"one participant", 1, 1, "scim_write", 0.2, 3.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.TimeScale = tt.scale
			b := LowerBound(c, tt.n)
			if b.Class != tt.wantClass || b.Calls != 1 {
				t.Errorf("busiest class = %s x%d, want %s x1", b.Class, b.Calls, tt.wantClass)
			}
			if !near(b.RateSec, tt.wantRate) || !near(b.PathSec, tt.wantPath) || !near(b.TotalSec, tt.wantRate+tt.wantPath) {
				t.Errorf("bound = %.3f + %.3f = %.3f, want %.3f + %.3f", b.RateSec, b.PathSec, b.TotalSec, tt.wantRate, tt.wantPath)
			}
			// A schema create and two grants at 25/s: 3N/25 = 0.12 N s.
			if got, want := b.PerClass["unity_catalog"], 3*float64(tt.n)/(25*tt.scale); !near(got, want) {
				t.Errorf("unity_catalog = %.3f s, want %.3f s", got, want)
			}
			if len(b.Unmodelled) != 0 {
				t.Errorf("unmodelled endpoints %v", b.Unmodelled)
			}
		})
	}
}

func TestLowerBound_slowerClassBinds(t *testing.T) {
	var cfg EmuConfig
	if err := jsonUnmarshal([]byte(azureConfig), &cfg, "config"); err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Classes {
		if cfg.Classes[i].Name == "clusters" {
			cfg.Classes[i].RPS = 2 // 3 calls per participant at 2/s beat 1 at 5/s
		}
	}
	b := LowerBound(cfg, 100)
	if b.Class != "clusters" || b.Calls != 3 || !near(b.RateSec, 150) {
		t.Errorf("bound = %s x%d %.1fs, want clusters x3 150s", b.Class, b.Calls, b.RateSec)
	}
}

func TestLowerBound_noLimits(t *testing.T) {
	b := LowerBound(EmuConfig{TimeScale: 2, Clusters: ClusterTiming{StopTypicalMS: 1000}}, 50)
	if b.Class != "" || b.RateSec != 0 || b.PathSec != 0 || len(b.Unmodelled) != len(MinCalls) {
		t.Errorf("bound = %+v, want nothing (the stop is not waited for) and every call unmodelled", b)
	}
}

func TestParseStats(t *testing.T) {
	st, err := ParseStats([]byte(`{"requests":{"scim.users.create":{"201":100,"429":7},"clusters.get":{"200":950},
		"clusters.list":{"200":50,"0":1}},"throttled":{"scim.users.create":7},"objects":{"users":100}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Total("scim.users.create"); got != 107 {
		t.Errorf("Total(scim.users.create) = %d, want 107", got)
	}
	if got := st.Status("429"); got != 7 {
		t.Errorf("Status(429) = %d, want 7", got)
	}
	if got := st.Sum(); got != 1108 {
		t.Errorf("Sum = %d, want 1108", got)
	}
	rates := st.PerParticipant(100)
	want := []EndpointRate{{"clusters.get", 9.5}, {"scim.users.create", 1.07}, {"clusters.list", 0.51}}
	if len(rates) != len(want) {
		t.Fatalf("PerParticipant = %v, want %v", rates, want)
	}
	for i := range want {
		if rates[i].Endpoint != want[i].Endpoint || !near(rates[i].PerP, want[i].PerP) {
			t.Errorf("PerParticipant[%d] = %v, want %v", i, rates[i], want[i])
		}
	}
	if got, want := compactCalls(rates, 2), "cl.get 9.50, scim.create 1.07, ... (all: 11.1)"; got != want {
		t.Errorf("compactCalls = %q, want %q", got, want)
	}
	before, _ := ParseStats([]byte(`{"requests":{"scim.users.create":{"201":40}},"throttled":{}}`))
	if d := st.Sub(before); d.Total("scim.users.create") != 67 || d.Total("clusters.get") != 950 {
		t.Errorf("Sub: creates %d gets %d, want 67 and 950", d.Total("scim.users.create"), d.Total("clusters.get"))
	}
	if _, err := ParseStats([]byte(`{"requests":`)); err == nil {
		t.Error("ParseStats accepted truncated JSON")
	}
}

func TestParseProc(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (work er (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 1000000 2000 18446744073709551615"
	cpu, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; cpu != want {
		t.Errorf("cpu = %s, want %s (325 ticks)", cpu, want)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Error("parseStatCPU accepted a short line")
	}
	rss, hwm := parseStatusMem("Name:\tworker\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n")
	if rss != 40960*1024 || hwm != 51200*1024 {
		t.Errorf("rss, hwm = %d, %d, want %d, %d", rss, hwm, 40960*1024, 51200*1024)
	}
}

func TestTimelineSummary(t *testing.T) {
	tl := []timelinePoint{{At: 0}, {At: 30 * time.Second, Creates: 150}, {At: 60 * time.Second, Creates: 300, Terminate: 280},
		{At: 62 * time.Second, Creates: 300, Terminate: 300}}
	got := timelineSummary(tl, 300, Bound{RateSec: 60})
	want := "half the users created at 30s; all users created at 60s (rate term of the bound 60s); every cluster terminating at 62s; " +
		"last sample 62s: 300 creates, 300 terminates, 0 429s; user creates/s per ~30s window: 5.0 5.0"
	if got != want {
		t.Errorf("timelineSummary =\n%s\nwant\n%s", got, want)
	}
}

func TestScaleDuration(t *testing.T) {
	if got := scaleDuration(10*time.Second, 30); got != 333*time.Millisecond {
		t.Errorf("10s/30 = %s, want 333ms", got)
	}
	if got := scaleDuration(10*time.Second, 1); got != 10*time.Second {
		t.Errorf("10s/1 = %s", got)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func TestIdealSchedule(t *testing.T) {
	var cfg EmuConfig
	if err := jsonUnmarshal([]byte(azureConfig), &cfg, "config"); err != nil {
		t.Fatal(err)
	}
	// Without spread in the latencies, the ideal schedule is the bound.
	fixed := cfg
	fixed.Endpoints = map[string]EndpointInfo{}
	for e, info := range cfg.Endpoints {
		info.MinMS, info.MaxMS = info.TypicalMS, info.TypicalMS
		fixed.Endpoints[e] = info
	}
	if b := LowerBound(fixed, 1000); !near(b.IdealSec, b.TotalSec) {
		t.Errorf("ideal = %.3f, want the bound %.3f", b.IdealSec, b.TotalSec)
	}
	// With the spread, the slowest paths stretch the tail: above the bound,
	// below the rate term plus every call at its maximum (11.1 s).
	b := LowerBound(cfg, 1000)
	if hi := b.RateSec + 11.1; b.IdealSec <= b.TotalSec || b.IdealSec > hi {
		t.Errorf("ideal = %.1f, want in (%.1f, %.1f]", b.IdealSec, b.TotalSec, hi)
	}
	if again := IdealSchedule(cfg, b, 200, 1); again != b.IdealSec {
		t.Errorf("IdealSchedule not deterministic: %.3f then %.3f", b.IdealSec, again)
	}
}

// azureEmulatorConfig is the real emulator's GET /emulator/v1/config with
// realistic latencies and Azure's limits.
func azureEmulatorConfig(t *testing.T, scale float64) EmuConfig {
	t.Helper()
	s, err := emulator.New(emulator.Options{Token: "t", Latency: "realistic", RateLimits: "azure", TimeScale: scale})
	if err != nil {
		t.Fatal(err)
	}
	return s.EffectiveConfig()
}

func TestLowerReadBound(t *testing.T) {
	tests := []struct {
		n                     int
		scale                 float64
		wantRate, wantTotal   float64
		wantChain             string
		wantPages, wantCalls1 int
	}{
		// Unity Catalog binds: N schema grants + the catalog's grants + the
		// schema listing at 25/s; then one read (300 ms). Pages: SCIM 1,
		// assignments 1, schemas 1, clusters N/100.
		{300, 1, 302.0 / 25, 302.0/25 + 0.3, "clusters.list x3", 6, 6 + 1 + 600},
		{1000, 1, 1002.0 / 25, 1002.0/25 + 0.3, "clusters.list x10", 13, 13 + 1 + 2000},
		{10000, 10, 10002.0 / 250, 10002.0/250 + 0.03, "clusters.list x100", 112, 112 + 1 + 20000},
	}
	for _, tt := range tests {
		b := LowerReadBound(azureEmulatorConfig(t, tt.scale), tt.n, 0)
		if b.Class != "unity_catalog" || !near(b.RateSec, tt.wantRate) || !near(b.TotalSec, tt.wantTotal) {
			t.Errorf("N=%d: bound %s %.3f total %.3f, want unity_catalog %.3f total %.3f", tt.n, b.Class, b.RateSec, b.TotalSec, tt.wantRate, tt.wantTotal)
		}
		if b.Chain != tt.wantChain || b.Pages != tt.wantPages || b.Calls1 != tt.wantCalls1 || len(b.Unmodelled) != 0 {
			t.Errorf("N=%d: chain %q pages %d calls %d unmodelled %v, want %q %d %d none", tt.n, b.Chain, b.Pages, b.Calls1, b.Unmodelled, tt.wantChain, tt.wantPages, tt.wantCalls1)
		}
		if got := b.PerClass["permissions_read"]; !near(got, float64(tt.n)/(100*tt.scale)) {
			t.Errorf("N=%d: permissions_read %.3f s, want N/100/scale", tt.n, got)
		}
	}
	// Shared grants add one catalog-class read each.
	if b := LowerReadBound(azureEmulatorConfig(t, 1), 300, 2); b.Calls != 304 {
		t.Errorf("with 2 shared grants: %d unity_catalog reads, want 304", b.Calls)
	}
	// A slow listing binds when its pages take longer than the rate term.
	cfg := azureEmulatorConfig(t, 1)
	info := cfg.Endpoints["clusters.list"]
	info.TypicalMS = 10000
	cfg.Endpoints["clusters.list"] = info
	if b := LowerReadBound(cfg, 300, 0); !near(b.TotalSec, 30+0.3) {
		t.Errorf("10 s pages: total %.2f, want the 3 pages' 30 s + 0.3 s", b.TotalSec)
	}
}

func TestPlanDrift(t *testing.T) {
	for _, n := range []int{9, 300, 1000, 10000} {
		plan, err := planDrift(n, 0.01, 7)
		if err != nil {
			t.Fatalf("N=%d: %v", n, err)
		}
		if want := max((n+99)/100, 9); len(plan) != want {
			t.Errorf("N=%d: %d drifted, want %d", n, len(plan), want)
		}
		per := map[drift.Kind]int{}
		seen := map[int]bool{}
		for _, d := range plan {
			per[d.Kind]++
			if seen[d.Index] || d.Index < 0 || d.Index >= n {
				t.Errorf("N=%d: index %d twice or out of range", n, d.Index)
			}
			seen[d.Index] = true
		}
		for _, k := range drift.Kinds {
			if per[k] == 0 {
				t.Errorf("N=%d: no participant with %s", n, k)
			}
		}
		if per[drift.Running] != 1 {
			t.Errorf("N=%d: %d running, want exactly 1", n, per[drift.Running])
		}
		again, _ := planDrift(n, 0.01, 7)
		if !slices.Equal(plan, again) {
			t.Errorf("N=%d: plan not reproducible", n)
		}
	}
	if _, err := planDrift(8, 0.01, 7); err == nil {
		t.Error("planDrift(8): want an error (9 kinds)")
	}
}

func TestJudgeDryRun(t *testing.T) {
	for _, tc := range []struct {
		code        int
		stderr      string
		unsupported bool
		verdict     string
	}{
		{2, "starter: reconcile: flag provided but not defined: -dry-run; valid flags: --address, ...", true, ""},
		{2, "starter: reconcile: expected one roster FILE.csv or BATCH id, got 0 arguments", false, "exit 2"},
		{1, "", false, "drift found"},
		{0, "", false, "NO drift found"},
	} {
		ph := reconcilePhase{Run: starterRun{ExitCode: tc.code, Stderr: tc.stderr}}
		judgeDryRun(&ph)
		if (ph.Unsupported != "") != tc.unsupported || !strings.Contains(ph.Verdict, tc.verdict) {
			t.Errorf("exit %d %q: unsupported %q verdict %q", tc.code, tc.stderr, ph.Unsupported, ph.Verdict)
		}
	}
	if got := mentions("a@x.org: schema re-created\nc@x.org: ok", []string{"a@x.org", "b@x.org", "c@x.org"}); !slices.Equal(got, []string{"a@x.org", "c@x.org"}) {
		t.Errorf("mentions = %v", got)
	}
	if m := batchIDPattern.FindStringSubmatch("validated 300 participants (300 new) -> batch 2026-12-07-3f9c\n"); m == nil || m[1] != "2026-12-07-3f9c" {
		t.Errorf("batch id from submit output: %v", m)
	}
}

// The emulator's -v request lines become requests that began elapsed before
// their answer; control calls (the harness's own) are left out.
func TestParseEmuLog(t *testing.T) {
	log := `listening on http://127.0.0.1:40623
time=2026-12-07T14:05:47.933Z level=DEBUG msg=request method=GET path=/api/2.1/clusters/list endpoint=clusters.list status=200 elapsed=268.820396ms
time=2026-12-07T14:05:48.020Z level=DEBUG msg=request method=GET path=/emulator/v1/stats endpoint=control status=200 elapsed=157.243µs
time=2026-12-07T14:05:49.500Z level=DEBUG msg=request method=POST path=/api/2.0/accounts/a/scim/v2/Users endpoint=scim.users.create status=201 elapsed=1.5s
`
	reqs, err := parseEmuLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2 (the control call left out): %+v", len(reqs), reqs)
	}
	c := reqs[1]
	want := time.Date(2026, 12, 7, 14, 5, 48, 0, time.UTC)
	if c.Endpoint != "scim.users.create" || c.Status != 201 || !c.Start.Equal(want) || c.End.Sub(c.Start) != 1500*time.Millisecond {
		t.Errorf("create = %+v, want it to start at %s and last 1.5s", c, want)
	}
}

// The starter's marks are found also behind a progress bar drawn on the
// same line.
func TestParseStarterMarks(t *testing.T) {
	log := "trace 2026-12-07T14:05:47.1Z +0.010s config loaded\n" +
		"\r provisioning ok 3 |██  | trace 2026-12-07T14:06:47.5Z +60.400s batch phase \"done\" seen (300 of 300 done)\n" +
		"trace garbage\n"
	marks := parseStarterMarks(strings.NewReader(log))
	if len(marks) != 2 || marks[0].Event != "config loaded" || marks[1].Event != `batch phase "done" seen (300 of 300 done)` ||
		marks[1].At.Sub(marks[0].At) != 60400*time.Millisecond {
		t.Errorf("marks = %+v", marks)
	}
}
