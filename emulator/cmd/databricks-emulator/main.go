// Command databricks-emulator serves the Cohort Databricks emulator over HTTP.
// See the emulator package documentation for flags and endpoints.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cohort-dev/cohort/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "databricks-emulator:", err)
		os.Exit(2)
	}
}

// limitFlags collects repeated --limit CLASS=RPS values.
type limitFlags map[string]float64

func (l limitFlags) String() string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+strconv.FormatFloat(v, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

func (l limitFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want CLASS=RPS or CLASS.burst=N, got %q", s)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("limit %s: %q is not a number", k, v)
	}
	l[k] = f
	return nil
}

// listFlag collects a repeated string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// shapeFlag is an emulator.ErrorShape given as STATUS:CODE:MESSAGE.
type shapeFlag struct{ v *emulator.ErrorShape }

func (f shapeFlag) String() string {
	if f.v == nil || f.v.Status == 0 {
		return ""
	}
	return f.v.String()
}

func (f shapeFlag) Set(s string) error {
	e, err := emulator.ParseErrorShape(s)
	if err != nil {
		return err
	}
	*f.v = e
	return nil
}

// policyOverrides reads --policy-overrides FILE: either the overrides object
// itself, or {"policy_family_definition_overrides": {...} or "...",
// "max_clusters_per_user": N}.
func policyOverrides(path string) (string, int, error) {
	if path == "" {
		return "", 0, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, fmt.Errorf("policy overrides: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return "", 0, fmt.Errorf("policy overrides %s: want a JSON object: %w", path, err)
	}
	ov, hasOv := top["policy_family_definition_overrides"]
	mc, hasMax := top["max_clusters_per_user"]
	if !hasOv && !hasMax {
		return string(b), 0, nil
	}
	max := 0
	if hasMax {
		if err := json.Unmarshal(mc, &max); err != nil || max < 0 {
			return "", 0, fmt.Errorf("policy overrides %s: max_clusters_per_user must be a non-negative integer", path)
		}
	}
	def := ""
	if hasOv {
		var str string
		if json.Unmarshal(ov, &str) == nil {
			def = str
		} else {
			def = string(ov)
		}
	}
	return def, max, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("databricks-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen      = fs.String("listen", "127.0.0.1:8765", "address to listen on (port 0 picks a free port)")
		token       = fs.String("token", "dapi-emulator-admin", "admin personal access token the emulator accepts")
		userToken   = fs.String("user-token", "dapi-emulator-user", "non-admin token (403 on admin APIs); empty disables it")
		accountID   = fs.String("account-id", emulator.DefaultAccountID, "account id")
		workspaceID = fs.Int64("workspace-id", emulator.DefaultWorkspaceID, "workspace id")
		state       = fs.String("state", "", "state journal file (empty = in memory)")
		latency     = fs.String("latency", "none", "latency model: none or realistic")
		rateLimits  = fs.String("rate-limits", "none", "rate limits: none or azure")
		faults      = fs.Float64("faults", 0, "fraction of requests failing transiently (0..1)")
		seed        = fs.Int64("seed", 1, "seed for ids, latencies and faults")
		timeScale   = fs.Float64("time-scale", 1, "run latencies, cluster transitions and rate windows this many times faster")
		lag         = fs.Duration("assignment-lag", 0, "read-after-write lag after a workspace assignment (before scaling)")
		startDelay  = fs.Duration("cluster-start-delay", 0, "PENDING->RUNNING delay (before scaling); 0 = by latency model")
		stopDelay   = fs.Duration("cluster-stop-delay", 0, "TERMINATING->TERMINATED delay (before scaling); 0 = by latency model")
		writeConfig = fs.String("write-config", "", "write a worker config fragment (YAML) pointing at this emulator")
		verbose     = fs.Bool("v", false, "log every request to stderr")
		limits      = limitFlags{}

		wsName        = fs.String("workspace-name", emulator.DefaultWorkspaceName, "workspace name; its workspace catalog is the name with '-' as '_'")
		metastoreRoot = fs.String("metastore-root", "", "metastore root storage URL; empty: a catalog create needs storage_root (400 INVALID_STATE otherwise)")
		maxUsers      = fs.Int("max-account-users", emulator.DefaultMaxAccountUsers, "users and service principals per account (negative: no cap)")
		maxSchemas    = fs.Int("max-schemas-per-catalog", emulator.DefaultMaxSchemasPerCatalog, "schemas per catalog, default and information_schema included (negative: no cap)")
		retention     = fs.Duration("cluster-retention", emulator.DefaultClusterRetention, "terminated unpinned clusters are permanently deleted this long after termination (before scaling; negative: never)")
		evRetention   = fs.Duration("event-retention", emulator.DefaultEventRetention, "cluster events are dropped this long after they happened [Est] (before scaling; 0: kept for ever)")
		maxPinned     = fs.Int("max-pinned-clusters", emulator.DefaultMaxPinnedClusters, "pinned clusters per workspace (negative: no cap)")
		policyFile    = fs.String("policy-overrides", "", "JSON file merged into the Personal Compute family's definition (policy_family_definition_overrides; may hold max_clusters_per_user)")
		maxPerUser    = fs.Int("max-clusters-per-user", 0, "Personal Compute max_clusters_per_user (0: unset)")
		flakyShare    = fs.Float64("assignment-flaky-share", emulator.DefaultAssignmentFlakyShare, "share of assignment PUTs failing within --assignment-flaky-window of the user's creation (negative: none)")
		flakyWindow   = fs.Duration("assignment-flaky-window", emulator.DefaultAssignmentFlakyWindow, "how long after a user's creation its assignment PUTs may fail (before scaling)")
		errBodyShare  = fs.Float64("assignment-error-body-share", emulator.DefaultAssignmentErrorBodyShare, "share of those failures answered 200 with an error field, not applied (negative: none)")
		int64Share    = fs.Float64("int64-as-string-share", emulator.DefaultInt64AsStringShare, "share of answers sending 64-bit integers as JSON strings (negative: none)")
		catalogs      listFlag
		userQuota     = emulator.DefaultUserQuotaError
		schemaQuota   = emulator.DefaultSchemaQuotaError
		flakyError    = emulator.DefaultAssignmentFlakyError
	)
	fs.Var(limits, "limit", "rate-limit override CLASS=RPS or CLASS.burst=N (repeatable)")
	fs.Var(&catalogs, "catalog", "a catalog an admin made before the event (repeatable)")
	fs.Var(shapeFlag{&userQuota}, "user-quota-error", "answer past --max-account-users, STATUS:CODE:MESSAGE (empty CODE: SCIM body)")
	fs.Var(shapeFlag{&schemaQuota}, "schema-quota-error", "answer past --max-schemas-per-catalog, STATUS:CODE:MESSAGE")
	fs.Var(shapeFlag{&flakyError}, "assignment-flaky-error", "answer of a failing assignment PUT, STATUS:CODE:MESSAGE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	overrides, fileMax, err := policyOverrides(*policyFile)
	if err != nil {
		return err
	}
	if *maxPerUser == 0 {
		*maxPerUser = fileMax
	}
	// The flags carry the production figures; Options reads 0 as "default"
	// and a negative value as "off", so 0 on the command line means off too.
	off := func(v float64) float64 {
		if v == 0 {
			return -1
		}
		return v
	}
	offInt := func(v int) int {
		if v == 0 {
			return -1
		}
		return v
	}
	if *retention == 0 {
		*retention = -1
	}
	if *evRetention == 0 {
		*evRetention = -1
	}
	emu, err := emulator.New(emulator.Options{
		Token: *token, UserToken: *userToken, AccountID: *accountID, WorkspaceID: *workspaceID,
		StatePath: *state, Latency: *latency, RateLimits: *rateLimits, Limits: limits,
		Faults: *faults, Seed: *seed, TimeScale: *timeScale, AssignmentLag: *lag,
		ClusterStartDelay: *startDelay, ClusterStopDelay: *stopDelay, Logger: logger,
		WorkspaceName: *wsName, Catalogs: catalogs, MetastoreRoot: *metastoreRoot,
		MaxAccountUsers: offInt(*maxUsers), UserQuotaError: userQuota,
		MaxSchemasPerCatalog: offInt(*maxSchemas), SchemaQuotaError: schemaQuota,
		ClusterRetention: *retention, EventRetention: *evRetention, MaxPinnedClusters: offInt(*maxPinned),
		PolicyOverrides: overrides, MaxClustersPerUser: *maxPerUser,
		AssignmentFlakyShare: off(*flakyShare), AssignmentFlakyWindow: *flakyWindow,
		AssignmentErrorBodyShare: off(*errBodyShare), AssignmentFlakyError: flakyError,
		Int64AsStringShare: off(*int64Share),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		emu.Close()
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	host := "http://" + ln.Addr().String()
	if *writeConfig != "" {
		if err := writeWorkerConfig(*writeConfig, host, *accountID, *workspaceID); err != nil {
			ln.Close()
			emu.Close()
			return err
		}
	}
	fmt.Fprintf(stdout, "host: %s\naccount id: %s\nworkspace id: %d\ntoken: %s\n", host, *accountID, *workspaceID, *token)
	if *userToken != "" {
		fmt.Fprintf(stdout, "user token: %s\n", *userToken)
	}
	if *state != "" {
		fmt.Fprintf(stdout, "state: %s\n", *state)
	}
	fmt.Fprintf(stdout, "listening on %s\n", host)

	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		emu.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	serr := srv.Shutdown(shutdownCtx)
	if err := emu.Close(); err != nil {
		return err
	}
	if serr != nil && !errors.Is(serr, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", serr)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

func writeWorkerConfig(path, host, accountID string, workspaceID int64) error {
	cfg := fmt.Sprintf(`# Written by databricks-emulator. Credentials come from DATABRICKS_TOKEN, never from this file.
databricks:
  account_host: %s
  account_id: %q
  workspace_host: %s
  workspace_id: %d
`, host, accountID, host, workspaceID)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("write config %s: %w", path, err)
	}
	return nil
}
