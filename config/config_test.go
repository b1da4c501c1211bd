package config

import (
	"os"
	"path/filepath"
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
		{"no rate", "rate_limits: {scim_write: 0}\n", "rate_limits.scim_write: expected a positive rate"},
		{"metrics address without port", "metrics: {address: localhost}\n", `metrics.address: expected host:port (":9464" for every interface), got "localhost"`},
		{"naming without hash", "naming: {schema: \"{local}\"}\n", "naming:"},
		{"chunk over the payload bound", "batch: {chunk_size: 251}\n", "batch.chunk_size: expected at most 250 (a chunk's participants travel in one Temporal payload), got 251"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
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
