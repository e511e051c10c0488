package redfish

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/citadel-cloud/citadel/internal/machine"
)

// Inventory is what hardware validation compares with the bill of
// materials.
type Inventory struct {
	System             string // @odata.id
	Manufacturer       string
	Model              string
	SKU                string
	SerialNumber       string
	UUID               string
	BIOSVersion        string
	BMCFirmwareVersion string // of the first manager in Links.ManagedBy
	PowerState         string
	Health             string
	Processors         []Processor
	Memory             []DIMM  // empty slots too, with State Absent
	MemoryGiB          float64 // of Enabled DIMMs; MemorySummary when there are none
	Drives             []Drive
	NICs               []NIC
	Firmware           []Firmware
}

// Processor is a CPU, GPU, FPGA or other processor.
type Processor struct {
	ID            string `json:"Id"`
	ProcessorType string
	Manufacturer  string
	Model         string
	TotalCores    int
	TotalThreads  int
	MaxSpeedMHz   int
	Status        `json:"Status"`
}

func decodeProcessor(b []byte) (Processor, error) { return decode[Processor](b) }

// DIMM is one memory slot; an empty one has State Absent.
type DIMM struct {
	ID                string `json:"Id"`
	CapacityMiB       int
	MemoryDeviceType  string
	OperatingSpeedMhz int
	Manufacturer      string
	PartNumber        string
	SerialNumber      string
	Status            `json:"Status"`
}

func decodeDIMM(b []byte) (DIMM, error) { return decode[DIMM](b) }

// Drive is a disk, from Storage or, on older services, SimpleStorage
// (which gives no Id).
type Drive struct {
	ID            string `json:"Id"`
	Name          string
	Manufacturer  string
	Model         string
	SerialNumber  string
	Revision      string
	MediaType     string // HDD, SSD, SMR
	Protocol      string // SAS, SATA, NVMe, ...
	CapacityBytes int64
	Status        `json:"Status"`
}

func decodeDrive(b []byte) (Drive, error) { return decode[Drive](b) }

func decodeStorage(b []byte) ([]string, error) {
	v, err := decode[struct{ Drives []link }](b)
	var out []string
	for _, d := range v.Drives {
		if d.ID != "" {
			out = append(out, d.ID)
		}
	}
	return out, err
}

func decodeSimpleStorage(b []byte) ([]Drive, error) {
	v, err := decode[struct{ Devices []Drive }](b)
	return v.Devices, err
}

// NIC is a system Ethernet interface.
type NIC struct {
	ID         string `json:"Id"`
	MACAddress string // lower case, colon-separated
	SpeedMbps  int
	LinkStatus string // LinkUp, LinkDown, NoLink
}

func decodeNIC(b []byte) (NIC, error) {
	n, err := decode[NIC](b)
	n.MACAddress = normalizeMAC(n.MACAddress)
	return n, err
}

// normalizeMAC writes a MAC address as aa:bb:cc:dd:ee:ff, whether the BMC
// wrote it with colons, dashes, dots or nothing; anything else is only
// lower-cased.
func normalizeMAC(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	hex := strings.NewReplacer(":", "", "-", "", ".", "").Replace(s)
	if len(hex) != 12 || strings.Trim(hex, "0123456789abcdef") != "" {
		return s
	}
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex[i : i+2])
	}
	return b.String()
}

// Firmware is one entry of the firmware inventory.
type Firmware struct {
	ID         string `json:"Id"`
	Name       string
	Version    string
	SoftwareID string `json:"SoftwareId"`
}

func decodeFirmware(b []byte) (Firmware, error) { return decode[Firmware](b) }

// Inventory reads what the system is made of: its processors, memory,
// drives, NICs and firmware, each by following the system's links.
func (c *Client) Inventory(ctx context.Context, sys string) (*Inventory, error) {
	inv, err := c.inventory(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("redfish %s: inventory %s: %w", c.cfg.Endpoint, sys, err)
	}
	return inv, nil
}

func (c *Client) inventory(ctx context.Context, sys string) (*Inventory, error) {
	s, err := c.system(ctx, sys)
	if err != nil {
		return nil, err
	}
	inv := &Inventory{
		System:       s.ID,
		Manufacturer: s.Manufacturer,
		Model:        s.Model,
		SKU:          s.SKU,
		SerialNumber: s.SerialNumber,
		UUID:         s.UUID,
		BIOSVersion:  s.BiosVersion,
		PowerState:   s.PowerState,
		Health:       s.Health,
	}
	if inv.Processors, err = readAll(ctx, c, s.links.processors, decodeProcessor); err != nil {
		return nil, err
	}
	if inv.Memory, err = readAll(ctx, c, s.links.memory, decodeDIMM); err != nil {
		return nil, err
	}
	for _, d := range inv.Memory {
		if d.State == "Enabled" {
			inv.MemoryGiB += float64(d.CapacityMiB) / 1024
		}
	}
	if len(inv.Memory) == 0 {
		inv.MemoryGiB = s.MemoryGiB
	}
	if inv.Drives, err = c.drives(ctx, s); err != nil {
		return nil, err
	}
	if inv.NICs, err = readAll(ctx, c, s.links.ethernet, decodeNIC); err != nil {
		return nil, err
	}
	var managers []manager
	for _, id := range s.links.managedBy {
		m, err := read(ctx, c, id, decodeManager)
		if err != nil {
			return nil, err
		}
		managers = append(managers, m)
	}
	if len(managers) > 0 {
		inv.BMCFirmwareVersion = managers[0].FirmwareVersion
	}
	if inv.Firmware, err = c.firmware(ctx); err != nil {
		return nil, err
	}
	// Without a firmware inventory (Intel, Supermicro X10, iDRAC7) the
	// system and its managers still say their versions.
	if len(inv.Firmware) == 0 {
		if s.BiosVersion != "" {
			inv.Firmware = append(inv.Firmware, Firmware{ID: "BIOS", Name: "BIOS", Version: s.BiosVersion})
		}
		for _, m := range managers {
			if m.FirmwareVersion != "" {
				inv.Firmware = append(inv.Firmware, Firmware{ID: m.ID, Name: m.Name, Version: m.FirmwareVersion})
			}
		}
	}
	return inv, nil
}

// drives reads Storage/{s}.Drives, else the Devices of SimpleStorage
// (older services: Supermicro X10, DMTF rackmount1).
func (c *Client) drives(ctx context.Context, s *System) ([]Drive, error) {
	var out []Drive
	if s.links.storage != "" {
		storages, err := c.members(ctx, s.links.storage)
		if err != nil {
			return nil, err
		}
		for _, id := range storages {
			links, err := read(ctx, c, id, decodeStorage)
			if err != nil {
				return nil, err
			}
			for _, l := range links {
				d, err := read(ctx, c, l, decodeDrive)
				if err != nil {
					return nil, err
				}
				if d.ID == "" {
					d.ID = path.Base(trimSlash(l)) // a label for the report, never navigated
				}
				out = append(out, d)
			}
		}
	}
	if len(out) > 0 || s.links.simpleStorage == "" {
		return out, nil
	}
	simple, err := c.members(ctx, s.links.simpleStorage)
	if err != nil {
		return nil, err
	}
	for _, id := range simple {
		devices, err := read(ctx, c, id, decodeSimpleStorage)
		if err != nil {
			return nil, err
		}
		out = append(out, devices...)
	}
	return out, nil
}

// firmware reads UpdateService/FirmwareInventory; nil when there is none.
func (c *Client) firmware(ctx context.Context) ([]Firmware, error) {
	if c.root.updateService == "" {
		return nil, nil
	}
	us, err := read(ctx, c, c.root.updateService, decodeUpdateService)
	if err != nil || us.firmwareInventory == "" {
		return nil, err
	}
	return readAll(ctx, c, us.firmwareInventory, decodeFirmware)
}

// read gets one resource and decodes it.
func read[T any](ctx context.Context, c *Client, id string, decode func([]byte) (T, error)) (T, error) {
	resp, err := c.get(ctx, id)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := decode(resp.body)
	if err != nil {
		return v, fmt.Errorf("%s: %w", id, err)
	}
	return v, nil
}

// readAll gets and decodes each member of a collection; nil when there is
// no collection.
func readAll[T any](ctx context.Context, c *Client, col string, decode func([]byte) (T, error)) ([]T, error) {
	if col == "" {
		return nil, nil
	}
	ids, err := c.members(ctx, col)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		v, err := read(ctx, c, id, decode)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Hardware is the inventory in the terms of package machine, for
// validation against a machine SKU: present DIMMs only, and the BIOS and
// BMC versions among the firmware.
func (inv *Inventory) Hardware() machine.Inventory {
	out := machine.Inventory{Manufacturer: inv.Manufacturer, Model: inv.Model, SerialNumber: inv.SerialNumber,
		Firmware: map[string]string{}}
	for _, pr := range inv.Processors {
		out.Processors = append(out.Processors, machine.Processor{Model: pr.Model, Cores: pr.TotalCores,
			Threads: pr.TotalThreads, Type: processorType(pr.ProcessorType), Healthy: pr.Health == "" || pr.Health == "OK"})
	}
	for _, d := range inv.Memory {
		if d.State == "Absent" {
			continue
		}
		out.DIMMs = append(out.DIMMs, machine.DIMM{Slot: d.ID, CapacityMiB: d.CapacityMiB, Enabled: d.State == "" || d.State == "Enabled", Health: d.Health})
	}
	for _, d := range inv.Drives {
		out.Disks = append(out.Disks, machine.DiskInfo{Name: d.ID, Model: d.Model, Serial: d.SerialNumber,
			CapacityBytes: d.CapacityBytes, MediaType: d.MediaType, Protocol: d.Protocol})
	}
	for _, n := range inv.NICs {
		out.NICs = append(out.NICs, machine.NIC{Name: n.ID, MAC: n.MACAddress, SpeedMbps: n.SpeedMbps, LinkStatus: n.LinkStatus})
	}
	if inv.BIOSVersion != "" {
		out.Firmware["BIOS"] = inv.BIOSVersion
	}
	if inv.BMCFirmwareVersion != "" {
		out.Firmware["BMC"] = inv.BMCFirmwareVersion
	}
	for _, f := range inv.Firmware {
		out.Firmware[f.Name] = f.Version
	}
	return out
}

func processorType(t string) string {
	if strings.EqualFold(t, "GPU") {
		return "GPU"
	}
	return "CPU"
}
