package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// maxTimelineRuns bounds the runs whose histories a timeline reads: the
// batch and its chunks (a participant run's steps are not its subject).
const maxTimelineRuns = 50

// span is one thing a phase waited on: a run, or an activity of a run.
type span struct {
	what       string
	start, end time.Duration // since the starter's launch; end < 0: not closed
}

// phaseTimeline says where a phase's seconds went: when the batch and chunk
// runs started since since opened and closed, and when each activity they
// ran was scheduled and closed, relative to since (the starter's launch).
// It reads those runs' histories from Temporal.
func phaseTimeline(ctx context.Context, tc client.Client, since time.Time) ([]span, error) {
	infos, err := listAll(ctx, tc)
	if err != nil {
		return nil, err
	}
	infos = slices.DeleteFunc(infos, func(i *workflowInfo) bool {
		return i.start.Before(since) || (i.typ != "Batch" && i.typ != "Chunk")
	})
	slices.SortFunc(infos, func(a, b *workflowInfo) int { return a.start.Compare(b.start) })
	if len(infos) > maxTimelineRuns {
		infos = infos[:maxTimelineRuns]
	}
	rel := func(t time.Time) time.Duration { return t.Sub(since) }
	var out []span
	for _, info := range infos {
		name := info.typ
		if i := strings.LastIndex(info.id, "/chunk-"); i >= 0 {
			name = "chunk " + info.id[i+len("/chunk-"):]
		}
		run := span{what: name + " run", start: -1, end: -1}
		scheduled := map[int64]span{}
		it := tc.GetWorkflowHistory(ctx, info.id, info.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return nil, fmt.Errorf("history of %s: %w", info.id, err)
			}
			at := rel(ev.GetEventTime().AsTime())
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
				run.start = at
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
				enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
				run.end = at
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				scheduled[ev.GetEventId()] = span{what: name + ": " + ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), start: at, end: -1}
			default:
				if id := closedActivity(ev); id != 0 {
					if s, ok := scheduled[id]; ok {
						s.end = at
						scheduled[id] = s
					}
				}
			}
		}
		out = append(out, run)
		for _, s := range scheduled {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b span) int { return int(a.start - b.start) })
	return out, nil
}

// closedActivity is the scheduled event id of an activity's closing event
// (0 for any other event).
func closedActivity(ev *historypb.HistoryEvent) int64 {
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
		return ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
		return ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
		return ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()
	}
	return 0
}

// formatTimeline writes spans as "what start-end" in seconds, with the
// starter's exit last.
func formatTimeline(spans []span, wall time.Duration) string {
	parts := make([]string, 0, len(spans)+1)
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1f", d.Seconds()) }
	for _, s := range spans {
		end := "open"
		if s.end >= 0 {
			end = sec(s.end)
		}
		parts = append(parts, fmt.Sprintf("%s %s-%ss", s.what, sec(s.start), end))
	}
	parts = append(parts, "starter exit "+sec(wall)+"s")
	return strings.Join(parts, "; ")
}
