package machine

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// MachineSKU describes one model of server: what the hardware validation
// expects a machine in a slot of this SKU to be. The JSON names follow the
// ARM MachineSkuProperties, so an operator's SKU file reads like the rackSkus
// resource; CPUModel, CPUFeatures, GPUs, Firmware and BIOSSettings are
// Citadel's additions.
type MachineSKU struct {
	ID                string `json:"id"`
	Vendor            string `json:"vendor"`
	Model             string `json:"model"`
	Generation        string `json:"generation"`
	HardwareVersion   string `json:"hardwareVersion"`
	BootstrapProtocol string `json:"bootstrapProtocol"` // "PXE" when empty
	// CPUModel is matched, case-insensitively and ignoring "(R)" and "(TM)",
	// as a substring of the model each processor reports.
	CPUModel     string `json:"cpuModel"`
	CPUSockets   int    `json:"cpuSockets"`
	CPUCores     int    `json:"cpuCores"`     // the machine's total, all sockets
	TotalThreads int    `json:"totalThreads"` // the machine's total, all sockets
	// CPUFeatures are Linux /proc/cpuinfo flags the scheduler may rely on.
	CPUFeatures       []string           `json:"cpuFeatures,omitempty"`
	MemoryGiB         int                `json:"memoryCapacityGB"`
	Disks             []Disk             `json:"disks"`
	NetworkInterfaces []NetworkInterface `json:"networkInterfaces"`
	GPUs              []GPU              `json:"gpus,omitempty"`
	Firmware          []FirmwareBaseline `json:"firmware,omitempty"`
	// BIOSSettings are the BIOS attributes (Redfish Bios.Attributes, by
	// the vendor's attribute registry names) a machine of the SKU must
	// have, with their values: strings, numbers (float64) or booleans.
	// Attributes not named here are left as the machine has them.
	BIOSSettings map[string]any `json:"biosSettings,omitempty"`
}

// Disk is one disk of a machine SKU (ARM MachineDisk).
type Disk struct {
	// CapacityGB is in gibibytes, as the ARM MachineDisk says: a disk sold
	// as 3.84 TB holds 3576 GiB.
	CapacityGB int    `json:"capacityGB"`
	Type       string `json:"type"`       // DiskSSD or DiskHDD
	Connection string `json:"connection"` // "PCIE", "RAID", "SAS" or "SATA"
}

// Disk types and connections.
const (
	DiskSSD = "SSD"
	DiskHDD = "HDD"
)

// NetworkInterface is one network adapter of a machine SKU (ARM
// NetworkInterface); PortCount ports of PortSpeedGbps each.
type NetworkInterface struct {
	Vendor               string `json:"vendor"`
	Model                string `json:"model"`
	PortCount            int    `json:"portCount"`
	PortSpeedGbps        int    `json:"portSpeed"`
	PhysicalSlot         int    `json:"physicalSlot"`
	Address              string `json:"address"`              // partial PCI address, e.g. "0000:17:00"
	DeviceConnectionType string `json:"deviceConnectionType"` // "PCI" when empty
}

// GPU is a group of identical accelerators in a machine SKU.
type GPU struct {
	Vendor    string `json:"vendor"`
	Model     string `json:"model"` // matched as a substring of the processor model
	Count     int    `json:"count"`
	MemoryGiB int    `json:"memoryCapacityGB"` // per GPU
}

// FirmwareBaseline is the oldest firmware version a machine of the SKU may
// run for one component: "BIOS", "BMC", "NIC" or a Redfish
// FirmwareInventory member's Name.
type FirmwareBaseline struct {
	Component  string `json:"component"`
	MinVersion string `json:"minVersion"`
}

// RackSKU describes one model of rack: which slot holds which machine SKU
// and storage appliance. JSON names follow the ARM RackSkuProperties.
type RackSKU struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Type        string `json:"rackType"` // RackAggregator, RackCompute or RackSingle
	// Topology is Hyperconverged or Disaggregated for a Single rack and
	// empty otherwise.
	Topology           string          `json:"topology,omitempty"`
	ControllerMachines []MachineSlot   `json:"controllerMachines"`
	ComputeMachines    []MachineSlot   `json:"computeMachines"`
	StorageAppliances  []ApplianceSlot `json:"storageAppliances"`
	MaxClusterSlots    int             `json:"maxClusterSlots"`     // aggregator: most compute racks
	SupportedRackSKUs  []string        `json:"supportedRackSkuIds"` // aggregator: compute rack SKU ids
}

// MachineSlot is a rack slot that holds a machine of MachineSKU (an id).
type MachineSlot struct {
	RackSlot   int    `json:"rackSlot"`
	MachineSKU string `json:"machineSkuId"`
}

// ApplianceSlot is a rack slot that holds a storage appliance.
type ApplianceSlot struct {
	RackSlot   int    `json:"rackSlot"`
	Model      string `json:"model"`
	CapacityGB int    `json:"capacityGB"`
}

// Rack types (ARM RackSkuProperties.rackType).
const (
	RackAggregator = "Aggregator"
	RackCompute    = "Compute"
	RackSingle     = "Single"
)

// Single-rack topologies (see ARCHITECTURE.md, "Topologies").
const (
	Hyperconverged = "Hyperconverged" // 1-16 machines, pooled local storage
	Disaggregated  = "Disaggregated"  // up to 64 machines, SAN
)

// Limits of the topologies and of the ARM rackSlot field.
const (
	MaxHyperconvergedMachines = 16
	MaxDisaggregatedMachines  = 64
	MinComputeRacks           = 3
	MinRackSlot, MaxRackSlot  = 1, 256
)

// maxDiskGiB bounds a SKU's disk so that byte arithmetic cannot overflow.
const maxDiskGiB = 1 << 20 // 1 PiB

// Catalog holds the machine and rack SKUs a boundary knows: Builtin's and
// those an operator loads. SKUs are only ever added, so a returned *SKU stays
// valid; callers must not modify it. Ids are case-insensitive. The zero
// Catalog is empty and ready to use; it is safe for concurrent use.
type Catalog struct {
	mu       sync.RWMutex
	machines map[string]*MachineSKU // by lower-case id
	racks    map[string]*rackEntry  // by lower-case id
	mlist    []*MachineSKU          // sorted by id
	rlist    []*RackSKU             // sorted by id
}

// rackEntry is a rack SKU with its slots indexed for the topology rules.
type rackEntry struct {
	sku       *RackSKU
	slots     map[int]slot
	supported map[string]bool // lower-case compute rack SKU ids (aggregator)
	// machineSlots and applianceSlots describe the slots for messages,
	// e.g. "1-3, 10".
	machineSlots, applianceSlots string
	machineCount                 int
}

type slotKind int

const (
	controllerSlot slotKind = iota + 1
	computeSlot
	applianceSlot
)

type slot struct {
	kind       slotKind
	machineSKU string
}

// Machine returns the machine SKU with the given id.
func (c *Catalog) Machine(id string) (*MachineSKU, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, ok := c.machines[strings.ToLower(id)]
	return m, ok
}

// Rack returns the rack SKU with the given id.
func (c *Catalog) Rack(id string) (*RackSKU, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.racks[strings.ToLower(id)]
	if !ok {
		return nil, false
	}
	return e.sku, true
}

// Machines returns every machine SKU, sorted by id.
func (c *Catalog) Machines() []*MachineSKU {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.mlist)
}

// Racks returns every rack SKU, sorted by id.
func (c *Catalog) Racks() []*RackSKU {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.rlist)
}

// rack returns the indexed rack SKU, or nil; the caller holds c.mu.
func (c *Catalog) rack(id string) *rackEntry {
	return c.racks[strings.ToLower(id)]
}

// skuFile is the operator's SKU file.
type skuFile struct {
	MachineSKUs []MachineSKU `json:"machineSkus"`
	RackSKUs    []RackSKU    `json:"rackSkus"`
}

// Load adds the operator's SKUs from a JSON document
// {"machineSkus": [...], "rackSkus": [...]}. Decoding is strict: an unknown
// field or trailing data is an error. Every SKU is validated: ids are
// non-empty ARM resource names, unique in the document and new to the
// catalog (a built-in SKU cannot be redefined); counts and capacities are
// positive; enum values are known (and case-insensitive); rack slots are
// 1-256 and unique within a rack; slot and supported-rack references exist,
// in the document or the catalog; and each rack type has the shape its
// topology needs (an aggregator has controllers, an appliance and at least
// 3 cluster slots; a Hyperconverged rack 1-16 machines and no appliance; a
// Disaggregated rack 1-64 machines and an appliance). On error, which names
// the SKU and the field of every problem, the catalog is unchanged.
func (c *Catalog) Load(r io.Reader) error {
	var f skuFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("load SKUs: the document is empty")
		}
		return fmt.Errorf("load SKUs: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("load SKUs: unexpected data after the JSON object")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ms, rs, err := c.check(f.MachineSKUs, f.RackSKUs)
	if err != nil {
		return fmt.Errorf("load SKUs: %w", err)
	}
	c.put(ms, rs)
	return nil
}

// check validates new SKUs against each other and the catalog (the caller
// holds c.mu) and returns them canonicalised: enum values in their declared
// spelling, SKU references spelled as the referenced id, defaults filled.
// It collects every problem rather than stopping at the first.
// describe names entry i of a document's list (machineSkus, rackSkus) in
// a message: by its id when it has one.
func describe(list, kind string, i int, id string) string {
	if id == "" {
		return fmt.Sprintf("%s[%d]", list, i)
	}
	return fmt.Sprintf("%s %q", kind, id)
}

// claim records v in fresh under id unless the id is malformed, is taken
// in the catalog (taken, by lower-case key) or repeats one of the
// document; it says what is wrong, or "".
func claim[T any](id, kind string, taken func(key string) (string, bool), fresh map[string]T, v T) string {
	key := strings.ToLower(id)
	if msg := checkID(id); msg != "" {
		return msg
	}
	if old, ok := taken(key); ok {
		return fmt.Sprintf("the catalog already has %s %q", kind, old)
	}
	if _, ok := fresh[key]; ok {
		return "the id appears more than once in the document"
	}
	fresh[key] = v
	return ""
}

func (c *Catalog) check(machines []MachineSKU, racks []RackSKU) ([]*MachineSKU, []*RackSKU, error) {
	var errs []error
	fail := func(what, field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", what, field, fmt.Sprintf(format, args...)))
	}

	newMachines := map[string]*MachineSKU{}
	ms := make([]*MachineSKU, 0, len(machines))
	for i := range machines {
		m := &machines[i]
		what := describe("machineSkus", "machine SKU", i, m.ID)
		if msg := claim(m.ID, "machine SKU", func(key string) (string, bool) {
			old, ok := c.machines[key]
			if !ok {
				return "", false
			}
			return old.ID, true
		}, newMachines, m); msg != "" {
			fail(what, "id", "%s", msg)
		}
		checkMachine(m, func(field, format string, args ...any) { fail(what, field, format, args...) })
		ms = append(ms, m)
	}

	// Register the new rack ids and types first: an aggregator may support
	// a compute rack SKU defined later in the same document.
	newRacks := map[string]*RackSKU{}
	for i := range racks {
		r := &racks[i]
		what := describe("rackSkus", "rack SKU", i, r.ID)
		if msg := claim(r.ID, "rack SKU", func(key string) (string, bool) {
			old, ok := c.racks[key]
			if !ok {
				return "", false
			}
			return old.sku.ID, true
		}, newRacks, r); msg != "" {
			fail(what, "id", "%s", msg)
		}
		if t, ok := oneOf(r.Type, RackAggregator, RackCompute, RackSingle); ok {
			r.Type = t
		} else {
			fail(what, "rackType", "%q is not Aggregator, Compute or Single", r.Type)
		}
	}
	machineID := func(id string) (string, bool) {
		if m, ok := newMachines[strings.ToLower(id)]; ok {
			return m.ID, true
		}
		if m, ok := c.machines[strings.ToLower(id)]; ok {
			return m.ID, true
		}
		return "", false
	}
	rackSKU := func(id string) *RackSKU {
		if r, ok := newRacks[strings.ToLower(id)]; ok {
			return r
		}
		if e, ok := c.racks[strings.ToLower(id)]; ok {
			return e.sku
		}
		return nil
	}
	rs := make([]*RackSKU, 0, len(racks))
	for i := range racks {
		r := &racks[i]
		what := fmt.Sprintf("rackSkus[%d]", i)
		if r.ID != "" {
			what = fmt.Sprintf("rack SKU %q", r.ID)
		}
		checkRack(r, machineID, rackSKU, func(field, format string, args ...any) { fail(what, field, format, args...) })
		rs = append(rs, r)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return ms, rs, nil
}

// checkID says what is wrong with a SKU id, or "". Ids become ARM resource
// names (rackSkus/{id}), so they are kept to a safe alphabet.
func checkID(id string) string {
	if id == "" {
		return "must not be empty"
	}
	if len(id) > 128 {
		return fmt.Sprintf("%d characters is more than 128", len(id))
	}
	for i, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.')
		if !ok {
			return fmt.Sprintf("%q has %q at offset %d; use letters, digits, '-', '_' and '.', starting with a letter or digit", id, r, i)
		}
	}
	return ""
}

func checkMachine(m *MachineSKU, fail func(field, format string, args ...any)) {
	positive := func(field string, v int) bool {
		if v <= 0 {
			fail(field, "must be positive, got %d", v)
			return false
		}
		return true
	}
	if strings.TrimSpace(m.CPUModel) == "" {
		fail("cpuModel", "must not be empty")
	}
	sockets, cores, threads := positive("cpuSockets", m.CPUSockets), positive("cpuCores", m.CPUCores), positive("totalThreads", m.TotalThreads)
	if sockets && cores && m.CPUCores < m.CPUSockets {
		fail("cpuCores", "%d cores is fewer than the %d sockets", m.CPUCores, m.CPUSockets)
	}
	if cores && threads && m.TotalThreads < m.CPUCores {
		fail("totalThreads", "%d threads is fewer than the %d cores", m.TotalThreads, m.CPUCores)
	}
	positive("memoryCapacityGB", m.MemoryGiB)
	for i, f := range m.CPUFeatures {
		if strings.TrimSpace(f) == "" {
			fail(fmt.Sprintf("cpuFeatures[%d]", i), "must not be empty")
		}
	}
	if m.BootstrapProtocol == "" {
		m.BootstrapProtocol = "PXE"
	}
	for i := range m.Disks {
		d := &m.Disks[i]
		field := fmt.Sprintf("disks[%d]", i)
		if positive(field+".capacityGB", d.CapacityGB) && d.CapacityGB > maxDiskGiB {
			fail(field+".capacityGB", "%d GiB is more than %d", d.CapacityGB, maxDiskGiB)
		}
		if t, ok := oneOf(d.Type, DiskSSD, DiskHDD); ok {
			d.Type = t
		} else {
			fail(field+".type", "%q is not SSD or HDD", d.Type)
		}
		if t, ok := oneOf(d.Connection, "PCIE", "RAID", "SAS", "SATA"); ok {
			d.Connection = t
		} else {
			fail(field+".connection", "%q is not PCIE, RAID, SAS or SATA", d.Connection)
		}
	}
	if len(m.NetworkInterfaces) == 0 {
		fail("networkInterfaces", "a machine needs at least one network interface to bootstrap")
	}
	for i := range m.NetworkInterfaces {
		n := &m.NetworkInterfaces[i]
		field := fmt.Sprintf("networkInterfaces[%d]", i)
		positive(field+".portCount", n.PortCount)
		positive(field+".portSpeed", n.PortSpeedGbps)
		if n.PhysicalSlot < 0 {
			fail(field+".physicalSlot", "must not be negative, got %d", n.PhysicalSlot)
		}
		if n.DeviceConnectionType == "" {
			n.DeviceConnectionType = "PCI"
		} else if t, ok := oneOf(n.DeviceConnectionType, "PCI"); ok {
			n.DeviceConnectionType = t
		} else {
			fail(field+".deviceConnectionType", "%q is not PCI", n.DeviceConnectionType)
		}
	}
	for i, g := range m.GPUs {
		field := fmt.Sprintf("gpus[%d]", i)
		if strings.TrimSpace(g.Model) == "" {
			fail(field+".model", "must not be empty")
		}
		positive(field+".count", g.Count)
		positive(field+".memoryCapacityGB", g.MemoryGiB)
	}
	seen := map[string]int{}
	for i, f := range m.Firmware {
		field := fmt.Sprintf("firmware[%d]", i)
		if strings.TrimSpace(f.Component) == "" {
			fail(field+".component", "must not be empty")
		} else if j, dup := seen[strings.ToLower(f.Component)]; dup {
			fail(field+".component", "%q already has a baseline in firmware[%d]", f.Component, j)
		} else {
			seen[strings.ToLower(f.Component)] = i
		}
		if strings.TrimSpace(f.MinVersion) == "" {
			fail(field+".minVersion", "must not be empty")
		}
	}
	checkBIOS(m, fail)
}

// checkBIOS checks the SKU's BIOS settings: attribute names are not empty
// and values are JSON scalars, numbers held as float64 as a SKU file
// decodes them, so a built-in SKU equals the same SKU loaded from a file.
func checkBIOS(m *MachineSKU, fail func(field, format string, args ...any)) {
	for _, name := range slices.Sorted(maps.Keys(m.BIOSSettings)) {
		field := fmt.Sprintf("biosSettings[%q]", name)
		if strings.TrimSpace(name) == "" {
			fail(field, "the attribute name must not be empty")
			continue
		}
		switch v := m.BIOSSettings[name].(type) {
		case string, bool, float64:
		case int:
			m.BIOSSettings[name] = float64(v)
		case json.Number:
			f, err := v.Float64()
			if err != nil {
				fail(field, "%s is not a number", v)
				continue
			}
			m.BIOSSettings[name] = f
		default:
			fail(field, "the value must be a string, a number or a boolean, got %s", jsonKind(v))
		}
	}
}

// jsonKind names the JSON type of a decoded value, for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

func checkRack(r *RackSKU, machineID func(string) (string, bool), rackSKU func(string) *RackSKU, fail func(field, format string, args ...any)) {
	used := map[int]string{}
	useSlot := func(field string, n int) {
		if n < MinRackSlot || n > MaxRackSlot {
			fail(field, "rack slot %d is not between %d and %d", n, MinRackSlot, MaxRackSlot)
			return
		}
		if prev, dup := used[n]; dup {
			fail(field, "rack slot %d is also used by %s", n, prev)
			return
		}
		used[n] = strings.TrimSuffix(field, ".rackSlot")
	}
	machines := func(list string, slots []MachineSlot) {
		for i := range slots {
			s := &slots[i]
			field := fmt.Sprintf("%s[%d]", list, i)
			useSlot(field+".rackSlot", s.RackSlot)
			if id, ok := machineID(s.MachineSKU); ok {
				s.MachineSKU = id
			} else {
				fail(field+".machineSkuId", "machine SKU %q is in neither the catalog nor the document", s.MachineSKU)
			}
		}
	}
	machines("controllerMachines", r.ControllerMachines)
	machines("computeMachines", r.ComputeMachines)
	for i, a := range r.StorageAppliances {
		field := fmt.Sprintf("storageAppliances[%d]", i)
		useSlot(field+".rackSlot", a.RackSlot)
		if strings.TrimSpace(a.Model) == "" {
			fail(field+".model", "must not be empty")
		}
		if a.CapacityGB <= 0 {
			fail(field+".capacityGB", "must be positive, got %d", a.CapacityGB)
		}
	}

	machineCount := len(r.ControllerMachines) + len(r.ComputeMachines)
	if r.Type != RackAggregator {
		if r.MaxClusterSlots != 0 {
			fail("maxClusterSlots", "only an Aggregator rack has cluster slots; a %s rack has 0, got %d", r.Type, r.MaxClusterSlots)
		}
		if len(r.SupportedRackSKUs) > 0 {
			fail("supportedRackSkuIds", "only an Aggregator rack supports compute rack SKUs; a %s rack has none", r.Type)
		}
	}
	if r.Type != RackSingle && r.Topology != "" {
		fail("topology", "only a Single rack has a topology; a %s rack has none, got %q", r.Type, r.Topology)
	}
	switch r.Type {
	case RackAggregator:
		if len(r.ControllerMachines) == 0 {
			fail("controllerMachines", "an Aggregator rack needs at least one controller machine slot for the control plane")
		}
		if len(r.StorageAppliances) == 0 {
			fail("storageAppliances", "an Aggregator rack needs a storage appliance slot: a MultiRack cluster requires a storage appliance")
		}
		if r.MaxClusterSlots < MinComputeRacks {
			fail("maxClusterSlots", "an Aggregator rack needs at least %d cluster slots (a MultiRack cluster has at least %d compute racks), got %d", MinComputeRacks, MinComputeRacks, r.MaxClusterSlots)
		}
		if len(r.SupportedRackSKUs) == 0 {
			fail("supportedRackSkuIds", "an Aggregator rack must support at least one Compute rack SKU")
		}
		for i, id := range r.SupportedRackSKUs {
			field := fmt.Sprintf("supportedRackSkuIds[%d]", i)
			switch s := rackSKU(id); {
			case s == nil:
				fail(field, "rack SKU %q is in neither the catalog nor the document", id)
			case s.Type != RackCompute:
				fail(field, "rack SKU %q is a %s rack, not a Compute rack", s.ID, s.Type)
			default:
				r.SupportedRackSKUs[i] = s.ID
			}
		}
	case RackCompute:
		if len(r.ComputeMachines) == 0 {
			fail("computeMachines", "a Compute rack needs at least one compute machine slot")
		}
	case RackSingle:
		t, ok := oneOf(r.Topology, Hyperconverged, Disaggregated)
		if !ok {
			fail("topology", "%q is not Hyperconverged or Disaggregated", r.Topology)
			break
		}
		r.Topology = t
		if t == Hyperconverged {
			if machineCount < 1 || machineCount > MaxHyperconvergedMachines {
				fail("computeMachines", "a Hyperconverged rack has 1 to %d machine slots, got %d", MaxHyperconvergedMachines, machineCount)
			}
			if len(r.StorageAppliances) > 0 {
				fail("storageAppliances", "a Hyperconverged rack pools local storage and has no storage appliance, got %d", len(r.StorageAppliances))
			}
		} else {
			if machineCount < 1 || machineCount > MaxDisaggregatedMachines {
				fail("computeMachines", "a Disaggregated rack has 1 to %d machine slots, got %d", MaxDisaggregatedMachines, machineCount)
			}
			if len(r.StorageAppliances) == 0 {
				fail("storageAppliances", "a Disaggregated rack needs a storage appliance slot")
			}
		}
	}
}

// put indexes validated SKUs; the caller holds c.mu.
func (c *Catalog) put(ms []*MachineSKU, rs []*RackSKU) {
	if c.machines == nil {
		c.machines = map[string]*MachineSKU{}
		c.racks = map[string]*rackEntry{}
	}
	for _, m := range ms {
		c.machines[strings.ToLower(m.ID)] = m
		c.mlist = append(c.mlist, m)
	}
	for _, r := range rs {
		c.racks[strings.ToLower(r.ID)] = index(r)
		c.rlist = append(c.rlist, r)
	}
	slices.SortFunc(c.mlist, func(a, b *MachineSKU) int { return compareIDs(a.ID, b.ID) })
	slices.SortFunc(c.rlist, func(a, b *RackSKU) int { return compareIDs(a.ID, b.ID) })
}

func compareIDs(a, b string) int {
	return cmp.Or(cmp.Compare(strings.ToLower(a), strings.ToLower(b)), cmp.Compare(a, b))
}

func index(r *RackSKU) *rackEntry {
	e := &rackEntry{sku: r, slots: map[int]slot{}, supported: map[string]bool{}}
	var machineSlots, applianceSlots []int
	for _, s := range r.ControllerMachines {
		e.slots[s.RackSlot] = slot{kind: controllerSlot, machineSKU: s.MachineSKU}
		machineSlots = append(machineSlots, s.RackSlot)
	}
	for _, s := range r.ComputeMachines {
		e.slots[s.RackSlot] = slot{kind: computeSlot, machineSKU: s.MachineSKU}
		machineSlots = append(machineSlots, s.RackSlot)
	}
	for _, s := range r.StorageAppliances {
		e.slots[s.RackSlot] = slot{kind: applianceSlot}
		applianceSlots = append(applianceSlots, s.RackSlot)
	}
	for _, id := range r.SupportedRackSKUs {
		e.supported[strings.ToLower(id)] = true
	}
	e.machineSlots, e.applianceSlots = slotRanges(machineSlots), slotRanges(applianceSlots)
	e.machineCount = len(machineSlots)
	return e
}

// slotRanges describes slot numbers compactly: [1 2 3 5] is "1-3, 5".
func slotRanges(slots []int) string {
	if len(slots) == 0 {
		return "none"
	}
	s := slices.Clone(slots)
	slices.Sort(s)
	s = slices.Compact(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(s[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return b.String()
}

// oneOf returns the member of allowed that v equals, ignoring case: ARM
// enum values are case-insensitive.
func oneOf(v string, allowed ...string) (string, bool) {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, true
		}
	}
	return v, false
}
