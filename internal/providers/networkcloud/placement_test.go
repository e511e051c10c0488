package networkcloud

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/resource"
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
