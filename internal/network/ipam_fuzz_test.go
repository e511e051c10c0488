package network

import (
	"errors"
	"math"
	"testing"
)

func FuzzParsePool(f *testing.F) {
	for _, s := range []string{"10.0.0.0/24", "10.0.0.0/30", "10.0.0.0/31", "10.0.0.5/24", "0.0.0.0/0",
		"2001:db8::/64", "2001:db8::ff00/120", "2001:db8::/126", "::/0", "::ffff:10.0.0.0/120", "fe80::%eth0/64", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cidr string) {
		p, err := ParsePool(cidr)
		if err != nil {
			if _, ok := errors.AsType[*RuleError](err); !ok {
				t.Fatalf("ParsePool(%q) error %T, want *RuleError", cidr, err)
			}
			return
		}
		// A pool's own prefix parses back to the same pool.
		if again, err := ParsePool(p.Prefix.String()); err != nil || again != p {
			t.Fatalf("ParsePool(%q) = %v, %v; want %v", p.Prefix, again, err, p)
		}
		n := p.Size()
		if n == 0 {
			t.Fatalf("Pool(%s).Size() = 0", p.Prefix)
		}
		for _, i := range []uint64{0, n / 2, n - 1} {
			a, ok := p.Nth(i)
			if !ok {
				t.Fatalf("Pool(%s).Nth(%d) = none, size %d", p.Prefix, i, n)
			}
			if why := p.Reserved(a); why != "" {
				t.Fatalf("Pool(%s).Reserved(Nth(%d) = %v) = %q, want assignable", p.Prefix, i, a, why)
			}
			if j, ok := p.Index(a); !ok || j != i {
				t.Fatalf("Pool(%s).Index(%v) = %d, %v; want %d", p.Prefix, a, j, ok, i)
			}
		}
		if a, ok := p.Nth(n); ok && n != math.MaxUint64 {
			t.Fatalf("Pool(%s).Nth(Size) = %v, want none", p.Prefix, a)
		}
		if why := p.Reserved(p.Gateway()); why != "gateway address" {
			t.Fatalf("Pool(%s).Reserved(Gateway()) = %q", p.Prefix, why)
		}
		if why := p.Reserved(p.Prefix.Addr()); why != "network address" {
			t.Fatalf("Pool(%s).Reserved(network) = %q", p.Prefix, why)
		}
	})
}

func FuzzCheckStatic(f *testing.F) {
	f.Add("10.0.0.0/24", "10.0.0.7")
	f.Add("10.0.0.0/24", "10.0.0.255")
	f.Add("10.0.0.0/24", "::ffff:10.0.0.7")
	f.Add("2001:db8::/64", "2001:db8::1")
	f.Add("2001:db8::/48", "2001:db8:0:ffff::")
	f.Add("2001:db8::/64", "fe80::1%eth0")
	f.Fuzz(func(t *testing.T, cidr, s string) {
		p, err := ParsePool(cidr)
		if err != nil {
			return
		}
		a, err := p.CheckStatic(s)
		if err != nil {
			if _, ok := errors.AsType[*RuleError](err); !ok {
				t.Fatalf("CheckStatic(%q) error %T, want *RuleError", s, err)
			}
			return
		}
		if why := p.Reserved(a); why != "" {
			t.Fatalf("Pool(%s).CheckStatic(%q) = %v, which is reserved: %s", p.Prefix, s, a, why)
		}
		i, ok := p.Index(a)
		if !ok {
			if p.Size() == math.MaxUint64 {
				return // past the numbering of a huge pool
			}
			t.Fatalf("Pool(%s).Index(%v) = none for an accepted static address", p.Prefix, a)
		}
		if back, _ := p.Nth(i); back != a {
			t.Fatalf("Pool(%s).Nth(Index(%v)) = %v", p.Prefix, a, back)
		}
	})
}
