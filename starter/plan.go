// starter plan: what a batch would do on this workspace, and whether it can.

package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/cohort-dev/cohort/control"
	"github.com/cohort-dev/cohort/workflows"
)

// errNotReady ends a plan whose workspace is not ready (exit 1, after the
// plan was printed).
var errNotReady = fmt.Errorf("workspace not ready: %w", errSomeFailed)

// plan validates a roster as submit does, then asks the workspace, through
// a worker and without writing to it, whether a batch of it would work and
// what it would do.
func (m *Main) plan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	var c common
	c.register(fs)
	skipInvalid := fs.Bool("skip-invalid", false, "plan for the valid rows and list the invalid ones")
	file, participants, cl, closeFn, err := m.openRoster(ctx, fs, &c, args, nil, skipInvalid, "plan for", "planned")
	if err != nil {
		return err
	}
	defer closeFn()
	fmt.Fprintf(m.Stderr, "validated %d participants; reading the workspace through a worker (nothing is written)...\n", len(participants))
	p, err := cl.Plan(ctx, participants)
	if err != nil {
		return err
	}
	m.printPlan(file, p)
	if !p.Ready() {
		return errNotReady
	}
	return nil
}

// printPlan writes who is new, provisioned or pre-existing, every check
// with its fix, and the verdict.
func (m *Main) printPlan(file string, p workflows.PlanResult) {
	w := m.Stdout
	fmt.Fprintf(w, "plan for %s: %d participants\n", file, p.Total)
	fmt.Fprintf(w, "  %6d new: an account user, a schema in %s and a stopped cluster each will be created\n", p.New, p.Catalog)
	fmt.Fprintf(w, "  %6d already provisioned by Cohort: left as they are (starter reconcile checks them and repairs what drifted)\n", p.Provisioned)
	fmt.Fprintf(w, "  %6d exist in the account but were not provisioned by Cohort: their user is adopted, the rest created\n", p.Existing)
	if p.Existing > 0 {
		fmt.Fprintf(w, "         %s\n", control.PlanEmails(p.ExistingEmails, p.Existing, 10))
	}
	fmt.Fprintln(w, "\nchecks:")
	blocking := 0
	for _, c := range p.Checks {
		mark := "ok"
		switch {
		case c.Blocking:
			mark = "FAIL"
			blocking++
		case !c.OK:
			mark = "skip"
		}
		fmt.Fprintf(w, "  %-4s  %-15s %s\n", mark, c.Name, c.Detail)
		if c.Fix != "" && !c.OK {
			fmt.Fprintf(w, "  %-4s  %-15s fix: %s\n", "", "", c.Fix)
		}
	}
	s := p.Cluster
	if s.PolicyID != "" {
		fmt.Fprintf(w, "\nclusters: policy %s, runtime %s, node type %s, single node, SINGLE_USER, CAN_RESTART, stopped\n",
			s.PolicyID, orDash(s.SparkVersion), orDash(s.NodeType))
	}
	if blocking > 0 {
		fmt.Fprintf(w, "\nnot ready: %d blocking problem(s); fix them and run starter plan %s again\n", blocking, file)
		return
	}
	fmt.Fprintf(w, "\nready: starter submit %s\n", file)
}
