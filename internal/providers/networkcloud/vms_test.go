package networkcloud

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
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

// TestPlaceGivesGPUs: a VM that asks for GPUs is given free ones of its
// machine, never one another VM has; when none is left, it says so.
func TestPlaceGivesGPUs(t *testing.T) {
	e := newMoveEnv(t)
	for i, m := range e.machines {
		e.upsert(t, m, map[string]any{"agentInventory": jsonValue(agentapi.Inventory{GPUs: []agentapi.GPU{
			{PCIAddress: fmt.Sprintf("0000:4%d:00.0", i)}, {PCIAddress: fmt.Sprintf("0000:5%d:00.0", i)}}})})
	}
	given := map[string]string{} // PCI address → VM
	message := func(m *resource.Resource) string { return "on " + m.Name }
	for i := range 4 {
		vm := &resource.Resource{ID: fmt.Sprintf("%s/providers/%s/g%d", testGroup, vmType, i), Tags: map[string]string{tagGPUs: "1"}}
		e.upsert(t, vm.ID, map[string]any{"clusterId": clusterID})
		v := vmProperties{ClusterID: clusterID, CPUCores: 2, MemorySizeGB: 2}
		spec := agentapi.VM{ID: vm.ID, Name: fmt.Sprint("g", i), Power: "On", Cores: 2, MemoryMiB: 2048}
		m, _, err := e.p.place(t.Context(), vm, v, func(*resource.Resource) (agentapi.VM, error) { return spec, nil }, "", message)
		if err != nil {
			t.Fatalf("place g%d: %v", i, err)
		}
		for _, x := range hostedVMs(m) {
			if x.ID != vm.ID {
				continue
			}
			if len(x.GPUs) != 1 {
				t.Fatalf("g%d on %s is given GPUs %v, want one", i, m.Name, x.GPUs)
			}
			if other, ok := given[x.GPUs[0]]; ok {
				t.Errorf("g%d is given %s, which %s has", i, x.GPUs[0], other)
			}
			given[x.GPUs[0]] = vm.ID
		}
	}
	if len(given) != 4 {
		t.Errorf("GPUs given: %v, want 4 distinct", given)
	}
	// Two are left, one on each of two machines: a VM asking for two
	// fits nowhere.
	vm := &resource.Resource{ID: testGroup + "/providers/" + vmType + "/big", Tags: map[string]string{tagGPUs: "2"}}
	e.upsert(t, vm.ID, map[string]any{"clusterId": clusterID})
	_, _, err := e.p.place(t.Context(), vm, vmProperties{ClusterID: clusterID, CPUCores: 2, MemorySizeGB: 2},
		func(*resource.Resource) (agentapi.VM, error) {
			return agentapi.VM{ID: vm.ID, Cores: 2, MemoryMiB: 2048}, nil
		}, "", message)
	if err == nil || !strings.Contains(err.Error(), "lacking 2 free GPUs") {
		t.Errorf("placing a VM of 2 GPUs: %v, want 'lacking 2 free GPUs'", err)
	}
}

func TestHardwareNeeds(t *testing.T) {
	tests := []struct {
		tags         map[string]string
		features     []string
		gpus         int
		wantErrField string
	}{
		{nil, nil, 0, ""},
		{map[string]string{"env": "prod"}, nil, 0, ""},
		{map[string]string{"Citadel-CPU-Features": " AMX_TILE, avx512f,amx_tile"}, []string{"amx_tile", "avx512f"}, 0, ""},
		{map[string]string{"citadel-gpus": "2"}, nil, 2, ""},
		{map[string]string{"citadel-gpus": "9"}, nil, 0, "tags.citadel-gpus"},
		{map[string]string{"citadel-gpus": "-1"}, nil, 0, "tags.citadel-gpus"},
		{map[string]string{"citadel-cpu-features": "amx tile"}, nil, 0, "tags.citadel-cpu-features"},
		{map[string]string{"citadel-cpu-features": ""}, nil, 0, "tags.citadel-cpu-features"},
	}
	for _, tt := range tests {
		features, gpus, err := hardwareNeeds(tt.tags)
		if tt.wantErrField != "" {
			if e, ok := errors.AsType[*arm.Error](err); !ok || e.Target != tt.wantErrField {
				t.Errorf("hardwareNeeds(%v) error = %v, want one naming %s", tt.tags, err, tt.wantErrField)
			}
			continue
		}
		if err != nil || !slices.Equal(features, tt.features) || gpus != tt.gpus {
			t.Errorf("hardwareNeeds(%v) = %v, %d, %v; want %v, %d", tt.tags, features, gpus, err, tt.features, tt.gpus)
		}
	}
}

// TestWaitVM: waiting for a VM's report returns once its host reported
// what is waited for, not before, and says what it last reported when it
// times out.
func TestWaitVM(t *testing.T) {
	e := newNetEnv(t)
	vm := networkID("virtualMachines", "w1")
	e.upsert(t, vm, map[string]any{"clusterId": clusterID, "powerState": "Off", "detailedStatus": "Provisioning"})
	on := func(v vmReport) bool { return v.PowerState == "On" }

	got := make(chan *resource.Resource, 1)
	go func() {
		r, err := e.p.waitVM(t.Context(), vm, on)
		if err != nil {
			t.Errorf("waitVM: %v", err)
		}
		got <- r
	}()
	select {
	case r := <-got:
		t.Fatalf("waitVM returned %v before the VM was On", r.Properties)
	case <-time.After(300 * time.Millisecond):
	}
	e.upsert(t, vm, map[string]any{"powerState": "On", "detailedStatus": "Running"})
	select {
	case r := <-got:
		if r == nil || str(r.Properties, "powerState") != "On" {
			t.Errorf("waitVM returned %v, want the VM On", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitVM did not return once the VM was On")
	}

	e.p.cfg.VMTimeout = 200 * time.Millisecond
	_, err := e.p.waitVM(t.Context(), vm, func(v vmReport) bool { return v.ReportedRestarts > 0 })
	if ae, ok := errors.AsType[*arm.Error](err); !ok || ae.Code != "VirtualMachineNotReady" || !strings.Contains(ae.Message, "Running") {
		t.Errorf("waitVM for a restart that never comes: %v, want VirtualMachineNotReady saying it is Running", err)
	}
}

// TestUntilVMSince: waiting from a revision (the one that placed the VM)
// takes no earlier state of the VM for an answer, and ends as soon as
// the VM is deleted.
func TestUntilVMSince(t *testing.T) {
	e := newNetEnv(t)
	e.p.cfg.VMTimeout = time.Minute
	vm := networkID("virtualMachines", "w2")
	e.upsert(t, vm, map[string]any{"clusterId": clusterID, "powerState": "On", "detailedStatus": "Running"}) // an earlier life
	r, err := e.p.lookup(t.Context(), vm)
	if err != nil {
		t.Fatal(err)
	}
	earlier, _ := r.Revision()
	on := func(v vmReport) bool { return v.PowerState == "On" }
	type result struct {
		reached bool
		err     error
	}
	wait := func(since int64) <-chan result {
		done := make(chan result, 1)
		go func() {
			_, reached, err := e.p.untilVM(t.Context(), mustID(vm), since, on)
			done <- result{reached, err}
		}()
		return done
	}

	got := wait(earlier + 1)
	select {
	case r := <-got:
		t.Fatalf("untilVM since %d returned %+v on the VM On at %d", earlier+1, r, earlier)
	case <-time.After(300 * time.Millisecond):
	}
	e.upsert(t, vm, map[string]any{"detailedStatusMessage": "reported again"})
	select {
	case r := <-got:
		if !r.reached || r.err != nil {
			t.Errorf("untilVM once the VM is On at a later revision: %+v, want reached", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("untilVM did not return once the VM was On at a later revision")
	}

	got = wait(earlier + 1000)
	time.Sleep(100 * time.Millisecond)
	if err := e.svc.Remove(t.Context(), mustID(vm)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != nil { // its caller's refresh finds it gone
			t.Errorf("untilVM of a VM deleted: %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("untilVM did not return once the VM was deleted")
	}
}
