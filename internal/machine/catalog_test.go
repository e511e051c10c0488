package machine

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuiltin(t *testing.T) {
	c := Builtin()
	var machines, racks []string
	for _, m := range c.Machines() {
		machines = append(machines, m.ID)
	}
	for _, r := range c.Racks() {
		racks = append(racks, r.ID)
	}
	if want := []string{SKUCompute, SKUController, SKUGPU, SKUHyperconverged}; !cmp.Equal(machines, want) {
		t.Errorf("Builtin().Machines() = %v, want %v", machines, want)
	}
	if want := []string{RackSKUAggregator, RackSKUCompute16, RackSKUCompute8, RackSKUHyperconverged, RackSKUSingle}; !cmp.Equal(racks, want) {
		t.Errorf("Builtin().Racks() = %v, want %v", racks, want)
	}

	m, ok := c.Machine("CITADEL-Compute-2s-64c-GEN5")
	if !ok {
		t.Fatalf("Machine(%q) not found; ids are case-insensitive", "CITADEL-Compute-2s-64c-GEN5")
	}
	ports := 0
	for _, n := range m.NetworkInterfaces {
		ports += n.PortCount
	}
	got := struct {
		Sockets, Cores, Threads, MemoryGiB, Disks, Ports int
		AMX                                              bool
	}{m.CPUSockets, m.CPUCores, m.TotalThreads, m.MemoryGiB, len(m.Disks), ports, strings.Contains(strings.Join(m.CPUFeatures, " "), "amx_tile")}
	want := got
	want.Sockets, want.Cores, want.Threads, want.MemoryGiB, want.Disks, want.Ports, want.AMX = 2, 64, 128, 512, 2, 4, true
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the compute SKU differs from the brief (-want +got):\n%s", diff)
	}
	if g, _ := c.Machine(SKUGPU); len(g.GPUs) == 0 {
		t.Errorf("Machine(%q).GPUs is empty", SKUGPU)
	}
	for _, id := range []string{SKUCompute, SKUGPU, SKUHyperconverged, SKUController} {
		m, _ := c.Machine(id)
		got := []any{m.BIOSSettings["BootMode"], m.BIOSSettings["ProcVirtualization"], m.BIOSSettings["SriovGlobalEnable"]}
		want := []any{"Uefi", "Enabled", "Enabled"}
		if id == SKUController {
			want = []any{nil, nil, nil} // left as they come
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Machine(%q) BootMode, ProcVirtualization, SriovGlobalEnable (-want +got):\n%s", id, diff)
		}
	}

	for _, tc := range []struct {
		id               string
		typ, topology    string
		machines, apps   int
		maxSlots         int
		controllers      int
		supportedCompute bool
	}{
		{RackSKUAggregator, RackAggregator, "", 3, 4, 16, 3, true},
		{RackSKUCompute8, RackCompute, "", 8, 0, 0, 0, false},
		{RackSKUCompute16, RackCompute, "", 16, 0, 0, 0, false},
		{RackSKUSingle, RackSingle, Disaggregated, 64, 1, 0, 3, false},
		{RackSKUHyperconverged, RackSingle, Hyperconverged, 16, 0, 0, 0, false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			r, ok := c.Rack(strings.ToUpper(tc.id))
			if !ok {
				t.Fatalf("Rack(%q) not found", strings.ToUpper(tc.id))
			}
			got := []any{r.Type, r.Topology, len(r.ControllerMachines) + len(r.ComputeMachines), len(r.StorageAppliances), r.MaxClusterSlots, len(r.ControllerMachines), len(r.SupportedRackSKUs) == 2}
			want := []any{tc.typ, tc.topology, tc.machines, tc.apps, tc.maxSlots, tc.controllers, tc.supportedCompute}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Rack(%q) differs (-want +got):\n%s", tc.id, diff)
			}
		})
	}

	if err := Builtin().Load(strings.NewReader(validDoc(t, nil))); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Rack("acme-compute-4"); ok {
		t.Errorf("loading into one Builtin() catalog changed another")
	}
}

// TestBuiltinRoundTrip: the built-in SKUs, written as an operator's file,
// load into an empty catalog unchanged.
func TestBuiltinRoundTrip(t *testing.T) {
	b := Builtin()
	var f skuFile
	for _, m := range b.Machines() {
		f.MachineSKUs = append(f.MachineSKUs, *m)
	}
	for _, r := range b.Racks() {
		f.RackSKUs = append(f.RackSKUs, *r)
	}
	doc, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var c Catalog
	if err := c.Load(strings.NewReader(string(doc))); err != nil {
		t.Fatalf("Load(builtin as JSON) = %v", err)
	}
	if diff := cmp.Diff(b.Machines(), c.Machines()); diff != "" {
		t.Errorf("machines differ (-builtin +loaded):\n%s", diff)
	}
	if diff := cmp.Diff(b.Racks(), c.Racks()); diff != "" {
		t.Errorf("racks differ (-builtin +loaded):\n%s", diff)
	}
	if err := Builtin().Load(strings.NewReader(string(doc))); err == nil || !strings.Contains(err.Error(), `the catalog already has machine SKU "citadel-compute-2s-64c-gen5"`) {
		t.Errorf("Load(builtin into Builtin()) = %v, want a duplicate id error", err)
	}
}

// validDoc is an operator's SKU file, changed by mutate.
func validDoc(t testing.TB, mutate func(f *skuFile)) string {
	t.Helper()
	f := skuFile{
		MachineSKUs: []MachineSKU{{
			ID: "acme-compute-1s-96c", Vendor: "Supermicro", Model: "AS-1125HS-TNR", Generation: "Genoa", HardwareVersion: "1",
			CPUModel: "AMD EPYC 9654", CPUSockets: 1, CPUCores: 96, TotalThreads: 192, CPUFeatures: []string{"avx512f"},
			MemoryGiB:         768,
			Disks:             []Disk{{CapacityGB: 3576, Type: "ssd", Connection: "pcie"}, {CapacityGB: 3576, Type: "SSD", Connection: "PCIE"}},
			NetworkInterfaces: []NetworkInterface{{Vendor: "Broadcom", Model: "BCM57508", PortCount: 2, PortSpeedGbps: 100, PhysicalSlot: 1}},
			Firmware:          []FirmwareBaseline{{Component: "BIOS", MinVersion: "1.5"}, {Component: "BMC", MinVersion: "01.02.03"}},
			BIOSSettings:      map[string]any{"BootMode": "Uefi", "SMTControl": "Enabled", "NumaNodesPerSocket": 1, "SecureBoot": true},
		}},
		RackSKUs: []RackSKU{
			{
				ID: "acme-aggregator", Type: "aggregator",
				ControllerMachines: []MachineSlot{{1, SKUController}, {2, SKUController}, {3, "CITADEL-controller-2s-32c-gen5"}},
				StorageAppliances:  []ApplianceSlot{{RackSlot: 4, Model: "NetApp AFF A400", CapacityGB: 200000}},
				MaxClusterSlots:    4,
				SupportedRackSKUs:  []string{"ACME-COMPUTE-4", RackSKUCompute8},
			},
			{
				ID: "acme-compute-4", Type: "compute",
				ComputeMachines: []MachineSlot{{1, "acme-compute-1s-96c"}, {2, "acme-compute-1s-96c"}, {3, "acme-compute-1s-96c"}, {4, "acme-compute-1s-96c"}},
			},
		},
	}
	if mutate != nil {
		mutate(&f)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// snapshot is the catalog's content, deep.
func snapshot(t testing.TB, c *Catalog) string {
	t.Helper()
	b, err := json.Marshal([]any{c.Machines(), c.Racks()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoad(t *testing.T) {
	machine := func(f func(m *MachineSKU)) func(*skuFile) {
		return func(s *skuFile) { f(&s.MachineSKUs[0]) }
	}
	aggregator := func(f func(r *RackSKU)) func(*skuFile) {
		return func(s *skuFile) { f(&s.RackSKUs[0]) }
	}
	compute := func(f func(r *RackSKU)) func(*skuFile) {
		return func(s *skuFile) { f(&s.RackSKUs[1]) }
	}
	addRack := func(r RackSKU) func(*skuFile) {
		return func(s *skuFile) { s.RackSKUs = append(s.RackSKUs, r) }
	}
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error; none for success
		n    int      // the number of problems, when not len(want)
	}{
		{name: "valid", doc: validDoc(t, nil)},
		{name: "only machines", doc: `{"machineSkus":[]}`},
		{name: "null", doc: `null`},
		{name: "empty", doc: ``, want: []string{"load SKUs: the document is empty"}},
		{name: "not JSON", doc: `{"machineSkus":`, want: []string{"load SKUs: unexpected EOF"}},
		{name: "array", doc: `[]`, want: []string{"cannot unmarshal array"}},
		{name: "unknown top-level field", doc: `{"machines":[]}`, want: []string{`unknown field "machines"`}},
		{name: "unknown SKU field", doc: `{"machineSkus":[{"id":"x","cores":2}]}`, want: []string{`unknown field "cores"`}},
		{name: "trailing data", doc: validDoc(t, nil) + ` {}`, want: []string{"unexpected data after the JSON object"}},
		{name: "wrong type", doc: `{"rackSkus":[{"id":"x","maxClusterSlots":"16"}]}`, want: []string{"cannot unmarshal string"}},

		{name: "empty machine id", doc: validDoc(t, machine(func(m *MachineSKU) { m.ID = "" })),
			want: []string{"machineSkus[0]: id: must not be empty", `rack SKU "acme-compute-4": computeMachines[0].machineSkuId: machine SKU "acme-compute-1s-96c" is in neither`}, n: 5},
		{name: "machine id with a slash", doc: validDoc(t, machine(func(m *MachineSKU) { m.ID = "acme/1" })),
			want: []string{`machine SKU "acme/1": id: "acme/1" has '/' at offset 4`, `machine SKU "acme-compute-1s-96c" is in neither`}, n: 5},
		{name: "machine id twice", doc: validDoc(t, func(f *skuFile) { f.MachineSKUs = append(f.MachineSKUs, f.MachineSKUs[0]) }),
			want: []string{`machine SKU "acme-compute-1s-96c": id: the id appears more than once in the document`}},
		{name: "machine id of a built-in SKU", doc: validDoc(t, machine(func(m *MachineSKU) { m.ID = "Citadel-Compute-2s-64c-Gen5" })),
			want: []string{`machine SKU "Citadel-Compute-2s-64c-Gen5": id: the catalog already has machine SKU "citadel-compute-2s-64c-gen5"`, `machine SKU "acme-compute-1s-96c" is in neither`}, n: 5},
		{name: "no cores", doc: validDoc(t, machine(func(m *MachineSKU) { m.CPUCores = 0 })),
			want: []string{`machine SKU "acme-compute-1s-96c": cpuCores: must be positive, got 0`}},
		{name: "no sockets or memory", doc: validDoc(t, machine(func(m *MachineSKU) { m.CPUSockets, m.MemoryGiB = -1, 0 })),
			want: []string{"cpuSockets: must be positive, got -1", "memoryCapacityGB: must be positive, got 0"}},
		{name: "fewer threads than cores", doc: validDoc(t, machine(func(m *MachineSKU) { m.TotalThreads = 48 })),
			want: []string{"totalThreads: 48 threads is fewer than the 96 cores"}},
		{name: "fewer cores than sockets", doc: validDoc(t, machine(func(m *MachineSKU) { m.CPUSockets = 128 })),
			want: []string{"cpuCores: 96 cores is fewer than the 128 sockets"}},
		{name: "no CPU model", doc: validDoc(t, machine(func(m *MachineSKU) { m.CPUModel = " " })),
			want: []string{"cpuModel: must not be empty"}},
		{name: "empty CPU feature", doc: validDoc(t, machine(func(m *MachineSKU) { m.CPUFeatures = []string{"avx512f", ""} })),
			want: []string{"cpuFeatures[1]: must not be empty"}},
		{name: "disk type", doc: validDoc(t, machine(func(m *MachineSKU) { m.Disks[1].Type = "NVMe" })),
			want: []string{`machine SKU "acme-compute-1s-96c": disks[1].type: "NVMe" is not SSD or HDD`}},
		{name: "disk connection", doc: validDoc(t, machine(func(m *MachineSKU) { m.Disks[0].Connection = "USB" })),
			want: []string{`disks[0].connection: "USB" is not PCIE, RAID, SAS or SATA`}},
		{name: "disk capacity", doc: validDoc(t, machine(func(m *MachineSKU) { m.Disks[0].CapacityGB = 0; m.Disks[1].CapacityGB = 1 << 30 })),
			want: []string{"disks[0].capacityGB: must be positive, got 0", "disks[1].capacityGB: 1073741824 GiB is more than 1048576"}},
		{name: "no NIC", doc: validDoc(t, machine(func(m *MachineSKU) { m.NetworkInterfaces = nil })),
			want: []string{"networkInterfaces: a machine needs at least one network interface to bootstrap"}},
		{name: "NIC without ports", doc: validDoc(t, machine(func(m *MachineSKU) {
			m.NetworkInterfaces[0].PortCount, m.NetworkInterfaces[0].PortSpeedGbps, m.NetworkInterfaces[0].DeviceConnectionType = 0, 0, "USB"
		})),
			want: []string{"networkInterfaces[0].portCount: must be positive, got 0", "networkInterfaces[0].portSpeed: must be positive, got 0", `networkInterfaces[0].deviceConnectionType: "USB" is not PCI`}},
		{name: "GPU", doc: validDoc(t, machine(func(m *MachineSKU) { m.GPUs = []GPU{{Vendor: "NVIDIA", Count: 0, MemoryGiB: 80}} })),
			want: []string{"gpus[0].model: must not be empty", "gpus[0].count: must be positive, got 0"}},
		{name: "firmware component twice", doc: validDoc(t, machine(func(m *MachineSKU) {
			m.Firmware = append(m.Firmware, FirmwareBaseline{Component: "bios", MinVersion: ""})
		})),
			want: []string{`firmware[2].component: "bios" already has a baseline in firmware[0]`, "firmware[2].minVersion: must not be empty"}},
		{name: "BIOS attribute without a name", doc: validDoc(t, machine(func(m *MachineSKU) { m.BIOSSettings[" "] = "Enabled" })),
			want: []string{`machine SKU "acme-compute-1s-96c": biosSettings[" "]: the attribute name must not be empty`}},
		{name: "BIOS values not scalars", doc: validDoc(t, machine(func(m *MachineSKU) {
			m.BIOSSettings["AdminPhone"], m.BIOSSettings["BootOrder"] = nil, []string{"Hdd", "Pxe"}
		})),
			want: []string{`biosSettings["AdminPhone"]: the value must be a string, a number or a boolean, got null`,
				`biosSettings["BootOrder"]: the value must be a string, a number or a boolean, got an array`}},
		{name: "BIOS value an object", doc: strings.Replace(validDoc(t, nil), `"SecureBoot":true`, `"SecureBoot":{"Enabled":true}`, 1),
			want: []string{`biosSettings["SecureBoot"]: the value must be a string, a number or a boolean, got an object`}},

		{name: "rack id twice", doc: validDoc(t, compute(func(r *RackSKU) { r.ID = "ACME-aggregator" })),
			want: []string{`rack SKU "ACME-aggregator": id: the id appears more than once in the document`, `supportedRackSkuIds[0]: rack SKU "ACME-COMPUTE-4" is in neither`}},
		{name: "rack id of a built-in SKU", doc: validDoc(t, compute(func(r *RackSKU) { r.ID = RackSKUCompute8 })),
			want: []string{`rack SKU "citadel-compute-8": id: the catalog already has rack SKU "citadel-compute-8"`, `supportedRackSkuIds[0]: rack SKU "ACME-COMPUTE-4" is in neither`}},
		{name: "empty rack id", doc: validDoc(t, compute(func(r *RackSKU) { r.ID = "" })),
			want: []string{"rackSkus[1]: id: must not be empty", `rack SKU "ACME-COMPUTE-4" is in neither`}},
		{name: "rack type", doc: validDoc(t, compute(func(r *RackSKU) { r.Type = "Storage" })),
			want: []string{`rack SKU "acme-compute-4": rackType: "Storage" is not Aggregator, Compute or Single`, `supportedRackSkuIds[0]: rack SKU "acme-compute-4" is a Storage rack, not a Compute rack`}},
		{name: "slot 0", doc: validDoc(t, compute(func(r *RackSKU) { r.ComputeMachines[0].RackSlot = 0 })),
			want: []string{`rack SKU "acme-compute-4": computeMachines[0].rackSlot: rack slot 0 is not between 1 and 256`}},
		{name: "slot 257", doc: validDoc(t, compute(func(r *RackSKU) { r.ComputeMachines[3].RackSlot = 257 })),
			want: []string{"computeMachines[3].rackSlot: rack slot 257 is not between 1 and 256"}},
		{name: "slot twice", doc: validDoc(t, compute(func(r *RackSKU) { r.ComputeMachines[1].RackSlot = 1 })),
			want: []string{`rack SKU "acme-compute-4": computeMachines[1].rackSlot: rack slot 1 is also used by computeMachines[0]`}},
		{name: "appliance in a machine slot", doc: validDoc(t, aggregator(func(r *RackSKU) { r.StorageAppliances[0].RackSlot = 2 })),
			want: []string{"storageAppliances[0].rackSlot: rack slot 2 is also used by controllerMachines[1]"}},
		{name: "appliance without model or capacity", doc: validDoc(t, aggregator(func(r *RackSKU) { r.StorageAppliances[0].Model, r.StorageAppliances[0].CapacityGB = "", -1 })),
			want: []string{"storageAppliances[0].model: must not be empty", "storageAppliances[0].capacityGB: must be positive, got -1"}},
		{name: "slot of an unknown machine SKU", doc: validDoc(t, compute(func(r *RackSKU) { r.ComputeMachines[2].MachineSKU = "acme-compute-2s" })),
			want: []string{`rack SKU "acme-compute-4": computeMachines[2].machineSkuId: machine SKU "acme-compute-2s" is in neither the catalog nor the document`}},
		{name: "aggregator supports an unknown SKU", doc: validDoc(t, aggregator(func(r *RackSKU) { r.SupportedRackSKUs = []string{"acme-compute-9"} })),
			want: []string{`rack SKU "acme-aggregator": supportedRackSkuIds[0]: rack SKU "acme-compute-9" is in neither the catalog nor the document`}},
		{name: "aggregator supports a single rack", doc: validDoc(t, aggregator(func(r *RackSKU) { r.SupportedRackSKUs = []string{RackSKUSingle} })),
			want: []string{`supportedRackSkuIds[0]: rack SKU "citadel-single" is a Single rack, not a Compute rack`}},
		{name: "aggregator supports nothing", doc: validDoc(t, aggregator(func(r *RackSKU) { r.SupportedRackSKUs = nil })),
			want: []string{"supportedRackSkuIds: an Aggregator rack must support at least one Compute rack SKU"}},
		{name: "aggregator with 2 cluster slots", doc: validDoc(t, aggregator(func(r *RackSKU) { r.MaxClusterSlots = 2 })),
			want: []string{"maxClusterSlots: an Aggregator rack needs at least 3 cluster slots (a MultiRack cluster has at least 3 compute racks), got 2"}},
		{name: "aggregator without appliance", doc: validDoc(t, aggregator(func(r *RackSKU) { r.StorageAppliances = nil })),
			want: []string{"storageAppliances: an Aggregator rack needs a storage appliance slot"}},
		{name: "aggregator without controllers", doc: validDoc(t, aggregator(func(r *RackSKU) { r.ControllerMachines = nil })),
			want: []string{"controllerMachines: an Aggregator rack needs at least one controller machine slot"}},
		{name: "compute rack with cluster slots", doc: validDoc(t, compute(func(r *RackSKU) { r.MaxClusterSlots, r.SupportedRackSKUs = 3, []string{RackSKUCompute8} })),
			want: []string{"maxClusterSlots: only an Aggregator rack has cluster slots; a Compute rack has 0, got 3", "supportedRackSkuIds: only an Aggregator rack supports compute rack SKUs"}},
		{name: "compute rack with a topology", doc: validDoc(t, compute(func(r *RackSKU) { r.Topology = Hyperconverged })),
			want: []string{`topology: only a Single rack has a topology; a Compute rack has none, got "Hyperconverged"`}},
		{name: "compute rack without machines", doc: validDoc(t, compute(func(r *RackSKU) { r.ComputeMachines = nil })),
			want: []string{"computeMachines: a Compute rack needs at least one compute machine slot"}},
		{name: "single rack without topology", doc: validDoc(t, addRack(RackSKU{ID: "acme-single", Type: RackSingle, ComputeMachines: []MachineSlot{{1, SKUCompute}}})),
			want: []string{`rack SKU "acme-single": topology: "" is not Hyperconverged or Disaggregated`}},
		{name: "hyperconverged of 17", doc: validDoc(t, addRack(RackSKU{ID: "acme-hci", Type: RackSingle, Topology: "hyperconverged", ComputeMachines: slotsOf(1, 17, SKUHyperconverged)})),
			want: []string{`rack SKU "acme-hci": computeMachines: a Hyperconverged rack has 1 to 16 machine slots, got 17`}},
		{name: "hyperconverged with appliance", doc: validDoc(t, addRack(RackSKU{ID: "acme-hci", Type: RackSingle, Topology: Hyperconverged, ComputeMachines: slotsOf(1, 4, SKUHyperconverged),
			StorageAppliances: []ApplianceSlot{{RackSlot: 5, Model: "x", CapacityGB: 1}}})),
			want: []string{"storageAppliances: a Hyperconverged rack pools local storage and has no storage appliance, got 1"}},
		{name: "disaggregated of 65", doc: validDoc(t, addRack(RackSKU{ID: "acme-single", Type: RackSingle, Topology: Disaggregated, ComputeMachines: slotsOf(1, 65, SKUCompute),
			StorageAppliances: []ApplianceSlot{{RackSlot: 66, Model: "x", CapacityGB: 1}}})),
			want: []string{"computeMachines: a Disaggregated rack has 1 to 64 machine slots, got 65"}},
		{name: "disaggregated without appliance", doc: validDoc(t, addRack(RackSKU{ID: "acme-single", Type: RackSingle, Topology: Disaggregated, ComputeMachines: slotsOf(1, 8, SKUCompute)})),
			want: []string{"storageAppliances: a Disaggregated rack needs a storage appliance slot"}},
		{name: "null entries", doc: `{"machineSkus":[null],"rackSkus":[null]}`,
			want: []string{"machineSkus[0]: id: must not be empty", "rackSkus[0]: id: must not be empty", `rackSkus[0]: rackType: "" is not Aggregator, Compute or Single`}, n: 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Builtin()
			before := snapshot(t, c)
			err := c.Load(strings.NewReader(tc.doc))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Load(%s) = %v, want nil", tc.doc, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load(%s) = nil, want an error with %q", tc.doc, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%s) = %v, want it to contain %q", tc.doc, err, w)
				}
			}
			want := tc.n
			if want == 0 {
				want = len(tc.want)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != want {
				t.Errorf("Load(%s) reported %d problems, want %d: %v", tc.doc, n, want, err)
			}
			if after := snapshot(t, c); after != before {
				t.Errorf("Load(%s) failed but changed the catalog", tc.doc)
			}
		})
	}
}

// TestLoadCanonical: a loaded SKU's enums, references and defaults are
// spelled one way.
func TestLoadCanonical(t *testing.T) {
	c := Builtin()
	if err := c.Load(strings.NewReader(validDoc(t, nil))); err != nil {
		t.Fatal(err)
	}
	agg, ok := c.Rack("Acme-Aggregator")
	if !ok {
		t.Fatal(`Rack("Acme-Aggregator") not found`)
	}
	got := []any{agg.Type, agg.SupportedRackSKUs, agg.ControllerMachines[2].MachineSKU}
	want := []any{RackAggregator, []string{"acme-compute-4", RackSKUCompute8}, SKUController}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("aggregator not canonical (-want +got):\n%s", diff)
	}
	m, _ := c.Machine("acme-compute-1s-96c")
	gotM := []string{m.Disks[0].Type, m.Disks[0].Connection, m.NetworkInterfaces[0].DeviceConnectionType, m.BootstrapProtocol}
	if want := []string{DiskSSD, "PCIE", "PCI", "PXE"}; !cmp.Equal(gotM, want) {
		t.Errorf("machine not canonical: got %v, want %v", gotM, want)
	}
	wantBIOS := map[string]any{"BootMode": "Uefi", "SMTControl": "Enabled", "NumaNodesPerSocket": float64(1), "SecureBoot": true}
	if diff := cmp.Diff(wantBIOS, m.BIOSSettings); diff != "" {
		t.Errorf("biosSettings not as loaded (-want +got):\n%s", diff)
	}
	if r, _ := c.Rack("acme-compute-4"); r.Type != RackCompute {
		t.Errorf(`Rack("acme-compute-4").Type = %q, want %q`, r.Type, RackCompute)
	}
	var ids []string
	for _, r := range c.Racks() {
		ids = append(ids, r.ID)
	}
	want2 := []string{"acme-aggregator", "acme-compute-4", RackSKUAggregator, RackSKUCompute16, RackSKUCompute8, RackSKUHyperconverged, RackSKUSingle}
	if !cmp.Equal(ids, want2) {
		t.Errorf("Racks() = %v, want %v", ids, want2)
	}
}

// TestBIOSSettingsNumbers: a SKU built in Go holds its BIOS numbers as a
// SKU file decodes them, so the two compare equal.
func TestBIOSSettingsNumbers(t *testing.T) {
	m := *Builtin().Machines()[0]
	m.ID, m.BIOSSettings = "go-built", map[string]any{"NumaNodesPerSocket": 2, "ProcCStates": json.Number("0"), "BootMode": "Uefi"}
	var c Catalog
	ms, _, err := c.check([]MachineSKU{m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"NumaNodesPerSocket": float64(2), "ProcCStates": float64(0), "BootMode": "Uefi"}
	if diff := cmp.Diff(want, ms[0].BIOSSettings); diff != "" {
		t.Errorf("biosSettings after check (-want +got):\n%s", diff)
	}
}

func slotsOf(first, last int, sku string) []MachineSlot {
	var s []MachineSlot
	for n := first; n <= last; n++ {
		s = append(s, MachineSlot{RackSlot: n, MachineSKU: sku})
	}
	return s
}

func TestSlotRanges(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, "none"},
		{[]int{4}, "4"},
		{[]int{3, 1, 2}, "1-3"},
		{[]int{1, 2, 3, 5, 7, 8, 65}, "1-3, 5, 7-8, 65"},
		{[]int{2, 2, 1}, "1-2"},
	} {
		if got := slotRanges(tc.in); got != tc.want {
			t.Errorf("slotRanges(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzLoad: Load never panics; it fails without changing the catalog or
// adds SKUs that are then found and cannot be added twice.
func FuzzLoad(f *testing.F) {
	f.Add(validDoc(f, nil))
	f.Add(`{"machineSkus":[],"rackSkus":[]}`)
	f.Add(`{"rackSkus":[{"id":"r","rackType":"Compute","computeMachines":[{"rackSlot":1,"machineSkuId":"citadel-compute-2s-64c-gen5"}]}]}`)
	f.Add(`{"rackSkus":[{"id":"r","rackType":"Single","topology":"Hyperconverged","computeMachines":[{"rackSlot":300,"machineSkuId":"x"}]}]}`)
	f.Add(`{"machineSkus":[{"id":"m","cpuModel":"x","cpuSockets":1,"cpuCores":1,"totalThreads":1,"memoryCapacityGB":1,"networkInterfaces":[{"portCount":1,"portSpeed":1}]}]}`)
	f.Add(`{"machineSkus":[null]}`)
	f.Add(`null`)
	f.Add(``)
	f.Add(`{} {}`)
	f.Add(`{"machineSkus":[{"id":"\u00e9"}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		c := Builtin()
		before := snapshot(t, c)
		nm, nr := len(c.Machines()), len(c.Racks())
		if err := c.Load(strings.NewReader(doc)); err != nil {
			if after := snapshot(t, c); after != before {
				t.Fatalf("Load(%q) = %v and changed the catalog", doc, err)
			}
			return
		}
		if len(c.Machines()) == nm && len(c.Racks()) == nr {
			return
		}
		for _, m := range c.Machines() {
			if got, ok := c.Machine(strings.ToUpper(m.ID)); !ok || got != m {
				t.Fatalf("Machine(%q) = %v, %v after Load(%q)", m.ID, got, ok, doc)
			}
		}
		for _, r := range c.Racks() {
			for _, s := range slices.Concat(r.ControllerMachines, r.ComputeMachines) {
				if id, ok := SKUForSlot(c, r.ID, s.RackSlot); !ok || id != s.MachineSKU {
					t.Fatalf("SKUForSlot(%q, %d) = %q, %v, want %q", r.ID, s.RackSlot, id, ok, s.MachineSKU)
				}
				if _, ok := c.Machine(s.MachineSKU); !ok {
					t.Fatalf("rack SKU %q slot %d names machine SKU %q, which is not in the catalog", r.ID, s.RackSlot, s.MachineSKU)
				}
			}
		}
		mid := snapshot(t, c)
		if err := c.Load(strings.NewReader(doc)); err == nil {
			t.Fatalf("Load(%q) twice = nil, want a duplicate id error", doc)
		}
		if after := snapshot(t, c); after != mid {
			t.Fatalf("the second Load(%q) failed but changed the catalog", doc)
		}
	})
}
