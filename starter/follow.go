// Following a batch to its end: the progress bar, the summary, the outcomes
// and what a lifecycle batch changed.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cohort-dev/cohort/control"
	"github.com/cohort-dev/cohort/workflows"
)

// follow shows a progress bar until the batch's attempt ends, then the summary.
func (m *Main) follow(ctx context.Context, cl *control.Client, batchID string) error {
	start := time.Now()
	var bar *progressbar.ProgressBar
	warned := false
	phase := ""
	p, err := cl.Wait(ctx, batchID, time.Second, func(p control.Progress) {
		if p.Phase != phase {
			phase = p.Phase
			m.mark("batch phase %q seen (%d of %d done)", phase, p.Counts.Done(), p.Total)
		}
		if bar == nil && p.Phase == control.PhaseNoWorker && !warned {
			// Before any count arrives there is no bar to say it on.
			fmt.Fprintf(m.Stderr, "waiting: no worker answers for batch %s (is one running?): %s\n", batchID, p.Unanswered)
			warned = true
		}
		if bar == nil && p.Total > 0 {
			bar = progressbar.NewOptions(p.Total,
				progressbar.OptionSetWriter(m.Stderr),
				progressbar.OptionSetWidth(32),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(false),
				progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionSetRenderBlankState(true),
			)
		}
		if bar != nil && p.Phase == control.PhaseNoWorker {
			bar.Describe(fmt.Sprintf("%-12s (is a worker running?)  %s", p.Phase, time.Since(start).Round(time.Second)))
		} else if bar != nil {
			_ = bar.Set(p.Counts.Done())
			bar.Describe(fmt.Sprintf("%-12s ok %d  failed %d  %s", p.Phase, p.Counts.OK, p.Counts.Failed,
				time.Since(start).Round(time.Second)))
		}
	})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(m.Stderr)
	}
	if err != nil {
		return err
	}
	return m.summary(cl, p)
}

func (m *Main) summary(cl *control.Client, p control.Progress) error {
	if p.Failure != "" {
		fmt.Fprintf(m.Stdout, "batch %s did not finish: %s\nfix the cause, then submit the same file again; Web UI: %s\n", p.BatchID, p.Failure, cl.BatchURL(p.BatchID))
		return errSomeFailed
	}
	fmt.Fprintf(m.Stdout, "done: %d ok, %d failed", p.Counts.OK, p.Counts.Failed)
	if p.Counts.Unchanged > 0 || p.Counts.Drifted > 0 {
		fmt.Fprintf(m.Stdout, " (%d unchanged, %d drifted)", p.Counts.Unchanged, p.Counts.Drifted)
	}
	if p.Counts.Reused > 0 {
		fmt.Fprintf(m.Stdout, " (%d of the ok were provisioned before)", p.Counts.Reused)
	}
	if p.Counts.Failed > 0 {
		fmt.Fprintf(m.Stdout, " (see: starter status %s)", p.BatchID)
	}
	fmt.Fprintf(m.Stdout, "; Web UI: %s\n", cl.BatchURL(p.BatchID))
	if p.Counts.Failed > 0 {
		return errSomeFailed
	}
	return nil
}

// printChanges lists what a reconcile or offboard changed (or, dry run, would
// change), one participant a line.
func printChanges(w io.Writer, outcomes []workflows.Outcome) {
	n := 0
	for _, o := range outcomes {
		if o.Status == workflows.StatusOK && len(o.Changes) > 0 {
			if n == 0 {
				fmt.Fprintln(w, "changes:")
			}
			n++
			fmt.Fprintf(w, "  %s: %s\n", o.Email, strings.Join(o.Changes, "; "))
		}
	}
}

// followOutcomes follows a lifecycle batch to its end and reads its
// outcomes. ferr is errSomeFailed when participants failed (the outcomes
// say who); err is anything that stops the caller.
func (m *Main) followOutcomes(ctx context.Context, cl *control.Client, batch string) (outcomes []workflows.Outcome, ferr, err error) {
	ferr = m.follow(ctx, cl, batch)
	if ferr != nil && !errors.Is(ferr, errSomeFailed) {
		return nil, nil, ferr
	}
	outcomes, err = cl.Outcomes(ctx, batch)
	return outcomes, ferr, err
}

// followAndList follows a lifecycle batch, then lists what it changed.
func (m *Main) followAndList(ctx context.Context, cl *control.Client, batch string) error {
	outcomes, ferr, err := m.followOutcomes(ctx, cl, batch)
	if err != nil {
		return err
	}
	printChanges(m.Stdout, outcomes)
	return ferr
}
