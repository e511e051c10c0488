package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// Intent is the configuration a fabric's resources add up to: what its
// devices should run, whatever they run now. The fabric provider fills it
// from the ARM resources of the fabric; Render turns it into one device's
// config_db. Names are the resources' names and references are by name.
type Intent struct {
	L2Domains     []L2Domain    // l2IsolationDomains
	L3Domains     []L3Domain    // l3IsolationDomains with their internal and external networks
	ACLs          []ACL         // accessControlLists
	RoutePolicies []RoutePolicy // routePolicies
	PrefixLists   []PrefixList  // ipPrefixes
}

// L2Domain is an l2IsolationDomain: one VLAN stretched over every ToR
// and trunked to the servers, with no gateway on the fabric.
type L2Domain struct {
	Name    string
	VLAN    int // vlanId, 100..4094
	MTU     int // 64..9200; 0 means 1500
	Enabled bool
}

// L3Domain is an l3IsolationDomain: a VRF on the CEs and ToRs, holding
// its internal networks (on the ToRs) and its external networks (on the
// CEs).
type L3Domain struct {
	Name    string
	Enabled bool
	// RedistributeConnected and RedistributeStatic announce the VRF's
	// connected subnets and static routes over BGP.
	RedistributeConnected, RedistributeStatic bool
	Networks                                  []InternalNetwork
	ExternalNetworks                          []ExternalNetwork
}

// InternalNetwork is an internalNetwork of an L3 domain: a VLAN with an
// anycast gateway on every ToR, in the domain's VRF, and the BGP peers
// (network functions) reachable on it.
type InternalNetwork struct {
	Name string
	VLAN int // vlanId, 100..4094
	MTU  int // 64..9200; 0 means 1500
	// Subnets are the connectedIPv4Subnets; the gateway address is each
	// subnet's first host, e.g. 10.0.1.1 for 10.0.1.0/24.
	Subnets []netip.Prefix
	PeerASN uint32       // bgpConfiguration.peerASN
	Peers   []netip.Addr // bgpConfiguration.ipv4NeighborAddress: BGP neighbours, each within one of Subnets
	// ImportPolicy and ExportPolicy name RoutePolicies applied to the
	// peers' routes in and out; "" for none.
	ImportPolicy, ExportPolicy string
	// IngressACL and EgressACL name ACLs bound to the network's VLAN
	// interface; "" for none.
	IngressACL, EgressACL string
	Enabled               bool
}

// ExternalNetwork is an externalNetwork of an L3 domain with peeringOption
// OptionA: the domain's VRF reaches the operator's provider edge (PE)
// router over a VLAN sub-interface of each CE's first PE port, with an
// eBGP session to the PE in the VRF.
//
// Each CE has a point-to-point link of its own to the PE, so each needs
// its own addresses. Prefix is CE1's link; CE2's is the prefix of the same
// length right after it (Prefix plus its size: 10.70.0.2/31 after
// 10.70.0.0/31, 10.70.0.4/30 after 10.70.0.0/30), so an external network
// takes two consecutive prefixes and the PE's two links are addressed to
// match. On each link the CE has the first host address and the PE the
// second: .0 and .1 of a /31, which has no network or broadcast address
// (RFC 3021), .1 and .2 of a /30.
type ExternalNetwork struct {
	Name    string
	VLAN    int    // optionAProperties.vlanId, 100..4094: the 802.1Q tag on the links to the PE
	PeerASN uint32 // optionAProperties.peerASN: the PE's AS, 1..4294967295
	// Prefix is optionAProperties.primaryIpv4Prefix, an IPv4 /30 or /31
	// without host bits: CE1's link to the PE.
	Prefix netip.Prefix
	// ImportPolicy and ExportPolicy name RoutePolicies applied to the
	// PE's routes in and out; "" for none.
	ImportPolicy, ExportPolicy string
	Enabled                    bool
}

// ceLinks is how many CEs a fabric has, each with its own link to the PE
// of every external network.
const ceLinks = 2

// ceLink is CE k's (0-based, in Topology.Devices order) link of an
// external network: the k-th prefix of prefix's length from prefix on;
// false past the end of the address space.
func ceLink(prefix netip.Prefix, k int) (netip.Prefix, bool) {
	a := prefix.Addr().As4()
	n := uint64(binary.BigEndian.Uint32(a[:])) + uint64(k)<<(32-prefix.Bits())
	if n > math.MaxUint32 {
		return netip.Prefix{}, false
	}
	binary.BigEndian.PutUint32(a[:], uint32(n))
	return netip.PrefixFrom(netip.AddrFrom4(a), prefix.Bits()), true
}

// linkAddrs are the CE's and the PE's addresses on a /30 or /31 link: its
// first two host addresses.
func linkAddrs(link netip.Prefix) (ce, pe netip.Addr) {
	ce = link.Addr()
	if link.Bits() < 31 {
		ce = ce.Next() // skip the network address
	}
	return ce, ce.Next()
}

// ACL is an accessControlList: rules matched in sequence order, the first
// match deciding.
type ACL struct {
	Name  string
	Rules []ACLRule
}

// ACLRule is one rule of an ACL.
type ACLRule struct {
	Sequence int    // 1..MaxACLSequence, unique within the ACL; lower matches first
	Action   string // Permit or Deny
	Protocol string // TCP, UDP, ICMP, Any ("" means Any), or an IP protocol number 0..255
	// Source and Destination are IPv4 prefixes; the zero Prefix matches
	// any address.
	Source, Destination netip.Prefix
	DestinationPorts    string // "22", "1000-2000", or "" for any; TCP and UDP only
}

// RoutePolicy is a routePolicy: statements matched in sequence order.
type RoutePolicy struct {
	Name       string
	Statements []RouteStatement
}

// RouteStatement is one statement of a route policy: routes matching the
// prefix list ("" matches every route) are permitted or denied.
type RouteStatement struct {
	Sequence   int // 1..65535, unique within the policy
	PrefixList string
	Action     string // Permit or Deny
}

// PrefixList is an ipPrefixes resource: a named list of prefix rules, of
// one address family.
type PrefixList struct {
	Name  string
	Rules []PrefixRule
}

// Limits of the intent's numbers, as the devices take them.
const (
	MinVLAN, MaxVLAN = 100, 4094
	MinMTU, MaxMTU   = 64, 9200
	DefaultMTU       = 1500
	// MaxACLSequence is the highest ACL rule sequence number. SONiC
	// matches the highest PRIORITY (0..999999) first, so a rule's
	// priority is MaxACLSequence+1 minus its sequence.
	MaxACLSequence = 999998
	// MaxRouteSequence is the highest route-map sequence number.
	MaxRouteSequence = 65535
)

// Validate checks that the intent can be rendered onto devices
// consistently: names are unique and usable as config_db keys, VLANs lie
// in 100..4094 and no two L2 domains, internal or external networks share
// one, the subnets of one L3 domain (one VRF) do not overlap, nor do the
// external networks' links (both CEs', see ExternalNetwork) with them or
// each other, BGP peers sit on their network's subnets, and every route
// policy, ACL and prefix list named is there. Disabled domains and
// networks are checked too: enabling one must not break the devices. The
// error is a *RuleError naming the resource and field.
func (in Intent) Validate() error {
	lists := map[string]int{}
	for i, l := range in.PrefixLists {
		if err := uniqueName("ipPrefixes", i, l.Name, lists); err != nil {
			return err
		}
		if err := checkPrefixList(l); err != nil {
			return err
		}
	}
	policies := map[string]int{}
	for i, p := range in.RoutePolicies {
		if err := uniqueName("routePolicies", i, p.Name, policies); err != nil {
			return err
		}
		if err := checkRoutePolicy(p, lists); err != nil {
			return err
		}
	}
	acls := map[string]int{}
	for i, a := range in.ACLs {
		if err := uniqueName("accessControlLists", i, a.Name, acls); err != nil {
			return err
		}
		if err := checkACL(a); err != nil {
			return err
		}
	}
	c := intentCheck{vlans: map[int]string{}, aclStage: map[string]aclBinding{}, policies: policies, acls: acls}
	l2 := map[string]int{}
	for i, d := range in.L2Domains {
		if err := uniqueName("l2IsolationDomains", i, d.Name, l2); err != nil {
			return err
		}
		user := "l2IsolationDomains[" + d.Name + "]"
		if err := c.vlan(user+".vlanId", user, d.VLAN); err != nil {
			return err
		}
		if err := checkMTU(user+".mtu", d.MTU); err != nil {
			return err
		}
	}
	l3 := map[string]int{}
	for i, d := range in.L3Domains {
		if err := uniqueName("l3IsolationDomains", i, d.Name, l3); err != nil {
			return err
		}
		if err := c.l3Domain(d); err != nil {
			return err
		}
	}
	return nil
}

// intentCheck is what Validate has seen so far across the resources.
type intentCheck struct {
	vlans    map[int]string        // VLAN → the domain or network using it
	aclStage map[string]aclBinding // ACL → where it is bound first
	policies map[string]int
	acls     map[string]int
}

// vlan checks the VLAN of user (a domain or network), given in field.
func (c *intentCheck) vlan(field, user string, vlan int) error {
	if vlan < MinVLAN || vlan > MaxVLAN {
		return &RuleError{field, fmt.Sprintf("must be between %d and %d, not %d", MinVLAN, MaxVLAN, vlan)}
	}
	if other, dup := c.vlans[vlan]; dup {
		return &RuleError{field, fmt.Sprintf("VLAN %d is already used by %s; every L2 domain, internal network and external network of a fabric needs its own VLAN", vlan, other)}
	}
	c.vlans[vlan] = user
	return nil
}

// aclBinding is where an ACL is bound: its stage, and the first field
// that binds it there.
type aclBinding struct{ stage, field string }

// subnet is a connected subnet of an L3 domain, and its network.
type subnet struct {
	prefix netip.Prefix
	user   string // e.g. "internalNetworks[net].connectedIPv4Subnets[0]"
}

// overlap is an error if s, described as what, overlaps a subnet of
// subnets.
func overlap(field, what string, s netip.Prefix, subnets ...[]subnet) error {
	for _, list := range subnets {
		for _, o := range list {
			if o.prefix.Overlaps(s) {
				return &RuleError{field, fmt.Sprintf("%s overlaps %s of %s; subnets of one L3 isolation domain share a VRF", what, o.prefix, o.user)}
			}
		}
	}
	return nil
}

func (c *intentCheck) l3Domain(d L3Domain) error {
	var subnets []subnet
	nets := map[string]int{}
	for i, n := range d.Networks {
		if err := uniqueName("l3IsolationDomains["+d.Name+"].internalNetworks", i, n.Name, nets); err != nil {
			return err
		}
		user := "l3IsolationDomains[" + d.Name + "].internalNetworks[" + n.Name + "]"
		field := func(name string) string { return user + "." + name }
		if err := c.vlan(field("vlanId"), user, n.VLAN); err != nil {
			return err
		}
		if err := checkMTU(field("mtu"), n.MTU); err != nil {
			return err
		}
		for j, s := range n.Subnets {
			f := field(fmt.Sprintf("connectedIPv4Subnets[%d]", j))
			if !s.IsValid() || !s.Addr().Is4() {
				return &RuleError{f, fmt.Sprintf("%v is not an IPv4 prefix such as 10.0.1.0/24", s)}
			}
			if s.Masked() != s {
				return &RuleError{f, fmt.Sprintf("%s has host bits set; the network prefix is %s", s, s.Masked())}
			}
			if s.Bits() > 30 {
				return &RuleError{f, fmt.Sprintf("%s is too small: a subnet needs a gateway and hosts, so at most /30", s)}
			}
			if err := overlap(f, s.String(), s, subnets); err != nil {
				return err
			}
			subnets = append(subnets, subnet{s, fmt.Sprintf("internalNetworks[%s].connectedIPv4Subnets[%d]", n.Name, j)})
		}
		if err := checkPeers(n, field); err != nil {
			return err
		}
		if err := c.routePolicies(field, n.ImportPolicy, n.ExportPolicy); err != nil {
			return err
		}
		for _, ref := range []struct{ field, name, stage string }{
			{"ingressAclId", n.IngressACL, "ingress"}, {"egressAclId", n.EgressACL, "egress"},
		} {
			if ref.name == "" {
				continue
			}
			if _, ok := c.acls[ref.name]; !ok {
				return &RuleError{field(ref.field), fmt.Sprintf("access control list %q does not exist", ref.name)}
			}
			b, bound := c.aclStage[ref.name]
			if bound && b.stage != ref.stage {
				return &RuleError{field(ref.field), fmt.Sprintf("access control list %q is already bound at the %s stage by %s; a SONiC ACL table has one stage", ref.name, b.stage, b.field)}
			}
			if !bound {
				c.aclStage[ref.name] = aclBinding{ref.stage, field(ref.field)}
			}
		}
	}
	exts := map[string]int{}
	for i, n := range d.ExternalNetworks {
		if err := uniqueName("l3IsolationDomains["+d.Name+"].externalNetworks", i, n.Name, exts); err != nil {
			return err
		}
		links, err := c.externalNetwork(d.Name, n, subnets)
		if err != nil {
			return err
		}
		subnets = append(subnets, links...)
	}
	return nil
}

// externalNetwork checks an external network of domain, whose other
// subnets are subnets, and returns its CEs' links.
func (c *intentCheck) externalNetwork(domain string, n ExternalNetwork, subnets []subnet) ([]subnet, error) {
	user := "l3IsolationDomains[" + domain + "].externalNetworks[" + n.Name + "]"
	field := func(name string) string { return user + "." + name }
	if err := c.vlan(field("optionAProperties.vlanId"), user, n.VLAN); err != nil {
		return nil, err
	}
	if n.PeerASN == 0 {
		return nil, &RuleError{field("optionAProperties.peerASN"), "is required: the PE's AS, between 1 and 4294967295"}
	}
	f, p := field("optionAProperties.primaryIpv4Prefix"), n.Prefix
	switch {
	case !p.IsValid() || !p.Addr().Is4():
		return nil, &RuleError{f, fmt.Sprintf("%v is not an IPv4 prefix such as 10.70.0.0/31", p)}
	case p.Bits() != 30 && p.Bits() != 31:
		return nil, &RuleError{f, fmt.Sprintf("%s must be a /30 or a /31: a point-to-point link between a CE and the PE", p)}
	case p.Masked() != p:
		return nil, &RuleError{f, fmt.Sprintf("%s has host bits set; the network prefix is %s", p, p.Masked())}
	}
	var links []subnet
	for k := range ceLinks {
		link, ok := ceLink(p, k)
		if !ok {
			return nil, &RuleError{f, fmt.Sprintf("%s is the last /%d of the IPv4 space; CE%d's link takes the next one", p, p.Bits(), k+1)}
		}
		if err := overlap(f, fmt.Sprintf("CE%d's link %s", k+1, link), link, subnets, links); err != nil {
			return nil, err
		}
		links = append(links, subnet{link, fmt.Sprintf("externalNetworks[%s] (CE%d's link)", n.Name, k+1)})
	}
	return links, c.routePolicies(field, n.ImportPolicy, n.ExportPolicy)
}

// routePolicies checks that a network's import and export policies exist.
func (c *intentCheck) routePolicies(field func(string) string, importPolicy, exportPolicy string) error {
	for _, ref := range []struct{ field, name string }{
		{"importRoutePolicyId", importPolicy}, {"exportRoutePolicyId", exportPolicy},
	} {
		if _, ok := c.policies[ref.name]; ref.name != "" && !ok {
			return &RuleError{field(ref.field), fmt.Sprintf("route policy %q does not exist", ref.name)}
		}
	}
	return nil
}

func checkPeers(n InternalNetwork, field func(string) string) error {
	if len(n.Peers) > 0 && n.PeerASN == 0 {
		return &RuleError{field("bgpConfiguration.peerASN"), "is required with neighbour addresses: between 1 and 4294967295"}
	}
	seen := map[netip.Addr]bool{}
	for j, p := range n.Peers {
		f := field(fmt.Sprintf("bgpConfiguration.ipv4NeighborAddress[%d]", j))
		if !p.Is4() {
			return &RuleError{f, fmt.Sprintf("%v is not an IPv4 address", p)}
		}
		if seen[p] {
			return &RuleError{f, fmt.Sprintf("%s is listed twice", p)}
		}
		seen[p] = true
		s, ok := subnetOf(n.Subnets, p)
		if !ok {
			return &RuleError{f, fmt.Sprintf("%s is on none of the network's connectedIPv4Subnets", p)}
		}
		if p == gateway(s) {
			return &RuleError{f, fmt.Sprintf("%s is the fabric's gateway address of %s", p, s)}
		}
	}
	return nil
}

// subnetOf is the subnet of subnets that holds addr.
func subnetOf(subnets []netip.Prefix, addr netip.Addr) (netip.Prefix, bool) {
	for _, s := range subnets {
		if s.Contains(addr) {
			return s, true
		}
	}
	return netip.Prefix{}, false
}

// gateway is a subnet's gateway address: its first host.
func gateway(s netip.Prefix) netip.Addr { return s.Masked().Addr().Next() }

func checkMTU(field string, mtu int) error {
	if mtu != 0 && (mtu < MinMTU || mtu > MaxMTU) {
		return &RuleError{field, fmt.Sprintf("must be between %d and %d, not %d", MinMTU, MaxMTU, mtu)}
	}
	return nil
}

// uniqueName checks the name of the i-th resource of a kind: present,
// usable in a config_db key, and not taken.
func uniqueName(kind string, i int, name string, seen map[string]int) error {
	field := fmt.Sprintf("%s[%d].name", kind, i)
	if name == "" {
		return &RuleError{field, "is required"}
	}
	if strings.ContainsAny(name, "|,") {
		return &RuleError{field, fmt.Sprintf("%q must not contain '|' or ',', which separate config_db keys and lists", name)}
	}
	if j, dup := seen[name]; dup {
		return &RuleError{field, fmt.Sprintf("%q is already used by %s[%d]", name, kind, j)}
	}
	seen[name] = i
	return nil
}

func checkPrefixList(l PrefixList) error {
	rules, err := ValidatePrefixRules(l.Rules)
	if err != nil {
		if re, ok := errors.AsType[*RuleError](err); ok {
			return &RuleError{"ipPrefixes[" + l.Name + "]." + re.Field, re.Reason}
		}
		return err
	}
	first := netip.MustParsePrefix(rules[0].NetworkPrefix).Addr().Is4()
	for i, r := range rules[1:] {
		if netip.MustParsePrefix(r.NetworkPrefix).Addr().Is4() != first {
			return &RuleError{fmt.Sprintf("ipPrefixes[%s].ipPrefixRules[%d].networkPrefix", l.Name, i+1),
				fmt.Sprintf("%s mixes address families with %s; a SONiC prefix set is IPv4 or IPv6", r.NetworkPrefix, rules[0].NetworkPrefix)}
		}
	}
	return nil
}

func checkRoutePolicy(p RoutePolicy, lists map[string]int) error {
	if len(p.Statements) == 0 {
		return &RuleError{"routePolicies[" + p.Name + "].statements", "at least one statement is required"}
	}
	seen := map[int]int{}
	for j, s := range p.Statements {
		field := func(name string) string { return fmt.Sprintf("routePolicies[%s].statements[%d].%s", p.Name, j, name) }
		if s.Sequence < 1 || s.Sequence > MaxRouteSequence {
			return &RuleError{field("sequenceNumber"), fmt.Sprintf("must be between 1 and %d, not %d", MaxRouteSequence, s.Sequence)}
		}
		if k, dup := seen[s.Sequence]; dup {
			return &RuleError{field("sequenceNumber"), fmt.Sprintf("%d is already used by statements[%d]", s.Sequence, k)}
		}
		seen[s.Sequence] = j
		if _, ok := oneOf(s.Action, "Permit", "Deny"); !ok {
			return &RuleError{field("action"), fmt.Sprintf("must be Permit or Deny, not %q", s.Action)}
		}
		if _, ok := lists[s.PrefixList]; s.PrefixList != "" && !ok {
			return &RuleError{field("ipPrefixId"), fmt.Sprintf("prefix list %q does not exist", s.PrefixList)}
		}
	}
	return nil
}

func checkACL(a ACL) error {
	if len(a.Rules) == 0 {
		return &RuleError{"accessControlLists[" + a.Name + "].rules", "at least one rule is required"}
	}
	seen := map[int]int{}
	for j, r := range a.Rules {
		field := func(name string) string { return fmt.Sprintf("accessControlLists[%s].rules[%d].%s", a.Name, j, name) }
		if r.Sequence < 1 || r.Sequence > MaxACLSequence {
			return &RuleError{field("sequenceNumber"), fmt.Sprintf("must be between 1 and %d, not %d", MaxACLSequence, r.Sequence)}
		}
		if k, dup := seen[r.Sequence]; dup {
			return &RuleError{field("sequenceNumber"), fmt.Sprintf("%d is already used by rules[%d]", r.Sequence, k)}
		}
		seen[r.Sequence] = j
		if _, ok := oneOf(r.Action, "Permit", "Deny"); !ok {
			return &RuleError{field("action"), fmt.Sprintf("must be Permit or Deny, not %q", r.Action)}
		}
		proto, ok := ipProtocol(r.Protocol)
		if !ok {
			return &RuleError{field("protocol"), fmt.Sprintf("must be TCP, UDP, ICMP, Any or a protocol number 0..255, not %q", r.Protocol)}
		}
		for _, p := range []struct {
			name   string
			prefix netip.Prefix
		}{{"sourceAddress", r.Source}, {"destinationAddress", r.Destination}} {
			if !p.prefix.IsValid() {
				continue
			}
			if !p.prefix.Addr().Is4() {
				return &RuleError{field(p.name), fmt.Sprintf("%s is not IPv4; the ACLs are L3 (IPv4) tables", p.prefix)}
			}
			if p.prefix.Masked() != p.prefix {
				return &RuleError{field(p.name), fmt.Sprintf("%s has host bits set; the network prefix is %s", p.prefix, p.prefix.Masked())}
			}
		}
		if r.DestinationPorts == "" {
			continue
		}
		if proto != protoTCP && proto != protoUDP {
			return &RuleError{field("destinationPorts"), fmt.Sprintf("ports need protocol TCP or UDP, not %q", r.Protocol)}
		}
		if _, _, err := portRange(r.DestinationPorts); err != nil {
			return &RuleError{field("destinationPorts"), err.Error()}
		}
	}
	return nil
}

// IP protocol numbers of the ACL rules' named protocols.
const (
	protoICMP = "1"
	protoTCP  = "6"
	protoUDP  = "17"
)

// ipProtocol is an ACL rule's protocol as an IP protocol number, or ""
// for any protocol.
func ipProtocol(s string) (string, bool) {
	switch strings.ToUpper(s) {
	case "", "ANY":
		return "", true
	case "TCP":
		return protoTCP, true
	case "UDP":
		return protoUDP, true
	case "ICMP":
		return protoICMP, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != s {
		return "", false
	}
	return s, true
}

// portRange parses "22" or "1000-2000".
func portRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	lo, errA := strconv.Atoi(a)
	hi, errB := strconv.Atoi(b)
	if errA != nil || errB != nil || lo < 0 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q must be a port (0..65535) or an ascending range such as 1000-2000", s)
	}
	return lo, hi, nil
}
