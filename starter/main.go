// Command starter is the CLI an organizer types: submit a roster CSV as a
// batch, follow it, see its status, retry its failed participants and write
// the report to send to participants.
//
//	starter submit [--wait] [--batch ID] [--skip-invalid] FILE.csv
//	starter plan [--skip-invalid] FILE.csv
//	starter reconcile [--wait] [--dry-run] [--every DURATION|off] FILE.csv|BATCH
//	starter offboard [--wait] [--dry-run] [--delete-users] [--drop-schemas] FILE.csv|BATCH
//	starter status BATCH
//	starter retry-failed [--wait] BATCH
//	starter report BATCH [--format csv|json]
//	starter usage [--format table|csv|json|html] [--out FILE] [--every DURATION|off] [--cached] FILE.csv|BATCH
//	starter budget grant EMAIL +HOURS
//	starter version
//	starter COMMAND -h
//
// Exit status: 0 every participant succeeded, 1 some failed (or the batch
// could not run), 2 invalid input or usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitInvalid = 2
)

// usageError marks errors that are the caller's to fix (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// errSomeFailed marks a finished command whose participants did not all
// succeed (exit 1), after its output was printed.
var errSomeFailed = errors.New("some participants failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	err := m.Run(ctx, os.Args[1:])
	var ue usageError
	switch {
	case err == nil:
		os.Exit(exitOK)
	case errors.Is(err, errSomeFailed):
		os.Exit(exitFailed)
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(exitInvalid)
	default:
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(exitFailed)
	}
}

// Main runs one command line.
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// commands are the starter's verbs, in the order the usage lists them.
var commands = []struct{ name, args, summary string }{
	{"submit", "[--wait] [--batch ID] [--skip-invalid] FILE.csv",
		"validate a roster (Entra bulk-create/invite or plain email,display_name CSV)\nand start provisioning it as a batch"},
	{"plan", "[--skip-invalid] FILE.csv", "validate a roster and check, without writing to it, that the workspace is\nready for it: who is new, provisioned or already in the account; every check\nwith its fix (exit 0 ready, 1 not ready)"},
	{"status", "BATCH", "counts, failures by step, and the failed participants"},
	{"retry-failed", "[--wait] BATCH", "re-run exactly the failed participants of a finished batch"},
	{"report", "BATCH [--format csv|json]", "one row per participant: the list to send to participants"},
	{"reconcile", "[--wait] [--dry-run] [--every DURATION|off] FILE.csv|BATCH",
		"read the event once and repair only what drifted (purged clusters re-created\nand stopped, running ones left alone); --dry-run only lists the drift (exit 1\nif any); --every keeps a Temporal Schedule doing it"},
	{"offboard", "[--wait] [--dry-run] [--delete-users] [--drop-schemas] FILE.csv|BATCH",
		"close the event: remove assignments, clusters, grants (schemas), then deactivate\n(or delete) the users Cohort created; --dry-run only lists it"},
	{"usage", "[--format table|csv|json|html] [--out FILE] [--every DURATION|off] [--cached] FILE.csv|BATCH",
		"read every participant's cluster event log into the usage ledger, apply the\nbudget, then list hours, starts, last run, DBU and cost estimates, budget\nleft and who never started (remind them); --every keeps a Schedule doing it"},
	{"budget", "grant EMAIL +HOURS", "give a participant more cluster hours (stored in the ledger): the next usage\nread gives CAN_RESTART back to one past the budget"},
	{"version", "", "Cohort's version and the Temporal and Databricks SDK versions it was built with"},
}

const commonFlags = `common flags: --config FILE (default $COHORT_CONFIG or cohort.yaml if present),
              --address HOST:PORT ($TEMPORAL_ADDRESS), --namespace NS ($TEMPORAL_NAMESPACE)
"starter COMMAND -h" lists a command's flags.`

// usageText is the starter's own usage text.
func usageText() string {
	var b strings.Builder
	b.WriteString("usage: starter COMMAND [flags] ARGS\n\ncommands:\n")
	for _, c := range commands {
		line := strings.TrimSpace("  " + c.name + " " + c.args)
		summary := strings.ReplaceAll(c.summary, "\n", "\n"+strings.Repeat(" ", 22))
		if len(line) < 20 {
			fmt.Fprintf(&b, "  %-20s%s\n", strings.TrimSpace(line), summary)
		} else {
			fmt.Fprintf(&b, "  %s\n%s%s\n", line, strings.Repeat(" ", 22), summary)
		}
	}
	b.WriteString("\n" + commonFlags)
	return b.String()
}

// helpRequest is what parsing a command's flags returns for -h or --help:
// Run prints the command's usage and flags to stdout and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (h helpRequest) Error() string { return "help requested" }

func (m *Main) printHelp(fs *flag.FlagSet) {
	for _, c := range commands {
		if c.name == fs.Name() {
			fmt.Fprintf(m.Stdout, "usage: %s\n\n%s\n", strings.TrimSpace("starter "+c.name+" "+c.args), c.summary)
		}
	}
	if !hasFlags(fs) {
		return
	}
	fmt.Fprintln(m.Stdout, "\nflags:")
	fs.SetOutput(m.Stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// Run dispatches to the command.
func (m *Main) Run(ctx context.Context, args []string) error {
	err := m.run(ctx, args)
	var h helpRequest
	if errors.As(err, &h) {
		m.printHelp(h.fs)
		return nil
	}
	return err
}

func (m *Main) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("%s", usageText())
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "submit":
		return m.submit(ctx, rest)
	case "plan":
		return m.plan(ctx, rest)
	case "status":
		return m.status(ctx, rest)
	case "retry-failed":
		return m.retryFailed(ctx, rest)
	case "report":
		return m.report(ctx, rest)
	case "reconcile":
		return m.reconcile(ctx, rest)
	case "offboard":
		return m.offboard(ctx, rest)
	case "usage":
		return m.usage(ctx, rest)
	case "budget":
		return m.budget(ctx, rest)
	case "version":
		return m.version(rest)
	case "help", "-h", "--help":
		if len(rest) == 1 && rest[0] != "help" {
			return m.run(ctx, []string{rest[0], "-h"})
		}
		fmt.Fprintln(m.Stdout, usageText())
		return nil
	default:
		return usagef("starter: unknown command %q\n%s", cmd, usageText())
	}
}

func (m *Main) logger() *slog.Logger {
	// The Temporal client logs at info on every dial; people want the
	// command's own output only.
	return slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
