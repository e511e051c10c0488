package networkcloud

import (
	"maps"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// moveEnv is three Ready compute machines of one cluster, each in a rack
// of its own, and a VM of theirs.
type moveEnv struct {
	*netEnv
	machines [3]string
	vm       string
	entry    agentapi.VM
}

func newMoveEnv(t *testing.T) *moveEnv {
	t.Helper()
	e := &moveEnv{netEnv: newNetEnv(t), vm: testGroup + "/providers/" + vmType + "/vm1"}
	for i := range e.machines {
		e.machines[i] = testGroup + "/providers/" + machineType + "/m" + string(rune('1'+i))
		e.upsert(t, e.machines[i], map[string]any{"clusterId": clusterID, "machineRoles": []any{machine.RoleCompute},
			"machineSkuId": machine.SKUCompute, "rackId": testGroup + "/providers/" + rackType + "/r" + string(rune('1'+i)),
			"detailedStatus": "Provisioned", "powerState": "On", "livenessState": "Ready", "cordonStatus": "Uncordoned"})
	}
	e.entry = agentapi.VM{ID: e.vm, Name: "vm1", Power: "On", Cores: 4, MemoryMiB: 4096}
	e.upsert(t, e.vm, map[string]any{"clusterId": clusterID, "cpuCores": 4, "memorySizeGB": 4, "bareMetalMachineId": e.machines[0],
		"powerState": "On"})
	return e
}

// book lists the entries on machine i, as its hidden list.
func (e *moveEnv) book(t *testing.T, i int, entries ...agentapi.VM) {
	t.Helper()
	e.upsert(t, e.machines[i], map[string]any{machineVMs: jsonValue(entries)})
}

// state is where the VM is booked (machine index → entry) and the
// machine its resource names.
func (e *moveEnv) state(t *testing.T) (booked map[int]agentapi.VM, host string) {
	t.Helper()
	booked = map[int]agentapi.VM{}
	for i, id := range e.machines {
		m, err := e.p.lookup(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range hostedVMs(m) {
			if strings.EqualFold(x.ID, e.vm) {
				booked[i] = x
			}
		}
	}
	vm, err := e.p.lookup(t.Context(), e.vm)
	if err != nil {
		t.Fatal(err)
	}
	return booked, str(vm.Properties, "bareMetalMachineId")
}

// TestMoveVMResumes: a move off a fenced machine that a crash cut short,
// at any step, is finished by running it again: the VM ends booked on one
// machine, not evicted, and its resource names that machine.
func TestMoveVMResumes(t *testing.T) {
	evicted := func(v agentapi.VM) agentapi.VM { v.Evicted = true; return v }
	tests := []struct {
		name  string
		setup func(t *testing.T, e *moveEnv)
		entry func(e *moveEnv) agentapi.VM
		want  int // the machine it ends on; -1: either m2 or m3
	}{
		{name: "not started", setup: func(t *testing.T, e *moveEnv) { e.book(t, 0, e.entry) },
			entry: func(e *moveEnv) agentapi.VM { return e.entry }, want: -1},
		{name: "evicted, not booked", setup: func(t *testing.T, e *moveEnv) { e.book(t, 0, evicted(e.entry)) },
			entry: func(e *moveEnv) agentapi.VM { return evicted(e.entry) }, want: -1},
		{name: "its resource names m3, not booked there", setup: func(t *testing.T, e *moveEnv) {
			e.book(t, 0, evicted(e.entry))
			e.upsert(t, e.vm, map[string]any{"bareMetalMachineId": e.machines[2]})
		}, entry: func(e *moveEnv) agentapi.VM { return evicted(e.entry) }, want: -1},
		{name: "booked on m3, its resource not told", setup: func(t *testing.T, e *moveEnv) {
			e.book(t, 0, evicted(e.entry))
			e.book(t, 2, e.entry)
		}, entry: func(e *moveEnv) agentapi.VM { return evicted(e.entry) }, want: 2},
		{name: "its resource told, the old entry left", setup: func(t *testing.T, e *moveEnv) {
			e.book(t, 0, evicted(e.entry))
			e.book(t, 2, e.entry)
			e.upsert(t, e.vm, map[string]any{"bareMetalMachineId": e.machines[2]})
		}, entry: func(e *moveEnv) agentapi.VM { return evicted(e.entry) }, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMoveEnv(t)
			e.upsert(t, e.machines[0], map[string]any{"livenessState": "Failed"})
			tt.setup(t, e)
			to, err := e.p.moveVM(t.Context(), e.machines[0], tt.entry(e), true)
			if err != nil {
				t.Fatalf("moveVM: %v", err)
			}
			booked, host := e.state(t)
			if len(booked) != 1 {
				t.Fatalf("booked on %v, want one machine", booked)
			}
			for i, x := range booked {
				if i == 0 || tt.want >= 0 && i != tt.want || x.Evicted || x.Power != "On" {
					t.Errorf("booked on m%d as %+v, want m%d, not evicted, On", i+1, x, tt.want+1)
				}
				if !strings.EqualFold(host, e.machines[i]) || !strings.EqualFold(to.ID, e.machines[i]) {
					t.Errorf("moveVM returned %s and the VM names %s, want %s", to.ID, host, e.machines[i])
				}
			}
		})
	}
}

// TestMoveVMNoRoom: a VM that fits nowhere else stays where it was, and
// runs there again.
func TestMoveVMNoRoom(t *testing.T) {
	e := newMoveEnv(t)
	e.book(t, 0, e.entry)
	for i := 1; i < 3; i++ {
		e.upsert(t, e.machines[i], map[string]any{"cordonStatus": "Cordoned"})
	}
	m1, err := e.p.lookup(t.Context(), e.machines[0])
	if err != nil {
		t.Fatal(err)
	}
	err = e.p.evacuate(t.Context(), m1, true, func(string, string, int, int) { t.Error("a VM moved") })
	if err == nil || !strings.Contains(err.Error(), "vm1") || !strings.Contains(err.Error(), "cordoned") {
		t.Errorf("evacuate = %v, want vm1 named and why it fits nowhere", err)
	}
	booked, host := e.state(t)
	if x, ok := booked[0]; len(booked) != 1 || !ok || x.Evicted || !strings.EqualFold(host, e.machines[0]) {
		t.Errorf("after a move that found no room: booked %v, host %s; want on m1 only, not evicted", booked, host)
	}
}

// TestReturnEvicted: a Ready machine runs again the VMs a cut-short move
// left evicted on it, unless they are booked elsewhere or it is
// cordoned.
func TestReturnEvicted(t *testing.T) {
	e := newMoveEnv(t)
	other := e.entry
	other.ID, other.Name = testGroup+"/providers/"+vmType+"/vm2", "vm2"
	moved := e.entry
	moved.Evicted = true
	stranded := other
	stranded.Evicted = true
	e.book(t, 0, moved, stranded)
	e.book(t, 1, e.entry) // vm1 moved on to m2
	third := stranded
	third.ID, third.Name = testGroup+"/providers/"+vmType+"/vm3", "vm3"
	e.book(t, 2, third)
	e.upsert(t, e.machines[2], map[string]any{"cordonStatus": "Cordoned"}) // an evacuation under way

	proj, err := resource.MirrorProjection[failoverView](t.Context(), e.svc, machineType)
	if err != nil {
		t.Fatal(err)
	}
	machines, _ := proj.All()
	e.p.returnEvicted(t.Context(), machines)
	got := map[string]bool{} // "machine/vm" → evicted
	for _, id := range e.machines {
		m, err := e.p.lookup(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range hostedVMs(m) {
			got[m.Name+"/"+x.Name] = x.Evicted
		}
	}
	want := map[string]bool{"m1/vm1": true, "m1/vm2": false, "m2/vm1": false, "m3/vm3": true}
	if !maps.Equal(got, want) {
		t.Errorf("after returnEvicted: %v, want %v", got, want)
	}
}
