// Package activities is the only part of Cohort that talks to Databricks. It
// does so through the real databricks-sdk-go, behind the small interfaces
// below, which list only the SDK methods Cohort calls; the SDK's own service
// values satisfy them unchanged (see FromClients).
//
// Every step is safe to repeat at any point of failure: creates adopt what
// already exists, grants and ACLs state their end result with PATCH, and the
// stop step treats an already terminated cluster as done. Errors are
// classified once, where a step meets the SDK (see classify), into the
// *temporal.ApplicationError types listed in wire/wire.go (the wire.Err... constants).
package activities

import (
	"context"
	"net/http"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/listing"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"go.temporal.io/sdk/activity"
	temporalclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/usage"
	"github.com/cohort-dev/cohort/wire"
)

// Activities holds the dependencies of every Cohort activity. Workflows refer
// to its methods through a nil *Activities.
type Activities struct {
	Account   AccountAPI
	Workspace WorkspaceAPI
	Settings  Settings
	// Limits paces each Databricks API class; nil means no pacing.
	Limits *Limits
	// Roster and Temporal are used by the batch activities (batch.go).
	Roster   roster.Store
	Temporal temporalclient.Client
	// Ledger keeps each participant's usage across runs (usage.go).
	Ledger usage.Store
	// Now, if set, is the clock usage is read against (tests: the
	// emulator's); nil is time.Now.
	Now func() time.Time
	// ObserveUsage, if set, is told each participant's usage as a read
	// finds it (the worker's metrics).
	ObserveUsage func(wire.ParticipantUsage)
}

// AccountAPI is the account-level part of Databricks that Cohort uses.
type AccountAPI struct {
	Users       UsersAPI
	Assignments AssignmentsAPI
}

// WorkspaceAPI is the workspace-level part of Databricks that Cohort uses.
type WorkspaceAPI struct {
	Catalogs CatalogsAPI
	Schemas  SchemasAPI
	Grants   GrantsAPI
	Clusters ClustersAPI
	Policies PoliciesAPI
	// Raw sends requests the typed SDK cannot express: clusters/create with an
	// idempotency_token (absent from compute.CreateCluster up to SDK v0.175.0).
	// It goes through the same SDK client machinery (auth, retries, error
	// mapping). When nil, the typed Clusters.Create is used without a token.
	Raw RawAPI
	// WorkspaceID is sent as X-Databricks-Workspace-Id with Raw requests, as
	// the typed SDK calls do when the workspace id is known.
	WorkspaceID string

	// Read-only services of the readiness checks (plan.go).
	CurrentUser CurrentUserAPI
	Metastores  MetastoresAPI
	Effective   EffectiveGrantsAPI
	SchemaList  SchemaListAPI
}

// rawHeaders are the headers the typed SDK calls send, for a Raw request
// with a JSON body.
func (w WorkspaceAPI) rawHeaders() map[string]string {
	h := map[string]string{"Accept": "application/json", "Content-Type": "application/json"}
	if w.WorkspaceID != "" {
		h["X-Databricks-Workspace-Id"] = w.WorkspaceID
	}
	return h
}

// UsersAPI is satisfied by iam.AccountUsersInterface (AccountClient.Users).
type UsersAPI interface {
	Create(ctx context.Context, request iam.User) (*iam.User, error)
	List(ctx context.Context, request iam.ListAccountUsersRequest) listing.Iterator[iam.User]
	Patch(ctx context.Context, request iam.PartialUpdate) error
	Delete(ctx context.Context, request iam.DeleteAccountUserRequest) error
}

// AssignmentsAPI is satisfied by iam.WorkspaceAssignmentInterface
// (AccountClient.WorkspaceAssignment).
type AssignmentsAPI interface {
	Update(ctx context.Context, request iam.UpdateWorkspaceAssignments) (*iam.PermissionAssignment, error)
	List(ctx context.Context, request iam.ListWorkspaceAssignmentRequest) listing.Iterator[iam.PermissionAssignment]
	Delete(ctx context.Context, request iam.DeleteWorkspaceAssignmentRequest) error
}

// CatalogsAPI is satisfied by catalog.CatalogsInterface (WorkspaceClient.Catalogs).
type CatalogsAPI interface {
	Get(ctx context.Context, request catalog.GetCatalogRequest) (*catalog.CatalogInfo, error)
	Create(ctx context.Context, request catalog.CreateCatalog) (*catalog.CatalogInfo, error)
}

// SchemasAPI is satisfied by catalog.SchemasInterface (WorkspaceClient.Schemas).
type SchemasAPI interface {
	Get(ctx context.Context, request catalog.GetSchemaRequest) (*catalog.SchemaInfo, error)
	Create(ctx context.Context, request catalog.CreateSchema) (*catalog.SchemaInfo, error)
	Delete(ctx context.Context, request catalog.DeleteSchemaRequest) error
}

// GrantsAPI is satisfied by catalog.GrantsInterface (WorkspaceClient.Grants).
type GrantsAPI interface {
	Update(ctx context.Context, request catalog.UpdatePermissions) (*catalog.UpdatePermissionsResponse, error)
	Get(ctx context.Context, request catalog.GetGrantRequest) (*catalog.GetPermissionsResponse, error)
}

// ClustersAPI is satisfied by compute.ClustersInterface (WorkspaceClient.Clusters).
type ClustersAPI interface {
	Create(ctx context.Context, request compute.CreateCluster) (*compute.WaitGetClusterRunning[compute.CreateClusterResponse], error)
	List(ctx context.Context, request compute.ListClustersRequest) listing.Iterator[compute.ClusterDetails]
	Get(ctx context.Context, request compute.GetClusterRequest) (*compute.ClusterDetails, error)
	Delete(ctx context.Context, request compute.DeleteCluster) (*compute.WaitGetClusterTerminated[struct{}], error)
	Unpin(ctx context.Context, request compute.UnpinCluster) error
	PermanentDelete(ctx context.Context, request compute.PermanentDeleteCluster) error
	UpdatePermissions(ctx context.Context, request compute.ClusterPermissionsRequest) (*compute.ClusterPermissions, error)
	GetPermissions(ctx context.Context, request compute.GetClusterPermissionsRequest) (*compute.ClusterPermissions, error)
	SetPermissions(ctx context.Context, request compute.ClusterPermissionsRequest) (*compute.ClusterPermissions, error)
	SparkVersions(ctx context.Context) (*compute.GetSparkVersionsResponse, error)
	ListNodeTypes(ctx context.Context) (*compute.ListNodeTypesResponse, error)
	Events(ctx context.Context, request compute.GetEvents) listing.Iterator[compute.ClusterEvent]
}

// PoliciesAPI is satisfied by compute.ClusterPoliciesInterface
// (WorkspaceClient.ClusterPolicies).
type PoliciesAPI interface {
	GetByName(ctx context.Context, name string) (*compute.Policy, error)
}

// RawAPI is satisfied by *client.DatabricksClient.
type RawAPI interface {
	Do(ctx context.Context, method, path string, headers map[string]string, queryParams map[string]any,
		request, response any, visitors ...func(*http.Request) error) error
}

// FromClients picks the services Cohort uses out of the SDK's clients. Either
// client may be nil (its half is then left empty).
func FromClients(a *databricks.AccountClient, w *databricks.WorkspaceClient) (AccountAPI, WorkspaceAPI) {
	var acc AccountAPI
	if a != nil {
		acc = AccountAPI{Users: a.Users, Assignments: a.WorkspaceAssignment}
	}
	var ws WorkspaceAPI
	if w != nil {
		ws = WorkspaceAPI{
			Catalogs: w.Catalogs,
			Schemas:  w.Schemas,
			Grants:   w.Grants,
			Clusters: w.Clusters,
			Policies: w.ClusterPolicies,

			CurrentUser: w.CurrentUser,
			Metastores:  w.Metastores,
			Effective:   w.Grants,
			SchemaList:  w.Schemas,
		}
		// A second low-level client over the same resolved Config: same host,
		// credentials, retry budget and timeouts. It cannot fail for a Config
		// that already built a WorkspaceClient; if it does, fall back to the
		// typed create (tag adoption still prevents duplicates).
		if raw, err := client.New(w.Config); err == nil {
			ws.Raw = raw
			ws.WorkspaceID = w.Config.WorkspaceID
		}
	}
	return acc, ws
}

// now is the clock usage is read against.
func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// logger returns the activity logger, or nil outside an activity (step
// functions are also called directly by tests).
func logger(ctx context.Context) log.Logger {
	if activity.IsActivity(ctx) {
		return activity.GetLogger(ctx)
	}
	return nil
}

// attempt is the activity's attempt number (1 for the first), or 0 outside
// an activity.
func attempt(ctx context.Context) int32 {
	if activity.IsActivity(ctx) {
		return activity.GetInfo(ctx).Attempt
	}
	return 0
}

// heartbeat records progress for the activity's pulse (see withPulse) to
// send; outside an activity with a pulse it does nothing.
func heartbeat(ctx context.Context, pr progress) {
	if p, ok := ctx.Value(pulseKey{}).(*pulse); ok {
		p.record(pr)
	}
}
