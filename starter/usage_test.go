package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/usage"
	"github.com/cohort-dev/cohort/usagehtml"
)

var (
	day0  = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	rates = usage.Rates{DBUPerHour: map[string]float64{"Standard_DS3_v2": 0.75}, PricePerDBU: 0.55, Currency: "USD"}
)

// ledgerOf: a participant who never started, one who ran 2 h on day 0 and
// runs since an hour before now (day 1), one past a 10 h budget on an
// unpriced node type.
func ledgerOf() ([]roster.Participant, map[string]usage.Entry, time.Time) {
	ps := []roster.Participant{{Email: "Never@x.org", DisplayName: "=HYPERLINK(\"http://evil\")"}, {Email: "daily@x.org", DisplayName: "D"}, {Email: "big@x.org", DisplayName: "B"}}
	now := day0.Add(25 * time.Hour)
	h := time.Hour.Milliseconds()
	daily := usage.Entry{Email: "daily@x.org", Clusters: []usage.Cluster{{ID: "c2", NodeType: "Standard_DS3_v2", ClosedMS: 2 * h, Starts: 2,
		LastRun: day0.Add(2 * time.Hour).UnixMilli(), RunningSince: now.Add(-time.Hour).UnixMilli(), Ends: map[string]int{"INACTIVITY": 1}}},
		Daily: map[string]int64{"2026-01-15": 2 * h}}
	big := usage.Entry{Email: "big@x.org", Clusters: []usage.Cluster{{ID: "c3", NodeType: "Standard_NC6", ClosedMS: 12 * h, Starts: 3, LastRun: day0.UnixMilli()}},
		Daily: map[string]int64{"2026-01-15": 12 * h}, Restricted: true}
	never := usage.Entry{Email: "never@x.org", Clusters: []usage.Cluster{{ID: "c1", NodeType: "Standard_DS3_v2"}}}
	return ps, map[string]usage.Entry{"never@x.org": never, "daily@x.org": daily, "big@x.org": big}, now
}

func TestBuildUsage(t *testing.T) {
	ps, entries, now := ledgerOf()
	r := buildUsage(ps, entries, rates, usage.Budget{HoursPerParticipant: 10, WarnFraction: 0.8}, now)
	if len(r.Rows) != 3 {
		t.Fatalf("%d rows, want 3", len(r.Rows))
	}
	never, daily, big := r.Rows[0], r.Rows[1], r.Rows[2]
	if never.State != usage.StateNeverStarted || never.Email != "never@x.org" || never.ClusterID != "c1" || never.Hours != 0 {
		t.Errorf("never-started row = %+v", never)
	}
	if daily.State != usage.StateActive || daily.Hours != 3 || daily.Starts != 2 || daily.DBU != "2.25" || daily.Cost != "1.24" || daily.BudgetLeft != "7" {
		t.Errorf("daily row = %+v, want 3 h (the ongoing hour included), 2.25 DBU, 1.24 cost, 7 h left", daily)
	}
	if big.State != usage.StateOverBudget || big.DBU != "" || big.Cost != "" || big.BudgetLeft != "0" {
		t.Errorf("over-budget row = %+v, want over budget, hours only (no rate for Standard_NC6), 0 left", big)
	}
	tot := r.Totals
	if tot.Hours != 15 || tot.NeverStarted != 1 || tot.OverBudget != 1 || tot.Estimated || len(tot.Remind) != 1 || tot.Remind[0] != "never@x.org" {
		t.Errorf("totals = %+v, want 15 h, one never started to remind, one over, not fully estimated", tot)
	}
	if len(r.Days) != 2 || r.Days[0].Active != 2 || r.Days[1].Active != 1 || r.Days[1].DBUHours != 0.75 {
		t.Errorf("days = %+v, want 2 active on day 0, 1 on day 1 with 0.75 DBU-hours", r.Days)
	}
	h := htmlReport(r, "t", "b", now)
	if len(h.Rows) != 3 || h.Rows[2].BudgetLeft != -2 || !h.Rows[2].HasBudget || h.Rows[2].HasCost || !h.Rows[1].HasCost ||
		h.Rows[1].State != usagehtml.StateActive || len(h.Days) != 2 || h.Currency != "USD" {
		t.Errorf("html report = %+v, want the rows with a negative budget left past it, hours-only costs flagged", h)
	}
}

// The CSV neutralises a display name a spreadsheet would evaluate; the
// table cuts long cells and names whom to remind.
func TestWriteUsage_formats(t *testing.T) {
	ps, entries, now := ledgerOf()
	ps[1].DisplayName = strings.Repeat("x", 300)
	r := buildUsage(ps, entries, rates, usage.Budget{}, now)
	var b bytes.Buffer
	if err := writeUsage(&b, "csv", r, "t", "b", now); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs[0][0] != "email" || recs[1][1] != "'=HYPERLINK(\"http://evil\")" {
		t.Errorf("csv = %q, want a header and the formula neutralised", recs)
	}
	b.Reset()
	if err := writeUsage(&b, "table", r, "t", "b", now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, strings.Repeat("x", 41)) || !strings.Contains(out, "never started their cluster (remind them): never@x.org") {
		t.Errorf("table =\n%s\nwant cells cut and the never-started named", out)
	}
	b.Reset()
	if err := writeUsage(&b, "html", r, "t", "b", now); err != nil || !strings.Contains(b.String(), "never@x.org") {
		t.Errorf("html: %v, want a page naming the participants", err)
	}
}

// budget grant stores the hours in the ledger (0600); bad input changes
// nothing and exits 2.
func TestBudgetGrant(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cohort.yaml")
	if err := os.WriteFile(cfg, []byte("roster_dir: "+dir+"/rosters\nbudget: {cluster_hours_per_participant: 10}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"grant", "a@x.org", "-2"}, {"grant", "a@x.org", "lots"}, {"grant", "not-an-address", "+2"}, {"give", "a@x.org", "+2"}, {"grant", "a@x.org", "+1e9"}} {
		_, err := run(t, append(append([]string{"budget"}, bad...), "--config", cfg)...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("budget %q: %v, want a usage error", bad, err)
		}
	}
	out, err := run(t, "budget", "grant", "A@x.org", "+2.5", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "granted a@x.org 2.5 more cluster hours") || !strings.Contains(out, "of 12.5 hours") {
		t.Errorf("output = %q, want the grant and the new limit", out)
	}
	e, err := usage.Store{Dir: dir + "/rosters/ledger"}.Load("a@x.org")
	if err != nil || e.GrantedHours != 2.5 {
		t.Errorf("ledger = %+v, %v; want 2.5 granted hours", e, err)
	}
}

// starter usage refuses a bad format before it connects anywhere.
func TestUsage_badFormat(t *testing.T) {
	_, err := run(t, "usage", "--format", "pdf", "some-batch")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "table, csv, json, html") {
		t.Errorf("err = %v, want a usage error naming the formats", err)
	}
}

// --out writes the whole output to a file only the owner reads, and
// refuses what is not a regular file.
func TestWriteOut(t *testing.T) {
	var errb bytes.Buffer
	m := &Main{Stdout: &bytes.Buffer{}, Stderr: &errb}
	path := filepath.Join(t.TempDir(), "usage.html")
	if err := m.writeOut(path, func(w io.Writer) error { _, err := io.WriteString(w, "<html>"); return err }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 6 {
		t.Errorf("--out file: %v, %v; want 6 bytes, mode 0600", fi, err)
	}
	if err := m.writeOut(filepath.Dir(path), func(io.Writer) error { return nil }); err == nil {
		t.Error("--out a directory: no error")
	}
	failed := filepath.Join(filepath.Dir(path), "half.html")
	if err := m.writeOut(failed, func(w io.Writer) error { return errors.New("render failed") }); err == nil {
		t.Error("a failed render: no error")
	}
	if _, err := os.Stat(failed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed render left %s: %v", failed, err)
	}
}
