package machine

import "fmt"

// Builtin returns a new catalog holding Citadel's built-in SKUs. Each call
// returns a fresh catalog, so loading operator SKUs into one leaves the
// others alone.
//
// The machine SKUs are modelled on current two-socket Dell PowerEdge
// servers; values are what the BMC of such a machine reports:
//
//   - citadel-compute-2s-64c-gen5: PowerEdge R760, 2 x Intel Xeon Gold
//     6548Y+ (5th Gen Xeon Scalable "Emerald Rapids", 32 cores and 64 threads
//     each, AVX-512 and AMX), 512 GiB (16 x 32 GiB DDR5), 2 x 3.84 TB NVMe
//     (3576 GiB each), 2 x NVIDIA ConnectX-6 Dx dual-port 100 GbE (4 ports).
//   - citadel-controller-2s-32c-gen5: PowerEdge R660, 2 x Xeon Gold 6526Y
//     (16 cores each), 256 GiB, 2 x 1.92 TB NVMe (1788 GiB), 2 x ConnectX-6
//     Lx dual-port 25 GbE. It runs the control plane.
//   - citadel-gpu-2s-64c-4xl40s-gen5: PowerEdge R760xa, the compute CPUs,
//     1024 GiB, 4 x NVIDIA L40S (48 GiB each), 2 x 3.84 TB NVMe, 2 x
//     ConnectX-6 Dx dual-port 100 GbE.
//   - citadel-hci-1s-32c-gen4: PowerEdge R660, 1 x Xeon Gold 6438Y+ (4th Gen
//     "Sapphire Rapids", 32 cores, AMX), 256 GiB, a 960 GB boot SSD behind
//     BOSS RAID (894 GiB) and 4 x 3.84 TB NVMe for the pooled storage, 2 x
//     ConnectX-6 Lx dual-port 25 GbE.
//
// All of them need at least BIOS 2.1.0 and iDRAC9 (BMC) 7.10.30.00. The
// machines that run VMs (compute, GPU and hyperconverged) boot UEFI with
// hyper-threading, VT-x and SR-IOV on: Dell BIOS attributes BootMode Uefi,
// LogicalProc, ProcVirtualization and SriovGlobalEnable Enabled. The
// controller's BIOS settings are left as they come.
//
// The rack SKUs are the topologies of ARCHITECTURE.md:
//
//   - citadel-aggregator: the aggregator rack of a MultiRack cluster, 3
//     controller slots (1-3) and a Pure Storage FlashArray//X70 R4 in slot
//     4; up to 16 compute racks of citadel-compute-8 or citadel-compute-16.
//   - citadel-compute-8 and citadel-compute-16: compute racks with 8 and 16
//     compute slots.
//   - citadel-single: a Disaggregated single rack, 3 controller slots (1-3),
//     61 compute slots (4-64, so 64 machines in all) and a storage appliance
//     in slot 65.
//   - citadel-hyperconverged: a Hyperconverged single rack of 16
//     citadel-hci-1s-32c-gen4 machines and no storage appliance.
//
// Rack slots are positions in the rack's bill of materials, not rack units.
func Builtin() *Catalog {
	c := &Catalog{}
	ms, rs, err := c.check(builtinMachines(), builtinRacks())
	if err != nil {
		panic(fmt.Sprintf("machine: the built-in SKUs are invalid: %v", err))
	}
	c.put(ms, rs)
	return c
}

// Built-in SKU ids.
const (
	SKUCompute        = "citadel-compute-2s-64c-gen5"
	SKUController     = "citadel-controller-2s-32c-gen5"
	SKUGPU            = "citadel-gpu-2s-64c-4xl40s-gen5"
	SKUHyperconverged = "citadel-hci-1s-32c-gen4"

	RackSKUAggregator     = "citadel-aggregator"
	RackSKUCompute8       = "citadel-compute-8"
	RackSKUCompute16      = "citadel-compute-16"
	RackSKUSingle         = "citadel-single"
	RackSKUHyperconverged = "citadel-hyperconverged"
)

func builtinMachines() []MachineSKU {
	firmware := func() []FirmwareBaseline {
		return []FirmwareBaseline{{Component: "BIOS", MinVersion: "2.1.0"}, {Component: "BMC", MinVersion: "7.10.30.00"}}
	}
	vmHost := func() map[string]any {
		return map[string]any{"BootMode": "Uefi", "LogicalProc": "Enabled", "ProcVirtualization": "Enabled", "SriovGlobalEnable": "Enabled"}
	}
	emeraldRapids := func() []string {
		return []string{"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"}
	}
	// Two dual-port NVIDIA ConnectX cards in PCIe slots 1 and 2.
	connectX := func(model string, gbps int) []NetworkInterface {
		return []NetworkInterface{
			{Vendor: "NVIDIA", Model: model, PortCount: 2, PortSpeedGbps: gbps, PhysicalSlot: 1, Address: "0000:17:00", DeviceConnectionType: "PCI"},
			{Vendor: "NVIDIA", Model: model, PortCount: 2, PortSpeedGbps: gbps, PhysicalSlot: 2, Address: "0000:b1:00", DeviceConnectionType: "PCI"},
		}
	}
	cx6dx := func() []NetworkInterface { return connectX("ConnectX-6 Dx", 100) }
	cx6lx := func() []NetworkInterface { return connectX("ConnectX-6 Lx", 25) }
	nvme := func(n, gib int) []Disk {
		d := make([]Disk, n)
		for i := range d {
			d[i] = Disk{CapacityGB: gib, Type: DiskSSD, Connection: "PCIE"}
		}
		return d
	}
	return []MachineSKU{
		{
			ID: SKUCompute, Vendor: "Dell Inc.", Model: "PowerEdge R760", Generation: "Gen5", HardwareVersion: "1",
			BootstrapProtocol: "PXE",
			CPUModel:          "Intel Xeon Gold 6548Y+", CPUSockets: 2, CPUCores: 64, TotalThreads: 128,
			CPUFeatures:       emeraldRapids(),
			MemoryGiB:         512,
			Disks:             nvme(2, 3576),
			NetworkInterfaces: cx6dx(),
			Firmware:          firmware(),
			BIOSSettings:      vmHost(),
		},
		{
			ID: SKUController, Vendor: "Dell Inc.", Model: "PowerEdge R660", Generation: "Gen5", HardwareVersion: "1",
			BootstrapProtocol: "PXE",
			CPUModel:          "Intel Xeon Gold 6526Y", CPUSockets: 2, CPUCores: 32, TotalThreads: 64,
			CPUFeatures:       emeraldRapids(),
			MemoryGiB:         256,
			Disks:             nvme(2, 1788),
			NetworkInterfaces: cx6lx(),
			Firmware:          firmware(),
		},
		{
			ID: SKUGPU, Vendor: "Dell Inc.", Model: "PowerEdge R760xa", Generation: "Gen5", HardwareVersion: "1",
			BootstrapProtocol: "PXE",
			CPUModel:          "Intel Xeon Gold 6548Y+", CPUSockets: 2, CPUCores: 64, TotalThreads: 128,
			CPUFeatures:       emeraldRapids(),
			MemoryGiB:         1024,
			Disks:             nvme(2, 3576),
			NetworkInterfaces: cx6dx(),
			GPUs:              []GPU{{Vendor: "NVIDIA", Model: "L40S", Count: 4, MemoryGiB: 48}},
			Firmware:          firmware(),
			BIOSSettings:      vmHost(),
		},
		{
			ID: SKUHyperconverged, Vendor: "Dell Inc.", Model: "PowerEdge R660", Generation: "Gen4", HardwareVersion: "1",
			BootstrapProtocol: "PXE",
			CPUModel:          "Intel Xeon Gold 6438Y+", CPUSockets: 1, CPUCores: 32, TotalThreads: 64,
			CPUFeatures:       []string{"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"},
			MemoryGiB:         256,
			Disks:             append([]Disk{{CapacityGB: 894, Type: DiskSSD, Connection: "RAID"}}, nvme(4, 3576)...),
			NetworkInterfaces: cx6lx(),
			Firmware:          firmware(),
			BIOSSettings:      vmHost(),
		},
	}
}

func builtinRacks() []RackSKU {
	slots := func(first, last int, sku string) []MachineSlot {
		s := make([]MachineSlot, 0, last-first+1)
		for n := first; n <= last; n++ {
			s = append(s, MachineSlot{RackSlot: n, MachineSKU: sku})
		}
		return s
	}
	flashArrays := func(first, last int) []ApplianceSlot {
		var s []ApplianceSlot
		for n := first; n <= last; n++ {
			s = append(s, ApplianceSlot{RackSlot: n, Model: "Pure Storage FlashArray//X70 R4", CapacityGB: 100000})
		}
		return s
	}
	return []RackSKU{
		{
			ID: RackSKUAggregator, Type: RackAggregator,
			Description:        "Aggregator rack: network aggregation, 3 control-plane servers and the SAN (1 to 4 storage appliances) for up to 16 compute racks",
			ControllerMachines: slots(1, 3, SKUController),
			StorageAppliances:  flashArrays(4, 7),
			MaxClusterSlots:    16,
			SupportedRackSKUs:  []string{RackSKUCompute8, RackSKUCompute16},
		},
		{
			ID: RackSKUCompute8, Type: RackCompute,
			Description:     "Compute rack of 8 general compute servers",
			ComputeMachines: slots(1, 8, SKUCompute),
		},
		{
			ID: RackSKUCompute16, Type: RackCompute,
			Description:     "Compute rack of 16 general compute servers",
			ComputeMachines: slots(1, 16, SKUCompute),
		},
		{
			ID: RackSKUSingle, Type: RackSingle, Topology: Disaggregated,
			Description:        "Disaggregated single rack: 3 control-plane and 61 compute servers on a SAN",
			ControllerMachines: slots(1, 3, SKUController),
			ComputeMachines:    slots(4, 64, SKUCompute),
			StorageAppliances:  flashArrays(65, 65),
		},
		{
			ID: RackSKUHyperconverged, Type: RackSingle, Topology: Hyperconverged,
			Description:     "Hyperconverged single rack: up to 16 servers pooling their local NVMe",
			ComputeMachines: slots(1, 16, SKUHyperconverged),
		},
	}
}
