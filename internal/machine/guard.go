package machine

import (
	"fmt"
	"slices"
	"strings"
)

// Member is one machine of a cluster as the disruption guard sees it.
type Member struct {
	Name, Rack string
	Roles      []string
	// Down is true when the machine is already unavailable: powered off,
	// cordoned, being reimaged, restarted or replaced, or failed.
	Down bool
}

// GuardPolicy is a cluster's budget for disruption.
type GuardPolicy struct {
	MaxUnavailablePerRack int // 0 (or less) means no limit
}

// The rules of a Refusal.
const (
	RuleMaxUnavailable     = "maxUnavailable"
	RuleControlPlaneQuorum = "controlPlaneQuorum"
	RuleUnknownMachine     = "unknownMachine"
)

// Refusal is the disruption guard's reason to keep a machine up. Machines
// are those already down that stand in the way.
type Refusal struct {
	Rule     string
	Machines []string
	Message  string
}

func (r *Refusal) Error() string { return r.Message }

// CheckDisruption decides whether target may go down (power off, restart,
// reimage, replace, cordon with evacuate, update) and returns nil when it
// may. A target that is already down is always allowed, so a retried action
// is not refused by its own effect. Otherwise, with target down:
//
//   - the control-plane members still up must be a quorum, floor(n/2)+1 of
//     the n control-plane members (checked first: losing the control plane
//     is the worse outcome);
//   - target's rack may have at most policy.MaxUnavailablePerRack machines
//     down.
//
// A target that is not a member is refused: the guard does not allow what
// it cannot see.
func CheckDisruption(members []Member, target string, policy GuardPolicy) *Refusal {
	t := -1
	for i := range members {
		if members[i].Name == target {
			t = i
			break
		}
	}
	if t < 0 {
		return &Refusal{Rule: RuleUnknownMachine, Message: fmt.Sprintf("cannot take %q down: it is not a machine of the cluster", target)}
	}
	tm := members[t]
	if tm.Down {
		return nil
	}

	if hasRole(tm.Roles, RoleControlPlane) {
		var total int
		var up, down []string
		for i, m := range members {
			if !hasRole(m.Roles, RoleControlPlane) {
				continue
			}
			total++
			switch {
			case m.Down:
				down = append(down, m.Name)
			case i != t:
				up = append(up, m.Name)
			}
		}
		if quorum := total/2 + 1; len(up) < quorum {
			msg := fmt.Sprintf("cannot take control-plane machine %q down: %d of the %d control-plane machines would stay up (%s) and a quorum needs %d",
				target, len(up), total, list(up), quorum)
			if len(down) > 0 {
				msg += fmt.Sprintf("; already down: %s", list(down))
			}
			return &Refusal{Rule: RuleControlPlaneQuorum, Machines: down, Message: msg}
		}
	}

	if limit := policy.MaxUnavailablePerRack; limit > 0 {
		var down []string
		for _, m := range members {
			if m.Down && m.Rack == tm.Rack {
				down = append(down, m.Name)
			}
		}
		if len(down)+1 > limit {
			return &Refusal{Rule: RuleMaxUnavailable, Machines: down, Message: fmt.Sprintf(
				"cannot take %q down: rack %q allows at most %d unavailable machines and %d already are (%s)",
				target, tm.Rack, limit, len(down), list(down))}
		}
	}
	return nil
}

// list names machines in a message, eliding a long list.
func list(names []string) string {
	const most = 10
	switch {
	case len(names) == 0:
		return "none"
	case len(names) > most:
		return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
	}
	return strings.Join(names, ", ")
}

// hasRole reports whether roles holds role, ignoring case.
func hasRole(roles []string, role string) bool {
	return slices.ContainsFunc(roles, func(r string) bool { return strings.EqualFold(r, role) })
}

// ReadyState is a machine's readyState, "True" when it takes workloads:
// it is provisioned, on and not cordoned, and its agent, once it has
// reported, is alive (liveness "" before the first report, then "Ready").
func ReadyState(detailedStatus, powerState, cordonStatus, liveness string) string {
	if detailedStatus == "Provisioned" && powerState == "On" && cordonStatus != "Cordoned" &&
		(liveness == "" || liveness == "Ready") {
		return "True"
	}
	return "False"
}
