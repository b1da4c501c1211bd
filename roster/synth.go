package roster

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"strings"
)

type synthName struct{ display, email string }

var (
	jaFamily = []synthName{
		{"佐藤", "sato"}, {"鈴木", "suzuki"}, {"高橋", "takahashi"}, {"田中", "tanaka"},
		{"伊藤", "ito"}, {"渡辺", "watanabe"}, {"山本", "yamamoto"}, {"中村", "nakamura"},
		{"小林", "kobayashi"}, {"加藤", "kato"}, {"髙橋", "takahashi"}, {"山﨑", "yamazaki"},
	}
	jaGiven = []synthName{
		{"太郎", "taro"}, {"花子", "hanako"}, {"翔太", "shota"}, {"さくら", "sakura"},
		{"陽菜", "hina"}, {"蓮", "ren"}, {"ゆい", "yui"}, {"大翔", "hiroto"}, {"あおい", "aoi"},
	}
	latinGiven = []synthName{
		{"José", "jose"}, {"Zoë", "zoe"}, {"François", "francois"}, {"Åsa", "asa"},
		{"Łukasz", "lukasz"}, {"Chloé", "chloe"}, {"Emily", "emily"}, {"Liam", "liam"},
		{"Ngozi", "ngozi"}, {"Søren", "soren"},
	}
	latinFamily = []synthName{
		{"García", "garcia"}, {"Müller", "muller"}, {"Dupont", "dupont"}, {"Lindström", "lindstrom"},
		{"Wójcik", "wojcik"}, {"O'Brien", "obrien"}, {"Smith", "smith"}, {"Okafor", "okafor"},
		{"Nguyễn", "nguyen"},
	}
	emoji = []string{"🚀", "🎉", "🐍", "☕"}
)

// Synthesize returns a plain-format UTF-8 CSV ("email,display_name", LF line
// ends) of n participants with unique emails on domain and a mix of Japanese,
// accented Latin and occasionally emoji display names. The same arguments
// always give the same bytes. It is meant for tests and benchmarks.
func Synthesize(n int, seed int64, domain string) []byte {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x636f686f7274)) // "cohort"
	pick := func(s []synthName) synthName { return s[rng.IntN(len(s))] }
	var buf bytes.Buffer
	buf.Grow(n * 56)
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"email", "display_name"})
	for i := range n {
		var display, local string
		if rng.IntN(2) == 0 {
			f, g := pick(jaFamily), pick(jaGiven)
			display, local = f.display+" "+g.display, g.email+"."+f.email
		} else {
			g, f := pick(latinGiven), pick(latinFamily)
			display, local = g.display+" "+f.display, g.email+"."+f.email
		}
		if rng.IntN(20) == 0 {
			display += " " + emoji[rng.IntN(len(emoji))]
		}
		// The index makes every email unique; vary its case to exercise
		// case-insensitive handling.
		email := fmt.Sprintf("%s.%d@%s", local, i+1, domain)
		if rng.IntN(10) == 0 {
			email = strings.ToUpper(email[:1]) + email[1:]
		}
		_ = w.Write([]string{email, display})
	}
	w.Flush()
	return buf.Bytes()
}
