package e2e

import (
	"bytes"
	"encoding/csv"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cohort-dev/cohort/roster"
)

// TestDailyDelta is scenario 5: day 1 provisions 150 people; day 2's file
// holds those 150 again (reordered, some emails in other letter case) and 50
// new ones. Day 2 creates exactly the 50 new environments and changes nothing
// that day 1 made: no mutating call for the 150, same ids.
func TestDailyDelta(t *testing.T) {
	t.Parallel()
	// Call counts are compared exactly, so assignments are not flaky here
	// (the other scenarios keep the emulator's default flakiness).
	s := newScenario(t, "delta", "s5.e2e.example", 0, 5, "--assignment-flaky-share", "0")
	s.startWorker()
	rows := csvRows(t, roster.Synthesize(200, 5, s.domain))
	header, people := rows[0], rows[1:]
	day1 := s.writeRoster("day1.csv", csvBytes(t, header, people[:150]))

	// Day 2: everyone, shuffled, with a few old emails upper-cased.
	day2Rows := make([][]string, len(people))
	copy(day2Rows, people)
	for i := 0; i < 150; i += 30 {
		day2Rows[i] = []string{strings.ToUpper(people[i][0]), people[i][1]}
	}
	rng := rand.New(rand.NewPCG(5, 5))
	rng.Shuffle(len(day2Rows), func(i, j int) { day2Rows[i], day2Rows[j] = day2Rows[j], day2Rows[i] })
	day2 := s.writeRoster("day2.csv", csvBytes(t, header, day2Rows))

	want1 := s.participants(day1)
	batch1, _ := s.submit(0, 5*time.Minute, "--wait", day1)
	found1 := s.expectAllOK(batch1, want1)
	before := s.emu.stats(t)

	want2 := s.participants(day2)
	batch2, r := s.submit(0, 5*time.Minute, "--wait", day2)
	if batch2 == batch1 {
		t.Fatalf("day 2 batch id = day 1's (%s), want a new batch", batch1)
	}
	for _, line := range []string{"validated 200 participants (150 already provisioned, 50 new)", "done: 200 ok, 0 failed (150 of the ok were provisioned before)"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("day 2 submit stdout lacks %q:\n%s", line, r.stdout)
		}
	}
	after := s.emu.stats(t)

	// Exactly 50 new of everything.
	d := objectCounts{
		Catalogs: after.Objects.Catalogs - before.Objects.Catalogs,
		Users:    after.Objects.Users - before.Objects.Users, Assignments: after.Objects.Assignments - before.Objects.Assignments,
		Schemas: after.Objects.Schemas - before.Objects.Schemas, Clusters: after.Objects.Clusters - before.Objects.Clusters,
	}
	assertObjects(t, d, objectCounts{Users: 50, Assignments: 50, Schemas: 50, Clusters: 50})
	// Mutating calls: per participant, day 2 makes as many as day 1 did, for
	// 50 people instead of 150; batch-level ones (the catalog) not again.
	for _, ep := range mutations {
		d1, d2 := before.ok(ep), after.ok(ep)-before.ok(ep)
		switch {
		case ep == "catalogs.create":
			if d2 != 0 {
				t.Errorf("day 2: %s called %d times, want 0 (the catalog exists)", ep, d2)
			}
		case d2*3 != d1:
			t.Errorf("day 2: %d successful %s calls, want %d (day 1 made %d for 150 people)", d2, ep, d1/3, d1)
		}
		if n := after.total(ep) - after.ok(ep); n != 0 {
			t.Errorf("%s failed %d times, want 0 (no faults in this scenario)", ep, n)
		}
	}

	found2 := s.expectAllOK(batch2, want2)
	for email, env1 := range found1 {
		if env2 := found2[email]; env2 != env1 {
			t.Errorf("%s: day 2 environment %+v, want day 1's %+v unchanged", email, env2, env1)
		}
	}
}

func csvRows(t *testing.T, data []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func csvBytes(t *testing.T, header []string, rows [][]string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(header)
	_ = w.WriteAll(rows)
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
