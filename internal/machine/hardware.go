package machine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Inventory is what a machine really is, as its BMC (or later its agent)
// reports it.
type Inventory struct {
	Manufacturer, Model, SerialNumber string
	Processors                        []Processor
	DIMMs                             []DIMM
	Disks                             []DiskInfo
	NICs                              []NIC // one per port (Redfish EthernetInterface)
	// Firmware maps a component ("BIOS", "BMC" or a Redfish
	// FirmwareInventory member's Name) to its version.
	Firmware map[string]string
}

// Processor is one socket's CPU or one accelerator.
type Processor struct {
	Model          string
	Cores, Threads int
	Type           string // "CPU" (also when empty) or "GPU"; others are ignored
	Healthy        bool
}

// DIMM is one memory module.
type DIMM struct {
	Slot        string
	CapacityMiB int
	Enabled     bool
	Health      string // "OK" (also when empty), "Warning" or "Critical"
}

// DiskInfo is one drive.
type DiskInfo struct {
	Name, Model, Serial string
	CapacityBytes       int64
	MediaType           string // "SSD", "HDD" or empty when unknown
	Protocol            string // "NVMe", "SATA", "SAS", ...
}

// NIC is one network port.
type NIC struct {
	Name, MAC  string
	SpeedMbps  int
	LinkStatus string
}

// Expected is what the cluster definition says of the machine.
type Expected struct {
	Serial, BootMAC string
}

// Finding is one way a machine differs from its SKU or definition. Part is
// "serialNumber", "cpu", "gpu", "memory", "disk", "nic" or
// "firmware/<component>"; the message names the part and the expected and
// found values.
type Finding struct {
	Part, Message string
}

// diskTolerancePercent is how far under the SKU's capacity a disk may be:
// vendors round capacities, reserve spare area differently from one firmware
// to the next, and RAID controllers report a virtual disk a little smaller
// than its members.
const diskTolerancePercent = 5

// MemoryGiB returns the memory of the enabled DIMMs, in whole GiB.
func (i Inventory) MemoryGiB() int { return i.enabledMiB() / 1024 }

func (i Inventory) enabledMiB() int {
	n := 0
	for _, d := range i.DIMMs {
		if d.Enabled {
			n += d.CapacityMiB
		}
	}
	return n
}

// ValidateHardware compares a machine's inventory with its SKU and its
// definition and returns what differs, or nil when the machine is what the
// SKU says. It checks the serial number; the CPU model (a case-insensitive
// substring, "(R)" and "(TM)" ignored), sockets, cores, threads and health;
// the GPUs; the memory of the enabled DIMMs (a machine may have more, and a
// failed DIMM is named); the disks (each SKU disk needs its own disk of the
// same type and at least its capacity less diskTolerancePercent); the NIC
// ports and the boot MAC; and each firmware baseline.
func ValidateHardware(sku *MachineSKU, want Expected, inv Inventory) []Finding {
	if sku == nil {
		return []Finding{{Part: "sku", Message: "sku: the machine has no SKU to be validated against"}}
	}
	var out []Finding
	add := func(part, format string, args ...any) {
		out = append(out, Finding{Part: part, Message: part + ": " + fmt.Sprintf(format, args...)})
	}
	if want.Serial != "" && NormalizeSerial(inv.SerialNumber) != NormalizeSerial(want.Serial) {
		add("serialNumber", "the machine reports %q, the cluster defines %q", inv.SerialNumber, want.Serial)
	}
	checkCPU(sku, inv, add)
	checkGPU(sku, inv, add)
	checkMemory(sku, inv, add)
	checkDisks(sku, inv, add)
	checkNICs(sku, want, inv, add)
	for _, it := range FirmwareDrift(sku, inv.Firmware) {
		if it.Observed == "" {
			add(it.Item, "the machine does not report a version; the SKU needs at least %s", it.Desired)
		} else {
			add(it.Item, "version %s is older than the SKU's baseline %s", it.Observed, it.Desired)
		}
	}
	return out
}

// FirmwareDrift compares the firmware a machine reports (component →
// version) with its SKU's baseline: each component older than the
// baseline's minimum, or not reported, is an item "firmware/{component}"
// whose Desired is that minimum.
func FirmwareDrift(sku *MachineSKU, firmware map[string]string) []DriftItem {
	var items []DriftItem
	for _, b := range sku.Firmware {
		v, ok := firmwareVersion(firmware, b.Component)
		if !ok || CompareVersions(v, b.MinVersion) < 0 {
			items = append(items, DriftItem{Item: "firmware/" + b.Component, Desired: b.MinVersion, Observed: v})
		}
	}
	return items
}

// BIOSDrift compares the BIOS attributes a machine reports (as Redfish
// Bios.Attributes decode: strings, float64, booleans or nil) with its
// SKU's BIOS settings: each attribute whose value differs, or that the
// machine does not report, is an item "bios/{attribute}", in attribute
// order. Values are compared as text (BIOSValue), so 1 and "1" agree;
// attribute names and enumeration values are compared exactly, as the
// BIOS attribute registries spell them.
func BIOSDrift(sku *MachineSKU, attrs map[string]any) []DriftItem {
	var items []DriftItem
	for _, name := range slices.Sorted(maps.Keys(sku.BIOSSettings)) {
		want := BIOSValue(sku.BIOSSettings[name])
		got, ok := attrs[name]
		if !ok || BIOSValue(got) != want {
			items = append(items, DriftItem{Item: "bios/" + name, Desired: want, Observed: BIOSValue(got)})
		}
	}
	return items
}

// BIOSValue writes a BIOS attribute's value as text: a string as is, a
// number without exponent or trailing zeros, a boolean as true or false,
// nil (null, or not reported) as "".
func BIOSValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return v.String()
	}
	return fmt.Sprint(v)
}

type addFunc = func(part, format string, args ...any)

func isCPU(p Processor) bool { return p.Type == "" || strings.EqualFold(p.Type, "CPU") }
func isGPU(p Processor) bool { return strings.EqualFold(p.Type, "GPU") }

func checkCPU(sku *MachineSKU, inv Inventory, add addFunc) {
	want := normalizeModel(sku.CPUModel)
	var sockets, cores, threads int
	var wrong []string
	for i, p := range inv.Processors {
		if !isCPU(p) {
			continue
		}
		sockets++
		cores += p.Cores
		threads += p.Threads
		if !strings.Contains(normalizeModel(p.Model), want) && !slices.Contains(wrong, p.Model) {
			wrong = append(wrong, p.Model)
		}
		if !p.Healthy {
			add("cpu", "processor %d (%q) is not healthy", i, p.Model)
		}
	}
	if len(wrong) > 0 {
		add("cpu", "found model %s, the SKU needs %q", quoteAll(wrong), sku.CPUModel)
	}
	if sockets != sku.CPUSockets || cores != sku.CPUCores || threads != sku.TotalThreads {
		add("cpu", "found %s, %s, %s; the SKU needs %s, %s, %s",
			plural(sockets, "socket"), plural(cores, "core"), plural(threads, "thread"),
			plural(sku.CPUSockets, "socket"), plural(sku.CPUCores, "core"), plural(sku.TotalThreads, "thread"))
	}
}

func checkGPU(sku *MachineSKU, inv Inventory, add addFunc) {
	for _, g := range sku.GPUs {
		want := normalizeModel(g.Model)
		n := 0
		for _, p := range inv.Processors {
			if isGPU(p) && strings.Contains(normalizeModel(p.Model), want) {
				n++
			}
		}
		if n < g.Count {
			var found []string
			for _, p := range inv.Processors {
				if isGPU(p) {
					found = append(found, p.Model)
				}
			}
			add("gpu", "found %d %q, the SKU needs %d (all GPUs found: %s)", n, g.Model, g.Count, quoteAll(found))
		}
	}
}

func checkMemory(sku *MachineSKU, inv Inventory, add addFunc) {
	var bad, critical []string
	for _, d := range inv.DIMMs {
		health := cmp.Or(d.Health, "OK")
		switch {
		case !d.Enabled && !strings.EqualFold(health, "OK"):
			bad = append(bad, fmt.Sprintf("DIMM '%s' is %s and disabled", d.Slot, health))
		case !d.Enabled:
			bad = append(bad, fmt.Sprintf("DIMM '%s' is disabled", d.Slot))
		case !strings.EqualFold(health, "OK"):
			bad = append(bad, fmt.Sprintf("DIMM '%s' is %s", d.Slot, health))
			if strings.EqualFold(health, "Critical") {
				critical = append(critical, fmt.Sprintf("DIMM '%s' is Critical", d.Slot))
			}
		}
	}
	if mib := inv.enabledMiB(); mib < sku.MemoryGiB*1024 {
		msg := fmt.Sprintf("%d GiB enabled, the SKU needs %d GiB", mib/1024, sku.MemoryGiB)
		if len(bad) > 0 {
			msg += "; " + strings.Join(bad, "; ")
		}
		add("memory", "%s", msg)
	} else if len(critical) > 0 {
		add("memory", "%s", strings.Join(critical, "; "))
	}
}

func checkDisks(sku *MachineSKU, inv Inventory, add addFunc) {
	if len(inv.Disks) < len(sku.Disks) {
		add("disk", "found %s (%s), the SKU needs %d (%s)", plural(len(inv.Disks), "disk"), describeDisks(inv.Disks, nil), len(sku.Disks), describeSKUDisks(sku.Disks))
		return
	}
	// Largest requirement first, each taking the smallest disk of its type
	// that is big enough: the sets of acceptable disks are nested, so this
	// matches whenever any assignment would.
	need := make([]int, len(sku.Disks))
	for i := range need {
		need[i] = i
	}
	slices.SortStableFunc(need, func(a, b int) int { return cmp.Compare(sku.Disks[b].CapacityGB, sku.Disks[a].CapacityGB) })
	have := make([]int, len(inv.Disks))
	for i := range have {
		have[i] = i
	}
	slices.SortStableFunc(have, func(a, b int) int { return cmp.Compare(inv.Disks[a].CapacityBytes, inv.Disks[b].CapacityBytes) })
	used := make([]bool, len(inv.Disks))
	var unmatched []int
	for _, i := range need {
		d := sku.Disks[i]
		least := minDiskBytes(d.CapacityGB)
		pick := -1
		for _, j := range have {
			h := inv.Disks[j]
			if !used[j] && h.CapacityBytes >= least && (h.MediaType == "" || strings.EqualFold(h.MediaType, d.Type)) {
				pick = j
				break
			}
		}
		if pick < 0 {
			unmatched = append(unmatched, i)
			continue
		}
		used[pick] = true
	}
	slices.Sort(unmatched)
	for _, i := range unmatched {
		d := sku.Disks[i]
		add("disk", "no %s disk of at least %d GiB for the SKU's disks[%d] (%d GiB less %d%% for vendor rounding); disks not matched: %s",
			d.Type, minDiskBytes(d.CapacityGB)>>30, i, d.CapacityGB, diskTolerancePercent, describeDisks(inv.Disks, used))
	}
}

// minDiskBytes is the smallest disk that satisfies a SKU disk of gib GiB.
func minDiskBytes(gib int) int64 {
	b := int64(min(max(gib, 0), maxDiskGiB)) << 30
	return b - b*diskTolerancePercent/100
}

func describeDisks(disks []DiskInfo, skip []bool) string {
	var parts []string
	for i, d := range disks {
		if skip != nil && skip[i] {
			continue
		}
		parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s %d GiB %s", d.Name, d.CapacityBytes>>30, d.MediaType)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func describeSKUDisks(disks []Disk) string {
	var parts []string
	for _, d := range disks {
		parts = append(parts, fmt.Sprintf("%d GiB %s %s", d.CapacityGB, d.Type, d.Connection))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func checkNICs(sku *MachineSKU, want Expected, inv Inventory, add addFunc) {
	ports := 0
	var cards []string
	for _, n := range sku.NetworkInterfaces {
		ports += n.PortCount
		cards = append(cards, fmt.Sprintf("%s %s %d x %d Gbps", n.Vendor, n.Model, n.PortCount, n.PortSpeedGbps))
	}
	if len(inv.NICs) < ports {
		add("nic", "found %s, the SKU needs %d (%s)", plural(len(inv.NICs), "port"), ports, strings.Join(cards, "; "))
	}
	if want.BootMAC == "" {
		return
	}
	boot, ok := NormalizeMAC(want.BootMAC)
	if !ok {
		boot = strings.ToLower(strings.TrimSpace(want.BootMAC))
	}
	var found []string
	for _, n := range inv.NICs {
		mac, ok := NormalizeMAC(n.MAC)
		if !ok {
			mac = strings.ToLower(strings.TrimSpace(n.MAC))
		}
		if mac == boot {
			return
		}
		found = append(found, strings.TrimSpace(n.Name+" "+mac))
	}
	if len(found) == 0 {
		found = []string{"none"}
	}
	add("nic", "boot MAC %s is not on any port of the machine (found: %s)", boot, strings.Join(found, ", "))
}

func firmwareVersion(fw map[string]string, component string) (string, bool) {
	if v, ok := fw[component]; ok {
		return v, true
	}
	for k, v := range fw {
		if strings.EqualFold(k, component) {
			return v, true
		}
	}
	return "", false
}

// CompareVersions compares dotted versions part by part, returning -1, 0 or
// +1: numeric parts as numbers (of any length), any other part as a string;
// a missing part counts as 0, so 2.1 equals 2.1.0.
func CompareVersions(a, b string) int {
	ap := strings.Split(strings.TrimSpace(a), ".")
	bp := strings.Split(strings.TrimSpace(b), ".")
	for i := range max(len(ap), len(bp)) {
		x, y := "0", "0"
		if i < len(ap) {
			x = ap[i]
		}
		if i < len(bp) {
			y = bp[i]
		}
		if c := comparePart(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func comparePart(x, y string) int {
	if !isDigits(x) || !isDigits(y) {
		return strings.Compare(x, y)
	}
	x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
	return cmp.Or(cmp.Compare(len(x), len(y)), strings.Compare(x, y))
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// normalizeModel prepares a processor model for a substring match:
// lower-case, without trademark marks, single-spaced.
func normalizeModel(s string) string {
	s = strings.ToLower(s)
	for _, mark := range []string{"(r)", "(tm)", "®", "™"} {
		s = strings.ReplaceAll(s, mark, " ")
	}
	return strings.Join(strings.Fields(s), " ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func quoteAll(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
