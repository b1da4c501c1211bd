package activities

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/cohort-dev/cohort/wire"
)

// The readiness checks' reads hardly depend on each other, yet made one
// after another they were most of a batch's setup: eight to ten reads, about
// 4.6 s at Azure's latencies before the first participant could start
// (bench/RESULTS.md, issue 18). So readiness starts them all at once and each
// check takes its read's result where it used to make the call; the checks,
// their order and their outcomes are as before. Some reads are made on
// speculation: the caller's identity and the catalog's schemas (needed only
// when the catalog exists), the workspace's assignments (needed only when the
// users could be listed), the runtimes and node types (needed only when the
// policy exists). A result that turns out not to be needed is dropped; every
// one of them is a read. A read that only makes sense after another (the
// caller's effective privileges, the metastore's summary) is still made by
// its check. Every read is paced by its class's limiter, as before; all are
// reads, so nothing is created before the checks pass.

// pending is a read started ahead of the check that takes its result.
type pending[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// get waits for the read and returns its result.
func (p *pending[T]) get() (T, error) {
	<-p.done
	return p.v, p.err
}

// prefetch starts read in its own goroutine, counted in wg.
func prefetch[T any](ctx context.Context, wg *sync.WaitGroup, read func(context.Context) (T, error)) *pending[T] {
	p := &pending[T]{done: make(chan struct{})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(p.done)
		p.v, p.err = read(ctx)
	}()
	return p
}

// waitError is a read that never went out: its rate limiter gave no slot
// (the activity's deadline, or its cancellation). The checks then stop and
// the activity fails retryably, as they did when they waited themselves.
type waitError struct{ err error }

func (e waitError) Error() string { return e.err.Error() }
func (e waitError) Unwrap() error { return e.err }

// unpaced returns the setup step's error for a read that never went out,
// and nil for any other outcome (which is the check's to judge).
func unpaced(err error) error {
	var we waitError
	if errors.As(err, &we) {
		return classify(wire.StepSetup, we.err)
	}
	return nil
}

// reads are the readiness checks' reads, in flight or done.
type reads struct {
	wg          sync.WaitGroup
	users       *pending[[]iam.User]
	assignments *pending[struct{}] // the first page of the workspace's assignments: the right to list them
	catalog     *pending[*catalog.CatalogInfo]
	me          *pending[*iam.User] // the caller, for the catalog rights (catalog exists)
	schemas     *pending[[]string]  // the catalog's schema names, lower-cased (catalog exists)
	securables  []*pending[struct{}]
	policy      *pending[*compute.Policy]
	versions    *pending[*compute.GetSparkVersionsResponse]
	nodeTypes   *pending[*compute.ListNodeTypesResponse]
}

// startReads starts every read the checks need for catalogName (empty: no
// catalog configured, so no catalog reads). The caller cancels ctx and waits
// for rd.wg once the checks are done.
func (a *Activities) startReads(ctx context.Context, catalogName string) *reads {
	rd := &reads{}
	rd.users = prefetch(ctx, &rd.wg, a.listAccountUsers)
	rd.assignments = prefetch(ctx, &rd.wg, func(ctx context.Context) (struct{}, error) {
		if err := a.Limits.Wait(ctx, ClassAssignments); err != nil {
			return struct{}{}, waitError{err}
		}
		it := a.Account.Assignments.List(ctx, iam.ListWorkspaceAssignmentRequest{WorkspaceId: a.Settings.WorkspaceID})
		var err error
		if it.HasNext(ctx) {
			_, err = it.Next(ctx)
		}
		return struct{}{}, err
	})
	if catalogName != "" {
		rd.catalog = prefetch(ctx, &rd.wg, func(ctx context.Context) (*catalog.CatalogInfo, error) {
			if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
				return nil, waitError{err}
			}
			return a.Workspace.Catalogs.Get(ctx, catalog.GetCatalogRequest{Name: catalogName})
		})
		rd.me = prefetch(ctx, &rd.wg, func(ctx context.Context) (*iam.User, error) {
			if err := a.Limits.Wait(ctx, ClassSCIMGet); err != nil {
				return nil, waitError{err}
			}
			return a.Workspace.CurrentUser.Me(ctx, iam.MeRequest{})
		})
		rd.schemas = prefetch(ctx, &rd.wg, func(ctx context.Context) ([]string, error) {
			return a.schemaNames(ctx, catalogName)
		})
	}
	for _, g := range a.Settings.SharedGrants {
		rd.securables = append(rd.securables, prefetch(ctx, &rd.wg, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, a.checkSecurable(ctx, g)
		}))
	}
	rd.policy = prefetch(ctx, &rd.wg, a.findPolicy)
	rd.versions = prefetch(ctx, &rd.wg, func(ctx context.Context) (*compute.GetSparkVersionsResponse, error) {
		if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
			return nil, waitError{err}
		}
		return a.Workspace.Clusters.SparkVersions(ctx)
	})
	rd.nodeTypes = prefetch(ctx, &rd.wg, func(ctx context.Context) (*compute.ListNodeTypesResponse, error) {
		if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
			return nil, waitError{err}
		}
		return a.Workspace.Clusters.ListNodeTypes(ctx)
	})
	return rd
}

// schemaNames lists every schema of a catalog (pages of 1,000, each paced as
// unity_catalog), lower-cased.
func (a *Activities) schemaNames(ctx context.Context, catalogName string) ([]string, error) {
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return nil, waitError{err}
	}
	it := a.Workspace.SchemaList.List(ctx, catalog.ListSchemasRequest{CatalogName: catalogName, MaxResults: 1000})
	var out []string
	for n := 1; it.HasNext(ctx); n++ {
		s, err := it.Next(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, strings.ToLower(s.Name))
		if n%1000 == 0 {
			if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
				return nil, waitError{err}
			}
		}
	}
	return out, nil
}
