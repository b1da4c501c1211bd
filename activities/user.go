package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/wire"
)

// DefaultAssignmentWait bounds the in-activity wait for a fresh workspace
// assignment when Settings.AssignmentWait is 0.
const DefaultAssignmentWait = 30 * time.Second

// CreateUser is step create_user: the participant becomes an account user,
// created, or adopted when it already exists (and reactivated when it was
// deactivated).
func (a *Activities) CreateUser(ctx context.Context, in wire.CreateUserInput) (wire.CreateUserResult, error) {
	ctx, _, stop := withPulse(ctx) // it may wait its turn at the SCIM rate
	defer stop()
	if k := in.Inactive; k != nil && k.ID != "" {
		// A repeat of a PATCH that was applied sets active=true again: a no-op.
		if err := a.activate(ctx, in.Participant.Email, k.ID); err != nil {
			return wire.CreateUserResult{}, err
		}
		return wire.CreateUserResult{UserID: k.ID, UserName: cmp.Or(k.UserName, strings.ToLower(in.Participant.Email)), Reactivated: true}, nil
	}
	u, err := a.ensureUser(ctx, in.Participant.Email, in.Participant.DisplayName)
	if err != nil {
		return wire.CreateUserResult{}, err
	}
	return wire.CreateUserResult{UserID: u.id, UserName: u.userName, Created: u.created, Reactivated: u.reactivated}, nil
}

// AssignWorkspace is step assign_workspace: the user gets permission USER on
// the workspace.
func (a *Activities) AssignWorkspace(ctx context.Context, in wire.AssignWorkspaceInput) (wire.AssignWorkspaceResult, error) {
	ctx, _, stop := withPulse(ctx) // it waits for a fresh user to become visible
	defer stop()
	return wire.AssignWorkspaceResult{}, a.assignWorkspace(ctx, in.Email, in.UserID)
}

// accountUser is the account user a participant ends up with.
type accountUser struct {
	id, userName         string
	created, reactivated bool
}

// ensureUser creates the account user, or adopts the existing one when the
// create conflicts. It never looks up first: SCIM lists are the scarcest
// rate (4/s against 5/s for creates), so a lookup is spent only on a
// conflict. A create the server applied before failing (503, reset) is
// retried by the SDK, conflicts, and is adopted here: exactly one user. An
// adopted user that is inactive (deactivated, or unassigned in Entra) is
// reactivated: an inactive user cannot log in.
func (a *Activities) ensureUser(ctx context.Context, email, displayName string) (accountUser, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return accountUser{}, invalid(wire.StepCreateUser, "create user: participant has no email")
	}
	if err := a.Limits.Wait(ctx, ClassSCIMWrite); err != nil {
		return accountUser{}, classify(wire.StepCreateUser, fmt.Errorf("create user %s: %w", email, err))
	}
	u, err := a.Account.Users.Create(ctx, iam.User{
		UserName:    email,
		DisplayName: displayName,
		Emails:      []iam.ComplexValue{{Value: email, Primary: true}},
	})
	switch {
	case err == nil:
		if _, perr := strconv.ParseInt(u.Id, 10, 64); perr != nil {
			return accountUser{}, inconsistent(wire.StepCreateUser, wire.ErrUnavailable, "create user %s: unexpected user id %q", email, u.Id)
		}
		return accountUser{id: u.Id, userName: cmp.Or(u.UserName, email), created: true}, nil
	case errors.Is(err, apierr.ErrResourceConflict):
		found, ferr := a.findUser(ctx, email)
		if ferr != nil {
			return accountUser{}, ferr
		}
		adopted := accountUser{id: found.Id, userName: strings.ToLower(found.UserName)}
		if !found.Active {
			if err := a.activate(ctx, email, found.Id); err != nil {
				return accountUser{}, err
			}
			adopted.reactivated = true
		}
		return adopted, nil
	default:
		return accountUser{}, classify(wire.StepCreateUser, fmt.Errorf("create user %s: %w", email, err))
	}
}

// findUser is lookupUser for a create that conflicted: the user must be
// there, and not finding it yet means the SCIM list lags the create.
func (a *Activities) findUser(ctx context.Context, email string) (iam.User, error) {
	u, err := a.lookupUser(ctx, wire.StepCreateUser, email)
	if err != nil {
		return iam.User{}, err
	}
	if u == nil {
		return iam.User{}, inconsistent(wire.StepCreateUser, wire.ErrUnavailable,
			"create user %s: already exists but not found by userName or email yet", email)
	}
	return *u, nil
}

// lookupUser finds the account user of an email by userName or email with
// exactly one SCIM list request (nil if there is none): a create conflicts
// on the email, and the existing user's userName may differ (users synced
// from Entra). The iterator fetches the first page on HasNext and only asks
// for another page once that one is used up (ListAll always costs a second,
// empty page): it is asked for a second user only when the first one
// matched by userName alone. Offboarding compares the id it finds with the
// one Cohort created, so an id that is not a SCIM int64 is an inconsistent
// answer, retried.
func (a *Activities) lookupUser(ctx context.Context, step, email string) (*iam.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, invalid(step, "find user: participant has no email")
	}
	if err := a.Limits.Wait(ctx, ClassSCIMList); err != nil {
		return nil, classify(step, fmt.Errorf("find user %s: %w", email, err))
	}
	it := a.Account.Users.List(ctx, userLookup(email))
	var byName *iam.User
	for n := 0; n < 2 && it.HasNext(ctx); n++ { // HasNext is true on an error, which Next then returns
		u, err := it.Next(ctx)
		if err != nil {
			return nil, classify(step, fmt.Errorf("find user %s: %w", email, err))
		}
		if _, perr := strconv.ParseInt(u.Id, 10, 64); perr != nil {
			return nil, inconsistent(step, wire.ErrUnavailable, "find user %s: unexpected user id %q", email, u.Id)
		}
		if slices.ContainsFunc(u.Emails, func(e iam.ComplexValue) bool { return strings.EqualFold(e.Value, email) }) {
			return &u, nil // the email is what conflicts
		}
		if !strings.EqualFold(u.UserName, email) {
			break // neither: not the participant
		}
		byName = &u
	}
	return byName, nil
}

// userLookup is the SCIM list request for the user of an email: by
// userName or email, the attributes Cohort reads.
func userLookup(email string) iam.ListAccountUsersRequest {
	q := scimString(email)
	return iam.ListAccountUsersRequest{
		Filter:     "userName eq " + q + " or emails.value eq " + q,
		Attributes: "id,userName,emails,active",
	}
}

// scimString quotes s as a SCIM filter value (RFC 7644 3.4.2.2: a JSON
// string): backslash and double quote escaped.
func scimString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// activate reactivates a deactivated account user (SCIM PATCH active).
func (a *Activities) activate(ctx context.Context, email, id string) error {
	if err := a.Limits.Wait(ctx, ClassSCIMPatch); err != nil {
		return classify(wire.StepCreateUser, fmt.Errorf("reactivate user %s: %w", email, err))
	}
	err := a.Account.Users.Patch(ctx, iam.PartialUpdate{
		Id:         id,
		Schemas:    []iam.PatchSchema{iam.PatchSchemaUrnIetfParamsScimApiMessages20PatchOp},
		Operations: []iam.Patch{{Op: iam.PatchOpReplace, Path: "active", Value: true}},
	})
	if err != nil {
		return classify(wire.StepCreateUser, fmt.Errorf("reactivate user %s: %w", email, err))
	}
	if l := logger(ctx); l != nil {
		l.Info("reactivated an inactive account user", "participant", email, "user_id", id)
	}
	return nil
}

// assignWorkspace gives the user permission USER on the workspace (PUT is
// an upsert of that principal's permission set, so repeating it is a no-op)
// and confirms it. Right after a create, Databricks may answer "Principal X
// not in workspace Y" or "Principal not found in account": the PUT is
// retried for up to Settings.AssignmentWait, then wire.ErrPrincipalNotReady lets
// Temporal retry the activity later.
func (a *Activities) assignWorkspace(ctx context.Context, email, userID string) error {
	principal, err := strconv.ParseInt(userID, 10, 64)
	if err != nil {
		return invalid(wire.StepAssignWorkspace, "assign user %s to workspace: user id %q is not numeric", email, userID)
	}
	if a.Settings.WorkspaceID == 0 {
		return invalid(wire.StepAssignWorkspace, "assign user %s to workspace: no workspace id configured", email)
	}
	wait := a.Settings.AssignmentWait
	if wait <= 0 {
		wait = DefaultAssignmentWait
	}
	deadline := time.Now().Add(wait)
	// The first retry comes soon: a PUT refused right after the user's
	// creation usually takes the next time, and for a batch's last
	// participants every pause is on the batch's wall time (issue 18).
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		confirmed, refusal, err := a.assignOnce(ctx, principal)
		if err == nil && confirmed {
			return nil
		}
		last := cmp.Or(refusal, "assignment not listed yet")
		if err != nil {
			cerr := classify(wire.StepAssignWorkspace, fmt.Errorf("assign user %s to workspace %d: %w", email, a.Settings.WorkspaceID, err))
			if errorType(cerr) != wire.ErrPrincipalNotReady {
				return cerr
			}
			last = err.Error()
		}
		if time.Now().Add(backoff).After(deadline) {
			return notReady(wire.StepAssignWorkspace, "assign user %s to workspace %d: not visible after %d attempts in %s: %s",
				email, a.Settings.WorkspaceID, attempt, wait, last)
		}
		if err := sleep(ctx, backoff); err != nil {
			return classify(wire.StepAssignWorkspace, fmt.Errorf("assign user %s to workspace %d: %w", email, a.Settings.WorkspaceID, err))
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// assignOnce PUTs the assignment and reports whether Databricks confirms it:
// from the PUT's own answer when it names the principal with USER, else by
// listing the workspace's assignments (one request, no paging). An answer
// that carries an error (a 200 that did nothing) is a refusal, returned as
// such: no listing can confirm what was not done.
func (a *Activities) assignOnce(ctx context.Context, principal int64) (confirmed bool, refusal string, err error) {
	if err := a.Limits.Wait(ctx, ClassAssignments); err != nil {
		return false, "", err
	}
	pa, err := a.Account.Assignments.Update(ctx, iam.UpdateWorkspaceAssignments{
		WorkspaceId: a.Settings.WorkspaceID,
		PrincipalId: principal,
		Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser},
	})
	switch {
	case err != nil:
		return false, "", err
	case pa != nil && pa.Error != "":
		return false, "answered with an error: " + pa.Error, nil
	case pa != nil && pa.Principal != nil && pa.Principal.PrincipalId == principal &&
		slices.Contains(pa.Permissions, iam.WorkspacePermissionUser):
		return true, "", nil
	}
	confirmed, err = a.listedAssigned(ctx, principal)
	return confirmed, "", err
}

// listedAssigned reports whether the workspace's assignments list the
// principal with USER.
func (a *Activities) listedAssigned(ctx context.Context, principal int64) (bool, error) {
	if err := a.Limits.Wait(ctx, ClassAssignments); err != nil {
		return false, err
	}
	it := a.Account.Assignments.List(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: a.Settings.WorkspaceID})
	for it.HasNext(ctx) {
		as, err := it.Next(ctx)
		if err != nil {
			return false, err
		}
		if as.Principal != nil && as.Principal.PrincipalId == principal {
			return as.Error == "" && slices.Contains(as.Permissions, iam.WorkspacePermissionUser), nil
		}
	}
	return false, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
