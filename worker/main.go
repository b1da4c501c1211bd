// Command worker runs Cohort's workflows and activities against Temporal and
// Databricks.
//
//	worker --config cohort.yaml [--address HOST:PORT] [--namespace NS]
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
	"log/slog"
	"math"
	"net/http"
	_ "net/http/pprof" // served only with --debug-addr
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/activities"
	"github.com/cohort-dev/cohort/bootstrap"
	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(ctx, os.Args[1:], logger); err != nil {
		logger.Error("worker stopped", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var paths config.Paths
	fs.Var(&paths, "config", "YAML config `file`; repeat to layer files, later ones winning (default $COHORT_CONFIG)")
	address := fs.String("address", "", "Temporal frontend `host:port` (default $TEMPORAL_ADDRESS or the config)")
	namespace := fs.String("namespace", "", "Temporal `namespace` (default $TEMPORAL_NAMESPACE or the config)")
	debugAddr := fs.String("debug-addr", "", "serve Go's pprof profiles on this `host:port` (off by default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *debugAddr != "" {
		go func() {
			// http.DefaultServeMux carries net/http/pprof's handlers.
			logger.Info("pprof", "addr", *debugAddr, "error", http.ListenAndServe(*debugAddr, nil))
		}()
	}
	if len(paths) == 0 && os.Getenv("COHORT_CONFIG") != "" {
		paths = config.Paths{os.Getenv("COHORT_CONFIG")}
	}
	cfg, err := config.Load(paths...)
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

	tc, err := bootstrap.Dial(ctx, cfg.Temporal.Address, cfg.Temporal.Namespace, cfg.Temporal.Compress, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := bootstrap.EnsureSearchAttributes(ctx, tc, cfg.Temporal.Namespace); err != nil {
		return err
	}

	acts, err := newActivities(cfg, tc)
	if err != nil {
		return err
	}
	identity := workerIdentity()
	workers := newWorkers(tc, cfg, acts, identity)
	for _, w := range workers {
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		defer w.Stop() // graceful: waits for running activities up to WorkerStopTimeout
	}
	go shareLimits(ctx, tc, acts.Limits, identity, logger)
	logger.Info("worker started", "temporal", cfg.Temporal.Address, "namespace", cfg.Temporal.Namespace,
		"account_host", cfg.Databricks.AccountHost, "workspace_host", cfg.Databricks.WorkspaceHost,
		"identity", identity, "rate_share_workers", acts.Limits.Workers())
	<-ctx.Done()
	logger.Info("worker stopping")
	return nil
}

func newActivities(cfg config.Config, tc client.Client) (*activities.Activities, error) {
	d := cfg.Databricks
	if d.AccountHost == "" || d.AccountID == "" || d.WorkspaceHost == "" || d.WorkspaceID == 0 {
		return nil, errors.New("config databricks: account_host, account_id, workspace_host and workspace_id are required")
	}
	ac, wc, err := activities.NewClients(activities.Connection{
		AccountHost: d.AccountHost, AccountID: d.AccountID, WorkspaceHost: d.WorkspaceHost, WorkspaceID: d.WorkspaceID,
		Profile: d.Profile, AccountProfile: d.AccountProfile, RetryTimeout: d.RetryTimeout, HTTPTimeout: d.HTTPTimeout,
	})
	if err != nil {
		return nil, err
	}
	account, workspace := activities.FromClients(ac, wc)
	r := cfg.RateLimits
	grants := make([]activities.Grant, len(cfg.Catalog.SharedGrants))
	for i, g := range cfg.Catalog.SharedGrants {
		grants[i] = activities.Grant{Securable: g.Securable, Name: g.Name, Privileges: g.Privileges}
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
		},
		Limits: activities.NewLimits(activities.RateRates{
			SCIMWrite: r.SCIMWrite, SCIMList: r.SCIMList, SCIMGet: r.SCIMGet,
			PermissionsWrite: r.PermissionsWrite, PermissionsRead: r.PermissionsRead,
			Assignments: r.Assignments, UnityCatalog: r.UnityCatalog, Clusters: r.Clusters,
		}, r.Workers),
		Roster:   roster.Store{Dir: cfg.RosterDir},
		Temporal: tc,
	}, nil
}

// newWorkers polls one task queue each: workflows and light activities on the
// main queue; the access activity (account SCIM first of all) on a queue the
// server paces to the SCIM write rate for all workers together; cluster work, which waits minutes for clusters to
// stop, on its own queue with many slots.
func newWorkers(tc client.Client, cfg config.Config, acts *activities.Activities, identity string) []worker.Worker {
	main := worker.New(tc, workflows.TaskQueue, worker.Options{WorkerStopTimeout: stopTimeout, Identity: identity})
	main.RegisterWorkflowWithOptions(workflows.BatchWorkflow, workflow.RegisterOptions{Name: workflows.BatchWorkflowName})
	main.RegisterWorkflowWithOptions(workflows.ChunkWorkflow, workflow.RegisterOptions{Name: workflows.ChunkWorkflowName})
	main.RegisterWorkflowWithOptions(workflows.ParticipantWorkflow, workflow.RegisterOptions{Name: workflows.ParticipantWorkflowName})
	register(main, acts.SetupBatch, activities.SetupBatchName)
	register(main, acts.LoadChunk, activities.LoadChunkName)
	register(main, acts.AwaitParticipant, activities.AwaitParticipantName)

	ao := accountOptions(cfg.RateLimits.SCIMWrite, cfg.RateLimits.Workers)
	ao.Identity = identity // the rate share counts the workers by it
	account := worker.New(tc, workflows.AccountTaskQueue, ao)
	register(account, acts.ProvisionAccess, activities.ProvisionAccessName)

	compute := worker.New(tc, workflows.ComputeTaskQueue, worker.Options{
		DisableWorkflowWorker:              true,
		MaxConcurrentActivityExecutionSize: 2 * cfg.Batch.MaxInFlight,
		WorkerStopTimeout:                  stopTimeout,
		Identity:                           identity,
	})
	register(compute, acts.ProvisionCluster, activities.ProvisionClusterName)
	return []worker.Worker{main, account, compute}
}

// accountOptions paces the account task queue, whose activities start with
// the scarcest call of all (SCIM user create, scimWrite per second across the
// deployment). The Temporal server enforces a task queue's rate for all its
// workers, but only approximately: set to the SCIM rate it dispatched
// 4.7-4.9/s of 5 (bench/RESULTS.md), which made it, not Databricks, the
// bound. So it is set dispatchHeadroom above the rate, and the activities'
// own token bucket (exactly the rate, divided by the workers) paces the
// creates; the execution slots bound what a worker may hold dispatched but
// waiting to slotSeconds of its share.
func accountOptions(scimWrite float64, workers int) worker.Options {
	const (
		dispatchHeadroom = 1.1
		slotSeconds      = 20
	)
	o := worker.Options{DisableWorkflowWorker: true, WorkerStopTimeout: stopTimeout}
	if scimWrite > 0 {
		o.TaskQueueActivitiesPerSecond = scimWrite * dispatchHeadroom
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

func register(w worker.Worker, fn any, name string) {
	w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
}
