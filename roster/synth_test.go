package roster

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
)

func TestSynthesize(t *testing.T) {
	tests := []struct {
		n    int
		seed int64
	}{
		{0, 1}, {1, 1}, {500, 42}, {20_000, 7},
	}
	for _, tt := range tests {
		data := Synthesize(tt.n, tt.seed, "contoso-event.example")
		if again := Synthesize(tt.n, tt.seed, "contoso-event.example"); !bytes.Equal(data, again) {
			t.Errorf("Synthesize(%d, %d) differs between calls", tt.n, tt.seed)
		}
		if !bytes.HasPrefix(data, []byte("email,display_name\n")) {
			t.Errorf("Synthesize(%d, %d) starts %q, want the plain header", tt.n, tt.seed, data[:min(len(data), 30)])
		}
		if tt.n == 0 {
			continue
		}
		r, err := Parse("synth.csv", data, Options{})
		if err != nil {
			t.Fatalf("Parse(Synthesize(%d, %d)): %v", tt.n, tt.seed, err)
		}
		if r.Format != FormatPlain || r.Encoding != EncodingUTF8 || len(r.Participants) != tt.n {
			t.Errorf("Synthesize(%d, %d): %s/%s with %d participants, want plain/utf-8 with %d", tt.n, tt.seed, r.Format, r.Encoding, len(r.Participants), tt.n)
		}
		var ja, latin int
		for _, p := range r.Participants {
			if !strings.HasSuffix(p.Email, "@contoso-event.example") {
				t.Fatalf("email %q not on the requested domain", p.Email)
			}
			if strings.IndexFunc(p.DisplayName, func(r rune) bool { return unicode.In(r, unicode.Han, unicode.Hiragana) }) >= 0 {
				ja++
			} else {
				latin++
			}
		}
		if tt.n >= 500 && (ja < tt.n/4 || latin < tt.n/4) {
			t.Errorf("Synthesize(%d, %d): %d Japanese and %d Latin names, want a mix", tt.n, tt.seed, ja, latin)
		}
	}
	if bytes.Equal(Synthesize(50, 1, "a.example"), Synthesize(50, 2, "a.example")) {
		t.Errorf("different seeds gave the same roster")
	}
}

// BenchmarkParse100k parses a synthesized 100,000-row plain roster.
func BenchmarkParse100k(b *testing.B) {
	data := Synthesize(100_000, 1, "contoso-event.example")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("synth.csv", data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
