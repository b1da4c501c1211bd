package main

import (
	"bytes"
	"regexp"
	"testing"
)

// Timing marks go to stderr only with $COHORT_TRACE set, each with the wall
// clock, the time since the starter began and what happened.
func TestMark(t *testing.T) {
	var errOut bytes.Buffer
	m := &Main{Stderr: &errOut, Getenv: func(string) string { return "" }}
	m.mark("roster read and validated (%d participants)", 3)
	if errOut.Len() != 0 {
		t.Fatalf("without %s: wrote %q", traceEnv, errOut.String())
	}
	m.Getenv = func(k string) string {
		if k == traceEnv {
			return "1"
		}
		return ""
	}
	m.mark("roster read and validated (%d participants)", 3)
	re := regexp.MustCompile(`^trace \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z \+\d+\.\d{3}s roster read and validated \(3 participants\)\n$`)
	if !re.MatchString(errOut.String()) {
		t.Errorf("mark = %q, want it to match %s", errOut.String(), re)
	}
}
