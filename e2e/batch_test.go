package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/compute"

	"github.com/cohort-dev/cohort/roster"
)

// batchSize is the size of the scenarios' batches: with chunk_size 60 and
// chunks_per_run 2 it spans four chunks and continues as new once.
const batchSize = 200

// TestBatch is scenario 1: a batch of 200 leaves every participant with
// exactly their environment, the report lists them all, re-submitting the
// file changes nothing, and a participant can start their own cluster but
// not someone else's.
func TestBatch(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "batch", "s1.e2e.example", 0, 1)
	s.startWorker()
	file := s.writeRoster("day1.csv", roster.Synthesize(batchSize, 1, s.domain))
	want := s.participants(file)
	if len(want) != batchSize {
		t.Fatalf("roster has %d participants, want %d", len(want), batchSize)
	}

	start := time.Now()
	batch, r := s.submit(0, 5*time.Minute, "--wait", file)
	t.Logf("batch of %d done in %s", batchSize, time.Since(start).Round(time.Second))
	if !strings.Contains(r.stdout, "done: 200 ok, 0 failed") {
		t.Errorf("submit --wait stdout lacks %q:\n%s", "done: 200 ok, 0 failed", r.stdout)
	}

	found := s.expectAllOK(batch, want)

	t.Run("resubmit", func(t *testing.T) {
		before := s.emu.stats(t)
		again, r := s.submit(0, time.Minute, "--wait", file)
		if again != batch {
			t.Errorf("re-submitted batch id = %s, want %s", again, batch)
		}
		if !strings.Contains(r.stdout, "nothing new started") {
			t.Errorf("re-submit stdout lacks %q:\n%s", "nothing new started", r.stdout)
		}
		after := s.emu.stats(t)
		assertObjects(t, after.Objects, before.Objects)
		assertNoMutations(t, before, after)
	})

	t.Run("participant can restart own cluster only", func(t *testing.T) {
		me, other := want[0], want[1]
		w := s.emu.workspaceClient(t, s.emu.userToken(t, me.Email))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := w.Clusters.Start(ctx, compute.StartCluster{ClusterId: found[me.Email].ClusterID}); err != nil {
			t.Fatalf("%s starts own cluster %s: %v, want success (CAN_RESTART)", me.Email, found[me.Email].ClusterID, err)
		}
		c, err := w.Clusters.GetByClusterId(ctx, found[me.Email].ClusterID)
		if err != nil {
			t.Fatalf("%s gets own cluster: %v", me.Email, err)
		}
		if c.State != compute.StatePending && c.State != compute.StateRunning {
			t.Errorf("own cluster after start: state %s, want PENDING or RUNNING", c.State)
		}
		_, err = w.Clusters.Start(ctx, compute.StartCluster{ClusterId: found[other.Email].ClusterID})
		if !errors.Is(err, apierr.ErrPermissionDenied) {
			t.Errorf("%s starts %s's cluster: err %v, want PERMISSION_DENIED", me.Email, other.Email, err)
		}
	})
}

func assertObjects(t *testing.T, got, want objectCounts) {
	t.Helper()
	if got != want {
		t.Errorf("emulator objects: %+v, want %+v", got, want)
	}
}

// mutations are the endpoints that change what a participant has.
var mutations = []string{
	"scim.users.create", "scim.users.delete", "assignments.put", "assignments.delete",
	"catalogs.create", "schemas.create", "schemas.delete", "grants.update",
	"clusters.create", "clusters.delete", "clusters.permanent_delete", "clusters.start",
	"permissions.update", "permissions.set",
}

// assertNoMutations fails if any mutating endpoint was called between two
// stats readings.
func assertNoMutations(t *testing.T, before, after stats) {
	t.Helper()
	for _, ep := range mutations {
		if d := after.total(ep) - before.total(ep); d != 0 {
			t.Errorf("%s called %d times, want 0", ep, d)
		}
	}
}
