package emulator

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrorShape is how the emulator answers where Databricks' wording is not
// published ([Est]): an HTTP status, an error_code and a message template.
// Placeholders {limit}, {account}, {workspace}, {catalog}, {schema}, {user}
// and {principal} are filled in. An empty Code on a SCIM endpoint answers with
// a SCIM error body (detail = message) instead of the Databricks JSON one.
type ErrorShape struct {
	Status  int    `json:"status"`
	Code    string `json:"error_code"`
	Message string `json:"message"`
}

// ParseErrorShape reads STATUS:CODE:MESSAGE (CODE may be empty), the form of
// the command's --*-error flags.
func ParseErrorShape(s string) (ErrorShape, error) {
	st, rest, ok := strings.Cut(s, ":")
	code, msg, ok2 := strings.Cut(rest, ":")
	n, err := strconv.Atoi(st)
	if !ok || !ok2 || err != nil || n < 400 || n > 599 || msg == "" {
		return ErrorShape{}, fmt.Errorf("error shape %q: want STATUS:CODE:MESSAGE with a 4xx/5xx status (CODE may be empty)", s)
	}
	return ErrorShape{Status: n, Code: code, Message: msg}, nil
}

func (e ErrorShape) String() string { return fmt.Sprintf("%d:%s:%s", e.Status, e.Code, e.Message) }

// Defaults of the [Est] error shapes.
var (
	DefaultUserQuotaError       = ErrorShape{Status: http.StatusBadRequest, Message: "Cannot create user {user}: account {account} has reached its limit of {limit} users and service principals. Contact your Databricks account team to raise the limit."}
	DefaultSchemaQuotaError     = ErrorShape{Status: http.StatusBadRequest, Code: "QUOTA_EXCEEDED", Message: "Cannot create schema '{schema}': catalog '{catalog}' has reached its limit of {limit} schemas."}
	DefaultAssignmentFlakyError = ErrorShape{Status: http.StatusNotFound, Code: "RESOURCE_DOES_NOT_EXIST", Message: "Principal {principal} not in workspace {workspace}"}
)

// Production defaults of the strict options.
const (
	DefaultWorkspaceName        = "cohort-emulator"
	DefaultMaxAccountUsers      = 10000
	DefaultMaxSchemasPerCatalog = 10000
	DefaultClusterRetention     = 720 * time.Hour
	DefaultMaxPinnedClusters    = 100
	// One report (TF#5367) saw the assignment fail in about half of the
	// runs, each assigning several users: a tenth of the calls, not half.
	DefaultAssignmentFlakyShare     = 0.1
	DefaultAssignmentFlakyWindow    = 20 * time.Second
	DefaultAssignmentErrorBodyShare = 0.2
	DefaultInt64AsStringShare       = 0.1
)

// SeedUser is an account user that exists before Cohort runs.
type SeedUser struct {
	// UserName is the SCIM userName; Email defaults to it. Entra-synced users
	// may have a userName that differs from their email.
	UserName    string `json:"user_name"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	// Inactive users (active: false) cannot log in and still block their email.
	Inactive bool `json:"inactive,omitempty"`
	// Assigned also assigns the user to the workspace (USER).
	Assigned bool `json:"assigned,omitempty"`
}

// strictDefaults fills the production defaults of the strict options and
// checks them.
func (o *Options) strictDefaults() error {
	if o.WorkspaceName == "" {
		o.WorkspaceName = DefaultWorkspaceName
	}
	if o.MetastoreRoot != "" && !strings.Contains(o.MetastoreRoot, "://") {
		return fmt.Errorf("emulator: metastore root %q is not a URL (e.g. abfss://metastore@account.dfs.core.windows.net/root)", o.MetastoreRoot)
	}
	intDefault := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	intDefault(&o.MaxAccountUsers, DefaultMaxAccountUsers)
	intDefault(&o.MaxSchemasPerCatalog, DefaultMaxSchemasPerCatalog)
	intDefault(&o.MaxPinnedClusters, DefaultMaxPinnedClusters)
	if o.ClusterRetention == 0 {
		o.ClusterRetention = DefaultClusterRetention
	}
	if o.EventRetention == 0 {
		o.EventRetention = DefaultEventRetention
	}
	if o.AssignmentFlakyWindow == 0 {
		o.AssignmentFlakyWindow = DefaultAssignmentFlakyWindow
	}
	for _, sh := range []struct {
		name string
		v    *float64
		def  float64
	}{
		{"assignment flaky share", &o.AssignmentFlakyShare, DefaultAssignmentFlakyShare},
		{"assignment error-body share", &o.AssignmentErrorBodyShare, DefaultAssignmentErrorBodyShare},
		{"int64-as-string share", &o.Int64AsStringShare, DefaultInt64AsStringShare},
	} {
		if *sh.v == 0 {
			*sh.v = sh.def
		}
		if *sh.v > 1 {
			return fmt.Errorf("emulator: %s %v must be within [0,1] (negative: never)", sh.name, *sh.v)
		}
	}
	shapeDefault := func(v *ErrorShape, d ErrorShape) {
		if v.Status == 0 {
			*v = d
		}
	}
	shapeDefault(&o.UserQuotaError, DefaultUserQuotaError)
	shapeDefault(&o.SchemaQuotaError, DefaultSchemaQuotaError)
	shapeDefault(&o.AssignmentFlakyError, DefaultAssignmentFlakyError)
	return nil
}

// on reports whether a share or limit is switched on (not negative).
func on[T int | float64 | time.Duration](v T) bool { return v > 0 }

// expand fills the placeholders of a message template.
func expand(tmpl string, vars map[string]string) string {
	for k, v := range vars {
		tmpl = strings.ReplaceAll(tmpl, "{"+k+"}", v)
	}
	return tmpl
}

// answer writes an ErrorShape: Databricks JSON, or SCIM when scim and no code.
func (c *call) answer(e ErrorShape, scim bool, vars map[string]string) {
	msg := expand(e.Message, vars)
	if scim && e.Code == "" {
		c.scimFail(e.Status, msg, "")
		return
	}
	code := e.Code
	if code == "" {
		code = "INVALID_PARAMETER_VALUE"
	}
	c.fail(e.Status, code, msg)
}

// draw returns a reproducible uniform number in [0,1) for the n-th decision
// of a kind about one object, from the seed.
func (s *Server) draw(kind string, n uint64) float64 {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(s.opts.Seed))
	binary.LittleEndian.PutUint64(b[8:], n)
	h.Write(b[:])
	h.Write([]byte(kind))
	return float64(splitmix(h.Sum64())>>11) / (1 << 53)
}

// int64Fields are the 64-bit integer fields the emulator may send as strings.
var int64Fields = map[string]bool{
	"principal_id": true, "start_time": true, "terminated_time": true, "last_restarted_time": true,
	"created_at": true, "updated_at": true, "timestamp": true, "end_time": true,
}

// quoteInt64s rewrites, in a share of the answers of an endpoint, the 64-bit
// integers Cohort reads as JSON strings ("Databricks services do not
// consistently encode 64-bit integers", SDK#1808; v0.174+ accepts both).
// Callers hold s.mu.
func (s *Server) quoteInt64s(c *call, endpoint string) {
	if !on(s.opts.Int64AsStringShare) || c.status >= 300 || len(c.out) == 0 {
		return
	}
	s.int64Draws[endpoint]++
	if s.draw("int64:"+endpoint, s.int64Draws[endpoint]) >= s.opts.Int64AsStringShare {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(c.out))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return
	}
	b, err := json.Marshal(quoteWalk(v))
	if err != nil {
		return
	}
	c.out = b
}

func quoteWalk(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if n, ok := e.(json.Number); ok && int64Fields[k] {
				x[k] = n.String()
				continue
			}
			x[k] = quoteWalk(e)
		}
	case []any:
		for i, e := range x {
			x[i] = quoteWalk(e)
		}
	}
	return v
}

// mergePolicy merges a JSON object of overrides into a policy definition, rule
// by rule (an override replaces the family's rule for that attribute), as
// policy_family_definition_overrides does.
func mergePolicy(def, overrides string) (string, error) {
	if strings.TrimSpace(overrides) == "" {
		return def, nil
	}
	var base, over map[string]json.RawMessage
	if err := json.Unmarshal([]byte(def), &base); err != nil {
		return "", fmt.Errorf("emulator: policy family definition: %w", err)
	}
	if err := json.Unmarshal([]byte(overrides), &over); err != nil {
		return "", fmt.Errorf("emulator: policy overrides: want a JSON object of rules: %w", err)
	}
	for k, v := range over {
		var r policyRule
		if err := json.Unmarshal(v, &r); err != nil || r.Type == "" {
			return "", fmt.Errorf("emulator: policy overrides: rule %q: want an object with a type (fixed, allowlist, range, ...)", k)
		}
		base[k] = v
	}
	b, err := json.Marshal(base)
	if err != nil {
		return "", err
	}
	if _, err := parseDefinition(string(b)); err != nil {
		return "", fmt.Errorf("emulator: policy overrides: %w", err)
	}
	return string(b), nil
}
