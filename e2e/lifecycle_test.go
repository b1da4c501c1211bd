package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

// lifecycleSize keeps the lifecycle scenarios short: the mechanisms, not the
// scale, are their subject (TestBatch covers 200).
const lifecycleSize = 20

// plainRoster writes an email,display_name roster of the given people.
func (s *scenario) plainRoster(name string, people [][2]string) string {
	var b strings.Builder
	b.WriteString("email,display_name\n")
	for _, p := range people {
		fmt.Fprintf(&b, "%s,%s\n", p[0], p[1])
	}
	return s.writeRoster(name, []byte(b.String()))
}

func people(n int, domain string) [][2]string {
	out := make([][2]string, n)
	for i := range out {
		out[i] = [2]string{fmt.Sprintf("p%02d@%s", i, domain), fmt.Sprintf("Participant %02d", i)}
	}
	return out
}

// tagged lists the clusters carrying each participant's tag, by email.
func (s *scenario) tagged(ctx context.Context, t *testing.T) map[string][]compute.ClusterDetails {
	t.Helper()
	w := s.emu.workspaceClient(t, emuToken)
	cs, err := w.Clusters.ListAll(ctx, compute.ListClustersRequest{})
	if err != nil {
		t.Fatalf("list clusters: %v", err)
	}
	out := map[string][]compute.ClusterDetails{}
	for _, c := range cs {
		if e := c.CustomTags[s.cfg.Cluster.TagKey]; e != "" {
			out[strings.ToLower(e)] = append(out[strings.ToLower(e)], c)
		}
	}
	return out
}

// TestReconcile: onboard, let the emulator purge the stopped clusters (one
// participant started theirs), reconcile: everyone has one cluster again with
// CAN_RESTART, the started one still runs; --every leaves a schedule, off
// removes it.
func TestReconcile(t *testing.T) {
	s := newScenario(t, "reconcile", "s9.e2e.example", 0, 9, "--cluster-retention", "60s")
	s.startWorker()
	ps := people(lifecycleSize, s.domain)
	file := s.plainRoster("event.csv", ps)
	batch, _ := s.submit(0, 3*time.Minute, "--wait", file)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before := s.tagged(ctx, t)
	runner := ps[0][0]
	if len(before[runner]) != 1 {
		t.Fatalf("%s has clusters %v after onboarding, want 1", runner, before[runner])
	}
	running := before[runner][0].ClusterId
	// The participant starts their own cluster (CAN_RESTART) once it has stopped.
	pw := s.emu.workspaceClient(t, s.emu.userToken(t, runner))
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := pw.Clusters.Start(ctx, compute.StartCluster{ClusterId: running})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s starts own cluster: %v", runner, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The others stay terminated and are purged after the retention.
	// (The emulator purges when clusters are read, as a listing does.)
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		n := 0
		for _, cs := range s.tagged(ctx, t) {
			n += len(cs)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clusters listed after 3m, want all but the running one purged", n)
		}
	}

	calls := s.emu.stats(t)
	r := s.starter(5*time.Minute, "reconcile", "--wait", batch)
	if r.code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	// Each cluster is read by the id Cohort recorded: only a participant
	// whose recorded cluster is gone (the purged ones) costs a listing.
	if lists := s.emu.stats(t).total("clusters.list") - calls.total("clusters.list"); lists > lifecycleSize-1 {
		t.Errorf("reconcile sent %d clusters/list pages, want at most %d (one per purged cluster, none for the running one)", lists, lifecycleSize-1)
	}
	if n := strings.Count(r.stdout, "re-created as"); n != lifecycleSize-1 {
		t.Errorf("reconcile lists %d re-created clusters, want %d:\n%s", n, lifecycleSize-1, r.stdout)
	}
	recBatch := batchIDFrom(t, r.stdout)
	if !strings.HasPrefix(recBatch, "reconcile-"+batch+"-") {
		t.Errorf("reconcile batch id %q, want reconcile-%s-<time>", recBatch, batch)
	}

	after := s.tagged(ctx, t)
	w := s.emu.workspaceClient(t, emuToken)
	for _, p := range ps {
		cs := after[p[0]]
		if len(cs) != 1 {
			t.Errorf("%s: %d clusters after reconcile, want 1", p[0], len(cs))
			continue
		}
		c := cs[0]
		if p[0] == runner {
			if c.ClusterId != running || (c.State != compute.StateRunning && c.State != compute.StatePending) {
				t.Errorf("%s: cluster %s %s after reconcile, want %s still running", p[0], c.ClusterId, c.State, running)
			}
		} else if c.State != compute.StateTerminating && c.State != compute.StateTerminated {
			t.Errorf("%s: re-created cluster %s is %s, want stopped", p[0], c.ClusterId, c.State)
		}
		perms, err := w.Clusters.GetPermissions(ctx, compute.GetClusterPermissionsRequest{ClusterId: c.ClusterId})
		if err != nil {
			t.Errorf("%s: permissions of %s: %v", p[0], c.ClusterId, err)
			continue
		}
		if got := aclString(perms); !strings.Contains(got, p[0]+":CAN_RESTART") {
			t.Errorf("%s: cluster %s ACL %s, want CAN_RESTART for the participant", p[0], c.ClusterId, got)
		}
	}

	// status and report show what changed.
	st := s.starter(time.Minute, "status", recBatch)
	if st.code != 0 || !strings.Contains(st.stdout, "changes:") {
		t.Errorf("status of the reconcile: want exit 0 and the changes\n%s", st)
	}
	rows := s.report(recBatch)
	changed := 0
	for _, row := range rows {
		if row["mode"] != "reconcile" {
			t.Errorf("report row %s: mode %q, want reconcile", row["email"], row["mode"])
		}
		if strings.Contains(row["changes"], "re-created") {
			changed++
		}
	}
	if changed != lifecycleSize-1 {
		t.Errorf("report shows %d re-created clusters, want %d", changed, lifecycleSize-1)
	}

	// --every leaves a schedule; off removes it.
	r = s.starter(time.Minute, "reconcile", "--every", "24h", batch)
	if r.code != 0 || !strings.Contains(r.stdout, "created schedule cohort-reconcile/"+batch) {
		t.Fatalf("reconcile --every: %s", r)
	}
	desc, err := s.tc.ScheduleClient().GetHandle(ctx, "cohort-reconcile/"+batch).Describe(ctx)
	if err != nil {
		t.Fatalf("describe schedule: %v", err)
	}
	if iv := desc.Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != 24*time.Hour {
		t.Errorf("schedule intervals %+v, want every 24h", iv)
	}
	if r = s.starter(time.Minute, "reconcile", "--every", "12h", batch); !strings.Contains(r.stdout, "updated schedule") {
		t.Errorf("reconcile --every again: %s", r)
	}
	if r = s.starter(time.Minute, "reconcile", "--every", "off", batch); r.code != 0 || !strings.Contains(r.stdout, "removed schedule") {
		t.Errorf("reconcile --every off: %s", r)
	}
}

// TestOffboard: onboard (one participant's user existed before the event),
// dry run (no mutating request), offboard (checked through REST), a second
// offboard (no mutating request), then five onboarded again.
func TestOffboard(t *testing.T) {
	s := newScenario(t, "offboard", "s10.e2e.example", 0, 10)
	staff := "staff@" + s.domain
	var seeded struct {
		ID string `json:"id"`
	}
	s.emu.control(t, http.MethodPost, "/users", map[string]any{"user_name": staff, "display_name": "Staff Member", "assigned": true}, &seeded)
	s.startWorker()
	ps := append(people(lifecycleSize-1, s.domain), [2]string{staff, "Staff Member"})
	file := s.plainRoster("event.csv", ps)
	batch, _ := s.submit(0, 3*time.Minute, "--wait", file)

	// Dry run: reads only.
	before := s.emu.stats(t)
	r := s.starter(3*time.Minute, "offboard", "--dry-run", batch)
	if r.code != 0 {
		t.Fatalf("offboard --dry-run: %s", r)
	}
	after := s.emu.stats(t)
	assertNoWrites(t, before, after)
	// The batch's read answers every participant's plan (issue 18): the
	// lists are read once for the dry run, not once per participant.
	for _, ep := range []string{"scim.users.list", "assignments.list", "clusters.list"} {
		n := after.total(ep) - before.total(ep)
		t.Logf("dry run of %d participants: %s %d requests", len(ps), ep, n)
		if n > 4 {
			t.Errorf("dry run of %d participants: %s %d requests, want the read's pages only (at most 4)", len(ps), ep, n)
		}
	}
	for _, p := range ps {
		line := lineOf(r.stdout, "  "+p[0]+": ")
		switch {
		case line == "":
			t.Errorf("dry run lists nothing for %s:\n%s", p[0], r.stdout)
		case p[0] == staff:
			if !strings.Contains(line, "would keep the workspace assignment") || !strings.Contains(line, "would keep the account user") ||
				!strings.Contains(line, "would terminate and permanently delete cluster") {
				t.Errorf("dry run for the pre-existing user: %s", line)
			}
		default:
			for _, want := range []string{"would remove the workspace assignment", "would terminate and permanently delete cluster",
				"would revoke", "would deactivate the account user"} {
				if !strings.Contains(line, want) {
					t.Errorf("dry run for %s lacks %q: %s", p[0], want, line)
				}
			}
		}
	}

	before = s.emu.stats(t)
	r = s.starter(5*time.Minute, "offboard", "--wait", batch)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("done: %d ok, 0 failed", len(ps))) {
		t.Fatalf("offboard: %s", r)
	}
	// The batch lists the clusters once; each participant's cluster is read
	// by the id Cohort recorded (issue 18), never by a listing of their own.
	if n := s.emu.stats(t).total("clusters.list") - before.total("clusters.list"); n > 1 {
		t.Errorf("offboard of %d participants sent %d clusters.list pages, want the batch's one", len(ps), n)
	}
	offBatch := batchIDFrom(t, r.stdout)
	s.checkOffboarded(ps, staff, seeded.ID)
	if rows := s.report(offBatch); len(rows) != len(ps) {
		t.Errorf("offboard report has %d rows, want %d", len(rows), len(ps))
	}

	// A second offboard changes nothing.
	before = s.emu.stats(t)
	if r = s.starter(5*time.Minute, "offboard", "--wait", batch); r.code != 0 {
		t.Fatalf("second offboard: %s", r)
	}
	assertNoWrites(t, before, s.emu.stats(t))
	s.checkOffboarded(ps, staff, seeded.ID)

	// Five of them come back for a second event.
	again := ps[:5]
	s.submit(0, 3*time.Minute, "--wait", s.plainRoster("again.csv", again))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := s.emu.accountClient(t)
	assigned := s.assignedIDs(ctx)
	clusters := s.tagged(ctx, t)
	for _, p := range again {
		us, err := a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "` + p[0] + `"`})
		if err != nil || len(us) != 1 {
			t.Fatalf("%s: users %v (%v), want 1", p[0], us, err)
		}
		if !us[0].Active {
			t.Errorf("%s onboarded again: user inactive, want active", p[0])
		}
		if !assigned[us[0].Id] {
			t.Errorf("%s onboarded again: not assigned to the workspace", p[0])
		}
		if len(clusters[p[0]]) != 1 {
			t.Errorf("%s onboarded again: %d clusters, want 1", p[0], len(clusters[p[0]]))
		}
	}
}

// checkOffboarded checks through REST that the participants have no
// assignment, cluster or grant and an inactive user, and that staff (whose
// user existed before the event) kept user and assignment.
func (s *scenario) checkOffboarded(ps [][2]string, staff, staffID string) {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := s.emu.accountClient(t)
	w := s.emu.workspaceClient(t, emuToken)
	assigned := s.assignedIDs(ctx)
	clusters := s.tagged(ctx, t)
	naming := s.cfg.RosterNaming()
	for _, p := range ps {
		us, err := a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "` + p[0] + `"`})
		if err != nil || len(us) != 1 {
			t.Errorf("%s: users %v (%v), want 1", p[0], us, err)
			continue
		}
		u := us[0]
		if p[0] == staff {
			if u.Id != staffID || !u.Active || !assigned[u.Id] {
				t.Errorf("pre-existing %s: id %s active %t assigned %t, want %s, active and assigned", p[0], u.Id, u.Active, assigned[u.Id], staffID)
			}
		} else {
			if u.Active {
				t.Errorf("%s: user active after offboard, want inactive", p[0])
			}
			if assigned[u.Id] {
				t.Errorf("%s: still assigned to the workspace", p[0])
			}
		}
		if cs := clusters[p[0]]; len(cs) != 0 {
			t.Errorf("%s: clusters %v after offboard, want none", p[0], cs)
		}
		sch, _ := naming.Derive(p[0])
		schema := s.cfg.Catalog.Name + "." + sch
		for _, sec := range [][2]string{{"catalog", s.cfg.Catalog.Name}, {"schema", schema}} {
			g, err := w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: sec[0], FullName: sec[1], Principal: p[0]})
			if err != nil {
				t.Errorf("%s: grants on %s %s: %v", p[0], sec[0], sec[1], err)
				continue
			}
			for _, pa := range g.PrivilegeAssignments {
				if strings.EqualFold(pa.Principal, p[0]) && len(pa.Privileges) > 0 {
					t.Errorf("%s: still holds %v on %s %s", p[0], pa.Privileges, sec[0], sec[1])
				}
			}
		}
	}
}

// assignedIDs lists the principals assigned to the workspace.
func (s *scenario) assignedIDs(ctx context.Context) map[string]bool {
	s.t.Helper()
	as, err := s.emu.accountClient(s.t).WorkspaceAssignment.ListAll(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: emuWorkspace})
	if err != nil {
		s.t.Fatalf("list assignments: %v", err)
	}
	out := map[string]bool{}
	for _, a := range as {
		if a.Principal != nil && len(a.Permissions) > 0 {
			out[fmt.Sprint(a.Principal.PrincipalId)] = true
		}
	}
	return out
}

// assertNoWrites fails if any request reached a mutating endpoint between
// two stats readings.
func assertNoWrites(t *testing.T, before, after stats) {
	t.Helper()
	for ep, codes := range after.Writes {
		var n int64
		for code, c := range codes {
			n += c - before.Writes[ep][code]
		}
		if n != 0 {
			t.Errorf("%s: %d mutating requests, want 0", ep, n)
		}
	}
}

// lineOf is the first line of out that starts with prefix ("" if none).
func lineOf(out, prefix string) string {
	lines := strings.Split(out, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
	if i < 0 {
		return ""
	}
	return lines[i]
}
