package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// Class names a Databricks API whose rate Cohort paces itself to.
type Class string

// The API classes. Published Azure limits exist for SCIM and Permissions;
// the others are configured conservatively.
const (
	ClassSCIMWrite        Class = "scim_write"        // account SCIM POST/PUT/DELETE (5/s)
	ClassSCIMList         Class = "scim_list"         // account SCIM list with filter (240/min)
	ClassSCIMGet          Class = "scim_get"          // account SCIM get (20/s)
	ClassSCIMPatch        Class = "scim_patch"        // account SCIM PATCH (2/s)
	ClassPermissionsWrite Class = "permissions_write" // permissions PATCH/PUT (30/s)
	ClassPermissionsRead  Class = "permissions_read"  // permissions GET (100/s)
	ClassAssignments      Class = "assignments"       // account workspace assignment
	ClassUnityCatalog     Class = "unity_catalog"     // catalogs, schemas, grants
	ClassClusters         Class = "clusters"          // clusters, policies, runtimes, node types
)

// RateRates are requests per second per class for the whole deployment.
type RateRates struct {
	SCIMWrite        float64
	SCIMList         float64
	SCIMGet          float64
	SCIMPatch        float64
	PermissionsWrite float64
	PermissionsRead  float64
	Assignments      float64
	UnityCatalog     float64
	Clusters         float64
}

// Limits paces calls per API class. The zero value and nil pace nothing.
type Limits struct {
	limiters map[Class]*rate.Limiter
	// Observe, if set, is told how long each Wait of a paced class waited
	// (the worker's metrics).
	Observe func(class Class, waited time.Duration)
}

// NewLimits divides each class rate by workers (the worker processes sharing
// the deployment-wide rates) and builds one token bucket per class with a
// burst of one, so that a worker never bursts above its share. A rate <= 0
// leaves that class unpaced.
func NewLimits(r RateRates, workers int) *Limits {
	workers = max(workers, 1)
	l := &Limits{limiters: map[Class]*rate.Limiter{}}
	for class, perSecond := range map[Class]float64{
		ClassSCIMWrite:        r.SCIMWrite,
		ClassSCIMList:         r.SCIMList,
		ClassSCIMGet:          r.SCIMGet,
		ClassSCIMPatch:        r.SCIMPatch,
		ClassPermissionsWrite: r.PermissionsWrite,
		ClassPermissionsRead:  r.PermissionsRead,
		ClassAssignments:      r.Assignments,
		ClassUnityCatalog:     r.UnityCatalog,
		ClassClusters:         r.Clusters,
	} {
		if perSecond > 0 {
			l.limiters[class] = rate.NewLimiter(rate.Limit(perSecond/float64(workers)), 1)
		}
	}
	return l
}

// Limit returns the pace of one class (rate.Inf when unpaced).
func (l *Limits) Limit(class Class) rate.Limit {
	if l == nil || l.limiters[class] == nil {
		return rate.Inf
	}
	return l.limiters[class].Limit()
}

// errPaced means the local pacing could not grant a call slot before the
// activity's deadline: the class is saturated, which classify reports as
// throttling.
var errPaced = errors.New("local rate limit: no call slot before the deadline")

// Wait blocks until a call of this class may be made, or ctx ends.
func (l *Limits) Wait(ctx context.Context, class Class) error {
	if l == nil {
		return nil
	}
	lim := l.limiters[class]
	if lim == nil {
		return nil
	}
	start := time.Now()
	err := lim.Wait(ctx)
	if l.Observe != nil {
		l.Observe(class, time.Since(start))
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (%s)", errPaced, class)
	}
	return nil
}
