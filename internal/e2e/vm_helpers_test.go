package e2e

import (
	"encoding/base64"
	"net/http"
	"strings"
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
	s := &vmSite{rolloutSite: startSiteOf(t, spec, map[string]any{"strategyType": "Rack", "thresholdType": "PercentSuccess",
		"thresholdValue": 100}, 300*time.Millisecond, append([]func(*server.Config){rolloutOptions, func(c *server.Config) {
		c.ApplianceCheck = 200 * time.Millisecond // its SAN takes volumes once checked
	}}, options...)...)}
	if _, err := s.cp.Images.Import(t.Context(), "citadel/tiny:1", "Linux", "UEFI", strings.NewReader("a tiny image")); err != nil {
		t.Fatal(err)
	}
	s.location = ncClusterLocation(t, s.cp.Client, s.clusterID)
	s.nc = "/subscriptions/" + s.cp.Creds.SubscriptionID + "/resourceGroups/" + spec.Name + "/providers/Microsoft.NetworkCloud/"
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
