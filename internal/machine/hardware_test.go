package machine

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const bootMAC = "b8:ce:f6:00:00:01"

// r760 is what the BMC of a healthy citadel-compute-2s-64c-gen5 machine
// reports.
func r760() Inventory {
	inv := Inventory{
		Manufacturer: "Dell Inc.", Model: "PowerEdge R760", SerialNumber: "7XQ2K04",
		Processors: []Processor{
			{Model: "Intel(R) Xeon(R) Gold 6548Y+", Cores: 32, Threads: 64, Type: "CPU", Healthy: true},
			{Model: "Intel(R) Xeon(R) Gold 6548Y+", Cores: 32, Threads: 64, Type: "CPU", Healthy: true},
		},
		Disks: []DiskInfo{
			{Name: "nvme0", Model: "Dell Ent NVMe CM6 RI 3.84TB", Serial: "S1", CapacityBytes: 3_840_755_982_336, MediaType: "SSD", Protocol: "NVMe"},
			{Name: "nvme1", Model: "Dell Ent NVMe CM6 RI 3.84TB", Serial: "S2", CapacityBytes: 3_840_755_982_336, MediaType: "SSD", Protocol: "NVMe"},
		},
		NICs: []NIC{
			{Name: "NIC.Slot.1-1", MAC: "B8:CE:F6:00:00:01", SpeedMbps: 100000, LinkStatus: "LinkUp"},
			{Name: "NIC.Slot.1-2", MAC: "B8:CE:F6:00:00:02", SpeedMbps: 100000, LinkStatus: "LinkUp"},
			{Name: "NIC.Slot.2-1", MAC: "B8:CE:F6:00:01:01", SpeedMbps: 100000, LinkStatus: "LinkUp"},
			{Name: "NIC.Slot.2-2", MAC: "B8:CE:F6:00:01:02", SpeedMbps: 100000, LinkStatus: "LinkDown"},
		},
		Firmware: map[string]string{"BIOS": "2.2.7", "BMC": "7.10.50.00", "Broadcom Gigabit Ethernet": "22.31.6"},
	}
	for i := range 16 {
		inv.DIMMs = append(inv.DIMMs, DIMM{Slot: fmt.Sprintf("DIMM%d", i), CapacityMiB: 32768, Enabled: true, Health: "OK"})
	}
	return inv
}

func TestValidateHardware(t *testing.T) {
	cat := Builtin()
	compute, _ := cat.Machine(SKUCompute)
	gpu, _ := cat.Machine(SKUGPU)
	want := Expected{Serial: "7XQ2K04", BootMAC: bootMAC}
	tests := []struct {
		name string
		sku  *MachineSKU // compute when nil
		want *Expected   // the machine's serial and bootMAC when nil
		edit func(inv *Inventory)
		out  []Finding
	}{
		{name: "healthy"},
		{name: "serial and MAC compared normalised", want: &Expected{Serial: " 7xq2k04", BootMAC: "B8-CE-F6-00-00-01"}},
		{name: "nothing expected", want: &Expected{}, edit: func(inv *Inventory) { inv.SerialNumber = "other" }},
		{name: "more memory, a Warning DIMM and a disabled one", edit: func(inv *Inventory) {
			inv.DIMMs = append(inv.DIMMs, DIMM{Slot: "DIMM16", CapacityMiB: 32768, Enabled: true, Health: "Warning"}, DIMM{Slot: "DIMM17", CapacityMiB: 32768})
		}},
		{name: "disk within the rounding tolerance", edit: func(inv *Inventory) { inv.Disks[1].CapacityBytes = 3_700_000_000_000 }}, // 3445 GiB
		{name: "disks of unknown media type and a bigger one", edit: func(inv *Inventory) {
			inv.Disks[0].MediaType, inv.Disks[1].CapacityBytes = "", 7_681_501_126_656
		}},
		{name: "extra disks, ports and firmware", edit: func(inv *Inventory) {
			inv.Disks = append([]DiskInfo{{Name: "boot", CapacityBytes: 480 << 30, MediaType: "SSD"}}, inv.Disks...)
			inv.NICs = append(inv.NICs, NIC{Name: "NIC.Embedded.1-1", MAC: "B8:CE:F6:00:02:01"})
		}},
		{name: "newer firmware, numerically", edit: func(inv *Inventory) { inv.Firmware["BIOS"], inv.Firmware["BMC"] = "2.10.0", "7.10.100.00" }},
		{name: "firmware components compared without case", edit: func(inv *Inventory) {
			delete(inv.Firmware, "BMC")
			inv.Firmware["bmc"] = "7.10.30.00"
		}},

		{name: "serial number", edit: func(inv *Inventory) { inv.SerialNumber = "7XQ2K05" },
			out: []Finding{{"serialNumber", `serialNumber: the machine reports "7XQ2K05", the cluster defines "7XQ2K04"`}}},
		{name: "CPU model", edit: func(inv *Inventory) {
			for i := range inv.Processors {
				inv.Processors[i].Model = "Intel(R) Xeon(R) Gold 6448Y"
			}
		},
			out: []Finding{{"cpu", `cpu: found model "Intel(R) Xeon(R) Gold 6448Y", the SKU needs "Intel Xeon Gold 6548Y+"`}}},
		{name: "a missing socket", edit: func(inv *Inventory) { inv.Processors = inv.Processors[:1] },
			out: []Finding{{"cpu", "cpu: found 1 socket, 32 cores, 64 threads; the SKU needs 2 sockets, 64 cores, 128 threads"}}},
		{name: "hyper-threading off", edit: func(inv *Inventory) { inv.Processors[0].Threads, inv.Processors[1].Threads = 32, 32 },
			out: []Finding{{"cpu", "cpu: found 2 sockets, 64 cores, 64 threads; the SKU needs 2 sockets, 64 cores, 128 threads"}}},
		{name: "an unhealthy processor", edit: func(inv *Inventory) { inv.Processors[1].Healthy = false },
			out: []Finding{{"cpu", `cpu: processor 1 ("Intel(R) Xeon(R) Gold 6548Y+") is not healthy`}}},
		{name: "a failed DIMM", edit: func(inv *Inventory) { inv.DIMMs[7].Enabled, inv.DIMMs[7].Health = false, "Critical" },
			out: []Finding{{"memory", "memory: 480 GiB enabled, the SKU needs 512 GiB; DIMM 'DIMM7' is Critical and disabled"}}},
		{name: "missing DIMMs", edit: func(inv *Inventory) { inv.DIMMs = inv.DIMMs[:8] },
			out: []Finding{{"memory", "memory: 256 GiB enabled, the SKU needs 512 GiB"}}},
		{name: "a disabled DIMM and a Warning one", edit: func(inv *Inventory) { inv.DIMMs[2].Enabled, inv.DIMMs[3].Health = false, "Warning" },
			out: []Finding{{"memory", "memory: 480 GiB enabled, the SKU needs 512 GiB; DIMM 'DIMM2' is disabled; DIMM 'DIMM3' is Warning"}}},
		{name: "a Critical DIMM still enabled", edit: func(inv *Inventory) { inv.DIMMs[7].Health = "Critical" },
			out: []Finding{{"memory", "memory: DIMM 'DIMM7' is Critical"}}},
		{name: "a missing disk", edit: func(inv *Inventory) { inv.Disks = inv.Disks[:1] },
			out: []Finding{{"disk", "disk: found 1 disk (nvme0 3576 GiB SSD), the SKU needs 2 (3576 GiB SSD PCIE, 3576 GiB SSD PCIE)"}}},
		{name: "a small disk", edit: func(inv *Inventory) { inv.Disks[1].CapacityBytes = 1_920_383_410_176 },
			out: []Finding{{"disk", "disk: no SSD disk of at least 3397 GiB for the SKU's disks[1] (3576 GiB less 5% for vendor rounding); disks not matched: nvme1 1788 GiB SSD"}}},
		{name: "an HDD for an SSD", edit: func(inv *Inventory) { inv.Disks[0].MediaType = "HDD" },
			out: []Finding{{"disk", "disk: no SSD disk of at least 3397 GiB for the SKU's disks[1] (3576 GiB less 5% for vendor rounding); disks not matched: nvme0 3576 GiB HDD"}}},
		{name: "missing ports", edit: func(inv *Inventory) { inv.NICs = inv.NICs[:2] },
			out: []Finding{{"nic", "nic: found 2 ports, the SKU needs 4 (NVIDIA ConnectX-6 Dx 2 x 100 Gbps; NVIDIA ConnectX-6 Dx 2 x 100 Gbps)"}}},
		{name: "boot MAC not on the machine", want: &Expected{Serial: "7XQ2K04", BootMAC: "b8:ce:f6:00:09:09"},
			out: []Finding{{"nic", "nic: boot MAC b8:ce:f6:00:09:09 is not on any port of the machine (found: NIC.Slot.1-1 b8:ce:f6:00:00:01, NIC.Slot.1-2 b8:ce:f6:00:00:02, NIC.Slot.2-1 b8:ce:f6:00:01:01, NIC.Slot.2-2 b8:ce:f6:00:01:02)"}}},
		{name: "old BIOS", edit: func(inv *Inventory) { inv.Firmware["BIOS"] = "2.0.19" },
			out: []Finding{{"firmware/BIOS", "firmware/BIOS: version 2.0.19 is older than the SKU's baseline 2.1.0"}}},
		{name: "no BMC version", edit: func(inv *Inventory) { delete(inv.Firmware, "BMC") },
			out: []Finding{{"firmware/BMC", "firmware/BMC: the machine does not report a version; the SKU needs at least 7.10.30.00"}}},
		{name: "several findings in order", want: &Expected{Serial: "X"}, edit: func(inv *Inventory) {
			inv.DIMMs = inv.DIMMs[:15]
			inv.Firmware = nil
		},
			out: []Finding{
				{"serialNumber", `serialNumber: the machine reports "7XQ2K04", the cluster defines "X"`},
				{"memory", "memory: 480 GiB enabled, the SKU needs 512 GiB"},
				{"firmware/BIOS", "firmware/BIOS: the machine does not report a version; the SKU needs at least 2.1.0"},
				{"firmware/BMC", "firmware/BMC: the machine does not report a version; the SKU needs at least 7.10.30.00"},
			}},

		{name: "GPU server", sku: gpu, edit: func(inv *Inventory) {
			inv.DIMMs = append(inv.DIMMs, inv.DIMMs...)
			for range 4 {
				inv.Processors = append(inv.Processors, Processor{Model: "NVIDIA L40S", Cores: 142, Type: "GPU", Healthy: true})
			}
		}},
		{name: "GPU server short of a GPU", sku: gpu, edit: func(inv *Inventory) {
			inv.DIMMs = append(inv.DIMMs, inv.DIMMs...)
			inv.Processors = append(inv.Processors,
				Processor{Model: "NVIDIA L40S", Type: "GPU"}, Processor{Model: "NVIDIA L40S", Type: "GPU"},
				Processor{Model: "NVIDIA L4", Type: "GPU"}, Processor{Model: "Xilinx Alveo U55C", Type: "FPGA"})
		},
			out: []Finding{{"gpu", `gpu: found 2 "L40S", the SKU needs 4 (all GPUs found: "NVIDIA L40S", "NVIDIA L40S", "NVIDIA L4")`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sku := tc.sku
			if sku == nil {
				sku = compute
			}
			w := want
			if tc.want != nil {
				w = *tc.want
			}
			inv := r760()
			if tc.edit != nil {
				tc.edit(&inv)
			}
			got := ValidateHardware(sku, w, inv)
			if diff := cmp.Diff(tc.out, got); diff != "" {
				t.Errorf("ValidateHardware(%s, %v) = %v, want %v\n(-want +got):\n%s", sku.ID, w, got, tc.out, diff)
			}
		})
	}
	if got := ValidateHardware(nil, want, r760()); len(got) != 1 || got[0].Part != "sku" {
		t.Errorf("ValidateHardware(nil) = %v, want one sku finding", got)
	}
}

func TestMemoryGiB(t *testing.T) {
	inv := Inventory{DIMMs: []DIMM{
		{Slot: "A1", CapacityMiB: 65536, Enabled: true},
		{Slot: "A2", CapacityMiB: 65536, Enabled: false, Health: "Critical"},
		{Slot: "A3", CapacityMiB: 16384, Enabled: true},
		{Slot: "A4", CapacityMiB: 1023, Enabled: true},
	}}
	if got, want := inv.MemoryGiB(), 80; got != want {
		t.Errorf("MemoryGiB() = %d, want %d", got, want)
	}
	if got := (Inventory{}).MemoryGiB(); got != 0 {
		t.Errorf("Inventory{}.MemoryGiB() = %d, want 0", got)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"2.1.0", "2.1.0", 0},
		{"2.1", "2.1.0", 0},
		{"2.1.0.0", "2.1", 0},
		{"2.10.0", "2.9.9", 1},
		{"2.9.9", "2.10.0", -1},
		{"7.10.30.00", "7.10.30.0", 0},
		{"007", "7", 0},
		{"1.99999999999999999999999", "1.100000000000000000000000", -1},
		{"1.0a", "1.0b", -1},
		{"1.0b", "1.0a", 1},
		{"2.1.0", " 2.1.0 ", 0},
		{"P79", "P80", -1},
		{"1..2", "1.0.2", -1}, // an empty part is a string, and "" < "0"
		{"", "0", -1},
	} {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func BenchmarkValidateHardware(b *testing.B) {
	sku, _ := Builtin().Machine(SKUCompute)
	inv := r760()
	want := Expected{Serial: "7XQ2K04", BootMAC: bootMAC}
	if f := ValidateHardware(sku, want, inv); len(f) != 0 {
		b.Fatalf("ValidateHardware = %v, want none", f)
	}
	for b.Loop() {
		ValidateHardware(sku, want, inv)
	}
}
