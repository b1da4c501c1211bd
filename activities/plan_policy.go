// The cluster-policy rule parser: a policy definition read as rules by attribute
// path, and whether a rule allows a value (the client side of policy evaluation).
//
// Policy evaluation is written twice on purpose: here, where Cohort predicts
// what the workspace will accept, and in emulator/cluster_policy.go, where the
// emulator enforces it as Databricks does. The two share no code, so the
// emulator cannot agree with Cohort by construction and the tests catch a
// misread policy. Do not merge them.

package activities

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// policyRule is one attribute's rule in a cluster policy definition.
type policyRule struct {
	Type         string   `json:"type"`
	Value        any      `json:"value"`
	Values       []any    `json:"values"`
	DefaultValue any      `json:"defaultValue"`
	MinValue     *float64 `json:"minValue"`
	MaxValue     *float64 `json:"maxValue"`
	Pattern      string   `json:"pattern"`
	IsOptional   bool     `json:"isOptional"`
}

// parsePolicy reads a policy definition (a JSON object of rules by path).
func parsePolicy(def string) (map[string]policyRule, error) {
	if strings.TrimSpace(def) == "" {
		return map[string]policyRule{}, nil
	}
	dec := json.NewDecoder(strings.NewReader(def))
	dec.UseNumber()
	var rules map[string]policyRule
	if err := dec.Decode(&rules); err != nil {
		return nil, err
	}
	return rules, nil
}

// policyValue is a rule value as the policy compares it.
func policyValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func (r policyRule) values() []string {
	out := make([]string, 0, len(r.Values))
	for _, v := range r.Values {
		out = append(out, policyValue(v))
	}
	return out
}

// String says what the rule asks, as in a refusal.
func (r policyRule) String() string {
	switch r.Type {
	case "fixed":
		return "fixed to " + policyValue(r.Value)
	case "forbidden":
		return "forbidden"
	case "allowlist":
		return "one of [" + strings.Join(r.values(), ", ") + "]"
	case "blocklist":
		return "none of [" + strings.Join(r.values(), ", ") + "]"
	case "regex":
		return "matching " + r.Pattern
	case "range":
		lo, hi := "-inf", "+inf"
		if r.MinValue != nil {
			lo = strconv.FormatFloat(*r.MinValue, 'g', -1, 64)
		}
		if r.MaxValue != nil {
			hi = strconv.FormatFloat(*r.MaxValue, 'g', -1, 64)
		}
		return "within [" + lo + ", " + hi + "]"
	}
	return r.Type
}

// allows reports whether the rule accepts v as a sent value.
func (r policyRule) allows(v string) bool {
	switch r.Type {
	case "fixed":
		return v == policyValue(r.Value)
	case "forbidden":
		return false
	case "allowlist":
		return slices.Contains(r.values(), v)
	case "blocklist":
		return !slices.Contains(r.values(), v)
	case "regex":
		re, err := regexp.Compile("^(?:" + r.Pattern + ")$")
		return err == nil && re.MatchString(v)
	case "range":
		f, err := strconv.ParseFloat(v, 64)
		return err == nil && (r.MinValue == nil || f >= *r.MinValue) && (r.MaxValue == nil || f <= *r.MaxValue)
	}
	return true // unlimited, or a type this Cohort does not know
}
