package sim

import (
	"testing"

	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/redfishsim"
	"github.com/citadel-cloud/citadel/internal/storage"
)

// TestSiteRestart: a site started again on its state directory serves
// every BMC and its storage appliance at the same URL with the same
// certificate, and its cluster definition names the machines of each
// rack and the appliance.
func TestSiteRestart(t *testing.T) {
	dir := t.TempDir()
	spec := Spec{Name: "s1", ComputeRacks: 3, MachinesPerRack: 2}
	opts := Options{StateDir: dir, BMC: redfishsim.Options{Username: "root", Password: "pw"}}
	first, err := Start(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Machines) != 3+3*2 {
		t.Fatalf("%d machines, want 9", len(first.Machines))
	}
	want := map[string]string{}
	for _, m := range first.Machines {
		want[m.Name] = m.ConnectionString()
	}
	props := first.ClusterProperties("4.1.0", "/subscriptions/s/resourceGroups/fabric")
	first.Close()

	second, err := Start(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	san := props["aggregatorOrSingleRackDefinition"].(map[string]any)["storageApplianceConfigurationData"].([]any)[0].(map[string]any)
	if got := second.SAN.ConnectionString(); san["managementConnectionString"] != got {
		t.Errorf("the SAN is at %s after the restart, want %s", got, san["managementConnectionString"])
	}
	conn, err := storage.ParseConnection(second.SAN.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	c, err := storage.Dial(conn, sanUser, "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.Status(t.Context()); err != nil || st.SerialNumber != "S1-SAN" || st.Driver != "sim" || st.CapacityMiB == 0 {
		t.Errorf("SAN status = %+v, %v, want S1-SAN on the sim driver with its SKU's capacity", st, err)
	}
	for _, m := range second.Machines {
		if m.BMC.PowerState() != "On" {
			t.Errorf("%s is %s after the restart, want On", m.Name, m.BMC.PowerState())
		}
		if m.ConnectionString() != want[m.Name] {
			t.Errorf("%s: %s after the restart, want %s", m.Name, m.ConnectionString(), want[m.Name])
		}
	}

	agg := props["aggregatorOrSingleRackDefinition"].(map[string]any)
	compute := props["computeRackDefinitions"].([]any)
	if agg["rackSkuId"] != machine.RackSKUAggregator || len(agg["bareMetalMachineConfigurationData"].([]any)) != 3 ||
		len(agg["storageApplianceConfigurationData"].([]any)) != 1 || len(compute) != 3 {
		t.Errorf("cluster properties = %v", props)
	}
	for i, r := range compute {
		ms := r.(map[string]any)["bareMetalMachineConfigurationData"].([]any)
		if len(ms) != 2 || ms[0].(map[string]any)["rackSlot"] != 1 {
			t.Errorf("compute rack %d: %v", i+1, ms)
		}
	}
	if _, err := Start(Spec{Name: "x"}, Options{}); err == nil {
		t.Error("Start without racks: no error")
	}
}
