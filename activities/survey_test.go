package activities

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// readAndSurvey runs ReadEvent, then surveys each participant against the
// snapshot with what their runs recorded, and returns the surveys and the
// requests both sent.
func (e *emuEnv) readAndSurvey(ps []roster.Participant, prefetch bool) ([]wire.Survey, emulator.Stats) {
	e.t.Helper()
	e.control("POST", "/emulator/v1/stats/reset", nil, nil)
	known := make([]prefetched, len(ps))
	for i, p := range ps {
		known[i].Prior = e.record(p.Email).PriorRunsResult
		if prefetch { // as PrefetchSurvey does, before the read
			var err error
			if known[i], _, err = e.acts.prefetch(context.Background(), "cohort", p, known[i].Prior); err != nil {
				e.t.Fatalf("prefetch %s: %v", p.Email, err)
			}
		}
	}
	read, err := run[wire.ReadEventInput, wire.ReadEventResult](e.t, e.acts, func(a *Activities) any { return a.ReadEvent },
		wire.ReadEventInput{BatchID: "r1", Catalog: "cohort", PolicyID: e.spec.PolicyID})
	if err != nil {
		e.t.Fatalf("ReadEvent: %v", err)
	}
	b, err := e.acts.Roster.LoadBlob(read.Snapshot)
	if err != nil {
		e.t.Fatal(err)
	}
	snap, err := decodeSnapshot(b)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]wire.Survey, len(ps))
	for i, p := range ps {
		if out[i], _, err = e.acts.survey(context.Background(), snap, "cohort", p, &known[i]); err != nil {
			e.t.Fatalf("survey %s: %v", p.Email, err)
		}
	}
	var st emulator.Stats
	e.control("GET", "/emulator/v1/stats", nil, &st)
	return out, st
}

// The read sees every kind of drift an admin can cause between two runs,
// each on the participant it was caused on, and nothing on the intact
// ones; it writes nothing, and costs two reads a participant plus the
// lists' pages.
func TestEmulator_surveyFindsEveryDrift(t *testing.T) {
	e := setup(t, setupOpts{})
	e.acts.Roster = roster.Store{Dir: t.TempDir()}
	ctx := context.Background()
	names := []string{"intact", "inactive", "unassigned", "noschema", "nogrant", "purged", "noperm", "extra", "gone", "intact2"}
	ps := make([]roster.Participant, len(names))
	ids := map[string]string{}
	clusters := map[string]string{}
	for i, n := range names {
		ps[i] = participant(n + "@survey.example.com")
		u, s, c := e.provision(ps[i])
		rec := e.record(ps[i].Email)
		rec.Runs, rec.Schema, rec.ClusterID = 1, s.FullName, c.ClusterID
		ids[n], clusters[n] = u.UserID, c.ClusterID
	}
	email := func(n string) string { return n + "@survey.example.com" }
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("deactivate", e.a.Users.Patch(ctx, iam.PartialUpdate{Id: ids["inactive"],
		Schemas:    []iam.PatchSchema{iam.PatchSchemaUrnIetfParamsScimApiMessages20PatchOp},
		Operations: []iam.Patch{{Op: iam.PatchOpReplace, Path: "active", Value: false}}}))
	pid, _ := strconv.ParseInt(ids["unassigned"], 10, 64)
	must("unassign", e.a.WorkspaceAssignment.Delete(ctx, iam.DeleteWorkspaceAssignmentRequest{WorkspaceId: emuWorkspace, PrincipalId: pid}))
	must("drop schema", e.w.Schemas.Delete(ctx, catalog.DeleteSchemaRequest{FullName: e.record(email("noschema")).Schema, Force: true}))
	_, err := e.w.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "schema", FullName: e.record(email("nogrant")).Schema,
		Changes: []catalog.PermissionsChange{{Principal: email("nogrant"), Remove: []catalog.Privilege{catalog.PrivilegeUseSchema}}}})
	must("revoke", err)
	must("purge", e.w.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: clusters["purged"]}))
	_, err = e.w.Clusters.SetPermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: clusters["noperm"],
		AccessControlList: []compute.ClusterAccessControlRequest{}})
	must("drop permission", err)
	req := e.acts.clusterRequest(email("extra"), email("extra"), "cohort-extra-2", e.spec)
	extraID, err := e.acts.createCluster(ctx, req, "extra-2")
	must("extra cluster", err)
	must("delete user", e.a.Users.Delete(ctx, iam.DeleteAccountUserRequest{Id: ids["gone"]}))
	// Clusters an admin made with their tags are not Cohort's: no cluster
	// for purged (re-created by someone else), no extra one for intact2.
	remade := e.lookalike(email("purged"), "cohort-purged")
	copyID := e.lookalike(email("intact2"), "cohort-intact2-copy")

	got, st := e.readAndSurvey(ps, false)
	// Prefetched by what the runs recorded (as a reconcile's chunk does
	// while the batch reads), the survey is the same, and the reads are
	// not made twice.
	gotPre, stPre := e.readAndSurvey(ps, true)
	if !reflect.DeepEqual(gotPre, got) {
		t.Errorf("surveys with a prefetch differ:\n got %+v\nwant %+v", gotPre, got)
	}
	for i, id := range map[int]string{5: remade, 9: copyID} {
		if joined := strings.Join(got[i].Notes, "; "); !strings.Contains(joined, "cluster "+id+" (tagged for them, but not created by Cohort") {
			t.Errorf("%s: notes %q, want the admin's cluster %s said to be not Cohort's", names[i], joined, id)
		}
	}

	want := map[string][]string{
		"inactive":   {wire.DriftUserInactive},
		"unassigned": {wire.DriftNotAssigned},
		"noschema":   {wire.DriftSchemaMissing}, // its grants go with it: the repair grants on the new one
		"nogrant":    {wire.DriftGrantMissing},
		"purged":     {wire.DriftClusterGone},
		"noperm":     {wire.DriftPermissionMissing},
		"extra":      {wire.DriftExtraClusters},
		"gone":       {wire.DriftUserMissing},
	}
	for i, n := range names {
		if !reflect.DeepEqual(got[i].Drift, want[n]) {
			t.Errorf("%s: drift %v (%q), want %v", n, got[i].Drift, got[i].Details, want[n])
		}
	}
	if got[0].ClusterID != clusters["intact"] || got[0].UserID != ids["intact"] || got[0].Schema != e.record(email("intact")).Schema {
		t.Errorf("intact survey = %+v, want their user, schema and cluster", got[0])
	}
	if s := got[7]; s.ClusterID != clusters["extra"] || !reflect.DeepEqual(s.ExtraClusters, []string{extraID}) {
		t.Errorf("extra: cluster %s, extra %v; want the recorded %s kept as theirs and %s reported", s.ClusterID, s.ExtraClusters, clusters["extra"], extraID)
	}
	if n := st.WriteCount(); n != 0 {
		t.Errorf("the read and the survey sent %d mutating requests, want none: %v", n, st.Writes)
	}
	// Per participant at most one grants read (their schema) and one
	// permissions read (their cluster); the rest are list pages and the
	// shared securables, once.
	for way, st := range map[string]emulator.Stats{"read then survey": st, "prefetch, read, survey": stPre} {
		perParticipant := st.Requests["grants.get"]["200"] + st.Requests["permissions.get"]["200"]
		if perParticipant > int64(2*len(ps))+3 {
			t.Errorf("%s: grants and permissions reads = %d for %d participants, want at most 2 each plus the 3 shared securables", way, perParticipant, len(ps))
		}
		if n := st.WriteCount(); n != 0 {
			t.Errorf("%s: %d mutating requests, want none", way, n)
		}
	}
	// One page each for the whole event (the SDK's SCIM iterator asks once
	// more, and gets an empty page, before it stops).
	for list, pages := range map[string]int64{"scim.users.list": 2, "assignments.list": 1, "schemas.list": 1, "clusters.list": 1} {
		if n := st.Requests[list]["200"]; n > pages {
			t.Errorf("%s: %d requests, want at most %d for the whole event", list, n, pages)
		}
	}
	for _, per := range []string{"scim.users.get", "clusters.get", "schemas.get"} {
		if n := st.Requests[per]["200"]; n != 0 {
			t.Errorf("%s: %d requests, want none (the lists answer them)", per, n)
		}
	}
	if !strings.Contains(strings.Join(got[5].Details, ";"), clusters["purged"]) {
		t.Errorf("purged details %q do not name the cluster", got[5].Details)
	}
}

// An account user re-created by someone else with the participant's
// address is noted, not drift; an unmarked schema recorded by their runs
// is theirs; an offboarded participant is left alone without a read.
func TestEmulator_surveyNotesAndOffboarded(t *testing.T) {
	e := setup(t, setupOpts{})
	e.acts.Roster = roster.Store{Dir: t.TempDir()}
	p, q := participant("noted@survey.example.com"), participant("left@survey.example.com")
	for _, x := range []roster.Participant{p, q} {
		_, s, c := e.provision(x)
		rec := e.record(x.Email)
		rec.Runs, rec.Schema, rec.ClusterID = 1, s.FullName, c.ClusterID
	}
	e.record(p.Email).CreatedUserID = "999" // Cohort created another user, since deleted
	e.record(q.Email).Offboarded = true
	got, st := e.readAndSurvey([]roster.Participant{p, q}, false)
	if len(got[0].Drift) != 0 || len(got[0].Notes) != 1 || !strings.Contains(got[0].Notes[0], "not the one Cohort created") {
		t.Errorf("survey = %+v, want no drift and a note on the user", got[0])
	}
	if !got[1].Offboarded || len(got[1].Drift) != 0 {
		t.Errorf("offboarded survey = %+v, want left alone", got[1])
	}
	if n := st.Requests["grants.get"]["200"] + st.Requests["permissions.get"]["200"]; n > 2+3 {
		t.Errorf("%d grants and permissions reads, want those of the one participant not offboarded (2) and the shared (3)", n)
	}
}
