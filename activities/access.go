package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
)

// accessProgress is ProvisionAccess's heartbeat detail: a retried attempt
// that finds the user already done skips the SCIM create (and the lookup its
// conflict would cost), the scarcest API of all.
type accessProgress struct {
	UserID      string `json:"user_id"`
	UserCreated bool   `json:"user_created"`
}

// ProvisionAccess is steps create_user, assign_workspace, create_schema and
// grant, in that order: ProvisionUser then ProvisionSchema as one activity,
// so that a participant costs fewer history events. Both halves are
// idempotent; a retry resumes after the user when an earlier attempt
// recorded it.
func (a *Activities) ProvisionAccess(ctx context.Context, in ProvisionAccessInput) (ProvisionAccessResult, error) {
	var res ProvisionAccessResult
	var done accessProgress
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &done) == nil && done.UserID != "" {
		if err := a.assignWorkspace(ctx, in.Participant.Email, done.UserID); err != nil {
			return res, err
		}
		res.UserID, res.UserCreated = done.UserID, done.UserCreated
	} else {
		user, err := a.ProvisionUser(ctx, ProvisionUserInput{Participant: in.Participant})
		if err != nil {
			return res, err
		}
		res.UserID, res.UserCreated = user.UserID, user.Created
		heartbeat(ctx, accessProgress{UserID: user.UserID, UserCreated: user.Created})
	}
	schema, err := a.ProvisionSchema(ctx, ProvisionSchemaInput{Participant: in.Participant, Catalog: in.Catalog})
	if err != nil {
		return res, err
	}
	res.Schema = schema.FullName
	return res, nil
}
