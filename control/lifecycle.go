package control

// The event's life after day one: reconcile (once, or on a Temporal
// Schedule) and offboard, each a batch over a stored roster in its own mode.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
	"github.com/cohort-dev/cohort/workflows"
)

// Target is who a lifecycle command works on: the roster of a batch that was
// submitted, or a roster file's participants (stored like a submit's).
type Target struct {
	// Source names it in batch and schedule ids: the batch id, or
	// "roster-" and the stored roster's key.
	Source string
	Roster roster.Ref
}

// TargetOfBatch is the roster a submitted batch was started with (its
// retries are subsets of it).
func (c *Client) TargetOfBatch(ctx context.Context, batchID string) (Target, error) {
	if err := workflows.ValidateBatchRef(batchID); err != nil {
		return Target{}, fmt.Errorf("batch id: %w", err)
	}
	in, err := c.batchInput(ctx, batchID)
	if err != nil {
		return Target{}, err
	}
	return Target{Source: batchID, Roster: in.Roster}, nil
}

// TargetOfRoster stores a roster's participants.
func (c *Client) TargetOfRoster(ps []roster.Participant) (Target, error) {
	ref, err := c.Store.Put(ps)
	if err != nil {
		return Target{}, fmt.Errorf("store roster: %w", err)
	}
	return Target{Source: "roster-" + ref.Key[:min(8, len(ref.Key))], Roster: ref}, nil
}

// LifecycleBatchID names a reconcile or offboard run of a target: a new id
// each time (the time, to the second, UTC), so every run has its own chunks
// and report, and never the id of a submit.
func LifecycleBatchID(mode string, opts wire.OffboardOptions, source string, at time.Time) string {
	kind := mode
	if opts.DryRun {
		kind = mode + "-plan"
	}
	return kind + "-" + source + "-" + at.UTC().Format("20060102T150405Z")
}

// StartLifecycle starts a reconcile (mode wire.ModeReconcile) or an offboard
// (wire.ModeOffboard, with opts) of the target, and returns its batch id.
func (c *Client) StartLifecycle(ctx context.Context, t Target, mode string, opts wire.OffboardOptions) (string, error) {
	batchID := LifecycleBatchID(mode, opts, t.Source, time.Now())
	if err := workflows.ValidateBatchRef(batchID); err != nil {
		return "", fmt.Errorf("the %s of %s would be batch %s: %w; run it on the roster file instead", kindOf(mode, opts), t.Source, batchID, err)
	}
	in := c.lifecycleInput(batchID, t, mode, opts)
	err := c.startBatch(ctx, in, fmt.Sprintf("%s of %s: %d participants", kindOf(mode, opts), t.Source, t.Roster.Count),
		enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL)
	if err != nil {
		return "", fmt.Errorf("start %s of %s: %w", kindOf(mode, opts), t.Source, err)
	}
	return batchID, nil
}

func kindOf(mode string, opts wire.OffboardOptions) string {
	switch {
	case opts.DryRun:
		return mode + " dry run"
	case mode == "":
		return "provisioning"
	}
	return mode
}

// lifecycleInput is the batch input of a reconcile or offboard; opts.DryRun
// makes either read only (a reconcile's is BatchInput.DryRun).
func (c *Client) lifecycleInput(batchID string, t Target, mode string, opts wire.OffboardOptions) workflows.BatchInput {
	if mode == wire.ModeReconcile {
		in := c.lifecycleInput(batchID, t, wire.ModeProvision, wire.OffboardOptions{})
		in.Mode, in.DryRun = mode, opts.DryRun
		return in
	}
	in := c.batchInputFor(batchID, t.Roster)
	in.Mode, in.Offboard = mode, opts
	return in
}

// ReconcileScheduleID is the Temporal Schedule that reconciles a target.
func ReconcileScheduleID(source string) string { return "cohort-reconcile/" + source }

// UsageScheduleID is the Temporal Schedule that reads a target's usage.
func UsageScheduleID(source string) string { return "cohort-usage/" + source }

// ScheduleReconcile creates, or updates, the Schedule that reconciles the
// target every interval (overlaps skipped: a reconcile still running when
// the next is due is not doubled). Each run is a batch whose id is
// "reconcile-SOURCE-" and the scheduled time (see workflows.BatchWorkflow).
// It reports whether the schedule existed.
func (c *Client) ScheduleReconcile(ctx context.Context, t Target, every time.Duration, dryRun bool) (existed bool, err error) {
	note := fmt.Sprintf("reconcile%s %s (%d participants) every %s", map[bool]string{true: " (dry run: report only)"}[dryRun], t.Source, t.Roster.Count, every)
	return c.schedule(ctx, ReconcileScheduleID(t.Source), t, wire.ModeReconcile, every, dryRun, note)
}

// ScheduleUsage creates, or updates, the Schedule that reads the target's
// usage and applies the budget every interval, as ScheduleReconcile does;
// each run is a batch "usage-SOURCE-" and the scheduled time.
func (c *Client) ScheduleUsage(ctx context.Context, t Target, every time.Duration) (existed bool, err error) {
	note := fmt.Sprintf("usage of %s (%d participants) every %s", t.Source, t.Roster.Count, every)
	return c.schedule(ctx, UsageScheduleID(t.Source), t, wire.ModeUsage, every, false, note)
}

// schedule creates or updates schedule id: a batch of mode over the
// target every interval, overlaps skipped.
func (c *Client) schedule(ctx context.Context, id string, t Target, mode string, every time.Duration, dryRun bool, note string) (existed bool, err error) {
	// A run's batch id is "MODE-SOURCE-" and the scheduled time
	// (2026-01-15T08:00:00Z): it must stay a valid batch id.
	if run := mode + "-" + t.Source + "-2006-01-02T15:04:05Z"; workflows.ValidateBatchRef(run) != nil {
		return false, fmt.Errorf("schedule %s: its runs' batch ids (%s) would be too long; schedule the roster file instead", id, run)
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	// BatchID left empty: each run takes its workflow ID's.
	action := &client.ScheduleWorkflowAction{
		ID:        workflows.BatchWorkflowID(mode + "-" + t.Source),
		Workflow:  workflows.BatchWorkflowName,
		Args:      []any{c.lifecycleInput("", t, mode, wire.OffboardOptions{DryRun: dryRun})},
		TaskQueue: workflows.TaskQueue,
	}
	sc := c.Temporal.ScheduleClient()
	_, err = sc.Create(ctx, client.ScheduleOptions{
		ID: id, Spec: spec, Action: action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    note,
	})
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return false, fmt.Errorf("create schedule %s: %w", id, err)
	}
	err = sc.GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec, s.Action = &spec, action
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return true, fmt.Errorf("update schedule %s: %w", id, err)
	}
	return true, nil
}

// DeleteReconcileSchedule removes the target's schedule; false if there was
// none. Runs it started are left to finish.
func (c *Client) DeleteReconcileSchedule(ctx context.Context, source string) (bool, error) {
	return c.DeleteSchedule(ctx, ReconcileScheduleID(source))
}

// DeleteSchedule removes schedule id; false if there was none. Runs it
// started are left to finish.
func (c *Client) DeleteSchedule(ctx context.Context, id string) (bool, error) {
	err := c.Temporal.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return true, nil
}

// ScheduleURL is the Web UI page of a schedule.
func (c *Client) ScheduleURL(id string) string {
	return fmt.Sprintf("%s/namespaces/%s/schedules/%s", strings.TrimRight(c.UIAddress, "/"),
		url.PathEscape(c.Namespace), url.PathEscape(id))
}
