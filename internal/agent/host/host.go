// Package host is how `citadel agent` sees the machine it runs on. Linux
// reads the real machine from /proc, /sys and /etc; Sim is a simulated
// machine for the fleet simulator and tests, which run the same agent
// code. A Host reports its inventory and takes the desired state the
// control plane sends; a VMRunner also runs the VMs it lists.
//
// The agent, the fleet simulator (internal/sim) and main import it.
package host

import (
	"context"
	"io"

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

// Stager is a host that keeps a release's artifacts itself (the real
// machine; a simulated one only switches versions). Before Apply, the
// agent fetches each artifact of the desired state that is not Staged
// yet and hands it to Stage, which keeps it only if its length and
// sha256 are those given.
type Stager interface {
	Staged(sha256 string) bool
	Stage(ctx context.Context, a agentapi.Artifact, content io.Reader) error
}

var (
	_ Host   = (*Linux)(nil)
	_ Host   = (*Sim)(nil)
	_ Stager = (*Linux)(nil)
)
