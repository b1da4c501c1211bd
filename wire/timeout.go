package wire

import "time"

// StepWorkflow names, in outcomes and reports, a participant failure that no
// step owns: the participant's run did not finish within its bound (its
// workflow tasks kept failing, or a step hung), or could not be started.
const StepWorkflow = "workflow"

// ParticipantSteps is how many step timeouts a participant run may take
// under the default participant timeout. The longest chain of steps that run
// one after another is seven (a reconcile: prior runs, create user, assign
// workspace, then create cluster and stop it, twice when the first cluster
// vanished; an offboard has six), each bounded by the step timeout; three
// more leave room for workflow tasks and for steps added later. So a run
// whose every step ends within its step timeout is never cut.
const ParticipantSteps = 10

// DefaultParticipantTimeout bounds a participant run when the batch's
// participant_timeout is not set: ParticipantSteps step timeouts (30m
// steps: 5h). A zero step timeout counts as the participant workflow's
// default, 30m.
func DefaultParticipantTimeout(stepTimeout time.Duration) time.Duration {
	if stepTimeout <= 0 {
		stepTimeout = 30 * time.Minute
	}
	return ParticipantSteps * stepTimeout
}
