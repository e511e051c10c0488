package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
)

// Pool is the addresses of one network prefix that workloads may get.
//
// The network address and the first host address (the gateway) are
// reserved, and for IPv4 the broadcast address too. The addresses in
// between are the assignable ones, numbered from 0: in 10.0.0.0/24,
// address 0 is 10.0.0.2 and address 252 is 10.0.0.254. The control plane
// stores which addresses are claimed; Pool only does the arithmetic.
type Pool struct {
	Prefix netip.Prefix
}

// ErrExhausted is returned (wrapped) by Pick when it finds no free
// address.
var ErrExhausted = errors.New("no free address")

// pickScanLimit caps how many addresses one Pick tries. An IPv4 /12 or
// smaller pool is scanned in full; in bigger pools (an IPv6 /64 has 2^64
// addresses) Pick gives up after this many taken addresses, which for a
// start index spread over the pool means the pool is crowded in practice.
const pickScanLimit = 1 << 20

// ParsePool parses a network's prefix strictly: CIDR form, no host bits,
// and room for at least one address besides the reserved ones (IPv4 up to
// /30, IPv6 up to /126). Errors are a *RuleError whose Field the caller
// sets.
func ParsePool(cidr string) (Pool, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return Pool{}, &RuleError{Reason: fmt.Sprintf("%q is not a CIDR prefix such as 10.0.0.0/24 or 2001:db8::/64", cidr)}
	}
	addr := prefix.Addr()
	if addr.Is4In6() {
		return Pool{}, &RuleError{Reason: fmt.Sprintf("%q is an IPv4-mapped IPv6 prefix; write the IPv4 prefix instead", cidr)}
	}
	if prefix.Masked() != prefix {
		return Pool{}, &RuleError{Reason: fmt.Sprintf("%q has host bits set; the network is %s", cidr, prefix.Masked())}
	}
	if addr.Is4() && prefix.Bits() > 30 {
		return Pool{}, &RuleError{Reason: fmt.Sprintf("%s is too small: an IPv4 pool needs a prefix length of at most 30, as the network, gateway and broadcast addresses are reserved", prefix)}
	}
	if addr.Is6() && prefix.Bits() > 126 {
		return Pool{}, &RuleError{Reason: fmt.Sprintf("%s is too small: an IPv6 pool needs a prefix length of at most 126, as the network and gateway addresses are reserved", prefix)}
	}
	return Pool{Prefix: prefix}, nil
}

// Gateway is the first host address, which the network's gateway holds.
// It is the zero Addr if the prefix has no host address.
func (p Pool) Gateway() netip.Addr {
	if !p.Prefix.IsValid() || p.hostBits() == 0 {
		return netip.Addr{}
	}
	return p.base().add(1).addr(p.is4())
}

// Reserved says why a cannot be assigned: "network address", "gateway
// address", "broadcast address" (IPv4 only) or "outside <prefix>". It is
// "" for an assignable address.
func (p Pool) Reserved(a netip.Addr) string {
	if !p.Prefix.Contains(a) {
		return "outside " + p.Prefix.Masked().String()
	}
	off := u128Of(a).sub(p.base())
	switch {
	case off == u128{}:
		return "network address"
	case off == u128{lo: 1}:
		return "gateway address"
	case p.is4() && off.lo == 1<<p.hostBits()-1:
		return "broadcast address"
	}
	return ""
}

// Size is the number of assignable addresses. It saturates at
// math.MaxUint64 for IPv6 pools bigger than a /64; Nth and Index number
// only the first math.MaxUint64 addresses of such a pool.
func (p Pool) Size() uint64 {
	if !p.Prefix.IsValid() {
		return 0
	}
	hb, r := p.hostBits(), p.reservedCount()
	switch {
	case hb > 64:
		return math.MaxUint64
	case hb == 64:
		return math.MaxUint64 - r + 1 // 2^64 - r
	}
	n := uint64(1) << hb
	if n <= r {
		return 0
	}
	return n - r
}

// Nth is the i-th assignable address, counting from 0; false if i is not
// below Size.
func (p Pool) Nth(i uint64) (netip.Addr, bool) {
	if i >= p.Size() {
		return netip.Addr{}, false
	}
	return p.base().add(2).add(i).addr(p.is4()), true
}

// Index is the inverse of Nth: a's number among the assignable
// addresses; false if a is reserved, outside the prefix or beyond the
// numbered addresses of a huge pool.
func (p Pool) Index(a netip.Addr) (uint64, bool) {
	if !p.Prefix.Contains(a) {
		return 0, false
	}
	off := u128Of(a).sub(p.base())
	if off.hi == 0 && off.lo < 2 {
		return 0, false // network or gateway
	}
	i := off.sub(u128{lo: 2})
	if i.hi != 0 || i.lo >= p.Size() {
		return 0, false // IPv4 broadcast, or past a huge pool's numbering
	}
	return i.lo, true
}

// Pick returns the first assignable address that taken does not claim,
// scanning up from index start (modulo Size) and wrapping round to index 0
// once. It tries at most 2^20 addresses, so in a pool bigger than that a
// crowded stretch after start can make it give up early; callers spread
// start (for example by hashing the workload's name) to avoid that. The
// error wraps ErrExhausted.
func (p Pool) Pick(taken func(netip.Addr) bool, start uint64) (netip.Addr, error) {
	n := p.Size()
	if n == 0 {
		return netip.Addr{}, &exhaustedError{prefix: p.Prefix.Masked()}
	}
	scan := min(n, pickScanLimit)
	i := start % n
	a, _ := p.Nth(i)
	for range scan {
		if !taken(a) {
			return a, nil
		}
		if i++; i == n {
			i = 0
			a, _ = p.Nth(0)
		} else {
			a = a.Next()
		}
	}
	return netip.Addr{}, &exhaustedError{prefix: p.Prefix.Masked(), start: start % n, scanned: scan, size: n}
}

// exhaustedError is Pick's failure: it wraps ErrExhausted and names the
// prefix, and the stretch scanned when that was not the whole pool.
type exhaustedError struct {
	prefix               netip.Prefix
	start, scanned, size uint64
}

func (e *exhaustedError) Error() string {
	if e.scanned < e.size {
		return fmt.Sprintf("no free address in %s among the %d addresses from index %d", e.prefix, e.scanned, e.start)
	}
	return fmt.Sprintf("no free address in %s", e.prefix)
}

func (e *exhaustedError) Unwrap() error { return ErrExhausted }

// CheckStatic parses an address a caller asks for by name and checks that
// the pool may assign it: same family, inside the prefix, not reserved.
// It returns the address in canonical form; errors are a *RuleError whose
// Field the caller sets. Whether the address is already claimed is the
// caller's question.
func (p Pool) CheckStatic(s string) (netip.Addr, error) {
	if !p.Prefix.IsValid() {
		return netip.Addr{}, &RuleError{Reason: "the network has no address prefix"}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, &RuleError{Reason: fmt.Sprintf("%q is not an IP address", s)}
	}
	if a.Zone() != "" {
		return netip.Addr{}, &RuleError{Reason: fmt.Sprintf("%q has a zone; a static address is written without one", s)}
	}
	if a.Is4In6() && p.is4() {
		return netip.Addr{}, &RuleError{Reason: fmt.Sprintf("%q is an IPv4-mapped IPv6 address; write it as %s", s, a.Unmap())}
	}
	if a.Is4() != p.is4() {
		return netip.Addr{}, &RuleError{Reason: fmt.Sprintf("%s is an %s address but the network %s is %s", a, family(a.Is4()), p.Prefix.Masked(), family(p.is4()))}
	}
	if !p.Prefix.Contains(a) {
		return netip.Addr{}, &RuleError{Reason: fmt.Sprintf("%s is outside the network %s", a, p.Prefix.Masked())}
	}
	if why := p.Reserved(a); why != "" {
		return netip.Addr{}, &RuleError{Reason: fmt.Sprintf("%s is the %s of %s and cannot be assigned", a, why, p.Prefix.Masked())}
	}
	return a, nil
}

func family(is4 bool) string {
	if is4 {
		return "IPv4"
	}
	return "IPv6"
}

func (p Pool) is4() bool { return p.Prefix.Addr().Is4() }

func (p Pool) hostBits() int { return p.Prefix.Addr().BitLen() - p.Prefix.Bits() }

// reservedCount is how many of the prefix's addresses are never
// assigned: network and gateway, and the IPv4 broadcast address.
func (p Pool) reservedCount() uint64 {
	if p.is4() {
		return 3
	}
	return 2
}

func (p Pool) base() u128 { return u128Of(p.Prefix.Masked().Addr()) }

// u128 is an address as a 128-bit number. IPv4 addresses are taken in
// their IPv4-mapped form, so one arithmetic serves both families: an
// offset within an IPv4 prefix never carries out of the low 32 bits.
type u128 struct{ hi, lo uint64 }

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (u u128) add(n uint64) u128 {
	lo, carry := bits.Add64(u.lo, n, 0)
	return u128{u.hi + carry, lo}
}

func (u u128) sub(v u128) u128 {
	lo, borrow := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, borrow)
	return u128{hi, lo}
}

func (u u128) addr(is4 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	a := netip.AddrFrom16(b)
	if is4 {
		return a.Unmap()
	}
	return a
}
