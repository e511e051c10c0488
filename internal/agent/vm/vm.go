// Package vm runs a machine's virtual machines for its agent. The agent
// hands Reconcile the VMs its desired state lists; the driver starts,
// stops, restarts and reimages them until what runs matches, removes the
// ones no longer listed, and reports each one's power state for the
// heartbeat.
//
// QEMU is the real driver: one qemu-system-x86_64 process per running
// VM, which outlives the agent. Sim keeps the same contract in memory,
// for the fleet simulator and tests.
//
// The agent and the simulator import it. It talks to the host only
// (processes, files, netlink), never to the control plane.
package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// Driver runs VMs.
type Driver interface {
	// Reconcile makes the running VMs match want: it starts what should
	// be On, stops what should be Off or is no longer wanted (removing
	// its files), restarts or reimages a VM whose count rose, and returns
	// the status of each wanted VM, in want's order. It is level-based
	// and idempotent: the agent calls it on every desired state and at
	// every heartbeat. A VM's own failure is in its status; the error is
	// for the rest (want itself, or a VM it could not remove).
	Reconcile(ctx context.Context, want []agentapi.VM) ([]agentapi.VMStatus, error)
	// Console is the VM's serial console log so far (consoles/default).
	Console(id string) ([]byte, error)
}

// The power states of agentapi.VM and agentapi.VMStatus.
const (
	On  = "On"
	Off = "Off"
)

// ErrNotFound is Console's error for a VM the driver does not have.
var ErrNotFound = errors.New("no such VM")

// key names a VM in the driver's files and in what the guest sees (its
// directory, cloud-init's instance-id, its taps): the first 8 bytes of
// the SHA-256 of its ID, in hex. An ARM ID is too long and holds slashes.
func key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8])
}

// isKey reports whether name is a key, so that the driver removes only
// directories it made.
func isKey(name string) bool {
	if len(name) != 16 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// checkWant rejects a want that names a VM twice: it would have two
// statuses.
func checkWant(want []agentapi.VM) error {
	seen := make(map[string]bool, len(want))
	for _, v := range want {
		if v.ID == "" {
			return errors.New("a VM has no ID")
		}
		if seen[v.ID] {
			return fmt.Errorf("vm %q is listed twice", v.ID)
		}
		seen[v.ID] = true
	}
	return nil
}

// check reports what makes v unrunnable by any driver.
func check(v agentapi.VM) error {
	switch {
	case v.Power != On && v.Power != Off:
		return fmt.Errorf("power %q: want %s or %s", v.Power, On, Off)
	case v.Cores < 1:
		return fmt.Errorf("cores %d: want at least 1", v.Cores)
	case v.MemoryMiB < 1:
		return fmt.Errorf("memoryMiB %d: want at least 1", v.MemoryMiB)
	}
	return nil
}
