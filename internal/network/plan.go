package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// Port kinds (Port.Kind): what PlanFabric cables a port to.
const (
	PortUplink     = "uplink"     // a ToR's port to a CE
	PortDownlink   = "downlink"   // a CE's port to a ToR
	PortPeer       = "peer"       // to the other CE, or the rack's other ToR
	PortServer     = "server"     // a ToR's port to a server NIC
	PortBMC        = "bmc"        // a management switch's port to a server's BMC
	PortManagement = "management" // a device's Management0, and the management switch port it is cabled to
	PortPE         = "pe"         // a CE's port to a provider edge router: the operator's, so in no Link
	PortUnused     = "unused"
)

// Fabric size limits (rackCount and serverCountPerRack).
const (
	MaxComputeRacks   = 8
	MaxServersPerRack = 16
)

// torASNBase is where the ToRs' private autonomous systems start: the two
// ToRs of compute rack i are AS 65000+i (65001..65008), so each rack is
// its own eBGP neighbour of the CEs, which are in the fabric's ASN.
const torASNBase = 65000

// The port layout of the devices. CEs and ToRs have 32 front-panel ports
// of four lanes each, so SONiC names them Ethernet0, Ethernet4, ...,
// Ethernet124, and a Management0 port; management switches have 48
// single-lane ports, Ethernet0..Ethernet47.
const (
	routerPorts     = 32
	routerPortLanes = 4
	mgmtPorts       = 48
	// mgmtDevicePort is the management switch port cabled to the first
	// CE or ToR of its rack's Management0; the second uses the next one.
	mgmtDevicePort = 40
	// peerPortA and peerPortB join the two CEs, and the two ToRs of a rack.
	peerPortA = 120
	peerPortB = 124
	// pePortA and pePortB of each CE face the operator's two PE routers,
	// one each. Option A external networks are sub-interfaces of pePortA.
	// The CEs' downlinks end at Ethernet60 (MaxComputeRacks racks of two
	// ToRs), well below them.
	pePortA = 112
	pePortB = 116
)

// PlanFabric lays out a fabric's racks, devices, cables and addresses, in
// the shape of an Azure Operator Nexus fabric:
//
//   - rack 0, "AggrRack", holds the two CEs and a management switch;
//   - compute rack i (1-based), "CompRack{i}", holds two ToRs and a
//     management switch.
//
// Each ToR has Ethernet0 cabled to CE1 and Ethernet4 to CE2; ToR k of rack
// i lands on the CEs' port Ethernet{4*(2*(i-1)+(k-1))}. The two ToRs of a
// rack, and the two CEs, are joined on Ethernet120 and Ethernet124. Server
// slot s has eth0 on TOR1 and eth1 on TOR2, both Ethernet{4*(s+1)}, and
// its BMC on the management switch's Ethernet{s-1}. Every CE's and ToR's
// Management0 goes to its rack's management switch, Ethernet40 for the
// first device of the rack and Ethernet41 for the second. Each CE's
// Ethernet112 and Ethernet116 face the provider edge routers (PortPE):
// the operator cables them to equipment the fabric does not know, so no
// Link names them.
//
// The ipv4Prefix is cut in two halves: device i (in Devices order) gets
// the management address i+1 of the first half and, if it routes (CEs
// and ToRs), the loopback i+1 of the second half as its /32 router ID.
// Management switches run no BGP and have no loopback and ASN 0.
//
// The result is a pure function of spec: planning twice gives the same
// topology, so it can be recomputed rather than stored.
func PlanFabric(spec FabricSpec) (Topology, error) {
	if err := spec.validate(); err != nil {
		return Topology{}, err
	}
	p := planner{index: map[string]int{}}
	p.rack(spec, 0, "AggrRack", RackAggregate,
		device{"CE1", RoleCE, spec.ASN}, device{"CE2", RoleCE, spec.ASN})
	for i := 1; i <= spec.ComputeRacks; i++ {
		asn := uint32(torASNBase + i)
		p.rack(spec, i, "CompRack"+strconv.Itoa(i), RackCompute,
			device{"TOR1", RoleToR, asn}, device{"TOR2", RoleToR, asn})
	}
	p.address(spec.ManagementPrefix)
	p.cable(spec)
	return p.topo, nil
}

func (spec FabricSpec) validate() error {
	if spec.Name == "" {
		return &RuleError{"name", "the fabric needs a name; its devices are named after it"}
	}
	if spec.ASN == 0 {
		return &RuleError{"fabricASN", "must be between 1 and 4294967295, not 0"}
	}
	if spec.ComputeRacks < 1 || spec.ComputeRacks > MaxComputeRacks {
		return &RuleError{"rackCount", fmt.Sprintf("must be between 1 and %d compute racks, not %d", MaxComputeRacks, spec.ComputeRacks)}
	}
	if spec.ASN > torASNBase && spec.ASN <= torASNBase+uint32(spec.ComputeRacks) {
		return &RuleError{"fabricASN", fmt.Sprintf("%d is the ToRs' AS of compute rack %d (the ToRs use 65001..%d); the CEs need an AS of their own", spec.ASN, spec.ASN-torASNBase, torASNBase+spec.ComputeRacks)}
	}
	if spec.ServersPerRack < 1 || spec.ServersPerRack > MaxServersPerRack {
		return &RuleError{"serverCountPerRack", fmt.Sprintf("must be between 1 and %d, not %d", MaxServersPerRack, spec.ServersPerRack)}
	}
	prefix := spec.ManagementPrefix
	if !prefix.IsValid() || !prefix.Addr().Is4() {
		return &RuleError{"ipv4Prefix", fmt.Sprintf("%v is not an IPv4 prefix such as 10.0.0.0/24", prefix)}
	}
	if prefix.Masked() != prefix {
		return &RuleError{"ipv4Prefix", fmt.Sprintf("%s has host bits set; the network prefix is %s", prefix, prefix.Masked())}
	}
	// Each half holds one address per device, skipping the half's first
	// address, and the last address of the prefix is its broadcast.
	devices := uint64(3 + 3*spec.ComputeRacks)
	half := (uint64(1) << (32 - prefix.Bits())) / 2
	if half < devices+2 {
		need := 32 - bits.Len64(devices+1) - 1
		return &RuleError{"ipv4Prefix", fmt.Sprintf("%s is too small for %d devices: it needs at least a /%d (management addresses in the first half, loopbacks in the second)", prefix, devices, need)}
	}
	return nil
}

// device is one device of a rack, before it gets its place.
type device struct {
	suffix string // e.g. "TOR1"; the name is "{fabric}-{rack}-{suffix}"
	role   string
	asn    uint32
}

type planner struct {
	topo  Topology
	index map[string]int // device name → position in topo.Devices
}

// rack adds a rack with its two routing devices and its management switch.
func (p *planner) rack(spec FabricSpec, index int, name, typ string, routers ...device) {
	p.topo.Racks = append(p.topo.Racks, Rack{Name: name, Type: typ, Index: index})
	for _, d := range append(routers, device{"MgmtSwitch", RoleManagement, 0}) {
		full := spec.Name + "-" + name + "-" + d.suffix
		p.index[full] = len(p.topo.Devices)
		p.topo.Devices = append(p.topo.Devices, Device{
			Name:     full,
			Rack:     name,
			Role:     d.role,
			Hostname: strings.ToLower(full),
			ASN:      d.asn,
			Ports:    frontPanel(d.role),
		})
	}
}

// frontPanel is a new device's ports, all unused but Management0.
func frontPanel(role string) []Port {
	if role == RoleManagement {
		ports := make([]Port, mgmtPorts)
		for i := range ports {
			ports[i] = Port{Name: sonicPort(i), Kind: PortUnused}
		}
		return ports
	}
	ports := make([]Port, routerPorts, routerPorts+1)
	for i := range ports {
		ports[i] = Port{Name: sonicPort(i * routerPortLanes), Kind: PortUnused}
	}
	return append(ports, Port{Name: "Management0", Kind: PortManagement})
}

// sonicPort is SONiC's name of the front-panel port whose first lane is n.
func sonicPort(n int) string { return "Ethernet" + strconv.Itoa(n) }

// address gives device i the (i+1)th address of each half of prefix.
func (p *planner) address(prefix netip.Prefix) {
	a := prefix.Addr().As4()
	base := binary.BigEndian.Uint32(a[:])
	half := uint32((uint64(1) << (32 - prefix.Bits())) / 2)
	addr := func(n uint32) netip.Addr {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], n)
		return netip.AddrFrom4(b)
	}
	for i := range p.topo.Devices {
		d := &p.topo.Devices[i]
		d.ManagementIP = addr(base + 1 + uint32(i))
		if d.Role != RoleManagement {
			d.Loopback = addr(base + half + 1 + uint32(i))
		}
	}
}

// managementNetwork is the subnet of the devices' management addresses:
// the first half of the fabric's ipv4Prefix. PlanFabric puts each
// routing device's loopback exactly half the prefix above its management
// address, so the half's size is the distance between the two.
func managementNetwork(topo Topology) (netip.Prefix, error) {
	for _, d := range topo.Devices {
		if !d.Loopback.Is4() || !d.ManagementIP.Is4() {
			continue
		}
		m, l := d.ManagementIP.As4(), d.Loopback.As4()
		half := binary.BigEndian.Uint32(l[:]) - binary.BigEndian.Uint32(m[:])
		if half == 0 || half&(half-1) != 0 {
			break
		}
		return netip.PrefixFrom(d.ManagementIP, 32-bits.TrailingZeros32(half)).Masked(), nil
	}
	return netip.Prefix{}, errors.New("the topology's addresses are not laid out by PlanFabric: no device has its loopback half the ipv4Prefix above its management address")
}

// cable lays the links, in a stable order: the CEs' peer and management
// links, then rack by rack the ToRs' uplinks, peer links, management
// links and the servers' NICs and BMCs, slot by slot. It marks the CEs'
// PE ports too, which have no link.
func (p *planner) cable(spec FabricSpec) {
	name := func(rack, suffix string) string { return spec.Name + "-" + rack + "-" + suffix }
	ce := [2]string{name("AggrRack", "CE1"), name("AggrRack", "CE2")}
	p.peers(ce[0], ce[1])
	p.management(name("AggrRack", "MgmtSwitch"), ce[0], ce[1])
	for _, c := range ce {
		for _, n := range []int{pePortA, pePortB} {
			p.mark(Endpoint{Device: c, Port: sonicPort(n)}, PortPE)
		}
	}
	for i := 1; i <= spec.ComputeRacks; i++ {
		rack := "CompRack" + strconv.Itoa(i)
		tor := [2]string{name(rack, "TOR1"), name(rack, "TOR2")}
		mgmt := name(rack, "MgmtSwitch")
		for k, t := range tor {
			cePort := sonicPort(routerPortLanes * (2*(i-1) + k))
			for j, c := range ce {
				p.link(Endpoint{Device: t, Port: sonicPort(routerPortLanes * j)}, PortUplink,
					Endpoint{Device: c, Port: cePort}, PortDownlink)
			}
		}
		p.peers(tor[0], tor[1])
		p.management(mgmt, tor[0], tor[1])
		for s := 1; s <= spec.ServersPerRack; s++ {
			port := sonicPort(routerPortLanes * (s + 1))
			for k, t := range tor {
				p.link(Endpoint{Device: t, Port: port}, PortServer,
					Endpoint{Rack: rack, Slot: s, Port: "eth" + strconv.Itoa(k)}, "")
			}
			p.link(Endpoint{Device: mgmt, Port: sonicPort(s - 1)}, PortBMC,
				Endpoint{Rack: rack, Slot: s, Port: "bmc"}, "")
		}
	}
}

// peers joins two devices on both peer ports.
func (p *planner) peers(a, b string) {
	for _, n := range []int{peerPortA, peerPortB} {
		port := sonicPort(n)
		p.link(Endpoint{Device: a, Port: port}, PortPeer, Endpoint{Device: b, Port: port}, PortPeer)
	}
}

// management cables devices' Management0 to the management switch.
func (p *planner) management(mgmt string, devices ...string) {
	for n, d := range devices {
		p.link(Endpoint{Device: mgmt, Port: sonicPort(mgmtDevicePort + n)}, PortManagement,
			Endpoint{Device: d, Port: "Management0"}, PortManagement)
	}
}

// link records a cable and marks the device ends' ports with their kind.
func (p *planner) link(a Endpoint, kindA string, b Endpoint, kindB string) {
	p.mark(a, kindA)
	p.mark(b, kindB)
	p.topo.Links = append(p.topo.Links, Link{A: a, B: b})
}

func (p *planner) mark(e Endpoint, kind string) {
	if e.Device == "" {
		return
	}
	d := &p.topo.Devices[p.index[e.Device]]
	for i := range d.Ports {
		if d.Ports[i].Name == e.Port {
			d.Ports[i].Kind = kind
			return
		}
	}
	panic("network: PlanFabric cabled " + e.Device + " port " + e.Port + ", which it does not have")
}
