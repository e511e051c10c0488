package network

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// addrs lets cmp compare addresses and prefixes.
var cmpAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func planSpec(racks, servers int, prefix string) FabricSpec {
	return FabricSpec{Name: "nf1", ASN: 65500, ManagementPrefix: netip.MustParsePrefix(prefix), ComputeRacks: racks, ServersPerRack: servers}
}

func TestPlanFabric(t *testing.T) {
	tests := []struct {
		name    string
		spec    FabricSpec
		devices int
	}{
		{"smallest", planSpec(1, 1, "10.0.0.0/28"), 6},
		{"four racks", planSpec(4, 16, "10.0.0.0/24"), 15},
		{"four racks in the smallest prefix", planSpec(4, 3, "192.168.4.0/26"), 15},
		{"largest", planSpec(8, 16, "10.1.0.0/26"), 27},
		{"large prefix", planSpec(2, 2, "10.0.0.0/8"), 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := PlanFabric(tt.spec)
			if err != nil {
				t.Fatalf("PlanFabric(%+v) error = %v", tt.spec, err)
			}
			if len(topo.Devices) != tt.devices {
				t.Errorf("PlanFabric(%+v) has %d devices, want %d", tt.spec, len(topo.Devices), tt.devices)
			}
			if len(topo.Racks) != tt.spec.ComputeRacks+1 {
				t.Errorf("PlanFabric(%+v) has %d racks, want %d", tt.spec, len(topo.Racks), tt.spec.ComputeRacks+1)
			}
			// The CEs' peer and management cables, then per rack four
			// uplinks, two peer cables, two management cables and three
			// per server.
			wantLinks := 4 + tt.spec.ComputeRacks*(8+3*tt.spec.ServersPerRack)
			if len(topo.Links) != wantLinks {
				t.Errorf("PlanFabric(%+v) has %d links, want %d", tt.spec, len(topo.Links), wantLinks)
			}
			checkTopology(t, tt.spec, topo)
			again, _ := PlanFabric(tt.spec)
			if diff := cmp.Diff(topo, again, cmpAddrs); diff != "" {
				t.Errorf("PlanFabric(%+v) twice differs (-first +second):\n%s", tt.spec, diff)
			}
		})
	}
}

// checkTopology checks what holds for every planned fabric: each port in
// at most one link, links between ports that exist, port kinds that match
// the cabling, PE ports (uncabled) on the CEs only, and unique addresses
// inside the prefix.
func checkTopology(t *testing.T, spec FabricSpec, topo Topology) {
	t.Helper()
	ports := map[string]string{} // "device/port" → kind
	for _, d := range topo.Devices {
		if d.Hostname != strings.ToLower(d.Name) {
			t.Errorf("%s: hostname %q, want %q", d.Name, d.Hostname, strings.ToLower(d.Name))
		}
		var pe []string
		for _, p := range d.Ports {
			ports[d.Name+"/"+p.Name] = p.Kind
			if p.Kind == PortPE {
				pe = append(pe, p.Name)
			}
		}
		var want []string
		if d.Role == RoleCE {
			want = []string{"Ethernet112", "Ethernet116"}
		}
		if !slices.Equal(pe, want) {
			t.Errorf("%s (%s): PE ports %v, want %v", d.Name, d.Role, pe, want)
		}
	}
	used := map[string]int{}
	for i, l := range topo.Links {
		for _, e := range []Endpoint{l.A, l.B} {
			id := fmt.Sprintf("%s/%s", e.Device, e.Port)
			if e.Device == "" {
				id = fmt.Sprintf("%s/%d/%s", e.Rack, e.Slot, e.Port)
				if e.Slot < 1 || e.Slot > spec.ServersPerRack {
					t.Errorf("link %d: server slot %d out of range", i, e.Slot)
				}
			} else if kind, ok := ports[id]; !ok {
				t.Errorf("link %d: %s does not exist", i, id)
			} else if kind == PortUnused || kind == PortPE {
				t.Errorf("link %d: %s is cabled but its kind is %q", i, id, kind)
			}
			if j, dup := used[id]; dup {
				t.Errorf("%s is in links %d and %d", id, j, i)
			}
			used[id] = i
		}
	}
	for id, kind := range ports {
		if _, cabled := used[id]; !cabled && kind != PortUnused && kind != PortPE {
			t.Errorf("%s is not cabled but its kind is %q", id, kind)
		}
	}
	seen := map[netip.Addr]string{}
	for _, d := range topo.Devices {
		for _, a := range []netip.Addr{d.ManagementIP, d.Loopback} {
			if !a.IsValid() {
				if d.Role != RoleManagement {
					t.Errorf("%s (%s) lacks an address", d.Name, d.Role)
				}
				continue
			}
			if !spec.ManagementPrefix.Contains(a) {
				t.Errorf("%s: %s is outside %s", d.Name, a, spec.ManagementPrefix)
			}
			if other, dup := seen[a]; dup {
				t.Errorf("%s and %s both have %s", other, d.Name, a)
			}
			seen[a] = d.Name
		}
	}
}

func TestPlanFabricLayout(t *testing.T) {
	topo, err := PlanFabric(planSpec(2, 2, "10.0.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range topo.Devices {
		names = append(names, fmt.Sprintf("%s %s %s %s %s %d", d.Name, d.Rack, d.Role, d.ManagementIP, d.Loopback, d.ASN))
	}
	want := []string{
		"nf1-AggrRack-CE1 AggrRack CE 10.0.0.1 10.0.0.129 65500",
		"nf1-AggrRack-CE2 AggrRack CE 10.0.0.2 10.0.0.130 65500",
		"nf1-AggrRack-MgmtSwitch AggrRack Management 10.0.0.3 invalid IP 0",
		"nf1-CompRack1-TOR1 CompRack1 ToR 10.0.0.4 10.0.0.132 65001",
		"nf1-CompRack1-TOR2 CompRack1 ToR 10.0.0.5 10.0.0.133 65001",
		"nf1-CompRack1-MgmtSwitch CompRack1 Management 10.0.0.6 invalid IP 0",
		"nf1-CompRack2-TOR1 CompRack2 ToR 10.0.0.7 10.0.0.135 65002",
		"nf1-CompRack2-TOR2 CompRack2 ToR 10.0.0.8 10.0.0.136 65002",
		"nf1-CompRack2-MgmtSwitch CompRack2 Management 10.0.0.9 invalid IP 0",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("PlanFabric devices mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Rack{{"AggrRack", RackAggregate, 0}, {"CompRack1", RackCompute, 1}, {"CompRack2", RackCompute, 2}}, topo.Racks); diff != "" {
		t.Errorf("PlanFabric racks mismatch (-want +got):\n%s", diff)
	}

	dev := func(d, p string) Endpoint { return Endpoint{Device: "nf1-" + d, Port: p} }
	server := func(rack string, slot int, p string) Endpoint { return Endpoint{Rack: rack, Slot: slot, Port: p} }
	for _, l := range []Link{
		{dev("AggrRack-CE1", "Ethernet120"), dev("AggrRack-CE2", "Ethernet120")},
		{dev("AggrRack-MgmtSwitch", "Ethernet41"), dev("AggrRack-CE2", "Management0")},
		{dev("CompRack1-TOR1", "Ethernet0"), dev("AggrRack-CE1", "Ethernet0")},
		{dev("CompRack1-TOR2", "Ethernet4"), dev("AggrRack-CE2", "Ethernet4")},
		{dev("CompRack2-TOR1", "Ethernet0"), dev("AggrRack-CE1", "Ethernet8")},
		{dev("CompRack2-TOR2", "Ethernet4"), dev("AggrRack-CE2", "Ethernet12")},
		{dev("CompRack2-TOR1", "Ethernet124"), dev("CompRack2-TOR2", "Ethernet124")},
		{dev("CompRack1-MgmtSwitch", "Ethernet40"), dev("CompRack1-TOR1", "Management0")},
		{dev("CompRack1-TOR1", "Ethernet8"), server("CompRack1", 1, "eth0")},
		{dev("CompRack2-TOR2", "Ethernet12"), server("CompRack2", 2, "eth1")},
		{dev("CompRack2-MgmtSwitch", "Ethernet1"), server("CompRack2", 2, "bmc")},
	} {
		found := false
		for _, got := range topo.Links {
			found = found || got == l
		}
		if !found {
			t.Errorf("PlanFabric lacks link %+v", l)
		}
	}

	kinds := map[string]string{}
	for _, d := range topo.Devices {
		for _, p := range d.Ports {
			kinds[d.Name+"/"+p.Name] = p.Kind
		}
	}
	for port, want := range map[string]string{
		"nf1-AggrRack-CE1/Ethernet0":           PortDownlink,
		"nf1-AggrRack-CE1/Ethernet16":          PortUnused,
		"nf1-AggrRack-CE1/Ethernet112":         PortPE,
		"nf1-AggrRack-CE2/Ethernet116":         PortPE,
		"nf1-AggrRack-CE1/Ethernet124":         PortPeer,
		"nf1-AggrRack-CE1/Management0":         PortManagement,
		"nf1-CompRack1-TOR2/Ethernet0":         PortUplink,
		"nf1-CompRack1-TOR2/Ethernet12":        PortServer,
		"nf1-CompRack1-TOR2/Ethernet16":        PortUnused,
		"nf1-CompRack1-TOR2/Ethernet112":       PortUnused,
		"nf1-CompRack1-MgmtSwitch/Ethernet0":   PortBMC,
		"nf1-CompRack1-MgmtSwitch/Ethernet41":  PortManagement,
		"nf1-CompRack1-MgmtSwitch/Ethernet47":  PortUnused,
		"nf1-CompRack1-MgmtSwitch/Management0": "",
	} {
		if got := kinds[port]; got != want {
			t.Errorf("port %s kind = %q, want %q", port, got, want)
		}
	}
	if n := len(topo.Devices[0].Ports); n != 33 {
		t.Errorf("a CE has %d ports, want 32 and Management0", n)
	}
	if n := len(topo.Devices[2].Ports); n != 48 {
		t.Errorf("a management switch has %d ports, want 48", n)
	}
}

func TestPlanFabricErrors(t *testing.T) {
	tests := []struct {
		name      string
		spec      FabricSpec
		wantField string
		wantIn    string // part of the reason
	}{
		{"no name", FabricSpec{ASN: 1, ManagementPrefix: netip.MustParsePrefix("10.0.0.0/24"), ComputeRacks: 1, ServersPerRack: 1}, "name", ""},
		{"asn zero", FabricSpec{Name: "f", ManagementPrefix: netip.MustParsePrefix("10.0.0.0/24"), ComputeRacks: 1, ServersPerRack: 1}, "fabricASN", ""},
		{"asn of a ToR", FabricSpec{Name: "f", ASN: 65002, ManagementPrefix: netip.MustParsePrefix("10.0.0.0/24"), ComputeRacks: 3, ServersPerRack: 1}, "fabricASN", "rack 2"},
		{"no racks", planSpec(0, 1, "10.0.0.0/24"), "rackCount", ""},
		{"nine racks", planSpec(9, 1, "10.0.0.0/24"), "rackCount", ""},
		{"no servers", planSpec(1, 0, "10.0.0.0/24"), "serverCountPerRack", ""},
		{"seventeen servers", planSpec(1, 17, "10.0.0.0/24"), "serverCountPerRack", ""},
		{"no prefix", FabricSpec{Name: "f", ASN: 1, ComputeRacks: 1, ServersPerRack: 1}, "ipv4Prefix", ""},
		{"ipv6 prefix", planSpec(1, 1, "fd00::/64"), "ipv4Prefix", ""},
		{"host bits", planSpec(1, 1, "10.0.0.1/24"), "ipv4Prefix", "10.0.0.0/24"},
		{"too small for one rack", planSpec(1, 1, "10.0.0.0/29"), "ipv4Prefix", "at least a /28"},
		{"too small for four racks", planSpec(4, 1, "10.0.0.0/27"), "ipv4Prefix", "at least a /26"},
		{"single address", planSpec(1, 1, "10.0.0.1/32"), "ipv4Prefix", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanFabric(tt.spec)
			re, ok := errors.AsType[*RuleError](err)
			if !ok || re.Field != tt.wantField || !strings.Contains(re.Reason, tt.wantIn) {
				t.Fatalf("PlanFabric(%+v) error = %v, want a RuleError on %s mentioning %q", tt.spec, err, tt.wantField, tt.wantIn)
			}
		})
	}
}

func TestManagementNetwork(t *testing.T) {
	for prefix, want := range map[string]string{"10.0.0.0/24": "10.0.0.0/25", "10.0.0.0/28": "10.0.0.0/29", "10.0.0.0/8": "10.0.0.0/9"} {
		topo, err := PlanFabric(planSpec(1, 1, prefix))
		if err != nil {
			t.Fatal(err)
		}
		got, err := managementNetwork(topo)
		if err != nil || got.String() != want {
			t.Errorf("managementNetwork(plan of %s) = %v, %v, want %s", prefix, got, err, want)
		}
	}
	if got, err := managementNetwork(Topology{}); err == nil {
		t.Errorf("managementNetwork(empty topology) = %v, want an error", got)
	}
}
