package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
	"github.com/cohort-dev/cohort/workflows"
)

// payloadBound is what one chunk's payloads must stay under: half of
// Temporal's 2 MiB limit (limit.blobSize.error).
const payloadBound = 1 << 20

// worstParticipants returns n participants as large as a roster may make
// them: the longest address, display names of 256 characters that JSON
// escapes to six bytes each ("<" is "\u003c", as Temporal's JSON converter
// writes it) or that take four bytes each (emoji), the longest names, and a
// line number of a 64 MiB file.
func worstParticipants(n int) []roster.Participant {
	label := strings.Repeat("d", 63)
	email := strings.Repeat("l", roster.MaxLocalPartLen) + "@" + label + "." + label + "." + strings.Repeat("t", 61)
	displays := []string{strings.Repeat("<", roster.MaxDisplayNameLen), strings.Repeat("\U0001F680", roster.MaxDisplayNameLen)}
	ps := make([]roster.Participant, n)
	for i := range ps {
		ps[i] = roster.Participant{
			Email:       email,
			DisplayName: displays[i%len(displays)],
			Schema:      strings.Repeat("s", 255),
			ClusterName: strings.Repeat("c", 255),
			Line:        roster.MaxFileSize,
		}
	}
	return ps
}

// TestMaxChunkSize_fitsTemporalPayloads: for the largest chunk the config
// allows, filled with the largest participants a roster can hold, the
// LoadChunk result and the chunk's own result stay far under Temporal's
// payload limit.
func TestMaxChunkSize_fitsTemporalPayloads(t *testing.T) {
	ps := worstParticipants(MaxChunkSize)
	if len(ps[0].Email) != roster.MaxAddressLen {
		t.Fatalf("worst address is %d long, want %d", len(ps[0].Email), roster.MaxAddressLen)
	}
	load, err := json.Marshal(wire.LoadChunkResult{Participants: ps})
	if err != nil {
		t.Fatal(err)
	}
	if len(load) >= payloadBound {
		t.Errorf("LoadChunk result for %d worst-case participants = %d bytes, want under %d", MaxChunkSize, len(load), payloadBound)
	}

	// Every participant failed with the longest error a chunk keeps.
	outcomes := make([]workflows.Outcome, len(ps))
	for i, p := range ps {
		outcomes[i] = workflows.Outcome{Status: workflows.StatusFailed, Step: "create_cluster", Error: workflows.ClipError(strings.Repeat("<&>", 100000))}
		outcomes[i].Email, outcomes[i].DisplayName = p.Email, p.DisplayName
		outcomes[i].Schema = "c" + strings.Repeat("x", 254) + "." + p.Schema
		outcomes[i].UserID, outcomes[i].ClusterID = "1234567890123456", "0101-123456-abcdefgh"
		outcomes[i].ClusterURL = "https://adb-1234567890123456.7.azuredatabricks.net/compute/clusters/0101-123456-abcdefgh"
	}
	chunk, err := json.Marshal(workflows.ChunkResult{Outcomes: outcomes})
	if err != nil {
		t.Fatal(err)
	}
	if len(chunk) >= payloadBound {
		t.Errorf("chunk result for %d worst-case participants = %d bytes, want under %d", MaxChunkSize, len(chunk), payloadBound)
	}
	t.Logf("worst case at chunk_size %d: LoadChunk result %d bytes, chunk result %d bytes", MaxChunkSize, len(load), len(chunk))
}

// TestParse_boundsParticipants: the limits worstParticipants assumes are
// the roster's: one character more is refused.
func TestParse_boundsParticipants(t *testing.T) {
	p := worstParticipants(1)[0]
	ok := "email,display_name\n" + p.Email + ",\"" + strings.Repeat("\U0001F680", roster.MaxDisplayNameLen) + "\"\n"
	if _, err := roster.Parse("ok.csv", []byte(ok), roster.Options{}); err != nil {
		t.Fatalf("Parse of the worst-case participant: %v", err)
	}
	for _, bad := range []string{
		"email,display_name\nx" + p.Email + ",A\n",
		"email,display_name\n" + p.Email + ",\"" + strings.Repeat("\U0001F680", roster.MaxDisplayNameLen+1) + "\"\n",
	} {
		if _, err := roster.Parse("bad.csv", []byte(bad), roster.Options{}); err == nil {
			t.Errorf("Parse accepted a participant over the limits (%d bytes)", len(bad))
		}
	}
	if err := (roster.Naming{MaxLen: 256}).Validate(); err == nil {
		t.Errorf("naming accepts a max length of 256, want at most the 255 worstParticipants assumes")
	}
}
