package redfishsim

import (
	"fmt"
	"hash/fnv"
	"maps"

	"github.com/citadel-cloud/citadel/internal/machine"
)

// ForSKU is a machine built to a catalog SKU, with the given serial
// number: its processors, 32 GiB DIMMs for the SKU's memory, its disks,
// one NIC per port, firmware at the SKU's baselines and the SKU's BIOS
// settings. The MACs are derived from the serial number; BootMAC and
// BMCMAC say which they are.
func ForSKU(sku *machine.MachineSKU, serial string) Machine {
	m := Machine{
		Manufacturer: sku.Vendor, Model: sku.Model, SKU: sku.ID, SerialNumber: serial,
		BIOSVersion: "2.1.0", BMCFirmwareVersion: "7.10.30.00",
		BIOSAttributes: maps.Clone(sku.BIOSSettings),
	}
	for _, b := range sku.Firmware {
		switch b.Component {
		case "BIOS":
			m.BIOSVersion = b.MinVersion
		case "BMC":
			m.BMCFirmwareVersion = b.MinVersion
		default:
			m.Firmware = append(m.Firmware, Firmware{ID: b.Component, Name: b.Component, Version: b.MinVersion})
		}
	}
	if sku.CPUSockets > 0 {
		m.Processors = append(m.Processors, Processor{
			Model: sku.CPUModel, Manufacturer: "Intel(R) Corporation", ProcessorType: "CPU",
			TotalCores: sku.CPUCores / sku.CPUSockets, TotalThreads: sku.TotalThreads / sku.CPUSockets,
			MaxSpeedMHz: 4100, Count: sku.CPUSockets,
		})
	}
	for _, g := range sku.GPUs {
		m.Processors = append(m.Processors, Processor{Model: g.Vendor + " " + g.Model, Manufacturer: g.Vendor,
			ProcessorType: "GPU", Count: g.Count})
	}
	const dimmGiB = 32
	for i := range (sku.MemoryGiB + dimmGiB - 1) / dimmGiB {
		m.DIMMs = append(m.DIMMs, DIMM{CapacityMiB: dimmGiB * 1024, Type: "DDR5", SpeedMHz: 5600,
			Manufacturer: "Hynix", PartNumber: fmt.Sprintf("HMCG94AHBRA%03d", i%4)})
	}
	for i, d := range sku.Disks {
		protocol := map[string]string{"PCIE": "NVMe", "RAID": "SATA", "SAS": "SAS", "SATA": "SATA"}[d.Connection]
		m.Drives = append(m.Drives, Drive{CapacityBytes: int64(d.CapacityGB) << 30, MediaType: d.Type,
			Protocol: protocol, Model: fmt.Sprintf("%s %d GiB", d.Type, d.CapacityGB), SerialNumber: fmt.Sprintf("%s-D%d", serial, i)})
	}
	port := 0
	for _, n := range sku.NetworkInterfaces {
		for range n.PortCount {
			m.NICs = append(m.NICs, NIC{MACAddress: serialMAC(serial, port+1), SpeedMbps: n.PortSpeedGbps * 1000})
			port++
		}
	}
	return m
}

// BootMAC is the MAC of the machine's first port, the one it boots from.
func (m Machine) BootMAC() string {
	if len(m.NICs) == 0 {
		return ""
	}
	return m.NICs[0].MACAddress
}

// BMCMAC is the MAC of the BMC's own port, derived like the NICs' from the
// serial number.
func (m Machine) BMCMAC() string { return serialMAC(m.SerialNumber, 0) }

// serialMAC is a locally administered MAC derived from a serial number:
// port 0 is the BMC's, 1 and on the NICs'.
func serialMAC(serial string, port int) string {
	h := fnv.New32a()
	h.Write([]byte(serial))
	s := h.Sum32()
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(s>>24), byte(s>>16), byte(s>>8), byte(s), byte(port))
}
