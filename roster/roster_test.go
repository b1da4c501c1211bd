package roster

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/japanese"
)

// readTestdata returns testdata/name.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// problems returns the problem lines of err, which must be a *ValidationError.
func problems(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want a *ValidationError", err, err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.String())
	}
	if strings.Join(got, "\n") != err.Error() {
		t.Errorf("Error() = %q, want the problems one per line: %q", err.Error(), strings.Join(got, "\n"))
	}
	return got
}

func emails(ps []Participant) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Email)
	}
	return out
}

func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestParse_invalidFiles pins the message for every malformed file in
// testdata; end-to-end tests reuse these files and messages.
func TestParse_invalidFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"empty.csv", []string{
			"empty.csv:1: header: expected a CSV header line, found an empty file",
		}},
		{"blank.csv", []string{
			"blank.csv:1: header: expected a CSV header line, found an empty file",
		}},
		{"header_only.csv", []string{
			"header_only.csv:1: rows: expected participant rows below this header, found none",
		}},
		{"garbage.bin", []string{
			"garbage.bin:3: encoding: expected UTF-8 or Shift_JIS (CP932) text, found binary data (byte 0x00); is this really a CSV file?",
		}},
		{"utf16le.csv", []string{
			`utf16le.csv:1: encoding: expected UTF-8 or Shift_JIS (CP932) text, found UTF-16 (save it from Excel as "CSV UTF-8" instead)`,
		}},
		{"latin1.csv", []string{
			"latin1.csv:1: encoding: expected UTF-8 or Shift_JIS (CP932) text, line 2 is neither",
		}},
		{"bad_header.csv", []string{
			`bad_header.csv:1: header: expected a header line with an "email" column (and optionally "display_name"), or an Entra bulk-create or bulk-invite header, found "mail,name"`,
		}},
		{"no_header.csv", []string{
			`no_header.csv:1: header: expected a header line with an "email" column (and optionally "display_name"), or an Entra bulk-create or bulk-invite header, found a line that looks like data (it contains an "@"); add the line "email,display_name" above it`,
		}},
		{"bad_version.csv", []string{
			`bad_version.csv:1: version: expected "version:v1.0" (the first line of Entra's bulk templates), found "version:v2.0"`,
		}},
		{"entra_missing_upn.csv", []string{
			`entra_missing_upn.csv:2: header: expected an Entra bulk-create header with "User name [userPrincipalName] Required" and "Name [displayName] Required", or a bulk-invite header with "Email address to invite [inviteeEmail] Required", found only [displayName], [mail], [passwordProfile]`,
		}},
		{"entra_missing_displayname.csv", []string{
			`entra_missing_displayname.csv:2: header: expected a column "Name [displayName] Required" (Entra bulk create), found none`,
		}},
		{"bad_emails.csv", []string{
			`bad_emails.csv:2: email: expected an address like name@example.com, found "taro": text without an "@"`,
			`bad_emails.csv:3: email: expected an address like name@example.com, found "hanako@": nothing after the "@"`,
			`bad_emails.csv:4: email: expected an address like name@example.com, found "@contoso-event.example": nothing before the "@"`,
			`bad_emails.csv:5: email: expected an address like name@example.com, found "ichiro@localhost": a domain without a dot after the "@"`,
			`bad_emails.csv:6: email: expected an address like name@example.com, found "Sakura <sakura@contoso-event.example>": a name and an address in angle brackets (keep only the address)`,
			`bad_emails.csv:7: email: expected an address like name@example.com, found "ren nakamura@contoso-event.example": an address containing spaces`,
			`bad_emails.csv:8: email: expected an address like name@example.com, found "yui@contoso-event..example": a domain with an empty label (a dot at its start or end, or two in a row)`,
			`bad_emails.csv:9: email: expected an address like name@example.com, found nothing`,
		}},
		{"non_ascii_emails.csv", []string{
			`non_ascii_emails.csv:2: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "山田@contoso-event.example": character 1 is 山 (U+5C71), and 1 more character is not ASCII; type the address the person signs in with, in ASCII`,
			`non_ascii_emails.csv:3: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "josé.garcía@contoso-event.example": character 4 is é (U+00E9), and 1 more character is not ASCII; type the address the person signs in with, in ASCII`,
			`non_ascii_emails.csv:4: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "tаro@contoso-event.example": character 2 is the Cyrillic letter а (U+0430), which looks like the ASCII "a"; did you mean "taro@contoso-event.example"?`,
			`non_ascii_emails.csv:5: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "ｔａｒｏ＠contoso-event.example": character 1 is ｔ (U+FF54), the full-width form of "t", and 4 more are not ASCII; did you mean "taro@contoso-event.example"?`,
			`non_ascii_emails.csv:6: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "hana\u200bko@contoso-event.example": character 5 is an invisible zero-width space (U+200B); did you mean "hanako@contoso-event.example"?`,
			`non_ascii_emails.csv:7: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "\ufeffichiro@contoso-event.example": character 1 is an invisible byte order mark (U+FEFF); did you mean "ichiro@contoso-event.example"?`,
			`non_ascii_emails.csv:8: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "sa\u00adkura@contoso-event.example": character 3 is an invisible soft hyphen (U+00AD); did you mean "sakura@contoso-event.example"?`,
			`non_ascii_emails.csv:9: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "ren\u202e@contoso-event.example": character 4 is an invisible right-to-left override (U+202E); did you mean "ren@contoso-event.example"?`,
			`non_ascii_emails.csv:10: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "o’brien@contoso-event.example": character 2 is the typographic character ’ (U+2019), which looks like the ASCII "'"; did you mean "o'brien@contoso-event.example"?`,
			`non_ascii_emails.csv:11: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "yui@contoso-evеnt.example": character 15 is the Cyrillic letter е (U+0435), which looks like the ASCII "e"; did you mean "yui@contoso-event.example"?`,
			`non_ascii_emails.csv:12: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found "🚀@contoso-event.example": character 1 is 🚀 (U+1F680); type the address the person signs in with, in ASCII`,
			`non_ascii_emails.csv:13: email: expected an address like name@example.com, found "kenta(hack)@contoso-event.example": "(" before the "@", which an unquoted address does not allow (RFC 5322 allows letters, digits, dots and ! # $ % & ' * + - / = ? ^ _ ` + "`" + ` { | } ~)`,
			`non_ascii_emails.csv:14: email: expected an address like name@example.com, found "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@contoso-event.example": 65 characters before the "@", at most 64 allowed (RFC 5321)`,
			`non_ascii_emails.csv:15: email: expected an address like name@example.com, found "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@ccccccccccccccccccccccccccccccccccccccccccccccccccccccc...": an address of 262 characters, at most 254 allowed (RFC 5321)`,
		}},
		{"bulk_create_non_ascii.csv", []string{
			`bulk_create_non_ascii.csv:3: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found an address whose character 2 is a Cyrillic letter (U+0430) that looks like the ASCII "a" (value not shown: this file carries passwords)`,
			`bulk_create_non_ascii.csv:4: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found an address whose character 1 is the full-width form of "t" (U+FF54) (value not shown: this file carries passwords)`,
			`bulk_create_non_ascii.csv:5: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found an address whose character 5 is an invisible zero-width space (U+200B) (value not shown: this file carries passwords)`,
			`bulk_create_non_ascii.csv:6: email: expected an address in ASCII (Entra does not accept non-ASCII characters in a user principal name), found an address whose character 1 is a non-ASCII character (U+5C71), and 1 more character is not ASCII (value not shown: this file carries passwords)`,
			`bulk_create_non_ascii.csv:7: email: expected an address like name@example.com, found a character before the "@" that Entra does not accept in a user principal name (it accepts letters, digits and ' . - _ ! # ^ ~) (value not shown: this file carries passwords)`,
			`bulk_create_non_ascii.csv:8: email: expected an address like name@example.com, found 65 characters before the "@", at most 64 allowed (RFC 5321) (value not shown: this file carries passwords)`,
			`bulk_create_non_ascii.csv:9: email: expected an address like name@example.com, found 53 characters after the "@"; Entra accepts at most 48 in a user principal name (value not shown: this file carries passwords)`,
		}},
		{"duplicates.csv", []string{
			"duplicates.csv:4: email: duplicate of line 2 (taro@contoso-event.example)",
			"duplicates.csv:6: email: duplicate of line 2 (taro@contoso-event.example)",
		}},
		{"bad_quote.csv", []string{
			`bad_quote.csv:2: row: expected quotes (") only around a whole field, found one inside an unquoted field; double it ("") or quote the whole field`,
			`bad_quote.csv:4: row: expected a closing quote (") for a field opened on this line, found a stray quote or none`,
		}},
		{"plain_bad_rows.csv", []string{
			`plain_bad_rows.csv:3: row: expected at most 2 fields like the header on line 1, found 3 (an unquoted comma in a name? quote the field: "Yamada, Taro")`,
			`plain_bad_rows.csv:4: row: expected 2 fields like the header on line 1, found 1 (a missing column? leave an empty field between commas: "a@example.com,")`,
		}},
		{"bulk_create_bad_rows.csv", []string{
			"bulk_create_bad_rows.csv:4: row: expected 5 fields like the header on line 2, found 4 (an unquoted comma in a name, or a missing column?)",
			`bulk_create_bad_rows.csv:5: display_name: expected a name (the "Name [displayName] Required" column), found nothing`,
			`bulk_create_bad_rows.csv:6: email: expected an address like name@example.com, found text without an "@" (value not shown: this file carries passwords)`,
			"bulk_create_bad_rows.csv:7: row: expected 5 fields like the header on line 2, found 6 (an unquoted comma in a name, or a missing column?)",
			`bulk_create_bad_rows.csv:8: email: expected an address like name@example.com, found a domain without a dot after the "@" (value not shown: this file carries passwords)`,
			"bulk_create_bad_rows.csv:9: email: duplicate of line 3 (taro@contoso-event.example)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := Parse(tt.file, readTestdata(t, tt.file), Options{})
			if err == nil {
				t.Fatalf("Parse = %d participants, want an error", len(r.Participants))
			}
			diffLines(t, "problems", problems(t, err), tt.want)
		})
	}
}

func TestParse_validFiles(t *testing.T) {
	tests := []struct {
		file         string
		format, enc  string
		wantEmails   []string
		wantDisplays []string
		wantLines    []int
	}{
		{
			file: "plain.csv", format: FormatPlain, enc: EncodingUTF8,
			wantEmails: []string{
				"taro.yamada@contoso-event.example", "jose.garcia@contoso-event.example",
				"zoe.muller@contoso-event.example", "hanako@contoso-event.example", "nguyen@contoso-event.example",
			},
			wantDisplays: []string{"山田 太郎", "José García", "Zoë Müller 🚀", "hanako", "Nguyễn Thị Minh Khai 👩🏽‍💻"},
			wantLines:    []int{2, 4, 5, 6, 8},
		},
		{
			file: "plain_bom_crlf.csv", format: FormatPlain, enc: EncodingUTF8BOM,
			wantEmails: []string{
				"sakura.yamazaki@contoso-event.example", "chloe.dupont@contoso-event.example", "soren@contoso-event.example",
			},
			wantDisplays: []string{"山﨑 さくら", "Chloé Dupont", `Søren "Sam" Kierkegaard`},
			wantLines:    []int{2, 3, 5},
		},
		{
			file: "invite.csv", format: FormatEntraBulkInvite, enc: EncodingUTF8,
			wantEmails:   []string{"guest.one@partner-univ.example", "guest.two@partner-univ.example"},
			wantDisplays: []string{"guest.one", "Guest.Two"},
			wantLines:    []int{4, 5},
		},
		{
			file: "template_example_row.csv", format: FormatEntraBulkCreate, enc: EncodingUTF8,
			wantEmails:   []string{"taro.yamada@contoso-event.example", "ana.nunez@contoso-event.example"},
			wantDisplays: []string{"山田 太郎", "Ana Núñez"},
			wantLines:    []int{5, 7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := Parse(tt.file, readTestdata(t, tt.file), Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.Format != tt.format || r.Encoding != tt.enc {
				t.Errorf("format, encoding = %q, %q; want %q, %q", r.Format, r.Encoding, tt.format, tt.enc)
			}
			var displays []string
			var lines []int
			for _, p := range r.Participants {
				displays = append(displays, p.DisplayName)
				lines = append(lines, p.Line)
				if s, c := DefaultNaming().Derive(p.Email); p.Schema != s || p.ClusterName != c {
					t.Errorf("%s: names = %q, %q; want Derive's %q, %q", p.Email, p.Schema, p.ClusterName, s, c)
				}
			}
			diffLines(t, "emails", emails(r.Participants), tt.wantEmails)
			diffLines(t, "display names", displays, tt.wantDisplays)
			if !slices.Equal(lines, tt.wantLines) {
				t.Errorf("lines = %v, want %v", lines, tt.wantLines)
			}
			if len(r.Skipped) != 0 {
				t.Errorf("Skipped = %v, want none", r.Skipped)
			}
		})
	}
}

func TestParse_skipInvalid(t *testing.T) {
	tests := []struct {
		file        string
		wantEmails  []string
		wantSkipped int
	}{
		{"bad_emails.csv", []string{"good@contoso-event.example"}, 8},
		{"duplicates.csv", []string{"taro@contoso-event.example", "hanako@contoso-event.example", "ichiro@contoso-event.example"}, 2},
		{"bad_quote.csv", []string{"hanako@contoso-event.example"}, 2},
		{"plain_bad_rows.csv", []string{"taro@contoso-event.example", "sakura@contoso-event.example", "ren@contoso-event.example"}, 2},
		{"non_ascii_emails.csv", []string{"good@contoso-event.example"}, 14},
		{"bulk_create_non_ascii.csv", []string{"good@contoso-event.example"}, 7},
		{"bulk_create_bad_rows.csv", []string{"taro@contoso-event.example"}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readTestdata(t, tt.file)
			_, strictErr := Parse(tt.file, data, Options{})
			r, err := Parse(tt.file, data, Options{SkipInvalid: true})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			diffLines(t, "emails", emails(r.Participants), tt.wantEmails)
			var skipped []string
			for _, p := range r.Skipped {
				skipped = append(skipped, p.String())
			}
			if len(skipped) != tt.wantSkipped {
				t.Errorf("skipped %d rows, want %d", len(skipped), tt.wantSkipped)
			}
			// Skipped lists exactly what the strict parse refuses.
			diffLines(t, "Skipped vs strict problems", skipped, problems(t, strictErr))
		})
	}
}

func TestParse_skipInvalidStillFails(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"nothing valid", "email\nnot-an-email\n", `f.csv:2: email: expected an address like name@example.com, found "not-an-email"`},
		{"unreadable header", "mail\na@b.example\n", `f.csv:1: header: expected a header line with an "email" column`},
		{"encoding", "email\n\xff\xfe\xfd\n", "f.csv:1: encoding: expected UTF-8 or Shift_JIS (CP932) text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.csv", []byte(tt.data), Options{SkipInvalid: true})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to start with %q", err, tt.want)
			}
		})
	}
}

// TestParse_cases covers details with small inline files.
func TestParse_cases(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		wantEmails []string
		wantNames  []string // display names, if checked
		wantErr    []string
	}{
		{
			name:       "header case and spacing",
			data:       " EMAIL , Display Name \nA@B.example,Ann\n",
			wantEmails: []string{"a@b.example"}, wantNames: []string{"Ann"},
		},
		{
			name:       "email only",
			data:       "email\r\nx.y@b.example\r\n",
			wantEmails: []string{"x.y@b.example"}, wantNames: []string{"x.y"},
		},
		{
			name:       "extra columns ignored",
			data:       "team,email,display_name,notes\nred,a@b.example,Ann,x\n",
			wantEmails: []string{"a@b.example"}, wantNames: []string{"Ann"},
		},
		{
			name:    "short plain row",
			data:    "email,display_name\na@b.example\n",
			wantErr: []string{`f.csv:2: row: expected 2 fields like the header on line 1, found 1 (a missing column? leave an empty field between commas: "a@example.com,")`},
		},
		{
			name:    "short invite row",
			data:    "version:v1.0\nEmail address to invite [inviteeEmail] Required,Redirection url [inviteRedirectURL] Required\na@b.example\n",
			wantErr: []string{`f.csv:3: row: expected 2 fields like the header on line 2, found 1 (a missing column? leave an empty field between commas: "a@example.com,")`},
		},
		{
			name:       "empty display name field",
			data:       "email,display_name\na@b.example,\n",
			wantEmails: []string{"a@b.example"}, wantNames: []string{"a"},
		},
		{
			name:       "Excel's empty trailing fields and header cells",
			data:       "email,display_name,,\na@b.example,Ann,,\nc@b.example,Cy\n",
			wantEmails: []string{"a@b.example", "c@b.example"}, wantNames: []string{"Ann", "Cy"},
		},
		{
			name:    "value under an empty header cell",
			data:    "email,display_name,\na@b.example,Ann,x\n",
			wantErr: []string{`f.csv:2: row: expected at most 2 fields like the header on line 1, found 3 (an unquoted comma in a name? quote the field: "Yamada, Taro")`},
		},
		{
			name:    "multi-line display name",
			data:    "email,display_name\na@b.example,\"Ann\nB\"\n",
			wantErr: []string{"f.csv:2: display_name: expected a single line of text, found a line break or tab"},
		},
		{
			name:    "duplicate column",
			data:    "email,display_name,Email\na@b.example,Ann,a@b.example\n",
			wantErr: []string{`f.csv:1: header: expected each column once, found "email" in columns 1 and 3`},
		},
		{
			name:    "duplicate Entra property",
			data:    "version:v1.0\nName [displayName] Required,User name [userPrincipalName] Required,UPN [UserPrincipalName]\nA,a@b.example,a@b.example\n",
			wantErr: []string{"f.csv:2: header: expected each column once, found [UserPrincipalName] in columns 2 and 3"},
		},
		{
			name:    "version line only",
			data:    "version:v1.0,,,\r\n",
			wantErr: []string{`f.csv:1: header: expected the Entra header line after "version:v1.0", found the end of the file`},
		},
		{
			name:       "Entra header without version line",
			data:       "Name [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required\nAnn,ann@b.example,pw\n",
			wantEmails: []string{"ann@b.example"}, wantNames: []string{"Ann"},
		},
		{
			name:       "lower-case Entra properties",
			data:       "version:v1.0\nname [DISPLAYNAME],user name [userprincipalname]\nAnn,ann@b.example\n",
			wantEmails: []string{"ann@b.example"},
		},
		{
			name:    "example row only",
			data:    "version:v1.0\nEmail address to invite [inviteeEmail] Required,Redirection url [inviteRedirectURL] Required\nExample:,https://myapplications.microsoft.com\n",
			wantErr: []string{"f.csv:2: rows: expected participant rows below this header, found none"},
		},
		{
			// Distinct emails whose 8-digit hashes collide (found by search,
			// pinned here): refused rather than sharing a schema.
			name:    "derived name collision",
			data:    "email\ntaro@team3058.example\ntaro@team5319.example\n",
			wantErr: []string{`f.csv:3: email: expected a unique schema name, found "taro_74463adf" again (also derived for line 2); change the naming pattern`, `f.csv:3: email: expected a unique cluster name, found "cohort-taro-74463adf" again (also derived for line 2); change the naming pattern`},
		},
		{
			name:    "BOM then invalid UTF-8",
			data:    "\xef\xbb\xbfemail\na@b.example\n\xff\n",
			wantErr: []string{"f.csv:1: encoding: expected UTF-8 or Shift_JIS (CP932) text, found a UTF-8 byte order mark but line 3 is not UTF-8"},
		},
		{
			name:    "C1 control from Shift_JIS 0x80",
			data:    "email\na@b.example,\x80\n",
			wantErr: []string{"f.csv:1: encoding: expected UTF-8 or Shift_JIS (CP932) text, line 2 is neither"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse("f.csv", []byte(tt.data), Options{})
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Parse = %v, want an error", emails(r.Participants))
				}
				diffLines(t, "problems", problems(t, err), tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			diffLines(t, "emails", emails(r.Participants), tt.wantEmails)
			if tt.wantNames != nil {
				var names []string
				for _, p := range r.Participants {
					names = append(names, p.DisplayName)
				}
				diffLines(t, "display names", names, tt.wantNames)
			}
		})
	}
}

// TestParse_encodingsAgree feeds the same roster in every accepted encoding
// and line ending and expects the same participants, names intact.
func TestParse_encodingsAgree(t *testing.T) {
	const text = "email,display_name\n" +
		"taro@contoso-event.example,山田 太郎\n" +
		"souta@contoso-event.example,鈴木 ソウタ\n" + // ソ is 0x83 0x5C in Shift_JIS: a backslash trail byte
		"hina@contoso-event.example,表 陽菜\n" + // 表 is 0x95 0x5C
		"ichiro@contoso-event.example,髙橋 一郎\n" + // CP932 extension
		"sakura@contoso-event.example,山﨑 ①さくら～\n" // CP932 extension, NEC special, full-width tilde
	sjis, err := japanese.ShiftJIS.NewEncoder().Bytes([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	crlf := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }
	want, err := Parse("utf8.csv", []byte(text), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := want.Participants[4].DisplayName; got != "山﨑 ①さくら～" {
		t.Fatalf("display name = %q, want %q", got, "山﨑 ①さくら～")
	}
	tests := []struct {
		name, enc string
		data      []byte
	}{
		{"utf-8 CRLF", EncodingUTF8, crlf([]byte(text))},
		{"utf-8 BOM", EncodingUTF8BOM, append([]byte("\xef\xbb\xbf"), text...)},
		{"utf-8 BOM CRLF", EncodingUTF8BOM, crlf(append([]byte("\xef\xbb\xbf"), text...))},
		{"shift_jis LF", EncodingSJIS, sjis},
		{"shift_jis CRLF", EncodingSJIS, crlf(sjis)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("f.csv", tt.data, Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Encoding != tt.enc {
				t.Errorf("Encoding = %q, want %q", got.Encoding, tt.enc)
			}
			if !slices.Equal(got.Participants, want.Participants) {
				t.Errorf("participants:\ngot  %+v\nwant %+v", got.Participants, want.Participants)
			}
		})
	}
}

func TestParse_customNaming(t *testing.T) {
	n := Naming{SchemaPattern: "hk26_{domain}_{local}_{hash}", ClusterPattern: "hk26-{local}-{hash}", MaxLen: 40}
	r, err := Parse("f.csv", []byte("email\nTaro.Yamada@Contoso-Event.example\n"), Options{Naming: n})
	if err != nil {
		t.Fatal(err)
	}
	p := r.Participants[0]
	if want := "hk26_contoso_event_taro_yamada_6e31f142"; p.Schema != want {
		t.Errorf("Schema = %q, want %q", p.Schema, want)
	}
	if want := "hk26-taro-yamada-6e31f142"; p.ClusterName != want {
		t.Errorf("ClusterName = %q, want %q", p.ClusterName, want)
	}

	_, err = Parse("f.csv", []byte("email\na@b.example\n"), Options{Naming: Naming{SchemaPattern: "{local}"}})
	var ve *ValidationError
	if err == nil || errors.As(err, &ve) {
		t.Errorf("Parse with an invalid naming: error = %v, want a plain (non-validation) error", err)
	}
}

func TestProblem_String(t *testing.T) {
	p := Problem{File: "roster.csv", Line: 12, Field: "email", Message: "duplicate of line 5 (a@b.c)"}
	if got, want := p.String(), "roster.csv:12: email: duplicate of line 5 (a@b.c)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
