package wire

import (
	"reflect"
	"testing"
)

func TestMergeAndSubtractGrants(t *testing.T) {
	a := []SecurableGrant{{Type: "catalog", Name: "Cohort", Privileges: []string{"use_catalog"}}}
	b := []SecurableGrant{
		{Type: "schema", Name: "cohort.x", Privileges: []string{"USE_SCHEMA", "SELECT"}},
		{Type: "catalog", Name: "cohort", Privileges: []string{"USE_CATALOG", "BROWSE"}},
	}
	merged := MergeGrants(a, b)
	want := []SecurableGrant{
		{Type: "catalog", Name: "cohort", Privileges: []string{"USE_CATALOG", "BROWSE"}},
		{Type: "schema", Name: "cohort.x", Privileges: []string{"USE_SCHEMA", "SELECT"}},
	}
	if !reflect.DeepEqual(merged, want) {
		t.Errorf("MergeGrants = %+v, want %+v", merged, want)
	}
	left := SubtractGrants(merged, []SecurableGrant{
		{Type: "schema", Name: "cohort.x", Privileges: []string{"SELECT"}},
		{Type: "schema", Name: "cohort.x", Privileges: []string{"USE_SCHEMA"}},
		{Type: "catalog", Name: "COHORT", Privileges: []string{"browse"}},
	})
	if want := []SecurableGrant{{Type: "catalog", Name: "cohort", Privileges: []string{"USE_CATALOG"}}}; !reflect.DeepEqual(left, want) {
		t.Errorf("SubtractGrants = %+v, want %+v", left, want)
	}
	if got := MergeGrants(nil, nil); got != nil {
		t.Errorf("MergeGrants(nil, nil) = %+v, want nil", got)
	}
}

func TestParticipantSchema(t *testing.T) {
	if c, s, ok := ParticipantSchema("cohort.x_2", "other", "x"); c != "cohort" || s != "x_2" || !ok {
		t.Errorf("recorded: %s %s %t", c, s, ok)
	}
	if c, s, ok := ParticipantSchema("", "cohort", "x"); c != "cohort" || s != "x" || ok {
		t.Errorf("roster: %s %s %t", c, s, ok)
	}
}
