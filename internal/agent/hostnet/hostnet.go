// Package hostnet puts a machine's networks on its Linux host with
// netlink. A network is an L2 domain, a VLAN that the top-of-rack switch
// trunks to the machine's uplink; on the host it becomes a VLAN
// sub-interface of the uplink enslaved to a bridge, which holds the host's
// addresses on the network and which VMs' taps can join. Isolation between
// networks is the switch's doing, not the addressing's.
//
// Apply is level-based: it reads the links as they are, changes what
// differs from the Config and reports each change, so a hand edit is put
// back by the next call. It owns only what it made, recognised by an
// alias it sets ("citadel:<network>"), and leaves every other link alone.
//
// The agent's Linux host driver imports it; it talks to the kernel only,
// through the netlink handle it is given, never to the control plane.
package hostnet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

const (
	// bridgePrefix starts the name of each bridge Apply makes: "cbr" and
	// the VLAN, as a network's name may not fit in an interface name.
	bridgePrefix = "cbr"
	// aliasPrefix starts the alias Apply sets on each link it makes. A
	// link without it is not Apply's to change or remove.
	aliasPrefix = "citadel:"
	defaultMTU  = 1500
	maxNameLen  = 15 // IFNAMSIZ less the terminating NUL
	maxAliasLen = 255
)

// Network is one network a machine is attached to.
type Network struct {
	Name      string         // the network's name; the links' alias is "citadel:<Name>"
	VLAN      int            // 1..4094: the tag on the uplink
	MTU       int            // of the VLAN link and the bridge; 0 means 1500
	Addresses []netip.Prefix // the host's addresses on the network, if any (none: an L2-only attachment)
}

// Config is the host's networks, all on one uplink.
type Config struct {
	Uplink   string // the NIC cabled to the switch, such as "eth0"
	Networks []Network
}

// Report is what one Apply changed, a line per change in the order made,
// such as "created bridge cbr501" or "added 10.0.0.2/24 to cbr501". It
// is empty when the host already matched the Config; otherwise it is the
// drift a caller logs.
type Report []string

// Bridge is the name of the bridge Apply makes for the network of vlan,
// "cbr<vlan>": where a VM's NIC on that network joins.
func Bridge(vlan int) string { return bridgePrefix + strconv.Itoa(vlan) }

func (n Network) bridge() string { return Bridge(n.VLAN) }
func (n Network) alias() string  { return aliasPrefix + n.Name }

func (n Network) mtu() int {
	if n.MTU == 0 {
		return defaultMTU
	}
	return n.MTU
}

func vlanLink(uplink string, vlan int) string { return uplink + "." + strconv.Itoa(vlan) }

// Validate reports every way c is unusable, joined.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Uplink == "":
		errs = append(errs, errors.New("uplink is required"))
	case !validLinkName(c.Uplink):
		errs = append(errs, fmt.Errorf("uplink %q is not a valid interface name", c.Uplink))
	}
	names := map[string]int{}
	vlans := map[int]int{}
	addrs := map[netip.Addr]int{}
	for i, n := range c.Networks {
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("networks[%d] %q: %s", i, n.Name, fmt.Sprintf(format, args...)))
		}
		switch j, dup := names[n.Name]; {
		case n.Name == "":
			fail("name is required")
		case len(aliasPrefix)+len(n.Name) > maxAliasLen:
			fail("name is longer than %d bytes", maxAliasLen-len(aliasPrefix))
		case dup:
			fail("name is also networks[%d]'s", j)
		default:
			names[n.Name] = i
		}
		switch j, dup := vlans[n.VLAN]; {
		case n.VLAN < 1 || n.VLAN > 4094:
			fail("VLAN %d is outside 1..4094", n.VLAN)
		case dup:
			fail("VLAN %d is also networks[%d]'s", n.VLAN, j)
		case c.Uplink != "" && len(vlanLink(c.Uplink, n.VLAN)) > maxNameLen:
			fail("VLAN link name %q is longer than %d bytes", vlanLink(c.Uplink, n.VLAN), maxNameLen)
		default:
			vlans[n.VLAN] = i
		}
		if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
			fail("MTU %d is outside 68..65535", n.MTU)
		}
		for _, p := range n.Addresses {
			a := p.Addr()
			switch j, dup := addrs[a]; {
			case !p.IsValid():
				fail("address %v is not valid", p)
			case a.Is4In6() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
				fail("address %v is not a unicast host address", p)
			case a.Is6() && n.mtu() < 1280:
				fail("address %v is IPv6, which needs an MTU of at least 1280, not %d", p, n.mtu())
			case dup:
				fail("address %v is also on networks[%d]", p.Addr(), j)
			default:
				addrs[a] = i
			}
		}
	}
	return errors.Join(errs...)
}

// validLinkName is the kernel's dev_valid_name.
func validLinkName(s string) bool {
	return s != "" && len(s) <= maxNameLen && s != "." && s != ".." &&
		!strings.ContainsFunc(s, func(r rune) bool { return r == '/' || r == ':' || r == ' ' || r < ' ' })
}

// Apply makes the host's links, reached through h, match cfg: for each
// network a VLAN link "<uplink>.<vlan>" on the uplink, enslaved to a
// bridge "cbr<vlan>", both up with the network's MTU, and exactly the
// network's addresses on the bridge (besides IPv6 link-local ones, which
// the kernel makes). It sets the uplink up. It removes the bridges and
// VLAN links it made for networks no longer in cfg; a link it did not
// make, even one in its way, it leaves alone and reports as an error.
// Other ports on its bridges (VMs' taps) are not its business.
//
// A failure on one network does not stop the others: the error joins
// each, and the Report says what was changed all the same.
//
// h need only speak NETLINK_ROUTE: netlink.NewHandleAt(ns,
// unix.NETLINK_ROUTE) for a network namespace, or netlink.NewHandle(
// unix.NETLINK_ROUTE) for the host's own. Without families they also
// open XFRM and netfilter sockets, and fail where those modules are not
// loaded.
func Apply(ctx context.Context, h *netlink.Handle, cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid host network config: %w", err)
	}
	a := &applier{h: h, cfg: cfg}
	if err := a.read(); err != nil {
		return a.report, err
	}
	errs := []error{a.removeStale()}
	for _, n := range slices.SortedFunc(slices.Values(cfg.Networks), func(x, y Network) int { return cmp.Compare(x.VLAN, y.VLAN) }) {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := a.network(n); err != nil {
			errs = append(errs, fmt.Errorf("network %q (VLAN %d): %w", n.Name, n.VLAN, err))
		}
	}
	return a.report, errors.Join(errs...)
}

// applier is one Apply: the links and addresses as they were when it
// started, and what it has changed so far.
type applier struct {
	h      *netlink.Handle
	cfg    Config
	uplink netlink.Link
	links  map[string]netlink.Link
	addrs  map[int][]netlink.Addr // by link index
	report Report
}

func (a *applier) did(format string, args ...any) {
	a.report = append(a.report, fmt.Sprintf(format, args...))
}

// read lists the links and addresses, each in one dump rather than one
// per network, and sets the uplink up.
func (a *applier) read() error {
	links, err := dump(a.h.LinkList)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	a.links = make(map[string]netlink.Link, len(links))
	for _, l := range links {
		a.links[l.Attrs().Name] = l
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return a.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	a.addrs = map[int][]netlink.Addr{}
	for _, addr := range addrs {
		a.addrs[addr.LinkIndex] = append(a.addrs[addr.LinkIndex], addr)
	}
	a.uplink = a.links[a.cfg.Uplink]
	if a.uplink == nil {
		return fmt.Errorf("uplink %q: no such link", a.cfg.Uplink)
	}
	if a.uplink.Attrs().Flags&net.FlagUp == 0 {
		if err := a.h.LinkSetUp(a.uplink); err != nil {
			return fmt.Errorf("uplink %q: set up: %w", a.cfg.Uplink, err)
		}
		a.did("set %s up", a.cfg.Uplink)
	}
	return nil
}

// ours says whether Apply made l: a VLAN link, or a bridge named like
// one of its bridges, carrying its alias.
func ours(l netlink.Link) bool {
	if !strings.HasPrefix(l.Attrs().Alias, aliasPrefix) {
		return false
	}
	switch l.(type) {
	case *netlink.Vlan:
		return true
	case *netlink.Bridge:
		return strings.HasPrefix(l.Attrs().Name, bridgePrefix)
	}
	return false
}

// removeStale deletes the links Apply made for networks no longer in the
// Config: VLAN links first, so no bridge is removed from under a port,
// then bridges, each in name order.
func (a *applier) removeStale() error {
	want := map[string]bool{}
	for _, n := range a.cfg.Networks {
		want[n.bridge()] = true
		want[vlanLink(a.cfg.Uplink, n.VLAN)] = true
	}
	var stale []netlink.Link
	for name, l := range a.links {
		if ours(l) && !want[name] && l != a.uplink {
			stale = append(stale, l)
		}
	}
	slices.SortFunc(stale, func(x, y netlink.Link) int {
		return cmp.Or(cmp.Compare(y.Type(), x.Type()), strings.Compare(x.Attrs().Name, y.Attrs().Name)) // "vlan" before "bridge"
	})
	var errs []error
	for _, l := range stale {
		name := l.Attrs().Name
		if err := a.h.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("remove %s %s: %w", l.Type(), name, err))
			continue
		}
		delete(a.links, name)
		a.did("removed %s %s", l.Type(), name)
	}
	return errors.Join(errs...)
}

func (a *applier) network(n Network) error {
	if up := a.uplink.Attrs().MTU; n.mtu() > up {
		return fmt.Errorf("MTU %d is above uplink %s's %d", n.mtu(), a.cfg.Uplink, up)
	}
	// Look at both names first, so that a link in the way leaves the
	// network wholly untouched.
	for _, name := range []string{n.bridge(), vlanLink(a.cfg.Uplink, n.VLAN)} {
		if l := a.links[name]; l != nil && !ours(l) {
			return fmt.Errorf("%s is a %s that citadel did not make (no %q alias): leaving it alone", name, l.Type(), aliasPrefix)
		}
	}
	br, err := a.bridge(n)
	if err != nil {
		return err
	}
	if err := a.vlan(n, br); err != nil {
		return err
	}
	return a.addresses(n, br)
}

// bridge makes the network's bridge, or puts it right.
func (a *applier) bridge(n Network) (netlink.Link, error) {
	name := n.bridge()
	l := a.links[name]
	if _, ok := l.(*netlink.Bridge); l != nil && !ok {
		return nil, fmt.Errorf("%s is a %s, not a bridge", name, l.Type())
	}
	if l == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU, attrs.Flags = name, n.mtu(), net.FlagUp
		var err error
		if l, err = a.create(&netlink.Bridge{LinkAttrs: attrs}, n.alias()); err != nil {
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		}
		a.did("created bridge %s", name)
	}
	return l, a.settle(l, n)
}

// vlan makes the network's VLAN link on the uplink, or puts it right,
// and enslaves it to br.
func (a *applier) vlan(n Network, br netlink.Link) error {
	name := vlanLink(a.cfg.Uplink, n.VLAN)
	l := a.links[name]
	v, isVlan := l.(*netlink.Vlan)
	if l != nil && !isVlan {
		return fmt.Errorf("%s is a %s, not a VLAN link", name, l.Type())
	}
	if isVlan && (v.ParentIndex != a.uplink.Attrs().Index || v.VlanId != n.VLAN || v.VlanProtocol != netlink.VLAN_PROTOCOL_8021Q) {
		if err := a.h.LinkDel(l); err != nil {
			return fmt.Errorf("remove %s, which is VLAN %d on link %d: %w", name, v.VlanId, v.ParentIndex, err)
		}
		a.did("removed %s, which was VLAN %d %s on link %d", name, v.VlanId, v.VlanProtocol, v.ParentIndex)
		l = nil
	}
	if l == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU, attrs.Flags = name, n.mtu(), net.FlagUp
		attrs.ParentIndex = a.uplink.Attrs().Index
		var err error
		if l, err = a.create(&netlink.Vlan{LinkAttrs: attrs, VlanId: n.VLAN, VlanProtocol: netlink.VLAN_PROTOCOL_8021Q}, n.alias()); err != nil {
			return fmt.Errorf("create VLAN link %s: %w", name, err)
		}
		a.did("created vlan %s", name)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := a.h.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("enslave %s to %s: %w", name, br.Attrs().Name, err)
		}
		a.did("enslaved %s to %s", name, br.Attrs().Name)
	}
	return a.settle(l, n)
}

// create adds l with alias, the mark that Apply made it, and reads it
// back. The kernel takes no alias with a new link, so that is a second
// call; if it fails, l goes again rather than stay in the way unmarked.
// (A crash between the two leaves an unmarked link, which Apply then
// refuses to touch: remove it by hand.)
func (a *applier) create(l netlink.Link, alias string) (netlink.Link, error) {
	if err := a.h.LinkAdd(l); err != nil {
		return nil, err
	}
	if err := a.h.LinkSetAlias(l, alias); err != nil {
		return nil, errors.Join(fmt.Errorf("set alias: %w", err), a.h.LinkDel(l))
	}
	return a.h.LinkByName(l.Attrs().Name)
}

// settle gives one of the network's links its alias and MTU, and sets it
// up.
func (a *applier) settle(l netlink.Link, n Network) error {
	name := l.Attrs().Name
	if l.Attrs().Alias != n.alias() {
		if err := a.h.LinkSetAlias(l, n.alias()); err != nil {
			return fmt.Errorf("set alias of %s: %w", name, err)
		}
		a.did("set alias of %s to %q", name, n.alias())
	}
	if l.Attrs().MTU != n.mtu() {
		if err := a.h.LinkSetMTU(l, n.mtu()); err != nil {
			return fmt.Errorf("set MTU of %s to %d: %w", name, n.mtu(), err)
		}
		a.did("set MTU of %s to %d", name, n.mtu())
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := a.h.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
		a.did("set %s up", name)
	}
	return nil
}

// addresses leaves exactly the network's addresses on br, besides IPv6
// link-local ones. It removes first and then reads the addresses again:
// removing a primary IPv4 address takes its secondaries with it, unless
// promote_secondaries is set.
func (a *applier) addresses(n Network, br netlink.Link) error {
	name := br.Attrs().Name
	have := byPrefix(a.addrs[br.Attrs().Index])
	removed := false
	for _, p := range slices.SortedFunc(maps.Keys(have), netip.Prefix.Compare) {
		addr := have[p]
		if slices.Contains(n.Addresses, p) || (p.Addr().Is6() && p.Addr().IsLinkLocalUnicast()) {
			continue
		}
		if err := a.h.AddrDel(br, &addr); err != nil {
			return fmt.Errorf("remove %v from %s: %w", p, name, err)
		}
		a.did("removed %v from %s", p, name)
		removed = true
	}
	if removed {
		list, err := dump(func() ([]netlink.Addr, error) { return a.h.AddrList(br, netlink.FAMILY_ALL) })
		if err != nil {
			return fmt.Errorf("list addresses of %s: %w", name, err)
		}
		have = byPrefix(list)
	}
	for _, p := range n.Addresses {
		if _, ok := have[p]; ok {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if err := a.h.AddrAdd(br, addr); err != nil {
			return fmt.Errorf("add %v to %s: %w", p, name, err)
		}
		a.did("added %v to %s", p, name)
	}
	return nil
}

func byPrefix(list []netlink.Addr) map[netip.Prefix]netlink.Addr {
	out := make(map[netip.Prefix]netlink.Addr, len(list))
	for _, addr := range list {
		ip, ok := netip.AddrFromSlice(addr.IP)
		if !ok {
			continue
		}
		bits, _ := addr.Mask.Size()
		out[netip.PrefixFrom(ip.Unmap(), bits)] = addr
	}
	return out
}

// dump runs a netlink dump again when the kernel interrupted it because
// what it listed changed meanwhile, as its answer may then be incomplete.
func dump[T any](list func() ([]T, error)) ([]T, error) {
	var err error
	for range 5 {
		var got []T
		if got, err = list(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return got, err
		}
	}
	return nil, err
}
