package activities

import (
	"context"
	"strings"

	"github.com/cohort-dev/cohort/wire"
)

// The activities of the earlier participant shape, which ran the seven steps
// as two activities. A participant workflow started by a worker of that
// shape replays its recorded history on an upgraded worker and goes on
// scheduling them, so they stay registered (the wiring table's rows in
// workflows/participant_legacy.go), composed of the same steps, until no
// such run is open: participant_legacy.go says how to check, and what goes
// with this file.

// ProvisionAccess is steps create_user, assign_workspace, create_schema and
// grant, in that order, as the earlier shape ran them. Its heartbeat names
// the user once created, so a retried attempt skips the SCIM create.
func (a *Activities) ProvisionAccess(ctx context.Context, in wire.ProvisionAccessInput) (wire.ProvisionAccessResult, error) {
	var res wire.ProvisionAccessResult
	ctx, done, stop := withPulse(ctx)
	defer stop()
	if done.UserID != "" {
		res.UserID, res.UserCreated = done.UserID, done.UserCreated
	} else {
		u, err := a.ensureUser(ctx, in.Participant.Email, in.Participant.DisplayName)
		if err != nil {
			return res, err
		}
		res.UserID, res.UserCreated = u.id, u.created
		heartbeat(ctx, progress{UserID: u.id, UserCreated: u.created})
	}
	if err := a.assignWorkspace(ctx, in.Participant.Email, res.UserID); err != nil {
		return res, err
	}
	sc, err := a.ensureSchema(ctx, in.Catalog, in.Participant.Schema, in.Participant.Email, "")
	if err != nil {
		return res, err
	}
	res.Schema = sc.full
	_, err = a.grant(ctx, in.Participant.Email, in.Catalog, sc.full, res.UserCreated, nil)
	return res, err
}

// ProvisionCluster is steps create_cluster, set_permission and stop_cluster,
// as the earlier shape ran them. Its heartbeat names the cluster once
// created, so a retried attempt resumes with it.
func (a *Activities) ProvisionCluster(ctx context.Context, in wire.ProvisionClusterInput) (wire.ProvisionClusterResult, error) {
	email := strings.ToLower(strings.TrimSpace(in.Participant.Email))
	lookup := in.Lookup || attempt(ctx) > 1
	ctx, earlier, stop := withPulse(ctx)
	defer stop()
	c, created, err := a.ensureCluster(ctx, email, email, in.Participant.ClusterName, in.Spec, lookup, earlier.ClusterID, wire.CreateClusterInput{})
	if err != nil {
		return wire.ProvisionClusterResult{}, err
	}
	res := wire.ProvisionClusterResult{ClusterID: c.ClusterId, URL: a.clusterURL(c.ClusterId), State: string(c.State), Created: created}
	heartbeat(ctx, progress{ClusterID: c.ClusterId})
	if err := a.setClusterPermission(ctx, email, c.ClusterId); err != nil {
		return res, err
	}
	state, err := a.stopCluster(ctx, c.ClusterId, c.State)
	if state != "" {
		res.State = string(state)
	}
	return res, err
}
