package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// templateFunctions are the template functions a policy rule may call
// without an evaluation: the ARM functions less those Azure Policy
// forbids, plus ipRangeContains() and addDays(). An evaluation adds the
// functions of its context (parameters(), field(), current()...; see
// contextFunctions).
var templateFunctions = armexpr.Builtins().
	Without("copyIndex", "dateTimeAdd", "dateTimeFromEpoch", "dateTimeToEpoch", "deployment", "environment",
		"extensionResourceId", "resourceId", "subscriptionResourceId", "tenantResourceId", "managementGroupResourceId",
		"lambda", "lambdaVariables", "filter", "map", "reduce", "sort", "toObject", "groupBy", "mapValues",
		"managementGroup", "newGuid", "pickZones", "providers", "reference", "tenant", "variables", "utcNow").
	With(map[string]armexpr.Func{
		"ipRangeContains": armexpr.Eager(2, 2, ipRangeContains),
		"addDays":         armexpr.Eager(2, 2, addDays),
	})

// timeLayout is how policy functions print a date-time:
// yyyy-MM-ddTHH:mm:ss.fffffffZ.
const timeLayout = "2006-01-02T15:04:05.0000000Z"

// ipRangeContains reports whether the address range of its first argument
// holds all of its second; each is an address, a CIDR prefix or a range
// "first-last" of one family.
func ipRangeContains(args []any) (any, error) {
	outer, err := addrRange(args[0])
	if err != nil {
		return nil, err
	}
	inner, err := addrRange(args[1])
	if err != nil {
		return nil, err
	}
	if outer[0].Is4() != inner[0].Is4() {
		return nil, fmt.Errorf("the ranges %s and %s are of different address families", jsonText(args[0]), jsonText(args[1]))
	}
	return outer[0].Compare(inner[0]) <= 0 && inner[1].Compare(outer[1]) <= 0, nil
}

// addrRange parses an address, a prefix or "first-last" into its first
// and last address.
func addrRange(v any) ([2]netip.Addr, error) {
	s, ok := v.(string)
	if !ok {
		return [2]netip.Addr{}, fmt.Errorf("an IP range is a string, got %s", jsonText(v))
	}
	s = strings.TrimSpace(s)
	if first, last, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		b, err2 := netip.ParseAddr(strings.TrimSpace(last))
		if err := errors.Join(err1, err2); err != nil {
			return [2]netip.Addr{}, fmt.Errorf("the IP range %q is not valid: %w", s, err)
		}
		if a.Is4() != b.Is4() || b.Less(a) {
			return [2]netip.Addr{}, fmt.Errorf("the IP range %q is not valid: it must go up within one address family", s)
		}
		return [2]netip.Addr{a, b}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return [2]netip.Addr{}, fmt.Errorf("the CIDR %q is not valid: %w", s, err)
		}
		p = p.Masked()
		last := p.Addr().AsSlice()
		for i := p.Bits(); i < len(last)*8; i++ {
			last[i/8] |= 0x80 >> (i % 8)
		}
		end, _ := netip.AddrFromSlice(last)
		return [2]netip.Addr{p.Addr(), end}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return [2]netip.Addr{}, fmt.Errorf("the IP address %q is not valid: %w", s, err)
	}
	return [2]netip.Addr{a, a}, nil
}

// addDays adds a number of days to a date-time.
func addDays(args []any) (any, error) {
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("addDays takes a date-time string, got %s", jsonText(args[0]))
	}
	t, err := parseDateTime(s)
	if err != nil {
		return nil, err
	}
	days, ok := toFloat(args[1])
	if !ok {
		return nil, fmt.Errorf("addDays takes a number of days, got %s", jsonText(args[1]))
	}
	return t.Add(time.Duration(days * 24 * float64(time.Hour))).UTC().Format(timeLayout), nil
}

func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date-time", s)
}
