package drift

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

// userAttributes are the SCIM attributes the checks read.
const userAttributes = "id,userName,active"

// findUser returns the account user whose userName is email (nil if none).
func (e *Env) findUser(ctx context.Context, email string) (*iam.User, error) {
	users, err := e.Account.Users.ListAll(ctx, iam.ListAccountUsersRequest{
		Filter: fmt.Sprintf("userName eq %q", strings.ToLower(email)), Attributes: userAttributes})
	if err != nil {
		return nil, fmt.Errorf("look up account user %s: %w", email, err)
	}
	for i := range users {
		if strings.EqualFold(users[i].UserName, email) {
			return &users[i], nil
		}
	}
	return nil, nil
}

// principalID is a SCIM user id as the workspace assignment's principal id.
func principalID(u *iam.User) (int64, error) {
	var id int64
	if _, err := fmt.Sscan(u.Id, &id); err != nil {
		return 0, fmt.Errorf("user %s: id %q is not an int64: %w", u.UserName, u.Id, err)
	}
	return id, nil
}

// PolicyID is the id of the policy named Expect.PolicyName, looked up once.
func (e *Env) PolicyID(ctx context.Context) (string, error) {
	e.policyOnce.Do(func() {
		policies, err := e.Workspace.ClusterPolicies.ListAll(ctx, compute.ListClusterPoliciesRequest{})
		if err != nil {
			e.policyErr = fmt.Errorf("list cluster policies: %w", err)
			return
		}
		for _, p := range policies {
			if p.Name == e.Expect.PolicyName {
				e.policyID = p.PolicyId
				return
			}
		}
		e.policyErr = fmt.Errorf("no cluster policy named %q (of %d)", e.Expect.PolicyName, len(policies))
	})
	return e.policyID, e.policyErr
}

// policyClusters lists every cluster under the participants' policy, by
// the email in their tag (lower-cased), each list oldest first.
func (e *Env) policyClusters(ctx context.Context) (map[string][]compute.ClusterDetails, error) {
	if e.Expect.TagKey == "" {
		return nil, fmt.Errorf("no cluster tag key in Expect (cluster.tag_key)")
	}
	policy, err := e.PolicyID(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := e.Workspace.Clusters.ListAll(ctx, compute.ListClustersRequest{FilterBy: &compute.ListClustersFilterBy{PolicyId: policy}})
	if err != nil {
		return nil, fmt.Errorf("list clusters under policy %s: %w", policy, err)
	}
	out := map[string][]compute.ClusterDetails{}
	for _, c := range cs {
		if tag := c.CustomTags[e.Expect.TagKey]; tag != "" && c.PolicyId == policy {
			k := strings.ToLower(tag)
			out[k] = append(out[k], c)
		}
	}
	for _, l := range out {
		sortOldestFirst(l)
	}
	return out, nil
}

// sortOldestFirst orders clusters by creation (start_time), then id: the
// first is the one Cohort adopts and keeps.
func sortOldestFirst(cs []compute.ClusterDetails) {
	slices.SortStableFunc(cs, func(a, b compute.ClusterDetails) int {
		return cmp.Or(cmp.Compare(a.StartTime, b.StartTime), cmp.Compare(a.ClusterId, b.ClusterId))
	})
}

// taggedClusters lists the participant's clusters (tagged with their email,
// under the policy), oldest first.
func (e *Env) taggedClusters(ctx context.Context, email string) ([]compute.ClusterDetails, error) {
	all, err := e.policyClusters(ctx)
	if err != nil {
		return nil, err
	}
	return all[strings.ToLower(email)], nil
}

// primaryCluster is the participant's cluster: the oldest tagged one.
func (e *Env) primaryCluster(ctx context.Context, email string) (*compute.ClusterDetails, error) {
	cs, err := e.taggedClusters(ctx, email)
	if err != nil {
		return nil, err
	}
	return e.primaryOf(ctx, email, map[string][]compute.ClusterDetails{strings.ToLower(email): cs})
}

// hasDirect reports whether the user holds level directly (not inherited).
func hasDirect(p *compute.ClusterPermissions, user string, level compute.ClusterPermissionLevel) bool {
	if p == nil {
		return false
	}
	for _, acl := range p.AccessControlList {
		if !strings.EqualFold(acl.UserName, user) {
			continue
		}
		for _, perm := range acl.AllPermissions {
			if perm.PermissionLevel == level && !perm.Inherited {
				return true
			}
		}
	}
	return false
}
