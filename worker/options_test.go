package main

import "testing"

// The server dispatches each partition of the account queue a little above
// the SCIM rate (it splits the queue's limit across the partitions, and a
// batch's last creates sit in one), and each worker holds at most 4 s of its
// share.
func TestAccountOptions(t *testing.T) {
	tests := []struct {
		name      string
		scim      float64
		workers   int
		wantRate  float64
		wantSlots int
	}{
		{"one worker at 5/s", 5, 1, 22, 20},
		{"two workers share 5/s", 5, 2, 22, 10},
		{"fast account", 50, 1, 220, 200},
		{"slow account keeps a floor of slots", 0.2, 1, 0.88, 10},
		{"unpaced", 0, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := accountOptions(tt.scim, tt.workers)
			if d := o.TaskQueueActivitiesPerSecond - tt.wantRate; d > 1e-9 || d < -1e-9 || o.MaxConcurrentActivityExecutionSize != tt.wantSlots {
				t.Errorf("rate %g, slots %d; want %g, %d", o.TaskQueueActivitiesPerSecond, o.MaxConcurrentActivityExecutionSize, tt.wantRate, tt.wantSlots)
			}
			if !o.DisableWorkflowWorker {
				t.Error("the account worker must not poll workflow tasks")
			}
		})
	}
}
