// Package e2e holds Cohort's end-to-end tests. They run real processes: a
// Temporal CLI dev server persisted to SQLite, the Databricks emulator, the
// worker and the starter CLI, all built from this module, on free loopback
// ports, and check the outcome through the emulator's REST endpoints with the
// real databricks-sdk-go clients, the way one would check a real workspace.
//
//	go test ./e2e/ -count=1 -v
//
// The Temporal CLI is found as $TEMPORAL_CLI, else `temporal` on PATH, else
// $(go env GOPATH)/bin/temporal; install it with
//
//	go install github.com/temporalio/cli/cmd/temporal@v1.5.1
//
// Scenarios (see issue 4): a batch of 200; the worker killed with SIGKILL three
// times mid-batch; the Temporal server stopped and restarted mid-batch; an
// emulator injecting faults, including writes applied and then answered 503; a
// daily delta; permanent failures retried after the cause is removed; and
// malformed rosters that must start nothing; step retries that repeat only
// the failing step; the worker's /metrics; two workers on Temporal with
// PostgreSQL, one killed (TEMPORAL_POSTGRES_TEST=1, as make test sets it);
// offboards that keep what Cohort did not add (staff's earlier grants, a user
// an admin re-created); two addresses deriving one schema name on two days.
//
// Each scenario has its own emulator and Temporal namespace, so most run two
// at a time (t.Parallel, make test sets -parallel 3): their time is mostly
// waiting (heartbeat timeouts, restarts, rate limits), not CPU. The one that
// restarts a Temporal server has a server of its own. The PostgreSQL one runs
// alone, before the others: a busy machine would blur its rate figures.
package e2e
