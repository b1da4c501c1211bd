package wire

import (
	"slices"
	"strings"
)

// MergeGrants returns the union of a and b, per securable, in the order
// things first appear (a, then b): deterministic, for workflows. Types and
// names compare case-insensitively, privileges upper-cased.
func MergeGrants(a, b []SecurableGrant) []SecurableGrant {
	var out []SecurableGrant
	for _, g := range slices.Concat(a, b) {
		i := indexGrant(out, g)
		if i < 0 {
			out = append(out, SecurableGrant{Type: strings.ToLower(g.Type), Name: strings.ToLower(g.Name)})
			i = len(out) - 1
		}
		for _, p := range g.Privileges {
			p = strings.ToUpper(p)
			if p != "" && !slices.Contains(out[i].Privileges, p) {
				out[i].Privileges = append(out[i].Privileges, p)
			}
		}
	}
	return slices.DeleteFunc(out, func(g SecurableGrant) bool { return len(g.Privileges) == 0 })
}

// SubtractGrants returns a without what b holds, per securable.
func SubtractGrants(a, b []SecurableGrant) []SecurableGrant {
	var out []SecurableGrant
	for _, g := range MergeGrants(a, nil) {
		gone := GrantsOn(b, g.Type, g.Name)
		g.Privileges = slices.DeleteFunc(g.Privileges, func(p string) bool { return slices.Contains(gone, p) })
		if len(g.Privileges) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// GrantsOn returns the privileges gs holds on one securable.
func GrantsOn(gs []SecurableGrant, typ, name string) []string {
	var out []string
	for _, g := range gs {
		if strings.EqualFold(g.Type, typ) && strings.EqualFold(g.Name, name) {
			for _, p := range g.Privileges {
				if p = strings.ToUpper(p); !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func indexGrant(gs []SecurableGrant, g SecurableGrant) int {
	return slices.IndexFunc(gs, func(h SecurableGrant) bool {
		return strings.EqualFold(h.Type, g.Type) && strings.EqualFold(h.Name, g.Name)
	})
}

// ParticipantSchema is the schema an offboard acts on: the one the
// participant's runs recorded (recorded, a full name "catalog.schema"),
// else the roster's (rosterSchema in catalog; an empty catalog is the
// configured one).
func ParticipantSchema(recorded, catalog, rosterSchema string) (cat, schema string, isRecorded bool) {
	if c, s, ok := strings.Cut(strings.TrimSpace(recorded), "."); ok && c != "" && s != "" {
		return c, s, true
	}
	return catalog, rosterSchema, false
}
