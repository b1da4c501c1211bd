package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"go.temporal.io/sdk/temporal"

	"github.com/cohort-dev/cohort/wire"
)

// DefaultNodeType is used when Settings.NodeType is empty.
const DefaultNodeType = "Standard_DS3_v2"

// NodeTypeSmallest in Settings.NodeType selects the smallest suitable node type.
const NodeTypeSmallest = "smallest"

// SetupBatch does the once-per-batch work. It first runs every readiness
// check (plan.go), the same ones `starter plan` shows, and fails the batch
// with every blocking problem, having created nothing, when one fails: a
// batch that cannot finish does not start. Then it creates the shared
// catalog when it is missing (with catalog.storage_root), and returns the
// cluster spec the checks resolved from the policy (policy id, runtime,
// node type, what the policy fixes or forbids) so participants do not each
// look them up. All of it is read-only or create-if-missing, so a repeat is
// safe.
func (a *Activities) SetupBatch(ctx context.Context, in wire.SetupBatchInput) (wire.SetupBatchResult, error) {
	ps, err := a.loadRoster(in.Roster)
	if err != nil {
		return wire.SetupBatchResult{}, err
	}
	r, err := a.readiness(ctx, ps)
	if err != nil {
		return wire.SetupBatchResult{}, err
	}
	if msg := r.blocking(); msg != "" {
		return wire.SetupBatchResult{}, temporal.NewApplicationErrorWithOptions(redact(msg), wire.ErrNotReady,
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{wire.StepSetup}})
	}
	cat := r.catalog
	if !r.catalogExists {
		if cat, err = a.createCatalog(ctx, cat); err != nil {
			return wire.SetupBatchResult{}, err
		}
	}
	return wire.SetupBatchResult{Catalog: cat, Cluster: r.spec}, nil
}

// createCatalog creates the shared catalog (the readiness checks found it
// missing and creatable), with catalog.storage_root when configured.
func (a *Activities) createCatalog(ctx context.Context, name string) (string, error) {
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return "", classify(wire.StepSetup, fmt.Errorf("create catalog %s: %w", name, err))
	}
	info, err := a.Workspace.Catalogs.Create(ctx, catalog.CreateCatalog{Name: name, StorageRoot: strings.TrimSpace(a.Settings.StorageRoot),
		Comment: "Created by Cohort for participant schemas"})
	switch {
	case err == nil && info != nil && info.Name != "":
		return strings.ToLower(info.Name), nil
	case err == nil, errors.Is(err, apierr.ErrResourceConflict):
		return name, nil
	default:
		return "", classify(wire.StepSetup, fmt.Errorf("create catalog %s: %w", name, err))
	}
}

// checkSecurable makes sure a shared grant's catalog or schema exists, so a
// typo fails the batch once instead of every participant.
func (a *Activities) checkSecurable(ctx context.Context, g Grant) error {
	typ, name := strings.ToLower(strings.TrimSpace(g.Securable)), strings.ToLower(strings.TrimSpace(g.Name))
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return classify(wire.StepSetup, fmt.Errorf("check shared grant %s %s: %w", typ, name, err))
	}
	var err error
	switch typ {
	case "catalog":
		_, err = a.Workspace.Catalogs.Get(ctx, catalog.GetCatalogRequest{Name: name})
	case "schema":
		_, err = a.Workspace.Schemas.Get(ctx, catalog.GetSchemaRequest{FullName: name})
	default:
		return invalid(wire.StepSetup, "check shared grant %q %s: securable must be catalog or schema", g.Securable, name)
	}
	if errors.Is(err, apierr.ErrNotFound) {
		return notFound(wire.StepSetup, "check shared grant: %s %s does not exist", typ, name)
	}
	if err != nil {
		return classify(wire.StepSetup, fmt.Errorf("check shared grant %s %s: %w", typ, name, err))
	}
	return nil
}
