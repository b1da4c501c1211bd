package emulator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/listing"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

func TestSCIMUsers_createGetDelete(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	u, err := e.a.Users.Create(ctx, iam.User{UserName: "Ada.Lovelace@Example.COM", DisplayName: "Ada"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if u.UserName != "ada.lovelace@example.com" {
		t.Errorf("userName = %q, want lower-cased", u.UserName)
	}
	if !u.Active {
		t.Errorf("active = false, want true by default")
	}
	mustID(t, u.Id)
	got, err := e.a.Users.GetById(ctx, u.Id)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.UserName != u.UserName || got.DisplayName != "Ada" {
		t.Errorf("get = %+v, want %+v", got, u)
	}

	_, err = e.a.Users.Create(ctx, iam.User{UserName: "ADA.lovelace@example.com"})
	wantErr(t, err, "User with email ada.lovelace@example.com already exists in this account", []error{apierr.ErrResourceConflict}, apierr.ErrAlreadyExists)
	if ae := apiErr(t, err); ae.ErrorCode != "SCIM_409" || ae.StatusCode != http.StatusConflict {
		t.Errorf("duplicate: code %q status %d, want SCIM_409 409", ae.ErrorCode, ae.StatusCode)
	}

	if err := e.a.Users.DeleteById(ctx, u.Id); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = e.a.Users.GetById(ctx, u.Id)
	wantErr(t, err, "not found", []error{apierr.ErrNotFound})
	err = e.a.Users.DeleteById(ctx, u.Id)
	wantErr(t, err, "not found", []error{apierr.ErrNotFound})
	_, err = e.a.Users.GetById(ctx, "not-a-number")
	wantErr(t, err, "not found", []error{apierr.ErrNotFound})
}

func TestSCIMUsers_listFilterAndPaging(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	for i := range 7 {
		e.user(fmt.Sprintf("p%02d@event.org", i))
	}
	e.user("mentor@other.org")

	tests := []struct {
		name   string
		filter string
		count  int64
		want   int
	}{
		{"eq one hit", `userName eq "p03@event.org"`, 0, 1},
		{"eq case-insensitive", `userName eq "P03@EVENT.ORG"`, 0, 1},
		{"eq miss", `userName eq "nobody@event.org"`, 0, 0},
		{"sw", `userName sw "p0"`, 0, 7},
		{"co paged by 2", `userName co "@event."`, 2, 7},
		{"ne", `userName ne "mentor@other.org"`, 0, 7},
		{"and", `userName sw "p0" and userName co "5@"`, 0, 1},
		{"or", `userName eq "p01@event.org" or userName eq "mentor@other.org"`, 0, 2},
		{"parens and not", `not (userName sw "p")`, 0, 1},
		{"no filter paged by 3", ``, 3, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// ListAll caps the total at Count, so page through the iterator instead.
			got, err := listing.ToSlice(ctx, e.a.Users.List(ctx, iam.ListAccountUsersRequest{Filter: tc.filter, Count: tc.count, Attributes: "id,userName"}))
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if tc.count == 0 {
				all, err := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: tc.filter})
				if err != nil || len(all) != tc.want {
					t.Errorf("ListAll(%q) = %d users, %v; want %d", tc.filter, len(all), err, tc.want)
				}
			}
			if len(got) != tc.want {
				t.Errorf("ListAll(%q) returned %d users, want %d", tc.filter, len(got), tc.want)
			}
			for _, u := range got {
				if u.Id == "" || u.UserName == "" {
					t.Errorf("projected user lacks id or userName: %+v", u)
				}
				if u.DisplayName != "" {
					t.Errorf("attributes=id,userName still returned displayName %q", u.DisplayName)
				}
			}
		})
	}

	// The single-request iterator trick (docs/databricks-api.md §1.1).
	it := e.a.Users.List(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "p04@event.org"`})
	if !it.HasNext(ctx) {
		t.Fatalf("iterator: no user")
	}
	u, err := it.Next(ctx)
	if err != nil || u.UserName != "p04@event.org" {
		t.Fatalf("iterator: %+v, %v", u, err)
	}
	if n := e.emu.Stats().Requests["scim.users.list"]["200"]; n < int64(len(tests)) {
		t.Errorf("stats counted %d list requests, want at least %d", n, len(tests))
	}

	for _, bad := range []string{`userName eq`, `userName xx "a"`, `(userName eq "a"`, `password eq "x"`, `userName eq "unterminated`} {
		_, err := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: bad})
		wantErr(t, err, "Invalid filter", []error{apierr.ErrBadRequest})
	}
	var big []string
	for i := range 201 {
		big = append(big, fmt.Sprintf(`userName eq "u%d@x.y"`, i))
	}
	_, err = e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: strings.Join(big, " or ")})
	wantErr(t, err, "more than the 200 allowed", []error{apierr.ErrBadRequest})
}

func TestSCIMUsers_refuseRule(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	if st := e.control("PUT", "/emulator/v1/rules", map[string]any{"refuse_users": []string{`^bad-.*@`}}, nil); st != 200 {
		t.Fatalf("PUT rules: %d", st)
	}
	_, err := e.a.Users.Create(ctx, iam.User{UserName: "bad-apple@event.org"})
	wantErr(t, err, "not allowed", []error{apierr.ErrBadRequest})
	e.user("good-apple@event.org")
	if st := e.control("PUT", "/emulator/v1/rules", map[string]any{"refuse_users": []string{}}, nil); st != 200 {
		t.Fatalf("PUT rules: %d", st)
	}
	e.user("bad-apple@event.org")
	if st := e.control("PUT", "/emulator/v1/rules", map[string]any{"refuse_users": []string{"("}}, nil); st != 400 {
		t.Errorf("PUT rules with a bad regexp: %d, want 400", st)
	}
}

func TestWorkspaceAssignment(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	u := e.user("ws@event.org")
	pid := mustID(t, u.Id)
	pa, err := e.a.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: testWorkspace, PrincipalId: pid, Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if pa.Principal == nil || pa.Principal.PrincipalId != pid || pa.Principal.UserName != u.UserName || len(pa.Permissions) != 1 || pa.Permissions[0] != iam.WorkspacePermissionUser {
		t.Errorf("put returned %+v", pa)
	}
	// PUT is an upsert.
	if _, err := e.a.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: testWorkspace, PrincipalId: pid, Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}}); err != nil {
		t.Fatalf("second put: %v", err)
	}
	list, err := e.a.WorkspaceAssignment.ListAll(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: testWorkspace})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 1 || list[0].Principal.PrincipalId != pid {
		t.Errorf("list = %+v, want one assignment for %d", list, pid)
	}
	levels, err := e.a.WorkspaceAssignment.GetByWorkspaceId(ctx, testWorkspace)
	if err != nil || len(levels.Permissions) != 2 {
		t.Errorf("permissions = %+v, %v; want USER and ADMIN", levels, err)
	}

	tests := []struct {
		name string
		do   func() error
		msg  string
		is   []error
	}{
		{"unknown principal", func() error {
			_, err := e.a.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: testWorkspace, PrincipalId: 42, Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}})
			return err
		}, "Principal not found in account.", []error{apierr.ErrNotFound}},
		{"unknown workspace", func() error {
			_, err := e.a.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: 7, PrincipalId: pid, Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}})
			return err
		}, "Workspace 7 does not exist", []error{apierr.ErrNotFound}},
		{"bad permission", func() error {
			_, err := e.a.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: testWorkspace, PrincipalId: pid, Permissions: []iam.WorkspacePermission{"OWNER"}})
			return err
		}, "Invalid permission", []error{apierr.ErrInvalidParameterValue}},
		{"empty permissions", func() error {
			_, err := e.a.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: testWorkspace, PrincipalId: pid})
			return err
		}, "must not be empty", []error{apierr.ErrInvalidParameterValue}},
		{"delete unknown principal", func() error {
			return e.a.WorkspaceAssignment.DeleteByWorkspaceIdAndPrincipalId(ctx, testWorkspace, 42)
		}, "Principal not found in account.", []error{apierr.ErrNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.do(), tc.msg, tc.is) })
	}

	if err := e.a.WorkspaceAssignment.DeleteByWorkspaceIdAndPrincipalId(ctx, testWorkspace, pid); err != nil {
		t.Fatalf("delete: %v", err)
	}
	err = e.a.WorkspaceAssignment.DeleteByWorkspaceIdAndPrincipalId(ctx, testWorkspace, pid)
	wantErr(t, err, fmt.Sprintf("Principal %d not in workspace %d", pid, testWorkspace), []error{apierr.ErrNotFound})
	if st, body := e.raw("PUT", fmt.Sprintf("/api/2.0/accounts/%s/workspaces/abc/permissionassignments/principals/%d", testAccount, pid), testToken, `{"permissions":["USER"]}`); st != 400 || !strings.Contains(string(body), "INVALID_PARAMETER_VALUE") {
		t.Errorf("non-int workspace id: %d %s", st, body)
	}
	if st, _ := e.raw("GET", "/api/2.0/accounts//scim/v2/Users", testToken, nil); st != 400 {
		t.Errorf("empty account id: %d, want 400", st)
	}
	if st, _ := e.raw("GET", "/api/2.0/accounts/other/scim/v2/Users", testToken, nil); st != 404 {
		t.Errorf("wrong account id: %d, want 404", st)
	}
}

func TestDeleteUserRemovesAssignment(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	u := e.participant("gone@event.org")
	if err := e.a.Users.DeleteById(ctx, u.Id); err != nil {
		t.Fatalf("delete: %v", err)
	}
	list, err := e.a.WorkspaceAssignment.ListAll(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: testWorkspace})
	if err != nil || len(list) != 0 {
		t.Errorf("assignments after user delete = %+v, %v; want none", list, err)
	}
}

func TestAuth(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	noAuth := []struct {
		name  string
		token string
	}{{"wrong token", "dapi-wrong"}}
	for _, tc := range noAuth {
		a := e.accountClient(tc.token, 1)
		_, err := a.Users.ListAll(ctx, iam.ListAccountUsersRequest{})
		wantErr(t, err, "Invalid access token", []error{apierr.ErrUnauthenticated})
	}
	if st, body := e.raw("GET", "/api/2.1/clusters/spark-versions", "", nil); st != 401 || !strings.Contains(string(body), `"error_code":"UNAUTHENTICATED"`) {
		t.Errorf("no bearer: %d %s, want 401 JSON", st, body)
	}

	ua := e.accountClient(testUserToken, 1)
	_, err := ua.Users.Create(ctx, iam.User{UserName: "x@y.z"})
	wantErr(t, err, "not authorized", []error{apierr.ErrPermissionDenied})
	_, err = ua.WorkspaceAssignment.ListAll(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: testWorkspace})
	wantErr(t, err, "not authorized", []error{apierr.ErrPermissionDenied})
	uw := e.workspaceClient(testUserToken, 1)
	if _, err := uw.Clusters.SparkVersions(ctx); err != nil {
		t.Errorf("user token on spark-versions: %v", err)
	}
	if st, _ := e.raw("GET", "/emulator/v1/stats", testUserToken, nil); st != 403 {
		t.Errorf("control API with user token: %d, want 403", st)
	}
	if st, _ := e.raw("GET", "/emulator/v1/stats", "", nil); st != 401 {
		t.Errorf("control API without token: %d, want 401", st)
	}
	if st, _ := e.raw("GET", "/.well-known/databricks-config", "", nil); st != 200 {
		t.Errorf("well-known without token: %d, want 200", st)
	}
}
