package activities

import (
	"fmt"
	"strings"
	"testing"
)

func TestPrincipalAssignments(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"privilege_assignments":[`)
	for i := range 500 {
		fmt.Fprintf(&b, `{"principal":"p%d@example.com","privileges":["USE_CATALOG"]},`, i)
	}
	b.WriteString(`{"principal":"ana@example.com","privileges":["USE_CATALOG","BROWSE"]}]}`)
	big := b.String()

	tests := []struct {
		name, raw, principal string
		want                 string // principal:privileges of each entry; "" = none
	}{
		{"only the principal's entry out of many", big, "ana@example.com", "ana@example.com:[USE_CATALOG BROWSE]"},
		{"absent principal falls back to the whole answer", `{"privilege_assignments":[{"principal":"bo@x","privileges":["SELECT"]}]}`, "ana@example.com", "bo@x:[SELECT]"},
		{"spaced JSON falls back to a full decode", `{"privilege_assignments": [ {"principal": "ana@example.com", "privileges": ["SELECT"]} ]}`, "ana@example.com", "ana@example.com:[SELECT]"},
		{"empty answer", ``, "ana@example.com", ""},
		{"no assignments", `{}`, "ana@example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := principalAssignments([]byte(tt.raw), tt.principal)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, pa := range got {
				parts = append(parts, fmt.Sprintf("%s:%v", pa.Principal, pa.Privileges))
			}
			s := strings.Join(parts, " ")
			if s != tt.want {
				t.Fatalf("got %s, want %s", s, tt.want)
			}
		})
	}
	if _, err := principalAssignments([]byte(`{"privilege_assignments":[`), "ana@example.com"); err == nil {
		t.Fatal("a truncated answer must be an error")
	}
}
