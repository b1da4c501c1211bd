package emulator

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const (
	scimUserSchema = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimListSchema = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	maxFilterNodes = 200
	maxSCIMCount   = 10000
)

type scimValue struct {
	Value   string `json:"value,omitempty"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
	Display string `json:"display,omitempty"`
}

type scimName struct {
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
}

// user is an account user.
type user struct {
	ID          string      `json:"id"`
	UserName    string      `json:"userName"`
	DisplayName string      `json:"displayName,omitempty"`
	Active      bool        `json:"active"`
	Emails      []scimValue `json:"emails,omitempty"`
	Name        *scimName   `json:"name,omitempty"`
	ExternalID  string      `json:"externalId,omitempty"`
	CreatedAt   int64       `json:"created_at,omitempty"` // unix ms; 0 for seeded users
	Seq         int64       `json:"seq"`
}

// render returns the SCIM representation, projected by attributes/excluded.
func (u *user) render(attrs, excluded []string) map[string]any {
	m := map[string]any{
		"schemas":  []string{scimUserSchema},
		"id":       u.ID,
		"userName": u.UserName,
		"active":   u.Active,
	}
	if u.DisplayName != "" {
		m["displayName"] = u.DisplayName
	}
	if len(u.Emails) > 0 {
		m["emails"] = u.Emails
	}
	if u.Name != nil {
		m["name"] = u.Name
	}
	if u.ExternalID != "" {
		m["externalId"] = u.ExternalID
	}
	if len(attrs) > 0 {
		keep := map[string]any{"id": u.ID}
		for _, a := range attrs {
			a = strings.TrimPrefix(strings.ToLower(a), strings.ToLower(scimUserSchema)+":")
			top, _, _ := strings.Cut(a, ".")
			for k, v := range m {
				if strings.ToLower(k) == top {
					keep[k] = v
				}
			}
		}
		m = keep
	}
	for _, a := range excluded {
		a = strings.ToLower(a)
		for k := range m {
			if strings.ToLower(k) == a && k != "id" {
				delete(m, k)
			}
		}
	}
	return m
}

func splitAttrs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) createUser(c *call) {
	var req struct {
		UserName    string      `json:"userName"`
		DisplayName string      `json:"displayName"`
		Emails      []scimValue `json:"emails"`
		Name        *scimName   `json:"name"`
		ExternalID  string      `json:"externalId"`
		Active      *bool       `json:"active"`
	}
	if !c.decode(&req) {
		return
	}
	name := strings.ToLower(strings.TrimSpace(req.UserName))
	if name == "" {
		c.scimFail(http.StatusBadRequest, "Request is unparsable, syntactically incorrect, or violates schema: userName is required.", "invalidValue")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, re := range s.refuse {
		if re.MatchString(name) {
			c.scimFail(http.StatusBadRequest, fmt.Sprintf("User name %s is not allowed by the identity policy of this account.", name), "invalidValue")
			return
		}
	}
	var emails []string
	for _, e := range req.Emails {
		emails = append(emails, e.Value)
	}
	if other := s.st.userByNameOrEmail(name, emails); other != nil {
		// The account's uniqueness is on the email: the existing user may have
		// another userName (Entra-synced) and may be inactive.
		email := name
		for _, e := range append([]string{name}, emails...) {
			if other.hasEmail(e) || strings.EqualFold(other.UserName, e) {
				email = strings.ToLower(e)
				break
			}
		}
		c.scimFail(http.StatusConflict, userExists(email), "")
		return
	}
	if max := s.opts.MaxAccountUsers; on(max) && len(s.st.Users) >= max {
		c.answer(s.opts.UserQuotaError, true, map[string]string{"limit": strconv.Itoa(max), "account": s.opts.AccountID, "user": name})
		return
	}
	u := &user{
		ID:          s.newNumericID(),
		UserName:    name,
		DisplayName: req.DisplayName,
		Active:      req.Active == nil || *req.Active,
		Emails:      req.Emails,
		Name:        req.Name,
		ExternalID:  req.ExternalID,
		CreatedAt:   s.now().UnixMilli(),
		Seq:         s.st.nextSeq(),
	}
	if u.DisplayName == "" {
		u.DisplayName = name
	}
	if len(u.Emails) == 0 {
		u.Emails = []scimValue{{Value: name, Type: "work", Primary: true}}
	}
	for i := range u.Emails {
		u.Emails[i].Value = strings.ToLower(u.Emails[i].Value)
	}
	s.st.Users[u.ID] = u
	s.st.byName[name] = u.ID
	s.put(kindUser, u.ID, u)
	c.reply(http.StatusCreated, u.render(nil, nil))
	c.header.Set("Content-Type", "application/scim+json")
}

// userExists is the account SCIM's 409 detail (TF#2500).
func userExists(email string) string {
	return fmt.Sprintf("User with email %s already exists in this account. Note: emails are case insensitive (i.e abc@domain.com and ABC@DOMAIN.COM are considered equivalent)", email)
}

func (u *user) hasEmail(e string) bool {
	for _, x := range u.Emails {
		if strings.EqualFold(x.Value, e) {
			return true
		}
	}
	return false
}

const scimPatchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

// patchUser applies a SCIM PatchOp (what iam.PartialUpdate sends): add,
// replace and remove on active, displayName, userName, emails, externalId and
// name.givenName/familyName, or a replace without path whose value is an
// object of those attributes.
func (s *Server) patchUser(c *call) {
	id := c.params[0]
	var req struct {
		Schemas    []string `json:"schemas"`
		Operations []struct {
			Op    string          `json:"op"`
			Path  string          `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"Operations"`
	}
	if !c.decode(&req) {
		return
	}
	hasSchema := false
	for _, sc := range req.Schemas {
		hasSchema = hasSchema || sc == scimPatchSchema
	}
	if !hasSchema {
		c.scimFail(http.StatusBadRequest, "Request is unparsable, syntactically incorrect, or violates schema: schemas must contain "+scimPatchSchema+".", "invalidSyntax")
		return
	}
	if len(req.Operations) == 0 {
		c.scimFail(http.StatusBadRequest, "Request is unparsable, syntactically incorrect, or violates schema: Operations must not be empty.", "invalidSyntax")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.st.Users[id]
	if !ok {
		c.scimFail(http.StatusNotFound, fmt.Sprintf("User %s not found.", id), "")
		return
	}
	u := *old
	u.Emails = append([]scimValue(nil), old.Emails...)
	if old.Name != nil {
		n := *old.Name
		u.Name = &n
	}
	for _, op := range req.Operations {
		kind := strings.ToLower(op.Op)
		if kind != "add" && kind != "replace" && kind != "remove" {
			c.scimFail(http.StatusBadRequest, fmt.Sprintf("Unsupported patch operation %q: want add, replace or remove.", op.Op), "invalidSyntax")
			return
		}
		if op.Path == "" {
			var attrs map[string]json.RawMessage
			if kind == "remove" || json.Unmarshal(op.Value, &attrs) != nil {
				c.scimFail(http.StatusBadRequest, "A patch operation without path must be add or replace with an object value.", "noTarget")
				return
			}
			for _, k := range slices.Sorted(maps.Keys(attrs)) {
				if msg := u.patchAttr(kind, k, attrs[k]); msg != "" {
					c.scimFail(http.StatusBadRequest, msg, "invalidValue")
					return
				}
			}
			continue
		}
		if msg := u.patchAttr(kind, op.Path, op.Value); msg != "" {
			c.scimFail(http.StatusBadRequest, msg, "invalidPath")
			return
		}
	}
	if u.UserName != old.UserName {
		if other := s.st.userByNameOrEmail(u.UserName, nil); other != nil && other.ID != u.ID {
			c.scimFail(http.StatusConflict, userExists(u.UserName), "uniqueness")
			return
		}
	}
	for _, e := range u.Emails {
		if other := s.st.userByNameOrEmail(e.Value, nil); other != nil && other.ID != u.ID {
			c.scimFail(http.StatusConflict, userExists(e.Value), "uniqueness")
			return
		}
	}
	delete(s.st.byName, strings.ToLower(old.UserName))
	s.st.Users[id] = &u
	s.st.byName[strings.ToLower(u.UserName)] = id
	s.put(kindUser, id, &u)
	c.ok(u.render(nil, nil))
	c.header.Set("Content-Type", "application/scim+json")
}

// patchAttr applies one operation to one attribute; it returns a message on
// a bad path or value.
func (u *user) patchAttr(kind, path string, raw json.RawMessage) string {
	p := strings.ToLower(strings.TrimPrefix(path, scimUserSchema+":"))
	str := func() (string, bool) {
		var v string
		return v, json.Unmarshal(raw, &v) == nil
	}
	switch p {
	case "active":
		if kind == "remove" {
			return "Attribute active cannot be removed."
		}
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			var sv string // some clients send "false"
			if json.Unmarshal(raw, &sv) != nil || (sv != "true" && sv != "false") {
				return fmt.Sprintf("Invalid value for active: %s (want true or false).", raw)
			}
			b = sv == "true"
		}
		u.Active = b
	case "displayname":
		if kind == "remove" {
			u.DisplayName = ""
			return ""
		}
		v, ok := str()
		if !ok {
			return "Invalid value for displayName: want a string."
		}
		u.DisplayName = v
	case "username":
		v, ok := str()
		if kind == "remove" || !ok || strings.TrimSpace(v) == "" {
			return "userName is required and must be a non-empty string."
		}
		u.UserName = strings.ToLower(strings.TrimSpace(v))
	case "externalid":
		if kind == "remove" {
			u.ExternalID = ""
			return ""
		}
		v, ok := str()
		if !ok {
			return "Invalid value for externalId: want a string."
		}
		u.ExternalID = v
	case "name.givenname", "name.familyname":
		v, _ := str()
		if u.Name == nil {
			u.Name = &scimName{}
		}
		if p == "name.givenname" {
			u.Name.GivenName = v
		} else {
			u.Name.FamilyName = v
		}
	case "emails":
		if kind == "remove" {
			return "Attribute emails cannot be removed."
		}
		var es []scimValue
		if err := json.Unmarshal(raw, &es); err != nil {
			return "Invalid value for emails: want a list of {value, type, primary}."
		}
		for i := range es {
			es[i].Value = strings.ToLower(es[i].Value)
		}
		if kind == "replace" {
			u.Emails = es
		} else {
			u.Emails = append(u.Emails, es...)
		}
	default:
		return fmt.Sprintf("Unsupported patch path %q.", path)
	}
	return ""
}

// newNumericID returns an unused 16-digit int64 id. Callers hold s.mu.
func (s *Server) newNumericID() string {
	for {
		id := strconv.FormatInt(1_000_000_000_000_000+s.rng.Int64N(8_999_999_999_999_999), 10)
		n, _ := strconv.ParseInt(id, 10, 64)
		if _, ok := s.st.Users[id]; ok {
			continue
		}
		if _, ok := s.st.Assign[n]; ok {
			continue
		}
		return id
	}
}

func (s *Server) listUsers(c *call) {
	q := c.r.URL.Query()
	start := int64(1)
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			c.scimFail(http.StatusBadRequest, "Invalid startIndex: "+v, "invalidValue")
			return
		}
		if n > 1 {
			start = n
		}
	}
	count := int64(maxSCIMCount)
	if v := q.Get("count"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			c.scimFail(http.StatusBadRequest, "Invalid count: "+v, "invalidValue")
			return
		}
		count = min(n, maxSCIMCount)
	}
	var f filterNode
	if expr := strings.TrimSpace(q.Get("filter")); expr != "" {
		var err error
		f, err = parseFilter(expr)
		if err != nil {
			c.scimFail(http.StatusBadRequest, fmt.Sprintf("Invalid filter %q: %v", expr, err), "invalidFilter")
			return
		}
	}
	attrs := splitAttrs(q.Get("attributes"))
	excluded := splitAttrs(q.Get("excludedAttributes"))

	s.mu.Lock()
	var matches []*user
	if name, ok := exactUserName(f); ok {
		if u := s.st.userByName(name); u != nil {
			matches = append(matches, u)
		}
	} else {
		for _, u := range s.st.Users {
			if f == nil || f.match(u) {
				matches = append(matches, u)
			}
		}
	}
	sort.Slice(matches, func(i, j int) bool { return matches[i].Seq < matches[j].Seq })
	total := int64(len(matches))
	var page []map[string]any
	for i := start - 1; i < total && int64(len(page)) < count; i++ {
		page = append(page, matches[i].render(attrs, excluded))
	}
	s.mu.Unlock()

	resp := map[string]any{
		"schemas":      []string{scimListSchema},
		"totalResults": total,
		"startIndex":   start,
		"itemsPerPage": len(page),
	}
	if len(page) > 0 {
		resp["Resources"] = page
	}
	c.ok(resp)
	c.header.Set("Content-Type", "application/scim+json")
}

func (s *Server) getUser(c *call) {
	id := c.params[0]
	s.mu.Lock()
	u, ok := s.st.Users[id]
	var out map[string]any
	if ok {
		out = u.render(splitAttrs(c.query("attributes")), splitAttrs(c.query("excludedAttributes")))
	}
	s.mu.Unlock()
	if !ok {
		c.scimFail(http.StatusNotFound, fmt.Sprintf("User %s not found.", id), "")
		return
	}
	c.ok(out)
	c.header.Set("Content-Type", "application/scim+json")
}

func (s *Server) deleteUser(c *call) {
	id := c.params[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.Users[id]
	if !ok {
		c.scimFail(http.StatusNotFound, fmt.Sprintf("User %s not found.", id), "")
		return
	}
	delete(s.st.Users, id)
	delete(s.st.byName, u.UserName)
	s.del(kindUser, id)
	// Deleting an account user also removes objects associated with the user.
	n, _ := strconv.ParseInt(id, 10, 64)
	if _, ok := s.st.Assign[n]; ok {
		delete(s.st.Assign, n)
		s.del(kindAssign, id)
	}
	for key, g := range s.st.Grants {
		if _, ok := g[u.UserName]; ok {
			delete(g, u.UserName)
			s.put(kindGrant, key, g)
		}
	}
	for _, cl := range s.st.Clusters {
		if _, ok := cl.ACL[aclKey("user_name", u.UserName)]; ok {
			delete(cl.ACL, aclKey("user_name", u.UserName))
			s.put(kindCluster, cl.ID, cl)
		}
	}
	c.status = http.StatusNoContent
}
