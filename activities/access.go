package activities

import "context"

// ProvisionAccess is steps create_user, assign_workspace, create_schema and
// grant, in that order: ProvisionUser then ProvisionSchema as one activity,
// so that a participant costs fewer history events. Both halves are
// idempotent; a retry resumes after the user when an earlier attempt
// recorded it.
//
// Its heartbeat details (a progress) name the step under way and, once done,
// the user: a retried attempt that finds the user skips the SCIM create (and
// the lookup its conflict would cost), the scarcest API of all.
func (a *Activities) ProvisionAccess(ctx context.Context, in ProvisionAccessInput) (ProvisionAccessResult, error) {
	var res ProvisionAccessResult
	ctx, done, stop := withPulse(ctx)
	defer stop()
	if done.UserID != "" {
		heartbeat(ctx, progress{Step: StepAssignWorkspace, UserID: done.UserID, UserCreated: done.UserCreated})
		if err := a.assignWorkspace(ctx, in.Participant.Email, done.UserID); err != nil {
			return res, err
		}
		res.UserID, res.UserCreated = done.UserID, done.UserCreated
	} else {
		heartbeat(ctx, progress{Step: StepCreateUser})
		user, err := a.ProvisionUser(ctx, ProvisionUserInput{Participant: in.Participant})
		if err != nil {
			return res, err
		}
		res.UserID, res.UserCreated = user.UserID, user.Created
	}
	heartbeat(ctx, progress{Step: StepCreateSchema, UserID: res.UserID, UserCreated: res.UserCreated})
	schema, err := a.ProvisionSchema(ctx, ProvisionSchemaInput{Participant: in.Participant, Catalog: in.Catalog})
	if err != nil {
		return res, err
	}
	res.Schema = schema.FullName
	return res, nil
}
