package roster

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckAddress_accepts(t *testing.T) {
	local64 := strings.Repeat("l", 64)
	label63 := strings.Repeat("d", 63)
	// 64 + 1 + 63 + 1 + 63 + 1 + 61 = 254
	longest := local64 + "@" + label63 + "." + label63 + "." + strings.Repeat("t", 61)
	// 64 + 1 + 48 = 113
	entraLongest := local64 + "@" + strings.Repeat("e", 40) + ".example"
	tests := []struct {
		addr  string
		entra bool
	}{
		{"taro@contoso-event.example", true},
		{"Taro.Yamada@Contoso-Event.EXAMPLE", true},
		{"o'brien@a.example", true},
		{"a.b-c_d!e#f^g~h@a.example", true},
		{"_x_@a.example", true},
		{"0@a.example", true},
		{"x@a-b.c-d.example", true},
		{"x@xn--bcher-kva.example", true}, // an IDN domain in its ASCII (punycode) form
		{local64 + "@a.example", true},
		{longest, false},
		{entraLongest, true},
		// A mailbox in a plain or invite roster may use RFC 5322's atext.
		{"a+tag@b.example", false},
		{"a&b%c/d=e?f`g{h|i}j$k*l@b.example", false},
	}
	if len(longest) != MaxAddressLen || len(entraLongest) != MaxEntraUPNLen {
		t.Fatalf("test addresses are %d and %d long, want %d and %d", len(longest), len(entraLongest), MaxAddressLen, MaxEntraUPNLen)
	}
	for _, tt := range tests {
		if c := checkAddress(tt.addr, tt.entra); c != nil {
			t.Errorf("checkAddress(%q, entra=%v) = %q, want accepted", tt.addr, tt.entra, c.quoted)
		}
	}
}

func TestCheckAddress_refuses(t *testing.T) {
	local65 := strings.Repeat("l", 65)
	label63 := strings.Repeat("d", 63)
	tooLong := strings.Repeat("l", 64) + "@" + label63 + "." + label63 + "." + strings.Repeat("t", 62) // 255
	entraDomain := "x@" + strings.Repeat("e", 41) + ".example"                                         // 49 after "@"
	tests := []struct {
		addr  string
		entra bool
		want  string // in the quoted message
	}{
		{"taro", false, `text without an "@"`},
		{"a@b@c.example", false, `more than one "@"`},
		{"a+tag@b.example", true, `"+" before the "@", which Entra does not accept`},
		{"a&b@b.example", true, `"&" before the "@"`},
		{`"a b"@b.example`, false, "spaces"},
		{`"ab"@b.example`, false, `"\"" before the "@", which an unquoted address does not allow`},
		{`a\b@b.example`, false, `"\\" before the "@"`},
		{"a(b)@b.example", false, `"(" before the "@"`},
		{"a%b@b.example", true, `"%" before the "@"`},
		{".a@b.example", false, "a dot at the start"},
		{"a.@b.example", false, `a dot just before the "@"`},
		{"a..b@b.example", false, "two dots in a row"},
		{"a@b", false, "a domain without a dot"},
		{"a@-b.example", false, "starts or ends with a hyphen"},
		{"a@b-.example", false, "starts or ends with a hyphen"},
		{"a@b_c.example", false, `"_" in the domain`},
		{"a@[127.0.0.1]", false, `"[" in the domain`},
		{"a@127.0.0.1", false, "ends in a number"},
		{"a@" + strings.Repeat("d", 64) + ".example", false, "a domain label of 64 characters, at most 63"},
		{local65 + "@b.example", false, "65 characters before the \"@\", at most 64 allowed (RFC 5321)"},
		{tooLong, false, "an address of 255 characters, at most 254 allowed (RFC 5321)"},
		{entraDomain, true, `49 characters after the "@"; Entra accepts at most 48`},
		{"t\u0430ro@b.example", false, `the Cyrillic letter а (U+0430), which looks like the ASCII "a"; did you mean "taro@b.example"?`},
		{"\u03a4aro@b.example", false, `the Greek letter Τ (U+03A4), which looks like the ASCII "T"; did you mean "Taro@b.example"?`},
		{"taro@b.\u0435xample", false, `did you mean "taro@b.example"?`},
		{"\uff54\uff41\uff52\uff4f@b.example", false, `the full-width form of "t", and 3 more are not ASCII; did you mean "taro@b.example"?`},
		{"taro\uff20b.example", false, `did you mean "taro@b.example"?`},
		{"ta\u200dro@b.example", false, `an invisible zero-width joiner (U+200D); did you mean "taro@b.example"?`},
		{"ta\u200cro@b.example", false, `an invisible zero-width non-joiner (U+200C)`},
		{"ta\u2066ro@b.example", false, `an invisible left-to-right isolate (U+2066)`},
		{"taro@b.example\ufeff", false, `an invisible byte order mark (U+FEFF); did you mean "taro@b.example"?`},
		{"ta\u00a0ro@b.example", false, "a no-break space (U+00A0); type the address the person signs in with, in ASCII"},
		{"山田@b.example", false, "character 1 is 山 (U+5C71), and 1 more character is not ASCII; type the address"},
		{"zoë@b.example", false, "character 3 is ë (U+00EB); type the address"},
		// A suggestion is made only if it is itself acceptable.
		{"t\u0430ro+x@b.example", true, "type the address the person signs in with"},
		{"t\u0430ro+x@b.example", false, `did you mean "taro+x@b.example"?`},
		{strings.Repeat("\uff41", 65) + "@b.example", false, "type the address the person signs in with"},
	}
	for _, tt := range tests {
		c := checkAddress(tt.addr, tt.entra)
		if c == nil {
			t.Errorf("checkAddress(%q) accepted, want refused with %q", tt.addr, tt.want)
			continue
		}
		if !strings.Contains(c.quoted, tt.want) {
			t.Errorf("checkAddress(%q) = %q, want it to contain %q", tt.addr, c.quoted, tt.want)
		}
		if c.described == "" || strings.Contains(c.described, tt.addr) {
			t.Errorf("checkAddress(%q): described = %q, want a description that does not quote the value", tt.addr, c.described)
		}
	}
}

// TestParse_bulkCreateNeverQuotesAddress: in a bulk-create file a shifted
// row can put a password in the user-name column. Whatever is wrong with
// that cell, the message describes it and quotes neither the cell nor an
// ASCII "suggestion" made from it.
func TestParse_bulkCreateNeverQuotesAddress(t *testing.T) {
	cells := []string{
		"Zｅcret-Canary-21@x.example", // full-width e
		"Zеcret-Canary-22@x.example", // Cyrillic e
		"Zecret\u200b-Canary-23@x.example",
		"Zecret+Canary-24@x.example",
		"Zecret&Canary-25@x.example",
		"Zecret-Canary-26@x_y.example",
	}
	var b strings.Builder
	b.WriteString("version:v1.0,,\nName [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required\n")
	for i, c := range cells {
		fmt.Fprintf(&b, "N%d,%s,pw\n", i, c)
	}
	_, err := Parse("create.csv", []byte(b.String()), Options{})
	got := problems(t, err)
	if len(got) != len(cells) {
		t.Fatalf("problems = %q, want one per row", got)
	}
	for _, p := range got {
		if strings.Contains(p, "Canary") || strings.Contains(p, "Zecret") || strings.Contains(p, "did you mean") {
			t.Errorf("problem quotes the cell: %s", p)
		}
		if !strings.Contains(p, "value not shown") {
			t.Errorf("problem = %s, want it to say the value is not shown", p)
		}
	}
}

func TestParse_displayNames(t *testing.T) {
	rocket := "\U0001F680" // four bytes in UTF-8
	tests := []struct {
		name    string
		display string
		want    string // problem; "" if accepted
	}{
		{"256 four-byte characters", strings.Repeat(rocket, MaxDisplayNameLen), ""},
		{"256 characters with spaces kept", strings.Repeat("山", 255) + " ", ""},
		{"257 characters", strings.Repeat("a", MaxDisplayNameLen+1),
			"f.csv:2: display_name: expected at most 256 characters (Entra's limit for a display name), found 257"},
		{"3 MB", strings.Repeat(rocket, 3<<20/4),
			fmt.Sprintf("f.csv:2: display_name: expected at most 256 characters (Entra's limit for a display name), found %d", 3<<20/4)},
		// C0 controls and DEL make the whole file binary (decode refuses it).
		{"bell", "Ann\aB", "f.csv:2: encoding: expected UTF-8 or Shift_JIS (CP932) text, found binary data (byte 0x07); is this really a CSV file?"},
		{"C1 control", "Ann\u0085B", "f.csv:2: display_name: expected a single line of text, found a line break or tab"},
		{"line separator", "Ann\u2028B", "f.csv:2: display_name: expected a single line of text, found a line break or tab"},
		{"DEL", "Ann\u007fB", "f.csv:2: encoding: expected UTF-8 or Shift_JIS (CP932) text, found binary data (byte 0x7F); is this really a CSV file?"},
		{"CSI", "Ann\u009bB", "f.csv:2: display_name: expected text without control characters, found U+009B at character 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := "email,display_name\na@b.example,\"" + tt.display + "\"\n"
			r, err := Parse("f.csv", []byte(data), Options{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got := r.Participants[0].DisplayName; got != strings.TrimSpace(tt.display) {
					t.Errorf("display name changed: %d bytes, want %d", len(got), len(tt.display))
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted a display name of %d bytes, want %q", len(tt.display), tt.want)
			}
			diffLines(t, "problems", problems(t, err), []string{tt.want})
		})
	}
}
