// Cluster permissions: effective levels and the permissions endpoints.

package emulator

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// level returns the caller's effective direct level on a cluster ("" = none).
func (cl *cluster) level(p principal) string {
	if p.admin {
		return levelManage
	}
	best := cl.ACL[aclKey("user_name", p.name)]
	for _, g := range []string{"users", "account users"} {
		if l := cl.ACL[aclKey("group_name", g)]; levelRank(l) > levelRank(best) {
			best = l
		}
	}
	return best
}

func levelRank(l string) int {
	switch l {
	case levelAttach:
		return 1
	case levelRestart:
		return 2
	case levelManage:
		return 3
	}
	return 0
}

// ---- cluster permissions ----

func (s *Server) permissionsCluster(c *call) (*cluster, bool) {
	id := c.params[0]
	cl, ok := s.st.Clusters[id]
	if ok && s.expire(cl, s.now()) {
		ok = false
	}
	if !ok {
		c.fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Cluster %s does not exist.", id))
		return nil, false
	}
	return cl, true
}

func (s *Server) renderPermissions(cl *cluster) map[string]any {
	var acl []map[string]any
	for _, k := range slices.Sorted(maps.Keys(cl.ACL)) {
		kind, name, _ := strings.Cut(k, ":")
		e := map[string]any{kind: name, "all_permissions": []map[string]any{{"permission_level": cl.ACL[k], "inherited": false}}}
		if kind == "user_name" {
			if u := s.st.userByName(name); u != nil {
				e["display_name"] = u.DisplayName
			}
		}
		acl = append(acl, e)
	}
	acl = append(acl, map[string]any{
		"group_name": "admins",
		"all_permissions": []map[string]any{{
			"permission_level": levelManage, "inherited": true, "inherited_from_object": []string{"/clusters/"},
		}},
	})
	return map[string]any{"object_id": "/clusters/" + cl.ID, "object_type": "cluster", "access_control_list": acl}
}

func (s *Server) getClusterPermissions(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.permissionsCluster(c)
	if !ok {
		return
	}
	c.ok(s.renderPermissions(cl))
}

func (s *Server) clusterPermissionLevels(c *call) {
	s.mu.Lock()
	_, ok := s.permissionsCluster(c)
	s.mu.Unlock()
	if !ok {
		return
	}
	c.ok(map[string]any{"permission_levels": []map[string]string{
		{"permission_level": levelAttach, "description": "Can attach notebooks to the cluster and view the Spark UI."},
		{"permission_level": levelRestart, "description": "Can attach, start, restart and terminate the cluster."},
		{"permission_level": levelManage, "description": "Can manage the cluster, including its permissions."},
	}})
}

// updateClusterPermissions handles PATCH (merge) and PUT (replace direct entries).
func (s *Server) updateClusterPermissions(replace bool) func(*call) {
	return func(c *call) {
		var req struct {
			AccessControlList []struct {
				UserName             string `json:"user_name"`
				GroupName            string `json:"group_name"`
				ServicePrincipalName string `json:"service_principal_name"`
				PermissionLevel      string `json:"permission_level"`
			} `json:"access_control_list"`
		}
		if !c.decode(&req) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		cl, ok := s.permissionsCluster(c)
		if !ok {
			return
		}
		if cl.level(c.caller) != levelManage {
			c.fail(http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("User %s does not have Manage permission on cluster %s.", c.caller.name, cl.ID))
			return
		}
		updates := map[string]string{}
		for _, e := range req.AccessControlList {
			n := 0
			for _, v := range []string{e.UserName, e.GroupName, e.ServicePrincipalName} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Exactly one of user_name, group_name or service_principal_name must be set in each access control entry.")
				return
			}
			if levelRank(e.PermissionLevel) == 0 {
				c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Permission level %s is not supported for clusters; supported levels: %s, %s, %s.", e.PermissionLevel, levelAttach, levelRestart, levelManage))
				return
			}
			var key string
			switch {
			case e.UserName != "":
				if strings.EqualFold(e.UserName, AdminUserName) {
					key = aclKey("user_name", AdminUserName)
					break
				}
				u, ok := s.workspaceUser(e.UserName)
				if !ok {
					c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Principal: UserName(%s) does not exist", e.UserName))
					return
				}
				key = aclKey("user_name", u.UserName)
			case e.GroupName != "":
				g := strings.ToLower(e.GroupName)
				if g == "admins" {
					c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Cannot change admins's %s permission on /clusters/%s: it is inherited.", levelManage, cl.ID))
					return
				}
				if !builtinGroups[g] {
					c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Principal: GroupName(%s) does not exist", e.GroupName))
					return
				}
				key = aclKey("group_name", g)
			default:
				c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Principal: ServicePrincipalName(%s) does not exist", e.ServicePrincipalName))
				return
			}
			updates[key] = e.PermissionLevel
		}
		if replace {
			cl.ACL = map[string]string{}
		}
		for k, l := range updates {
			cl.ACL[k] = l
		}
		s.put(kindCluster, cl.ID, cl)
		c.ok(s.renderPermissions(cl))
	}
}
