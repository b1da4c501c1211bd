package usagehtml

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// screenshotOut, when set, is where TestBrowser_sampleReport also writes
// its screenshot of the sample report: the README's picture is made with
//
//	go test ./usagehtml -run TestBrowser_sampleReport -screenshot "$PWD/docs/usage-report.png"
var screenshotOut = flag.String("screenshot", "", "also write the sample report's screenshot (the top of the page, 1200 px wide) to this PNG file")

// chromium finds a Chromium or Chrome on PATH. Without one the browser
// tests cannot run: in CI (CI=true) that is a failure, elsewhere a skip
// that says how to install it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no chromium, chromium-browser or google-chrome on PATH: the usage report's browser test needs one (Debian/Ubuntu: apt-get install -y chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; .ci/run installs it")
	}
	t.Skip("SKIPPED, " + msg)
	return ""
}

// browserPage is what a headless browser saw of one page.
type browserPage struct {
	console  []string // console calls, uncaught exceptions, browser log entries
	requests []string // every URL the page asked for
	dialogs  []string // alert(), confirm(), ... (a script that ran)
}

func (p *browserPage) String() string {
	return fmt.Sprintf("console %q, requests %q, dialogs %q", p.console, p.requests, p.dialogs)
}

// openInBrowser writes r to a file, opens it in headless Chromium, runs
// check against the tab, and returns what the browser saw.
func openInBrowser(t *testing.T, r Report, check func(ctx context.Context)) *browserPage {
	t.Helper()
	exe := chromium(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "usage.html")
	var buf bytes.Buffer
	if err := Write(&buf, r); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	bctx := startBrowser(t, exe, dir)
	seen := &browserPage{}
	var mu sync.Mutex
	note := func(to *[]string, s string) {
		mu.Lock()
		defer mu.Unlock()
		*to = append(*to, s)
	}
	if err := chromedp.Listen(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			note(&seen.console, fmt.Sprintf("console.%s %d args", ev.Type, len(ev.Args)))
		case *runtime.EventExceptionThrown:
			note(&seen.console, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			note(&seen.console, fmt.Sprintf("log %s %s: %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		case *network.EventRequestWillBeSent:
			note(&seen.requests, ev.Request.URL)
		case *page.EventJavascriptDialogOpening:
			note(&seen.dialogs, string(ev.Type)+": "+ev.Message)
		}
	}); err != nil {
		t.Fatalf("listen to the tab: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("enable the network domain: %v", err)
	}
	if _, err := chromedp.Call(bctx, log.Enable, struct{}{}); err != nil {
		t.Fatalf("enable the log domain: %v", err)
	}
	u := (&url.URL{Scheme: "file", Path: file}).String()
	if err := chromedp.Do(bctx, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	check(bctx)
	// Let late events (a failed load, a deferred error) arrive.
	if err := chromedp.Do(bctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return &browserPage{console: seen.console, requests: seen.requests, dialogs: seen.dialogs}
}

// startBrowser starts headless Chromium with a profile in dir and returns
// a tab's context. A start is tried twice: on a loaded machine Chromium
// now and then exits while starting, which says nothing about the page.
func startBrowser(t *testing.T, exe, dir string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(exe),
			chromedp.NoSandbox, // tests and CI run as root, where Chromium's sandbox refuses to start
			chromedp.DisableGPU,
			chromedp.UserDataDir(filepath.Join(dir, fmt.Sprintf("profile-%d", attempt))),
			chromedp.WindowSize(1200, 900),
		)
		actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
		t.Cleanup(cancelAlloc)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		t.Cleanup(cancelBrowser)
		if err = chromedp.Do(bctx); err == nil {
			return bctx
		}
		t.Logf("start %s (attempt %d): %v", exe, attempt, err)
		cancelBrowser()
		cancelAlloc()
	}
	t.Fatalf("start %s: %v", exe, err)
	return nil
}

// countIn returns how many elements match a CSS selector.
func countIn(t *testing.T, ctx context.Context, selector string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", selector)))
	if err != nil {
		t.Fatalf("count %s: %v", selector, err)
	}
	return n
}

// assertQuiet fails unless the page wrote nothing to the console, ran no
// script and fetched nothing but itself.
func assertQuiet(t *testing.T, seen *browserPage, self string) {
	t.Helper()
	if len(seen.console) != 0 {
		t.Errorf("console messages or exceptions: %q", seen.console)
	}
	if len(seen.dialogs) != 0 {
		t.Errorf("a script ran and opened dialogs: %q", seen.dialogs)
	}
	for _, u := range seen.requests {
		if !strings.HasPrefix(u, "file://") || !strings.HasSuffix(u, self) {
			t.Errorf("the page fetched %s (it must open offline, fetching nothing)", u)
		}
	}
	if len(seen.requests) == 0 {
		t.Errorf("no request seen at all; the network listener does not work: %v", seen)
	}
}

func TestBrowser_sampleReport(t *testing.T) {
	r := sampleReport(40, 14)
	var shot, top []byte
	seen := openInBrowser(t, r, func(ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("table#participants"))); err != nil {
			t.Fatalf("the full table is not visible: %v", err)
		}
		for sel, want := range map[string]int{
			`figure.chart[data-chart="active"] svg`: 1,
			`figure.chart[data-chart="dbu"] svg`:    1,
			`figure.chart[data-chart="hours"] svg`:  1,
			"table#participants tbody tr":           len(r.Rows),
			"table#top-users tbody tr":              TopN,
			"ul#never-list li":                      len(NeverStarted(r.Rows)),
			"#totals .card":                         7,
			"script":                                0,
		} {
			if got := countIn(t, ctx, sel); got != want {
				t.Errorf("%s: %d elements, want %d", sel, got, want)
			}
		}
		// The charts are drawn: each has a size on screen and holds shapes.
		for _, name := range []string{"active", "dbu", "hours"} {
			sel := fmt.Sprintf(`figure.chart[data-chart=%q] svg`, name)
			box, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](fmt.Sprintf(
				"(() => { const s = document.querySelector(%q); const b = s.getBoundingClientRect(); return [b.width, b.height, s.querySelectorAll('path').length]; })()", sel)))
			if err != nil {
				t.Fatalf("measure %s: %v", sel, err)
			}
			if box[0] < 200 || box[1] < 100 || box[2] < 5 {
				t.Errorf("%s: %gx%g px with %g paths; want a drawn chart", sel, box[0], box[1], box[2])
			}
		}
		var err error
		if shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if *screenshotOut != "" {
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(1200, 1700)); err != nil {
				t.Fatal(err)
			}
			if top, err = chromedp.Run(ctx, chromedp.CaptureScreenshot()); err != nil {
				t.Fatalf("screenshot: %v", err)
			}
		}
	})
	assertQuiet(t, seen, "/usage.html")

	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 1500 {
		t.Errorf("the full-page screenshot is %dx%d px; want the whole page (at least 800x1500)", b.Dx(), b.Dy())
	}
	out := filepath.Join(t.TempDir(), "usage-report.png")
	if err := os.WriteFile(out, shot, 0o600); err != nil {
		t.Fatal(err)
	}
	if *screenshotOut != "" {
		if err := os.WriteFile(*screenshotOut, top, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", *screenshotOut)
	}
}

// A participant named after markup stays text in a real browser: no script
// runs, no image loads, and the name is shown as typed.
func TestBrowser_hostileNames(t *testing.T) {
	seen := openInBrowser(t, Report{Rows: hostile}, func(ctx context.Context) {
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("ul#never-list li")))
		if err != nil {
			t.Fatalf("read the never-started list: %v", err)
		}
		if !strings.Contains(got, "<script>alert(1)</script>") {
			t.Errorf("never-started list shows %q, want the name as typed", got)
		}
		for sel, want := range map[string]int{"script": 0, "img": 0, "[onerror], [onload], [onmouseover]": 0, "table#participants tbody tr": len(hostile)} {
			if got := countIn(t, ctx, sel); got != want {
				t.Errorf("%s: %d elements, want %d", sel, got, want)
			}
		}
	})
	assertQuiet(t, seen, "/usage.html")
}

func TestBrowser_emptyReport(t *testing.T) {
	seen := openInBrowser(t, Report{}, func(ctx context.Context) {
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("section#all")))
		if err != nil {
			t.Fatalf("read the table section: %v", err)
		}
		if !strings.Contains(got, "No participants in this report.") {
			t.Errorf("empty report's table section: %q", got)
		}
	})
	assertQuiet(t, seen, "/usage.html")
}
