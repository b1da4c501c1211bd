package roster

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits on what one roster row may hold. The address limits keep every
// accepted address something Cohort can carry (a workflow id, a gRPC header,
// a search attribute: ASCII, bounded) and something Entra accepts as a user
// principal name.
const (
	// MaxLocalPartLen is RFC 5321's limit for the part before the "@"
	// (section 4.5.3.1.1); Entra's is the same.
	MaxLocalPartLen = 64
	// MaxAddressLen is the longest address RFC 5321 can carry: a path is at
	// most 256 octets including its angle brackets (section 4.5.3.1.3,
	// RFC 3696 errata 1690).
	MaxAddressLen = 254
	// MaxEntraUPNLen and MaxEntraUPNDomainLen are Entra's limits for a user
	// principal name: at most 113 characters, 64 before the "@" and 48 after
	// it. Source: Microsoft Learn, "Microsoft Entra password policies",
	// section "Username policies" (docs/identity/authentication/
	// concept-sspr-policy.md), repeated in Microsoft support article 2439357
	// ("Invalid user name" when you create a user name that contains a
	// special character). They apply to the bulk-create format, whose
	// addresses become user principal names.
	MaxEntraUPNLen       = 113
	MaxEntraUPNDomainLen = 48
	// MaxDisplayNameLen is Entra's (Microsoft Graph's) limit for a user's
	// displayName, in characters (Unicode code points here): "Maximum length
	// is 256 characters" (Microsoft Graph v1.0, user resource type).
	MaxDisplayNameLen = 256

	// maxLabelLen is DNS's limit for one domain label (RFC 1035 2.3.4).
	maxLabelLen = 63
)

// upnLocalChars are the characters Entra accepts in a user principal name
// besides ASCII letters and digits (same source as MaxEntraUPNLen).
const upnLocalChars = `'.-_!#^~`

const upnAllowed = `letters, digits and ' . - _ ! # ^ ~`

func isUPNLocalChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(upnLocalChars, c) >= 0
}

// atextChars are the characters RFC 5322 (section 3.2.3, atext) allows in an
// unquoted local part besides letters, digits and the dot. A bulk-invite or
// plain roster names people by their own mailbox (a guest's a+tag@gmail.com,
// an account user's userName), not by a user principal name Entra creates, so
// those formats take the mailbox characters; none of them needs quoting in a
// workflow id, a gRPC header or a SCIM filter.
const atextChars = "!#$%&'*+-/=?^_`{|}~"

const atextAllowed = "letters, digits, dots and ! # $ % & ' * + - / = ? ^ _ ` { | } ~"

func isAtextChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || strings.IndexByte(atextChars, c) >= 0
}

func isLDH(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// addressCheck is what checkAddress found wrong with an address: a message
// that quotes it (plain and invite files) and one that only describes it
// (bulk-create files, where a shifted cell may be a password).
type addressCheck struct {
	quoted, described string
}

// checkAddress returns nil if s is an address Cohort accepts: ASCII, a local
// part of Entra's characters without leading, trailing or doubled dots, a
// domain of at least two letter-digit-hyphen labels, within RFC 5321's
// lengths and, with entra set, within Entra's user principal name lengths.
func checkAddress(s string, entra bool) *addressCheck {
	if !isASCII(s) {
		return nonASCII(s, entra)
	}
	if reason := asciiDefect(s, entra, false); reason != "" {
		return &addressCheck{
			quoted:    fmt.Sprintf("expected an address like name@example.com, found %q: %s", shorten(s), reason),
			described: fmt.Sprintf("expected an address like name@example.com, found %s", asciiDefect(s, entra, true)),
		}
	}
	return nil
}

// asciiDefect says what is wrong with an ASCII address, or "". With secret
// set it names no character of s.
func asciiDefect(s string, entra, secret bool) string {
	at := strings.IndexByte(s, '@')
	switch {
	case strings.ContainsAny(s, "<>"):
		return "a name and an address in angle brackets (keep only the address)"
	case strings.ContainsAny(s, " \t"):
		return "an address containing spaces"
	case at < 0:
		return `text without an "@"`
	case strings.Count(s, "@") > 1:
		return `more than one "@"`
	case at == 0:
		return `nothing before the "@"`
	case at == len(s)-1:
		return `nothing after the "@"`
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case len(local) > MaxLocalPartLen:
		return fmt.Sprintf(`%d characters before the "@", at most %d allowed (RFC 5321)`, len(local), MaxLocalPartLen)
	case len(s) > MaxAddressLen:
		return fmt.Sprintf("an address of %d characters, at most %d allowed (RFC 5321)", len(s), MaxAddressLen)
	case entra && len(s) > MaxEntraUPNLen:
		return fmt.Sprintf("an address of %d characters; Entra accepts at most %d in a user principal name", len(s), MaxEntraUPNLen)
	case entra && len(domain) > MaxEntraUPNDomainLen:
		return fmt.Sprintf(`%d characters after the "@"; Entra accepts at most %d in a user principal name`, len(domain), MaxEntraUPNDomainLen)
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case entra && !isUPNLocalChar(c):
			if secret {
				return fmt.Sprintf(`a character before the "@" that Entra does not accept in a user principal name (it accepts %s)`, upnAllowed)
			}
			return fmt.Sprintf(`%q before the "@", which Entra does not accept in a user principal name (it accepts %s)`, string(c), upnAllowed)
		case !entra && !isAtextChar(c):
			return fmt.Sprintf(`%q before the "@", which an unquoted address does not allow (RFC 5322 allows %s)`, string(c), atextAllowed)
		}
	}
	switch {
	case local[0] == '.':
		return `a dot at the start of the part before the "@"`
	case local[len(local)-1] == '.':
		return `a dot just before the "@"`
	case strings.Contains(local, ".."):
		return `two dots in a row before the "@"`
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return `a domain without a dot after the "@"`
	}
	for _, l := range labels {
		switch {
		case l == "":
			return "a domain with an empty label (a dot at its start or end, or two in a row)"
		case len(l) > maxLabelLen:
			return fmt.Sprintf("a domain label of %d characters, at most %d allowed", len(l), maxLabelLen)
		case l[0] == '-' || l[len(l)-1] == '-':
			return "a domain label that starts or ends with a hyphen"
		}
		for i := 0; i < len(l); i++ {
			if !isLDH(l[i]) {
				if secret {
					return "a domain with a character other than letters, digits, hyphens and dots"
				}
				return fmt.Sprintf("%q in the domain, which allows only letters, digits, hyphens and dots", string(l[i]))
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "a domain that ends in a number (an IP address is not accepted)"
	}
	return ""
}

// nonASCII describes the first non-ASCII character of s and, where every
// non-ASCII character is invisible, full-width or a look-alike of an ASCII
// one, suggests the ASCII address.
func nonASCII(s string, entra bool) *addressCheck {
	var (
		first    rune
		firstPos int
		n        int
		ascii    strings.Builder
		mappable = true
	)
	pos := 0
	for _, r := range s {
		pos++
		if r < utf8.RuneSelf {
			ascii.WriteRune(r)
			continue
		}
		n++
		if n == 1 {
			first, firstPos = r, pos
		}
		if rep, ok := asciiFor(r); ok {
			ascii.WriteString(rep)
		} else {
			mappable = false
		}
	}
	const why = "expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name)"
	more := ""
	switch {
	case n == 2:
		more = ", and 1 more character is not ASCII"
	case n > 2:
		more = fmt.Sprintf(", and %d more are not ASCII", n-1)
	}
	fix := "; type the address the person signs in with, in ASCII"
	if mappable && ascii.Len() > 0 && checkAddress(ascii.String(), entra) == nil {
		fix = fmt.Sprintf("; did you mean %q?", ascii.String())
	}
	return &addressCheck{
		quoted: fmt.Sprintf("%s, found %q: character %d is %s%s%s",
			why, shorten(s), firstPos, describeRune(first, false), more, fix),
		described: fmt.Sprintf("%s, found an address whose character %d is %s%s",
			why, firstPos, describeRune(first, true), more),
	}
}

// invisibles are the characters that show as nothing (or nearly) and are
// easily pasted into an address by accident.
var invisibles = map[rune]string{
	0x00AD: "soft hyphen",
	0x034F: "combining grapheme joiner",
	0x061C: "Arabic letter mark",
	0x180E: "Mongolian vowel separator",
	0x200B: "zero-width space",
	0x200C: "zero-width non-joiner",
	0x200D: "zero-width joiner",
	0x200E: "left-to-right mark",
	0x200F: "right-to-left mark",
	0x202A: "left-to-right embedding",
	0x202B: "right-to-left embedding",
	0x202C: "pop directional formatting",
	0x202D: "left-to-right override",
	0x202E: "right-to-left override",
	0x2060: "word joiner",
	0x2066: "left-to-right isolate",
	0x2067: "right-to-left isolate",
	0x2068: "first strong isolate",
	0x2069: "pop directional isolate",
	0xFEFF: "byte order mark",
}

// spaces are visible-as-blank characters that are not ASCII spaces.
var spaces = map[rune]string{
	0x00A0: "no-break space",
	0x2007: "figure space",
	0x202F: "narrow no-break space",
	0x3000: "ideographic (full-width) space",
}

// lookalikes maps Cyrillic and Greek letters (and typographic punctuation)
// that look like ASCII ones and that NFKC leaves alone.
var lookalikes = map[rune]struct {
	script string
	ascii  byte
}{
	// Cyrillic
	'а': {"Cyrillic", 'a'}, 'е': {"Cyrillic", 'e'}, 'о': {"Cyrillic", 'o'}, 'р': {"Cyrillic", 'p'},
	'с': {"Cyrillic", 'c'}, 'у': {"Cyrillic", 'y'}, 'х': {"Cyrillic", 'x'}, 'і': {"Cyrillic", 'i'},
	'ј': {"Cyrillic", 'j'}, 'ѕ': {"Cyrillic", 's'}, 'һ': {"Cyrillic", 'h'}, 'ԁ': {"Cyrillic", 'd'},
	'ԛ': {"Cyrillic", 'q'}, 'ԝ': {"Cyrillic", 'w'}, 'ӏ': {"Cyrillic", 'l'},
	'А': {"Cyrillic", 'A'}, 'В': {"Cyrillic", 'B'}, 'Е': {"Cyrillic", 'E'}, 'К': {"Cyrillic", 'K'},
	'М': {"Cyrillic", 'M'}, 'Н': {"Cyrillic", 'H'}, 'О': {"Cyrillic", 'O'}, 'Р': {"Cyrillic", 'P'},
	'С': {"Cyrillic", 'C'}, 'Т': {"Cyrillic", 'T'}, 'Х': {"Cyrillic", 'X'}, 'У': {"Cyrillic", 'Y'},
	'І': {"Cyrillic", 'I'}, 'Ј': {"Cyrillic", 'J'}, 'Ѕ': {"Cyrillic", 'S'}, 'Ԛ': {"Cyrillic", 'Q'},
	'Ԝ': {"Cyrillic", 'W'},
	// Greek
	'Α': {"Greek", 'A'}, 'Β': {"Greek", 'B'}, 'Ε': {"Greek", 'E'}, 'Ζ': {"Greek", 'Z'},
	'Η': {"Greek", 'H'}, 'Ι': {"Greek", 'I'}, 'Κ': {"Greek", 'K'}, 'Μ': {"Greek", 'M'},
	'Ν': {"Greek", 'N'}, 'Ο': {"Greek", 'O'}, 'Ρ': {"Greek", 'P'}, 'Τ': {"Greek", 'T'},
	'Χ': {"Greek", 'X'}, 'Υ': {"Greek", 'Y'},
	'ο': {"Greek", 'o'}, 'α': {"Greek", 'a'}, 'ι': {"Greek", 'i'}, 'κ': {"Greek", 'k'},
	'ν': {"Greek", 'v'}, 'ρ': {"Greek", 'p'}, 'υ': {"Greek", 'u'},
	// Latin letters without an ASCII decomposition
	'ı': {"dotless", 'i'},
	// Punctuation word processors substitute
	'\u2010': {"typographic", '-'}, '\u2011': {"typographic", '-'}, '\u2012': {"typographic", '-'},
	'\u2013': {"typographic", '-'}, '\u2212': {"typographic", '-'},
	'\u2018': {"typographic", '\''}, '\u2019': {"typographic", '\''}, '\u02BC': {"typographic", '\''},
}

// asciiFor returns what r stands for in an address typed in ASCII: nothing
// for an invisible character, the ASCII text NFKC gives (full-width and
// other compatibility forms), or the letter a look-alike imitates.
func asciiFor(r rune) (string, bool) {
	if _, ok := invisibles[r]; ok || isInvisible(r) {
		return "", true
	}
	if _, ok := spaces[r]; ok {
		return "", false // a space in an address is a mistake of its own
	}
	if l, ok := lookalikes[r]; ok {
		return string(l.ascii), true
	}
	if k := norm.NFKC.String(string(r)); k != string(r) && isASCII(k) && !strings.ContainsAny(k, " \t") {
		return k, true
	}
	return "", false
}

// isInvisible reports format characters and variation selectors that no
// table names.
func isInvisible(r rune) bool {
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r)
}

// describeRune names r for a message. With secret set it shows no glyph,
// only the code point and its kind.
func describeRune(r rune, secret bool) string {
	cp := fmt.Sprintf("U+%04X", r)
	if name, ok := invisibles[r]; ok {
		return fmt.Sprintf("an invisible %s (%s)", name, cp)
	}
	if isInvisible(r) {
		return fmt.Sprintf("an invisible formatting character (%s)", cp)
	}
	if name, ok := spaces[r]; ok {
		return fmt.Sprintf("a %s (%s)", name, cp)
	}
	if l, ok := lookalikes[r]; ok {
		kind := "letter"
		if l.script == "typographic" || l.script == "dotless" {
			kind = "character"
		}
		if secret {
			return fmt.Sprintf("a %s %s (%s) that looks like the ASCII %q", l.script, kind, cp, string(l.ascii))
		}
		return fmt.Sprintf("the %s %s %s (%s), which looks like the ASCII %q", l.script, kind, string(r), cp, string(l.ascii))
	}
	if k := norm.NFKC.String(string(r)); k != string(r) && isASCII(k) {
		form := "compatibility form"
		if r >= 0xFF01 && r <= 0xFF5E {
			form = "full-width form"
		}
		if secret {
			return fmt.Sprintf("the %s of %q (%s)", form, k, cp)
		}
		return fmt.Sprintf("%s (%s), the %s of %q", string(r), cp, form, k)
	}
	if secret || !unicode.IsPrint(r) {
		return fmt.Sprintf("a non-ASCII character (%s)", cp)
	}
	return fmt.Sprintf("%s (%s)", string(r), cp)
}
