package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

func TestFaults_appliedThen503OnUserCreate(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	e.control("POST", "/emulator/v1/faults", map[string]any{"endpoint": "scim.users.create", "mode": "applied_then_503", "count": 1}, nil)
	// The SDK retries the 503; the retry finds the user already created.
	_, err := e.a.Users.Create(ctx, iam.User{UserName: "twice@event.org"})
	wantErr(t, err, "already exists in this account", []error{apierr.ErrResourceConflict})
	got, err := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "twice@event.org"`})
	if err != nil || len(got) != 1 {
		t.Fatalf("users after applied-then-503 = %+v, %v; want exactly one to adopt", got, err)
	}
	st := e.emu.Stats()
	if st.Faults["scim.users.create"] != 1 || st.Requests["scim.users.create"]["503"] != 1 || st.Requests["scim.users.create"]["409"] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFaults_appliedThenResetOnClusterCreate(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	u := e.participant("dup@event.org")
	e.control("POST", "/emulator/v1/faults", map[string]any{"endpoint": "clusters.create", "mode": "applied_then_reset"}, nil)
	w, err := e.w.Clusters.Create(ctx, participantCluster("evt-dup", u.UserName))
	if err != nil {
		t.Fatalf("create after a reset: %v (the SDK should retry connection resets)", err)
	}
	all, err := e.w.Clusters.ListAll(ctx, compute.ListClustersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("clusters = %d, want 2 (the dropped answer's cluster and the retry's)", len(all))
	}
	found := false
	for _, c := range all {
		found = found || c.ClusterId == w.ClusterId
	}
	if !found {
		t.Errorf("returned cluster %s not listed", w.ClusterId)
	}
	if n := e.emu.Stats().Requests["clusters.create"]["0"]; n != 1 {
		t.Errorf("dropped connections recorded = %d, want 1", n)
	}
}

func TestFaults_queuedModes(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	tests := []struct {
		mode string
		is   error // nil: the SDK retries it away
	}{
		{"503", nil},
		{"reset", nil},
		{"429", nil},
		{"500", apierr.ErrInternalError},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			if st := e.control("POST", "/emulator/v1/faults", map[string]any{"endpoint": "clusters.spark_versions", "mode": tc.mode}, nil); st != 200 {
				t.Fatalf("queue fault: %d", st)
			}
			_, err := e.w.Clusters.SparkVersions(ctx)
			if tc.is == nil && err != nil {
				t.Errorf("%s: %v, want the SDK to retry", tc.mode, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%s: %v, want %v", tc.mode, err, tc.is)
			}
		})
	}
	if st := e.control("POST", "/emulator/v1/faults", map[string]any{"endpoint": "nope", "mode": "503"}, nil); st != 400 {
		t.Errorf("unknown endpoint: %d, want 400", st)
	}
	if st := e.control("POST", "/emulator/v1/faults", map[string]any{"endpoint": "clusters.get", "mode": "explode"}, nil); st != 400 {
		t.Errorf("unknown mode: %d, want 400", st)
	}
}

// faultTrace sends n requests to one endpoint and records which failed.
func faultTrace(t *testing.T, seed int64) []int {
	e := setup(t, Options{Faults: 0.3, Seed: seed})
	var trace []int
	for range 40 {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/2.1/clusters/spark-versions", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			trace = append(trace, 0)
			continue
		}
		resp.Body.Close()
		trace = append(trace, resp.StatusCode)
	}
	return trace
}

func TestFaults_randomAreReproducible(t *testing.T) {
	a, b, c := faultTrace(t, 7), faultTrace(t, 7), faultTrace(t, 8)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if reflect.DeepEqual(a, c) {
		t.Errorf("different seeds, same faults: %v", a)
	}
	failed := 0
	for _, s := range a {
		if s != 200 {
			failed++
		}
	}
	if failed == 0 || failed == len(a) {
		t.Errorf("%d of %d failed with p=0.3", failed, len(a))
	}
}

func TestRateLimits(t *testing.T) {
	e := setup(t, Options{Limits: map[string]float64{"scim_write": 0.01}})
	ctx := context.Background()
	a := e.accountClient(testToken, 1) // short SDK retry window so the 429 surfaces
	if _, err := a.Users.Create(ctx, iam.User{UserName: "first@event.org"}); err != nil {
		t.Fatalf("first create within burst: %v", err)
	}
	_, err := a.Users.Create(ctx, iam.User{UserName: "second@event.org"})
	wantErr(t, err, "token bucket limit has been exceeded", []error{apierr.ErrTooManyRequests, apierr.ErrRequestLimitExceeded})
	status, body := e.raw("DELETE", "/api/2.0/accounts/"+testAccount+"/scim/v2/Users/1", testToken, nil)
	if status != 429 || !strings.Contains(string(body), `"error_code":"REQUEST_LIMIT_EXCEEDED"`) {
		t.Errorf("raw delete: %d %s", status, body)
	}
	req, _ := http.NewRequest("DELETE", e.srv.URL+"/api/2.0/accounts/"+testAccount+"/scim/v2/Users/1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want seconds", ra)
	}
	// Other classes are not limited in "none" mode.
	for range 50 {
		if _, err := a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "first@event.org"`}); err != nil {
			t.Fatalf("list: %v", err)
		}
	}
	st := e.emu.Stats()
	if st.Throttled["scim.users.create"] == 0 || st.Throttled["scim.users.delete"] == 0 || st.Throttled["scim.users.list"] != 0 {
		t.Errorf("throttled = %v", st.Throttled)
	}
}

func TestRateLimits_azureConfig(t *testing.T) {
	e := setup(t, Options{RateLimits: "azure", Latency: "realistic", TimeScale: 1000, Limits: map[string]float64{"clusters": 12, "clusters.burst": 3}})
	var cfg Config
	if st := e.control("GET", "/emulator/v1/config", nil, &cfg); st != 200 {
		t.Fatalf("config: %d", st)
	}
	classes := map[string]RateClass{}
	for _, c := range cfg.Classes {
		classes[c.Name] = c
	}
	want := map[string][2]float64{"scim_write": {5, 5}, "scim_list": {4, 4}, "scim_get": {20, 20}, "scim_patch": {2, 2},
		"permissions_read": {100, 100}, "permissions_write": {30, 30}, "clusters": {12, 3}}
	for name, w := range want {
		c, ok := classes[name]
		if !ok || c.RPS != w[0] || float64(c.Burst) != w[1] {
			t.Errorf("class %s = %+v, want rps %v burst %v", name, c, w[0], w[1])
		}
	}
	if ep := cfg.Endpoints["assignments.put"]; ep.MaxMS != 3000 || ep.RateClass != "assignments" {
		t.Errorf("assignments.put = %+v", ep)
	}
	if cfg.TimeScale != 1000 || cfg.Clusters.StartTypicalMS != 50 || cfg.Clusters.StopMaxMS != 50 {
		t.Errorf("config = %+v", cfg)
	}
	realistic, err := New(Options{Token: "x", Latency: "realistic"})
	if err != nil {
		t.Fatal(err)
	}
	if c := realistic.EffectiveConfig().Clusters; c.StartMinMS != 180000 || c.StartMaxMS != 480000 || c.StopTypicalMS != 60000 {
		t.Errorf("realistic cluster timing = %+v", c)
	}
	if _, err := New(Options{Token: "x", Limits: map[string]float64{"warp": 1}}); err == nil {
		t.Errorf("unknown class accepted")
	}
	if _, err := New(Options{Token: "x", Latency: "slow"}); err == nil {
		t.Errorf("unknown latency mode accepted")
	}
}

func TestBadRequests(t *testing.T) {
	e := setup(t, Options{})
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown path", "GET", "/api/2.0/nothing", "", 404, "ENDPOINT_NOT_FOUND"},
		{"wrong method", "DELETE", "/api/2.1/clusters/list", "", 404, "ENDPOINT_NOT_FOUND"},
		{"malformed json", "POST", "/api/2.1/clusters/create", `{"cluster_name":`, 400, "MALFORMED_REQUEST"},
		{"json array", "POST", "/api/2.1/unity-catalog/schemas", `[1,2]`, 400, "MALFORMED_REQUEST"},
		{"trailing garbage", "POST", "/api/2.1/unity-catalog/schemas", `{"name":"x"} {}`, 400, "MALFORMED_REQUEST"},
		{"wrong field type", "POST", "/api/2.1/clusters/create", `{"spark_version":"15.4.x-scala2.12","node_type_id":"Standard_DS3_v2","num_workers":"two"}`, 400, "INVALID_PARAMETER_VALUE"},
		{"scim malformed", "POST", "/api/2.0/accounts/" + testAccount + "/scim/v2/Users", `{"userName":`, 400, "MALFORMED_REQUEST"},
		{"get without id", "GET", "/api/2.1/clusters/get", "", 400, "INVALID_PARAMETER_VALUE"},
		{"unknown cluster", "GET", "/api/2.1/clusters/get?cluster_id=x", "", 400, "INVALID_PARAMETER_VALUE"},
		{"schema list no catalog", "GET", "/api/2.1/unity-catalog/schemas", "", 400, "INVALID_PARAMETER_VALUE"},
		{"bad page token", "GET", "/api/2.1/clusters/list?page_token=zzz", "", 400, "INVALID_PARAMETER_VALUE"},
		{"trailing ?", "GET", "/api/2.0/policies/clusters/list?", "", 200, ""},
		{"control unknown", "GET", "/emulator/v1/nothing", "", 404, "ENDPOINT_NOT_FOUND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.raw(tc.method, tc.path, testToken, tc.body)
			if status != tc.status {
				t.Errorf("status = %d, want %d (%s)", status, tc.status, body)
			}
			if tc.code == "" {
				return
			}
			var ae apiError
			if err := json.Unmarshal(body, &ae); err != nil || ae.ErrorCode != tc.code || ae.Message == "" {
				t.Errorf("body = %s, want error_code %s with a message", body, tc.code)
			}
		})
	}
}

func TestRecoverFromPanic(t *testing.T) {
	e := setup(t, Options{})
	e.emu.routes = append([]*route{{method: "GET", pattern: []string{"boom"}, key: "boom", handle: func(*call) { panic("kaboom") }}}, e.emu.routes...)
	status, body := e.raw("GET", "/boom", testToken, nil)
	if status != 500 || !strings.Contains(string(body), `"error_code":"INTERNAL_ERROR"`) {
		t.Errorf("panic answered %d %s, want 500 JSON", status, body)
	}
	if status, _ := e.raw("GET", "/api/2.1/clusters/spark-versions", testToken, nil); status != 200 {
		t.Errorf("server unusable after a panic: %d", status)
	}
}

func TestControlAPI(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	e.participant("stats@event.org")
	if _, err := e.w.Clusters.SparkVersions(ctx); err != nil {
		t.Fatal(err)
	}
	var st Stats
	if code := e.control("GET", "/emulator/v1/stats", nil, &st); code != 200 {
		t.Fatalf("stats: %d", code)
	}
	if st.Requests["scim.users.create"]["201"] != 1 || st.Requests["assignments.put"]["200"] != 1 || st.Requests["wellknown"]["200"] < 1 {
		t.Errorf("requests = %v", st.Requests)
	}
	if st.Objects != (ObjectCounts{Users: 1, Assignments: 1, Catalogs: 2}) {
		t.Errorf("objects = %+v", st.Objects)
	}
	// Reads and writes are told apart per endpoint.
	if st.Writes["scim.users.create"]["201"] != 1 || st.Writes["assignments.put"]["200"] != 1 || st.WriteCount() != 2 {
		t.Errorf("writes = %v (%d)", st.Writes, st.WriteCount())
	}
	if _, ok := st.Reads["clusters.spark_versions"]; !ok || st.Reads["scim.users.create"] != nil || st.Writes["clusters.spark_versions"] != nil {
		t.Errorf("reads = %v", st.Reads)
	}
	if st, _ := e.raw("POST", "/api/2.1/clusters/resize", testToken, "{}"); st != 404 {
		t.Errorf("unknown POST: %d", st)
	}
	if got := e.emu.Stats(); got.Writes["unknown.write"]["404"] != 1 || got.WriteCount() != 3 {
		t.Errorf("an unknown POST is not counted as a write: %v", got.Writes)
	}
	var cfg Config
	e.control("GET", "/emulator/v1/config", nil, &cfg)
	if !cfg.Endpoints["clusters.pin"].Mutation || cfg.Endpoints["clusters.get"].Mutation || cfg.Strict.MaxPinnedClusters != 100 || cfg.Strict.ClusterRetention != "720h0m0s" {
		t.Errorf("config = %+v", cfg.Strict)
	}
	if _, ok := st.Requests["control"]; ok {
		t.Errorf("control calls counted among Databricks endpoints")
	}
	if code := e.control("POST", "/emulator/v1/stats/reset", nil, nil); code != 200 {
		t.Fatalf("reset: %d", code)
	}
	if got := e.emu.Stats(); len(got.Requests) != 0 || got.Objects.Users != 1 {
		t.Errorf("after reset = %+v", got)
	}
}
