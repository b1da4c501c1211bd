package workflows

// The earlier participant shape: the seven steps as two activities,
// ProvisionAccess (steps 1-4) and ProvisionCluster (steps 5-7). A
// participant run started by a worker of that shape records no
// sevenActivities marker; on an upgraded worker it replays, and goes on, as
// two activities. Everything of that shape in this package is in this file
// (the same in activities/legacy.go and wire/legacy.go; the worker registers
// the two activities from the table below). TestReplay keeps it honest: it
// replays testdata/participant.json, recorded by that shape.
//
// When to delete it: once no participant run is open that started before
// the seven-activities marker, that is, before the first worker with the
// seven activities was deployed (runs started since record the marker).
// Participant runs end within the participant timeout (hours), so in
// practice a day after every worker was upgraded. To check, with the
// deployment's time in RFC 3339, expect no rows:
//
//	temporal workflow list --query "WorkflowType = 'Participant' AND ExecutionStatus = 'Running' AND StartTime < '2026-01-01T00:00:00Z'"
//
// Then delete this file, activities/legacy.go, wire/legacy.go and the two
// rows' methods in worker/main.go (activityMethods; the wiring tests fail
// until all go together); in ParticipantWorkflow keep the GetVersion call
// (runs recorded since carry its marker) with its minimum raised to 1
// (GetVersion(ctx, sevenActivities, 1, 1)) and no DefaultVersion branch;
// and delete testdata/participant.json, the one history of that shape (the
// replay test reads every file in testdata/). Two things stay: PriorRuns
// (activities/offboard.go) reads ProvisionAccess results of closed runs,
// which the namespace keeps until its retention ends; and the Recheck
// fields of BatchInput and ChunkInput (batch.go, chunk.go), of an earlier
// era again (submit --recheck), go by the same check over open Batch and
// Chunk runs started before starter reconcile replaced it.

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// sevenActivities is the change that split the participant's two activities
// (access, cluster) into one activity per step. Runs recorded before it
// (version DefaultVersion) replay, and go on, as two activities.
const sevenActivities = "seven-activities"

// legacyActivities are the earlier shape's rows of the wiring table. Both
// heartbeat all along, so a worker killed mid-step (or a completion lost
// while the Temporal server was down) is retried within the heartbeat
// timeout, not after StartToClose. ProvisionAccess (user, assignment,
// schema, grants) runs on the queue the server paces to the SCIM write rate;
// ProvisionCluster (it may wait for the clusters rate or repeat a
// terminate) on the compute queue, resuming at the recorded cluster.
var legacyActivities = []Activity{
	{Name: wire.ProvisionAccessName, Queue: AccountTaskQueue, StartToClose: 5 * time.Minute, Heartbeat: 30 * time.Second},
	{Name: wire.ProvisionClusterName, Queue: ComputeTaskQueue, StartToClose: 20 * time.Minute, Heartbeat: 30 * time.Second},
}

// participantTwoActivities is the participant workflow as it was before
// sevenActivities: the seven steps as two activities, access and cluster. It
// runs only for histories recorded by that shape.
func participantTwoActivities(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
	p := in.Participant
	res := ParticipantResult{Email: p.Email, DisplayName: p.DisplayName}

	var access wire.ProvisionAccessResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activityOptions(wire.ProvisionAccessName, in.StepTimeout, "")),
		wire.ProvisionAccessName, wire.ProvisionAccessInput{Participant: p, Catalog: in.Catalog}).Get(ctx, &access)
	if err != nil {
		return res, fail(p, wire.StepCreateUser, err)
	}
	res.UserID, res.Schema, res.UserCreated = access.UserID, access.Schema, access.UserCreated
	if access.UserCreated {
		res.CreatedUserID = access.UserID
	}

	var cluster wire.ProvisionClusterResult
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activityOptions(wire.ProvisionClusterName, in.StepTimeout, "")),
		wire.ProvisionClusterName, wire.ProvisionClusterInput{Participant: p, Spec: in.Cluster, BatchID: in.BatchID,
			Lookup: !access.UserCreated}).Get(ctx, &cluster)
	if err != nil {
		return res, fail(p, wire.StepCreateCluster, err)
	}
	res.ClusterID, res.ClusterURL = cluster.ClusterID, cluster.URL

	return res, nil
}

// fail turns an error of the earlier shape's activities into the
// participant's failure: the step comes from the activity error's details
// when it has them (the activity knows which of its steps failed), else from
// the heartbeat of an activity that timed out (the step it was in), else the
// activity's first step. A step that gave up at
// its timeout says so, with the last attempt's reason.
func fail(p roster.Participant, step string, err error) error {
	reason := err.Error()
	detailed := false
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		reason = appErr.Message()
		var s string
		if appErr.HasDetails() && appErr.Details(&s) == nil && s != "" {
			step, detailed = s, true
		}
	}
	// Retries that ran into the step timeout end either in a timeout (that
	// wraps the last attempt's error) or in the last attempt's error with
	// retry state TIMEOUT: both are looked for apart.
	var timeoutErr *temporal.TimeoutError
	var actErr *temporal.ActivityError
	switch {
	case errors.As(err, &timeoutErr):
		reason = "gave up after the step timeout: " + lastFailure(timeoutErr)
		var hb struct {
			Step string `json:"step"`
		}
		if !detailed && timeoutErr.HasLastHeartbeatDetails() && timeoutErr.LastHeartbeatDetails(&hb) == nil && hb.Step != "" {
			step = hb.Step
		}
	case errors.As(err, &actErr) && actErr.RetryState() == enumspb.RETRY_STATE_TIMEOUT:
		reason = "gave up after the step timeout: " + reason
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("provision %s: %s: %s", p.Email, step, reason),
		ParticipantFailedError, nil, StepFailure{Step: step, Reason: reason})
}
