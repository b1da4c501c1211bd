// Command bench measures how close Cohort comes to Databricks' own limits,
// against what an admin would otherwise do, on the local emulator (issue 5).
// It prints figures; it asserts nothing.
//
//	go run ./bench -n 100,1000 -time-scale 1 -ways cohort,sequential,parallel10
//	go run ./bench -n 10000 -time-scale 10 -ways cohort
//	go run ./bench -limits-proof -n 5000 -time-scale 20
//	go run ./bench -reconcile -n 300 -time-scale 1
//	go run ./bench -usage -n 1000,10000 -time-scale 20
//
// For each N, each way runs on a FRESH emulator (--latency realistic
// --rate-limits azure --time-scale X) with a fresh participant domain:
//
//   - cohort: a fresh Temporal dev server (SQLite file; with -temporal postgres
//     the server on a fresh local PostgreSQL, scripts/temporal-postgres.sh), the worker and
//     `starter submit --wait`, with the default config (examples/cohort.yaml)
//     plus the emulator's hosts and BENCH.yaml (roster_dir, and the
//     time-dependent settings divided by the time scale).
//   - sequential: the seed's approach, a plain loop over the same steps with
//     the SDK's defaults, on a sample of -sample-seq participants, the wall
//     time extrapolated linearly to N.
//   - parallel10: the same steps, 10 participants at a time (Terraform's
//     default parallelism), on a sample of -sample-par, extrapolated.
//
// Baselines run at the same time as Cohort (-concurrent, default), each on
// its own emulator: they are latency-bound and use little CPU.
//
// -reconcile (issue 18, reconcile.go) instead provisions N participants with
// Cohort, then measures `starter reconcile` on the unchanged event and, after
// drifting 1 % of them (testkit/drift: every kind, one running cluster), a
// dry run and a reconcile, with held-out REST checks of everyone.
//
// Binaries (worker, starter, emulator) are built afresh into a temporary
// directory at every invocation, so a run measures the current code.
// Every process started is stopped at the end, on error and on Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"

	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cohort-dev/cohort/roster"
)

type options struct {
	ns           []int
	ways         []string
	timeScale    float64
	latency      string
	rateLimits   string
	seed         int64
	sampleSeq    int
	samplePar    int
	parallel     int
	concurrent   bool
	limitsProof  bool
	temporal     string // the CLI
	temporalKind string // dev or postgres
	dynamic      []string
	baseConfig   string
	extraConfig  []string
	// emulatorFlags are added to every emulator's command line.
	emulatorFlags listFlag
	keep          bool
	timeout       time.Duration
	debugAddr     string

	// The reconcile mode (see reconcile.go).
	reconcile bool
	// usage: the usage read's mode (usage.go).
	usage          bool
	driftShare     float64
	verifyParallel int

	batchOverrides map[string]int
	binDir         string
	root           string // the module root
}

func (o *options) bin(name string) string { return filepath.Join(o.binDir, name) }

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{batchOverrides: map[string]int{}}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	ns := fs.String("n", "100", "comma-separated participant counts")
	ways := fs.String("ways", "cohort,sequential,parallel10", "comma-separated ways: cohort, sequential, parallel10")
	fs.Float64Var(&o.timeScale, "time-scale", 1, "emulator --time-scale (latencies, cluster delays and rate windows run this many times faster)")
	fs.StringVar(&o.latency, "latency", "realistic", "emulator --latency")
	fs.StringVar(&o.rateLimits, "rate-limits", "azure", "emulator --rate-limits")
	fs.Int64Var(&o.seed, "seed", 7, "emulator and roster seed")
	fs.IntVar(&o.sampleSeq, "sample-seq", 5, "participants the sequential loop provisions (extrapolated to N)")
	fs.IntVar(&o.samplePar, "sample-par", 50, "participants the parallel loop provisions (extrapolated to N)")
	fs.IntVar(&o.parallel, "parallel", 10, "parallelism of the parallel way")
	fs.BoolVar(&o.concurrent, "concurrent", true, "run the baselines at the same time as Cohort (each on its own emulator)")
	fs.BoolVar(&o.limitsProof, "limits-proof", false, "Cohort only, on a dev server with limit.numPendingChildExecutions.error=50 and limit.historyCount.error=3000, batch settings below them")
	var dyn listFlag
	fs.Var(&dyn, "dynamic-config", "extra dev server --dynamic-config-value KEY=VALUE (repeatable)")
	fs.StringVar(&o.temporalKind, "temporal", "dev", "Cohort's Temporal server: dev (the CLI's dev server on SQLite) or postgres (scripts/temporal-postgres.sh: the server on a local PostgreSQL)")
	fs.StringVar(&o.temporal, "temporal-cli", "", "Temporal CLI (default $TEMPORAL_CLI, temporal on PATH, or $GOPATH/bin/temporal)")
	fs.StringVar(&o.baseConfig, "config", "examples/cohort.yaml", "Cohort's base config (the default config)")
	var extra listFlag
	fs.Var(&extra, "extra-config", "YAML layered after BENCH.yaml for experiments (repeatable)")
	fs.Var(&o.emulatorFlags, "emulator-flag", "extra emulator flag, e.g. --max-account-users=20000 for an account whose cap was raised (repeatable)")
	chunk := fs.Int("chunk-size", 0, "override batch.chunk_size")
	inflight := fs.Int("max-in-flight", 0, "override batch.max_in_flight")
	parChunks := fs.Int("parallel-chunks", 0, "override batch.parallel_chunks")
	perRun := fs.Int("chunks-per-run", 0, "override batch.chunks_per_run")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, SQLite file, configs)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Hour, "give up on the whole invocation after this long")
	fs.StringVar(&o.debugAddr, "worker-debug-addr", "", "start the worker with --debug-addr `host:port` (pprof, to profile it during a run)")
	fs.BoolVar(&o.usage, "usage", false, "in process, no Temporal: N clusters seeded, then Cohort's usage read (UsageChunk) over them twice, against the clusters/events rate bound (issue 19)")
	fs.BoolVar(&o.reconcile, "reconcile", false, "Cohort only: provision N participants, then measure reconcile on the unchanged event and with -drift-share of them drifted (issue 18)")
	fs.Float64Var(&o.driftShare, "drift-share", 0.01, "with -reconcile: share of participants drifted (at least one per kind of drift)")
	fs.IntVar(&o.verifyParallel, "verify-parallel", 8, "with -reconcile: per-participant reads of the held-out check at once (8 keeps Azure's 25 UC reads/s at realistic latencies)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, s := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(s, "_", "")))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-n: %q is not a positive count", s)
		}
		o.ns = append(o.ns, n)
	}
	for _, w := range strings.Split(*ways, ",") {
		switch w = strings.TrimSpace(w); w {
		case "cohort", "sequential", "parallel10":
			o.ways = append(o.ways, w)
		default:
			return nil, fmt.Errorf("-ways: unknown way %q (cohort, sequential, parallel10)", w)
		}
	}
	if o.timeScale <= 0 {
		return nil, errors.New("-time-scale must be positive")
	}
	switch o.temporalKind {
	case "dev":
	case "postgres":
		if len(dyn) > 0 || o.limitsProof {
			return nil, errors.New("-dynamic-config and -limits-proof set the dev server's flags: use -temporal dev")
		}
	default:
		return nil, fmt.Errorf("-temporal: %q is neither dev nor postgres", o.temporalKind)
	}
	o.dynamic, o.extraConfig = dyn, extra
	if o.reconcile {
		if o.limitsProof {
			return nil, errors.New("-reconcile and -limits-proof are separate runs: give one")
		}
		if o.driftShare < 0 || o.driftShare > 1 {
			return nil, fmt.Errorf("-drift-share: %g is not a share between 0 and 1", o.driftShare)
		}
		o.ways = []string{"cohort"}
	}
	if o.limitsProof {
		o.ways = []string{"cohort"}
		o.dynamic = append(o.dynamic, "limit.numPendingChildExecutions.error=50", "limit.historyCount.error=3000")
		// Below the scaled-down limits: 40 children in flight per chunk run
		// (80/2), chunks of 250 participants (~7 events each: ~1,750 events,
		// well under 3,000), 2 chunks pending per batch run and 4 chunks per
		// batch run before it continues as new.
		o.batchOverrides = map[string]int{"chunk_size": 250, "max_in_flight": 80, "parallel_chunks": 2, "chunks_per_run": 4}
	}
	for k, v := range map[string]int{"chunk_size": *chunk, "max_in_flight": *inflight, "parallel_chunks": *parChunks, "chunks_per_run": *perRun} {
		if v > 0 {
			o.batchOverrides[k] = v
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.root, err = moduleRoot(); err != nil {
		return err
	}
	if err := os.Chdir(o.root); err != nil {
		return err
	}
	if o.usage {
		work, err := os.MkdirTemp("", "cohort-bench-usage-*")
		if err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(work)
		}
		printHeader(o, args)
		return runUsage(ctx, o, work)
	}
	if o.temporal, err = findTemporal(o.temporal); err != nil {
		return err
	}
	if o.temporalKind == "postgres" {
		// The script installs what is missing itself; done here once, so
		// the server's first build (minutes) is not taken for a slow start.
		mk := exec.CommandContext(ctx, "make", "--no-print-directory", "-s", "tools", "temporal-server")
		mk.Stdout, mk.Stderr = os.Stderr, os.Stderr
		if err := mk.Run(); err != nil {
			return fmt.Errorf("make temporal-server: %w", err)
		}
	}
	work, err := os.MkdirTemp("", "cohort-bench-*")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "bench: work directory %s (kept)\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	o.binDir = filepath.Join(work, "bin")
	fmt.Fprintf(os.Stderr, "bench: building worker, starter and emulator into %s\n", o.binDir)
	build := exec.CommandContext(ctx, "go", "build", "-o", o.binDir+"/", "./worker", "./starter", "./emulator/cmd/databricks-emulator")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}

	printHeader(o, args)
	if o.reconcile {
		var rs []*reconcileResult
		for _, n := range o.ns {
			r, err := runReconcile(ctx, o, work, n)
			rs = append(rs, r)
			if err != nil {
				printReconcile(rs)
				return fmt.Errorf("reconcile N=%d: %w", n, err)
			}
		}
		printReconcile(rs)
		return nil
	}
	var rows []row
	for _, n := range o.ns {
		nrows, err := runN(ctx, o, work, n)
		rows = append(rows, nrows...)
		if err != nil {
			printTable(o, rows)
			return err
		}
	}
	printTable(o, rows)
	return nil
}

// runN runs every way for one N.
func runN(ctx context.Context, o *options, work string, n int) ([]row, error) {
	stamp := time.Now().Format("150405")
	var (
		mu   sync.Mutex
		rows []row
		errs []error
		wg   sync.WaitGroup
	)
	add := func(r row, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			fmt.Fprintf(os.Stderr, "bench: %s N=%d: %v\n", r.Way, n, err)
		}
		if r.Way != "" {
			rows = append(rows, r)
			if r.Sample > 0 {
				fmt.Fprintf(os.Stderr, "bench: %s N=%d done: sample of %d in %s\n", r.Way, n, r.Sample, r.SampleWall.Round(time.Second))
			} else {
				fmt.Fprintf(os.Stderr, "bench: %s N=%d done: wall %s\n", r.Way, n, r.Wall.Round(time.Second))
				if r.Cohort != nil && r.Cohort.Breakdown.Rate > 0 {
					fmt.Fprintf(os.Stderr, "bench: %s N=%d fixed part: %.1fs above the %.0fs rate term\n", r.Way, n,
						(r.Wall - r.Cohort.Breakdown.Rate).Seconds(), r.Cohort.Breakdown.Rate.Seconds())
				}
			}
		}
	}
	// Baselines first (in the background when concurrent), then Cohort.
	ways := make([]string, 0, len(o.ways))
	for _, w := range o.ways {
		if w != "cohort" {
			ways = append(ways, w)
		}
	}
	if len(ways) < len(o.ways) {
		ways = append(ways, "cohort")
	}
	for _, way := range ways {
		dir := filepath.Join(work, fmt.Sprintf("n%d-%s", n, way))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		domain := fmt.Sprintf("%s-%d-%s.bench.example.com", way, n, stamp)
		fn := func() {
			if way == "cohort" {
				add(runCohortWay(ctx, o, dir, n, domain))
			} else {
				add(runPlainWay(ctx, o, dir, n, way, domain))
			}
		}
		if o.concurrent && way != "cohort" && len(ways) > 1 {
			wg.Add(1)
			go func() { defer wg.Done(); fn() }()
			continue
		}
		fn()
	}
	wg.Wait()
	// Cohort first, then the baselines, in the order asked.
	ordered := make([]row, 0, len(rows))
	for _, way := range o.ways {
		for _, r := range rows {
			if r.Way == way {
				ordered = append(ordered, r)
			}
		}
	}
	return ordered, errors.Join(errs...)
}

func runCohortWay(ctx context.Context, o *options, dir string, n int, domain string) (row, error) {
	r := row{Way: "cohort", N: n, TimeScale: o.timeScale}
	csv := roster.Synthesize(n, o.seed, domain)
	fmt.Fprintf(os.Stderr, "bench: cohort N=%d: starting (domain %s)\n", n, domain)
	res, emu, err := runCohort(ctx, o, dir, n, csv, o.dynamic)
	defer emu.stop()
	if emu != nil {
		if cerr := r.fill(ctx, emu, n); cerr != nil && err == nil {
			err = cerr
		}
	}
	r.Wall = res.Wall
	r.Cohort = &res
	if err == nil && res.ExitCode != 0 {
		r.Note = fmt.Sprintf("starter exit %d: %s", res.ExitCode, res.StarterTail)
	}
	return r, err
}

func runPlainWay(ctx context.Context, o *options, dir string, n int, way, domain string) (row, error) {
	r := row{Way: way, N: n, TimeScale: o.timeScale}
	parallel := 1
	sample := min(n, o.sampleSeq)
	if way == "parallel10" {
		parallel, sample = o.parallel, min(n, o.samplePar)
		r.Way = fmt.Sprintf("parallel%d", parallel)
	}
	emu, err := startEmulator(ctx, o, dir, way)
	if err != nil {
		return r, err
	}
	defer emu.stop()
	ros, err := roster.Parse("bench.csv", roster.Synthesize(sample, o.seed, domain), roster.Options{})
	if err != nil {
		return r, err
	}
	accountID, workspaceID, err := readEmuConfigFile(emu.configFile)
	if err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "bench: %s N=%d: provisioning a sample of %d, %d at a time\n", r.Way, n, sample, parallel)
	res, err := runPlain(ctx, func() (*plainEnv, error) {
		return newPlainEnv(ctx, emu.host, emu.token, accountID, workspaceID)
	}, ros.Participants, parallel)
	if err != nil {
		return r, err
	}
	if ferr := r.fill(ctx, emu, sample); ferr != nil {
		return r, ferr
	}
	r.Sample = sample
	r.SampleWall = res.Wall
	r.Wall = time.Duration(float64(res.Wall) * float64(n) / float64(sample))
	if res.Failed > 0 {
		r.Note = fmt.Sprintf("%d of %d failed, first: %s", res.Failed, sample, res.FirstErr)
	}
	return r, nil
}

// fill reads the emulator's config (for the bound) and stats (calls per
// participant, 429s) after a run.
func (r *row) fill(ctx context.Context, emu *emuProc, perN int) error {
	cfg, err := emu.config(ctx)
	if err != nil {
		return err
	}
	r.Bound = LowerBound(cfg, r.N)
	st, err := emu.stats(ctx)
	if err != nil {
		return err
	}
	r.Calls = st.PerParticipant(perN)
	r.Status429 = st.Status("429")
	r.Stats = st
	return nil
}

func readEmuConfigFile(path string) (string, int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, err
	}
	var doc struct {
		Databricks struct {
			AccountID   string `yaml:"account_id"`
			WorkspaceID int64  `yaml:"workspace_id"`
		} `yaml:"databricks"`
	}
	if err := yamlUnmarshal(b, &doc); err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return doc.Databricks.AccountID, doc.Databricks.WorkspaceID, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the cohort module (go run ./bench)")
	}
	return filepath.Dir(mod), nil
}

func findTemporal(flagValue string) (string, error) {
	for _, c := range []string{flagValue, os.Getenv("TEMPORAL_CLI")} {
		if c != "" {
			return c, nil
		}
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "temporal")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Temporal CLI: set -temporal-cli or $TEMPORAL_CLI, or run make tools")
}

func jsonUnmarshal(b []byte, v any, what string) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}
