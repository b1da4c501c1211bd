// Cluster policies: the rules a create or edit must satisfy (the server side
// of policy evaluation) and the policy endpoints.
//
// Policy evaluation is written twice on purpose: here, as Databricks enforces
// it, and in activities/plan_policy.go, where Cohort predicts it. The two share
// no code, so the emulator cannot agree with Cohort by construction: a Cohort
// that misreads a policy is refused here as a real workspace would refuse it.
// Do not merge them.

package emulator

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var mapAttrPrefixes = []string{"spark_conf.", "custom_tags.", "spark_env_vars.", "azure_attributes.", "autoscale.", "workload_type."}

func getAttr(m map[string]any, path string) (any, bool) {
	if path == "cluster_type" {
		return "all-purpose", true
	}
	for _, p := range mapAttrPrefixes {
		if rest, ok := strings.CutPrefix(path, p); ok {
			sub, _ := m[strings.TrimSuffix(p, ".")].(map[string]any)
			v, ok := sub[rest]
			return v, ok && v != nil
		}
	}
	v, ok := m[path]
	return v, ok && v != nil
}

func setAttr(m map[string]any, path string, v any) {
	if path == "cluster_type" {
		return
	}
	for _, p := range mapAttrPrefixes {
		if rest, ok := strings.CutPrefix(path, p); ok {
			name := strings.TrimSuffix(p, ".")
			sub, _ := m[name].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
				m[name] = sub
			}
			sub[rest] = v
			return
		}
	}
	m[path] = v
}

// canon renders a JSON value for comparison (numbers normalised).
func canon(v any) string {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func toFloat(v any) (float64, bool) {
	f, err := strconv.ParseFloat(canon(v), 64)
	return f, err == nil
}

type policyRule struct {
	Type         string   `json:"type"`
	Value        any      `json:"value"`
	Values       []any    `json:"values"`
	DefaultValue any      `json:"defaultValue"`
	MinValue     *float64 `json:"minValue"`
	MaxValue     *float64 `json:"maxValue"`
	Pattern      string   `json:"pattern"`
	Hidden       bool     `json:"hidden"`
	IsOptional   bool     `json:"isOptional"`
}

func parseDefinition(def string) (map[string]policyRule, error) {
	dec := json.NewDecoder(strings.NewReader(def))
	dec.UseNumber()
	var rules map[string]policyRule
	if err := dec.Decode(&rules); err != nil {
		return nil, err
	}
	return rules, nil
}

// applyPolicy enforces a policy definition on a create request in place. It
// returns the first violation, worded like the real service.
func applyPolicy(req map[string]any, def string, applyDefaults bool) error {
	rules, err := parseDefinition(def)
	if err != nil {
		return fmt.Errorf("Requests for the policy cannot be satisfied due to the malformed policy definition: %v", err)
	}
	for _, path := range slices.Sorted(maps.Keys(rules)) {
		r := rules[path]
		v, present := getAttr(req, path)
		useDefault := func() {
			if !present && r.DefaultValue != nil && applyDefaults {
				setAttr(req, path, r.DefaultValue)
				v, present = r.DefaultValue, true
			}
		}
		switch r.Type {
		case "fixed":
			if !present {
				setAttr(req, path, r.Value)
				continue
			}
			if canon(v) != canon(r.Value) {
				return fmt.Errorf("Validation failed for %s, the value must be %s (is %s)", path, canon(r.Value), canon(v))
			}
			continue
		case "forbidden":
			if present {
				return fmt.Errorf("Validation failed for %s, the value must not be present", path)
			}
			continue
		case "unlimited":
			useDefault()
			continue
		case "allowlist", "blocklist", "range", "regex":
			useDefault()
			if !present {
				if r.IsOptional {
					continue
				}
				return fmt.Errorf("Validation failed for %s, the value must be present", path)
			}
		default:
			return fmt.Errorf("Requests for the policy cannot be satisfied due to the malformed policy definition: unknown type %q for %s", r.Type, path)
		}
		switch r.Type {
		case "allowlist", "blocklist":
			found := false
			var vals []string
			for _, a := range r.Values {
				vals = append(vals, canon(a))
				if canon(a) == canon(v) {
					found = true
				}
			}
			if r.Type == "allowlist" && !found {
				return fmt.Errorf("Validation failed for %s, the value must be one of [%s] (is %s)", path, strings.Join(vals, ", "), canon(v))
			}
			if r.Type == "blocklist" && found {
				return fmt.Errorf("Validation failed for %s, the value must not be one of [%s] (is %s)", path, strings.Join(vals, ", "), canon(v))
			}
		case "range":
			f, ok := toFloat(v)
			if !ok || (r.MinValue != nil && f < *r.MinValue) || (r.MaxValue != nil && f > *r.MaxValue) {
				return fmt.Errorf("Validation failed for %s, the value must be within the range allowed by the policy (is %s)", path, canon(v))
			}
		case "regex":
			re, err := regexp.Compile("^(?:" + r.Pattern + ")$")
			if err != nil {
				return fmt.Errorf("Requests for the policy cannot be satisfied due to the malformed policy definition: bad pattern for %s", path)
			}
			if !re.MatchString(canon(v)) {
				return fmt.Errorf("Validation failed for %s, the value must match the regular expression %s (is %s)", path, r.Pattern, canon(v))
			}
		}
	}
	return nil
}

func (s *Server) listPolicies(c *call) {
	c.ok(map[string]any{"policies": []map[string]any{s.personalComputePolicy()}, "total_count": 1})
}

func (s *Server) getPolicy(c *call) {
	id := c.query("policy_id")
	if id == "" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: policy_id")
		return
	}
	if id != personalComputePolicyID {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Cluster policy %s does not exist.", id))
		return
	}
	c.ok(s.personalComputePolicy())
}

func (s *Server) getPolicyFamily(c *call) {
	id := c.params[0]
	if id != personalComputeFamilyID {
		c.fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Policy family %s does not exist.", id))
		return
	}
	c.ok(personalComputeFamily())
}
