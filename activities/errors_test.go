package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/time/rate"

	"github.com/cohort-dev/cohort/wire"
)

// sdkErr mimics what the SDK returns: an *apierr.APIError wrapped once more
// (the SDK wraps in *retries.Err), so classify must use errors.As.
func sdkErr(status int, code, msg string) error {
	return fmt.Errorf("wrapped by the sdk: %w", &apierr.APIError{StatusCode: status, ErrorCode: code, Message: msg})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		step      string
		err       error
		typ       string
		retryable bool
	}{
		{"429", wire.StepCreateUser, sdkErr(429, "", "Too Many Requests"), wire.ErrThrottled, true},
		{"request limit exceeded on 400", wire.StepGrant, sdkErr(400, "REQUEST_LIMIT_EXCEEDED", "rate limit"), wire.ErrThrottled, true},
		{"scim 500 request limit exceeded", wire.StepCreateUser, sdkErr(500, "REQUEST_LIMIT_EXCEEDED", "GetUserPermissionsRequest RPC token bucket limit has been exceeded"), wire.ErrThrottled, true},
		{"resource exhausted", wire.StepCreateCluster, sdkErr(429, "RESOURCE_EXHAUSTED", "quota"), wire.ErrThrottled, true},
		{"local pacing", wire.StepCreateUser, fmt.Errorf("create user a: %w (scim_write)", errPaced), wire.ErrThrottled, true},
		{"503", wire.StepCreateSchema, sdkErr(503, "TEMPORARILY_UNAVAILABLE", "try later"), wire.ErrUnavailable, true},
		{"500", wire.StepCreateCluster, sdkErr(500, "INTERNAL_ERROR", "boom"), wire.ErrUnavailable, true},
		{"502 html", wire.StepCreateCluster, sdkErr(502, "BAD_GATEWAY", "Bad Gateway"), wire.ErrUnavailable, true},
		{"504", wire.StepStopCluster, sdkErr(504, "", "Gateway Timeout"), wire.ErrUnavailable, true},
		{"unknown code", wire.StepCreateCluster, sdkErr(400, "UNKNOWN", "??"), wire.ErrUnavailable, true},
		{"aborted conflict", wire.StepGrant, sdkErr(409, "ABORTED", "concurrent update"), wire.ErrUnavailable, true},
		{"url error", wire.StepCreateUser, &url.Error{Op: "Post", URL: "https://x/api", Err: syscall.ECONNRESET}, wire.ErrUnavailable, true},
		{"context deadline", wire.StepStopCluster, fmt.Errorf("get cluster: %w", context.DeadlineExceeded), wire.ErrUnavailable, true},
		{"401", wire.StepCreateUser, sdkErr(401, "UNAUTHENTICATED", "Invalid access token."), wire.ErrUnauthenticated, false},
		{"403", wire.StepCreateSchema, sdkErr(403, "PERMISSION_DENIED", "User does not have CREATE SCHEMA on Catalog 'cohort'."), wire.ErrPermissionDenied, false},
		{"400 invalid parameter", wire.StepCreateCluster, sdkErr(400, "INVALID_PARAMETER_VALUE", "Validation failed for spark_version"), wire.ErrInvalidInput, false},
		{"400 bad request", wire.StepGrant, sdkErr(400, "", "Duplicate privileges to add and delete for principal a."), wire.ErrInvalidInput, false},
		{"invalid state", wire.StepStopCluster, sdkErr(400, "INVALID_STATE", "Cannot access cluster X that was terminated more than 30 days ago."), wire.ErrInvalidInput, false},
		{"scim 400 user refused", wire.StepCreateUser, sdkErr(400, "SCIM_400", "invalidValue User a@b.c not found in directory"), wire.ErrInvalidInput, false},
		{"404 catalog", wire.StepCreateSchema, sdkErr(404, "CATALOG_DOES_NOT_EXIST", "Catalog 'cohort' does not exist."), wire.ErrNotFound, false},
		{"501", wire.StepAssignWorkspace, sdkErr(501, "NOT_IMPLEMENTED", "Permission assignments not supported for current workspace."), wire.ErrInvalidInput, false},
		{"not in workspace", wire.StepAssignWorkspace, sdkErr(400, "INVALID_PARAMETER_VALUE", "Principal 123 not in workspace 456"), wire.ErrPrincipalNotReady, true},
		{"principal not found in account", wire.StepAssignWorkspace, sdkErr(404, "NOT_FOUND", "Principal not found in account."), wire.ErrPrincipalNotReady, true},
		{"could not find principal", wire.StepGrant, sdkErr(404, "PRINCIPAL_DOES_NOT_EXIST", "Could not find principal with name a.b@c.com"), wire.ErrPrincipalNotReady, true},
		{"permissions principal", wire.StepSetPermission, sdkErr(400, "INVALID_PARAMETER_VALUE", "Principal: UserName(a.b@c.com) does not exist"), wire.ErrPrincipalNotReady, true},
		{"single user name", wire.StepCreateCluster, sdkErr(400, "INVALID_PARAMETER_VALUE", "single_user_name a.b@c.com does not exist in the workspace"), wire.ErrPrincipalNotReady, true},
		{"cluster does not exist is gone, not a principal", wire.StepStopCluster, sdkErr(400, "INVALID_PARAMETER_VALUE", "Cluster 0301-1 does not exist"), wire.ErrClusterGone, false},
		{"cluster permissions of a deleted cluster", wire.StepSetPermission, sdkErr(404, "RESOURCE_DOES_NOT_EXIST", "Cluster 0301-1 does not exist"), wire.ErrClusterGone, false},
		{"purged cluster is gone", wire.StepStopCluster, sdkErr(400, "INVALID_STATE", "Cannot access cluster 0301-1 that was terminated or unpinned more than 30 days ago."), wire.ErrClusterGone, false},
		{"user cap", wire.StepCreateUser, sdkErr(400, "SCIM_400", "Cannot create user a@b.c: account acc has reached its limit of 10000 users and service principals."), wire.ErrQuotaExceeded, false},
		{"schema cap", wire.StepCreateSchema, sdkErr(400, "QUOTA_EXCEEDED", "Cannot create schema 'c.s'"), wire.ErrQuotaExceeded, false},
		{"cluster missing at create is invalid input", wire.StepCreateCluster, sdkErr(400, "INVALID_PARAMETER_VALUE", "Cluster 0301-1 does not exist"), wire.ErrInvalidInput, false},
		{"schema does not exist is not a principal", wire.StepGrant, sdkErr(404, "SCHEMA_DOES_NOT_EXIST", "Schema 'cohort.p1' does not exist."), wire.ErrNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.step, tt.err)
			ae := wantAppErr(t, err, tt.typ, tt.retryable)
			var step string
			if err := ae.Details(&step); err != nil || step != tt.step {
				t.Errorf("details = %q (%v), want step %q", step, err, tt.step)
			}
			want := tt.err.Error()
			if tt.typ == wire.ErrQuotaExceeded {
				want = "a Databricks cap was reached: " + want // whatever Databricks' wording
			}
			if got := ae.Message(); got != want {
				t.Errorf("message = %q, want %q", got, want)
			}
			if tt.typ == wire.ErrThrottled {
				if d := ae.NextRetryDelay(); d < throttleBase || d >= throttleBase+throttleJitter {
					t.Errorf("NextRetryDelay = %v, want in [%v, %v)", d, throttleBase, throttleBase+throttleJitter)
				}
			} else if d := ae.NextRetryDelay(); d != 0 {
				t.Errorf("NextRetryDelay = %v, want 0 (the retry policy decides)", d)
			}
		})
	}
}

func TestClassify_throttleDelaysAreJittered(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		var ae *temporal.ApplicationError
		errors.As(classify(wire.StepCreateUser, sdkErr(429, "", "slow down")), &ae)
		seen[ae.NextRetryDelay()] = true
	}
	if len(seen) < 10 {
		t.Errorf("%d distinct delays in 20 throttled errors, want jitter", len(seen))
	}
}

func TestClassify_keepsApplicationErrors(t *testing.T) {
	in := notReady(wire.StepAssignWorkspace, "assign user a: not visible")
	if got := classify(wire.StepGrant, in); got != in {
		t.Errorf("classify changed an ApplicationError: %v", got)
	}
	if classify(wire.StepGrant, nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

func TestClassify_redactsSecrets(t *testing.T) {
	err := classify(wire.StepCreateUser, fmt.Errorf("create user a: %w",
		sdkErr(400, "", "bad header Authorization: Bearer dapi0123456789abcdef0123456789abcdef token=s3cr3t")))
	var ae *temporal.ApplicationError
	errors.As(err, &ae)
	for _, secret := range []string{"dapi0123456789abcdef", "s3cr3t"} {
		if strings.Contains(ae.Error(), secret) {
			t.Errorf("message %q leaks %q", ae.Error(), secret)
		}
	}
}

func TestNewLimits(t *testing.T) {
	l := NewLimits(RateRates{SCIMWrite: 5, SCIMList: 4, Clusters: 20, UnityCatalog: 0}, 4)
	for class, want := range map[Class]rate.Limit{
		ClassSCIMWrite:    1.25,
		ClassSCIMList:     1,
		ClassClusters:     5,
		ClassUnityCatalog: rate.Inf, // 0 = unpaced
	} {
		if got := l.Limit(class); got != want {
			t.Errorf("%s: limit %v, want %v", class, got, want)
		}
	}
	var nilLimits *Limits
	if err := nilLimits.Wait(context.Background(), ClassSCIMWrite); err != nil {
		t.Errorf("nil Limits: %v", err)
	}
}

// A worker's bucket holds one token: calls go out exactly 1/rate apart, with
// no burst above the worker's share.
func TestLimits_paces(t *testing.T) {
	l := NewLimits(RateRates{SCIMList: 40}, 2) // 20/s per worker: 50 ms apart
	lim := l.limiters[ClassSCIMList]
	now := time.Now()
	if !lim.AllowN(now, 1) {
		t.Fatal("the first call must pass at once")
	}
	if lim.AllowN(now, 1) {
		t.Error("a second call at the same instant passed: burst above 1")
	}
	if lim.AllowN(now.Add(45*time.Millisecond), 1) {
		t.Error("a call 45 ms later passed, want 50 ms apart")
	}
	if !lim.AllowN(now.Add(51*time.Millisecond), 1) {
		t.Error("a call 51 ms later was refused")
	}
}

func TestLimits_deadlineIsThrottling(t *testing.T) {
	l := NewLimits(RateRates{SCIMWrite: 0.1}, 1)
	ctx := context.Background()
	if err := l.Wait(ctx, ClassSCIMWrite); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := l.Wait(ctx, ClassSCIMWrite)
	wantAppErr(t, classify(wire.StepCreateUser, fmt.Errorf("create user a: %w", err)), wire.ErrThrottled, true)
}

// A client configuration error (the SDK may echo its attributes) reaches
// the worker's log without the token.
func TestSanitize_configError(t *testing.T) {
	err := sanitize(errors.New("validate: more than one authorization method configured: token=dapi0123456789abcdef0123456789abcdef, config file /root/.databrickscfg"))
	if strings.Contains(err.Error(), "dapi0123") || !strings.Contains(err.Error(), "more than one authorization method") {
		t.Errorf("sanitize = %q", err)
	}
}

func TestNewClients_budget(t *testing.T) {
	t.Setenv("DATABRICKS_TOKEN", "dapi00000000000000000000000000000000")
	t.Setenv("DATABRICKS_CONFIG_FILE", "/nonexistent")
	srv := httptest.NewServer(http.NotFoundHandler()) // no host metadata
	defer srv.Close()
	a, w, err := NewClients(Connection{
		AccountHost: srv.URL, AccountID: "acc", WorkspaceHost: srv.URL, WorkspaceID: 42,
		RetryTimeout: 2 * time.Second, HTTPTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Config.RetryTimeoutSeconds; got != 2 {
		t.Errorf("workspace RetryTimeoutSeconds = %d, want 2", got)
	}
	if got := a.Config.RetryTimeoutSeconds; got != 2 {
		t.Errorf("account RetryTimeoutSeconds = %d, want 2", got)
	}
	if got := w.Config.HTTPTimeoutSeconds; got != 5 {
		t.Errorf("HTTPTimeoutSeconds = %d, want 5", got)
	}
	if got := w.Config.RateLimitPerSecond; got < 1000 {
		t.Errorf("RateLimitPerSecond = %d, want the SDK limiter out of the way", got)
	}
	if got := w.Config.WorkspaceID; got != "42" {
		t.Errorf("WorkspaceID = %q, want 42", got)
	}
	if a.Config.AccountID != "acc" {
		t.Errorf("AccountID = %q", a.Config.AccountID)
	}
}

// Share re-divides the deployment's rates: a survivor of two workers takes
// the whole rate, and a third worker shrinks everyone's share.
func TestLimits_share(t *testing.T) {
	l := NewLimits(RateRates{SCIMWrite: 5, Clusters: 20}, 2)
	for _, step := range []struct {
		workers     int
		changed     bool
		scim, clust rate.Limit
	}{
		{2, false, 2.5, 10},
		{1, true, 5, 20},
		{3, true, 5.0 / 3, 20.0 / 3},
		{0, true, 5, 20}, // never below one worker: this one
	} {
		if got := l.Share(step.workers); got != step.changed {
			t.Errorf("Share(%d) = %v, want %v", step.workers, got, step.changed)
		}
		if got, want := l.Workers(), max(step.workers, 1); got != want {
			t.Errorf("after Share(%d): Workers() = %d, want %d", step.workers, got, want)
		}
		if s, c := l.Limit(ClassSCIMWrite), l.Limit(ClassClusters); s != step.scim || c != step.clust {
			t.Errorf("after Share(%d): scim_write %v, clusters %v; want %v, %v", step.workers, s, c, step.scim, step.clust)
		}
	}
	if got := l.Limit(ClassUnityCatalog); got != rate.Inf {
		t.Errorf("an unpaced class became %v", got)
	}
	var nilLimits *Limits
	if nilLimits.Share(3) || nilLimits.Workers() != 1 {
		t.Error("nil Limits: Share or Workers not inert")
	}
}

// Calls queued at the old share are paced anew when the share changes: a
// survivor's queued calls do not keep the dead worker's slow pace (nor go
// out at it beside new calls at the full rate).
func TestLimits_shareRequeues(t *testing.T) {
	l := NewLimits(RateRates{SCIMWrite: 100}, 1000) // 0.1/s: a call every 10 s
	if err := l.Wait(context.Background(), ClassSCIMWrite); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 3)
	for range 3 { // reserved 10, 20 and 30 s from now
		go func() { done <- l.Wait(context.Background(), ClassSCIMWrite) }()
	}
	time.Sleep(50 * time.Millisecond)
	l.Share(1) // 100/s: 10 ms apart
	timeout := time.After(5 * time.Second)
	for range 3 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatal("queued calls still wait at the old share")
		}
	}
}
