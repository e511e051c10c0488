package armexpr

import (
	"fmt"
	"math/big"
	"net/netip"
)

// cidrFunctions are parseCidr(), cidrSubnet() and cidrHost(), for IPv4
// and IPv6 networks.
var cidrFunctions = map[string]Func{
	"parseCidr":  Eager(1, 1, parseCIDR),
	"cidrSubnet": Eager(3, 3, cidrSubnet),
	"cidrHost":   Eager(2, 2, cidrHost),
}

func prefixArg(args []any, i int) (netip.Prefix, error) {
	s, err := stringArg(args, i)
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("'%s' is not a network in CIDR notation", s)
	}
	return p.Masked(), nil
}

// addrInt and intAddr convert between addresses and integers.
func addrInt(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }

func intAddr(n *big.Int, is4 bool) netip.Addr {
	size := 16
	if is4 {
		size = 4
	}
	b := make([]byte, size)
	n.FillBytes(b)
	a, _ := netip.AddrFromSlice(b)
	return a
}

// hostRange returns the first and last address of a network.
func hostRange(p netip.Prefix) (first, last *big.Int) {
	first = addrInt(p.Addr())
	hostBits := p.Addr().BitLen() - p.Bits()
	last = new(big.Int).Add(first, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(hostBits)), big.NewInt(1)))
	return first, last
}

func parseCIDR(args []any) (any, error) {
	p, err := prefixArg(args, 0)
	if err != nil {
		return nil, err
	}
	is4 := p.Addr().Is4()
	first, last := hostRange(p)
	mask := new(big.Int).Lsh(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(p.Bits())), big.NewInt(1)), uint(p.Addr().BitLen()-p.Bits()))
	out := map[string]any{
		"network": p.Addr().String(),
		"netmask": intAddr(mask, is4).String(),
		"cidr":    int64(p.Bits()),
	}
	firstUsable, lastUsable := first, last
	if is4 {
		out["broadcast"] = intAddr(last, true).String()
		if p.Bits() < 31 {
			firstUsable = new(big.Int).Add(first, big.NewInt(1))
			lastUsable = new(big.Int).Sub(last, big.NewInt(1))
		}
	}
	out["firstUsable"] = intAddr(firstUsable, is4).String()
	out["lastUsable"] = intAddr(lastUsable, is4).String()
	return out, nil
}

// cidrSubnet returns subnet number index of size newCIDR inside a network.
func cidrSubnet(args []any) (any, error) {
	p, err := prefixArg(args, 0)
	if err != nil {
		return nil, err
	}
	bits, err := intArg(args, 1)
	if err != nil {
		return nil, err
	}
	index, err := intArg(args, 2)
	if err != nil {
		return nil, err
	}
	if bits < int64(p.Bits()) || bits > int64(p.Addr().BitLen()) {
		return nil, fmt.Errorf("the new prefix length %d must be between %d and %d", bits, p.Bits(), p.Addr().BitLen())
	}
	count := new(big.Int).Lsh(big.NewInt(1), uint(bits-int64(p.Bits())))
	if index < 0 || big.NewInt(index).Cmp(count) >= 0 {
		return nil, fmt.Errorf("the subnet index %d is out of range: the network has %s subnets of /%d", index, count, bits)
	}
	start := new(big.Int).Add(addrInt(p.Addr()), new(big.Int).Lsh(big.NewInt(index), uint(int64(p.Addr().BitLen())-bits)))
	return netip.PrefixFrom(intAddr(start, p.Addr().Is4()), int(bits)).String(), nil
}

// cidrHost returns usable host number index (0-based) of a network.
func cidrHost(args []any) (any, error) {
	p, err := prefixArg(args, 0)
	if err != nil {
		return nil, err
	}
	index, err := intArg(args, 1)
	if err != nil {
		return nil, err
	}
	first, last := hostRange(p)
	if p.Addr().Is4() && p.Bits() < 31 {
		first.Add(first, big.NewInt(1))
		last.Sub(last, big.NewInt(1))
	}
	host := new(big.Int).Add(first, big.NewInt(index))
	if index < 0 || host.Cmp(last) > 0 {
		return nil, fmt.Errorf("the host index %d is out of the network's range", index)
	}
	return intAddr(host, p.Addr().Is4()).String(), nil
}
