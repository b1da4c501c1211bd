// starter report: every participant's outcome, as a table, CSV or JSON.

package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"strconv"
	"strings"

	"github.com/gocarina/gocsv"

	"github.com/cohort-dev/cohort/csvout"
	"github.com/cohort-dev/cohort/workflows"
)

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
