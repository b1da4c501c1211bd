package main

// One concern, running Cohort under the bench: the Temporal server, worker and
// starter processes, and the figures read back from the workflow histories.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/testkit/ports"
)

// temporalServer is one fresh Temporal server: the dev server on its own
// SQLite file, or (-temporal postgres) scripts/temporal-postgres.sh on its
// own PostgreSQL data folder, whose CPU and memory are those of the script's
// whole process tree (the server and PostgreSQL).
type temporalServer struct {
	p       *proc
	address string
	tree    bool
}

// usage reads the server's CPU and memory: its own, or its process tree's.
func (ts *temporalServer) usage() (procUsage, error) {
	if ts.tree {
		return readTreeUsage(ts.p.pid())
	}
	return readUsage(ts.p.pid())
}

func startTemporal(ctx context.Context, o *options, dir string, dynamic []string) (*temporalServer, error) {
	port, err := ports.Free()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "temporal.log"))
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	name, ready := "temporal dev server", 90*time.Second
	if o.temporalKind == "postgres" {
		if port, err = ports.FreeLow(); err != nil {
			return nil, err
		}
		// PostgreSQL runs as the postgres user when we are root: it must
		// reach the data folder (the work directory is private by default).
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				return nil, err
			}
		}
		name, ready = "temporal server on postgres", 5*time.Minute
		cmd = exec.Command(filepath.Join(o.root, "scripts", "temporal-postgres.sh"),
			"--data", filepath.Join(dir, "temporal-postgres"), "--port", strconv.Itoa(port))
	} else {
		args := []string{"server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
			"--db-filename", filepath.Join(dir, "temporal.db"), "--log-level", "warn",
			// As make run starts it: SQLite in WAL mode (see scripts/run-local.sh).
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"}
		for _, d := range dynamic {
			args = append(args, "--dynamic-config-value", d)
		}
		cmd = exec.Command(o.temporal, args...)
	}
	// The script says when its namespace is usable (a new namespace is
	// described before the frontend serves it).
	var lineFn func(string)
	scriptReady := make(chan struct{})
	if o.temporalKind == "postgres" {
		var once sync.Once
		lineFn = func(l string) {
			if strings.HasPrefix(l, "ready") {
				once.Do(func() { close(scriptReady) })
			}
		}
	} else {
		close(scriptReady)
	}
	p, err := startProc(name, cmd, log, lineFn)
	if err != nil {
		return nil, err
	}
	ts := &temporalServer{p: p, address: fmt.Sprintf("127.0.0.1:%d", port), tree: o.temporalKind == "postgres"}
	err = waitFor(ctx, p, ready, func(ctx context.Context) error {
		select {
		case <-scriptReady:
		default:
			return errors.New("not ready yet")
		}
		c, err := client.DialContext(ctx, client.Options{HostPort: ts.address, Logger: quietLogger{}})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		return err
	})
	if err != nil {
		p.stop(10 * time.Second)
		return nil, fmt.Errorf("%s: %w (see %s)", name, err, log.Name())
	}
	return ts, nil
}

// benchConfig writes BENCH.yaml: the roster directory, time-dependent
// settings scaled by the time scale (the stop poll interval and every rate
// Cohort paces itself to), and any batch overrides. Everything else stays
// the default config.
func benchConfig(o *options, dir string, base config.Config) (string, error) {
	s := o.timeScale
	r := base.RateLimits
	doc := map[string]any{
		"roster_dir": filepath.Join(dir, "rosters"),
		"cluster": map[string]any{
			"stop_poll_interval": scaleDuration(base.Cluster.StopPollInterval, s).String(),
		},
		"rate_limits": map[string]any{
			"scim_write": r.SCIMWrite * s, "scim_list": r.SCIMList * s, "scim_get": r.SCIMGet * s, "scim_patch": r.SCIMPatch * s,
			"permissions_write": r.PermissionsWrite * s, "permissions_read": r.PermissionsRead * s,
			"assignments": r.Assignments * s, "unity_catalog": r.UnityCatalog * s, "clusters": r.Clusters * s,
		},
	}
	batch := map[string]any{}
	for k, v := range o.batchOverrides {
		batch[k] = v
	}
	if len(batch) > 0 {
		doc["batch"] = batch
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "bench.yaml")
	return path, os.WriteFile(path, append([]byte("# written by go run ./bench\n"), b...), 0o644)
}

func scaleDuration(d time.Duration, s float64) time.Duration {
	if s <= 0 {
		return d
	}
	return time.Duration(float64(d) / s).Round(time.Millisecond)
}

// cohortResult is what one end-to-end run measured.
type cohortResult struct {
	Wall         time.Duration
	ExitCode     int
	StarterTail  string
	WorkerCPU    time.Duration
	WorkerHWM    int64
	WorkerRSSMax int64
	ServerCPU    time.Duration
	ServerHWM    int64
	Hist         historyStats
	Timeline     []timelinePoint
	Config       []string // config files the worker and starter read
	Breakdown    breakdown
	// LoadAt is the machine's load average (1, 5, 15 min) at the starter's
	// launch and exit: other work on the machine shows in the figures.
	LoadAt [2]string
}

// timelinePoint is a sample of the emulator's counters during the run.
type timelinePoint struct {
	At        time.Duration
	Creates   int64 // scim.users.create answered 2xx
	Terminate int64 // clusters.delete answered
	Throttled int64
}

// historyStats sums Temporal history over every run in the namespace.
type historyStats struct {
	Runs          int
	Events        int64
	ByType        map[string]int64 // events per workflow type
	RunsByType    map[string]int
	ByStatus      map[string]int
	Max           int64
	MaxRun        string
	MaxByType     map[string]int64
	StillOpen     int
	DescribeCalls int
	infos         []*workflowInfo // every run, for the breakdown
}

// cohortEnv is Cohort running on fresh processes: an emulator, a Temporal
// server and one worker (ready: it logged "worker started"), with the
// config files the worker and every starter command read.
type cohortEnv struct {
	o       *options
	dir     string
	emu     *emuProc
	ts      *temporalServer
	worker  *proc
	tc      client.Client
	cfg     config.Config // the merged config, as the starter reads it
	configs []string      // the files, in order
	cfgArgs []string      // --config FILE for each
	stopLog func()
}

// startCohortEnv starts the emulator, the Temporal server and the worker.
// On error what was started is stopped, but for the emulator, which is
// returned when it runs (its stats say what happened before the error).
func startCohortEnv(ctx context.Context, o *options, dir string, dynamic []string) (*cohortEnv, error) {
	e := &cohortEnv{o: o, dir: dir}
	if err := os.MkdirAll(filepath.Join(dir, "rosters"), 0o755); err != nil {
		return nil, err
	}
	var err error
	if e.emu, err = startEmulator(ctx, o, dir, "cohort"); err != nil {
		return nil, err
	}
	fail := func(err error) (*cohortEnv, error) {
		e.stopCohort()
		return e, err
	}
	if e.ts, err = startTemporal(ctx, o, dir, dynamic); err != nil {
		return fail(err)
	}
	base, err := config.Load(o.baseConfig)
	if err != nil {
		return fail(fmt.Errorf("load %s: %w", o.baseConfig, err))
	}
	bench, err := benchConfig(o, dir, base)
	if err != nil {
		return fail(err)
	}
	e.configs = append([]string{o.baseConfig, e.emu.configFile, bench}, o.extraConfig...)
	for _, c := range e.configs {
		e.cfgArgs = append(e.cfgArgs, "--config", c)
	}
	if e.cfg, err = config.Load(e.configs...); err != nil {
		return fail(fmt.Errorf("load %s: %w", strings.Join(e.configs, ", "), err))
	}

	// The worker, ready when it logs "worker started".
	wlog, err := os.Create(filepath.Join(dir, "worker.log"))
	if err != nil {
		return fail(err)
	}
	ready := make(chan struct{})
	var once sync.Once
	wargs := append(slices.Clip(e.cfgArgs), "--address", e.ts.address)
	if o.debugAddr != "" {
		wargs = append(wargs, "--debug-addr", o.debugAddr)
	}
	wcmd := exec.Command(o.bin("worker"), wargs...)
	wcmd.Env = append(os.Environ(), "DATABRICKS_TOKEN="+e.emu.token)
	// The worker logs on stderr, which startProc sends to pw: copied to
	// wlog while watching for the start line.
	pr, pw := io.Pipe()
	e.stopLog = func() { pw.Close(); wlog.Close() }
	if e.worker, err = startProc("worker", wcmd, pw, nil); err != nil {
		return fail(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(wlog, sc.Text())
			if strings.Contains(sc.Text(), `"worker started"`) {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(wlog, pr) // past an over-long line: never block the worker
	}()
	select {
	case <-ready:
	case <-e.worker.done:
		return fail(fmt.Errorf("worker exited before starting (see %s)", wlog.Name()))
	case <-time.After(60 * time.Second):
		return fail(fmt.Errorf("worker not started after 60s (see %s)", wlog.Name()))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if e.tc, err = client.DialContext(ctx, client.Options{HostPort: e.ts.address, Logger: quietLogger{}}); err != nil {
		return fail(err)
	}
	return e, nil
}

// stopCohort stops the worker and the Temporal server (not the emulator:
// its stats are read afterwards; emu.stop ends it).
func (e *cohortEnv) stopCohort() {
	if e.tc != nil {
		e.tc.Close()
		e.tc = nil
	}
	if e.worker != nil {
		e.worker.stop(30 * time.Second)
	}
	if e.stopLog != nil {
		e.stopLog()
		e.stopLog = nil
	}
	if e.ts != nil {
		e.ts.p.stop(20 * time.Second)
	}
}

// starterRun is one measured starter command.
type starterRun struct {
	Args         []string
	Start        time.Time
	Wall         time.Duration
	ExitCode     int
	Stdout       string
	Stderr       string
	WorkerCPU    time.Duration
	WorkerHWM    int64
	WorkerRSSMax int64
	ServerCPU    time.Duration
	ServerHWM    int64
	Timeline     []timelinePoint // with sampleEmu: the emulator's counters every ~2 s
	// LoadAt is the machine's load average at the launch and at the exit;
	// LogPath the starter's log (its COHORT_TRACE marks, for the breakdown).
	LoadAt  [2]string
	LogPath string
}

// Tail is the last line the command printed (stdout, else stderr).
func (r starterRun) Tail() string {
	if strings.TrimSpace(r.Stdout) != "" {
		return lastLine(r.Stdout)
	}
	return lastLine(r.Stderr)
}

// runStarter runs `starter ARGS --config ... --address ...` (the flags go
// after the subcommand), timed from process start to exit, with the
// worker's and the server's CPU over that time. name names its log file.
func (e *cohortEnv) runStarter(ctx context.Context, name string, sampleEmu bool, args ...string) (starterRun, error) {
	r := starterRun{Args: args}
	full := append(append(append([]string{args[0]}, e.cfgArgs...), "--address", e.ts.address), args[1:]...)
	slog, err := os.Create(filepath.Join(e.dir, "starter-"+name+".log"))
	if err != nil {
		return r, err
	}
	defer slog.Close()
	var stdout, stderr bytes.Buffer
	scmd := exec.CommandContext(ctx, e.o.bin("starter"), full...)
	// COHORT_TRACE: the starter's timing marks, on stderr (the breakdown).
	scmd.Env = append(os.Environ(), "DATABRICKS_TOKEN="+e.emu.token, "COHORT_TRACE=1")
	scmd.Stdout = io.MultiWriter(slog, &stdout)
	scmd.Stderr = io.MultiWriter(slog, &stderr)
	r.LogPath = slog.Name()

	w0, err := readUsage(e.worker.pid())
	if err != nil {
		return r, err
	}
	s0, _ := e.ts.usage()
	// Sample the worker's memory (and the emulator's counters) while it runs.
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	r.LoadAt[0] = loadAverage()
	r.Start = time.Now()
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			if u, err := readUsage(e.worker.pid()); err == nil && u.RSS > r.WorkerRSSMax {
				r.WorkerRSSMax = u.RSS
			}
			if sampleEmu && i%2 == 0 {
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if st, err := e.emu.stats(sctx); err == nil {
					r.Timeline = append(r.Timeline, timelinePoint{At: time.Since(r.Start),
						Creates:   st.Requests["scim.users.create"]["201"] + st.Requests["scim.users.create"]["200"],
						Terminate: st.Total("clusters.delete"), Throttled: st.Status("429")})
				}
				cancel()
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	err = scmd.Run()
	r.Wall = time.Since(r.Start)
	r.LoadAt[1] = loadAverage()
	close(stopSampling)
	<-sampled
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.ExitCode = exitErr.ExitCode()
	default:
		return r, fmt.Errorf("starter %s: %w", strings.Join(args, " "), err)
	}
	if w1, err := readUsage(e.worker.pid()); err == nil {
		r.WorkerCPU, r.WorkerHWM = w1.CPU-w0.CPU, w1.HWM
		r.WorkerRSSMax = max(r.WorkerRSSMax, w1.RSS)
	}
	if s1, err := e.ts.usage(); err == nil && s0.Valid {
		r.ServerCPU, r.ServerHWM = s1.CPU-s0.CPU, s1.HWM
	}
	return r, nil
}

// runCohort runs one batch end to end on fresh processes and returns its figures.
func runCohort(ctx context.Context, o *options, dir string, n int, csv []byte, dynamic []string) (cohortResult, *emuProc, error) {
	var res cohortResult
	env, err := startCohortEnv(ctx, o, dir, dynamic)
	if env == nil {
		return res, nil, err
	}
	defer env.stopCohort()
	if err != nil {
		return res, env.emu, err
	}
	res.Config = env.configs
	if err := env.emu.resetStats(ctx); err != nil {
		return res, env.emu, err
	}
	file := filepath.Join(dir, "roster.csv")
	if err := os.WriteFile(file, csv, 0o644); err != nil {
		return res, env.emu, err
	}
	run, err := env.runStarter(ctx, "submit", true, "submit", "--wait", file)
	res.fromRun(run)
	if err != nil {
		return res, env.emu, err
	}
	if res.Hist, err = collectHistory(ctx, env.tc, time.Time{}); err != nil {
		return res, env.emu, err
	}
	cfg, err := env.emu.config(ctx)
	if err != nil {
		return res, env.emu, err
	}
	rate := time.Duration(LowerBound(cfg, n).RateSec * float64(time.Second))
	res.Breakdown, err = collectBreakdown(ctx, env.tc, run.Start, res.Wall, rate, run.LogPath, env.emu.logFile, res.Hist.infos)
	return res, env.emu, err
}

// fromRun copies a starter run's figures.
func (res *cohortResult) fromRun(r starterRun) {
	res.Wall, res.ExitCode, res.StarterTail = r.Wall, r.ExitCode, r.Tail()
	res.WorkerCPU, res.WorkerHWM, res.WorkerRSSMax = r.WorkerCPU, r.WorkerHWM, r.WorkerRSSMax
	res.ServerCPU, res.ServerHWM = r.ServerCPU, r.ServerHWM
	res.Timeline, res.LoadAt = r.Timeline, r.LoadAt
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// collectHistory lists every run in the namespace started at or after since
// (zero: all; the dev server is fresh, so with zero they are all the
// batch's: batch runs including continued-as-new ones, chunks,
// participants), waiting for visibility to show them closed, and sums their
// history lengths. Runs whose visibility record lacks a length are
// described.
func collectHistory(ctx context.Context, tc client.Client, since time.Time) (historyStats, error) {
	h := historyStats{ByType: map[string]int64{}, RunsByType: map[string]int{}, ByStatus: map[string]int{}, MaxByType: map[string]int64{}}
	var infos []*workflowInfo
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		infos, err = listAll(ctx, tc)
		if err != nil {
			return h, err
		}
		infos = slices.DeleteFunc(infos, func(i *workflowInfo) bool { return i.start.Before(since) })
		open := 0
		for _, i := range infos {
			if i.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				open++
			}
		}
		h.StillOpen = open
		if open == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return h, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	// Describe runs without a length, 8 at a time.
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var firstErr error
	for _, i := range infos {
		if i.length > 0 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i *workflowInfo) {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := tc.DescribeWorkflowExecution(ctx, i.id, i.runID)
			mu.Lock()
			defer mu.Unlock()
			h.DescribeCalls++
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			i.length = d.GetWorkflowExecutionInfo().GetHistoryLength()
		}(i)
	}
	wg.Wait()
	if firstErr != nil {
		return h, fmt.Errorf("describe workflow: %w", firstErr)
	}
	h.infos = infos
	for _, i := range infos {
		h.Runs++
		h.Events += i.length
		h.ByType[i.typ] += i.length
		h.RunsByType[i.typ]++
		h.ByStatus[strings.TrimPrefix(i.status.String(), "WORKFLOW_EXECUTION_STATUS_")]++
		if i.length > h.Max {
			h.Max, h.MaxRun = i.length, i.id
		}
		h.MaxByType[i.typ] = max(h.MaxByType[i.typ], i.length)
	}
	return h, nil
}

type workflowInfo struct {
	id, runID, typ string
	status         enumspb.WorkflowExecutionStatus
	length         int64
	start, close   time.Time
}

func listAll(ctx context.Context, tc client.Client) ([]*workflowInfo, error) {
	var out []*workflowInfo
	var token []byte
	for page := 0; page < 10000; page++ { // bounded: 10,000 pages of 1,000
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list workflows: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, &workflowInfo{id: e.GetExecution().GetWorkflowId(), runID: e.GetExecution().GetRunId(),
				typ: e.GetType().GetName(), status: e.GetStatus(), length: e.GetHistoryLength(),
				start: e.GetStartTime().AsTime(), close: closeTime(e.GetCloseTime().AsTime())})
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	return out, nil
}

// closeTime is a visibility record's close time, zero for an open run
// (whose record holds the Unix epoch).
func closeTime(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Time{}
	}
	return t
}

// quietLogger drops the Temporal client's logs.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
