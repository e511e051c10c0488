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
