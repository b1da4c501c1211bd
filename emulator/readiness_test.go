package emulator

import (
	"context"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

func TestMetastoreSummary(t *testing.T) {
	ctx := context.Background()
	for _, root := range []string{"", "abfss://metastore@emulator.dfs.core.windows.net/root"} {
		e := setup(t, Options{MetastoreRoot: root})
		m, err := e.w.Metastores.Summary(ctx)
		if err != nil {
			t.Fatalf("root %q: summary: %v", root, err)
		}
		if m.MetastoreId != metastoreID || m.StorageRoot != root || m.Cloud != "azure" {
			t.Errorf("root %q: summary = %+v, want the metastore with storage_root %q", root, m, root)
		}
		// A non-admin may read it too.
		if _, err := e.workspaceClient(testUserToken, 4).Metastores.Summary(ctx); err != nil {
			t.Errorf("user token: %v", err)
		}
		if n := e.emu.Stats().WriteCount(); n != 0 {
			t.Errorf("writes = %d, want none", n)
		}
	}
}

func TestEffectivePermissions(t *testing.T) {
	e := setup(t, Options{Users: []SeedUser{{UserName: "ana@example.com", Assigned: true}}})
	ctx := context.Background()
	if _, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "s1"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []catalog.UpdatePermissions{
		{SecurableType: "catalog", FullName: "main", Changes: []catalog.PermissionsChange{
			{Principal: "ana@example.com", Add: []catalog.Privilege{"MANAGE", "USE_CATALOG"}},
			{Principal: "account users", Add: []catalog.Privilege{"CREATE_SCHEMA"}}}},
		{SecurableType: "schema", FullName: "main.s1", Changes: []catalog.PermissionsChange{
			{Principal: "ana@example.com", Add: []catalog.Privilege{"SELECT"}}}},
	} {
		if _, err := e.w.Grants.Update(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	privs := func(typ, name, principal string) map[string]string {
		t.Helper()
		got, err := e.w.Grants.GetEffective(ctx, catalog.GetEffectiveRequest{SecurableType: typ, FullName: name, Principal: principal})
		if err != nil {
			t.Fatalf("effective %s %s: %v", typ, name, err)
		}
		out := map[string]string{}
		for _, pa := range got.PrivilegeAssignments {
			if pa.Principal != principal {
				t.Errorf("principal %q listed, want only %q", pa.Principal, principal)
			}
			for _, p := range pa.Privileges {
				out[string(p.Privilege)] = p.InheritedFromName
			}
		}
		return out
	}
	if got := privs("catalog", "main", "ana@example.com"); len(got) != 3 || got["MANAGE"] != "" || got["CREATE_SCHEMA"] != "" {
		t.Errorf("ana on main = %v, want MANAGE, USE_CATALOG and CREATE_SCHEMA (from account users)", got)
	}
	if got := privs("schema", "main.s1", "ana@example.com"); got["SELECT"] != "" || got["MANAGE"] != "main" || len(got) != 4 {
		t.Errorf("ana on main.s1 = %v, want SELECT direct and MANAGE, USE_CATALOG, CREATE_SCHEMA inherited from main", got)
	}
	if got := privs("catalog", "main", AdminUserName); len(got) != 1 || got["CREATE_SCHEMA"] != "" {
		t.Errorf("admin on main = %v, want only CREATE_SCHEMA through account users (ownership is not listed)", got)
	}
	all, err := e.w.Grants.GetEffective(ctx, catalog.GetEffectiveRequest{SecurableType: "catalog", FullName: "main"})
	if err != nil || len(all.PrivilegeAssignments) != 2 {
		t.Errorf("all principals = %+v, %v; want account users and ana", all, err)
	}
	_, err = e.w.Grants.GetEffective(ctx, catalog.GetEffectiveRequest{SecurableType: "catalog", FullName: "ghost"})
	wantErr(t, err, "Catalog 'ghost' does not exist.", nil)
	// Who asks: SCIM Me on the workspace.
	me, err := e.workspaceClient(testUserToken, 4).CurrentUser.Me(ctx, iam.MeRequest{})
	if err != nil || me.UserName != UserTokenUserName {
		t.Errorf("Me (user token) = %+v, %v", me, err)
	}
	if n := e.emu.Stats().Reads["grants.effective"]["200"]; n != 4 {
		t.Errorf("effective-permissions reads = %d, want 4", n)
	}
}
