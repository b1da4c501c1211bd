// starter status: where a batch stands.

package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/cohort-dev/cohort/control"
	"github.com/cohort-dev/cohort/workflows"
)

func (m *Main) status(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var c common
	c.register(fs)
	id, cl, closeFn, err := m.openBatch(ctx, fs, &c, args, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	p, err := cl.Progress(ctx, id)
	if err != nil {
		return err
	}
	if p.Phase == control.PhaseNoWorker {
		fmt.Fprintf(m.Stdout, "batch %s is running, but no worker answered for its progress (%s): is a worker running?\nWeb UI: %s\n",
			id, p.Unanswered, cl.BatchURL(id))
		return nil
	}
	if !p.Closed() {
		fmt.Fprintf(m.Stdout, "batch %s (attempt %d): %s, %d/%d done: %d ok, %d failed, %d running\n",
			id, p.Attempt, p.Phase, p.Counts.Done(), p.Total, p.Counts.OK, p.Counts.Failed, p.Counts.Running)
		if steps := control.FailedBySteps(p.Counts); len(steps) > 0 {
			fmt.Fprintf(m.Stdout, "failed by step: %s\n", strings.Join(steps, ", "))
		}
		fmt.Fprintf(m.Stdout, "Web UI: %s\n", cl.BatchURL(id))
		return nil
	}
	if p.Failure != "" {
		return m.summary(cl, p)
	}
	outcomes, err := cl.Outcomes(ctx, id)
	if err != nil {
		return err
	}
	total := workflows.Counts{}
	var failed []workflows.Outcome
	for _, o := range outcomes {
		total.Total++
		if len(o.Drift) > 0 {
			total.Drifted++
		}
		if o.Status == workflows.StatusOK {
			total.OK++
			if o.Unchanged {
				total.Unchanged++
			}
			continue
		}
		total.Failed++
		total.AddFailed(o.Step, 1)
		failed = append(failed, o)
	}
	fmt.Fprintf(m.Stdout, "batch %s: %d participants, %d ok, %d failed (after %d retries)\n",
		id, total.Total, total.OK, total.Failed, p.Attempt)
	if total.Unchanged > 0 || total.Drifted > 0 {
		fmt.Fprintf(m.Stdout, "reconcile: %d unchanged (nothing written), %d drifted\n", total.Unchanged, total.Drifted)
	}
	if steps := control.FailedBySteps(total); len(steps) > 0 {
		fmt.Fprintf(m.Stdout, "failed by step: %s\n", strings.Join(steps, ", "))
	}
	for _, o := range failed {
		fmt.Fprintf(m.Stdout, "  FAILED %s at %s: %s\n", o.Email, o.Step, o.Error)
	}
	printChanges(m.Stdout, outcomes)
	if line := usageSummary(outcomes); line != "" {
		fmt.Fprintln(m.Stdout, line)
	}
	if total.Failed > 0 {
		fmt.Fprintf(m.Stdout, "re-run them: starter retry-failed %s; Web UI: %s\n", id, cl.FailuresURL(id))
		return errSomeFailed
	}
	fmt.Fprintf(m.Stdout, "Web UI: %s\n", cl.BatchURL(id))
	return nil
}
