// Cluster-spec derivation: the spec every participant's cluster is created with,
// derived from the policy's rules, the runtime and the node type.

package activities

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/compute"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// Attributes Cohort cannot give up: a participant's cluster is single node
// and dedicated to them.
var mustKeep = []struct{ path, value, why string }{
	{"num_workers", "0", "single node"},
	{"spark_conf.spark.databricks.cluster.profile", "singleNode", "single node"},
	{"data_security_mode", string(compute.DataSecurityModeSingleUser), "dedicated to the participant"},
}

// Attributes Cohort sets by default and can adapt: take a fixed value,
// leave out a forbidden one, or leave the value to the policy's default.
const (
	pathAutotermination = "autotermination_minutes"
	pathSparkMaster     = "spark_conf.spark.master"
	pathResourceClass   = "custom_tags.ResourceClass"
)

// checkClusterSpec reads the policy's definition and derives the spec every
// participant's cluster is created with: the must-keep attributes allowed,
// fixed values taken, forbidden ones left out, the runtime and the node
// type resolved and allowed.
func (a *Activities) checkClusterSpec(r *ready, rd *reads, policy *compute.Policy, ps []roster.Participant,
	add func(wire.Check), fail func(string, string, error, string)) error {
	r.spec.PolicyID = policy.PolicyId
	rules, err := parsePolicy(policy.Definition)
	if err != nil {
		add(wire.Check{Name: CheckClusterSpec, Blocking: true, Detail: fmt.Sprintf("policy %q has a definition Cohort cannot read: %v", policy.Name, err),
			Fix: "correct the policy's definition (Compute > Policies)"})
		rules = map[string]policyRule{}
	} else {
		problems, notes := a.deriveSpec(&r.spec, rules, policy, ps)
		c := wire.Check{Name: CheckClusterSpec, OK: len(problems) == 0}
		if c.OK {
			c.Detail = "the policy accepts a single-node SINGLE_USER cluster per participant"
			if len(notes) > 0 {
				c.Detail += "; " + strings.Join(notes, "; ")
			}
		} else {
			c.Blocking = true
			c.Detail = strings.Join(problems, "; ")
			c.Fix = fmt.Sprintf("use a policy that allows a single-node SINGLE_USER cluster (Azure's Personal Compute family as shipped does), or change the rules named in policy %q (policy_family_definition_overrides)", policy.Name)
		}
		add(c)
	}
	if err := a.checkRuntime(r, rd, rules["spark_version"], add, fail); err != nil {
		return err
	}
	return a.checkNodeType(r, rd, rules["node_type_id"], add, fail)
}

// deriveSpec fills spec from the policy's rules, returning the blocking
// problems (each naming its rule) and notes on what was adapted.
func (a *Activities) deriveSpec(spec *wire.ClusterSpec, rules map[string]policyRule, policy *compute.Policy, ps []roster.Participant) (problems, notes []string) {
	for _, m := range mustKeep {
		if r, ok := rules[m.path]; ok && !r.allows(m.value) {
			problems = append(problems, fmt.Sprintf("rule %s is %s, but Cohort needs %s (%s)", m.path, r, m.value, m.why))
		}
	}
	// Per participant: the single user, the name and the tag are theirs.
	perParticipant := []struct {
		path string
		of   func(roster.Participant) string
	}{
		{"single_user_name", func(p roster.Participant) string { return strings.ToLower(p.Email) }},
		{"cluster_name", func(p roster.Participant) string { return p.ClusterName }},
		{"custom_tags." + a.Settings.TagKey, func(p roster.Participant) string { return strings.ToLower(p.Email) }},
	}
	for _, pp := range perParticipant {
		r, ok := rules[pp.path]
		if !ok {
			continue
		}
		if r.Type == "fixed" || r.Type == "forbidden" {
			problems = append(problems, fmt.Sprintf("rule %s is %s, but Cohort sets it per participant", pp.path, r))
			continue
		}
		bad, first := 0, ""
		for _, p := range ps {
			if v := pp.of(p); !r.allows(v) {
				if bad == 0 {
					first = v
				}
				bad++
			}
		}
		if bad > 0 {
			problems = append(problems, fmt.Sprintf("rule %s is %s, which %d participant(s) do not meet (e.g. %s)", pp.path, r, bad, first))
		}
	}
	// Adaptable defaults.
	adapt := func(path, want string, setTo *string, setInt *int, omit *bool) {
		r, ok := rules[path]
		switch {
		case !ok || r.allows(want):
		case r.Type == "fixed":
			v := policyValue(r.Value)
			if setInt != nil {
				n, err := strconv.Atoi(v)
				if err != nil || n <= 0 {
					*omit = true
					notes = append(notes, fmt.Sprintf("%s: left to the policy (fixed to %s)", path, v))
					return
				}
				*setInt = n
			} else {
				*setTo = v
			}
			notes = append(notes, fmt.Sprintf("%s: %s as the policy fixes (configured %s)", path, v, want))
		case r.Type == "forbidden":
			*omit = true
			notes = append(notes, fmt.Sprintf("%s: left out (the policy forbids it)", path))
		case r.DefaultValue != nil:
			*omit = true
			notes = append(notes, fmt.Sprintf("%s: %s is not %s, so the policy's default %s applies", path, want, r, policyValue(r.DefaultValue)))
		default:
			problems = append(problems, fmt.Sprintf("rule %s is %s, but Cohort sends %s", path, r, want))
		}
	}
	adapt(pathAutotermination, strconv.Itoa(a.Settings.Autotermination), nil, &spec.AutoterminationMinutes, &spec.OmitAutotermination)
	adapt(pathSparkMaster, "local[*]", &spec.SparkMaster, nil, &spec.OmitSparkMaster)
	adapt(pathResourceClass, "SingleNode", &spec.ResourceClass, nil, &spec.OmitResourceClass)
	// Rules that need a value Cohort does not send and that have no default.
	sent := map[string]bool{"spark_version": true, "node_type_id": true, pathAutotermination: true, pathSparkMaster: true,
		pathResourceClass: true, "single_user_name": true, "cluster_name": true, "custom_tags." + a.Settings.TagKey: true}
	for _, m := range mustKeep {
		sent[m.path] = true
	}
	paths := make([]string, 0, len(rules))
	for p := range rules {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		r := rules[p]
		switch r.Type {
		case "allowlist", "blocklist", "range", "regex":
			if !sent[p] && r.DefaultValue == nil && !r.IsOptional {
				problems = append(problems, fmt.Sprintf("rule %s is %s with no default, and Cohort does not set %s", p, r, p))
			}
		}
	}
	if n := int(policy.MaxClustersPerUser); n > 0 && len(ps) > n {
		problems = append(problems, fmt.Sprintf("the policy's max_clusters_per_user is %d, but the caller creates a cluster for each of %d participants", n, len(ps)))
	}
	return problems, notes
}

// checkRuntime: a pinned runtime exists and the policy allows it, or the
// latest ML LTS runtime among those the policy allows is selected.
func (a *Activities) checkRuntime(r *ready, rd *reads, rule policyRule, add func(wire.Check), fail func(string, string, error, string)) error {
	sv, err := rd.versions.get()
	if werr := unpaced(err); werr != nil {
		return werr
	}
	if err != nil {
		fail(CheckRuntime, "list runtimes", err, "let the caller list the workspace's runtimes")
		return nil
	}
	pinned := strings.TrimSpace(a.Settings.SparkVersion)
	if pinned == "" && rule.Type == "fixed" {
		pinned = policyValue(rule.Value)
	}
	fix := "set cluster.spark_version to a runtime the workspace offers and the policy allows (empty: the latest ML LTS), or widen the policy's spark_version rule"
	if pinned != "" {
		offered := strings.HasPrefix(pinned, "auto:")
		for _, v := range sv.Versions {
			offered = offered || v.Key == pinned
		}
		switch {
		case !offered:
			add(wire.Check{Name: CheckRuntime, Blocking: true, Detail: fmt.Sprintf("runtime %s is not offered by the workspace", pinned), Fix: fix})
		case rule.Type != "" && !rule.allows(pinned):
			add(wire.Check{Name: CheckRuntime, Blocking: true, Detail: fmt.Sprintf("runtime %s: rule spark_version is %s", pinned, rule), Fix: fix})
		default:
			r.spec.SparkVersion = pinned
			add(wire.Check{Name: CheckRuntime, OK: true, Detail: "runtime " + pinned})
		}
		return nil
	}
	allowed := *sv
	allowed.Versions = slices.DeleteFunc(slices.Clone(sv.Versions), func(v compute.SparkVersion) bool { return rule.Type != "" && !rule.allows(v.Key) })
	key, err := allowed.Select(compute.SparkVersionRequest{ML: true, LongTermSupport: true, Latest: true})
	if err != nil {
		add(wire.Check{Name: CheckRuntime, Blocking: true, Detail: fmt.Sprintf("no ML LTS runtime the policy allows (rule spark_version: %s): %v", rule, err), Fix: fix})
		return nil
	}
	r.spec.SparkVersion = key
	add(wire.Check{Name: CheckRuntime, OK: true, Detail: "runtime " + key + " (the latest ML LTS)"})
	return nil
}

// checkNodeType: the configured node type exists and the policy allows it,
// or the smallest the policy allows is selected.
func (a *Activities) checkNodeType(r *ready, rd *reads, rule policyRule, add func(wire.Check), fail func(string, string, error, string)) error {
	nts, err := rd.nodeTypes.get()
	if werr := unpaced(err); werr != nil {
		return werr
	}
	if err != nil {
		fail(CheckNodeType, "list node types", err, "let the caller list the workspace's node types")
		return nil
	}
	fix := "set cluster.node_type to a node type the workspace offers and the policy allows (or \"smallest\"), or widen the policy's node_type_id rule"
	want := strings.TrimSpace(a.Settings.NodeType)
	if want == "" {
		want = DefaultNodeType
	}
	if strings.EqualFold(want, NodeTypeSmallest) {
		allowed := *nts
		allowed.NodeTypes = slices.DeleteFunc(slices.Clone(nts.NodeTypes), func(n compute.NodeType) bool { return rule.Type != "" && !rule.allows(n.NodeTypeId) })
		id, err := allowed.Smallest(compute.NodeTypeRequest{Category: "General Purpose", LocalDisk: true})
		if err != nil {
			id, err = allowed.Smallest(compute.NodeTypeRequest{})
		}
		if err != nil {
			add(wire.Check{Name: CheckNodeType, Blocking: true, Detail: fmt.Sprintf("no node type the policy allows (rule node_type_id: %s): %v", rule, err), Fix: fix})
			return nil
		}
		r.spec.NodeType = id
		add(wire.Check{Name: CheckNodeType, OK: true, Detail: "node type " + id + " (the smallest the policy allows)"})
		return nil
	}
	offered := slices.ContainsFunc(nts.NodeTypes, func(n compute.NodeType) bool { return n.NodeTypeId == want })
	switch {
	case !offered:
		add(wire.Check{Name: CheckNodeType, Blocking: true, Detail: fmt.Sprintf("node type %s is not offered by the workspace", want), Fix: fix})
	case rule.Type != "" && !rule.allows(want):
		add(wire.Check{Name: CheckNodeType, Blocking: true, Detail: fmt.Sprintf("node type %s: rule node_type_id is %s", want, rule), Fix: fix})
	default:
		r.spec.NodeType = want
		add(wire.Check{Name: CheckNodeType, OK: true, Detail: "node type " + want})
	}
	return nil
}
