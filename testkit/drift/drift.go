// Package drift makes drift on participants Cohort provisioned, and checks
// participants for it, through the real databricks-sdk-go clients: what an
// admin (or Databricks itself) does to an event between two reconciles, and
// a held-out check of what each participant must have. Benchmarks (bench
// -reconcile) and end-to-end tests share it; it never imports Cohort's
// activities, workflows or starter, so the check is independent of the code
// it checks.
//
// One Env holds an account and a workspace client (for the emulator: one host
// serving both, PAT auth, as e2e and bench build them) and what Cohort gives
// every participant (Expect, from Cohort's config). Make applies one Kind of
// drift to one participant; Verify and VerifyAll list what a participant
// lacks, as Findings of the same kinds.
//
// Kinds (the issue 18 names; Running is not a defect but a state a reconcile
// must leave alone):
//
//   - user_missing: the account user is deleted (SCIM DELETE; Databricks also
//     drops its workspace assignment, grants and cluster ACL entries).
//   - user_inactive: the account user is deactivated (SCIM PATCH active=false).
//   - not_assigned: the user's workspace assignment is deleted.
//   - schema_missing: the participant's schema is dropped (force: with its tables).
//   - grant_missing: one privilege Cohort granted on the schema is revoked
//     (USE_SCHEMA when Cohort grants it).
//   - cluster_gone: the participant's cluster is permanently deleted (as
//     Databricks purges a cluster 30 days after it stopped).
//   - permission_missing: the cluster's permissions are replaced (PUT) by its
//     other direct entries, without the participant's CAN_RESTART.
//   - extra_clusters: a second cluster is created under the same policy with
//     the participant's tag (an admin's copy of theirs), then terminated.
//   - running: the participant's cluster is started and RUNNING (on the
//     emulator kept so by its control API; see emulator/doc.go).
package drift

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"

	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/wire"
)

// Kind is one kind of drift (and of Finding).
type Kind string

// The kinds of drift, named as issue 18 and `starter reconcile --dry-run` name them.
const (
	UserMissing       Kind = "user_missing"
	UserInactive      Kind = "user_inactive"
	NotAssigned       Kind = "not_assigned"
	SchemaMissing     Kind = "schema_missing"
	GrantMissing      Kind = "grant_missing"
	ClusterGone       Kind = "cluster_gone"
	PermissionMissing Kind = "permission_missing"
	ExtraClusters     Kind = "extra_clusters"
	Running           Kind = "running"
)

// Kinds lists every kind Make applies, in a fixed order.
var Kinds = []Kind{UserMissing, UserInactive, NotAssigned, SchemaMissing, GrantMissing, ClusterGone, PermissionMissing, ExtraClusters, Running}

// ParseKind returns the Kind named s, or an error listing the known ones.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown drift kind %q; known: %s", s, strings.Join(names, ", "))
}

// Expect is what Cohort gives every participant, from its configuration.
type Expect struct {
	// Catalog is the shared catalog: USE_CATALOG on it, their schema in it.
	Catalog string
	// SchemaPrivileges are the privileges on their own schema.
	SchemaPrivileges []string
	// SharedGrants are the privileges on shared securables.
	SharedGrants []config.Grant
	// TagKey is the cluster custom tag whose value is the participant's email.
	TagKey string
	// PolicyName is the cluster policy their cluster is under.
	PolicyName string
}

// ExpectFromConfig takes Expect from Cohort's configuration.
func ExpectFromConfig(c config.Config) Expect {
	return Expect{
		Catalog:          strings.ToLower(c.Catalog.Name),
		SchemaPrivileges: append([]string(nil), c.Catalog.SchemaPrivileges...),
		SharedGrants:     append([]config.Grant(nil), c.Catalog.SharedGrants...),
		TagKey:           c.Cluster.TagKey,
		PolicyName:       c.Cluster.PolicyName,
	}
}

// Control is the emulator's control API (GET/POST /emulator/v1/...), for
// what only the emulator can do (keep a cluster running at once).
type Control struct {
	URL   string // e.g. http://127.0.0.1:8765
	Token string // the emulator's admin token
	HTTP  *http.Client
}

// Env is what Make and Verify act through.
type Env struct {
	Account     *databricks.AccountClient
	Workspace   *databricks.WorkspaceClient
	WorkspaceID int64
	Expect      Expect
	// Emulator, when set, lets Running bring a started cluster to RUNNING
	// at once and keep it so; nil (a real workspace): Running waits for the
	// start (3-8 minutes on Azure).
	Emulator *Control
	// Poll is the interval of Running's waits for a cluster state (0: 1 s).
	Poll time.Duration

	policyOnce sync.Once
	policyID   string
	policyErr  error
}

// Connect builds an Env over one host serving both the account and the
// workspace APIs (the emulator), with a personal access token, as e2e and
// bench do. The SDK's own limiter is lifted (the emulator's limits are
// Databricks' and answer 429s, which the SDK retries for up to retry).
func Connect(host, token, accountID string, workspaceID int64, exp Expect, retry time.Duration) (*Env, error) {
	if retry <= 0 {
		retry = 2 * time.Minute
	}
	cfg := func() *databricks.Config {
		return &databricks.Config{
			Host: host, Token: token, AccountID: accountID, AuthType: "pat",
			RetryTimeoutSeconds: max(1, int(retry/time.Second)),
			HTTPTimeoutSeconds:  60,
			RateLimitPerSecond:  10000,
		}
	}
	a, err := databricks.NewAccountClient(cfg())
	if err != nil {
		return nil, fmt.Errorf("drift: account client for %s: %w", host, err)
	}
	wc := cfg()
	wc.WorkspaceID = fmt.Sprint(workspaceID)
	w, err := databricks.NewWorkspaceClient(wc)
	if err != nil {
		return nil, fmt.Errorf("drift: workspace client for %s: %w", host, err)
	}
	return &Env{Account: a, Workspace: w, WorkspaceID: workspaceID, Expect: exp}, nil
}

// OwnerMark is the value of the schema property wire.SchemaOwnerProperty
// that marks a schema as the participant's: the hex SHA-256 of their email,
// trimmed and lower-cased (README, Promises). Written here again, not
// imported, so the check does not share the code it checks.
func OwnerMark(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// ownerProperty is the schema property holding OwnerMark.
const ownerProperty = wire.SchemaOwnerProperty

// schemaFullName is catalog.schema as Unity Catalog names it (lower case).
func (e *Env) schemaFullName(schema string) string {
	return e.Expect.Catalog + "." + strings.ToLower(schema)
}

// poll is Env.Poll or its default.
func (e *Env) poll() time.Duration {
	if e.Poll > 0 {
		return e.Poll
	}
	return time.Second
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errNotFound says something a drift acts on is not there.
var errNotFound = errors.New("not found")
