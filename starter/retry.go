// starter retry-failed: run the failed participants of a batch again.

package main

import (
	"context"
	"flag"
	"fmt"
)

func (m *Main) retryFailed(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("retry-failed", flag.ContinueOnError)
	var c common
	c.register(fs)
	wait := fs.Bool("wait", false, "follow the retry with a progress bar until it ends")
	id, cl, closeFn, err := m.openBatch(ctx, fs, &c, args, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	n, err := cl.RetryFailed(ctx, id)
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(m.Stdout, "batch %s has no failed participants: nothing to retry\n", id)
		return nil
	}
	fmt.Fprintf(m.Stdout, "retrying %d failed participants of batch %s\n", n, id)
	if !*wait {
		fmt.Fprintf(m.Stdout, "follow: starter status %s; Web UI: %s\n", id, cl.BatchURL(id))
		return nil
	}
	return m.follow(ctx, cl, id)
}
