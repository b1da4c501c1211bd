package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoad_layersFilesKeyByKey(t *testing.T) {
	base := write(t, "catalog: {name: event}\ncluster: {node_type: smallest, stop_poll_interval: 2s}\n")
	over := write(t, "databricks: {account_host: http://127.0.0.1:1, workspace_id: 7}\ncluster: {stop_poll_interval: 200ms}\n")
	c, err := Load(base, over)
	if err != nil {
		t.Fatal(err)
	}
	if c.Catalog.Name != "event" || c.Cluster.NodeType != "smallest" || c.Cluster.StopPollInterval != 200*time.Millisecond ||
		c.Databricks.WorkspaceID != 7 || c.Databricks.RetryTimeout != 30*time.Second {
		t.Fatalf("got %+v", c)
	}
}

func TestLoad_metricsAddress(t *testing.T) {
	c, err := Load(write(t, "metrics: {address: \":9464\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Address != ":9464" {
		t.Errorf("metrics.address = %q, want %q", c.Metrics.Address, ":9464")
	}
	if Default().Metrics.Address != "" {
		t.Errorf("default metrics.address = %q, want none (off)", Default().Metrics.Address)
	}
}

func TestLoad_examplesFileIsValid(t *testing.T) {
	if _, err := Load("../examples/cohort.yaml"); err != nil {
		t.Fatal(err)
	}
}

func TestLoad_errors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"unknown key", "catalog: {nmae: x}\n", "field nmae not found"},
		{"bad duration", "cluster: {stop_poll_interval: soon}\n", "soon"},
		{"autotermination out of range", "cluster: {autotermination_minutes: 5}\n", "cluster.autotermination_minutes: expected 0 or 10..10000, got 5"},
		{"window over the pending-children limit", "batch: {max_in_flight: 5000, parallel_chunks: 2}\n", "2,000 pending children"},
		{"privilege that lets participants re-grant", "catalog: {schema_privileges: [ALL_PRIVILEGES]}\n", "ALL_PRIVILEGES would let participants re-grant"},
		{"bad shared grant", "catalog: {shared_grants: [{securable: table, name: a.b.c, privileges: [SELECT]}]}\n", "expected catalog or schema"},
		{"no rate", "rate_limits: {scim_write: 0}\n", "rate_limits.scim_write: expected a positive, finite rate"},
		{"metrics address without port", "metrics: {address: localhost}\n", `metrics.address: expected host:port (":9464" for every interface), got "localhost"`},
		{"naming without hash", "naming: {schema: \"{local}\"}\n", "naming:"},
		{"chunk over the payload bound", "batch: {chunk_size: 251}\n", "batch.chunk_size: expected at most 250 (a chunk's participants travel in one Temporal payload), got 251"},

		// Config that cannot be dangerous by accident (issue 17, defect 8).
		{"shared ALL_PRIVILEGES", "catalog: {shared_grants: [{securable: schema, name: main.src, privileges: [USE_SCHEMA, ALL_PRIVILEGES]}]}\n",
			"catalog.shared_grants[0].privileges (schema main.src): ALL_PRIVILEGES would let every participant re-grant"},
		{"shared MANAGE even with the opt-in", "catalog: {allow_write_shared_grants: true, shared_grants: [{securable: catalog, name: main, privileges: [manage]}]}\n",
			"catalog.shared_grants[0].privileges (catalog main): manage would let every participant re-grant"},
		{"shared MODIFY without the opt-in", "catalog: {shared_grants: [{securable: schema, name: main.src, privileges: [SELECT, MODIFY]}]}\n",
			"MODIFY is not a read privilege: every participant would hold it on the same schema; expected one of USE_CATALOG, USE_SCHEMA, SELECT, READ_VOLUME, EXECUTE, BROWSE, or set catalog.allow_write_shared_grants: true"},
		{"shared CREATE_TABLE without the opt-in", "catalog: {shared_grants: [{securable: catalog, name: main, privileges: [USE_CATALOG]}, {securable: schema, name: main.src, privileges: [CREATE_TABLE]}]}\n",
			"catalog.shared_grants[1].privileges (schema main.src): CREATE_TABLE is not a read privilege"},
		{"negative step timeout", "batch: {step_timeout: -1s}\n", "batch.step_timeout: expected a positive duration such as 30m, got -1s"},
		{"zero step timeout", "batch: {step_timeout: 0s}\n", "batch.step_timeout: expected a positive duration such as 30m, got 0s"},
		{"negative participant timeout", "batch: {participant_timeout: -5m}\n", "batch.participant_timeout: expected a positive duration (or 0 for the default), got -5m0s"},
		{"negative retry timeout", "databricks: {retry_timeout: -1s}\n", "databricks.retry_timeout: expected a positive duration"},
		{"negative http timeout", "databricks: {http_timeout: -1s}\n", "databricks.http_timeout: expected a positive duration"},
		{"negative assignment wait", "databricks: {assignment_wait: -30s}\n", "databricks.assignment_wait: expected a positive duration"},
		{"negative stop poll interval", "cluster: {stop_poll_interval: -200ms}\n", "cluster.stop_poll_interval: expected a positive duration"},
		{"NaN rate", "rate_limits: {scim_write: .nan}\n", "rate_limits.scim_write: expected a positive, finite rate in requests per second, got NaN"},
		{"infinite rate", "rate_limits: {clusters: .inf}\n", "rate_limits.clusters: expected a positive, finite rate in requests per second, got +Inf"},
		{"negative infinite rate", "rate_limits: {unity_catalog: -.inf}\n", "rate_limits.unity_catalog: expected a positive, finite rate"},
		{"negative rate", "rate_limits: {assignments: -3}\n", "rate_limits.assignments: expected a positive, finite rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t, tt.body)
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error = %v, want it to start with the file %s", err, path)
			}
		})
	}
}

// What the safety rules still let through: read privileges in any case, a
// write privilege with the opt-in, 0 for the durations that have a default.
func TestLoad_safeValuesAccepted(t *testing.T) {
	tests := []struct{ name, body string }{
		{"read privileges", "catalog: {shared_grants: [{securable: catalog, name: main, privileges: [USE_CATALOG, browse]}, {securable: schema, name: main.src, privileges: [USE_SCHEMA, SELECT, READ_VOLUME, EXECUTE]}]}\n"},
		{"write privilege with the opt-in", "catalog: {allow_write_shared_grants: true, shared_grants: [{securable: schema, name: main.scratch, privileges: [USE_SCHEMA, MODIFY, CREATE_TABLE]}]}\n"},
		{"defaults by zero", "databricks: {retry_timeout: 0s, http_timeout: 0s, assignment_wait: 0s}\ncluster: {stop_poll_interval: 0s}\nbatch: {participant_timeout: 0s}\n"},
		{"participant timeout", "batch: {participant_timeout: 2h}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Load(write(t, tt.body)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The default participant timeout leaves room for every step of the
// longest run to take its whole step timeout.
func TestBatch_participantTimeout(t *testing.T) {
	b := Default().Batch
	if got, want := b.ParticipantTimeoutOrDefault(), 10*b.StepTimeout; got != want {
		t.Errorf("default participant timeout = %s, want %s (10 step timeouts)", got, want)
	}
	b.ParticipantTimeout = 90 * time.Second
	if got := b.ParticipantTimeoutOrDefault(); got != 90*time.Second {
		t.Errorf("participant timeout = %s, want the configured 1m30s", got)
	}
}

func TestApplyEnv(t *testing.T) {
	c := Default()
	env := map[string]string{"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_NAMESPACE": "events", "TEMPORAL_UI_ADDRESS": "http://ui:8080"}
	c.ApplyEnv(func(k string) string { return env[k] })
	if c.Temporal.Address != "temporal:7233" || c.Temporal.Namespace != "events" || c.Temporal.UIAddress != "http://ui:8080" {
		t.Fatalf("got %+v", c.Temporal)
	}
}

// TestFiles pins the one precedence the starter and the worker share: flags,
// else $COHORT_CONFIG, else ./cohort.yaml when it exists, else none.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvFile {
				return v
			}
			return ""
		}
	}
	check := func(name string, got, want Paths) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: Files = %q, want %q", name, got, want)
		}
	}
	check("nothing", Files(nil, env("")), nil)
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("default file present", Files(nil, env("")), Paths{DefaultFile})
	check("env over default file", Files(nil, env("env.yaml")), Paths{"env.yaml"})
	check("flags over env", Files(Paths{"a.yaml", "b.yaml"}, env("env.yaml")), Paths{"a.yaml", "b.yaml"})
}
