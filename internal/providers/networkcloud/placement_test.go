package networkcloud

import (
	"testing"

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
