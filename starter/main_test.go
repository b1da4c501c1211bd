package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
