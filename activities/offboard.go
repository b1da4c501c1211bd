package activities

// The lifecycle after day one: what a participant's earlier runs say
// (PriorRuns), the five offboarding steps in the order Databricks needs
// (docs/real-workspace.md §6), and the dry run that lists what they would remove.
// Every step reads before it writes and treats missing as done, so a second
// offboard sends no mutating request at all.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/cohort-dev/cohort/wire"
)

// keptPreexisting is said of what a user who existed before the event keeps.
const keptPreexisting = "(the account user existed before the event, or Cohort cannot tell)"

// PriorRuns reads the earlier runs of a participant's workflow from
// Temporal: whether one of them created the account user (a CreateUser that
// created, or a result that says so), the mode of the latest, and the last
// cluster. Runs whose history Temporal no longer keeps (past the namespace
// retention) say nothing: each run's result carries UserCreated forward, so
// the latest one is enough.
//
// Runs are read newest first, and only until the answer is complete (the
// user known to be Cohort's, a cluster found): a daily reconcile reads one
// or two histories, not all of them.
func (a *Activities) PriorRuns(ctx context.Context, in wire.PriorRunsInput) (wire.PriorRunsResult, error) {
	runIDs, err := a.priorRunIDs(ctx, in.WorkflowID, in.RunID)
	if err != nil {
		return wire.PriorRunsResult{}, classify(wire.StepPriorRuns, err)
	}
	out := wire.PriorRunsResult{Runs: len(runIDs)}
	for i, id := range runIDs { // newest first
		r, err := a.readRun(ctx, in.WorkflowID, id)
		if err != nil {
			return wire.PriorRunsResult{}, classify(wire.StepPriorRuns, err)
		}
		out.UserCreated = out.UserCreated || r.userCreated
		if i == 0 {
			out.LastMode = r.mode
			out.Offboarded = r.mode == wire.ModeOffboard || r.offboarded
		}
		if out.ClusterID == "" && r.completed {
			out.ClusterID = r.clusterID
		}
		if out.UserCreated && out.ClusterID != "" {
			break
		}
	}
	return out, nil
}

// priorRun is what one earlier run of a participant's workflow says.
type priorRun struct {
	mode        string
	userCreated bool
	offboarded  bool
	completed   bool
	clusterID   string
}

// priorRunIDs lists the runs of workflowID but skip, newest first.
func (a *Activities) priorRunIDs(ctx context.Context, workflowID, skip string) ([]string, error) {
	if a.Temporal == nil {
		return nil, errors.New("read earlier runs: no Temporal client")
	}
	type execution struct {
		runID string
		start int64
	}
	var execs []execution
	var token []byte
	for {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", strings.ReplaceAll(workflowID, "'", `\'`)), PageSize: 100, NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list runs of %s: %w", workflowID, err)
		}
		for _, e := range resp.GetExecutions() {
			if id := e.GetExecution().GetRunId(); id != skip {
				execs = append(execs, execution{runID: id, start: e.GetStartTime().AsTime().UnixNano()})
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.SortFunc(execs, func(x, y execution) int { return cmp.Compare(y.start, x.start) })
	ids := make([]string, len(execs))
	for i, e := range execs {
		ids[i] = e.runID
	}
	return ids, nil
}

// readRun reads one run's history: its input's mode, the CreateUser (or the
// earlier shape's ProvisionAccess) completions, and its result.
func (a *Activities) readRun(ctx context.Context, workflowID, runID string) (priorRun, error) {
	var r priorRun
	dc := converter.GetDefaultDataConverter()
	scheduled := map[int64]string{}
	it := a.Temporal.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return r, fmt.Errorf("read run %s of %s: %w", runID, workflowID, err)
		}
		switch {
		case ev.GetWorkflowExecutionStartedEventAttributes() != nil:
			var in struct {
				Mode string `json:"mode"`
			}
			_ = dc.FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in)
			r.mode = in.Mode
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			attrs := ev.GetActivityTaskCompletedEventAttributes()
			var res struct {
				Created     bool `json:"created"`      // CreateUser
				UserCreated bool `json:"user_created"` // ProvisionAccess
			}
			switch scheduled[attrs.GetScheduledEventId()] {
			case wire.CreateUserName, wire.ProvisionAccessName:
				if dc.FromPayloads(attrs.GetResult(), &res) == nil && (res.Created || res.UserCreated) {
					r.userCreated = true
				}
			}
		case ev.GetWorkflowExecutionCompletedEventAttributes() != nil:
			var res wire.Provisioned
			if dc.FromPayloads(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res) == nil {
				r.completed = true
				r.userCreated = r.userCreated || res.UserCreated
				r.offboarded = res.Offboarded
				r.clusterID = res.ClusterID
			}
		}
	}
	return r, nil
}

// lookupUser finds the account user of an email (by userName or email, as
// CreateUser adopts it) with one SCIM list request; nil if there is none.
func (a *Activities) lookupUser(ctx context.Context, step, email string) (*iam.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, invalid(step, "find user: participant has no email")
	}
	if err := a.Limits.Wait(ctx, ClassSCIMList); err != nil {
		return nil, classify(step, fmt.Errorf("find user %s: %w", email, err))
	}
	q := `"` + strings.ReplaceAll(email, `"`, `\"`) + `"`
	it := a.Account.Users.List(ctx, iam.ListAccountUsersRequest{
		Filter:     "userName eq " + q + " or emails.value eq " + q,
		Attributes: "id,userName,emails,active",
	})
	var byName *iam.User
	for n := 0; n < 2 && it.HasNext(ctx); n++ {
		u, err := it.Next(ctx)
		if err != nil {
			return nil, classify(step, fmt.Errorf("find user %s: %w", email, err))
		}
		if slices.ContainsFunc(u.Emails, func(e iam.ComplexValue) bool { return strings.EqualFold(e.Value, email) }) {
			return &u, nil
		}
		if !strings.EqualFold(u.UserName, email) {
			break
		}
		byName = &u
	}
	return byName, nil
}

// principal is the user's userName (the principal of grants), else the email.
func principal(u *iam.User, email string) string {
	if u != nil && u.UserName != "" {
		return strings.ToLower(u.UserName)
	}
	return strings.ToLower(strings.TrimSpace(email))
}

// RemoveAssignment is step remove_assignment: the user Cohort created loses
// the workspace; a user who existed before the event keeps it.
func (a *Activities) RemoveAssignment(ctx context.Context, in wire.RemoveAssignmentInput) (wire.RemoveAssignmentResult, error) {
	const step = wire.StepRemoveAssignment
	u, err := a.lookupUser(ctx, step, in.Email)
	if err != nil || u == nil {
		return wire.RemoveAssignmentResult{}, err
	}
	out := wire.RemoveAssignmentResult{UserID: u.Id}
	assigned, err := a.assigned(ctx, step, u.Id)
	if err != nil || !assigned {
		return out, err
	}
	if !in.UserCreated {
		out.Change = "kept the workspace assignment " + keptPreexisting
		return out, nil
	}
	pid, _ := strconv.ParseInt(u.Id, 10, 64)
	what := fmt.Sprintf("remove user %s from workspace %d", u.Id, a.Settings.WorkspaceID)
	if err := a.Limits.Wait(ctx, ClassAssignments); err != nil {
		return out, classify(step, fmt.Errorf("%s: %w", what, err))
	}
	err = a.Account.Assignments.Delete(ctx, iam.DeleteWorkspaceAssignmentRequest{WorkspaceId: a.Settings.WorkspaceID, PrincipalId: pid})
	if err != nil && !errors.Is(err, apierr.ErrNotFound) { // not found: removed meanwhile
		return out, classify(step, fmt.Errorf("%s: %w", what, err))
	}
	out.Change = "workspace assignment removed"
	return out, nil
}

// assigned reports whether the user holds a workspace assignment (one list
// request: the workspace's assignments).
func (a *Activities) assigned(ctx context.Context, step, userID string) (bool, error) {
	pid, err := strconv.ParseInt(userID, 10, 64)
	if err != nil {
		return false, inconsistent(step, wire.ErrUnavailable, "user id %q is not numeric", userID)
	}
	if a.Settings.WorkspaceID == 0 {
		return false, invalid(step, "list workspace assignments: no workspace id configured")
	}
	wrap := func(err error) error {
		return classify(step, fmt.Errorf("list assignments of workspace %d: %w", a.Settings.WorkspaceID, err))
	}
	if err := a.Limits.Wait(ctx, ClassAssignments); err != nil {
		return false, wrap(err)
	}
	it := a.Account.Assignments.List(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: a.Settings.WorkspaceID})
	for it.HasNext(ctx) {
		as, err := it.Next(ctx)
		if err != nil {
			return false, wrap(err)
		}
		if as.Principal != nil && as.Principal.PrincipalId == pid {
			return len(as.Permissions) > 0, nil
		}
	}
	return false, nil
}

// RemoveClusters is step remove_clusters: every cluster tagged with the
// participant's email is unpinned, terminated and permanently deleted. A
// cluster already gone (deleted, purged) is done.
func (a *Activities) RemoveClusters(ctx context.Context, in wire.RemoveClustersInput) (wire.RemoveClustersResult, error) {
	const step = wire.StepRemoveClusters
	ctx, _, stop := withPulse(ctx)
	defer stop()
	email := strings.ToLower(strings.TrimSpace(in.Email))
	cs, err := a.taggedClusters(ctx, step, email)
	if err != nil {
		return wire.RemoveClustersResult{}, err
	}
	var out wire.RemoveClustersResult
	for _, c := range cs {
		gone, err := a.removeCluster(ctx, c)
		if err != nil {
			return out, err
		}
		if !gone {
			out.ClusterIDs = append(out.ClusterIDs, c.ClusterId)
		}
		heartbeat(ctx, progress{ClusterID: c.ClusterId})
	}
	return out, nil
}

// removeCluster unpins, terminates (unless stopped) and permanently deletes
// one cluster; gone says it had vanished before this could.
func (a *Activities) removeCluster(ctx context.Context, c compute.ClusterDetails) (gone bool, err error) {
	const step = wire.StepRemoveClusters
	id := c.ClusterId
	calls := []struct {
		what string
		skip bool
		do   func() error
	}{
		// Unpinning a cluster that is not pinned is a no-op; a pinned one
		// cannot be permanently deleted.
		{"unpin cluster " + id, false, func() error {
			return a.Workspace.Clusters.Unpin(ctx, compute.UnpinCluster{ClusterId: id})
		}},
		{"terminate cluster " + id, stopped(c.State), func() error {
			_, err := a.Workspace.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id})
			return err
		}},
		{"permanently delete cluster " + id, false, func() error {
			return a.Workspace.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: id})
		}},
	}
	for _, call := range calls {
		if call.skip {
			continue
		}
		if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
			return false, classify(step, fmt.Errorf("%s: %w", call.what, err))
		}
		if err := call.do(); err != nil {
			cerr := classify(step, fmt.Errorf("%s: %w", call.what, err))
			if errorType(cerr) == wire.ErrClusterGone {
				return true, nil // deleted or purged meanwhile: done
			}
			return false, cerr
		}
	}
	return false, nil
}

// taggedClusters lists every cluster (in every state, under any policy)
// tagged with the participant's email.
func (a *Activities) taggedClusters(ctx context.Context, step, email string) ([]compute.ClusterDetails, error) {
	if a.Settings.TagKey == "" {
		return nil, invalid(step, "list clusters of %s: no participant tag key configured", email)
	}
	return a.listTagged(ctx, step, email, nil, "list clusters of "+email)
}

// RevokeGrants is step revoke_grants: what step grant gave the participant
// (the catalog, the shared data) and everything they hold on their own
// schema is revoked. Only what they hold is sent; a securable gone (the
// schema dropped) or a principal gone (the user deleted) is done.
func (a *Activities) RevokeGrants(ctx context.Context, in wire.RevokeGrantsInput) (wire.RevokeGrantsResult, error) {
	const step = wire.StepRevokeGrants
	u, err := a.lookupUser(ctx, step, in.Email)
	if err != nil {
		return wire.RevokeGrantsResult{}, err
	}
	who := principal(u, in.Email)
	held, err := a.heldGrants(ctx, step, who, in.Catalog, in.Schema)
	if err != nil {
		return wire.RevokeGrantsResult{}, err
	}
	var out wire.RevokeGrantsResult
	for _, g := range held {
		what := fmt.Sprintf("revoke %s on %s %s from %s", joinPrivileges(g.Privileges), g.Type, g.Name, who)
		if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
			return out, classify(step, fmt.Errorf("%s: %w", what, err))
		}
		_, err := a.Workspace.Grants.Update(ctx, catalog.UpdatePermissions{
			SecurableType:             g.Type,
			FullName:                  g.Name,
			Changes:                   []catalog.PermissionsChange{{Principal: who, Remove: g.Privileges}},
			OmitPermissionsInResponse: true,
		})
		if err != nil && !errors.Is(err, apierr.ErrNotFound) {
			return out, classify(step, fmt.Errorf("%s: %w", what, err))
		}
		out.Revoked = append(out.Revoked, fmt.Sprintf("%s on %s %s", joinPrivileges(g.Privileges), g.Type, g.Name))
	}
	return out, nil
}

// heldGrants reads, for each securable step grant writes to, the privileges
// the principal holds directly there that an offboard revokes.
func (a *Activities) heldGrants(ctx context.Context, step, who, cat, schema string) ([]securableGrant, error) {
	cat = strings.ToLower(cmp.Or(cat, a.Settings.Catalog))
	own := cat + "." + strings.ToLower(strings.TrimSpace(schema))
	var out []securableGrant
	for _, g := range a.desiredGrants(cat, own) {
		what := fmt.Sprintf("read grants of %s on %s %s", who, g.Type, g.Name)
		if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
			return nil, classify(step, fmt.Errorf("%s: %w", what, err))
		}
		resp, err := a.Workspace.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: g.Type, FullName: g.Name, Principal: who})
		if errors.Is(err, apierr.ErrNotFound) {
			continue // the securable (or the principal) is gone
		}
		if err != nil {
			return nil, classify(step, fmt.Errorf("%s: %w", what, err))
		}
		var held []catalog.Privilege
		for _, pa := range resp.PrivilegeAssignments {
			if !strings.EqualFold(pa.Principal, who) {
				continue
			}
			for _, p := range pa.Privileges {
				if (g.Type == "schema" && g.Name == own) || slices.Contains(g.Privileges, p) {
					held = append(held, p)
				}
			}
		}
		if len(held) > 0 {
			out = append(out, securableGrant{Type: g.Type, Name: g.Name, Privileges: held})
		}
	}
	return out, nil
}

// DropSchema is step drop_schema: the participant's schema, with its
// contents (force; Unity Catalog keeps it for UNDROP for 7 days).
func (a *Activities) DropSchema(ctx context.Context, in wire.DropSchemaInput) (wire.DropSchemaResult, error) {
	const step = wire.StepDropSchema
	full := strings.ToLower(cmp.Or(in.Catalog, a.Settings.Catalog) + "." + strings.TrimSpace(in.Schema))
	out := wire.DropSchemaResult{FullName: full}
	if strings.TrimSpace(in.Schema) == "" {
		return out, invalid(step, "drop schema: participant has no schema name")
	}
	// Read first: a schema already dropped costs no mutating request.
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return out, classify(step, fmt.Errorf("get schema %s: %w", full, err))
	}
	_, err := a.Workspace.Schemas.Get(ctx, catalog.GetSchemaRequest{FullName: full})
	switch {
	case errors.Is(err, apierr.ErrNotFound):
		return out, nil
	case err != nil:
		return out, classify(step, fmt.Errorf("get schema %s: %w", full, err))
	}
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return out, classify(step, fmt.Errorf("drop schema %s: %w", full, err))
	}
	err = a.Workspace.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: full, Force: true})
	switch {
	case errors.Is(err, apierr.ErrNotFound):
		return out, nil
	case err != nil:
		return out, classify(step, fmt.Errorf("drop schema %s: %w", full, err))
	}
	out.Dropped = true
	return out, nil
}

// RemoveUser is step remove_user: the account user Cohort created is
// deactivated (SCIM PATCH active false: reversible, keeps their assets) or,
// with Delete, deleted. A user who existed before the event is kept.
func (a *Activities) RemoveUser(ctx context.Context, in wire.RemoveUserInput) (wire.RemoveUserResult, error) {
	const step = wire.StepRemoveUser
	ctx, _, stop := withPulse(ctx) // it may wait its turn at the SCIM rates
	defer stop()
	u, err := a.lookupUser(ctx, step, in.Email)
	if err != nil || u == nil {
		return wire.RemoveUserResult{}, err
	}
	out := wire.RemoveUserResult{UserID: u.Id}
	switch {
	case !in.UserCreated:
		out.Change = "kept the account user " + u.Id + " " + keptPreexisting
	case in.Delete:
		if err := a.Limits.Wait(ctx, ClassSCIMWrite); err != nil {
			return out, classify(step, fmt.Errorf("delete user %s: %w", u.Id, err))
		}
		err := a.Account.Users.Delete(ctx, iam.DeleteAccountUserRequest{Id: u.Id})
		if err != nil && !errors.Is(err, apierr.ErrNotFound) {
			return out, classify(step, fmt.Errorf("delete user %s: %w", u.Id, err))
		}
		out.Change = "account user " + u.Id + " deleted"
	case u.Active:
		if err := a.setActive(ctx, step, u.Id, false); err != nil {
			return out, err
		}
		out.Change = "account user " + u.Id + " deactivated"
	}
	return out, nil
}

// setActive PATCHes a user's active attribute.
func (a *Activities) setActive(ctx context.Context, step, id string, active bool) error {
	what := fmt.Sprintf("set active=%t on user %s", active, id)
	if err := a.Limits.Wait(ctx, ClassSCIMPatch); err != nil {
		return classify(step, fmt.Errorf("%s: %w", what, err))
	}
	err := a.Account.Users.Patch(ctx, iam.PartialUpdate{
		Id:         id,
		Schemas:    []iam.PatchSchema{iam.PatchSchemaUrnIetfParamsScimApiMessages20PatchOp},
		Operations: []iam.Patch{{Op: iam.PatchOpReplace, Path: "active", Value: active}},
	})
	if err != nil {
		return classify(step, fmt.Errorf("%s: %w", what, err))
	}
	return nil
}

// PlanOffboard is the dry run: it reads what the offboard steps would read
// and lists, in their order, what they would remove and what they would
// keep. It sends no mutating request.
func (a *Activities) PlanOffboard(ctx context.Context, in wire.PlanOffboardInput) (wire.PlanOffboardResult, error) {
	const step = wire.StepPlanOffboard
	ctx, _, stop := withPulse(ctx)
	defer stop()
	p := in.Participant
	var out wire.PlanOffboardResult
	add := func(format string, args ...any) { out.Changes = append(out.Changes, fmt.Sprintf(format, args...)) }

	prior, err := a.PriorRuns(ctx, wire.PriorRunsInput{WorkflowID: in.WorkflowID})
	if err != nil {
		return out, err
	}
	out.UserCreated = prior.UserCreated
	u, err := a.lookupUser(ctx, step, p.Email)
	if err != nil {
		return out, err
	}
	if u != nil {
		out.UserID = u.Id
		assigned, err := a.assigned(ctx, step, u.Id)
		switch {
		case err != nil:
			return out, err
		case assigned && prior.UserCreated:
			add("would remove the workspace assignment")
		case assigned:
			add("would keep the workspace assignment %s", keptPreexisting)
		}
	}
	cs, err := a.taggedClusters(ctx, step, strings.ToLower(p.Email))
	if err != nil {
		return out, err
	}
	for _, c := range cs {
		add("would terminate and permanently delete cluster %s (%s)", c.ClusterId, c.State)
	}
	held, err := a.heldGrants(ctx, step, principal(u, p.Email), in.Catalog, p.Schema)
	if err != nil {
		return out, err
	}
	for _, g := range held {
		add("would revoke %s on %s %s", joinPrivileges(g.Privileges), g.Type, g.Name)
	}
	full := strings.ToLower(cmp.Or(in.Catalog, a.Settings.Catalog) + "." + p.Schema)
	if in.Options.DropSchemas {
		if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
			return out, classify(step, fmt.Errorf("get schema %s: %w", full, err))
		}
		_, err := a.Workspace.Schemas.Get(ctx, catalog.GetSchemaRequest{FullName: full})
		switch {
		case err == nil:
			add("would drop schema %s with its contents", full)
		case !errors.Is(err, apierr.ErrNotFound):
			return out, classify(step, fmt.Errorf("get schema %s: %w", full, err))
		}
	}
	switch {
	case u == nil:
	case !prior.UserCreated:
		add("would keep the account user %s %s", u.Id, keptPreexisting)
	case in.Options.DeleteUsers:
		add("would delete the account user %s", u.Id)
	case u.Active:
		add("would deactivate the account user %s", u.Id)
	}
	if len(out.Changes) == 0 {
		add("nothing to remove")
	}
	return out, nil
}
