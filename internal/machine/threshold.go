package machine

import (
	"fmt"
	"slices"
	"strings"
)

// Threshold types and groupings (ARM ValidationThreshold).
const (
	CountSuccess   = "CountSuccess"
	PercentSuccess = "PercentSuccess"
	PerCluster     = "PerCluster"
	PerRack        = "PerRack"
)

// Threshold is how many machines must pass validation and deployment for
// the cluster to deploy (ARM computeDeploymentThreshold): Value machines
// (CountSuccess) or Value percent of them (PercentSuccess), over the whole
// cluster (PerCluster) or in every rack (PerRack).
type Threshold struct {
	Type     string
	Grouping string
	Value    int
}

// Outcome is how one machine fared.
type Outcome struct {
	Machine, Rack string
	OK            bool
	Reason        string // why it failed
}

// Validate checks the threshold; its error is a Violation whose Field is
// the ValidationThreshold property at fault.
func (t Threshold) Validate() error {
	typ, ok := oneOf(t.Type, CountSuccess, PercentSuccess)
	if !ok {
		return Violation{Field: "type", Message: fmt.Sprintf("%q is not CountSuccess or PercentSuccess", t.Type)}
	}
	if _, ok := oneOf(t.Grouping, PerCluster, PerRack); !ok {
		return Violation{Field: "grouping", Message: fmt.Sprintf("%q is not PerCluster or PerRack", t.Grouping)}
	}
	if t.Value < 0 {
		return Violation{Field: "value", Message: fmt.Sprintf("%d is negative", t.Value)}
	}
	if typ == PercentSuccess && t.Value > 100 {
		return Violation{Field: "value", Message: fmt.Sprintf("%d percent is more than 100", t.Value)}
	}
	return nil
}

// Evaluate reports whether the outcomes meet the threshold, with a summary
// for the cluster's status message: how many machines succeeded and, when
// the threshold is not met, which rack fell short and which machines
// failed. With PerRack every rack, in the order it first appears, must meet
// the threshold. No machines meet a PercentSuccess threshold and a
// CountSuccess threshold of 0.
func (t Threshold) Evaluate(outcomes []Outcome) (met bool, summary string) {
	if err := t.Validate(); err != nil {
		return false, "invalid threshold: " + err.Error()
	}
	typ, _ := oneOf(t.Type, CountSuccess, PercentSuccess)
	grouping, _ := oneOf(t.Grouping, PerCluster, PerRack)
	if grouping == PerCluster || len(outcomes) == 0 {
		g := tally(outcomes)
		if t.meets(typ, g) {
			return true, fmt.Sprintf("%s succeeded, %s", g.score(), t.need(typ))
		}
		return false, fmt.Sprintf("%s succeeded, %s; failed: %s", g.score(), t.need(typ), g.failures())
	}

	var order []string
	byRack := map[string][]Outcome{}
	for _, o := range outcomes {
		if _, ok := byRack[o.Rack]; !ok {
			order = append(order, o.Rack)
		}
		byRack[o.Rack] = append(byRack[o.Rack], o)
	}
	var scores, short []string
	for _, rack := range order {
		g := tally(byRack[rack])
		scores = append(scores, fmt.Sprintf("rack %q %s", rack, g.score()))
		if !t.meets(typ, g) {
			short = append(short, fmt.Sprintf("rack %q: %s succeeded, %s; failed: %s", rack, g.score(), t.need(typ), g.failures()))
		}
	}
	if len(short) > 0 {
		return false, strings.Join(short, "; ")
	}
	return true, fmt.Sprintf("every rack met the threshold (%s): %s", t.need(typ), strings.Join(scores, ", "))
}

func (t Threshold) meets(typ string, g group) bool {
	if typ == PercentSuccess {
		return g.ok*100 >= t.Value*len(g.outcomes)
	}
	return g.ok >= t.Value
}

func (t Threshold) need(typ string) string {
	if typ == PercentSuccess {
		return fmt.Sprintf("PercentSuccess needs %d%%", t.Value)
	}
	return fmt.Sprintf("CountSuccess needs %d", t.Value)
}

type group struct {
	outcomes []Outcome
	ok       int
}

func tally(outcomes []Outcome) group {
	g := group{outcomes: outcomes}
	for _, o := range outcomes {
		if o.OK {
			g.ok++
		}
	}
	return g
}

func (g group) score() string {
	if len(g.outcomes) == 0 {
		return "0 of 0 machines"
	}
	return fmt.Sprintf("%d of %d machines (%d%%)", g.ok, len(g.outcomes), g.ok*100/len(g.outcomes))
}

func (g group) failures() string {
	var names []string
	for _, o := range g.outcomes {
		if o.OK {
			continue
		}
		if o.Reason != "" {
			names = append(names, fmt.Sprintf("%s (%s)", o.Machine, o.Reason))
		} else {
			names = append(names, o.Machine)
		}
	}
	return list(names)
}

// Reachable reports whether outcomes, the first of total machines, can
// still meet the threshold: whether it is met if every machine still to
// go succeeds.
func (t Threshold) Reachable(outcomes []Outcome, total int) bool {
	all := slices.Clone(outcomes)
	for range total - len(outcomes) {
		all = append(all, Outcome{OK: true})
	}
	met, _ := t.Evaluate(all)
	return met
}
