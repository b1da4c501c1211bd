package activities

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// An offboard's dry run against the batch's read says exactly what the
// dry run with live reads says, for every kind of participant: one Cohort
// created, staff who existed before (and keep what they held), a user
// re-created by an admin with another id, one with an extra cluster tagged
// for them under no policy, one never provisioned; with and without
// --drop-schemas and --delete-users. Against the read it sends no SCIM
// lookup, no assignments list, no cluster listing and no schema read per
// participant, and writes nothing.
func TestEmulator_offboardPlanFromTheRead(t *testing.T) {
	const staff = "staff@plan.example.com"
	e := setup(t, setupOpts{emulator: emulator.Options{Users: []emulator.SeedUser{{UserName: staff, Assigned: true}}}})
	e.acts.Roster = roster.Store{Dir: t.TempDir()}
	ctx := context.Background()

	created, again, extra, ghost := participant("created@plan.example.com"), participant("again@plan.example.com"),
		participant("extra@plan.example.com"), participant("ghost@plan.example.com")
	st := participant(staff)
	e.grantAsAdmin("catalog", "cohort", staff, catalog.PrivilegeUseCatalog)
	e.grantAsAdmin("schema", "main.shared", staff, catalog.PrivilegeUseSchema, catalog.PrivilegeSelect)
	for _, p := range []roster.Participant{created, st, again, extra} {
		_, s, c := e.provision(p)
		rec := e.record(p.Email)
		rec.Runs, rec.Schema, rec.ClusterID, rec.UserCreated = 1, s.FullName, c.ClusterID, rec.CreatedUserID != ""
	}
	if e.record(staff).CreatedUserID != "" {
		t.Fatal("the seeded staff user was created, want adopted")
	}

	// again: offboarded (user deleted, schema dropped), then re-created by
	// an admin, assigned and granted the catalog.
	cohortsID := e.record(again.Email).CreatedUserID
	e.offboard(again, wire.OffboardOptions{DeleteUsers: true, DropSchemas: true})
	admins, err := e.a.Users.Create(ctx, iam.User{UserName: again.Email, Emails: []iam.ComplexValue{{Value: again.Email, Primary: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if admins.Id == cohortsID {
		t.Fatalf("the re-created user has Cohort's deleted user's id %s", cohortsID)
	}
	var pid int64
	for _, c := range admins.Id {
		pid = pid*10 + int64(c-'0')
	}
	if _, err := e.a.WorkspaceAssignment.Update(ctx, iam.UpdateWorkspaceAssignments{WorkspaceId: emuWorkspace, PrincipalId: pid,
		Permissions: []iam.WorkspacePermission{iam.WorkspacePermissionUser}}); err != nil {
		t.Fatal(err)
	}
	e.grantAsAdmin("catalog", "cohort", again.Email, catalog.PrivilegeUseCatalog)

	// extra: a second cluster tagged for them, under no policy (an
	// offboard removes it too; a reconcile's read would not see it).
	req := e.acts.clusterRequest(extra.Email, extra.Email, "cohort-extra-free", e.spec)
	req.PolicyId = ""
	freeID, err := e.acts.createCluster(ctx, req, "extra-free")
	if err != nil {
		t.Fatalf("cluster under no policy: %v", err)
	}

	// created: beside theirs, a look-alike an admin made with their tag
	// (not Cohort's: an offboard keeps it).
	copyID := e.lookalike(created.Email, "cohort-created-copy")

	ps := []roster.Participant{created, st, again, extra, ghost}
	optionSets := []wire.OffboardOptions{{DryRun: true}, {DryRun: true, DropSchemas: true}, {DryRun: true, DropSchemas: true, DeleteUsers: true}}
	key := func(p roster.Participant, o wire.OffboardOptions) string { return fmt.Sprintf("%s %+v", p.Email, o) }
	plan := func(v offboardView, p roster.Participant, o wire.OffboardOptions) wire.PlanOffboardResult {
		t.Helper()
		r, err := e.acts.planOffboard(ctx, v, wire.PlanOffboardInput{Participant: p, Options: o}, e.record(p.Email).PriorRunsResult)
		if err != nil {
			t.Fatalf("plan %s (%+v): %v", p.Email, o, err)
		}
		return r
	}
	live := map[string]wire.PlanOffboardResult{}
	for _, o := range optionSets {
		for _, p := range ps {
			live[key(p, o)] = plan(liveView{e.acts}, p, o)
		}
	}

	read, err := run[wire.ReadEventInput, wire.ReadEventResult](t, e.acts, func(a *Activities) any { return a.ReadEvent },
		wire.ReadEventInput{BatchID: "off1", AllClusters: true})
	if err != nil {
		t.Fatalf("ReadEvent: %v", err)
	}
	snap, err := e.acts.loadSnapshot(wire.StepPlanOffboard, read.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	e.control("POST", "/emulator/v1/stats/reset", nil, nil)
	for _, o := range optionSets {
		for _, p := range ps {
			k := key(p, o)
			if got := plan(snapshotView{a: e.acts, snap: snap}, p, o); !reflect.DeepEqual(got, live[k]) {
				t.Errorf("%s: the plan from the read\n  %q (user %s)\nwant the live plan\n  %q (user %s)",
					k, got.Changes, got.UserID, live[k].Changes, live[k].UserID)
			}
		}
	}
	var stats emulator.Stats
	e.control("GET", "/emulator/v1/stats", nil, &stats)
	for _, list := range []string{"scim.users.list", "scim.users.get", "assignments.list", "clusters.list", "clusters.get", "schemas.get", "schemas.list"} {
		if n := stats.Requests[list]["200"] + stats.Requests[list]["404"]; n != 0 {
			t.Errorf("%s: %d requests for %d plans, want none (the read answers them)", list, n, len(ps)*len(optionSets))
		}
	}
	// Per plan at most one grants read: their own schema's (none when it is gone).
	if n := stats.Requests["grants.get"]["200"] + stats.Requests["grants.get"]["404"]; n > int64(len(ps)*len(optionSets)) {
		t.Errorf("grants.get: %d requests for %d plans, want at most one each", n, len(ps)*len(optionSets))
	}
	if n := stats.WriteCount(); n != 0 {
		t.Errorf("the plans from the read sent %d mutating requests, want none: %v", n, stats.Writes)
	}

	// The plans say what they must, not merely the same thing twice.
	say := func(p roster.Participant, o wire.OffboardOptions, wants ...string) {
		t.Helper()
		joined := strings.Join(live[key(p, o)].Changes, "; ")
		for _, w := range wants {
			if !strings.Contains(joined, w) {
				t.Errorf("%s (%+v): plan %q lacks %q", p.Email, o, joined, w)
			}
		}
	}
	all := optionSets[2]
	say(created, all, "would remove the workspace assignment", "would terminate and permanently delete cluster "+e.record(created.Email).ClusterID,
		"would revoke", "would drop schema "+e.record(created.Email).Schema, "would delete the account user "+e.record(created.Email).CreatedUserID,
		"would keep cluster "+copyID+" (tagged for them, but not created by Cohort")
	if joined := strings.Join(live[key(created, all)].Changes, "; "); strings.Contains(joined, "permanently delete cluster "+copyID) {
		t.Errorf("plan would delete the admin's look-alike %s: %q", copyID, joined)
	}
	say(created, optionSets[0], "would deactivate the account user")
	say(st, all, "would keep the workspace assignment", "USE_CATALOG on catalog cohort (held before the event)",
		"SELECT,USE_SCHEMA on schema main.shared (held before the event)", "would keep the account user")
	say(again, all, "would keep the workspace assignment of account user "+admins.Id, "would keep the account user "+admins.Id,
		"not the one Cohort created, "+cohortsID)
	say(extra, optionSets[0], "would terminate and permanently delete cluster "+e.record(extra.Email).ClusterID,
		"would terminate and permanently delete cluster "+freeID)
	if got := live[key(ghost, all)].Changes; !slices.Equal(got, []string{"nothing to remove"}) {
		t.Errorf("never provisioned: plan %q, want nothing to remove", got)
	}
}

// A chunk's plan refuses a read that lists only the clusters under the
// policy: it would miss clusters an offboard removes.
func TestEmulator_offboardPlanNeedsEveryCluster(t *testing.T) {
	e := setup(t, setupOpts{})
	e.acts.Roster = roster.Store{Dir: t.TempDir()}
	read, err := run[wire.ReadEventInput, wire.ReadEventResult](t, e.acts, func(a *Activities) any { return a.ReadEvent },
		wire.ReadEventInput{BatchID: "r1", Catalog: "cohort", PolicyID: e.spec.PolicyID})
	if err != nil {
		t.Fatalf("ReadEvent: %v", err)
	}
	_, err = run[wire.PlanOffboardChunkInput, wire.PlanOffboardChunkResult](t, e.acts, func(a *Activities) any { return a.PlanOffboardChunk },
		wire.PlanOffboardChunkInput{Snapshot: read.Snapshot, Limit: 1, WorkflowIDs: []string{"participant-x"}})
	if err == nil || errorType(err) != wire.ErrInvalidInput || !strings.Contains(err.Error(), "every cluster") {
		t.Errorf("PlanOffboardChunk on a policy-only read: %v, want an invalid-input error that says it needs every cluster", err)
	}
}
