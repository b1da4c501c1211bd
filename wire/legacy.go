package wire

import "github.com/cohort-dev/cohort/roster"

// The earlier participant shape, which ran the seven steps as two
// activities: ProvisionAccess (steps 1-4) and ProvisionCluster (steps 5-7).
// A participant workflow started by a worker of that shape (no
// "seven-activities" version marker in its history) still schedules them
// after an upgrade. Everything of that shape in this package is in this
// file; workflows/participant_legacy.go says when it can all be deleted
// (no open participant run started before the marker) and how to check.

// Activity names of the earlier shape.
const (
	ProvisionAccessName  = "ProvisionAccess"
	ProvisionClusterName = "ProvisionCluster"
)

// ProvisionAccessInput is the earlier shape's steps 1-4 (see
// ProvisionAccessName).
type ProvisionAccessInput struct {
	Participant roster.Participant `json:"participant"`
	Catalog     string             `json:"catalog"`
}

// ProvisionAccessResult is the earlier shape's result of steps 1-4.
type ProvisionAccessResult struct {
	UserID      string `json:"user_id"`
	UserCreated bool   `json:"user_created"`
	Schema      string `json:"schema"`
}

// ProvisionClusterInput is the earlier shape's steps 5-7 (see
// ProvisionClusterName).
type ProvisionClusterInput struct {
	Participant roster.Participant `json:"participant"`
	Spec        ClusterSpec        `json:"spec"`
	BatchID     string             `json:"batch_id"`
	Lookup      bool               `json:"lookup,omitempty"`
}

// ProvisionClusterResult is the earlier shape's result of steps 5-7.
type ProvisionClusterResult struct {
	ClusterID string `json:"cluster_id"`
	URL       string `json:"url"`
	State     string `json:"state"`
	Created   bool   `json:"created"`
}
