package usagehtml

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The charts' size in points; the page scales them to its column.
const (
	chartWidth  = vg.Length(400)
	chartHeight = chartWidth * 0.55
	histWidth   = chartWidth * 2
)

// Colours of the page's palette (the CSS uses the same).
var (
	colourActive = color.RGBA{R: 0x25, G: 0x63, B: 0xeb, A: 0xff} // blue
	colourDBU    = color.RGBA{R: 0x0d, G: 0x94, B: 0x88, A: 0xff} // teal
	colourHours  = color.RGBA{R: 0x7c, G: 0x3a, B: 0xed, A: 0xff} // violet
	colourGrid   = color.RGBA{R: 0xe5, G: 0xe7, B: 0xeb, A: 0xff}
	colourAxis   = color.RGBA{R: 0x4b, G: 0x55, B: 0x63, A: 0xff}
)

// maxDayLabels bounds the labelled days on a daily chart's axis; the other
// days get an unlabelled tick.
const maxDayLabels = 10

// dailyCharts draws active participants and DBU-hours per day, one chart
// each (their scales differ by orders of magnitude), or none without days.
func dailyCharts(days []Day) ([]chart, error) {
	if len(days) == 0 {
		return nil, nil
	}
	active := make(plotter.Values, len(days))
	dbu := make(plotter.Values, len(days))
	for i, d := range days {
		active[i] = float64(d.Active)
		dbu[i] = d.DBUHours
	}
	a, err := dayBars(days, active, colourActive, "participants", true)
	if err != nil {
		return nil, fmt.Errorf("draw the chart of active participants: %w", err)
	}
	b, err := dayBars(days, dbu, colourDBU, "DBU-hours", false)
	if err != nil {
		return nil, fmt.Errorf("draw the chart of DBU-hours: %w", err)
	}
	return []chart{
		{Name: "active", Caption: "Active participants per day", SVG: a},
		{Name: "dbu", Caption: "DBU-hours per day (estimate)", SVG: b},
	}, nil
}

func dayBars(days []Day, vs plotter.Values, c color.Color, yLabel string, integral bool) (template.HTML, error) {
	p := newPlot()
	p.Y.Label.Text = yLabel
	bars, err := plotter.NewBarChart(vs, barWidth(len(days)))
	if err != nil {
		return "", err
	}
	bars.Color = c
	bars.LineStyle.Width = 0
	p.Add(horizontalGrid(), bars)
	p.X.Tick.Marker = dayTicks(days)
	p.X.Min, p.X.Max = -0.6, float64(len(days))-0.4
	p.Y.Min = 0
	p.Y.Max = math.Max(p.Y.Max*1.05, 1)
	if integral {
		p.Y.Tick.Marker = integerTicks{}
	}
	return render(p, chartWidth, chartHeight)
}

// barWidth fills about 70 % of each day's slot of the plotting area.
func barWidth(n int) vg.Length {
	w := (chartWidth - 50) * 0.7 / vg.Length(n)
	return max(min(w, 28), 1)
}

// dayTicks labels the days as "Jan 2", every k-th so at most maxDayLabels.
func dayTicks(days []Day) plot.ConstantTicks {
	step := (len(days) + maxDayLabels - 1) / maxDayLabels
	ticks := make(plot.ConstantTicks, len(days))
	for i, d := range days {
		ticks[i].Value = float64(i)
		if i%step == 0 {
			ticks[i].Label = d.Date.Format("Jan 2")
		}
	}
	return ticks
}

// hoursChart draws the histogram of hours per participant (those who ran).
func hoursChart(hours []float64) (chart, error) {
	p := newPlot()
	p.X.Label.Text = "cluster hours"
	p.Y.Label.Text = "participants"
	h := &plotter.Histogram{Bins: hourBins(hours), FillColor: colourHours}
	h.Width = h.Bins[0].Max - h.Bins[0].Min
	h.LineStyle = draw.LineStyle{Color: color.White, Width: vg.Points(1)}
	p.Add(horizontalGrid(), h)
	p.Y.Min = 0
	p.Y.Max = math.Max(p.Y.Max*1.05, 1)
	p.Y.Tick.Marker = integerTicks{}
	p.X.Min = 0
	svg, err := render(p, histWidth, chartHeight)
	if err != nil {
		return chart{}, fmt.Errorf("draw the histogram of hours: %w", err)
	}
	caption := fmt.Sprintf("Hours per participant who started (bars of %g h)", h.Width)
	return chart{Name: "hours", Caption: caption, SVG: svg}, nil
}

// niceSteps are the bin widths, in hours, a reader takes in at a glance.
var niceSteps = []float64{0.25, 0.5, 1, 2, 4, 5, 8, 10, 12, 24, 48, 72, 100, 168, 250, 500, 1000}

// maxBins bounds the histogram's bars.
const maxBins = 16

// hourBins buckets hours into [k·w, (k+1)·w) for the smallest nice width w
// that needs at most maxBins bins.
func hourBins(hours []float64) []plotter.HistogramBin {
	top := 0.0
	for _, h := range hours {
		top = math.Max(top, h)
	}
	w := niceSteps[len(niceSteps)-1]
	for _, s := range niceSteps {
		if math.Floor(top/s)+1 <= maxBins {
			w = s
			break
		}
	}
	n := int(math.Floor(top/w)) + 1
	bins := make([]plotter.HistogramBin, n)
	for i := range bins {
		bins[i].Min, bins[i].Max = float64(i)*w, float64(i+1)*w
	}
	for _, h := range hours {
		k := min(int(h/w), n-1)
		bins[k].Weight++
	}
	return bins
}

func newPlot() *plot.Plot {
	p := plot.New()
	sans := func(size font.Length) font.Font {
		return font.Font{Typeface: "Liberation", Variant: "Sans", Size: size}
	}
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(10)
		a.Label.TextStyle.Color = colourAxis
		a.Tick.Label.Font = sans(9)
		a.Tick.Label.Color = colourAxis
		a.Color = colourAxis
		a.Tick.Color = colourAxis
		a.Padding = vg.Points(2)
	}
	return p
}

func horizontalGrid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Width = 0
	g.Horizontal = draw.LineStyle{Color: colourGrid, Width: vg.Points(0.75)}
	return g
}

// integerTicks are the default ticks without the fractional ones, for
// counts of people.
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if t.Value != math.Trunc(t.Value) {
			continue
		}
		if t.Label != "" {
			t.Label = fmt.Sprintf("%.0f", t.Value)
		}
		out = append(out, t)
	}
	return out
}

// render draws p as SVG for inlining in the page: without the XML prologue
// (an HTML document has its own), and with fallbacks after the library's
// font family, since a sponsor's machine seldom has Liberation Sans
// (whose metrics the library measured with, and Arial shares).
func render(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	s = strings.ReplaceAll(s, "font-family:Liberation Sans;", "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")
	// The markup is the plotting library's, drawn from numbers and the
	// page's own labels; no participant's data is in it.
	return template.HTML(s), nil
}
