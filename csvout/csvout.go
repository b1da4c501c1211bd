// Package csvout writes CSV that is safe to open in a spreadsheet. Every CSV
// Cohort writes for people (the starter's report) goes through it.
//
// A spreadsheet evaluates a cell that begins with = + - or @ as a formula,
// and some also one that begins with a tab or a carriage return (or, in
// Japanese Excel, the full-width ＝ ＋ － ＠), so a display
// name such as =HYPERLINK("http://evil.example","click") would run in the
// organizer's Excel. Following OWASP's advice on CSV injection, such a cell
// gets a leading apostrophe: the spreadsheet shows it as text, and a reader
// of the raw file sees the original value after the apostrophe.
package csvout

import (
	"encoding/csv"
	"io"
	"strings"
)

// Cell returns s neutralised: with a leading ' when a spreadsheet would
// evaluate it, else unchanged.
func Cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	// The full-width forms: a Japanese Excel's input converts a typed ＝
	// into =, and a roster from Japan may well hold them.
	for _, p := range []string{"＝", "＋", "－", "＠"} {
		if strings.HasPrefix(s, p) {
			return "'" + s
		}
	}
	return s
}

// Writer is a csv.Writer that neutralises every cell it writes. It satisfies
// gocsv's CSVWriter, so gocsv.MarshalCSV can write through it.
type Writer struct {
	w *csv.Writer
}

// NewWriter returns a Writer to out.
func NewWriter(out io.Writer) *Writer { return &Writer{w: csv.NewWriter(out)} }

// Write writes one record, each cell neutralised. The caller's slice is left
// as it was.
func (w *Writer) Write(record []string) error {
	safe := make([]string, len(record))
	for i, c := range record {
		safe[i] = Cell(c)
	}
	return w.w.Write(safe)
}

// Flush writes any buffered data to the underlying writer.
func (w *Writer) Flush() { w.w.Flush() }

// Error reports any error of a previous Write or Flush.
func (w *Writer) Error() error { return w.w.Error() }
