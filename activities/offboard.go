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
// Temporal: which account user Cohort created (a CreateUser that created, or
// a result that recorded it), the grants it added and has not revoked, the
// schema, the mode of the latest run, and the last cluster. Runs whose
// history Temporal no longer keeps (past the namespace retention) say
// nothing: each run's result carries these forward, so the latest completed
// one is enough, with the runs after it.
//
// Runs are read newest first, and only until the answer is complete (a
// completed run, the user Cohort created or a result of this version, a
// schema and a cluster known): a daily reconcile reads one or two
// histories, not all of them.
func (a *Activities) PriorRuns(ctx context.Context, in wire.PriorRunsInput) (wire.PriorRunsResult, error) {
	runIDs, err := a.priorRunIDs(ctx, in.WorkflowID, in.RunID)
	if err != nil {
		return wire.PriorRunsResult{}, classify(wire.StepPriorRuns, err)
	}
	out := wire.PriorRunsResult{Runs: len(runIDs)}
	var newer []priorRun        // runs after the latest completed one, newest first
	var base *priorRun          // the latest completed run
	for i, id := range runIDs { // newest first
		r, err := a.readRun(ctx, in.WorkflowID, id)
		if err != nil {
			return wire.PriorRunsResult{}, classify(wire.StepPriorRuns, err)
		}
		out.UserCreated = out.UserCreated || r.userCreated
		out.CreatedUserID = cmp.Or(out.CreatedUserID, r.createdUserID)
		out.Schema = cmp.Or(out.Schema, r.schema)
		if i == 0 {
			out.LastMode = r.mode
			out.Offboarded = r.mode == wire.ModeOffboard || r.offboarded
		}
		if out.ClusterID == "" && r.completed {
			out.ClusterID = r.clusterID
		}
		if base == nil {
			if r.completed {
				base = &r
			} else {
				newer = append(newer, r)
			}
		}
		// A result of this version carries the created user's id forward
		// (recorded grants mark one): none there means none older either.
		if base != nil && (out.CreatedUserID != "" || base.grantsRecorded) && out.Schema != "" && out.ClusterID != "" {
			break
		}
	}
	// The grants: the latest completed run's record, then what the runs
	// after it added and revoked, in the order they did.
	if base != nil {
		out.Grants, out.GrantsRecorded = base.grants, base.grantsRecorded
	}
	for _, r := range slices.Backward(newer) {
		for _, op := range r.grantOps {
			out.GrantsRecorded = true
			if op.revoke {
				out.Grants = wire.SubtractGrants(out.Grants, op.grants)
			} else {
				out.Grants = wire.MergeGrants(out.Grants, op.grants)
			}
		}
	}
	return out, nil
}

// priorRun is what one earlier run of a participant's workflow says.
type priorRun struct {
	mode          string
	userCreated   bool
	createdUserID string
	offboarded    bool
	completed     bool
	clusterID     string
	schema        string
	// grants and grantsRecorded: the completed run's record; grantOps: what
	// its Grant and RevokeGrants steps did, in order (for a run that did
	// not complete).
	grants         []wire.SecurableGrant
	grantsRecorded bool
	grantOps       []grantOp
}

// grantOp is one step's change to what Cohort added.
type grantOp struct {
	revoke bool
	grants []wire.SecurableGrant
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

// readRun reads one run's history: its input's mode, the completions of
// CreateUser (or the earlier shape's ProvisionAccess), CreateSchema, Grant
// and RevokeGrants, and its result.
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
				UserID        string                `json:"user_id"`      // CreateUser, ProvisionAccess
				Created       bool                  `json:"created"`      // CreateUser, CreateSchema
				UserCreated   bool                  `json:"user_created"` // ProvisionAccess
				FullName      string                `json:"full_name"`    // CreateSchema
				Schema        string                `json:"schema"`       // ProvisionAccess
				Added         []wire.SecurableGrant `json:"added"`        // Grant
				Recorded      bool                  `json:"recorded"`     // Grant
				RevokedGrants []wire.SecurableGrant `json:"revoked_grants"`
			}
			if dc.FromPayloads(attrs.GetResult(), &res) != nil {
				continue
			}
			switch scheduled[attrs.GetScheduledEventId()] {
			case wire.CreateUserName:
				if res.Created {
					r.userCreated, r.createdUserID = true, res.UserID
				}
			case wire.ProvisionAccessName:
				if res.UserCreated {
					r.userCreated, r.createdUserID = true, res.UserID
				}
				r.schema = cmp.Or(res.Schema, r.schema)
			case wire.CreateSchemaName:
				r.schema = cmp.Or(res.FullName, r.schema)
			case wire.GrantName:
				if res.Recorded {
					r.grantOps = append(r.grantOps, grantOp{grants: res.Added})
				}
			case wire.RevokeGrantsName:
				if len(res.RevokedGrants) > 0 {
					r.grantOps = append(r.grantOps, grantOp{revoke: true, grants: res.RevokedGrants})
				}
			}
		case ev.GetWorkflowExecutionCompletedEventAttributes() != nil:
			var res wire.Provisioned
			if dc.FromPayloads(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res) == nil {
				r.completed = true
				r.userCreated = r.userCreated || res.UserCreated
				r.createdUserID = cmp.Or(res.CreatedUserID, r.createdUserID)
				r.offboarded = res.Offboarded
				r.clusterID = res.ClusterID
				r.schema = cmp.Or(res.Schema, r.schema)
				r.grants, r.grantsRecorded = res.Grants, res.GrantsRecorded
			}
		}
	}
	return r, nil
}

// principal is the user's userName (the principal of grants), else the email.
func principal(u *iam.User, email string) string {
	if u != nil && u.UserName != "" {
		return strings.ToLower(u.UserName)
	}
	return strings.ToLower(strings.TrimSpace(email))
}

// ownsUser says whether u is the account user Cohort created, whose id is
// createdID, and if not, why it is kept: a user found with another id was
// created by someone else (re-created since); no id known means the user
// existed before the event, or Cohort cannot tell (results of earlier
// versions, which recorded user_created without the id).
func ownsUser(u *iam.User, createdID string) (bool, string) {
	switch {
	case createdID == "":
		return false, keptPreexisting
	case u.Id != createdID:
		return false, fmt.Sprintf("(not the one Cohort created, %s; re-created by someone since?)", createdID)
	}
	return true, ""
}

// RemoveAssignment is step remove_assignment: the user Cohort created loses
// the workspace; any other user (existing before the event, or re-created by
// someone since) keeps it.
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
	if owned, why := ownsUser(u, in.CreatedUserID); !owned {
		out.Change = "kept the workspace assignment of account user " + u.Id + " " + why
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

// RemoveClusters is step remove_clusters: the participant's clusters that
// are Cohort's (ownCluster: tagged for them and marked by Cohort, or the
// one Cohort recorded) are unpinned, terminated and permanently deleted; a
// cluster anyone else made with their tag is kept, and said so. A cluster
// already gone (deleted, purged) is done.
//
// With in.Listed the clusters are found by id: the one Cohort recorded and
// those the batch's single listing found tagged for them, each read with
// one clusters/get; nothing is listed. Without (inputs of batches started
// before the listing) every cluster of the workspace is listed, as before.
func (a *Activities) RemoveClusters(ctx context.Context, in wire.RemoveClustersInput) (wire.RemoveClustersResult, error) {
	const step = wire.StepRemoveClusters
	ctx, _, stop := withPulse(ctx)
	defer stop()
	email := strings.ToLower(strings.TrimSpace(in.Email))
	cs, err := a.participantClusters(ctx, step, email, in)
	if err != nil {
		return wire.RemoveClustersResult{}, err
	}
	var out wire.RemoveClustersResult
	for _, c := range cs {
		if ours, why := a.ownCluster(c.CustomTags, email, c.ClusterId == in.Recorded); !ours {
			out.Kept = append(out.Kept, "cluster "+c.ClusterId+" "+why)
			continue
		}
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

// participantClusters are the clusters an offboard looks at: with
// in.Listed, the recorded one and the listing's candidates, read by id (one
// clusters/get each; gone ones left out), else every cluster tagged for the
// participant, listed.
func (a *Activities) participantClusters(ctx context.Context, step, email string, in wire.RemoveClustersInput) ([]compute.ClusterDetails, error) {
	if !in.Listed {
		return a.taggedClusters(ctx, step, email)
	}
	if a.Settings.TagKey == "" {
		return nil, invalid(step, "find clusters of %s: no participant tag key configured", email)
	}
	var ids []string
	for _, id := range append([]string{in.Recorded}, in.Tagged...) {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	var out []compute.ClusterDetails
	for _, id := range ids {
		c, err := a.getCluster(ctx, step, id)
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, *c)
		}
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

// RevokeGrants is step revoke_grants: exactly what step grant added (the
// recorded Grants) and the principal still holds is revoked, nothing else;
// what they held before the event stays. For runs of earlier versions,
// which kept no record, what the user Cohort created holds on the granted
// securables counts as Cohort's (everything on their own schema); a user
// Cohort did not create keeps everything. Only what they hold is sent; a
// securable gone (the schema dropped) or a principal gone (the user
// deleted) is done.
func (a *Activities) RevokeGrants(ctx context.Context, in wire.RevokeGrantsInput) (wire.RevokeGrantsResult, error) {
	const step = wire.StepRevokeGrants
	u, err := a.lookupUser(ctx, step, in.Email)
	if err != nil {
		return wire.RevokeGrantsResult{}, err
	}
	plan, err := a.planRevoke(ctx, liveView{a}, step, u, in)
	if err != nil {
		return wire.RevokeGrantsResult{}, err
	}
	out := wire.RevokeGrantsResult{Kept: plan.kept}
	for _, g := range plan.revoke {
		what := fmt.Sprintf("revoke %s on %s %s from %s", joinPrivileges(g.Privileges), g.Type, g.Name, plan.who)
		if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
			return out, classify(step, fmt.Errorf("%s: %w", what, err))
		}
		_, err := a.Workspace.Grants.Update(ctx, catalog.UpdatePermissions{
			SecurableType:             g.Type,
			FullName:                  g.Name,
			Changes:                   []catalog.PermissionsChange{{Principal: plan.who, Remove: g.Privileges}},
			OmitPermissionsInResponse: true,
		})
		if err != nil && !errors.Is(err, apierr.ErrNotFound) {
			return out, classify(step, fmt.Errorf("%s: %w", what, err))
		}
		out.Revoked = append(out.Revoked, fmt.Sprintf("%s on %s %s", joinPrivileges(g.Privileges), g.Type, g.Name))
		out.RevokedGrants = append(out.RevokedGrants, wire.SecurableGrant{Type: g.Type, Name: g.Name, Privileges: privilegeNames(g.Privileges)})
	}
	return out, nil
}

// revokePlan is what an offboard does with a principal's grants: revoke
// these, keep those (said as "PRIVS on TYPE NAME (why)").
type revokePlan struct {
	who    string
	revoke []securableGrant
	kept   []string
}

// planRevoke reads (through v), for each securable step grant writes to
// and each one recorded, the privileges the principal holds directly there,
// and sorts them into what Cohort added (revoked) and what it did not
// (kept, said only for the privileges Cohort grants and for the
// participant's own schema).
func (a *Activities) planRevoke(ctx context.Context, v offboardView, step string, u *iam.User, in wire.RevokeGrantsInput) (revokePlan, error) {
	plan := revokePlan{who: principal(u, in.Email)}
	if u != nil && in.CreatedUserID != "" && u.Id != in.CreatedUserID {
		plan.kept = []string{fmt.Sprintf("the grants of account user %s (not the one Cohort created, %s; re-created by someone since?)",
			u.Id, in.CreatedUserID)}
		return plan, nil
	}
	cat := strings.ToLower(cmp.Or(in.Catalog, a.Settings.Catalog))
	own := cat + "." + strings.ToLower(strings.TrimSpace(in.Schema))
	securables := a.desiredGrants(cat, own)
	for _, g := range in.Grants {
		if !slices.ContainsFunc(securables, func(s securableGrant) bool { return s.Type == g.Type && s.Name == g.Name }) {
			securables = append(securables, securableGrant{Type: strings.ToLower(g.Type), Name: strings.ToLower(g.Name)})
		}
	}
	// Runs of earlier versions kept no record: the user Cohort created holds
	// only what Cohort gave (as far as anyone can tell).
	legacyOwned := !in.GrantsRecorded && in.CreatedUserID != ""
	for _, g := range securables {
		held, err := v.privileges(ctx, plan.who, g)
		if errors.Is(err, apierr.ErrNotFound) {
			continue // the securable (or the principal) is gone
		}
		if err != nil {
			return plan, classify(step, err)
		}
		ownSchema := g.Type == "schema" && g.Name == own
		recorded := wire.GrantsOn(in.Grants, g.Type, g.Name)
		var revoke, before, other []catalog.Privilege
		for _, p := range held {
			desired := slices.Contains(g.Privileges, p)
			switch {
			case in.GrantsRecorded && slices.Contains(recorded, string(p)), legacyOwned && (ownSchema || desired):
				revoke = append(revoke, p)
			case desired:
				before = append(before, p)
			case ownSchema:
				other = append(other, p)
			}
		}
		if len(revoke) > 0 {
			plan.revoke = append(plan.revoke, securableGrant{Type: g.Type, Name: g.Name, Privileges: revoke})
		}
		why := "held before the event"
		if !in.GrantsRecorded {
			why = "Cohort kept no record of what it granted, and did not create this user or cannot tell"
		}
		if len(before) > 0 {
			plan.kept = append(plan.kept, fmt.Sprintf("%s on %s %s (%s)", joinPrivileges(before), g.Type, g.Name, why))
		}
		if len(other) > 0 {
			plan.kept = append(plan.kept, fmt.Sprintf("%s on %s %s (not granted by Cohort)", joinPrivileges(other), g.Type, g.Name))
		}
	}
	return plan, nil
}

// DropSchema is step drop_schema: the participant's schema, with its
// contents (force; Unity Catalog keeps it for UNDROP for 7 days), if it is
// theirs: marked for them (wire.SchemaOwnerProperty) or, unmarked (made by
// an earlier version), recorded by their runs. A schema marked for someone
// else, or unmarked and unrecorded, is kept.
func (a *Activities) DropSchema(ctx context.Context, in wire.DropSchemaInput) (wire.DropSchemaResult, error) {
	const step = wire.StepDropSchema
	full := strings.ToLower(cmp.Or(in.Catalog, a.Settings.Catalog) + "." + strings.TrimSpace(in.Schema))
	out := wire.DropSchemaResult{FullName: full}
	if strings.TrimSpace(in.Schema) == "" {
		return out, invalid(step, "drop schema: participant has no schema name")
	}
	// Read first: a schema already dropped costs no mutating request.
	exists, why, err := schemaVerdict(ctx, liveView{a}, step, full, in)
	if err != nil || !exists {
		return out, err
	}
	if why != "" {
		out.Kept = "kept schema " + full + " " + why
		return out, nil
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

// schemaVerdict reads the schema full (through v): whether it exists and,
// if it is not the participant's to drop, why ("" when it is). An input of
// an earlier version (no email) drops as it did.
func schemaVerdict(ctx context.Context, v offboardView, step, full string, in wire.DropSchemaInput) (exists bool, why string, err error) {
	exists, mark, err := v.schema(ctx, step, full)
	switch {
	case err != nil || !exists:
		return false, "", err
	case in.Email == "":
		return true, "", nil
	}
	switch {
	case mark == ownerMark(in.Email), mark == "" && in.Recorded:
		return true, "", nil
	case mark != "":
		return true, "(marked as another participant's)", nil
	}
	return true, "(not marked as this participant's, and no run of theirs recorded it)", nil
}

// RemoveUser is step remove_user: the account user Cohort created (the one
// with that id) is deactivated (SCIM PATCH active false: reversible, keeps
// their assets) or, with Delete, deleted. Any other user (existing before
// the event, or re-created by someone since) is kept.
func (a *Activities) RemoveUser(ctx context.Context, in wire.RemoveUserInput) (wire.RemoveUserResult, error) {
	const step = wire.StepRemoveUser
	ctx, _, stop := withPulse(ctx) // it may wait its turn at the SCIM rates
	defer stop()
	u, err := a.lookupUser(ctx, step, in.Email)
	if err != nil || u == nil {
		return wire.RemoveUserResult{}, err
	}
	out := wire.RemoveUserResult{UserID: u.Id}
	owned, why := ownsUser(u, in.CreatedUserID)
	switch {
	case !owned:
		out.Change = "kept the account user " + u.Id + " " + why
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

// PlanOffboard is the dry run of one participant without the batch's read
// (a batch started before it, or an input without a snapshot): it reads
// what the offboard steps would read and lists, in their order, what they
// would remove and what they would keep. It sends no mutating request.
func (a *Activities) PlanOffboard(ctx context.Context, in wire.PlanOffboardInput) (wire.PlanOffboardResult, error) {
	ctx, _, stop := withPulse(ctx)
	defer stop()
	prior, err := a.PriorRuns(ctx, wire.PriorRunsInput{WorkflowID: in.WorkflowID})
	if err != nil {
		return wire.PlanOffboardResult{}, err
	}
	return a.planOffboard(ctx, liveView{a}, in, prior)
}

// planOffboard is the dry run's verdicts, whatever answers v's questions
// (Databricks live, or the batch's read): what each offboard step would
// remove and what it would keep, and why, in the steps' order.
func (a *Activities) planOffboard(ctx context.Context, v offboardView, in wire.PlanOffboardInput, prior wire.PriorRunsResult) (wire.PlanOffboardResult, error) {
	const step = wire.StepPlanOffboard
	p := in.Participant
	var out wire.PlanOffboardResult
	add := func(format string, args ...any) { out.Changes = append(out.Changes, fmt.Sprintf(format, args...)) }

	out.UserCreated = prior.UserCreated
	u, err := v.user(ctx, step, p.Email)
	if err != nil {
		return out, err
	}
	var owned bool
	var why string
	if u != nil {
		out.UserID = u.Id
		owned, why = ownsUser(u, prior.CreatedUserID)
		assigned, err := v.assigned(ctx, step, u.Id)
		switch {
		case err != nil:
			return out, err
		case assigned && owned:
			add("would remove the workspace assignment")
		case assigned:
			add("would keep the workspace assignment of account user %s %s", u.Id, why)
		}
	}
	cs, err := v.clusters(ctx, step, strings.ToLower(p.Email))
	if err != nil {
		return out, err
	}
	for _, c := range cs {
		if ours, why := a.ownCluster(c.CustomTags, strings.ToLower(strings.TrimSpace(p.Email)), c.ClusterId == prior.ClusterID); !ours {
			add("would keep cluster %s %s", c.ClusterId, why)
			continue
		}
		add("would terminate and permanently delete cluster %s (%s)", c.ClusterId, c.State)
	}
	cat, schema, recorded := wire.ParticipantSchema(prior.Schema, in.Catalog, p.Schema)
	plan, err := a.planRevoke(ctx, v, step, u, wire.RevokeGrantsInput{Email: p.Email, Catalog: cat, Schema: schema,
		CreatedUserID: prior.CreatedUserID, Grants: prior.Grants, GrantsRecorded: prior.GrantsRecorded})
	if err != nil {
		return out, err
	}
	for _, g := range plan.revoke {
		add("would revoke %s on %s %s", joinPrivileges(g.Privileges), g.Type, g.Name)
	}
	for _, k := range plan.kept {
		add("would keep %s", k)
	}
	if in.Options.DropSchemas {
		full := strings.ToLower(cmp.Or(cat, a.Settings.Catalog) + "." + schema)
		exists, why, err := schemaVerdict(ctx, v, step, full, wire.DropSchemaInput{Catalog: cat, Schema: schema, Email: p.Email, Recorded: recorded})
		switch {
		case err != nil:
			return out, err
		case exists && why == "":
			add("would drop schema %s with its contents", full)
		case exists:
			add("would keep schema %s %s", full, why)
		}
	}
	switch {
	case u == nil:
	case !owned:
		add("would keep the account user %s %s", u.Id, why)
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
