package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"

	"github.com/cohort-dev/cohort/wire"
)

// CreateSchema is step create_schema: the participant's own schema in the
// shared catalog.
func (a *Activities) CreateSchema(ctx context.Context, in wire.CreateSchemaInput) (wire.CreateSchemaResult, error) {
	full, created, err := a.ensureSchema(ctx, cmp.Or(in.Catalog, a.Settings.Catalog), in.Participant.Schema)
	if err != nil {
		return wire.CreateSchemaResult{}, err
	}
	return wire.CreateSchemaResult{FullName: full, Created: created}, nil
}

// Grant is step grant: the participant's privileges on the shared catalog,
// their schema and the shared grants (and nothing for anyone else).
func (a *Activities) Grant(ctx context.Context, in wire.GrantInput) (wire.GrantResult, error) {
	return wire.GrantResult{}, a.grant(ctx, in.Principal, cmp.Or(in.Catalog, a.Settings.Catalog), in.Schema)
}

// ensureSchema creates catalog.schema; SCHEMA_ALREADY_EXISTS (409) means it
// is there, which is what a repeat (or an SDK retry of a create the server
// had applied) sees. Unity Catalog lower-cases names, so the full name is
// derived from the lower-cased parts.
func (a *Activities) ensureSchema(ctx context.Context, cat, schema string) (full string, created bool, err error) {
	cat, schema = strings.ToLower(strings.TrimSpace(cat)), strings.ToLower(strings.TrimSpace(schema))
	if cat == "" || schema == "" {
		return "", false, invalid(wire.StepCreateSchema, "create schema %q.%q: catalog and schema names are required", cat, schema)
	}
	full = cat + "." + schema
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return "", false, classify(wire.StepCreateSchema, fmt.Errorf("create schema %s: %w", full, err))
	}
	info, err := a.Workspace.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: cat, Name: schema})
	switch {
	case err == nil:
		if info != nil && info.FullName != "" {
			full = strings.ToLower(info.FullName)
		}
		return full, true, nil
	case errors.Is(err, apierr.ErrResourceConflict):
		return full, false, nil
	default:
		return "", false, classify(wire.StepCreateSchema, fmt.Errorf("create schema %s: %w", full, err))
	}
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

// grant PATCHes each securable with the participant's full list of
// privileges. Adding a held privilege is a no-op, so the call states the end
// result whatever was granted before; only the participant is named, so no
// one else's grants change. The request asks Databricks to omit the
// securable's assignments from the answer: on the shared catalog they list
// every participant, and downloading them for each one would make a batch
// quadratic. When an answer carries them anyway, it is checked for the
// participant's privileges.
func (a *Activities) grant(ctx context.Context, email, cat, full string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return invalid(wire.StepGrant, "grant on %s: participant has no email", full)
	}
	if strings.TrimSpace(full) == "" {
		return invalid(wire.StepGrant, "grant to %s: no schema (create_schema returns it)", email)
	}
	for _, g := range a.desiredGrants(strings.ToLower(cat), strings.ToLower(full)) {
		what := fmt.Sprintf("grant %s on %s %s to %s", joinPrivileges(g.Privileges), g.Type, g.Name, email)
		if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
			return classify(wire.StepGrant, fmt.Errorf("%s: %w", what, err))
		}
		resp, err := a.Workspace.Grants.Update(ctx, catalog.UpdatePermissions{
			SecurableType:             g.Type,
			FullName:                  g.Name,
			Changes:                   []catalog.PermissionsChange{{Principal: email, Add: g.Privileges}},
			OmitPermissionsInResponse: true,
		})
		if err != nil {
			cerr := classify(wire.StepGrant, fmt.Errorf("%s: %w", what, err))
			if g.Type == "schema" && g.Name == strings.ToLower(full) && errorType(cerr) == wire.ErrNotFound {
				// The schema was just created (or adopted) by create_schema:
				// UC reads can briefly lag its writes.
				return inconsistent(wire.StepGrant, wire.ErrUnavailable, "%s: schema not visible yet: %v", what, err)
			}
			return cerr
		}
		if resp != nil && len(resp.PrivilegeAssignments) > 0 {
			if missing := missingPrivileges(resp.PrivilegeAssignments, email, g.Privileges); len(missing) > 0 {
				return inconsistent(wire.StepGrant, wire.ErrUnavailable, "%s: answer lacks %s", what, joinPrivileges(missing))
			}
		}
	}
	return nil
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
