package activities

// Readiness checks: will a batch work on this workspace, and what will it
// do? They only read (never write), and both `starter plan` (PlanWorkspace)
// and batch setup (SetupBatch) run them, so a batch that cannot finish
// fails before it creates anything. See docs/real-workspace.md §1-3, 7.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/listing"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"go.temporal.io/sdk/temporal"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// Caps that a large event meets (docs/real-workspace.md §2), when Settings
// leaves them at 0.
const (
	DefaultMaxAccountUsers      = 10000
	DefaultMaxSchemasPerCatalog = 10000
)

// Check names, in the order they are reported.
const (
	CheckAccountAdmin  = "account_admin"
	CheckCatalog       = "catalog"
	CheckCatalogRights = "catalog_rights"
	CheckSharedGrants  = "shared_grants"
	CheckPolicy        = "policy"
	CheckClusterSpec   = "cluster_spec"
	CheckRuntime       = "runtime"
	CheckNodeType      = "node_type"
	CheckUserCap       = "user_cap"
	CheckSchemaCap     = "schema_cap"
)

// scimPageSize is the page of the one listing of all account users.
const scimPageSize = 1000

// CurrentUserAPI is satisfied by iam.CurrentUserInterface (WorkspaceClient.CurrentUser).
type CurrentUserAPI interface {
	Me(ctx context.Context, request iam.MeRequest) (*iam.User, error)
}

// MetastoresAPI is satisfied by catalog.MetastoresInterface (WorkspaceClient.Metastores).
type MetastoresAPI interface {
	Summary(ctx context.Context) (*catalog.GetMetastoreSummaryResponse, error)
}

// EffectiveGrantsAPI is satisfied by catalog.GrantsInterface (WorkspaceClient.Grants).
type EffectiveGrantsAPI interface {
	GetEffective(ctx context.Context, request catalog.GetEffectiveRequest) (*catalog.EffectivePermissionsList, error)
}

// SchemaListAPI is satisfied by catalog.SchemasInterface (WorkspaceClient.Schemas).
type SchemaListAPI interface {
	List(ctx context.Context, request catalog.ListSchemasRequest) listing.Iterator[catalog.SchemaInfo]
}

// PlanWorkspace is the read-only activity behind `starter plan`: every
// readiness check, and the roster's pending participants (those Cohort has
// not provisioned) split into new ones and ones that already have an
// account user.
func (a *Activities) PlanWorkspace(ctx context.Context, in wire.PlanWorkspaceInput) (wire.PlanWorkspaceResult, error) {
	ref := in.Pending
	if ref.Key == "" {
		ref = in.Roster
	}
	ps, err := a.loadRoster(ref)
	if err != nil {
		return wire.PlanWorkspaceResult{}, err
	}
	r, err := a.readiness(ctx, ps)
	if err != nil {
		return wire.PlanWorkspaceResult{}, err
	}
	return wire.PlanWorkspaceResult{Checks: r.checks, New: r.newUsers, Existing: len(r.existing),
		ExistingEmails: r.existing[:min(len(r.existing), wire.MaxListedEmails)], Catalog: r.catalog, Cluster: r.spec}, nil
}

// loadRoster reads a whole stored roster (an empty ref is no participants).
func (a *Activities) loadRoster(ref roster.Ref) ([]roster.Participant, error) {
	if ref.Key == "" {
		return nil, nil
	}
	ps, err := a.Roster.Load(ref, 0, ref.Count)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("load roster %s: %v", ref.Key, err), wire.ErrNotFound, err)
	}
	return ps, nil
}

// ready is what the checks found and resolved.
type ready struct {
	checks        []wire.Check
	catalog       string
	catalogExists bool
	spec          wire.ClusterSpec
	newUsers      int
	existing      []string // emails of pending participants with an account user
}

// blocking lists every blocking problem with its fix, or "" when none.
func (r *ready) blocking() string {
	var out []string
	for _, c := range r.checks {
		if c.Blocking {
			s := c.Name + ": " + c.Detail
			if c.Fix != "" {
				s += " (fix: " + c.Fix + ")"
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return fmt.Sprintf("workspace not ready, %d blocking problem(s): %s", len(out), strings.Join(out, "; "))
}

// refused classifies an error met by a check: a transient one (throttling,
// 5xx, connection), which a retry may mend, is returned to abort the checks
// retryably; any other becomes the check's failure text.
func refused(err error) (string, error) {
	cerr := classify(wire.StepSetup, err)
	switch errorType(cerr) {
	case wire.ErrThrottled, wire.ErrUnavailable, wire.ErrPrincipalNotReady:
		return "", cerr
	}
	return appMessage(cerr), nil
}

// readiness runs every check for the participants ps (nil: the checks that
// do not depend on a roster count none). It returns an error only for
// transient failures; everything else is a check's outcome.
func (a *Activities) readiness(ctx context.Context, ps []roster.Participant) (*ready, error) {
	r := &ready{catalog: strings.ToLower(strings.TrimSpace(a.Settings.Catalog))}
	// Every read is started now; the checks below take their results in
	// their order, as if each made its call there.
	rctx, cancel := context.WithCancel(ctx)
	rd := a.startReads(rctx, r.catalog)
	defer func() { cancel(); rd.wg.Wait() }()
	add := func(c wire.Check) { r.checks = append(r.checks, c) }
	skip := func(name, why string) {
		add(wire.Check{Name: name, Detail: "not checked: " + why})
	}
	var transient error
	// fail records a check that Databricks refused; a transient refusal
	// stops the checks.
	fail := func(name, what string, err error, fix string) {
		msg, terr := refused(err)
		if terr != nil {
			transient = terr
			return
		}
		add(wire.Check{Name: name, Blocking: true, Detail: what + ": " + msg, Fix: fix})
	}

	// Credentials and rights: account admin (SCIM, workspace assignment).
	users, err := rd.users.get()
	const adminFix = "run the worker with an account admin identity (account console > User management > the identity > Roles: Account admin), or set databricks.account_profile to one"
	adminOK := false
	switch {
	case err != nil:
		fail(CheckAccountAdmin, "list account users", err, adminFix)
	default:
		_, err := rd.assignments.get()
		if werr := unpaced(err); werr != nil {
			return nil, werr
		}
		if err != nil {
			fail(CheckAccountAdmin, fmt.Sprintf("list the assignments of workspace %d", a.Settings.WorkspaceID), err, adminFix)
		} else {
			adminOK = true
			add(wire.Check{Name: CheckAccountAdmin, OK: true, Detail: fmt.Sprintf("the caller may list account users (%d) and assign workspace %d", len(users), a.Settings.WorkspaceID)})
		}
	}
	if transient != nil {
		return nil, transient
	}

	// The catalog, and the rights on it.
	if err := a.checkCatalog(ctx, r, rd, add, fail); err != nil {
		return nil, err
	}
	if transient != nil {
		return nil, transient
	}
	if err := a.checkSharedGrants(rd, add, fail); err != nil {
		return nil, err
	}
	if transient != nil {
		return nil, transient
	}

	// The policy, and a cluster spec it accepts.
	policy, err := rd.policy.get()
	switch {
	case err != nil && errorType(err) == wire.ErrNotFound:
		add(wire.Check{Name: CheckPolicy, Blocking: true, Detail: fmt.Sprintf("no cluster policy named %q is visible to the caller", a.Settings.PolicyName),
			Fix: "check cluster.policy_name; a workspace admin grants the caller CAN_USE on the policy (Compute > Policies > the policy > Permissions)"})
	case err != nil:
		fail(CheckPolicy, fmt.Sprintf("find cluster policy %q", a.Settings.PolicyName), err, "let the caller use the workspace's cluster policies (workspace admin, or CAN_USE on the policy)")
	default:
		add(wire.Check{Name: CheckPolicy, OK: true, Detail: fmt.Sprintf("policy %q (%s) is visible to the caller, who may create clusters under it", policy.Name, policy.PolicyId)})
	}
	if transient != nil {
		return nil, transient
	}
	if policy == nil {
		for _, n := range []string{CheckClusterSpec, CheckRuntime, CheckNodeType} {
			skip(n, "no policy")
		}
	} else if err := a.checkClusterSpec(r, rd, policy, ps, add, fail); err != nil {
		return nil, err
	}
	if transient != nil {
		return nil, transient
	}

	// Room under the caps.
	pending := a.splitNewUsers(r, users, ps)
	if !adminOK {
		skip(CheckUserCap, "the caller cannot list account users")
	} else {
		capUsers := orDefault(a.Settings.MaxAccountUsers, DefaultMaxAccountUsers)
		room := capUsers - len(users)
		c := wire.Check{Name: CheckUserCap, OK: pending <= room,
			Detail: fmt.Sprintf("%d account users of at most %d; this roster adds %d, leaving %d", len(users), capUsers, pending, room-pending)}
		if !c.OK {
			c.Blocking = true
			c.Fix = "ask the Databricks account team to raise the account's user limit (users and service principals), remove users no longer needed, or split the roster"
		}
		add(c)
	}
	if err := a.checkSchemaCap(r, rd, ps, add, fail, skip); err != nil {
		return nil, err
	}
	if transient != nil {
		return nil, transient
	}
	return r, nil
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

// listAccountUsers lists every account user once, in pages (one SCIM list
// per page, paced as scim_list): cheaper at a large roster than a filtered
// lookup per participant.
func (a *Activities) listAccountUsers(ctx context.Context) ([]iam.User, error) {
	if err := a.Limits.Wait(ctx, ClassSCIMList); err != nil {
		return nil, err
	}
	it := a.Account.Users.List(ctx, iam.ListAccountUsersRequest{Count: scimPageSize, Attributes: "id,userName,emails,active"})
	var out []iam.User
	for n := 1; it.HasNext(ctx); n++ {
		u, err := it.Next(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
		if n%scimPageSize == 0 {
			if err := a.Limits.Wait(ctx, ClassSCIMList); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// splitNewUsers splits the participants into new ones (no account user with
// their email) and existing ones, and returns how many users a batch would
// create.
func (a *Activities) splitNewUsers(r *ready, users []iam.User, ps []roster.Participant) int {
	active := map[string]bool{}
	for _, u := range users {
		active[strings.ToLower(u.UserName)] = u.Active
		for _, e := range u.Emails {
			active[strings.ToLower(e.Value)] = u.Active
		}
	}
	seen := map[string]bool{}
	for _, p := range ps {
		email := strings.ToLower(strings.TrimSpace(p.Email))
		if seen[email] {
			continue
		}
		seen[email] = true
		act, ok := active[email]
		switch {
		case !ok:
			r.newUsers++
		case act:
			r.existing = append(r.existing, email)
		default:
			r.existing = append(r.existing, email+" (inactive)")
		}
	}
	return r.newUsers
}

// checkCatalog: the catalog exists, or a batch can create it (a storage
// root: configured, or the metastore's); the caller owns it or holds
// MANAGE, USE_CATALOG and CREATE_SCHEMA on it.
func (a *Activities) checkCatalog(ctx context.Context, r *ready, rd *reads, add func(wire.Check), fail func(string, string, error, string)) error {
	name := r.catalog
	if name == "" {
		add(wire.Check{Name: CheckCatalog, Blocking: true, Detail: "no catalog configured", Fix: "set catalog.name"})
		add(wire.Check{Name: CheckCatalogRights, Detail: "not checked: no catalog"})
		return nil
	}
	info, err := rd.catalog.get()
	if werr := unpaced(err); werr != nil {
		return werr
	}
	switch {
	case err == nil:
		r.catalogExists = true
		owner := ""
		if info != nil {
			owner = info.Owner
		}
		add(wire.Check{Name: CheckCatalog, OK: true, Detail: fmt.Sprintf("catalog %s exists (owner %s)", name, owner)})
		return a.checkCatalogRights(ctx, rd, name, owner, add, fail)
	case !errors.Is(err, apierr.ErrNotFound):
		fail(CheckCatalog, "get catalog "+name, err, "let the caller see the catalog (USE CATALOG), or check catalog.name")
		add(wire.Check{Name: CheckCatalogRights, Detail: "not checked: the catalog could not be read"})
		return nil
	case !a.Settings.CreateCatalog:
		add(wire.Check{Name: CheckCatalog, Blocking: true, Detail: fmt.Sprintf("catalog %s does not exist and catalog.create_if_missing is false", name),
			Fix: fmt.Sprintf("create catalog %s beforehand (Catalog Explorer > Create catalog, with a managed location), or set catalog.create_if_missing: true and catalog.storage_root", name)})
		add(wire.Check{Name: CheckCatalogRights, Detail: "not checked: no catalog"})
		return nil
	}
	root := strings.TrimSpace(a.Settings.StorageRoot)
	where := "at catalog.storage_root " + root
	if root == "" {
		if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
			return classify(wire.StepSetup, err)
		}
		m, err := a.Workspace.Metastores.Summary(ctx)
		if err != nil {
			fail(CheckCatalog, fmt.Sprintf("catalog %s does not exist; read the metastore summary", name), err,
				"set catalog.storage_root, or create the catalog beforehand")
			add(wire.Check{Name: CheckCatalogRights, Detail: "not checked: no catalog"})
			return nil
		}
		if m.StorageRoot == "" {
			add(wire.Check{Name: CheckCatalog, Blocking: true,
				Detail: fmt.Sprintf("catalog %s does not exist and the metastore has no root storage, so creating it without a storage root fails (INVALID_STATE)", name),
				Fix:    fmt.Sprintf("set catalog.storage_root to a URL under an external location the caller may use (abfss://container@account.dfs.core.windows.net/path), or create catalog %s beforehand", name)})
			add(wire.Check{Name: CheckCatalogRights, Detail: "not checked: no catalog"})
			return nil
		}
		where = "in the metastore's root storage"
	}
	add(wire.Check{Name: CheckCatalog, OK: true, Detail: fmt.Sprintf("catalog %s does not exist; a batch creates it %s", name, where)})
	add(wire.Check{Name: CheckCatalogRights, OK: true, Detail: fmt.Sprintf("the caller will own catalog %s once it creates it (creating it needs CREATE CATALOG on the metastore, not checked)", name)})
	return nil
}

func (a *Activities) checkCatalogRights(ctx context.Context, rd *reads, name, owner string, add func(wire.Check), fail func(string, string, error, string)) error {
	const what = "find who the caller is"
	me, err := rd.me.get()
	if werr := unpaced(err); werr != nil {
		return werr
	}
	if err != nil {
		fail(CheckCatalogRights, what, err, "check the workspace credentials")
		return nil
	}
	if strings.EqualFold(me.UserName, owner) {
		add(wire.Check{Name: CheckCatalogRights, OK: true, Detail: fmt.Sprintf("the caller %s owns catalog %s", me.UserName, name)})
		return nil
	}
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return classify(wire.StepSetup, err)
	}
	eff, err := a.Workspace.Effective.GetEffective(ctx, catalog.GetEffectiveRequest{SecurableType: "catalog", FullName: name, Principal: me.UserName})
	if err != nil {
		fail(CheckCatalogRights, fmt.Sprintf("read %s's effective privileges on catalog %s", me.UserName, name), err,
			fmt.Sprintf("make the caller the owner of catalog %s, or grant it MANAGE, USE CATALOG and CREATE SCHEMA", name))
		return nil
	}
	held := map[string]bool{}
	for _, pa := range eff.PrivilegeAssignments {
		for _, p := range pa.Privileges {
			held[string(p.Privilege)] = true
		}
	}
	var missing []string
	if !held["ALL_PRIVILEGES"] {
		for _, p := range []string{"MANAGE", "USE_CATALOG", "CREATE_SCHEMA"} {
			if !held[p] {
				missing = append(missing, p)
			}
		}
	}
	if len(missing) == 0 {
		add(wire.Check{Name: CheckCatalogRights, OK: true, Detail: fmt.Sprintf("the caller %s may create schemas and grant in catalog %s", me.UserName, name)})
		return nil
	}
	add(wire.Check{Name: CheckCatalogRights, Blocking: true,
		Detail: fmt.Sprintf("the caller %s does not own catalog %s (owner %s) and lacks %s on it", me.UserName, name, owner, strings.Join(missing, ", ")),
		Fix:    fmt.Sprintf("GRANT MANAGE, USE CATALOG, CREATE SCHEMA ON CATALOG %s TO `%s` (or make it the owner)", name, me.UserName)})
	return nil
}

// checkSharedGrants: every shared grant's catalog or schema exists.
func (a *Activities) checkSharedGrants(rd *reads, add func(wire.Check), fail func(string, string, error, string)) error {
	if len(a.Settings.SharedGrants) == 0 {
		add(wire.Check{Name: CheckSharedGrants, OK: true, Detail: "none configured"})
		return nil
	}
	var problems []string
	for _, found := range rd.securables {
		_, err := found.get()
		switch t := errorType(err); {
		case err == nil:
		case t == wire.ErrThrottled || t == wire.ErrUnavailable:
			return err
		default:
			problems = append(problems, redact(appMessage(err)))
		}
	}
	if len(problems) > 0 {
		add(wire.Check{Name: CheckSharedGrants, Blocking: true, Detail: strings.Join(problems, "; "),
			Fix: "create the shared catalog or schema, or correct catalog.shared_grants"})
		return nil
	}
	add(wire.Check{Name: CheckSharedGrants, OK: true, Detail: fmt.Sprintf("%d shared securable(s) exist", len(a.Settings.SharedGrants))})
	return nil
}

func appMessage(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return err.Error()
}

// findPolicy finds the cluster policy by name among those the caller may
// use (the policies list shows a non-admin only those).
func (a *Activities) findPolicy(ctx context.Context) (*compute.Policy, error) {
	name := a.Settings.PolicyName
	if name == "" {
		return nil, notFound(wire.StepSetup, "find cluster policy: no policy name configured")
	}
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return nil, classify(wire.StepSetup, err)
	}
	p, err := a.Workspace.Policies.GetByName(ctx, name)
	switch {
	case err != nil:
		return nil, classify(wire.StepSetup, fmt.Errorf("find cluster policy %q: %w", name, err))
	case p == nil || p.PolicyId == "":
		return nil, notFound(wire.StepSetup, "find cluster policy %q: no such policy in the workspace", name)
	}
	return p, nil
}

// checkSchemaCap: the catalog has room for the participants' schemas that
// do not exist yet (default and information_schema count).
func (a *Activities) checkSchemaCap(r *ready, rd *reads, ps []roster.Participant, add func(wire.Check),
	fail func(string, string, error, string), skip func(string, string)) error {
	capSchemas := orDefault(a.Settings.MaxSchemasPerCatalog, DefaultMaxSchemasPerCatalog)
	have := map[string]bool{}
	switch {
	case r.catalog == "":
		skip(CheckSchemaCap, "no catalog")
		return nil
	case r.catalogExists:
		names, err := rd.schemas.get()
		if werr := unpaced(err); werr != nil {
			return werr
		}
		if err != nil {
			fail(CheckSchemaCap, "list the schemas of catalog "+r.catalog, err, "let the caller list the catalog's schemas (USE CATALOG)")
			return nil
		}
		for _, n := range names {
			have[n] = true
		}
	default:
		have["default"], have["information_schema"] = true, true // a new catalog holds them
	}
	count := len(have)
	needed := 0
	for _, p := range ps {
		s := strings.ToLower(p.Schema)
		if s != "" && !have[s] {
			have[s] = true
			needed++
		}
	}
	c := wire.Check{Name: CheckSchemaCap, OK: count+needed <= capSchemas,
		Detail: fmt.Sprintf("%d schemas in catalog %s of at most %d (default and information_schema included); this roster adds %d, leaving %d",
			count, r.catalog, capSchemas, needed, capSchemas-count-needed)}
	if !c.OK {
		c.Blocking = true
		c.Fix = "drop schemas no longer needed, use another catalog for part of the roster (catalog.name), or ask Databricks to raise the quota"
	}
	add(c)
	return nil
}
