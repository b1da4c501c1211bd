// Package config holds Cohort's YAML configuration, shared by the worker and the
// starter. It carries no secrets: Databricks credentials come only from the SDK's
// unified authentication (environment, ~/.databrickscfg profiles, Azure service
// principals, OAuth M2M), never from this file or from workflow inputs.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/usage"
	"github.com/cohort-dev/cohort/wire"
)

// Config is the whole file. Zero values mean "use the default" (see Default).
type Config struct {
	Temporal   Temporal   `yaml:"temporal"`
	Databricks Databricks `yaml:"databricks"`
	Catalog    Catalog    `yaml:"catalog"`
	Naming     Naming     `yaml:"naming"`
	Cluster    Cluster    `yaml:"cluster"`
	Batch      Batch      `yaml:"batch"`
	RateLimits RateLimits `yaml:"rate_limits"`
	Metrics    Metrics    `yaml:"metrics"`
	Caps       Caps       `yaml:"caps"`
	Usage      Usage      `yaml:"usage"`
	Budget     Budget     `yaml:"budget"`
	// RosterDir is where the starter stores validated rosters and the worker
	// pages through them; both must see the same directory.
	RosterDir string `yaml:"roster_dir"`
}

// Temporal says where the Temporal frontend is. TEMPORAL_ADDRESS and
// TEMPORAL_NAMESPACE override the file; command-line flags override both.
type Temporal struct {
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
	// UIAddress is the Web UI base URL printed for people (dev server: port 8233).
	UIAddress string `yaml:"ui_address"`
	// Compress gzips gRPC requests (the SDK's default; off here, see bootstrap.Dial).
	Compress bool `yaml:"compress"`
}

// Databricks names the account and the workspace. Credentials are not here.
type Databricks struct {
	AccountHost   string `yaml:"account_host"`
	AccountID     string `yaml:"account_id"`
	WorkspaceHost string `yaml:"workspace_host"`
	WorkspaceID   int64  `yaml:"workspace_id"`
	// Profile selects a ~/.databrickscfg profile for both clients (optional);
	// AccountProfile overrides it for the account client.
	Profile        string `yaml:"profile"`
	AccountProfile string `yaml:"account_profile"`
	// RetryTimeout bounds the SDK's own retries of one call (its default is 300 s);
	// kept well below the activities' StartToCloseTimeout so Temporal's retry
	// policy, not the SDK, decides what happens after that.
	RetryTimeout time.Duration `yaml:"retry_timeout"`
	// HTTPTimeout bounds one HTTP attempt (SDK default 60 s).
	HTTPTimeout time.Duration `yaml:"http_timeout"`
	// AssignmentWait bounds how long one attempt waits for a new workspace
	// assignment to become visible (it lags on the real service).
	AssignmentWait time.Duration `yaml:"assignment_wait"`
}

// Catalog is the shared Unity Catalog catalog holding one schema per participant.
type Catalog struct {
	Name string `yaml:"name"`
	// CreateIfMissing lets batch setup create the catalog (needs a metastore
	// admin or CREATE CATALOG); otherwise a missing catalog fails the batch.
	CreateIfMissing bool `yaml:"create_if_missing"`
	// SchemaPrivileges are granted to the participant on their own schema.
	SchemaPrivileges []string `yaml:"schema_privileges"`
	// SharedGrants are granted to every participant, e.g. read access to the
	// source-data schema. Nothing is ever granted to anyone but the participant.
	// Every participant holds them on the same securable, so only read
	// privileges (ReadPrivileges) are accepted unless AllowWriteSharedGrants
	// is set; ALL_PRIVILEGES and MANAGE never are.
	SharedGrants []Grant `yaml:"shared_grants"`
	// AllowWriteSharedGrants lets shared_grants hold privileges beyond
	// reading (MODIFY, CREATE_TABLE, ...): every participant could then
	// change, or add to, what every other participant sees there.
	AllowWriteSharedGrants bool `yaml:"allow_write_shared_grants"`
	// StorageRoot is the managed location (abfss://container@account.dfs.core.windows.net/path,
	// under an external location the caller may use) sent as storage_root
	// when setup creates the catalog. Metastores that Unity Catalog created
	// automatically have no root storage: there a create without it fails.
	StorageRoot string `yaml:"storage_root"`
}

// Caps are the Databricks limits a large event meets, which the readiness
// checks (starter plan, batch setup) count against. Raise them when the
// account team has raised the account's.
type Caps struct {
	// AccountUsers caps users plus service principals in the account.
	AccountUsers int `yaml:"account_users"`
	// SchemasPerCatalog caps schemas per catalog (default and information_schema included).
	SchemasPerCatalog int `yaml:"schemas_per_catalog"`
}

// Grant is a set of privileges on one securable.
type Grant struct {
	Securable  string   `yaml:"securable"` // "catalog" or "schema"
	Name       string   `yaml:"name"`      // full name: "cat" or "cat.schema"
	Privileges []string `yaml:"privileges"`
}

// Naming configures the derived schema and cluster names (see roster.Naming).
type Naming struct {
	Schema  string `yaml:"schema"`
	Cluster string `yaml:"cluster"`
	MaxLen  int    `yaml:"max_len"`
}

// Cluster is the personal cluster every participant gets.
type Cluster struct {
	PolicyName string `yaml:"policy_name"`
	// SparkVersion pins the runtime; empty selects the latest ML LTS runtime.
	SparkVersion string `yaml:"spark_version"`
	// NodeType is the VM type; "smallest" selects the smallest via SelectNodeType.
	NodeType               string `yaml:"node_type"`
	AutoterminationMinutes int    `yaml:"autotermination_minutes"`
	// TagKey is the custom tag that identifies a participant's cluster; its
	// value is the participant's email. An existing cluster carrying it is adopted.
	TagKey string `yaml:"tag_key"`
	// StopPollInterval is how long the stop step waits before terminating
	// again a cluster that still reads as running after a terminate (the stop
	// is done once the cluster reads TERMINATING or TERMINATED).
	StopPollInterval time.Duration `yaml:"stop_poll_interval"`
}

// MaxChunkSize bounds batch.chunk_size. A chunk's participants travel
// through Temporal in one LoadChunk result (and come back in one chunk
// result). With roster's limits (an address of at most 254 ASCII characters,
// a display name of at most 256 characters, names of at most 255) a
// participant is at most about 2.4 KB of JSON, so 250 of them stay near
// 0.6 MB, far under Temporal's 2 MiB payload limit, whatever the roster.
const MaxChunkSize = 250

// Batch shapes the fan-out. See workflows.BatchWorkflow.
type Batch struct {
	// ChunkSize participants are handled by one chunk workflow run; at most
	// MaxChunkSize.
	ChunkSize int `yaml:"chunk_size"`
	// MaxInFlight bounds the participant workflows running at once (all chunks).
	MaxInFlight int `yaml:"max_in_flight"`
	// ParallelChunks chunk workflows run at once, so one chunk's tail overlaps
	// the next chunk's start.
	ParallelChunks int `yaml:"parallel_chunks"`
	// ChunksPerRun bounds the chunks one batch run starts before it continues as new.
	ChunksPerRun int `yaml:"chunks_per_run"`
	// StepTimeout bounds one step's retries (ScheduleToClose) before the
	// participant is reported failed.
	StepTimeout time.Duration `yaml:"step_timeout"`
	// ParticipantTimeout bounds one participant's whole run (the child
	// workflow's run timeout), whatever happens inside it: a run whose
	// workflow tasks keep failing (the worker log says why) or whose step
	// hangs ends failed at step "workflow" after it. 0 derives it from
	// StepTimeout (see ParticipantTimeoutOrDefault), long enough that a run
	// whose every step takes its whole step timeout is never cut.
	ParticipantTimeout time.Duration `yaml:"participant_timeout"`
}

// ParticipantTimeoutOrDefault is ParticipantTimeout, or when it is 0,
// wire.DefaultParticipantTimeout of StepTimeout (10 step timeouts: 5h for
// 30m steps), which a run whose steps each end within their step timeout
// never reaches.
func (b Batch) ParticipantTimeoutOrDefault() time.Duration {
	if b.ParticipantTimeout > 0 {
		return b.ParticipantTimeout
	}
	return wire.DefaultParticipantTimeout(b.StepTimeout)
}

// ReadPrivileges are the privileges shared_grants may hold without
// catalog.allow_write_shared_grants: they let a participant find and read
// the shared data, never change it.
var ReadPrivileges = []string{"USE_CATALOG", "USE_SCHEMA", "SELECT", "READ_VOLUME", "EXECUTE", "BROWSE"}

// RateLimits are the Databricks API rates Cohort paces itself to, in requests
// per second for the whole deployment (published Azure limits by default).
type RateLimits struct {
	SCIMWrite        float64 `yaml:"scim_write"`
	SCIMList         float64 `yaml:"scim_list"`
	SCIMGet          float64 `yaml:"scim_get"`
	SCIMPatch        float64 `yaml:"scim_patch"`
	PermissionsWrite float64 `yaml:"permissions_write"`
	PermissionsRead  float64 `yaml:"permissions_read"`
	Assignments      float64 `yaml:"assignments"`
	UnityCatalog     float64 `yaml:"unity_catalog"`
	Clusters         float64 `yaml:"clusters"`
	// ClusterEvents paces the usage read's pages of clusters/events: no
	// published figure [Est], so the clusters class's guess (the emulator
	// gives the endpoint a bucket of its own at that rate).
	ClusterEvents float64 `yaml:"cluster_events"`
	// Workers is how many worker processes share these limits; each paces
	// itself to limit/Workers.
	Workers int `yaml:"workers"`
}

// Usage prices the run time the usage read finds (starter usage): DBUs per
// hour by node type and the price of a DBU. A node type without a rate, or
// no price, shows hours only: Cohort never guesses a figure. The defaults
// are Azure's published list figures for the default node type and
// All-Purpose Compute on the Premium tier (examples/cohort.yaml names the
// pages); check them against your region, tier and contract.
type Usage struct {
	DBUPerHour  map[string]float64 `yaml:"dbu_per_hour"`
	PricePerDBU float64            `yaml:"price_per_dbu"`
	Currency    string             `yaml:"currency"`
}

// Budget caps each participant's cluster run time (off while
// cluster_hours_per_participant is 0). The daily run (reconcile or usage)
// terminates the running cluster of a participant past it and lowers their
// permission to CAN_ATTACH_TO; raising it, or starter budget grant, gives
// CAN_RESTART back at the next run. Past WarnFraction they are listed.
type Budget struct {
	ClusterHoursPerParticipant float64 `yaml:"cluster_hours_per_participant"`
	WarnFraction               float64 `yaml:"warn_fraction"`
}

// Metrics is the worker's Prometheus endpoint.
type Metrics struct {
	// Address is the host:port on which the worker serves /metrics (the
	// worker's --metrics-addr overrides it); empty serves nothing.
	Address string `yaml:"address"`
}

// Default returns the configuration used where the file is silent.
func Default() Config {
	n := roster.DefaultNaming()
	return Config{
		Temporal: Temporal{Address: "127.0.0.1:7233", Namespace: "default", UIAddress: "http://localhost:8233"},
		Databricks: Databricks{
			RetryTimeout:   30 * time.Second,
			HTTPTimeout:    60 * time.Second,
			AssignmentWait: 30 * time.Second,
		},
		Catalog: Catalog{
			Name:             "cohort",
			CreateIfMissing:  true,
			SchemaPrivileges: []string{"USE_SCHEMA", "CREATE_TABLE", "CREATE_VOLUME", "CREATE_FUNCTION", "CREATE_MODEL", "SELECT", "MODIFY", "READ_VOLUME", "WRITE_VOLUME", "EXECUTE"},
		},
		Naming: Naming{Schema: n.SchemaPattern, Cluster: n.ClusterPattern, MaxLen: n.MaxLen},
		Cluster: Cluster{
			PolicyName:             "Personal Compute",
			NodeType:               "Standard_DS3_v2",
			AutoterminationMinutes: 60,
			TagKey:                 "CohortParticipant",
			StopPollInterval:       5 * time.Second,
		},
		Batch: Batch{
			ChunkSize:      250,
			MaxInFlight:    400,
			ParallelChunks: 4,
			ChunksPerRun:   100,
			StepTimeout:    30 * time.Minute,
		},
		RateLimits: RateLimits{
			SCIMWrite:        5,
			SCIMList:         4,
			SCIMGet:          20,
			SCIMPatch:        2,
			PermissionsWrite: 30,
			PermissionsRead:  100,
			Assignments:      10, // no published figures for these three:
			UnityCatalog:     25, // the emulator's estimates, see emulator/doc.go
			Clusters:         30,
			ClusterEvents:    30, // [Est] no published figure: the clusters class's
			Workers:          1,
		},
		RosterDir: "data/rosters",
		Caps:      Caps{AccountUsers: 10000, SchemasPerCatalog: 10000},
		// Azure's list figures (see examples/cohort.yaml for the pages):
		// Standard_DS3_v2 is 0.75 DBU an hour; All-Purpose Compute on the
		// Premium tier is 0.55 USD a DBU.
		Usage:  Usage{DBUPerHour: map[string]float64{"Standard_DS3_v2": 0.75}, PricePerDBU: 0.55, Currency: "USD"},
		Budget: Budget{WarnFraction: 0.8},
	}
}

// Load reads YAML files over the defaults, later files overriding earlier
// ones key by key (so a base config and an emulator's --write-config output
// combine), and validates the result. Unknown keys are errors, so a typo never
// silently falls back to a default.
func Load(paths ...string) (Config, error) {
	c := Default()
	for _, path := range paths {
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file changes nothing
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", strings.Join(paths, ", "), err)
	}
	return c, nil
}

// Paths is a repeatable --config flag.
type Paths []string

func (p *Paths) String() string { return strings.Join(*p, ",") }

// Set adds one file.
func (p *Paths) Set(v string) error {
	*p = append(*p, v)
	return nil
}

// EnvFile names the environment variable that gives the config file when no
// --config flag does, and DefaultFile the file read when neither does (and it
// exists, in the working directory).
const (
	EnvFile     = "COHORT_CONFIG"
	DefaultFile = "cohort.yaml"
)

// Files is the one rule for which config files a command reads: the --config
// flags given, else $COHORT_CONFIG, else ./cohort.yaml if it exists, else
// none (the defaults). The starter and the worker both follow it.
func Files(flags Paths, getenv func(string) string) Paths {
	if len(flags) > 0 {
		return flags
	}
	if f := getenv(EnvFile); f != "" {
		return Paths{f}
	}
	if _, err := os.Stat(DefaultFile); err == nil {
		return Paths{DefaultFile}
	}
	return nil
}

// ApplyEnv lets TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE override the file, as
// the Temporal CLI does, and TEMPORAL_UI_ADDRESS the Web UI links printed.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if v := getenv("TEMPORAL_UI_ADDRESS"); v != "" {
		c.Temporal.UIAddress = v
	}
	if v := getenv("TEMPORAL_ADDRESS"); v != "" {
		c.Temporal.Address = v
	}
	if v := getenv("TEMPORAL_NAMESPACE"); v != "" {
		c.Temporal.Namespace = v
	}
}

// RosterNaming returns the naming rules for the roster package.
func (c Config) RosterNaming() roster.Naming {
	return roster.Naming{SchemaPattern: c.Naming.Schema, ClusterPattern: c.Naming.Cluster, MaxLen: c.Naming.MaxLen}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if err := c.RosterNaming().Validate(); err != nil {
		add("naming: %v", err)
	}
	if c.Catalog.Name == "" {
		add("catalog.name: expected a catalog name")
	}
	for i, g := range c.Catalog.SharedGrants {
		if g.Securable != "catalog" && g.Securable != "schema" {
			add("catalog.shared_grants[%d].securable: expected catalog or schema, got %q", i, g.Securable)
		}
		if g.Name == "" || len(g.Privileges) == 0 {
			add("catalog.shared_grants[%d]: expected a name and at least one privilege", i)
		}
		for _, pr := range g.Privileges {
			up := strings.ToUpper(strings.TrimSpace(pr))
			switch {
			case up == "ALL_PRIVILEGES" || up == "MANAGE":
				add("catalog.shared_grants[%d].privileges (%s %s): %s would let every participant re-grant, and change, what all of them share; list read privileges (%s)",
					i, g.Securable, g.Name, pr, strings.Join(ReadPrivileges, ", "))
			case !slices.Contains(ReadPrivileges, up) && !c.Catalog.AllowWriteSharedGrants:
				add("catalog.shared_grants[%d].privileges (%s %s): %s is not a read privilege: every participant would hold it on the same %s; expected one of %s, or set catalog.allow_write_shared_grants: true to allow it",
					i, g.Securable, g.Name, pr, g.Securable, strings.Join(ReadPrivileges, ", "))
			}
		}
	}
	for _, pr := range c.Catalog.SchemaPrivileges {
		if strings.EqualFold(pr, "MANAGE") || strings.EqualFold(pr, "ALL_PRIVILEGES") {
			add("catalog.schema_privileges: %s would let participants re-grant; list the privileges they need instead", pr)
		}
	}
	if r := c.Catalog.StorageRoot; r != "" && !strings.Contains(r, "://") {
		add("catalog.storage_root: expected a URL such as abfss://container@account.dfs.core.windows.net/path, got %q", r)
	}
	if c.Caps.AccountUsers < 1 || c.Caps.SchemasPerCatalog < 1 {
		add("caps: account_users and schemas_per_catalog must be positive")
	}
	if c.Cluster.PolicyName == "" {
		add("cluster.policy_name: expected a cluster policy name (Personal Compute)")
	}
	if c.Cluster.TagKey == "" {
		add("cluster.tag_key: expected a custom tag key")
	}
	if m := c.Cluster.AutoterminationMinutes; m != 0 && (m < 10 || m > 10000) {
		add("cluster.autotermination_minutes: expected 0 or 10..10000, got %d", m)
	}
	b := c.Batch
	if b.ChunkSize < 1 || b.MaxInFlight < 1 || b.ParallelChunks < 1 || b.ChunksPerRun < 1 {
		add("batch: chunk_size, max_in_flight, parallel_chunks and chunks_per_run must be positive")
	}
	if b.ChunkSize > MaxChunkSize {
		add("batch.chunk_size: expected at most %d (a chunk's participants travel in one Temporal payload), got %d", MaxChunkSize, b.ChunkSize)
	}
	if b.MaxInFlight/max(b.ParallelChunks, 1) >= 2000 {
		add("batch: max_in_flight/parallel_chunks must stay below Temporal's 2,000 pending children per run")
	}
	// Durations: step_timeout has no default to fall back on (0 would leave
	// batch setup unbounded); the others' 0 means their default.
	if b.StepTimeout <= 0 {
		add("batch.step_timeout: expected a positive duration such as 30m, got %s", b.StepTimeout)
	}
	for name, d := range map[string]time.Duration{
		"batch.participant_timeout":  b.ParticipantTimeout,
		"databricks.retry_timeout":   c.Databricks.RetryTimeout,
		"databricks.http_timeout":    c.Databricks.HTTPTimeout,
		"databricks.assignment_wait": c.Databricks.AssignmentWait,
		"cluster.stop_poll_interval": c.Cluster.StopPollInterval,
	} {
		if d < 0 {
			add("%s: expected a positive duration (or 0 for the default), got %s", name, d)
		}
	}
	r := c.RateLimits
	for name, v := range map[string]float64{"scim_write": r.SCIMWrite, "scim_list": r.SCIMList, "scim_get": r.SCIMGet, "scim_patch": r.SCIMPatch,
		"permissions_write": r.PermissionsWrite, "permissions_read": r.PermissionsRead, "assignments": r.Assignments,
		"unity_catalog": r.UnityCatalog, "clusters": r.Clusters, "cluster_events": r.ClusterEvents} {
		if !(v > 0) || math.IsInf(v, 0) { // NaN fails v > 0
			add("rate_limits.%s: expected a positive, finite rate in requests per second, got %v", name, v)
		}
	}
	if r.Workers < 1 {
		add("rate_limits.workers: expected at least 1")
	}
	for node, v := range c.Usage.DBUPerHour {
		if !(v >= 0) || math.IsInf(v, 0) {
			add("usage.dbu_per_hour.%s: expected a DBU rate of 0 or more per hour, got %v", node, v)
		}
	}
	if v := c.Usage.PricePerDBU; !(v >= 0) || math.IsInf(v, 0) {
		add("usage.price_per_dbu: expected a price of 0 or more (0: hours and DBUs only), got %v", v)
	}
	if v := c.Budget.ClusterHoursPerParticipant; !(v >= 0) || math.IsInf(v, 0) {
		add("budget.cluster_hours_per_participant: expected hours (0: no budget), got %v", v)
	}
	if v := c.Budget.WarnFraction; !(v > 0 && v < 1) {
		add("budget.warn_fraction: expected a fraction between 0 and 1 (0.8 lists participants at 80%% of the budget), got %v", v)
	}
	if a := c.Metrics.Address; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			add("metrics.address: expected host:port (\":9464\" for every interface), got %q", a)
		}
	}
	if len(p) == 0 {
		return nil
	}
	slices.Sort(p)
	return errors.New(strings.Join(p, "; "))
}

// Rates are the usage section as usage.Rates.
func (u Usage) Rates() usage.Rates {
	return usage.Rates{DBUPerHour: u.DBUPerHour, PricePerDBU: u.PricePerDBU, Currency: u.Currency}
}

// Of is the budget section as usage.Budget.
func (b Budget) Of() usage.Budget {
	return usage.Budget{HoursPerParticipant: b.ClusterHoursPerParticipant, WarnFraction: b.WarnFraction}
}

// LedgerDir is where the usage ledger is kept: beside the stored rosters,
// which the starter and the worker both see.
func (c Config) LedgerDir() string { return filepath.Join(c.RosterDir, "ledger") }
