// The argument of a lifecycle command (reconcile, offboard, usage): a roster file
// or a batch id, checked before anything is loaded.

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cohort-dev/cohort/control"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

// checkTarget refuses, before anything is loaded or connected, a lifecycle
// command's argument that is neither a file (openTarget reads anything but
// a directory as a roster) nor a valid batch id.
func checkTarget(cmd, arg string) error {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return nil
	}
	if err := workflows.ValidateBatchRef(arg); err != nil {
		return usagef("%s: %s: neither a roster file nor a batch id: %v", cmd, shortArg(arg), err)
	}
	return nil
}

// shortArg is an argument as a message shows it: quoted, and cut when long.
func shortArg(s string) string {
	if r := []rune(s); len(r) > 60 {
		return fmt.Sprintf("%q...", string(r[:60]))
	}
	return fmt.Sprintf("%q", s)
}

// openTarget loads the config, resolves a lifecycle command's argument, a
// roster file (stored like a submit's) or the id of a submitted batch, and
// connects. A roster is read and validated before the connection, so a bad
// one is refused (exit 2) without Temporal. The caller closes.
func (m *Main) openTarget(ctx context.Context, c *common, arg string) (*control.Client, func(), control.Target, error) {
	if err := c.load(m.Getenv); err != nil {
		return nil, nil, control.Target{}, err
	}
	// Anything but a directory that exists under that name is meant as a
	// roster; readRoster refuses what is not a regular file (a FIFO, a
	// device) by name instead of taking it for a batch id.
	var participants []roster.Participant
	st, err := os.Stat(arg)
	isFile := err == nil && !st.IsDir()
	if isFile {
		if participants, err = m.readRoster(ctx, arg, c, nil, "act on", "done"); err != nil {
			return nil, nil, control.Target{}, err
		}
	}
	cl, closeFn, err := m.connect(ctx, c)
	if err != nil {
		return nil, nil, control.Target{}, err
	}
	var t control.Target
	if isFile {
		t, err = cl.TargetOfRoster(participants)
	} else if t, err = cl.TargetOfBatch(ctx, arg); errors.Is(err, control.ErrNoBatch) {
		err = usagef("%s: neither a roster file nor a submitted batch", arg)
	}
	if err != nil {
		closeFn()
		return nil, nil, control.Target{}, err
	}
	return cl, closeFn, t, nil
}

// parseEvery reads the --every of a command that can run on a schedule: ""
// or "off" is 0 (no interval), else a duration of at least a minute.
func parseEvery(cmd, every string) (time.Duration, error) {
	if every == "" || every == "off" {
		return 0, nil
	}
	interval, err := time.ParseDuration(every)
	if err != nil || interval < time.Minute {
		return 0, usagef("%s: --every: expected a duration of at least 1m (e.g. 24h) or off, got %q", cmd, every)
	}
	return interval, nil
}
