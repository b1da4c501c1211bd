// Package usagehtml writes the usage report an organizer sends the sponsor
// after an event: one HTML file that opens offline, in any browser, years
// later, with nothing to fetch. So the page has no scripts, no external
// fonts, style sheets or images: the CSS is inline and the charts are inline
// SVG drawn by gonum.org/v1/plot.
//
// Everything a participant controls (an e-mail address, a display name that
// may well be "<script>" or 山田太郎) reaches the page only through
// html/template, which escapes it for the context it lands in. The charts
// carry numbers and dates only, never a participant's data, and the one
// piece of markup inserted unescaped is the plotting library's SVG.
package usagehtml

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// The participant states a Row's State holds, as `starter usage` names them.
const (
	StateNeverStarted = "never started"
	StateActive       = "active"
	StateOverBudget   = "over budget"
)

// TopN is how many participants the "top users" table lists.
const TopN = 10

// Row is one participant's usage.
type Row struct {
	Email, DisplayName, ClusterID string
	// Hours is the cluster's running time over the event.
	Hours float64
	// Starts counts the cluster's starts.
	Starts int
	// LastRun is when the cluster last ran; zero if it never did.
	LastRun time.Time
	// DBU and Cost are estimates; Cost is meaningful only when HasCost
	// (no published price for the node type leaves it out).
	DBU, Cost float64
	HasCost   bool
	// BudgetLeft is the cluster hours left of the budget (negative once
	// past it), meaningful only when HasBudget.
	BudgetLeft float64
	HasBudget  bool
	// State is one of StateNeverStarted, StateActive, StateOverBudget.
	State string
}

// Day is the event's usage on one day.
type Day struct {
	// Date is the day (its year, month and day in its own location).
	Date time.Time
	// Active counts the participants whose cluster ran that day.
	Active int
	// DBUHours is the estimated DBUs consumed that day.
	DBUHours float64
}

// Report is what the page shows. Rows appear in the full table in the order
// given; Days are charted in the order given, so the caller bounds them.
type Report struct {
	Title, BatchID string
	// Currency names the unit of Cost ("USD"), shown in the cost headings.
	Currency  string
	Generated time.Time
	Rows      []Row
	Days      []Day
}

//go:embed report.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"inc": func(i int) int { return i + 1 },
}).Parse(pageSource))

// Write renders r as one self-contained HTML page.
func Write(w io.Writer, r Report) error {
	v, err := newView(r)
	if err != nil {
		return err
	}
	// Render whole before writing, so a failure leaves w untouched rather
	// than holding half a page.
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		return fmt.Errorf("render the usage report: %w", err)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("write the usage report: %w", err)
	}
	return nil
}

// Totals are the figures at the top of the page.
type Totals struct {
	Participants, Started, NeverStarted, OverBudget int
	Hours, DBU                                      float64
	// Cost sums the rows that have one; Costed counts them.
	Cost   float64
	Costed int
	// Budgeted counts the rows with a budget.
	Budgeted int
}

// Summarize adds up rows. A participant counts as started unless their
// State says they never started, so the totals agree with the list of
// those to remind.
func Summarize(rows []Row) Totals {
	var t Totals
	t.Participants = len(rows)
	for _, r := range rows {
		switch r.State {
		case StateNeverStarted:
			t.NeverStarted++
		case StateOverBudget:
			t.OverBudget++
		}
		t.Hours += r.Hours
		t.DBU += r.DBU
		if r.HasCost {
			t.Cost += r.Cost
			t.Costed++
		}
		if r.HasBudget {
			t.Budgeted++
		}
	}
	t.Started = t.Participants - t.NeverStarted
	return t
}

// TopUsers returns at most n rows that ran, most hours first (ties: more
// DBU, then e-mail), leaving rows untouched.
func TopUsers(rows []Row, n int) []Row {
	var ran []Row
	for _, r := range rows {
		if r.Hours > 0 {
			ran = append(ran, r)
		}
	}
	slices.SortStableFunc(ran, func(a, b Row) int {
		switch {
		case a.Hours != b.Hours:
			return cmpDesc(a.Hours, b.Hours)
		case a.DBU != b.DBU:
			return cmpDesc(a.DBU, b.DBU)
		default:
			return strings.Compare(a.Email, b.Email)
		}
	})
	return ran[:min(n, len(ran))]
}

func cmpDesc(a, b float64) int {
	if a > b {
		return -1
	}
	return 1
}

// NeverStarted returns the rows whose State is StateNeverStarted, in order.
func NeverStarted(rows []Row) []Row {
	var out []Row
	for _, r := range rows {
		if r.State == StateNeverStarted {
			out = append(out, r)
		}
	}
	return out
}

// view is what the template reads: every figure already formatted, so the
// template only places strings (which it escapes) and the charts.
type view struct {
	Title, BatchID, Generated string
	Cards                     []card
	HasCost, HasBudget        bool
	// CostNote says how many rows the cost covers when not all.
	CostNote string
	// CostHeading heads the tables' cost column, with the currency.
	CostHeading  string
	DailyCharts  []chart
	HoursChart   *chart
	HoursNote    string
	Top          []viewRow
	NeverStarted []viewRow
	Rows         []viewRow
	DaysNote     string
}

type card struct{ Label, Value, Note string }

type chart struct {
	Name, Caption string
	SVG           template.HTML
}

type viewRow struct {
	Email, DisplayName, ClusterID, Hours, Starts, LastRun, DBU, Cost, BudgetLeft, State string
	StateClass                                                                          string
	Over                                                                                bool
}

func newView(r Report) (view, error) {
	t := Summarize(r.Rows)
	v := view{
		Title:     r.Title,
		BatchID:   r.BatchID,
		Generated: formatTime(r.Generated),
		HasCost:   t.Costed > 0,
		HasBudget: t.Budgeted > 0,
	}
	if v.Title == "" {
		v.Title = "Cohort usage report"
	}
	v.Cards = cards(t, r.Currency)
	v.CostHeading = "Cost"
	if r.Currency != "" {
		v.CostHeading += ", " + r.Currency
	}
	if v.HasCost && t.Costed < t.Participants {
		v.CostNote = fmt.Sprintf("Cost covers %d of %d participants: the others' node types have no price in the configuration.", t.Costed, t.Participants)
	}
	for _, row := range TopUsers(r.Rows, TopN) {
		v.Top = append(v.Top, newViewRow(row))
	}
	for _, row := range NeverStarted(r.Rows) {
		v.NeverStarted = append(v.NeverStarted, newViewRow(row))
	}
	for _, row := range r.Rows {
		v.Rows = append(v.Rows, newViewRow(row))
	}
	var err error
	if v.DailyCharts, err = dailyCharts(r.Days); err != nil {
		return view{}, err
	}
	if len(r.Days) == 0 {
		v.DaysNote = "No daily figures in this report."
	}
	hours := startedHours(r.Rows)
	if len(hours) == 0 {
		v.HoursNote = "Nobody has started a cluster yet."
	} else {
		c, err := hoursChart(hours)
		if err != nil {
			return view{}, err
		}
		v.HoursChart = &c
	}
	return v, nil
}

func cards(t Totals, currency string) []card {
	cs := []card{
		{Label: "Participants", Value: count(t.Participants)},
		{Label: "Started", Value: count(t.Started), Note: percent(t.Started, t.Participants)},
		{Label: "Never started", Value: count(t.NeverStarted), Note: percent(t.NeverStarted, t.Participants)},
		{Label: "Cluster hours", Value: decimal(t.Hours, 1), Note: perStarted(t.Hours, t.Started)},
		{Label: "DBU (estimate)", Value: decimal(t.DBU, 1)},
	}
	if t.Costed > 0 {
		label := "Cost (estimate)"
		if currency != "" {
			label = "Cost (estimate, " + currency + ")"
		}
		cs = append(cs, card{Label: label, Value: decimal(t.Cost, 2)})
	}
	if t.Budgeted > 0 {
		cs = append(cs, card{Label: "Over budget", Value: count(t.OverBudget), Note: percent(t.OverBudget, t.Participants)})
	}
	return cs
}

func newViewRow(r Row) viewRow {
	v := viewRow{
		Email:       r.Email,
		DisplayName: r.DisplayName,
		ClusterID:   r.ClusterID,
		Hours:       decimal(r.Hours, 1),
		Starts:      count(r.Starts),
		LastRun:     formatTime(r.LastRun),
		DBU:         decimal(r.DBU, 1),
		Cost:        "—",
		BudgetLeft:  "—",
		State:       r.State,
		Over:        r.State == StateOverBudget,
	}
	if r.LastRun.IsZero() {
		v.LastRun = "never"
	}
	if r.HasCost {
		v.Cost = decimal(r.Cost, 2)
	}
	if r.HasBudget {
		v.BudgetLeft = decimal(r.BudgetLeft, 1) + " h"
	}
	switch r.State {
	case StateNeverStarted:
		v.StateClass = "never"
	case StateOverBudget:
		v.StateClass = "over"
	default:
		v.StateClass = "active"
	}
	return v
}

func startedHours(rows []Row) []float64 {
	var hs []float64
	for _, r := range rows {
		if r.State != StateNeverStarted && r.Hours > 0 {
			hs = append(hs, r.Hours)
		}
	}
	return hs
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02 15:04 MST")
}

func count(n int) string { return group(fmt.Sprint(n)) }

// decimal formats x with prec decimals and thousands separators.
func decimal(x float64, prec int) string {
	s := fmt.Sprintf("%.*f", prec, x)
	if s == "-"+fmt.Sprintf("%.*f", prec, 0.0) {
		s = s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if frac != "" {
		frac = "." + frac
	}
	return group(intPart) + frac
}

// group puts a comma between each three digits of an integer's text.
func group(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

func percent(n, of int) string {
	if of == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%%", math.Round(100*float64(n)/float64(of)))
}

func perStarted(hours float64, started int) string {
	if started == 0 {
		return ""
	}
	return decimal(hours/float64(started), 1) + " h each, on average"
}
