package roster

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// setupStore returns a Store in a fresh directory holding n synthesized
// participants.
func setupStore(t testing.TB, n int) (Store, Ref, []Participant) {
	t.Helper()
	r, err := Parse("synth.csv", Synthesize(n, 1, "contoso-event.example"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := Store{Dir: filepath.Join(t.TempDir(), "rosters")}
	ref, err := s.Put(r.Participants)
	if err != nil {
		t.Fatal(err)
	}
	return s, ref, r.Participants
}

func TestStore_PutLoad(t *testing.T) {
	const n = 1000
	s, ref, ps := setupStore(t, n)
	if ref.Count != n || len(ref.Key) != 64 {
		t.Fatalf("ref = %+v, want count %d and a 64-digit key", ref, n)
	}
	tests := []struct {
		offset, limit, wantLen int
	}{
		{0, 1000, 1000},
		{0, 5000, 1000},
		{0, 1, 1},
		{255, 2, 2}, // across an index stride
		{256, 256, 256},
		{999, 10, 1},
		{1000, 10, 0},
		{10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("offset=%d,limit=%d", tt.offset, tt.limit), func(t *testing.T) {
			got, err := s.Load(ref, tt.offset, tt.limit)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if want := ps[tt.offset : tt.offset+tt.wantLen]; !slices.Equal(got, want) {
				t.Errorf("Load(%d, %d) = %d participants, want %d equal to the input", tt.offset, tt.limit, len(got), len(want))
			}
		})
	}

	// Paging through returns everything exactly once.
	var all []Participant
	for off := 0; off < n; off += 77 {
		page, err := s.Load(ref, off, 77)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
	}
	if !slices.Equal(all, ps) {
		t.Errorf("paged load differs from the input")
	}
}

func TestStore_PutIdempotent(t *testing.T) {
	s, ref, ps := setupStore(t, 300)
	data := filepath.Join(s.Dir, ref.Key+".jsonl")
	before, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Put(slices.Clone(ps))
	if err != nil {
		t.Fatal(err)
	}
	if again != ref {
		t.Errorf("second Put = %+v, want %+v", again, ref)
	}
	after, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("second Put rewrote %s", data)
	}
	other, err := s.Put(ps[1:])
	if err != nil {
		t.Fatal(err)
	}
	if other.Key == ref.Key || other.Count != 299 {
		t.Errorf("Put of different content = %+v, want a new key and count 299", other)
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{ref.Key + ".idx", ref.Key + ".jsonl", other.Key + ".idx", other.Key + ".jsonl"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("store dir = %v, want %v (no temp files left)", names, want)
	}
}

func TestStore_PutEmpty(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	ref, err := s.Put(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ref, 0, 10)
	if err != nil || len(got) != 0 || ref.Count != 0 {
		t.Errorf("Load of empty roster = %v, %v (ref %+v), want nothing", got, err, ref)
	}
}

func TestStore_LoadRebuildsIndex(t *testing.T) {
	s, ref, ps := setupStore(t, 600)
	idx := filepath.Join(s.Dir, ref.Key+".idx")
	for _, damage := range []func() error{
		func() error { return os.Remove(idx) },
		func() error {
			return os.WriteFile(idx, []byte(`{"count":600,"size":1,"stride":256,"offsets":[0,1,2]}`), 0o644)
		},
		func() error { return os.WriteFile(idx, []byte(`not json`), 0o644) },
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ref, 500, 100)
		if err != nil {
			t.Fatalf("Load with a damaged index: %v", err)
		}
		if !slices.Equal(got, ps[500:600]) {
			t.Errorf("Load with a damaged index returned the wrong rows")
		}
	}
}

func TestStore_LoadErrors(t *testing.T) {
	s, ref, _ := setupStore(t, 10)
	truncated, err := s.Put([]Participant{{Email: "a@b.example"}, {Email: "c@d.example"}})
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(s.Dir, truncated.Key+".jsonl")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(data, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	missing := strings.Repeat("ab", 32)
	tests := []struct {
		name          string
		ref           Ref
		offset, limit int
		want          string
	}{
		{"missing", Ref{Key: missing, Count: 10}, 0, 10, "load roster " + missing + ": not found in " + s.Dir + " (was it stored with Put on this machine?)"},
		{"bad key", Ref{Key: "../../etc/passwd", Count: 1}, 0, 1, `load roster: key "../../etc/passwd": expected 64 hex digits`},
		{"count mismatch", Ref{Key: ref.Key, Count: 11}, 0, 10, "load roster " + ref.Key + ": holds 10 participants, expected 11"},
		{"offset past end", ref, 11, 1, "load roster " + ref.Key + ": offset 11: expected at most 10"},
		{"negative offset", ref, -1, 1, "load roster " + ref.Key + ": offset -1, limit 1: expected both >= 0"},
		{"negative limit", ref, 0, -1, "load roster " + ref.Key + ": offset 0, limit -1: expected both >= 0"},
		{"truncated file", truncated, 0, 2, "load roster " + truncated.Key + ": data file ends in the middle of a row"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Load(tt.ref, tt.offset, tt.limit)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Load = %d participants, %v; want error %q", len(got), err, tt.want)
			}
		})
	}
}

// BenchmarkStore_Load100k pages through a 100,000-row roster 1,000 rows at a
// time, as the batch workflow's activities do.
func BenchmarkStore_Load100k(b *testing.B) {
	const n, page = 100_000, 1000
	s, ref, _ := setupStore(b, n)
	b.ResetTimer()
	for b.Loop() {
		for off := 0; off < n; off += page {
			ps, err := s.Load(ref, off, page)
			if err != nil || len(ps) != page {
				b.Fatalf("Load(%d) = %d, %v", off, len(ps), err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n/page), "µs/page")
}

// BenchmarkStore_LoadLastPage100k loads only the last page: the cost of a
// seek through the index rather than a scan.
func BenchmarkStore_LoadLastPage100k(b *testing.B) {
	const n, page = 100_000, 1000
	s, ref, _ := setupStore(b, n)
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Load(ref, n-page, page); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStore_Put100k(b *testing.B) {
	r, err := Parse("synth.csv", Synthesize(100_000, 1, "contoso-event.example"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s := Store{Dir: b.TempDir()}
		if _, err := s.Put(r.Participants); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStore_notWorldReadable: rosters name people. The directory Put
// creates is 0700 and every file 0600, including files an older version
// stored 0644; a directory that already existed keeps its owner's mode.
func TestStore_notWorldReadable(t *testing.T) {
	r, err := Parse("synth.csv", Synthesize(10, 1, "contoso-event.example"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	mode := func(path string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	checkFiles := func(dir string) {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		if len(files) != 2 {
			t.Fatalf("stored files = %v, want the data file and its index", files)
		}
		for _, f := range files {
			if m := mode(f); m != 0o600 {
				t.Errorf("%s: mode %o, want 600", filepath.Base(f), m)
			}
		}
	}

	created := Store{Dir: filepath.Join(t.TempDir(), "new", "rosters")}
	if _, err := created.Put(r.Participants); err != nil {
		t.Fatal(err)
	}
	if m := mode(created.Dir); m != 0o700 {
		t.Errorf("created directory: mode %o, want 700", m)
	}
	checkFiles(created.Dir)

	existing := Store{Dir: t.TempDir()}
	if err := os.Chmod(existing.Dir, 0o750); err != nil {
		t.Fatal(err)
	}
	ref, err := existing.Put(r.Participants)
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(existing.Dir); m != 0o750 {
		t.Errorf("existing directory: mode %o, want it left at 750", m)
	}
	checkFiles(existing.Dir)

	// Stored earlier with 0644: putting it again restricts the files.
	data, idx := existing.paths(ref.Key)
	for _, f := range []string{data, idx} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := existing.Put(r.Participants); err != nil {
		t.Fatal(err)
	}
	checkFiles(existing.Dir)
}

func TestStore_blob(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "store")}
	key, err := s.PutBlob([]byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.PutBlob([]byte(`{"a":1}`))
	if err != nil || again != key {
		t.Fatalf("second put: %q, %v; want %q", again, err, key)
	}
	b, err := s.LoadBlob(key)
	if err != nil || string(b) != `{"a":1}` {
		t.Fatalf("load: %q, %v", b, err)
	}
	fi, err := os.Stat(s.blobPath(key))
	if err != nil || fi.Mode().Perm() != fileMode {
		t.Fatalf("mode: %v, %v; want %v", fi.Mode().Perm(), err, fileMode)
	}
	if err := os.WriteFile(s.blobPath(key), []byte(`{"a":2}`), fileMode); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadBlob(key); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("changed blob: %v; want a mismatch error", err)
	}
	if _, err := s.LoadBlob("../x"); err == nil {
		t.Fatal("a key that is no hash was accepted")
	}
}
