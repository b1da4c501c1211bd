// The SCIM filter: parsed into a tree (attrPath op value, pr, and, or, not,
// parentheses) and matched against users.

package emulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

func exactUserName(f filterNode) (string, bool) {
	if f == nil {
		return "", false
	}
	return f.exactUserName()
}

// SCIM filter: attrPath op value, "pr", "and", "or", "not", parentheses.

type filterNode interface {
	match(u *user) bool
	exactUserName() (string, bool)
}

type filterAnd struct{ l, r filterNode }
type filterOr struct{ l, r filterNode }
type filterNot struct{ x filterNode }
type filterCmp struct {
	attr, op string
	val      any // string, bool, float64 or nil
}

func (f filterAnd) match(u *user) bool          { return f.l.match(u) && f.r.match(u) }
func (f filterOr) match(u *user) bool           { return f.l.match(u) || f.r.match(u) }
func (f filterNot) match(u *user) bool          { return !f.x.match(u) }
func (filterAnd) exactUserName() (string, bool) { return "", false }
func (filterOr) exactUserName() (string, bool)  { return "", false }
func (filterNot) exactUserName() (string, bool) { return "", false }
func (f filterCmp) exactUserName() (string, bool) {
	s, ok := f.val.(string)
	return s, ok && f.op == "eq" && f.attr == "username"
}

func (f filterCmp) values(u *user) []any {
	switch f.attr {
	case "username":
		return []any{u.UserName}
	case "id":
		return []any{u.ID}
	case "displayname":
		return []any{u.DisplayName}
	case "externalid":
		return []any{u.ExternalID}
	case "active":
		return []any{u.Active}
	case "emails", "emails.value":
		var out []any
		for _, e := range u.Emails {
			out = append(out, e.Value)
		}
		return out
	case "name.givenname":
		if u.Name != nil {
			return []any{u.Name.GivenName}
		}
	case "name.familyname":
		if u.Name != nil {
			return []any{u.Name.FamilyName}
		}
	}
	return nil
}

func (f filterCmp) match(u *user) bool {
	vals := f.values(u)
	if f.op == "pr" {
		for _, v := range vals {
			if s, ok := v.(string); !ok || s != "" {
				return true
			}
		}
		return false
	}
	if f.op == "ne" {
		for _, v := range vals {
			if cmpEq(v, f.val) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if cmpOp(f.op, v, f.val) {
			return true
		}
	}
	return false
}

func cmpEq(a, b any) bool {
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return strings.EqualFold(as, bs)
	}
	return a == b
}

func cmpOp(op string, a, b any) bool {
	if op == "eq" {
		return cmpEq(a, b)
	}
	as, aok := a.(string)
	bs, bok := b.(string)
	if !aok || !bok {
		return false
	}
	as, bs = strings.ToLower(as), strings.ToLower(bs)
	switch op {
	case "co":
		return strings.Contains(as, bs)
	case "sw":
		return strings.HasPrefix(as, bs)
	case "ew":
		return strings.HasSuffix(as, bs)
	case "gt":
		return as > bs
	case "ge":
		return as >= bs
	case "lt":
		return as < bs
	case "le":
		return as <= bs
	}
	return false
}

var filterAttrs = map[string]bool{
	"username": true, "id": true, "displayname": true, "externalid": true, "active": true,
	"emails": true, "emails.value": true, "name.givenname": true, "name.familyname": true,
}

type filterParser struct {
	toks  []string
	pos   int
	nodes int
}

func parseFilter(s string) (filterNode, error) {
	toks, err := lexFilter(s)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	if p.nodes > maxFilterNodes {
		return nil, fmt.Errorf("filter has %d nodes, more than the %d allowed", p.nodes, maxFilterNodes)
	}
	return n, nil
}

func lexFilter(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			i++
		case ch == '(' || ch == ')':
			toks = append(toks, string(ch))
			i++
		case ch == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
			toks = append(toks, "\""+b.String())
			i = j + 1
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '(' && s[j] != ')' && s[j] != '"' && !unicode.IsSpace(rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

func (p *filterParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *filterParser) or() (filterNode, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "or") {
		p.pos++
		p.nodes++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = filterOr{l, r}
	}
	return l, nil
}

func (p *filterParser) and() (filterNode, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "and") {
		p.pos++
		p.nodes++
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = filterAnd{l, r}
	}
	return l, nil
}

func (p *filterParser) unary() (filterNode, error) {
	tok := p.peek()
	switch {
	case tok == "":
		return nil, fmt.Errorf("unexpected end of filter")
	case strings.EqualFold(tok, "not"):
		p.pos++
		p.nodes++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return filterNot{x}, nil
	case tok == "(":
		p.pos++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return x, nil
	}
	attr := strings.ToLower(strings.TrimPrefix(tok, scimUserSchema+":"))
	if !filterAttrs[attr] {
		return nil, fmt.Errorf("unsupported attribute %q", tok)
	}
	p.pos++
	p.nodes++
	op := strings.ToLower(p.peek())
	p.pos++
	switch op {
	case "pr":
		return filterCmp{attr: attr, op: op}, nil
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le":
	default:
		return nil, fmt.Errorf("unsupported operator %q", op)
	}
	v := p.peek()
	if v == "" {
		return nil, fmt.Errorf("missing value after %s", op)
	}
	p.pos++
	var val any
	switch {
	case strings.HasPrefix(v, "\""):
		val = v[1:]
	case v == "true" || v == "false":
		val = v == "true"
	case v == "null":
		val = nil
	default:
		var n json.Number = json.Number(v)
		if _, err := n.Float64(); err != nil {
			return nil, fmt.Errorf("invalid value %q", v)
		}
		val = v
	}
	return filterCmp{attr: attr, op: op, val: val}, nil
}
