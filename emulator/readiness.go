package emulator

import (
	"net/http"
	"sort"
	"strings"
)

// Read-only Unity Catalog endpoints a preflight uses (Cohort's `starter
// plan`): the metastore summary (does the metastore have root storage?) and
// a securable's effective permissions (may the caller create schemas and
// grant in the catalog?).

// metastoreSummary answers GET /api/2.1/unity-catalog/metastore_summary, the
// metastore assigned to the workspace. storage_root is present only when
// the metastore has root storage (Options.MetastoreRoot): metastores that
// Unity Catalog created automatically have none.
func (s *Server) metastoreSummary(c *call) {
	m := map[string]any{
		"metastore_id":                 metastoreID,
		"global_metastore_id":          "azure:westeurope:" + metastoreID,
		"name":                         "metastore_azure_westeurope",
		"owner":                        "System user",
		"cloud":                        "azure",
		"region":                       "westeurope",
		"delta_sharing_scope":          "INTERNAL",
		"privilege_model_version":      "1.0",
		"storage_root_credential_name": "",
		"created_at":                   int64(1704067200000),
		"created_by":                   "System user",
		"updated_at":                   int64(1704067200000),
		"updated_by":                   "System user",
	}
	if root := s.opts.MetastoreRoot; root != "" {
		m["storage_root"] = root
		m["storage_root_credential_name"] = "metastore_root_credential"
	} else {
		delete(m, "storage_root_credential_name")
	}
	c.ok(m)
}

// groupsOf are the built-in groups a principal belongs to, whose grants it
// holds: every user is in "account users" and the workspace's "users"; the
// admin identity is in "admins" too.
func groupsOf(name string) []string {
	if strings.EqualFold(name, AdminUserName) {
		return []string{"account users", "admins", "users"}
	}
	return []string{"account users", "users"}
}

// effectivePermissions answers GET /api/2.1/unity-catalog/effective-
// permissions/{catalog|schema}/{full_name}[?principal=P]: per principal the
// privileges granted on the securable and inherited from its catalog
// (inherited_from_type/name). With principal, only that principal is
// listed, holding also what its built-in groups were granted. Ownership is
// not a privilege and is not listed (the securable's owner field says it).
func (s *Server) effectivePermissions(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, typ, name, ok := s.securable(c)
	if !ok {
		return
	}
	type source struct {
		key      string
		fromType string
		fromName string
	}
	sources := []source{{key: key}}
	if typ == "schema" {
		cat, _, _ := strings.Cut(name, ".")
		sources = append(sources, source{key: "catalog:" + cat, fromType: "CATALOG", fromName: cat})
	}
	only := c.query("principal")
	holders := func(p string) []string { return []string{p} }
	if only != "" {
		holders = func(p string) []string { return append([]string{p}, groupsOf(p)...) }
	}
	byPrincipal := map[string][]map[string]any{}
	add := func(listed string, src source) {
		for _, h := range holders(listed) {
			for p, privs := range s.st.Grants[src.key] {
				if !strings.EqualFold(p, h) {
					continue
				}
				for _, pr := range privs {
					e := map[string]any{"privilege": pr}
					if src.fromType != "" {
						e["inherited_from_type"], e["inherited_from_name"] = src.fromType, src.fromName
					}
					byPrincipal[listed] = append(byPrincipal[listed], e)
				}
			}
		}
	}
	if only != "" {
		for _, src := range sources {
			add(only, src)
		}
	} else {
		for _, src := range sources {
			for p := range s.st.Grants[src.key] {
				add(p, src)
			}
		}
	}
	names := make([]string, 0, len(byPrincipal))
	for p := range byPrincipal {
		names = append(names, p)
	}
	sort.Strings(names)
	out := []map[string]any{}
	for _, p := range names {
		out = append(out, map[string]any{"principal": p, "privileges": byPrincipal[p]})
	}
	c.reply(http.StatusOK, map[string]any{"privilege_assignments": out})
}
