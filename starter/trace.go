package main

import (
	"fmt"
	"time"
)

// processStart is when the starter's own code began to run (package
// initialisation, a few milliseconds after the process was started).
var processStart = time.Now()

// traceEnv names the environment variable that turns on timing marks.
const traceEnv = "COHORT_TRACE"

// mark writes a timing mark to stderr when $COHORT_TRACE is set: the wall
// clock (so that a benchmark can line it up with the emulator's and
// Temporal's clocks on the same machine), the time since processStart, and
// what just happened. It exists to show where a command's seconds go (see
// bench/README.md); without the variable it writes nothing.
func (m *Main) mark(format string, a ...any) {
	if m.Getenv == nil || m.Getenv(traceEnv) == "" {
		return
	}
	now := time.Now()
	fmt.Fprintf(m.Stderr, "trace %s +%.3fs %s\n", now.UTC().Format(time.RFC3339Nano), now.Sub(processStart).Seconds(), fmt.Sprintf(format, a...))
}
