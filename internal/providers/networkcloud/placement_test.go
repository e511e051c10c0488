package networkcloud

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/scheduler"
)

// TestReservations: a VM chosen for a machine counts there until the
// projection shows the machine at the revision that booked it, or at
// once no longer when its booking failed.
func TestReservations(t *testing.T) {
	m := &memory{reserved: map[string][]reservation{}}
	const machine = "/subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/bareMetalMachines/m1"
	view := func(revision int64, vms ...string) resource.Projected[placementView] {
		p := resource.Projected[placementView]{ID: machine, Revision: revision}
		for _, vm := range vms {
			p.Properties.VirtualMachines = append(p.Properties.VirtualMachines, bookedVM{ID: vm, Cores: 2, MemoryMiB: 1024})
		}
		return p
	}
	counted := func(p resource.Projected[placementView]) []string {
		var out []string
		for _, x := range m.withReserved(p).VirtualMachines {
			out = append(out, x.ID)
		}
		return out
	}
	m.reserve(machine, bookedVM{ID: "a", Cores: 2, MemoryMiB: 1024})
	m.reserve(machine, bookedVM{ID: "b", Cores: 2, MemoryMiB: 1024})
	if got := counted(view(10)); len(got) != 2 {
		t.Fatalf("while booking: %v, want a and b counted", got)
	}
	m.booked(machine, "a", 12) // booked at revision 12
	m.booked(machine, "B", 0)  // its booking failed
	if got := counted(view(11)); len(got) != 1 || got[0] != "a" {
		t.Errorf("booked at 12, the projection at 11: %v, want a counted", got)
	}
	if got := counted(view(12, "a")); len(got) != 1 || got[0] != "a" {
		t.Errorf("the projection at 12 shows a: %v, want a once", got)
	}
	if len(m.reserved) != 0 {
		t.Errorf("reservations left: %v, want none once the projection shows the booking", m.reserved)
	}
	// The projection shows a later state without the VM (deleted since):
	// the reservation does not keep counting it.
	m.reserve(machine, bookedVM{ID: "c"})
	m.booked(machine, "c", 20)
	if got := counted(view(25)); len(got) != 0 {
		t.Errorf("the projection past the booking, without c: %v, want nothing counted", got)
	}
}

// TestBookedVMs: reading a machine's list of VMs straight from its
// generic JSON gives what decoding it into bookedVM does, for every field
// placement counts.
func TestBookedVMs(t *testing.T) {
	t.Parallel()
	for name, list := range map[string][]agentapi.VM{
		"none":  nil,
		"empty": {},
		"plain": {{ID: "/vm/a", Name: "a", Power: "On", Cores: 2, MemoryMiB: 2048, UserData: "#cloud-config\n"}},
		"several": {
			{ID: "/vm/a", Cores: 4, MemoryMiB: 8192, GPUs: []string{"0000:3b:00.0", "0000:3c:00.0"}},
			{ID: "/vm/B", Cores: 1, MemoryMiB: 512, Evicted: true, Disks: []agentapi.VMDisk{{}}},
			{ID: "/vm/c"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := &resource.Resource{Properties: map[string]any{}}
			if list != nil {
				m.Properties[machineVMs] = jsonValue(list)
			}
			var want []bookedVM
			decode(m.Properties[machineVMs], &want)
			if got := bookedVMs(m); !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
				t.Errorf("bookedVMs = %+v, want %+v", got, want)
			}
			for _, x := range list {
				if !hosts(m, strings.ToUpper(x.ID)) {
					t.Errorf("hosts(%s) = false, want true", x.ID)
				}
			}
			if hosts(m, "/vm/z") {
				t.Error("hosts(/vm/z) = true, want false")
			}
		})
	}
}

// TestFleetSnapshot drives the placement memory through random bookings
// that land, fail or are deleted, machines cordoned and uncordoned, and
// machines that join, and checks that every placement from the kept
// snapshot chooses what a snapshot built afresh from the same fleet
// chooses, Hard anti-affinity to earlier VMs included.
func TestFleetSnapshot(t *testing.T) {
	t.Parallel()
	const cluster = "/c"
	describe := func(id string, v placementView, from string) (scheduler.Machine, bool) {
		sm := scheduler.Machine{ID: id, Rack: v.RackID, Ready: true, Cordoned: v.CordonStatus == "Cordoned" || strings.EqualFold(id, from),
			Cores: 16, MemoryMiB: 64 << 10}
		for _, x := range v.VirtualMachines {
			sm.UsedCores, sm.UsedMemoryMiB = sm.UsedCores+x.Cores, sm.UsedMemoryMiB+x.MemoryMiB
			sm.VMs = append(sm.VMs, x.ID)
		}
		return sm, true
	}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		m := &memory{reserved: map[string][]reservation{}}
		var fleet []resource.Projected[placementView]
		rev := int64(1)
		addMachine := func() {
			rev++
			k := len(fleet)
			fleet = append(fleet, resource.Projected[placementView]{ID: fmt.Sprintf("/m/M%d", k), Revision: rev,
				Properties: placementView{ClusterID: cluster, RackID: fmt.Sprintf("/r/%d", k%3)}})
		}
		for range 6 {
			addMachine()
		}
		type inFlight struct {
			machine int
			vm      bookedVM
		}
		var flying []inFlight
		var placed []string
		var last *scheduler.Snapshot
		kept, built := 0, 0
		for step := range 300 {
			switch op := rng.IntN(10); {
			case op < 5: // place a VM, maybe Hard anti-affine to an earlier one
				vm := fmt.Sprintf("/vm/%d-%d", seed, step)
				req := scheduler.Request{VM: vm, Cores: 1 + rng.IntN(4), MemoryMiB: 1024 << rng.IntN(3)}
				if len(placed) > 0 && rng.IntN(2) == 0 {
					req.Hints = []scheduler.Hint{{Type: scheduler.AntiAffinity, Execution: scheduler.Hard,
						Scope: scheduler.MachineScope, Target: placed[rng.IntN(len(placed))]}}
				}
				var fresh []scheduler.Machine
				for _, pm := range fleet {
					sm, _ := describe(pm.ID, m.withReserved(pm), "")
					fresh = append(fresh, sm)
				}
				want, werr := mustSnapshot(t, fresh).Place(req)
				s, err := m.snapshot(fleet, cluster, "", describe)
				if err != nil {
					t.Fatal(err)
				}
				if s == last {
					kept++
				} else {
					built++
				}
				last = s
				got, gerr := s.Place(req)
				if got != want || (gerr == nil) != (werr == nil) {
					t.Fatalf("seed %d step %d: the kept snapshot places %s on %q (%v), a fresh one on %q (%v)", seed, step, vm, got, gerr, want, werr)
				}
				if gerr != nil {
					continue
				}
				m.commit(got, req)
				b := bookedVM{ID: vm, Cores: req.Cores, MemoryMiB: req.MemoryMiB}
				m.reserve(got, b)
				i := slices.IndexFunc(fleet, func(pm resource.Projected[placementView]) bool { return pm.ID == got })
				flying = append(flying, inFlight{i, b})
				placed = append(placed, vm)
			case op < 7 && len(flying) > 0: // a booking lands, or fails
				f := flying[0]
				flying = flying[1:]
				if rng.IntN(4) == 0 {
					m.booked(fleet[f.machine].ID, f.vm.ID, 0)
					continue
				}
				rev++
				m.booked(fleet[f.machine].ID, f.vm.ID, rev)
				pm := &fleet[f.machine]
				pm.Revision = rev
				pm.Properties.VirtualMachines = append(slices.Clip(pm.Properties.VirtualMachines), f.vm)
			case op == 7: // a VM is deleted
				pm := &fleet[rng.IntN(len(fleet))]
				if n := len(pm.Properties.VirtualMachines); n > 0 {
					rev++
					pm.Revision = rev
					pm.Properties.VirtualMachines = slices.Delete(slices.Clone(pm.Properties.VirtualMachines), n-1, n)
				}
			case op == 8: // cordon or uncordon
				rev++
				pm := &fleet[rng.IntN(len(fleet))]
				pm.Revision = rev
				pm.Properties.CordonStatus = map[bool]string{true: "Cordoned", false: "Uncordoned"}[pm.Properties.CordonStatus != "Cordoned"]
			case op == 9 && len(fleet) < 12:
				addMachine()
			}
		}
		if kept == 0 || built == 0 {
			t.Errorf("seed %d: %d placements from a kept snapshot, %d from a new one; want both", seed, kept, built)
		}
	}
}

func mustSnapshot(t *testing.T, machines []scheduler.Machine) *scheduler.Snapshot {
	t.Helper()
	s, err := scheduler.NewSnapshot(machines)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPlaceSeesMachinesChange: placement reads the machines as they are
// now, not as the placement before it saw them.
func TestPlaceSeesMachinesChange(t *testing.T) {
	e := newMoveEnv(t)
	message := func(m *resource.Resource) string { return "on " + m.Name }
	place := func(name string) string {
		t.Helper()
		vm := &resource.Resource{ID: testGroup + "/providers/" + vmType + "/" + name}
		e.upsert(t, vm.ID, map[string]any{"clusterId": clusterID})
		spec := func(*resource.Resource) (agentapi.VM, error) {
			return agentapi.VM{ID: vm.ID, Name: name, Power: "On", Cores: 2, MemoryMiB: 2048}, nil
		}
		m, _, err := e.p.place(t.Context(), vm, vmProperties{ClusterID: clusterID, CPUCores: 2, MemorySizeGB: 2}, spec, "", message)
		if err != nil {
			t.Fatalf("place %s: %v", name, err)
		}
		return m.ID
	}
	place("first")
	for _, m := range e.machines[1:] {
		e.upsert(t, m, map[string]any{"cordonStatus": "Cordoned"})
	}
	for i := range 3 {
		if got := place(fmt.Sprint("after", i)); got != e.machines[0] {
			t.Errorf("after%d placed on %s, want %s, the only machine not cordoned", i, got, e.machines[0])
		}
	}
}
