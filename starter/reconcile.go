// starter reconcile: find and repair drift from what a batch provisioned.

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cohort-dev/cohort/control"
	"github.com/cohort-dev/cohort/wire"
	"github.com/cohort-dev/cohort/workflows"
)

func (m *Main) reconcile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	var c common
	c.register(fs)
	wait := fs.Bool("wait", false, "follow the reconcile with a progress bar until it ends, then list what it changed")
	every := fs.String("every", "", "instead of running now, create or update a Temporal Schedule that reconciles every `DURATION` (e.g. 24h); off removes it")
	dryRun := fs.Bool("dry-run", false, "read only: list, per participant, what drifted and write nothing; exit 0 when nothing drifted, 1 when something did (implies --wait; with --every, every scheduled run only reports)")
	pos, err := parse(fs, args, 1, "one roster FILE.csv or BATCH id")
	if err != nil {
		return err
	}
	if err := checkTarget(fs.Name(), pos[0]); err != nil {
		return err
	}
	interval, err := parseEvery(fs.Name(), *every)
	if err != nil {
		return err
	}
	cl, closeFn, t, err := m.openTarget(ctx, &c, pos[0])
	if err != nil {
		return err
	}
	defer closeFn()
	id := control.ReconcileScheduleID(t.Source)
	switch {
	case *every == "off":
		found, err := cl.DeleteReconcileSchedule(ctx, t.Source)
		if err != nil {
			return err
		}
		if !found {
			fmt.Fprintf(m.Stdout, "no schedule %s: nothing to remove\n", id)
			return nil
		}
		fmt.Fprintf(m.Stdout, "removed schedule %s (runs it started finish)\n", id)
		return nil
	case *every != "":
		existed, err := cl.ScheduleReconcile(ctx, t, interval, *dryRun)
		if err != nil {
			return err
		}
		verb := "created"
		if existed {
			verb = "updated"
		}
		what := "reconcile"
		if *dryRun {
			what = "list the drift (dry run: no writes) of"
		}
		fmt.Fprintf(m.Stdout, "%s schedule %s: %s %d participants every %s; each run is a batch reconcile-%s-<time>\nWeb UI: %s\n",
			verb, id, what, t.Roster.Count, interval, t.Source, cl.ScheduleURL(id))
		return nil
	}
	batch, err := cl.StartLifecycle(ctx, t, wire.ModeReconcile, wire.OffboardOptions{DryRun: *dryRun})
	if err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintf(m.Stdout, "dry run: reading what %d participants of %s have (no writes) -> batch %s\n", t.Roster.Count, t.Source, batch)
		return m.followAndDrift(ctx, cl, batch)
	}
	fmt.Fprintf(m.Stdout, "reconciling %d participants of %s -> batch %s\n", t.Roster.Count, t.Source, batch)
	if !*wait {
		fmt.Fprintf(m.Stdout, "follow: starter status %s; Web UI: %s\n", batch, cl.BatchURL(batch))
		return nil
	}
	return m.followAndList(ctx, cl, batch)
}

// errDrifted ends a reconcile dry run that found drift (exit 1).
var errDrifted = fmt.Errorf("drift found: %w", errSomeFailed)

// followAndDrift follows a reconcile dry run, then lists the drift per
// participant and kind, and a summary. It returns errDrifted when anything
// drifted, errSomeFailed when a participant could not be read.
func (m *Main) followAndDrift(ctx context.Context, cl *control.Client, batch string) error {
	outcomes, ferr, err := m.followOutcomes(ctx, cl, batch)
	if err != nil {
		return err
	}
	if drifted := printDrift(m.Stdout, outcomes); drifted > 0 && ferr == nil {
		return errDrifted
	}
	return ferr
}

// printDrift lists each drifted participant with the kinds and what was
// found, then a summary by kind; it returns how many drifted.
func printDrift(w io.Writer, outcomes []workflows.Outcome) int {
	byKind := map[string]int{}
	var unchanged, offboarded, failed, drifted int
	for _, o := range outcomes {
		switch {
		case o.Status != workflows.StatusOK:
			failed++
		case o.Offboarded:
			offboarded++
		case o.Unchanged:
			unchanged++
		}
		if len(o.Drift) == 0 {
			continue
		}
		if drifted == 0 {
			fmt.Fprintln(w, "drift:")
		}
		drifted++
		for _, k := range o.Drift {
			byKind[k]++
		}
		fmt.Fprintf(w, "  %s [%s]: %s\n", o.Email, strings.Join(o.Drift, ", "), strings.Join(o.Changes, "; "))
	}
	var kinds []string
	for _, k := range wire.DriftKinds {
		if byKind[k] > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, byKind[k]))
		}
	}
	fmt.Fprintf(w, "%d participants: %d unchanged, %d drifted", len(outcomes), unchanged, drifted)
	if len(kinds) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(kinds, ", "))
	}
	fmt.Fprintf(w, ", %d offboarded (left alone), %d could not be read\n", offboarded, failed)
	return drifted
}
