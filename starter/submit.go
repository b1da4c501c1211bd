// starter submit: start a batch from a roster and follow it.

package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/cohort-dev/cohort/workflows"
)

func (m *Main) submit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	var c common
	c.register(fs)
	wait := fs.Bool("wait", false, "follow the batch with a progress bar until it ends")
	batchID := fs.String("batch", "", "batch `id`: 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit (default: today's date and the roster's hash)")
	skipInvalid := fs.Bool("skip-invalid", false, "submit the valid rows and list the invalid ones")
	checkBatch := func() error {
		if *batchID == "" {
			return nil
		}
		// Refused before the roster is read or stored.
		if err := workflows.ValidateBatchID(*batchID); err != nil {
			return usagef("submit: --batch: %v; nothing was submitted", err)
		}
		return nil
	}
	_, participants, cl, closeFn, err := m.openRoster(ctx, fs, &c, args, checkBatch, skipInvalid, "submit", "submitted")
	if err != nil {
		return err
	}
	defer closeFn()
	sub, err := cl.Submit(ctx, participants, *batchID)
	if err != nil {
		return err
	}
	m.mark("batch %s submitted (existing %v)", sub.BatchID, sub.Existing)
	n := len(participants)
	fmt.Fprintf(m.Stdout, "validated %d participants (%d already provisioned, %d new) -> batch %s\n",
		n, sub.Provisioned, n-sub.Provisioned, sub.BatchID)
	if sub.Existing {
		fmt.Fprintf(m.Stdout, "batch %s was submitted before with the same roster: nothing new started\n", sub.BatchID)
	}
	if !*wait {
		fmt.Fprintf(m.Stdout, "follow: starter status %s; Web UI: %s\n", sub.BatchID, cl.BatchURL(sub.BatchID))
		return nil
	}
	return m.follow(ctx, cl, sub.BatchID)
}
