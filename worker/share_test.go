package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cohort-dev/cohort/activities"
	"github.com/cohort-dev/cohort/workflows"
)

func poller(identity string, at time.Time) *taskqueuepb.PollerInfo {
	return &taskqueuepb.PollerInfo{Identity: identity, LastAccessTime: timestamppb.New(at)}
}

func TestLiveWorkers(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		pollers []*taskqueuepb.PollerInfo
		want    int
	}{
		{"nobody listed yet: this worker", nil, 1},
		{"this worker only", []*taskqueuepb.PollerInfo{poller("self", now)}, 1},
		{"two, listed by two partitions each", []*taskqueuepb.PollerInfo{
			poller("self", now), poller("b", now.Add(-time.Second)), poller("self", now), poller("b", now.Add(-3*time.Second)),
		}, 2},
		{"a worker last seen before the window is gone", []*taskqueuepb.PollerInfo{
			poller("self", now), poller("dead", now.Add(-pollerWindow-time.Second)),
		}, 1},
		{"one stale partition entry, one fresh", []*taskqueuepb.PollerInfo{
			poller("b", now.Add(-time.Hour)), poller("b", now.Add(-pollerWindow+time.Second)),
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := liveWorkers(tt.pollers, now, pollerWindow, "self"); got != tt.want {
				t.Errorf("liveWorkers = %d, want %d", got, tt.want)
			}
		})
	}
}

// fakeLister answers DescribeTaskQueue from a table of pollers by partition.
type fakeLister struct {
	mu     sync.Mutex
	byName map[string][]*taskqueuepb.PollerInfo
	err    error
	asked  []string
}

func (f *fakeLister) DescribeTaskQueue(_ context.Context, name string, typ enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, name)
	if typ != enumspb.TASK_QUEUE_TYPE_ACTIVITY {
		return nil, errors.New("not the activity queue")
	}
	if f.err != nil {
		return nil, f.err
	}
	return &workflowservice.DescribeTaskQueueResponse{Pollers: f.byName[name]}, nil
}

// Every partition of the account queue is asked: a worker whose pollers
// happen to poll only the last partition is still counted.
func TestAccountPollers_everyPartition(t *testing.T) {
	now := time.Now()
	last := "/_sys/" + workflows.AccountTaskQueue + "/3"
	f := &fakeLister{byName: map[string][]*taskqueuepb.PollerInfo{
		workflows.AccountTaskQueue: {poller("self", now)},
		last:                       {poller("b", now)},
	}}
	ps, err := accountPollers(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if got := liveWorkers(ps, now, pollerWindow, "self"); got != 2 {
		t.Errorf("live workers %d, want 2 (asked %v)", got, f.asked)
	}
	if len(f.asked) != accountPartitions || f.asked[0] != workflows.AccountTaskQueue || f.asked[3] != last {
		t.Errorf("asked %v", f.asked)
	}
	f.err = errors.New("unavailable")
	if _, err := accountPollers(context.Background(), f); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("err = %v, want the server's", err)
	}
}

// One watcher round, end to end: two workers configured, the other one has
// not polled for longer than the window, so this worker takes the whole
// rate.
func TestShareLimits_survivorTakesOver(t *testing.T) {
	if testing.Short() {
		t.Skip("waits one share interval")
	}
	limits := activities.NewLimits(activities.RateRates{SCIMWrite: 5}, 2)
	f := &fakeLister{byName: map[string][]*taskqueuepb.PollerInfo{
		workflows.AccountTaskQueue: {poller("self", time.Now()), poller("dead", time.Now().Add(-time.Minute))},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		shareLimits(ctx, f, limits, "self", slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	deadline := time.Now().Add(3 * shareInterval)
	for limits.Workers() != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if got := limits.Limit(activities.ClassSCIMWrite); got != 5 {
		t.Errorf("scim_write %v after the other worker died, want 5", got)
	}
}
