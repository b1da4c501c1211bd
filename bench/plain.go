package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/roster"
)

// The seed's approach, as an admin would write it in a notebook: the same
// steps with the SDK's defaults (its own retries, 300 s budget, 15 req/s per
// client), one participant after another, or a fixed number at a time. It
// deliberately does not import Cohort's activities.

// plainEnv is what the loop resolves once before the first participant.
type plainEnv struct {
	acc          *databricks.AccountClient
	ws           *databricks.WorkspaceClient
	workspaceID  int64
	catalog      string
	policyID     string
	sparkVersion string
}

// The loop provisions what Cohort's default config asks for: the same
// catalog, node type, policy and schema privileges.
var (
	plainDefaults         = config.Default()
	plainCatalog          = plainDefaults.Catalog.Name
	plainNodeType         = plainDefaults.Cluster.NodeType
	plainPolicy           = plainDefaults.Cluster.PolicyName
	plainSchemaPrivileges = privileges(plainDefaults.Catalog.SchemaPrivileges)
)

func privileges(names []string) []catalog.Privilege {
	out := make([]catalog.Privilege, len(names))
	for i, n := range names {
		out[i] = catalog.Privilege(n)
	}
	return out
}

func newPlainEnv(ctx context.Context, host, token, accountID string, workspaceID int64) (*plainEnv, error) {
	acc, err := databricks.NewAccountClient(&databricks.Config{Host: host, Token: token, AccountID: accountID, AuthType: "pat"})
	if err != nil {
		return nil, fmt.Errorf("account client: %w", err)
	}
	ws, err := databricks.NewWorkspaceClient(&databricks.Config{Host: host, Token: token, AuthType: "pat"})
	if err != nil {
		return nil, fmt.Errorf("workspace client: %w", err)
	}
	env := &plainEnv{acc: acc, ws: ws, workspaceID: workspaceID, catalog: plainCatalog}
	if _, err := ws.Catalogs.Get(ctx, catalog.GetCatalogRequest{Name: plainCatalog}); err != nil {
		if !errors.Is(err, apierr.ErrNotFound) {
			return nil, fmt.Errorf("get catalog %s: %w", plainCatalog, err)
		}
		if _, err := ws.Catalogs.Create(ctx, catalog.CreateCatalog{Name: plainCatalog}); err != nil && !errors.Is(err, apierr.ErrResourceConflict) {
			return nil, fmt.Errorf("create catalog %s: %w", plainCatalog, err)
		}
	}
	pol, err := ws.ClusterPolicies.GetByName(ctx, plainPolicy)
	if err != nil {
		return nil, fmt.Errorf("find %s policy: %w", plainPolicy, err)
	}
	env.policyID = pol.PolicyId
	env.sparkVersion, err = ws.Clusters.SelectSparkVersion(ctx, compute.SparkVersionRequest{Latest: true, LongTermSupport: true, ML: true})
	if err != nil {
		return nil, fmt.Errorf("select runtime: %w", err)
	}
	return env, nil
}

// provision runs the seven steps for one participant.
func (e *plainEnv) provision(ctx context.Context, p roster.Participant) error {
	email := strings.ToLower(p.Email)
	// 1. create the account user; on conflict, look it up.
	var userID string
	u, err := e.acc.Users.Create(ctx, iam.User{UserName: email, DisplayName: p.DisplayName,
		Emails: []iam.ComplexValue{{Value: email, Primary: true}}})
	switch {
	case err == nil:
		userID = u.Id
	case errors.Is(err, apierr.ErrResourceConflict):
		users, lerr := e.acc.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: fmt.Sprintf("userName eq %q", email)})
		if lerr != nil || len(users) == 0 {
			return fmt.Errorf("find user %s: %v", email, errors.Join(lerr, err))
		}
		userID = users[0].Id
	default:
		return fmt.Errorf("create user %s: %w", email, err)
	}
	var principal int64
	if _, err := fmt.Sscan(userID, &principal); err != nil {
		return fmt.Errorf("user id %q: %w", userID, err)
	}
	// 2. assign it to the workspace, retried as anyone learns to: right
	// after the create it fails now and then ("not in workspace", or a 200
	// whose body carries an error).
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		pa, err := e.acc.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{
			WorkspaceId: e.workspaceID, PrincipalId: principal,
			Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}})
		if err == nil && (pa == nil || pa.Error == "") {
			break
		}
		if err != nil && !strings.Contains(err.Error(), "not in workspace") {
			return fmt.Errorf("assign %s: %w", email, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("assign %s: %w", email, ctx.Err())
		}
		time.Sleep(wait)
	}
	// 3. its schema.
	full := e.catalog + "." + strings.ToLower(p.Schema)
	if _, err := e.ws.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: e.catalog, Name: p.Schema}); err != nil &&
		!errors.Is(err, apierr.ErrResourceConflict) {
		return fmt.Errorf("create schema %s: %w", full, err)
	}
	// 4. grants on the catalog and on the schema.
	if _, err := e.ws.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "catalog", FullName: e.catalog,
		Changes: []catalog.PermissionsChange{{Principal: email, Add: []catalog.Privilege{catalog.PrivilegeUseCatalog}}}}); err != nil {
		return fmt.Errorf("grant on catalog to %s: %w", email, err)
	}
	if _, err := e.ws.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "schema", FullName: full,
		Changes: []catalog.PermissionsChange{{Principal: email, Add: plainSchemaPrivileges}}}); err != nil {
		return fmt.Errorf("grant on schema %s to %s: %w", full, email, err)
	}
	// 5. the personal cluster under the Personal Compute policy.
	name := p.ClusterName
	if name == "" {
		name = "cohort-" + email
	}
	w, err := e.ws.Clusters.Create(ctx, compute.CreateCluster{
		ClusterName: name, SparkVersion: e.sparkVersion, NodeTypeId: plainNodeType, PolicyId: e.policyID,
		NumWorkers: 0, ForceSendFields: []string{"NumWorkers"},
		SparkConf:        map[string]string{"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
		CustomTags:       map[string]string{"ResourceClass": "SingleNode"},
		DataSecurityMode: compute.DataSecurityModeSingleUser, SingleUserName: email,
		AutoterminationMinutes: 60, ApplyPolicyDefaultValues: true,
	})
	if err != nil {
		return fmt.Errorf("create cluster for %s: %w", email, err)
	}
	id := w.ClusterId
	if w.Response != nil && w.Response.ClusterId != "" {
		id = w.Response.ClusterId
	}
	// 6. CAN_RESTART for the participant.
	if _, err := e.ws.Clusters.UpdatePermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: id,
		AccessControlList: []compute.ClusterAccessControlRequest{{UserName: email, PermissionLevel: compute.ClusterPermissionLevelCanRestart}}}); err != nil {
		return fmt.Errorf("set CAN_RESTART on %s: %w", id, err)
	}
	// 7. terminate it and read it back as stopping, the same end point as
	// Cohort's (not the SDK's waiter for TERMINATED, which would add the
	// 0.5-3 min stop to every participant of the loop).
	if _, err := e.ws.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id}); err != nil {
		return fmt.Errorf("terminate %s: %w", id, err)
	}
	c, err := e.ws.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id})
	if err != nil {
		return fmt.Errorf("read back %s: %w", id, err)
	}
	if c.State != compute.StateTerminating && c.State != compute.StateTerminated {
		return fmt.Errorf("cluster %s reads %s after terminate", id, c.State)
	}
	return nil
}

// plainResult is a timed run of the plain loop over a sample.
type plainResult struct {
	Sample   int
	Failed   int
	FirstErr string
	Setup    time.Duration
	Wall     time.Duration // setup included
}

// runPlain provisions ps with at most parallel at a time (1 = the plain loop).
func runPlain(ctx context.Context, env func() (*plainEnv, error), ps []roster.Participant, parallel int) (plainResult, error) {
	start := time.Now()
	e, err := env()
	if err != nil {
		return plainResult{}, err
	}
	res := plainResult{Sample: len(ps), Setup: time.Since(start)}
	var mu sync.Mutex
	work := make(chan roster.Participant)
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if err := e.provision(ctx, p); err != nil {
					mu.Lock()
					res.Failed++
					if res.FirstErr == "" {
						res.FirstErr = err.Error()
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range ps {
		select {
		case work <- p:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	res.Wall = time.Since(start)
	return res, ctx.Err()
}
