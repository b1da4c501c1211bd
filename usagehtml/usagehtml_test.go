package usagehtml

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// render writes r and returns the page's bytes and its parsed tree.
func renderPage(t *testing.T, r Report) (string, *html.Node) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, r); err != nil {
		t.Fatalf("Write: %v", err)
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("parse the page: %v", err)
	}
	return buf.String(), doc
}

// elements returns every element below n for which keep is true, in order.
func elements(n *html.Node, keep func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && keep(d) {
			out = append(out, d)
		}
	}
	return out
}

func tag(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == name }
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func byID(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	found := elements(doc, func(n *html.Node) bool { return attr(n, "id") == id })
	if len(found) != 1 {
		t.Fatalf("elements with id %q: %d, want 1", id, len(found))
	}
	return found[0]
}

// text is n's text content, whitespace collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

var hostile = []Row{
	{Email: "script@contoso.example", DisplayName: "<script>alert(1)</script>", State: StateNeverStarted},
	{Email: `"><img src=x onerror=alert(2)>@contoso.example`, DisplayName: `"><img src=x onerror=alert(3)>`, Hours: 3, Starts: 1, State: StateActive},
	{Email: "style@contoso.example", DisplayName: "</style><svg onload=alert(4)>", ClusterID: `" onmouseover="alert(5)`, Hours: 1, Starts: 1, State: StateActive},
}

func TestWrite_escapesParticipantData(t *testing.T) {
	out, doc := renderPage(t, Report{Title: "<b>title</b>", BatchID: "<i>batch</i>", Rows: hostile})

	if got := elements(doc, tag("script")); len(got) != 0 {
		t.Errorf("script elements: %d, want none", len(got))
	}
	if got := elements(doc, tag("img")); len(got) != 0 {
		t.Errorf("img elements: %d, want none (a display name's markup became an element)", len(got))
	}
	for _, n := range elements(doc, func(*html.Node) bool { return true }) {
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("<%s> has an event handler attribute %s=%q", n.Data, a.Key, a.Val)
			}
		}
	}
	if regexp.MustCompile(`(?i)<script`).MatchString(out) {
		t.Errorf("the page holds a <script tag")
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(3)&gt;", "&lt;/style&gt;&lt;svg onload=alert(4)&gt;", "&lt;b&gt;title&lt;/b&gt;"} {
		if !strings.Contains(out, want) {
			t.Errorf("the page lacks the escaped %q", want)
		}
	}
	// The names are shown as the participants wrote them.
	table := text(byID(t, doc, "participants"))
	for _, r := range hostile {
		if !strings.Contains(table, r.DisplayName) {
			t.Errorf("the table's text lacks the display name %q", r.DisplayName)
		}
	}
	if got := text(byID(t, doc, "never-list")); got != "<script>alert(1)</script> script@contoso.example" {
		t.Errorf("never-started list = %q", got)
	}
}

func TestWrite_nonASCII(t *testing.T) {
	rows := []Row{
		{Email: "taro@contoso.example", DisplayName: "山田 太郎", Hours: 2, Starts: 1, State: StateActive},
		{Email: "zoe@contoso.example", DisplayName: "Zoë de Vries", State: StateNeverStarted},
		{Email: "jose@contoso.example", DisplayName: "José Álvarez — Ελένη 🚀", Hours: 1, Starts: 1, State: StateActive},
	}
	out, _ := renderPage(t, Report{Rows: rows})
	head := out[:min(len(out), 1024)]
	if !strings.Contains(head, `<meta charset="utf-8">`) {
		t.Errorf("no <meta charset=\"utf-8\"> in the first 1024 bytes:\n%s", head)
	}
	for _, r := range rows {
		if !strings.Contains(out, r.DisplayName) {
			t.Errorf("the page lacks %q verbatim", r.DisplayName)
		}
	}
}

func TestSummarize(t *testing.T) {
	rows := []Row{
		{Hours: 2.5, DBU: 1.5, Cost: 0.75, HasCost: true, HasBudget: true, State: StateActive, Starts: 2},
		{State: StateNeverStarted, HasBudget: true},
		{Hours: 41, DBU: 30, HasBudget: true, State: StateOverBudget, Starts: 9},
		{Hours: 1, DBU: 0.5, Cost: 0.25, HasCost: true, State: StateActive, Starts: 1},
	}
	got := Summarize(rows)
	want := Totals{Participants: 4, Started: 3, NeverStarted: 1, OverBudget: 1, Hours: 44.5, DBU: 32, Cost: 1, Costed: 2, Budgeted: 3}
	if got != want {
		t.Errorf("Summarize = %+v\nwant        %+v", got, want)
	}
}

// cardValues maps each total's label to its value as the page shows it.
func cardValues(t *testing.T, doc *html.Node) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, c := range elements(doc, func(n *html.Node) bool { return attr(n, "class") == "card" }) {
		var label, value string
		for d := range c.Descendants() {
			switch attr(d, "class") {
			case "label":
				label = text(d)
			case "value":
				value = text(d)
			}
		}
		got[label] = value
	}
	return got
}

func TestWrite_totals(t *testing.T) {
	rows := []Row{
		{Email: "a@x.example", Hours: 1234.25, DBU: 900.04, Cost: 495.5, HasCost: true, State: StateActive, Starts: 30},
		{Email: "b@x.example", State: StateNeverStarted},
		{Email: "c@x.example", Hours: 0.5, DBU: 0.36, Cost: 0.2, HasCost: true, State: StateActive, Starts: 1},
	}
	tests := []struct {
		name string
		rows []Row
		want map[string]string
	}{
		{"with cost", rows, map[string]string{
			"Participants": "3", "Started": "2", "Never started": "1",
			"Cluster hours": "1,234.8", "DBU (estimate)": "900.4", "Cost (estimate, EUR)": "495.70",
		}},
		{"without cost or budget", []Row{{Email: "a@x.example", Hours: 2, DBU: 1, State: StateActive, Starts: 1}}, map[string]string{
			"Participants": "1", "Started": "1", "Never started": "0", "Cluster hours": "2.0", "DBU (estimate)": "1.0",
		}},
		{"with budget", []Row{{Hours: 50, HasBudget: true, BudgetLeft: -10, State: StateOverBudget, Starts: 5}, {HasBudget: true, BudgetLeft: 40, State: StateNeverStarted}}, map[string]string{
			"Participants": "2", "Started": "1", "Never started": "1", "Cluster hours": "50.0", "DBU (estimate)": "0.0", "Over budget": "1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, doc := renderPage(t, Report{Currency: "EUR", Rows: tt.rows})
			got := cardValues(t, doc)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("totals = %v\nwant     %v", got, tt.want)
			}
		})
	}
}

func TestWrite_neverStartedAndTables(t *testing.T) {
	r := sampleReport(40, 14)
	_, doc := renderPage(t, r)

	var want []string
	for _, row := range r.Rows {
		if row.State == StateNeverStarted {
			want = append(want, row.DisplayName+" "+row.Email)
		}
	}
	if len(want) == 0 {
		t.Fatal("the sample has nobody who never started; the test would prove nothing")
	}
	var got []string
	for _, li := range elements(byID(t, doc, "never-list"), tag("li")) {
		got = append(got, text(li))
	}
	if !slices.Equal(got, want) {
		t.Errorf("never started = %q\nwant            %q", got, want)
	}
	if h := text(byID(t, doc, "never-started")); !strings.HasPrefix(h, fmt.Sprintf("Never started (%d)", len(want))) {
		t.Errorf("never-started heading: %q", h)
	}

	if n := len(elements(byID(t, doc, "participants"), tag("tr"))); n != len(r.Rows)+1 {
		t.Errorf("full table rows: %d, want %d and the header", n, len(r.Rows))
	}
	top := TopUsers(r.Rows, TopN)
	trs := elements(byID(t, doc, "top-users"), tag("tr"))[1:]
	if len(trs) != TopN {
		t.Fatalf("top users rows: %d, want %d", len(trs), TopN)
	}
	for i, tr := range trs {
		if !strings.Contains(text(tr), top[i].Email) {
			t.Errorf("top user %d: %q, want %s", i+1, text(tr), top[i].Email)
		}
	}
}

func TestTopUsers(t *testing.T) {
	var rows []Row
	for i := range 15 {
		rows = append(rows, Row{Email: fmt.Sprintf("p%02d@x", i), Hours: float64(i % 7), DBU: float64(i)})
	}
	got := TopUsers(rows, 10)
	var emails []string
	for _, r := range got {
		emails = append(emails, r.Email)
	}
	// Hours 6 (p13 has more DBU than p06), 5, 4, 3, 2, ...; zero hours never.
	want := []string{"p13@x", "p06@x", "p12@x", "p05@x", "p11@x", "p04@x", "p10@x", "p03@x", "p09@x", "p02@x"}
	if !slices.Equal(emails, want) {
		t.Errorf("TopUsers = %v\nwant       %v", emails, want)
	}
	if got := TopUsers([]Row{{Email: "idle"}}, 10); len(got) != 0 {
		t.Errorf("TopUsers of an idle participant = %v, want none", got)
	}
	if rows[0].Email != "p00@x" {
		t.Errorf("TopUsers reordered its argument")
	}
}

// remote matches a reference the browser would fetch from the network.
var remote = regexp.MustCompile(`(?i)^\s*(https?:|//|ftp:)`)

func TestWrite_selfContained(t *testing.T) {
	out, doc := renderPage(t, sampleReport(40, 14))
	for _, n := range elements(doc, func(*html.Node) bool { return true }) {
		switch n.Data {
		case "script", "link", "iframe", "object", "embed", "img", "image", "use", "video", "audio", "source":
			t.Errorf("<%s> in a page that must open offline", n.Data)
		}
		for _, a := range n.Attr {
			switch strings.ToLower(a.Key) {
			case "src", "href", "srcset", "action", "poster", "data", "xlink:href", "background":
				if remote.MatchString(a.Val) {
					t.Errorf("<%s %s=%q> fetches from the network", n.Data, a.Key, a.Val)
				}
			}
		}
	}
	for _, re := range []string{`(?i)url\(\s*['"]?\s*(https?:|//)`, `(?i)@import`, `(?i)(src|href)\s*=\s*['"]?\s*(https?:|//)`} {
		if m := regexp.MustCompile(re).FindString(out); m != "" {
			t.Errorf("the page refers to a remote resource: %q", m)
		}
	}
	svgs := elements(doc, tag("svg"))
	if len(svgs) != 3 {
		t.Errorf("inline SVG charts: %d, want 3 (active, DBU-hours, hours)", len(svgs))
	}
	// The charts' text falls back to fonts a sponsor has.
	if strings.Contains(out, "font-family:Liberation Sans;") || !strings.Contains(out, "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;") {
		t.Errorf("the charts' font-family has no fallback after Liberation Sans")
	}
	if strings.Contains(out, "<?xml") {
		t.Errorf("an XML declaration inside the HTML page")
	}
}

func TestWrite_chartsHoldNoParticipantData(t *testing.T) {
	_, doc := renderPage(t, Report{Rows: hostile, Days: []Day{{Date: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Active: 2, DBUHours: 3}}})
	for _, svg := range elements(doc, tag("svg")) {
		s := text(svg)
		for _, r := range hostile {
			for _, v := range []string{r.Email, r.DisplayName, r.ClusterID} {
				if v != "" && strings.Contains(s, v) {
					t.Errorf("a chart's text %q holds participant data %q", s, v)
				}
			}
		}
	}
}

func TestWrite_empty(t *testing.T) {
	out, doc := renderPage(t, Report{})
	got := cardValues(t, doc)
	want := map[string]string{"Participants": "0", "Started": "0", "Never started": "0", "Cluster hours": "0.0", "DBU (estimate)": "0.0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("totals = %v\nwant     %v", got, want)
	}
	if got := text(byID(t, doc, "never-started")); got != "Never started (0) No participants in this report." {
		t.Errorf("the empty page's never-started section: %q", got)
	}
	for _, s := range []string{"No participants in this report.", "No daily figures in this report.", "Nobody has started a cluster yet.", "Nobody has run a cluster yet.", "Cohort usage report"} {
		if !strings.Contains(out, s) {
			t.Errorf("the empty page lacks %q", s)
		}
	}
	if n := len(elements(doc, tag("svg"))) + len(elements(doc, tag("table"))); n != 0 {
		t.Errorf("the empty page has %d charts or tables, want none", n)
	}
}

func TestHourBins(t *testing.T) {
	tests := []struct {
		hours     []float64
		wantWidth float64
		wantBins  int
	}{
		{[]float64{0.1, 0.2, 3.9}, 0.25, 16},
		{[]float64{1, 2, 4}, 0.5, 9},
		{[]float64{5, 60, 61, 77}, 5, 16},
		{[]float64{7}, 0.5, 15},
		{[]float64{2000}, 168, 12},
	}
	for _, tt := range tests {
		bins := hourBins(tt.hours)
		if w := bins[0].Max - bins[0].Min; w != tt.wantWidth || len(bins) != tt.wantBins {
			t.Errorf("hourBins(%v): %d bins of %g h, want %d of %g h", tt.hours, len(bins), w, tt.wantBins, tt.wantWidth)
		}
		total := 0.0
		for _, b := range bins {
			total += b.Weight
		}
		top := slices.Max(tt.hours)
		if last := bins[len(bins)-1]; total != float64(len(tt.hours)) || last.Weight == 0 || top < last.Min || top >= last.Max {
			t.Errorf("hourBins(%v) = %+v: every value in one bin, the largest in the last", tt.hours, bins)
		}
	}
}

func TestDecimal(t *testing.T) {
	tests := []struct {
		x    float64
		prec int
		want string
	}{
		{0, 1, "0.0"}, {-0.01, 1, "0.0"}, {999.95, 1, "1,000.0"}, {1234567.891, 2, "1,234,567.89"}, {-4321, 1, "-4,321.0"}, {12, 0, "12"},
	}
	for _, tt := range tests {
		if got := decimal(tt.x, tt.prec); got != tt.want {
			t.Errorf("decimal(%v, %d) = %q, want %q", tt.x, tt.prec, got, tt.want)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWrite_reportsWriteError(t *testing.T) {
	err := Write(failingWriter{}, Report{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Write to a failing writer: %v, want the writer's error", err)
	}
}

// BenchmarkWrite_10000 writes the report of a 10,000-participant event
// over 14 days (the size the bench reads); it reports the page's size.
func BenchmarkWrite_10000(b *testing.B) {
	r := sampleReport(10000, 14)
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := Write(&buf, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/1e6, "MB/page")
}
