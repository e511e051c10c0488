package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/sim"
)

// TestVMEvacuationAndFailover moves VMs off machines on a simulated site:
// a cordon with evacuate True (through az) moves every VM of its machine
// to others, and a machine whose power fails has its VMs restarted
// elsewhere once it is declared Failed and fenced. A checker watching
// every simulated host throughout finds no VM running on two machines at
// once, and at the end each VM runs exactly once, where its resource says.
// One VM has a Persistent OS disk and a data volume: they are attached
// where it runs, move with it, are its alone, and go (the OS disk) or are
// detached (the volume) with it.
func TestVMEvacuationAndFailover(t *testing.T) {
	requireAz(t)
	t.Parallel()
	s := startVMSite(t, sim.Spec{Name: "evac", ComputeRacks: 3, MachinesPerRack: 2})
	az := newAzCLI(t, s.cp)
	c := s.cp.Creds
	az.login(t, c)

	stWait(t, s.cp.Client, s.nc+"storageAppliances/"+s.cl.Spec.Name+"-san", "the SAN available", func(v map[string]any) bool {
		return v["properties"].(map[string]any)["detailedStatus"] == "Available"
	})
	data := s.nc + "volumes/data00"
	if st := ncOperation(t, s.cp.Client, http.MethodPut, data+"?api-version="+ncAPI, map[string]any{"location": "local",
		"extendedLocation": s.location, "properties": map[string]any{"sizeMiB": 1024}}); st.Status != "Succeeded" {
		t.Fatalf("PUT %s: %+v", data, st)
	}
	withDisks := func(body map[string]any) map[string]any {
		body["properties"].(map[string]any)["storageProfile"] = map[string]any{"volumeAttachments": []string{data},
			"osDisk": map[string]any{"createOption": "Persistent", "diskSizeGB": 10}}
		return body
	}
	osDisk := s.nc + "volumes/vm00-os"

	// Twelve VMs of 16 cores: two on each of the six machines, which
	// leaves each room for two more. vm00 has its disks on the SAN.
	vms := s.createVMs(t, "vm", 12, 16, 4, func(i int, body map[string]any) {
		if i == 0 {
			withDisks(body)
		}
	})
	// checkDisks checks that vm00's disks are attached where it runs,
	// and that its host is given them.
	checkDisks := func(when string) {
		t.Helper()
		host, _ := s.vmHost(t, "vm00")
		d, err := s.cl.Desired(host)
		if err != nil {
			t.Fatal(err)
		}
		var disks []string
		for _, v := range d.VMs {
			for _, k := range v.Disks {
				if v.Name == "vm00" && k.URI != "" && k.PSK != "" {
					disks = append(disks, fmt.Sprintf("%s os=%v", k.Volume[strings.LastIndexByte(k.Volume, '/')+1:], k.OS))
				}
			}
		}
		if want := []string{"vm00-os os=true", "data00 os=false"}; !slices.Equal(disks, want) {
			t.Errorf("%s: %s is given vm00's disks %v, want %v", when, host, disks, want)
		}
		for _, vol := range []string{osDisk, data} {
			var v stVolume
			ncGet(t, s.cp.Client, vol, &v)
			if len(v.Properties.Attachments) != 1 || !strings.HasSuffix(fmt.Sprint(v.Properties.Attachments[0]["bareMetalMachineId"]), "/"+host) {
				t.Errorf("%s: %s's attachments are %v, want one to %s", when, vol, v.Properties.Attachments, host)
			}
		}
	}
	checkDisks("after its creation")
	// A volume is one VM's alone, and not deleted while it uses it.
	r, err := s.cp.Client.Do(t.Context(), http.MethodPut, s.nc+"virtualMachines/other?api-version="+ncAPI, withDisks(s.vmBody(2, 4)))
	if err != nil || r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "VolumeInUse") {
		t.Errorf("a VM attaching vm00's volume: %v %v, want 409 VolumeInUse", r, err)
	}
	if r, err := s.cp.Client.Do(t.Context(), http.MethodDelete, data+"?api-version="+ncAPI, nil); err != nil || r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "vm00") {
		t.Errorf("DELETE of vm00's volume: %v %v, want 409 naming vm00", r, err)
	}
	hostOf := func(name string) (machine, power string) { return s.vmHost(t, name) }
	onMachine := func(machine string) []string {
		var out []string
		for _, name := range vms {
			if h, _ := hostOf(name); h == machine {
				out = append(out, name)
			}
		}
		return out
	}

	checked := s.watchVMs(t)

	// A cordon with evacuate True moves the machine's VMs elsewhere.
	drained, _ := hostOf(vms[0])
	moving := onMachine(drained)
	az.ok(t, "resource", "invoke-action", "--ids", s.machineID(drained), "--action", "cordon", "--api-version", ncAPI,
		"--request-body", `{"evacuate": "True"}`)
	for _, name := range moving {
		if h, power := hostOf(name); h == drained || power != "On" {
			t.Errorf("%s after the evacuation of %s: on %s, power %s", name, drained, h, power)
		}
	}
	if d, _ := s.cl.Desired(drained); len(d.VMs) != 0 {
		t.Errorf("%s still runs %v after its evacuation", drained, vmNames(d.VMs))
	}
	checkDisks("after its evacuation")
	var cordoned struct {
		Properties struct {
			ActionStates []struct {
				ActionType, Status, Message string
				StepStates                  []struct{ StepName string }
			}
		} `json:"properties"`
	}
	ncGet(t, s.cp.Client, s.machineID(drained), &cordoned)
	if a := cordoned.Properties.ActionStates; len(a) == 0 || a[0].Status != "Completed" || len(a[0].StepStates) != 1+len(moving) {
		t.Errorf("the cordon's action state: %+v, want Completed with a step per VM moved (%d)", a, len(moving))
	}

	// A machine loses its power: once Failed, it is fenced and its VMs
	// run on the others (there is room on the four left).
	failed, _ := hostOf(vms[len(vms)-1])
	lost := onMachine(failed)
	if err := s.cl.PowerOff(failed); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the failed machine's VMs running elsewhere", 60*time.Second, func() bool {
		for _, name := range lost {
			if h, power := hostOf(name); h == failed || power != "On" {
				return false
			}
		}
		return true
	})
	checkDisks("after the failover")
	// It comes back with none of them.
	if err := s.cl.PowerOn(failed); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, failed+" Ready again", 30*time.Second, func() bool {
		var r struct {
			Properties struct{ LivenessState string } `json:"properties"`
		}
		ncGet(t, s.cp.Client, s.machineID(failed), &r)
		return r.Properties.LivenessState == "Ready"
	})
	time.Sleep(time.Second) // a few heartbeats: it would run what it still listed
	if twice, _ := checked(); len(twice) > 0 {
		t.Errorf("VMs ran on two machines at once: %v", twice)
	}

	// Each VM runs once, where its resource says.
	s.runningOnce(t, vms)

	// Its deletion deletes vm00's OS disk and detaches its volume, which
	// can then go.
	az.ok(t, "resource", "delete", "--ids", s.nc+"virtualMachines/vm00", "--api-version", ncAPI)
	if r, err := s.cp.Client.Do(t.Context(), http.MethodGet, osDisk+"?api-version="+ncAPI, nil); err != nil || r.Status != http.StatusNotFound {
		t.Errorf("GET vm00's OS disk after its deletion: %v %v, want 404", r, err)
	}
	az.ok(t, "resource", "delete", "--ids", data, "--api-version", ncAPI)
}
