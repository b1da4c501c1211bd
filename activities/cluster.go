package activities

// One concern, a participant's cluster: the CreateCluster, SetPermission and
// StopCluster steps and the reads that let each adopt what an earlier run left.

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/compute"

	"github.com/cohort-dev/cohort/wire"
)

// DefaultStopPollInterval is used when Settings.StopPollInterval is 0.
const DefaultStopPollInterval = 5 * time.Second

// clusterListPageSize is the page size of the tag lookup (the API's maximum).
const clusterListPageSize = 100

// CreateCluster is step create_cluster: the participant's personal
// single-node cluster under the policy, adopted when one carrying the
// participant's tag exists. The cluster Cohort recorded (KnownClusterID) is
// read by id first, one clusters/get; only without it, or when it is gone or
// no longer the participant's, does the step page through the clusters under
// the policy (a retried attempt looks there, as does one for a user who
// existed before this run), heartbeating meanwhile.
func (a *Activities) CreateCluster(ctx context.Context, in wire.CreateClusterInput) (wire.CreateClusterResult, error) {
	email := strings.ToLower(strings.TrimSpace(in.Participant.Email))
	if email == "" {
		return wire.CreateClusterResult{}, invalid(wire.StepCreateCluster, "create cluster: participant has no email")
	}
	lookup := in.Lookup || attempt(ctx) > 1
	ctx, earlier, stop := withPulse(ctx) // until a heartbeat says more, it repeats the last attempt's details
	defer stop()
	c, created, err := a.ensureCluster(ctx, email, strings.ToLower(cmp.Or(in.UserName, email)), in.Participant.ClusterName, in.Spec, lookup, earlier.ClusterID, in)
	if err != nil {
		return wire.CreateClusterResult{}, err
	}
	return wire.CreateClusterResult{ClusterID: c.ClusterId, URL: a.clusterURL(c.ClusterId), State: string(c.State), Created: created}, nil
}

// SetPermission is step set_permission: CAN_RESTART for the participant on
// their cluster.
func (a *Activities) SetPermission(ctx context.Context, in wire.SetPermissionInput) (wire.SetPermissionResult, error) {
	principal := strings.ToLower(strings.TrimSpace(in.Principal))
	if principal == "" || in.ClusterID == "" {
		return wire.SetPermissionResult{}, invalid(wire.StepSetPermission, "set cluster permission: principal %q and cluster id %q are required", in.Principal, in.ClusterID)
	}
	return wire.SetPermissionResult{}, a.setClusterPermission(ctx, principal, in.ClusterID)
}

// StopCluster is step stop_cluster: the cluster terminated, read back as
// TERMINATING or TERMINATED.
func (a *Activities) StopCluster(ctx context.Context, in wire.StopClusterInput) (wire.StopClusterResult, error) {
	if in.ClusterID == "" {
		return wire.StopClusterResult{}, invalid(wire.StepStopCluster, "stop cluster: no cluster id")
	}
	ctx, _, stop := withPulse(ctx) // it may terminate again and again
	defer stop()
	state, err := a.stopCluster(ctx, in.ClusterID, compute.State(in.State))
	return wire.StopClusterResult{State: string(state)}, err
}

// clusterURL is the cluster's page in the workspace UI. The modern UI serves
// <host>/compute/clusters/<id> (older docs show <host>/#/setting/clusters/<id>,
// which still redirects there).
func (a *Activities) clusterURL(id string) string {
	if a.Settings.WorkspaceHost == "" || id == "" {
		return ""
	}
	return strings.TrimRight(a.Settings.WorkspaceHost, "/") + "/compute/clusters/" + id
}

// ensureCluster returns the participant's cluster: the one a previous
// attempt of this activity recorded in its heartbeat, else the one Cohort
// recorded for the participant (knownID), each read by id (one
// clusters/get) and adopted only if it is still Cohort's cluster for them
// (ownCluster), else (when lookup says one may exist, as it does when a
// recorded one is gone) the oldest of Cohort's clusters tagged for them,
// else a new one.
//
// Where the lookup's candidates come from depends on the input: with
// in.Listed, the batch listed the clusters once and in.Tagged holds the ids
// it found tagged for the participant, each read by id; nothing is listed.
// A create error is then returned as it is: the retried attempt creates
// again with the same idempotency_token, and Databricks answers a create
// whose token an active cluster carries with that cluster, so a create
// applied before its error (503, connection reset) is found that way, not
// by a listing. Without in.Listed (inputs of batches started before the
// listing) the step pages through the clusters under the policy, and lists
// again after any create error, as it did.
func (a *Activities) ensureCluster(ctx context.Context, email, userName, name string, spec wire.ClusterSpec, lookup bool, earlierID string, in wire.CreateClusterInput) (*compute.ClusterDetails, bool, error) {
	if spec.PolicyID == "" || spec.SparkVersion == "" || spec.NodeType == "" {
		return nil, false, invalid(wire.StepCreateCluster, "create cluster for %s: incomplete cluster spec %+v (run batch setup first)", email, spec)
	}
	if a.Settings.TagKey == "" {
		return nil, false, invalid(wire.StepCreateCluster, "create cluster for %s: no participant tag key configured", email)
	}
	knownID := in.KnownClusterID
	if c := a.resumeCluster(ctx, email, earlierID); c != nil {
		return c, false, nil
	}
	if knownID != "" && knownID != earlierID {
		if c := a.resumeCluster(ctx, email, knownID); c != nil {
			return c, false, nil
		}
		lookup = true // gone or not theirs: another tagged one may exist
	}
	if lookup {
		var c *compute.ClusterDetails
		var err error
		if in.Listed {
			c, err = a.pickTagged(ctx, wire.StepCreateCluster, email, in.Tagged, earlierID, knownID)
		} else {
			c, err = a.findCluster(ctx, email, spec.PolicyID)
		}
		if err != nil || c != nil {
			return c, false, err
		}
	}

	if name == "" {
		return nil, false, invalid(wire.StepCreateCluster, "create cluster for %s: no cluster name (the roster derives one)", email)
	}
	req := a.clusterRequest(email, userName, name, spec)
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return nil, false, classify(wire.StepCreateCluster, fmt.Errorf("create cluster for %s: %w", email, err))
	}
	id, cerr := a.createCluster(ctx, req, idempotencyToken(email))
	if cerr == nil && id != "" {
		return &compute.ClusterDetails{ClusterId: id, State: compute.StatePending}, true, nil
	}
	if cerr == nil {
		cerr = errNoClusterID
		if in.Listed {
			// The narrow check: an answer without an id may still have made
			// the cluster, and the same token asks for it again.
			if err := a.Limits.Wait(ctx, ClassClusters); err == nil {
				if id, err := a.createCluster(ctx, req, idempotencyToken(email)); err == nil && id != "" {
					return &compute.ClusterDetails{ClusterId: id, State: compute.StatePending}, true, nil
				}
			}
		}
	}
	if !in.Listed {
		// The create may have been applied before it failed: look again.
		c, ferr := a.findCluster(ctx, email, spec.PolicyID)
		if ferr == nil && c != nil {
			if l := logger(ctx); l != nil {
				l.Info("adopted the cluster of a create that reported an error", "cluster_id", c.ClusterId, "error", redact(cerr.Error()))
			}
			return c, true, nil
		}
	}
	if errors.Is(cerr, errNoClusterID) {
		return nil, false, inconsistent(wire.StepCreateCluster, wire.ErrClusterLaunchFailed, "create cluster for %s: %v", email, cerr)
	}
	return nil, false, classify(wire.StepCreateCluster, fmt.Errorf("create cluster for %s: %w", email, cerr))
}

// pickTagged reads each candidate (ids the batch's listing found tagged for
// the participant) by id and returns the oldest that is Cohort's cluster for
// them (nil if none). Ids already read (skip) and ids gone since the listing
// are passed over; any other read error fails the step, retryably.
func (a *Activities) pickTagged(ctx context.Context, step, email string, ids []string, skip ...string) (*compute.ClusterDetails, error) {
	var found []compute.ClusterDetails
	for _, id := range ids {
		if id == "" || slices.Contains(skip, id) {
			continue
		}
		c, err := a.getCluster(ctx, step, id)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue
		}
		if ours, why := a.ownCluster(c.CustomTags, email, false); !ours {
			if l := logger(ctx); l != nil {
				l.Warn("cluster tagged for the participant is not Cohort's; not adopting it", "participant", email, "cluster_id", id, "why", why)
			}
			continue
		}
		found = append(found, *c)
	}
	return oldest(ctx, email, found), nil
}

// getCluster reads one cluster by id (paced at the clusters rate): nil when
// it does not exist (permanently deleted, purged).
func (a *Activities) getCluster(ctx context.Context, step, id string) (*compute.ClusterDetails, error) {
	what := "get cluster " + id
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return nil, classify(step, fmt.Errorf("%s: %w", what, err))
	}
	c, err := a.Workspace.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id})
	switch {
	case clusterMissing(err):
		return nil, nil
	case err != nil:
		return nil, classify(step, fmt.Errorf("%s: %w", what, err))
	}
	if c != nil && c.ClusterId == "" {
		c.ClusterId = id
	}
	return c, nil
}

// ownCluster says whether a cluster with these custom tags is Cohort's
// cluster for the participant, and if not, why (said after "cluster <id>").
// It must be tagged for them and either marked by Cohort for them
// (wire.ClusterOwnerTag) or, unmarked (created by an earlier version, which
// did not mark), be the one Cohort recorded for them (recorded). A cluster
// someone else made with the participant's tag (an admin's look-alike, one
// re-created after Cohort's was deleted) is neither: Cohort never adopts or
// removes it.
func (a *Activities) ownCluster(tags map[string]string, email string, recorded bool) (bool, string) {
	mark := tags[wire.ClusterOwnerTag]
	switch {
	case !strings.EqualFold(tags[a.Settings.TagKey], email):
		return false, "(no longer tagged for them)"
	case mark == ownerMark(email):
		return true, ""
	case mark != "":
		return false, "(marked as another participant's)"
	case recorded:
		return true, ""
	}
	return false, "(tagged for them, but not created by Cohort: neither marked " + wire.ClusterOwnerTag + " nor the cluster Cohort recorded)"
}

// clusterRequest is the create request of a participant's cluster: single
// node, single user, tagged with their email, adapted to the policy.
func (a *Activities) clusterRequest(email, userName, name string, spec wire.ClusterSpec) compute.CreateCluster {
	req := compute.CreateCluster{
		ClusterName:  name,
		SparkVersion: spec.SparkVersion,
		NodeTypeId:   spec.NodeType,
		PolicyId:     spec.PolicyID,
		NumWorkers:   0,
		SparkConf: map[string]string{
			"spark.databricks.cluster.profile": "singleNode",
			"spark.master":                     "local[*]",
		},
		CustomTags: map[string]string{
			"ResourceClass":      "SingleNode",
			a.Settings.TagKey:    email,
			wire.ClusterOwnerTag: ownerMark(email),
		},
		DataSecurityMode:         compute.DataSecurityModeSingleUser,
		SingleUserName:           userName,
		AutoterminationMinutes:   a.Settings.Autotermination,
		ApplyPolicyDefaultValues: true,
		ForceSendFields:          []string{"NumWorkers"},
	}
	applyPolicySpec(&req, spec)
	return req
}

var errNoClusterID = errors.New("no cluster id in the answer")

// applyPolicySpec adapts the create request to what batch setup took from
// the policy (see deriveSpec in plan.go): a fixed autotermination, fixed
// spark_conf and custom_tags values, attributes left out because the policy
// forbids them or supplies its default. A spec without those fields (from
// an earlier worker) leaves the request as it was.
func applyPolicySpec(req *compute.CreateCluster, spec wire.ClusterSpec) {
	if spec.AutoterminationMinutes > 0 {
		req.AutoterminationMinutes = spec.AutoterminationMinutes
	}
	if spec.OmitAutotermination {
		req.AutoterminationMinutes = 0
	}
	if spec.SparkMaster != "" {
		req.SparkConf["spark.master"] = spec.SparkMaster
	}
	if spec.OmitSparkMaster {
		delete(req.SparkConf, "spark.master")
	}
	if spec.ResourceClass != "" {
		req.CustomTags["ResourceClass"] = spec.ResourceClass
	}
	if spec.OmitResourceClass {
		delete(req.CustomTags, "ResourceClass")
	}
}

// idempotencyToken derives the clusters/create idempotency_token (at most 64
// characters) from the participant's email.
func idempotencyToken(email string) string {
	sum := sha256.Sum256([]byte("cohort-cluster:" + strings.ToLower(email)))
	return "cohort-" + hex.EncodeToString(sum[:])[:40]
}

// createCluster POSTs clusters/create. Through Raw it sends the typed body
// (as the SDK marshals it, ForceSendFields included) plus idempotency_token,
// with the same headers the typed call sends; without Raw it uses the typed
// call.
func (a *Activities) createCluster(ctx context.Context, req compute.CreateCluster, token string) (string, error) {
	if a.Workspace.Raw == nil {
		w, err := a.Workspace.Clusters.Create(ctx, req)
		if err != nil {
			return "", err
		}
		if w.Response != nil && w.Response.ClusterId != "" {
			return w.Response.ClusterId, nil
		}
		return w.ClusterId, nil
	}
	body, err := createBody(req, token)
	if err != nil {
		return "", err
	}
	var resp compute.CreateClusterResponse
	if err := a.Workspace.Raw.Do(ctx, http.MethodPost, "/api/2.1/clusters/create", a.Workspace.rawHeaders(), map[string]any{}, body, &resp); err != nil {
		return "", err
	}
	return resp.ClusterId, nil
}

// createBody is the JSON object of req with idempotency_token added.
func createBody(req compute.CreateCluster, token string) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode create cluster request: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("encode create cluster request: %w", err)
	}
	if token != "" {
		t, _ := json.Marshal(token)
		m["idempotency_token"] = t
	}
	return m, nil
}

// resumeCluster returns the cluster of id (a previous attempt's heartbeat,
// or the one Cohort recorded), if it still exists and is still Cohort's
// cluster for the participant (ownCluster, as the recorded one): one
// clusters/get. Any error (gone, purged, refused)
// reads as nil, and the caller falls back to the tag lookup.
func (a *Activities) resumeCluster(ctx context.Context, email, id string) *compute.ClusterDetails {
	if id == "" {
		return nil
	}
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return nil
	}
	c, err := a.Workspace.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id})
	if err != nil || c == nil {
		return nil // fall back to the tag lookup
	}
	if ours, why := a.ownCluster(c.CustomTags, email, true); !ours {
		if l := logger(ctx); l != nil {
			l.Warn("cluster is not the participant's; not adopting it", "participant", email, "cluster_id", id, "why", why)
		}
		return nil
	}
	return c
}

// findCluster lists the clusters under the policy, in every state, and
// returns the oldest one that is Cohort's cluster for the participant (nil
// if none): the lookup of inputs without the batch's listing.
func (a *Activities) findCluster(ctx context.Context, email, policyID string) (*compute.ClusterDetails, error) {
	found, err := a.listTagged(ctx, wire.StepCreateCluster, email, &compute.ListClustersFilterBy{PolicyId: policyID},
		"list clusters under policy "+policyID)
	if err != nil {
		return nil, err
	}
	found = slices.DeleteFunc(found, func(c compute.ClusterDetails) bool {
		ours, _ := a.ownCluster(c.CustomTags, email, false)
		return !ours
	})
	return oldest(ctx, email, found), nil
}

// oldest returns the oldest of the participant's clusters (nil if none).
// Extra ones (duplicates from an earlier failure) are logged, not deleted.
func oldest(ctx context.Context, email string, found []compute.ClusterDetails) *compute.ClusterDetails {
	if len(found) == 0 {
		return nil
	}
	slices.SortFunc(found, func(x, y compute.ClusterDetails) int {
		return cmp.Or(cmp.Compare(x.StartTime, y.StartTime), cmp.Compare(x.ClusterId, y.ClusterId))
	})
	if len(found) > 1 {
		extra := make([]string, 0, len(found)-1)
		for _, c := range found[1:] {
			extra = append(extra, c.ClusterId)
		}
		if l := logger(ctx); l != nil {
			l.Warn("participant has several clusters of Cohort's; adopting the oldest, leaving the others",
				"participant", email, "cluster_id", found[0].ClusterId, "extra_cluster_ids", extra)
		}
	}
	return &found[0]
}

// listTagged pages through the clusters (filter narrows them; nil: every
// cluster, in every state) and returns those tagged with the participant's
// email, pacing each page at the clusters rate. what names the listing in
// errors.
func (a *Activities) listTagged(ctx context.Context, step, email string, filter *compute.ListClustersFilterBy, what string) ([]compute.ClusterDetails, error) {
	wrap := func(err error) error { return classify(step, fmt.Errorf("%s: %w", what, err)) }
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return nil, wrap(err)
	}
	it := a.Workspace.Clusters.List(ctx, compute.ListClustersRequest{FilterBy: filter, PageSize: clusterListPageSize})
	var found []compute.ClusterDetails
	for n := 1; it.HasNext(ctx); n++ {
		c, err := it.Next(ctx)
		if err != nil {
			return nil, wrap(err)
		}
		if strings.EqualFold(c.CustomTags[a.Settings.TagKey], email) {
			found = append(found, c)
		}
		if n%clusterListPageSize == 0 { // the next HasNext may fetch a page
			if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
				return nil, wrap(err)
			}
		}
	}
	return found, nil
}

// setClusterPermission PATCHes the participant's direct permission to
// CAN_RESTART. PATCH changes only the principals it names, so the admins'
// inherited CAN_MANAGE and every other entry stay as they are (a PUT would
// wipe them). The answer, or a read-back when the answer is empty, must show
// the participant's direct level as CAN_RESTART.
func (a *Activities) setClusterPermission(ctx context.Context, email, id string) error {
	what := fmt.Sprintf("set CAN_RESTART for %s on cluster %s", email, id)
	if err := a.Limits.Wait(ctx, ClassPermissionsWrite); err != nil {
		return classify(wire.StepSetPermission, fmt.Errorf("%s: %w", what, err))
	}
	perms, err := a.Workspace.Clusters.UpdatePermissions(ctx, compute.ClusterPermissionsRequest{
		ClusterId: id,
		AccessControlList: []compute.ClusterAccessControlRequest{{
			UserName:        email,
			PermissionLevel: compute.ClusterPermissionLevelCanRestart,
		}},
	})
	if err != nil {
		return classify(wire.StepSetPermission, fmt.Errorf("%s: %w", what, err))
	}
	levels := directLevels(perms, email)
	if len(levels) == 0 {
		if err := a.Limits.Wait(ctx, ClassPermissionsRead); err != nil {
			return classify(wire.StepSetPermission, fmt.Errorf("read permissions of cluster %s: %w", id, err))
		}
		perms, err = a.Workspace.Clusters.GetPermissions(ctx, compute.GetClusterPermissionsRequest{ClusterId: id})
		if err != nil {
			return classify(wire.StepSetPermission, fmt.Errorf("read permissions of cluster %s: %w", id, err))
		}
		levels = directLevels(perms, email)
	}
	if !slices.Equal(levels, []compute.ClusterPermissionLevel{compute.ClusterPermissionLevelCanRestart}) {
		return inconsistent(wire.StepSetPermission, wire.ErrClusterLaunchFailed, "%s: direct permissions read back as %v", what, levels)
	}
	return nil
}

// directLevels returns the user's direct (not inherited) permission levels.
func directLevels(p *compute.ClusterPermissions, user string) []compute.ClusterPermissionLevel {
	if p == nil {
		return nil
	}
	var out []compute.ClusterPermissionLevel
	for _, e := range p.AccessControlList {
		if !strings.EqualFold(e.UserName, user) {
			continue
		}
		for _, perm := range e.AllPermissions {
			if !perm.Inherited && !slices.Contains(out, perm.PermissionLevel) {
				out = append(out, perm.PermissionLevel)
			}
		}
	}
	return out
}

// stopCluster terminates the cluster (clusters/delete: the cluster and its
// id, permissions and tags are kept; permanent-delete is never used) and
// reads it back until it is TERMINATING or TERMINATED. From TERMINATING the
// only way is TERMINATED, which Databricks reaches on its own in 0.5-3 min
// (and a participant cannot start a cluster before that), so waiting for it
// would only add those minutes, their polls and heartbeats to every
// participant. Terminating a cluster that is already TERMINATING or
// TERMINATED is a no-op, so a repeat is safe; a cluster that still reads as
// running (the terminate not yet visible, or the participant started it) is
// terminated again after StopPollInterval.
func (a *Activities) stopCluster(ctx context.Context, id string, known compute.State) (compute.State, error) {
	if stopped(known) {
		return known, nil
	}
	interval := a.Settings.StopPollInterval
	if interval <= 0 {
		interval = DefaultStopPollInterval
	}
	state := known
	for first := true; ; first = false {
		if !first {
			if err := sleep(ctx, interval); err != nil {
				return state, classify(wire.StepStopCluster, fmt.Errorf("wait for cluster %s to terminate: %w", id, err))
			}
		}
		if err := a.terminate(ctx, id); err != nil {
			return state, err
		}
		if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
			return state, classify(wire.StepStopCluster, fmt.Errorf("get cluster %s: %w", id, err))
		}
		c, err := a.Workspace.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id})
		switch {
		case err != nil:
			cerr := classify(wire.StepStopCluster, fmt.Errorf("get cluster %s: %w", id, err))
			if t := errorType(cerr); t != wire.ErrUnavailable && t != wire.ErrThrottled {
				return state, cerr
			}
			// A transient failure while reading back: terminate (a no-op if
			// it took) and read again.
		default:
			state = c.State
			switch {
			case stopped(state):
				return state, nil
			case state == compute.StateError || state == compute.StateUnknown:
				return state, inconsistent(wire.StepStopCluster, wire.ErrClusterLaunchFailed, "stop cluster %s: cluster is in state %s: %s", id, state, c.StateMessage)
			}
		}
	}
}

// stopped reports whether a cluster is TERMINATED or on its way there.
func stopped(s compute.State) bool {
	return s == compute.StateTerminating || s == compute.StateTerminated
}

// terminate calls clusters/delete (terminate, not permanent delete).
func (a *Activities) terminate(ctx context.Context, id string) error {
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return classify(wire.StepStopCluster, fmt.Errorf("terminate cluster %s: %w", id, err))
	}
	if _, err := a.Workspace.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id}); err != nil {
		return classify(wire.StepStopCluster, fmt.Errorf("terminate cluster %s: %w", id, err))
	}
	return nil
}
