package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Seed data of a plausible Azure workspace. The runtime list is Databricks'
// today: the newest keys carry no minor version (18.x-...), and the newest ML
// LTS is 18.x-cpu-ml-scala2.13, which SelectSparkVersion{ML, LongTermSupport,
// Latest} picks from SDK v0.173 on (v0.130 sorted such keys last and picked
// 17.3).

type sparkVersion struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

var sparkVersions = []sparkVersion{
	{"18.x-scala2.13", "18 LTS (includes Apache Spark 4.1.0, Scala 2.13)"},
	{"18.x-photon-scala2.13", "18 LTS Photon (includes Apache Spark 4.1.0, Scala 2.13)"},
	{"18.x-cpu-ml-scala2.13", "18 LTS ML (includes Apache Spark 4.1.0, Scala 2.13)"},
	{"18.x-gpu-ml-scala2.13", "18 LTS ML (includes Apache Spark 4.1.0, GPU, Scala 2.13)"},
	{"18.x-aarch64-scala2.13", "18 LTS aarch64 (includes Apache Spark 4.1.0, Scala 2.13)"},
	{"17.3.x-scala2.13", "17.3 LTS (includes Apache Spark 4.0.0, Scala 2.13)"},
	{"17.3.x-photon-scala2.13", "17.3 LTS Photon (includes Apache Spark 4.0.0, Scala 2.13)"},
	{"17.3.x-cpu-ml-scala2.13", "17.3 LTS ML (includes Apache Spark 4.0.0, Scala 2.13)"},
	{"17.3.x-gpu-ml-scala2.13", "17.3 LTS ML (includes Apache Spark 4.0.0, GPU, Scala 2.13)"},
	{"17.2.x-scala2.13", "17.2 (includes Apache Spark 4.0.0, Scala 2.13)"},
	{"17.2.x-cpu-ml-scala2.13", "17.2 ML (includes Apache Spark 4.0.0, Scala 2.13)"},
	{"16.4.x-scala2.12", "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.12)"},
	{"16.4.x-scala2.13", "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.13)"},
	{"16.4.x-photon-scala2.12", "16.4 LTS Photon (includes Apache Spark 3.5.2, Scala 2.12)"},
	{"16.4.x-cpu-ml-scala2.12", "16.4 LTS ML (includes Apache Spark 3.5.2, Scala 2.12)"},
	{"16.4.x-cpu-ml-scala2.13", "16.4 LTS ML (includes Apache Spark 3.5.2, Scala 2.13)"},
	{"16.4.x-gpu-ml-scala2.12", "16.4 LTS ML (includes Apache Spark 3.5.2, GPU, Scala 2.12)"},
	{"15.4.x-scala2.12", "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"15.4.x-photon-scala2.12", "15.4 LTS Photon (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"15.4.x-cpu-ml-scala2.12", "15.4 LTS ML (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"15.4.x-gpu-ml-scala2.12", "15.4 LTS ML (includes Apache Spark 3.5.0, GPU, Scala 2.12)"},
	{"14.3.x-scala2.12", "14.3 LTS (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"14.3.x-cpu-ml-scala2.12", "14.3 LTS ML (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"13.3.x-scala2.12", "13.3 LTS (includes Apache Spark 3.4.1, Scala 2.12)"},
	{"13.3.x-cpu-ml-scala2.12", "13.3 LTS ML (includes Apache Spark 3.4.1, Scala 2.12)"},
	{"19.x-scala2.13", "19 Beta (includes Apache Spark 4.1.0, Scala 2.13)"},
	{"19.x-cpu-ml-scala2.13", "19 ML Beta (includes Apache Spark 4.1.0, Scala 2.13)"},
	{"apache-spark-4.0.x-scala2.13", "Light 4.0 (includes Apache Spark 4.0, Scala 2.13)"},
}

// latestMLVersion resolves the policy default "auto:latest-ml".
const latestMLVersion = "18.x-cpu-ml-scala2.13"

type nodeType struct {
	ID          string
	Category    string
	Cores       float64
	MemoryMB    int
	GPUs        int
	LocalDisks  int
	LocalDiskGB int
	Deprecated  bool
	Status      []string
	Photon      bool
}

var nodeTypes = []nodeType{
	{ID: "Standard_DS3_v2", Category: "General Purpose", Cores: 4, MemoryMB: 14336, LocalDisks: 1, LocalDiskGB: 28, Photon: true},
	{ID: "Standard_DS4_v2", Category: "General Purpose", Cores: 8, MemoryMB: 28672, LocalDisks: 1, LocalDiskGB: 56, Photon: true},
	{ID: "Standard_DS5_v2", Category: "General Purpose", Cores: 16, MemoryMB: 57344, LocalDisks: 1, LocalDiskGB: 112, Photon: true},
	{ID: "Standard_D4ds_v5", Category: "General Purpose", Cores: 4, MemoryMB: 16384, LocalDisks: 1, LocalDiskGB: 150, Photon: true},
	{ID: "Standard_D4as_v5", Category: "General Purpose", Cores: 4, MemoryMB: 16384, LocalDisks: 0, Photon: true},
	{ID: "Standard_F4s", Category: "Compute Optimized", Cores: 4, MemoryMB: 8192, LocalDisks: 1, LocalDiskGB: 16},
	{ID: "Standard_E8ds_v4", Category: "Memory Optimized", Cores: 8, MemoryMB: 65536, LocalDisks: 1, LocalDiskGB: 300, Photon: true},
	{ID: "Standard_L8s_v2", Category: "Storage Optimized", Cores: 8, MemoryMB: 65536, LocalDisks: 1, LocalDiskGB: 80, Status: []string{"NotAvailableInRegion"}},
	{ID: "Standard_NC4as_T4_v3", Category: "GPU Accelerated", Cores: 4, MemoryMB: 28672, GPUs: 1, LocalDisks: 1, LocalDiskGB: 176},
	{ID: "Standard_NC6s_v3", Category: "GPU Accelerated", Cores: 6, MemoryMB: 114688, GPUs: 1, LocalDisks: 1, LocalDiskGB: 736},
	{ID: "Standard_D3_v2", Category: "General Purpose", Cores: 4, MemoryMB: 14336, LocalDisks: 1, LocalDiskGB: 200, Deprecated: true},
}

func findNodeType(id string) (nodeType, bool) {
	for _, n := range nodeTypes {
		if n.ID == id {
			return n, true
		}
	}
	return nodeType{}, false
}

func (n nodeType) render() map[string]any {
	m := map[string]any{
		"node_type_id":     n.ID,
		"instance_type_id": n.ID,
		"category":         n.Category,
		"description":      n.ID,
		"memory_mb":        n.MemoryMB,
		"num_cores":        n.Cores,
		"num_gpus":         n.GPUs,
		"node_instance_type": map[string]any{
			"instance_type_id":   n.ID,
			"local_disks":        n.LocalDisks,
			"local_disk_size_gb": n.LocalDiskGB,
		},
		"is_deprecated":           n.Deprecated,
		"is_hidden":               false,
		"support_port_forwarding": true,
		"support_cluster_tags":    true,
		"is_io_cache_enabled":     n.LocalDisks > 0,
		"photon_driver_capable":   n.Photon,
		"photon_worker_capable":   n.Photon,
		"is_graviton":             false,
	}
	if len(n.Status) > 0 {
		m["node_info"] = map[string]any{"status": n.Status}
	}
	return m
}

// Personal Compute policy. The definition is what create enforces.
const (
	personalComputePolicyID = "E0631F5C0D0004B4"
	personalComputeFamilyID = "personal-vm"
	personalComputeName     = "Personal Compute"
)

// personalComputeDefinition is Azure's personal-vm family as shipped
// (docs/real-workspace.md §3): single node, dedicated (single user) access,
// all-purpose, no pools, a node type allowlist, autotermination unlimited
// with a 72 h default.
const personalComputeDefinition = `{
  "node_type_id": {"type": "allowlist", "values": ["Standard_DS3_v2", "Standard_DS4_v2", "Standard_DS5_v2", "Standard_D4ds_v5", "Standard_NC4as_T4_v3"], "defaultValue": "Standard_DS3_v2"},
  "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-ml"},
  "runtime_engine": {"type": "fixed", "value": "STANDARD", "hidden": true},
  "num_workers": {"type": "fixed", "value": 0, "hidden": true},
  "data_security_mode": {"type": "allowlist", "values": ["SINGLE_USER", "LEGACY_SINGLE_USER", "LEGACY_SINGLE_USER_STANDARD"], "defaultValue": "SINGLE_USER", "hidden": true},
  "driver_instance_pool_id": {"type": "forbidden", "hidden": true},
  "cluster_type": {"type": "fixed", "value": "all-purpose"},
  "instance_pool_id": {"type": "forbidden", "hidden": true},
  "azure_attributes.availability": {"type": "fixed", "value": "ON_DEMAND_AZURE", "hidden": true},
  "spark_conf.spark.databricks.cluster.profile": {"type": "fixed", "value": "singleNode", "hidden": true},
  "spark_conf.spark.master": {"type": "regex", "pattern": "local\\[.*\\]", "defaultValue": "local[*, 4]", "hidden": true},
  "custom_tags.ResourceClass": {"type": "fixed", "value": "SingleNode", "hidden": true},
  "autotermination_minutes": {"type": "unlimited", "defaultValue": 4320, "isOptional": true}
}`

const personalComputeDescription = "Use with small-to-medium data or libraries like pandas and scikit-learn. Spark runs in local mode."

// personalComputePolicy is the policy as the policies API answers it: the
// family's definition with the overrides merged in, as a JSON string.
func (s *Server) personalComputePolicy() map[string]any {
	p := map[string]any{
		"policy_id":            personalComputePolicyID,
		"name":                 personalComputeName,
		"policy_family_id":     personalComputeFamilyID,
		"definition":           s.policyDef,
		"description":          personalComputeDescription,
		"is_default":           true,
		"created_at_timestamp": time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli(),
	}
	if o := strings.TrimSpace(s.opts.PolicyOverrides); o != "" {
		p["policy_family_definition_overrides"] = o
	}
	if on(s.opts.MaxClustersPerUser) {
		p["max_clusters_per_user"] = s.opts.MaxClustersPerUser
	}
	return p
}

func personalComputeFamily() map[string]any {
	return map[string]any{
		"policy_family_id": personalComputeFamilyID,
		"name":             personalComputeName,
		"description":      personalComputeDescription,
		"definition":       personalComputeDefinition,
	}
}

// seed installs the objects every workspace has: the workspace catalog (its
// default schema open to all workspace users), the catalogs an admin made
// beforehand and the account users that already exist. Loaded state is
// applied on top. Nothing is journalled here (the journal is not open yet);
// compaction writes the seed with the rest.
func (s *Server) seed() error {
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ws := workspaceCatalogName(s.opts.WorkspaceName)
	if !validUCName(ws) {
		return fmt.Errorf("emulator: workspace name %q does not make a valid catalog name", s.opts.WorkspaceName)
	}
	s.newCatalog(ws, AdminUserName, "Workspace catalog (created with the workspace)", s.opts.MetastoreRoot, at)
	s.st.Grants["catalog:"+ws] = map[string][]string{"users": {"USE_CATALOG"}}
	s.st.Grants["schema:"+ws+".default"] = map[string][]string{"users": {"CREATE_FUNCTION", "CREATE_MATERIALIZED_VIEW", "CREATE_MODEL", "CREATE_TABLE", "CREATE_VOLUME", "USE_SCHEMA"}}
	for _, name := range s.opts.Catalogs {
		name = strings.ToLower(strings.TrimSpace(name))
		if !validUCName(name) {
			return fmt.Errorf("emulator: catalog %q is not a valid catalog name", name)
		}
		if _, ok := s.st.Catalogs[name]; ok {
			continue
		}
		s.newCatalog(name, AdminUserName, "Created by an admin before the event", "abfss://catalogs@emulatorstorage.dfs.core.windows.net/"+name, at)
	}
	for _, su := range s.opts.Users {
		if _, err := s.seedUser(su); err != nil {
			return fmt.Errorf("emulator: seed user %q: %w", su.UserName, err)
		}
	}
	return nil
}

// workspaceCatalogName is the catalog Azure creates with a workspace: its
// name, lower-cased, '-' as '_'.
func workspaceCatalogName(workspace string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(workspace)), "-", "_")
}

// seedUser adds a pre-existing account user (and its assignment). Callers hold
// s.mu or run before serving.
func (s *Server) seedUser(su SeedUser) (*user, error) {
	name := strings.ToLower(strings.TrimSpace(su.UserName))
	if name == "" {
		return nil, fmt.Errorf("user_name is required")
	}
	email := strings.ToLower(strings.TrimSpace(su.Email))
	if email == "" {
		email = name
	}
	if other := s.st.userByNameOrEmail(name, []string{email}); other != nil {
		return nil, fmt.Errorf("user with email or userName %s already exists (id %s)", email, other.ID)
	}
	u := &user{ID: s.newNumericID(), UserName: name, DisplayName: su.DisplayName, Active: !su.Inactive,
		Emails: []scimValue{{Value: email, Type: "work", Primary: true}}, CreatedAt: 0, Seq: s.st.nextSeq()}
	if u.DisplayName == "" {
		u.DisplayName = name
	}
	s.st.Users[u.ID] = u
	s.st.byName[name] = u.ID
	s.put(kindUser, u.ID, u)
	if su.Assigned {
		pid, _ := strconv.ParseInt(u.ID, 10, 64)
		a := &assignment{PrincipalID: pid, Permissions: []string{"USER"}, Seq: s.st.nextSeq()}
		s.st.Assign[pid] = a
		s.put(kindAssign, u.ID, a)
	}
	return u, nil
}
