package e2e

import (
	"context"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

// TestMetrics: a worker started with --metrics-addr serves the Temporal
// SDK's temporal_ series and Cohort's cohort_ series while a batch runs;
// afterwards its successful step counts are exactly the activity
// completions in the namespace's histories (each participant step once per
// participant), and its Databricks request counts by class and status are
// exactly what the emulator answered in the same run, including 429s and
// dropped connections.
func TestMetrics(t *testing.T) {
	t.Parallel()
	const n = 60
	s := newScenario(t, "metrics", "metrics.e2e.example", 0, 13)
	s.workerArgs = []string{"--metrics-addr", "127.0.0.1:0"}
	w := s.startWorker()
	line, err := w.waitLog(`"serving metrics"`, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"addr":"([^"]+)"`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no addr in the worker's log line %q", line)
	}
	url := "http://" + m[1] + "/metrics"

	file := s.writeRoster("metrics.csv", roster.Synthesize(n, 13, s.domain))
	want := s.participants(file)

	// From here on, every Databricks request the emulator answers is the
	// worker's: count both sides from zero.
	s.emu.control(t, http.MethodPost, "/stats/reset", nil, nil)
	before := scrapeMetrics(t, url)
	// Throttling and transient failures the counts must include.
	s.emu.queueFaults(t, "clusters.create", "429", 2)
	s.emu.queueFaults(t, "schemas.create", "503", 1)
	s.emu.queueFaults(t, "scim.users.create", "reset", 1)

	batch, _ := s.submit(0, time.Minute, file)

	// During the batch: both families are served as soon as steps complete.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		during := scrapeMetrics(t, url)
		if during.sum("cohort_steps_completed_total", map[string]string{"outcome": "ok"}) > 0 {
			t.Logf("during the batch: %v ok step completions, emulator holds %d clusters",
				during.sum("cohort_steps_completed_total", map[string]string{"outcome": "ok"}), s.emu.stats(t).Objects.Clusters)
			for _, name := range []string{"temporal_request_total", "temporal_activity_schedule_to_start_latency_seconds",
				"temporal_worker_task_slots_available", "cohort_databricks_requests_total", "cohort_rate_limiter_wait_seconds"} {
				if during[name] == nil {
					t.Errorf("during the batch, /metrics has no %s", name)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no step completed within 3m")
		}
		time.Sleep(200 * time.Millisecond)
	}

	waitBatch(t, s.tc, batch, 5*time.Minute)
	after := scrapeMetrics(t, url)
	emuStats := s.emu.stats(t)
	if q := s.emu.pendingFaults(t); len(q) != 0 {
		t.Errorf("faults not served: %v", q)
	}

	t.Run("temporal series", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			labels map[string]string
		}{
			{"temporal_activity_schedule_to_start_latency_seconds", map[string]string{"task_queue": workflows.AccountTaskQueue}},
			{"temporal_activity_execution_latency_seconds", map[string]string{"task_queue": workflows.ComputeTaskQueue}},
			{"temporal_workflow_task_schedule_to_start_latency_seconds", map[string]string{"task_queue": workflows.TaskQueue}},
			{"temporal_worker_task_slots_available", map[string]string{"worker_type": "ActivityWorker"}},
			{"temporal_request_total", map[string]string{"namespace": "metrics"}},
			{"temporal_workflow_completed_total", map[string]string{"workflow_type": workflows.ParticipantWorkflowName}},
		} {
			if after.sum(tt.name, tt.labels) <= 0 {
				t.Errorf("%s%v: no series or zero, want > 0 after the batch", tt.name, tt.labels)
			}
		}
		if got := after.sum("temporal_workflow_completed_total", map[string]string{"workflow_type": workflows.ParticipantWorkflowName}); got != n {
			t.Errorf("temporal_workflow_completed_total{workflow_type=%q} = %v, want %d", workflows.ParticipantWorkflowName, got, n)
		}
	})

	t.Run("steps match the histories", func(t *testing.T) {
		completed, participantSteps := activityCompletions(t, s.tc, s.ns)
		if len(participantSteps) == 0 {
			t.Fatalf("no activity in the participant workflows' histories")
		}
		for _, step := range participantSteps {
			if completed[step] != n {
				t.Errorf("history: %d completions of participant step %s, want %d (one per participant)", completed[step], step, n)
			}
		}
		got := map[string]float64{}
		for step := range completed {
			got[step] = after.sum("cohort_steps_completed_total", map[string]string{"step": step, "outcome": "ok"}) -
				before.sum("cohort_steps_completed_total", map[string]string{"step": step, "outcome": "ok"})
		}
		for _, step := range after.labelValues("cohort_steps_completed_total", "step") {
			if _, ok := completed[step]; !ok {
				got[step] = after.sum("cohort_steps_completed_total", map[string]string{"step": step, "outcome": "ok"})
			}
		}
		for step, c := range got {
			if c != float64(completed[step]) {
				t.Errorf("cohort_steps_completed_total{step=%q,outcome=\"ok\"} = %v, want %d (the histories' completions)", step, c, completed[step])
			}
		}
		t.Logf("ok completions by step: %v; participant steps: %v", completed, participantSteps)
	})

	t.Run("requests match the emulator", func(t *testing.T) {
		wantReq := map[[2]string]float64{}
		for endpoint, byCode := range emuStats.Requests {
			class, ok := endpointClass[endpoint]
			if !ok {
				t.Errorf("emulator endpoint %s has no class in this test's table", endpoint)
			}
			for code, c := range byCode {
				if code == "0" {
					code = "error"
				}
				wantReq[[2]string{class, code}] += float64(c)
			}
		}
		gotReq := map[[2]string]float64{}
		for _, class := range after.labelValues("cohort_databricks_requests_total", "class") {
			for _, code := range after.labelValues("cohort_databricks_requests_total", "code") {
				l := map[string]string{"class": class, "code": code}
				if d := after.sum("cohort_databricks_requests_total", l) - before.sum("cohort_databricks_requests_total", l); d != 0 {
					gotReq[[2]string{class, code}] = d
				}
			}
		}
		if !maps.Equal(gotReq, wantReq) {
			t.Errorf("cohort_databricks_requests_total by class, code:\n got  %v\n want %v (the emulator's stats)", gotReq, wantReq)
		}
		if got := gotReq[[2]string{"clusters", "429"}]; got < 2 {
			t.Errorf("clusters 429s counted: %v, want >= 2 (injected)", got)
		}
		if got := gotReq[[2]string{"scim_write", "error"}]; got < 1 {
			t.Errorf("scim_write dropped connections counted: %v, want >= 1 (injected)", got)
		}
		waits := after.sum("cohort_rate_limiter_wait_seconds", map[string]string{"class": "scim_write"}) -
			before.sum("cohort_rate_limiter_wait_seconds", map[string]string{"class": "scim_write"})
		if waits < n {
			t.Errorf("cohort_rate_limiter_wait_seconds{class=scim_write} counted %v waits, want >= %d (one per user create)", waits, n)
		}
	})

	s.expectAllOK(batch, want)
}

// endpointClass maps the emulator's endpoint keys to the API classes
// Cohort paces and labels its requests with.
var endpointClass = map[string]string{
	"scim.users.create": "scim_write", "scim.users.delete": "scim_write",
	"scim.users.list": "scim_list", "scim.users.get": "scim_get",
	"assignments.put": "assignments", "assignments.delete": "assignments", "assignments.list": "assignments", "assignments.permissions": "assignments",
	"catalogs.get": "unity_catalog", "catalogs.list": "unity_catalog", "catalogs.create": "unity_catalog",
	"schemas.create": "unity_catalog", "schemas.get": "unity_catalog", "schemas.list": "unity_catalog", "schemas.delete": "unity_catalog",
	"grants.get": "unity_catalog", "grants.update": "unity_catalog",
	"clusters.create": "clusters", "clusters.get": "clusters", "clusters.list": "clusters", "clusters.delete": "clusters",
	"clusters.permanent_delete": "clusters", "clusters.start": "clusters", "clusters.spark_versions": "clusters", "clusters.list_node_types": "clusters",
	"policies.list": "clusters", "policies.get": "clusters", "policy_families.get": "clusters",
	"permissions.get": "permissions_read", "permissions.levels": "permissions_read",
	"permissions.update": "permissions_write", "permissions.set": "permissions_write",
	"scim.me": "other", "wellknown": "other", "unknown": "other",
}

// exposition is one scrape of /metrics.
type exposition map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, url string) exposition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// sum adds up the counters, gauges or histogram counts of family over the
// series whose labels include want.
func (e exposition) sum(family string, want map[string]string) float64 {
	var total float64
	for _, m := range e[family].GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// labelValues lists the values label takes in family.
func (e exposition) labelValues(family, label string) []string {
	seen := map[string]bool{}
	for _, m := range e[family].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				seen[l.GetValue()] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// activityCompletions reads every run's history in the namespace and counts
// ActivityTaskCompleted events by activity type; participantSteps are the
// activity types the participant workflows ran, whatever they are called.
func activityCompletions(t *testing.T, tc client.Client, ns string) (completed map[string]int, participantSteps []string) {
	t.Helper()
	completed = map[string]int{}
	steps := map[string]bool{}
	var token []byte
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ns, PageSize: 1000, NextPageToken: token})
		cancel()
		if err != nil {
			t.Fatalf("list workflows in %s: %v", ns, err)
		}
		for _, e := range resp.GetExecutions() {
			if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				t.Fatalf("workflow %s still running after the batch", e.GetExecution().GetWorkflowId())
			}
			participant := e.GetType().GetName() == workflows.ParticipantWorkflowName
			scheduled := map[int64]string{}
			it := tc.GetWorkflowHistory(context.Background(), e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatalf("history of %s: %v", e.GetExecution().GetWorkflowId(), err)
				}
				if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
					scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
					if participant {
						steps[a.GetActivityType().GetName()] = true
					}
				}
				if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
					completed[scheduled[a.GetScheduledEventId()]]++
				}
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	if completed[""] != 0 {
		t.Fatalf("%d completions of activities never scheduled", completed[""])
	}
	return completed, slices.Sorted(maps.Keys(steps))
}
