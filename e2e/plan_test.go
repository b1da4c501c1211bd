package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	emu "github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
)

// TestPlan: `starter plan` on a ready workspace (exit 0) and on one that is
// not (exit 1, every blocking problem listed), an invalid roster (exit 2),
// none of them writing to the workspace; then a batch submitted to the
// unready workspace fails at setup with the reason and creates nothing.
func TestPlan(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "plan", "plan.e2e.example", 0, 11)
	file := s.writeRoster("roster.csv", roster.Synthesize(5, 11, s.domain))
	ps := s.participants(file)
	// One participant exists in the account already (an Entra-synced user).
	s.emu.control(t, "POST", "/users", map[string]any{"user_name": ps[2].Email, "display_name": "Synced"}, nil)
	s.startWorker()

	writes := func() int64 { return emu.Stats(s.emu.stats(t)).WriteCount() }
	before := writes()

	t.Run("ready", func(t *testing.T) {
		r := s.starter(3*time.Minute, "plan", file)
		t.Logf("plan:\n%s", r.stdout)
		if r.code != 0 {
			t.Fatalf("exit %d, want 0\n%s", r.code, r)
		}
		for _, want := range []string{
			"plan for " + file + ": 5 participants", "4 new", "0 already provisioned", "1 exist in the account but were not provisioned by Cohort",
			ps[2].Email, "ok    account_admin", "ok    catalog ", "ok    catalog_rights", "ok    cluster_spec", "ok    node_type", "ok    user_cap",
			"ok    schema_cap", "ready: starter submit",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q\n%s", want, r)
			}
		}
		if n := writes() - before; n != 0 {
			t.Errorf("plan made %d mutating requests, want 0", n)
		}
	})

	t.Run("provisioned ones are told apart", func(t *testing.T) {
		if _, r := s.submit(0, 3*time.Minute, "--wait", file); !strings.Contains(r.stdout, "done: 5 ok, 0 failed") {
			t.Fatalf("submit --wait: %s", r)
		}
		mark := writes()
		r := s.starter(3*time.Minute, "plan", file)
		if r.code != 0 || !strings.Contains(r.stdout, "0 new") || !strings.Contains(r.stdout, "5 already provisioned by Cohort") ||
			!strings.Contains(r.stdout, "0 exist in the account but were not provisioned") || !strings.Contains(r.stdout, "this roster adds 0") {
			t.Errorf("exit %d, want 0 with 5 provisioned, none new or pre-existing, nothing to add\n%s", r.code, r)
		}
		if n := writes() - mark; n != 0 {
			t.Errorf("plan made %d mutating requests, want 0", n)
		}
	})

	t.Run("invalid roster", func(t *testing.T) {
		bad := s.writeRoster("bad.csv", []byte("email,display_name\nnot-an-email,X\n"))
		r := s.starter(time.Minute, "plan", bad)
		if r.code != 2 || !strings.Contains(r.stderr, "bad.csv:2") {
			t.Errorf("exit %d, want 2 naming bad.csv:2\n%s", r.code, r)
		}
	})

	// The same workspace, but Cohort configured for a catalog nobody made
	// (the metastore has no root storage) and a node type the policy does
	// not allow: two blocking problems.
	unready := filepath.Join(s.dir, "unready.yaml")
	if err := os.WriteFile(unready, []byte("catalog:\n  name: event\ncluster:\n  node_type: Standard_E8ds_v4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file = s.writeRoster("roster2.csv", roster.Synthesize(5, 12, s.domain))
	s.killWorker()
	s.configs = append(s.configs, unready)
	s.startWorker()
	before = writes()

	t.Run("not ready", func(t *testing.T) {
		r := s.starter(3*time.Minute, "plan", file)
		t.Logf("plan:\n%s", r.stdout)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.code, r)
		}
		for _, want := range []string{"FAIL  catalog ", "metastore has no root storage", "fix: set catalog.storage_root",
			"FAIL  node_type", "Standard_E8ds_v4: rule node_type_id is one of", "skip  catalog_rights", "ok    account_admin",
			"not ready: 2 blocking problem(s)"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q\n%s", want, r)
			}
		}
		if n := writes() - before; n != 0 {
			t.Errorf("plan made %d mutating requests, want 0", n)
		}
	})

	t.Run("batch fails at setup and creates nothing", func(t *testing.T) {
		objects := s.emu.stats(t).Objects
		_, r := s.submit(1, 3*time.Minute, "--wait", file)
		for _, want := range []string{"did not finish", "workspace not ready, 2 blocking problem(s)", "catalog: catalog event does not exist",
			"node_type: node type Standard_E8ds_v4: rule node_type_id is one of", "fix: "} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("submit --wait stdout lacks %q\n%s", want, r)
			}
		}
		after := s.emu.stats(t)
		if n := emu.Stats(after).WriteCount() - before; n != 0 {
			t.Errorf("the batch made %d mutating requests, want 0: %v", n, after.Writes)
		}
		assertObjects(t, after.Objects, objects)
		st := s.starter(time.Minute, "status", batchIDFrom(t, r.stdout))
		if st.code != 1 || !strings.Contains(st.stdout, "workspace not ready") {
			t.Errorf("status: exit %d, want 1 with the reason\n%s", st.code, st)
		}
	})
}
