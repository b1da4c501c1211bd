package activities

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Every Wait of a paced class is reported to Observe, with its class; an
// unpaced class waits for nothing and reports nothing.
func TestLimits_observe(t *testing.T) {
	l := NewLimits(RateRates{SCIMWrite: 1000, Clusters: 1000}, 1)
	var got []Class
	l.Observe = func(c Class, waited time.Duration) {
		if waited < 0 {
			t.Errorf("%s waited %s", c, waited)
		}
		got = append(got, c)
	}
	for _, c := range []Class{ClassSCIMWrite, ClassSCIMWrite, ClassClusters, ClassUnityCatalog} {
		if err := l.Wait(context.Background(), c); err != nil {
			t.Fatalf("Wait(%s): %v", c, err)
		}
	}
	if want := []Class{ClassSCIMWrite, ClassSCIMWrite, ClassClusters}; !slices.Equal(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
}
