// starter offboard: remove what a batch created.

package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/cohort-dev/cohort/wire"
)

func (m *Main) offboard(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("offboard", flag.ContinueOnError)
	var c common
	c.register(fs)
	wait := fs.Bool("wait", false, "follow the offboard with a progress bar until it ends, then list what it removed")
	var opts wire.OffboardOptions
	fs.BoolVar(&opts.DryRun, "dry-run", false, "read only: list, per participant, what would be removed (implies --wait)")
	fs.BoolVar(&opts.DeleteUsers, "delete-users", false, "delete the account users Cohort created (default: deactivate them)")
	fs.BoolVar(&opts.DropSchemas, "drop-schemas", false, "drop the participants' schemas with their contents (UNDROP can restore them for 7 days)")
	pos, err := parse(fs, args, 1, "one roster FILE.csv or BATCH id")
	if err != nil {
		return err
	}
	if err := checkTarget(fs.Name(), pos[0]); err != nil {
		return err
	}
	cl, closeFn, t, err := m.openTarget(ctx, &c, pos[0])
	if err != nil {
		return err
	}
	defer closeFn()
	batch, err := cl.StartLifecycle(ctx, t, wire.ModeOffboard, opts)
	if err != nil {
		return err
	}
	what := "offboarding"
	if opts.DryRun {
		what = "dry run: listing what an offboard would remove for"
	}
	fmt.Fprintf(m.Stdout, "%s %d participants of %s -> batch %s\n", what, t.Roster.Count, t.Source, batch)
	if !*wait && !opts.DryRun {
		fmt.Fprintf(m.Stdout, "follow: starter status %s; Web UI: %s\n", batch, cl.BatchURL(batch))
		return nil
	}
	return m.followAndList(ctx, cl, batch)
}
