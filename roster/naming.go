package roster

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Naming defaults.
const (
	DefaultSchemaPattern  = "{local}_{hash}"
	DefaultClusterPattern = "cohort-{local}-{hash}"
	DefaultMaxLen         = 64

	// maxNameLen is Unity Catalog's limit for an identifier.
	maxNameLen = 255
	// maxDomainLen bounds {domain} so a long domain cannot crowd out {local}.
	maxDomainLen = 16
	// hashLen is the length of {hash}.
	hashLen = 8
)

// Naming derives a participant's Unity Catalog schema name and cluster name
// from the email alone, so the names are the same every day and on every
// machine. Patterns may contain:
//
//	{local}  the email's local part, lower-cased, accents removed, every run
//	         of other characters replaced by '_' (schema) or '-' (cluster),
//	         truncated so the whole name fits MaxLen; a local part with no
//	         usable character (for example 山田@example.jp) becomes "u"
//	         followed by 8 more hex digits of the email's hash
//	{domain} the first label of the email's domain, sanitized the same way,
//	         at most 16 characters
//	{hash}   the first 8 hex digits of sha256(lower-cased email)
//
// {hash} is mandatory: it keeps emails that sanitize alike (taro.yamada@ and
// taro_yamada@) apart. Names never start with a digit, '-' or '_': such a
// name gets a "p" in front.
type Naming struct {
	SchemaPattern  string // default "{local}_{hash}"; literal characters [a-z0-9_]
	ClusterPattern string // default "cohort-{local}-{hash}"; literal characters [a-z0-9_-]
	MaxLen         int    // maximum length of both names; default 64, at most 255
}

// DefaultNaming returns the naming used when none is configured.
func DefaultNaming() Naming {
	return Naming{SchemaPattern: DefaultSchemaPattern, ClusterPattern: DefaultClusterPattern, MaxLen: DefaultMaxLen}
}

// withDefaults fills the zero fields of n from DefaultNaming.
func (n Naming) withDefaults() Naming {
	d := DefaultNaming()
	if n.SchemaPattern == "" {
		n.SchemaPattern = d.SchemaPattern
	}
	if n.ClusterPattern == "" {
		n.ClusterPattern = d.ClusterPattern
	}
	if n.MaxLen == 0 {
		n.MaxLen = d.MaxLen
	}
	return n
}

// Validate reports every way n cannot produce legal, distinct names. Empty
// fields stand for their defaults.
func (n Naming) Validate() error {
	n = n.withDefaults()
	var errs []error
	if n.MaxLen < 0 || n.MaxLen > maxNameLen {
		errs = append(errs, fmt.Errorf("naming: max length %d: expected 1 to %d", n.MaxLen, maxNameLen))
	}
	for _, p := range []struct {
		what, pattern, allowed string
	}{
		{"schema pattern", n.SchemaPattern, "a-z, 0-9 and _"},
		{"cluster pattern", n.ClusterPattern, "a-z, 0-9, _ and -"},
	} {
		toks, err := parsePattern(p.pattern, p.what == "cluster pattern")
		if err != nil {
			errs = append(errs, fmt.Errorf("naming: %s %q: %w (allowed: {local}, {domain}, {hash} and %s)", p.what, p.pattern, err, p.allowed))
			continue
		}
		var hasHash bool
		minLen := 1 // room for a "p" prefix
		for _, t := range toks {
			switch t {
			case "{hash}":
				hasHash = true
				minLen += hashLen
			case "{domain}":
				minLen += maxDomainLen
			case "{local}":
				minLen++
			default:
				minLen += len(t)
			}
		}
		if !hasHash {
			errs = append(errs, fmt.Errorf("naming: %s %q: expected a {hash} placeholder, which keeps emails that sanitize alike apart", p.what, p.pattern))
		}
		if n.MaxLen >= 0 && minLen > n.MaxLen {
			errs = append(errs, fmt.Errorf("naming: %s %q: needs a max length of at least %d, have %d", p.what, p.pattern, minLen, n.MaxLen))
		}
	}
	return errors.Join(errs...)
}

// parsePattern splits a pattern into placeholders and literal runs.
func parsePattern(p string, dash bool) ([]string, error) {
	var toks []string
	for p != "" {
		if p[0] == '{' {
			end := strings.IndexByte(p, '}')
			if end < 0 {
				return nil, fmt.Errorf("unterminated placeholder %q", p)
			}
			switch ph := p[:end+1]; ph {
			case "{local}", "{domain}", "{hash}":
				toks = append(toks, ph)
			default:
				return nil, fmt.Errorf("unknown placeholder %q", ph)
			}
			p = p[end+1:]
			continue
		}
		end := strings.IndexByte(p, '{')
		if end < 0 {
			end = len(p)
		}
		lit := p[:end]
		for _, r := range lit {
			if !isNameChar(r, dash) {
				return nil, fmt.Errorf("character %q not allowed", r)
			}
		}
		toks = append(toks, lit)
		p = p[end:]
	}
	return toks, nil
}

func isNameChar(r rune, dash bool) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || dash && r == '-'
}

// Derive returns the schema and cluster names for email. It assumes n is
// valid (see Validate); empty fields stand for their defaults.
func (n Naming) Derive(email string) (schema, cluster string) {
	n = n.withDefaults()
	email = strings.ToLower(strings.TrimSpace(email))
	sum := sha256.Sum256([]byte(email))
	h := hex.EncodeToString(sum[:])
	local, domain := email, ""
	if at := strings.LastIndexByte(email, '@'); at >= 0 {
		local, domain = email[:at], email[at+1:]
	}
	if dot := strings.IndexByte(domain, '.'); dot >= 0 {
		domain = domain[:dot]
	}
	return expand(n.SchemaPattern, n.MaxLen, '_', local, domain, h),
		expand(n.ClusterPattern, n.MaxLen, '-', local, domain, h)
}

func expand(pattern string, maxLen int, sep byte, local, domain, h string) string {
	toks, err := parsePattern(pattern, sep == '-')
	if err != nil {
		// Derive documents that n must be valid; fall back to something
		// legal and still unique rather than panic.
		toks = []string{"p", "{hash}"}
	}
	loc := sanitize(local, sep)
	if loc == "" {
		loc = "u" + h[hashLen:2*hashLen]
	}
	dom := truncName(sanitize(domain, sep), maxDomainLen, sep)
	if dom == "" {
		dom = "d"
	}
	value := func(t string) string {
		switch t {
		case "{local}":
			return loc
		case "{domain}":
			return dom
		case "{hash}":
			return h[:hashLen]
		}
		return t
	}

	fixed, locals := 0, 0
	for _, t := range toks {
		if t == "{local}" {
			locals++
			continue
		}
		fixed += len(value(t))
	}
	prefix := ""
	if first := value(toks[0]); first == "" || !(first[0] >= 'a' && first[0] <= 'z') {
		prefix = "p"
	}
	if locals > 0 {
		loc = truncName(loc, (maxLen-fixed-len(prefix))/locals, sep)
	}
	var b strings.Builder
	b.WriteString(prefix)
	for _, t := range toks {
		b.WriteString(value(t))
	}
	return b.String()
}

// stripMarks decomposes (NFKD: é -> e + accent, ｔａｒｏ -> taro) and drops the
// combining marks.
var stripMarks = transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn)))

// sanitize lower-cases s, removes accents, keeps [a-z0-9] and turns every run
// of anything else into one sep, trimmed at both ends.
func sanitize(s string, sep byte) string {
	s = strings.ToLower(s)
	if !isASCII(s) {
		if t, _, err := transform.String(stripMarks, s); err == nil {
			s = strings.ToLower(t)
		}
	}
	var b strings.Builder
	pending := false
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if pending && b.Len() > 0 {
				b.WriteByte(sep)
			}
			pending = false
			b.WriteRune(r)
			continue
		}
		pending = true
	}
	return b.String()
}

// truncName cuts an ASCII name to at most n bytes without leaving a trailing
// separator.
func truncName(s string, n int, sep byte) string {
	if n < 0 {
		n = 0
	}
	if len(s) > n {
		s = strings.TrimRight(s[:n], string(sep))
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
