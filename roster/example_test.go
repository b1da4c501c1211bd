package roster

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/text/encoding/japanese"
)

var update = flag.Bool("update", false, "regenerate ../examples/participants.csv from testdata/participants.utf8.csv")

const (
	examplePath = "../examples/participants.csv"
	exampleTwin = "participants.utf8.csv"
)

// excelJapan encodes UTF-8 text the way Excel in Japan saves "CSV (コンマ区切り)":
// Shift_JIS (CP932), no BOM, CRLF line ends.
func excelJapan(t *testing.T, text []byte) []byte {
	t.Helper()
	crlf := bytes.ReplaceAll(bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	out, err := japanese.ShiftJIS.NewEncoder().Bytes(crlf)
	if err != nil {
		t.Fatalf("encode %s as Shift_JIS (Excel would write '?' for characters CP932 lacks, such as é): %v", exampleTwin, err)
	}
	return out
}

// TestExampleFile keeps examples/participants.csv the Shift_JIS twin of
// testdata/participants.utf8.csv. Run with -update after editing the twin.
func TestExampleFile(t *testing.T) {
	twin := readTestdata(t, exampleTwin)
	want := excelJapan(t, twin)
	if *update {
		if err := os.WriteFile(examplePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatalf("%v (run go test ./roster -run TestExampleFile -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not the Shift_JIS/CRLF encoding of testdata/%s; run go test ./roster -run TestExampleFile -update", examplePath, exampleTwin)
	}
	if !bytes.HasPrefix(got, []byte("version:v1.0,")) || !bytes.Contains(got, []byte("\r\n")) {
		t.Errorf("%s: want a version:v1.0 first line and CRLF line ends", examplePath)
	}

	sj, err := Parse(filepath.Base(examplePath), got, Options{})
	if err != nil {
		t.Fatalf("Parse(%s): %v", examplePath, err)
	}
	u8, err := Parse(exampleTwin, twin, Options{})
	if err != nil {
		t.Fatalf("Parse(%s): %v", exampleTwin, err)
	}
	if sj.Format != FormatEntraBulkCreate || sj.Encoding != EncodingSJIS {
		t.Errorf("%s: format, encoding = %q, %q; want %q, %q", examplePath, sj.Format, sj.Encoding, FormatEntraBulkCreate, EncodingSJIS)
	}
	if u8.Encoding != EncodingUTF8 {
		t.Errorf("%s: encoding = %q, want %q", exampleTwin, u8.Encoding, EncodingUTF8)
	}
	if !slices.Equal(sj.Participants, u8.Participants) {
		t.Errorf("Shift_JIS and UTF-8 twins parse differently:\n%+v\n%+v", sj.Participants, u8.Participants)
	}
	if len(sj.Participants) != 20 {
		t.Errorf("%d participants, want 20", len(sj.Participants))
	}
	for _, name := range []string{"髙橋 一郎", "山﨑 さくら", "鈴木 ソウタ", "表 陽菜", "マリア・ガルシア", "Smith, Jane", "Liam O'Brien"} {
		if !slices.ContainsFunc(sj.Participants, func(p Participant) bool { return p.DisplayName == name }) {
			t.Errorf("%s: no participant named %q", examplePath, name)
		}
	}
}
