package metrics

import (
	"context"
	"errors"
	"slices"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
)

// Interceptor counts every activity execution of the workers it is given to
// in cohort_steps_completed_total. nonRetryable lists the application error
// types the retry policies never retry (wire.NonRetryable). It is also
// a client interceptor, so that passing it in client.Options.Interceptors
// reaches every worker built on that client.
func (m *Metrics) Interceptor(nonRetryable []string) interceptor.ClientInterceptor {
	return &stepInterceptor{metrics: m, nonRetryable: nonRetryable}
}

type stepInterceptor struct {
	interceptor.ClientInterceptorBase
	interceptor.WorkerInterceptorBase
	metrics      *Metrics
	nonRetryable []string
}

func (s *stepInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, step: s}
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	step *stepInterceptor
}

func (a *activityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	out, err := a.Next.ExecuteActivity(ctx, in)
	if errors.Is(err, activity.ErrResultPending) {
		return out, err // completed later, elsewhere: not an outcome yet
	}
	outcome, errType := Outcome(err, a.step.nonRetryable)
	a.step.metrics.steps.WithLabelValues(activity.GetInfo(ctx).ActivityType.Name, outcome, errType).Inc()
	return out, err
}

// Outcome gives the outcome and error_type labels of an activity's error: an
// application error is non-retryable when marked so or when its type is in
// nonRetryable (the retry policies' list), retryable otherwise;
// cancellation, timeouts and other errors are retryable.
func Outcome(err error, nonRetryable []string) (outcome, errorType string) {
	if err == nil {
		return OutcomeOK, ""
	}
	var ae *temporal.ApplicationError
	switch {
	case errors.As(err, &ae):
		if ae.NonRetryable() || slices.Contains(nonRetryable, ae.Type()) {
			return OutcomeNonRetryable, ae.Type()
		}
		return OutcomeRetryable, ae.Type()
	case errors.Is(err, context.Canceled) || temporal.IsCanceledError(err):
		return OutcomeRetryable, "canceled"
	case errors.Is(err, context.DeadlineExceeded) || temporal.IsTimeoutError(err):
		return OutcomeRetryable, "timeout"
	}
	return OutcomeRetryable, "other"
}
