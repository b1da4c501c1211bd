package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// PlanWorkflowName runs `starter plan`: read the workspace, never write.
const PlanWorkflowName = "Plan"

// PlanWorkflowID names one plan of a roster. The suffix comes from the
// starter (a plan is a question asked at a moment, so each asking is its
// own run), the key from the roster's content.
func PlanWorkflowID(rosterKey, suffix string) string {
	return "cohort-plan/" + rosterKey[:min(len(rosterKey), 12)] + "-" + suffix
}

// PlanInput names the stored roster and its participants not yet
// provisioned by Cohort (the starter knows those from Temporal), and how
// many were.
type PlanInput struct {
	Roster      roster.Ref `json:"roster"`
	Pending     roster.Ref `json:"pending"`
	Provisioned int        `json:"provisioned"`
}

// PlanResult is what the starter prints.
type PlanResult struct {
	wire.PlanWorkspaceResult
	Total       int `json:"total"`
	Provisioned int `json:"provisioned"`
}

// PlanWorkflow runs the read-only PlanWorkspace activity on the main queue,
// where the worker's Databricks credentials are, and returns its findings.
// Transient Databricks failures are retried for a few minutes; anything
// else is a finding, not a failure.
func PlanWorkflow(ctx workflow.Context, in PlanInput) (PlanResult, error) {
	if in.Roster.Key == "" {
		return PlanResult{}, temporal.NewNonRetryableApplicationError("plan needs a stored roster", wire.ErrInvalidInput, nil)
	}
	actx := workflow.WithActivityOptions(ctx, activityOptions(wire.PlanWorkspaceName, 10*time.Minute, ""))
	var res wire.PlanWorkspaceResult
	if err := workflow.ExecuteActivity(actx, wire.PlanWorkspaceName, wire.PlanWorkspaceInput{Roster: in.Roster, Pending: in.Pending}).Get(ctx, &res); err != nil {
		return PlanResult{}, err
	}
	return PlanResult{PlanWorkspaceResult: res, Total: in.Roster.Count, Provisioned: in.Provisioned}, nil
}
