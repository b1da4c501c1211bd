package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/wire"
)

// Activity is one row of the wiring table: an activity's name (a wire
// contract, see package wire), the task queue the workflows schedule it on
// and the worker registers it on, and the options fixed per activity. The
// worker (worker/main.go) maps each name to its Go method and registers it
// on Queue; a worker test and a workflows test fail when the two drift, so
// an activity is never scheduled on a queue no worker polls for it.
type Activity struct {
	Name  string
	Queue string
	// StartToClose bounds one attempt; zero: the workflow sets it where it
	// schedules the activity (AwaitParticipant: the participant timeout).
	StartToClose time.Duration
	// Heartbeat, when set, is the HeartbeatTimeout: the activity can wait
	// (its turn at a scarce rate, a fresh user, a terminate) and
	// heartbeats, so a killed worker is noticed within it.
	Heartbeat time.Duration
	// Retry is the activity's retry policy; nil: retryPolicy().
	Retry func() *temporal.RetryPolicy
}

// activityTable is every activity Cohort runs, the earlier shape's
// (participant_legacy.go) included. Light activities (reads of Temporal,
// the roster store and whole-event reads) run on TaskQueue with the
// workflows; each participant step on the queue of the Databricks API it
// calls (see names.go).
var activityTable = slices.Concat([]Activity{
	// Batch, chunk and plan workflows.
	{Name: wire.SetupBatchName, Queue: TaskQueue, StartToClose: 5 * time.Minute},
	{Name: wire.LoadChunkName, Queue: TaskQueue, StartToClose: time.Minute, Retry: loadChunkRetry},
	{Name: wire.AwaitParticipantName, Queue: TaskQueue, Heartbeat: time.Minute, Retry: awaitRetry},
	{Name: wire.PlanWorkspaceName, Queue: TaskQueue, StartToClose: 5 * time.Minute},
	{Name: wire.ReadEventName, Queue: TaskQueue, StartToClose: 30 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.PrefetchSurveyName, Queue: TaskQueue, StartToClose: 30 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.SurveyChunkName, Queue: TaskQueue, StartToClose: 30 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.PlanOffboardName, Queue: TaskQueue, StartToClose: 5 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.PlanOffboardChunkName, Queue: TaskQueue, StartToClose: 30 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.UsageChunkName, Queue: TaskQueue, StartToClose: 30 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.PriorRunsName, Queue: TaskQueue, StartToClose: 2 * time.Minute},

	// A participant's seven steps.
	{Name: wire.CreateUserName, Queue: AccountTaskQueue, StartToClose: 2 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.AssignWorkspaceName, Queue: AssignmentTaskQueue, StartToClose: 2 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.CreateSchemaName, Queue: CatalogTaskQueue, StartToClose: singleCallTimeout},
	{Name: wire.GrantName, Queue: CatalogTaskQueue, StartToClose: singleCallTimeout},
	{Name: wire.CreateClusterName, Queue: ComputeTaskQueue, StartToClose: 10 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.SetPermissionName, Queue: ComputeTaskQueue, StartToClose: singleCallTimeout},
	{Name: wire.StopClusterName, Queue: ComputeTaskQueue, StartToClose: 20 * time.Minute, Heartbeat: heartbeatTimeout},

	// Offboard steps and the budget.
	{Name: wire.RemoveAssignmentName, Queue: AssignmentTaskQueue, StartToClose: 2 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.RemoveClustersName, Queue: ComputeTaskQueue, StartToClose: 10 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.RevokeGrantsName, Queue: CatalogTaskQueue, StartToClose: 2 * time.Minute},
	{Name: wire.DropSchemaName, Queue: CatalogTaskQueue, StartToClose: 2 * time.Minute},
	{Name: wire.RemoveUserName, Queue: AccountTaskQueue, StartToClose: 2 * time.Minute, Heartbeat: heartbeatTimeout},
	{Name: wire.EnforceBudgetName, Queue: ComputeTaskQueue, StartToClose: 2 * time.Minute},
}, legacyActivities)

// Activities returns the wiring table (a copy): what the worker registers,
// queue by queue.
func Activities() []Activity { return slices.Clone(activityTable) }

// activityNamed is name's row. A name missing from the table is a
// programming error that the wiring tests catch before any run.
func activityNamed(name string) Activity {
	for _, a := range activityTable {
		if a.Name == name {
			return a
		}
	}
	panic("workflows: activity " + name + " is not in the wiring table (wiring.go)")
}

// activityOptions are name's options from the table, with stepTimeout as
// the ScheduleToCloseTimeout (queueing plus all retries) and summary shown
// in the Web UI.
func activityOptions(name string, stepTimeout time.Duration, summary string) workflow.ActivityOptions {
	a := activityNamed(name)
	retry := retryPolicy()
	if a.Retry != nil {
		retry = a.Retry()
	}
	return workflow.ActivityOptions{
		TaskQueue:              a.Queue,
		StartToCloseTimeout:    a.StartToClose,
		HeartbeatTimeout:       a.Heartbeat,
		ScheduleToCloseTimeout: stepTimeout,
		RetryPolicy:            retry,
		Summary:                summary,
	}
}

// loadChunkRetry: a store that stays unreadable fails the chunk (its
// participants counted failed at load_roster) at the step timeout rather
// than retrying forever; retries come at most every 30 s.
func loadChunkRetry() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{MaximumInterval: 30 * time.Second, NonRetryableErrorTypes: wire.NonRetryable}
}

// awaitRetry: waiting for another run retries whatever ends the wait, up to
// the participant timeout.
func awaitRetry() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{MaximumInterval: time.Minute}
}
