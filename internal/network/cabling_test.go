package network

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A small fabric by hand: one CE ("nf1-AggrRack-CE1", hostname "ce1")
// with two uplinks to one ToR ("t1"), whose Ethernet8 and Ethernet12 go
// to the eth0 of the servers in slots 1 and 2 of CompRack1.
var (
	ce0  = Endpoint{Device: "nf1-AggrRack-CE1", Port: "Ethernet0"}
	ce4  = Endpoint{Device: "nf1-AggrRack-CE1", Port: "Ethernet4"}
	t0   = Endpoint{Device: "t1", Port: "Ethernet0"}
	t4   = Endpoint{Device: "t1", Port: "Ethernet4"}
	t8   = Endpoint{Device: "t1", Port: "Ethernet8"}
	t12  = Endpoint{Device: "t1", Port: "Ethernet12"}
	t16  = Endpoint{Device: "t1", Port: "Ethernet16"}
	srv1 = Endpoint{Rack: "CompRack1", Slot: 1, Port: "eth0"}
	srv2 = Endpoint{Rack: "CompRack1", Slot: 2, Port: "eth0"}
)

func handTopology() Topology {
	return Topology{
		Racks: []Rack{{Name: "AggrRack", Type: RackAggregate}, {Name: "CompRack1", Type: RackCompute, Index: 1}},
		Devices: []Device{
			{Name: "nf1-AggrRack-CE1", Rack: "AggrRack", Role: RoleCE, Hostname: "ce1",
				Ports: []Port{{Name: "Ethernet0", Kind: "downlink"}, {Name: "Ethernet4", Kind: "downlink"}}},
			{Name: "t1", Rack: "CompRack1", Role: RoleToR, Hostname: "t1",
				Ports: []Port{{Name: "Ethernet0", Kind: "uplink"}, {Name: "Ethernet4", Kind: "uplink"},
					{Name: "Ethernet8", Kind: "server"}, {Name: "Ethernet12", Kind: "server"}, {Name: "Ethernet16", Kind: "unused"}}},
		},
		Links: []Link{{A: ce0, B: t0}, {A: ce4, B: t4}, {A: t8, B: srv1}, {A: t12, B: srv2}},
	}
}

// hears is an observation at end at of the system's port.
func hears(at Endpoint, system, port string) Observation {
	return Observation{At: at, SystemName: system, PortID: port}
}

// cabledRight is what a correctly cabled hand topology reports.
func cabledRight() []Observation {
	return []Observation{
		hears(ce0, "t1", "Ethernet0"), hears(ce4, "t1", "Ethernet4"),
		hears(t0, "ce1", "Ethernet0"), hears(t4, "ce1", "Ethernet4"),
		hears(t8, "compute-1", "eth0"), hears(t12, "compute-2", "eth0"),
		hears(srv1, "t1", "Ethernet8"), hears(srv2, "t1", "Ethernet12"),
	}
}

// with replaces the observations at the ends it names.
func with(obs []Observation, change ...Observation) []Observation {
	out := slices.Clone(obs)
	for _, c := range change {
		i := slices.IndexFunc(out, func(o Observation) bool { return o.At == c.At })
		if i < 0 {
			out = append(out, c)
		} else {
			out[i] = c
		}
	}
	return out
}

func without(obs []Observation, at ...Endpoint) []Observation {
	return slices.DeleteFunc(slices.Clone(obs), func(o Observation) bool { return slices.Contains(at, o.At) })
}

func TestValidateCabling(t *testing.T) {
	tests := []struct {
		name     string
		observed []Observation
		want     []CablingFault
	}{
		{name: "all correct", observed: cabledRight()},
		{name: "nothing reported", observed: nil},
		{name: "servers only", observed: []Observation{hears(srv1, "t1", "Ethernet8"), hears(srv2, "t1", "Ethernet12")}},
		{name: "hostnames ignore case", observed: with(cabledRight(), hears(srv1, "T1", "Ethernet8"))},
		{
			name:     "server cables swapped",
			observed: with(cabledRight(), hears(srv1, "t1", "Ethernet12"), hears(srv2, "t1", "Ethernet8")),
			want: []CablingFault{{Kind: CablingSwapped, Ports: []Endpoint{t8, t12},
				Message: "cables swapped at t1: Ethernet8 reaches CompRack1 slot 2 eth0, Ethernet12 reaches CompRack1 slot 1 eth0"}},
		},
		{
			name: "uplinks crossed, heard from both ends",
			observed: with(cabledRight(),
				hears(ce0, "t1", "Ethernet4"), hears(ce4, "t1", "Ethernet0"),
				hears(t0, "ce1", "Ethernet4"), hears(t4, "ce1", "Ethernet0")),
			want: []CablingFault{{Kind: CablingSwapped, Ports: []Endpoint{ce0, ce4},
				Message: "cables swapped at ce1: Ethernet0 reaches t1:Ethernet4, Ethernet4 reaches t1:Ethernet0"}},
		},
		{
			name:     "half a swap is heard",
			observed: without(with(cabledRight(), hears(srv1, "t1", "Ethernet12")), srv2),
			want: []CablingFault{{Kind: CablingMiscabled, Ports: []Endpoint{srv1, t12, t8, srv2},
				Message: "CompRack1 slot 1 eth0 reaches t1:Ethernet12, expected t1:Ethernet8; t1:Ethernet12 should reach CompRack1 slot 2 eth0"}},
		},
		{
			name:     "server on an unused port",
			observed: with(cabledRight(), hears(srv1, "t1", "Ethernet16"), hears(t8, "", "")),
			want: []CablingFault{{Kind: CablingMiscabled, Ports: []Endpoint{srv1, t16, t8},
				Message: "CompRack1 slot 1 eth0 reaches t1:Ethernet16, expected t1:Ethernet8"}},
		},
		{
			name: "uplink on the wrong CE port, heard from both ends",
			observed: with(without(cabledRight(), ce4, t4),
				hears(t0, "ce1", "Ethernet4"), hears(ce4, "t1", "Ethernet0"), hears(ce0, "", "")),
			want: []CablingFault{{Kind: CablingMiscabled, Ports: []Endpoint{t0, ce4, ce0, t4},
				Message: "t1:Ethernet0 reaches nf1-AggrRack-CE1:Ethernet4, expected nf1-AggrRack-CE1:Ethernet0; nf1-AggrRack-CE1:Ethernet4 should reach t1:Ethernet4"}},
		},
		{
			name:     "port up hearing nothing",
			observed: with(without(cabledRight(), srv2), hears(t12, "", "")),
			want: []CablingFault{{Kind: CablingMissing, Ports: []Endpoint{t12, srv2},
				Message: "no cable between t1:Ethernet12 and CompRack1 slot 2 eth0: t1:Ethernet12 is up but hears nothing"}},
		},
		{
			name:     "both ends up hearing nothing",
			observed: with(cabledRight(), hears(ce4, "", ""), hears(t4, "", "")),
			want: []CablingFault{{Kind: CablingMissing, Ports: []Endpoint{ce4, t4},
				Message: "no cable between nf1-AggrRack-CE1:Ethernet4 and t1:Ethernet4: both are up but hear nothing"}},
		},
		{
			name:     "silent end whose far end hears it",
			observed: with(cabledRight(), hears(t12, "", "")),
		},
		{
			name:     "unknown system at a server",
			observed: with(cabledRight(), hears(srv1, "t9", "Ethernet8")),
			want: []CablingFault{{Kind: CablingMiscabled, Ports: []Endpoint{srv1, t8},
				Message: `CompRack1 slot 1 eth0 reaches unknown system "t9" port Ethernet8, expected t1:Ethernet8`}},
		},
		{
			name:     "unknown system at an uplink",
			observed: with(without(cabledRight(), ce0), hears(t0, "spine7", "")),
			want: []CablingFault{{Kind: CablingMiscabled, Ports: []Endpoint{t0, ce0},
				Message: `t1:Ethernet0 reaches unknown system "spine7", expected nf1-AggrRack-CE1:Ethernet0`}},
		},
		{
			name:     "a switch port hears a switch instead of its server",
			observed: with(without(cabledRight(), srv1), hears(t8, "ce1", "Ethernet9")),
			want: []CablingFault{{Kind: CablingMiscabled, Ports: []Endpoint{t8, {Device: "nf1-AggrRack-CE1", Port: "Ethernet9"}, srv1},
				Message: "t1:Ethernet8 reaches nf1-AggrRack-CE1:Ethernet9, expected CompRack1 slot 1 eth0"}},
		},
		{
			name:     "unplanned ports are not judged",
			observed: with(cabledRight(), hears(t16, "ce1", "Ethernet9"), hears(Endpoint{Rack: "CompRack1", Slot: 9, Port: "eth0"}, "t9", "x")),
		},
		{
			name: "faults in link order",
			observed: with(cabledRight(), hears(srv1, "t1", "Ethernet12"), hears(srv2, "t1", "Ethernet8"),
				hears(ce0, "", ""), hears(t0, "", "")),
			want: []CablingFault{
				{Kind: CablingMissing, Ports: []Endpoint{ce0, t0},
					Message: "no cable between nf1-AggrRack-CE1:Ethernet0 and t1:Ethernet0: both are up but hear nothing"},
				{Kind: CablingSwapped, Ports: []Endpoint{t8, t12},
					Message: "cables swapped at t1: Ethernet8 reaches CompRack1 slot 2 eth0, Ethernet12 reaches CompRack1 slot 1 eth0"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ValidateCabling(handTopology(), tt.observed)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ValidateCabling(%v) mismatch (-want +got):\n%s", tt.observed, diff)
			}
			// The order of the reports does not matter.
			reversed := slices.Clone(tt.observed)
			slices.Reverse(reversed)
			if diff := cmp.Diff(got, ValidateCabling(handTopology(), reversed)); diff != "" {
				t.Errorf("ValidateCabling depends on the order of observations (-forward +reversed):\n%s", diff)
			}
		})
	}
}

func TestEndpointString(t *testing.T) {
	tests := []struct {
		e    Endpoint
		want string
	}{
		{Endpoint{Device: "nf1-CompRack1-TOR1", Port: "Ethernet8"}, "nf1-CompRack1-TOR1:Ethernet8"},
		{Endpoint{Rack: "CompRack1", Slot: 2, Port: "eth0"}, "CompRack1 slot 2 eth0"},
	}
	for _, tt := range tests {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

// benchFabric lays out racks compute racks of servers servers, each with
// eth0 on the rack's TOR1 and eth1 on TOR2, and each ToR with an uplink
// to each of two CEs; and what LLDP reports when all is cabled right.
func benchFabric(racks, servers int) (Topology, []Observation) {
	var topo Topology
	var obs []Observation
	wire := func(a, b Endpoint, aHears, bHears Observation) {
		topo.Links = append(topo.Links, Link{A: a, B: b})
		obs = append(obs, aHears, bHears)
	}
	for c := 1; c <= 2; c++ {
		topo.Devices = append(topo.Devices, Device{Name: fmt.Sprintf("nf1-AggrRack-CE%d", c), Hostname: fmt.Sprintf("ce%d", c), Role: RoleCE})
	}
	for r := 1; r <= racks; r++ {
		rack := fmt.Sprintf("CompRack%d", r)
		for k := 1; k <= 2; k++ {
			tor := fmt.Sprintf("nf1-%s-TOR%d", rack, k)
			host := fmt.Sprintf("r%dtor%d", r, k)
			topo.Devices = append(topo.Devices, Device{Name: tor, Rack: rack, Hostname: host, Role: RoleToR})
			for c := 1; c <= 2; c++ {
				cePort := fmt.Sprintf("Ethernet%d", 8*r+4*k)
				up := Endpoint{Device: tor, Port: fmt.Sprintf("Ethernet%d", 124+4*c)}
				down := Endpoint{Device: fmt.Sprintf("nf1-AggrRack-CE%d", c), Port: cePort}
				wire(up, down, hears(up, fmt.Sprintf("ce%d", c), cePort), hears(down, host, up.Port))
			}
			for s := 1; s <= servers; s++ {
				port := Endpoint{Device: tor, Port: fmt.Sprintf("Ethernet%d", 4*s)}
				nic := Endpoint{Rack: rack, Slot: s, Port: fmt.Sprintf("eth%d", k-1)}
				wire(port, nic, hears(port, fmt.Sprintf("compute-%d-%d", r, s), nic.Port), hears(nic, host, port.Port))
			}
		}
	}
	return topo, obs
}

func BenchmarkValidateCabling(b *testing.B) {
	topo, obs := benchFabric(8, 16)
	// Two server cables swapped in rack 3, and a port that hears nothing.
	obs = with(obs,
		hears(Endpoint{Rack: "CompRack3", Slot: 1, Port: "eth0"}, "r3tor1", "Ethernet8"),
		hears(Endpoint{Rack: "CompRack3", Slot: 2, Port: "eth0"}, "r3tor1", "Ethernet4"),
		hears(Endpoint{Rack: "CompRack5", Slot: 7, Port: "eth1"}, "", ""),
		hears(Endpoint{Device: "nf1-CompRack5-TOR2", Port: "Ethernet28"}, "", ""))
	if n := len(topo.Links); n != 8*2*(2+16) {
		b.Fatalf("bench fabric has %d links", n)
	}
	for b.Loop() {
		if faults := ValidateCabling(topo, obs); len(faults) != 2 {
			b.Fatalf("ValidateCabling() = %v, want a swap and a missing cable", faults)
		}
	}
}
