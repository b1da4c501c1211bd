package activities

import "testing"

// TestClassOf pins the class of every request path the activities make, as
// the SDK spells it, to the class the activity waits on for that call.
func TestClassOf(t *testing.T) {
	const acc = "/api/2.0/accounts/e2e00000-0000-4000-8000-00000000c0de"
	tests := []struct {
		method, path string
		want         Class
	}{
		{"POST", acc + "/scim/v2/Users", ClassSCIMWrite},
		{"DELETE", acc + "/scim/v2/Users/123", ClassSCIMWrite},
		{"GET", acc + "/scim/v2/Users", ClassSCIMList},
		{"GET", acc + "/scim/v2/Users/123", ClassSCIMGet},
		{"PUT", acc + "/workspaces/7001/permissionassignments/principals/123", ClassAssignments},
		{"GET", acc + "/workspaces/7001/permissionassignments", ClassAssignments},
		{"PATCH", "/api/2.0/permissions/clusters/0101-abc", ClassPermissionsWrite},
		{"PUT", "/api/2.0/permissions/clusters/0101-abc", ClassPermissionsWrite},
		{"GET", "/api/2.0/permissions/clusters/0101-abc", ClassPermissionsRead},
		{"GET", "/api/2.0/permissions/clusters/0101-abc/permissionLevels", ClassPermissionsRead},
		{"POST", "/api/2.1/unity-catalog/schemas", ClassUnityCatalog},
		{"PATCH", "/api/2.1/unity-catalog/permissions/schema/main.p42", ClassUnityCatalog},
		{"GET", "/api/2.1/unity-catalog/catalogs/main", ClassUnityCatalog},
		{"POST", "/api/2.1/clusters/create", ClassClusters},
		{"GET", "/api/2.1/clusters/list", ClassClusters},
		{"GET", "/api/2.0/clusters/spark-versions", ClassClusters},
		{"GET", "/api/2.0/policies/clusters/list", ClassClusters},
		{"GET", "/api/2.0/policy-families/personal-vm", ClassClusters},
		{"GET", "/.well-known/databricks-config", ""},
		{"GET", "/api/2.0/preview/scim/v2/Me", ""},
		{"GET", "/api/2.0/clustersfoo", ""},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.method, tt.path); got != tt.want {
			t.Errorf("ClassOf(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}
