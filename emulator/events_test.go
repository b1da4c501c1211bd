package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
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

	// The emulator's own account, in emulated time: 2h35m (RUNNING at 5 min
	// to the idle end at 2h40m), then 1 min.
	if r := e.runs()[id]; r.Runs != 2 || r.RanSeconds != (2*time.Hour+36*time.Minute).Seconds() || r.State != "TERMINATED" || r.SingleUserName != u.UserName {
		t.Errorf("runs = %+v, want 2 runs, %v s, TERMINATED, single user %s", r, (2*time.Hour + 36*time.Minute).Seconds(), u.UserName)
	}
}

// runRow is one row of GET /emulator/v1/clusters/runs.
type runRow struct {
	ClusterID      string  `json:"cluster_id"`
	State          string  `json:"state"`
	ClusterName    string  `json:"cluster_name"`
	SingleUserName string  `json:"single_user_name"`
	Runs           int     `json:"runs"`
	RanSeconds     float64 `json:"ran_seconds"`
	LastRunningAt  int64   `json:"last_running_at"`
	GoneAt         int64   `json:"gone_at"`
}

// runs reads the emulator's run totals by cluster id.
func (e *env) runs() map[string]runRow {
	e.t.Helper()
	var out struct {
		Clusters []runRow `json:"clusters"`
	}
	if st := e.control("GET", "/emulator/v1/clusters/runs", nil, &out); st != 200 {
		e.t.Fatalf("GET clusters/runs: %d", st)
	}
	m := map[string]runRow{}
	for _, r := range out.Clusters {
		m[r.ClusterID] = r
	}
	return m
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

// manyEvents makes a cluster with n start/terminate cycles (4 events each
// after the 3 of its creation and first run) and returns its id.
func manyEvents(t *testing.T, e *env, clock *ManualClock, name string, cycles int) string {
	t.Helper()
	ctx := context.Background()
	u := e.participant(name + "@event.org")
	w, err := e.w.Clusters.Create(ctx, participantCluster("evt-"+name, u.UserName))
	if err != nil {
		t.Fatal(err)
	}
	for range cycles {
		clock.Advance(time.Second)
		if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: w.ClusterId}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if _, err := e.w.Clusters.Start(ctx, compute.StartCluster{ClusterId: w.ClusterId}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	return w.ClusterId
}

// TestClusterEvents_paging: the SDK's iterator follows next_page to the end
// in either order, with any limit; limit is capped at 500; EventsAll with a
// Limit stops after Limit events (the SDK reads Limit as a total).
func TestClusterEvents_paging(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now, Int64AsStringShare: 0.5})
	ctx := context.Background()
	id := manyEvents(t, e, clock, "pager", 20) // 3 + 20*4 = 83 events
	const total = 83

	asc := eventsOf(t, e.w, compute.GetEvents{ClusterId: id, Order: compute.GetEventsOrderAsc, Limit: 500})
	if len(asc) != total {
		t.Fatalf("one page of 500: %d events, want %d", len(asc), total)
	}
	for i := 1; i < len(asc); i++ {
		if asc[i].Timestamp < asc[i-1].Timestamp {
			t.Fatalf("ASC event %d at %d before event %d at %d", i, asc[i].Timestamp, i-1, asc[i-1].Timestamp)
		}
	}
	for _, tc := range []struct {
		name string
		req  compute.GetEvents
		rev  bool
	}{
		{"ASC limit 2", compute.GetEvents{ClusterId: id, Order: compute.GetEventsOrderAsc, Limit: 2}, false},
		{"DESC limit 2", compute.GetEvents{ClusterId: id, Order: compute.GetEventsOrderDesc, Limit: 2}, true},
		{"default order and limit", compute.GetEvents{ClusterId: id}, true},
		{"ASC limit 7", compute.GetEvents{ClusterId: id, Order: compute.GetEventsOrderAsc, Limit: 7}, false},
	} {
		got := eventsOf(t, e.w, tc.req)
		if len(got) != total {
			t.Errorf("%s: %d events, want %d", tc.name, len(got), total)
			continue
		}
		for i := range got {
			j := i
			if tc.rev {
				j = total - 1 - i
			}
			if got[i].Type != asc[j].Type || got[i].Timestamp != asc[j].Timestamp {
				t.Errorf("%s: event %d = %s@%d, want %s@%d", tc.name, i, got[i].Type, got[i].Timestamp, asc[j].Type, asc[j].Timestamp)
				break
			}
		}
	}
	all, err := e.w.Clusters.EventsAll(ctx, compute.GetEvents{ClusterId: id})
	if err != nil || len(all) != total {
		t.Errorf("EventsAll without a limit = %d events, %v; want all %d over two pages", len(all), err, total)
	}
	capped, err := e.w.Clusters.EventsAll(ctx, compute.GetEvents{ClusterId: id, Limit: 2})
	if err != nil || len(capped) != 2 {
		t.Errorf("EventsAll with Limit 2 = %d events, %v; want 2 (the SDK's ToSliceN)", len(capped), err)
	}

	// One page through the raw API: total_count, next_page names the rest.
	var page struct {
		Events     []map[string]any `json:"events"`
		TotalCount int              `json:"total_count"`
		NextPage   map[string]any   `json:"next_page"`
	}
	st, body := e.raw("POST", "/api/2.1/clusters/events", testToken, map[string]any{"cluster_id": id, "limit": 2})
	if st != 200 || jsonInto(t, body, &page) != nil || len(page.Events) != 2 || page.TotalCount != total ||
		fmt.Sprint(page.NextPage["offset"]) != "2" || fmt.Sprint(page.NextPage["limit"]) != "2" || page.NextPage["end_time"] == nil {
		t.Errorf("first DESC page = %d %s; want 2 events, total_count %d, next_page offset 2 limit 2 with end_time", st, body, total)
	}
	st, body = e.raw("POST", "/api/2.0/clusters/events", testToken, map[string]any{"cluster_id": id, "order": "ASC", "offset": 80, "limit": 50})
	page.NextPage = nil
	if st != 200 || jsonInto(t, body, &page) != nil || len(page.Events) != 3 || page.NextPage != nil {
		t.Errorf("last page (2.0) = %d %s; want 3 events and no next_page", st, body)
	}

	bad := []struct {
		name string
		req  compute.GetEvents
		msg  string
	}{
		{"limit 501", compute.GetEvents{ClusterId: id, Limit: 501}, "limit must be between 0 and 500"},
		{"DESC offset without end_time", compute.GetEvents{ClusterId: id, Offset: 10}, "end_time is required"},
		{"unknown type", compute.GetEvents{ClusterId: id, EventTypes: []compute.EventType{"TERMINATED"}}, "Invalid event type TERMINATED"},
		{"bad order", compute.GetEvents{ClusterId: id, Order: "UP"}, "Invalid order"},
		{"window reversed", compute.GetEvents{ClusterId: id, StartTime: 200, EndTime: 100}, "is after end_time"},
		{"no cluster", compute.GetEvents{}, "Missing required field: cluster_id"},
		{"unknown cluster", compute.GetEvents{ClusterId: "0000-000000-nope"}, "Cluster 0000-000000-nope does not exist"},
	}
	for _, tc := range bad {
		_, err := e.w.Clusters.EventsAll(ctx, tc.req)
		wantErr(t, err, tc.msg, []error{apierr.ErrInvalidParameterValue})
	}
}

func jsonInto(t *testing.T, b []byte, v any) error {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Errorf("decode %s: %v", b, err)
		return err
	}
	return nil
}

// TestClusterEvents_tokenPaging: page_size/page_token paging (the API's newer
// style) reaches every event and answers no total_count or next_page.
func TestClusterEvents_tokenPaging(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now})
	id := manyEvents(t, e, clock, "tokens", 3) // 15 events
	var seen []string
	req := map[string]any{"cluster_id": id, "page_size": 4, "order": "ASC"}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("token paging does not end")
		}
		var page struct {
			Events        []compute.ClusterEvent `json:"events"`
			NextPageToken string                 `json:"next_page_token"`
			PrevPageToken string                 `json:"prev_page_token"`
			TotalCount    *int                   `json:"total_count"`
			NextPage      any                    `json:"next_page"`
		}
		st, body := e.raw("POST", "/api/2.1/clusters/events", testToken, req)
		if st != 200 || jsonInto(t, body, &page) != nil {
			t.Fatalf("page %d: %d %s", pages, st, body)
		}
		if page.TotalCount != nil || page.NextPage != nil || (pages > 0) != (page.PrevPageToken != "") {
			t.Errorf("page %d = %s; want no total_count or next_page, a prev_page_token after the first", pages, body)
		}
		for _, ev := range page.Events {
			seen = append(seen, string(ev.Type))
		}
		if page.NextPageToken == "" {
			break
		}
		req["page_token"] = page.NextPageToken
	}
	if len(seen) != 15 || seen[0] != "CREATING" || seen[14] != "DRIVER_HEALTHY" {
		t.Errorf("token paging saw %d events %v, want 15 from CREATING to DRIVER_HEALTHY", len(seen), seen)
	}
	st, body := e.raw("POST", "/api/2.1/clusters/events", testToken, map[string]any{"cluster_id": id, "page_token": "bogus"})
	if st != 400 || !strings.Contains(string(body), "INVALID_PARAMETER_VALUE") {
		t.Errorf("bogus page_token = %d %s, want 400 INVALID_PARAMETER_VALUE", st, body)
	}
}

// TestClusterEvents_filters: event_types and the start/end window select
// events; edits, restarts and pins are logged.
func TestClusterEvents_filters(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now})
	ctx := context.Background()
	u := e.participant("editor@event.org")
	cl, err := runningCluster(t, e, clock, "evt-editor", u.UserName)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	mid := clock.Now().UnixMilli()
	edit := participantCluster("evt-editor-2", u.UserName)
	if _, err := e.w.Clusters.Edit(ctx, compute.EditCluster{ClusterId: cl.ClusterId, ClusterName: edit.ClusterName, SparkVersion: edit.SparkVersion,
		NodeTypeId: edit.NodeTypeId, NumWorkers: 0, PolicyId: edit.PolicyId, ApplyPolicyDefaultValues: true, AutoterminationMinutes: 60,
		DataSecurityMode: edit.DataSecurityMode, SingleUserName: u.UserName, SparkConf: edit.SparkConf, CustomTags: edit.CustomTags,
		ForceSendFields: []string{"NumWorkers"}}); err != nil {
		t.Fatalf("edit: %v", err)
	}
	clock.Advance(time.Second)
	if err := e.w.Clusters.Pin(ctx, compute.PinCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Fatal(err)
	}
	if err := e.w.Clusters.Unpin(ctx, compute.UnpinCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range eventsOf(t, e.w, compute.GetEvents{ClusterId: cl.ClusterId, Order: compute.GetEventsOrderAsc, StartTime: mid}) {
		types = append(types, string(ev.Type))
		if ev.Type == compute.EventTypeEdited && (ev.Details.Attributes.ClusterName != "evt-editor-2" || ev.Details.PreviousAttributes.ClusterName != "evt-editor") {
			t.Errorf("EDITED details = %+v, want new and previous attributes", ev.Details)
		}
	}
	if got := strings.Join(types, " "); got != "EDITED RESTARTING RUNNING DRIVER_HEALTHY PINNED UNPINNED" {
		t.Errorf("events since the edit = %s", got)
	}
	only := eventsOf(t, e.w, compute.GetEvents{ClusterId: cl.ClusterId, EventTypes: []compute.EventType{compute.EventTypeRunning}, EndTime: mid})
	if len(only) != 1 || only[0].Type != compute.EventTypeRunning {
		t.Errorf("RUNNING events before the edit = %+v, want the first run only", only)
	}
}

// TestClusterEvents_retentionAndPurge: events older than the retention are
// dropped; a purged or permanently deleted cluster takes its log with it.
func TestClusterEvents_retentionAndPurge(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now, EventRetention: time.Hour, ClusterRetention: 2 * time.Hour})
	ctx := context.Background()
	u := e.participant("old@event.org")
	cl, err := runningCluster(t, e, clock, "evt-old", u.UserName)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Minute) // before its 30 idle minutes
	if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(50 * time.Minute) // the creation is 70 min old, the terminate 50
	evs := eventsOf(t, e.w, compute.GetEvents{ClusterId: cl.ClusterId})
	if len(evs) != 1 || evs[0].Type != compute.EventTypeTerminating || evs[0].Details.Reason.Code != compute.TerminationReasonCodeUserRequest {
		t.Errorf("after an hour's retention = %+v, want only the user's TERMINATING 50 min ago", evs)
	}
	if got, _ := e.w.Clusters.EventsAll(ctx, compute.GetEvents{ClusterId: cl.ClusterId}); len(got) != 1 {
		t.Errorf("EventsAll = %d events, want 1", len(got))
	}

	clock.Advance(2 * time.Hour) // past the cluster retention: purged
	_, err = e.w.Clusters.EventsAll(ctx, compute.GetEvents{ClusterId: cl.ClusterId})
	wantErr(t, err, "Cannot access cluster "+cl.ClusterId, []error{apierr.ErrInvalidState})
	// The emulator's account of it outlives the purge: RUNNING 50 ms after
	// the create, terminated 1 s + 20 min after it.
	if r := e.runs()[cl.ClusterId]; r.State != "GONE" || r.Runs != 1 || r.RanSeconds != 1200.95 || r.GoneAt == 0 || r.ClusterName != "evt-old" {
		t.Errorf("runs of the purged cluster = %+v, want GONE, 1 run of 1200.95 s", r)
	}

	other, err := runningCluster(t, e, clock, "evt-other", u.UserName)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.w.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: other.ClusterId}); err != nil {
		t.Fatal(err)
	}
	_, err = e.w.Clusters.EventsAll(ctx, compute.GetEvents{ClusterId: other.ClusterId})
	wantErr(t, err, "Cluster "+other.ClusterId+" does not exist", []error{apierr.ErrInvalidParameterValue})
}

// TestClusterEvents_permissionsAndBusy: reading a log needs a level on the
// cluster; busy and keep-running work together; the control API refuses a
// stopped cluster and a bad duration.
func TestClusterEvents_permissionsAndBusy(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now, TimeScale: eventsScale})
	ctx := context.Background()
	u := e.participant("nosy@event.org")
	cl, err := runningCluster(t, e, clock, "evt-nosy", u.UserName)
	if err != nil {
		t.Fatal(err)
	}
	pw := e.workspaceClient(e.token(u.UserName), 1)
	_, err = pw.Clusters.EventsAll(ctx, compute.GetEvents{ClusterId: cl.ClusterId})
	wantErr(t, err, "does not have permission to view the events", []error{apierr.ErrPermissionDenied})
	e.grant(cl.ClusterId, u.UserName, compute.ClusterPermissionLevelCanAttachTo)
	if _, err := pw.Clusters.EventsAll(ctx, compute.GetEvents{ClusterId: cl.ClusterId}); err != nil {
		t.Errorf("events with CAN_ATTACH_TO: %v", err)
	}

	busy := func(body map[string]string) (int, map[string]any) {
		var out map[string]any
		st, b := e.raw("POST", "/emulator/v1/clusters/busy", testToken, body)
		_ = json.Unmarshal(b, &out)
		return st, out
	}
	if st, _ := busy(map[string]string{"cluster_id": cl.ClusterId, "duration": "soon"}); st != 400 {
		t.Errorf("busy with a bad duration = %d, want 400", st)
	}
	if st, _ := busy(map[string]string{"cluster_id": "0000-000000-nope", "duration": "1h"}); st != 400 {
		t.Errorf("busy of an unknown cluster = %d, want 400", st)
	}
	// A longer busy period extends, a shorter one does not shorten.
	_, a := busy(map[string]string{"cluster_id": cl.ClusterId, "duration": "2h"})
	_, b := busy(map[string]string{"cluster_id": cl.ClusterId, "duration": "1h"})
	if a["auto_terminates_at"] == nil || a["auto_terminates_at"] != b["auto_terminates_at"] {
		t.Errorf("busy 2h then 1h: deadlines %v then %v, want the 2h one kept", a["auto_terminates_at"], b["auto_terminates_at"])
	}
	// keep-running wins over any busy end; a terminate clears both.
	var kept map[string]any
	e.control("POST", "/emulator/v1/clusters/keep-running", map[string]string{"cluster_id": cl.ClusterId}, &kept)
	clock.Advance(24 * time.Hour / eventsScale)
	if c, _ := e.w.Clusters.GetByClusterId(ctx, cl.ClusterId); c.State != compute.StateRunning {
		t.Errorf("kept running a day: state %s", c.State)
	}
	if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if st, out := busy(map[string]string{"cluster_id": cl.ClusterId, "duration": "1h"}); st != 400 || out["error_code"] != "INVALID_STATE" {
		t.Errorf("busy of a TERMINATED cluster = %d %v, want 400 INVALID_STATE", st, out)
	}
	// Started again: 30 idle minutes after RUNNING (busy and keep-running gone).
	if _, err := e.w.Clusters.Start(ctx, compute.StartCluster{ClusterId: cl.ClusterId}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * time.Minute / eventsScale)
	if c, _ := e.w.Clusters.GetByClusterId(ctx, cl.ClusterId); c.State == compute.StateRunning {
		t.Errorf("restarted cluster 31 idle minutes later is still RUNNING")
	}
}

// runningCluster creates a participant's cluster and moves the clock past its
// start delay (a waiter would wait for ever on a manual clock).
func runningCluster(t *testing.T, e *env, clock *ManualClock, name, user string) (*compute.ClusterDetails, error) {
	t.Helper()
	w, err := e.w.Clusters.Create(context.Background(), participantCluster(name, user))
	if err != nil {
		return nil, err
	}
	clock.Advance(time.Second)
	return e.w.Clusters.GetByClusterId(context.Background(), w.ClusterId)
}

// TestClusterEvents_rateClass: clusters/events has its own bucket
// (cluster_events, 30/s [Est] as the Clusters API), shown in the config and
// enforced apart from the other cluster calls.
func TestClusterEvents_rateClass(t *testing.T) {
	cfg := setup(t, Options{RateLimits: "azure"}).emu.EffectiveConfig()
	if ep := cfg.Endpoints["clusters.events"]; ep.RateClass != "cluster_events" {
		t.Errorf("clusters.events rate class = %q, want cluster_events", ep.RateClass)
	}
	for _, c := range cfg.Classes {
		if c.Name == "cluster_events" && (c.RPS != 30 || c.Published) {
			t.Errorf("cluster_events = %+v, want 30/s, not published", c)
		}
	}

	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now, Limits: map[string]float64{"cluster_events": 1}})
	u := e.participant("fast@event.org")
	cl, err := runningCluster(t, e, clock, "evt-fast", u.UserName)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]string{"cluster_id": cl.ClusterId}
	if st, b := e.raw("POST", "/api/2.1/clusters/events", testToken, body); st != 200 {
		t.Fatalf("first events call = %d %s", st, b)
	}
	if st, b := e.raw("POST", "/api/2.1/clusters/events", testToken, body); st != 429 || !strings.Contains(string(b), "REQUEST_LIMIT_EXCEEDED") {
		t.Errorf("second events call in the same instant = %d %s, want 429 REQUEST_LIMIT_EXCEEDED", st, b)
	}
	if st, _ := e.raw("GET", "/api/2.1/clusters/get?cluster_id="+cl.ClusterId, testToken, nil); st != 200 {
		t.Errorf("clusters/get while events are throttled = %d, want 200 (another class)", st)
	}
}

// TestClusterEvents_surviveRestart: a restarted emulator answers the same log,
// including the transitions it had only computed (never journalled) when it
// was killed: they follow again from the stored deadlines.
func TestClusterEvents_surviveRestart(t *testing.T) {
	clock := NewManualClock()
	path := filepath.Join(t.TempDir(), "emu.jsonl")
	opts := Options{Now: clock.Now, TimeScale: eventsScale, StatePath: path}
	e := setup(t, opts)
	u := e.participant("phoenix@event.org")
	cl, err := runningCluster(t, e, clock, "evt-phoenix", u.UserName)
	if err != nil {
		t.Fatal(err)
	}
	if st := e.control("POST", "/emulator/v1/clusters/busy", map[string]string{"cluster_id": cl.ClusterId, "duration": "1h"}, nil); st != 200 {
		t.Fatalf("busy: %d", st)
	}
	clock.Advance(2 * time.Hour / eventsScale) // auto-terminated, computed on read only
	before := eventsOf(t, e.w, compute.GetEvents{ClusterId: cl.ClusterId, Order: compute.GetEventsOrderAsc})
	if n := len(before); n != 4 || before[3].Type != compute.EventTypeTerminating {
		t.Fatalf("before the restart %d events, want CREATING RUNNING DRIVER_HEALTHY TERMINATING", n)
	}

	// "kill -9": no Close.
	opts.Token, opts.AccountID, opts.WorkspaceID = testToken, testAccount, testWorkspace
	opts.ClusterStartDelay, opts.ClusterStopDelay = 50*time.Millisecond, 50*time.Millisecond
	restarted, err := New(opts)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer restarted.Close()
	srv := httptest.NewServer(restarted)
	defer srv.Close()
	e2 := &env{t: t, emu: restarted, srv: srv}
	e2.w = e2.workspaceClient(testToken, 2)
	after := eventsOf(t, e2.w, compute.GetEvents{ClusterId: cl.ClusterId, Order: compute.GetEventsOrderAsc})
	var want []wantEvent
	for _, ev := range before {
		w := wantEvent{typ: ev.Type, at: ev.Timestamp}
		if ev.Details != nil && ev.Details.Reason != nil {
			w.reason = ev.Details.Reason.Code
		}
		if ev.Details != nil {
			w.user = ev.Details.User
		}
		want = append(want, w)
	}
	checkEvents(t, after, want)
	if a, b := e.runs()[cl.ClusterId], e2.runs()[cl.ClusterId]; a != b || a.Runs != 1 || a.RanSeconds != (91*time.Minute).Seconds() {
		t.Errorf("runs before the restart %+v, after %+v; want equal, 1 run of 91 min (busy from its first emulated minute for 1 h, 30 idle)", a, b)
	}
}

// TestClusterEvents_busyWhilePending: a cluster marked busy while it starts
// counts its inactivity from the busy end when that is later than RUNNING.
func TestClusterEvents_busyWhilePending(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now, TimeScale: eventsScale, ClusterStartDelay: 5 * time.Minute})
	u := e.participant("early@event.org")
	t0 := clock.Now().UnixMilli()
	w, err := e.w.Clusters.Create(context.Background(), participantCluster("evt-early", u.UserName))
	if err != nil {
		t.Fatal(err)
	}
	var busy map[string]any
	if st := e.control("POST", "/emulator/v1/clusters/busy", map[string]string{"cluster_id": w.ClusterId, "duration": "1h"}, &busy); st != 200 || busy["state"] != "PENDING" || busy["auto_terminates_at"] != nil {
		t.Fatalf("busy while PENDING = %d %v, want 200, PENDING, no deadline yet", st, busy)
	}
	clock.Advance(2 * time.Hour / eventsScale)
	evs := eventsOf(t, e.w, compute.GetEvents{ClusterId: w.ClusterId, EventTypes: []compute.EventType{compute.EventTypeTerminating}})
	if want := t0 + scaledMs(time.Hour+30*time.Minute); len(evs) != 1 || evs[0].Timestamp != want {
		t.Errorf("TERMINATING events = %+v, want one at %d (1 h busy + 30 min idle)", evs, want)
	}
}

// TestClusterEvents_descWindowFrozen: next_page of a newest-first read
// carries the first page's end_time, so an event recorded while a client
// pages neither repeats nor shifts what the next page holds.
func TestClusterEvents_descWindowFrozen(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{Now: clock.Now})
	ctx := context.Background()
	id := manyEvents(t, e, clock, "moving", 2) // 11 events
	first := e.w.Clusters.Events(ctx, compute.GetEvents{ClusterId: id, Limit: 4})
	var seen []compute.ClusterEvent
	for i := 0; i < 4 && first.HasNext(ctx); i++ {
		ev, err := first.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, ev)
	}
	clock.Advance(time.Second)
	if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id}); err != nil { // a new TERMINATING
		t.Fatal(err)
	}
	rest, err := listing.ToSlice(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	seen = append(seen, rest...)
	if len(seen) != 11 || seen[0].Type != compute.EventTypeDriverHealthy || seen[10].Type != compute.EventTypeCreating {
		t.Errorf("paged newest first across a new event: %d events from %s to %s, want the 11 of the first page's instant", len(seen), seen[0].Type, seen[len(seen)-1].Type)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Timestamp > seen[i-1].Timestamp {
			t.Errorf("event %d at %d is newer than event %d at %d", i, seen[i].Timestamp, i-1, seen[i-1].Timestamp)
		}
	}
}
