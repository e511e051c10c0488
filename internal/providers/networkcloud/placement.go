package networkcloud

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/scheduler"
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
func (v *placementView) books(vm string) bool { return lists(v.VirtualMachines, vm) }

// lists says whether a machine's list of VMs has the VM.
func lists(list []bookedVM, vm string) bool {
	return slices.ContainsFunc(list, func(x bookedVM) bool { return strings.EqualFold(x.ID, vm) })
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
	// released counts the reservations that ended without the projection
	// showing their booking: each makes the fleet smaller than the
	// snapshot of it counts.
	released uint64
	// kept is the snapshot the last placement chose from.
	kept *keptSnapshot
	// fleet is every machine as the projection had it at version
	// fleetVersion (see fleetNow).
	fleet        []resource.Projected[placementView]
	fleetVersion uint64
}

// keptSnapshot is a cluster's machines indexed for the scheduler as
// placement counts them (withReserved), kept for the next placement: a
// snapshot indexes every VM of the cluster, and between two placements
// usually nothing changed but the bookings placement itself made, which
// the snapshot counts since they were chosen. Before it is used again,
// each machine whose projection moved since is compared with what the
// snapshot counts of it; any difference, a machine more or less, or a
// reservation released, and the snapshot is built afresh. So a placement
// sees the fleet as a fresh snapshot would (Hard hints depend on it),
// but for the GPUs of a VM placed and not yet booked, which a fresh
// snapshot does not count (a reservation does not know which GPUs the
// booking will give) and the kept one does.
type keptSnapshot struct {
	cluster, from string
	snapshot      *scheduler.Snapshot
	machines      map[string]counted // by lower-case ID
	released      uint64             // memory.released when it was built
}

// counted is one machine of a keptSnapshot.
type counted struct {
	revision    int64 // of the projection it was last compared at
	schedulable bool
	machine     scheduler.Machine // what the snapshot counts of it, if schedulable
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

// fleetNow returns every machine as the projection has it now, copied
// out of the projection only when it changed since the last call: the
// caller holds m.mu, and must not change what it returns.
func (m *memory) fleetNow() []resource.Projected[placementView] {
	if m.fleet == nil || m.machines.Version() != m.fleetVersion {
		m.fleet, m.fleetVersion = m.machines.All()
	}
	return m.fleet
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
				m.released++
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

// snapshot returns the cluster's machines of all indexed for the
// scheduler, with describe saying what each is to it (false: it takes no
// VMs), and machine from taking none: the last placement's snapshot if
// the fleet is still as it counts it, else a new one. The caller holds
// m.mu, and commits what it places to the snapshot with commit.
func (m *memory) snapshot(all []resource.Projected[placementView], cluster, from string,
	describe func(id string, v placementView, from string) (scheduler.Machine, bool)) (*scheduler.Snapshot, error) {
	if f := m.kept; f != nil && f.cluster == cluster && f.from == from && f.released == m.released && m.keptStill(all, describe) {
		return f.snapshot, nil
	}
	f := &keptSnapshot{cluster: cluster, from: from, released: m.released, machines: map[string]counted{}}
	var machines []scheduler.Machine
	for _, pm := range all {
		if !strings.EqualFold(pm.Properties.ClusterID, cluster) {
			continue
		}
		sm, ok := describe(pm.ID, m.withReserved(pm), from)
		if ok {
			machines = append(machines, sm)
		}
		f.machines[strings.ToLower(pm.ID)] = counted{revision: pm.Revision, schedulable: ok, machine: sm}
	}
	snapshot, err := scheduler.NewSnapshot(machines)
	if err != nil {
		m.kept = nil
		return nil, err
	}
	f.snapshot, m.kept = snapshot, f
	return snapshot, nil
}

// keptStill says whether the cluster's machines are still as m.kept
// counts them, noting the projection revision it compared each at.
func (m *memory) keptStill(all []resource.Projected[placementView], describe func(id string, v placementView, from string) (scheduler.Machine, bool)) bool {
	f, n := m.kept, 0
	for _, pm := range all {
		if !strings.EqualFold(pm.Properties.ClusterID, f.cluster) {
			continue
		}
		n++
		key := strings.ToLower(pm.ID)
		c, ok := f.machines[key]
		if !ok {
			return false
		}
		if c.revision == pm.Revision {
			continue
		}
		sm, schedulable := describe(pm.ID, m.withReserved(pm), f.from)
		if schedulable != c.schedulable || schedulable && !sameMachine(sm, c.machine) {
			return false
		}
		c.revision = pm.Revision
		f.machines[key] = c
	}
	return n == len(f.machines)
}

// commit counts req, placed on machine id, in the kept snapshot. A
// snapshot that refuses it is dropped: the next placement builds one.
func (m *memory) commit(id string, req scheduler.Request) {
	f := m.kept
	if f == nil {
		return
	}
	if err := f.snapshot.Commit(id, req); err != nil {
		m.kept = nil
		return
	}
	key := strings.ToLower(id)
	c := f.machines[key]
	c.machine.UsedCores += req.Cores
	c.machine.UsedMemoryMiB += req.MemoryMiB
	c.machine.GPUs -= req.GPUs
	c.machine.VMs = append(slices.Clip(c.machine.VMs), req.VM)
	f.machines[key] = c
}

// sameMachine says whether a and b describe a machine alike to the
// scheduler: the same room, state, features and VMs (in any order).
func sameMachine(a, b scheduler.Machine) bool {
	if !strings.EqualFold(a.ID, b.ID) || !strings.EqualFold(a.Rack, b.Rack) || a.Ready != b.Ready || a.Cordoned != b.Cordoned ||
		a.Cores != b.Cores || a.MemoryMiB != b.MemoryMiB || a.UsedCores != b.UsedCores || a.UsedMemoryMiB != b.UsedMemoryMiB || a.GPUs != b.GPUs ||
		!slices.Equal(a.Features, b.Features) || !slices.Equal(a.Networks, b.Networks) || !slices.Equal(a.Appliances, b.Appliances) ||
		len(a.VMs) != len(b.VMs) {
		return false
	}
	folded := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = strings.ToLower(id)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(folded(a.VMs), folded(b.VMs))
}
