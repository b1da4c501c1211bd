package emulator

// One concern, the Unity Catalog API: catalogs, schemas and grants, which share
// the securable names, the paging and the owner rules.

import (
	"time"

	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

const metastoreID = "5d1a3c2e-0c0f-4b1e-9e2a-c0407c0407c0"

type ucCatalog struct {
	Name        string            `json:"name"`
	Owner       string            `json:"owner"`
	Comment     string            `json:"comment,omitempty"`
	Properties  map[string]string `json:"properties,omitempty"`
	StorageRoot string            `json:"storage_root,omitempty"`
	CreatedAt   int64             `json:"created_at"`
	CreatedBy   string            `json:"created_by"`
	Seq         int64             `json:"seq"`
}

func (c *ucCatalog) render() map[string]any {
	m := map[string]any{
		"name":                           c.Name,
		"full_name":                      c.Name,
		"owner":                          c.Owner,
		"catalog_type":                   "MANAGED_CATALOG",
		"securable_type":                 "CATALOG",
		"metastore_id":                   metastoreID,
		"isolation_mode":                 "OPEN",
		"created_at":                     c.CreatedAt,
		"created_by":                     c.CreatedBy,
		"updated_at":                     c.CreatedAt,
		"updated_by":                     c.CreatedBy,
		"browse_only":                    false,
		"enable_predictive_optimization": "INHERIT",
	}
	setOptional(m, c.Comment, c.Properties, c.StorageRoot)
	return m
}

// setOptional adds the fields a catalog or schema answer carries only when set.
func setOptional(m map[string]any, comment string, properties map[string]string, storageRoot string) {
	if comment != "" {
		m["comment"] = comment
	}
	if len(properties) > 0 {
		m["properties"] = properties
	}
	if storageRoot != "" {
		m["storage_root"] = storageRoot
		m["storage_location"] = storageRoot
	}
}

type schema struct {
	CatalogName string            `json:"catalog_name"`
	Name        string            `json:"name"`
	Owner       string            `json:"owner"`
	Comment     string            `json:"comment,omitempty"`
	Properties  map[string]string `json:"properties,omitempty"`
	StorageRoot string            `json:"storage_root,omitempty"`
	SchemaID    string            `json:"schema_id"`
	CreatedAt   int64             `json:"created_at"`
	CreatedBy   string            `json:"created_by"`
	Tables      []string          `json:"tables,omitempty"` // table names (control API), for SCHEMA_NOT_EMPTY
	Seq         int64             `json:"seq"`
}

func (sc *schema) fullName() string { return sc.CatalogName + "." + sc.Name }

func (sc *schema) render() map[string]any {
	m := map[string]any{
		"name":                           sc.Name,
		"catalog_name":                   sc.CatalogName,
		"full_name":                      sc.fullName(),
		"owner":                          sc.Owner,
		"schema_id":                      sc.SchemaID,
		"metastore_id":                   metastoreID,
		"catalog_type":                   "MANAGED_CATALOG",
		"created_at":                     sc.CreatedAt,
		"created_by":                     sc.CreatedBy,
		"updated_at":                     sc.CreatedAt,
		"updated_by":                     sc.CreatedBy,
		"browse_only":                    false,
		"enable_predictive_optimization": "INHERIT",
		"effective_predictive_optimization_flag": map[string]any{
			"value":               "ENABLE",
			"inherited_from_type": "METASTORE",
			"inherited_from_name": "metastore_azure_westeurope",
		},
	}
	setOptional(m, sc.Comment, sc.Properties, sc.StorageRoot)
	return m
}

// validUCName reports whether name is a legal catalog or schema name.
func validUCName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if r == '.' || r == ' ' || r == '/' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// uuid returns a random RFC 4122 v4 id from the seeded generator. Callers hold s.mu.
func (s *Server) uuid() string {
	var b [16]byte
	for i := range 2 {
		v := s.rng.Uint64()
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Server) catalogMissing(c *call, name string) {
	c.fail(http.StatusNotFound, "CATALOG_DOES_NOT_EXIST", fmt.Sprintf("Catalog '%s' does not exist.", name))
}

// page slices n items by max_results/page_token (offset tokens). It answers bad
// tokens itself.
func page(c *call, n int) (from, to int, next string, ok bool) {
	to = n
	if tok := c.query("page_token"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		off, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "o:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "o:") || off < 0 {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid page token %q.", tok))
			return 0, 0, "", false
		}
		from = min(off, n)
	}
	if v := c.query("max_results"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 0 {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid max_results %q.", v))
			return 0, 0, "", false
		}
		if m > 0 {
			to = min(from+m, n)
			if to < n {
				next = base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(to)))
			}
		}
	}
	return from, to, next, true
}

func (s *Server) listCatalogs(c *call) {
	s.mu.Lock()
	cats := make([]*ucCatalog, 0, len(s.st.Catalogs))
	for _, ct := range s.st.Catalogs {
		cats = append(cats, ct)
	}
	s.mu.Unlock()
	sort.Slice(cats, func(i, j int) bool { return cats[i].Name < cats[j].Name })
	writePage(c, "catalogs", cats)
}

// writePage answers the page of items (in their listing order) that the
// request asks for, under key, with next_page_token when more follow.
func writePage[T interface{ render() map[string]any }](c *call, key string, items []T) {
	from, to, next, ok := page(c, len(items))
	if !ok {
		return
	}
	out := make([]map[string]any, 0, to-from)
	for _, it := range items[from:to] {
		out = append(out, it.render())
	}
	resp := map[string]any{key: out}
	if next != "" {
		resp["next_page_token"] = next
	}
	c.ok(resp)
}

func (s *Server) getCatalog(c *call) {
	name := strings.ToLower(c.params[0])
	s.mu.Lock()
	ct, ok := s.st.Catalogs[name]
	s.mu.Unlock()
	if !ok {
		s.catalogMissing(c, c.params[0])
		return
	}
	c.ok(ct.render())
}

// builtinSchemas are the schemas every catalog is created with.
var builtinSchemas = []string{"default", "information_schema"}

func isBuiltinSchema(name string) bool { return name == "default" || name == "information_schema" }

// newCatalog adds a catalog with its default and information_schema schemas,
// journalling all three. Callers hold s.mu (or run before serving).
func (s *Server) newCatalog(name, owner, comment, storageRoot string, at time.Time) *ucCatalog {
	ct := &ucCatalog{Name: name, Owner: owner, Comment: comment, StorageRoot: storageRoot,
		CreatedAt: at.UnixMilli(), CreatedBy: owner, Seq: s.st.nextSeq()}
	s.st.Catalogs[name] = ct
	s.put(kindCatalog, name, ct)
	for _, sn := range builtinSchemas {
		sc := &schema{CatalogName: name, Name: sn, Owner: owner, SchemaID: s.uuid(), CreatedAt: at.UnixMilli(), CreatedBy: owner, Seq: s.st.nextSeq()}
		switch sn {
		case "default":
			sc.Comment = "Default schema (auto-created)"
		case "information_schema":
			sc.Owner, sc.CreatedBy = "System user", "System user"
			sc.Comment = "Information schema (auto-created)"
		}
		s.st.Schemas[sc.fullName()] = sc
		s.put(kindSchema, sc.fullName(), sc)
	}
	return ct
}

// metastoreRootMissing is the real answer to a catalog create without
// storage_root on a metastore without root storage (databricks/cli#5695).
const metastoreRootMissing = "Metastore storage root URL does not exist. Please provide a storage location for the catalog (for example 'CREATE CATALOG myCatalog MANAGED LOCATION '<location-path>'). Alternatively set up a metastore root storage location to provide a storage location for all catalogs in the metastore."

func (s *Server) createCatalog(c *call) {
	var req struct {
		Name        string            `json:"name"`
		Comment     string            `json:"comment"`
		Properties  map[string]string `json:"properties"`
		StorageRoot string            `json:"storage_root"`
	}
	if !c.decode(&req) {
		return
	}
	name := strings.ToLower(strings.TrimSpace(req.Name))
	if !validUCName(name) {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid catalog name '%s'.", req.Name))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Catalogs[name]; ok {
		c.fail(http.StatusConflict, "CATALOG_ALREADY_EXISTS", fmt.Sprintf("Catalog '%s' already exists", name))
		return
	}
	root := strings.TrimSpace(req.StorageRoot)
	if root == "" {
		if s.opts.MetastoreRoot == "" {
			c.fail(http.StatusBadRequest, "INVALID_STATE", metastoreRootMissing)
			return
		}
		root = strings.TrimSuffix(s.opts.MetastoreRoot, "/") + "/__unitystorage/catalogs/" + s.uuid()
	} else if !strings.Contains(root, "://") {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid storage_root '%s': expected a URL such as abfss://container@account.dfs.core.windows.net/path.", req.StorageRoot))
		return
	}
	ct := s.newCatalog(name, c.caller.name, req.Comment, root, s.now())
	if len(req.Properties) > 0 {
		ct.Properties = req.Properties
		s.put(kindCatalog, name, ct)
	}
	c.ok(ct.render())
}

func (s *Server) createSchema(c *call) {
	var req struct {
		CatalogName string            `json:"catalog_name"`
		Name        string            `json:"name"`
		Comment     string            `json:"comment"`
		Properties  map[string]string `json:"properties"`
		StorageRoot string            `json:"storage_root"`
	}
	if !c.decode(&req) {
		return
	}
	if req.CatalogName == "" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: catalog_name")
		return
	}
	name := strings.ToLower(strings.TrimSpace(req.Name))
	if req.Name == "" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: name")
		return
	}
	if !validUCName(name) {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid schema name '%s'. Names must not contain '.', ' ', '/' or control characters.", req.Name))
		return
	}
	cat := strings.ToLower(req.CatalogName)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Catalogs[cat]; !ok {
		s.catalogMissing(c, req.CatalogName)
		return
	}
	full := cat + "." + name
	if _, ok := s.st.Schemas[full]; ok {
		c.fail(http.StatusConflict, "SCHEMA_ALREADY_EXISTS", fmt.Sprintf("Schema '%s' already exists", name))
		return
	}
	if max := s.opts.MaxSchemasPerCatalog; on(max) && s.st.schemasIn(cat) >= max {
		c.answer(s.opts.SchemaQuotaError, false, map[string]string{"limit": strconv.Itoa(max), "catalog": cat, "schema": full})
		return
	}
	sc := &schema{CatalogName: cat, Name: name, Owner: c.caller.name, Comment: req.Comment, Properties: req.Properties,
		StorageRoot: req.StorageRoot, SchemaID: s.uuid(), CreatedAt: s.now().UnixMilli(), CreatedBy: c.caller.name, Seq: s.st.nextSeq()}
	s.st.Schemas[full] = sc
	s.put(kindSchema, full, sc)
	c.ok(sc.render())
}

// lookupSchema finds a schema by full name and answers the not-found errors. Callers hold s.mu.
func (s *Server) lookupSchema(c *call, full string) (*schema, bool) {
	cat, name, ok := strings.Cut(full, ".")
	if !ok || name == "" || strings.Contains(name, ".") {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid schema full name '%s': expected <catalog>.<schema>.", full))
		return nil, false
	}
	if _, ok := s.st.Catalogs[strings.ToLower(cat)]; !ok {
		s.catalogMissing(c, cat)
		return nil, false
	}
	sc, ok := s.st.Schemas[strings.ToLower(full)]
	if !ok {
		c.fail(http.StatusNotFound, "SCHEMA_DOES_NOT_EXIST", fmt.Sprintf("Schema '%s' does not exist.", full))
		return nil, false
	}
	return sc, true
}

func (s *Server) getSchema(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.lookupSchema(c, c.params[0])
	if !ok {
		return
	}
	c.ok(sc.render())
}

func (s *Server) listSchemas(c *call) {
	cat := strings.ToLower(c.query("catalog_name"))
	if cat == "" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: catalog_name")
		return
	}
	s.mu.Lock()
	if _, ok := s.st.Catalogs[cat]; !ok {
		s.mu.Unlock()
		s.catalogMissing(c, c.query("catalog_name"))
		return
	}
	var scs []*schema
	for _, sc := range s.st.Schemas {
		if sc.CatalogName == cat {
			scs = append(scs, sc)
		}
	}
	s.mu.Unlock()
	sort.Slice(scs, func(i, j int) bool { return scs[i].Name < scs[j].Name })
	writePage(c, "schemas", scs)
}

func (s *Server) deleteSchema(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.lookupSchema(c, c.params[0])
	if !ok {
		return
	}
	full := sc.fullName()
	if sc.Name == "information_schema" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Schema '%s' is a system schema and cannot be deleted.", full))
		return
	}
	if len(sc.Tables) > 0 && c.query("force") != "true" {
		c.fail(http.StatusBadRequest, "SCHEMA_NOT_EMPTY", fmt.Sprintf("Cannot delete schema '%s': it is not empty (%d tables). Use force=true (DROP SCHEMA ... CASCADE) to delete it with its contents.", full, len(sc.Tables)))
		return
	}
	delete(s.st.Schemas, full)
	s.del(kindSchema, full)
	if _, ok := s.st.Grants["schema:"+full]; ok {
		delete(s.st.Grants, "schema:"+full)
		s.del(kindGrant, "schema:"+full)
	}
	c.ok(map[string]any{})
}

var catalogPrivileges = []string{
	"ALL_PRIVILEGES", "APPLY_TAG", "BROWSE", "CREATE_FUNCTION", "CREATE_MATERIALIZED_VIEW", "CREATE_MODEL",
	"CREATE_SCHEMA", "CREATE_TABLE", "CREATE_VOLUME", "EXECUTE", "EXTERNAL_USE_SCHEMA", "MANAGE", "MODIFY",
	"READ_VOLUME", "REFRESH", "SELECT", "USE_CATALOG", "USE_SCHEMA", "WRITE_VOLUME",
}

var notOnSchema = map[string]bool{"BROWSE": true, "CREATE_SCHEMA": true, "USE_CATALOG": true}

func privilegeApplies(securable, p string) (known, applies bool) {
	for _, q := range catalogPrivileges {
		if q == p {
			return true, securable == "catalog" || !notOnSchema[p]
		}
	}
	return false, false
}

var builtinGroups = map[string]bool{"account users": true, "users": true, "admins": true}

// securable resolves the grants path to a key and display name, answering errors.
// Callers hold s.mu.
func (s *Server) securable(c *call) (key, typ, name string, ok bool) {
	typ = strings.ToLower(c.params[0])
	full := c.params[1]
	switch typ {
	case "catalog":
		if _, ok := s.st.Catalogs[strings.ToLower(full)]; !ok {
			s.catalogMissing(c, full)
			return "", "", "", false
		}
		return "catalog:" + strings.ToLower(full), typ, strings.ToLower(full), true
	case "schema":
		sc, ok := s.lookupSchema(c, full)
		if !ok {
			return "", "", "", false
		}
		return "schema:" + sc.fullName(), typ, sc.fullName(), true
	}
	c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Unsupported securable type '%s': the emulator supports catalog and schema.", c.params[0]))
	return "", "", "", false
}

func renderGrants(g map[string][]string, only string) []map[string]any {
	names := make([]string, 0, len(g))
	for p := range g {
		if only == "" || strings.EqualFold(p, only) {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	out := []map[string]any{}
	for _, p := range names {
		if len(g[p]) == 0 {
			continue
		}
		out = append(out, map[string]any{"principal": p, "privileges": g[p]})
	}
	return out
}

func (s *Server) getGrants(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, _, _, ok := s.securable(c)
	if !ok {
		return
	}
	c.ok(map[string]any{"privilege_assignments": renderGrants(s.st.Grants[key], c.query("principal"))})
}

// grantPrincipal canonicalises a grants principal, or returns false if it is not
// visible in the workspace. Callers hold s.mu.
func (s *Server) grantPrincipal(p string) (string, bool) {
	if builtinGroups[strings.ToLower(p)] {
		return strings.ToLower(p), true
	}
	if strings.EqualFold(p, AdminUserName) {
		return AdminUserName, true
	}
	u, ok := s.workspaceUser(p)
	if !ok {
		return "", false
	}
	return u.UserName, true
}

func (s *Server) updateGrants(c *call) {
	var req struct {
		Changes []struct {
			Principal string   `json:"principal"`
			Add       []string `json:"add"`
			Remove    []string `json:"remove"`
		} `json:"changes"`
		OmitPermissionsInResponse bool `json:"omit_permissions_in_response"`
	}
	if !c.decode(&req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key, typ, name, ok := s.securable(c)
	if !ok {
		return
	}
	type change struct {
		principal   string
		add, remove []string
	}
	var changes []change
	for _, ch := range req.Changes {
		if ch.Principal == "" {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: principal")
			return
		}
		p, ok := s.grantPrincipal(ch.Principal)
		if !ok && len(ch.Add) == 0 {
			// Unity Catalog principals are account-level: revoking from an
			// account user who is no longer assigned to the workspace (the
			// first step of an offboarding) works.
			if u := s.st.userByName(ch.Principal); u != nil {
				p, ok = u.UserName, true
			}
		}
		if !ok {
			c.fail(http.StatusNotFound, "PRINCIPAL_DOES_NOT_EXIST", fmt.Sprintf("Could not find principal with name %s", ch.Principal))
			return
		}
		removing := map[string]bool{}
		for _, r := range ch.Remove {
			removing[strings.ToUpper(r)] = true
		}
		for _, a := range ch.Add {
			if removing[strings.ToUpper(a)] {
				c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Duplicate privileges to add and delete for principal %s.", ch.Principal))
				return
			}
		}
		for _, list := range [][]string{ch.Add, ch.Remove} {
			for _, priv := range list {
				known, applies := privilegeApplies(typ, strings.ToUpper(priv))
				if !known {
					c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Unknown privilege %s.", priv))
					return
				}
				if !applies {
					c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Privilege %s is not applicable to this entity [%s:%s]. If you are trying to grant it on a child securable, please grant on the child.", strings.ToUpper(priv), typ, name))
					return
				}
			}
		}
		changes = append(changes, change{principal: p, add: ch.Add, remove: ch.Remove})
	}
	g := s.st.Grants[key]
	if g == nil {
		g = map[string][]string{}
	}
	for _, ch := range changes {
		set := map[string]bool{}
		for _, p := range g[ch.principal] {
			set[p] = true
		}
		for _, r := range ch.remove {
			delete(set, strings.ToUpper(r))
		}
		for _, a := range ch.add {
			set[strings.ToUpper(a)] = true
		}
		if len(set) == 0 {
			delete(g, ch.principal)
			continue
		}
		privs := make([]string, 0, len(set))
		for p := range set {
			privs = append(privs, p)
		}
		sort.Strings(privs)
		g[ch.principal] = privs
	}
	if len(g) == 0 {
		if _, ok := s.st.Grants[key]; ok {
			delete(s.st.Grants, key)
			s.del(kindGrant, key)
		}
	} else {
		s.st.Grants[key] = g
		s.put(kindGrant, key, g)
	}
	if req.OmitPermissionsInResponse {
		c.ok(map[string]any{})
		return
	}
	c.ok(map[string]any{"privilege_assignments": renderGrants(g, "")})
}
