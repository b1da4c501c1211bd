// Package metrics is the worker's Prometheus endpoint: one registry holding
// the Temporal SDK's own metrics (temporal_*, through the SDK's OpenTelemetry
// contrib and OpenTelemetry's Prometheus exporter) and Cohort's (cohort_*):
//
//	cohort_steps_completed_total{step, outcome, error_type}
//	    one per activity execution (attempt) that ended, counted by a worker
//	    interceptor: step is the activity type, outcome is ok, retryable or
//	    non_retryable, error_type the Temporal application error type
//	    ("" when ok; "canceled", "timeout" or "other" for errors that are not
//	    application errors).
//	cohort_databricks_requests_total{class, code}
//	    one per HTTP attempt the Databricks SDK made (its own retries
//	    included): class is the API class Cohort paces (scim_write, ...,
//	    "other"), code the HTTP status ("429", "200", ...) or "error" when no
//	    response arrived (connection refused or reset, timeout).
//	cohort_rate_limiter_wait_seconds{class}
//	    time a call spent in Cohort's client-side token bucket before it was
//	    sent, a histogram.
//	cohort_cluster_hours_total
//	    the participants' cluster run time in hours, as this worker's usage
//	    reads last found it (a gauge: the ledger's totals, which only grow).
//	cohort_participants_over_budget
//	    how many of the participants this worker read are past their budget.
//
// The two usage gauges sum the participants this worker's usage reads
// found since it started; with several workers each reports those it read
// (take the max over workers, or run the usage batch on one).
//
// The package owns nothing but the collectors and their wiring; the worker
// hands the pieces to the Temporal client, the Databricks clients and the
// activities' limiter.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// Metrics holds the registry and Cohort's collectors. Build it with New.
type Metrics struct {
	registry    *prometheus.Registry
	provider    *sdkmetric.MeterProvider
	temporal    client.MetricsHandler
	steps       *prometheus.CounterVec
	requests    *prometheus.CounterVec
	limiterWait *prometheus.HistogramVec
	ready       atomic.Bool

	usageMu    sync.Mutex
	usageSeen  map[string]participantUsage
	hours      prometheus.Gauge
	overBudget prometheus.Gauge
}

// participantUsage is what the usage gauges last heard of one participant.
type participantUsage struct {
	hours float64
	over  bool
}

// ObserveUsage records one participant's usage as a read found it.
func (m *Metrics) ObserveUsage(email string, hours float64, over bool) {
	m.usageMu.Lock()
	defer m.usageMu.Unlock()
	if m.usageSeen == nil {
		m.usageSeen = map[string]participantUsage{}
	}
	m.usageSeen[email] = participantUsage{hours: hours, over: over}
	total, n := 0.0, 0
	for _, u := range m.usageSeen {
		total += u.hours
		if u.over {
			n++
		}
	}
	m.hours.Set(total)
	m.overBudget.Set(float64(n))
}

// SetReady says whether the worker polls its task queues: /healthz answers
// 200 when it does, 503 before (and after it began to stop).
func (m *Metrics) SetReady(ready bool) { m.ready.Store(ready) }

// health answers /healthz for a container's health check or a load balancer.
func (m *Metrics) health(w http.ResponseWriter, _ *http.Request) {
	if !m.ready.Load() {
		http.Error(w, "not polling", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Outcome label values of cohort_steps_completed_total.
const (
	OutcomeOK           = "ok"
	OutcomeRetryable    = "retryable"
	OutcomeNonRetryable = "non_retryable"
)

// CodeError is the code label of a Databricks request that got no response.
const CodeError = "error"

// ClassOther is the class label of a request outside every paced API class.
const ClassOther = "other"

// secondsBuckets are the histogram bounds, in seconds, of every duration
// here and in the Temporal SDK: from a millisecond (a local token bucket, a
// fast poll) to ten minutes (a step's retries, a backlog on the task queue).
var secondsBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// New builds the registry with the Go runtime and process collectors,
// Cohort's collectors and the Temporal SDK's metrics.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cohort_steps_completed_total",
			Help: "Activity executions (attempts) that ended, by activity type (step), outcome (ok, retryable, non_retryable) and application error type.",
		}, []string{"step", "outcome", "error_type"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cohort_databricks_requests_total",
			Help: `Databricks HTTP attempts, SDK retries included, by API class and status code ("error": no response).`,
		}, []string{"class", "code"}),
		limiterWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cohort_rate_limiter_wait_seconds",
			Help:    "Time a Databricks call waited in Cohort's client-side rate limiter, by API class.",
			Buckets: secondsBuckets,
		}, []string{"class"}),
		hours: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cohort_cluster_hours_total",
			Help: "Participants' cluster run time in hours, as the usage reads of this worker last found it (the ledger's totals).",
		}),
		overBudget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cohort_participants_over_budget",
			Help: "Participants past their cluster-hours budget, among those the usage reads of this worker found.",
		}),
	}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.steps, m.requests, m.limiterWait, m.hours, m.overBudget,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}

	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	m.provider = sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exporter),
		// The SDK's timers are histograms in seconds; OpenTelemetry's default
		// bounds (0 to 10,000) are meant for milliseconds.
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: secondsBuckets}},
		)),
	)
	m.temporal = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                m.provider.Meter("temporal-sdk-go"),
		UseMonotonicCounters: true,
		OnError:              func(error) {}, // a metric the exporter refuses is dropped, never a crash
	})
	return m, nil
}

// TemporalHandler is the client.Options.MetricsHandler for the SDK's metrics.
func (m *Metrics) TemporalHandler() client.MetricsHandler { return m.temporal }

// Handler serves the registry in Prometheus' exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Serve serves Handler at /metrics, and the worker's health at /healthz, on
// ln until ctx ends.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", m.health)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Close flushes nothing (Prometheus pulls) but releases the meter provider.
func (m *Metrics) Close() error { return m.provider.Shutdown(context.Background()) }

// ObserveWait records one wait in the client-side rate limiter; it fits
// activities.Limits' observer.
func (m *Metrics) ObserveWait(class string, d time.Duration) {
	m.limiterWait.WithLabelValues(class).Observe(d.Seconds())
}

// Transport counts every request that base carries by API class (classify
// names it; "" counts as ClassOther) and status code.
func (m *Metrics) Transport(base http.RoundTripper, classify func(*http.Request) string) http.RoundTripper {
	return &transport{base: base, classify: classify, requests: m.requests}
}

type transport struct {
	base     http.RoundTripper
	classify func(*http.Request) string
	requests *prometheus.CounterVec
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	class := t.classify(r)
	if class == "" {
		class = ClassOther
	}
	resp, err := t.base.RoundTrip(r)
	code := CodeError
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	t.requests.WithLabelValues(class, code).Inc()
	return resp, err
}
