package main

// starter usage and starter budget grant (issue 19): what the event used,
// per participant, from the ledger the usage reads keep (usage.Store), and
// extra hours for a participant past the budget.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/gocarina/gocsv"

	"github.com/cohort-dev/cohort/control"
	"github.com/cohort-dev/cohort/csvout"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/usage"
	"github.com/cohort-dev/cohort/usagehtml"
	"github.com/cohort-dev/cohort/wire"
	"github.com/cohort-dev/cohort/workflows"
)

// usageFormats are the outputs of starter usage.
var usageFormats = []string{"table", "csv", "json", "html"}

// maxRemind bounds the never-started addresses the table lists by name.
const maxRemind = 50

// maxCell bounds a table cell (a display name may be 256 characters).
const maxCell = 40

// usageRow is one participant in starter usage's output.
type usageRow struct {
	Email       string  `csv:"email" json:"email"`
	DisplayName string  `csv:"display_name" json:"display_name"`
	ClusterID   string  `csv:"cluster_id" json:"cluster_id"`
	Hours       float64 `csv:"hours" json:"hours"`
	Starts      int     `csv:"starts" json:"starts"`
	LastRun     string  `csv:"last_run" json:"last_run,omitempty"`
	DBU         string  `csv:"dbu" json:"dbu,omitempty"`
	Cost        string  `csv:"cost" json:"cost,omitempty"`
	BudgetLeft  string  `csv:"budget_left" json:"budget_left,omitempty"`
	State       string  `csv:"state" json:"state"`
	Ends        string  `csv:"ended_by" json:"ended_by,omitempty"`
	// SetupHours is the run time of their clusters' creation runs
	// (Cohort's provisioning), in none of the figures above.
	SetupHours float64   `csv:"-" json:"setup_hours,omitempty"`
	lastRun    time.Time `csv:"-"`
	dbu, cost  float64
	hasDBU     bool
	hasCost    bool
	left       float64 // limit - hours: negative past the budget
	hasBudget  bool
}

// usageDay is one day of the event.
type usageDay struct {
	Date     time.Time
	Active   int
	DBUHours float64
}

// usageTotals sum the rows.
type usageTotals struct {
	Participants int     `json:"participants"`
	Hours        float64 `json:"hours"`
	DBU          float64 `json:"dbu,omitempty"`
	Cost         float64 `json:"cost,omitempty"`
	Currency     string  `json:"currency,omitempty"`
	// SetupHours is the run time of the clusters' creation runs: Cohort's
	// provisioning (billed, but nobody's use), in no participant's hours.
	SetupHours float64 `json:"setup_hours"`
	// Estimated says DBU and Cost cover every participant's hours; false
	// when a node type has no rate (those hours are not priced).
	Estimated    bool     `json:"estimated"`
	NeverStarted int      `json:"never_started"`
	OverBudget   int      `json:"over_budget"`
	NearBudget   int      `json:"near_budget"`
	Remind       []string `json:"remind"` // the never-started, to remind
}

// usageReport is starter usage's whole output.
type usageReport struct {
	Rows   []usageRow
	Days   []usageDay
	Totals usageTotals
}

// buildUsage is the report of ps from their ledger entries (by lower-case
// address) at now: one row each, in roster order, the days of the event,
// and the totals. It is the one place the figures are computed, whatever
// the format.
func buildUsage(ps []roster.Participant, entries map[string]usage.Entry, rates usage.Rates, budget usage.Budget, now time.Time) usageReport {
	r := usageReport{Totals: usageTotals{Currency: rates.Currency, Estimated: true}}
	days := map[string]*usageDay{}
	for _, p := range ps {
		e := entries[strings.ToLower(strings.TrimSpace(p.Email))]
		row := usageRowOf(p, e, rates, budget, now)
		r.Rows = append(r.Rows, row)
		t := &r.Totals
		t.Participants++
		t.Hours += row.Hours
		t.SetupHours += row.SetupHours
		t.DBU += row.dbu
		t.Cost += row.cost
		if row.Hours > 0 && (!row.hasDBU || (rates.PricePerDBU > 0 && !row.hasCost)) {
			t.Estimated = false
		}
		switch row.State {
		case usage.StateNeverStarted:
			t.NeverStarted++
			t.Remind = append(t.Remind, row.Email)
		case usage.StateOverBudget:
			t.OverBudget++
		case usage.StateNearBudget:
			t.NearBudget++
		}
		rate, _ := dbuRate(rates, latestNodeType(e))
		for day, ms := range dailyOf(e, now) {
			d := days[day]
			if d == nil {
				at, _ := time.Parse(time.DateOnly, day)
				d = &usageDay{Date: at}
				days[day] = d
			}
			if ms > 0 {
				d.Active++
			}
			d.DBUHours += float64(ms) / float64(time.Hour.Milliseconds()) * rate
		}
	}
	for _, d := range days {
		r.Days = append(r.Days, *d)
	}
	slices.SortFunc(r.Days, func(a, b usageDay) int { return a.Date.Compare(b.Date) })
	if n := len(r.Days); n > usage.MaxDays {
		r.Days = r.Days[n-usage.MaxDays:]
	}
	return r
}

// usageRowOf is one participant's row.
func usageRowOf(p roster.Participant, e usage.Entry, rates usage.Rates, budget usage.Budget, now time.Time) usageRow {
	t := e.Totals(now)
	v := budget.Judge(t.Hours(), e.GrantedHours)
	row := usageRow{Email: strings.ToLower(strings.TrimSpace(p.Email)), DisplayName: p.DisplayName, Hours: round6(t.Hours()),
		Starts: t.Starts, State: usage.State(t, v), lastRun: t.LastRun, hasBudget: budget.On()}
	if !t.LastRun.IsZero() {
		row.LastRun = t.LastRun.Format(time.RFC3339)
	}
	for i := len(e.Clusters) - 1; i >= 0 && row.ClusterID == ""; i-- {
		if !e.Clusters[i].Gone {
			row.ClusterID = e.Clusters[i].ID
		}
	}
	row.dbu, row.hasDBU = 0, true
	for _, c := range append([]usage.Cluster{e.Folded}, e.Clusters...) {
		ms := c.RunningMS(now.UnixMilli())
		if ms == 0 {
			continue
		}
		est := rates.Estimate(cmp.Or(c.NodeType, latestNodeType(e)), float64(ms)/float64(time.Hour.Milliseconds()))
		row.dbu += est.DBU
		row.cost += est.Cost
		row.hasDBU = row.hasDBU && est.HasDBU
		row.hasCost = rates.PricePerDBU > 0 && row.hasDBU
	}
	if t.Hours() == 0 {
		row.hasCost = rates.PricePerDBU > 0
	}
	if row.hasDBU {
		row.DBU = strconv.FormatFloat(round3(row.dbu), 'f', -1, 64)
	}
	if row.hasCost {
		row.Cost = strconv.FormatFloat(math.Round(row.cost*100)/100, 'f', 2, 64)
	}
	if budget.On() {
		row.left = v.Limit - t.Hours()
		row.BudgetLeft = strconv.FormatFloat(round3(v.Left), 'f', -1, 64)
	}
	var ends []string
	for _, k := range slices.Sorted(maps.Keys(t.Ends)) {
		ends = append(ends, fmt.Sprintf("%s %d", k, t.Ends[k]))
	}
	row.Ends = strings.Join(ends, ", ")
	row.SetupHours = round6(float64(t.SetupMS) / float64(time.Hour.Milliseconds()))
	return row
}

// dailyOf is an entry's run time per day, an ongoing run's part included.
func dailyOf(e usage.Entry, now time.Time) map[string]int64 {
	d := usage.Entry{Daily: map[string]int64{}}
	for k, v := range e.Daily {
		d.Daily[k] = v
	}
	for _, c := range e.Clusters {
		if c.RunningSince > 0 && now.UnixMilli() > c.RunningSince {
			d.AddDay(c.RunningSince, now.UnixMilli())
		}
	}
	return d.Daily
}

// latestNodeType is the node type of the entry's latest cluster that has one.
func latestNodeType(e usage.Entry) string {
	for i := len(e.Clusters) - 1; i >= 0; i-- {
		if e.Clusters[i].NodeType != "" {
			return e.Clusters[i].NodeType
		}
	}
	return ""
}

func dbuRate(r usage.Rates, node string) (float64, bool) {
	est := r.Estimate(node, 1)
	return est.DBU, est.HasDBU
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// round6 keeps hours to 3.6 ms: enough for any comparison, short to read.
func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// htmlReport is the report as usagehtml draws it.
func htmlReport(r usageReport, title, batch string, generated time.Time) usagehtml.Report {
	out := usagehtml.Report{Title: title, BatchID: batch, Currency: r.Totals.Currency, Generated: generated}
	for _, row := range r.Rows {
		state := row.State
		if state == usage.StateNearBudget {
			state = usagehtml.StateActive
		}
		out.Rows = append(out.Rows, usagehtml.Row{Email: row.Email, DisplayName: row.DisplayName, ClusterID: row.ClusterID,
			Hours: row.Hours, Starts: row.Starts, LastRun: row.lastRun, DBU: row.dbu, Cost: row.cost, HasCost: row.hasCost,
			BudgetLeft: row.left, HasBudget: row.hasBudget, State: state})
	}
	for _, d := range r.Days {
		out.Days = append(out.Days, usagehtml.Day{Date: d.Date, Active: d.Active, DBUHours: d.DBUHours})
	}
	return out
}

// writeUsage writes the report in format.
func writeUsage(w io.Writer, format string, r usageReport, title, batch string, now time.Time) error {
	switch format {
	case "csv":
		return gocsv.MarshalCSV(r.Rows, csvout.NewWriter(w))
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Participants []usageRow  `json:"participants"`
			Totals       usageTotals `json:"totals"`
		}{r.Rows, r.Totals})
	case "html":
		return usagehtml.Write(w, htmlReport(r, title, batch, now))
	}
	return writeUsageTable(w, r)
}

// writeUsageTable writes the rows as an aligned table, cells cut to
// maxCell characters, then the totals and who to remind.
func writeUsageTable(w io.Writer, r usageReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tNAME\tCLUSTER\tHOURS\tSTARTS\tLAST RUN\tDBU\tCOST\tBUDGET LEFT\tSTATE")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%d\t%s\t%s\t%s\t%s\t%s\n", cut(row.Email), cut(row.DisplayName), orDash(row.ClusterID),
			row.Hours, row.Starts, orDash(row.LastRun), orDash(row.DBU), orDash(row.Cost), orDash(row.BudgetLeft), row.State)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	t := r.Totals
	fmt.Fprintf(w, "\n%d participants: %.2f cluster hours", t.Participants, t.Hours)
	if t.DBU > 0 {
		fmt.Fprintf(w, ", %.2f DBU", t.DBU)
	}
	if t.Cost > 0 {
		fmt.Fprintf(w, ", %.2f %s (an estimate: the bill is in system.billing.usage)", t.Cost, t.Currency)
	}
	if !t.Estimated {
		fmt.Fprint(w, " (some node types have no DBU rate in the config: their hours are not priced)")
	}
	if t.SetupHours > 0 {
		fmt.Fprintf(w, "; and %.2f hours of Cohort's own provisioning runs (a cluster runs briefly when created)", t.SetupHours)
	}
	fmt.Fprintf(w, "\n%d over budget, %d near it, %d never started\n", t.OverBudget, t.NearBudget, t.NeverStarted)
	if len(t.Remind) > 0 {
		fmt.Fprintf(w, "never started their cluster (remind them): %s", strings.Join(t.Remind[:min(len(t.Remind), maxRemind)], ", "))
		if n := len(t.Remind) - maxRemind; n > 0 {
			fmt.Fprintf(w, " ... and %d more (--format csv lists everyone)", n)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// cut shortens a cell for the table, at a rune boundary.
func cut(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= maxCell {
		return s
	}
	return string([]rune(s)[:maxCell-1]) + "…"
}

func (m *Main) usage(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	var c common
	c.register(fs)
	format := fs.String("format", "table", "output `format`: table, csv, json or html (a page a sponsor can open offline)")
	out := fs.String("out", "", "write to `FILE` (created 0600) instead of stdout")
	every := fs.String("every", "", "instead of reading now, create or update a Temporal Schedule that reads usage and applies the budget every `DURATION` (e.g. 24h); off removes it")
	cached := fs.Bool("cached", false, "show what the ledger holds, without reading the event logs again")
	pos, err := parse(fs, args, 1, "one roster FILE.csv or BATCH id")
	if err != nil {
		return err
	}
	if !slices.Contains(usageFormats, *format) {
		return usagef("usage: --format: expected one of %s, got %q", strings.Join(usageFormats, ", "), *format)
	}
	if err := checkTarget(fs.Name(), pos[0]); err != nil {
		return err
	}
	interval, err := parseEvery(fs.Name(), *every)
	if err != nil {
		return err
	}
	cl, closeFn, t, err := m.openTarget(ctx, &c, pos[0])
	if err != nil {
		return err
	}
	defer closeFn()
	if *every != "" {
		return m.scheduleUsage(ctx, cl, t, *every, interval)
	}
	batch, ferr := "", error(nil)
	if !*cached {
		if batch, err = cl.StartLifecycle(ctx, t, wire.ModeUsage, wire.OffboardOptions{}); err != nil {
			return err
		}
		fmt.Fprintf(m.Stderr, "reading the usage of %d participants of %s -> batch %s\n", t.Roster.Count, t.Source, batch)
		// Progress and summary on stderr: stdout is the report.
		quiet := *m
		quiet.Stdout = m.Stderr
		if ferr = quiet.follow(ctx, cl, batch); ferr != nil && !errors.Is(ferr, errSomeFailed) {
			return ferr
		}
	}
	ps, err := cl.Store.Load(t.Roster, 0, t.Roster.Count)
	if err != nil {
		return fmt.Errorf("load the roster of %s: %w", t.Source, err)
	}
	ledger := usage.Store{Dir: c.cfg.LedgerDir()}
	entries := make(map[string]usage.Entry, len(ps))
	for _, p := range ps {
		e, err := ledger.Load(p.Email)
		if err != nil {
			return err
		}
		entries[e.Email] = e
	}
	now := time.Now().UTC()
	r := buildUsage(ps, entries, c.cfg.Usage.Rates(), c.cfg.Budget.Of(), now)
	if err := m.writeOut(*out, func(w io.Writer) error {
		return writeUsage(w, *format, r, "Usage of "+t.Source, cmp.Or(batch, t.Source), now)
	}); err != nil {
		return err
	}
	if ferr != nil {
		fmt.Fprintf(m.Stderr, "some participants' usage could not be read (their rows show what the ledger held): starter status %s\n", batch)
	}
	return ferr
}

// scheduleUsage creates, updates or (off) removes the usage schedule.
func (m *Main) scheduleUsage(ctx context.Context, cl *control.Client, t control.Target, every string, interval time.Duration) error {
	id := control.UsageScheduleID(t.Source)
	if every == "off" {
		found, err := cl.DeleteSchedule(ctx, id)
		if err != nil {
			return err
		}
		if !found {
			fmt.Fprintf(m.Stdout, "no schedule %s: nothing to remove\n", id)
			return nil
		}
		fmt.Fprintf(m.Stdout, "removed schedule %s (runs it started finish)\n", id)
		return nil
	}
	existed, err := cl.ScheduleUsage(ctx, t, interval)
	if err != nil {
		return err
	}
	verb := map[bool]string{false: "created", true: "updated"}[existed]
	fmt.Fprintf(m.Stdout, "%s schedule %s: read the usage of %d participants and apply the budget every %s; each run is a batch usage-%s-<time>\nWeb UI: %s\n",
		verb, id, t.Roster.Count, interval, t.Source, cl.ScheduleURL(id))
	return nil
}

// writeOut writes through write to stdout, or to file (0600: it names
// people), replacing it only once the whole output is written.
func (m *Main) writeOut(file string, write func(io.Writer) error) error {
	if file == "" {
		return write(m.Stdout)
	}
	if st, err := os.Stat(file); err == nil && !st.Mode().IsRegular() {
		return usagef("--out %s: not a regular file", file)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	fmt.Fprintf(m.Stderr, "wrote %s\n", file)
	return nil
}

// maxGrant bounds one grant: a typo of 1e9 hours is not a grant.
const maxGrant = 10000

// budget is starter budget grant EMAIL +HOURS.
func (m *Main) budget(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("budget", flag.ContinueOnError)
	var c common
	c.register(fs)
	pos, err := parse(fs, args, 3, "grant EMAIL +HOURS")
	if err != nil {
		return err
	}
	if pos[0] != "grant" {
		return usagef("budget: expected grant EMAIL +HOURS, got %s", shortArg(pos[0]))
	}
	email := strings.ToLower(strings.TrimSpace(pos[1]))
	if at := strings.LastIndex(email, "@"); at < 1 || at == len(email)-1 || len(email) > 254 || strings.ContainsAny(email, " \t\r\n,;") {
		return usagef("budget grant: EMAIL: expected a participant's address, got %s", shortArg(pos[1]))
	}
	hours, err := strconv.ParseFloat(strings.TrimPrefix(pos[2], "+"), 64)
	if err != nil || !(hours > 0) || hours > maxGrant || math.IsInf(hours, 0) {
		return usagef("budget grant: HOURS: expected extra cluster hours such as +2 or +0.5 (more than 0, at most %d), got %s", maxGrant, shortArg(pos[2]))
	}
	if err := c.load(m.Getenv); err != nil {
		return err
	}
	ledger := usage.Store{Dir: c.cfg.LedgerDir()}
	before, err := ledger.Load(email)
	if err != nil {
		return err
	}
	e, err := ledger.Update(email, func(e *usage.Entry) error {
		e.AddGrant(usage.Grant{At: time.Now().UTC(), Hours: hours})
		return nil
	})
	if err != nil {
		return err
	}
	if len(before.Clusters) == 0 && before.GrantedHours == 0 {
		fmt.Fprintf(m.Stderr, "note: no usage has been read for %s yet: check the address\n", email)
	}
	b := c.cfg.Budget.Of()
	t := e.Totals(time.Now())
	fmt.Fprintf(m.Stdout, "granted %s %g more cluster hours (%g granted in all)", email, hours, e.GrantedHours)
	if b.On() {
		v := b.Judge(t.Hours(), e.GrantedHours)
		fmt.Fprintf(m.Stdout, ": %.4g of %.4g hours used", t.Hours(), v.Limit)
		if e.Restricted && !v.Over {
			fmt.Fprint(m.Stdout, "; the next usage read (the daily run, or starter usage) gives CAN_RESTART back")
		}
	}
	fmt.Fprintln(m.Stdout)
	return nil
}

// usageSummary is the line status prints for outcomes that carry usage.
func usageSummary(outcomes []workflows.Outcome) string {
	var n, over, near, never int
	var hours float64
	for _, o := range outcomes {
		if o.Usage == nil {
			continue
		}
		n++
		hours += o.Usage.Hours
		switch o.Usage.State {
		case usage.StateOverBudget:
			over++
		case usage.StateNearBudget:
			near++
		case usage.StateNeverStarted:
			never++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("usage: %.2f cluster hours over %d participants; %d over budget, %d near it, %d never started (starter usage --cached lists them)",
		hours, n, over, near, never)
}
