package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// vmSite is a simulated site ready for virtual machines: its agents
// heartbeat every 300 ms and its machines are Ready, the image catalog
// has citadel/tiny:1, the cluster has the cloud services network csn1
// every VM attaches to, and its SAN takes volumes.
type vmSite struct {
	*rolloutSite
	nc       string // the resource group's Microsoft.NetworkCloud/ prefix
	csn      string
	location map[string]string
}

func startVMSite(t testing.TB, spec sim.Spec, options ...func(*server.Config)) *vmSite {
	t.Helper()
	return vmsOn(t, startSiteOf(t, spec, map[string]any{"strategyType": "Rack", "thresholdType": "PercentSuccess",
		"thresholdValue": 100}, 300*time.Millisecond, append([]func(*server.Config){rolloutOptions, func(c *server.Config) {
		c.ApplianceCheck = 200 * time.Millisecond // its SAN takes volumes once checked
	}}, options...)...))
}

// vmsOn readies site for virtual machines: the image, csn1, and its
// machines Ready.
func vmsOn(t testing.TB, site *rolloutSite) *vmSite {
	t.Helper()
	s := &vmSite{rolloutSite: site}
	if _, err := s.cp.Images.Import(t.Context(), "citadel/tiny:1", "Linux", "UEFI", strings.NewReader("a tiny image")); err != nil {
		t.Fatal(err)
	}
	s.location = ncClusterLocation(t, s.cp.Client, s.clusterID)
	s.nc = "/subscriptions/" + s.cp.Creds.SubscriptionID + "/resourceGroups/" + s.cl.Spec.Name + "/providers/Microsoft.NetworkCloud/"
	s.csn = s.nc + "cloudServicesNetworks/csn1"
	if st := ncOperation(t, s.cp.Client, http.MethodPut, s.csn+"?api-version="+ncAPI, map[string]any{"location": "local",
		"extendedLocation": s.location, "properties": map[string]any{}}); st.Status != "Succeeded" {
		t.Fatalf("PUT %s: %+v", s.csn, st)
	}
	// The machines' resources show them Ready once their agents'
	// heartbeats are written, a few seconds after the agents start.
	waitUntil(t, "every machine Ready", 30*time.Second, func() bool {
		for _, m := range s.cl.Machines {
			var r struct {
				Properties struct{ ReadyState string } `json:"properties"`
			}
			if ncGet(t, s.cp.Client, s.machineID(m.Name), &r); r.Properties.ReadyState != "True" {
				return false
			}
		}
		return true
	})
	return s
}

// createVMs creates VMs of cores and memoryGB named prefix00 on, at
// once, and returns their names.
func (s *vmSite) createVMs(t testing.TB, prefix string, n, cores, memoryGB int, edit func(i int, body map[string]any)) []string {
	t.Helper()
	var names []string
	var wg sync.WaitGroup
	for i := range n {
		name := fmt.Sprintf("%s%02d", prefix, i)
		names = append(names, name)
		body := s.vmBody(cores, memoryGB)
		if edit != nil {
			edit(i, body)
		}
		wg.Go(func() {
			if st := ncOperation(t, s.cp.Client, http.MethodPut, s.nc+"virtualMachines/"+name+"?api-version="+ncAPI, body); st.Status != "Succeeded" {
				t.Errorf("PUT %s: %+v", name, st)
			}
		})
	}
	wg.Wait()
	return names
}

// runningOnce checks that each VM of names runs on exactly one simulated
// host, the one its resource names, and is On.
func (s *vmSite) runningOnce(t testing.TB, names []string) {
	t.Helper()
	runs := map[string][]string{}
	for _, m := range s.cl.Machines {
		driver, err := s.cl.VMs(m.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range driver.Running() {
			name := id[strings.LastIndexByte(id, '/')+1:]
			runs[name] = append(runs[name], m.Name)
		}
	}
	for _, name := range names {
		h, power := s.vmHost(t, name)
		if got := runs[name]; len(got) != 1 || got[0] != h || power != "On" {
			t.Errorf("%s runs on %v; its resource says %s, power %s", name, got, h, power)
		}
	}
}

// vmBody is the body of a PUT of a VM of cores and memoryGB on csn1.
func (s *vmSite) vmBody(cores, memoryGB int) map[string]any {
	return map[string]any{"location": "local", "extendedLocation": s.location, "properties": map[string]any{
		"adminUsername": "azureuser", "cpuCores": cores, "memorySizeGB": memoryGB, "vmImage": "citadel/tiny:1",
		"userDataContent":                base64.StdEncoding.EncodeToString([]byte("#cloud-config\n")),
		"cloudServicesNetworkAttachment": map[string]any{"attachedNetworkId": s.csn, "ipAllocationMethod": "Dynamic"},
		"storageProfile":                 map[string]any{"osDisk": map[string]any{"diskSizeGB": 10}}}}
}

// vmHost is the name of the machine VM name is placed on, and its power.
func (s *vmSite) vmHost(t testing.TB, name string) (machine, power string) {
	t.Helper()
	var v struct {
		Properties struct {
			BareMetalMachineID string `json:"bareMetalMachineId"`
			PowerState         string `json:"powerState"`
		} `json:"properties"`
	}
	ncGet(t, s.cp.Client, s.nc+"virtualMachines/"+name, &v)
	id := v.Properties.BareMetalMachineID
	return id[strings.LastIndexByte(id, '/')+1:], v.Properties.PowerState
}

// watchVMs samples, every 20 ms until the function it returns is called,
// which VMs each simulated host runs. That function returns the VMs seen
// running on two hosts at once, and the hosts each VM was seen on.
func (s *vmSite) watchVMs(t testing.TB) func() (twice []string, hosts map[string][]string) {
	stop := make(chan struct{})
	done := make(chan struct{})
	hosts := map[string][]string{}
	var twice []string
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			seen := map[string]string{}
			for _, m := range s.cl.Machines {
				driver, err := s.cl.VMs(m.Name)
				if err != nil {
					continue
				}
				for _, id := range driver.Running() {
					name := id[strings.LastIndexByte(id, '/')+1:]
					if other, ok := seen[name]; ok {
						twice = append(twice, fmt.Sprintf("%s on %s and %s", name, other, m.Name))
					}
					seen[name] = m.Name
					if !slices.Contains(hosts[name], m.Name) {
						hosts[name] = append(hosts[name], m.Name)
					}
				}
			}
		}
	}()
	return func() ([]string, map[string][]string) {
		close(stop)
		<-done
		return twice, hosts
	}
}
