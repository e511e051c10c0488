package host

import (
	"context"
	"slices"
	"sync"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// Sim is a simulated machine: it reports the inventory it was given.
// Tests and the fleet simulator change that inventory with SetInventory
// to inject faults the agent should report, such as a failed DIMM
// (MemoryBytes shrinks) or a pulled disk. It is safe for concurrent use.
type Sim struct {
	mu      sync.Mutex
	inv     agentapi.Inventory
	desired agentapi.Desired
}

// NewSim returns a simulated machine that reports inv.
func NewSim(inv agentapi.Inventory) *Sim {
	return &Sim{inv: clone(inv)}
}

// SetInventory replaces what the machine reports from now on.
func (s *Sim) SetInventory(inv agentapi.Inventory) {
	inv = clone(inv)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inv = inv
}

// Inventory returns a copy of the inventory, which the caller may change
// without changing the machine.
func (s *Sim) Inventory(ctx context.Context) (agentapi.Inventory, error) {
	if err := ctx.Err(); err != nil {
		return agentapi.Inventory{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.inv), nil
}

// clone copies inv deeply enough that no slice is shared with it.
func clone(inv agentapi.Inventory) agentapi.Inventory {
	inv.CPU.Flags = slices.Clone(inv.CPU.Flags)
	inv.Disks = slices.Clone(inv.Disks)
	inv.NICs = slices.Clone(inv.NICs)
	inv.GPUs = slices.Clone(inv.GPUs)
	return inv
}

// Apply records the desired state, which Desired returns.
func (s *Sim) Apply(ctx context.Context, d agentapi.Desired) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.desired = d
	return nil
}

// Desired is the desired state last applied.
func (s *Sim) Desired() agentapi.Desired {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.desired
}
