package activities

import (
	"net/http"
	"strings"
)

// ClassOf names the API class (as paced by Limits) of a Databricks REST
// request, from its method and path: the same class the activities wait on
// before making the call. Requests outside every class (the SDK's own
// discovery, /Me) return "".
func ClassOf(method, path string) Class {
	p := strings.TrimSuffix(path, "/")
	switch {
	case strings.HasPrefix(p, "/api/2.0/accounts/") && strings.Contains(p, "/scim/v2/Users"):
		switch {
		case method == http.MethodPatch:
			return ClassSCIMPatch
		case method != http.MethodGet:
			return ClassSCIMWrite
		case strings.HasSuffix(p, "/scim/v2/Users"):
			return ClassSCIMList
		default:
			return ClassSCIMGet
		}
	case strings.HasPrefix(p, "/api/2.0/accounts/") && strings.Contains(p, "/permissionassignments"):
		return ClassAssignments
	case strings.HasPrefix(p, "/api/2.0/permissions/"):
		if method == http.MethodGet {
			return ClassPermissionsRead
		}
		return ClassPermissionsWrite
	case strings.HasPrefix(p, "/api/2.1/unity-catalog/"):
		return ClassUnityCatalog
	case hasAPIPrefix(p, "clusters/events"):
		return ClassEvents
	case hasAPIPrefix(p, "clusters"), hasAPIPrefix(p, "policies"), hasAPIPrefix(p, "policy-families"):
		return ClassClusters
	}
	return ""
}

// hasAPIPrefix reports whether p is under /api/2.0/what or /api/2.1/what.
func hasAPIPrefix(p, what string) bool {
	for _, v := range []string{"/api/2.0/", "/api/2.1/"} {
		if p == v+what || strings.HasPrefix(p, v+what+"/") {
			return true
		}
	}
	return false
}
