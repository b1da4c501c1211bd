package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/cohort-dev/cohort/activities"
	"github.com/cohort-dev/cohort/workflows"
)

// How a worker learns how many workers share the deployment's rate limits:
// every shareInterval it lists the pollers of the account task queue (every
// worker process polls it, under its own identity) and counts those that
// polled within pollerWindow, itself included. rate_limits.workers is only
// the assumption it starts from.
//
// The Temporal server records a poll when it starts and when it ends; an idle
// poll lasts matching.longPollExpirationInterval (1 minute by default), so
// the shared dynamic config (scripts/temporal-dynamicconfig.yaml) lowers it
// to 5 s on the account queue, below pollerWindow: an idle worker is not
// taken for a dead one. A killed worker drops out pollerWindow after its last
// poll, and the survivors take over its share within pollerWindow +
// shareInterval.
const (
	shareInterval = 2 * time.Second
	pollerWindow  = 10 * time.Second
	// accountPartitions is how many partitions of the account queue are
	// described: the server's default (matching.numTaskqueueReadPartitions).
	// A poller is recorded by the partition it polls, so one partition
	// alone would miss workers.
	accountPartitions = 4
)

// pollerLister is the part of the Temporal client the watcher uses.
type pollerLister interface {
	DescribeTaskQueue(ctx context.Context, taskQueue string, taskQueueType enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error)
}

// liveWorkers counts the distinct identities among pollers that polled within
// window of now, counting self even when it is not listed (yet).
func liveWorkers(pollers []*taskqueuepb.PollerInfo, now time.Time, window time.Duration, self string) int {
	live := map[string]bool{self: true}
	for _, p := range pollers {
		if now.Sub(p.GetLastAccessTime().AsTime()) <= window {
			live[p.GetIdentity()] = true
		}
	}
	return len(live)
}

// lastPolls says how long ago each identity last polled, for the log.
func lastPolls(pollers []*taskqueuepb.PollerInfo, now time.Time) map[string]string {
	ago := map[string]time.Duration{}
	for _, p := range pollers {
		d := now.Sub(p.GetLastAccessTime().AsTime())
		if old, ok := ago[p.GetIdentity()]; !ok || d < old {
			ago[p.GetIdentity()] = d
		}
	}
	out := make(map[string]string, len(ago))
	for id, d := range ago {
		out[id] = d.Round(100 * time.Millisecond).String()
	}
	return out
}

// accountPollers lists the pollers of every partition of the account queue.
func accountPollers(ctx context.Context, tc pollerLister) ([]*taskqueuepb.PollerInfo, error) {
	var all []*taskqueuepb.PollerInfo
	for i := range accountPartitions {
		name := workflows.AccountTaskQueue
		if i > 0 {
			name = fmt.Sprintf("/_sys/%s/%d", workflows.AccountTaskQueue, i)
		}
		ctx, cancel := context.WithTimeout(ctx, shareInterval)
		resp, err := tc.DescribeTaskQueue(ctx, name, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("describe task queue %s: %w", name, err)
		}
		all = append(all, resp.GetPollers()...)
	}
	return all, nil
}

// shareLimits keeps limits divided by the live workers until ctx ends. A
// failed listing keeps the current division: the workers are not counted
// again until the server answers.
func shareLimits(ctx context.Context, tc pollerLister, limits *activities.Limits, self string, logger *slog.Logger) {
	t := time.NewTicker(shareInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pollers, err := accountPollers(ctx, tc)
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("rate share: workers not counted", "error", err)
			}
			continue
		}
		before, now := limits.Workers(), time.Now()
		if n := liveWorkers(pollers, now, pollerWindow, self); limits.Share(n) {
			logger.Info("rate share", "workers", n, "before", before,
				"scim_write_per_second", float64(limits.Limit(activities.ClassSCIMWrite)),
				"pollers", lastPolls(pollers, now))
		}
	}
}
