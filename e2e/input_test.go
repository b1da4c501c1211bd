package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cohort-dev/cohort/bootstrap"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

// TestBadInput is scenario 7: every malformed roster exits 2 with messages
// of the form FILE:LINE: field: what was expected, and starts no workflow.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "bad-input", "s7.e2e.example", 0, 7)
	testdata := filepath.Join(moduleDir, "roster", "testdata")
	synth := csvRows(t, roster.Synthesize(120, 7, s.domain))
	gen := func(name string, data []byte) string { return s.writeRoster(name, data) }

	tests := []struct {
		name string
		path string
		want []string // substrings of stderr, each FILE:LINE: field: ...
	}{
		// The roster package's malformed files (pinned in roster's TestParse_invalidFiles).
		{"empty", filepath.Join(testdata, "empty.csv"), []string{"empty.csv:1: header: "}},
		{"blank lines only", filepath.Join(testdata, "blank.csv"), []string{"blank.csv:1: header: "}},
		{"header only", filepath.Join(testdata, "header_only.csv"), []string{"header_only.csv:1: rows: "}},
		{"binary garbage", filepath.Join(testdata, "garbage.bin"), []string{"garbage.bin:3: encoding: "}},
		{"UTF-16", filepath.Join(testdata, "utf16le.csv"), []string{"utf16le.csv:1: encoding: "}},
		{"Latin-1", filepath.Join(testdata, "latin1.csv"), []string{"latin1.csv:1: encoding: "}},
		{"wrong header", filepath.Join(testdata, "bad_header.csv"), []string{"bad_header.csv:1: header: "}},
		{"no header", filepath.Join(testdata, "no_header.csv"), []string{"no_header.csv:1: header: "}},
		{"Entra version", filepath.Join(testdata, "bad_version.csv"), []string{"bad_version.csv:1: version: "}},
		{"Entra without UPN", filepath.Join(testdata, "entra_missing_upn.csv"), []string{"entra_missing_upn.csv:2: header: "}},
		{"Entra without displayName", filepath.Join(testdata, "entra_missing_displayname.csv"), []string{"entra_missing_displayname.csv:2: header: "}},
		{"bad emails", filepath.Join(testdata, "bad_emails.csv"), linesOf("bad_emails.csv", "email: ", 2, 3, 4, 5, 6, 7, 8, 9)},
		{"duplicates", filepath.Join(testdata, "duplicates.csv"), []string{
			"duplicates.csv:4: email: duplicate of line 2", "duplicates.csv:6: email: duplicate of line 2"}},
		{"bad quotes", filepath.Join(testdata, "bad_quote.csv"), linesOf("bad_quote.csv", "row: ", 2, 4)},
		{"Entra bad rows", filepath.Join(testdata, "bulk_create_bad_rows.csv"), []string{
			"bulk_create_bad_rows.csv:4: row: ", "bulk_create_bad_rows.csv:5: display_name: ",
			"bulk_create_bad_rows.csv:6: email: ", "bulk_create_bad_rows.csv:9: email: duplicate of line 3"}},

		// Our own, deep in a realistic file.
		{"wrong header (generated)", gen("wrong_header.csv", []byte("mail,name\na@s7.e2e.example,A\n")),
			[]string{"wrong_header.csv:1: header: "}},
		{"bad email on line 101", gen("bad_email_deep.csv", csvBytes(t, synth[0], with(synth[1:], 99, []string{"not-an-email", "Nobody"}))),
			[]string{"bad_email_deep.csv:101: email: "}},
		{"duplicate on line 122", gen("dup_deep.csv", csvBytes(t, synth[0], append(append([][]string(nil), synth[1:]...), []string{strings.ToUpper(synth[4][0]), "Again"}))),
			[]string{"dup_deep.csv:122: email: duplicate of line 5"}},
		{"empty (generated)", gen("zero.csv", nil), []string{"zero.csv:1: header: "}},
		{"random bytes", gen("random.bin", randomBytes(4096)), []string{"random.bin:"}},
		{"Latin-1 (generated)", gen("latin1_gen.csv", []byte("email,display_name\nzoe@s7.e2e.example,Zo\xeb\nsoren@s7.e2e.example,S\xf8ren\n")),
			[]string{"latin1_gen.csv:"}},

		// Issue 17. Addresses Cohort cannot carry in a workflow id and Entra
		// does not accept as a user principal name: on main these were
		// accepted and wedged the batch forever.
		{"non-ASCII addresses", filepath.Join(testdata, "non_ascii_emails.csv"),
			append(linesOf("non_ascii_emails.csv", "email: ", 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
				`non_ascii_emails.csv:4: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name)`,
				`did you mean "taro@contoso-event.example"?`)},
		{"non-ASCII addresses (bulk create)", filepath.Join(testdata, "bulk_create_non_ascii.csv"),
			append(linesOf("bulk_create_non_ascii.csv", "email: ", 3, 4, 5, 6, 7, 8, 9), "value not shown")},
		{"Cyrillic letter (generated)", gen("cyrillic.csv", csvBytes(t, synth[0], with(synth[1:], 49, []string{"t\u0430ro@s7.e2e.example", "Taro"}))),
			[]string{`cyrillic.csv:51: email: `, `did you mean "taro@s7.e2e.example"?`}},
		{"zero-width space (generated)", gen("zwsp.csv", csvBytes(t, synth[0], with(synth[1:], 9, []string{"hana\u200bko@s7.e2e.example", "Hanako"}))),
			[]string{`zwsp.csv:11: email: `, "U+200B"}},
		{"short row", gen("short_row.csv", []byte("email,display_name\na@s7.e2e.example,A\nb@s7.e2e.example\n")),
			[]string{"short_row.csv:3: row: expected 2 fields like the header on line 1, found 1"}},
		// Defect 6: one 3 MB display name pushed a chunk past Temporal's
		// payload limit.
		{"3 MB display name", gen("huge_name.csv", []byte("email,display_name\na@s7.e2e.example,A\nb@s7.e2e.example,"+strings.Repeat("\u5c71", 1<<20)+"\n")),
			[]string{"huge_name.csv:3: display_name: expected at most 256 characters (Entra's limit for a display name), found 1048576"}},
		// Defect 7: a FIFO never returned; /dev/zero grew without bound.
		{"FIFO", s.fifo("fifo.csv"), []string{"fifo.csv: expected a regular file (a CSV saved to disk)"}},
		{"device", "/dev/zero", []string{"/dev/zero: expected a regular file (a CSV saved to disk), found a character device"}},
		{"over 64 MiB", s.sparse("big.csv", roster.MaxFileSize+1), []string{"big.csv: expected a roster of at most 64 MiB"}},
	}

	before := allWorkflowIDs(t, s.tc, s.ns)
	fileLine := regexp.MustCompile(`(?m)^[^\s:]+:\d+: `)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.starter(time.Minute, "submit", "--wait", tt.path)
			if r.code != 2 {
				t.Fatalf("exit code %d, want 2\n%s", r.code, r)
			}
			if strings.Contains(r.stdout, "-> batch") {
				t.Errorf("stdout names a batch, want nothing submitted:\n%s", r.stdout)
			}
			if !fileLine.MatchString(r.stderr) && !strings.Contains(r.stderr, tt.path+": expected") {
				t.Errorf("stderr has no FILE:LINE: message:\n%s", r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stdout+r.stderr, "Pw!Leak-Canary") {
				t.Errorf("output shows a password from the file:\n%s", r)
			}
		})
	}

	// No workflow was started by any of them...
	after := allWorkflowIDs(t, s.tc, s.ns)
	for id := range after {
		if before[id] == 0 {
			t.Errorf("workflow %s started by a malformed roster", id)
		}
	}
	// ...and the check would have seen one: a valid roster starts its batch.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bootstrap.EnsureSearchAttributes(ctx, s.tc, s.ns); err != nil {
		t.Fatal(err)
	}
	good := gen("good.csv", roster.Synthesize(3, 7, s.domain))
	batch, _ := s.submit(0, time.Minute, good)
	id := workflows.BatchWorkflowID(batch)
	deadline := time.Now().Add(15 * time.Second)
	for allWorkflowIDs(t, s.tc, s.ns)[id] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("control: workflow %s not listed 15s after a valid submit", id)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// No worker runs in this scenario: end the batch so it does not linger.
	if err := s.tc.TerminateWorkflow(ctx, id, "", "e2e: control batch of TestBadInput"); err != nil {
		t.Errorf("terminate %s: %v", id, err)
	}
}

// fifo makes a named pipe in the scenario's directory that nothing ever
// writes to.
func (s *scenario) fifo(name string) string {
	s.t.Helper()
	path := filepath.Join(s.dir, name)
	if err := mkfifo(path); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// sparse makes a file of size bytes, a header and then a hole.
func (s *scenario) sparse(name string, size int64) string {
	s.t.Helper()
	path := s.writeRoster(name, []byte("email,display_name\n"))
	if err := os.Truncate(path, size); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// linesOf lists "FILE:LINE: field" for each line.
func linesOf(file, field string, lines ...int) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = fmt.Sprintf("%s:%d: %s", file, l, field)
	}
	return out
}

// with returns a copy of rows with row i replaced.
func with(rows [][]string, i int, row []string) [][]string {
	out := append([][]string(nil), rows...)
	out[i] = row
	return out
}

// randomBytes returns n reproducible random bytes.
func randomBytes(n int) []byte {
	rng := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}
