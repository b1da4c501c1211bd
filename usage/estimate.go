package usage

import (
	"math"
	"strings"
	"time"
)

// Rates turn run time into an estimate: DBUs per hour by node type, and
// a price per DBU. A node type with no rate, or no price, leaves the
// estimate unset (hours only): Cohort never guesses a figure.
type Rates struct {
	DBUPerHour  map[string]float64
	PricePerDBU float64
	Currency    string
}

// Estimate is the DBUs and cost of some hours on a node type.
type Estimate struct {
	DBU     float64
	HasDBU  bool
	Cost    float64
	HasCost bool
}

// Estimate prices hours on nodeType (matched case-insensitively).
func (r Rates) Estimate(nodeType string, hours float64) Estimate {
	rate, ok := r.rate(nodeType)
	if !ok {
		return Estimate{}
	}
	e := Estimate{DBU: hours * rate, HasDBU: true}
	if r.PricePerDBU > 0 {
		e.Cost, e.HasCost = e.DBU*r.PricePerDBU, true
	}
	return e
}

func (r Rates) rate(nodeType string) (float64, bool) {
	if v, ok := r.DBUPerHour[nodeType]; ok && v > 0 {
		return v, true
	}
	for k, v := range r.DBUPerHour {
		if strings.EqualFold(k, nodeType) && v > 0 {
			return v, true
		}
	}
	return 0, false
}

// Budget is the run time each participant may use. Off (zero hours) by
// default.
type Budget struct {
	HoursPerParticipant float64
	// WarnFraction of the budget lists a participant as close to it.
	WarnFraction float64
}

// On says the budget is set.
func (b Budget) On() bool { return b.HoursPerParticipant > 0 }

// States of a participant, as usage lists them.
const (
	StateNeverStarted = "never started"
	StateActive       = "active"
	StateNearBudget   = "near budget"
	StateOverBudget   = "over budget"
)

// Verdict is the budget's word on a participant's hours.
type Verdict struct {
	// Limit is the hours they may use (the budget and their grants); Left
	// what remains of it (never below 0). Both 0 when the budget is off.
	Limit, Left float64
	Over, Near  bool
}

// Judge weighs used hours against the budget and granted extra hours.
func (b Budget) Judge(used, granted float64) Verdict {
	if !b.On() {
		return Verdict{}
	}
	limit := b.HoursPerParticipant + granted
	v := Verdict{Limit: limit, Left: math.Max(limit-used, 0)}
	v.Over = used >= limit
	warn := b.WarnFraction
	if warn <= 0 || warn >= 1 {
		warn = 0.8
	}
	v.Near = !v.Over && used >= warn*limit
	return v
}

// State names a participant's state from their totals and verdict.
func State(t Totals, v Verdict) string {
	switch {
	case v.Over:
		return StateOverBudget
	case t.Starts == 0 && !t.Running:
		return StateNeverStarted
	case v.Near:
		return StateNearBudget
	}
	return StateActive
}

// Day is the UTC calendar day of t.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }
