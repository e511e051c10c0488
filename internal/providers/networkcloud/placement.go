package networkcloud

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/citadel-cloud/citadel/internal/resource"
)

// Placement and provisioning read from memory what they would otherwise
// read from the store again and again: projections of the machines (what
// the scheduler needs of each, with the VMs booked on it) and of the VMs
// (what their hosts report), kept current by watches. A placement reads
// no machine from the store to choose one, and a provisioning waits for
// its VM's report on the projection rather than polling.
//
// Concurrent placements on one replica see each other: a machine chosen
// counts the VM from the moment it is chosen until the projection shows
// the booking (or the booking failed), so they spread over the machines
// instead of all choosing the least loaded one and retrying its
// compare-and-swap. That compare-and-swap of the machine's list of VMs
// remains the guard: whatever the projection, or another replica's
// bookings, no machine is ever overbooked.

// placementView is what placement reads of a machine.
type placementView struct {
	ClusterID      string   `json:"clusterId"`
	MachineRoles   []string `json:"machineRoles"`
	RackID         string   `json:"rackId"`
	MachineSkuID   string   `json:"machineSkuId"`
	DetailedStatus string   `json:"detailedStatus"`
	PowerState     string   `json:"powerState"`
	LivenessState  string   `json:"livenessState"`
	CordonStatus   string   `json:"cordonStatus"`
	AgentInventory struct {
		CPU struct {
			Flags []string `json:"flags"`
		} `json:"cpu"`
		GPUs []struct {
			PCIAddress string `json:"pciAddress"`
		} `json:"gpus"`
	} `json:"agentInventory"`
	VirtualMachines []bookedVM `json:"virtualMachines"`
}

// bookedVM is what placement counts of a VM booked on a machine.
type bookedVM struct {
	ID        string   `json:"id"`
	Cores     int      `json:"cores"`
	MemoryMiB int      `json:"memoryMiB"`
	GPUs      []string `json:"gpus"`
	Evicted   bool     `json:"evicted"` // moving off the machine, which keeps its room until it is gone
}

// books says whether the machine's list has the VM.
func (v *placementView) books(vm string) bool {
	for _, x := range v.VirtualMachines {
		if strings.EqualFold(x.ID, vm) {
			return true
		}
	}
	return false
}

// vmReport is what a VM's host reports of it, as its resource holds it:
// what provisioning and actions wait for.
type vmReport struct {
	PowerState       string `json:"powerState"`
	DetailedStatus   string `json:"detailedStatus"`
	ReportedRestarts int    `json:"reportedRestarts"`
	ReportedReimages int    `json:"reportedReimages"`
	Evicted          bool   `json:"evicted"`
}

// memory is the provider's projections and its placements in flight.
type memory struct {
	machines *resource.Projection[placementView]
	vms      *resource.Projection[vmReport]

	mu sync.Mutex
	// reserved are the VMs chosen for a machine, by lower-case machine
	// ID, until the projection shows the machine at the revision that
	// booked them (revision 0: the booking is under way).
	reserved map[string][]reservation
}

type reservation struct {
	vm       bookedVM
	revision int64
}

var errNotStarted = errors.New("networkcloud: the provider's projections are not started")

// Start starts the projections placement and provisioning read, until
// ctx ends; they are loaded when it returns.
func (p *Provider) Start(ctx context.Context) error {
	machines, err := resource.MirrorProjection[placementView](ctx, p.svc, machineType)
	if err != nil {
		return err
	}
	vms, err := resource.MirrorProjection[vmReport](ctx, p.svc, vmType)
	if err != nil {
		return err
	}
	p.mem.Store(&memory{machines: machines, vms: vms, reserved: map[string][]reservation{}})
	return nil
}

// memory returns the projections, once started.
func (p *Provider) memory() (*memory, error) {
	m := p.mem.Load()
	if m == nil {
		return nil, errNotStarted
	}
	return m, nil
}

// reserve counts vm on machine until its booking is seen or released.
// The caller holds m.mu.
func (m *memory) reserve(machine string, vm bookedVM) {
	key := strings.ToLower(machine)
	m.reserved[key] = append(m.reserved[key], reservation{vm: vm})
}

// booked records the revision that booked vm on machine: the reservation
// ends once the projection shows the machine at that revision. A
// revision of 0 (the booking failed, or found the VM there already) ends
// it now.
func (m *memory) booked(machine, vm string, revision int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := strings.ToLower(machine)
	list := m.reserved[key]
	for i := range list {
		if strings.EqualFold(list[i].vm.ID, vm) {
			if revision > 0 {
				list[i].revision = revision
			} else {
				list = append(list[:i], list[i+1:]...)
			}
			break
		}
	}
	if len(list) == 0 {
		delete(m.reserved, key)
	} else {
		m.reserved[key] = list
	}
}

// withReserved is the machine's view as placement counts it: its booked
// VMs and those reserved on it that the view does not show yet. It drops
// the reservations the view shows. The caller holds m.mu.
func (m *memory) withReserved(p resource.Projected[placementView]) placementView {
	key := strings.ToLower(p.ID)
	list, ok := m.reserved[key]
	if !ok {
		return p.Properties
	}
	v := p.Properties
	kept := list[:0]
	for _, r := range list {
		if r.revision > 0 && p.Revision >= r.revision {
			continue // the projection shows the booking now
		}
		kept = append(kept, r)
		if !v.books(r.vm.ID) {
			v.VirtualMachines = append(v.VirtualMachines[:len(v.VirtualMachines):len(v.VirtualMachines)], r.vm)
		}
	}
	if len(kept) == 0 {
		delete(m.reserved, key)
	} else {
		m.reserved[key] = kept
	}
	return v
}
