package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	ClassEvents           Class = "cluster_events"    // clusters/events pages (the usage read)
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
	ClusterEvents    float64
}

// Limits paces calls per API class. The zero value and nil pace nothing.
type Limits struct {
	rates map[Class]float64 // the deployment's, before division

	mu       sync.Mutex
	limiters map[Class]*rate.Limiter
	workers  int           // how many workers the rates are divided by now
	shared   chan struct{} // closed when Share replaces the limiters
	// Observe, if set, is told how long each Wait of a paced class waited
	// (the worker's metrics).
	Observe func(class Class, waited time.Duration)
}

// NewLimits divides each class rate by workers (the worker processes sharing
// the deployment-wide rates) and builds one token bucket per class with a
// burst of one, so that a worker never bursts above its share. A rate <= 0
// leaves that class unpaced. Share changes the division later.
func NewLimits(r RateRates, workers int) *Limits {
	workers = max(workers, 1)
	l := &Limits{limiters: map[Class]*rate.Limiter{}, rates: map[Class]float64{}, workers: workers, shared: make(chan struct{})}
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
		ClassEvents:           r.ClusterEvents,
	} {
		if perSecond > 0 {
			l.rates[class] = perSecond
			l.limiters[class] = rate.NewLimiter(rate.Limit(perSecond/float64(workers)), 1)
		}
	}
	return l
}

// Share re-divides every class rate by workers (at least 1), the worker
// processes sharing the deployment's rates now: a worker that learns another
// has died takes over its share, and one that learns of a new worker hands
// part of its own over. It reports whether the division changed.
//
// Calls already waiting are paced anew: a token bucket's reservations keep
// the times they were given (SetLimit does not move them), so calls queued at
// half the rate would still go out at half the rate while new ones went out
// at the full rate, together above it. Share therefore replaces each bucket
// with one at the new rate, without its first token (the last call at the
// old rate may have just gone out), and wakes the waiters to queue again.
func (l *Limits) Share(workers int) bool {
	workers = max(workers, 1)
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.workers == workers {
		return false
	}
	l.workers = workers
	now := time.Now()
	for class := range l.limiters {
		lim := rate.NewLimiter(rate.Limit(l.rates[class]/float64(workers)), 1)
		lim.AllowN(now, 1)
		l.limiters[class] = lim
	}
	if l.shared != nil {
		close(l.shared)
	}
	l.shared = make(chan struct{})
	return true
}

// Workers returns how many workers the rates are divided by now.
func (l *Limits) Workers() int {
	if l == nil {
		return 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.workers, 1)
}

// bucket returns a class's token bucket (nil when unpaced) and the channel
// closed when Share replaces it.
func (l *Limits) bucket(class Class) (*rate.Limiter, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limiters[class], l.shared
}

// Limit returns the pace of one class (rate.Inf when unpaced).
func (l *Limits) Limit(class Class) rate.Limit {
	if l == nil {
		return rate.Inf
	}
	lim, _ := l.bucket(class)
	if lim == nil {
		return rate.Inf
	}
	return lim.Limit()
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
	if l.Observe == nil {
		return l.wait(ctx, class)
	}
	start := time.Now()
	err := l.wait(ctx, class)
	if lim, _ := l.bucket(class); lim != nil {
		l.Observe(class, time.Since(start))
	}
	return err
}

// wait is Wait without the observer.
func (l *Limits) wait(ctx context.Context, class Class) error {
	for {
		lim, shared := l.bucket(class)
		if lim == nil {
			return nil
		}
		r := lim.Reserve()
		d := r.Delay()
		if d == 0 {
			return nil
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			r.Cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w (%s)", errPaced, class)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
			return nil
		case <-shared: // queue again in the new bucket
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			r.Cancel()
			return ctx.Err()
		}
	}
}
