package activities

// Offboarding removes exactly what Cohort added, identified by id, and no
// two participants share a schema: tests through the real SDK against the
// emulator.

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// held reads, through the Grants API, what principal holds directly on a
// securable (sorted).
func (e *emuEnv) held(typ, name, principal string) []string {
	e.t.Helper()
	g, err := e.w.Grants.Get(context.Background(), catalog.GetGrantRequest{SecurableType: typ, FullName: name, Principal: principal})
	if err != nil {
		e.t.Fatalf("grants of %s on %s %s: %v", principal, typ, name, err)
	}
	var out []string
	for _, pa := range g.PrivilegeAssignments {
		if strings.EqualFold(pa.Principal, principal) {
			out = append(out, privilegeNames(pa.Privileges)...)
		}
	}
	slices.Sort(out)
	return out
}

// grantAsAdmin gives principal privileges on a securable, as an admin does.
func (e *emuEnv) grantAsAdmin(typ, name, principal string, privs ...catalog.Privilege) {
	e.t.Helper()
	_, err := e.w.Grants.Update(context.Background(), catalog.UpdatePermissions{SecurableType: typ, FullName: name,
		Changes: []catalog.PermissionsChange{{Principal: principal, Add: privs}}})
	if err != nil {
		e.t.Fatalf("grant %v on %s %s to %s: %v", privs, typ, name, principal, err)
	}
}

// A staff member who held USE_CATALOG, USE_SCHEMA and SELECT before the
// event keeps them after the offboard; what Cohort added (their schema's
// privileges, what they lacked on the shared data) is revoked, and the dry
// run says which are kept and why.
func TestEmulator_offboardKeepsWhatStaffHeld(t *testing.T) {
	const staff = "staff@example.com"
	e := setup(t, setupOpts{emulator: emulator.Options{Users: []emulator.SeedUser{{UserName: staff, Assigned: true}}}})
	e.grantAsAdmin("catalog", "cohort", staff, catalog.PrivilegeUseCatalog)
	e.grantAsAdmin("catalog", "main", staff, catalog.PrivilegeUseCatalog)
	e.grantAsAdmin("schema", "main.shared", staff, catalog.PrivilegeUseSchema, catalog.PrivilegeSelect)
	p := participant(staff)
	u, s, _ := e.provision(p)
	if u.Created {
		t.Fatal("the seeded user was created, want adopted")
	}
	if got := e.held("schema", s.FullName, staff); len(got) == 0 {
		t.Fatalf("staff holds nothing on their event schema %s after provisioning", s.FullName)
	}

	rec := e.record(staff)
	plan, err := e.acts.planRevoke(context.Background(), liveView{e.acts}, wire.StepPlanOffboard, &iam.User{Id: u.UserID, UserName: staff},
		wire.RevokeGrantsInput{Email: staff, Catalog: "cohort", Schema: p.Schema, Grants: rec.Grants, GrantsRecorded: true})
	if err != nil {
		t.Fatal(err)
	}
	if kept := strings.Join(plan.kept, "; "); !strings.Contains(kept, "SELECT,USE_SCHEMA on schema main.shared (held before the event)") ||
		!strings.Contains(kept, "USE_CATALOG on catalog cohort (held before the event)") {
		t.Errorf("the plan keeps %q, want the shared data and the catalog said held before the event", plan.kept)
	}

	changes := e.offboard(p, wire.OffboardOptions{})
	t.Logf("changes: %q", changes)
	for _, sec := range []struct{ typ, name, want string }{
		{"catalog", "cohort", "USE_CATALOG"},
		{"catalog", "main", "USE_CATALOG"},
		{"schema", "main.shared", "SELECT,USE_SCHEMA"},
		{"schema", s.FullName, ""},
	} {
		if got := strings.Join(e.held(sec.typ, sec.name, staff), ","); got != sec.want {
			t.Errorf("staff holds %q on %s %s after the offboard, want %q", got, sec.typ, sec.name, sec.want)
		}
	}
}

// A user re-created by an admin (another id) after an offboard that deleted
// Cohort's user is not Cohort's: a second offboard with --delete-users
// leaves it, its assignment and its grants alone and sends no mutating
// request.
func TestEmulator_offboardLeavesUserWithAnotherID(t *testing.T) {
	e := setup(t, setupOpts{})
	p := participant("again@example.com")
	u, _, _ := e.provision(p)
	if !u.Created {
		t.Fatal("the participant's user was adopted, want created")
	}
	e.offboard(p, wire.OffboardOptions{DeleteUsers: true, DropSchemas: true})

	ctx := context.Background()
	admins, err := e.a.Users.Create(ctx, iam.User{UserName: p.Email, Emails: []iam.ComplexValue{{Value: p.Email, Primary: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if admins.Id == u.UserID {
		t.Fatalf("the re-created user has the deleted user's id %s", u.UserID)
	}
	var pid int64
	for _, c := range admins.Id {
		pid = pid*10 + int64(c-'0')
	}
	if _, err := e.a.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: emuWorkspace, PrincipalId: pid,
		Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}}); err != nil {
		t.Fatal(err)
	}
	e.grantAsAdmin("catalog", "cohort", p.Email, catalog.PrivilegeUseCatalog)

	before := e.writes()
	changes := e.offboard(p, wire.OffboardOptions{DeleteUsers: true, DropSchemas: true})
	if n := e.writes() - before; n != 0 {
		t.Errorf("second offboard sent %d mutating requests, want 0 (changes %q)", n, changes)
	}
	joined := strings.Join(changes, "; ")
	for _, want := range []string{"kept the workspace assignment of account user " + admins.Id, "kept the account user " + admins.Id,
		"not the one Cohort created, " + u.UserID} {
		if !strings.Contains(joined, want) {
			t.Errorf("changes %q lack %q", changes, want)
		}
	}
	us, err := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "` + p.Email + `"`})
	if err != nil || len(us) != 1 || us[0].Id != admins.Id || !us[0].Active {
		t.Errorf("users after the second offboard: %+v (%v), want the admin's %s, active", us, err, admins.Id)
	}
	if ok, err := e.acts.assigned(ctx, wire.StepRemoveAssignment, admins.Id); err != nil || !ok {
		t.Errorf("admin's user assigned = %v (%v), want true", ok, err)
	}
	if got := e.held("catalog", "cohort", p.Email); !slices.Equal(got, []string{"USE_CATALOG"}) {
		t.Errorf("admin's user holds %v on the catalog, want USE_CATALOG", got)
	}
}

// RemoveUser and RemoveAssignment leave a user whose id is not the one
// Cohort created alone, whatever user_created says.
func TestEmulator_removeStepsCompareIDs(t *testing.T) {
	const email = "other@example.com"
	e := setup(t, setupOpts{emulator: emulator.Options{Users: []emulator.SeedUser{{UserName: email, Assigned: true}}}})
	ra, err := run[wire.RemoveAssignmentInput, wire.RemoveAssignmentResult](t, e.acts, func(a *Activities) any { return a.RemoveAssignment },
		wire.RemoveAssignmentInput{Email: email, UserCreated: true, CreatedUserID: "123"})
	if err != nil || !strings.Contains(ra.Change, "not the one Cohort created, 123") {
		t.Errorf("RemoveAssignment = %+v, %v; want kept, not the one Cohort created", ra, err)
	}
	ru, err := run[wire.RemoveUserInput, wire.RemoveUserResult](t, e.acts, func(a *Activities) any { return a.RemoveUser },
		wire.RemoveUserInput{Email: email, UserCreated: true, CreatedUserID: "123", Delete: true})
	if err != nil || !strings.Contains(ru.Change, "kept the account user "+ru.UserID) {
		t.Errorf("RemoveUser = %+v, %v; want kept", ru, err)
	}
	// A result of an earlier version: user_created, no id. Cohort cannot
	// tell which user it created: kept.
	ru, err = run[wire.RemoveUserInput, wire.RemoveUserResult](t, e.acts, func(a *Activities) any { return a.RemoveUser },
		wire.RemoveUserInput{Email: email, UserCreated: true, Delete: true})
	if err != nil || !strings.Contains(ru.Change, "kept the account user") {
		t.Errorf("RemoveUser without an id = %+v, %v; want kept", ru, err)
	}
	us, err := e.a.Users.ListAll(context.Background(), iam.ListAccountUsersRequest{Filter: `userName eq "` + email + `"`})
	if err != nil || len(us) != 1 || !us[0].Active {
		t.Errorf("user after the remove steps: %+v (%v), want one, active", us, err)
	}
	if ok, err := e.acts.assigned(context.Background(), wire.StepRemoveAssignment, us[0].Id); err != nil || !ok {
		t.Errorf("assigned = %v (%v), want true", ok, err)
	}
}

// Two addresses that derive the same schema name, on two days: the second
// gets <name>_2, each holds privileges only on their own, and a rerun of
// either keeps its name. The offboard of one drops only theirs.
func TestEmulator_schemaCollision(t *testing.T) {
	e := setup(t, setupOpts{})
	naming := roster.DefaultNaming()
	first, second := "taro.yamada@d9062.example.com", "taro.yamada@d90626.example.com"
	s1, c1 := naming.Derive(first)
	s2, c2 := naming.Derive(second)
	if s1 != s2 {
		t.Fatalf("%s and %s derive %s and %s: want the same schema name for this test", first, second, s1, s2)
	}
	pa := roster.Participant{Email: first, DisplayName: "Taro A", Schema: s1, ClusterName: c1}
	pb := roster.Participant{Email: second, DisplayName: "Taro B", Schema: s2, ClusterName: c2}

	_, a1, _ := e.provision(pa) // day one
	_, b1, _ := e.provision(pb) // day two
	if want := "cohort." + s1; a1.FullName != want || a1.Renamed != "" {
		t.Errorf("first: schema %+v, want %s, not renamed", a1, want)
	}
	if want := "cohort." + s1 + "_2"; b1.FullName != want || !strings.Contains(b1.Renamed, "cohort."+s1+" is another participant's") {
		t.Errorf("second: schema %+v, want %s, renamed because the first is another participant's", b1, want)
	}
	for _, tc := range []struct {
		schema, owner, other string
	}{{a1.FullName, first, second}, {b1.FullName, second, first}} {
		sg, err := e.w.Grants.Get(context.Background(), catalog.GetGrantRequest{SecurableType: "schema", FullName: tc.schema})
		if err != nil {
			t.Fatal(err)
		}
		for _, pa := range sg.PrivilegeAssignments {
			if !strings.EqualFold(pa.Principal, tc.owner) {
				t.Errorf("schema %s grants %v to %s, want only %s", tc.schema, pa.Privileges, pa.Principal, tc.owner)
			}
		}
		if got := e.held("schema", tc.schema, tc.owner); len(got) == 0 {
			t.Errorf("%s holds nothing on their schema %s", tc.owner, tc.schema)
		}
	}

	// Reruns (a retry, a second submit after an offboard) find the same
	// schemas; a reconcile names the recorded one.
	for _, tc := range []struct {
		p        roster.Participant
		recorded string
		want     string
	}{{pa, "", a1.FullName}, {pb, "", b1.FullName}, {pb, b1.FullName, b1.FullName}, {pa, a1.FullName, a1.FullName}} {
		got, err := run[wire.CreateSchemaInput, wire.CreateSchemaResult](t, e.acts, func(a *Activities) any { return a.CreateSchema },
			wire.CreateSchemaInput{Participant: tc.p, Catalog: "cohort", Recorded: tc.recorded})
		if err != nil || got.FullName != tc.want || got.Created {
			t.Errorf("rerun of %s (recorded %q) = %+v, %v; want %s adopted", tc.p.Email, tc.recorded, got, err, tc.want)
		}
	}

	// The second participant's offboard drops only theirs.
	e.offboard(pb, wire.OffboardOptions{DropSchemas: true})
	if _, err := e.w.Schemas.GetByFullName(context.Background(), b1.FullName); err == nil {
		t.Errorf("schema %s still there after its participant's offboard", b1.FullName)
	}
	if _, err := e.w.Schemas.GetByFullName(context.Background(), a1.FullName); err != nil {
		t.Errorf("schema %s of the other participant: %v, want it kept", a1.FullName, err)
	}
}

// A schema that exists unmarked (made by an earlier version, or by someone
// else) is adopted only when the participant's runs recorded it; a schema
// marked for someone else is never dropped.
func TestEmulator_unmarkedSchema(t *testing.T) {
	e := setup(t, setupOpts{})
	ctx := context.Background()
	if _, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "cohort", Name: "legacy"}); err != nil {
		t.Fatal(err)
	}
	p := participant("legacy@example.com")
	got, err := run[wire.CreateSchemaInput, wire.CreateSchemaResult](t, e.acts, func(a *Activities) any { return a.CreateSchema },
		wire.CreateSchemaInput{Participant: p, Catalog: "cohort", Recorded: "cohort.legacy"})
	if err != nil || got.FullName != "cohort.legacy" || got.Created || got.Renamed != "" {
		t.Errorf("recorded unmarked schema: %+v, %v; want cohort.legacy adopted", got, err)
	}
	q := participant("newcomer@example.com")
	q.Schema = "legacy"
	got, err = run[wire.CreateSchemaInput, wire.CreateSchemaResult](t, e.acts, func(a *Activities) any { return a.CreateSchema },
		wire.CreateSchemaInput{Participant: q, Catalog: "cohort"})
	if err != nil || got.FullName != "cohort.legacy_2" || !got.Created || !strings.Contains(got.Renamed, "not created by Cohort for this participant") {
		t.Errorf("unrecorded unmarked schema: %+v, %v; want cohort.legacy_2 created, renamed", got, err)
	}
	// Dropping: the newcomer's run never recorded cohort.legacy, and
	// legacy_2 is not p's.
	for _, tc := range []struct {
		in   wire.DropSchemaInput
		kept string
	}{
		{wire.DropSchemaInput{Catalog: "cohort", Schema: "legacy", Email: q.Email}, "not marked as this participant's"},
		{wire.DropSchemaInput{Catalog: "cohort", Schema: "legacy_2", Email: p.Email, Recorded: true}, "marked as another participant's"},
	} {
		d, err := run[wire.DropSchemaInput, wire.DropSchemaResult](t, e.acts, func(a *Activities) any { return a.DropSchema }, tc.in)
		if err != nil || d.Dropped || !strings.Contains(d.Kept, tc.kept) {
			t.Errorf("DropSchema(%+v) = %+v, %v; want kept, %s", tc.in, d, err, tc.kept)
		}
	}
}

// Collision names stay within the naming max length.
func TestSchemaCandidates(t *testing.T) {
	long := strings.Repeat("a", 59) + "_1234"
	got := schemaCandidates(long, 64)
	if len(got) != schemaMaxTries || got[0] != long {
		t.Fatalf("candidates %q, want %d starting with the name", got, schemaMaxTries)
	}
	for _, n := range got {
		if len(n) > 64 {
			t.Errorf("candidate %q is %d long, want at most 64", n, len(n))
		}
	}
	if got[1] != long[:62]+"_2" {
		t.Errorf("second candidate %q, want %q", got[1], long[:62]+"_2")
	}
	if short := schemaCandidates("x", 64); short[8] != "x_9" {
		t.Errorf("candidates of x: %q", short)
	}
}

// SCIM filter values escape backslashes as well as quotes.
func TestScimString(t *testing.T) {
	for in, want := range map[string]string{
		`a@b.c`:      `"a@b.c"`,
		`o"neil@b.c`: `"o\"neil@b.c"`,
		`a\b@b.c`:    `"a\\b@b.c"`,
		`a\"b@b.c`:   `"a\\\"b@b.c"`,
	} {
		if got := scimString(in); got != want {
			t.Errorf("scimString(%q) = %s, want %s", in, got, want)
		}
	}
}

// A user whose userName holds a backslash is found (the emulator's filter
// parser unescapes as SCIM does).
func TestEmulator_lookupUserWithBackslash(t *testing.T) {
	const odd = `a\b"c@example.com`
	e := setup(t, setupOpts{emulator: emulator.Options{Users: []emulator.SeedUser{{UserName: `ab"c@example.com`}, {UserName: odd}}}})
	u, err := e.acts.lookupUser(context.Background(), wire.StepRemoveUser, odd)
	if err != nil || u == nil || u.UserName != odd {
		t.Fatalf("lookupUser(%q) = %+v, %v; want that user", odd, u, err)
	}
}
