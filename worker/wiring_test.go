package main

import (
	"reflect"
	"runtime"
	"strings"
	"testing"

	"go.temporal.io/sdk/activity"

	"github.com/cohort-dev/cohort/activities"
	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/workflows"
)

// registration is one activity a fake worker was given.
type registration struct {
	queue, name, method string
}

// fakeWorker records what is registered on its queue.
type fakeWorker struct {
	queue string
	got   *[]registration
}

func (f fakeWorker) RegisterActivityWithOptions(fn any, o activity.RegisterOptions) {
	*f.got = append(*f.got, registration{queue: f.queue, name: o.Name, method: methodName(fn)})
}

// methodName is the Go method behind a method value ("CreateUser" for
// acts.CreateUser).
func methodName(fn any) string {
	full := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
	full = strings.TrimSuffix(full, "-fm")
	return full[strings.LastIndex(full, ".")+1:]
}

// fakeQueues are fake workers for every queue the worker polls.
func fakeQueues(got *[]registration) map[string]registrar {
	byQueue := map[string]registrar{}
	for _, q := range queues(config.Config{}, "test") {
		byQueue[q.name] = fakeWorker{queue: q.name, got: got}
	}
	return byQueue
}

// Every row of the wiring table is registered exactly once, on the queue
// the workflows schedule it on, with the method of the same name; nothing
// else is registered.
func TestRegisterActivities_everyRowOnItsQueue(t *testing.T) {
	var got []registration
	if err := registerActivities(fakeQueues(&got), activityMethods(&activities.Activities{})); err != nil {
		t.Fatal(err)
	}
	table := workflows.Activities()
	if len(got) != len(table) {
		t.Errorf("%d activities registered, the wiring table has %d rows", len(got), len(table))
	}
	for _, a := range table {
		var on []string
		for _, r := range got {
			if r.name != a.Name {
				continue
			}
			on = append(on, r.queue)
			if r.method != a.Name {
				t.Errorf("activity %s is registered with method %s", a.Name, r.method)
			}
		}
		if len(on) != 1 || on[0] != a.Queue {
			t.Errorf("activity %s registered on %v; want exactly on %s", a.Name, on, a.Queue)
		}
	}
	for _, r := range got {
		if !inTable(table, r.name) {
			t.Errorf("activity %s is registered on %s but is no row of the wiring table", r.name, r.queue)
		}
	}
}

func inTable(table []workflows.Activity, name string) bool {
	for _, a := range table {
		if a.Name == name {
			return true
		}
	}
	return false
}

// The worker refuses to start when the table and its methods or queues
// drift apart: the workflows would schedule an activity no worker runs.
func TestRegisterActivities_drift(t *testing.T) {
	first := workflows.Activities()[0]
	var step workflows.Activity // a row on a queue of its own
	for _, a := range workflows.Activities() {
		if a.Queue == workflows.AccountTaskQueue {
			step = a
		}
	}
	tests := []struct {
		name  string
		drift func(byQueue map[string]registrar, methods map[string]any)
		want  string
	}{
		{"method missing", func(_ map[string]registrar, m map[string]any) { delete(m, first.Name) }, "has no method"},
		{"method the table lacks", func(_ map[string]registrar, m map[string]any) { m["Unlisted"] = func() {} }, "no row in the wiring table"},
		{"queue not polled", func(q map[string]registrar, _ map[string]any) { delete(q, step.Queue) }, "does not poll"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []registration
			byQueue, methods := fakeQueues(&got), activityMethods(&activities.Activities{})
			tt.drift(byQueue, methods)
			err := registerActivities(byQueue, methods)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one saying %q", err, tt.want)
			}
		})
	}
}

// The main queue is the only one that runs workflows: the others take
// activity tasks only.
func TestQueues_workflowsOnlyOnTheMainQueue(t *testing.T) {
	qs := queues(config.Config{}, "test")
	if qs[0].name != workflows.TaskQueue || qs[0].options.DisableWorkflowWorker {
		t.Errorf("first queue %s (workflows disabled: %v); want %s with workflows", qs[0].name, qs[0].options.DisableWorkflowWorker, workflows.TaskQueue)
	}
	for _, q := range qs[1:] {
		if !q.options.DisableWorkflowWorker {
			t.Errorf("queue %s polls workflow tasks; only %s should", q.name, workflows.TaskQueue)
		}
	}
}
