// Package roster turns a participant CSV into validated participants with
// their derived Databricks names.
//
// Three formats are detected from the header: the Microsoft Entra ID
// bulk-create file (first line "version:v1.0", columns such as
// "User name [userPrincipalName] Required"), the Entra bulk-invite file
// ("Email address to invite [inviteeEmail] Required") and a plain CSV with
// "email" and optional "display_name" columns. Files may be UTF-8 (with or
// without BOM) or Shift_JIS/CP932 as Excel in Japan saves them, with CRLF or
// LF line ends.
//
// The bulk-create file carries every user's initial password. The password
// column is dropped while the CSV is read: it is never decoded into a struct,
// stored, logged or quoted in a message.
package roster

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gocarina/gocsv"
)

// Formats reported in Roster.Format.
const (
	FormatEntraBulkCreate = "entra-bulk-create"
	FormatEntraBulkInvite = "entra-bulk-invite"
	FormatPlain           = "plain"
)

// Options control Parse.
type Options struct {
	// SkipInvalid keeps the valid rows and lists the invalid ones in
	// Roster.Skipped instead of failing the whole file.
	SkipInvalid bool
	// Naming derives schema and cluster names; the zero value means
	// DefaultNaming().
	Naming Naming
}

// Roster is a parsed, validated participant file.
type Roster struct {
	Format       string        // FormatEntraBulkCreate, FormatEntraBulkInvite or FormatPlain
	Encoding     string        // EncodingUTF8, EncodingUTF8BOM or EncodingSJIS
	Participants []Participant // valid rows in file order, names derived
	Skipped      []Problem     // with Options.SkipInvalid: rows left out and why
}

// Problem is one thing wrong with an input file, precise enough for a person
// to fix it.
type Problem struct {
	File string
	Line int // 1-based physical line (a quoted field may span lines: where the row starts)
	// Field is what the problem is about: "email" or "display_name" (whatever
	// the format's column is called), or "row", "rows", "header", "version"
	// or "encoding" for problems with the file's shape.
	Field   string
	Message string // what was expected and what was found
}

// String formats p as "FILE:LINE: field: message".
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Field, p.Message)
}

// ValidationError lists every problem found in an input file. Parse returns
// it for anything wrong with the file itself (as opposed to, say, an invalid
// Naming), so callers can tell bad input apart with errors.As.
type ValidationError struct {
	Problems []Problem
}

// Error lists every problem, one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// row is what gocsv decodes each data row into. It deliberately has no field
// for the password (or anything else): the reader hands gocsv only the email
// and display-name columns.
type row struct {
	Email       string `csv:"email"`
	DisplayName string `csv:"display_name"`
}

// Canonical column keys the reader passes to gocsv.
const (
	colEmail       = "email"
	colDisplayName = "display_name"
)

// Parse reads one roster file. name is used in messages
// ("FILE:LINE: field: what was expected").
//
// Any problem in the file is reported in a *ValidationError listing all of
// them. With opts.SkipInvalid the valid rows are returned and the invalid
// ones listed in Roster.Skipped; an error is then returned only if the file
// itself is unreadable (encoding, header) or no valid row remains.
func Parse(name string, data []byte, opts Options) (*Roster, error) {
	naming := opts.Naming.withDefaults()
	if err := naming.Validate(); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	fail := func(ps ...Problem) (*Roster, error) {
		return nil, &ValidationError{Problems: ps}
	}

	text, enc, p := decode(name, data)
	if p != nil {
		return fail(*p)
	}
	records, problems := readRecords(name, text)
	if len(records) == 0 {
		if len(problems) > 0 {
			return fail(problems...)
		}
		return fail(Problem{File: name, Line: 1, Field: "header", Message: "expected a CSV header line, found an empty file"})
	}
	lay, headerProblems := detect(name, records)
	if len(headerProblems) > 0 {
		return fail(headerProblems...)
	}

	body := records[lay.bodyStart:]
	if lay.format != FormatPlain && len(body) > 0 && isExampleRow(body[0]) {
		body = body[1:]
	}
	if len(body) == 0 && len(problems) == 0 {
		return fail(Problem{File: name, Line: lay.headerLine, Field: "rows", Message: "expected participant rows below this header, found none"})
	}

	rows, lines, rowProblems := project(name, lay, body)
	problems = append(problems, rowProblems...)

	// gocsv does the row decoding; the reader feeds it only the projected
	// columns under canonical names.
	var decoded []row
	if err := gocsv.UnmarshalCSV(&sliceReader{rows: rows}, &decoded); err != nil {
		return nil, fmt.Errorf("parse %s: decode rows: %w", name, err)
	}

	v := validator{file: name, format: lay.format, naming: naming,
		seenEmail: map[string]int{}, seenSchema: map[string]int{}, seenCluster: map[string]int{}}
	var valid []Participant
	for i, r := range decoded {
		p, ps := v.check(lines[i], r)
		if len(ps) > 0 {
			problems = append(problems, ps...)
			continue
		}
		valid = append(valid, p)
	}
	slices.SortStableFunc(problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })

	if len(problems) > 0 && (!opts.SkipInvalid || len(valid) == 0) {
		return fail(problems...)
	}
	return &Roster{Format: lay.format, Encoding: enc, Participants: valid, Skipped: problems}, nil
}

// record is one CSV record and the line it starts on.
type record struct {
	line   int
	fields []string
}

// readRecords reads every non-blank record. Lines with only separators and
// spaces (what Excel writes for an empty row) count as blank. A malformed
// record becomes a problem and reading goes on with the next one.
func readRecords(name, text string) ([]record, []Problem) {
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	var recs []record
	var problems []Problem
	for {
		fields, err := r.Read()
		if err == io.EOF {
			break
		}
		if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
			problems = append(problems, Problem{File: name, Line: pe.StartLine, Field: "row", Message: csvMessage(pe)})
			continue
		}
		if err != nil {
			problems = append(problems, Problem{File: name, Line: 1, Field: "row", Message: err.Error()})
			break
		}
		if blank(fields) {
			continue
		}
		line, _ := r.FieldPos(0)
		recs = append(recs, record{line: line, fields: fields})
	}
	return recs, problems
}

func csvMessage(pe *csv.ParseError) string {
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return `expected quotes (") only around a whole field, found one inside an unquoted field; double it ("") or quote the whole field`
	case errors.Is(pe.Err, csv.ErrQuote):
		msg := `expected a closing quote (") for a field opened on this line, found a stray quote or none`
		if pe.Line != pe.StartLine {
			msg += fmt.Sprintf(" (the field runs on to line %d)", pe.Line)
		}
		return msg
	}
	return fmt.Sprintf("expected a well-formed CSV record, found %v", pe.Err)
}

func blank(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// isExampleRow reports the example row of Entra's templates.
func isExampleRow(r record) bool {
	return len(r.fields) > 0 && strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.fields[0])), "example:")
}

// layout is what detect learns from the first lines.
type layout struct {
	format     string
	headerLine int
	bodyStart  int // index into records of the first data row
	width      int // number of header fields
	email      int // column index
	display    int // column index, -1 if absent
}

var propertyRE = regexp.MustCompile(`\[\s*([A-Za-z0-9_]+)\s*\]`)

const (
	entraCreateHeader = `an Entra bulk-create header with "User name [userPrincipalName] Required" and "Name [displayName] Required"`
	entraInviteHeader = `a bulk-invite header with "Email address to invite [inviteeEmail] Required"`
)

// detect finds the format and the columns Cohort reads.
func detect(name string, recs []record) (layout, []Problem) {
	headerProblem := func(r record, msg string) []Problem {
		return []Problem{{File: name, Line: r.line, Field: "header", Message: msg}}
	}
	first := recs[0]
	firstCell := strings.TrimSpace(first.fields[0])
	versioned := strings.HasPrefix(strings.ToLower(firstCell), "version:")
	if versioned {
		if !strings.EqualFold(firstCell, "version:v1.0") {
			return layout{}, []Problem{{File: name, Line: first.line, Field: "version",
				Message: fmt.Sprintf(`expected "version:v1.0" (the first line of Entra's bulk templates), found %q`, firstCell)}}
		}
		if len(recs) < 2 {
			return layout{}, []Problem{{File: name, Line: first.line, Field: "header",
				Message: "expected the Entra header line after \"version:v1.0\", found the end of the file"}}
		}
	}
	head := first
	start := 1
	if versioned {
		head, start = recs[1], 2
	}
	// Empty header cells at the end (Excel pads a header to the sheet's
	// width) name no column: rows need not fill them.
	width := len(head.fields)
	for width > 1 && strings.TrimSpace(head.fields[width-1]) == "" {
		width--
	}
	lay := layout{headerLine: head.line, bodyStart: start, width: width, email: -1, display: -1}

	// Entra headers name the property in brackets: "User name [userPrincipalName] Required".
	props := map[string]int{}
	for i, h := range head.fields {
		m := propertyRE.FindStringSubmatch(h)
		if m == nil {
			continue
		}
		key := strings.ToLower(m[1])
		if j, dup := props[key]; dup {
			return layout{}, headerProblem(head, fmt.Sprintf("expected each column once, found [%s] in columns %d and %d", m[1], j+1, i+1))
		}
		props[key] = i
	}
	upn, hasUPN := props["userprincipalname"]
	invitee, hasInvitee := props["inviteeemail"]
	switch {
	case hasUPN:
		lay.format, lay.email = FormatEntraBulkCreate, upn
		dn, ok := props["displayname"]
		if !ok {
			return layout{}, headerProblem(head, `expected a column "Name [displayName] Required" (Entra bulk create), found none`)
		}
		lay.display = dn
		return lay, nil
	case hasInvitee:
		lay.format, lay.email = FormatEntraBulkInvite, invitee
		return lay, nil
	case versioned || len(props) > 0:
		// The line may be data carrying passwords: name only the bracketed
		// properties found, never the cells.
		found := "no [property] names"
		if len(props) > 0 {
			names := make([]string, 0, len(props))
			for _, h := range head.fields {
				if m := propertyRE.FindStringSubmatch(h); m != nil {
					names = append(names, "["+m[1]+"]")
				}
			}
			found = "only " + strings.Join(names, ", ")
		}
		return layout{}, headerProblem(head, fmt.Sprintf("expected %s, or %s, found %s", entraCreateHeader, entraInviteHeader, found))
	}

	// Plain: "email" and optional "display_name", any case; spaces and
	// hyphens count as underscores ("Display Name").
	lay.format = FormatPlain
	for i, h := range head.fields {
		key := strings.ToLower(strings.TrimSpace(h))
		key = strings.NewReplacer(" ", "_", "-", "_").Replace(key)
		var col *int
		switch key {
		case colEmail:
			col = &lay.email
		case colDisplayName:
			col = &lay.display
		default:
			continue
		}
		if *col >= 0 {
			return layout{}, headerProblem(head, fmt.Sprintf("expected each column once, found %q in columns %d and %d", key, *col+1, i+1))
		}
		*col = i
	}
	if lay.email < 0 {
		msg := `expected a header line with an "email" column (and optionally "display_name"), or an Entra bulk-create or bulk-invite header, found `
		if strings.Contains(strings.Join(head.fields, ""), "@") {
			// Data, maybe from a bulk-create file that lost its first two
			// lines: do not quote it, it may hold passwords.
			msg += `a line that looks like data (it contains an "@"); add the line "email,display_name" above it`
		} else {
			msg += fmt.Sprintf("%q", shorten(strings.Join(head.fields, ",")))
		}
		return layout{}, headerProblem(head, msg)
	}
	return lay, nil
}

func shorten(s string) string {
	const max = 120
	if r := []rune(s); len(r) > max {
		return string(r[:max]) + "..."
	}
	return s
}

// project keeps only the email and display-name columns of each record and
// prepends the canonical header for gocsv. Everything else, in particular
// the bulk-create password column, is dropped here, before any decoding.
//
// A row must have exactly the header's fields, whatever the format; empty
// fields after them (what Excel writes for a wider sheet) are allowed. Its
// values are not looked at otherwise: an extra comma shifts columns
// ("Yamada, Taro" unquoted would silently become "Yamada"), and a missing
// one could move a password into a column Cohort reads and quotes.
func project(name string, lay layout, body []record) ([][]string, []int, []Problem) {
	// Both canonical columns are always present, so gocsv sees every struct
	// tag matched whatever its package-level settings.
	rows := [][]string{{colEmail, colDisplayName}}
	lines := make([]int, 0, len(body))
	var problems []Problem
	for _, r := range body {
		if msg := widthProblem(lay, len(r.fields), !blank(r.fields[min(lay.width, len(r.fields)):])); msg != "" {
			problems = append(problems, Problem{File: name, Line: r.line, Field: "row", Message: msg})
			continue
		}
		display := ""
		if lay.display >= 0 {
			display = r.fields[lay.display]
		}
		rows = append(rows, []string{r.fields[lay.email], display})
		lines = append(lines, r.line)
	}
	return rows, lines, problems
}

// widthProblem says what is wrong with a row of n fields, extra telling
// whether any field beyond the header's is non-empty; "" if nothing is.
func widthProblem(lay layout, n int, extra bool) string {
	switch {
	case n >= lay.width && !extra:
		return ""
	case lay.format == FormatEntraBulkCreate:
		return fmt.Sprintf("expected %d fields like the header on line %d, found %d (an unquoted comma in a name, or a missing column?)", lay.width, lay.headerLine, n)
	case n < lay.width:
		return fmt.Sprintf("expected %d fields like the header on line %d, found %d (a missing column? leave an empty field between commas: \"a@example.com,\")", lay.width, lay.headerLine, n)
	default:
		return fmt.Sprintf("expected at most %d fields like the header on line %d, found %d (an unquoted comma in a name? quote the field: \"Yamada, Taro\")", lay.width, lay.headerLine, n)
	}
}

// sliceReader serves projected records to gocsv.
type sliceReader struct {
	rows [][]string
	next int
}

func (r *sliceReader) Read() ([]string, error) {
	if r.next >= len(r.rows) {
		return nil, io.EOF
	}
	r.next++
	return r.rows[r.next-1], nil
}

func (r *sliceReader) ReadAll() ([][]string, error) {
	rest := r.rows[r.next:]
	r.next = len(r.rows)
	return rest, nil
}

// validator checks rows one by one and remembers what it has seen.
type validator struct {
	file        string
	format      string
	naming      Naming
	seenEmail   map[string]int // lower-cased email -> line
	seenSchema  map[string]int // schema name -> line
	seenCluster map[string]int // cluster name -> line
}

func (v *validator) check(line int, r row) (Participant, []Problem) {
	var problems []Problem
	add := func(field, format string, args ...any) {
		problems = append(problems, Problem{File: v.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
	}

	email := strings.TrimSpace(r.Email)
	lower := strings.ToLower(email)
	bad := checkAddress(email, v.format == FormatEntraBulkCreate)
	switch {
	case email == "":
		add("email", "expected an address like name@example.com, found nothing")
	case bad != nil && v.format == FormatEntraBulkCreate:
		// A shifted row can put the password here: describe, never quote.
		add("email", "%s (value not shown: this file carries passwords)", bad.described)
	case bad != nil:
		add("email", "%s", bad.quoted)
	default:
		if first, dup := v.seenEmail[lower]; dup {
			add("email", "duplicate of line %d (%s)", first, lower)
		} else {
			v.seenEmail[lower] = line
		}
	}

	display := strings.TrimSpace(r.DisplayName)
	if msg := displayNameDefect(display); msg != "" {
		add("display_name", "%s", msg)
	}
	switch {
	case display == "" && v.format == FormatEntraBulkCreate:
		add("display_name", `expected a name (the "Name [displayName] Required" column), found nothing`)
	case display == "" && email != "":
		if at := strings.LastIndexByte(email, '@'); at > 0 {
			display = email[:at]
		}
	}
	if len(problems) > 0 {
		return Participant{}, problems
	}

	p := Participant{Email: lower, DisplayName: display, Line: line}
	p.Schema, p.ClusterName = v.naming.Derive(lower)
	// Distinct emails practically never derive the same name ({hash} differs),
	// but if they do, refuse rather than let two people share a schema.
	if first, dup := v.seenSchema[p.Schema]; dup {
		add("email", "expected a unique schema name, found %q again (also derived for line %d); change the naming pattern", p.Schema, first)
	}
	if first, dup := v.seenCluster[p.ClusterName]; dup {
		add("email", "expected a unique cluster name, found %q again (also derived for line %d); change the naming pattern", p.ClusterName, first)
	}
	if len(problems) > 0 {
		return Participant{}, problems
	}
	v.seenSchema[p.Schema] = line
	v.seenCluster[p.ClusterName] = line
	return p, nil
}

// displayNameDefect says what is wrong with a (trimmed) display name, or "".
// It never quotes the name: it may be megabytes long, and in a bulk-create
// file a shifted row can put a password in its place.
func displayNameDefect(s string) string {
	if n := utf8.RuneCountInString(s); n > MaxDisplayNameLen {
		return fmt.Sprintf("expected at most %d characters (Entra's limit for a display name), found %d", MaxDisplayNameLen, n)
	}
	pos := 0
	for _, r := range s {
		pos++
		switch {
		case r == '\r' || r == '\n' || r == '\t' || r == 0x85 || r == 0x2028 || r == 0x2029:
			return "expected a single line of text, found a line break or tab"
		case unicode.IsControl(r):
			return fmt.Sprintf("expected text without control characters, found U+%04X at character %d", r, pos)
		}
	}
	return ""
}
