package emulator

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
)

func TestCatalogs(t *testing.T) {
	e := setup(t, Options{MetastoreRoot: "abfss://metastore@emulator.dfs.core.windows.net/root"})
	ctx := context.Background()
	main, err := e.w.Catalogs.GetByName(ctx, "main")
	if err != nil || main.Name != "main" || main.MetastoreId == "" {
		t.Fatalf("get main = %+v, %v", main, err)
	}
	created, err := e.w.Catalogs.Create(ctx, catalog.CreateCatalog{Name: "Hackathon"})
	if err != nil || created.Name != "hackathon" {
		t.Fatalf("create = %+v, %v; want lower-cased hackathon", created, err)
	}
	all, err := e.w.Catalogs.ListAll(ctx, catalog.ListCatalogsRequest{})
	if err != nil || len(all) != 3 {
		t.Errorf("list = %d catalogs, %v; want 3 (workspace catalog, main, hackathon)", len(all), err)
	}
	_, err = e.w.Catalogs.Create(ctx, catalog.CreateCatalog{Name: "hackathon"})
	wantErr(t, err, "Catalog 'hackathon' already exists", []error{apierr.ErrResourceConflict})
	_, err = e.w.Catalogs.GetByName(ctx, "nope")
	wantErr(t, err, "Catalog 'nope' does not exist.", []error{apierr.ErrNotFound}, apierr.ErrResourceDoesNotExist)
	_, err = e.w.Catalogs.Create(ctx, catalog.CreateCatalog{Name: "a b"})
	wantErr(t, err, "Invalid catalog name", []error{apierr.ErrInvalidParameterValue})
}

func TestSchemas(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	sc, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "P42_Team"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if sc.Name != "p42_team" || sc.FullName != "main.p42_team" || sc.Owner != AdminUserName || sc.SchemaId == "" || sc.MetastoreId == "" {
		t.Errorf("create returned %+v", sc)
	}
	got, err := e.w.Schemas.GetByFullName(ctx, "main.P42_TEAM")
	if err != nil || got.SchemaId != sc.SchemaId {
		t.Errorf("get by mixed-case name = %+v, %v", got, err)
	}
	for i := range 3 {
		if _, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "s" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := e.w.Schemas.ListAll(ctx, catalog.ListSchemasRequest{CatalogName: "main"})
	if err != nil || len(all) != 6 {
		t.Errorf("ListAll = %d schemas, %v; want 6 (4 and default, information_schema)", len(all), err)
	}
	paged, err := e.w.Schemas.ListAll(ctx, catalog.ListSchemasRequest{CatalogName: "main", MaxResults: 1})
	if err != nil || len(paged) != 6 {
		t.Errorf("ListAll max_results=1 = %d schemas, %v; want 6", len(paged), err)
	}

	tests := []struct {
		name  string
		do    func() error
		msg   string
		is    []error
		isNot []error
	}{
		{"duplicate", func() error {
			_, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "p42_TEAM"})
			return err
		}, "Schema 'p42_team' already exists", []error{apierr.ErrResourceConflict}, []error{apierr.ErrAlreadyExists}},
		{"missing schema", func() error {
			_, err := e.w.Schemas.GetByFullName(ctx, "main.nope")
			return err
		}, "Schema 'main.nope' does not exist.", []error{apierr.ErrNotFound}, []error{apierr.ErrResourceDoesNotExist}},
		{"missing catalog on create", func() error {
			_, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "ghost", Name: "x"})
			return err
		}, "Catalog 'ghost' does not exist.", []error{apierr.ErrNotFound}, nil},
		{"missing catalog on get", func() error {
			_, err := e.w.Schemas.GetByFullName(ctx, "ghost.x")
			return err
		}, "Catalog 'ghost' does not exist.", []error{apierr.ErrNotFound}, nil},
		{"bad name", func() error {
			_, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "has space"})
			return err
		}, "Invalid schema name", []error{apierr.ErrInvalidParameterValue}, nil},
		{"list missing catalog", func() error {
			_, err := e.w.Schemas.ListAll(ctx, catalog.ListSchemasRequest{CatalogName: "ghost"})
			return err
		}, "Catalog 'ghost' does not exist.", []error{apierr.ErrNotFound}, nil},
		{"delete missing", func() error {
			return e.w.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: "main.nope", Force: true})
		}, "does not exist", []error{apierr.ErrNotFound}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.do(), tc.msg, tc.is, tc.isNot...) })
	}

	if err := e.w.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: "main.p42_team", Force: true}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := e.w.Schemas.GetByFullName(ctx, "main.p42_team"); err == nil {
		t.Errorf("schema still there after delete")
	}
	if n := e.emu.Stats().Objects.Schemas; n != 3 {
		t.Errorf("stats schemas = %d, want 3", n)
	}
}

// Schema properties are stored and returned, by create and get, as Unity
// Catalog does (Cohort marks the participant a schema was made for).
func TestSchemas_properties(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	props := map[string]string{"cohort.participant.sha256": "ab12", "other": "x"}
	sc, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "marked", Properties: props})
	if err != nil || !maps.Equal(sc.Properties, props) {
		t.Fatalf("create = %+v, %v; want properties %v", sc, err, props)
	}
	got, err := e.w.Schemas.Get(ctx, catalog.GetSchemaRequest{FullName: "main.marked"})
	if err != nil || !maps.Equal(got.Properties, props) {
		t.Errorf("get = %+v, %v; want properties %v", got, err, props)
	}
	plain, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "plain"})
	if err != nil || len(plain.Properties) != 0 {
		t.Errorf("create without properties = %+v, %v; want none", plain, err)
	}
}

func TestGrants(t *testing.T) {
	e := setup(t, Options{})
	ctx := context.Background()
	if _, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	u := e.user("p1@event.org")

	// Not yet assigned to the workspace: the principal is invisible.
	_, err := e.w.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.p1",
		Changes: []catalog.PermissionsChange{{Principal: u.UserName, Add: []catalog.Privilege{catalog.PrivilegeUseSchema}}}})
	wantErr(t, err, "Could not find principal with name p1@event.org", []error{apierr.ErrNotFound})
	if ae := apiErr(t, err); ae.ErrorCode != "PRINCIPAL_DOES_NOT_EXIST" {
		t.Errorf("error code = %q, want PRINCIPAL_DOES_NOT_EXIST", ae.ErrorCode)
	}

	e.assign(u)
	resp, err := e.w.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.p1",
		Changes: []catalog.PermissionsChange{{Principal: "P1@event.org", Add: []catalog.Privilege{catalog.PrivilegeUseSchema, catalog.PrivilegeCreateTable, catalog.PrivilegeSelect}}}})
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	if len(resp.PrivilegeAssignments) != 1 || resp.PrivilegeAssignments[0].Principal != "p1@event.org" || len(resp.PrivilegeAssignments[0].Privileges) != 3 {
		t.Errorf("grant returned %+v", resp.PrivilegeAssignments)
	}
	if _, err := e.w.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "catalog", FullName: "main",
		Changes: []catalog.PermissionsChange{{Principal: u.UserName, Add: []catalog.Privilege{catalog.PrivilegeUseCatalog}}, {Principal: "account users", Add: []catalog.Privilege{catalog.PrivilegeBrowse}}}}); err != nil {
		t.Fatalf("catalog grant: %v", err)
	}
	// Re-adding is a no-op; remove then add applies per principal.
	resp, err = e.w.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.p1",
		Changes: []catalog.PermissionsChange{{Principal: u.UserName, Add: []catalog.Privilege{catalog.PrivilegeUseSchema}, Remove: []catalog.Privilege{catalog.PrivilegeSelect}}}})
	if err != nil {
		t.Fatalf("regrant: %v", err)
	}
	want := []catalog.Privilege{catalog.PrivilegeCreateTable, catalog.PrivilegeUseSchema}
	if got := resp.PrivilegeAssignments[0].Privileges; !slices.Equal(got, want) {
		t.Errorf("privileges = %v, want %v", got, want)
	}
	got, err := e.w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: "catalog", FullName: "main", Principal: u.UserName})
	if err != nil || len(got.PrivilegeAssignments) != 1 || got.PrivilegeAssignments[0].Privileges[0] != catalog.PrivilegeUseCatalog {
		t.Errorf("get ?principal= = %+v, %v", got, err)
	}
	all, err := e.w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: "catalog", FullName: "main"})
	if err != nil || len(all.PrivilegeAssignments) != 2 {
		t.Errorf("get all = %+v, %v; want 2 principals", all, err)
	}

	tests := []struct {
		name string
		req  catalog.UpdatePermissions
		msg  string
		is   []error
	}{
		{"same privilege added and removed", catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.p1",
			Changes: []catalog.PermissionsChange{{Principal: u.UserName, Add: []catalog.Privilege{catalog.PrivilegeModify}, Remove: []catalog.Privilege{catalog.PrivilegeModify}}}},
			"Duplicate privileges to add and delete for principal p1@event.org.", []error{apierr.ErrInvalidParameterValue}},
		{"catalog privilege on schema", catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.p1",
			Changes: []catalog.PermissionsChange{{Principal: u.UserName, Add: []catalog.Privilege{catalog.PrivilegeUseCatalog}}}},
			"is not applicable to this entity", []error{apierr.ErrInvalidParameterValue}},
		{"unknown privilege", catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.p1",
			Changes: []catalog.PermissionsChange{{Principal: u.UserName, Add: []catalog.Privilege{"FLY"}}}},
			"Unknown privilege", []error{apierr.ErrInvalidParameterValue}},
		{"unknown principal", catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.p1",
			Changes: []catalog.PermissionsChange{{Principal: "ghost@event.org", Add: []catalog.Privilege{catalog.PrivilegeSelect}}}},
			"Could not find principal with name ghost@event.org", []error{apierr.ErrNotFound}},
		{"missing schema", catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.nope",
			Changes: []catalog.PermissionsChange{{Principal: u.UserName, Add: []catalog.Privilege{catalog.PrivilegeSelect}}}},
			"Schema 'main.nope' does not exist.", []error{apierr.ErrNotFound}},
		{"unsupported securable", catalog.UpdatePermissions{SecurableType: "volume", FullName: "main.p1.v",
			Changes: []catalog.PermissionsChange{{Principal: u.UserName, Add: []catalog.Privilege{catalog.PrivilegeSelect}}}},
			"Unsupported securable type", []error{apierr.ErrInvalidParameterValue}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.w.Grants.Update(ctx, tc.req)
			wantErr(t, err, tc.msg, tc.is)
		})
	}
}

func TestAssignmentLag(t *testing.T) {
	clock := NewManualClock()
	e := setup(t, Options{AssignmentLag: 400 * time.Millisecond, Now: clock.Now})
	ctx := context.Background()
	if _, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "lag"}); err != nil {
		t.Fatal(err)
	}
	u := e.participant("lag@event.org")
	change := catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.lag",
		Changes: []catalog.PermissionsChange{{Principal: u.UserName, Add: []catalog.Privilege{catalog.PrivilegeUseSchema}}}}
	_, err := e.w.Grants.Update(ctx, change)
	wantErr(t, err, "Could not find principal", []error{apierr.ErrNotFound})
	clock.Advance(401 * time.Millisecond)
	if _, err := e.w.Grants.Update(ctx, change); err != nil {
		t.Errorf("grant after the lag: %v", err)
	}
}
