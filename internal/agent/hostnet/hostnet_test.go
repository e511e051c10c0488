package hostnet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestValidate(t *testing.T) {
	good := Network{Name: "a", VLAN: 501, Addresses: prefixes("10.0.0.2/24", "fd00::2/64")}
	tests := []struct {
		name string
		cfg  Config
		want string // a part of the error; "" for none
	}{
		{"ok", Config{Uplink: "eth0", Networks: []Network{good, {Name: "b", VLAN: 502, MTU: 9000}}}, ""},
		{"no networks", Config{Uplink: "eth0"}, ""},
		{"longest vlan link name", Config{Uplink: "enp129s0f1np1", Networks: []Network{{Name: "a", VLAN: 9}}}, ""},
		{"no uplink", Config{Networks: []Network{good}}, "uplink is required"},
		{"uplink too long", Config{Uplink: "abcdefghijklmnop"}, "not a valid interface name"},
		{"uplink with slash", Config{Uplink: "eth/0"}, "not a valid interface name"},
		{"vlan link name too long", Config{Uplink: "enp129s0f1np1", Networks: []Network{{Name: "a", VLAN: 10}}}, `"enp129s0f1np1.10" is longer than 15`},
		{"no name", Config{Uplink: "eth0", Networks: []Network{{VLAN: 501}}}, "name is required"},
		{"name too long", Config{Uplink: "eth0", Networks: []Network{{Name: strings.Repeat("n", 248), VLAN: 501}}}, "longer than 247"},
		{"vlan 0", Config{Uplink: "eth0", Networks: []Network{{Name: "a"}}}, "VLAN 0 is outside 1..4094"},
		{"vlan 4095", Config{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 4095}}}, "VLAN 4095 is outside"},
		{"same name", Config{Uplink: "eth0", Networks: []Network{good, {Name: "a", VLAN: 502}}}, `networks[1] "a": name is also networks[0]'s`},
		{"same vlan", Config{Uplink: "eth0", Networks: []Network{good, {Name: "b", VLAN: 501}}}, "VLAN 501 is also networks[0]'s"},
		{"mtu too small", Config{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 1, MTU: 67}}}, "MTU 67 is outside"},
		{"mtu negative", Config{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 1, MTU: -1}}}, "MTU -1 is outside"},
		{"ipv6 under 1280", Config{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 1, MTU: 1000, Addresses: prefixes("fd00::1/64")}}}, "needs an MTU of at least 1280"},
		{"zero address", Config{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 1, Addresses: []netip.Prefix{{}}}}}, "is not valid"},
		{"unspecified address", Config{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 1, Addresses: prefixes("0.0.0.0/0")}}}, "not a unicast host address"},
		{"multicast address", Config{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 1, Addresses: prefixes("224.0.0.1/24")}}}, "not a unicast host address"},
		{"loopback address", Config{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 1, Addresses: prefixes("::1/128")}}}, "not a unicast host address"},
		{"mapped address", Config{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 1, Addresses: prefixes("::ffff:10.0.0.1/120")}}}, "not a unicast host address"},
		{"address twice", Config{Uplink: "eth0", Networks: []Network{good, {Name: "b", VLAN: 502, Addresses: prefixes("10.0.0.2/16")}}}, "address 10.0.0.2 is also on networks[0]"},
		{"every error", Config{Networks: []Network{{}}}, "uplink is required\nnetworks[0] \"\": name is required\nnetworks[0] \"\": VLAN 0 is outside 1..4094"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestApplyRack builds a rack in network namespaces: a switch with one
// VLAN-aware bridge, and three machines cabled to it. m1 and m2 are in
// isolation domain A (VLAN 501) and m3 in B (VLAN 601), all three on the
// same subnet, so only the switch keeps m3 apart.
func TestApplyRack(t *testing.T) {
	requireNetAdmin(t)
	m := newRack(t, []int{501}, []int{501}, []int{601})
	cfgs := []Config{
		{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 501, Addresses: prefixes("10.50.1.11/24")}}},
		{Uplink: "eth0", Networks: []Network{{Name: "a", VLAN: 501, Addresses: prefixes("10.50.1.12/24")}}},
		{Uplink: "eth0", Networks: []Network{{Name: "b", VLAN: 601, Addresses: prefixes("10.50.1.13/24")}}},
	}
	for i, cfg := range cfgs {
		vlan := cfg.Networks[0].VLAN
		want := Report{
			"set eth0 up",
			fmt.Sprintf("created bridge cbr%d", vlan),
			fmt.Sprintf("created vlan eth0.%d", vlan),
			fmt.Sprintf("enslaved eth0.%d to cbr%d", vlan, vlan),
			fmt.Sprintf("added %v to cbr%d", cfg.Networks[0].Addresses[0], vlan),
		}
		apply(t, m[i], cfg, want)
	}

	t.Run("reachability", func(t *testing.T) {
		waitReachable(t, m[0], "10.50.1.12")
		if err := dial(m[0], "10.50.1.13", 500*time.Millisecond); err == nil {
			t.Errorf("m1 (VLAN 501) reached 10.50.1.13 on m3 (VLAN 601)")
		}
	})

	t.Run("idempotent", func(t *testing.T) {
		for i, cfg := range cfgs {
			apply(t, m[i], cfg, nil)
		}
	})

	t.Run("self-healing", func(t *testing.T) {
		bridge, vlan := "cbr501", "eth0.501"
		ours := netlink.Addr{IPNet: ipNet("10.50.1.11/24")}
		foreign := netlink.Addr{IPNet: ipNet("10.50.1.99/24")}
		tests := []struct {
			name  string
			drift func(t *testing.T, h *netlink.Handle) error
			want  Report
		}{
			{"bridge deleted", func(t *testing.T, h *netlink.Handle) error {
				return h.LinkDel(link(t, h, bridge))
			}, Report{"created bridge cbr501", "enslaved eth0.501 to cbr501", "added 10.50.1.11/24 to cbr501"}},
			{"vlan link down", func(t *testing.T, h *netlink.Handle) error {
				return h.LinkSetDown(link(t, h, vlan))
			}, Report{"set eth0.501 up"}},
			{"bridge down", func(t *testing.T, h *netlink.Handle) error {
				return h.LinkSetDown(link(t, h, bridge))
			}, Report{"set cbr501 up"}},
			{"address removed", func(t *testing.T, h *netlink.Handle) error {
				return h.AddrDel(link(t, h, bridge), &ours)
			}, Report{"added 10.50.1.11/24 to cbr501"}},
			{"foreign address", func(t *testing.T, h *netlink.Handle) error {
				return h.AddrAdd(link(t, h, bridge), &foreign)
			}, Report{"removed 10.50.1.99/24 from cbr501"}},
			{"vlan link off the bridge", func(t *testing.T, h *netlink.Handle) error {
				return h.LinkSetNoMaster(link(t, h, vlan))
			}, Report{"enslaved eth0.501 to cbr501"}},
			{"mtu changed", func(t *testing.T, h *netlink.Handle) error {
				return errors.Join(h.LinkSetMTU(link(t, h, vlan), 1400), h.LinkSetMTU(link(t, h, bridge), 1400))
			}, Report{"set MTU of cbr501 to 1500", "set MTU of eth0.501 to 1500"}},
			{"all at once", func(t *testing.T, h *netlink.Handle) error {
				return errors.Join(h.LinkDel(link(t, h, bridge)), h.LinkSetDown(link(t, h, vlan)), h.LinkSetDown(link(t, h, "eth0")))
			}, Report{"set eth0 up", "created bridge cbr501", "enslaved eth0.501 to cbr501", "set eth0.501 up", "added 10.50.1.11/24 to cbr501"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := tt.drift(t, m[0].h); err != nil {
					t.Fatalf("drift: %v", err)
				}
				apply(t, m[0], cfgs[0], tt.want)
				waitReachable(t, m[0], "10.50.1.12")
				apply(t, m[0], cfgs[0], nil)
			})
		}
	})

	t.Run("removal", func(t *testing.T) {
		apply(t, m[0], Config{Uplink: "eth0"}, Report{"removed vlan eth0.501", "removed bridge cbr501"})
		if got := linkNames(t, m[0].h); !slices.Equal(got, []string{"eth0", "lo"}) {
			t.Errorf("links after removal = %v, want [eth0 lo]", got)
		}
		if l := link(t, m[0].h, "eth0"); l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("eth0 is down after removal, want it left up")
		}
		apply(t, m[0], Config{Uplink: "eth0"}, nil)
	})
}

// TestApplyHost checks, on one machine with a veth for an uplink, what the rack
// does not: MTUs and renames, IPv6, links Apply did not make, and errors.
func TestApplyHost(t *testing.T) {
	requireNetAdmin(t)
	m := newNamespace(t)
	uplink := veth(t, m.h, "eth0", 9000)
	requireVLANs(t, m.h)
	a := Network{Name: "a", VLAN: 100, MTU: 9000, Addresses: prefixes("10.1.0.2/24", "fd00:1::2/64")}
	b := Network{Name: "b", VLAN: 200}
	apply(t, m, Config{Uplink: "eth0", Networks: []Network{b, a}}, Report{
		"set eth0 up",
		"created bridge cbr100", "created vlan eth0.100", "enslaved eth0.100 to cbr100",
		"added 10.1.0.2/24 to cbr100", "added fd00:1::2/64 to cbr100",
		"created bridge cbr200", "created vlan eth0.200", "enslaved eth0.200 to cbr200",
	})
	apply(t, m, Config{Uplink: "eth0", Networks: []Network{a, b}}, nil)

	t.Run("rename and new MTU", func(t *testing.T) {
		a2 := a
		a2.Name, a2.MTU = "a2", 0
		apply(t, m, Config{Uplink: "eth0", Networks: []Network{a2, b}}, Report{
			`set alias of cbr100 to "citadel:a2"`, "set MTU of cbr100 to 1500",
			`set alias of eth0.100 to "citadel:a2"`, "set MTU of eth0.100 to 1500",
		})
		apply(t, m, Config{Uplink: "eth0", Networks: []Network{a, b}}, Report{
			`set alias of cbr100 to "citadel:a"`, "set MTU of cbr100 to 9000",
			`set alias of eth0.100 to "citadel:a"`, "set MTU of eth0.100 to 9000",
		})
	})

	t.Run("foreign primary address", func(t *testing.T) {
		// Ours becomes the secondary of a foreign primary: removing the
		// foreign one takes ours along when secondaries are not promoted.
		inNamespace(m.ns, func() {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/cbr100/promote_secondaries", []byte("0"), 0); err != nil {
				t.Fatal(err)
			}
		})
		br := link(t, m.h, "cbr100")
		ours, foreign := &netlink.Addr{IPNet: ipNet("10.1.0.2/24")}, &netlink.Addr{IPNet: ipNet("10.1.0.9/24")}
		if err := errors.Join(m.h.AddrDel(br, ours), m.h.AddrAdd(br, foreign), m.h.AddrAdd(br, ours)); err != nil {
			t.Fatal(err)
		}
		apply(t, m, Config{Uplink: "eth0", Networks: []Network{a, b}}, Report{"removed 10.1.0.9/24 from cbr100", "added 10.1.0.2/24 to cbr100"})
	})

	t.Run("links not ours", func(t *testing.T) {
		// A bridge named like ours but without the alias, a VLAN link on
		// the uplink without it, and a bridge with the alias but not our
		// name: Apply neither removes nor changes them.
		foreignBridge := bridge(t, m.h, "cbr300", "")
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.ParentIndex = "eth0.400", uplink.Attrs().Index
		if err := m.h.LinkAdd(&netlink.Vlan{LinkAttrs: attrs, VlanId: 400}); err != nil {
			t.Fatal(err)
		}
		bridge(t, m.h, "br0", "citadel:imposter")
		apply(t, m, Config{Uplink: "eth0", Networks: []Network{a, b}}, nil)

		c := Network{Name: "c", VLAN: 300, Addresses: prefixes("10.3.0.2/24")}
		d := Network{Name: "d", VLAN: 400}
		rep, err := Apply(t.Context(), m.h, Config{Uplink: "eth0", Networks: []Network{a, b, c, d}})
		if err == nil || !strings.Contains(err.Error(), "cbr300 is a bridge that citadel did not make") || !strings.Contains(err.Error(), "eth0.400 is a vlan that citadel did not make") {
			t.Errorf("Apply(with VLANs 300 and 400) error = %v, want it to refuse cbr300 and eth0.400", err)
		}
		if len(rep) != 0 {
			t.Errorf("Apply(with VLANs 300 and 400) = %q, want no changes", rep)
		}
		if addrs, err := m.h.AddrList(foreignBridge, netlink.FAMILY_V4); err != nil || len(addrs) != 0 {
			t.Errorf("addresses on the foreign cbr300 = %v, %v; want none", addrs, err)
		}
	})

	t.Run("MTU above the uplink's", func(t *testing.T) {
		c := Network{Name: "c", VLAN: 500, MTU: 9001}
		rep, err := Apply(t.Context(), m.h, Config{Uplink: "eth0", Networks: []Network{a, b, c}})
		if err == nil || !strings.Contains(err.Error(), "MTU 9001 is above uplink eth0's 9000") {
			t.Errorf("Apply(MTU 9001) error = %v, want MTU 9001 is above uplink eth0's 9000", err)
		}
		if len(rep) != 0 {
			t.Errorf("Apply(MTU 9001) = %q, want no changes", rep)
		}
	})

	t.Run("removal", func(t *testing.T) {
		apply(t, m, Config{Uplink: "eth0"}, Report{"removed vlan eth0.100", "removed vlan eth0.200", "removed bridge cbr100", "removed bridge cbr200"})
		if got, want := linkNames(t, m.h), []string{"br0", "cbr300", "eth0", "eth0-peer", "eth0.400", "lo"}; !slices.Equal(got, want) {
			t.Errorf("links after removal = %v, want %v", got, want)
		}
	})
}

// TestApplyOwnership checks what needs no VLAN links, so it runs on any
// kernel with bridges: Apply removes the bridges it made (named cbr<vlan>
// and carrying its alias) once their networks are gone, and nothing else.
func TestApplyOwnership(t *testing.T) {
	requireNetAdmin(t)
	m := newNamespace(t)
	veth(t, m.h, "eth0", 1500)
	bridge(t, m.h, "cbr501", "citadel:a") // made for network a, now gone
	bridge(t, m.h, "cbr502", "")          // named like ours, but not ours
	bridge(t, m.h, "br0", "citadel:b")    // our alias, but not our name
	veth(t, m.h, "cbr503", 1500)          // our name, not a bridge
	if err := m.h.LinkSetAlias(link(t, m.h, "cbr503"), "citadel:c"); err != nil {
		t.Fatal(err)
	}
	apply(t, m, Config{Uplink: "eth0"}, Report{"set eth0 up", "removed bridge cbr501"})
	want := []string{"br0", "cbr502", "cbr503", "cbr503-peer", "eth0", "eth0-peer", "lo"}
	if got := linkNames(t, m.h); !slices.Equal(got, want) {
		t.Errorf("links after Apply = %v, want %v", got, want)
	}
	apply(t, m, Config{Uplink: "eth0"}, nil)

	if rep, err := Apply(t.Context(), m.h, Config{Uplink: "eth9"}); err == nil || !strings.Contains(err.Error(), `uplink "eth9": no such link`) || len(rep) != 0 {
		t.Errorf("Apply(uplink eth9, which is missing) = %q, %v; want no changes and the error uplink \"eth9\": no such link", rep, err)
	}
	if rep, err := Apply(t.Context(), m.h, Config{}); err == nil || !strings.Contains(err.Error(), "uplink is required") || len(rep) != 0 {
		t.Errorf("Apply(Config{}) = %q, %v; want no changes and the error uplink is required", rep, err)
	}
}

// BenchmarkApplyNoop is the agent's steady state: every network already
// in place, so Apply only reads.
func BenchmarkApplyNoop(b *testing.B) {
	requireNetAdmin(b)
	m := newNamespace(b)
	veth(b, m.h, "eth0", 1500)
	requireVLANs(b, m.h)
	cfg := Config{Uplink: "eth0"}
	for i := range 20 {
		cfg.Networks = append(cfg.Networks, Network{Name: fmt.Sprintf("n%d", i), VLAN: 100 + i, Addresses: prefixes(fmt.Sprintf("10.%d.0.2/24", i))})
	}
	if _, err := Apply(b.Context(), m.h, cfg); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if rep, err := Apply(b.Context(), m.h, cfg); err != nil || len(rep) != 0 {
			b.Fatalf("Apply() = %q, %v; want no changes", rep, err)
		}
	}
}

// apply runs Apply and wants no error and exactly the changes want.
func apply(t *testing.T, m *namespace, cfg Config, want Report) {
	t.Helper()
	got, err := Apply(t.Context(), m.h, cfg)
	if err != nil {
		t.Fatalf("Apply(%s) error: %v", m.name, err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Apply(%s) report (-want +got):\n%s", m.name, diff)
	}
}

// requireNetAdmin skips the test unless it can make network namespaces.
// Under CI=true, and in TestVLANsInVM's VM, it fails instead, so CI never
// passes by skipping.
func requireNetAdmin(tb testing.TB) {
	tb.Helper()
	switch why := netAdminMissing(); {
	case why == "":
	case os.Getenv("CI") == "true" || inVM:
		tb.Fatalf("cannot make network namespaces: %s (CI=true or in the VM, so this fails rather than skips)", why)
	default:
		tb.Skipf("skipping: %s, so no network namespaces to test in", why)
	}
}

// netAdminMissing says why the test cannot make network namespaces, or
// is "" if it can: it runs as root and has `ip`.
func netAdminMissing() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "no ip command (iproute2)"
	}
	return ""
}

// namespace is a named network namespace and a netlink handle in it.
type namespace struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle
}

// newNamespace makes a network namespace "cithn-<random>", deleted when
// the test ends, whatever the outcome.
func newNamespace(tb testing.TB) *namespace {
	tb.Helper()
	name := "cithn-" + strings.ToLower(rand.Text()[:8])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns, err := netns.GetFromName(name)
	if err != nil {
		tb.Fatalf("open namespace %s: %v", name, err)
	}
	tb.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns, syscall.NETLINK_ROUTE) // not XFRM or netfilter too, whose modules may be missing
	if err != nil {
		tb.Fatalf("netlink handle in %s: %v", name, err)
	}
	tb.Cleanup(h.Close)
	return &namespace{name: name, ns: ns, h: h}
}

// newRack makes a switch namespace holding a VLAN-filtering bridge, the
// top-of-rack switch, and a machine namespace per trunks entry. Each
// machine's "eth0" is a veth cabled to a switch port that carries the
// machine's VLANs, tagged, and nothing else. Each machine listens on
// probePort.
func newRack(t *testing.T, trunks ...[]int) []*namespace {
	t.Helper()
	sw := newNamespace(t)
	requireVLANs(t, sw.h)
	yes, none := true, uint16(0)
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.Flags = "tor", net.FlagUp
	tor := &netlink.Bridge{LinkAttrs: attrs, VlanFiltering: &yes, VlanDefaultPVID: &none}
	if err := sw.h.LinkAdd(tor); err != nil {
		t.Fatalf("switch: create bridge: %v", err)
	}
	var machines []*namespace
	for i, vlans := range trunks {
		m := newNamespace(t)
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.Flags = fmt.Sprintf("port%d", i+1), net.FlagUp
		port := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerTxQLen: -1, PeerNamespace: netlink.NsFd(m.ns)}
		if err := sw.h.LinkAdd(port); err != nil {
			t.Fatalf("switch: create %s: %v", attrs.Name, err)
		}
		if err := sw.h.LinkSetMaster(port, tor); err != nil {
			t.Fatalf("switch: enslave %s: %v", attrs.Name, err)
		}
		for _, vlan := range vlans {
			if err := sw.h.BridgeVlanAdd(port, uint16(vlan), false, false, false, true); err != nil {
				t.Fatalf("switch: allow VLAN %d on %s: %v", vlan, attrs.Name, err)
			}
		}
		inNamespace(m.ns, func() {
			l, err := net.Listen("tcp", fmt.Sprintf(":%d", probePort))
			if err != nil {
				t.Fatalf("listen in %s: %v", m.name, err)
			}
			t.Cleanup(func() { l.Close() })
		})
		machines = append(machines, m)
	}
	return machines
}

// probePort is where each rack machine listens, so that a connection
// proves L2 and L3 both ways: ARP, then the TCP handshake.
const probePort = 4242

func dial(from *namespace, ip string, timeout time.Duration) error {
	var err error
	inNamespace(from.ns, func() {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(probePort)), timeout); err == nil {
			c.Close()
		}
	})
	return err
}

// waitReachable waits for from to reach ip, allowing for ARP and the
// switch learning where the machines are.
func waitReachable(t *testing.T, from *namespace, ip string) {
	t.Helper()
	var err error
	for range 20 {
		if err = dial(from, ip, 250*time.Millisecond); err == nil {
			return
		}
	}
	t.Errorf("%s cannot reach %s: %v", from.name, ip, err)
}

// inNamespace runs fn on an OS thread switched to ns, so the sockets fn
// opens live there. If the thread cannot be switched back it stays locked,
// and the runtime ends it with the goroutine.
func inNamespace(ns netns.NsHandle, fn func()) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		panic(fmt.Sprintf("read this thread's namespace: %v", err))
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		panic(fmt.Sprintf("switch to namespace %v: %v", ns, err))
	}
	defer func() {
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	fn()
}

// requireVLANs skips the test unless the kernel has what the VLAN tests
// need. TestVLANsInVM then runs the test in a VM whose kernel has it, as
// it runs every TestApply test there; in that VM requireVLANs fails
// instead.
func requireVLANs(tb testing.TB, h *netlink.Handle) {
	tb.Helper()
	switch why := missingVLANs(tb, h); {
	case why == "":
	case inVM:
		tb.Fatalf("this kernel has no %s (in the VM, so this fails rather than skips)", why)
	default:
		tb.Skipf("skipping: this kernel has no %s; TestVLANsInVM runs this test in a VM", why)
	}
}

// missingVLANs names what the VLAN tests need that the kernel lacks, or
// is "" if it lacks nothing: 802.1Q VLAN links, as Apply makes one per
// network, and VLAN-filtering bridges, to play the switch in newRack. Not
// all kernels have them built in, and one without modules cannot load
// them.
func missingVLANs(tb testing.TB, h *netlink.Handle) string {
	tb.Helper()
	var missing []string
	parent := veth(tb, h, "probe", 1500)
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.ParentIndex = "probe.1", parent.Attrs().Index
	switch err := h.LinkAdd(&netlink.Vlan{LinkAttrs: attrs, VlanId: 1}); {
	case errors.Is(err, syscall.EOPNOTSUPP):
		missing = append(missing, "802.1Q VLAN links (CONFIG_VLAN_8021Q)")
	case err != nil:
		tb.Fatalf("create VLAN link: %v", err)
	}
	if err := h.LinkDel(parent); err != nil { // takes the VLAN link and the peer along
		tb.Fatalf("remove %s: %v", parent.Attrs().Name, err)
	}
	yes := true
	attrs = netlink.NewLinkAttrs()
	attrs.Name = "probe-br"
	br := &netlink.Bridge{LinkAttrs: attrs, VlanFiltering: &yes}
	switch err := h.LinkAdd(br); {
	case errors.Is(err, syscall.EOPNOTSUPP):
		missing = append(missing, "VLAN-filtering bridges (CONFIG_BRIDGE_VLAN_FILTERING)")
	case err != nil:
		tb.Fatalf("create VLAN-filtering bridge: %v", err)
	default:
		if err := h.LinkDel(br); err != nil {
			tb.Fatalf("remove %s: %v", attrs.Name, err)
		}
	}
	return strings.Join(missing, " and ")
}

// veth makes a veth pair, name and name-peer, to stand for a NIC: the
// kernel has it wherever it has network namespaces.
func veth(tb testing.TB, h *netlink.Handle, name string, mtu int) netlink.Link {
	tb.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = name, mtu
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: name + "-peer", PeerTxQLen: -1, PeerMTU: uint32(mtu)}); err != nil {
		tb.Fatalf("create veth %s: %v", name, err)
	}
	return link(tb, h, name)
}

func bridge(tb testing.TB, h *netlink.Handle, name, alias string) netlink.Link {
	tb.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		tb.Fatalf("create bridge %s: %v", name, err)
	}
	if err := h.LinkSetAlias(link(tb, h, name), alias); err != nil {
		tb.Fatalf("set alias of %s: %v", name, err)
	}
	return link(tb, h, name)
}

func link(tb testing.TB, h *netlink.Handle, name string) netlink.Link {
	tb.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		tb.Fatalf("link %s: %v", name, err)
	}
	return l
}

func linkNames(tb testing.TB, h *netlink.Handle) []string {
	tb.Helper()
	links, err := h.LinkList()
	if err != nil {
		tb.Fatalf("list links: %v", err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func ipNet(s string) *net.IPNet {
	p := netip.MustParsePrefix(s)
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
