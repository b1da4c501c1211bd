package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// pulseInterval is how often a running activity heartbeats. The SDK sends at
// most one heartbeat per 0.8 x HeartbeatTimeout, so this only has to be
// comfortably below the workflows' HeartbeatTimeouts (30 s and more).
const pulseInterval = 5 * time.Second

// pulse heartbeats an activity in the background with its latest progress,
// so that a worker killed mid-activity, or a completion lost while the
// Temporal server was down, is noticed within the HeartbeatTimeout — however
// long one Databricks call (with the SDK's own retries) takes.
type pulse struct {
	ctx     context.Context
	mu      sync.Mutex
	details []any
}

type pulseKey struct{}

// withPulse starts heartbeating ctx's activity until stop is called, and
// returns a context through which heartbeat() updates the details sent.
// Outside an activity it does nothing.
func withPulse(ctx context.Context) (_ context.Context, stop func()) {
	if !activity.IsActivity(ctx) {
		return ctx, func() {}
	}
	p := &pulse{ctx: ctx}
	if activity.HasHeartbeatDetails(ctx) {
		// Keep what an earlier attempt recorded until this one records more.
		var raw progress
		if activity.GetHeartbeatDetails(ctx, &raw) == nil {
			p.details = []any{raw}
		}
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
				p.record()
			}
		}
	}()
	return context.WithValue(ctx, pulseKey{}, p), func() { close(done) }
}

// record sends a heartbeat with details, or with the last details when none
// are given.
func (p *pulse) record(details ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(details) > 0 {
		p.details = details
	}
	activity.RecordHeartbeat(p.ctx, p.details...)
}

// progress is the union of the activities' heartbeat details, enough to
// carry them over from an earlier attempt unchanged.
type progress struct {
	Step        string `json:"step,omitempty"`
	UserID      string `json:"user_id,omitempty"`
	UserCreated bool   `json:"user_created,omitempty"`
	ClusterID   string `json:"cluster_id,omitempty"`
	State       string `json:"state,omitempty"`
}
