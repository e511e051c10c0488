package network

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenFabric is the fabric of the golden files: two compute racks of
// two servers.
func goldenFabric(t testing.TB) Topology {
	t.Helper()
	topo, err := PlanFabric(planSpec(2, 2, "10.0.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// goldenIntent is an L2 domain (VLAN 501), an L3 domain with one internal
// network (VLAN 601) peering with a network function through an import
// policy, and an ACL on that network, and one external network (VLAN 701)
// peering with the PE through the same policy.
func goldenIntent() Intent {
	return Intent{
		L2Domains: []L2Domain{{Name: "l2dom", VLAN: 501, MTU: 1500, Enabled: true}},
		L3Domains: []L3Domain{{Name: "l3dom", Enabled: true, RedistributeConnected: true, Networks: []InternalNetwork{{
			Name: "net1", VLAN: 601, MTU: 9000, Enabled: true,
			Subnets: []netip.Prefix{netip.MustParsePrefix("10.10.1.0/24")},
			PeerASN: 65100, Peers: []netip.Addr{netip.MustParseAddr("10.10.1.10")},
			ImportPolicy: "import", IngressACL: "acl1",
		}}, ExternalNetworks: []ExternalNetwork{{
			Name: "ext1", VLAN: 701, PeerASN: 65200, Prefix: netip.MustParsePrefix("10.70.0.0/31"),
			ImportPolicy: "import", Enabled: true,
		}}}},
		ACLs: []ACL{{Name: "acl1", Rules: []ACLRule{
			{Sequence: 10, Action: "Permit", Protocol: "TCP", Source: netip.MustParsePrefix("10.20.0.0/16"), Destination: netip.MustParsePrefix("10.10.1.0/24"), DestinationPorts: "22"},
			{Sequence: 20, Action: "Permit", Protocol: "UDP", DestinationPorts: "1000-2000"},
			{Sequence: 100, Action: "Deny", Protocol: "Any"},
		}}},
		RoutePolicies: []RoutePolicy{{Name: "import", Statements: []RouteStatement{
			{Sequence: 10, PrefixList: "tenant", Action: "Permit"},
			{Sequence: 20, Action: "Deny"},
		}}},
		PrefixLists: []PrefixList{{Name: "tenant", Rules: []PrefixRule{
			{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "10.10.0.0/16", Condition: GreaterThanOrEqualTo, SubnetMaskLength: "24"},
			{Action: "deny", SequenceNumber: 20, NetworkPrefix: "0.0.0.0/0"},
		}}},
	}
}

func TestRenderGolden(t *testing.T) {
	topo := goldenFabric(t)
	for _, device := range []string{"nf1-AggrRack-CE1", "nf1-CompRack1-TOR1", "nf1-CompRack1-MgmtSwitch"} {
		t.Run(device, func(t *testing.T) {
			db, err := Render(topo, device, goldenIntent())
			if err != nil {
				t.Fatalf("Render(%s) error = %v", device, err)
			}
			got := db.JSON()
			path := filepath.Join("testdata", "golden", device+".json")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/network -run Golden -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Render(%s) differs from %s (-want +got):\n%s", device, path, diff)
			}
		})
	}
}

func TestRenderDeterministic(t *testing.T) {
	topo := goldenFabric(t)
	in := goldenIntent()
	in.L2Domains = append(in.L2Domains, L2Domain{Name: "l2b", VLAN: 502, Enabled: true})
	in.L3Domains = append(in.L3Domains, L3Domain{Name: "l3b", Enabled: true, Networks: []InternalNetwork{
		{Name: "n2", VLAN: 700, Enabled: true, Subnets: []netip.Prefix{netip.MustParsePrefix("10.10.1.0/24")}, IngressACL: "acl1"},
		{Name: "n3", VLAN: 650, Enabled: true, Subnets: []netip.Prefix{netip.MustParsePrefix("10.10.2.0/24")}, IngressACL: "acl1"},
	}, ExternalNetworks: []ExternalNetwork{
		{Name: "x2", VLAN: 703, PeerASN: 65200, Prefix: netip.MustParsePrefix("10.70.0.8/30"), Enabled: true},
		{Name: "x3", VLAN: 702, PeerASN: 65201, Prefix: netip.MustParsePrefix("10.70.0.4/31"), ExportPolicy: "import", Enabled: true},
	}})
	// The same intent with every slice reversed.
	rev := goldenIntent()
	rev.L2Domains = slices.Clone(in.L2Domains)
	rev.L3Domains = slices.Clone(in.L3Domains)
	rev.L3Domains[1].Networks = slices.Clone(in.L3Domains[1].Networks)
	rev.L3Domains[1].ExternalNetworks = slices.Clone(in.L3Domains[1].ExternalNetworks)
	slices.Reverse(rev.L2Domains)
	slices.Reverse(rev.L3Domains)
	slices.Reverse(rev.L3Domains[0].Networks)
	slices.Reverse(rev.L3Domains[0].ExternalNetworks)
	slices.Reverse(rev.ACLs[0].Rules)
	slices.Reverse(rev.PrefixLists[0].Rules)
	for _, d := range topo.Devices {
		first, err := Render(topo, d.Name, in)
		if err != nil {
			t.Fatalf("Render(%s) error = %v", d.Name, err)
		}
		for _, again := range []Intent{in, rev} {
			second, err := Render(topo, d.Name, again)
			if err != nil {
				t.Fatalf("Render(%s) error = %v", d.Name, err)
			}
			if !bytes.Equal(first.JSON(), second.JSON()) {
				t.Errorf("Render(%s) twice differs:\n%s", d.Name, cmp.Diff(string(first.JSON()), string(second.JSON())))
			}
		}
		parsed, err := ParseConfigDB(first.JSON())
		if err != nil {
			t.Fatalf("ParseConfigDB(Render(%s).JSON()) error = %v", d.Name, err)
		}
		if diff := cmp.Diff(first, parsed); diff != "" {
			t.Errorf("ParseConfigDB(Render(%s).JSON()) mismatch (-rendered +parsed):\n%s", d.Name, diff)
		}
	}
	tor, err := Render(topo, "nf1-CompRack1-TOR1", in)
	if err != nil {
		t.Fatal(err)
	}
	if got := tor["ACL_TABLE"]["acl1"]["ports@"]; got != "Vlan601,Vlan650,Vlan700" {
		t.Errorf(`ACL_TABLE|acl1 ports@ = %q, want "Vlan601,Vlan650,Vlan700"`, got)
	}
}

func TestRenderToR(t *testing.T) {
	topo := goldenFabric(t)
	render := func(device string, in Intent) ConfigDB {
		t.Helper()
		db, err := Render(topo, device, in)
		if err != nil {
			t.Fatalf("Render(%s) error = %v", device, err)
		}
		return db
	}
	tor := render("nf1-CompRack1-TOR1", goldenIntent())
	if got, want := tor["VLAN"]["Vlan501"], map[string]string{"vlanid": "501", "mtu": "1500", "admin_status": "up", "members@": "Ethernet0,Ethernet4,Ethernet8,Ethernet12"}; !cmp.Equal(got, want) {
		t.Errorf("VLAN|Vlan501 = %v, want %v", got, want)
	}
	if got := tor["VLAN_MEMBER"]["Vlan601|Ethernet12"]; got["tagging_mode"] != "tagged" {
		t.Errorf("VLAN_MEMBER|Vlan601|Ethernet12 = %v, want tagged", got)
	}

	t.Run("anycast gateway", func(t *testing.T) {
		want := tor["VLAN_INTERFACE"]
		for _, other := range []string{"nf1-CompRack1-TOR2", "nf1-CompRack2-TOR1", "nf1-CompRack2-TOR2"} {
			if diff := cmp.Diff(want, render(other, goldenIntent())["VLAN_INTERFACE"]); diff != "" {
				t.Errorf("VLAN_INTERFACE of %s differs from TOR1's (-TOR1 +%s):\n%s", other, other, diff)
			}
		}
		if _, ok := want["Vlan601|10.10.1.1/24"]; !ok {
			t.Errorf("VLAN_INTERFACE lacks the gateway Vlan601|10.10.1.1/24: %v", want)
		}
	})

	t.Run("disabling the L2 domain removes its VLAN", func(t *testing.T) {
		in := goldenIntent()
		in.L2Domains[0].Enabled = false
		got := render("nf1-CompRack1-TOR1", in)
		if _, ok := got["VLAN"]["Vlan501"]; ok {
			t.Errorf("VLAN|Vlan501 still rendered with its domain disabled")
		}
		for key := range got["VLAN_MEMBER"] {
			if strings.HasPrefix(key, "Vlan501|") {
				t.Errorf("VLAN_MEMBER|%s still rendered with its domain disabled", key)
			}
		}
		if _, ok := got["VLAN"]["Vlan601"]; !ok {
			t.Errorf("VLAN|Vlan601 is gone too")
		}
		// A ToR still running the VLAN has it, and its members, unexpected.
		diffs := DiffConfig(got, tor)
		if want := (ConfigDiff{Kind: DiffUnexpected, Table: "VLAN", Key: "Vlan501"}); len(diffs) != 5 || diffs[0] != want {
			t.Errorf("DiffConfig(disabled, enabled) = %v, want %v and its 4 members", diffs, want)
		}
	})

	t.Run("disabling the L3 domain removes its VRF everywhere", func(t *testing.T) {
		in := goldenIntent()
		in.L3Domains[0].Enabled = false
		for _, device := range []string{"nf1-CompRack1-TOR1", "nf1-AggrRack-CE2"} {
			got := render(device, in)
			for _, table := range []string{"VRF", "VLAN_INTERFACE", "VLAN_SUB_INTERFACE", "ACL_TABLE", "ACL_RULE", "ROUTE_MAP", "PREFIX_SET", "PREFIX", "ROUTE_REDISTRIBUTE", "BGP_NEIGHBOR_AF"} {
				if len(got[table]) > 0 {
					t.Errorf("%s: %s still rendered with the domain disabled: %v", device, table, got[table])
				}
			}
			if _, ok := got["BGP_GLOBALS"]["Vrf_l3dom"]; ok {
				t.Errorf("%s: BGP_GLOBALS|Vrf_l3dom still rendered with the domain disabled", device)
			}
			for key := range got["BGP_NEIGHBOR"] {
				if !strings.HasPrefix(key, "default|") {
					t.Errorf("%s: BGP_NEIGHBOR|%s still rendered with the domain disabled", device, key)
				}
			}
		}
	})

	t.Run("disabling the network keeps the VRF", func(t *testing.T) {
		in := goldenIntent()
		in.L3Domains[0].Networks[0].Enabled = false
		got := render("nf1-CompRack1-TOR1", in)
		if _, ok := got["VRF"]["Vrf_l3dom"]; !ok {
			t.Errorf("VRF|Vrf_l3dom gone with only its network disabled")
		}
		if _, ok := got["VLAN"]["Vlan601"]; ok {
			t.Errorf("VLAN|Vlan601 still rendered with its network disabled")
		}
		if _, ok := got["BGP_NEIGHBOR"]["Vrf_l3dom|10.10.1.10"]; ok {
			t.Errorf("the network's BGP neighbour still rendered with it disabled")
		}
	})

	t.Run("CE peers with every ToR", func(t *testing.T) {
		ce := render("nf1-AggrRack-CE2", goldenIntent())
		n := 0
		for key := range ce["BGP_NEIGHBOR"] {
			if strings.HasPrefix(key, "default|") {
				n++
			}
		}
		if n != 4 {
			t.Errorf("CE2 has %d BGP neighbours in the default VRF, want the 4 ToRs: %v", n, ce["BGP_NEIGHBOR"])
		}
		want := map[string]string{"asn": "65002", "name": "nf1-CompRack2-TOR2", "local_addr": "10.0.0.130"}
		if got := ce["BGP_NEIGHBOR"]["default|10.0.0.136"]; !cmp.Equal(got, want) {
			t.Errorf("CE2 BGP_NEIGHBOR|default|10.0.0.136 = %v, want %v", got, want)
		}
	})
}

func TestRenderExternalNetwork(t *testing.T) {
	topo := goldenFabric(t)
	render := func(device string, in Intent) ConfigDB {
		t.Helper()
		db, err := Render(topo, device, in)
		if err != nil {
			t.Fatalf("Render(%s) error = %v", device, err)
		}
		return db
	}
	up := map[string]string{"admin_status": "up", "mtu": portMTU, "description": "to provider edge"}
	down := map[string]string{"admin_status": "down", "mtu": portMTU}
	sub := map[string]string{"admin_status": "up", "vlan": "701", "vrf_name": "Vrf_l3dom"}

	// Each CE has its own /31 towards the PE: CE1 the given one, CE2
	// the next.
	for _, tt := range []struct {
		device, addr, pe string
	}{
		{"nf1-AggrRack-CE1", "10.70.0.0/31", "10.70.0.1"},
		{"nf1-AggrRack-CE2", "10.70.0.2/31", "10.70.0.3"},
	} {
		t.Run(tt.device, func(t *testing.T) {
			ce := render(tt.device, goldenIntent())
			want := map[string]map[string]string{"Ethernet112.701": sub, "Ethernet112.701|" + tt.addr: {}}
			if diff := cmp.Diff(want, ce["VLAN_SUB_INTERFACE"]); diff != "" {
				t.Errorf("VLAN_SUB_INTERFACE mismatch (-want +got):\n%s", diff)
			}
			local := strings.TrimSuffix(tt.addr, "/31")
			if got, want := ce["BGP_NEIGHBOR"]["Vrf_l3dom|"+tt.pe], (map[string]string{"asn": "65200", "name": "ext1", "local_addr": local}); !cmp.Equal(got, want) {
				t.Errorf("BGP_NEIGHBOR|Vrf_l3dom|%s = %v, want %v", tt.pe, got, want)
			}
			if got, want := ce["BGP_NEIGHBOR_AF"]["Vrf_l3dom|"+tt.pe+"|ipv4_unicast"], (map[string]string{"route_map_in": "import"}); !cmp.Equal(got, want) {
				t.Errorf("BGP_NEIGHBOR_AF|Vrf_l3dom|%s|ipv4_unicast = %v, want %v", tt.pe, got, want)
			}
			if got := ce["PORT"]["Ethernet112"]; !cmp.Equal(got, up) {
				t.Errorf("PORT|Ethernet112 = %v, want %v", got, up)
			}
			if got := ce["PORT"]["Ethernet116"]; !cmp.Equal(got, down) {
				t.Errorf("PORT|Ethernet116 (the second PE port, unused) = %v, want %v", got, down)
			}
		})
	}

	t.Run("ToRs are unaffected", func(t *testing.T) {
		with := render("nf1-CompRack1-TOR1", goldenIntent())
		in := goldenIntent()
		in.L3Domains[0].ExternalNetworks = nil
		if diff := cmp.Diff(render("nf1-CompRack1-TOR1", in), with); diff != "" {
			t.Errorf("the external network changes a ToR (-without +with):\n%s", diff)
		}
	})

	t.Run("disabling the external network removes it from the CE", func(t *testing.T) {
		in := goldenIntent()
		in.L3Domains[0].ExternalNetworks[0].Enabled = false
		enabled := render("nf1-AggrRack-CE1", goldenIntent())
		got := render("nf1-AggrRack-CE1", in)
		if len(got["VLAN_SUB_INTERFACE"]) > 0 {
			t.Errorf("VLAN_SUB_INTERFACE still rendered with the external network disabled: %v", got["VLAN_SUB_INTERFACE"])
		}
		if _, ok := got["VRF"]["Vrf_l3dom"]; !ok {
			t.Errorf("VRF|Vrf_l3dom gone with only its external network disabled")
		}
		if p := got["PORT"]["Ethernet112"]; !cmp.Equal(p, down) {
			t.Errorf("PORT|Ethernet112 = %v with no external network, want %v", p, down)
		}
		// A CE still running it has the sub-interface and the session
		// unexpected, and its PE port up.
		want := []ConfigDiff{
			{Kind: DiffUnexpected, Table: "BGP_NEIGHBOR", Key: "Vrf_l3dom|10.70.0.1"},
			{Kind: DiffUnexpected, Table: "BGP_NEIGHBOR_AF", Key: "Vrf_l3dom|10.70.0.1|ipv4_unicast"},
			{Kind: DiffUnexpected, Table: "PORT", Key: "Ethernet112", Field: "description", Running: "to provider edge"},
			{Kind: DiffChanged, Table: "PORT", Key: "Ethernet112", Field: "admin_status", Intended: "down", Running: "up"},
			{Kind: DiffUnexpected, Table: "VLAN_SUB_INTERFACE", Key: "Ethernet112.701"},
			{Kind: DiffUnexpected, Table: "VLAN_SUB_INTERFACE", Key: "Ethernet112.701|10.70.0.0/31"},
		}
		if diff := cmp.Diff(want, DiffConfig(got, enabled), cmpopts.SortSlices(func(a, b ConfigDiff) bool { return fmt.Sprint(a) < fmt.Sprint(b) })); diff != "" {
			t.Errorf("DiffConfig(disabled, enabled) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("a /30 and a VLAN too long for the port's name", func(t *testing.T) {
		in := goldenIntent()
		in.L3Domains[0].ExternalNetworks[0].VLAN = 1001
		in.L3Domains[0].ExternalNetworks[0].Prefix = netip.MustParsePrefix("10.70.0.0/30")
		for _, tt := range []struct{ device, addr, pe string }{
			{"nf1-AggrRack-CE1", "10.70.0.1/30", "10.70.0.2"},
			{"nf1-AggrRack-CE2", "10.70.0.5/30", "10.70.0.6"},
		} {
			ce := render(tt.device, in)
			want := map[string]map[string]string{
				"Eth112.1001":            {"admin_status": "up", "vlan": "1001", "vrf_name": "Vrf_l3dom"},
				"Eth112.1001|" + tt.addr: {},
			}
			if diff := cmp.Diff(want, ce["VLAN_SUB_INTERFACE"]); diff != "" {
				t.Errorf("%s: VLAN_SUB_INTERFACE mismatch (-want +got):\n%s", tt.device, diff)
			}
			if got := ce["BGP_NEIGHBOR"]["Vrf_l3dom|"+tt.pe]["local_addr"]; got+"/30" != tt.addr {
				t.Errorf("%s: BGP_NEIGHBOR|Vrf_l3dom|%s local_addr = %q, want %s", tt.device, tt.pe, got, tt.addr)
			}
		}
	})

	t.Run("policies of external networks only", func(t *testing.T) {
		in := goldenIntent()
		in.L3Domains[0].Networks[0].ImportPolicy = ""
		if got := render("nf1-AggrRack-CE1", in)["ROUTE_MAP"]; len(got) != 2 {
			t.Errorf("CE1 ROUTE_MAP = %v, want the import policy's 2 statements", got)
		}
		if got := render("nf1-CompRack1-TOR1", in)["ROUTE_MAP"]; len(got) != 0 {
			t.Errorf("TOR1 ROUTE_MAP = %v, want none: only the CEs peer with the PE", got)
		}
	})
}

func TestRenderErrors(t *testing.T) {
	topo := goldenFabric(t)
	if _, err := Render(topo, "nf1-CompRack9-TOR1", goldenIntent()); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("Render(unknown device) error = %v, want ErrUnknownDevice", err)
	}
	in := goldenIntent()
	in.L2Domains[0].VLAN = 601
	if _, err := Render(topo, "nf1-CompRack1-TOR1", in); err == nil {
		t.Errorf("Render(two VLANs 601) error = nil, want a RuleError")
	} else if _, ok := errors.AsType[*RuleError](err); !ok {
		t.Errorf("Render(two VLANs 601) error = %v, want a RuleError", err)
	}
}

func TestIntentValidate(t *testing.T) {
	const net1 = "l3IsolationDomains[l3dom].internalNetworks[net1]"
	const ext1 = "l3IsolationDomains[l3dom].externalNetworks[ext1]"
	prefix := netip.MustParsePrefix
	addNet := func(n InternalNetwork) func(*Intent) {
		return func(in *Intent) {
			n.Enabled = true
			in.L3Domains[0].Networks = append(in.L3Domains[0].Networks, n)
		}
	}
	addExt := func(n ExternalNetwork) func(*Intent) {
		return func(in *Intent) {
			n.Enabled = true
			in.L3Domains[0].ExternalNetworks = append(in.L3Domains[0].ExternalNetworks, n)
		}
	}
	ext := func(in *Intent) *ExternalNetwork { return &in.L3Domains[0].ExternalNetworks[0] }
	tests := []struct {
		name      string
		mod       func(*Intent)
		wantField string // "" for valid
		wantIn    string // part of the reason
	}{
		{"golden", func(*Intent) {}, "", ""},
		{"empty", func(in *Intent) { *in = Intent{} }, "", ""},
		{"second L3 domain may reuse subnets", func(in *Intent) {
			in.L3Domains = append(in.L3Domains, L3Domain{Name: "other", Networks: []InternalNetwork{{Name: "net1", VLAN: 602, Subnets: []netip.Prefix{prefix("10.10.0.0/16")}}}})
		}, "", ""},
		{"l2 vlan too low", func(in *Intent) { in.L2Domains[0].VLAN = 99 }, "l2IsolationDomains[l2dom].vlanId", "between 100 and 4094"},
		{"network vlan too high", func(in *Intent) { in.L3Domains[0].Networks[0].VLAN = 4095 }, net1 + ".vlanId", ""},
		{"vlan shared by domain and network", func(in *Intent) { in.L2Domains[0].VLAN = 601 }, net1 + ".vlanId", "l2IsolationDomains[l2dom]"},
		{"vlan shared by disabled domains", func(in *Intent) {
			in.L2Domains = append(in.L2Domains, L2Domain{Name: "off", VLAN: 501})
		}, "l2IsolationDomains[off].vlanId", "l2IsolationDomains[l2dom]"},
		{"vlan shared across L3 domains", func(in *Intent) {
			in.L3Domains = append(in.L3Domains, L3Domain{Name: "b", Networks: []InternalNetwork{{Name: "x", VLAN: 601}}})
		}, "l3IsolationDomains[b].internalNetworks[x].vlanId", net1},
		{"mtu", func(in *Intent) { in.L2Domains[0].MTU = 9300 }, "l2IsolationDomains[l2dom].mtu", ""},
		{"overlapping subnets", addNet(InternalNetwork{Name: "net2", VLAN: 602, Subnets: []netip.Prefix{prefix("10.10.0.0/16")}}),
			"l3IsolationDomains[l3dom].internalNetworks[net2].connectedIPv4Subnets[0]", "internalNetworks[net1].connectedIPv4Subnets[0]"},
		{"overlapping subnets of one network", func(in *Intent) {
			n := &in.L3Domains[0].Networks[0]
			n.Subnets = append(n.Subnets, prefix("10.10.1.128/25"))
		}, net1 + ".connectedIPv4Subnets[1]", "overlaps"},
		{"subnet with host bits", func(in *Intent) { in.L3Domains[0].Networks[0].Subnets[0] = prefix("10.10.1.1/24") }, net1 + ".connectedIPv4Subnets[0]", "10.10.1.0/24"},
		{"subnet too small", func(in *Intent) { in.L3Domains[0].Networks[0].Subnets[0] = prefix("10.10.1.10/31") }, net1 + ".connectedIPv4Subnets[0]", ""},
		{"ipv6 subnet", func(in *Intent) { in.L3Domains[0].Networks[0].Subnets[0] = prefix("fd00::/64") }, net1 + ".connectedIPv4Subnets[0]", ""},
		{"peer off the subnets", func(in *Intent) { in.L3Domains[0].Networks[0].Peers[0] = netip.MustParseAddr("10.10.2.10") }, net1 + ".bgpConfiguration.ipv4NeighborAddress[0]", ""},
		{"peer is the gateway", func(in *Intent) { in.L3Domains[0].Networks[0].Peers[0] = netip.MustParseAddr("10.10.1.1") }, net1 + ".bgpConfiguration.ipv4NeighborAddress[0]", "gateway"},
		{"peer without asn", func(in *Intent) { in.L3Domains[0].Networks[0].PeerASN = 0 }, net1 + ".bgpConfiguration.peerASN", ""},
		{"missing import policy", func(in *Intent) { in.L3Domains[0].Networks[0].ImportPolicy = "nope" }, net1 + ".importRoutePolicyId", `"nope"`},
		{"missing export policy", func(in *Intent) { in.L3Domains[0].Networks[0].ExportPolicy = "nope" }, net1 + ".exportRoutePolicyId", ""},
		{"missing ingress acl", func(in *Intent) { in.L3Domains[0].Networks[0].IngressACL = "nope" }, net1 + ".ingressAclId", ""},
		{"missing egress acl on a disabled network", func(in *Intent) {
			in.L3Domains[0].Networks[0].Enabled = false
			in.L3Domains[0].Networks[0].EgressACL = "nope"
		}, net1 + ".egressAclId", ""},
		{"acl at both stages", addNet(InternalNetwork{Name: "net2", VLAN: 602, EgressACL: "acl1"}),
			"l3IsolationDomains[l3dom].internalNetworks[net2].egressAclId", net1 + ".ingressAclId"},
		{"missing prefix list", func(in *Intent) { in.RoutePolicies[0].Statements[0].PrefixList = "nope" }, "routePolicies[import].statements[0].ipPrefixId", ""},
		{"route policy sequence twice", func(in *Intent) { in.RoutePolicies[0].Statements[1].Sequence = 10 }, "routePolicies[import].statements[1].sequenceNumber", ""},
		{"route policy action", func(in *Intent) { in.RoutePolicies[0].Statements[1].Action = "Maybe" }, "routePolicies[import].statements[1].action", ""},
		{"route policy without statements", func(in *Intent) { in.RoutePolicies[0].Statements = nil }, "routePolicies[import].statements", ""},
		{"bad prefix rule", func(in *Intent) { in.PrefixLists[0].Rules[0].NetworkPrefix = "10.10.0.1/16" }, "ipPrefixes[tenant].ipPrefixRules[0].networkPrefix", ""},
		{"mixed families", func(in *Intent) {
			in.PrefixLists[0].Rules[1].NetworkPrefix = "::/0"
		}, "ipPrefixes[tenant].ipPrefixRules[1].networkPrefix", "IPv4 or IPv6"},
		{"acl protocol", func(in *Intent) { in.ACLs[0].Rules[0].Protocol = "SCTP" }, "accessControlLists[acl1].rules[0].protocol", ""},
		{"acl ports without tcp or udp", func(in *Intent) { in.ACLs[0].Rules[2].DestinationPorts = "22" }, "accessControlLists[acl1].rules[2].destinationPorts", ""},
		{"acl ports backwards", func(in *Intent) { in.ACLs[0].Rules[1].DestinationPorts = "2000-1000" }, "accessControlLists[acl1].rules[1].destinationPorts", ""},
		{"acl port too big", func(in *Intent) { in.ACLs[0].Rules[0].DestinationPorts = "65536" }, "accessControlLists[acl1].rules[0].destinationPorts", ""},
		{"acl sequence twice", func(in *Intent) { in.ACLs[0].Rules[2].Sequence = 10 }, "accessControlLists[acl1].rules[2].sequenceNumber", "rules[0]"},
		{"acl sequence too big", func(in *Intent) { in.ACLs[0].Rules[2].Sequence = 999999 }, "accessControlLists[acl1].rules[2].sequenceNumber", ""},
		{"acl protocol number", func(in *Intent) { in.ACLs[0].Rules[2].Protocol = "47" }, "", ""},
		{"acl ports with protocol 6", func(in *Intent) { in.ACLs[0].Rules[0].Protocol = "6" }, "", ""},
		{"acl protocol number too big", func(in *Intent) { in.ACLs[0].Rules[2].Protocol = "256" }, "accessControlLists[acl1].rules[2].protocol", ""},
		{"acl protocol number not canonical", func(in *Intent) { in.ACLs[0].Rules[2].Protocol = "+6" }, "accessControlLists[acl1].rules[2].protocol", ""},
		{"acl action", func(in *Intent) { in.ACLs[0].Rules[0].Action = "Allow" }, "accessControlLists[acl1].rules[0].action", ""},
		{"acl source with host bits", func(in *Intent) { in.ACLs[0].Rules[0].Source = prefix("10.20.0.1/16") }, "accessControlLists[acl1].rules[0].sourceAddress", ""},
		{"acl ipv6 destination", func(in *Intent) { in.ACLs[0].Rules[0].Destination = prefix("fd00::/64") }, "accessControlLists[acl1].rules[0].destinationAddress", ""},
		{"duplicate l2 name", func(in *Intent) {
			in.L2Domains = append(in.L2Domains, L2Domain{Name: "l2dom", VLAN: 502})
		}, "l2IsolationDomains[1].name", "l2IsolationDomains[0]"},
		{"duplicate network name", addNet(InternalNetwork{Name: "net1", VLAN: 602}), "l3IsolationDomains[l3dom].internalNetworks[1].name", ""},
		{"name with a key separator", func(in *Intent) { in.ACLs[0].Name = "a|b" }, "accessControlLists[0].name", ""},
		{"no name", func(in *Intent) { in.L3Domains[0].Name = "" }, "l3IsolationDomains[0].name", ""},

		{"external /30", func(in *Intent) { ext(in).Prefix = prefix("10.70.0.0/30") }, "", ""},
		{"external network in another domain reuses the prefix", func(in *Intent) {
			in.L3Domains = append(in.L3Domains, L3Domain{Name: "other", ExternalNetworks: []ExternalNetwork{{Name: "ext1", VLAN: 702, PeerASN: 1, Prefix: prefix("10.70.0.0/31")}}})
		}, "", ""},
		{"external vlan too low", func(in *Intent) { ext(in).VLAN = 99 }, ext1 + ".optionAProperties.vlanId", "between 100 and 4094"},
		{"external vlan too high", func(in *Intent) { ext(in).VLAN = 4095 }, ext1 + ".optionAProperties.vlanId", ""},
		{"external vlan of an internal network", func(in *Intent) { ext(in).VLAN = 601 }, ext1 + ".optionAProperties.vlanId", net1},
		{"external vlan of an L2 domain", func(in *Intent) { ext(in).VLAN = 501 }, ext1 + ".optionAProperties.vlanId", "l2IsolationDomains[l2dom]"},
		{"disabled L2 domain on the external vlan", func(in *Intent) {
			in.L2Domains = append(in.L2Domains, L2Domain{Name: "off", VLAN: 701})
		}, ext1 + ".optionAProperties.vlanId", "l2IsolationDomains[off]"},
		{"two external networks on one vlan", addExt(ExternalNetwork{Name: "ext2", VLAN: 701, PeerASN: 1, Prefix: prefix("10.70.1.0/31")}),
			"l3IsolationDomains[l3dom].externalNetworks[ext2].optionAProperties.vlanId", ext1},
		{"external without peer asn", func(in *Intent) { ext(in).PeerASN = 0 }, ext1 + ".optionAProperties.peerASN", "required"},
		{"external without prefix", func(in *Intent) { ext(in).Prefix = netip.Prefix{} }, ext1 + ".optionAProperties.primaryIpv4Prefix", "IPv4"},
		{"external ipv6 prefix", func(in *Intent) { ext(in).Prefix = prefix("fd00::/127") }, ext1 + ".optionAProperties.primaryIpv4Prefix", "IPv4"},
		{"external /29", func(in *Intent) { ext(in).Prefix = prefix("10.70.0.0/29") }, ext1 + ".optionAProperties.primaryIpv4Prefix", "/30 or a /31"},
		{"external /32", func(in *Intent) { ext(in).Prefix = prefix("10.70.0.0/32") }, ext1 + ".optionAProperties.primaryIpv4Prefix", "/30 or a /31"},
		{"external prefix with host bits", func(in *Intent) { ext(in).Prefix = prefix("10.70.0.1/31") }, ext1 + ".optionAProperties.primaryIpv4Prefix", "10.70.0.0/31"},
		{"external prefix at the end of the address space", func(in *Intent) { ext(in).Prefix = prefix("255.255.255.252/30") },
			ext1 + ".optionAProperties.primaryIpv4Prefix", "CE2"},
		{"external prefix in an internal subnet", func(in *Intent) { ext(in).Prefix = prefix("10.10.1.254/31") },
			ext1 + ".optionAProperties.primaryIpv4Prefix", "internalNetworks[net1].connectedIPv4Subnets[0]"},
		{"CE2's link in an internal subnet", func(in *Intent) { ext(in).Prefix = prefix("10.10.0.254/31") },
			ext1 + ".optionAProperties.primaryIpv4Prefix", "CE2's link 10.10.1.0/31"},
		{"external prefix on another external network's CE2 link", addExt(ExternalNetwork{Name: "ext2", VLAN: 702, PeerASN: 1, Prefix: prefix("10.70.0.2/31")}),
			"l3IsolationDomains[l3dom].externalNetworks[ext2].optionAProperties.primaryIpv4Prefix", "externalNetworks[ext1] (CE2's link)"},
		{"external networks side by side", addExt(ExternalNetwork{Name: "ext2", VLAN: 702, PeerASN: 1, Prefix: prefix("10.70.0.4/31")}), "", ""},
		{"external missing import policy", func(in *Intent) { ext(in).ImportPolicy = "nope" }, ext1 + ".importRoutePolicyId", `"nope"`},
		{"external missing export policy on a disabled network", func(in *Intent) {
			ext(in).Enabled = false
			ext(in).ExportPolicy = "nope"
		}, ext1 + ".exportRoutePolicyId", ""},
		{"duplicate external name", addExt(ExternalNetwork{Name: "ext1", VLAN: 702, PeerASN: 1, Prefix: prefix("10.70.1.0/31")}),
			"l3IsolationDomains[l3dom].externalNetworks[1].name", ""},
		{"external and internal network share a name", addExt(ExternalNetwork{Name: "net1", VLAN: 702, PeerASN: 1, Prefix: prefix("10.70.1.0/31")}), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := goldenIntent()
			tt.mod(&in)
			err := in.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			re, ok := errors.AsType[*RuleError](err)
			if !ok || re.Field != tt.wantField || !strings.Contains(re.Reason, tt.wantIn) {
				t.Fatalf("Validate() = %v, want a RuleError on %s mentioning %q", err, tt.wantField, tt.wantIn)
			}
		})
	}
}

// benchIntent is n internal networks in five L3 domains, each with a
// peer, policies and an ACL, and ten L2 domains.
func benchIntent(n int) Intent {
	in := goldenIntent()
	for i := range 10 {
		in.L2Domains = append(in.L2Domains, L2Domain{Name: fmt.Sprintf("l2-%d", i), VLAN: 1000 + i, Enabled: true})
	}
	for i := range n {
		d := i % 5
		if i < 5 {
			in.L3Domains = append(in.L3Domains, L3Domain{Name: fmt.Sprintf("dom%d", d), Enabled: true, RedistributeConnected: true})
		}
		dom := &in.L3Domains[1+d]
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100, byte(i), 0}), 24)
		dom.Networks = append(dom.Networks, InternalNetwork{
			Name: fmt.Sprintf("net%d", i), VLAN: 2000 + i, Enabled: true,
			Subnets: []netip.Prefix{subnet},
			PeerASN: 65100, Peers: []netip.Addr{subnet.Addr().Next().Next()},
			ImportPolicy: "import", ExportPolicy: "import", IngressACL: "acl1",
		})
	}
	return in
}

func BenchmarkRender(b *testing.B) {
	topo, err := PlanFabric(planSpec(8, 16, "10.0.0.0/24"))
	if err != nil {
		b.Fatal(err)
	}
	in := benchIntent(50)
	for b.Loop() {
		if _, err := Render(topo, "nf1-CompRack8-TOR2", in); err != nil {
			b.Fatal(err)
		}
	}
}
