// Package agentapi is the wire contract between `citadel agent` on each
// machine and the control plane: not ARM, a small JSON API over mTLS
// (ARCHITECTURE.md, "The agent path"). Both sides import these types;
// the package has no code of its own beyond them.
package agentapi

// Inventory is what a machine really is, as its agent reads it from the
// host.
type Inventory struct {
	Hostname string `json:"hostname"`
	CPU      CPU    `json:"cpu"`
	// MemoryBytes is MemTotal.
	MemoryBytes uint64 `json:"memoryBytes"`
	Disks       []Disk `json:"disks"`
	NICs        []NIC  `json:"nics"`
	GPUs        []GPU  `json:"gpus"`
	OS          OS     `json:"os"`
}

// CPU describes the processors: the model of the first, and totals.
type CPU struct {
	Model   string `json:"model"`
	Sockets int    `json:"sockets"`
	Cores   int    `json:"cores"`   // physical cores, all sockets
	Threads int    `json:"threads"` // logical processors
	// Flags are the /proc/cpuinfo flags of the first processor, sorted
	// (avx512f, amx_tile, amx_int8, amx_bf16 ...).
	Flags []string `json:"flags"`
}

// Disk is a block device that is a whole disk (not a partition, loop or
// RAM device).
type Disk struct {
	Name       string `json:"name"` // "nvme0n1"
	Model      string `json:"model,omitempty"`
	Serial     string `json:"serial,omitempty"`
	SizeBytes  uint64 `json:"sizeBytes"`
	Rotational bool   `json:"rotational"`
}

// NIC is a physical network interface (one with a device behind it).
type NIC struct {
	Name      string `json:"name"`
	MAC       string `json:"mac"` // aa:bb:cc:dd:ee:ff
	SpeedMbps int    `json:"speedMbps,omitempty"`
	Up        bool   `json:"up"`
}

// GPU is a PCI display or 3D controller (class 0x03xx) or processing
// accelerator (0x12xx).
type GPU struct {
	PCIAddress string `json:"pciAddress"` // "0000:17:00.0"
	VendorID   string `json:"vendorId"`   // "0x10de"
	DeviceID   string `json:"deviceId"`
	Vendor     string `json:"vendor"` // "NVIDIA", "AMD", "Intel" or the vendor id
	Class      string `json:"class"`  // "0x030200"
}

// OS is the running operating system.
type OS struct {
	Name    string `json:"name"`    // PRETTY_NAME of os-release
	Version string `json:"version"` // VERSION_ID
	Kernel  string `json:"kernel"`
}
