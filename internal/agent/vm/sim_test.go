package vm

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

func testVM(name string) agentapi.VM {
	return agentapi.VM{
		ID:   "/subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/virtualMachines/" + name,
		Name: name, Power: On, Cores: 1, MemoryMiB: 256,
		Image: agentapi.Artifact{Name: "tiny", Kind: "vmImage"}, BootMethod: "BIOS", OSType: "Linux",
	}
}

func TestSim(t *testing.T) {
	type step struct {
		name    string
		edit    func(v *agentapi.VM) // to the VM wanted, before the step
		fault   error                // the VM's fault from this step on
		wait    time.Duration        // before Reconcile
		absent  bool                 // want does not list the VM
		want    agentapi.VMStatus    // its ID is filled in
		console []string             // lines the console gained
	}
	tests := []struct {
		name     string
		bootTime time.Duration
		first    func(v *agentapi.VM) // the VM as first seen
		steps    []step
	}{
		{
			name: "lifecycle",
			steps: []step{
				{name: "start", want: agentapi.VMStatus{Power: On}, console: []string{"[sim] a starting (boot 1)", "[sim] a is up (boot 1)"}},
				{name: "again", want: agentapi.VMStatus{Power: On}},
				{name: "off", edit: func(v *agentapi.VM) { v.Power = Off }, want: agentapi.VMStatus{Power: Off}, console: []string{"[sim] a powered off"}},
				{name: "restart while off", edit: func(v *agentapi.VM) { v.Restarts = 1 }, want: agentapi.VMStatus{Power: Off, Restarts: 1}},
				{name: "on", edit: func(v *agentapi.VM) { v.Power = On }, want: agentapi.VMStatus{Power: On, Restarts: 1},
					console: []string{"[sim] a starting (boot 2)", "[sim] a is up (boot 2)"}},
				{name: "restart", edit: func(v *agentapi.VM) { v.Restarts = 2 }, want: agentapi.VMStatus{Power: On, Restarts: 2},
					console: []string{"[sim] a restarting (boot 3)", "[sim] a is up (boot 3)"}},
				{name: "reimage", edit: func(v *agentapi.VM) { v.Reimages = 1 }, want: agentapi.VMStatus{Power: On, Restarts: 2, Reimages: 1},
					console: []string{"[sim] a powered off for its reimage", "[sim] a reimaged from tiny", "[sim] a starting (boot 4)", "[sim] a is up (boot 4)"}},
			},
		},
		{
			name:     "boot time",
			bootTime: 30 * time.Second,
			steps: []step{
				{name: "starting", want: agentapi.VMStatus{Power: Off}, console: []string{"[sim] a starting (boot 1)"}},
				{name: "still booting", wait: 29 * time.Second, want: agentapi.VMStatus{Power: Off}},
				{name: "up", wait: time.Second, want: agentapi.VMStatus{Power: On}, console: []string{"[sim] a is up (boot 1)"}},
				{name: "restarting", edit: func(v *agentapi.VM) { v.Restarts = 1 }, want: agentapi.VMStatus{Power: Off, Restarts: 1},
					console: []string{"[sim] a restarting (boot 2)"}},
				{name: "up again", wait: 30 * time.Second, want: agentapi.VMStatus{Power: On, Restarts: 1}, console: []string{"[sim] a is up (boot 2)"}},
			},
		},
		{
			name:  "counts before it ran are not done again",
			first: func(v *agentapi.VM) { v.Restarts, v.Reimages = 3, 2 },
			steps: []step{
				{name: "start", want: agentapi.VMStatus{Power: On, Restarts: 3, Reimages: 2}, console: []string{"[sim] a starting (boot 1)", "[sim] a is up (boot 1)"}},
			},
		},
		{
			name: "fault",
			steps: []step{
				{name: "start", want: agentapi.VMStatus{Power: On}, console: []string{"[sim] a starting (boot 1)", "[sim] a is up (boot 1)"}},
				{name: "fails", fault: errors.New("host on fire"), want: agentapi.VMStatus{Power: Off, Error: "host on fire"},
					console: []string{"[sim] a failed: host on fire"}},
				{name: "stays failed", fault: errors.New("host on fire"), want: agentapi.VMStatus{Power: Off, Error: "host on fire"}},
				{name: "recovers", want: agentapi.VMStatus{Power: On}, console: []string{"[sim] a starting (boot 2)", "[sim] a is up (boot 2)"}},
			},
		},
		{
			name: "invalid",
			first: func(v *agentapi.VM) {
				v.Power = "Sideways"
			},
			steps: []step{
				{name: "power", want: agentapi.VMStatus{Power: Off, Error: `power "Sideways": want On or Off`}},
				{name: "cores", edit: func(v *agentapi.VM) { v.Power, v.Cores = On, 0 }, want: agentapi.VMStatus{Power: Off, Error: "cores 0: want at least 1"}},
			},
		},
		{
			name: "removed",
			steps: []step{
				{name: "start", want: agentapi.VMStatus{Power: On}, console: []string{"[sim] a starting (boot 1)", "[sim] a is up (boot 1)"}},
				{name: "gone", absent: true},
				{name: "new again", want: agentapi.VMStatus{Power: On}, console: []string{"[sim] a starting (boot 1)", "[sim] a is up (boot 1)"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewSim()
				s.SetBootTime(tt.bootTime)
				v := testVM("a")
				if tt.first != nil {
					tt.first(&v)
				}
				var seen int // of the console
				for _, st := range tt.steps {
					if st.edit != nil {
						st.edit(&v)
					}
					s.Fail(v.ID, st.fault)
					time.Sleep(st.wait)
					want := []agentapi.VM{v}
					if st.absent {
						want = nil
					}
					got, err := s.Reconcile(t.Context(), want)
					if err != nil {
						t.Fatalf("%s: Reconcile: %v", st.name, err)
					}
					if st.absent {
						if len(got) != 0 {
							t.Errorf("%s: Reconcile(none) = %v, want no statuses", st.name, got)
						}
						if _, err := s.Console(v.ID); !errors.Is(err, ErrNotFound) {
							t.Errorf("%s: Console of a removed VM: err = %v, want ErrNotFound", st.name, err)
						}
						seen = 0
						continue
					}
					st.want.ID = v.ID
					if diff := cmp.Diff([]agentapi.VMStatus{st.want}, got); diff != "" {
						t.Errorf("%s: Reconcile status (-want +got):\n%s", st.name, diff)
					}
					console, err := s.Console(v.ID)
					if err != nil {
						t.Fatalf("%s: Console: %v", st.name, err)
					}
					lines := strings.Split(strings.TrimSuffix(string(console), "\n"), "\n")
					if len(console) == 0 {
						lines = nil
					}
					if diff := cmp.Diff(st.console, lines[seen:], cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("%s: console lines gained (-want +got):\n%s", st.name, diff)
					}
					seen = len(lines)
				}
			})
		})
	}
}

func TestSimRejectsDuplicates(t *testing.T) {
	v := testVM("a")
	if _, err := NewSim().Reconcile(t.Context(), []agentapi.VM{v, v}); err == nil {
		t.Errorf("Reconcile(a VM twice) = nil error, want one")
	}
}

// TestSimPowerLoss: a host's power loss stops every VM; its agent's next
// reconcile starts again those that should run.
func TestSimPowerLoss(t *testing.T) {
	s := NewSim()
	a, b, c := testVM("a"), testVM("b"), testVM("c")
	c.Power = Off
	want := []agentapi.VM{a, b, c}
	if _, err := s.Reconcile(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	if got := s.Running(); !slices.Equal(got, sorted(a.ID, b.ID)) {
		t.Fatalf("Running() = %v, want a and b", got)
	}
	s.PowerLoss()
	if got := s.Running(); len(got) != 0 {
		t.Errorf("Running() after the power loss = %v, want none", got)
	}
	if log, _ := s.Console(a.ID); !strings.Contains(string(log), "[sim] a lost its host's power") {
		t.Errorf("a's console after the power loss:\n%s", log)
	}
	if _, err := s.Reconcile(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	if got := s.Running(); !slices.Equal(got, sorted(a.ID, b.ID)) {
		t.Errorf("Running() after the next reconcile = %v, want a and b", got)
	}
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// TestSimDisks: a simulated VM attaches its disks at its start, as QEMU
// does, and refuses the disks QEMU would.
func TestSimDisks(t *testing.T) {
	s := NewSim()
	v := testVM("a")
	osDisk, data := testDisk("os-1", true), testDisk("data-1", false)
	v.Disks = []agentapi.VMDisk{osDisk, data}
	step := func(name string, want agentapi.VMStatus, disks []agentapi.VMDisk) {
		t.Helper()
		got, err := s.Reconcile(t.Context(), []agentapi.VM{v})
		if err != nil {
			t.Fatalf("%s: Reconcile: %v", name, err)
		}
		want.ID = v.ID
		if diff := cmp.Diff([]agentapi.VMStatus{want}, got); diff != "" {
			t.Errorf("%s: Reconcile status (-want +got):\n%s", name, diff)
		}
		if diff := cmp.Diff(disks, s.Disks(v.ID), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: Disks (-want +got):\n%s", name, diff)
		}
	}

	step("start", agentapi.VMStatus{Power: On}, []agentapi.VMDisk{osDisk, data})
	moved := data
	moved.URI, moved.PSK = "nbd://10.0.0.6:24002/data-1", strings.Repeat("ab", 32)
	v.Disks = []agentapi.VMDisk{osDisk, moved}
	step("a disk moved: not until the next start", agentapi.VMStatus{Power: On}, []agentapi.VMDisk{osDisk, data})
	v.Power = Off
	step("off", agentapi.VMStatus{Power: Off}, []agentapi.VMDisk{osDisk, data})
	v.Power = On
	step("on again", agentapi.VMStatus{Power: On}, []agentapi.VMDisk{osDisk, moved})
	v.Reimages = 1
	step("reimage", agentapi.VMStatus{Power: On, Reimages: 1}, []agentapi.VMDisk{osDisk, moved})
	console, _ := s.Console(v.ID)
	for _, want := range []string{"[sim] a attaches disks os-1 (OS), data-1\n", "[sim] a reimaged from tiny onto its OS disk os-1\n"} {
		if !strings.Contains(string(console), want) {
			t.Errorf("the console lacks %q:\n%s", want, console)
		}
	}

	// Disks QEMU refuses keep the VM from starting, or from a reimage.
	v.Power = Off
	step("off", agentapi.VMStatus{Power: Off, Reimages: 1}, []agentapi.VMDisk{osDisk, moved})
	noURI := moved
	noURI.URI = ""
	v.Power, v.Disks = On, []agentapi.VMDisk{osDisk, noURI}
	step("no URI", agentapi.VMStatus{Power: Off, Reimages: 1,
		Error: "disk 1 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/data-1): no uri: want nbd://host:port/export"},
		[]agentapi.VMDisk{osDisk, moved})
	second := moved
	second.OS = true
	v.Disks, v.Reimages = []agentapi.VMDisk{osDisk, second}, 2
	step("a second OS disk", agentapi.VMStatus{Power: Off, Reimages: 1,
		Error: "disk 1 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/data-1): a second OS disk, after disk 0 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/os-1): a VM boots from one"},
		[]agentapi.VMDisk{osDisk, moved})
	v.Disks = nil
	step("no disks", agentapi.VMStatus{Power: On, Reimages: 2}, nil)
	if got := s.Disks("/nope"); got != nil {
		t.Errorf("Disks(a VM it does not have) = %v, want nil", got)
	}
}
