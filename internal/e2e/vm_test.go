package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// TestVirtualMachines creates VMs through az on a simulated site whose
// agents run simulated VMs: a VM is placed, runs, powers off, starts and
// restarts; bad input is refused naming the field; a Hard anti-affinity
// hint keeps two VMs apart; what does not fit says why in one line; and
// many creates at once never overbook a machine.
func TestVirtualMachines(t *testing.T) {
	requireAz(t)
	t.Parallel()
	s := startVMSite(t, sim.Spec{Name: "vms", ComputeRacks: 3, MachinesPerRack: 2})
	az := newAzCLI(t, s.cp)
	t.Cleanup(func() { az.logTimings(t) })
	c := s.cp.Creds
	az.login(t, c)
	nc := s.nc
	vmBody := func(cores int, hints ...map[string]any) map[string]any {
		body := s.vmBody(cores, 4)
		if len(hints) > 0 {
			body["properties"].(map[string]any)["placementHints"] = hints
		}
		return body
	}
	type vm struct {
		Properties struct {
			BareMetalMachineID string `json:"bareMetalMachineId"`
			PowerState         string `json:"powerState"`
			DetailedStatus     string `json:"detailedStatus"`
			ReportedRestarts   int    `json:"reportedRestarts"`
			UserDataContent    string `json:"userDataContent"`
		} `json:"properties"`
	}
	show := func(name string) vm {
		var v vm
		az.json(t, &v, "resource", "show", "--ids", nc+"virtualMachines/"+name, "--api-version", ncAPI)
		return v
	}
	action := func(name, act string) {
		az.ok(t, "resource", "invoke-action", "--ids", nc+"virtualMachines/"+name, "--action", act, "--api-version", ncAPI, "--request-body", "{}")
	}

	az.ok(t, createNC(nc+"virtualMachines/vm1", jsonArg(t, vmBody(2)))...)
	v1 := show("vm1")
	if v1.Properties.PowerState != "On" || v1.Properties.DetailedStatus != "Running" || v1.Properties.BareMetalMachineID == "" {
		t.Fatalf("vm1 after its creation: %+v", v1.Properties)
	}
	if v1.Properties.UserDataContent != "" {
		t.Error("vm1's user data is shown")
	}
	host := v1.Properties.BareMetalMachineID[strings.LastIndexByte(v1.Properties.BareMetalMachineID, '/')+1:]
	d, err := s.cl.Desired(host)
	if err != nil || len(d.VMs) != 1 || d.VMs[0].Name != "vm1" || d.VMs[0].Cores != 2 {
		t.Errorf("the desired state of %s = %+v (%v), want vm1 with 2 cores", host, d.VMs, err)
	}
	action("vm1", "powerOff")
	if got := show("vm1").Properties; got.PowerState != "Off" || got.DetailedStatus != "Stopped" {
		t.Errorf("vm1 after powerOff: %+v", got)
	}
	action("vm1", "start")
	action("vm1", "restart")
	if got := show("vm1").Properties; got.PowerState != "On" || got.ReportedRestarts != 1 {
		t.Errorf("vm1 after start and restart: %+v", got)
	}

	// Bad input is refused naming the field, and creates nothing.
	bad := vmBody(0)
	az.fail(t, []string{"properties.cpuCores", "at least 2"}, createNC(nc+"virtualMachines/bad", jsonArg(t, bad))...)
	bad = vmBody(2)
	bad["properties"].(map[string]any)["vmImage"] = "citadel/missing:1"
	az.fail(t, []string{"properties.vmImage", "citadel image import"}, createNC(nc+"virtualMachines/bad", jsonArg(t, bad))...)

	// Hard anti-affinity to vm1's machine places vm2 elsewhere.
	az.ok(t, createNC(nc+"virtualMachines/vm2", jsonArg(t, vmBody(2, map[string]any{"hintType": "AntiAffinity",
		"schedulingExecution": "Hard", "scope": "Machine", "resourceId": v1.Properties.BareMetalMachineID})))...)
	if got := show("vm2").Properties.BareMetalMachineID; got == "" || strings.EqualFold(got, v1.Properties.BareMetalMachineID) {
		t.Errorf("vm2 is on %q, want another machine than vm1's %s", got, v1.Properties.BareMetalMachineID)
	}
	// More than any machine has: one line says why.
	az.fail(t, []string{"0/6 machines", "lacking 500 free cores"}, createNC(nc+"virtualMachines/huge", jsonArg(t, vmBody(500)))...)
	// CPU features and GPUs are asked for with tags: these machines'
	// CPUs have AMX, and they have no GPU.
	tagged := func(tags map[string]string) map[string]any {
		body := vmBody(2)
		body["tags"] = tags
		return body
	}
	az.ok(t, createNC(nc+"virtualMachines/amx", jsonArg(t, tagged(map[string]string{"citadel-cpu-features": "amx_tile,amx_bf16"})))...)
	az.fail(t, []string{"0/6 machines", "lacking feature sgx"}, createNC(nc+"virtualMachines/sgx",
		jsonArg(t, tagged(map[string]string{"citadel-cpu-features": "sgx"})))...)
	az.fail(t, []string{"0/6 machines", "lacking 1 free GPU"}, createNC(nc+"virtualMachines/gpu",
		jsonArg(t, tagged(map[string]string{"citadel-gpus": "1"})))...)
	az.fail(t, []string{"tags.citadel-gpus", "0 to 8"}, createNC(nc+"virtualMachines/gpus",
		jsonArg(t, tagged(map[string]string{"citadel-gpus": "many"})))...)
	az.ok(t, "resource", "delete", "--ids", nc+"virtualMachines/amx", "--api-version", ncAPI)

	// Many creates at once: each machine's VMs fit its room.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			body := vmBody(16)
			r, err := s.cp.Client.Do(t.Context(), http.MethodPut, fmt.Sprintf("%svirtualMachines/many%02d?api-version=%s", nc, i, ncAPI), body)
			if err != nil || r.Status != http.StatusCreated {
				t.Errorf("PUT many%02d: %v %v", i, r, err)
				return
			}
			ncWait(t, s.cp.Client, r)
		})
	}
	wg.Wait()
	placed := 0
	for _, m := range s.cl.Machines {
		d, err := s.cl.Desired(m.Name)
		if err != nil {
			t.Fatal(err)
		}
		cores := 0
		for _, x := range d.VMs {
			cores += x.Cores
		}
		if cores > 62 { // 64 cores less the host's 2
			t.Errorf("%s runs %d cores of VMs: %v", m.Name, cores, vmNames(d.VMs))
		}
		placed += len(d.VMs)
	}
	// 6 compute machines of 62 cores: 3 VMs of 16 each, after vm1 and vm2.
	if placed != 2+6*3 {
		t.Errorf("%d VMs placed, want %d (2 and 3 of 16 cores on each of 6 machines)", placed, 2+6*3)
	}

	az.ok(t, "resource", "delete", "--ids", nc+"virtualMachines/vm1", "--api-version", ncAPI)
	waitUntil(t, "vm1 off its machine", 10*time.Second, func() bool {
		d, _ := s.cl.Desired(host)
		for _, x := range d.VMs {
			if x.Name == "vm1" {
				return false
			}
		}
		return true
	})
}

func vmNames(vms []agentapi.VM) []string {
	var out []string
	for _, v := range vms {
		out = append(out, fmt.Sprintf("%s(%d)", v.Name, v.Cores))
	}
	return out
}
