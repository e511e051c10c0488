package host

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent/vm"
	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// Sim is a simulated machine: it reports the inventory it was given and
// runs its VMs with vm.Sim.
// Tests and the fleet simulator change that inventory with SetInventory
// to inject faults the agent should report, such as a failed DIMM
// (MemoryBytes shrinks) or a pulled disk. It is safe for concurrent use.
type Sim struct {
	mu       sync.Mutex
	inv      agentapi.Inventory
	desired  agentapi.Desired
	updates  UpdateBehavior
	failNext bool
	vms      *vm.Sim // its VMs, which RunVMs runs
}

// UpdateBehavior is how a simulated machine's updates go: switching to
// another cluster version takes Duration and fails with the probability
// FailureRate (0 to 1).
type UpdateBehavior struct {
	Duration    time.Duration
	FailureRate float64
}

// SetUpdateBehavior sets how the machine's next updates go.
func (s *Sim) SetUpdateBehavior(b UpdateBehavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates = b
}

// FailNextUpdate makes the machine's next update fail.
func (s *Sim) FailNextUpdate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = true
}

// NewSim returns a simulated machine that reports inv.
func NewSim(inv agentapi.Inventory) *Sim {
	return &Sim{inv: clone(inv), vms: vm.NewSim()}
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
	inv.Runtime.Staged = slices.Clone(inv.Runtime.Staged)
	return inv
}

// Apply records the desired state, which Desired returns, and switches
// the machine to the desired cluster version as UpdateBehavior says. The
// first version it is given is the one its OS image was installed with.
// An update that failed stays failed (the machine keeps its version and
// reports why) until the desired version changes.
func (s *Sim) Apply(ctx context.Context, d agentapi.Desired) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.desired = d
	rt := &s.inv.Runtime
	switch {
	case d.ClusterVersion == "" || d.ClusterVersion == rt.ClusterVersion || rt.ClusterVersion == "":
		rt.ClusterVersion = cmp.Or(d.ClusterVersion, rt.ClusterVersion)
		rt.UpdateVersion, rt.UpdateError = "", ""
		s.mu.Unlock()
		return nil
	case rt.UpdateVersion == d.ClusterVersion && rt.UpdateError != "":
		s.mu.Unlock()
		return nil
	}
	b := s.updates
	fail := s.failNext || rand.Float64() < b.FailureRate
	s.failNext = false
	s.mu.Unlock()

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.Duration):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt = &s.inv.Runtime
	if fail {
		rt.UpdateVersion = d.ClusterVersion
		rt.UpdateError = fmt.Sprintf("the update from %s to %s failed (simulated)", rt.ClusterVersion, d.ClusterVersion)
		return nil
	}
	rt.ClusterVersion, rt.UpdateVersion, rt.UpdateError = d.ClusterVersion, "", ""
	for _, a := range d.Artifacts {
		if !slices.Contains(rt.Staged, a.SHA256) {
			rt.Staged = append(rt.Staged, a.SHA256)
		}
	}
	return nil
}

// Desired is the desired state last applied.
func (s *Sim) Desired() agentapi.Desired {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.desired
}
