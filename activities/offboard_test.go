package activities

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// offboard runs the five offboarding steps as the participant workflow
// does, with what the participant's runs recorded, and records the end.
func (e *emuEnv) offboard(p roster.Participant, opts wire.OffboardOptions) []string {
	e.t.Helper()
	rec := e.record(p.Email)
	cat, schema, recorded := wire.ParticipantSchema(rec.Schema, "cohort", p.Schema)
	var changes []string
	ra, err := run[wire.RemoveAssignmentInput, wire.RemoveAssignmentResult](e.t, e.acts, func(a *Activities) any { return a.RemoveAssignment },
		wire.RemoveAssignmentInput{Email: p.Email, UserCreated: rec.UserCreated, CreatedUserID: rec.CreatedUserID})
	if err != nil {
		e.t.Fatalf("RemoveAssignment: %v", err)
	}
	changes = append(changes, ra.Change)
	rc, err := run[wire.RemoveClustersInput, wire.RemoveClustersResult](e.t, e.acts, func(a *Activities) any { return a.RemoveClusters },
		wire.RemoveClustersInput{Email: p.Email})
	if err != nil {
		e.t.Fatalf("RemoveClusters: %v", err)
	}
	changes = append(changes, rc.ClusterIDs...)
	rg, err := run[wire.RevokeGrantsInput, wire.RevokeGrantsResult](e.t, e.acts, func(a *Activities) any { return a.RevokeGrants },
		wire.RevokeGrantsInput{Email: p.Email, Catalog: cat, Schema: schema, CreatedUserID: rec.CreatedUserID,
			Grants: rec.Grants, GrantsRecorded: rec.GrantsRecorded})
	if err != nil {
		e.t.Fatalf("RevokeGrants: %v", err)
	}
	changes = append(changes, rg.Revoked...)
	for _, k := range rg.Kept {
		changes = append(changes, "kept "+k)
	}
	rec.Grants, rec.GrantsRecorded = nil, true
	if opts.DropSchemas {
		d, err := run[wire.DropSchemaInput, wire.DropSchemaResult](e.t, e.acts, func(a *Activities) any { return a.DropSchema },
			wire.DropSchemaInput{Catalog: cat, Schema: schema, Email: p.Email, Recorded: recorded})
		if err != nil {
			e.t.Fatalf("DropSchema: %v", err)
		}
		if d.Dropped {
			changes = append(changes, "dropped "+d.FullName)
		}
		changes = append(changes, d.Kept)
	}
	ru, err := run[wire.RemoveUserInput, wire.RemoveUserResult](e.t, e.acts, func(a *Activities) any { return a.RemoveUser },
		wire.RemoveUserInput{Email: p.Email, UserCreated: rec.UserCreated, CreatedUserID: rec.CreatedUserID, Delete: opts.DeleteUsers})
	if err != nil {
		e.t.Fatalf("RemoveUser: %v", err)
	}
	changes = append(changes, ru.Change)
	var out []string
	for _, c := range changes {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func (e *emuEnv) writes() int64 {
	var st emulator.Stats
	e.control("GET", "/emulator/v1/stats", nil, &st)
	return st.WriteCount()
}

// An offboard removes assignment, a pinned running cluster, grants and the
// schema, and deactivates the user; a second one sends no mutating request.
func TestEmulator_offboard(t *testing.T) {
	e := setup(t, setupOpts{})
	p := participant("leaver@example.com")
	u, s, c := e.provision(p)
	ctx := context.Background()
	if err := e.w.Clusters.Pin(ctx, compute.PinCluster{ClusterId: c.ClusterID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Clusters.WaitGetClusterTerminated(ctx, c.ClusterID, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Clusters.Start(ctx, compute.StartCluster{ClusterId: c.ClusterID}); err != nil {
		t.Fatal(err)
	}
	changes := e.offboard(p, wire.OffboardOptions{DropSchemas: true})
	t.Logf("changes: %q", changes)

	us, err := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "` + p.Email + `"`})
	if err != nil || len(us) != 1 || us[0].Active {
		t.Errorf("user after offboard: %+v (%v), want one, inactive", us, err)
	}
	if ok, err := e.acts.assigned(ctx, wire.StepRemoveAssignment, u.UserID); err != nil || ok {
		t.Errorf("assigned after offboard = %v (%v), want false", ok, err)
	}
	if cs, _ := e.acts.taggedClusters(ctx, wire.StepRemoveClusters, p.Email); len(cs) != 0 {
		t.Errorf("clusters after offboard: %d, want none", len(cs))
	}
	if _, err := e.w.Schemas.GetByFullName(ctx, s.FullName); err == nil {
		t.Errorf("schema %s still there", s.FullName)
	}
	g, err := e.w.Grants.Get(ctx, catalog.GetGrantRequest{SecurableType: "catalog", FullName: "cohort", Principal: p.Email})
	if err != nil || len(g.PrivilegeAssignments) != 0 {
		t.Errorf("grants on the catalog after offboard: %+v (%v), want none", g, err)
	}

	before := e.writes()
	if again := e.offboard(p, wire.OffboardOptions{DropSchemas: true}); len(again) != 0 {
		t.Errorf("second offboard changed %q, want nothing", again)
	}
	if n := e.writes() - before; n != 0 {
		t.Errorf("second offboard sent %d mutating requests, want 0", n)
	}

	// Onboarded again: the same user, reactivated.
	u2, _, _ := e.provision(p)
	if u2.UserID != u.UserID || !u2.Reactivated {
		t.Errorf("onboarded again: %+v, want user %s reactivated", u2, u.UserID)
	}
}

// A user who existed before the event keeps identity and assignment; what
// the event gave them goes.
func TestEmulator_offboardPreexisting(t *testing.T) {
	e := setup(t, setupOpts{emulator: emulator.Options{Users: []emulator.SeedUser{{UserName: "staff@example.com", Assigned: true}}}})
	p := participant("staff@example.com")
	u, _, _ := e.provision(p)
	if u.Created {
		t.Fatal("the seeded user was created, want adopted")
	}
	changes := e.offboard(p, wire.OffboardOptions{DeleteUsers: true})
	if joined := strings.Join(changes, "; "); !strings.Contains(joined, "kept the workspace assignment") || !strings.Contains(joined, "kept the account user") {
		t.Errorf("changes %q, want the assignment and the user kept", changes)
	}
	ctx := context.Background()
	us, err := e.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{Filter: `userName eq "staff@example.com"`})
	if err != nil || len(us) != 1 || !us[0].Active {
		t.Errorf("pre-existing user after offboard: %+v (%v), want one, active", us, err)
	}
	if ok, err := e.acts.assigned(ctx, wire.StepRemoveAssignment, u.UserID); err != nil || !ok {
		t.Errorf("pre-existing user assigned = %v (%v), want true", ok, err)
	}
	if cs, _ := e.acts.taggedClusters(ctx, wire.StepRemoveClusters, p.Email); len(cs) != 0 {
		t.Errorf("clusters after offboard: %d, want none", len(cs))
	}
}
