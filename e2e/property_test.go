package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRosterProperty (issue 17, "Done when"): generated rosters of random
// Unicode (look-alikes, full-width forms, invisible characters), long fields
// and awkward quoting go through the real `starter submit --wait` against
// the emulator and a real Temporal. Each roster either is refused (exit 2,
// FILE:LINE messages on stderr, nothing stored, no batch started) or ends
// (exit 0 or 1) with every participant ok or failed by name, within the
// harness's deadline. Whatever the validator accepts, none hangs: a
// participant whose run cannot finish fails at participant_timeout.
func TestRosterProperty(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "property", "prop.e2e.example", 0, 23)
	s.addConfig("participant-timeout.yaml", participantTimeoutConfig)
	s.startWorker()

	var accepted []string
	for seed, class := range rosterClasses {
		name := fmt.Sprintf("gen-%d-%s.csv", seed, class.name)
		data := generateRoster(uint64(seed), class, s.domain)
		file := s.writeRoster(name, data)
		t.Run(name, func(t *testing.T) {
			before := s.rosterFiles()
			r := s.starter(5*time.Minute, "submit", "--wait", file)
			switch r.code {
			case 2:
				checkRefused(t, name, r)
				if after := s.rosterFiles(); !slices.Equal(after, before) {
					t.Errorf("refused roster stored: roster store %v, was %v", after, before)
				}
			case 0, 1:
				batch := batchIDFrom(t, r.stdout)
				accepted = append(accepted, batch)
				s.checkEveryoneEnded(t, batch, r)
			default:
				t.Fatalf("exit %d, want 0, 1 or 2\nroster:\n%s\n%s", r.code, data, r)
			}
			if t.Failed() {
				t.Logf("roster %s:\n%s", name, data)
			}
		})
	}

	// Exactly the accepted rosters started a batch (the list is eventually
	// consistent: wait until it shows them all, then look for others).
	batches := func() []string {
		var ids []string
		for id := range allWorkflowIDs(t, s.tc, s.ns) {
			rest, ok := strings.CutPrefix(id, "cohort-batch/")
			if ok && !strings.Contains(rest, "/") {
				ids = append(ids, rest)
			}
		}
		slices.Sort(ids)
		return ids
	}
	slices.Sort(accepted)
	got := batches()
	for deadline := time.Now().Add(20 * time.Second); !containsAll(got, accepted) && time.Now().Before(deadline); got = batches() {
		time.Sleep(250 * time.Millisecond)
	}
	if !slices.Equal(got, accepted) {
		t.Errorf("batch workflows %v, want exactly the accepted rosters' %v", got, accepted)
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// checkRefused: every message names the file and a line.
func checkRefused(t *testing.T, name string, r result) {
	t.Helper()
	if strings.Contains(r.stdout, "-> batch") {
		t.Errorf("a refused roster names a batch:\n%s", r)
	}
	m := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`:(\d+): [a-z_]+: `).FindAllStringSubmatch(r.stderr, -1)
	if len(m) == 0 {
		t.Errorf("stderr has no %s:LINE: field: message:\n%s", name, r.stderr)
	}
	for _, sub := range m {
		if n, _ := strconv.Atoi(sub[1]); n < 1 {
			t.Errorf("line %s in %q, want a line of the file", sub[1], sub[0])
		}
	}
}

// checkEveryoneEnded: the batch's report has a row for every validated
// participant, each ok or failed with a step and a reason; status agrees
// with submit's exit code and names every failed participant.
func (s *scenario) checkEveryoneEnded(t *testing.T, batch string, sub result) {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(sub.stdout, "validated %d participants", &n); err != nil || n < 1 {
		t.Fatalf("submit's first line does not count the participants: %v\n%s", err, sub.stdout)
	}
	r := s.starter(time.Minute, "report", batch, "--format", "json")
	if r.code != 0 {
		t.Fatalf("report: exit %d\n%s", r.code, r)
	}
	var rows []struct {
		Email      string `json:"email"`
		Status     string `json:"status"`
		FailedStep string `json:"failed_step"`
		LastError  string `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, r.stdout)
	}
	if len(rows) != n {
		t.Errorf("report has %d rows, want one for each of the %d participants", len(rows), n)
	}
	var failed []string
	for _, row := range rows {
		switch {
		case row.Email == "":
			t.Errorf("report row without an email: %+v", row)
		case row.Status == "ok":
		case row.Status == "failed" && row.FailedStep != "" && row.LastError != "":
			failed = append(failed, row.Email)
		default:
			t.Errorf("report row %+v: want ok, or failed with a step and a reason", row)
		}
	}
	if want := min(len(failed), 1); sub.code != want {
		t.Errorf("submit exited %d with %d failed participants, want %d", sub.code, len(failed), want)
	}
	st := s.starter(time.Minute, "status", batch)
	if st.code != min(len(failed), 1) {
		t.Errorf("status: exit %d with %d failed, want %d\n%s", st.code, len(failed), min(len(failed), 1), st)
	}
	for _, e := range failed {
		if !strings.Contains(st.stdout, "FAILED "+e+" at ") {
			t.Errorf("status does not name failed %s:\n%s", e, st.stdout)
		}
	}
	t.Logf("batch %s: %d participants, failed: %q", batch, n, failed)
}

// rosterClass is one kind of trouble a generated roster carries.
type rosterClass struct {
	name string
	// mutate returns row i's email local part, domain and display name,
	// changed (or not) by the class's trouble.
	mutate func(rng *rand.Rand, i int, local, domain, display string) (string, string, string)
	// every row carries the trouble (else about half of them).
	every bool
}

var (
	lookAlikes = map[rune]rune{'a': 'а', 'e': 'е', 'o': 'о', 'p': 'р', 'c': 'с', 'x': 'х', 'i': 'і', 'y': 'у'} // Cyrillic
	greek      = map[rune]rune{'o': 'ο', 'v': 'ν', 'i': 'ι', 'k': 'κ'}
	invisible  = []string{"\u200b", "\u200c", "\u200d", "\u00ad", "\ufeff", "\u2060", "\u202e", "\u034f"}
)

var rosterClasses = []rosterClass{
	{name: "lookalikes", mutate: func(rng *rand.Rand, i int, local, domain, display string) (string, string, string) {
		table := lookAlikes
		if rng.IntN(2) == 0 {
			table = greek
		}
		return replaceSome(rng, local, table), domain, display
	}},
	{name: "fullwidth", mutate: func(rng *rand.Rand, i int, local, domain, display string) (string, string, string) {
		switch rng.IntN(3) {
		case 0:
			return fullWidth(local), domain, display
		case 1:
			return local, strings.Replace(domain, ".", "．", 1), display
		}
		return local, domain, fullWidth(display)
	}},
	{name: "invisible", mutate: func(rng *rand.Rand, i int, local, domain, display string) (string, string, string) {
		ch := invisible[rng.IntN(len(invisible))]
		if rng.IntN(3) == 0 {
			return local, domain, display + ch + "x"
		}
		at := rng.IntN(len(local)-1) + 1
		return local[:at] + ch + local[at:], domain, display
	}},
	{name: "long", every: true, mutate: func(rng *rand.Rand, i int, local, domain, display string) (string, string, string) {
		switch i % 4 {
		case 0: // over RFC 5321's 64 for a local part
			return local + strings.Repeat("x", 65-len(local)+rng.IntN(20)), domain, display
		case 1: // over 254 for an address
			return local, strings.Repeat("d", 60) + "." + strings.Repeat("e", 60) + "." + strings.Repeat("f", 60) + "." + strings.Repeat("g", 60) + "." + domain, display
		case 2: // over Temporal's 1,000 for a workflow ID
			return local + "." + strings.Repeat("l", 1100), domain, display
		}
		return local, domain, strings.Repeat("長い名前 ", 40+rng.IntN(100))
	}},
	{name: "quoting", mutate: func(rng *rand.Rand, i int, local, domain, display string) (string, string, string) {
		names := []string{`Yamada, Taro`, `Taro "The Hat" Yamada`, `=HYPERLINK("http://evil.example","x")`, `+81 Taro`, `@taro`,
			`O'Brien; DROP TABLE`, `Zoë 🚀 Ünal`, "e\u0301mile", `\N`, `""`, `,`}
		return local, domain, names[rng.IntN(len(names))]
	}},
	{name: "case-and-space", mutate: func(rng *rand.Rand, i int, local, domain, display string) (string, string, string) {
		switch rng.IntN(3) {
		case 0:
			return strings.ToUpper(local), strings.ToUpper(domain), display
		case 1:
			return " " + local, domain + " ", "  " + display + "  "
		}
		return local, domain, ""
	}},
	{name: "mixed", mutate: func(rng *rand.Rand, i int, local, domain, display string) (string, string, string) {
		switch rng.IntN(4) {
		case 0:
			return `"` + local + ` q"`, domain, display
		case 1:
			return local + "+tag", domain, display
		case 2:
			return replaceSome(rng, local, lookAlikes), domain, fullWidth(display)
		}
		return local, domain, display + invisible[rng.IntN(len(invisible))]
	}},
}

// generateRoster writes a plain roster of a few rows, about half of them
// carrying the class's trouble. The same seed gives the same bytes.
func generateRoster(seed uint64, class rosterClass, domain string) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x17))
	firsts := []string{"taro", "hanako", "emile", "zoe", "chen", "olga", "piotr", "yuki"}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"email", "display_name"})
	rows := 3 + rng.IntN(2)
	if class.every {
		rows = 4
	}
	for i := range rows {
		first := firsts[rng.IntN(len(firsts))]
		local := fmt.Sprintf("%s.s%d.%d", first, seed, i)
		d, display := domain, strings.ToUpper(first[:1])+first[1:]+" Example"
		if class.every || i == 0 || rng.IntN(2) == 0 { // at least one row in trouble
			local, d, display = class.mutate(rng, i, local, d, display)
		}
		_ = w.Write([]string{local + "@" + d, display})
	}
	w.Flush()
	return b.Bytes()
}

func replaceSome(rng *rand.Rand, s string, table map[rune]rune) string {
	out := []rune(s)
	done := false
	for i, r := range out {
		if sub, ok := table[r]; ok && (!done || rng.IntN(2) == 0) {
			out[i], done = sub, true
		}
	}
	return string(out)
}

// fullWidth maps ASCII letters and digits to their full-width forms.
func fullWidth(s string) string {
	return strings.Map(func(r rune) rune {
		if r > ' ' && r < 0x7f {
			return r - '!' + '！'
		}
		return r
	}, s)
}
