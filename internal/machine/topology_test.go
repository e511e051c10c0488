package machine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mac is the MAC of machine i of rack r: kind 0xb1 for the BMC, 0xb2 for
// the boot NIC.
func mac(kind, r, i int) string { return fmt.Sprintf("02:%02x:%02x:00:00:%02x", kind, r, i) }

// machinesOf returns n machines of rack r in slots first, first+1, ...
func machinesOf(r, n, first int) []MachineSpec {
	ms := make([]MachineSpec, n)
	for i := range ms {
		ms[i] = MachineSpec{
			Name:       fmt.Sprintf("r%dm%d", r, i),
			Serial:     fmt.Sprintf("SN-R%d-M%d", r, i),
			BMCMAC:     mac(0xb1, r, i),
			BootMAC:    mac(0xb2, r, i),
			BMCAddress: fmt.Sprintf("10.%d.0.%d", r, i+1),
			Slot:       first + i,
		}
	}
	return ms
}

func computeField(i int) string { return fmt.Sprintf("properties.computeRackDefinitions[%d]", i) }

// multiRack is a valid MultiRack cluster: the aggregator (3 controllers and
// a storage appliance) and n racks of the given compute SKU with perRack
// machines each.
func multiRack(n, perRack int, sku string) ClusterSpec {
	c := ClusterSpec{Type: MultiRack, Racks: []RackSpec{{
		Field: FieldFirstRack, SKU: RackSKUAggregator, Serial: "AGG-1",
		Machines:   machinesOf(0, 3, 1),
		Appliances: []ApplianceSpec{{Name: "sa1", Serial: "SA-1", Slot: 4}},
	}}}
	for i := range n {
		c.Racks = append(c.Racks, RackSpec{
			Field: computeField(i), SKU: sku, Serial: fmt.Sprintf("RACK-%d", i+1),
			Machines: machinesOf(i+1, perRack, 1),
		})
	}
	return c
}

// singleRack is a valid disaggregated single rack of 8 machines.
func singleRack() ClusterSpec {
	return ClusterSpec{Type: SingleRack, Racks: []RackSpec{{
		Field: FieldFirstRack, SKU: RackSKUSingle, Serial: "S-1",
		Machines:   machinesOf(0, 8, 1),
		Appliances: []ApplianceSpec{{Name: "sa1", Serial: "SA-1", Slot: 65}},
	}}}
}

// hyperconverged is a valid hyperconverged rack of 4 machines.
func hyperconverged() ClusterSpec {
	return ClusterSpec{Type: SingleRack, Racks: []RackSpec{{
		Field: FieldFirstRack, SKU: RackSKUHyperconverged, Serial: "H-1",
		Machines: machinesOf(0, 4, 1),
	}}}
}

func TestValidateTopology(t *testing.T) {
	builtin := Builtin()
	// acme holds a compute rack SKU the built-in aggregator does not support.
	acme := Builtin()
	if err := acme.Load(strings.NewReader(validDoc(t, nil))); err != nil {
		t.Fatal(err)
	}
	// big holds a disaggregated rack SKU with more slots than the topology
	// allows machines, which Load refuses: only so can a cluster break the
	// machine count and no slot rule.
	big := Builtin()
	big.put(nil, []*RackSKU{{ID: "big-single", Type: RackSingle, Topology: Disaggregated,
		ComputeMachines: slotsOf(1, 70, SKUCompute), StorageAppliances: []ApplianceSlot{{RackSlot: 71, Model: "x", CapacityGB: 1}}}})

	m := func(rack, i int) string {
		return fmt.Sprintf("%s.bareMetalMachineConfigurationData[%d]", computeField(rack), i)
	}
	const agg = FieldFirstRack
	tests := []struct {
		name  string
		cat   *Catalog // builtin when nil
		spec  ClusterSpec
		edit  func(c *ClusterSpec)
		taken Identities
		want  []Violation
	}{
		{name: "valid multi-rack", spec: multiRack(3, 4, RackSKUCompute8)},
		{name: "valid multi-rack, 16 racks of 16", spec: multiRack(16, 16, RackSKUCompute16)},
		{name: "valid single rack", spec: singleRack()},
		{name: "valid hyperconverged", spec: hyperconverged()},
		{name: "cluster type is case-insensitive", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Type = "multirack" }},
		{name: "BMCs on one address with different ports", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) {
			c.Racks[1].Machines[0].BMCAddress = "https://127.0.0.1:9001/redfish/v1"
			c.Racks[1].Machines[1].BMCAddress = "127.0.0.1:9002"
		}},

		{name: "unknown cluster type", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Type = "Hybrid" },
			want: []Violation{{FieldClusterType, `cluster type "Hybrid" is not SingleRack or MultiRack`}}},
		{name: "no racks", spec: ClusterSpec{Type: SingleRack},
			want: []Violation{{FieldFirstRack, "the cluster needs an aggregator or single rack definition"}}},
		{name: "unknown rack SKU", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[3].SKU = "citadel-compute-99" },
			want: []Violation{{computeField(2) + ".rackSkuId", `rack SKU "citadel-compute-99" is not in the catalog`}}},

		{name: "single rack of an aggregator SKU", spec: singleRack(), edit: func(c *ClusterSpec) {
			c.Racks[0].SKU, c.Racks[0].Machines, c.Racks[0].Appliances[0].Slot = RackSKUAggregator, machinesOf(0, 3, 1), 4
		},
			want: []Violation{{agg + ".rackSkuId", `a SingleRack cluster needs a rack SKU of type Single; "citadel-aggregator" is of type Aggregator`}}},
		{name: "single rack with a compute rack", spec: singleRack(), edit: func(c *ClusterSpec) {
			c.Racks = append(c.Racks, multiRack(1, 4, RackSKUCompute8).Racks[1])
		},
			want: []Violation{{FieldComputeRacks, "a SingleRack cluster has no compute racks; found 1"}}},
		{name: "hyperconverged without machines", spec: hyperconverged(), edit: func(c *ClusterSpec) { c.Racks[0].Machines = nil },
			want: []Violation{{agg + ".bareMetalMachineConfigurationData", `a hyperconverged rack (rack SKU "citadel-hyperconverged") holds 1 to 16 machines; found 0`}}},
		{name: "disaggregated over 64 machines", cat: big, spec: singleRack(), edit: func(c *ClusterSpec) {
			c.Racks[0].SKU, c.Racks[0].Machines, c.Racks[0].Appliances[0].Slot = "big-single", machinesOf(0, 65, 1), 71
		},
			want: []Violation{{agg + ".bareMetalMachineConfigurationData", `a disaggregated rack (rack SKU "big-single") holds 1 to 64 machines; found 65`}}},
		{name: "disaggregated without storage appliance", spec: singleRack(), edit: func(c *ClusterSpec) { c.Racks[0].Appliances = nil },
			want: []Violation{{agg + ".storageApplianceConfigurationData", `a disaggregated rack (rack SKU "citadel-single") needs a storage appliance; none is defined`}}},

		{name: "multi-rack of a single rack SKU", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) {
			c.Racks[0].SKU, c.Racks[0].Appliances[0].Slot = RackSKUSingle, 65
		},
			want: []Violation{{agg + ".rackSkuId", `a MultiRack cluster needs an aggregator rack SKU of type Aggregator; "citadel-single" is of type Single`}}},
		{name: "aggregator without storage appliance", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[0].Appliances = nil },
			want: []Violation{{agg + ".storageApplianceConfigurationData", "the aggregator rack of a MultiRack cluster needs a storage appliance; none is defined"}}},
		{name: "two compute racks", spec: multiRack(2, 4, RackSKUCompute8),
			want: []Violation{{FieldComputeRacks, "a MultiRack cluster needs at least 3 compute racks; found 2"}}},
		{name: "more compute racks than cluster slots", spec: multiRack(17, 1, RackSKUCompute8),
			want: []Violation{{FieldComputeRacks, `aggregator rack SKU "citadel-aggregator" supports at most 16 compute racks; found 17`}}},
		{name: "compute rack of a single rack SKU", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[2].SKU = RackSKUHyperconverged },
			want: []Violation{{computeField(1) + ".rackSkuId", `a compute rack needs a rack SKU of type Compute; "citadel-hyperconverged" is of type Single`}}},
		{name: "compute rack SKU the aggregator does not support", cat: acme, spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[1].SKU = "ACME-compute-4" },
			want: []Violation{{computeField(0) + ".rackSkuId", `rack SKU "acme-compute-4" is not supported by aggregator rack SKU "citadel-aggregator" (supported: citadel-compute-8, citadel-compute-16)`}}},

		{name: "machine outside the SKU's slots", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[1].Machines[3].Slot = 9 },
			want: []Violation{{m(0, 3) + ".rackSlot", `rack slot 9 is not a machine slot of rack SKU "citadel-compute-8" (machine slots: 1-8)`}}},
		{name: "two machines in one slot", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[1].Machines[1].Slot = 1 },
			want: []Violation{{m(0, 1) + ".rackSlot", `rack slot 1 is already used by machine "r1m0"`}}},
		{name: "an unnamed machine is named by its path", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) {
			c.Racks[1].Machines[0].Name, c.Racks[1].Machines[1].Slot = "", 1
		},
			want: []Violation{{m(0, 1) + ".rackSlot", "rack slot 1 is already used by " + m(0, 0)}}},
		{name: "appliance outside the SKU's appliance slots", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[0].Appliances[0].Slot = 8 },
			want: []Violation{{agg + ".storageApplianceConfigurationData[0].rackSlot", `rack slot 8 is not a storage appliance slot of rack SKU "citadel-aggregator" (appliance slots: 4-7)`}}},
		{name: "two appliances in one slot", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) {
			c.Racks[0].Appliances = append(c.Racks[0].Appliances, ApplianceSpec{Name: "sa2", Serial: "SA-2", Slot: 4})
		},
			want: []Violation{{agg + ".storageApplianceConfigurationData[1].rackSlot", `rack slot 4 is already used by storage appliance "sa1"`}}},
		{name: "machine in the appliance slot", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[0].Machines[2].Slot = 4 },
			want: []Violation{
				{agg + ".bareMetalMachineConfigurationData[2].rackSlot", `rack slot 4 is not a machine slot of rack SKU "citadel-aggregator" (machine slots: 1-3)`},
				{agg + ".storageApplianceConfigurationData[0].rackSlot", `rack slot 4 is already used by machine "r0m2"`},
			}},

		{name: "rack serial twice", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[2].Serial = "rack-1" },
			want: []Violation{{computeField(1) + ".rackSerialNumber", `rack serial number "rack-1" is already used by the rack at properties.computeRackDefinitions[0]`}}},
		{name: "machine serial twice", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[2].Machines[0].Serial = " sn-r1-m0" },
			want: []Violation{{m(1, 0) + ".serialNumber", `serial number " sn-r1-m0" is already used by machine "r1m0" in this cluster`}}},
		{name: "appliance serial of a machine", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[0].Appliances[0].Serial = "SN-R0-M0" },
			want: []Violation{{agg + ".storageApplianceConfigurationData[0].serialNumber", `serial number "SN-R0-M0" is already used by machine "r0m0" in this cluster`}}},
		{name: "machine serial of another cluster", spec: multiRack(3, 4, RackSKUCompute8), taken: Identities{Serials: map[string]string{"SN-R1-M0": "c2/m9"}},
			want: []Violation{{m(0, 0) + ".serialNumber", `serial number "SN-R1-M0" is already used by "c2/m9"`}}},
		{name: "BMC MAC twice, normalised", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[1].Machines[1].BMCMAC = "02-B1-01-00-00-00" },
			want: []Violation{{m(0, 1) + ".bmcMacAddress", `BMC MAC address "02-B1-01-00-00-00" is already used by machine "r1m0" (BMC MAC) in this cluster`}}},
		{name: "boot MAC twice", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[3].Machines[3].BootMAC = mac(0xb2, 3, 2) },
			want: []Violation{{m(2, 3) + ".bootMacAddress", `boot MAC address "02:b2:03:00:00:02" is already used by machine "r3m2" (boot MAC) in this cluster`}}},
		{name: "boot MAC of another machine's BMC", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[1].Machines[1].BootMAC = mac(0xb1, 1, 0) },
			want: []Violation{{m(0, 1) + ".bootMacAddress", `boot MAC address "02:b1:01:00:00:00" is already used by machine "r1m0" (BMC MAC) in this cluster`}}},
		{name: "MAC of another cluster", spec: multiRack(3, 4, RackSKUCompute8), taken: Identities{MACs: map[string]string{"02:b2:02:00:00:01": "c2/m3"}},
			want: []Violation{{m(1, 1) + ".bootMacAddress", `boot MAC address "02:b2:02:00:00:01" is already used by "c2/m3"`}}},
		{name: "malformed MAC", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[1].Machines[2].BMCMAC = "02:b1:01:00:00" },
			want: []Violation{{m(0, 2) + ".bmcMacAddress", `BMC MAC address "02:b1:01:00:00" is not a MAC address (six pairs of hex digits separated by ':' or '-')`}}},
		{name: "BMC address twice", spec: multiRack(3, 4, RackSKUCompute8), edit: func(c *ClusterSpec) { c.Racks[2].Machines[0].BMCAddress = "https://10.1.0.1/redfish/v1" },
			want: []Violation{{m(1, 0) + ".bmcConnectionString", `BMC address "https://10.1.0.1/redfish/v1" is already used by machine "r1m0" in this cluster`}}},
		{name: "BMC address of another cluster", spec: multiRack(3, 4, RackSKUCompute8), taken: Identities{BMCAddresses: map[string]string{"10.3.0.4": "c2/m1"}},
			want: []Violation{{m(2, 3) + ".bmcConnectionString", `BMC address "10.3.0.4" is already used by "c2/m1"`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cat := tc.cat
			if cat == nil {
				cat = builtin
			}
			spec := tc.spec
			if tc.edit != nil {
				tc.edit(&spec)
			}
			got := ValidateTopology(cat, spec, tc.taken)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ValidateTopology(%s) = %v, want %v\n(-want +got):\n%s", tc.name, got, tc.want, diff)
			}
		})
	}
}

// TestIdentitiesAdd: a cluster's own identities, recorded as taken, make
// every machine of it a duplicate.
func TestIdentitiesAdd(t *testing.T) {
	var ids Identities
	c := singleRack()
	c.Racks[0].Machines = c.Racks[0].Machines[:1]
	c.Racks[0].Machines[0].BMCMAC = "02-B1-00-00-00-00"
	c.Racks[0].Machines[0].BMCAddress = "HTTPS://[::FFFF:10.0.0.1]:443/redfish/v1"
	ids.Add("c1", c)
	want := Identities{
		Serials:      map[string]string{"SN-R0-M0": "c1/r0m0", "SA-1": "c1/sa1"},
		MACs:         map[string]string{"02:b1:00:00:00:00": "c1/r0m0", "02:b2:00:00:00:00": "c1/r0m0"},
		BMCAddresses: map[string]string{"10.0.0.1:443": "c1/r0m0"},
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("Add(c1) (-want +got):\n%s", diff)
	}
	got := ValidateTopology(Builtin(), c, ids)
	if len(got) != 5 {
		t.Errorf("ValidateTopology(the cluster, its own identities) = %v, want 5 violations", got)
	}
}

func TestNormalizeMAC(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff", true},
		{"AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff", true},
		{"00:1a-2B:3c-4D:5e", "00:1a:2b:3c:4d:5e", true},
		{"", "", false},
		{"aa:bb:cc:dd:ee", "", false},
		{"aa:bb:cc:dd:ee:ff:00", "", false},
		{"aa.bb.cc.dd.ee.ff", "", false},
		{"aabb.ccdd.eeff", "", false},
		{"gg:bb:cc:dd:ee:ff", "", false},
		{"aa:bb:cc:dd:ee:f ", "", false},
		{"aabbccddeeff:::::", "", false},
	} {
		got, ok := NormalizeMAC(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeMAC(%q) = %q, %v, want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNormalizeBMCAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1"},
		{" 10.0.0.1 ", "10.0.0.1"},
		{"redfish+https://10.0.0.1/redfish/v1", "10.0.0.1"},
		{"https://10.0.0.1:8443", "10.0.0.1:8443"},
		{"[2001:DB8::0001]", "2001:db8::1"},
		{"https://[2001:db8::1]:443/", "[2001:db8::1]:443"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"BMC-R1-M1.Example.Internal", "bmc-r1-m1.example.internal"},
		{"", ""},
	} {
		if got := NormalizeBMCAddress(tc.in); got != tc.want {
			t.Errorf("NormalizeBMCAddress(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRolesAndSKUForSlot(t *testing.T) {
	c := Builtin()
	for _, tc := range []struct {
		rack  string
		slot  int
		roles []string
		sku   string
		ok    bool
	}{
		{RackSKUAggregator, 1, []string{RoleControlPlane}, SKUController, true},
		{"CITADEL-AGGREGATOR", 3, []string{RoleControlPlane}, SKUController, true},
		{RackSKUAggregator, 4, []string{RoleCompute}, "", false}, // the storage appliance
		{RackSKUAggregator, 5, []string{RoleCompute}, "", false},
		{RackSKUSingle, 2, []string{RoleControlPlane}, SKUController, true},
		{RackSKUSingle, 4, []string{RoleCompute}, SKUCompute, true},
		{RackSKUSingle, 64, []string{RoleCompute}, SKUCompute, true},
		{RackSKUCompute16, 16, []string{RoleCompute}, SKUCompute, true},
		{RackSKUCompute8, 9, []string{RoleCompute}, "", false},
		{RackSKUHyperconverged, 1, []string{RoleCompute}, SKUHyperconverged, true},
		{"nope", 1, []string{RoleCompute}, "", false},
	} {
		if got := Roles(c, tc.rack, tc.slot); !cmp.Equal(got, tc.roles) {
			t.Errorf("Roles(%q, %d) = %v, want %v", tc.rack, tc.slot, got, tc.roles)
		}
		if sku, ok := SKUForSlot(c, tc.rack, tc.slot); sku != tc.sku || ok != tc.ok {
			t.Errorf("SKUForSlot(%q, %d) = %q, %v, want %q, %v", tc.rack, tc.slot, sku, ok, tc.sku, tc.ok)
		}
	}
}

// BenchmarkValidateTopology validates an aggregator and four compute racks
// of 16 machines against a boundary that already holds 1000 machines.
func BenchmarkValidateTopology(b *testing.B) {
	cat := Builtin()
	spec := multiRack(4, 16, RackSKUCompute16)
	var taken Identities
	for i := range 10 {
		other := multiRack(4, 25, RackSKUCompute16)
		for r := range other.Racks {
			for a := range other.Racks[r].Appliances {
				other.Racks[r].Appliances[a].Serial = fmt.Sprintf("OTHER-%d-SA-%d", i, a)
			}
			for m := range other.Racks[r].Machines {
				mm := &other.Racks[r].Machines[m]
				mm.Serial = fmt.Sprintf("OTHER-%d-%s", i, mm.Serial)
				mm.BMCMAC = fmt.Sprintf("04:%02x:%02x:00:01:%02x", i, r, m)
				mm.BootMAC = fmt.Sprintf("04:%02x:%02x:00:02:%02x", i, r, m)
				mm.BMCAddress = fmt.Sprintf("10.%d.%d.%d", 100+i, r, m+1)
			}
		}
		taken.Add(fmt.Sprintf("c%d", i), other)
	}
	if v := ValidateTopology(cat, spec, taken); len(v) != 0 {
		b.Fatalf("ValidateTopology = %v, want none", v)
	}
	for b.Loop() {
		ValidateTopology(cat, spec, taken)
	}
}
