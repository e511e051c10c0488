// Package host is how `citadel agent` sees the machine it runs on. Linux
// reads the real machine from /proc, /sys and /etc; Sim is a simulated
// machine for the fleet simulator and tests, which run the same agent
// code. A Host reports its inventory and takes the desired state the
// control plane sends.
//
// The agent, the fleet simulator (internal/sim) and main import it.
package host

import (
	"context"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// Host is one machine as its agent sees it.
type Host interface {
	// Inventory reads what the machine is now. Two calls on an unchanged
	// machine return equal values, so the agent reports only changes.
	Inventory(ctx context.Context) (agentapi.Inventory, error)
	// Apply brings the machine to the desired state. What it can do on
	// its own machine it does; the rest (a new OS image comes through the
	// BMC) it records for the machine's tools to see.
	Apply(ctx context.Context, d agentapi.Desired) error
}

var (
	_ Host = (*Linux)(nil)
	_ Host = (*Sim)(nil)
)
