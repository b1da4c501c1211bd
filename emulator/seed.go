package emulator

import "time"

// Seed data of a plausible Azure workspace (snapshot where 16.x ML runtimes are not
// LTS yet, so SelectSparkVersion{ML, LongTermSupport, Latest} picks 15.4 LTS ML).

type sparkVersion struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

var sparkVersions = []sparkVersion{
	{"16.3.x-scala2.12", "16.3 (includes Apache Spark 3.5.2, Scala 2.12)"},
	{"16.3.x-scala2.13", "16.3 (includes Apache Spark 3.5.2, Scala 2.13)"},
	{"16.3.x-photon-scala2.12", "16.3 Photon (includes Apache Spark 3.5.2, Scala 2.12)"},
	{"16.3.x-cpu-ml-scala2.12", "16.3 ML (includes Apache Spark 3.5.2, Scala 2.12)"},
	{"16.3.x-gpu-ml-scala2.12", "16.3 ML (includes Apache Spark 3.5.2, GPU, Scala 2.12)"},
	{"16.2.x-scala2.12", "16.2 (includes Apache Spark 3.5.2, Scala 2.12)"},
	{"16.2.x-cpu-ml-scala2.12", "16.2 ML (includes Apache Spark 3.5.2, Scala 2.12)"},
	{"16.2.x-gpu-ml-scala2.12", "16.2 ML (includes Apache Spark 3.5.2, GPU, Scala 2.12)"},
	{"17.0.x-scala2.13", "17.0 Beta (includes Apache Spark 4.0.0, Scala 2.13)"},
	{"17.0.x-cpu-ml-scala2.13", "17.0 ML Beta (includes Apache Spark 4.0.0, Scala 2.13)"},
	{"15.4.x-scala2.12", "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"15.4.x-photon-scala2.12", "15.4 LTS Photon (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"15.4.x-cpu-ml-scala2.12", "15.4 LTS ML (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"15.4.x-gpu-ml-scala2.12", "15.4 LTS ML (includes Apache Spark 3.5.0, GPU, Scala 2.12)"},
	{"15.4.x-aarch64-scala2.12", "15.4 LTS aarch64 (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"14.3.x-scala2.12", "14.3 LTS (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"14.3.x-photon-scala2.12", "14.3 LTS Photon (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"14.3.x-cpu-ml-scala2.12", "14.3 LTS ML (includes Apache Spark 3.5.0, Scala 2.12)"},
	{"14.3.x-gpu-ml-scala2.12", "14.3 LTS ML (includes Apache Spark 3.5.0, GPU, Scala 2.12)"},
	{"13.3.x-scala2.12", "13.3 LTS (includes Apache Spark 3.4.1, Scala 2.12)"},
	{"13.3.x-cpu-ml-scala2.12", "13.3 LTS ML (includes Apache Spark 3.4.1, Scala 2.12)"},
	{"12.2.x-scala2.12", "12.2 LTS (includes Apache Spark 3.3.2, Scala 2.12)"},
	{"12.2.x-cpu-ml-scala2.12", "12.2 LTS ML (includes Apache Spark 3.3.2, Scala 2.12)"},
	{"apache-spark-3.5.x-scala2.12", "Light 3.5 (includes Apache Spark 3.5, Scala 2.12)"},
}

// latestMLVersion resolves the policy default "auto:latest-ml".
const latestMLVersion = "16.3.x-cpu-ml-scala2.12"

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

const personalComputeDefinition = `{
  "node_type_id": {"type": "allowlist", "values": ["Standard_DS3_v2", "Standard_DS4_v2", "Standard_DS5_v2", "Standard_D4ds_v5", "Standard_NC4as_T4_v3"], "defaultValue": "Standard_DS3_v2"},
  "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-ml"},
  "runtime_engine": {"type": "fixed", "value": "STANDARD", "hidden": true},
  "num_workers": {"type": "fixed", "value": 0, "hidden": true},
  "data_security_mode": {"type": "allowlist", "values": ["SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED", "LEGACY_SINGLE_USER", "LEGACY_SINGLE_USER_STANDARD"], "hidden": true},
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

func personalComputePolicy() map[string]any {
	return map[string]any{
		"policy_id":            personalComputePolicyID,
		"name":                 personalComputeName,
		"policy_family_id":     personalComputeFamilyID,
		"definition":           personalComputeDefinition,
		"description":          personalComputeDescription,
		"is_default":           true,
		"creator_user_name":    "",
		"created_at_timestamp": time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli(),
	}
}

func personalComputeFamily() map[string]any {
	return map[string]any{
		"policy_family_id": personalComputeFamilyID,
		"name":             personalComputeName,
		"description":      personalComputeDescription,
		"definition":       personalComputeDefinition,
	}
}

// seed installs the objects every workspace has. Loaded state is applied on top.
func (s *Server) seed() {
	s.st.Catalogs["main"] = &ucCatalog{
		Name: "main", Owner: AdminUserName, Comment: "Main catalog (auto-created)",
		CreatedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), CreatedBy: AdminUserName, Seq: s.st.nextSeq(),
	}
}
