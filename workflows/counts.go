package workflows

import "slices"

// Counts is progress: how many participants are in each state, and for the
// failed ones, at which step. It is plain data with no maps, so that summing
// it in a workflow is deterministic by construction.
type Counts struct {
	Total   int `json:"total"`
	Running int `json:"running"`
	OK      int `json:"ok"`
	Reused  int `json:"reused"` // included in OK
	// Unchanged (included in OK): a reconcile found nothing drifted and
	// started no run. Drifted: it found drift (repaired, or with a dry
	// run, listed).
	Unchanged int `json:"unchanged,omitempty"`
	Drifted   int `json:"drifted,omitempty"`
	Failed    int `json:"failed"`
	// FailedByStep is sorted by step.
	FailedByStep []StepCount `json:"failed_by_step,omitempty"`
}

// StepCount is how many participants failed at one step.
type StepCount struct {
	Step string `json:"step"`
	N    int    `json:"n"`
}

// Done is the number of participants with an outcome.
func (c Counts) Done() int { return c.OK + c.Failed }

// Add returns the sum of two counts.
func (c Counts) Add(o Counts) Counts {
	sum := Counts{Total: c.Total + o.Total, Running: c.Running + o.Running, OK: c.OK + o.OK,
		Reused: c.Reused + o.Reused, Failed: c.Failed + o.Failed, Unchanged: c.Unchanged + o.Unchanged, Drifted: c.Drifted + o.Drifted}
	for _, sc := range c.FailedByStep {
		sum.AddFailed(sc.Step, sc.N)
	}
	for _, sc := range o.FailedByStep {
		sum.AddFailed(sc.Step, sc.N)
	}
	return sum
}

// AddFailed counts n more failures at step, keeping FailedByStep sorted.
func (c *Counts) AddFailed(step string, n int) {
	i, found := slices.BinarySearchFunc(c.FailedByStep, step, func(sc StepCount, step string) int {
		switch {
		case sc.Step < step:
			return -1
		case sc.Step > step:
			return 1
		}
		return 0
	})
	if found {
		c.FailedByStep[i].N += n
		return
	}
	c.FailedByStep = slices.Insert(c.FailedByStep, i, StepCount{Step: step, N: n})
}

// record counts one participant's outcome.
func (c *Counts) record(o Outcome) {
	c.Running--
	if len(o.Drift) > 0 {
		c.Drifted++
	}
	if o.Status == StatusOK {
		if o.Unchanged {
			c.Unchanged++
		}
		c.OK++
		if o.Reused {
			c.Reused++
		}
		return
	}
	c.Failed++
	c.AddFailed(o.Step, 1)
}
