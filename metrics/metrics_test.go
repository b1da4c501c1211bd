package metrics_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/cohort-dev/cohort/metrics"
)

func newMetrics(t *testing.T) *metrics.Metrics {
	t.Helper()
	m, err := metrics.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// scrape reads the handler's exposition the way Prometheus does.
func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, rec.Body)
	}
	return fams
}

// value sums the counter or histogram count of family over the series whose
// labels include want.
func value(fams map[string]*dto.MetricFamily, family string, want map[string]string) float64 {
	var sum float64
	f := fams[family]
	if f == nil {
		return 0
	}
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

func TestTransport_countsByClassAndCode(t *testing.T) {
	m := newMetrics(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/throttled" {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // connection refused: no status at all

	classify := func(r *http.Request) string {
		if r.URL.Path == "/unknown" {
			return ""
		}
		return "scim_write"
	}
	c := &http.Client{Transport: m.Transport(http.DefaultTransport, classify)}
	for _, u := range []string{srv.URL + "/ok", srv.URL + "/ok", srv.URL + "/throttled", srv.URL + "/unknown", gone.URL + "/x"} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
		}
	}

	fams := scrape(t, m)
	for _, tt := range []struct {
		class, code string
		want        float64
	}{
		{"scim_write", "200", 2},
		{"scim_write", "429", 1},
		{"scim_write", metrics.CodeError, 1},
		{metrics.ClassOther, "200", 1},
	} {
		if got := value(fams, "cohort_databricks_requests_total", map[string]string{"class": tt.class, "code": tt.code}); got != tt.want {
			t.Errorf("cohort_databricks_requests_total{class=%q,code=%q} = %v, want %v", tt.class, tt.code, got, tt.want)
		}
	}
}

func TestObserveWait(t *testing.T) {
	m := newMetrics(t)
	m.ObserveWait("scim_write", 200*time.Millisecond)
	m.ObserveWait("scim_write", 0)
	m.ObserveWait("clusters", time.Second)
	fams := scrape(t, m)
	if got := value(fams, "cohort_rate_limiter_wait_seconds", map[string]string{"class": "scim_write"}); got != 2 {
		t.Errorf("scim_write waits = %v, want 2", got)
	}
	h := fams["cohort_rate_limiter_wait_seconds"]
	var sum float64
	for _, s := range h.GetMetric() {
		sum += s.GetHistogram().GetSampleSum()
	}
	if sum != 1.2 {
		t.Errorf("sum of waits = %vs, want 1.2s", sum)
	}
}

// The SDK's metrics come out under their temporal_ names, counters as
// counters, timers as histograms in seconds with bounds fit for seconds.
func TestTemporalHandler_prometheusNames(t *testing.T) {
	m := newMetrics(t)
	h := m.TemporalHandler().WithTags(map[string]string{"task_queue": "cohort"})
	h.Counter("temporal_request").Inc(3)
	h.Timer("temporal_activity_schedule_to_start_latency").Record(1500 * time.Millisecond)
	h.Gauge("temporal_worker_task_slots_available").Update(7)
	fams := scrape(t, m)

	if got := value(fams, "temporal_request_total", map[string]string{"task_queue": "cohort"}); got != 3 {
		t.Errorf("temporal_request_total = %v, want 3", got)
	}
	if got := value(fams, "temporal_worker_task_slots_available", nil); got != 7 {
		t.Errorf("temporal_worker_task_slots_available = %v, want 7", got)
	}
	lat := fams["temporal_activity_schedule_to_start_latency_seconds"]
	if lat == nil || lat.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("temporal_activity_schedule_to_start_latency_seconds: %v, want a histogram", lat)
	}
	var le1, le2_5 uint64
	for _, b := range lat.GetMetric()[0].GetHistogram().GetBucket() {
		switch b.GetUpperBound() {
		case 1:
			le1 = b.GetCumulativeCount()
		case 2.5:
			le2_5 = b.GetCumulativeCount()
		}
	}
	if le1 != 0 || le2_5 != 1 {
		t.Errorf("1.5 s fell in buckets le=1: %d, le=2.5: %d; want 0 and 1", le1, le2_5)
	}
}

func TestInterceptor_countsStepsByOutcome(t *testing.T) {
	m := newMetrics(t)
	nonRetryable := []string{"InvalidInput"}
	run := func(name string, err error) {
		t.Helper()
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{
			m.Interceptor(nonRetryable).(interceptor.WorkerInterceptor),
		}})
		env.RegisterActivityWithOptions(func(context.Context) error { return err }, activity.RegisterOptions{Name: name})
		if _, got := env.ExecuteActivity(name); (got == nil) != (err == nil) {
			t.Fatalf("%s: error %v, want %v", name, got, err)
		}
	}
	run("CreateUser", nil)
	run("CreateUser", nil)
	run("CreateUser", temporal.NewApplicationError("slow down", "Throttled"))
	run("CreateUser", temporal.NewApplicationError("bad email", "InvalidInput")) // listed: final
	run("StopCluster", temporal.NewNonRetryableApplicationError("gone", "NotFound", nil))
	run("StopCluster", errors.New("plain"))

	fams := scrape(t, m)
	for _, tt := range []struct {
		step, outcome, errType string
		want                   float64
	}{
		{"CreateUser", metrics.OutcomeOK, "", 2},
		{"CreateUser", metrics.OutcomeRetryable, "Throttled", 1},
		{"CreateUser", metrics.OutcomeNonRetryable, "InvalidInput", 1},
		{"StopCluster", metrics.OutcomeNonRetryable, "NotFound", 1},
		{"StopCluster", metrics.OutcomeRetryable, "other", 1},
	} {
		labels := map[string]string{"step": tt.step, "outcome": tt.outcome, "error_type": tt.errType}
		if got := value(fams, "cohort_steps_completed_total", labels); got != tt.want {
			t.Errorf("cohort_steps_completed_total%v = %v, want %v", labels, got, tt.want)
		}
	}
}

// /healthz says whether the worker polls: 503 until SetReady(true), 200 then.
func TestHealthz(t *testing.T) {
	m, err := metrics.New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = m.Serve(ctx, ln) }()
	get := func() int {
		t.Helper()
		resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusServiceUnavailable {
		t.Errorf("before ready: %d, want 503", got)
	}
	m.SetReady(true)
	if got := get(); got != http.StatusOK {
		t.Errorf("ready: %d, want 200", got)
	}
}

// The usage gauges sum each participant's latest read: a participant read
// again replaces their earlier figures.
func TestObserveUsage(t *testing.T) {
	m := newMetrics(t)
	m.ObserveUsage("a@x.org", 2, false)
	m.ObserveUsage("b@x.org", 11, true)
	m.ObserveUsage("a@x.org", 3, false)
	fams := scrape(t, m)
	if got := value(fams, "cohort_cluster_hours_total", nil); got != 14 {
		t.Errorf("cohort_cluster_hours_total = %v, want 14", got)
	}
	if got := value(fams, "cohort_participants_over_budget", nil); got != 1 {
		t.Errorf("cohort_participants_over_budget = %v, want 1", got)
	}
}
