// What every command shares: the common flags, the connection, opening a
// batch or a roster, and argument parsing. Each command has a file of its own.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/cohort-dev/cohort/bootstrap"
	"github.com/cohort-dev/cohort/config"
	"github.com/cohort-dev/cohort/control"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

// common are the flags every command takes.
type common struct {
	config             config.Paths
	address, namespace string
	cfg                config.Config
}

func (c *common) register(fs *flag.FlagSet) {
	fs.Var(&c.config, "config", "YAML config `file`, repeatable, later ones winning (default $COHORT_CONFIG, else ./cohort.yaml if present)")
	fs.StringVar(&c.address, "address", "", "Temporal frontend `host:port` (default $TEMPORAL_ADDRESS or the config)")
	fs.StringVar(&c.namespace, "namespace", "", "Temporal `namespace` (default $TEMPORAL_NAMESPACE or the config)")
}

// load reads the configuration with the usual precedence: flags over
// environment over file over defaults.
func (c *common) load(getenv func(string) string) error {
	cfg, err := config.Load(config.Files(c.config, getenv)...)
	if err != nil {
		return usagef("config: %v", err)
	}
	cfg.ApplyEnv(getenv)
	if c.address != "" {
		cfg.Temporal.Address = c.address
	}
	if c.namespace != "" {
		cfg.Temporal.Namespace = c.namespace
	}
	c.cfg = cfg
	return nil
}

func (m *Main) connect(ctx context.Context, c *common) (*control.Client, func(), error) {
	tc, err := bootstrap.Dial(ctx, c.cfg.Temporal.Address, c.cfg.Temporal.Namespace, c.cfg.Temporal.Compress, m.logger())
	if err != nil {
		return nil, nil, err
	}
	return &control.Client{
		Temporal: tc, Namespace: c.cfg.Temporal.Namespace, UIAddress: c.cfg.Temporal.UIAddress,
		Store: roster.Store{Dir: c.cfg.RosterDir}, Batch: c.cfg.Batch,
	}, tc.Close, nil
}

// openBatch is the start of every command on one batch: it parses args (one
// BATCH id, flags on either side), lets check refuse bad flag values before
// anything is loaded, loads the config and connects. The caller closes.
func (m *Main) openBatch(ctx context.Context, fs *flag.FlagSet, c *common, args []string, check func() error) (string, *control.Client, func(), error) {
	pos, err := parse(fs, args, 1, "one BATCH id")
	if err != nil {
		return "", nil, nil, err
	}
	if err := workflows.ValidateBatchRef(pos[0]); err != nil {
		return "", nil, nil, usagef("%s: BATCH: %v", fs.Name(), err)
	}
	if check != nil {
		if err := check(); err != nil {
			return "", nil, nil, err
		}
	}
	if err := c.load(m.Getenv); err != nil {
		return "", nil, nil, err
	}
	cl, closeFn, err := m.connect(ctx, c)
	if err != nil {
		return "", nil, nil, err
	}
	return pos[0], cl, closeFn, nil
}

// openRoster is openBatch for the commands that take a roster (submit,
// plan): it parses the one FILE argument, runs check (nil: none) before
// anything is read, loads the config, reads and validates the roster, and
// connects. It returns the file with the participants; the caller closes.
func (m *Main) openRoster(ctx context.Context, fs *flag.FlagSet, c *common, args []string, check func() error,
	skipInvalid *bool, verb, done string) (string, []roster.Participant, *control.Client, func(), error) {
	pos, err := parse(fs, args, 1, "one roster FILE.csv")
	if err != nil {
		return "", nil, nil, nil, err
	}
	if check != nil {
		if err := check(); err != nil {
			return "", nil, nil, nil, err
		}
	}
	if err := c.load(m.Getenv); err != nil {
		return "", nil, nil, nil, err
	}
	m.mark("config loaded")
	participants, err := m.readRoster(ctx, pos[0], c, skipInvalid, verb, done)
	if err != nil {
		return "", nil, nil, nil, err
	}
	m.mark("roster read and validated (%d participants)", len(participants))
	cl, closeFn, err := m.connect(ctx, c)
	if err != nil {
		return "", nil, nil, nil, err
	}
	m.mark("connected to Temporal")
	return pos[0], participants, cl, closeFn, nil
}

// parse parses flags that may stand before or after the positional
// arguments ("report BATCH --format csv"), and wants exactly n of those.
// -h or --help returns a helpRequest; an unknown flag's error names the
// valid ones.
func parse(fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpRequest{fs}
			}
			if strings.HasPrefix(err.Error(), "flag provided but not defined") {
				return nil, usagef("%s: %v; valid flags: %s (see starter %s -h)", fs.Name(), err, flagNames(fs), fs.Name())
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != n {
		return nil, usagef("%s: expected %s, got %d arguments", fs.Name(), what, len(pos))
	}
	return pos, nil
}

// flagNames lists a command's flags as people type them.
func flagNames(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// readRoster reads and validates a roster file. Every problem is an error at
// FILE:LINE, and nothing is done unless *skipInvalid lets the valid rows go
// ahead (the skipped ones are listed on stderr; nil: the command has no
// --skip-invalid); verb and done say what would have been done, in the
// messages. The file must be a regular file of at most roster.MaxFileSize
// bytes, and ctx (SIGINT, SIGTERM) stops the read.
func (m *Main) readRoster(ctx context.Context, file string, c *common, skipInvalid *bool, verb, done string) ([]roster.Participant, error) {
	data, err := roster.ReadFile(ctx, file)
	if err != nil {
		return nil, usagef("%v", err)
	}
	r, err := roster.Parse(filepath.Base(file), data, roster.Options{SkipInvalid: skipInvalid != nil && *skipInvalid, Naming: c.cfg.RosterNaming()})
	if err != nil {
		var ve *roster.ValidationError
		if errors.As(err, &ve) {
			hint := "fix them"
			if skipInvalid != nil {
				hint += ", or use --skip-invalid"
			}
			return nil, usagef("%s\n%s: %d problem(s); nothing was %s (%s)", err, file, len(ve.Problems), done, hint)
		}
		return nil, usagef("%v", err)
	}
	for _, p := range r.Skipped {
		fmt.Fprintf(m.Stderr, "skipped %s\n", p)
	}
	if len(r.Participants) == 0 {
		return nil, usagef("%s: no participants to %s", file, verb)
	}
	return r.Participants, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
