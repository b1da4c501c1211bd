package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// ParticipantInput is everything one participant's provisioning needs. The
// batch-wide parts (catalog, resolved cluster spec) were resolved once by
// SetupBatch.
type ParticipantInput struct {
	BatchID     string             `json:"batch_id"`
	Participant roster.Participant `json:"participant"`
	Catalog     string             `json:"catalog"`
	Cluster     wire.ClusterSpec   `json:"cluster"`
	// StepTimeout bounds each activity's retries (ScheduleToClose).
	StepTimeout time.Duration `json:"step_timeout"`
	// Mode is wire.ModeProvision (""), wire.ModeReconcile (reconcile.go) or
	// wire.ModeOffboard (offboard.go, with Offboard's choices).
	Mode     string               `json:"mode,omitempty"`
	Offboard wire.OffboardOptions `json:"offboard,omitempty"`
	// Survey, in a reconcile, is the drift the batch's read found for this
	// participant: the run repairs only that. Nil in reconciles started
	// before the read existed, which re-assert every step.
	Survey *wire.Survey `json:"survey,omitempty"`
	// ClustersListed says the batch listed the clusters once
	// (clustersListedOnce) and Tagged are the ids it found tagged for this
	// participant: create_cluster's lookup and remove_clusters read those
	// (and the recorded id) by id and list nothing. These are inputs of
	// the steps, not steps: a run recorded without them replays unchanged.
	ClustersListed bool     `json:"clusters_listed,omitempty"`
	Tagged         []string `json:"tagged,omitempty"`
}

// ParticipantResult is what an organizer sends to the participant. It is
// wire.Provisioned, so that AwaitParticipant can hand back an earlier run's
// result typed.
type ParticipantResult = wire.Provisioned

// ParticipantFailedError is the error type a participant workflow fails with;
// its details are a StepFailure.
const ParticipantFailedError = "ParticipantFailed"

// StepFailure says where and why a participant failed.
type StepFailure = wire.StepFailure

// Activity options: each activity's queue and timeouts are its row of the
// wiring table (wiring.go); the helpers below add the Web UI summary.
// Every activity has a StartToCloseTimeout, longer than the SDK's own retry window (30 s) plus a
// wait at the client-side rate limiter; the ScheduleToCloseTimeout (the step
// timeout) bounds queueing behind rate limits plus all retries. Activities
// that can wait (for their turn at a scarce rate, for a fresh user to become
// visible, for a terminate to show) heartbeat, so a worker killed mid-step is
// noticed within HeartbeatTimeout; the others are single calls that finish in
// well under their StartToCloseTimeout. Non-retryable error types come from
// wire.NonRetryable.
func retryPolicy() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        2 * time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		NonRetryableErrorTypes: wire.NonRetryable,
	}
}

const heartbeatTimeout = 30 * time.Second

// createUserOptions: the account queue, which the server paces to the SCIM
// write rate across all workers; it may wait its turn at the local bucket.
func createUserOptions(st time.Duration, email string) workflow.ActivityOptions {
	return activityOptions(wire.CreateUserName, st, "create account user "+email)
}

// assignWorkspaceOptions: it waits for a fresh user to become visible.
func assignWorkspaceOptions(st time.Duration, email string) workflow.ActivityOptions {
	return activityOptions(wire.AssignWorkspaceName, st, "assign "+email+" to the workspace (USER)")
}

// singleCallTimeout bounds the steps that make one or a few calls and do not
// heartbeat: the SDK's own retry window (30 s) plus a wait at the local rate
// limiter. It is also how long a participant waits when the worker running
// such a step dies, before the step is retried elsewhere.
const singleCallTimeout = time.Minute

func createSchemaOptions(st time.Duration, p roster.Participant, catalog string) workflow.ActivityOptions {
	return activityOptions(wire.CreateSchemaName, st, "create schema "+catalog+"."+p.Schema+" for "+p.Email)
}

func grantOptions(st time.Duration, email, schema string) workflow.ActivityOptions {
	return activityOptions(wire.GrantName, st, "grant "+email+" the catalog, "+schema+" and the shared data")
}

// createClusterOptions: it may page through the clusters under the policy.
func createClusterOptions(st time.Duration, p roster.Participant) workflow.ActivityOptions {
	return activityOptions(wire.CreateClusterName, st, "create cluster "+p.ClusterName+" for "+p.Email)
}

func setPermissionOptions(st time.Duration, email, clusterID string) workflow.ActivityOptions {
	return activityOptions(wire.SetPermissionName, st, "let "+email+" restart cluster "+clusterID+" (CAN_RESTART)")
}

// stopClusterOptions: it terminates again a cluster that still reads as running.
func stopClusterOptions(st time.Duration, email, clusterID string) workflow.ActivityOptions {
	return activityOptions(wire.StopClusterName, st, "stop cluster "+clusterID+" of "+email)
}

// maxClusterRuns bounds how often a participant's cluster is created (or
// looked up) again after its permission or stop step found it gone.
const maxClusterRuns = 2

// ParticipantWorkflow gives one participant a ready environment: account user
// assigned to the workspace, schema with grants, and a stopped personal cluster
// they may restart. Each of the seven steps is its own activity, so the
// history (and the Web UI) shows which step is slow, retrying or failing, and
// a retry repeats only the step that failed. Steps that do not depend on each
// other run together:
//
//	create user ──> assign workspace ──┬──> grant (needs the schema too)
//	create schema ─────────────────────┘└─> create cluster ──> set permission
//	                                                       └──> stop cluster
//
// Every step is idempotent, and a failure names its step.
func ParticipantWorkflow(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
	if in.StepTimeout <= 0 {
		in.StepTimeout = 30 * time.Minute
	}
	switch in.Mode {
	case wire.ModeReconcile:
		return reconcileParticipant(ctx, in)
	case wire.ModeOffboard:
		return offboardParticipant(ctx, in)
	}
	if workflow.GetVersion(ctx, sevenActivities, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return participantTwoActivities(ctx, in) // the earlier shape: participant_legacy.go
	}
	return provisionSteps(ctx, in, nil)
}

// userOrigin is the change that, when CreateUser adopts an existing user,
// reads the participant's earlier runs (PriorRuns) to learn whether Cohort
// created that user, so the result keeps saying so (offboarding removes
// only users Cohort created).
const userOrigin = "user-origin"

// provisionSteps runs the seven steps. rec is nil when provisioning; when
// reconciling, it makes every cluster a lookup, stops only a cluster this
// run created, and records what had drifted.
func provisionSteps(ctx workflow.Context, in ParticipantInput, rec *reconciling) (ParticipantResult, error) {
	p, st := in.Participant, in.StepTimeout
	res := ParticipantResult{Email: p.Email, DisplayName: p.DisplayName}
	run := func(opts workflow.ActivityOptions, name string, input any) workflow.Future {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), name, input)
	}

	// A repair (rec.survey set) runs only the steps whose drift the survey
	// found, and what they depend on; skipped steps answer with what the
	// survey found in place.
	sv := rec.surveyed()
	var userF, schemaF workflow.Future
	if sv.needs(wire.DriftUserMissing, wire.DriftUserInactive) {
		userIn := wire.CreateUserInput{Participant: p}
		if sv.repair() && !sv.Has(wire.DriftUserMissing) {
			userIn.Inactive = &wire.KnownUser{ID: sv.UserID, UserName: sv.UserName}
		}
		userF = run(createUserOptions(st, p.Email), wire.CreateUserName, userIn)
	} else {
		userF = ready(ctx, wire.CreateUserResult{UserID: sv.UserID, UserName: sv.UserName})
	}
	if sv.needs(wire.DriftSchemaMissing) {
		schemaIn := wire.CreateSchemaInput{Participant: p, Catalog: in.Catalog}
		if rec != nil {
			schemaIn.Recorded = rec.prior.Schema // the participant keeps the name they have
		}
		schemaF = run(createSchemaOptions(st, p, in.Catalog), wire.CreateSchemaName, schemaIn)
	} else {
		schemaF = ready(ctx, wire.CreateSchemaResult{FullName: sv.Schema})
	}

	var user wire.CreateUserResult
	if err := userF.Get(ctx, &user); err != nil {
		return res, stepFailed(p, wire.StepCreateUser, wire.CreateUserName, err)
	}
	res.UserID = user.UserID
	res.CreatedUserID, res.UserCreated = userOwnership(user, wire.PriorRunsResult{})
	// The principal of grants and cluster permissions: an adopted user's
	// userName may differ from the email.
	principal := cmp.Or(user.UserName, p.Email)
	// What the principal holds counts as Cohort's when Cohort created it:
	// in this run, or (runs of earlier versions kept no record of their
	// grants) in an earlier one.
	principalCreated := user.Created
	var priorF workflow.Future
	switch {
	case rec != nil:
		res.CreatedUserID, res.UserCreated = userOwnership(user, rec.prior)
		principalCreated = user.Created || (!rec.prior.GrantsRecorded && rec.prior.CreatedUserID == user.UserID)
		rec.userStep(user)
	case !user.Created && workflow.GetVersion(ctx, userOrigin, workflow.DefaultVersion, 1) == 1:
		priorF = run(priorRunsOptions(st), wire.PriorRunsName, priorRunsInput(ctx))
	}
	if user.Created || sv.needs(wire.DriftNotAssigned) {
		err := run(assignWorkspaceOptions(st, p.Email), wire.AssignWorkspaceName,
			wire.AssignWorkspaceInput{Email: p.Email, UserID: user.UserID}).Get(ctx, nil)
		if err != nil {
			return res, stepFailed(p, wire.StepAssignWorkspace, wire.AssignWorkspaceName, err)
		}
		if sv.repair() && !user.Created {
			rec.change("workspace assignment restored")
		}
	}
	var schema wire.CreateSchemaResult
	if err := schemaF.Get(ctx, &schema); err != nil {
		return res, stepFailed(p, wire.StepCreateSchema, wire.CreateSchemaName, err)
	}
	res.Schema = schema.FullName
	if schema.Renamed != "" {
		res.Changes = append(res.Changes, schema.Renamed)
	}
	if rec != nil && schema.Created {
		rec.change("schema %s re-created (empty)", schema.FullName)
	}

	var grantF workflow.Future
	if user.Created || schema.Created || sv.needs(wire.DriftGrantMissing) {
		grantF = run(grantOptions(st, principal, schema.FullName), wire.GrantName,
			wire.GrantInput{Principal: principal, Catalog: in.Catalog, Schema: schema.FullName, PrincipalCreated: principalCreated})
	} else {
		grantF = ready(ctx, wire.GrantResult{Recorded: rec.prior.GrantsRecorded})
	}
	// A user created by this run cannot have a cluster yet: only one that
	// existed before is worth the lookup.
	lookup := !user.Created || rec != nil
	// The cluster Cohort recorded is read by id (one clusters/get) before
	// any listing: a reconcile knows it from the earlier runs, as does a
	// provisioning run whose read of them has already answered.
	var known string
	switch {
	case sv.repair():
		// The survey's listing found no cluster tagged for them: create one
		// (a create that fails lists again before it decides).
		lookup = false
	case rec != nil:
		known = rec.prior.ClusterID
	case priorF != nil && priorF.IsReady():
		var prior wire.PriorRunsResult
		if priorF.Get(ctx, &prior) == nil {
			known = prior.ClusterID
		}
	}
	// The batch's listing (or, for a repair, the survey's read of the
	// event, which found no cluster of theirs) stands in for a lookup's
	// listing: candidates are read by id.
	listed := in.ClustersListed || sv.repair()
	for runs := 1; ; runs++ {
		var cluster wire.CreateClusterResult
		if runs > 1 || sv.needs(wire.DriftClusterGone) {
			err := run(createClusterOptions(st, p), wire.CreateClusterName,
				wire.CreateClusterInput{Participant: p, Spec: in.Cluster, BatchID: in.BatchID, Lookup: lookup, UserName: user.UserName,
					KnownClusterID: known, Listed: listed, Tagged: in.Tagged}).Get(ctx, &cluster)
			if err != nil {
				return res, stepFailed(p, wire.StepCreateCluster, wire.CreateClusterName, err)
			}
		} else {
			cluster = wire.CreateClusterResult{ClusterID: sv.ClusterID, URL: sv.ClusterURL}
		}
		res.ClusterID, res.ClusterURL = cluster.ClusterID, cluster.URL
		permF := ready(ctx, nil)
		if runs > 1 || cluster.Created || user.Created || sv.needs(wire.DriftPermissionMissing) {
			permF = run(setPermissionOptions(st, principal, cluster.ClusterID), wire.SetPermissionName,
				wire.SetPermissionInput{Principal: principal, ClusterID: cluster.ClusterID})
			if sv.repair() && !cluster.Created {
				rec.change("CAN_RESTART restored on cluster %s", cluster.ClusterID)
			}
		}
		var stopF workflow.Future
		if rec == nil || cluster.Created {
			// A reconcile stops only the cluster it created: one it found may
			// be the participant's, running.
			stopF = run(stopClusterOptions(st, p.Email, cluster.ClusterID), wire.StopClusterName,
				wire.StopClusterInput{ClusterID: cluster.ClusterID, State: cluster.State})
		}
		var stopErr error
		permErr := permF.Get(ctx, nil)
		if stopF != nil {
			stopErr = stopF.Get(ctx, nil)
		}
		if (isType(permErr, wire.ErrClusterGone) || isType(stopErr, wire.ErrClusterGone)) && runs < maxClusterRuns {
			// Deleted between its creation and these steps: make another.
			lookup, known = true, ""
			continue
		}
		if permErr != nil {
			return res, stepFailed(p, wire.StepSetPermission, wire.SetPermissionName, permErr)
		}
		if stopErr != nil {
			return res, stepFailed(p, wire.StepStopCluster, wire.StopClusterName, stopErr)
		}
		if rec != nil {
			rec.clusterStep(cluster)
		}
		break
	}
	var granted wire.GrantResult
	if err := grantF.Get(ctx, &granted); err != nil {
		return res, stepFailed(p, wire.StepGrant, wire.GrantName, err)
	}
	var earlierGrants []wire.SecurableGrant // what earlier runs added, not revoked since
	if rec != nil {
		earlierGrants = rec.prior.Grants
	}
	if priorF != nil {
		var prior wire.PriorRunsResult
		if err := priorF.Get(ctx, &prior); err != nil {
			// Unknown origin counts as existing before the event: never
			// removed by an offboard. The environment itself is ready.
			workflow.GetLogger(ctx).Warn("could not read earlier runs; the user counts as existing before the event", "error", err)
		}
		res.CreatedUserID, res.UserCreated = userOwnership(user, prior)
		earlierGrants = prior.Grants
	}
	res.Grants, res.GrantsRecorded = wire.MergeGrants(earlierGrants, granted.Added), granted.Recorded
	if sv.repair() && len(granted.Added) > 0 && !user.Created && !schema.Created {
		rec.change("grants restored: %s", describeGrants(granted.Added))
	}
	if rec != nil {
		res.Mode, res.Changes = wire.ModeReconcile, append(res.Changes, rec.changes...)
		if sv.repair() {
			res.Drift, res.Changes = sv.Drift, append(res.Changes, sv.Notes...)
			if len(sv.ExtraClusters) > 0 {
				res.Changes = append(res.Changes, wire.ExtraClustersNote(sv.ExtraClusters))
			}
		}
	}
	return res, nil
}

// userOwnership says which account user Cohort created for the participant
// (its id, carried forward) and whether it is the one this run has: created
// now, or created by an earlier run and found again with that id. A user
// found with another id was re-created by someone else: not Cohort's. When
// no id is known (runs of earlier versions), the earlier runs' user_created
// is all there is (an offboard then keeps the user: it cannot tell).
func userOwnership(user wire.CreateUserResult, prior wire.PriorRunsResult) (createdID string, userCreated bool) {
	switch {
	case user.Created:
		return user.UserID, true
	case prior.CreatedUserID != "":
		return prior.CreatedUserID, prior.CreatedUserID == user.UserID
	}
	return "", prior.UserCreated
}

// isType reports whether err is (or wraps) an application error of type typ.
func isType(err error, typ string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == typ
}

// stepFailed turns a step activity's error into the participant's failure,
// naming the step and its activity. A step that gave up at its timeout says
// so, with the last attempt's reason.
func stepFailed(p roster.Participant, step, activity string, err error) error {
	return stepFailedAs("provision", p, step, activity, err)
}

// stepFailedAs is stepFailed for a run that does what verb says.
func stepFailedAs(verb string, p roster.Participant, step, activity string, err error) error {
	reason := err.Error()
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		reason = appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	var actErr *temporal.ActivityError
	switch {
	case errors.As(err, &timeoutErr):
		reason = "gave up after the step timeout: " + lastFailure(timeoutErr)
	case errors.As(err, &actErr) && actErr.RetryState() == enumspb.RETRY_STATE_TIMEOUT:
		reason = "gave up after the step timeout: " + reason
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s %s: %s (%s): %s", verb, p.Email, step, activity, reason),
		ParticipantFailedError, nil, StepFailure{Step: step, Activity: activity, Reason: reason})
}

func lastFailure(err *temporal.TimeoutError) string {
	if cause := errors.Unwrap(err); cause != nil {
		var appErr *temporal.ApplicationError
		if errors.As(cause, &appErr) {
			return appErr.Message()
		}
		return cause.Error()
	}
	return err.Error()
}
