package machine

import (
	"fmt"
	"net/netip"
	"strings"
)

// Cluster types (ARM ClusterProperties.clusterType).
const (
	SingleRack = "SingleRack"
	MultiRack  = "MultiRack"
)

// Machine roles.
const (
	RoleControlPlane = "control-plane"
	RoleCompute      = "compute"
)

// The cluster-level JSON paths of violations.
const (
	FieldClusterType  = "properties.clusterType"
	FieldFirstRack    = "properties.aggregatorOrSingleRackDefinition"
	FieldComputeRacks = "properties.computeRackDefinitions"
)

// ClusterSpec is the hardware of a cluster as its PUT defines it.
type ClusterSpec struct {
	Type  string     // SingleRack or MultiRack
	Racks []RackSpec // Racks[0] is the aggregator or single rack, then the compute racks
}

// RackSpec is one ARM RackDefinition.
type RackSpec struct {
	// Field is the JSON path of the rack definition, which violations
	// extend, e.g. "properties.computeRackDefinitions[1]".
	Field      string
	SKU        string // a rack SKU id
	Serial     string
	Machines   []MachineSpec   // bareMetalMachineConfigurationData, in order
	Appliances []ApplianceSpec // storageApplianceConfigurationData, in order
}

// MachineSpec is one ARM BareMetalMachineConfigurationData.
type MachineSpec struct {
	Name, Serial, BMCMAC, BootMAC string
	// BMCAddress is where the BMC answers, an address or URL; the JSON path
	// of its violations ends in bmcConnectionString.
	BMCAddress string
	Slot       int
}

// ApplianceSpec is one ARM StorageApplianceConfigurationData.
type ApplianceSpec struct {
	Name, Serial string
	Slot         int
}

// Identities are the physical identities other clusters of the boundary
// already use, so that one machine cannot be enrolled twice. Each map goes
// from a normalised value (NormalizeSerial, NormalizeMAC,
// NormalizeBMCAddress) to the owner's name. When validating an update of a
// cluster, leave that cluster's own identities out.
type Identities struct {
	Serials, MACs, BMCAddresses map[string]string
}

// Add records the identities of cluster c as taken by owner (for instance
// the cluster's resource name); each machine and appliance is recorded as
// owner/name.
func (ids *Identities) Add(owner string, c ClusterSpec) {
	if ids.Serials == nil {
		ids.Serials = map[string]string{}
	}
	if ids.MACs == nil {
		ids.MACs = map[string]string{}
	}
	if ids.BMCAddresses == nil {
		ids.BMCAddresses = map[string]string{}
	}
	name := func(n string) string {
		if n == "" {
			return owner
		}
		return owner + "/" + n
	}
	for _, r := range c.Racks {
		for _, m := range r.Machines {
			if s := NormalizeSerial(m.Serial); s != "" {
				ids.Serials[s] = name(m.Name)
			}
			for _, mac := range []string{m.BMCMAC, m.BootMAC} {
				if n, ok := NormalizeMAC(mac); ok {
					ids.MACs[n] = name(m.Name)
				}
			}
			if a := NormalizeBMCAddress(m.BMCAddress); a != "" {
				ids.BMCAddresses[a] = name(m.Name)
			}
		}
		for _, a := range r.Appliances {
			if s := NormalizeSerial(a.Serial); s != "" {
				ids.Serials[s] = name(a.Name)
			}
		}
	}
}

// Violation is one broken rule of a definition: Field is the JSON path of
// the offending value and Message a sentence that names the values.
type Violation struct {
	Field, Message string
}

func (v Violation) Error() string { return v.Field + ": " + v.Message }

// NormalizeMAC returns a MAC address of six hex pairs separated by ':' or
// '-' (the ARM pattern) in the form aa:bb:cc:dd:ee:ff; ok is false for
// anything else.
func NormalizeMAC(s string) (string, bool) {
	if len(s) != 17 {
		return "", false
	}
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if i%3 == 2 {
			if c != ':' && c != '-' {
				return "", false
			}
			b[i] = ':'
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return string(b), true
}

// NormalizeSerial returns a serial number as compared for uniqueness:
// trimmed and upper-case, since service tags are case-insensitive.
func NormalizeSerial(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// NormalizeBMCAddress returns a BMC address as compared for uniqueness: the
// host and port of an address or URL, lower-case, with an IP address in its
// canonical form. The port is kept: simulated BMCs share one address.
func NormalizeBMCAddress(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	if host, _, ok := strings.Cut(s, "/"); ok {
		s = host
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap().String()
	}
	return s
}

// ValidateTopology checks the hardware of a cluster PUT against the catalog
// and against the identities other clusters already use. It returns one
// violation per broken rule, the cluster-wide ones first and then each
// rack's in the order of the definition, or nil:
//
//   - a SingleRack cluster has one rack of a Single rack SKU and no compute
//     racks; a Hyperconverged rack holds 1-16 machines, a Disaggregated one
//     1-64 machines and a storage appliance;
//   - a MultiRack cluster has an aggregator rack (Aggregator SKU) with a
//     storage appliance and at least 3 compute racks (Compute SKUs) that the
//     aggregator supports, no more than its MaxClusterSlots;
//   - every rack SKU is in the catalog; each machine sits in a machine slot
//     and each appliance in an appliance slot of its rack SKU, one per slot;
//   - rack serial numbers are unique in the cluster; machine and appliance
//     serial numbers, MAC addresses (BMC and boot alike) and BMC addresses
//     are unique in the cluster and not in taken.
//
// Empty values are left to the schema (they are required fields) and take
// no part in the uniqueness rules; a malformed MAC address is a violation.
// A rack of an unknown SKU is checked for uniqueness only.
func ValidateTopology(cat *Catalog, c ClusterSpec, taken Identities) []Violation {
	cat.mu.RLock()
	defer cat.mu.RUnlock()
	var out []Violation
	add := func(field, format string, args ...any) {
		out = append(out, Violation{Field: field, Message: fmt.Sprintf(format, args...)})
	}

	typ, ok := oneOf(c.Type, SingleRack, MultiRack)
	if !ok {
		add(FieldClusterType, "cluster type %q is not SingleRack or MultiRack", c.Type)
	}
	if len(c.Racks) == 0 {
		add(FieldFirstRack, "the cluster needs an aggregator or single rack definition")
		return out
	}
	entries := make([]*rackEntry, len(c.Racks))
	for i, r := range c.Racks {
		if entries[i] = cat.rack(r.SKU); entries[i] == nil {
			add(r.Field+".rackSkuId", "rack SKU %q is not in the catalog", r.SKU)
		}
	}

	first, firstSKU := c.Racks[0], entries[0]
	compute := c.Racks[1:]
	switch typ {
	case SingleRack:
		if len(compute) > 0 {
			add(FieldComputeRacks, "a SingleRack cluster has no compute racks; found %d", len(compute))
		}
		if firstSKU == nil {
			break
		}
		if firstSKU.sku.Type != RackSingle {
			add(first.Field+".rackSkuId", "a SingleRack cluster needs a rack SKU of type Single; %q is of type %s", firstSKU.sku.ID, firstSKU.sku.Type)
			break
		}
		n, most := len(first.Machines), MaxHyperconvergedMachines
		if firstSKU.sku.Topology == Disaggregated {
			most = MaxDisaggregatedMachines
		}
		if n < 1 || n > most {
			add(first.Field+".bareMetalMachineConfigurationData", "a %s rack (rack SKU %q) holds 1 to %d machines; found %d",
				strings.ToLower(firstSKU.sku.Topology), firstSKU.sku.ID, most, n)
		}
		if firstSKU.sku.Topology == Disaggregated && len(first.Appliances) == 0 {
			add(first.Field+".storageApplianceConfigurationData", "a disaggregated rack (rack SKU %q) needs a storage appliance; none is defined", firstSKU.sku.ID)
		}
	case MultiRack:
		var agg *rackEntry
		if firstSKU != nil {
			if firstSKU.sku.Type == RackAggregator {
				agg = firstSKU
			} else {
				add(first.Field+".rackSkuId", "a MultiRack cluster needs an aggregator rack SKU of type Aggregator; %q is of type %s", firstSKU.sku.ID, firstSKU.sku.Type)
			}
		}
		if len(first.Appliances) == 0 {
			add(first.Field+".storageApplianceConfigurationData", "the aggregator rack of a MultiRack cluster needs a storage appliance; none is defined")
		}
		if len(compute) < MinComputeRacks {
			add(FieldComputeRacks, "a MultiRack cluster needs at least %d compute racks; found %d", MinComputeRacks, len(compute))
		}
		if agg != nil && len(compute) > agg.sku.MaxClusterSlots {
			add(FieldComputeRacks, "aggregator rack SKU %q supports at most %d compute racks; found %d", agg.sku.ID, agg.sku.MaxClusterSlots, len(compute))
		}
		for i, r := range compute {
			e := entries[i+1]
			switch {
			case e == nil:
			case e.sku.Type != RackCompute:
				add(r.Field+".rackSkuId", "a compute rack needs a rack SKU of type Compute; %q is of type %s", e.sku.ID, e.sku.Type)
			case agg != nil && !agg.supported[strings.ToLower(e.sku.ID)]:
				add(r.Field+".rackSkuId", "rack SKU %q is not supported by aggregator rack SKU %q (supported: %s)",
					e.sku.ID, agg.sku.ID, strings.Join(agg.sku.SupportedRackSKUs, ", "))
			}
		}
	}

	u := uniqueness{taken: taken, add: add}
	for i := range c.Racks {
		checkSlots(&c.Racks[i], entries[i], add)
		u.rack(&c.Racks[i])
	}
	return out
}

// item refers to a machine or storage appliance of a rack definition; its
// path and description are only formatted for a message.
type item struct {
	rack      *RackSpec
	appliance bool
	i         int
	note      string // appended to the description, e.g. " (boot MAC)"
}

// field is the item's JSON path.
func (it item) field() string {
	if it.appliance {
		return fmt.Sprintf("%s.storageApplianceConfigurationData[%d]", it.rack.Field, it.i)
	}
	return fmt.Sprintf("%s.bareMetalMachineConfigurationData[%d]", it.rack.Field, it.i)
}

// String names the item in a message: by its name, or by its JSON path
// when it has none.
func (it item) String() string {
	kind, name := "machine", ""
	if it.appliance {
		kind, name = "storage appliance", it.rack.Appliances[it.i].Name
	} else {
		name = it.rack.Machines[it.i].Name
	}
	if name == "" {
		return it.field() + it.note
	}
	return fmt.Sprintf("%s %q%s", kind, name, it.note)
}

// checkSlots applies the slot rules to one rack; e is nil for an unknown
// rack SKU, when only uniqueness can be checked.
func checkSlots(r *RackSpec, e *rackEntry, add func(field, format string, args ...any)) {
	used := make(map[int]item, len(r.Machines)+len(r.Appliances))
	use := func(it item, n int) {
		if prev, dup := used[n]; dup {
			add(it.field()+".rackSlot", "rack slot %d is already used by %s", n, prev)
			return
		}
		used[n] = it
	}
	for i, m := range r.Machines {
		it := item{rack: r, i: i}
		if e != nil {
			if s, ok := e.slots[m.Slot]; !ok || s.kind == applianceSlot {
				add(it.field()+".rackSlot", "rack slot %d is not a machine slot of rack SKU %q (machine slots: %s)", m.Slot, e.sku.ID, e.machineSlots)
			}
		}
		use(it, m.Slot)
	}
	for i, a := range r.Appliances {
		it := item{rack: r, appliance: true, i: i}
		if e != nil {
			if s, ok := e.slots[a.Slot]; !ok || s.kind != applianceSlot {
				add(it.field()+".rackSlot", "rack slot %d is not a storage appliance slot of rack SKU %q (appliance slots: %s)", a.Slot, e.sku.ID, e.applianceSlots)
			}
		}
		use(it, a.Slot)
	}
}

// uniqueness applies the identity rules across the racks of one cluster.
type uniqueness struct {
	taken                   Identities
	add                     func(field, format string, args ...any)
	rackSerials             map[string]*RackSpec
	serials, macs, bmcAddrs map[string]item
}

func (u *uniqueness) rack(r *RackSpec) {
	if u.rackSerials == nil {
		u.rackSerials = map[string]*RackSpec{}
		u.serials, u.macs, u.bmcAddrs = map[string]item{}, map[string]item{}, map[string]item{}
	}
	if s := NormalizeSerial(r.Serial); s != "" {
		if prev, dup := u.rackSerials[s]; dup {
			u.add(r.Field+".rackSerialNumber", "rack serial number %q is already used by the rack at %s", r.Serial, prev.Field)
		} else {
			u.rackSerials[s] = r
		}
	}
	for i, m := range r.Machines {
		it := item{rack: r, i: i}
		u.unique(u.serials, u.taken.Serials, it, ".serialNumber", "serial number", m.Serial, NormalizeSerial(m.Serial))
		u.mac(item{rack: r, i: i, note: " (BMC MAC)"}, ".bmcMacAddress", "BMC MAC address", m.BMCMAC)
		u.mac(item{rack: r, i: i, note: " (boot MAC)"}, ".bootMacAddress", "boot MAC address", m.BootMAC)
		u.unique(u.bmcAddrs, u.taken.BMCAddresses, it, ".bmcConnectionString", "BMC address", m.BMCAddress, NormalizeBMCAddress(m.BMCAddress))
	}
	for i, a := range r.Appliances {
		u.unique(u.serials, u.taken.Serials, item{rack: r, appliance: true, i: i}, ".serialNumber", "serial number", a.Serial, NormalizeSerial(a.Serial))
	}
}

func (u *uniqueness) mac(it item, prop, what, raw string) {
	if raw == "" {
		return
	}
	n, ok := NormalizeMAC(raw)
	if !ok {
		u.add(it.field()+prop, "%s %q is not a MAC address (six pairs of hex digits separated by ':' or '-')", what, raw)
		return
	}
	u.unique(u.macs, u.taken.MACs, it, prop, what, raw, n)
}

// unique records the normalised value norm for it, or reports (at its
// property prop) that this cluster or another one already uses it.
func (u *uniqueness) unique(seen map[string]item, taken map[string]string, it item, prop, what, raw, norm string) {
	if norm == "" {
		return
	}
	if prev, dup := seen[norm]; dup {
		u.add(it.field()+prop, "%s %q is already used by %s in this cluster", what, raw, prev)
		return
	}
	if owner, dup := taken[norm]; dup {
		u.add(it.field()+prop, "%s %q is already used by %q", what, raw, owner)
		return
	}
	seen[norm] = it
}

// Roles returns the roles of the machine in a slot of a rack SKU:
// control-plane for a controller slot, compute otherwise.
func Roles(cat *Catalog, rackSKU string, slot int) []string {
	cat.mu.RLock()
	defer cat.mu.RUnlock()
	if e := cat.rack(rackSKU); e != nil && e.slots[slot].kind == controllerSlot {
		return []string{RoleControlPlane}
	}
	return []string{RoleCompute}
}

// SKUForSlot returns the id of the machine SKU that a slot of a rack SKU
// holds; ok is false for an unknown rack SKU or a slot without a machine.
func SKUForSlot(cat *Catalog, rackSKU string, slot int) (machineSKU string, ok bool) {
	cat.mu.RLock()
	defer cat.mu.RUnlock()
	e := cat.rack(rackSKU)
	if e == nil {
		return "", false
	}
	s, ok := e.slots[slot]
	if !ok || s.kind == applianceSlot {
		return "", false
	}
	return s.machineSKU, true
}
