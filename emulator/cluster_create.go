// Cluster create and edit: the request shape, validation and the policy applied to it.

package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// createClusterReq type-checks the fields the emulator interprets.
type createClusterReq struct {
	ClusterName            string            `json:"cluster_name"`
	SparkVersion           string            `json:"spark_version"`
	NodeTypeID             string            `json:"node_type_id"`
	DriverNodeTypeID       string            `json:"driver_node_type_id"`
	NumWorkers             *int              `json:"num_workers"`
	Autoscale              *autoscale        `json:"autoscale"`
	AutoterminationMinutes *int              `json:"autotermination_minutes"`
	DataSecurityMode       string            `json:"data_security_mode"`
	SingleUserName         string            `json:"single_user_name"`
	PolicyID               string            `json:"policy_id"`
	ApplyPolicyDefaults    bool              `json:"apply_policy_default_values"`
	SparkConf              map[string]string `json:"spark_conf"`
	CustomTags             map[string]string `json:"custom_tags"`
	SparkEnvVars           map[string]string `json:"spark_env_vars"`
	IdempotencyToken       string            `json:"idempotency_token"`
	InstancePoolID         string            `json:"instance_pool_id"`
}

type autoscale struct {
	MinWorkers int `json:"min_workers"`
	MaxWorkers int `json:"max_workers"`
}

var dataSecurityModes = map[string]bool{
	"NONE": true, "SINGLE_USER": true, "USER_ISOLATION": true, "LEGACY_TABLE_ACL": true, "LEGACY_PASSTHROUGH": true,
	"LEGACY_SINGLE_USER": true, "LEGACY_SINGLE_USER_STANDARD": true, "DATA_SECURITY_MODE_AUTO": true,
	"DATA_SECURITY_MODE_STANDARD": true, "DATA_SECURITY_MODE_DEDICATED": true,
}

// clusterSpec validates a create or edit body and returns the spec to store
// (policy applied) and the request as sent. It answers errors itself.
// Callers hold s.mu.
func (s *Server) clusterSpec(c *call, req map[string]any) (spec, original map[string]any, typed createClusterReq, ok bool) {
	if req == nil {
		c.fail(http.StatusBadRequest, "MALFORMED_REQUEST", "Could not parse request object: expected a JSON object")
		return nil, nil, typed, false
	}
	original = map[string]any{}
	for k, v := range req {
		if k != "idempotency_token" && k != "cluster_id" {
			original[k] = v
		}
	}
	if err := remarshal(req, &typed); err != nil {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid cluster spec: "+err.Error())
		return nil, nil, typed, false
	}
	if len(typed.IdempotencyToken) > 64 {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("idempotency_token must be at most 64 characters (is %d).", len(typed.IdempotencyToken)))
		return nil, nil, typed, false
	}
	delete(req, "idempotency_token")
	delete(req, "apply_policy_default_values")
	delete(req, "cluster_id")
	if typed.PolicyID != "" {
		if typed.PolicyID != personalComputePolicyID {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Cluster policy %s does not exist.", typed.PolicyID))
			return nil, nil, typed, false
		}
		if err := applyPolicy(req, s.policyDef, typed.ApplyPolicyDefaults); err != nil {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", err.Error())
			return nil, nil, typed, false
		}
		if err := remarshal(req, &typed); err != nil {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid cluster spec: "+err.Error())
			return nil, nil, typed, false
		}
	}
	if typed.SparkVersion == "auto:latest-ml" {
		typed.SparkVersion = latestMLVersion
		req["spark_version"] = latestMLVersion
	}
	if msg := validateClusterSpec(&typed); msg != "" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", msg)
		return nil, nil, typed, false
	}
	if typed.DriverNodeTypeID == "" && typed.NodeTypeID != "" {
		req["driver_node_type_id"] = typed.NodeTypeID
	}
	if typed.NumWorkers == nil && typed.Autoscale == nil {
		req["num_workers"] = 0
	}
	if typed.NumWorkers != nil && *typed.NumWorkers == 0 && typed.SparkConf["spark.databricks.cluster.profile"] == "singleNode" {
		req["is_single_node"] = true
	}
	dsm := typed.DataSecurityMode
	if dsm == "SINGLE_USER" || dsm == "DATA_SECURITY_MODE_DEDICATED" || dsm == "LEGACY_SINGLE_USER" || dsm == "LEGACY_SINGLE_USER_STANDARD" {
		if typed.SingleUserName == "" {
			req["single_user_name"] = c.caller.name
		}
	}
	if typed.SingleUserName != "" {
		name := typed.SingleUserName
		if strings.EqualFold(name, AdminUserName) {
			req["single_user_name"] = AdminUserName
		} else if u, ok := s.workspaceUser(name); ok && u.Active {
			req["single_user_name"] = u.UserName
		} else {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid single_user_name %s: Principal: UserName(%s) does not exist in the workspace.", name, name))
			return nil, nil, typed, false
		}
	}
	return req, original, typed, true
}

func (s *Server) createCluster(c *call) {
	var req map[string]any
	if !c.decode(&req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	spec, original, typed, ok := s.clusterSpec(c, req)
	if !ok {
		return
	}
	s.purgeClusters(now)
	if typed.IdempotencyToken != "" {
		for _, cl := range s.st.Clusters {
			if cl.IdempotencyToken == typed.IdempotencyToken && cl.State != stateTerminated && cl.State != stateTerminating {
				c.ok(map[string]any{"cluster_id": cl.ID})
				return
			}
		}
	}
	if max := s.opts.MaxClustersPerUser; on(max) && typed.PolicyID != "" {
		n := 0
		for _, cl := range s.st.Clusters {
			if cl.Creator == c.caller.name && fmt.Sprint(cl.Spec["policy_id"]) == typed.PolicyID {
				n++
			}
		}
		if n >= max {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Cannot create cluster: policy %s (%s) allows at most %d clusters per user (max_clusters_per_user) and %s already has %d.", personalComputeName, typed.PolicyID, max, c.caller.name, n))
			return
		}
	}
	cl := &cluster{
		ID:               s.newClusterID(now),
		Spec:             spec,
		Request:          original,
		State:            statePending,
		StateMessage:     "Finding instances for new nodes, acquiring more instances if necessary",
		StartTime:        now.UnixMilli(),
		StartDelayMs:     s.startDelay().Milliseconds(),
		StopDelayMs:      s.stopDelay().Milliseconds(),
		IdempotencyToken: typed.IdempotencyToken,
		Creator:          c.caller.name,
		ACL:              map[string]string{aclKey("user_name", c.caller.name): levelManage},
		Seq:              s.st.nextSeq(),
	}
	cl.NextState, cl.NextAt = stateRunning, cl.StartTime+cl.StartDelayMs
	s.recordEvent(cl, cl.StartTime, eventCreating, map[string]any{"user": c.caller.name, "attributes": original, "cluster_size": clusterSize(spec)})
	s.st.Clusters[cl.ID] = cl
	s.put(kindCluster, cl.ID, cl)
	c.ok(map[string]any{"cluster_id": cl.ID})
}

// editCluster replaces a cluster's spec (the policy enforced as on create). A
// RUNNING cluster restarts with it; a TERMINATED one keeps it for its next
// start; other states are refused as Databricks does.
func (s *Server) editCluster(c *call) {
	var req map[string]any
	if !c.decode(&req) {
		return
	}
	id, _ := req["cluster_id"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.lookupCluster(c, id)
	if !ok {
		return
	}
	if cl.level(c.caller) != levelManage {
		c.fail(http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("User %s does not have Manage permission on cluster %s.", c.caller.name, id))
		return
	}
	if cl.State != stateRunning && cl.State != stateTerminated {
		c.fail(http.StatusBadRequest, "INVALID_STATE", fmt.Sprintf("Cluster %s is in unexpected state %s.", id, titleCase(cl.State)))
		return
	}
	spec, original, _, ok := s.clusterSpec(c, req)
	if !ok {
		return
	}
	now := s.now().UnixMilli()
	s.recordEvent(cl, now, eventEdited, map[string]any{"user": c.caller.name, "attributes": original, "previous_attributes": cl.Request,
		"cluster_size": clusterSize(spec), "previous_cluster_size": clusterSize(cl.Spec)})
	cl.Spec, cl.Request = spec, original
	if cl.State == stateRunning {
		cl.runEnded(now)
		cl.State, cl.StateMessage = statePending, "Restarting the cluster with the new configuration"
		cl.StartDelayMs = s.startDelay().Milliseconds()
		cl.NextState, cl.NextAt = stateRunning, now+cl.StartDelayMs
		s.recordEvent(cl, now, eventRestarting, map[string]any{"user": c.caller.name})
	}
	s.put(kindCluster, cl.ID, cl)
	c.ok(map[string]any{})
}

func remarshal(in map[string]any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	return dec.Decode(out)
}

func validateClusterSpec(r *createClusterReq) string {
	if r.SparkVersion == "" {
		return "Missing required field: spark_version"
	}
	found := false
	for _, v := range sparkVersions {
		if v.Key == r.SparkVersion {
			found = true
		}
	}
	if !found {
		return fmt.Sprintf("Invalid spark version %s.", r.SparkVersion)
	}
	if r.InstancePoolID == "" {
		if r.NodeTypeID == "" {
			return "Missing required field: node_type_id"
		}
		for _, id := range []string{r.NodeTypeID, r.DriverNodeTypeID} {
			if id == "" {
				continue
			}
			if _, ok := findNodeType(id); !ok {
				var ids []string
				for _, n := range nodeTypes {
					ids = append(ids, n.ID)
				}
				return fmt.Sprintf("Node type %s is not supported. Supported node types: %s", id, strings.Join(ids, ", "))
			}
		}
	}
	if r.NumWorkers != nil && *r.NumWorkers < 0 {
		return fmt.Sprintf("num_workers must be non-negative (is %d).", *r.NumWorkers)
	}
	if r.Autoscale != nil && (r.Autoscale.MinWorkers < 0 || r.Autoscale.MaxWorkers < r.Autoscale.MinWorkers) {
		return "Invalid autoscale: min_workers must be non-negative and not exceed max_workers."
	}
	if m := r.AutoterminationMinutes; m != nil && *m != 0 && (*m < 10 || *m > 10000) {
		return fmt.Sprintf("Invalid autotermination_minutes %d: must be 0 (disabled) or between 10 and 10000.", *m)
	}
	if r.DataSecurityMode != "" && !dataSecurityModes[r.DataSecurityMode] {
		return fmt.Sprintf("Invalid data_security_mode %s.", r.DataSecurityMode)
	}
	return ""
}
