package csvout

import (
	"bytes"
	"encoding/csv"
	"testing"
)

func TestCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Taro Yamada", "Taro Yamada"},
		{`=HYPERLINK("http://evil.example","x")`, `'=HYPERLINK("http://evil.example","x")`},
		{"+1 555", "'+1 555"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tcmd", "'\tcmd"},
		{"\rcmd", "'\rcmd"},
		{"a=b", "a=b"}, // only the first character counts
		{" =1", " =1"}, // a leading space is text already
		{"'=1", "'=1"}, // already neutralised: one apostrophe is enough
		{"山田 =1", "山田 =1"},
		{"＝HYPERLINK(\"x\")", "'＝HYPERLINK(\"x\")"},
		{"＠SUM(A1)", "'＠SUM(A1)"},
		{"－1", "'－1"},
		{"＋1", "'＋1"},
	}
	for _, tt := range tests {
		if got := Cell(tt.in); got != tt.want {
			t.Errorf("Cell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	rec := []string{"a@example.com", "=1+1", "ok"}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	if rec[1] != "=1+1" {
		t.Errorf("Write changed the caller's record: %q", rec)
	}
	got, err := csv.NewReader(&buf).Read()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a@example.com", "'=1+1", "ok"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d = %q, want %q", i, got[i], want[i])
		}
	}
}
