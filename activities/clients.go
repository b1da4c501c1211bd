package activities

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/databricks/databricks-sdk-go"
)

// Connection says which Databricks account and workspace to talk to. It holds
// no secrets: credentials come only from the SDK's unified authentication
// (DATABRICKS_TOKEN and the other DATABRICKS_* / ARM_* variables,
// ~/.databrickscfg profiles, Azure service principals, OAuth M2M).
type Connection struct {
	AccountHost   string // e.g. https://accounts.azuredatabricks.net
	AccountID     string
	WorkspaceHost string // e.g. https://adb-1234567890123456.7.azuredatabricks.net
	WorkspaceID   int64
	// Profile selects a ~/.databrickscfg profile for both clients;
	// AccountProfile overrides it for the account client.
	Profile        string
	AccountProfile string
	// RetryTimeout bounds the SDK's own retries of one call (default 30 s,
	// against the SDK's 300 s), so that Temporal's retry policy, not the SDK,
	// decides what happens to a call that keeps failing.
	RetryTimeout time.Duration
	// HTTPTimeout bounds one HTTP attempt (SDK default 60 s).
	HTTPTimeout time.Duration
	// WrapTransport, if set, wraps the clients' HTTP transport (the worker
	// counts requests with it; see ClassOf).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// DefaultRetryTimeout is the SDK retry budget when Connection.RetryTimeout is 0.
const DefaultRetryTimeout = 30 * time.Second

// sdkRateLimit disables, in effect, the SDK's own client-side limiter (15
// req/s per client by default): Cohort paces each API class itself (Limits).
const sdkRateLimit = 10000

// transport is the SDK's default transport but for the idle connections it
// keeps per host: the SDK keeps GOMAXPROCS+1, and a worker with hundreds of
// participants in flight then opens (over TLS: handshakes) a new connection
// for most requests that HTTP/2 does not multiplex. Profiled against the
// emulator (HTTP/1.1), this churn was a large part of the worker's CPU.
var transport = &http.Transport{
	Proxy: http.ProxyFromEnvironment,
	DialContext: (&net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
	}).DialContext,
	ForceAttemptHTTP2:     true,
	MaxIdleConns:          1024,
	MaxIdleConnsPerHost:   512,
	IdleConnTimeout:       180 * time.Second,
	TLSHandshakeTimeout:   30 * time.Second,
	ExpectContinueTimeout: time.Second,
}

// NewClients builds the account and workspace clients. Building them runs the
// SDK's configuration resolution (environment, profile, host metadata), which
// is bounded by the same retry budget.
func NewClients(c Connection) (*databricks.AccountClient, *databricks.WorkspaceClient, error) {
	retry := c.RetryTimeout
	if retry <= 0 {
		retry = DefaultRetryTimeout
	}
	common := func(cfg *databricks.Config) {
		cfg.RetryTimeoutSeconds = max(1, int(retry.Round(time.Second)/time.Second))
		if c.HTTPTimeout > 0 {
			cfg.HTTPTimeoutSeconds = max(1, int(c.HTTPTimeout.Round(time.Second)/time.Second))
		}
		cfg.RateLimitPerSecond = sdkRateLimit
		cfg.HTTPTransport = transport
		if c.WrapTransport != nil {
			cfg.HTTPTransport = c.WrapTransport(transport)
		}
	}

	accProfile := c.AccountProfile
	if accProfile == "" {
		accProfile = c.Profile
	}
	accCfg := &databricks.Config{Host: c.AccountHost, AccountID: c.AccountID, Profile: accProfile}
	common(accCfg)
	a, err := databricks.NewAccountClient(accCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("configure account client: %w", sanitize(err))
	}

	wsCfg := &databricks.Config{Host: c.WorkspaceHost, Profile: c.Profile}
	if c.WorkspaceID != 0 {
		wsCfg.WorkspaceID = strconv.FormatInt(c.WorkspaceID, 10)
	}
	common(wsCfg)
	w, err := databricks.NewWorkspaceClient(wsCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("configure workspace client: %w", sanitize(err))
	}
	return a, w, nil
}

// sanitize keeps an SDK configuration error's text but drops anything that
// looks like a credential (the SDK masks sensitive attributes itself; this is
// a second line of defence).
func sanitize(err error) error {
	return errors.New(redact(err.Error()))
}
