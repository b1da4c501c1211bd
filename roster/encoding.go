package roster

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"
)

// Encodings reported in Roster.Encoding.
const (
	EncodingUTF8    = "utf-8"
	EncodingUTF8BOM = "utf-8-bom"
	EncodingSJIS    = "shift_jis"
)

const encodingExpected = "expected UTF-8 or Shift_JIS (CP932) text"

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// decode turns the raw file into UTF-8 text. It accepts UTF-8 with or without
// a BOM and Shift_JIS/CP932 (what Excel in Japan writes for "CSV"), and
// refuses anything else with a problem on the line where the file stops being
// text.
func decode(name string, data []byte) (string, string, *Problem) {
	encProblem := func(line int, detail string) *Problem {
		msg := encodingExpected
		if detail != "" {
			msg += ", " + detail
		}
		return &Problem{File: name, Line: line, Field: "encoding", Message: msg}
	}
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return "", "", encProblem(1, `found UTF-16 (save it from Excel as "CSV UTF-8" instead)`)
	}
	// Control bytes never occur inside UTF-8 or Shift_JIS multi-byte
	// sequences (Shift_JIS trail bytes are >= 0x40), so a raw scan is exact.
	if i := bytes.IndexFunc(data, isBinaryRune); i >= 0 {
		return "", "", encProblem(lineAt(data, i), fmt.Sprintf("found binary data (byte 0x%02X); is this really a CSV file?", data[i]))
	}

	if rest, ok := bytes.CutPrefix(data, utf8BOM); ok {
		if !utf8.Valid(rest) {
			return "", "", encProblem(1, fmt.Sprintf("found a UTF-8 byte order mark but line %d is not UTF-8", invalidUTF8Line(rest)))
		}
		return string(rest), EncodingUTF8BOM, nil
	}
	if utf8.Valid(data) {
		return string(data), EncodingUTF8, nil
	}

	// Not UTF-8: accept Shift_JIS only if every line decodes cleanly. Line
	// feeds (0x0A) are never part of a Shift_JIS character, so splitting is
	// safe and tells the user where the file stopped making sense.
	var out strings.Builder
	out.Grow(len(data) * 3 / 2)
	for n, line := range bytes.SplitAfter(data, []byte{'\n'}) {
		text, err := japanese.ShiftJIS.NewDecoder().Bytes(line)
		if err != nil || !cleanSJIS(text) {
			return "", "", encProblem(1, fmt.Sprintf("line %d is neither", n+1))
		}
		out.Write(text)
	}
	return out.String(), EncodingSJIS, nil
}

// isBinaryRune reports bytes that do not belong in a text file: C0 controls
// other than tab, line feed and carriage return, and DEL.
func isBinaryRune(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7F
}

// cleanSJIS reports whether decoded Shift_JIS text has no replacement
// characters (undecodable bytes) and no C1 controls (bytes like 0x80 that
// CP932 leaves unassigned).
func cleanSJIS(text []byte) bool {
	for _, r := range string(text) {
		if r == utf8.RuneError || (r >= 0x80 && r <= 0x9F) {
			return false
		}
	}
	return true
}

// lineAt returns the 1-based line number of byte offset i.
func lineAt(data []byte, i int) int {
	return bytes.Count(data[:i], []byte{'\n'}) + 1
}

func invalidUTF8Line(data []byte) int {
	for n, line := range bytes.SplitAfter(data, []byte{'\n'}) {
		if !utf8.Valid(line) {
			return n + 1
		}
	}
	return 1
}
