package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cohort-dev/cohort/roster"
)

// TestStepRetries: transient 500s on grant updates and cluster permission
// updates are retried by those steps alone. Before each step was its own
// activity, a failed grant re-ran the whole access activity: the SCIM create
// again (a 409) and a SCIM lookup, the scarcest APIs of all. Now every
// participant costs exactly one SCIM create, none conflicts, no user is
// looked up (only batch setup lists the account's users, once), and each
// gets exactly one cluster.
func TestStepRetries(t *testing.T) {
	t.Parallel()
	const n, faults = 60, 15
	s := newScenario(t, "steps", "s9.e2e.example", 0, 9)
	for _, ep := range []string{"grants.update", "permissions.update"} {
		s.emu.queueFaults(t, ep, "500", faults)
	}
	s.startWorker()
	file := s.writeRoster("roster.csv", roster.Synthesize(n, 9, s.domain))
	want := s.participants(file)

	batch, r := s.submit(0, 6*time.Minute, "--wait", file)
	if done := fmt.Sprintf("done: %d ok, 0 failed", n); !strings.Contains(r.stdout, done) {
		t.Errorf("submit --wait stdout lacks %q:\n%s", done, r.stdout)
	}
	if p := s.emu.pendingFaults(t); len(p) != 0 {
		t.Errorf("queued faults not served: %v", p)
	}
	st := s.emu.stats(t)
	for _, ep := range []string{"grants.update", "permissions.update"} {
		if got := st.Requests[ep]["500"]; got != faults {
			t.Errorf("%s answered 500 %d times, want the %d queued", ep, got, faults)
		}
	}
	if got := st.Requests["scim.users.create"]; len(got) != 1 || got["201"] != n {
		t.Errorf("scim.users.create answers = %v, want exactly %d x 201 (one create per participant, no 409)", got, n)
	}
	// Batch setup lists the account's users once (room under the user cap);
	// no participant looked a user up.
	if got := st.total("scim.users.list"); got > 1 {
		t.Errorf("scim.users.list called %d times, want at most the setup's 1 (no user looked up)", got)
	}
	if got := st.Requests["clusters.create"]; len(got) != 1 || got["200"] != n {
		t.Errorf("clusters.create answers = %v, want exactly %d x 200 (one per participant)", got, n)
	}
	s.expectAllOK(batch, want)
}
