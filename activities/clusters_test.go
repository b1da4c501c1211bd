package activities

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/compute"

	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// The once-per-batch cluster listing (issue 18): a participant's clusters
// are found by the id Cohort recorded and the ids the batch's single
// listing found tagged for them, each read with one clusters/get; and only
// Cohort's clusters (marked, or the recorded one) are ever adopted or
// removed. Everything runs through the real SDK against the emulator.

// listing runs the batch's listing as a batch does (ReadEvent, clusters
// only; all of the workspace's for an offboard, else those under the
// policy) and LoadChunk over ps, and returns each participant's tagged ids.
func (e *emuEnv) listing(ps []roster.Participant, all bool) [][]string {
	e.t.Helper()
	if e.acts.Roster.Dir == "" {
		e.acts.Roster = roster.Store{Dir: e.t.TempDir()}
	}
	in := wire.ReadEventInput{BatchID: "b1", ClustersOnly: true, AllClusters: all}
	if !all {
		in.PolicyID = e.spec.PolicyID
	}
	read, err := run[wire.ReadEventInput, wire.ReadEventResult](e.t, e.acts, func(a *Activities) any { return a.ReadEvent }, in)
	if err != nil {
		e.t.Fatalf("ReadEvent: %v", err)
	}
	ref, err := e.acts.Roster.Put(ps)
	if err != nil {
		e.t.Fatal(err)
	}
	page, err := run[wire.LoadChunkInput, wire.LoadChunkResult](e.t, e.acts, func(a *Activities) any { return a.LoadChunk },
		wire.LoadChunkInput{Roster: ref, Limit: len(ps), Clusters: read.Snapshot})
	if err != nil {
		e.t.Fatalf("LoadChunk: %v", err)
	}
	if len(page.Tagged) != len(ps) {
		e.t.Fatalf("LoadChunk tagged %d participants, want %d", len(page.Tagged), len(ps))
	}
	return page.Tagged
}

// lookalike creates, as an admin would through the SDK, a cluster that
// looks like a participant's (same spec, under the policy, tagged with
// their email) but that Cohort did not create: it has no owner mark.
func (e *emuEnv) lookalike(email, name string) string {
	e.t.Helper()
	return e.adminCluster(email, email, name)
}

// others creates n clusters of other people's under the policy, as an
// admin would, whose single user is the admin: what a listing pages through.
func (e *emuEnv) others(n int) {
	e.t.Helper()
	for i := range n {
		e.adminCluster(fmt.Sprintf("other%d@example.com", i), emulator.AdminUserName, fmt.Sprintf("other-%d", i))
	}
}

// adminCluster creates, through the SDK, a cluster under the policy tagged
// for email, with no owner mark.
func (e *emuEnv) adminCluster(email, singleUser, name string) string {
	e.t.Helper()
	req := e.acts.clusterRequest(email, singleUser, name, e.spec)
	delete(req.CustomTags, wire.ClusterOwnerTag)
	w, err := e.w.Clusters.Create(context.Background(), req)
	if err != nil {
		e.t.Fatalf("admin creates a look-alike cluster for %s: %v", email, err)
	}
	return w.ClusterId
}

// removeClusters runs step remove_clusters as an offboard with the batch's
// listing does.
func (e *emuEnv) removeClusters(p roster.Participant, tagged []string) wire.RemoveClustersResult {
	e.t.Helper()
	rc, err := run[wire.RemoveClustersInput, wire.RemoveClustersResult](e.t, e.acts, func(a *Activities) any { return a.RemoveClusters },
		wire.RemoveClustersInput{Email: p.Email, Recorded: e.record(p.Email).ClusterID, Listed: true, Tagged: tagged})
	if err != nil {
		e.t.Fatalf("RemoveClusters %s: %v", p.Email, err)
	}
	return rc
}

// exists says whether the cluster id is still in the workspace.
func (e *emuEnv) exists(id string) bool {
	e.t.Helper()
	c, err := e.acts.getCluster(context.Background(), wire.StepRemoveClusters, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c != nil
}

// Offboarding N participants lists the clusters once for the batch (here
// two pages: others' clusters fill more than one) and reads each recorded
// cluster with one clusters/get; no participant lists anything. Listing
// per participant, as before, cost N times the pages.
func TestEmulator_offboardFindsClustersByID(t *testing.T) {
	e := setup(t, setupOpts{})
	const n = 6
	ps := make([]roster.Participant, n)
	ids := make([]string, n)
	for i := range ps {
		ps[i] = participant(fmt.Sprintf("leaver%d@example.com", i))
		_, _, c := e.provision(ps[i])
		e.record(ps[i].Email).ClusterID, ids[i] = c.ClusterID, c.ClusterID
	}
	e.others(110)    // the listing takes two pages of 100
	e.clusterCalls() // count from here

	tagged := e.listing(ps, true)
	for i, p := range ps {
		if !slices.Equal(tagged[i], []string{ids[i]}) {
			t.Errorf("%s: listing found %v, want [%s]", p.Email, tagged[i], ids[i])
		}
	}
	_, listPages, _ := e.clusterCalls()
	if listPages != 2 {
		t.Errorf("the batch's listing took %d clusters.list pages, want 2", listPages)
	}
	for i, p := range ps {
		rc := e.removeClusters(p, tagged[i])
		if !slices.Equal(rc.ClusterIDs, []string{ids[i]}) || len(rc.Kept) != 0 {
			t.Errorf("%s: removed %v, kept %q; want [%s] removed, nothing kept", p.Email, rc.ClusterIDs, rc.Kept, ids[i])
		}
	}
	gets, lists, _ := e.clusterCalls()
	if lists != 0 {
		t.Errorf("offboarding %d participants sent %d clusters.list pages, want 0 (the batch listed once)", n, lists)
	}
	if gets != n {
		t.Errorf("offboarding %d participants sent %d clusters/get, want %d (one per recorded cluster)", n, gets, n)
	}
	for i, id := range ids {
		if e.exists(id) {
			t.Errorf("%s's cluster %s is still there", ps[i].Email, id)
		}
	}
}

// A cluster an admin made with a participant's tag (a look-alike beside
// theirs), and one re-created by someone else after the recorded one was
// deleted, are not Cohort's: an offboard removes neither, and says it kept
// them; the participant's own cluster goes. The dry run agrees.
func TestEmulator_offboardKeepsClustersCohortDidNotCreate(t *testing.T) {
	e := setup(t, setupOpts{})
	ctx := context.Background()
	ana, ben := participant("ana@example.com"), participant("ben@example.com")
	_, _, ca := e.provision(ana)
	_, _, cb := e.provision(ben)
	e.record(ana.Email).ClusterID, e.record(ben.Email).ClusterID = ca.ClusterID, cb.ClusterID
	anaCopy := e.lookalike(ana.Email, "cohort-ana-copy")
	if err := e.w.Clusters.PermanentDelete(ctx, compute.PermanentDeleteCluster{ClusterId: cb.ClusterID}); err != nil {
		t.Fatal(err)
	}
	benAgain := e.lookalike(ben.Email, ben.ClusterName)

	tagged := e.listing([]roster.Participant{ana, ben}, true)
	ra := e.removeClusters(ana, tagged[0])
	rb := e.removeClusters(ben, tagged[1])
	if !slices.Equal(ra.ClusterIDs, []string{ca.ClusterID}) || len(ra.Kept) != 1 || !strings.Contains(ra.Kept[0], anaCopy) {
		t.Errorf("ana: removed %v, kept %q; want %s removed and %s kept", ra.ClusterIDs, ra.Kept, ca.ClusterID, anaCopy)
	}
	if len(rb.ClusterIDs) != 0 || len(rb.Kept) != 1 || !strings.Contains(rb.Kept[0], benAgain) {
		t.Errorf("ben: removed %v, kept %q; want nothing removed and %s kept", rb.ClusterIDs, rb.Kept, benAgain)
	}
	if !e.exists(anaCopy) || !e.exists(benAgain) {
		t.Errorf("look-alikes after offboard: %s exists %t, %s exists %t; want both kept", anaCopy, e.exists(anaCopy), benAgain, e.exists(benAgain))
	}
	if e.exists(ca.ClusterID) {
		t.Errorf("ana's own cluster %s is still there", ca.ClusterID)
	}

	// Without the listing (a batch started before it), the same verdicts.
	carl := participant("carl@example.com")
	_, _, cc := e.provision(carl)
	carlCopy := e.lookalike(carl.Email, "cohort-carl-copy")
	rc, err := run[wire.RemoveClustersInput, wire.RemoveClustersResult](t, e.acts, func(a *Activities) any { return a.RemoveClusters },
		wire.RemoveClustersInput{Email: carl.Email})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rc.ClusterIDs, []string{cc.ClusterID}) || !e.exists(carlCopy) {
		t.Errorf("carl (listing per participant): removed %v, look-alike exists %t; want his own removed, the look-alike kept", rc.ClusterIDs, e.exists(carlCopy))
	}
}

// Provisioning never adopts an admin's look-alike, with the batch's
// listing or without: it creates the participant's own cluster (marked).
func TestEmulator_provisioningDoesNotAdoptLookalike(t *testing.T) {
	for _, listed := range []bool{true, false} {
		t.Run(fmt.Sprintf("listed=%t", listed), func(t *testing.T) {
			e := setup(t, setupOpts{})
			p := participant("dora@example.com")
			if _, err := e.provisionUser(p); err != nil {
				t.Fatal(err)
			}
			copyID := e.lookalike(p.Email, p.ClusterName)
			in := wire.CreateClusterInput{Participant: p, Spec: e.spec, BatchID: "b1", Lookup: true}
			if listed {
				in.Listed, in.Tagged = true, e.listing([]roster.Participant{p}, false)[0]
				if !slices.Equal(in.Tagged, []string{copyID}) {
					t.Fatalf("listing found %v, want the look-alike %s", in.Tagged, copyID)
				}
			}
			c, err := run[wire.CreateClusterInput, wire.CreateClusterResult](t, e.acts, func(a *Activities) any { return a.CreateCluster }, in)
			if err != nil {
				t.Fatal(err)
			}
			if c.ClusterID == copyID || !c.Created {
				t.Errorf("got %+v, want a cluster of its own created, not the look-alike %s", c, copyID)
			}
			got, err := e.acts.getCluster(context.Background(), wire.StepCreateCluster, c.ClusterID)
			if err != nil || got == nil || got.CustomTags[wire.ClusterOwnerTag] != ownerMark(p.Email) {
				t.Errorf("created cluster %s: %+v (%v), want it marked %s", c.ClusterID, got, err, wire.ClusterOwnerTag)
			}
		})
	}
}

// Provisioning's adopt and retry paths with the batch's listing: an
// existing cluster of Cohort's is adopted by id (one clusters/get, no
// listing); a retried attempt after a create that failed once it was
// applied gets the same cluster back from the create's idempotency_token,
// with no listing either.
func TestEmulator_createClusterLookupListsNothing(t *testing.T) {
	e := setup(t, setupOpts{})
	e.others(3) // a listing would page through them

	// Adopt: the user and a cluster of Cohort's exist, unrecorded (a run
	// that failed after its create_cluster).
	p := participant("eli@example.com")
	if _, err := e.provisionUser(p); err != nil {
		t.Fatal(err)
	}
	first, err := e.provisionCluster(p, false)
	if err != nil {
		t.Fatal(err)
	}
	tagged := e.listing([]roster.Participant{p}, false)
	e.clusterCalls()
	c, err := run[wire.CreateClusterInput, wire.CreateClusterResult](t, e.acts, func(a *Activities) any { return a.CreateCluster },
		wire.CreateClusterInput{Participant: p, Spec: e.spec, BatchID: "b1", Lookup: true, Listed: true, Tagged: tagged[0]})
	if err != nil {
		t.Fatal(err)
	}
	gets, lists, creates := e.clusterCalls()
	if c.ClusterID != first.ClusterID || c.Created || gets != 1 || lists != 0 || creates != 0 {
		t.Errorf("adopt: got %+v after %d gets, %d list pages, %d creates; want %s adopted with 1 get, no list, no create",
			c, gets, lists, creates, first.ClusterID)
	}

	// Retry: the create was applied, its answer lost; the next attempt
	// (a lookup, nothing tagged in the batch's listing) creates again.
	q := participant("fil@example.com")
	if _, err := e.provisionUser(q); err != nil {
		t.Fatal(err)
	}
	e.fault("clusters.create", "applied_then_reset", 1)
	in := wire.CreateClusterInput{Participant: q, Spec: e.spec, BatchID: "b1", Listed: true}
	if _, err := run[wire.CreateClusterInput, wire.CreateClusterResult](t, e.acts, func(a *Activities) any { return a.CreateCluster }, in); err == nil {
		// The SDK may have retried the create itself, with the same token.
		t.Log("the first attempt's create succeeded on the SDK's own retry")
	}
	e.clusterCalls()
	in.Lookup = true // a retried attempt looks
	again, err := run[wire.CreateClusterInput, wire.CreateClusterResult](t, e.acts, func(a *Activities) any { return a.CreateCluster }, in)
	if err != nil {
		t.Fatal(err)
	}
	_, lists, _ = e.clusterCalls()
	if lists != 0 {
		t.Errorf("retry sent %d clusters.list pages, want 0", lists)
	}
	mine, err := e.acts.listTagged(context.Background(), wire.StepCreateCluster, q.Email, nil, "list")
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 || mine[0].ClusterId != again.ClusterID {
		t.Errorf("clusters tagged for %s: %d, want exactly the one the retry returned (%s)", q.Email, len(mine), again.ClusterID)
	}
}

// A create answered 200 without a cluster id (the cluster made all the
// same) is asked again with the same idempotency_token, which returns that
// cluster: one cluster, no listing.
func TestEmulator_createClusterWithoutIDAsksAgain(t *testing.T) {
	var dropped atomic.Bool
	e := setup(t, setupOpts{wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/2.1/clusters/create" || dropped.Load() {
				h.ServeHTTP(w, r)
				return
			}
			dropped.Store(true)
			h.ServeHTTP(httptest.NewRecorder(), r) // applied; its answer lost
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("{}"))
		})
	}})
	p := participant("gus@example.com")
	if _, err := e.provisionUser(p); err != nil {
		t.Fatal(err)
	}
	e.clusterCalls()
	c, err := run[wire.CreateClusterInput, wire.CreateClusterResult](t, e.acts, func(a *Activities) any { return a.CreateCluster },
		wire.CreateClusterInput{Participant: p, Spec: e.spec, BatchID: "b1", Listed: true})
	if err != nil {
		t.Fatal(err)
	}
	_, lists, creates := e.clusterCalls()
	if !dropped.Load() || lists != 0 || creates != 2 {
		t.Errorf("answer dropped %t, %d list pages, %d creates; want the id-less answer, then one more create and no listing", dropped.Load(), lists, creates)
	}
	mine, err := e.acts.listTagged(context.Background(), wire.StepCreateCluster, p.Email, nil, "list")
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 || mine[0].ClusterId != c.ClusterID || !c.Created {
		t.Errorf("clusters tagged for %s: %d; got %+v; want exactly the one created", p.Email, len(mine), c)
	}
}
