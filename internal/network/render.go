package network

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ErrUnknownDevice is returned by Render for a device the topology does
// not have.
var ErrUnknownDevice = errors.New("no such device in the fabric")

// Device settings every rendered configuration shares.
const (
	// platform is DEVICE_METADATA's platform: the simulated switches'.
	platform = "citadel-sim"
	// portMTU is every front-panel port's MTU: jumbo frames, so any
	// VLAN's MTU (at most MaxMTU) fits.
	portMTU = "9100"
	// maxIfName is the longest interface name the Linux kernel takes
	// (IFNAMSIZ less its NUL), and SONiC's YANG model with it.
	maxIfName = 15
)

// Render is one device's full intended configuration, as SONiC's
// config_db: what the device should run given the fabric's topology and
// the intent. Equal inputs give equal output, byte for byte once written
// with JSON, whatever the order of the intent's slices.
//
// Every device gets:
//
//   - DEVICE_METADATA "localhost": hostname, type (SpineRouter for a CE,
//     LeafRouter for a ToR, MgmtToRRouter for a management switch),
//     platform, and bgp_asn for the CEs and ToRs;
//   - MGMT_INTERFACE "eth0|<management ip>/<len>" on the management
//     network (the first half of the fabric's ipv4Prefix);
//   - PORT for each front-panel port: a cabled port is up, with a
//     description naming the other end ("to nf1-AggrRack-CE1/Ethernet0",
//     "to CompRack1/3/eth0" for server slot 3's NIC); an unused one is
//     down.
//
// A management switch gets nothing else. CEs and ToRs also get
// LOOPBACK_INTERFACE "Loopback0|<loopback>/32", a VRF "Vrf_<domain>" for
// each enabled L3 isolation domain, BGP_GLOBALS for the default VRF and
// each of those, and the eBGP sessions between CEs and ToRs in the
// default VRF: loopback to loopback, each in its own AS (BGP_NEIGHBOR
// "default|<loopback>"). Both get the route policies that enabled
// internal networks use, as ROUTE_MAP "<policy>|<seq>", with the prefix
// lists the policies match on, as PREFIX_SET "<list>" and PREFIX
// "<list>|<seq>|<prefix>|<masklength range>".
//
// ToRs carry the VLANs. Every enabled L2 isolation domain and every
// enabled internal network of an enabled L3 domain is a VLAN "Vlan<id>"
// with the ToR's server ports and uplinks as tagged members (VLAN,
// VLAN_MEMBER). An internal network's VLAN interface is in its domain's
// VRF and holds each subnet's gateway address, the same on both ToRs of
// a rack and on every rack (an anycast gateway) (VLAN_INTERFACE). Its BGP
// peers are neighbours in the VRF (BGP_NEIGHBOR "Vrf_<domain>|<peer>")
// with the network's route policies (BGP_NEIGHBOR_AF), its ACLs are
// tables bound to the VLAN interface (ACL_TABLE, ACL_RULE), and the
// domain's redistribution is ROUTE_REDISTRIBUTE.
//
// CEs carry the external networks. Every enabled external network of an
// enabled L3 domain is a VLAN sub-interface of the CE's first PE port
// (Ethernet112), tagged with the network's VLAN and in the domain's VRF,
// holding the CE's address of its link to the PE (VLAN_SUB_INTERFACE
// "Ethernet112.<vlan>" and "Ethernet112.<vlan>|<address>/<len>", or
// "Eth112.<vlan>" for VLANs from 1000 on, whose long name would not fit
// an interface name; CE1 and CE2 have links of their own, see
// ExternalNetwork). The PE is a neighbour in the VRF (BGP_NEIGHBOR
// "Vrf_<domain>|<PE address>") with the network's route policies
// (BGP_NEIGHBOR_AF), which the CE gets as ROUTE_MAP as well. The PE port
// is up while it carries an external network, and down otherwise like an
// unused port.
//
// A disabled domain or network renders nothing, on any device.
func Render(topo Topology, device string, in Intent) (ConfigDB, error) {
	i := slices.IndexFunc(topo.Devices, func(d Device) bool { return d.Name == device })
	if i < 0 {
		return nil, fmt.Errorf("render %q: %w", device, ErrUnknownDevice)
	}
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("render %s: %w", device, err)
	}
	mgmt, err := managementNetwork(topo)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", device, err)
	}
	r := renderer{topo: topo, dev: topo.Devices[i], in: in, db: ConfigDB{}}
	for _, d := range in.L3Domains {
		if !d.Enabled {
			continue
		}
		r.domains = append(r.domains, d)
		for _, n := range d.Networks {
			if n.Enabled {
				r.networks = append(r.networks, tenantNet{vrf: vrfName(d.Name), InternalNetwork: n})
			}
		}
		for _, n := range d.ExternalNetworks {
			if n.Enabled && r.dev.Role == RoleCE {
				r.externals = append(r.externals, externalNet{vrf: vrfName(d.Name), ExternalNetwork: n})
			}
		}
	}
	slices.SortFunc(r.networks, func(a, b tenantNet) int { return a.VLAN - b.VLAN })
	slices.SortFunc(r.externals, func(a, b externalNet) int { return a.VLAN - b.VLAN })

	if err := r.metadata(); err != nil {
		return nil, fmt.Errorf("render %s: %w", device, err)
	}
	r.ports()
	r.db.set("MGMT_INTERFACE", "eth0|"+netip.PrefixFrom(r.dev.ManagementIP, mgmt.Bits()).String(), nil)
	switch r.dev.Role {
	case RoleCE:
		r.routing(RoleToR)
		if err := r.externalNetworks(); err != nil {
			return nil, fmt.Errorf("render %s: %w", device, err)
		}
		r.routePolicies()
	case RoleToR:
		r.routing(RoleCE)
		r.vlans()
		r.tenantBGP()
		r.routePolicies()
		r.acls()
	}
	return r.db, nil
}

// vrfName is the SONiC VRF of an L3 isolation domain.
func vrfName(domain string) string { return "Vrf_" + domain }

// vlanName is the SONiC VLAN of a VLAN ID.
func vlanName(id int) string { return "Vlan" + strconv.Itoa(id) }

type renderer struct {
	topo Topology
	dev  Device
	in   Intent
	db   ConfigDB
	// domains are the enabled L3 domains; networks their enabled
	// internal networks, by VLAN; externals, on a CE, their enabled
	// external networks, by VLAN.
	domains   []L3Domain
	networks  []tenantNet
	externals []externalNet
}

// tenantNet is an enabled internal network and its domain's VRF.
type tenantNet struct {
	vrf string
	InternalNetwork
}

// externalNet is an enabled external network and its domain's VRF.
type externalNet struct {
	vrf string
	ExternalNetwork
}

func (r *renderer) metadata() error {
	types := map[string]string{RoleCE: "SpineRouter", RoleToR: "LeafRouter", RoleManagement: "MgmtToRRouter"}
	typ, ok := types[r.dev.Role]
	if !ok {
		return fmt.Errorf("device role %q is none of %s, %s and %s", r.dev.Role, RoleCE, RoleToR, RoleManagement)
	}
	md := map[string]string{"hostname": r.dev.Hostname, "type": typ, "platform": platform}
	if r.dev.ASN != 0 {
		md["bgp_asn"] = strconv.FormatUint(uint64(r.dev.ASN), 10)
	}
	r.db.set("DEVICE_METADATA", "localhost", md)
	return nil
}

// ports renders the front-panel ports; the management port is eth0, in
// MGMT_INTERFACE.
func (r *renderer) ports() {
	far := map[string]Endpoint{}
	for _, l := range r.topo.Links {
		if l.A.Device == r.dev.Name {
			far[l.A.Port] = l.B
		}
		if l.B.Device == r.dev.Name {
			far[l.B.Port] = l.A
		}
	}
	pe, _ := r.pePort()
	for _, p := range r.dev.Ports {
		if !strings.HasPrefix(p.Name, "Ethernet") {
			continue
		}
		if p.Name == pe && len(r.externals) > 0 {
			r.db.set("PORT", p.Name, map[string]string{"admin_status": "up", "mtu": portMTU, "description": "to provider edge"})
			continue
		}
		e, cabled := far[p.Name]
		if !cabled {
			r.db.set("PORT", p.Name, map[string]string{"admin_status": "down", "mtu": portMTU})
			continue
		}
		to := e.Device + "/" + e.Port
		if e.Device == "" {
			to = e.Rack + "/" + strconv.Itoa(e.Slot) + "/" + e.Port
		}
		r.db.set("PORT", p.Name, map[string]string{"admin_status": "up", "mtu": portMTU, "description": "to " + to})
	}
}

// routing renders what CEs and ToRs share: the loopback, the VRFs, BGP in
// each, and the default VRF's sessions with the devices of role peers.
func (r *renderer) routing(peers string) {
	lo := r.dev.Loopback.String()
	r.db.set("LOOPBACK_INTERFACE", "Loopback0", nil)
	r.db.set("LOOPBACK_INTERFACE", "Loopback0|"+lo+"/32", nil)
	asn := strconv.FormatUint(uint64(r.dev.ASN), 10)
	r.db.set("BGP_GLOBALS", "default", map[string]string{"local_asn": asn, "router_id": lo})
	for _, d := range r.domains {
		vrf := vrfName(d.Name)
		r.db.set("VRF", vrf, nil)
		r.db.set("BGP_GLOBALS", vrf, map[string]string{"local_asn": asn, "router_id": lo})
	}
	for _, d := range r.topo.Devices {
		if d.Role != peers {
			continue
		}
		r.db.set("BGP_NEIGHBOR", "default|"+d.Loopback.String(), map[string]string{
			"asn":        strconv.FormatUint(uint64(d.ASN), 10),
			"name":       d.Name,
			"local_addr": lo,
		})
	}
}

// vlans renders a ToR's VLANs, their members and the internal networks'
// gateways.
func (r *renderer) vlans() {
	var members []string
	for _, p := range r.dev.Ports {
		if p.Kind == PortServer || p.Kind == PortUplink {
			members = append(members, p.Name)
		}
	}
	joined := strings.Join(members, ",")
	add := func(id, mtu int) string {
		if mtu == 0 {
			mtu = DefaultMTU
		}
		name := vlanName(id)
		r.db.set("VLAN", name, map[string]string{
			"vlanid":       strconv.Itoa(id),
			"mtu":          strconv.Itoa(mtu),
			"admin_status": "up",
			"members@":     joined,
		})
		for _, m := range members {
			r.db.set("VLAN_MEMBER", name+"|"+m, map[string]string{"tagging_mode": "tagged"})
		}
		return name
	}
	for _, d := range r.in.L2Domains {
		if d.Enabled {
			add(d.VLAN, d.MTU)
		}
	}
	for _, n := range r.networks {
		name := add(n.VLAN, n.MTU)
		r.db.set("VLAN_INTERFACE", name, map[string]string{"vrf_name": n.vrf})
		for _, s := range n.Subnets {
			r.db.set("VLAN_INTERFACE", name+"|"+netip.PrefixFrom(gateway(s), s.Bits()).String(), nil)
		}
	}
}

// tenantBGP renders a ToR's sessions with the internal networks' peers
// and the L3 domains' redistribution.
func (r *renderer) tenantBGP() {
	for _, d := range r.domains {
		vrf := vrfName(d.Name)
		if d.RedistributeConnected {
			r.db.set("ROUTE_REDISTRIBUTE", vrf+"|connected|bgp|ipv4", nil)
		}
		if d.RedistributeStatic {
			r.db.set("ROUTE_REDISTRIBUTE", vrf+"|static|bgp|ipv4", nil)
		}
	}
	for _, n := range r.networks {
		for _, p := range n.Peers {
			s, _ := subnetOf(n.Subnets, p) // Validate saw to it
			r.neighbor(n.vrf, p, gateway(s), n.PeerASN, n.Name, n.ImportPolicy, n.ExportPolicy)
		}
	}
}

// neighbor renders a BGP session in a VRF, from local to peer, with its
// route policies ("" for none).
func (r *renderer) neighbor(vrf string, peer, local netip.Addr, asn uint32, name, importPolicy, exportPolicy string) {
	key := vrf + "|" + peer.String()
	r.db.set("BGP_NEIGHBOR", key, map[string]string{
		"asn":        strconv.FormatUint(uint64(asn), 10),
		"name":       name,
		"local_addr": local.String(),
	})
	if importPolicy == "" && exportPolicy == "" {
		return
	}
	af := map[string]string{}
	if importPolicy != "" {
		af["route_map_in"] = importPolicy
	}
	if exportPolicy != "" {
		af["route_map_out"] = exportPolicy
	}
	r.db.set("BGP_NEIGHBOR_AF", key+"|ipv4_unicast", af)
}

// pePort is the device's first PE port, which carries the external
// networks; false on a device without one (ToRs, management switches).
func (r *renderer) pePort() (string, bool) {
	for _, p := range r.dev.Ports {
		if p.Kind == PortPE {
			return p.Name, true
		}
	}
	return "", false
}

// externalNetworks renders a CE's side of the external networks: a VLAN
// sub-interface of its PE port in the domain's VRF, with the CE's address
// of its link, and the eBGP session with the PE's address.
func (r *renderer) externalNetworks() error {
	if len(r.externals) == 0 {
		return nil
	}
	port, ok := r.pePort()
	if !ok {
		return fmt.Errorf("CE %s has no %q port for the external networks", r.dev.Name, PortPE)
	}
	// This CE's link is the k-th of each network, k counting the CEs
	// before it.
	k := 0
	for _, d := range r.topo.Devices {
		if d.Name == r.dev.Name {
			break
		}
		if d.Role == RoleCE {
			k++
		}
	}
	if k >= ceLinks {
		return fmt.Errorf("CE %s is CE%d: external networks have links for %d CEs", r.dev.Name, k+1, ceLinks)
	}
	for _, n := range r.externals {
		link, _ := ceLink(n.Prefix, k) // Validate saw to it
		ce, pe := linkAddrs(link)
		sub := subInterface(port, n.VLAN)
		r.db.set("VLAN_SUB_INTERFACE", sub, map[string]string{
			"admin_status": "up",
			"vlan":         strconv.Itoa(n.VLAN),
			"vrf_name":     n.vrf,
		})
		r.db.set("VLAN_SUB_INTERFACE", sub+"|"+netip.PrefixFrom(ce, link.Bits()).String(), nil)
		r.neighbor(n.vrf, pe, ce, n.PeerASN, n.Name, n.ImportPolicy, n.ExportPolicy)
	}
	return nil
}

// subInterface is SONiC's name of a port's sub-interface for a VLAN:
// "Ethernet112.701", or the short form "Eth112.1001" where the long one
// is longer than an interface name may be. The short form needs the
// entry's "vlan" field, which externalNetworks always sets.
func subInterface(port string, vlan int) string {
	name := port + "." + strconv.Itoa(vlan)
	if len(name) > maxIfName {
		name = "Eth" + strings.TrimPrefix(port, "Ethernet") + "." + strconv.Itoa(vlan)
	}
	return name
}

// routePolicies renders the route policies the enabled internal networks
// use, and on a CE the external networks, and the prefix lists those
// match on.
func (r *renderer) routePolicies() {
	used := map[string]bool{}
	for _, n := range r.networks {
		used[n.ImportPolicy] = true
		used[n.ExportPolicy] = true
	}
	for _, n := range r.externals {
		used[n.ImportPolicy] = true
		used[n.ExportPolicy] = true
	}
	lists := map[string]bool{}
	for _, p := range r.in.RoutePolicies {
		if !used[p.Name] {
			continue
		}
		for _, s := range p.Statements {
			rm := map[string]string{"route_operation": strings.ToLower(s.Action)}
			if s.PrefixList != "" {
				rm["match_prefix_set"] = s.PrefixList
				lists[s.PrefixList] = true
			}
			r.db.set("ROUTE_MAP", p.Name+"|"+strconv.Itoa(s.Sequence), rm)
		}
	}
	for _, l := range r.in.PrefixLists {
		if !lists[l.Name] {
			continue
		}
		rules, _ := ValidatePrefixRules(l.Rules) // canonical; Validate saw to it
		mode := "IPv4"
		for _, rule := range rules {
			prefix := netip.MustParsePrefix(rule.NetworkPrefix)
			if !prefix.Addr().Is4() {
				mode = "IPv6"
			}
			key := l.Name + "|" + strconv.FormatInt(rule.SequenceNumber, 10) + "|" + rule.NetworkPrefix + "|" + maskRange(rule, prefix)
			r.db.set("PREFIX", key, map[string]string{"action": strings.ToLower(rule.Action)})
		}
		r.db.set("PREFIX_SET", l.Name, map[string]string{"mode": mode})
	}
}

// maskRange is SONiC's masklength_range of a canonical prefix rule:
// "exact", or "lo..hi".
func maskRange(rule PrefixRule, prefix netip.Prefix) string {
	lo, hi := rule.SubnetMaskLength, rule.SubnetMaskLength
	switch rule.Condition {
	case "":
		return "exact"
	case GreaterThanOrEqualTo:
		hi = strconv.Itoa(prefix.Addr().BitLen())
	case LesserThanOrEqualTo:
		lo = strconv.Itoa(prefix.Bits())
	case Range:
		lo, hi, _ = strings.Cut(rule.SubnetMaskLength, "-")
	}
	return lo + ".." + hi
}

// acls renders the ACLs the enabled internal networks bind, one table per
// ACL bound to the networks' VLAN interfaces at its stage.
func (r *renderer) acls() {
	type binding struct {
		stage string
		vlans []string
	}
	bound := map[string]*binding{}
	bind := func(acl, stage string, vlan int) {
		if acl == "" {
			return
		}
		b := bound[acl]
		if b == nil {
			b = &binding{stage: stage}
			bound[acl] = b
		}
		b.vlans = append(b.vlans, vlanName(vlan))
	}
	for _, n := range r.networks {
		bind(n.IngressACL, "ingress", n.VLAN)
		bind(n.EgressACL, "egress", n.VLAN)
	}
	for _, a := range r.in.ACLs {
		b := bound[a.Name]
		if b == nil {
			continue
		}
		r.db.set("ACL_TABLE", a.Name, map[string]string{
			"type":   "L3",
			"stage":  b.stage,
			"ports@": strings.Join(b.vlans, ","),
		})
		for _, rule := range a.Rules {
			r.db.set("ACL_RULE", a.Name+"|RULE_"+strconv.Itoa(rule.Sequence), aclRule(rule))
		}
	}
}

// aclRule is an ACL rule's fields. SONiC matches the highest PRIORITY
// first and ARM the lowest sequence, so the priority counts down from
// MaxACLSequence+1.
func aclRule(rule ACLRule) map[string]string {
	action := "DROP"
	if strings.EqualFold(rule.Action, "Permit") {
		action = "FORWARD"
	}
	f := map[string]string{
		"PRIORITY":      strconv.Itoa(MaxACLSequence + 1 - rule.Sequence),
		"PACKET_ACTION": action,
	}
	if p, _ := ipProtocol(rule.Protocol); p != "" {
		f["IP_PROTOCOL"] = p
	}
	if rule.Source.IsValid() {
		f["SRC_IP"] = rule.Source.String()
	}
	if rule.Destination.IsValid() {
		f["DST_IP"] = rule.Destination.String()
	}
	if rule.DestinationPorts != "" {
		lo, hi, _ := portRange(rule.DestinationPorts) // Validate saw to it
		if lo == hi {
			f["L4_DST_PORT"] = strconv.Itoa(lo)
		} else {
			f["L4_DST_PORT_RANGE"] = strconv.Itoa(lo) + "-" + strconv.Itoa(hi)
		}
	}
	return f
}
