// Package bootstrap connects Cohort's processes to Temporal: it dials the
// frontend and registers the custom search attributes Cohort's workflows set,
// so the worker, the starter and the tests share one way of doing both.
package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/cohort-dev/cohort/workflows"
)

// Dial connects to the Temporal frontend at address in namespace, logging
// through logger. Cohort's payloads are a few hundred bytes, so gzip on every
// gRPC request costs the worker CPU (a tenth of it, profiled) and saves
// little; compress turns it back on for a frontend across a slow link.
// Each option, if any, amends the client options last (the worker's metrics
// handler and interceptor).
func Dial(ctx context.Context, address, namespace string, compress bool, logger *slog.Logger, options ...func(*client.Options)) (client.Client, error) {
	var compression client.GrpcCompression = &client.GrpcCompressionNone{}
	if compress {
		compression = &client.GrpcCompressionGzip{}
	}
	o := client.Options{
		HostPort:          address,
		Namespace:         namespace,
		Logger:            tlog.NewStructuredLogger(logger),
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: compression},
	}
	for _, opt := range options {
		opt(&o)
	}
	c, err := client.DialContext(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("connect to temporal at %s (namespace %s): %w", address, namespace, err)
	}
	return c, nil
}

// SearchAttributes are the custom search attributes Cohort's workflows set.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		workflows.BatchAttr.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		workflows.EmailAttr.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// EnsureSearchAttributes registers the search attributes that are missing in
// the namespace, and leaves the others alone.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	ops := c.OperatorService()
	have, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range SearchAttributes() {
		if got, ok := have.GetCustomAttributes()[name]; ok {
			if got != typ {
				return fmt.Errorf("search attribute %s exists in %s as %s, want %s", name, namespace, got, typ)
			}
			continue
		}
		missing[name] = typ
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("add search attributes to %s: %w", namespace, err)
	}
	return awaitSearchAttributes(ctx, c, namespace, missing)
}

// awaitSearchAttributes waits until the frontend accepts the new attributes
// in a query. With SQL visibility (a server on PostgreSQL) they are mapped in
// the namespace, which the frontend re-reads only every few seconds: a batch
// started before then is refused ("no mapping defined for search
// attribute").
func awaitSearchAttributes(ctx context.Context, c client.Client, namespace string, added map[string]enumspb.IndexedValueType) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var err error
		for name := range added {
			if _, err = c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
				Namespace: namespace, Query: fmt.Sprintf("%s = 'cohort-bootstrap'", name),
			}); err != nil {
				break
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("search attributes added to %s but not usable: %w", namespace, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
