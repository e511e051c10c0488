package networkcloud

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/images"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// oneImage is an image catalog of one image, whatever the name asked.
type oneImage images.Image

func (i oneImage) Lookup(context.Context, string) (images.Image, error) { return images.Image(i), nil }

// TestVMSpecNetworks: a VM's host is given a NIC per attachment on a
// network with a VLAN, with its address, and, when the VM has no
// networkData of its own, a network-config that sets them up, the default
// route through its network's gateway.
func TestVMSpecNetworks(t *testing.T) {
	e := newNetEnv(t)
	e.p.cfg.Images = oneImage{Name: "tiny", OSType: "Linux", SHA256: "ab", Size: 2}
	l3 := e.mustPut(t, networkID("l3Networks", "app"), map[string]any{"l3IsolationDomainId": l3Domain, "vlan": 501,
		"ipv4ConnectedPrefix": "10.1.0.0/24", "ipAllocationType": "IPV4"})
	l2 := e.mustPut(t, networkID("l2Networks", "raw"), map[string]any{"l2IsolationDomainId": l2Domain})
	vm := func(networkData string) *resource.Resource {
		return &resource.Resource{ID: testGroup + "/providers/" + vmType + "/vm1", Name: "vm1", Properties: map[string]any{
			"cpuCores": 2, "memorySizeGB": 2, "vmImage": "tiny", "networkDataContent": networkData,
			"networkAttachments": []any{
				map[string]any{"attachedNetworkId": l3.ID, "ipAllocationMethod": "Static", "ipv4Address": "10.1.0.7",
					"defaultGateway": "True", "macAddress": "02:00:00:00:00:01", "networkAttachmentName": "app"},
				map[string]any{"attachedNetworkId": l2.ID, "ipAllocationMethod": "Disabled", "macAddress": "02:00:00:00:00:02"},
			}}}
	}
	r := vm("")
	spec, err := e.p.vmSpec(t.Context(), r, vmOf(r))
	if err != nil {
		t.Fatal(err)
	}
	wantNICs := []agentapi.VMNIC{{Name: "app", VLAN: 501, MAC: "02:00:00:00:00:01", IPv4: "10.1.0.7/24"},
		{Name: "eth1", VLAN: 400, MAC: "02:00:00:00:00:02"}}
	if diff := cmp.Diff(wantNICs, spec.NICs); diff != "" {
		t.Errorf("NICs (-want +got):\n%s", diff)
	}
	var cfg struct {
		Network struct {
			Ethernets map[string]struct {
				Addresses []string          `json:"addresses"`
				Routes    []map[string]any  `json:"routes"`
				Match     map[string]string `json:"match"`
			} `json:"ethernets"`
		} `json:"network"`
	}
	if err := json.Unmarshal([]byte(spec.NetworkData), &cfg); err != nil {
		t.Fatalf("networkData %q: %v", spec.NetworkData, err)
	}
	app, raw := cfg.Network.Ethernets["app"], cfg.Network.Ethernets["eth1"]
	if len(app.Addresses) != 1 || app.Addresses[0] != "10.1.0.7/24" || len(app.Routes) != 1 || app.Routes[0]["via"] != "10.1.0.1" ||
		raw.Match["macaddress"] != "02:00:00:00:00:02" || len(raw.Addresses) != 0 || len(raw.Routes) != 0 {
		t.Errorf("networkData from the attachments:\n%s", spec.NetworkData)
	}

	own := "network:\n  version: 2\n"
	r = vm(base64.StdEncoding.EncodeToString([]byte(own)))
	if spec, err := e.p.vmSpec(t.Context(), r, vmOf(r)); err != nil || spec.NetworkData != own {
		t.Errorf("with networkData of its own: %q, %v; want it as given", spec.NetworkData, err)
	}
}
