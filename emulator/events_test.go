package emulator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/listing"
	"github.com/databricks/databricks-sdk-go/service/compute"
)

// eventsScale runs the event tests' clusters 60 times faster than Databricks:
// an emulated minute is a second of the (manual) clock.
const eventsScale = 60

// scaledMs is an emulated duration as clock milliseconds at eventsScale.
func scaledMs(d time.Duration) int64 { return (d / eventsScale).Milliseconds() }

// wantEvent is an expected event: its type, when it happened (clock ms) and
// the details that matter.
type wantEvent struct {
	typ    compute.EventType
	at     int64
	reason compute.TerminationReasonCode
	user   string
}

// checkEvents compares events with want, type by type.
func checkEvents(t *testing.T, got []compute.ClusterEvent, want []wantEvent) {
	t.Helper()
	var g, w []string
	for _, e := range got {
		s := fmt.Sprintf("%s@%d", e.Type, e.Timestamp)
		if e.Details != nil && e.Details.Reason != nil {
			s += " reason=" + string(e.Details.Reason.Code)
		}
		if e.Details != nil && e.Details.User != "" {
			s += " user=" + e.Details.User
		}
		g = append(g, s)
	}
	for _, e := range want {
		s := fmt.Sprintf("%s@%d", e.typ, e.at)
		if e.reason != "" {
			s += " reason=" + string(e.reason)
		}
		if e.user != "" {
			s += " user=" + e.user
		}
		w = append(w, s)
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// eventsOf reads a cluster's whole log through the SDK's iterator.
func eventsOf(t *testing.T, w *databricks.WorkspaceClient, req compute.GetEvents) []compute.ClusterEvent {
	t.Helper()
	evs, err := listing.ToSlice(context.Background(), w.Clusters.Events(context.Background(), req))
	if err != nil {
		t.Fatalf("events %+v: %v", req, err)
	}
	return evs
}

// TestClusterEvents_lifecycle: a cluster created, busy in a notebook,
// auto-terminated after its busy period and autotermination_minutes, started
// by the participant's own token (CAN_RESTART) and terminated by them has
// that history in clusters/events, each event at the (scaled) instant of its
// transition, whenever it is read.
func TestClusterEvents_lifecycle(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now, TimeScale: eventsScale, ClusterStartDelay: 5 * time.Minute, ClusterStopDelay: time.Minute})
	ctx := context.Background()
	u := e.participant("worker@event.org")
	t0 := clock.Now().UnixMilli()
	wait, err := e.w.Clusters.Create(ctx, participantCluster("evt-worker", u.UserName)) // autotermination 30 min
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	id := wait.ClusterId
	running := t0 + scaledMs(5*time.Minute)

	// Busy for 2 h from 10 emulated minutes on: inactivity counts from 2h10m.
	clock.Advance(10 * time.Minute / eventsScale)
	var busy map[string]any
	if st := e.control("POST", "/emulator/v1/clusters/busy", map[string]string{"cluster_id": id, "duration": "2h"}, &busy); st != 200 {
		t.Fatalf("busy: %d %v", st, busy)
	}
	idleAt := t0 + scaledMs(2*time.Hour+10*time.Minute+30*time.Minute)
	if got := int64(busy["auto_terminates_at"].(float64)); got != idleAt {
		t.Errorf("busy answer auto_terminates_at = %d, want %d (2h busy from t+10m, then 30 min idle)", got, idleAt)
	}
	clock.Advance(2*time.Hour/eventsScale + 29*time.Minute/eventsScale)
	if c, _ := e.w.Clusters.GetByClusterId(ctx, id); c.State != compute.StateRunning {
		t.Fatalf("29 min after the busy period state = %s, want RUNNING", c.State)
	}
	clock.Advance(10 * time.Minute / eventsScale) // read well after the transition
	c, err := e.w.Clusters.GetByClusterId(ctx, id)
	if err != nil || c.State != compute.StateTerminated || c.TerminationReason == nil || c.TerminationReason.Code != compute.TerminationReasonCodeInactivity {
		t.Fatalf("after the idle time = %+v, %v; want TERMINATED by INACTIVITY", c, err)
	}
	if c.TerminatedTime != idleAt+scaledMs(time.Minute) {
		t.Errorf("terminated_time = %d, want %d (the stop delay after TERMINATING)", c.TerminatedTime, idleAt+scaledMs(time.Minute))
	}

	// The participant's own token: CAN_ATTACH_TO cannot start, CAN_RESTART can.
	tok := e.token(u.UserName)
	pw := e.workspaceClient(tok, 1)
	e.grant(id, u.UserName, compute.ClusterPermissionLevelCanAttachTo)
	_, err = pw.Clusters.Start(ctx, compute.StartCluster{ClusterId: id})
	wantErr(t, err, "does not have Restart or Manage permission", []error{apierr.ErrPermissionDenied})
	_, err = pw.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id})
	wantErr(t, err, "does not have Restart or Manage permission", []error{apierr.ErrPermissionDenied})
	e.grant(id, u.UserName, compute.ClusterPermissionLevelCanRestart)
	started := clock.Now().UnixMilli()
	if _, err := pw.Clusters.Start(ctx, compute.StartCluster{ClusterId: id}); err != nil {
		t.Fatalf("participant start with CAN_RESTART: %v", err)
	}
	clock.Advance(6 * time.Minute / eventsScale)
	stopped := clock.Now().UnixMilli()
	if _, err := pw.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id}); err != nil {
		t.Fatalf("participant terminate: %v", err)
	}
	clock.Advance(time.Hour / eventsScale)

	want := []wantEvent{
		{typ: compute.EventTypeCreating, at: t0, user: AdminUserName},
		{typ: compute.EventTypeRunning, at: running},
		{typ: compute.EventTypeDriverHealthy, at: running},
		{typ: compute.EventTypeTerminating, at: idleAt, reason: compute.TerminationReasonCodeInactivity},
		{typ: compute.EventTypeStarting, at: started, user: u.UserName},
		{typ: compute.EventTypeRunning, at: started + scaledMs(5*time.Minute)},
		{typ: compute.EventTypeDriverHealthy, at: started + scaledMs(5*time.Minute)},
		{typ: compute.EventTypeTerminating, at: stopped, reason: compute.TerminationReasonCodeUserRequest, user: u.UserName},
	}
	checkEvents(t, eventsOf(t, e.w, compute.GetEvents{ClusterId: id, Order: compute.GetEventsOrderAsc}), want)

	// The participant may read the log too (the usage read uses the admin's).
	desc := eventsOf(t, pw, compute.GetEvents{ClusterId: id})
	for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
		want[i], want[j] = want[j], want[i]
	}
	checkEvents(t, desc, want)
	if d := desc[len(desc)-1].Details; d == nil || d.Attributes == nil || d.Attributes.ClusterName != "evt-worker" {
		t.Errorf("CREATING details = %+v, want the cluster's attributes", d)
	}
	if r := desc[4].Details.Reason; r.Type != compute.TerminationReasonTypeSuccess || r.Parameters["inactivity_duration_min"] != "30" {
		t.Errorf("INACTIVITY reason = %+v, want type SUCCESS and inactivity_duration_min 30", r)
	}
}

// token mints a participant's own PAT through the control API.
func (e *env) token(user string) string {
	e.t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	if st := e.control("POST", "/emulator/v1/tokens", map[string]string{"user_name": user}, &tok); st != 200 || tok.Token == "" {
		e.t.Fatalf("POST tokens: %d %+v", st, tok)
	}
	return tok.Token
}

// grant sets a user's direct level on a cluster.
func (e *env) grant(id, user string, level compute.ClusterPermissionLevel) {
	e.t.Helper()
	_, err := e.w.Clusters.UpdatePermissions(context.Background(), compute.ClusterPermissionsRequest{ClusterId: id,
		AccessControlList: []compute.ClusterAccessControlRequest{{UserName: user, PermissionLevel: level}}})
	if err != nil {
		e.t.Fatalf("grant %s %s on %s: %v", user, level, id, err)
	}
}
