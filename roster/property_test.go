package roster

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"
)

// The invariants every Parse result holds, whatever the file.
var (
	// An accepted address, lower-cased: Entra's characters before the "@",
	// dot-separated non-empty runs; letter-digit-hyphen labels after it.
	// emailOracle is an accepted address in a bulk-create roster (Entra's
	// user principal name characters); mailboxOracle in the other formats
	// (RFC 5322's atext). Both ASCII only.
	emailOracle   = regexp.MustCompile(`^[a-z0-9'_!#^~-]+(\.[a-z0-9'_!#^~-]+)*@[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)
	mailboxOracle = regexp.MustCompile("^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
	schemaOracle  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	clusterOracle = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

// checkInvariants fails t unless Parse's answer for a file is either a
// *ValidationError whose every problem names the file, a line, a field and
// a message, or participants that Cohort can carry: ASCII addresses within
// the lengths, display names within Entra's, unique legal names. secrets
// are cells (passwords) no message may quote.
func checkInvariants(t *testing.T, name string, data []byte, r *Roster, err error, secrets []string) {
	t.Helper()
	lines := bytes.Count(data, []byte{'\n'}) + 1
	checkProblems := func(what string, ps []Problem) {
		t.Helper()
		for _, p := range ps {
			if p.File != name || p.Line < 1 || p.Line > lines || p.Field == "" || p.Message == "" {
				t.Errorf("%s: problem %+v: want File %q, Line in 1..%d, a Field and a Message", what, p, name, lines)
			}
			for _, s := range secrets {
				if strings.Contains(p.Message, s) {
					t.Errorf("%s: problem quotes a password cell: %s", what, p)
				}
			}
		}
	}
	if err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Parse error = %v (%T), want a *ValidationError", err, err)
		}
		if len(ve.Problems) == 0 {
			t.Errorf("ValidationError with no problems")
		}
		checkProblems("error", ve.Problems)
		return
	}
	if len(r.Participants) == 0 {
		t.Errorf("Parse accepted a file with no participants")
	}
	checkProblems("skipped", r.Skipped)
	entra := r.Format == FormatEntraBulkCreate
	emails, schemas, clusters := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range r.Participants {
		at := strings.LastIndexByte(p.Email, '@')
		switch {
		case entra && !emailOracle.MatchString(p.Email), !entra && !mailboxOracle.MatchString(p.Email):
			t.Errorf("line %d: accepted address %q", p.Line, p.Email)
		case at > MaxLocalPartLen || len(p.Email) > MaxAddressLen:
			t.Errorf("line %d: accepted address %q of %d characters (%d before the @)", p.Line, p.Email, len(p.Email), at)
		case entra && (len(p.Email) > MaxEntraUPNLen || len(p.Email)-at-1 > MaxEntraUPNDomainLen):
			t.Errorf("line %d: bulk-create accepted %q beyond Entra's lengths", p.Line, p.Email)
		case strings.Trim(p.Email[strings.LastIndexByte(p.Email, '.')+1:], "0123456789") == "":
			t.Errorf("line %d: accepted a numeric top-level domain %q", p.Line, p.Email)
		}
		if n := utf8.RuneCountInString(p.DisplayName); n == 0 || n > MaxDisplayNameLen {
			t.Errorf("line %d: display name of %d characters", p.Line, n)
		}
		if strings.IndexFunc(p.DisplayName, func(r rune) bool { return unicode.IsControl(r) || r == 0x2028 || r == 0x2029 }) >= 0 {
			t.Errorf("line %d: display name %q has a control character", p.Line, p.DisplayName)
		}
		if !schemaOracle.MatchString(p.Schema) || len(p.Schema) > DefaultMaxLen ||
			!clusterOracle.MatchString(p.ClusterName) || len(p.ClusterName) > DefaultMaxLen {
			t.Errorf("line %d: names %q, %q", p.Line, p.Schema, p.ClusterName)
		}
		if emails[p.Email] || schemas[p.Schema] || clusters[p.ClusterName] {
			t.Errorf("line %d: %s, %s or %s accepted twice", p.Line, p.Email, p.Schema, p.ClusterName)
		}
		emails[p.Email], schemas[p.Schema], clusters[p.ClusterName] = true, true, true
		if p.Line < 2 || p.Line > lines {
			t.Errorf("participant %s: line %d, want 2..%d", p.Email, p.Line, lines)
		}
	}
}

// gen makes adversarial roster content from one seed.
type gen struct {
	rng   *rand.Rand
	noisy bool     // false: only rows that should be accepted
	seen  []string // emails so far, for duplicates
	rows  int      // rows written
}

var (
	lookalikeRunes = []rune("аеорсухіјѕһԁАВЕКМНОРСТХУІЈЅΑΒΕΖΗΙΚΜΝΟΡΤΧΥοανρι’‐–−ı")
	invisibleRunes = []rune{0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0xFE0F}
	otherRunes     = []rune("éüñçøåßłżЖж山田太郎さくらソ表髙﨑①～￥ｱ\u00a0\u3000🚀🎉👩🏽‍💻\u0301\u0085\u009b\u2028")
	asciiSpecials  = []byte("'.-_!#^~+&%\"<> ,;:()[]\\/=?*|{}@`$")
)

func (g *gen) pick(s string) byte { return s[g.rng.IntN(len(s))] }

func (g *gen) word(n int) string {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = g.pick(alnum)
	}
	return string(b)
}

// runeOf returns a random non-ASCII rune of an interesting kind.
func (g *gen) runeOf() rune {
	switch g.rng.IntN(4) {
	case 0:
		return lookalikeRunes[g.rng.IntN(len(lookalikeRunes))]
	case 1:
		return invisibleRunes[g.rng.IntN(len(invisibleRunes))]
	case 2:
		return rune(0xFF01 + g.rng.IntN(0x5E)) // full-width ASCII
	default:
		return otherRunes[g.rng.IntN(len(otherRunes))]
	}
}

// insert puts s at a random byte boundary of a rune in t.
func (g *gen) insert(t, s string) string {
	idx := []int{len(t)}
	for i := range t {
		idx = append(idx, i)
	}
	at := idx[g.rng.IntN(len(idx))]
	return t[:at] + s + t[at:]
}

func (g *gen) email() string {
	if !g.noisy {
		e := fmt.Sprintf("%s.%d@%s.example", g.word(1+g.rng.IntN(20)), len(g.seen), strings.ToLower(g.word(1+g.rng.IntN(20))))
		g.seen = append(g.seen, e)
		return e
	}
	if len(g.seen) > 0 && g.rng.IntN(20) == 0 { // a duplicate, cased differently
		return strings.ToUpper(g.seen[g.rng.IntN(len(g.seen))])
	}
	local := g.word(1 + g.rng.IntN(12))
	for range g.rng.IntN(3) {
		local += string(g.pick("._-'!#^~")) + g.word(1+g.rng.IntN(8))
	}
	labels := []string{g.word(1 + g.rng.IntN(12))}
	for range 1 + g.rng.IntN(3) {
		labels = append(labels, strings.ToLower(g.word(2+g.rng.IntN(8))))
	}
	if g.rng.IntN(8) == 0 {
		labels[0] = g.word(30+g.rng.IntN(40)) + "-" + labels[0]
	}
	if g.rng.IntN(8) == 0 {
		local += g.word(50 + g.rng.IntN(20))
	}
	e := local + "@" + strings.Join(labels, ".")
	for range g.rng.IntN(3) {
		switch g.rng.IntN(10) {
		case 0, 1, 2:
			e = g.insert(e, string(g.runeOf()))
		case 3:
			e = g.insert(e, string(asciiSpecials[g.rng.IntN(len(asciiSpecials))]))
		case 4:
			e = g.insert(e, "..")
		case 5:
			e = "  " + e + " "
		case 6:
			e = g.insert(e, []string{"\r\n", "\n", "\"", ",", "\t"}[g.rng.IntN(5)])
		case 7:
			e = strings.Repeat(e, 1+g.rng.IntN(6))
		case 8:
			e = ""
		case 9:
			e = "Name <" + e + ">"
		}
	}
	g.seen = append(g.seen, e)
	return e
}

func (g *gen) display() string {
	var b strings.Builder
	n := g.rng.IntN(12)
	if !g.noisy {
		for range 1 + n {
			b.WriteString(string(otherRunes[g.rng.IntN(10)]) + g.word(3) + " ")
		}
		return b.String()
	}
	switch g.rng.IntN(10) {
	case 0:
		n = 250 + g.rng.IntN(12) // around the limit
	case 1:
		n = 2000 + g.rng.IntN(3000)
	}
	for range n {
		switch g.rng.IntN(6) {
		case 0, 1:
			b.WriteString(g.word(1))
		case 2:
			b.WriteRune(g.runeOf())
		case 3:
			b.WriteString(" ")
		case 4:
			b.WriteString([]string{`"`, ",", "\r\n", "\n", "\t", "'", "=", "山"}[g.rng.IntN(8)])
		default:
			b.WriteRune(rune(0x4E00 + g.rng.IntN(0x5000)))
		}
	}
	return b.String()
}

// roster returns a file in one of the three formats and the password cells
// it holds.
func (g *gen) roster() (data []byte, secrets []string) {
	var head []string
	var row func(email, display string) []string
	format := g.rng.IntN(3)
	switch format {
	case 0:
		head = []string{"email", "display_name"}
		if g.rng.IntN(3) == 0 {
			head = []string{"Display Name", "notes", "Email"}
			row = func(e, d string) []string { return []string{d, g.word(3), e} }
		} else {
			row = func(e, d string) []string { return []string{e, d} }
		}
	case 1:
		head = []string{"Email address to invite [inviteeEmail] Required", "Redirection url [inviteRedirectURL] Required"}
		row = func(e, _ string) []string { return []string{e, "https://myapplications.microsoft.com"} }
	default:
		head = []string{"Name [displayName] Required", "User name [userPrincipalName] Required", "Initial password [passwordProfile] Required", "Block sign in (Yes/No) [accountEnabled] Required"}
		row = func(e, d string) []string {
			pw := fmt.Sprintf("Pw!Canary-%d-%s", g.rng.IntN(1e6), g.word(6))
			secrets = append(secrets, pw)
			return []string{d, e, pw, "No"}
		}
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = g.rng.IntN(2) == 0
	if format > 0 {
		_ = w.Write(append([]string{"version:v1.0"}, make([]string, len(head)-1)...))
	}
	_ = w.Write(head)
	for range 1 + g.rng.IntN(80) {
		r := row(g.email(), g.display())
		g.rows++
		switch g.rng.IntN(12) {
		case 0:
			if !g.noisy {
				break
			}
			r = r[:g.rng.IntN(len(r))] // short
		case 1:
			if g.noisy {
				r = append(r, g.word(4)) // long
			}
		case 2:
			r = append(r, "", "") // Excel's empty trailing fields
		}
		_ = w.Write(r)
		if g.noisy && g.rng.IntN(40) == 0 {
			w.Flush()
			buf.WriteString("bare\"quote@x.example,A\n") // malformed
		}
	}
	w.Flush()
	data = buf.Bytes()
	switch g.rng.IntN(4) {
	case 0:
		data = append([]byte("\xef\xbb\xbf"), data...)
	case 1:
		if sj, err := japanese.ShiftJIS.NewEncoder().Bytes(data); err == nil {
			if back, err := japanese.ShiftJIS.NewDecoder().Bytes(sj); err == nil && bytes.Equal(back, data) {
				data = sj
			}
		}
	}
	return data, secrets
}

// TestParse_generatedRosters is the property test: thousands of rows of
// adversarial content (look-alikes, full-width and invisible characters,
// emoji, very long fields, quotes, commas and line breaks inside quotes,
// short and long rows, BOM, Shift_JIS), every roster either refused with
// FILE:LINE problems or accepted with only participants Cohort can carry.
func TestParse_generatedRosters(t *testing.T) {
	rows, refused, accepted := 0, 0, 0
	for seed := range uint64(120) {
		g := &gen{rng: rand.New(rand.NewPCG(seed, 17)), noisy: seed%3 != 0}
		data, secrets := g.roster()
		rows += g.rows
		name := fmt.Sprintf("gen-%d.csv", seed)
		t.Run(name, func(t *testing.T) {
			for _, skip := range []bool{false, true} {
				r, err := Parse(name, data, Options{SkipInvalid: skip})
				checkInvariants(t, name, data, r, err, secrets)
				switch {
				case !skip && err != nil:
					refused++
				case err == nil:
					accepted++
				}
			}
		})
	}
	t.Logf("%d generated rows: %d rosters refused, %d accepted (whole or with --skip-invalid)", rows, refused, accepted)
	if rows < 3000 || accepted < 40 || refused < 40 {
		t.Errorf("generator made %d rows, %d accepted and %d refused rosters; want thousands of rows and both outcomes", rows, accepted, refused)
	}
}

// FuzzParse checks the same invariants on any bytes. Its seeds (the test
// files and a few edge cases) run with every go test.
func FuzzParse(f *testing.F) {
	for _, name := range []string{
		"plain.csv", "plain_bom_crlf.csv", "invite.csv", "template_example_row.csv", "bad_emails.csv",
		"non_ascii_emails.csv", "bulk_create_non_ascii.csv", "bulk_create_bad_rows.csv", "plain_bad_rows.csv",
		"bad_quote.csv", "duplicates.csv", "latin1.csv", "participants.utf8.csv",
	} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
	}
	for _, s := range []string{
		"", "email\n", "email\n@\n", "email\na@b.c\n", "email\nt\u0430ro@b.example\n", "email\n\uff54@b.example\n",
		"email,display_name\na@b.example,\"" + strings.Repeat("🚀", 257) + "\"\n",
		"email,display_name\na@b.example\n", "version:v1.0\n", "\xef\xbb\xbfemail\r\na@b.example\r\n",
		"email\n" + strings.Repeat("a", 65) + "@b.example\n",
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, skip bool) {
		r, err := Parse("fuzz.csv", data, Options{SkipInvalid: skip})
		checkInvariants(t, "fuzz.csv", data, r, err, nil)
	})
}
