package workflows

import (
	"strings"
	"testing"
)

func TestValidateBatchID(t *testing.T) {
	tests := []struct {
		id   string
		want string // "" valid, else in the message
	}{
		{"2026-01-15-3f9c", ""},
		{"day1", ""},
		{"Event_2026.day-2", ""},
		{strings.Repeat("a", 64), ""},
		{strings.Repeat("a", 65), "expected 1 to 64"},
		{"", "expected 1 to 64"},
		{"victim/chunk-00000", `got "victim/chunk-00000"`},
		{"day1\n", "expected 1 to 64"},
		{"-day1", "starting with a letter or digit"},
		{".hidden", "starting with a letter or digit"},
		{"day 1", "expected 1 to 64"},
		{"日1", "expected 1 to 64"},
		{"a:b", "expected 1 to 64"},
		{strings.Repeat("x", 1200), "(1200 bytes)"},
		{"reconcile-day1-20260115T080000Z", `not starting with "reconcile-"`},
		{"offboard-day1", `not starting with "offboard-"`},
		{"roster-0123abcd", `not starting with "roster-"`},
	}
	for _, tt := range tests {
		err := ValidateBatchID(tt.id)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateBatchID(%.70q) = %v, want nil", tt.id, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidateBatchID(%.70q) = %v, want an error mentioning %q", tt.id, err, tt.want)
		}
	}
}

// A command's BATCH may be an id Cohort derived; none may hold a "/".
func TestValidateBatchRef(t *testing.T) {
	valid := []string{"day1", "reconcile-day1-20260115T080000Z", "offboard-plan-roster-0123abcd-20260115T080000Z",
		"reconcile-day1-2026-01-15T08:00:00Z", "offboard-reconcile-day1-2026-01-15T08:00:00Z-20260116T090000Z",
		strings.Repeat("a", MaxBatchRefLen)}
	for _, id := range valid {
		if err := ValidateBatchRef(id); err != nil {
			t.Errorf("ValidateBatchRef(%q) = %v, want nil", id, err)
		}
	}
	invalid := []string{"", "victim/chunk-00000", "a/b", "day1\n", "day1\r", " day1", ":day1", "日", strings.Repeat("a", MaxBatchRefLen+1),
		"a\x00b", "day1/retry-1/chunk-00000"}
	for _, id := range invalid {
		if err := ValidateBatchRef(id); err == nil {
			t.Errorf("ValidateBatchRef(%.70q) = nil, want an error", id)
		}
	}
}

// No valid batch id makes a batch workflow ID equal to another batch's
// chunk workflow ID: chunk ids hold a "/" after the batch id, batch ids none.
func TestBatchWorkflowID_neverAChunkOfAnother(t *testing.T) {
	ids := []string{"victim", "day1", "a.b", "reconcile-victim-20260115T080000Z"}
	for _, a := range ids {
		for _, b := range ids {
			for attempt := range 3 {
				for _, index := range []int{0, 1, 99999} {
					chunk := ChunkWorkflowID(b, attempt, index)
					if BatchWorkflowID(a) == chunk {
						t.Errorf("batch %q's workflow ID is chunk %d of batch %q attempt %d", a, index, b, attempt)
					}
					if ValidateBatchRef(strings.TrimPrefix(chunk, BatchWorkflowID(""))) == nil {
						t.Errorf("chunk id %q minus the batch prefix passes as a batch id", chunk)
					}
				}
			}
		}
	}
}
