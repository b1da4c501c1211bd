package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"

	"github.com/cohort-dev/cohort/wire"
)

// DefaultNodeType is used when Settings.NodeType is empty.
const DefaultNodeType = "Standard_DS3_v2"

// NodeTypeSmallest in Settings.NodeType selects the smallest suitable node type.
const NodeTypeSmallest = "smallest"

// SetupBatch does the once-per-batch work: the shared catalog exists (created
// when Settings.CreateCatalog allows), every shared-grant securable exists,
// and the cluster spec is resolved (policy id by name, runtime, node type) so
// participants do not each look them up. All of it is read-only or
// create-if-missing, so a repeat is safe.
func (a *Activities) SetupBatch(ctx context.Context, in wire.SetupBatchInput) (wire.SetupBatchResult, error) {
	cat, err := a.ensureCatalog(ctx)
	if err != nil {
		return wire.SetupBatchResult{}, err
	}
	for _, g := range a.Settings.SharedGrants {
		if err := a.checkSecurable(ctx, g); err != nil {
			return wire.SetupBatchResult{}, err
		}
	}
	policyID, err := a.resolvePolicy(ctx)
	if err != nil {
		return wire.SetupBatchResult{}, err
	}
	sv, err := a.resolveSparkVersion(ctx)
	if err != nil {
		return wire.SetupBatchResult{}, err
	}
	nt, err := a.resolveNodeType(ctx)
	if err != nil {
		return wire.SetupBatchResult{}, err
	}
	return wire.SetupBatchResult{Catalog: cat, Cluster: wire.ClusterSpec{PolicyID: policyID, SparkVersion: sv, NodeType: nt}}, nil
}

func (a *Activities) ensureCatalog(ctx context.Context) (string, error) {
	name := strings.ToLower(strings.TrimSpace(a.Settings.Catalog))
	if name == "" {
		return "", invalid(wire.StepSetup, "check catalog: no catalog configured")
	}
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return "", classify(wire.StepSetup, fmt.Errorf("get catalog %s: %w", name, err))
	}
	info, err := a.Workspace.Catalogs.Get(ctx, catalog.GetCatalogRequest{Name: name})
	if err == nil {
		if info != nil && info.Name != "" {
			return strings.ToLower(info.Name), nil
		}
		return name, nil
	}
	if !errors.Is(err, apierr.ErrNotFound) {
		return "", classify(wire.StepSetup, fmt.Errorf("get catalog %s: %w", name, err))
	}
	if !a.Settings.CreateCatalog {
		return "", notFound(wire.StepSetup, "get catalog %s: catalog does not exist and creating it is not allowed by the configuration", name)
	}
	if err := a.Limits.Wait(ctx, ClassUnityCatalog); err != nil {
		return "", classify(wire.StepSetup, fmt.Errorf("create catalog %s: %w", name, err))
	}
	info, err = a.Workspace.Catalogs.Create(ctx, catalog.CreateCatalog{Name: name, Comment: "Created by Cohort for participant schemas"})
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

// resolvePolicy finds the cluster policy id by name. The SDK's GetByName
// lists all policies and returns a plain error when none matches.
func (a *Activities) resolvePolicy(ctx context.Context) (string, error) {
	name := a.Settings.PolicyName
	if name == "" {
		return "", invalid(wire.StepSetup, "find cluster policy: no policy name configured")
	}
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return "", classify(wire.StepSetup, fmt.Errorf("find cluster policy %q: %w", name, err))
	}
	p, err := a.Workspace.Policies.GetByName(ctx, name)
	switch {
	case err != nil:
		return "", classify(wire.StepSetup, fmt.Errorf("find cluster policy %q: %w", name, err))
	case p == nil || p.PolicyId == "":
		return "", notFound(wire.StepSetup, "find cluster policy %q: no such policy in the workspace", name)
	}
	return p.PolicyId, nil
}

// resolveSparkVersion checks a pinned runtime exists, or selects the latest
// ML LTS runtime exactly as the SDK's SelectSparkVersion does.
func (a *Activities) resolveSparkVersion(ctx context.Context) (string, error) {
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return "", classify(wire.StepSetup, fmt.Errorf("list runtimes: %w", err))
	}
	sv, err := a.Workspace.Clusters.SparkVersions(ctx)
	if err != nil {
		return "", classify(wire.StepSetup, fmt.Errorf("list runtimes: %w", err))
	}
	if pinned := strings.TrimSpace(a.Settings.SparkVersion); pinned != "" {
		for _, v := range sv.Versions {
			if v.Key == pinned {
				return pinned, nil
			}
		}
		return "", notFound(wire.StepSetup, "check runtime %q: not offered by the workspace", pinned)
	}
	key, err := sv.Select(compute.SparkVersionRequest{ML: true, LongTermSupport: true, Latest: true})
	if err != nil {
		return "", notFound(wire.StepSetup, "select latest ML LTS runtime: %v", err)
	}
	return key, nil
}

// resolveNodeType checks the configured node type exists, or selects the
// smallest general-purpose node type with a local disk (falling back to the
// smallest of any kind) exactly as the SDK's SelectNodeType does.
func (a *Activities) resolveNodeType(ctx context.Context) (string, error) {
	want := strings.TrimSpace(a.Settings.NodeType)
	if want == "" {
		want = DefaultNodeType
	}
	if err := a.Limits.Wait(ctx, ClassClusters); err != nil {
		return "", classify(wire.StepSetup, fmt.Errorf("list node types: %w", err))
	}
	nts, err := a.Workspace.Clusters.ListNodeTypes(ctx)
	if err != nil {
		return "", classify(wire.StepSetup, fmt.Errorf("list node types: %w", err))
	}
	if strings.EqualFold(want, NodeTypeSmallest) {
		id, err := nts.Smallest(compute.NodeTypeRequest{Category: "General Purpose", LocalDisk: true})
		if err != nil {
			id, err = nts.Smallest(compute.NodeTypeRequest{})
		}
		if err != nil {
			return "", notFound(wire.StepSetup, "select smallest node type: %v", err)
		}
		return id, nil
	}
	for _, nt := range nts.NodeTypes {
		if nt.NodeTypeId == want {
			return want, nil
		}
	}
	return "", notFound(wire.StepSetup, "check node type %q: not offered by the workspace", want)
}
