package network

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
)

func mustPool(t testing.TB, cidr string) Pool {
	t.Helper()
	p, err := ParsePool(cidr)
	if err != nil {
		t.Fatalf("ParsePool(%q) error = %v", cidr, err)
	}
	return p
}

func TestParsePool(t *testing.T) {
	tests := []struct {
		in         string
		want       string // the pool's prefix, or "" for an error
		wantReason string // a part of the error's reason
	}{
		{in: "10.0.0.0/24", want: "10.0.0.0/24"},
		{in: "10.0.0.0/30", want: "10.0.0.0/30"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "2001:DB8::/64", want: "2001:db8::/64"},
		{in: "2001:db8::ff00/120", want: "2001:db8::ff00/120"},
		{in: "2001:db8::/126", want: "2001:db8::/126"},
		{in: "", wantReason: "not a CIDR prefix"},
		{in: "10.0.0.0", wantReason: "not a CIDR prefix"},
		{in: "10.0.0.0/33", wantReason: "not a CIDR prefix"},
		{in: " 10.0.0.0/24", wantReason: "not a CIDR prefix"},
		{in: "fe80::%eth0/64", wantReason: "not a CIDR prefix"},
		{in: "10.0.0.5/24", wantReason: "host bits set; the network is 10.0.0.0/24"},
		{in: "2001:db8::1/64", wantReason: "the network is 2001:db8::/64"},
		{in: "10.0.0.0/31", wantReason: "at most 30"},
		{in: "10.0.0.1/32", wantReason: "at most 30"},
		{in: "2001:db8::/127", wantReason: "at most 126"},
		{in: "2001:db8::/128", wantReason: "at most 126"},
		{in: "::ffff:10.0.0.0/120", wantReason: "IPv4-mapped"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePool(tt.in)
			if tt.want == "" {
				re, ok := errors.AsType[*RuleError](err)
				if !ok || re.Field != "" || !strings.Contains(re.Reason, tt.wantReason) {
					t.Fatalf("ParsePool(%q) = %v, %v; want a RuleError with no field saying %q", tt.in, p, err, tt.wantReason)
				}
				return
			}
			if err != nil || p.Prefix.String() != tt.want {
				t.Fatalf("ParsePool(%q) = %v, %v; want %s", tt.in, p.Prefix, err, tt.want)
			}
		})
	}
}

func TestPoolSize(t *testing.T) {
	tests := []struct {
		cidr string
		want uint64
	}{
		{"10.0.0.0/30", 1},
		{"10.0.0.0/29", 5},
		{"10.0.0.0/24", 253},
		{"10.0.0.0/16", 65533},
		{"0.0.0.0/0", 1<<32 - 3},
		{"2001:db8::/126", 2},
		{"2001:db8::/120", 254},
		{"2001:db8::/65", 1<<63 - 2},
		{"2001:db8::/64", math.MaxUint64 - 1},
		{"2001:db8::/63", math.MaxUint64},
		{"::/0", math.MaxUint64},
	}
	for _, tt := range tests {
		if got := mustPool(t, tt.cidr).Size(); got != tt.want {
			t.Errorf("Pool(%s).Size() = %d, want %d", tt.cidr, got, tt.want)
		}
	}
	if got := (Pool{}).Size(); got != 0 {
		t.Errorf("Pool{}.Size() = %d, want 0", got)
	}
	if got := (Pool{Prefix: netip.MustParsePrefix("10.0.0.0/31")}).Size(); got != 0 {
		t.Errorf("Pool(10.0.0.0/31).Size() = %d, want 0", got)
	}
}

func TestPoolGateway(t *testing.T) {
	tests := []struct{ cidr, want string }{
		{"10.0.0.0/24", "10.0.0.1"},
		{"10.0.0.0/30", "10.0.0.1"},
		{"192.168.4.0/22", "192.168.4.1"},
		{"2001:db8::/64", "2001:db8::1"},
		{"2001:db8::ff00/120", "2001:db8::ff01"},
	}
	for _, tt := range tests {
		if got := mustPool(t, tt.cidr).Gateway(); got.String() != tt.want {
			t.Errorf("Pool(%s).Gateway() = %v, want %s", tt.cidr, got, tt.want)
		}
	}
	if got := (Pool{}).Gateway(); got.IsValid() {
		t.Errorf("Pool{}.Gateway() = %v, want the zero Addr", got)
	}
}

func TestPoolReserved(t *testing.T) {
	tests := []struct{ cidr, addr, want string }{
		{"10.0.0.0/24", "10.0.0.0", "network address"},
		{"10.0.0.0/24", "10.0.0.1", "gateway address"},
		{"10.0.0.0/24", "10.0.0.255", "broadcast address"},
		{"10.0.0.0/24", "10.0.0.2", ""},
		{"10.0.0.0/24", "10.0.0.254", ""},
		{"10.0.0.0/24", "10.0.1.0", "outside 10.0.0.0/24"},
		{"10.0.0.0/24", "::ffff:10.0.0.5", "outside 10.0.0.0/24"},
		{"10.0.0.0/30", "10.0.0.2", ""},
		{"10.0.0.0/30", "10.0.0.3", "broadcast address"},
		{"0.0.0.0/0", "255.255.255.255", "broadcast address"},
		{"2001:db8::/64", "2001:db8::", "network address"},
		{"2001:db8::/64", "2001:db8::1", "gateway address"},
		{"2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff", ""},
		{"2001:db8::/64", "10.0.0.1", "outside 2001:db8::/64"},
		{"2001:db8::ff00/120", "2001:db8::ffff", ""},
		{"2001:db8::ff00/120", "2001:db8::1:0", "outside 2001:db8::ff00/120"},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := mustPool(t, tt.cidr).Reserved(a); got != tt.want {
			t.Errorf("Pool(%s).Reserved(%s) = %q, want %q", tt.cidr, a, got, tt.want)
		}
	}
}

func TestPoolNthIndex(t *testing.T) {
	tests := []struct {
		cidr string
		i    uint64
		want string // "" when there is no i-th address
	}{
		{"10.0.0.0/24", 0, "10.0.0.2"},
		{"10.0.0.0/24", 100, "10.0.0.102"},
		{"10.0.0.0/24", 252, "10.0.0.254"},
		{"10.0.0.0/24", 253, ""},
		{"10.0.0.0/30", 0, "10.0.0.2"},
		{"10.0.0.0/30", 1, ""},
		{"10.0.0.0/16", 65532, "10.0.255.254"},
		{"0.0.0.0/0", 1<<32 - 4, "255.255.255.254"},
		{"2001:db8::ff00/120", 0, "2001:db8::ff02"},
		{"2001:db8::ff00/120", 253, "2001:db8::ffff"},
		{"2001:db8::ff00/120", 254, ""},
		{"2001:db8::/126", 1, "2001:db8::3"},
		{"2001:db8::/64", math.MaxUint64 - 2, "2001:db8::ffff:ffff:ffff:ffff"},
		{"2001:db8::/64", math.MaxUint64 - 1, ""},
		// Beyond 2^64 the numbering carries into the high half.
		{"2001:db8::/48", math.MaxUint64 - 1, "2001:db8:0:1::"},
		{"2001:db8::/48", math.MaxUint64, ""},
	}
	for _, tt := range tests {
		p := mustPool(t, tt.cidr)
		got, ok := p.Nth(tt.i)
		if tt.want == "" {
			if ok {
				t.Errorf("Pool(%s).Nth(%d) = %v, want none", tt.cidr, tt.i, got)
			}
			continue
		}
		if !ok || got.String() != tt.want {
			t.Errorf("Pool(%s).Nth(%d) = %v, %v; want %s", tt.cidr, tt.i, got, ok, tt.want)
			continue
		}
		if i, ok := p.Index(got); !ok || i != tt.i {
			t.Errorf("Pool(%s).Index(%v) = %d, %v; want %d", tt.cidr, got, i, ok, tt.i)
		}
	}
}

func TestPoolIndexUnnumbered(t *testing.T) {
	tests := []struct{ cidr, addr string }{
		{"10.0.0.0/24", "10.0.0.0"},
		{"10.0.0.0/24", "10.0.0.1"},
		{"10.0.0.0/24", "10.0.0.255"},
		{"10.0.0.0/24", "10.0.1.2"},
		{"10.0.0.0/24", "::ffff:10.0.0.2"},
		{"2001:db8::/64", "2001:db8::1"},
		{"2001:db8::/64", "2001:db8:0:1::2"},
		{"2001:db8::/48", "2001:db8:0:ffff::"}, // past the numbering
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if i, ok := mustPool(t, tt.cidr).Index(a); ok {
			t.Errorf("Pool(%s).Index(%s) = %d, want none", tt.cidr, a, i)
		}
	}
}

func TestPoolPick(t *testing.T) {
	takenSet := func(addrs ...string) func(netip.Addr) bool {
		set := map[netip.Addr]bool{}
		for _, a := range addrs {
			set[netip.MustParseAddr(a)] = true
		}
		return func(a netip.Addr) bool { return set[a] }
	}
	allBut := func(p Pool, free string) func(netip.Addr) bool {
		return func(a netip.Addr) bool { return a.String() != free && p.Reserved(a) == "" }
	}
	v4 := mustPool(t, "10.0.0.0/24")
	tests := []struct {
		name  string
		pool  Pool
		taken func(netip.Addr) bool
		start uint64
		want  string // "" for ErrExhausted
	}{
		{"empty from 0", v4, takenSet(), 0, "10.0.0.2"},
		{"empty from 5", v4, takenSet(), 5, "10.0.0.7"},
		{"start wraps modulo size", v4, takenSet(), 253 + 5, "10.0.0.7"},
		{"skips taken", v4, takenSet("10.0.0.2", "10.0.0.3", "10.0.0.4"), 0, "10.0.0.5"},
		{"last address", v4, allBut(v4, "10.0.0.254"), 0, "10.0.0.254"},
		{"wraps round once", v4, allBut(v4, "10.0.0.2"), 200, "10.0.0.2"},
		{"full", v4, allBut(v4, ""), 17, ""},
		{"/30 has one", mustPool(t, "10.0.0.0/30"), takenSet(), 9, "10.0.0.2"},
		{"/30 full", mustPool(t, "10.0.0.0/30"), takenSet("10.0.0.2"), 0, ""},
		{"v6 /120 wraps", mustPool(t, "2001:db8::/120"), takenSet("2001:db8::ff"), 253, "2001:db8::2"},
		{"zero pool", Pool{}, takenSet(), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.pool.Pick(tt.taken, tt.start)
			if tt.want == "" {
				if !errors.Is(err, ErrExhausted) {
					t.Fatalf("Pick() = %v, %v; want ErrExhausted", got, err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("Pick() = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestPoolPickExhaustedMessage(t *testing.T) {
	p := mustPool(t, "10.0.0.0/24")
	_, err := p.Pick(func(netip.Addr) bool { return true }, 0)
	if err == nil || err.Error() != "no free address in 10.0.0.0/24" {
		t.Errorf("Pick() error = %v, want no free address in 10.0.0.0/24", err)
	}
}

func TestPoolPickCapsHugePools(t *testing.T) {
	p := mustPool(t, "2001:db8::/64")
	calls := 0
	_, err := p.Pick(func(netip.Addr) bool { calls++; return true }, math.MaxUint64-10)
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("Pick() error = %v, want ErrExhausted", err)
	}
	if calls != pickScanLimit {
		t.Errorf("Pick() tried %d addresses, want %d", calls, pickScanLimit)
	}
	if !strings.Contains(err.Error(), "among the 1048576 addresses from index 18446744073709551605") {
		t.Errorf("Pick() error = %v, want it to say which stretch was scanned", err)
	}
}

func TestPoolCheckStatic(t *testing.T) {
	tests := []struct {
		cidr, in   string
		want       string // the canonical address, or "" for an error
		wantReason string
	}{
		{cidr: "10.0.0.0/24", in: "10.0.0.2", want: "10.0.0.2"},
		{cidr: "10.0.0.0/24", in: "10.0.0.254", want: "10.0.0.254"},
		{cidr: "2001:db8::/64", in: "2001:DB8::0A", want: "2001:db8::a"},
		{cidr: "10.0.0.0/24", in: "", wantReason: "not an IP address"},
		{cidr: "10.0.0.0/24", in: "10.0.0.2/32", wantReason: "not an IP address"},
		{cidr: "10.0.0.0/24", in: "10.0.0.02", wantReason: "not an IP address"},
		{cidr: "10.0.0.0/24", in: "host-1", wantReason: "not an IP address"},
		{cidr: "10.0.0.0/24", in: "2001:db8::2", wantReason: "is an IPv6 address but the network 10.0.0.0/24 is IPv4"},
		{cidr: "2001:db8::/64", in: "10.0.0.2", wantReason: "is an IPv4 address but the network 2001:db8::/64 is IPv6"},
		{cidr: "10.0.0.0/24", in: "::ffff:10.0.0.2", wantReason: "write it as 10.0.0.2"},
		{cidr: "2001:db8::/64", in: "fe80::2%eth0", wantReason: "zone"},
		{cidr: "10.0.0.0/24", in: "10.0.1.2", wantReason: "10.0.1.2 is outside the network 10.0.0.0/24"},
		{cidr: "10.0.0.0/24", in: "10.0.0.0", wantReason: "network address"},
		{cidr: "10.0.0.0/24", in: "10.0.0.1", wantReason: "10.0.0.1 is the gateway address of 10.0.0.0/24"},
		{cidr: "10.0.0.0/24", in: "10.0.0.255", wantReason: "broadcast address"},
		{cidr: "2001:db8::/64", in: "2001:db8::", wantReason: "network address"},
		{cidr: "2001:db8::/64", in: "2001:db8::1", wantReason: "gateway address"},
		{cidr: "2001:db8::/64", in: "2001:db8:1::2", wantReason: "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.cidr+" "+tt.in, func(t *testing.T) {
			got, err := mustPool(t, tt.cidr).CheckStatic(tt.in)
			if tt.want == "" {
				re, ok := errors.AsType[*RuleError](err)
				if !ok || !strings.Contains(re.Reason, tt.wantReason) {
					t.Fatalf("CheckStatic(%q) = %v, %v; want a RuleError saying %q", tt.in, got, err, tt.wantReason)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("CheckStatic(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func BenchmarkPick(b *testing.B) {
	p := mustPool(b, "10.20.0.0/16")
	taken := make(map[netip.Addr]bool, 60000)
	for i := range uint64(60000) {
		a, _ := p.Nth(i)
		taken[a] = true
	}
	for b.Loop() {
		a, err := p.Pick(func(a netip.Addr) bool { return taken[a] }, 0)
		if err != nil || a.String() != "10.20.234.98" {
			b.Fatalf("Pick() = %v, %v", a, err)
		}
	}
}

func BenchmarkNth(b *testing.B) {
	for _, cidr := range []string{"10.20.0.0/16", "2001:db8::/48"} {
		b.Run(cidr, func(b *testing.B) {
			p := mustPool(b, cidr)
			var i uint64
			for b.Loop() {
				if _, ok := p.Nth(i); !ok {
					b.Fatalf("Nth(%d) = none", i)
				}
				i = (i + 7919) % 65533
			}
		})
	}
}
