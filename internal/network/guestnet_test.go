package network

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGuestNetworkConfig(t *testing.T) {
	tests := []struct {
		name string
		nics []GuestNIC
		want string // the ethernets, as JSON
	}{
		{"none", nil, `{}`},
		{"an L3 network with the default route", []GuestNIC{{Name: "app", MAC: "02:AB:00:00:00:01",
			IPv4: netip.MustParsePrefix("10.1.0.7/24"), Gateway: netip.MustParseAddr("10.1.0.1")}},
			`{"app": {"match": {"macaddress": "02:ab:00:00:00:01"}, "set-name": "app", "dhcp4": false, "dhcp6": false,
				"addresses": ["10.1.0.7/24"], "routes": [{"to": "0.0.0.0/0", "via": "10.1.0.1"}]}}`},
		{"an L3 network and an L2 one", []GuestNIC{
			{Name: "eth1", MAC: "02:00:00:00:00:02"},
			{Name: "eth0", MAC: "02:00:00:00:00:01", IPv4: netip.MustParsePrefix("192.168.5.10/26")}},
			`{"eth0": {"match": {"macaddress": "02:00:00:00:00:01"}, "set-name": "eth0", "dhcp4": false, "dhcp6": false, "addresses": ["192.168.5.10/26"]},
			  "eth1": {"match": {"macaddress": "02:00:00:00:00:02"}, "set-name": "eth1", "dhcp4": false, "dhcp6": false}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := GuestNetworkConfig(tt.nics)
			var got struct {
				Network struct {
					Version   int             `json:"version"`
					Ethernets json.RawMessage `json:"ethernets"`
				} `json:"network"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			var gotE, wantE any
			json.Unmarshal(got.Network.Ethernets, &gotE)
			if err := json.Unmarshal([]byte(tt.want), &wantE); err != nil {
				t.Fatal(err)
			}
			if got.Network.Version != 2 {
				t.Errorf("version %d, want 2", got.Network.Version)
			}
			if diff := cmp.Diff(wantE, gotE); diff != "" {
				t.Errorf("ethernets (-want +got):\n%s", diff)
			}
			if again := GuestNetworkConfig(tt.nics); string(again) != string(out) {
				t.Errorf("not deterministic:\n%s\n%s", out, again)
			}
		})
	}
}

func BenchmarkGuestNetworkConfig(b *testing.B) {
	nics := []GuestNIC{{Name: "eth0", MAC: "02:00:00:00:00:01", IPv4: netip.MustParsePrefix("10.0.0.5/24"), Gateway: netip.MustParseAddr("10.0.0.1")},
		{Name: "eth1", MAC: "02:00:00:00:00:02"}}
	for b.Loop() {
		GuestNetworkConfig(nics)
	}
}
