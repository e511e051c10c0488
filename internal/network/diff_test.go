package network

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiffConfig(t *testing.T) {
	base := ConfigDB{
		"VLAN": {
			"Vlan501": {"vlanid": "501", "mtu": "1500"},
			"Vlan601": {"vlanid": "601", "mtu": "9000"},
		},
		"VRF": {"Vrf_l3dom": {}},
	}
	tests := []struct {
		name    string
		running func(ConfigDB)
		want    []ConfigDiff
	}{
		{"same", func(ConfigDB) {}, nil},
		{"empty table against no table", func(db ConfigDB) { db["ACL_TABLE"] = map[string]map[string]string{} }, nil},
		{"changed field", func(db ConfigDB) { db["VLAN"]["Vlan501"]["mtu"] = "9000" },
			[]ConfigDiff{{Kind: DiffChanged, Table: "VLAN", Key: "Vlan501", Field: "mtu", Intended: "1500", Running: "9000"}}},
		{"missing field", func(db ConfigDB) { delete(db["VLAN"]["Vlan601"], "mtu") },
			[]ConfigDiff{{Kind: DiffMissing, Table: "VLAN", Key: "Vlan601", Field: "mtu", Intended: "9000"}}},
		{"unexpected field", func(db ConfigDB) { db["VRF"]["Vrf_l3dom"]["vni"] = "" },
			[]ConfigDiff{{Kind: DiffUnexpected, Table: "VRF", Key: "Vrf_l3dom", Field: "vni"}}},
		{"missing entry", func(db ConfigDB) { delete(db["VLAN"], "Vlan501") },
			[]ConfigDiff{{Kind: DiffMissing, Table: "VLAN", Key: "Vlan501"}}},
		{"missing table", func(db ConfigDB) { delete(db, "VRF") },
			[]ConfigDiff{{Kind: DiffMissing, Table: "VRF", Key: "Vrf_l3dom"}}},
		{"unexpected entries, sorted", func(db ConfigDB) {
			db["VLAN"]["Vlan999"] = map[string]string{"vlanid": "999"}
			db["BGP_NEIGHBOR"] = map[string]map[string]string{"default|10.0.0.1": {"asn": "1"}}
			db["VLAN"]["Vlan100"] = nil
		}, []ConfigDiff{
			{Kind: DiffUnexpected, Table: "BGP_NEIGHBOR", Key: "default|10.0.0.1"},
			{Kind: DiffUnexpected, Table: "VLAN", Key: "Vlan100"},
			{Kind: DiffUnexpected, Table: "VLAN", Key: "Vlan999"},
		}},
		{"several, in order", func(db ConfigDB) {
			db["VLAN"]["Vlan601"]["mtu"] = "1500"
			db["VLAN"]["Vlan601"]["admin_status"] = "down"
			db["VLAN"]["Vlan501"]["vlanid"] = "502"
			delete(db["VRF"], "Vrf_l3dom")
		}, []ConfigDiff{
			{Kind: DiffChanged, Table: "VLAN", Key: "Vlan501", Field: "vlanid", Intended: "501", Running: "502"},
			{Kind: DiffUnexpected, Table: "VLAN", Key: "Vlan601", Field: "admin_status", Running: "down"},
			{Kind: DiffChanged, Table: "VLAN", Key: "Vlan601", Field: "mtu", Intended: "9000", Running: "1500"},
			{Kind: DiffMissing, Table: "VRF", Key: "Vrf_l3dom"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			running := base.Clone()
			tt.running(running)
			got := DiffConfig(base, running)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DiffConfig mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if got := DiffConfig(nil, nil); got != nil {
		t.Errorf("DiffConfig(nil, nil) = %v, want nil", got)
	}
	if got := DiffConfig(base, nil); len(got) != 3 {
		t.Errorf("DiffConfig(base, nil) = %v, want its 3 entries missing", got)
	}
}

func TestConfigDiffString(t *testing.T) {
	tests := []struct {
		d    ConfigDiff
		want string
	}{
		{ConfigDiff{Kind: DiffChanged, Table: "VLAN", Key: "Vlan501", Field: "mtu", Intended: "1500", Running: "9000"}, "VLAN|Vlan501 mtu: intended 1500, running 9000"},
		{ConfigDiff{Kind: DiffMissing, Table: "VLAN", Key: "Vlan501", Field: "mtu", Intended: "1500"}, "VLAN|Vlan501 mtu: intended 1500, missing from running"},
		{ConfigDiff{Kind: DiffUnexpected, Table: "VRF", Key: "Vrf_a", Field: "vni", Running: ""}, `VRF|Vrf_a vni: not intended, running ""`},
		{ConfigDiff{Kind: DiffMissing, Table: "VLAN_MEMBER", Key: "Vlan501|Ethernet8"}, "VLAN_MEMBER|Vlan501|Ethernet8: missing from running"},
		{ConfigDiff{Kind: DiffUnexpected, Table: "VLAN", Key: "Vlan999"}, "VLAN|Vlan999: unexpected, not intended"},
		{ConfigDiff{Kind: DiffChanged, Table: "PORT", Key: "Ethernet0", Field: "description", Intended: "to nf1-AggrRack-CE1/Ethernet0", Running: "x\ny"},
			`PORT|Ethernet0 description: intended "to nf1-AggrRack-CE1/Ethernet0", running "x\ny"`},
		{ConfigDiff{Kind: DiffChanged, Table: "VLAN", Key: "Vlan501", Field: "members@", Intended: "Ethernet0,Ethernet4", Running: "Ethernet0"},
			`VLAN|Vlan501 members@: intended "Ethernet0,Ethernet4", running Ethernet0`},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func BenchmarkDiffConfig(b *testing.B) {
	topo, err := PlanFabric(planSpec(8, 16, "10.0.0.0/24"))
	if err != nil {
		b.Fatal(err)
	}
	intended, err := Render(topo, "nf1-CompRack8-TOR2", benchIntent(50))
	if err != nil {
		b.Fatal(err)
	}
	// Drift: a changed field, a missing and an unexpected entry.
	running := intended.Clone()
	running["VLAN"]["Vlan2000"]["mtu"] = "9000"
	delete(running["VLAN_MEMBER"], "Vlan2001|Ethernet8")
	running["VLAN"]["Vlan3999"] = map[string]string{"vlanid": "3999"}
	for b.Loop() {
		if d := DiffConfig(intended, running); len(d) != 3 {
			b.Fatalf("DiffConfig found %d differences, want 3", len(d))
		}
	}
}
