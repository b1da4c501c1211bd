package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/config"
)

// addConfig layers one more config file (YAML text) over the scenario's,
// for the worker and the starter alike.
func (s *scenario) addConfig(name, yaml string) {
	s.t.Helper()
	path := filepath.Join(s.dir, name)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.configs = append(s.configs, path)
	cfg, err := config.Load(s.configs...)
	if err != nil {
		s.t.Fatalf("load the test's config: %v", err)
	}
	s.cfg = cfg
}

// heldBy reads, through the Grants API, what principal holds directly on a
// securable, sorted and joined by commas.
func (s *scenario) heldBy(ctx context.Context, typ, name, principal string) string {
	s.t.Helper()
	w := s.emu.workspaceClient(s.t, emuToken)
	g, err := w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: typ, FullName: name, Principal: principal})
	if err != nil {
		s.t.Fatalf("grants of %s on %s %s: %v", principal, typ, name, err)
	}
	var out []string
	for _, pa := range g.PrivilegeAssignments {
		if strings.EqualFold(pa.Principal, principal) {
			out = append(out, privileges(pa.Privileges)...)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// grantAsAdmin gives principal privileges on a securable, as an admin does.
func (s *scenario) grantAsAdmin(ctx context.Context, typ, name, principal string, privs ...catalog.Privilege) {
	s.t.Helper()
	w := s.emu.workspaceClient(s.t, emuToken)
	if _, err := w.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: typ, FullName: name,
		Changes: []catalog.PermissionsChange{{Principal: principal, Add: privs}}}); err != nil {
		s.t.Fatalf("grant %v on %s %s to %s: %v", privs, typ, name, principal, err)
	}
}

// usersNamed lists the account users with a userName.
func (s *scenario) usersNamed(ctx context.Context, name string) []iam.User {
	s.t.Helper()
	us, err := s.emu.accountClient(s.t).Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "` + name + `"`})
	if err != nil {
		s.t.Fatalf("list users %s: %v", name, err)
	}
	return us
}

// TestOffboard_keepsWhatCohortDidNotAdd: a staff member who held
// USE_CATALOG, USE_SCHEMA and SELECT (and the workspace assignment) before
// the event keeps them through an offboard with --delete-users; an admin
// then re-creates one participant's user (a new id), assigns and grants it;
// a second offboard --delete-users leaves that user and everything it holds
// alone and sends no mutating request.
func TestOffboard_keepsWhatCohortDidNotAdd(t *testing.T) {
	s := newScenario(t, "offboard-ids", "ids.e2e.example", 0, 14)
	const shared = "cohort.shared_data"
	s.addConfig("shared.yaml", "catalog:\n  shared_grants:\n    - {securable: schema, name: "+shared+", privileges: [USE_SCHEMA, SELECT]}\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w := s.emu.workspaceClient(t, emuToken)
	if _, err := w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "cohort", Name: "shared_data"}); err != nil {
		t.Fatalf("the admin's shared schema: %v", err)
	}
	staff := "staff@" + s.domain
	var seeded struct {
		ID string `json:"id"`
	}
	s.emu.control(t, http.MethodPost, "/users", map[string]any{"user_name": staff, "display_name": "Staff Member", "assigned": true}, &seeded)
	s.grantAsAdmin(ctx, "catalog", "cohort", staff, catalog.PrivilegeUseCatalog)
	s.grantAsAdmin(ctx, "schema", shared, staff, catalog.PrivilegeUseSchema, catalog.PrivilegeSelect)
	s.startWorker()
	ps := append(people(4, s.domain), [2]string{staff, "Staff Member"})
	file := s.plainRoster("event.csv", ps)
	batch, _ := s.submit(0, 3*time.Minute, "--wait", file)
	staffSchema, _ := s.cfg.RosterNaming().Derive(staff)
	staffSchema = "cohort." + staffSchema
	if got := s.heldBy(ctx, "schema", staffSchema, staff); got == "" {
		t.Fatalf("staff holds nothing on their event schema %s", staffSchema)
	}

	// The dry run says what staff keep, and why.
	r := s.starter(3*time.Minute, "offboard", "--dry-run", "--delete-users", batch)
	if r.code != 0 {
		t.Fatalf("offboard --dry-run: %s", r)
	}
	line := lineOf(r.stdout, "  "+staff+": ")
	for _, want := range []string{"would keep USE_CATALOG on catalog cohort (held before the event)",
		"would keep SELECT,USE_SCHEMA on schema " + shared + " (held before the event)", "would revoke ", "on schema " + staffSchema,
		"would keep the workspace assignment", "would keep the account user " + seeded.ID} {
		if !strings.Contains(line, want) {
			t.Errorf("dry run for staff lacks %q: %s", want, line)
		}
	}

	r = s.starter(5*time.Minute, "offboard", "--wait", "--delete-users", batch)
	if r.code != 0 || !strings.Contains(r.stdout, "done: 5 ok, 0 failed") {
		t.Fatalf("offboard: %s", r)
	}
	checkStaff := func(when string) {
		t.Helper()
		us := s.usersNamed(ctx, staff)
		if len(us) != 1 || us[0].Id != seeded.ID || !us[0].Active || !s.assignedIDs(ctx)[seeded.ID] {
			t.Errorf("%s: staff users %+v, want %s, active and assigned", when, us, seeded.ID)
		}
		for _, sec := range []struct{ typ, name, want string }{
			{"catalog", "cohort", "USE_CATALOG"}, {"schema", shared, "SELECT,USE_SCHEMA"}, {"schema", staffSchema, ""},
		} {
			if got := s.heldBy(ctx, sec.typ, sec.name, staff); got != sec.want {
				t.Errorf("%s: staff holds %q on %s %s, want %q", when, got, sec.typ, sec.name, sec.want)
			}
		}
	}
	checkStaff("after the offboard")
	for _, p := range ps[:4] {
		if us := s.usersNamed(ctx, p[0]); len(us) != 0 {
			t.Errorf("%s: users %v after offboard --delete-users, want none", p[0], userIDs(us))
		}
	}

	// An admin re-creates one participant's user: another id, assigned,
	// granted the catalog and the shared data.
	back := ps[0][0]
	admins, err := s.emu.accountClient(t).Users.Create(ctx, iam.User{UserName: back, Emails: []iam.ComplexValue{{Value: back, Primary: true}}})
	if err != nil {
		t.Fatalf("re-create %s: %v", back, err)
	}
	pid, _ := strconv.ParseInt(admins.Id, 10, 64)
	if _, err := s.emu.accountClient(t).WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: emuWorkspace,
		PrincipalId: pid, Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}}); err != nil {
		t.Fatalf("assign %s: %v", back, err)
	}
	s.grantAsAdmin(ctx, "catalog", "cohort", back, catalog.PrivilegeUseCatalog)
	s.grantAsAdmin(ctx, "schema", shared, back, catalog.PrivilegeSelect)

	before := s.emu.stats(t)
	r = s.starter(5*time.Minute, "offboard", "--wait", "--delete-users", batch)
	if r.code != 0 {
		t.Fatalf("second offboard: %s", r)
	}
	assertNoWrites(t, before, s.emu.stats(t))
	checkStaff("after the second offboard")
	us := s.usersNamed(ctx, back)
	if len(us) != 1 || us[0].Id != admins.Id || !us[0].Active || !s.assignedIDs(ctx)[admins.Id] {
		t.Errorf("re-created %s: users %+v, want %s, active and assigned", back, us, admins.Id)
	}
	if got := s.heldBy(ctx, "catalog", "cohort", back); got != "USE_CATALOG" {
		t.Errorf("re-created %s holds %q on the catalog, want USE_CATALOG", back, got)
	}
	if got := s.heldBy(ctx, "schema", shared, back); got != "SELECT" {
		t.Errorf("re-created %s holds %q on %s, want SELECT", back, got, shared)
	}
	for _, row := range s.report(batchIDFrom(t, r.stdout)) {
		if row["email"] == back && !strings.Contains(row["changes"], "not the one Cohort created") {
			t.Errorf("report row of %s: changes %q, want the user kept as not the one Cohort created", back, row["changes"])
		}
	}
}

// TestSchemaCollision: two addresses that derive the same schema name,
// submitted on two days, each end with a schema only they hold; the second
// is renamed (<name>_2), the report says so, and a reconcile keeps it.
func TestSchemaCollision(t *testing.T) {
	s := newScenario(t, "collision", "collision.e2e.example", 0, 15)
	first, second := "taro.yamada@d9062.example.com", "taro.yamada@d90626.example.com"
	naming := s.cfg.RosterNaming()
	name, _ := naming.Derive(first)
	if other, _ := naming.Derive(second); other != name {
		t.Fatalf("%s and %s derive %s and %s: want one name for this test", first, second, name, other)
	}
	s.startWorker()
	day1, _ := s.submit(0, 3*time.Minute, "--wait", s.plainRoster("day1.csv", [][2]string{{first, "Taro Yamada"}}))
	day2, _ := s.submit(0, 3*time.Minute, "--wait", s.plainRoster("day2.csv", [][2]string{{second, "Taro Yamada"}}))

	want := map[string]string{first: "cohort." + name, second: "cohort." + name + "_2"}
	check := func(batch, email, when string) {
		t.Helper()
		rows := s.report(batch)
		if len(rows) != 1 || rows[0]["email"] != email || rows[0]["schema"] != want[email] {
			t.Errorf("%s: report of %s = %v, want %s with schema %s", when, batch, rows, email, want[email])
		}
	}
	check(day1, first, "day one")
	check(day2, second, "day two")
	if rows := s.report(day2); len(rows) == 1 && !strings.Contains(rows[0]["changes"], "instead of cohort."+name) {
		t.Errorf("day two's report does not say the schema was renamed: changes %q", rows[0]["changes"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	checkPrivate := func(when string) {
		t.Helper()
		w := s.emu.workspaceClient(t, emuToken)
		for email, schema := range want {
			g, err := w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: "schema", FullName: schema})
			if err != nil {
				t.Errorf("%s: grants on %s: %v", when, schema, err)
				continue
			}
			var holders []string
			for _, pa := range g.PrivilegeAssignments {
				if len(pa.Privileges) > 0 {
					holders = append(holders, strings.ToLower(pa.Principal))
				}
			}
			if !slices.Equal(holders, []string{email}) {
				t.Errorf("%s: schema %s is held by %v, want %s only", when, schema, holders, email)
			}
		}
	}
	checkPrivate("after day two")

	// From then on the second keeps the renamed schema.
	r := s.starter(5*time.Minute, "reconcile", "--wait", day2)
	if r.code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	check(batchIDFrom(t, r.stdout), second, "reconcile")
	checkPrivate("after the reconcile")
}
