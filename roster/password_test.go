package roster

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// passwords returns every value of the [passwordProfile] column, read
// independently of Parse.
func passwords(t *testing.T, text string) []string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	var out []string
	for _, rec := range recs {
		if col < 0 {
			for i, f := range rec {
				if strings.Contains(f, "[passwordProfile]") {
					col = i
				}
			}
			continue
		}
		if col < len(rec) && rec[col] != "" {
			out = append(out, rec[col])
		}
	}
	if len(out) == 0 {
		t.Fatal("test file has no passwords")
	}
	return out
}

// TestParse_passwordNeverLeaks proves that no initial password from a
// bulk-create file reaches participants, problems, error text or the store.
func TestParse_passwordNeverLeaks(t *testing.T) {
	bad := string(readTestdata(t, "bulk_create_bad_rows.csv"))
	// The same rows after someone deleted the version and header lines: the
	// first data row is then mistaken for a header.
	headless := bad[strings.Index(bad, "山田"):]
	files := []struct {
		name, text string
	}{
		{"participants.utf8.csv", string(readTestdata(t, "participants.utf8.csv"))},
		{"template_example_row.csv", string(readTestdata(t, "template_example_row.csv"))},
		{"bulk_create_bad_rows.csv", bad},
		{"bulk_create_non_ascii.csv", string(readTestdata(t, "bulk_create_non_ascii.csv"))},
		{"headless.csv", headless},
		{"no_upn.csv", strings.Replace(bad, "[userPrincipalName]", "[mail]", 1)},
	}
	for _, f := range files {
		secrets := passwords(t, bad)
		if f.name != "headless.csv" {
			secrets = passwords(t, f.text)
		}
		for _, skip := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/skip=%v", f.name, skip), func(t *testing.T) {
				r, err := Parse(f.name, []byte(f.text), Options{SkipInvalid: skip})
				var seen strings.Builder
				fmt.Fprintf(&seen, "%+v\n%#v\n", r, r)
				if err != nil {
					seen.WriteString(err.Error())
					fmt.Fprintf(&seen, "%+v", err)
				}
				if r != nil {
					for _, p := range r.Skipped {
						seen.WriteString(p.String())
					}
					dir := t.TempDir()
					if _, err := (Store{Dir: dir}).Put(r.Participants); err != nil {
						t.Fatal(err)
					}
					stored, _ := filepath.Glob(filepath.Join(dir, "*"))
					for _, name := range stored {
						b, err := os.ReadFile(name)
						if err != nil {
							t.Fatal(err)
						}
						seen.Write(b)
					}
				}
				for _, pw := range secrets {
					if strings.Contains(seen.String(), pw) {
						t.Errorf("password %q leaked into:\n%s", pw, seen.String())
					}
				}
			})
		}
	}
}

// TestRow_hasNoPasswordField guards the decoding struct itself.
func TestRow_hasNoPasswordField(t *testing.T) {
	got := fmt.Sprintf("%#v", row{})
	for _, bad := range []string{"assword", "Profile"} {
		if strings.Contains(got, bad) {
			t.Errorf("row = %s, want no password field", got)
		}
	}
	if !bytes.Equal([]byte(got), []byte(`roster.row{Email:"", DisplayName:""}`)) {
		t.Errorf("row = %s, want only Email and DisplayName", got)
	}
}
