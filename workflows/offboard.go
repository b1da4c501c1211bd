package workflows

import (
	"cmp"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// offboardParticipant closes a participant's environment at the end of the
// event, as a run of their participant workflow (mode offboard), in the
// order Databricks needs (docs/real-workspace.md §6):
//
//	prior runs ──> remove assignment ──> remove clusters ──> revoke grants ──> drop schema ──> remove user
//	                                                                          (--drop-schemas)
//
// Only what Cohort added goes: the user and the assignment only if the user
// found has the id Cohort created (one existing before the event, of
// unknown origin, or re-created by someone since keeps both), the grants
// Cohort recorded adding (what someone held before the event stays), the
// schema only if marked for the participant or recorded by their runs, the
// clusters tagged for them that Cohort marked (wire.ClusterOwnerTag) or
// recorded, found by id: the recorded one and those the batch's single
// listing found tagged for them (ClustersListed). Every step treats missing as
// done, so a second offboard changes nothing. Reading the earlier runs comes
// first: only they say whether Cohort created the user.
func offboardParticipant(ctx workflow.Context, in ParticipantInput) (ParticipantResult, error) {
	p, st := in.Participant, in.StepTimeout
	res := ParticipantResult{Email: p.Email, DisplayName: p.DisplayName, Mode: wire.ModeOffboard}
	step := func(opts workflow.ActivityOptions, step, name string, input, out any) error {
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), name, input).Get(ctx, out)
		if err != nil {
			return stepFailedAs("offboard", p, step, name, err)
		}
		return nil
	}

	var prior wire.PriorRunsResult
	if err := step(priorRunsOptions(st), wire.StepPriorRuns, wire.PriorRunsName, priorRunsInput(ctx), &prior); err != nil {
		return res, err
	}
	res.UserCreated, res.CreatedUserID = prior.UserCreated, prior.CreatedUserID
	// The schema the participant's runs recorded (renamed after a
	// collision, say), else the roster's.
	cat, schema, recorded := wire.ParticipantSchema(prior.Schema, in.Catalog, p.Schema)
	res.Schema = prior.Schema

	var assign wire.RemoveAssignmentResult
	if err := step(removeAssignmentOptions(st, p), wire.StepRemoveAssignment, wire.RemoveAssignmentName,
		wire.RemoveAssignmentInput{Email: p.Email, UserCreated: prior.UserCreated, CreatedUserID: prior.CreatedUserID}, &assign); err != nil {
		return res, err
	}
	res.UserID = assign.UserID
	res.Changes = appendChange(res.Changes, assign.Change)

	var clusters wire.RemoveClustersResult
	if err := step(removeClustersOptions(st, p), wire.StepRemoveClusters, wire.RemoveClustersName,
		wire.RemoveClustersInput{Email: p.Email, Recorded: prior.ClusterID, Listed: in.ClustersListed, Tagged: in.Tagged}, &clusters); err != nil {
		return res, err
	}
	for _, id := range clusters.ClusterIDs {
		res.Changes = append(res.Changes, "cluster "+id+" permanently deleted")
	}
	for _, k := range clusters.Kept {
		res.Changes = append(res.Changes, "kept "+k)
	}

	var grants wire.RevokeGrantsResult
	if err := step(activityOptions(wire.RevokeGrantsName, st, "revoke the grants of "+p.Email), wire.StepRevokeGrants, wire.RevokeGrantsName,
		wire.RevokeGrantsInput{Email: p.Email, Catalog: cat, Schema: schema, CreatedUserID: prior.CreatedUserID,
			Grants: prior.Grants, GrantsRecorded: prior.GrantsRecorded}, &grants); err != nil {
		return res, err
	}
	for _, g := range grants.Revoked {
		res.Changes = append(res.Changes, "revoked "+g)
	}
	for _, k := range grants.Kept {
		res.Changes = append(res.Changes, "kept "+k)
	}
	// What Cohort added is revoked now (or was not held any more): nothing
	// of it is left to record.
	res.GrantsRecorded = true

	if in.Offboard.DropSchemas {
		var drop wire.DropSchemaResult
		if err := step(activityOptions(wire.DropSchemaName, st, "drop schema "+schema+" of "+p.Email), wire.StepDropSchema, wire.DropSchemaName,
			wire.DropSchemaInput{Catalog: cat, Schema: schema, Email: p.Email, Recorded: recorded}, &drop); err != nil {
			return res, err
		}
		res.Schema = drop.FullName
		if drop.Dropped {
			res.Changes = append(res.Changes, "schema "+drop.FullName+" dropped")
		}
		res.Changes = appendChange(res.Changes, drop.Kept)
	}

	var user wire.RemoveUserResult
	if err := step(removeUserOptions(st, p), wire.StepRemoveUser, wire.RemoveUserName,
		wire.RemoveUserInput{Email: p.Email, UserCreated: prior.UserCreated, CreatedUserID: prior.CreatedUserID, Delete: in.Offboard.DeleteUsers}, &user); err != nil {
		return res, err
	}
	res.UserID = cmp.Or(res.UserID, user.UserID)
	res.Changes = appendChange(res.Changes, user.Change)
	res.Offboarded = true
	return res, nil
}

func appendChange(cs []string, c string) []string {
	if c == "" {
		return cs
	}
	return append(cs, c)
}

// removeAssignmentOptions: a SCIM lookup, then the assignment.
func removeAssignmentOptions(st time.Duration, p roster.Participant) workflow.ActivityOptions {
	return activityOptions(wire.RemoveAssignmentName, st, "remove the workspace assignment of "+p.Email)
}

// removeClustersOptions: it reads the participant's clusters by id (or, in
// batches started before the listing, pages through them) and waits for
// terminations.
func removeClustersOptions(st time.Duration, p roster.Participant) workflow.ActivityOptions {
	return activityOptions(wire.RemoveClustersName, st, "terminate and permanently delete the clusters of "+p.Email)
}

// removeUserOptions: the account queue, paced for SCIM writes.
func removeUserOptions(st time.Duration, p roster.Participant) workflow.ActivityOptions {
	return activityOptions(wire.RemoveUserName, st, "deactivate (or delete) the account user "+p.Email)
}

// planOffboardOptions: the dry run's read-only look, on the main queue.
func planOffboardOptions(st time.Duration) workflow.ActivityOptions {
	return activityOptions(wire.PlanOffboardName, st, "list what an offboard would remove")
}

// planOffboardChunkOptions: a chunk's dry run against the batch's read:
// reads only, paced per class; it heartbeats.
func planOffboardChunkOptions(st time.Duration) workflow.ActivityOptions {
	return activityOptions(wire.PlanOffboardChunkName, st, "list what an offboard would remove, against the batch's read of the event")
}
