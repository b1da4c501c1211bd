package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
)

// ProvisionSchema is steps create_schema and grant: the participant's own
// schema in the shared catalog, then the participant's grants (and nothing
// for anyone else).
func (a *Activities) ProvisionSchema(ctx context.Context, in ProvisionSchemaInput) (ProvisionSchemaResult, error) {
	cat := in.Catalog
	if cat == "" {
		cat = a.Settings.Catalog
	}
	full, created, err := a.ensureSchema(ctx, cat, in.Participant.Schema)
	if err != nil {
		return ProvisionSchemaResult{}, err
	}
	res := ProvisionSchemaResult{FullName: full, Created: created}
	if err := a.grant(ctx, in.Participant.Email, cat, full); err != nil {
		return res, err
	}
	return res, nil
}

// ensureSchema creates catalog.schema; SCHEMA_ALREADY_EXISTS (409) means it
// is there, which is what a repeat (or an SDK retry of a create the server
// had applied) sees. Unity Catalog lower-cases names, so the full name is
// derived from the lower-cased parts.
func (a *Activities) ensureSchema(ctx context.Context, cat, schema string) (full string, created bool, err error) {
	cat, schema = strings.ToLower(strings.TrimSpace(cat)), strings.ToLower(strings.TrimSpace(schema))
	if cat == "" || schema == "" {
		return "", false, invalid(StepCreateSchema, "create schema %q.%q: catalog and schema names are required", cat, schema)
	}
	full = cat + "." + schema
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return "", false, classify(StepCreateSchema, fmt.Errorf("create schema %s: %w", full, err))
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
		return "", false, classify(StepCreateSchema, fmt.Errorf("create schema %s: %w", full, err))
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
// one else's grants change. The answer (all assignments on the securable) is
// checked for the participant's privileges.
func (a *Activities) grant(ctx context.Context, email, cat, full string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return invalid(StepGrant, "grant on %s: participant has no email", full)
	}
	for _, g := range a.desiredGrants(strings.ToLower(cat), full) {
		what := fmt.Sprintf("grant %s on %s %s to %s", joinPrivileges(g.Privileges), g.Type, g.Name, email)
		if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
			return classify(StepGrant, fmt.Errorf("%s: %w", what, err))
		}
		held, err := a.updateGrants(ctx, g, email)
		if err != nil {
			cerr := classify(StepGrant, fmt.Errorf("%s: %w", what, err))
			if g.Type == "schema" && g.Name == full && errorType(cerr) == ErrNotFound {
				// The schema was just created (or adopted) by the previous
				// step: UC reads can briefly lag its writes.
				return inconsistent(StepGrant, ErrUnavailable, "%s: schema not visible yet: %v", what, err)
			}
			return cerr
		}
		if held != nil {
			if missing := missingPrivileges(held, email, g.Privileges); len(missing) > 0 {
				return inconsistent(StepGrant, ErrUnavailable, "%s: answer lacks %s", what, joinPrivileges(missing))
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

// updateGrants adds the participant's privileges on one securable and returns
// the assignments the answer reports for that principal (nil when the answer
// carried none). The answer lists every principal of the securable — on the
// shared catalog, every participant — so decoding all of it would make a
// batch quadratic in CPU; with the raw client only this principal's entries
// are decoded.
func (a *Activities) updateGrants(ctx context.Context, g securableGrant, email string) ([]catalog.PrivilegeAssignment, error) {
	req := catalog.UpdatePermissions{
		SecurableType: g.Type,
		FullName:      g.Name,
		Changes:       []catalog.PermissionsChange{{Principal: email, Add: g.Privileges}},
	}
	if a.Workspace.Raw == nil {
		resp, err := a.Workspace.Grants.Update(ctx, req)
		if err != nil || resp == nil || len(resp.PrivilegeAssignments) == 0 {
			return nil, err
		}
		return resp.PrivilegeAssignments, nil
	}
	var raw []byte
	path := fmt.Sprintf("/api/2.1/unity-catalog/permissions/%s/%s", g.Type, g.Name)
	if err := a.Workspace.Raw.Do(ctx, http.MethodPatch, path, a.Workspace.rawHeaders(), nil, map[string]any{"changes": req.Changes}, &raw); err != nil {
		return nil, err
	}
	return principalAssignments(raw, email)
}

// principalAssignments picks one principal's entries out of a grants answer
// ({"privilege_assignments":[{"principal":..,"privileges":[..]},..]}) by
// looking for its "principal" key and decoding only the enclosing objects;
// when that finds nothing it decodes the whole answer.
func principalAssignments(raw []byte, principal string) ([]catalog.PrivilegeAssignment, error) {
	key, err := json.Marshal(principal)
	if err != nil {
		return nil, err
	}
	needle := append([]byte(`"principal":`), key...)
	var out []catalog.PrivilegeAssignment
	for i := 0; ; {
		j := bytes.Index(raw[i:], needle)
		if j < 0 {
			break
		}
		start := bytes.LastIndexByte(raw[:i+j], '{')
		var pa catalog.PrivilegeAssignment
		if start < 0 || json.NewDecoder(bytes.NewReader(raw[start:])).Decode(&pa) != nil || !strings.EqualFold(pa.Principal, principal) {
			out = nil
			break
		}
		out = append(out, pa)
		i += j + len(needle)
	}
	if len(out) > 0 {
		return out, nil
	}
	var all catalog.UpdatePermissionsResponse
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("read grants answer: %w", err)
	}
	if len(all.PrivilegeAssignments) == 0 {
		return nil, nil
	}
	return all.PrivilegeAssignments, nil
}
