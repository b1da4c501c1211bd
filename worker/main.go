// Command worker runs Cohort's workflows and activities against Temporal and
// Databricks.
//
//	worker --config cohort.yaml [--address HOST:PORT] [--namespace NS] [--metrics-addr HOST:PORT] [--debug-addr HOST:PORT]
//
// Databricks credentials come only from the SDK's unified authentication
// (DATABRICKS_TOKEN, a ~/.databrickscfg profile named in the config, Azure
// service principal or OAuth M2M environment variables).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with --debug-addr
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/activities"
	"github.com/cohort-dev/cohort/bootstrap"
	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/metrics"
	"github.com/cohort-dev/cohort/roster"
	cohortusage "github.com/cohort-dev/cohort/usage"
	"github.com/cohort-dev/cohort/wire"
	"github.com/cohort-dev/cohort/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := run(ctx, os.Args[1:], logger)
	var ue usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		logger.Error("worker stopped", "error", err)
		os.Exit(1)
	}
}

// usageError is a command line to fix (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: worker --config FILE [--config FILE]... [flags]

Runs Cohort's workflows and activities (run one or more). Databricks
credentials come from the SDK's unified authentication only.

flags:`

func run(ctx context.Context, args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var paths config.Paths
	fs.Var(&paths, "config", "YAML config `file`; repeat to layer files, later ones winning (default $COHORT_CONFIG, else ./cohort.yaml if present)")
	address := fs.String("address", "", "Temporal frontend `host:port` (default $TEMPORAL_ADDRESS or the config)")
	namespace := fs.String("namespace", "", "Temporal `namespace` (default $TEMPORAL_NAMESPACE or the config)")
	debugAddr := fs.String("debug-addr", "", "serve Go's pprof profiles on this `host:port` (off by default)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at /metrics on this `host:port` (default the config's metrics.address; off if neither)")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fmt.Fprintln(os.Stdout, usage)
			fs.PrintDefaults()
			return err
		}
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
		return usageError{fmt.Sprintf("worker: %v (valid flags: %s; see worker -h)", err, strings.Join(names, ", "))}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("worker: unexpected argument %q (see worker -h)", fs.Arg(0))}
	}
	if *debugAddr != "" {
		go func() {
			// http.DefaultServeMux carries net/http/pprof's handlers.
			logger.Info("pprof", "addr", *debugAddr, "error", http.ListenAndServe(*debugAddr, nil))
		}()
	}
	// The starter's rule (config.Files): the flags, else $COHORT_CONFIG,
	// else ./cohort.yaml if there is one.
	cfg, err := config.Load(config.Files(paths, os.Getenv)...)
	if err != nil {
		return err
	}
	cfg.ApplyEnv(os.Getenv)
	if *address != "" {
		cfg.Temporal.Address = *address
	}
	if *namespace != "" {
		cfg.Temporal.Namespace = *namespace
	}
	if *metricsAddr != "" {
		cfg.Metrics.Address = *metricsAddr
	}

	m, err := serveMetrics(ctx, cfg.Metrics.Address, logger)
	if err != nil {
		return err
	}
	var withMetrics []func(*client.Options)
	if m != nil {
		defer m.Close()
		withMetrics = append(withMetrics, func(o *client.Options) {
			o.MetricsHandler = m.TemporalHandler()
			o.Interceptors = append(o.Interceptors, m.Interceptor(wire.NonRetryable))
		})
	}
	tc, err := bootstrap.Dial(ctx, cfg.Temporal.Address, cfg.Temporal.Namespace, cfg.Temporal.Compress, logger, withMetrics...)
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := bootstrap.EnsureSearchAttributes(ctx, tc, cfg.Temporal.Namespace); err != nil {
		return err
	}

	acts, err := newActivities(cfg, tc, m)
	if err != nil {
		return err
	}
	identity := workerIdentity()
	workers, err := newWorkers(tc, cfg, acts, identity)
	if err != nil {
		return err
	}
	for _, w := range workers {
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		defer w.Stop() // graceful: waits for running activities up to WorkerStopTimeout
	}
	go shareLimits(ctx, tc, acts.Limits, identity, logger)
	if m != nil {
		m.SetReady(true)
		defer m.SetReady(false)
	}
	logger.Info("worker started", "temporal", cfg.Temporal.Address, "namespace", cfg.Temporal.Namespace,
		"account_host", cfg.Databricks.AccountHost, "workspace_host", cfg.Databricks.WorkspaceHost,
		"identity", identity, "rate_share_workers", acts.Limits.Workers())
	<-ctx.Done()
	logger.Info("worker stopping")
	return nil
}

// serveMetrics starts the Prometheus endpoint on addr, if any (nil, nil
// otherwise). A port that cannot be bound stops the worker before it polls.
func serveMetrics(ctx context.Context, addr string, logger *slog.Logger) (*metrics.Metrics, error) {
	if addr == "" {
		return nil, nil
	}
	m, err := metrics.New()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	logger.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	go func() {
		if err := m.Serve(ctx, ln); err != nil {
			logger.Error("metrics stopped", "error", err)
		}
	}()
	return m, nil
}

// newActivities builds the activities' clients; with m, their Databricks
// requests and rate-limiter waits are counted.
func newActivities(cfg config.Config, tc client.Client, m *metrics.Metrics) (*activities.Activities, error) {
	d := cfg.Databricks
	if d.AccountHost == "" || d.AccountID == "" || d.WorkspaceHost == "" || d.WorkspaceID == 0 {
		return nil, errors.New("config databricks: account_host, account_id, workspace_host and workspace_id are required")
	}
	conn := activities.Connection{
		AccountHost: d.AccountHost, AccountID: d.AccountID, WorkspaceHost: d.WorkspaceHost, WorkspaceID: d.WorkspaceID,
		Profile: d.Profile, AccountProfile: d.AccountProfile, RetryTimeout: d.RetryTimeout, HTTPTimeout: d.HTTPTimeout,
	}
	if m != nil {
		conn.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return m.Transport(rt, func(r *http.Request) string { return string(activities.ClassOf(r.Method, r.URL.Path)) })
		}
	}
	ac, wc, err := activities.NewClients(conn)
	if err != nil {
		return nil, err
	}
	account, workspace := activities.FromClients(ac, wc)
	r := cfg.RateLimits
	grants := make([]activities.Grant, len(cfg.Catalog.SharedGrants))
	for i, g := range cfg.Catalog.SharedGrants {
		grants[i] = activities.Grant{Securable: g.Securable, Name: g.Name, Privileges: g.Privileges}
	}
	limits := activities.NewLimits(activities.RateRates{
		SCIMWrite: r.SCIMWrite, SCIMList: r.SCIMList, SCIMGet: r.SCIMGet, SCIMPatch: r.SCIMPatch,
		PermissionsWrite: r.PermissionsWrite, PermissionsRead: r.PermissionsRead,
		Assignments: r.Assignments, UnityCatalog: r.UnityCatalog, Clusters: r.Clusters, ClusterEvents: r.ClusterEvents,
	}, r.Workers)
	if m != nil {
		limits.Observe = func(c activities.Class, waited time.Duration) { m.ObserveWait(string(c), waited) }
	}
	return &activities.Activities{
		Account:   account,
		Workspace: workspace,
		Settings: activities.Settings{
			WorkspaceID: d.WorkspaceID, WorkspaceHost: d.WorkspaceHost,
			Catalog: cfg.Catalog.Name, CreateCatalog: cfg.Catalog.CreateIfMissing,
			SchemaPrivileges: cfg.Catalog.SchemaPrivileges, SharedGrants: grants,
			PolicyName: cfg.Cluster.PolicyName, SparkVersion: cfg.Cluster.SparkVersion, NodeType: cfg.Cluster.NodeType,
			Autotermination: cfg.Cluster.AutoterminationMinutes, TagKey: cfg.Cluster.TagKey,
			StopPollInterval: cfg.Cluster.StopPollInterval, AssignmentWait: d.AssignmentWait,
			StorageRoot:     cfg.Catalog.StorageRoot,
			MaxAccountUsers: cfg.Caps.AccountUsers, MaxSchemasPerCatalog: cfg.Caps.SchemasPerCatalog,
			SchemaMaxLen: cfg.Naming.MaxLen,
			Rates:        cfg.Usage.Rates(), Budget: cfg.Budget.Of(),
		},
		Limits:       limits,
		Roster:       roster.Store{Dir: cfg.RosterDir},
		Temporal:     tc,
		Ledger:       cohortusage.Store{Dir: cfg.LedgerDir()},
		ObserveUsage: observeUsage(m),
	}, nil
}

// observeUsage feeds the usage gauges (nil without metrics).
func observeUsage(m *metrics.Metrics) func(wire.ParticipantUsage) {
	if m == nil {
		return nil
	}
	return func(u wire.ParticipantUsage) {
		m.ObserveUsage(u.Email, u.Hours, u.State == cohortusage.StateOverBudget)
	}
}

// newWorkers polls one task queue each (queues): workflows and light
// activities on the main queue; each step activity on the queue of the
// Databricks API it calls, as the wiring table says (workflows.Activities):
// CreateUser on a queue the server paces to the SCIM write rate for all
// workers together, cluster work, which may wait for clusters to stop, with
// many slots. identity names this worker process on every queue (the rate
// share counts the workers by it).
func newWorkers(tc client.Client, cfg config.Config, acts *activities.Activities, identity string) ([]worker.Worker, error) {
	var all []worker.Worker
	byQueue := map[string]registrar{}
	for _, q := range queues(cfg, identity) {
		w := worker.New(tc, q.name, q.options)
		all = append(all, w)
		byQueue[q.name] = w
	}
	main := all[0] // workflows.TaskQueue, the only queue with workflows
	main.RegisterWorkflowWithOptions(workflows.BatchWorkflow, workflow.RegisterOptions{Name: workflows.BatchWorkflowName})
	main.RegisterWorkflowWithOptions(workflows.ChunkWorkflow, workflow.RegisterOptions{Name: workflows.ChunkWorkflowName})
	main.RegisterWorkflowWithOptions(workflows.ParticipantWorkflow, workflow.RegisterOptions{Name: workflows.ParticipantWorkflowName})
	main.RegisterWorkflowWithOptions(workflows.PlanWorkflow, workflow.RegisterOptions{Name: workflows.PlanWorkflowName})
	if err := registerActivities(byQueue, activityMethods(acts)); err != nil {
		return nil, err
	}
	return all, nil
}

// queue is one task queue this worker polls, with its worker's options.
type queue struct {
	name    string
	options worker.Options
}

// queues are the task queues a worker polls: the main one (workflows and
// light activities), then one per Databricks API the steps call, sized to
// the batch's in-flight bound.
func queues(cfg config.Config, identity string) []queue {
	ao := accountOptions(cfg.RateLimits.SCIMWrite, cfg.RateLimits.Workers)
	ao.Identity = identity
	activityOnly := func(slots int) worker.Options {
		return worker.Options{DisableWorkflowWorker: true, MaxConcurrentActivityExecutionSize: slots,
			WorkerStopTimeout: stopTimeout, Identity: identity}
	}
	return []queue{
		{workflows.TaskQueue, worker.Options{WorkerStopTimeout: stopTimeout, Identity: identity}},
		{workflows.AccountTaskQueue, ao},
		{workflows.AssignmentTaskQueue, activityOnly(cfg.Batch.MaxInFlight)},
		{workflows.CatalogTaskQueue, activityOnly(2 * cfg.Batch.MaxInFlight)},
		{workflows.ComputeTaskQueue, activityOnly(3 * cfg.Batch.MaxInFlight)},
	}
}

// activityMethods maps each activity name to the method of acts that runs
// it. Every name must be a row of the wiring table (workflows.Activities),
// and every row must have a method here: registerActivities refuses to
// start otherwise. The earlier shape's two activities stay for participant
// runs it started (see workflows/participant_legacy.go).
func activityMethods(acts *activities.Activities) map[string]any {
	return map[string]any{
		wire.SetupBatchName:        acts.SetupBatch,
		wire.LoadChunkName:         acts.LoadChunk,
		wire.AwaitParticipantName:  acts.AwaitParticipant,
		wire.PlanWorkspaceName:     acts.PlanWorkspace,
		wire.PriorRunsName:         acts.PriorRuns,
		wire.PlanOffboardName:      acts.PlanOffboard,
		wire.ReadEventName:         acts.ReadEvent,
		wire.PrefetchSurveyName:    acts.PrefetchSurvey,
		wire.SurveyChunkName:       acts.SurveyChunk,
		wire.PlanOffboardChunkName: acts.PlanOffboardChunk,
		wire.UsageChunkName:        acts.UsageChunk,

		wire.CreateUserName:      acts.CreateUser,
		wire.AssignWorkspaceName: acts.AssignWorkspace,
		wire.CreateSchemaName:    acts.CreateSchema,
		wire.GrantName:           acts.Grant,
		wire.CreateClusterName:   acts.CreateCluster,
		wire.SetPermissionName:   acts.SetPermission,
		wire.StopClusterName:     acts.StopCluster,

		wire.RemoveAssignmentName: acts.RemoveAssignment,
		wire.RemoveClustersName:   acts.RemoveClusters,
		wire.RevokeGrantsName:     acts.RevokeGrants,
		wire.DropSchemaName:       acts.DropSchema,
		wire.RemoveUserName:       acts.RemoveUser,
		wire.EnforceBudgetName:    acts.EnforceBudget,

		wire.ProvisionAccessName:  acts.ProvisionAccess,
		wire.ProvisionClusterName: acts.ProvisionCluster,
	}
}

// registrar is the part of a worker.Worker that registers activities (a
// fake in the wiring test).
type registrar interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// registerActivities registers every row of the wiring table, by name, on
// the worker of the queue the row names, with its method from methods. A
// row with no method or no such queue, or a method the table lacks, is an
// error: the workflows would schedule an activity no worker runs.
func registerActivities(byQueue map[string]registrar, methods map[string]any) error {
	table := workflows.Activities()
	seen := make(map[string]bool, len(table))
	for _, a := range table {
		fn, ok := methods[a.Name]
		if !ok {
			return fmt.Errorf("activity %s is in the wiring table but has no method in activityMethods", a.Name)
		}
		w, ok := byQueue[a.Queue]
		if !ok {
			return fmt.Errorf("activity %s runs on task queue %s, which this worker does not poll (see queues)", a.Name, a.Queue)
		}
		if seen[a.Name] {
			return fmt.Errorf("activity %s is in the wiring table twice", a.Name)
		}
		seen[a.Name] = true
		w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: a.Name})
	}
	for _, name := range slices.Sorted(maps.Keys(methods)) {
		if !seen[name] {
			return fmt.Errorf("activity %s has a method in activityMethods but no row in the wiring table (workflows/wiring.go)", name)
		}
	}
	return nil
}

// accountOptions paces the account task queue, whose activities start with
// the scarcest call of all (SCIM user create, scimWrite per second across the
// deployment). What paces the creates is the activities' own token bucket
// (exactly the rate, divided by the live workers); the Temporal server's
// task-queue limit is a cap above it. The server splits that limit evenly
// across the queue's read partitions (accountPartitions, 4 by default;
// matching's ratelimit_manager.go), and a batch's last creates sit in one
// partition or two: a limit of 1.1 x scimWrite for the queue dispatched them
// at a quarter of the rate, one every 0.73 s at 5/s, some 2 s lost at the
// end of every batch (bench/RESULTS.md, issue 18; it was also why a limit of
// exactly the rate delivered 4.7-4.9/s of 5). So each partition is allowed
// dispatchHeadroom x scimWrite, and the queue as a whole accountPartitions
// times that. The execution slots bound what a worker holds dispatched but
// waiting for its bucket to slotSeconds of its share: a create that waits
// less than the 5 s before an activity's first heartbeat costs the server
// no heartbeat write, and a worker that dies strands little.
func accountOptions(scimWrite float64, workers int) worker.Options {
	const (
		dispatchHeadroom = 1.1
		slotSeconds      = 4
	)
	o := worker.Options{DisableWorkflowWorker: true, WorkerStopTimeout: stopTimeout}
	if scimWrite > 0 {
		o.TaskQueueActivitiesPerSecond = scimWrite * dispatchHeadroom * accountPartitions
		o.MaxConcurrentActivityExecutionSize = max(int(math.Ceil(scimWrite/float64(max(workers, 1))*slotSeconds)), 10)
	}
	return o
}

// workerIdentity names this worker process to the Temporal server, as the
// SDK's default does (pid@host): unique per process, so the rate share
// counts processes, not their three task-queue workers.
func workerIdentity() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}

// stopTimeout is how long a stopping worker (SIGTERM) lets running
// activities finish before cancelling them; whatever is cut short is retried
// elsewhere, every step being idempotent.
const stopTimeout = 30 * time.Second
