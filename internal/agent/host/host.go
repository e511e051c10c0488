// Package host is how `citadel agent` sees the machine it runs on. Linux
// reads the real machine from /proc, /sys and /etc; Sim is a simulated
// machine for the fleet simulator and tests, which run the same agent
// code. Today a Host only reports its inventory; the methods that apply
// desired state (OS image, cordon) will join Inventory here.
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
}

var (
	_ Host = (*Linux)(nil)
	_ Host = (*Sim)(nil)
)
