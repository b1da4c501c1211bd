package activities

import (
	"time"

	"github.com/cohort-dev/cohort/usage"
)

// Settings are the non-secret provisioning settings the activities apply,
// taken from the worker's configuration.
type Settings struct {
	WorkspaceID      int64
	WorkspaceHost    string // for cluster URLs
	Catalog          string
	CreateCatalog    bool
	SchemaPrivileges []string
	SharedGrants     []Grant
	PolicyName       string
	SparkVersion     string // "" = latest ML LTS
	NodeType         string // "smallest" = SelectNodeType
	Autotermination  int
	TagKey           string
	// StopPollInterval is how long the stop step waits before terminating
	// again a cluster that still reads as running after a terminate.
	StopPollInterval time.Duration
	// AssignmentWait bounds how long one attempt waits for a fresh workspace
	// assignment to become visible before returning ErrPrincipalNotReady.
	AssignmentWait time.Duration

	// StorageRoot is sent as storage_root when setup creates the catalog
	// (needed on metastores without root storage).
	StorageRoot string
	// MaxAccountUsers and MaxSchemasPerCatalog are the caps the readiness
	// checks count against (0: 10,000 each).
	MaxAccountUsers      int
	MaxSchemasPerCatalog int
	// SchemaMaxLen is the naming max length (0: roster.DefaultMaxLen): a
	// schema renamed after a collision (<name>_2) stays within it.
	SchemaMaxLen int

	// Rates price the usage read's hours; Budget caps them (off when its
	// hours are 0). See config.Usage and config.Budget.
	Rates  usage.Rates
	Budget usage.Budget
}

// Grant is a set of privileges on one securable ("catalog" or "schema").
type Grant struct {
	Securable  string
	Name       string
	Privileges []string
}
