package roster

import (
	"regexp"
	"strings"
	"testing"
)

// TestNaming_Derive_golden pins derived names: they must not change from one
// day (or release) to the next, or re-submitted participants would get new
// schemas and clusters.
func TestNaming_Derive_golden(t *testing.T) {
	tests := []struct {
		email, schema, cluster string
	}{
		// Hashes checked with: printf %s EMAIL | sha256sum
		// sha256("taro.yamada@contoso-event.example") = 6e31f142d736...
		{"taro.yamada@contoso-event.example", "taro_yamada_6e31f142", "cohort-taro-yamada-6e31f142"},
		{"Taro.Yamada@Contoso-Event.EXAMPLE ", "taro_yamada_6e31f142", "cohort-taro-yamada-6e31f142"},
		// Sanitize alike, told apart by the hash.
		{"taro_yamada@contoso-event.example", "taro_yamada_fec88580", "cohort-taro-yamada-fec88580"},
		{"taro-yamada@contoso-event.example", "taro_yamada_048a54fc", "cohort-taro-yamada-048a54fc"},
		// Accents are dropped, not the letters.
		{"josé.garcía@contoso-event.example", "jose_garcia_6b2f238c", "cohort-jose-garcia-6b2f238c"},
		// No usable character: "u" and the next 8 hex digits of the hash
		// (sha256 = 1ed8574b32e7b90b...).
		{"山田@contoso-event.example", "u32e7b90b_1ed8574b", "cohort-u32e7b90b-1ed8574b"},
		{"田中@contoso-event.example", "ua3663cfb_33e6e6eb", "cohort-ua3663cfb-33e6e6eb"},
		// A leading digit gets a "p" in front of the schema name.
		{"2024.taro@contoso-event.example", "p2024_taro_674cc0a5", "cohort-2024-taro-674cc0a5"},
		// Plus addressing and other punctuation collapse to one separator.
		{"hanako+hack..day@contoso-event.example", "hanako_hack_day_61a0786b", "cohort-hanako-hack-day-61a0786b"},
		// Long local parts are truncated to fit 64 characters, hash intact.
		{
			"a.very.long.local.part.that.keeps.going.and.going.and.going.on@contoso-event.example",
			"a_very_long_local_part_that_keeps_going_and_going_and_g_d1cff303",
			"cohort-a-very-long-local-part-that-keeps-going-and-goin-d1cff303",
		},
	}
	for _, tt := range tests {
		t.Run(tt.email, func(t *testing.T) {
			s, c := DefaultNaming().Derive(tt.email)
			if s != tt.schema || c != tt.cluster {
				t.Errorf("Derive(%q) = %q, %q; want %q, %q", tt.email, s, c, tt.schema, tt.cluster)
			}
		})
	}
}

var (
	schemaRE  = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	clusterRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)
)

// TestNaming_Derive_legalAndDistinct derives names for many emails,
// including ones that sanitize alike, and checks every name is legal and
// every email gets its own names.
func TestNaming_Derive_legalAndDistinct(t *testing.T) {
	emails := []string{
		"taro.yamada@a.jp", "taro_yamada@a.jp", "taro-yamada@a.jp", "taro..yamada@a.jp", "taro+yamada@a.jp",
		"山田@a.jp", "田中@a.jp", "山田太郎@a.jp", "yamada山田@a.jp", "yamada田中@a.jp",
		"ｔａｒｏ@a.jp", "taro@a.jp", "taro@b.jp", "0@a.jp", "9lives@a.jp", "_x_@a.jp", "-@a.jp",
		strings.Repeat("x", 64) + "@a.jp", strings.Repeat("x", 63) + "y@a.jp", strings.Repeat("1", 100) + "@a.jp",
	}
	r, err := Parse("synth.csv", Synthesize(3000, 7, "contoso-event.example"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Participants {
		emails = append(emails, p.Email)
	}
	for _, n := range []Naming{DefaultNaming(), {SchemaPattern: "{hash}_{local}", ClusterPattern: "{domain}-{hash}-{local}", MaxLen: 30}} {
		schemas, clusters := map[string]string{}, map[string]string{}
		for _, e := range emails {
			s, c := n.Derive(e)
			if !schemaRE.MatchString(s) || len(s) > n.MaxLen || s[0] >= '0' && s[0] <= '9' {
				t.Errorf("%+v: schema for %q = %q, want [a-z_][a-z0-9_]* of at most %d", n, e, s, n.MaxLen)
			}
			if !clusterRE.MatchString(c) || len(c) > n.MaxLen {
				t.Errorf("%+v: cluster for %q = %q, want [a-z_][a-z0-9_-]* of at most %d", n, e, c, n.MaxLen)
			}
			if prev, dup := schemas[s]; dup {
				t.Errorf("%+v: %q and %q both get schema %q", n, prev, e, s)
			}
			if prev, dup := clusters[c]; dup {
				t.Errorf("%+v: %q and %q both get cluster %q", n, prev, e, c)
			}
			schemas[s], clusters[c] = e, e
		}
	}
}

func TestNaming_Derive_truncation(t *testing.T) {
	tests := []struct {
		naming      Naming
		email       string
		wantSchema  string
		wantCluster string
	}{
		{
			Naming{MaxLen: 20}, "hanako.sato@contoso-event.example",
			"hanako_sato_e8d023fc", "cohort-hana-e8d023fc",
		},
		{
			// Cut at "hanako_" / "hanako-": no separator is left before the hash.
			Naming{ClusterPattern: "{local}-{hash}", MaxLen: 16}, "hanako.sato@contoso-event.example",
			"hanako_e8d023fc", "hanako-e8d023fc",
		},
		{
			Naming{SchemaPattern: "{domain}_{local}_{hash}", ClusterPattern: "{local}-{hash}", MaxLen: 30},
			"hanako.sato@an-extremely-long-organisation-name.example",
			"an_extremely_lon_hana_aec244e5", "hanako-sato-aec244e5",
		},
	}
	for _, tt := range tests {
		s, c := tt.naming.Derive(tt.email)
		if s != tt.wantSchema || c != tt.wantCluster {
			t.Errorf("%+v.Derive(%q) = %q, %q; want %q, %q", tt.naming, tt.email, s, c, tt.wantSchema, tt.wantCluster)
		}
	}
}

func TestNaming_Validate(t *testing.T) {
	tests := []struct {
		name    string
		naming  Naming
		wantErr string // substring; "" for valid
	}{
		{"defaults", DefaultNaming(), ""},
		{"zero value means defaults", Naming{}, ""},
		{"custom", Naming{SchemaPattern: "hk26_{domain}_{local}_{hash}", ClusterPattern: "hk26-{local}-{hash}", MaxLen: 100}, ""},
		{"no hash", Naming{SchemaPattern: "{local}"}, `naming: schema pattern "{local}": expected a {hash} placeholder`},
		{"cluster no hash", Naming{ClusterPattern: "c-{local}-{domain}"}, `naming: cluster pattern "c-{local}-{domain}": expected a {hash} placeholder`},
		{"unknown placeholder", Naming{SchemaPattern: "{user}_{hash}"}, `unknown placeholder "{user}"`},
		{"unterminated", Naming{SchemaPattern: "{local_{hash}"}, `unknown placeholder "{local_{hash}"`},
		{"upper case literal", Naming{SchemaPattern: "HK_{local}_{hash}"}, `character 'H' not allowed`},
		{"dash in schema", Naming{SchemaPattern: "hk-{local}-{hash}"}, `character '-' not allowed`},
		{"too short", Naming{MaxLen: 10}, "needs a max length of at least 11, have 10"},
		{"too long", Naming{MaxLen: 300}, "max length 300: expected 1 to 255"},
		{"negative", Naming{MaxLen: -1}, "max length -1: expected 1 to 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.naming.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
