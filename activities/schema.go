package activities

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"go.temporal.io/sdk/activity"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// CreateSchema is step create_schema: the participant's own schema in the
// shared catalog, marked as theirs (see ensureSchema).
func (a *Activities) CreateSchema(ctx context.Context, in wire.CreateSchemaInput) (wire.CreateSchemaResult, error) {
	sc, err := a.ensureSchema(ctx, cmp.Or(in.Catalog, a.Settings.Catalog), in.Participant.Schema, in.Participant.Email, in.Recorded)
	if err != nil {
		return wire.CreateSchemaResult{}, err
	}
	return wire.CreateSchemaResult{FullName: sc.full, Created: sc.created, Renamed: sc.renamed}, nil
}

// Grant is step grant: the participant's privileges on the shared catalog,
// their schema and the shared grants (and nothing for anyone else). The
// result lists what the principal did not hold before: what an offboard
// revokes.
func (a *Activities) Grant(ctx context.Context, in wire.GrantInput) (wire.GrantResult, error) {
	var earlier []wire.SecurableGrant
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		// What an earlier attempt added before it failed: held now, but
		// Cohort's.
		var pr progress
		if activity.GetHeartbeatDetails(ctx, &pr) == nil {
			earlier = pr.Added
		}
	}
	added, err := a.grant(ctx, in.Principal, cmp.Or(in.Catalog, a.Settings.Catalog), in.Schema, in.PrincipalCreated, earlier)
	return wire.GrantResult{Added: added, Recorded: true}, err
}

// schemaMaxTries bounds the names a collision tries: the roster's, then
// _2 up to _9.
const schemaMaxTries = 9

// ensuredSchema is the schema a participant ends up with.
type ensuredSchema struct {
	full    string
	created bool
	renamed string // why it is not the roster's name
}

// ownerMark is the value of wire.SchemaOwnerProperty for a participant.
func ownerMark(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// ensureSchema creates catalog.schema marked with the participant's
// ownerMark. SCHEMA_ALREADY_EXISTS (409) is what a repeat (or an SDK retry of
// a create the server had applied) sees: the schema is read and adopted if
// its mark is the participant's, or, unmarked (made by an earlier version),
// if the participant's own runs recorded it (recorded, else their earlier
// runs read from Temporal). Any other schema is someone else's: the next
// name is tried (<schema>_2, _3, ... within the naming max length), the same
// sequence every time, so a participant renamed once finds their schema
// again. Unity Catalog lower-cases names, so the full name is derived from
// the lower-cased parts.
func (a *Activities) ensureSchema(ctx context.Context, cat, schema, email, recorded string) (ensuredSchema, error) {
	const step = wire.StepCreateSchema
	cat, schema = strings.ToLower(strings.TrimSpace(cat)), strings.ToLower(strings.TrimSpace(schema))
	if cat == "" || schema == "" {
		return ensuredSchema{}, invalid(step, "create schema %q.%q: catalog and schema names are required", cat, schema)
	}
	mark := ownerMark(email)
	names := schemaCandidates(schema, cmp.Or(a.Settings.SchemaMaxLen, roster.DefaultMaxLen))
	recorded = strings.ToLower(strings.TrimSpace(recorded))
	if rc, rn, ok := strings.Cut(recorded, "."); ok && rc == cat && rn != "" && !slices.Contains(names[:1], rn) {
		names = append([]string{rn}, slices.DeleteFunc(names, func(n string) bool { return n == rn })...)
	}
	var taken []string
	var prior *wire.PriorRunsResult
	for _, name := range names {
		full := cat + "." + name
		if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
			return ensuredSchema{}, classify(step, fmt.Errorf("create schema %s: %w", full, err))
		}
		info, err := a.Workspace.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: cat, Name: name,
			Properties: map[string]string{wire.SchemaOwnerProperty: mark}})
		switch {
		case err == nil:
			if info != nil && info.FullName != "" {
				full = strings.ToLower(info.FullName)
			}
			return ensuredSchema{full: full, created: true, renamed: renamedWhy(cat+"."+schema, full, taken)}, nil
		case !errors.Is(err, apierr.ErrResourceConflict):
			return ensuredSchema{}, classify(step, fmt.Errorf("create schema %s: %w", full, err))
		}
		owner, err := a.schemaMark(ctx, step, full)
		if err != nil {
			return ensuredSchema{}, err
		}
		mine := owner == mark
		if owner == "" && full == recorded {
			mine = true
		}
		if owner == "" && !mine {
			if prior == nil {
				p, err := a.ownPriorRuns(ctx)
				if err != nil {
					return ensuredSchema{}, err
				}
				prior = &p
			}
			mine = prior.Schema == full
		}
		if mine {
			return ensuredSchema{full: full, renamed: renamedWhy(cat+"."+schema, full, taken)}, nil
		}
		why := "is another participant's"
		if owner == "" {
			why = "was not created by Cohort for this participant"
		}
		taken = append(taken, full+" "+why)
	}
	return ensuredSchema{}, invalid(step, "create schema for %s: every name tried is taken (%s): drop the stray schemas or change naming.schema",
		email, strings.Join(taken, "; "))
}

// schemaCandidates lists the names ensureSchema tries: name, then name_2 up
// to name_<schemaMaxTries>, the base cut so each fits maxLen.
func schemaCandidates(name string, maxLen int) []string {
	out := []string{name}
	for i := 2; i <= schemaMaxTries; i++ {
		suffix := "_" + strconv.Itoa(i)
		base := name
		if len(base)+len(suffix) > maxLen {
			base = strings.TrimRight(base[:max(maxLen-len(suffix), 1)], "_")
		}
		out = append(out, base+suffix)
	}
	return out
}

// renamedWhy says why full is not the roster's name want: the names taken
// before it.
func renamedWhy(want, full string, taken []string) string {
	if full == want || len(taken) == 0 {
		return "" // the roster's name, or the one recorded before
	}
	return fmt.Sprintf("schema %s instead of %s: %s", full, want, strings.Join(taken, "; "))
}

// schemaMark reads a schema's wire.SchemaOwnerProperty ("" if unmarked).
func (a *Activities) schemaMark(ctx context.Context, step, full string) (string, error) {
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return "", classify(step, fmt.Errorf("get schema %s: %w", full, err))
	}
	info, err := a.Workspace.Schemas.Get(ctx, catalog.GetSchemaRequest{FullName: full})
	if errors.Is(err, apierr.ErrNotFound) {
		// Dropped between the create's conflict and this read: try again.
		return "", inconsistent(step, wire.ErrUnavailable, "schema %s: exists on create, missing on read", full)
	}
	if err != nil {
		return "", classify(step, fmt.Errorf("get schema %s: %w", full, err))
	}
	if info == nil {
		return "", nil
	}
	return info.Properties[wire.SchemaOwnerProperty], nil
}

// ownPriorRuns reads the earlier runs of the workflow this activity runs
// for (nothing outside an activity or without a Temporal client).
func (a *Activities) ownPriorRuns(ctx context.Context) (wire.PriorRunsResult, error) {
	if a.Temporal == nil || !activity.IsActivity(ctx) {
		return wire.PriorRunsResult{}, nil
	}
	info := activity.GetInfo(ctx)
	return a.PriorRuns(ctx, wire.PriorRunsInput{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID})
}

// securableGrant is the privileges the participant must hold on one securable.
type securableGrant struct {
	Type       string // "catalog" or "schema"
	Name       string // full name, lower-case
	Privileges []catalog.Privilege
}

// desiredGrants lists, in a stable order, everything the participant gets:
// USE_CATALOG on the catalog, Settings.SchemaPrivileges on their schema and
// every Settings.SharedGrants entry, merged per securable.
func (a *Activities) desiredGrants(cat, full string) []securableGrant {
	var out []securableGrant
	add := func(typ, name string, privs []string) {
		typ, name = strings.ToLower(strings.TrimSpace(typ)), strings.ToLower(strings.TrimSpace(name))
		i := slices.IndexFunc(out, func(g securableGrant) bool { return g.Type == typ && g.Name == name })
		if i < 0 {
			out = append(out, securableGrant{Type: typ, Name: name})
			i = len(out) - 1
		}
		for _, p := range privs {
			p := catalog.Privilege(strings.ToUpper(strings.TrimSpace(p)))
			if p != "" && !slices.Contains(out[i].Privileges, p) {
				out[i].Privileges = append(out[i].Privileges, p)
			}
		}
	}
	add("catalog", cat, []string{string(catalog.PrivilegeUseCatalog)})
	add("schema", full, a.Settings.SchemaPrivileges)
	for _, g := range a.Settings.SharedGrants {
		add(g.Securable, g.Name, g.Privileges)
	}
	return slices.DeleteFunc(out, func(g securableGrant) bool { return len(g.Privileges) == 0 })
}

// grant PATCHes each securable with the privileges the principal lacks,
// and returns them: what Cohort added. Unless created says the principal
// holds nothing Cohort did not give (then everything counts as added, with
// no read), what it holds is read first (Grants.Get for that principal
// only); a securable on which nothing is missing gets no PATCH. earlier is
// what an earlier attempt added (held now, still Cohort's). Adding a held
// privilege is a no-op, so the call states the end result whatever happened
// in between; only the principal is named, so no one else's grants change.
// The request asks Databricks to omit the securable's assignments from the
// answer: on the shared catalog they list every participant, and
// downloading them for each one would make a batch quadratic. When an
// answer carries them anyway, it is checked for the participant's
// privileges.
func (a *Activities) grant(ctx context.Context, email, cat, full string, created bool, earlier []wire.SecurableGrant) ([]wire.SecurableGrant, error) {
	const step = wire.StepGrant
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, invalid(step, "grant on %s: participant has no email", full)
	}
	if strings.TrimSpace(full) == "" {
		return nil, invalid(step, "grant to %s: no schema (create_schema returns it)", email)
	}
	own := strings.ToLower(full)
	added := wire.MergeGrants(earlier, nil)
	fail := func(err error) ([]wire.SecurableGrant, error) {
		if len(added) > 0 && activity.IsActivity(ctx) {
			// The next attempt reads these as held: they stay Cohort's.
			activity.RecordHeartbeat(ctx, progress{Added: added})
		}
		return added, err
	}
	for _, g := range a.desiredGrants(strings.ToLower(cat), own) {
		what := fmt.Sprintf("grant %s on %s %s to %s", joinPrivileges(g.Privileges), g.Type, g.Name, email)
		missing := g.Privileges
		if !created {
			held, err := a.directPrivileges(ctx, email, g)
			if err != nil {
				cerr := classify(step, err)
				if g.Type == "schema" && g.Name == own && errorType(cerr) == wire.ErrNotFound {
					return fail(inconsistent(step, wire.ErrUnavailable, "%s: schema not visible yet: %v", what, err))
				}
				return fail(cerr)
			}
			missing = missingPrivileges([]catalog.PrivilegeAssignment{{Principal: email, Privileges: held}}, email, g.Privileges)
			if len(missing) == 0 {
				continue
			}
			what = fmt.Sprintf("grant %s on %s %s to %s", joinPrivileges(missing), g.Type, g.Name, email)
		}
		if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
			return fail(classify(step, fmt.Errorf("%s: %w", what, err)))
		}
		resp, err := a.Workspace.Grants.Update(ctx, catalog.UpdatePermissions{
			SecurableType:             g.Type,
			FullName:                  g.Name,
			Changes:                   []catalog.PermissionsChange{{Principal: email, Add: missing}},
			OmitPermissionsInResponse: true,
		})
		if err != nil {
			cerr := classify(step, fmt.Errorf("%s: %w", what, err))
			if g.Type == "schema" && g.Name == own && errorType(cerr) == wire.ErrNotFound {
				// The schema was just created (or adopted) by create_schema:
				// UC reads can briefly lag its writes.
				return fail(inconsistent(step, wire.ErrUnavailable, "%s: schema not visible yet: %v", what, err))
			}
			return fail(cerr)
		}
		added = wire.MergeGrants(added, []wire.SecurableGrant{{Type: g.Type, Name: g.Name, Privileges: privilegeNames(missing)}})
		if resp != nil && len(resp.PrivilegeAssignments) > 0 {
			if lack := missingPrivileges(resp.PrivilegeAssignments, email, missing); len(lack) > 0 {
				return fail(inconsistent(step, wire.ErrUnavailable, "%s: answer lacks %s", what, joinPrivileges(lack)))
			}
		}
	}
	return added, nil
}

// directPrivileges reads the privileges the principal holds directly on
// one securable (one Grants.Get for that principal). Its error is the SDK's,
// wrapped, for the caller to classify (apierr.ErrNotFound: the securable or
// the principal does not exist).
func (a *Activities) directPrivileges(ctx context.Context, who string, g securableGrant) ([]catalog.Privilege, error) {
	what := fmt.Sprintf("read grants of %s on %s %s", who, g.Type, g.Name)
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	resp, err := a.Workspace.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: g.Type, FullName: g.Name, Principal: who})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var held []catalog.Privilege
	for _, pa := range resp.PrivilegeAssignments {
		if strings.EqualFold(pa.Principal, who) {
			held = append(held, pa.Privileges...)
		}
	}
	return held, nil
}

func privilegeNames(ps []catalog.Privilege) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// missingPrivileges returns the wanted privileges the principal does not hold
// in assignments (ALL_PRIVILEGES covers everything).
func missingPrivileges(assignments []catalog.PrivilegeAssignment, principal string, want []catalog.Privilege) []catalog.Privilege {
	var held []catalog.Privilege
	for _, pa := range assignments {
		if strings.EqualFold(pa.Principal, principal) {
			held = append(held, pa.Privileges...)
		}
	}
	if slices.Contains(held, catalog.PrivilegeAllPrivileges) {
		return nil
	}
	var missing []catalog.Privilege
	for _, p := range want {
		if !slices.Contains(held, p) {
			missing = append(missing, p)
		}
	}
	return missing
}

func joinPrivileges(ps []catalog.Privilege) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}
