package networkcloud

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/releases"
	"github.com/citadel-cloud/citadel/internal/update"
)

func TestFirmwareFor(t *testing.T) {
	fw := func(name, sku, component, version string) releases.ArtifactInfo {
		return releases.ArtifactInfo{Name: name, Kind: update.KindFirmware, MachineSKU: sku, Component: component, Version: version, SHA256: name}
	}
	all := []releases.Release{ // oldest first, as the catalog lists them
		{ClusterVersion: "4.1.0", Artifacts: []releases.ArtifactInfo{
			fw("bios-2.0.0", "compute", "BIOS", "2.0.0"),
			fw("bios-2.3.0", "compute", "BIOS", "2.3.0"),
			fw("bmc-7.10", "compute", "BMC", "7.10.30.00"),
		}},
		{ClusterVersion: "4.2.0", Artifacts: []releases.ArtifactInfo{
			{Name: "agent-2.9.0", Kind: update.KindAgent, Version: "2.9.0"},
			fw("bios-2.10.0", "compute", "BIOS", "2.10.0"),
			fw("gpu-bios-3.0.0", "gpu", "BIOS", "3.0.0"),
			fw("old-bundle", "compute", "", "9.0.0"), // from a bundle without components
		}},
		{ClusterVersion: "4.3.0", Artifacts: []releases.ArtifactInfo{
			fw("bios-2.10.0-again", "Compute", "bios", "2.10"),
		}},
	}
	tests := []struct {
		name                     string
		sku, component, baseline string
		want, wantRelease        string // "" when there is none
	}{
		{"the newest, of the newest release", "compute", "BIOS", "2.1.0", "bios-2.10.0-again", "4.3.0"},
		{"numeric parts compare as numbers", "compute", "BIOS", "2.4", "bios-2.10.0-again", "4.3.0"},
		{"none meets the baseline", "compute", "BIOS", "2.11", "", ""},
		{"exactly the baseline", "compute", "BMC", "7.10.30.00", "bmc-7.10", "4.1.0"},
		{"another SKU's", "gpu", "BIOS", "2.1.0", "gpu-bios-3.0.0", "4.2.0"},
		{"no package for the component", "compute", "NIC1", "1.0", "", ""},
		{"no package for the SKU", "storage", "BIOS", "1.0", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, release, ok := firmwareFor(all, tt.sku, tt.component, tt.baseline)
			if ok != (tt.want != "") || a.Name != tt.want || release != tt.wantRelease {
				t.Errorf("firmwareFor(%s, %s, %s) = %q of %q, %v; want %q of %q", tt.sku, tt.component, tt.baseline, a.Name, release, ok, tt.want, tt.wantRelease)
			}
		})
	}
	if _, _, ok := firmwareFor(nil, "compute", "BIOS", "1.0"); ok {
		t.Errorf("firmwareFor(no releases) found one")
	}
}

func TestForgetFlashed(t *testing.T) {
	rs := &bmcReadings{flashed: map[string]map[string]string{
		"m1": {"BIOS": "2.5.0", "BMC": "7.11"},
		"m2": {"BIOS": "2.5.0"},
	}}
	// m1's BIOS still shows drifted (its BMC applies the package at the
	// next reset): it stays flashed; its BMC is in sync now.
	rs.forgetFlashed("m1", []machine.DriftItem{{Item: "firmware/BIOS"}, {Item: "bios/BootMode"}, {Item: "kernel"}})
	rs.forgetFlashed("m3", nil) // never flashed
	if diff := cmp.Diff(map[string]map[string]string{"m1": {"BIOS": "2.5.0"}, "m2": {"BIOS": "2.5.0"}}, rs.flashed); diff != "" {
		t.Errorf("flashed (-want +got):\n%s", diff)
	}
	rs.forgetFlashed("m2", nil)
	if len(rs.flashed["m2"]) != 0 {
		t.Errorf("m2 in sync still has %v flashed", rs.flashed["m2"])
	}
}
