package emulator

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// assignment is a principal's permission set on the workspace.
type assignment struct {
	PrincipalID int64    `json:"principal_id"`
	Permissions []string `json:"permissions"`
	Seq         int64    `json:"seq"`
}

// workspaceUser resolves name to an account user assigned to the workspace and
// visible (past the assignment lag). Callers hold s.mu.
func (s *Server) workspaceUser(name string) (*user, bool) {
	u := s.st.userByName(name)
	if u == nil {
		return nil, false
	}
	id, _ := strconv.ParseInt(u.ID, 10, 64)
	if _, ok := s.st.Assign[id]; !ok {
		return nil, false
	}
	if at, ok := s.assignedAt[id]; ok {
		if s.now().Before(at.Add(s.scaled(s.opts.AssignmentLag))) {
			return nil, false
		}
		delete(s.assignedAt, id)
	}
	return u, true
}

// workspaceIDs parses the workspace id (and principal id, if present) from the
// path and checks the workspace. It answers the error itself.
func (s *Server) workspaceIDs(c *call) (principalID int64, ok bool) {
	ws, err := strconv.ParseInt(c.params[0], 10, 64)
	if err != nil {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid workspace id %q: must be an integer.", c.params[0]))
		return 0, false
	}
	if ws != s.opts.WorkspaceID {
		c.fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Workspace %d does not exist in account %s.", ws, s.opts.AccountID))
		return 0, false
	}
	if len(c.params) < 2 {
		return 0, true
	}
	pid, err := strconv.ParseInt(c.params[1], 10, 64)
	if err != nil {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid principal id %q: must be an integer.", c.params[1]))
		return 0, false
	}
	return pid, true
}

func (s *Server) renderAssignment(a *assignment) map[string]any {
	p := map[string]any{"principal_id": a.PrincipalID}
	if u, ok := s.st.Users[strconv.FormatInt(a.PrincipalID, 10)]; ok {
		p["user_name"] = u.UserName
		p["display_name"] = u.DisplayName
	}
	return map[string]any{"permissions": a.Permissions, "principal": p}
}

func (s *Server) putAssignment(c *call) {
	pid, ok := s.workspaceIDs(c)
	if !ok {
		return
	}
	var req struct {
		Permissions []string `json:"permissions"`
	}
	if !c.decode(&req) {
		return
	}
	if len(req.Permissions) == 0 {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "permissions must not be empty.")
		return
	}
	perms := map[string]bool{}
	for _, p := range req.Permissions {
		p = strings.ToUpper(p)
		if p != "USER" && p != "ADMIN" {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid permission %q: must be one of USER, ADMIN.", p))
			return
		}
		perms[p] = true
	}
	list := make([]string, 0, len(perms))
	for p := range perms {
		list = append(list, p)
	}
	sort.Strings(list)

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Users[strconv.FormatInt(pid, 10)]; !ok {
		c.fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Principal not found in account.")
		return
	}
	if s.flakyAssignment(c, pid) {
		return
	}
	a, exists := s.st.Assign[pid]
	if !exists {
		a = &assignment{PrincipalID: pid, Seq: s.st.nextSeq()}
		s.st.Assign[pid] = a
		if s.opts.AssignmentLag > 0 {
			s.assignedAt[pid] = s.now()
		}
	}
	a.Permissions = list
	s.put(kindAssign, strconv.FormatInt(pid, 10), a)
	c.ok(s.renderAssignment(a))
}

// flakyAssignment decides whether an assignment PUT shortly after the
// principal's creation fails as production does (TF#5367: "Principal <id> not
// in workspace <id>" in about half the runs; TF#2739: 200 with an "error"
// field, not applied). It answers the call when it fails. Decisions hash
// (seed, principal, attempt), so a run reproduces. Callers hold s.mu.
func (s *Server) flakyAssignment(c *call, pid int64) bool {
	u := s.st.Users[strconv.FormatInt(pid, 10)]
	if !on(s.opts.AssignmentFlakyShare) || u == nil || u.CreatedAt == 0 {
		return false
	}
	if s.now().UnixMilli() >= u.CreatedAt+s.scaled(s.opts.AssignmentFlakyWindow).Milliseconds() {
		return false
	}
	s.assignTry[pid]++
	n := s.assignTry[pid]
	if s.draw("assign:"+u.ID, n) >= s.opts.AssignmentFlakyShare {
		return false
	}
	vars := map[string]string{"principal": u.ID, "workspace": strconv.FormatInt(s.opts.WorkspaceID, 10)}
	if on(s.opts.AssignmentErrorBodyShare) && s.draw("assign-body:"+u.ID, n) < s.opts.AssignmentErrorBodyShare {
		c.ok(map[string]any{
			"permissions": []string{},
			"principal":   map[string]any{"principal_id": pid, "user_name": u.UserName, "display_name": u.DisplayName},
			"error":       expand(s.opts.AssignmentFlakyError.Message, vars),
		})
		return true
	}
	c.answer(s.opts.AssignmentFlakyError, false, vars)
	return true
}

func (s *Server) listAssignments(c *call) {
	if _, ok := s.workspaceIDs(c); !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	as := make([]*assignment, 0, len(s.st.Assign))
	for _, a := range s.st.Assign {
		as = append(as, a)
	}
	sort.Slice(as, func(i, j int) bool { return as[i].Seq < as[j].Seq })
	out := make([]map[string]any, 0, len(as))
	for _, a := range as {
		out = append(out, s.renderAssignment(a))
	}
	c.ok(map[string]any{"permission_assignments": out})
}

func (s *Server) deleteAssignment(c *call) {
	pid, ok := s.workspaceIDs(c)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Users[strconv.FormatInt(pid, 10)]; !ok {
		c.fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Principal not found in account.")
		return
	}
	if _, ok := s.st.Assign[pid]; !ok {
		c.fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Principal %d not in workspace %d", pid, s.opts.WorkspaceID))
		return
	}
	delete(s.st.Assign, pid)
	delete(s.assignedAt, pid)
	s.del(kindAssign, strconv.FormatInt(pid, 10))
	c.ok(map[string]any{})
}

func (s *Server) assignmentLevels(c *call) {
	if _, ok := s.workspaceIDs(c); !ok {
		return
	}
	c.ok(map[string]any{"permissions": []map[string]string{
		{"permission_level": "USER", "description": "Can access the workspace with basic privileges."},
		{"permission_level": "ADMIN", "description": "Can access the workspace and has workspace admin privileges to manage users and groups, workspace configurations, and more."},
	}})
}
