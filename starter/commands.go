package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gocarina/gocsv"
	"github.com/schollz/progressbar/v3"

	"github.com/cohort-dev/cohort/bootstrap"
	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/control"
	"github.com/cohort-dev/cohort/csvout"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
	"github.com/cohort-dev/cohort/workflows"
)

// common are the flags every command takes.
type common struct {
	config             config.Paths
	address, namespace string
	cfg                config.Config
}

func (c *common) register(fs *flag.FlagSet) {
	fs.Var(&c.config, "config", "YAML config `file`, repeatable, later ones winning (default $COHORT_CONFIG, else ./cohort.yaml if present)")
	fs.StringVar(&c.address, "address", "", "Temporal frontend `host:port` (default $TEMPORAL_ADDRESS or the config)")
	fs.StringVar(&c.namespace, "namespace", "", "Temporal `namespace` (default $TEMPORAL_NAMESPACE or the config)")
}

// load reads the configuration with the usual precedence: flags over
// environment over file over defaults.
func (c *common) load(getenv func(string) string) error {
	paths := c.config
	if len(paths) == 0 && getenv("COHORT_CONFIG") != "" {
		paths = config.Paths{getenv("COHORT_CONFIG")}
	}
	if len(paths) == 0 {
		if _, err := os.Stat("cohort.yaml"); err == nil {
			paths = config.Paths{"cohort.yaml"}
		}
	}
	cfg, err := config.Load(paths...)
	if err != nil {
		return usagef("config: %v", err)
	}
	cfg.ApplyEnv(getenv)
	if c.address != "" {
		cfg.Temporal.Address = c.address
	}
	if c.namespace != "" {
		cfg.Temporal.Namespace = c.namespace
	}
	c.cfg = cfg
	return nil
}

func (m *Main) connect(ctx context.Context, c *common) (*control.Client, func(), error) {
	tc, err := bootstrap.Dial(ctx, c.cfg.Temporal.Address, c.cfg.Temporal.Namespace, c.cfg.Temporal.Compress, m.logger())
	if err != nil {
		return nil, nil, err
	}
	return &control.Client{
		Temporal: tc, Namespace: c.cfg.Temporal.Namespace, UIAddress: c.cfg.Temporal.UIAddress,
		Store: roster.Store{Dir: c.cfg.RosterDir}, Batch: c.cfg.Batch,
	}, tc.Close, nil
}

// openBatch is the start of every command on one batch: it parses args (one
// BATCH id, flags on either side), lets check refuse bad flag values before
// anything is loaded, loads the config and connects. The caller closes.
func (m *Main) openBatch(ctx context.Context, fs *flag.FlagSet, c *common, args []string, check func() error) (string, *control.Client, func(), error) {
	pos, err := parse(fs, args, 1, "one BATCH id")
	if err != nil {
		return "", nil, nil, err
	}
	if err := workflows.ValidateBatchRef(pos[0]); err != nil {
		return "", nil, nil, usagef("%s: BATCH: %v", fs.Name(), err)
	}
	if check != nil {
		if err := check(); err != nil {
			return "", nil, nil, err
		}
	}
	if err := c.load(m.Getenv); err != nil {
		return "", nil, nil, err
	}
	cl, closeFn, err := m.connect(ctx, c)
	if err != nil {
		return "", nil, nil, err
	}
	return pos[0], cl, closeFn, nil
}

// parse parses flags that may stand before or after the positional
// arguments ("report BATCH --format csv"), and wants exactly n of those.
// -h or --help returns a helpRequest; an unknown flag's error names the
// valid ones.
func parse(fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpRequest{fs}
			}
			if strings.HasPrefix(err.Error(), "flag provided but not defined") {
				return nil, usagef("%s: %v; valid flags: %s (see starter %s -h)", fs.Name(), err, flagNames(fs), fs.Name())
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != n {
		return nil, usagef("%s: expected %s, got %d arguments", fs.Name(), what, len(pos))
	}
	return pos, nil
}

// flagNames lists a command's flags as people type them.
func flagNames(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// readRoster reads and validates a roster file. Every problem is an error at
// FILE:LINE, and nothing is done unless *skipInvalid lets the valid rows go
// ahead (the skipped ones are listed on stderr; nil: the command has no
// --skip-invalid); verb and done say what would have been done, in the
// messages. The file must be a regular file of at most roster.MaxFileSize
// bytes, and ctx (SIGINT, SIGTERM) stops the read.
func (m *Main) readRoster(ctx context.Context, file string, c *common, skipInvalid *bool, verb, done string) ([]roster.Participant, error) {
	data, err := roster.ReadFile(ctx, file)
	if err != nil {
		return nil, usagef("%v", err)
	}
	r, err := roster.Parse(filepath.Base(file), data, roster.Options{SkipInvalid: skipInvalid != nil && *skipInvalid, Naming: c.cfg.RosterNaming()})
	if err != nil {
		var ve *roster.ValidationError
		if errors.As(err, &ve) {
			hint := "fix them"
			if skipInvalid != nil {
				hint += ", or use --skip-invalid"
			}
			return nil, usagef("%s\n%s: %d problem(s); nothing was %s (%s)", err, file, len(ve.Problems), done, hint)
		}
		return nil, usagef("%v", err)
	}
	for _, p := range r.Skipped {
		fmt.Fprintf(m.Stderr, "skipped %s\n", p)
	}
	if len(r.Participants) == 0 {
		return nil, usagef("%s: no participants to %s", file, verb)
	}
	return r.Participants, nil
}

func (m *Main) submit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	var c common
	c.register(fs)
	wait := fs.Bool("wait", false, "follow the batch with a progress bar until it ends")
	batchID := fs.String("batch", "", "batch `id`: 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit (default: today's date and the roster's hash)")
	skipInvalid := fs.Bool("skip-invalid", false, "submit the valid rows and list the invalid ones")
	pos, err := parse(fs, args, 1, "one roster FILE.csv")
	if err != nil {
		return err
	}
	if *batchID != "" {
		// Refused before the roster is read or stored.
		if err := workflows.ValidateBatchID(*batchID); err != nil {
			return usagef("submit: --batch: %v; nothing was submitted", err)
		}
	}
	if err := c.load(m.Getenv); err != nil {
		return err
	}
	m.mark("config loaded")
	participants, err := m.readRoster(ctx, pos[0], &c, skipInvalid, "submit", "submitted")
	if err != nil {
		return err
	}
	m.mark("roster read and validated (%d participants)", len(participants))

	cl, closeFn, err := m.connect(ctx, &c)
	if err != nil {
		return err
	}
	defer closeFn()
	m.mark("connected to Temporal")
	sub, err := cl.Submit(ctx, participants, *batchID)
	if err != nil {
		return err
	}
	m.mark("batch %s submitted (existing %v)", sub.BatchID, sub.Existing)
	n := len(participants)
	fmt.Fprintf(m.Stdout, "validated %d participants (%d already provisioned, %d new) -> batch %s\n",
		n, sub.Provisioned, n-sub.Provisioned, sub.BatchID)
	if sub.Existing {
		fmt.Fprintf(m.Stdout, "batch %s was submitted before with the same roster: nothing new started\n", sub.BatchID)
	}
	if !*wait {
		fmt.Fprintf(m.Stdout, "follow: starter status %s; Web UI: %s\n", sub.BatchID, cl.BatchURL(sub.BatchID))
		return nil
	}
	return m.follow(ctx, cl, sub.BatchID)
}

// follow shows a progress bar until the batch's attempt ends, then the summary.
func (m *Main) follow(ctx context.Context, cl *control.Client, batchID string) error {
	start := time.Now()
	var bar *progressbar.ProgressBar
	warned := false
	phase := ""
	p, err := cl.Wait(ctx, batchID, time.Second, func(p control.Progress) {
		if p.Phase != phase {
			phase = p.Phase
			m.mark("batch phase %q seen (%d of %d done)", phase, p.Counts.Done(), p.Total)
		}
		if bar == nil && p.Phase == control.PhaseNoWorker && !warned {
			// Before any count arrives there is no bar to say it on.
			fmt.Fprintf(m.Stderr, "waiting: no worker answers for batch %s (is one running?): %s\n", batchID, p.Unanswered)
			warned = true
		}
		if bar == nil && p.Total > 0 {
			bar = progressbar.NewOptions(p.Total,
				progressbar.OptionSetWriter(m.Stderr),
				progressbar.OptionSetWidth(32),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(false),
				progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionSetRenderBlankState(true),
			)
		}
		if bar != nil && p.Phase == control.PhaseNoWorker {
			bar.Describe(fmt.Sprintf("%-12s (is a worker running?)  %s", p.Phase, time.Since(start).Round(time.Second)))
		} else if bar != nil {
			_ = bar.Set(p.Counts.Done())
			bar.Describe(fmt.Sprintf("%-12s ok %d  failed %d  %s", p.Phase, p.Counts.OK, p.Counts.Failed,
				time.Since(start).Round(time.Second)))
		}
	})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(m.Stderr)
	}
	if err != nil {
		return err
	}
	return m.summary(cl, p)
}

func (m *Main) summary(cl *control.Client, p control.Progress) error {
	if p.Failure != "" {
		fmt.Fprintf(m.Stdout, "batch %s did not finish: %s\nfix the cause, then submit the same file again; Web UI: %s\n", p.BatchID, p.Failure, cl.BatchURL(p.BatchID))
		return errSomeFailed
	}
	fmt.Fprintf(m.Stdout, "done: %d ok, %d failed", p.Counts.OK, p.Counts.Failed)
	if p.Counts.Unchanged > 0 || p.Counts.Drifted > 0 {
		fmt.Fprintf(m.Stdout, " (%d unchanged, %d drifted)", p.Counts.Unchanged, p.Counts.Drifted)
	}
	if p.Counts.Reused > 0 {
		fmt.Fprintf(m.Stdout, " (%d of the ok were provisioned before)", p.Counts.Reused)
	}
	if p.Counts.Failed > 0 {
		fmt.Fprintf(m.Stdout, " (see: starter status %s)", p.BatchID)
	}
	fmt.Fprintf(m.Stdout, "; Web UI: %s\n", cl.BatchURL(p.BatchID))
	if p.Counts.Failed > 0 {
		return errSomeFailed
	}
	return nil
}

func (m *Main) status(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var c common
	c.register(fs)
	id, cl, closeFn, err := m.openBatch(ctx, fs, &c, args, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	p, err := cl.Progress(ctx, id)
	if err != nil {
		return err
	}
	if p.Phase == control.PhaseNoWorker {
		fmt.Fprintf(m.Stdout, "batch %s is running, but no worker answered for its progress (%s): is a worker running?\nWeb UI: %s\n",
			id, p.Unanswered, cl.BatchURL(id))
		return nil
	}
	if !p.Closed() {
		fmt.Fprintf(m.Stdout, "batch %s (attempt %d): %s, %d/%d done: %d ok, %d failed, %d running\n",
			id, p.Attempt, p.Phase, p.Counts.Done(), p.Total, p.Counts.OK, p.Counts.Failed, p.Counts.Running)
		if steps := control.FailedBySteps(p.Counts); len(steps) > 0 {
			fmt.Fprintf(m.Stdout, "failed by step: %s\n", strings.Join(steps, ", "))
		}
		fmt.Fprintf(m.Stdout, "Web UI: %s\n", cl.BatchURL(id))
		return nil
	}
	if p.Failure != "" {
		return m.summary(cl, p)
	}
	outcomes, err := cl.Outcomes(ctx, id)
	if err != nil {
		return err
	}
	total := workflows.Counts{}
	var failed []workflows.Outcome
	for _, o := range outcomes {
		total.Total++
		if len(o.Drift) > 0 {
			total.Drifted++
		}
		if o.Status == workflows.StatusOK {
			total.OK++
			if o.Unchanged {
				total.Unchanged++
			}
			continue
		}
		total.Failed++
		total.AddFailed(o.Step, 1)
		failed = append(failed, o)
	}
	fmt.Fprintf(m.Stdout, "batch %s: %d participants, %d ok, %d failed (after %d retries)\n",
		id, total.Total, total.OK, total.Failed, p.Attempt)
	if total.Unchanged > 0 || total.Drifted > 0 {
		fmt.Fprintf(m.Stdout, "reconcile: %d unchanged (nothing written), %d drifted\n", total.Unchanged, total.Drifted)
	}
	if steps := control.FailedBySteps(total); len(steps) > 0 {
		fmt.Fprintf(m.Stdout, "failed by step: %s\n", strings.Join(steps, ", "))
	}
	for _, o := range failed {
		fmt.Fprintf(m.Stdout, "  FAILED %s at %s: %s\n", o.Email, o.Step, o.Error)
	}
	printChanges(m.Stdout, outcomes)
	if line := usageSummary(outcomes); line != "" {
		fmt.Fprintln(m.Stdout, line)
	}
	if total.Failed > 0 {
		fmt.Fprintf(m.Stdout, "re-run them: starter retry-failed %s; Web UI: %s\n", id, cl.FailuresURL(id))
		return errSomeFailed
	}
	fmt.Fprintf(m.Stdout, "Web UI: %s\n", cl.BatchURL(id))
	return nil
}

func (m *Main) retryFailed(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("retry-failed", flag.ContinueOnError)
	var c common
	c.register(fs)
	wait := fs.Bool("wait", false, "follow the retry with a progress bar until it ends")
	id, cl, closeFn, err := m.openBatch(ctx, fs, &c, args, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	n, err := cl.RetryFailed(ctx, id)
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(m.Stdout, "batch %s has no failed participants: nothing to retry\n", id)
		return nil
	}
	fmt.Fprintf(m.Stdout, "retrying %d failed participants of batch %s\n", n, id)
	if !*wait {
		fmt.Fprintf(m.Stdout, "follow: starter status %s; Web UI: %s\n", id, cl.BatchURL(id))
		return nil
	}
	return m.follow(ctx, cl, id)
}

// reportRow is one participant in the report.
type reportRow struct {
	Email       string `csv:"email" json:"email"`
	DisplayName string `csv:"display_name" json:"display_name"`
	UserID      string `csv:"user_id" json:"user_id"`
	Schema      string `csv:"schema" json:"schema"`
	ClusterID   string `csv:"cluster_id" json:"cluster_id"`
	ClusterURL  string `csv:"cluster_url" json:"cluster_url"`
	Status      string `csv:"status" json:"status"`
	FailedStep  string `csv:"failed_step" json:"failed_step,omitempty"`
	LastError   string `csv:"last_error" json:"last_error,omitempty"`
	// Mode, UserCreated and Changes: what a reconcile or offboard did.
	Mode        string `csv:"mode" json:"mode,omitempty"`
	UserCreated bool   `csv:"user_created" json:"user_created"`
	Changes     string `csv:"changes" json:"changes,omitempty"`
	// Drift is what a reconcile found drifted (wire.DriftKinds).
	Drift string `csv:"drift" json:"drift,omitempty"`
	// Hours and UsageState are what a usage read found (a usage batch or
	// the daily reconcile): cluster hours and never started, active, near
	// budget or over budget.
	Hours      string `csv:"hours" json:"hours,omitempty"`
	UsageState string `csv:"usage_state" json:"usage_state,omitempty"`
}

func (m *Main) report(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	var c common
	c.register(fs)
	format := fs.String("format", "csv", "output `format`: csv or json")
	id, cl, closeFn, err := m.openBatch(ctx, fs, &c, args, func() error {
		if *format != "csv" && *format != "json" {
			return usagef("report: --format: expected csv or json, got %q", *format)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer closeFn()
	outcomes, err := cl.Outcomes(ctx, id)
	if err != nil {
		return err
	}
	return writeReport(m.Stdout, *format, outcomes)
}

// writeReport writes one row per participant as JSON (the values as they
// are) or as CSV whose cells a spreadsheet would evaluate are neutralised
// (see csvout): a display name "=HYPERLINK(...)" comes out "'=HYPERLINK(...)".
func writeReport(w io.Writer, format string, outcomes []workflows.Outcome) error {
	rows := make([]reportRow, len(outcomes))
	for i, o := range outcomes {
		rows[i] = reportRow{Email: o.Email, DisplayName: o.DisplayName, UserID: o.UserID, Schema: o.Schema,
			ClusterID: o.ClusterID, ClusterURL: o.ClusterURL, Status: o.Status, FailedStep: o.Step, LastError: o.Error,
			Mode: o.Mode, UserCreated: o.UserCreated, Changes: strings.Join(o.Changes, "; "), Drift: strings.Join(o.Drift, " ")}
		if o.Unchanged && rows[i].Changes == "" {
			rows[i].Changes = "unchanged"
		}
		if u := o.Usage; u != nil {
			rows[i].Hours, rows[i].UsageState = strconv.FormatFloat(round3(u.Hours), 'f', -1, 64), u.State
		}
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	return gocsv.MarshalCSV(rows, csvout.NewWriter(w))
}

// errNotReady ends a plan whose workspace is not ready (exit 1, after the
// plan was printed).
var errNotReady = fmt.Errorf("workspace not ready: %w", errSomeFailed)

// plan validates a roster as submit does, then asks the workspace, through
// a worker and without writing to it, whether a batch of it would work and
// what it would do.
func (m *Main) plan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	var c common
	c.register(fs)
	skipInvalid := fs.Bool("skip-invalid", false, "plan for the valid rows and list the invalid ones")
	pos, err := parse(fs, args, 1, "one roster FILE.csv")
	if err != nil {
		return err
	}
	if err := c.load(m.Getenv); err != nil {
		return err
	}
	participants, err := m.readRoster(ctx, pos[0], &c, skipInvalid, "plan for", "planned")
	if err != nil {
		return err
	}
	cl, closeFn, err := m.connect(ctx, &c)
	if err != nil {
		return err
	}
	defer closeFn()
	fmt.Fprintf(m.Stderr, "validated %d participants; reading the workspace through a worker (nothing is written)...\n", len(participants))
	p, err := cl.Plan(ctx, participants)
	if err != nil {
		return err
	}
	m.printPlan(pos[0], p)
	if !p.Ready() {
		return errNotReady
	}
	return nil
}

// printPlan writes who is new, provisioned or pre-existing, every check
// with its fix, and the verdict.
func (m *Main) printPlan(file string, p workflows.PlanResult) {
	w := m.Stdout
	fmt.Fprintf(w, "plan for %s: %d participants\n", file, p.Total)
	fmt.Fprintf(w, "  %6d new: an account user, a schema in %s and a stopped cluster each will be created\n", p.New, p.Catalog)
	fmt.Fprintf(w, "  %6d already provisioned by Cohort: left as they are (starter reconcile checks them and repairs what drifted)\n", p.Provisioned)
	fmt.Fprintf(w, "  %6d exist in the account but were not provisioned by Cohort: their user is adopted, the rest created\n", p.Existing)
	if p.Existing > 0 {
		fmt.Fprintf(w, "         %s\n", control.PlanEmails(p.ExistingEmails, p.Existing, 10))
	}
	fmt.Fprintln(w, "\nchecks:")
	blocking := 0
	for _, c := range p.Checks {
		mark := "ok"
		switch {
		case c.Blocking:
			mark = "FAIL"
			blocking++
		case !c.OK:
			mark = "skip"
		}
		fmt.Fprintf(w, "  %-4s  %-15s %s\n", mark, c.Name, c.Detail)
		if c.Fix != "" && !c.OK {
			fmt.Fprintf(w, "  %-4s  %-15s fix: %s\n", "", "", c.Fix)
		}
	}
	s := p.Cluster
	if s.PolicyID != "" {
		fmt.Fprintf(w, "\nclusters: policy %s, runtime %s, node type %s, single node, SINGLE_USER, CAN_RESTART, stopped\n",
			s.PolicyID, orDash(s.SparkVersion), orDash(s.NodeType))
	}
	if blocking > 0 {
		fmt.Fprintf(w, "\nnot ready: %d blocking problem(s); fix them and run starter plan %s again\n", blocking, file)
		return
	}
	fmt.Fprintf(w, "\nready: starter submit %s\n", file)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printChanges lists what a reconcile or offboard changed (or, dry run, would
// change), one participant a line.
func printChanges(w io.Writer, outcomes []workflows.Outcome) {
	n := 0
	for _, o := range outcomes {
		if o.Status == workflows.StatusOK && len(o.Changes) > 0 {
			if n == 0 {
				fmt.Fprintln(w, "changes:")
			}
			n++
			fmt.Fprintf(w, "  %s: %s\n", o.Email, strings.Join(o.Changes, "; "))
		}
	}
}

// checkTarget refuses, before anything is loaded or connected, a lifecycle
// command's argument that is neither a file (openTarget reads anything but
// a directory as a roster) nor a valid batch id.
func checkTarget(cmd, arg string) error {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return nil
	}
	if err := workflows.ValidateBatchRef(arg); err != nil {
		return usagef("%s: %s: neither a roster file nor a batch id: %v", cmd, shortArg(arg), err)
	}
	return nil
}

// shortArg is an argument as a message shows it: quoted, and cut when long.
func shortArg(s string) string {
	if r := []rune(s); len(r) > 60 {
		return fmt.Sprintf("%q...", string(r[:60]))
	}
	return fmt.Sprintf("%q", s)
}

// openTarget resolves a lifecycle command's argument, a roster file (stored
// like a submit's) or the id of a submitted batch, and connects. A roster is
// read and validated before the connection, so a bad one is refused (exit
// 2) without Temporal. The caller closes.
func (m *Main) openTarget(ctx context.Context, c *common, arg string) (*control.Client, func(), control.Target, error) {
	// Anything but a directory that exists under that name is meant as a
	// roster; readRoster refuses what is not a regular file (a FIFO, a
	// device) by name instead of taking it for a batch id.
	var participants []roster.Participant
	st, err := os.Stat(arg)
	isFile := err == nil && !st.IsDir()
	if isFile {
		if participants, err = m.readRoster(ctx, arg, c, nil, "act on", "done"); err != nil {
			return nil, nil, control.Target{}, err
		}
	}
	cl, closeFn, err := m.connect(ctx, c)
	if err != nil {
		return nil, nil, control.Target{}, err
	}
	var t control.Target
	if isFile {
		t, err = cl.TargetOfRoster(participants)
	} else if t, err = cl.TargetOfBatch(ctx, arg); errors.Is(err, control.ErrNoBatch) {
		err = usagef("%s: neither a roster file nor a submitted batch", arg)
	}
	if err != nil {
		closeFn()
		return nil, nil, control.Target{}, err
	}
	return cl, closeFn, t, nil
}

func (m *Main) reconcile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	var c common
	c.register(fs)
	wait := fs.Bool("wait", false, "follow the reconcile with a progress bar until it ends, then list what it changed")
	every := fs.String("every", "", "instead of running now, create or update a Temporal Schedule that reconciles every `DURATION` (e.g. 24h); off removes it")
	dryRun := fs.Bool("dry-run", false, "read only: list, per participant, what drifted and write nothing; exit 0 when nothing drifted, 1 when something did (implies --wait; with --every, every scheduled run only reports)")
	pos, err := parse(fs, args, 1, "one roster FILE.csv or BATCH id")
	if err != nil {
		return err
	}
	if err := checkTarget(fs.Name(), pos[0]); err != nil {
		return err
	}
	var interval time.Duration
	if *every != "" && *every != "off" {
		if interval, err = time.ParseDuration(*every); err != nil || interval < time.Minute {
			return usagef("reconcile: --every: expected a duration of at least 1m (e.g. 24h) or off, got %q", *every)
		}
	}
	if err := c.load(m.Getenv); err != nil {
		return err
	}
	cl, closeFn, t, err := m.openTarget(ctx, &c, pos[0])
	if err != nil {
		return err
	}
	defer closeFn()
	id := control.ReconcileScheduleID(t.Source)
	switch {
	case *every == "off":
		found, err := cl.DeleteReconcileSchedule(ctx, t.Source)
		if err != nil {
			return err
		}
		if !found {
			fmt.Fprintf(m.Stdout, "no schedule %s: nothing to remove\n", id)
			return nil
		}
		fmt.Fprintf(m.Stdout, "removed schedule %s (runs it started finish)\n", id)
		return nil
	case *every != "":
		existed, err := cl.ScheduleReconcile(ctx, t, interval, *dryRun)
		if err != nil {
			return err
		}
		verb := "created"
		if existed {
			verb = "updated"
		}
		what := "reconcile"
		if *dryRun {
			what = "list the drift (dry run: no writes) of"
		}
		fmt.Fprintf(m.Stdout, "%s schedule %s: %s %d participants every %s; each run is a batch reconcile-%s-<time>\nWeb UI: %s\n",
			verb, id, what, t.Roster.Count, interval, t.Source, cl.ScheduleURL(id))
		return nil
	}
	batch, err := cl.StartLifecycle(ctx, t, wire.ModeReconcile, wire.OffboardOptions{DryRun: *dryRun})
	if err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintf(m.Stdout, "dry run: reading what %d participants of %s have (no writes) -> batch %s\n", t.Roster.Count, t.Source, batch)
		return m.followAndDrift(ctx, cl, batch)
	}
	fmt.Fprintf(m.Stdout, "reconciling %d participants of %s -> batch %s\n", t.Roster.Count, t.Source, batch)
	if !*wait {
		fmt.Fprintf(m.Stdout, "follow: starter status %s; Web UI: %s\n", batch, cl.BatchURL(batch))
		return nil
	}
	return m.followAndList(ctx, cl, batch)
}

// errDrifted ends a reconcile dry run that found drift (exit 1).
var errDrifted = fmt.Errorf("drift found: %w", errSomeFailed)

// followAndDrift follows a reconcile dry run, then lists the drift per
// participant and kind, and a summary. It returns errDrifted when anything
// drifted, errSomeFailed when a participant could not be read.
func (m *Main) followAndDrift(ctx context.Context, cl *control.Client, batch string) error {
	outcomes, ferr, err := m.followOutcomes(ctx, cl, batch)
	if err != nil {
		return err
	}
	if drifted := printDrift(m.Stdout, outcomes); drifted > 0 && ferr == nil {
		return errDrifted
	}
	return ferr
}

// printDrift lists each drifted participant with the kinds and what was
// found, then a summary by kind; it returns how many drifted.
func printDrift(w io.Writer, outcomes []workflows.Outcome) int {
	byKind := map[string]int{}
	var unchanged, offboarded, failed, drifted int
	for _, o := range outcomes {
		switch {
		case o.Status != workflows.StatusOK:
			failed++
		case o.Offboarded:
			offboarded++
		case o.Unchanged:
			unchanged++
		}
		if len(o.Drift) == 0 {
			continue
		}
		if drifted == 0 {
			fmt.Fprintln(w, "drift:")
		}
		drifted++
		for _, k := range o.Drift {
			byKind[k]++
		}
		fmt.Fprintf(w, "  %s [%s]: %s\n", o.Email, strings.Join(o.Drift, ", "), strings.Join(o.Changes, "; "))
	}
	var kinds []string
	for _, k := range wire.DriftKinds {
		if byKind[k] > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, byKind[k]))
		}
	}
	fmt.Fprintf(w, "%d participants: %d unchanged, %d drifted", len(outcomes), unchanged, drifted)
	if len(kinds) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(kinds, ", "))
	}
	fmt.Fprintf(w, ", %d offboarded (left alone), %d could not be read\n", offboarded, failed)
	return drifted
}

// followOutcomes follows a lifecycle batch to its end and reads its
// outcomes. ferr is errSomeFailed when participants failed (the outcomes
// say who); err is anything that stops the caller.
func (m *Main) followOutcomes(ctx context.Context, cl *control.Client, batch string) (outcomes []workflows.Outcome, ferr, err error) {
	ferr = m.follow(ctx, cl, batch)
	if ferr != nil && !errors.Is(ferr, errSomeFailed) {
		return nil, nil, ferr
	}
	outcomes, err = cl.Outcomes(ctx, batch)
	return outcomes, ferr, err
}

// followAndList follows a lifecycle batch, then lists what it changed.
func (m *Main) followAndList(ctx context.Context, cl *control.Client, batch string) error {
	outcomes, ferr, err := m.followOutcomes(ctx, cl, batch)
	if err != nil {
		return err
	}
	printChanges(m.Stdout, outcomes)
	return ferr
}

func (m *Main) offboard(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("offboard", flag.ContinueOnError)
	var c common
	c.register(fs)
	wait := fs.Bool("wait", false, "follow the offboard with a progress bar until it ends, then list what it removed")
	var opts wire.OffboardOptions
	fs.BoolVar(&opts.DryRun, "dry-run", false, "read only: list, per participant, what would be removed (implies --wait)")
	fs.BoolVar(&opts.DeleteUsers, "delete-users", false, "delete the account users Cohort created (default: deactivate them)")
	fs.BoolVar(&opts.DropSchemas, "drop-schemas", false, "drop the participants' schemas with their contents (UNDROP can restore them for 7 days)")
	pos, err := parse(fs, args, 1, "one roster FILE.csv or BATCH id")
	if err != nil {
		return err
	}
	if err := checkTarget(fs.Name(), pos[0]); err != nil {
		return err
	}
	if err := c.load(m.Getenv); err != nil {
		return err
	}
	cl, closeFn, t, err := m.openTarget(ctx, &c, pos[0])
	if err != nil {
		return err
	}
	defer closeFn()
	batch, err := cl.StartLifecycle(ctx, t, wire.ModeOffboard, opts)
	if err != nil {
		return err
	}
	what := "offboarding"
	if opts.DryRun {
		what = "dry run: listing what an offboard would remove for"
	}
	fmt.Fprintf(m.Stdout, "%s %d participants of %s -> batch %s\n", what, t.Roster.Count, t.Source, batch)
	if !*wait && !opts.DryRun {
		fmt.Fprintf(m.Stdout, "follow: starter status %s; Web UI: %s\n", batch, cl.BatchURL(batch))
		return nil
	}
	return m.followAndList(ctx, cl, batch)
}
