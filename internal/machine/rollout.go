package machine

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// Target is the release a machine is asked to run while an update rolls
// out: the cluster version and the release's files for that machine.
type Target struct {
	ClusterVersion string              `json:"clusterVersion"`
	Artifacts      []agentapi.Artifact `json:"artifacts,omitempty"`
}

// The strategy types of a cluster's updateStrategy.
const (
	StrategyRack           = "Rack"
	StrategyPauseAfterRack = "PauseAfterRack"
)

// RackIncrement is one rack's part of an update: its machines in the
// batches that go down together.
type RackIncrement struct {
	Rack    string
	Batches [][]string
}

// Machines lists the increment's machines in batch order.
func (r RackIncrement) Machines() []string {
	var out []string
	for _, b := range r.Batches {
		out = append(out, b...)
	}
	return out
}

// PlanRollout orders an update of members: rack by rack in alphabetical
// order of the racks (ARM's AlphaByRack), and inside a rack in batches of
// at most maxUnavailable machines (0 or less: the whole rack), machines in
// natural name order. A batch never takes more control-plane machines
// than the control plane can lose and keep its quorum (floor(n/2)+1 of
// its n members up): with three, one at a time.
func PlanRollout(members []Member, maxUnavailable int) []RackIncrement {
	byRack := map[string][]Member{}
	controlPlane := 0
	for _, m := range members {
		byRack[m.Rack] = append(byRack[m.Rack], m)
		if hasRole(m.Roles, "control-plane") {
			controlPlane++
		}
	}
	cpBudget := max(controlPlane-(controlPlane/2+1), 1)
	racks := slices.Sorted(maps.Keys(byRack))
	out := make([]RackIncrement, 0, len(racks))
	for _, rack := range racks {
		ms := byRack[rack]
		slices.SortFunc(ms, func(a, b Member) int { return naturalCompare(a.Name, b.Name) })
		size := maxUnavailable
		if size <= 0 {
			size = len(ms)
		}
		inc := RackIncrement{Rack: rack}
		var batch []string
		cpInBatch := 0
		for _, m := range ms {
			cp := hasRole(m.Roles, "control-plane")
			if len(batch) == size || cp && cpInBatch == cpBudget {
				inc.Batches = append(inc.Batches, batch)
				batch, cpInBatch = nil, 0
			}
			batch = append(batch, m.Name)
			if cp {
				cpInBatch++
			}
		}
		if len(batch) > 0 {
			inc.Batches = append(inc.Batches, batch)
		}
		out = append(out, inc)
	}
	return out
}

// naturalCompare orders names with their numbers by value: m2 before m10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		if da != "" && db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// RackThreshold is the updateStrategy's threshold as it applies to one
// rack's increment: thresholdValue machines (CountSuccess, capped at the
// rack's size) or percent of them (PercentSuccess) must update.
func RackThreshold(thresholdType string, value, rackSize int) Threshold {
	t := Threshold{Type: thresholdType, Grouping: PerCluster, Value: value}
	if strings.EqualFold(thresholdType, CountSuccess) {
		t.Value = min(value, rackSize)
	}
	return t
}

// ValidateStrategy checks an updateStrategy; its error is a Violation
// naming the field at fault.
func ValidateStrategy(strategyType, thresholdType string, thresholdValue, maxUnavailable, waitMinutes int) error {
	if _, ok := oneOf(strategyType, StrategyRack, StrategyPauseAfterRack); !ok {
		return Violation{Field: "strategyType", Message: fmt.Sprintf("%q is not Rack or PauseAfterRack", strategyType)}
	}
	if err := (Threshold{Type: thresholdType, Grouping: PerCluster, Value: thresholdValue}).Validate(); err != nil {
		v := err.(Violation)
		v.Field = map[string]string{"type": "thresholdType", "value": "thresholdValue"}[v.Field]
		return v
	}
	if maxUnavailable < 0 {
		return Violation{Field: "maxUnavailable", Message: fmt.Sprintf("%d is negative", maxUnavailable)}
	}
	if waitMinutes < 0 || waitMinutes > 60 {
		return Violation{Field: "waitTimeMinutes", Message: fmt.Sprintf("%d is not between 0 and 60", waitMinutes)}
	}
	return nil
}
