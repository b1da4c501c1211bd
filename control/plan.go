package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/workflows"
)

// PlanTimeout bounds a plan: its checks are a few dozen reads.
const PlanTimeout = 15 * time.Minute

// Plan asks the workspace whether a batch of these participants would work
// and what it would do, without writing to it: it stores the roster (as
// Submit does; the roster never travels in a payload), finds who Cohort has
// provisioned already, and runs the Plan workflow, whose read-only activity
// runs on a worker (the Databricks credentials stay there). Each plan is its
// own run: the question is asked at a moment.
func (c *Client) Plan(ctx context.Context, participants []roster.Participant) (workflows.PlanResult, error) {
	ref, err := c.Store.Put(participants)
	if err != nil {
		return workflows.PlanResult{}, fmt.Errorf("store roster: %w", err)
	}
	done, err := c.provisioned(ctx, participants)
	if err != nil {
		return workflows.PlanResult{}, err
	}
	pending := make([]roster.Participant, 0, len(participants)-len(done))
	for _, p := range participants {
		if !done[workflows.ParticipantWorkflowID(p.Email)] {
			pending = append(pending, p)
		}
	}
	pref, err := c.Store.Put(pending)
	if err != nil {
		return workflows.PlanResult{}, fmt.Errorf("store roster: %w", err)
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	id := workflows.PlanWorkflowID(ref.Key, time.Now().UTC().Format("20060102T150405Z")+"-"+hex.EncodeToString(suffix[:]))
	run, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.TaskQueue,
		WorkflowExecutionTimeout: PlanTimeout,
		StaticSummary:            fmt.Sprintf("plan: %d participants (%d provisioned before)", ref.Count, len(done)),
	}, workflows.PlanWorkflowName, workflows.PlanInput{Roster: ref, Pending: pref, Provisioned: len(done)})
	if err != nil {
		return workflows.PlanResult{}, fmt.Errorf("start plan: %w", err)
	}
	var res workflows.PlanResult
	if err := run.Get(ctx, &res); err != nil {
		return res, fmt.Errorf("plan %s: %s", id, rootMessage(err))
	}
	return res, nil
}

// provisioned is the set of participant workflow IDs among ps whose last run
// completed, from Temporal's visibility store (eventually consistent: an
// estimate for people, never used for decisions).
func (c *Client) provisioned(ctx context.Context, ps []roster.Participant) (map[string]bool, error) {
	want := make(map[string]bool, len(ps))
	for _, p := range ps {
		want[workflows.ParticipantWorkflowID(p.Email)] = true
	}
	seen := map[string]bool{}
	query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Completed'", workflows.ParticipantWorkflowName)
	var token []byte
	for {
		resp, err := c.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: c.Namespace, Query: query, PageSize: 1000, NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list provisioned participants: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			if id := e.GetExecution().GetWorkflowId(); want[id] {
				seen[id] = true
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return seen, nil
		}
	}
}

// PlanEmails turns the plan's emails into a short list for people: at most
// n, then how many more.
func PlanEmails(emails []string, total, n int) string {
	shown := emails[:min(len(emails), n)]
	s := strings.Join(shown, ", ")
	if more := total - len(shown); more > 0 {
		s += fmt.Sprintf(", and %d more", more)
	}
	return s
}
