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
// policy, and an ACL on that network.
func goldenIntent() Intent {
	return Intent{
		L2Domains: []L2Domain{{Name: "l2dom", VLAN: 501, MTU: 1500, Enabled: true}},
		L3Domains: []L3Domain{{Name: "l3dom", Enabled: true, RedistributeConnected: true, Networks: []InternalNetwork{{
			Name: "net1", VLAN: 601, MTU: 9000, Enabled: true,
			Subnets: []netip.Prefix{netip.MustParsePrefix("10.10.1.0/24")},
			PeerASN: 65100, Peers: []netip.Addr{netip.MustParseAddr("10.10.1.10")},
			ImportPolicy: "import", IngressACL: "acl1",
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
	}})
	// The same intent with every slice reversed.
	rev := goldenIntent()
	rev.L2Domains = slices.Clone(in.L2Domains)
	rev.L3Domains = slices.Clone(in.L3Domains)
	rev.L3Domains[1].Networks = slices.Clone(in.L3Domains[1].Networks)
	slices.Reverse(rev.L2Domains)
	slices.Reverse(rev.L3Domains)
	slices.Reverse(rev.L3Domains[0].Networks)
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
			for _, table := range []string{"VRF", "VLAN_INTERFACE", "ACL_TABLE", "ACL_RULE", "ROUTE_MAP", "PREFIX_SET", "PREFIX", "ROUTE_REDISTRIBUTE", "BGP_NEIGHBOR_AF"} {
				if len(got[table]) > 0 {
					t.Errorf("%s: %s still rendered with the domain disabled: %v", device, table, got[table])
				}
			}
			if _, ok := got["BGP_GLOBALS"]["Vrf_l3dom"]; ok {
				t.Errorf("%s: BGP_GLOBALS|Vrf_l3dom still rendered with the domain disabled", device)
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
		if n := len(ce["BGP_NEIGHBOR"]); n != 4 {
			t.Errorf("CE2 has %d BGP neighbours, want the 4 ToRs: %v", n, ce["BGP_NEIGHBOR"])
		}
		want := map[string]string{"asn": "65002", "name": "nf1-CompRack2-TOR2", "local_addr": "10.0.0.130"}
		if got := ce["BGP_NEIGHBOR"]["default|10.0.0.136"]; !cmp.Equal(got, want) {
			t.Errorf("CE2 BGP_NEIGHBOR|default|10.0.0.136 = %v, want %v", got, want)
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
	prefix := netip.MustParsePrefix
	addNet := func(n InternalNetwork) func(*Intent) {
		return func(in *Intent) {
			n.Enabled = true
			in.L3Domains[0].Networks = append(in.L3Domains[0].Networks, n)
		}
	}
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
