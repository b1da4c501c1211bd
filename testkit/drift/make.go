package drift

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/roster"
)

// Applied is one drift made.
type Applied struct {
	Email string
	Kind  Kind
	// ClusterID is the cluster acted on (cluster kinds), or the extra
	// cluster created (ExtraClusters).
	ClusterID string
	// Detail says what was done, for a log.
	Detail string
}

// Make applies one kind of drift to a provisioned participant, as an admin
// acting between two reconciles would (see the package doc for each kind).
// It fails, naming what it looked for, when the participant lacks what the
// drift acts on (e.g. no account user to delete).
func (e *Env) Make(ctx context.Context, p roster.Participant, kind Kind) (Applied, error) {
	return e.make(ctx, p, kind, nil)
}

// Target is one drift to make.
type Target struct {
	Participant roster.Participant
	Kind        Kind
}

// MakeAll makes each drift in turn, as Make does, but lists the clusters
// under the policy once for all of them (Make lists them for each cluster
// kind: at 10,000 participants 100 pages each). Each participant should
// appear once: a second drift on the same one would act on the listing
// taken before the first. It returns what each made and the errors of those
// that failed (nil if none did).
func (e *Env) MakeAll(ctx context.Context, ts []Target) ([]Applied, []error) {
	out := make([]Applied, len(ts))
	errs := make([]error, len(ts))
	failed := false
	var clusters map[string][]compute.ClusterDetails
	for i, t := range ts {
		if clusters == nil && clusterKind(t.Kind) {
			var err error
			if clusters, err = e.policyClusters(ctx); err != nil {
				for j := i; j < len(ts); j++ {
					errs[j] = fmt.Errorf("drift %s on %s: %w", ts[j].Kind, strings.ToLower(ts[j].Participant.Email), err)
				}
				return out, errs
			}
		}
		out[i], errs[i] = e.make(ctx, t.Participant, t.Kind, clusters)
		failed = failed || errs[i] != nil
	}
	if !failed {
		return out, nil
	}
	return out, errs
}

// clusterKind reports whether a kind acts on the participant's cluster.
func clusterKind(k Kind) bool {
	return k == ClusterGone || k == PermissionMissing || k == ExtraClusters || k == Running
}

// make applies kind; clusters, when not nil, is the policy's clusters
// listed beforehand (see MakeAll).
func (e *Env) make(ctx context.Context, p roster.Participant, kind Kind, clusters map[string][]compute.ClusterDetails) (Applied, error) {
	email := strings.ToLower(p.Email)
	out := Applied{Email: email, Kind: kind}
	var err error
	switch kind {
	case UserMissing:
		out.Detail, err = e.deleteUser(ctx, email)
	case UserInactive:
		out.Detail, err = e.deactivateUser(ctx, email)
	case NotAssigned:
		out.Detail, err = e.unassign(ctx, email)
	case SchemaMissing:
		out.Detail, err = e.dropSchema(ctx, p)
	case GrantMissing:
		out.Detail, err = e.revokeOne(ctx, p)
	case ClusterGone, PermissionMissing, ExtraClusters, Running:
		var c *compute.ClusterDetails
		if c, err = e.primaryOf(ctx, email, clusters); err != nil {
			break
		}
		switch kind {
		case ClusterGone:
			out.ClusterID, out.Detail, err = e.purgeCluster(ctx, c)
		case PermissionMissing:
			out.ClusterID, out.Detail, err = e.dropPermission(ctx, email, c)
		case ExtraClusters:
			out.ClusterID, out.Detail, err = e.copyCluster(ctx, email, c)
		default:
			out.ClusterID, out.Detail, err = e.startCluster(ctx, c)
		}
	default:
		_, err = ParseKind(string(kind))
	}
	if err != nil {
		return out, fmt.Errorf("drift %s on %s: %w", kind, email, err)
	}
	return out, nil
}

// requireUser finds the participant's account user or says it is missing.
func (e *Env) requireUser(ctx context.Context, email string) (*iam.User, error) {
	u, err := e.findUser(ctx, email)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, fmt.Errorf("no account user with userName %s: %w", email, errNotFound)
	}
	return u, nil
}

func (e *Env) deleteUser(ctx context.Context, email string) (string, error) {
	u, err := e.requireUser(ctx, email)
	if err != nil {
		return "", err
	}
	if err := e.Account.Users.Delete(ctx, iam.DeleteAccountUserRequest{Id: u.Id}); err != nil {
		return "", fmt.Errorf("delete account user %s: %w", u.Id, err)
	}
	return "deleted account user " + u.Id, nil
}

func (e *Env) deactivateUser(ctx context.Context, email string) (string, error) {
	u, err := e.requireUser(ctx, email)
	if err != nil {
		return "", err
	}
	err = e.Account.Users.Patch(ctx, iam.PartialUpdate{
		Id:         u.Id,
		Schemas:    []iam.PatchSchema{iam.PatchSchemaUrnIetfParamsScimApiMessages20PatchOp},
		Operations: []iam.Patch{{Op: iam.PatchOpReplace, Path: "active", Value: false}},
	})
	if err != nil {
		return "", fmt.Errorf("deactivate account user %s: %w", u.Id, err)
	}
	return "deactivated account user " + u.Id, nil
}

func (e *Env) unassign(ctx context.Context, email string) (string, error) {
	u, err := e.requireUser(ctx, email)
	if err != nil {
		return "", err
	}
	id, err := principalID(u)
	if err != nil {
		return "", err
	}
	if err := e.Account.WorkspaceAssignment.Delete(ctx, iam.DeleteWorkspaceAssignmentRequest{WorkspaceId: e.WorkspaceID, PrincipalId: id}); err != nil {
		return "", fmt.Errorf("remove the assignment of user %d to workspace %d: %w", id, e.WorkspaceID, err)
	}
	return fmt.Sprintf("removed user %d from workspace %d", id, e.WorkspaceID), nil
}

// ownSchema reads the participant's schema (the roster's name) and checks
// it carries their mark, so a drift never drops someone else's.
func (e *Env) ownSchema(ctx context.Context, p roster.Participant) (string, error) {
	full := e.schemaFullName(p.Schema)
	info, err := e.Workspace.Schemas.Get(ctx, catalog.GetSchemaRequest{FullName: full})
	if errors.Is(err, apierr.ErrNotFound) {
		return "", fmt.Errorf("no schema %s: %w", full, errNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get schema %s: %w", full, err)
	}
	if got, want := info.Properties[ownerProperty], OwnerMark(p.Email); got != want {
		return "", fmt.Errorf("schema %s is not marked as %s's (%s = %q, want %q)", full, p.Email, ownerProperty, got, want)
	}
	return full, nil
}

func (e *Env) dropSchema(ctx context.Context, p roster.Participant) (string, error) {
	full, err := e.ownSchema(ctx, p)
	if err != nil {
		return "", err
	}
	if err := e.Workspace.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: full, Force: true}); err != nil {
		return "", fmt.Errorf("drop schema %s: %w", full, err)
	}
	return "dropped schema " + full, nil
}

// revokedPrivilege is the privilege GrantMissing revokes: USE_SCHEMA (without
// it nothing in the schema is usable) when Cohort grants it, else the first.
func (e *Env) revokedPrivilege() (string, error) {
	ps := e.Expect.SchemaPrivileges
	if len(ps) == 0 {
		return "", errors.New("Expect.SchemaPrivileges is empty: Cohort grants nothing on the schema to revoke")
	}
	if slices.ContainsFunc(ps, func(p string) bool { return strings.EqualFold(p, string(catalog.PrivilegeUseSchema)) }) {
		return string(catalog.PrivilegeUseSchema), nil
	}
	return strings.ToUpper(ps[0]), nil
}

func (e *Env) revokeOne(ctx context.Context, p roster.Participant) (string, error) {
	full, err := e.ownSchema(ctx, p)
	if err != nil {
		return "", err
	}
	priv, err := e.revokedPrivilege()
	if err != nil {
		return "", err
	}
	email := strings.ToLower(p.Email)
	_, err = e.Workspace.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "schema", FullName: full,
		Changes:                   []catalog.PermissionsChange{{Principal: email, Remove: []catalog.Privilege{catalog.Privilege(priv)}}},
		OmitPermissionsInResponse: true})
	if err != nil {
		return "", fmt.Errorf("revoke %s on %s from %s: %w", priv, full, email, err)
	}
	return fmt.Sprintf("revoked %s on schema %s", priv, full), nil
}

// primaryOf is the participant's oldest tagged cluster, from clusters when
// listed beforehand, else listed now.
func (e *Env) primaryOf(ctx context.Context, email string, clusters map[string][]compute.ClusterDetails) (*compute.ClusterDetails, error) {
	if clusters == nil {
		return e.primaryCluster(ctx, email)
	}
	cs := clusters[strings.ToLower(email)]
	if len(cs) == 0 {
		return nil, fmt.Errorf("%s: no cluster tagged %s=%s under policy %q: %w", email, e.Expect.TagKey, email, e.Expect.PolicyName, errNotFound)
	}
	return &cs[0], nil
}

func (e *Env) purgeCluster(ctx context.Context, c *compute.ClusterDetails) (string, string, error) {
	if err := e.Workspace.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: c.ClusterId}); err != nil {
		return c.ClusterId, "", fmt.Errorf("permanently delete cluster %s: %w", c.ClusterId, err)
	}
	return c.ClusterId, "permanently deleted cluster " + c.ClusterId, nil
}

// dropPermission replaces the cluster's direct permissions by the same
// entries without the participant's: a PUT, as an admin editing the
// permissions page would send.
func (e *Env) dropPermission(ctx context.Context, email string, c *compute.ClusterDetails) (string, string, error) {
	perms, err := e.Workspace.Clusters.GetPermissions(ctx, compute.GetClusterPermissionsRequest{ClusterId: c.ClusterId})
	if err != nil {
		return c.ClusterId, "", fmt.Errorf("read permissions of cluster %s: %w", c.ClusterId, err)
	}
	if !hasDirect(perms, email, compute.ClusterPermissionLevelCanRestart) {
		return c.ClusterId, "", fmt.Errorf("cluster %s: %s holds no direct CAN_RESTART to remove: %w", c.ClusterId, email, errNotFound)
	}
	var keep []compute.ClusterAccessControlRequest
	for _, acl := range perms.AccessControlList {
		if strings.EqualFold(acl.UserName, email) {
			continue
		}
		if level := directLevel(acl.AllPermissions); level != "" {
			keep = append(keep, compute.ClusterAccessControlRequest{UserName: acl.UserName, GroupName: acl.GroupName,
				ServicePrincipalName: acl.ServicePrincipalName, PermissionLevel: level})
		}
	}
	if _, err := e.Workspace.Clusters.SetPermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: c.ClusterId, AccessControlList: keep}); err != nil {
		return c.ClusterId, "", fmt.Errorf("replace permissions of cluster %s: %w", c.ClusterId, err)
	}
	return c.ClusterId, fmt.Sprintf("replaced the permissions of cluster %s by %d entries without %s", c.ClusterId, len(keep), email), nil
}

// directLevel is the strongest level held directly ("" if only inherited).
func directLevel(ps []compute.ClusterPermission) compute.ClusterPermissionLevel {
	rank := map[compute.ClusterPermissionLevel]int{compute.ClusterPermissionLevelCanAttachTo: 1,
		compute.ClusterPermissionLevelCanRestart: 2, compute.ClusterPermissionLevelCanManage: 3}
	var best compute.ClusterPermissionLevel
	for _, p := range ps {
		if !p.Inherited && rank[p.PermissionLevel] > rank[best] {
			best = p.PermissionLevel
		}
	}
	return best
}

// copyCluster creates a second cluster like the participant's (same policy,
// runtime, node type, single user, tags, so also their tag), as an admin
// copying it would, and terminates it.
func (e *Env) copyCluster(ctx context.Context, email string, c *compute.ClusterDetails) (string, string, error) {
	tags := map[string]string{}
	for k, v := range c.CustomTags {
		tags[k] = v
	}
	conf := map[string]string{}
	for k, v := range c.SparkConf {
		conf[k] = v
	}
	w, err := e.Workspace.Clusters.Create(ctx, compute.CreateCluster{
		ClusterName: c.ClusterName + "-copy", SparkVersion: c.SparkVersion, NodeTypeId: c.NodeTypeId, PolicyId: c.PolicyId,
		NumWorkers: 0, ForceSendFields: []string{"NumWorkers"}, SparkConf: conf, CustomTags: tags,
		DataSecurityMode: c.DataSecurityMode, SingleUserName: c.SingleUserName,
		AutoterminationMinutes: c.AutoterminationMinutes, ApplyPolicyDefaultValues: true,
	})
	if err != nil {
		return "", "", fmt.Errorf("create a copy of cluster %s: %w", c.ClusterId, err)
	}
	id := w.ClusterId
	if _, err := e.Workspace.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id}); err != nil {
		return id, "", fmt.Errorf("terminate the copy %s of cluster %s: %w", id, c.ClusterId, err)
	}
	return id, fmt.Sprintf("created cluster %s tagged %s=%s beside %s (terminated)", id, e.Expect.TagKey, email, c.ClusterId), nil
}

// startCluster starts the participant's cluster once it has stopped
// (clusters/start refuses a TERMINATING one) and waits until it is RUNNING;
// on the emulator its control API brings it there at once and keeps it
// there (no auto-termination) until someone terminates it.
func (e *Env) startCluster(ctx context.Context, c *compute.ClusterDetails) (string, string, error) {
	id := c.ClusterId
	for {
		cur, err := e.Workspace.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id})
		if err != nil {
			return id, "", fmt.Errorf("get cluster %s: %w", id, err)
		}
		switch cur.State {
		case compute.StateTerminated:
			if _, err := e.Workspace.Clusters.Start(ctx, compute.StartCluster{ClusterId: id}); err != nil {
				return id, "", fmt.Errorf("start cluster %s: %w", id, err)
			}
			continue
		case compute.StatePending, compute.StateRestarting:
			if e.Emulator != nil {
				if err := e.Emulator.keepRunning(ctx, id); err != nil {
					return id, "", err
				}
				continue
			}
		case compute.StateRunning:
			if e.Emulator != nil {
				if err := e.Emulator.keepRunning(ctx, id); err != nil { // no auto-termination
					return id, "", err
				}
			}
			return id, "started cluster " + id + ": RUNNING", nil
		case compute.StateTerminating:
		default:
			return id, "", fmt.Errorf("cluster %s is %s (%s), cannot start it", id, cur.State, cur.StateMessage)
		}
		if err := sleep(ctx, e.poll()); err != nil {
			return id, "", fmt.Errorf("wait for cluster %s (%s) to start: %w", id, cur.State, err)
		}
	}
}

// ClusterState reads a cluster's state (for checking a running one stayed so).
func (e *Env) ClusterState(ctx context.Context, id string) (compute.State, error) {
	c, err := e.Workspace.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id})
	if err != nil {
		return "", fmt.Errorf("get cluster %s: %w", id, err)
	}
	return c.State, nil
}

// keepRunning calls POST /emulator/v1/clusters/keep-running.
func (c *Control) keepRunning(ctx context.Context, id string) error {
	body, _ := json.Marshal(map[string]string{"cluster_id": id})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/emulator/v1/clusters/keep-running", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("emulator keep-running %s: %w", id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("emulator keep-running %s: %s: %s (does this emulator have POST /emulator/v1/clusters/keep-running?)", id, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}
