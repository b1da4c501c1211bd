package main

// Where a batch's fixed seconds go (issue 18): the time of `starter submit
// --wait` from its launch to its exit, cut at milestones read from three
// clocks on this one machine — the starter's own timing marks
// ($COHORT_TRACE), the emulator's request log (-v: one line per answered
// request, with its latency) and Temporal's histories and visibility records.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// emuRequest is one request the emulator answered, from its -v log.
type emuRequest struct {
	Start, End time.Time
	Endpoint   string
	Status     int
}

// parseEmuLog reads the emulator's request lines ("time=... level=DEBUG
// msg=request ... endpoint=K status=S elapsed=D"): the log time is when the
// answer was written, so the request began elapsed before it. Control API
// calls (the harness's own) are left out.
func parseEmuLog(r io.Reader) ([]emuRequest, error) {
	var out []emuRequest
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "msg=request ") {
			continue
		}
		f := logFields(line)
		if f["endpoint"] == "control" || f["endpoint"] == "" {
			continue
		}
		end, err := time.Parse(time.RFC3339Nano, f["time"])
		if err != nil {
			return nil, fmt.Errorf("emulator log: time %q: %w", f["time"], err)
		}
		elapsed, err := time.ParseDuration(f["elapsed"])
		if err != nil {
			return nil, fmt.Errorf("emulator log: elapsed %q: %w", f["elapsed"], err)
		}
		status, _ := strconv.Atoi(f["status"])
		out = append(out, emuRequest{Start: end.Add(-elapsed), End: end, Endpoint: f["endpoint"], Status: status})
	}
	return out, sc.Err()
}

// logFields splits a slog text line into its key=value pairs (values in
// the request line are never quoted with spaces, except msg, which is not
// needed).
func logFields(line string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return m
}

// starterMark is one of the starter's timing marks ("trace TIME +S EVENT").
type starterMark struct {
	At    time.Time
	Event string
}

func parseStarterMarks(r io.Reader) []starterMark {
	var out []starterMark
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		// The progress bar redraws with \r on the same stream: a mark may
		// follow a partial bar on its line.
		line := sc.Text()
		i := strings.Index(line, "trace ")
		if i < 0 {
			continue
		}
		f := strings.SplitN(line[i:], " ", 4)
		if len(f) < 4 {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f[1])
		if err != nil {
			continue
		}
		out = append(out, starterMark{At: t, Event: f[3]})
	}
	return out
}

// breakdown is where one run's wall time went, as offsets from the
// starter's launch.
type breakdown struct {
	Launch time.Time
	Wall   time.Duration
	Rate   time.Duration // the bound's rate term
	Marks  []milestone
	// Setup reads: the requests the emulator answered before setup ended.
	SetupReads      int
	SetupSerial     time.Duration // their latencies summed: one after another
	SetupReadsFirst time.Duration
	SetupReadsLast  time.Duration
	Missing         []string // milestones that could not be read
	// LastPath is the last participant's steps: when each activity was
	// scheduled, started and done, as offsets from the launch.
	LastPath string
}

type milestone struct {
	Name string
	At   time.Duration // since launch
}

func (b *breakdown) add(name string, t time.Time) {
	if t.IsZero() {
		b.Missing = append(b.Missing, name)
		return
	}
	b.Marks = append(b.Marks, milestone{name, t.Sub(b.Launch)})
}

func (b *breakdown) at(name string) (time.Duration, bool) {
	for _, m := range b.Marks {
		if m.Name == name {
			return m.At, true
		}
	}
	return 0, false
}

// Milestone names, in the order of a run.
const (
	msConfig       = "starter: config loaded"
	msRoster       = "starter: roster read and validated"
	msConnected    = "starter: connected to Temporal"
	msBatchStarted = "batch workflow started (Temporal)"
	msSubmitted    = "starter: submit returned"
	msSetupStart   = "SetupBatch started"
	msSetupDone    = "SetupBatch done: readiness checks passed"
	msFirstChunk   = "first chunk started"
	msFirstPart    = "first participant started"
	msFirstCreate  = "first user create sent"
	msFirstCreated = "first user create answered"
	msLastCreated  = "last user create answered"
	msLastCall     = "last Databricks call answered"
	msLastPart     = "last participant done"
	msBatchClosed  = "batch workflow closed"
	msStarterSaw   = "starter: saw the batch closed"
)

// collectBreakdown reads the milestones of the run that began at launch.
func collectBreakdown(ctx context.Context, tc client.Client, launch time.Time, wall time.Duration, rate time.Duration,
	starterLog, emuLog string, infos []*workflowInfo) (breakdown, error) {
	b := breakdown{Launch: launch, Wall: wall, Rate: rate}

	var marks []starterMark
	if f, err := os.Open(starterLog); err == nil {
		marks = parseStarterMarks(f)
		f.Close()
	}
	mark := func(prefix string) time.Time {
		for _, m := range marks {
			if strings.HasPrefix(m.Event, prefix) {
				return m.At
			}
		}
		return time.Time{}
	}
	b.add(msConfig, mark("config loaded"))
	b.add(msRoster, mark("roster read and validated"))
	b.add(msConnected, mark("connected to Temporal"))

	// Temporal: the batch's runs, its first run's history, the children.
	var batchRuns, chunks, parts []*workflowInfo
	for _, i := range infos {
		switch i.typ {
		case "Batch":
			batchRuns = append(batchRuns, i)
		case "Chunk":
			chunks = append(chunks, i)
		case "Participant":
			parts = append(parts, i)
		}
	}
	sort.Slice(batchRuns, func(i, j int) bool { return batchRuns[i].start.Before(batchRuns[j].start) })
	var setupStart, setupDone time.Time
	if len(batchRuns) > 0 {
		first := batchRuns[0]
		b.add(msBatchStarted, first.start)
		var err error
		setupStart, setupDone, err = setupTimes(ctx, tc, first.id, first.runID)
		if err != nil {
			return b, err
		}
	} else {
		b.add(msBatchStarted, time.Time{})
	}
	b.add(msSubmitted, mark("batch "))
	b.add(msSetupStart, setupStart)
	b.add(msSetupDone, setupDone)
	b.add(msFirstChunk, earliest(chunks, func(i *workflowInfo) time.Time { return i.start }))
	b.add(msFirstPart, earliest(parts, func(i *workflowInfo) time.Time { return i.start }))

	// The emulator: setup's reads, the user creates, the last call.
	f, err := os.Open(emuLog)
	if err != nil {
		return b, err
	}
	reqs, err := parseEmuLog(f)
	f.Close()
	if err != nil {
		return b, err
	}
	var firstCreate, firstCreated, lastCreated, lastCall time.Time
	for _, r := range reqs {
		if r.Start.Before(launch) {
			continue
		}
		if !setupDone.IsZero() && r.Start.Before(setupDone) {
			b.SetupReads++
			b.SetupSerial += r.End.Sub(r.Start)
			if b.SetupReads == 1 || r.Start.Sub(launch) < b.SetupReadsFirst {
				b.SetupReadsFirst = r.Start.Sub(launch)
			}
			b.SetupReadsLast = max(b.SetupReadsLast, r.End.Sub(launch))
		}
		if r.Endpoint == "scim.users.create" && r.Status < 300 {
			if firstCreate.IsZero() || r.Start.Before(firstCreate) {
				firstCreate = r.Start
			}
			if firstCreated.IsZero() || r.End.Before(firstCreated) {
				firstCreated = r.End
			}
			if r.End.After(lastCreated) {
				lastCreated = r.End
			}
		}
		if r.End.After(lastCall) {
			lastCall = r.End
		}
	}
	b.add(msFirstCreate, firstCreate)
	b.add(msFirstCreated, firstCreated)
	b.add(msLastCreated, lastCreated)
	b.add(msLastCall, lastCall)
	b.add(msLastPart, latest(parts, func(i *workflowInfo) time.Time { return i.close }))
	if lp := latestInfo(parts); lp != nil {
		if b.LastPath, err = activityPath(ctx, tc, lp, launch); err != nil {
			return b, err
		}
	}
	if len(batchRuns) > 0 {
		b.add(msBatchClosed, batchRuns[len(batchRuns)-1].close)
	} else {
		b.add(msBatchClosed, time.Time{})
	}
	saw := mark(`batch phase "done"`)
	if saw.IsZero() {
		saw = mark(`batch phase "ended"`)
	}
	b.add(msStarterSaw, saw)
	return b, nil
}

// setupTimes finds when the batch's SetupBatch activity started and
// completed in its run's history.
func setupTimes(ctx context.Context, tc client.Client, id, runID string) (started, done time.Time, err error) {
	it := tc.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var scheduled int64
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return started, done, fmt.Errorf("history of %s: %w", id, err)
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "SetupBatch" {
				scheduled = ev.GetEventId()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if scheduled != 0 && ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId() == scheduled {
				started = ev.GetEventTime().AsTime()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if scheduled != 0 && ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId() == scheduled {
				return started, ev.GetEventTime().AsTime(), nil
			}
		}
	}
	return started, done, nil
}

// latestInfo is the run that closed last.
func latestInfo(infos []*workflowInfo) *workflowInfo {
	var out *workflowInfo
	for _, i := range infos {
		if out == nil || i.close.After(out.close) {
			out = i
		}
	}
	return out
}

// activityPath lists a run's activities in the order they were scheduled:
// name, then scheduled/started/done as offsets from launch, and its attempt
// count when it was retried.
func activityPath(ctx context.Context, tc client.Client, run *workflowInfo, launch time.Time) (string, error) {
	type act struct {
		name                      string
		scheduled, started, ended time.Time
		attempt                   int32
		outcome                   string
	}
	var acts []*act
	byID := map[int64]*act{}
	it := tc.GetWorkflowHistory(ctx, run.id, run.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return "", fmt.Errorf("history of %s: %w", run.id, err)
		}
		t := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := &act{name: ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), scheduled: t}
			acts = append(acts, a)
			byID[ev.GetEventId()] = a
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if a := byID[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()]; a != nil {
				a.started, a.attempt = t, ev.GetActivityTaskStartedEventAttributes().GetAttempt()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if a := byID[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]; a != nil {
				a.ended, a.outcome = t, ""
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			if a := byID[ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()]; a != nil {
				a.ended, a.outcome = t, " failed"
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			if a := byID[ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()]; a != nil {
				a.ended, a.outcome = t, " timed out"
			}
		}
	}
	off := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%.2f", t.Sub(launch).Seconds())
	}
	parts := []string{fmt.Sprintf("%s started %s", run.id, off(run.start))}
	for _, a := range acts {
		s := fmt.Sprintf("%s %s/%s/%s%s", a.name, off(a.scheduled), off(a.started), off(a.ended), a.outcome)
		if a.attempt > 1 {
			s += fmt.Sprintf(" (attempt %d)", a.attempt)
		}
		parts = append(parts, s)
	}
	parts = append(parts, "closed "+off(run.close))
	return strings.Join(parts, "; "), nil
}

func earliest(infos []*workflowInfo, t func(*workflowInfo) time.Time) time.Time {
	var out time.Time
	for _, i := range infos {
		if v := t(i); !v.IsZero() && (out.IsZero() || v.Before(out)) {
			out = v
		}
	}
	return out
}

func latest(infos []*workflowInfo, t func(*workflowInfo) time.Time) time.Time {
	var out time.Time
	for _, i := range infos {
		if v := t(i); v.After(out) {
			out = v
		}
	}
	return out
}

// timeline renders every milestone as an offset from the launch.
func (b breakdown) timeline() string {
	var parts []string
	for _, m := range b.Marks {
		parts = append(parts, fmt.Sprintf("%s %.2fs", m.Name, m.At.Seconds()))
	}
	parts = append(parts, fmt.Sprintf("starter exit %.2fs", b.Wall.Seconds()))
	s := strings.Join(parts, "; ")
	if len(b.Missing) > 0 {
		s += " (not found: " + strings.Join(b.Missing, ", ") + ")"
	}
	return s
}

// fixed says where the wall time beyond the rate term went, in four spans
// that add up to it: everything before the first user create, the creates
// beyond the rate term, the last participant's path after the last create,
// and the end (the batch closing, the starter noticing and exiting).
func (b breakdown) fixed() string {
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
	first, ok1 := b.at(msFirstCreate)
	last, ok2 := b.at(msLastCreated)
	done, ok3 := b.at(msLastPart)
	if !ok1 || !ok2 || !ok3 {
		return "not enough milestones"
	}
	var pre []string
	span := func(name, from, to string) {
		f, okf := b.at(from)
		t, okt := b.at(to)
		if from == "" {
			f, okf = 0, true
		}
		if okf && okt {
			pre = append(pre, fmt.Sprintf("%s %s", name, sec(t-f)))
		}
	}
	span("starter to roster validated", "", msRoster)
	span("to connected", msRoster, msConnected)
	span("to batch started", msConnected, msBatchStarted)
	span("to SetupBatch started", msBatchStarted, msSetupStart)
	span("SetupBatch", msSetupStart, msSetupDone)
	span("to first chunk", msSetupDone, msFirstChunk)
	span("to first participant", msFirstChunk, msFirstPart)
	span("to first create sent", msFirstPart, msFirstCreate)
	s := fmt.Sprintf("wall %s - rate term %s = %s fixed: before the first user create %s (%s); creates %s for the %s term (%+.2fs); last create to last participant done %s; to starter exit %s",
		sec(b.Wall), sec(b.Rate), sec(b.Wall-b.Rate), sec(first), strings.Join(pre, ", "),
		sec(last-first), sec(b.Rate), (last - first - b.Rate).Seconds(), sec(done-last), sec(b.Wall-done))
	if b.SetupReads > 0 {
		s += fmt.Sprintf("; setup's reads: %d, from %s to %s (%s one after another)", b.SetupReads,
			sec(b.SetupReadsFirst), sec(b.SetupReadsLast), sec(b.SetupSerial))
	}
	return s
}
