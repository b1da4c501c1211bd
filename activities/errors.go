package activities

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"go.temporal.io/sdk/temporal"

	"github.com/cohort-dev/cohort/wire"
)

// Throttling back-off: Temporal retries a throttled step after
// throttleBase plus up to throttleJitter, so that thousands of participants
// throttled at the same moment do not come back in lock-step.
const (
	throttleBase   = 3 * time.Second
	throttleJitter = 5 * time.Second
)

// principalNotReady matches the messages Databricks gives while an account
// user is not yet visible in the workspace (read-after-write lag of
// workspace assignment): "Principal 123 not in workspace 456" (assignment),
// "Principal not found in account." (assignment right after the SCIM
// create), "Could not find principal with name a@b.c" (UC grants),
// "Principal: UserName(a@b.c) does not exist" (permissions) and a
// single_user_name refused for the same reason.
var principalNotReady = regexp.MustCompile(`(?i)not in workspace|could not find principal|principal not found|` +
	`\b(principal|user|username|user_name|single_user_name)\b.{0,120}?\b(does not exist|not found)`)

// clusterGone matches the messages of a cluster that no longer exists
// ("Cluster 0101-... does not exist", which the SDK maps to
// ErrResourceDoesNotExist only for clusters/get, elsewhere a plain
// INVALID_PARAMETER_VALUE), or was purged 30 days after its termination
// ("Cannot access cluster X that was terminated or unpinned more than 30 days
// ago", INVALID_STATE).
var clusterGone = regexp.MustCompile(`(?i)\bcluster\b.{0,80}?\b(does not exist|terminated or unpinned more than)`)

// quotaReached matches the answers of a Databricks cap: users and service
// principals per account, schemas per catalog, pinned clusters. Their shapes
// are not documented (they vary by API); waiting does not lift a cap.
var quotaReached = regexp.MustCompile(`(?i)quota|reached (its|the) limit|limit of [0-9,]+|maximum number of`)

// noSuchName matches the plain errors of the SDK's name helpers
// (ClusterPolicies.GetByName: "... named 'x' does not exist"), which are not
// API errors.
var noSuchName = regexp.MustCompile(`(?i)does not exist|not found`)

// secrets matches anything that looks like a credential, so that it never
// reaches an error message, a log line or a Temporal history.
var secrets = regexp.MustCompile(`(?i)(dapi[0-9a-f]{16,}(-\d+)?|dose[0-9a-f]{16,}|bearer\s+[^\s"',]+|` +
	`(token|secret|password|client_secret)=[^\s&"',]+)`)

func redact(s string) string { return secrets.ReplaceAllString(s, "[REDACTED]") }

// classify turns an error met at one step into the *temporal.ApplicationError
// the workflows and retry policies act on. err already carries the step's
// "verb object: cause" wording (the caller wraps it once); classify adds to
// the message only to say that a cap was reached, whose wording Databricks
// does not document. An error that is already an ApplicationError passes
// through unchanged.
func classify(step string, err error) error {
	if err == nil {
		return nil
	}
	var already *temporal.ApplicationError
	if errors.As(err, &already) {
		return err
	}
	msg := redact(err.Error())
	retryable := func(typ string) error {
		return temporal.NewApplicationErrorWithOptions(msg, typ, temporal.ApplicationErrorOptions{Details: []any{step}})
	}
	final := func(typ string) error {
		return temporal.NewApplicationErrorWithOptions(msg, typ, temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{step}})
	}

	var apiErr *apierr.APIError
	isAPI := errors.As(err, &apiErr)
	switch {
	case errors.Is(err, errPaced),
		errors.Is(err, apierr.ErrTooManyRequests),
		errors.Is(err, apierr.ErrRequestLimitExceeded),
		errors.Is(err, apierr.ErrResourceExhausted),
		isAPI && apiErr.StatusCode == 429:
		return temporal.NewApplicationErrorWithOptions(msg, wire.ErrThrottled, temporal.ApplicationErrorOptions{
			Details:        []any{step},
			NextRetryDelay: throttleDelay(),
		})
	case errors.Is(err, apierr.ErrUnauthenticated):
		return final(wire.ErrUnauthenticated)
	case errors.Is(err, apierr.ErrPermissionDenied):
		return final(wire.ErrPermissionDenied)
	case isAPI && apiErr.StatusCode < 500 && clusterStep(step) &&
		(errors.Is(err, apierr.ErrResourceDoesNotExist) || clusterGone.MatchString(apiErr.Message)):
		// Deleted by someone, or purged after 30 days terminated: retrying
		// the step cannot help; the participant workflow creates a new one.
		return final(wire.ErrClusterGone)
	case isAPI && apiErr.StatusCode < 500 && apiErr.StatusCode != 429 &&
		(apiErr.ErrorCode == "QUOTA_EXCEEDED" || quotaReached.MatchString(apiErr.Message)):
		return temporal.NewApplicationErrorWithOptions("a Databricks cap was reached: "+msg, wire.ErrQuotaExceeded,
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{step}})
	case isAPI && apiErr.StatusCode < 500 && step != wire.StepCreateUser && principalNotReady.MatchString(apiErr.Message):
		return retryable(wire.ErrPrincipalNotReady)
	case errors.Is(err, apierr.ErrNotFound):
		return final(wire.ErrNotFound)
	case errors.Is(err, apierr.ErrNotImplemented):
		// "not supported for this workspace": waiting will not change it.
		return final(wire.ErrInvalidInput)
	case errors.Is(err, apierr.ErrResourceConflict), errors.Is(err, apierr.ErrCancelled):
		// Expected conflicts (already exists) are handled by the steps;
		// anything left (ABORTED, a concurrent change) may succeed on retry.
		return retryable(wire.ErrUnavailable)
	case errors.Is(err, apierr.ErrBadRequest), errors.Is(err, apierr.ErrInvalidParameterValue):
		return final(wire.ErrInvalidInput)
	case isAPI && apiErr.StatusCode >= 500,
		errors.Is(err, apierr.ErrTemporarilyUnavailable),
		errors.Is(err, apierr.ErrInternalError),
		errors.Is(err, apierr.ErrDeadlineExceeded):
		return retryable(wire.ErrUnavailable)
	case isAPI && apiErr.StatusCode >= 400:
		// Any other 4xx: Databricks refuses the request as made.
		return final(wire.ErrInvalidInput)
	case !isAPI && noSuchName.MatchString(err.Error()) && step == wire.StepSetup:
		// A name helper found no object of that name.
		return final(wire.ErrNotFound)
	}
	// Not an API error: transport failures, timeouts and anything unexpected
	// are retried.
	return retryable(wire.ErrUnavailable)
}

// clusterStep reports whether step works on an existing cluster.
// clusterMissing says a cluster read failed because the cluster does not
// exist (permanently deleted, purged): what a read by id of a recorded or
// listed cluster treats as gone, whatever step reads it.
func clusterMissing(err error) bool {
	var apiErr *apierr.APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode < 500 && apiErr.StatusCode != 429 &&
		(errors.Is(err, apierr.ErrResourceDoesNotExist) || errors.Is(err, apierr.ErrNotFound) || clusterGone.MatchString(apiErr.Message))
}

func clusterStep(step string) bool {
	return step == wire.StepSetPermission || step == wire.StepStopCluster || step == wire.StepRemoveClusters ||
		step == wire.StepUsage || step == wire.StepBudget
}

func throttleDelay() time.Duration {
	return throttleBase + rand.N(throttleJitter)
}

// notReady builds the retryable error for a principal that is not visible
// yet after the in-activity wait.
func notReady(step, format string, a ...any) error {
	return temporal.NewApplicationErrorWithOptions(redact(fmt.Sprintf(format, a...)), wire.ErrPrincipalNotReady,
		temporal.ApplicationErrorOptions{Details: []any{step}})
}

// inconsistent builds the retryable error for Databricks answering in a way
// that contradicts what a step just did.
func inconsistent(step, typ, format string, a ...any) error {
	return temporal.NewApplicationErrorWithOptions(redact(fmt.Sprintf(format, a...)), typ,
		temporal.ApplicationErrorOptions{Details: []any{step}})
}

// notFound builds the non-retryable error for a configured object that does
// not exist.
func notFound(step, format string, a ...any) error {
	return temporal.NewApplicationErrorWithOptions(redact(fmt.Sprintf(format, a...)), wire.ErrNotFound,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{step}})
}

// invalid builds the non-retryable error for a configuration Databricks
// cannot satisfy.
func invalid(step, format string, a ...any) error {
	return temporal.NewApplicationErrorWithOptions(redact(fmt.Sprintf(format, a...)), wire.ErrInvalidInput,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{step}})
}

// errorType returns the ApplicationError type of err ("" for other errors).
func errorType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type()
	}
	return ""
}
