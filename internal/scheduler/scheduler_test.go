package scheduler

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const nc = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.NetworkCloud/"

func machineID(name string) string { return nc + "bareMetalMachines/" + name }
func rackID(name string) string    { return nc + "racks/" + name }
func vmID(name string) string      { return nc + "virtualMachines/" + name }
func netID(name string) string     { return nc + "l3Networks/" + name }
func applID(name string) string    { return nc + "storageAppliances/" + name }

// idle is an empty, ready machine with 64 cores, 256 GiB, AVX-512, the
// network "prod" and the appliance "sa1".
func idle(name, rack string) Machine {
	return Machine{
		ID: machineID(name), Rack: rackID(rack), Ready: true,
		Cores: 64, MemoryMiB: 256 << 10,
		Features:   []string{"avx512f"},
		Networks:   []string{netID("prod")},
		Appliances: []string{applID("sa1")},
	}
}

// four is m1 and m2 in rack r1, m3 and m4 in rack r2. With no changes, a
// small VM goes to m1.
func four() []Machine {
	return []Machine{idle("m1", "r1"), idle("m2", "r1"), idle("m3", "r2"), idle("m4", "r2")}
}

func small() Request {
	return Request{VM: vmID("new"), Cores: 4, MemoryMiB: 16 << 10}
}

func hint(t HintType, e Execution, s Scope, target string) Hint {
	return Hint{Type: t, Execution: e, Scope: s, Target: target}
}

func snapshot(t testing.TB, ms []Machine) *Snapshot {
	t.Helper()
	s, err := NewSnapshot(ms)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	return s
}

func TestPlace(t *testing.T) {
	tests := []struct {
		name   string
		fleet  func(ms []Machine)
		req    func(r *Request)
		want   string // machine name
		reason string // the one line of a NoFitError instead
	}{
		{name: "lowest ID on an idle fleet", want: "m1"},
		{name: "not ready", fleet: func(ms []Machine) { ms[0].Ready = false }, want: "m2"},
		{name: "cordoned", fleet: func(ms []Machine) { ms[0].Cordoned = true }, want: "m2"},
		{name: "free cores", fleet: func(ms []Machine) { ms[0].UsedCores = 61 }, want: "m2"},
		{name: "exactly enough cores", fleet: func(ms []Machine) { ms[0].UsedCores = 60 }, req: func(r *Request) { r.Hints = []Hint{hint(Affinity, Hard, MachineScope, machineID("m1"))} }, want: "m1"},
		{name: "free memory", fleet: func(ms []Machine) { ms[0].UsedMemoryMiB = 250 << 10 }, want: "m2"},
		{
			name:  "feature, case-insensitive",
			fleet: func(ms []Machine) { ms[3].Features = append(ms[3].Features, "amx_tile") },
			req:   func(r *Request) { r.Features = []string{"AMX_tile", "avx512f"} },
			want:  "m4",
		},
		{
			name:  "GPUs",
			fleet: func(ms []Machine) { ms[2].GPUs, ms[3].GPUs = 1, 2 },
			req:   func(r *Request) { r.GPUs = 2 },
			want:  "m4",
		},
		{
			name:  "network",
			fleet: func(ms []Machine) { ms[2].Networks = append(ms[2].Networks, netID("db")) },
			req:   func(r *Request) { r.Networks = []string{netID("prod"), strings.ToUpper(netID("db"))} },
			want:  "m3",
		},
		{
			name:  "appliance",
			fleet: func(ms []Machine) { ms[1].Appliances = []string{applID("sa2")} },
			req:   func(r *Request) { r.Appliance = applID("sa2") },
			want:  "m2",
		},
		{
			name: "Hard machine affinity beats spreading",
			fleet: func(ms []Machine) {
				ms[0].VMs = []string{vmID("a"), vmID("b")}
			},
			req:  func(r *Request) { r.Hints = []Hint{hint(Affinity, Hard, MachineScope, machineID("m2"))} },
			want: "m2",
		},
		{
			name: "Hard rack affinity",
			req:  func(r *Request) { r.Hints = []Hint{hint(Affinity, Hard, RackScope, rackID("r2"))} },
			want: "m3",
		},
		{
			name: "rack target with machine scope is the rack",
			req:  func(r *Request) { r.Hints = []Hint{hint(Affinity, Hard, MachineScope, rackID("r2"))} },
			want: "m3",
		},
		{
			name: "machine target with rack scope is its rack",
			req:  func(r *Request) { r.Hints = []Hint{hint(AntiAffinity, Hard, RackScope, machineID("m2"))} },
			want: "m3",
		},
		{
			name: "Hard machine anti-affinity",
			req:  func(r *Request) { r.Hints = []Hint{hint(AntiAffinity, Hard, MachineScope, machineID("m1"))} },
			want: "m2",
		},
		{
			name: "Hard rack anti-affinity",
			req:  func(r *Request) { r.Hints = []Hint{hint(AntiAffinity, Hard, RackScope, rackID("r1"))} },
			want: "m3",
		},
		{
			name:  "Hard VM affinity, machine scope",
			fleet: func(ms []Machine) { ms[3].VMs = []string{vmID("db")} },
			req:   func(r *Request) { r.Hints = []Hint{hint(Affinity, Hard, MachineScope, vmID("db"))} },
			want:  "m4",
		},
		{
			name:  "Hard VM affinity, rack scope",
			fleet: func(ms []Machine) { ms[3].VMs = []string{vmID("db")} },
			req:   func(r *Request) { r.Hints = []Hint{hint(Affinity, Hard, RackScope, vmID("db"))} },
			want:  "m3",
		},
		{
			name:  "Hard VM anti-affinity, rack scope, case-insensitive",
			fleet: func(ms []Machine) { ms[1].VMs = []string{vmID("db")} },
			req: func(r *Request) {
				r.Hints = []Hint{{Type: "antiaffinity", Execution: "HARD", Scope: "rack", Target: strings.ToUpper(vmID("db"))}}
			},
			want: "m3",
		},
		{
			name: "two Hard affinities intersect",
			req: func(r *Request) {
				r.Hints = []Hint{hint(Affinity, Hard, RackScope, rackID("r2")), hint(Affinity, Hard, MachineScope, machineID("m4"))}
			},
			want: "m4",
		},
		{
			name: "Hard affinity and anti-affinity",
			req: func(r *Request) {
				r.Hints = []Hint{hint(Affinity, Hard, RackScope, rackID("r2")), hint(AntiAffinity, Hard, MachineScope, machineID("m3"))}
			},
			want: "m4",
		},
		{
			name:  "Soft affinity beats spreading",
			fleet: func(ms []Machine) { ms[3].VMs = []string{vmID("a"), vmID("b")} },
			req:   func(r *Request) { r.Hints = []Hint{hint(Affinity, Soft, MachineScope, machineID("m4"))} },
			want:  "m4",
		},
		{
			name:  "Soft affinity to a full machine falls back",
			fleet: func(ms []Machine) { ms[3].UsedCores = 64 },
			req:   func(r *Request) { r.Hints = []Hint{hint(Affinity, Soft, MachineScope, machineID("m4"))} },
			want:  "m1",
		},
		{
			name: "Soft rack anti-affinity",
			req:  func(r *Request) { r.Hints = []Hint{hint(AntiAffinity, Soft, RackScope, rackID("r1"))} },
			want: "m3",
		},
		{
			name:  "Soft anti-affinity with nowhere else to go",
			fleet: func(ms []Machine) { ms[2].Ready, ms[3].Ready = false, false },
			req:   func(r *Request) { r.Hints = []Hint{hint(AntiAffinity, Soft, RackScope, rackID("r1"))} },
			want:  "m1",
		},
		{
			name: "the most Soft hints win",
			req: func(r *Request) {
				r.Hints = []Hint{
					hint(Affinity, Soft, RackScope, rackID("r2")),
					hint(AntiAffinity, Soft, MachineScope, machineID("m3")),
					hint(AntiAffinity, Soft, RackScope, rackID("r1")),
				}
			},
			want: "m4",
		},
		{
			name: "Soft hints to unknown targets change nothing",
			req: func(r *Request) {
				r.Hints = []Hint{hint(Affinity, Soft, RackScope, rackID("nowhere")), hint(AntiAffinity, Hard, MachineScope, vmID("unplaced"))}
			},
			want: "m1",
		},
		{
			name:  "spread: fewest VMs in the rack",
			fleet: func(ms []Machine) { ms[1].VMs = []string{vmID("a")} },
			want:  "m3",
		},
		{
			name: "spread counts VMs, not load",
			fleet: func(ms []Machine) {
				ms[0].VMs, ms[0].UsedCores = []string{vmID("a")}, 2
				ms[2].VMs, ms[2].UsedCores = []string{vmID("b"), vmID("c")}, 2
			},
			want: "m2",
		},
		{
			name:  "least loaded machine",
			fleet: func(ms []Machine) { ms[0].UsedCores, ms[1].UsedCores, ms[2].UsedCores = 8, 8, 4 },
			want:  "m4",
		},
		{
			name: "load is the fuller of cores and memory",
			fleet: func(ms []Machine) {
				ms[0].UsedMemoryMiB, ms[1].UsedCores, ms[2].UsedCores, ms[3].UsedCores = 160<<10, 32, 36, 40
			},
			want: "m2",
		},
		{
			name:  "a machine with no allocatable memory is full",
			fleet: func(ms []Machine) { ms[0].MemoryMiB, ms[1].UsedCores, ms[2].UsedCores, ms[3].UsedCores = 0, 1, 1, 1 },
			req:   func(r *Request) { r.MemoryMiB = 0 },
			want:  "m2",
		},
		{
			name:   "nothing fits",
			fleet:  func(ms []Machine) { ms[0].Cordoned, ms[1].Ready = true, false },
			req:    func(r *Request) { r.Hints = []Hint{hint(AntiAffinity, Hard, RackScope, rackID("r2"))} },
			reason: "0/4 machines: 2 excluded by rack anti-affinity, 1 not ready, 1 cordoned",
		},
		{
			name:   "Hard affinity to an unknown machine",
			req:    func(r *Request) { r.Hints = []Hint{hint(Affinity, Hard, MachineScope, machineID("m9"))} },
			reason: "0/4 machines: 4 excluded by machine affinity",
		},
		{
			name:   "feature no machine has",
			req:    func(r *Request) { r.Features = []string{"avx512f", "amx_tile"} },
			reason: "0/4 machines: 4 lacking feature amx_tile",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms := four()
			if tc.fleet != nil {
				tc.fleet(ms)
			}
			req := small()
			if tc.req != nil {
				tc.req(&req)
			}
			got, err := snapshot(t, ms).Place(req)
			if tc.reason != "" {
				if _, ok := errors.AsType[*NoFitError](err); !ok || err.Error() != tc.reason {
					t.Fatalf("Place = %q, %v; want NoFitError %q", got, err, tc.reason)
				}
				return
			}
			if err != nil || got != machineID(tc.want) {
				t.Fatalf("Place = %q, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestNoFitError(t *testing.T) {
	// 48 machines in four racks of 12: r1 excluded by a Hard rack
	// anti-affinity, 16 machines of the others cordoned, 20 full.
	var ms []Machine
	for r := range 4 {
		for k := range 12 {
			m := idle(string(rune('a'+r))+string(rune('a'+k)), "r"+string(rune('1'+r)))
			n := r*12 + k
			switch {
			case n < 12: // r1
			case n < 28:
				m.Cordoned = true
			default:
				m.UsedMemoryMiB = m.MemoryMiB - 63<<10
			}
			ms = append(ms, m)
		}
	}
	s := snapshot(t, ms)
	req := Request{Cores: 8, MemoryMiB: 64 << 10, Hints: []Hint{hint(AntiAffinity, Hard, RackScope, rackID("r1"))}}
	_, err := s.Place(req)
	e, ok := errors.AsType[*NoFitError](err)
	if !ok {
		t.Fatalf("Place = %v, want a *NoFitError", err)
	}
	want := &NoFitError{Total: 48, Reasons: []Reason{
		{12, "excluded by rack anti-affinity"},
		{16, "cordoned"},
		{20, "lacking 64 GiB free memory"},
	}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("Place: NoFitError (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), "0/48 machines: 12 excluded by rack anti-affinity, 16 cordoned, 20 lacking 64 GiB free memory"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestNoFitErrorReasons(t *testing.T) {
	tests := []struct {
		name  string
		empty bool
		fleet func(ms []Machine)
		req   Request
		want  string
	}{
		{
			name:  "empty fleet",
			empty: true,
			want:  "0/0 machines",
		},
		{
			name: "filters in order, the first failing one counts",
			fleet: func(ms []Machine) {
				ms[0].Ready, ms[0].Cordoned, ms[1].UsedCores, ms[3].Cordoned = false, true, 64, true
			},
			req:  Request{Cores: 1, MemoryMiB: 1536, GPUs: 1},
			want: "0/4 machines: 1 not ready, 1 cordoned, 2 lacking 1 free GPU",
		},
		{
			name: "cores, then memory",
			fleet: func(ms []Machine) {
				ms[0].UsedCores = 63
				ms[1].UsedCores, ms[1].UsedMemoryMiB = 63, 256<<10
				ms[2].UsedMemoryMiB, ms[3].UsedMemoryMiB = 255<<10, 255<<10
			},
			req:  Request{Cores: 2, MemoryMiB: 1536},
			want: "0/4 machines: 2 lacking 2 free cores, 2 lacking 1536 MiB free memory",
		},
		{
			name: "features in request order, networks and appliance by name",
			fleet: func(ms []Machine) {
				ms[0].Features = []string{"avx512f", "amx_tile"}
				ms[1].Features = nil
				ms[3].Appliances = nil
			},
			req:  Request{Features: []string{"avx512f", "amx_tile"}, Networks: []string{netID("prod"), netID("db")}, Appliance: applID("sa1")},
			want: "0/4 machines: 1 lacking feature avx512f, 2 lacking feature amx_tile, 1 lacking network db",
		},
		{
			name: "appliance",
			fleet: func(ms []Machine) {
				ms[3].Appliances = nil
				ms[0].Cordoned, ms[1].Cordoned, ms[2].Cordoned = true, true, true
			},
			req:  Request{Appliance: applID("sa1")},
			want: "0/4 machines: 3 cordoned, 1 unable to reach storage appliance sa1",
		},
		{
			name:  "same text, one reason",
			fleet: func(ms []Machine) { ms[1].UsedCores = 64 },
			req: Request{Cores: 1, Hints: []Hint{
				hint(AntiAffinity, Hard, MachineScope, machineID("m3")),
				hint(AntiAffinity, Soft, MachineScope, machineID("m1")),
				hint(AntiAffinity, Hard, MachineScope, machineID("m4")),
				hint(AntiAffinity, Hard, MachineScope, machineID("m1")),
			}},
			want: "0/4 machines: 3 excluded by machine anti-affinity, 1 lacking 1 free core",
		},
		{
			name: "affinity to an unplaced VM, by scope",
			req:  Request{Hints: []Hint{hint(Affinity, Hard, RackScope, vmID("nowhere"))}},
			want: "0/4 machines: 4 excluded by rack affinity",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms := four()
			if tc.fleet != nil {
				tc.fleet(ms)
			}
			if tc.empty {
				ms = nil
			}
			got, err := snapshot(t, ms).Place(tc.req)
			e, ok := errors.AsType[*NoFitError](err)
			if !ok || err.Error() != tc.want {
				t.Fatalf("Place = %q, %v; want NoFitError %q", got, err, tc.want)
			}
			n := 0
			for _, r := range e.Reasons {
				n += r.Count
			}
			if n != e.Total || e.Total != len(ms) {
				t.Errorf("NoFitError counts %d machines of %d, want %d", n, e.Total, len(ms))
			}
		})
	}
}

func TestPlaceInvalid(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"hint type", Request{Hints: []Hint{hint("Attraction", Hard, MachineScope, machineID("m1"))}}, `placement hint 0: hintType "Attraction"`},
		{"execution", Request{Hints: []Hint{hint(Affinity, Soft, RackScope, rackID("r1")), hint(Affinity, "Firm", MachineScope, machineID("m1"))}}, `placement hint 1: schedulingExecution "Firm"`},
		{"scope", Request{Hints: []Hint{hint(Affinity, Hard, "Row", machineID("m1"))}}, `placement hint 0: scope "Row"`},
		{"target", Request{Hints: []Hint{hint(Affinity, Hard, MachineScope, "")}}, `placement hint 0: no resourceId`},
		{"negative", Request{VM: "x", Cores: -1}, `negative cores`},
	}
	s := snapshot(t, four())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Place(tc.req)
			if _, nofit := errors.AsType[*NoFitError](err); err == nil || nofit || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Place = %q, %v; want an error starting %q", got, err, tc.want)
			}
		})
	}
}

func TestNewSnapshotInvalid(t *testing.T) {
	tests := []struct {
		name  string
		fleet func(ms []Machine)
		want  string
	}{
		{"no ID", func(ms []Machine) { ms[2].ID = "" }, "machine 2 has no ID"},
		{"same ID", func(ms []Machine) { ms[2].ID = strings.ToUpper(ms[0].ID) }, "appears twice"},
		{"same VM", func(ms []Machine) { ms[0].VMs, ms[3].VMs = []string{vmID("a")}, []string{vmID("A")} }, "is on machines"},
		{"negative", func(ms []Machine) { ms[1].UsedCores = -2 }, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms := four()
			tc.fleet(ms)
			if _, err := NewSnapshot(ms); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSnapshot = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCommit(t *testing.T) {
	s := snapshot(t, four())
	place := func(req Request) string {
		t.Helper()
		id, err := s.Place(req)
		if err != nil {
			t.Fatalf("Place(%s) = %v", req.VM, err)
		}
		if err := s.Commit(id, req); err != nil {
			t.Fatalf("Commit(%s, %s) = %v", id, req.VM, err)
		}
		return strings.TrimPrefix(id, machineID(""))
	}
	big := func(name string, hints ...Hint) Request {
		return Request{VM: vmID(name), Cores: 40, MemoryMiB: 8 << 10, Hints: hints}
	}

	// A batch sees its own placements: spread over racks, then machines.
	if got := []string{place(big("a")), place(big("b")), place(big("c")), place(big("d"))}; !cmp.Equal(got, []string{"m1", "m3", "m2", "m4"}) {
		t.Errorf("placed a, b, c, d on %v, want [m1 m3 m2 m4]", got)
	}
	// ... and names them in hints.
	if got := place(Request{VM: vmID("e"), Cores: 1, Hints: []Hint{hint(Affinity, Hard, MachineScope, vmID("C"))}}); got != "m2" {
		t.Errorf("placed e with d on %s, want m2", got)
	}
	// Every machine has 24 cores left, m2 has 23.
	if _, err := s.Place(big("f")); err == nil || err.Error() != "0/4 machines: 4 lacking 40 free cores" {
		t.Errorf("Place(f) = %v, want 4 lacking 40 free cores", err)
	}

	for _, tc := range []struct {
		name, machine string
		req           Request
		want          string
	}{
		{"unknown machine", machineID("m9"), Request{VM: vmID("g")}, "is not in the snapshot"},
		{"placed twice", machineID("m4"), Request{VM: vmID("A")}, "is already on machine"},
		{"overbooked", machineID("m2"), Request{VM: vmID("g"), Cores: 24}, "has 23 free cores"},
		{"negative", machineID("m2"), Request{VM: vmID("g"), MemoryMiB: -1}, "negative"},
	} {
		if err := s.Commit(tc.machine, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Commit(%s) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestEpochWraps checks that the marks of a Place 2³² Places ago do not
// count once the epoch wraps.
func TestEpochWraps(t *testing.T) {
	s := snapshot(t, four())
	s.epoch = math.MaxUint32
	s.machDenied[0], s.rackDenied[0] = 1, 1 // marks of Place number 1
	if got, err := s.Place(small()); err != nil || got != machineID("m1") {
		t.Fatalf("Place = %q, %v; want m1", got, err)
	}
	req := small()
	req.Hints = []Hint{hint(AntiAffinity, Hard, MachineScope, machineID("m1"))}
	if got, err := s.Place(req); err != nil || got != machineID("m2") {
		t.Fatalf("Place(not m1) = %q, %v; want m2", got, err)
	}
}
