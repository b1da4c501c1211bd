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
// malformed rosters that must start nothing.
package e2e
