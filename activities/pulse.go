package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/cohort-dev/cohort/wire"
)

// pulseInterval is how often a running activity heartbeats. The SDK sends at
// most one heartbeat per 0.8 x HeartbeatTimeout, so this only has to be
// comfortably below the workflows' HeartbeatTimeouts (30 s and more).
const pulseInterval = 5 * time.Second

// pulse heartbeats an activity in the background with its latest progress,
// so that a worker killed mid-activity, or a completion lost while the
// Temporal server was down, is noticed within the HeartbeatTimeout — however
// long one Databricks call (with the SDK's own retries) takes.
//
// Steps only record their progress; the pulse sends it, the first time after
// pulseInterval. An activity that finishes sooner (most do, in a few seconds)
// sends no heartbeat at all: each one is a round trip to the Temporal server
// and a write there. The HeartbeatTimeout still runs from the activity's
// start, and a retry that finds no details falls back to the lookups.
type pulse struct {
	ctx     context.Context
	mu      sync.Mutex
	details []any
}

type pulseKey struct{}

// withPulse starts heartbeating ctx's activity until stop is called, and
// returns a context through which heartbeat() updates the details sent, and
// the progress an earlier attempt recorded (zero if none). Outside an
// activity it does nothing.
func withPulse(ctx context.Context) (_ context.Context, earlier progress, stop func()) {
	if !activity.IsActivity(ctx) {
		return ctx, earlier, func() {}
	}
	p := &pulse{ctx: ctx}
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &earlier) == nil {
		// Keep what the earlier attempt recorded until this one records more.
		p.details = []any{earlier}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(pulseInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				p.send()
			}
		}
	}()
	return context.WithValue(ctx, pulseKey{}, p), earlier, func() { close(done) }
}

// record keeps pr for the next heartbeat.
func (p *pulse) record(pr progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.details = []any{pr}
}

// send heartbeats with the latest details.
func (p *pulse) send() {
	p.mu.Lock()
	defer p.mu.Unlock()
	activity.RecordHeartbeat(p.ctx, p.details...)
}

// progress is what an activity records for a retried attempt to resume
// from: the user (the earlier shape's ProvisionAccess), the cluster
// (ProvisionCluster, CreateCluster) or the privileges added (Grant). Unknown fields recorded by earlier
// versions are ignored.
type progress struct {
	UserID      string `json:"user_id,omitempty"`
	UserCreated bool   `json:"user_created,omitempty"`
	ClusterID   string `json:"cluster_id,omitempty"`
	// Added is what a Grant attempt added before it failed.
	Added []wire.SecurableGrant `json:"added,omitempty"`
}
