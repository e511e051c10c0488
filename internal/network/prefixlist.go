// Package network is the fabric's domain logic: prefix lists, and later IP
// address management, isolation domains and device configuration. It does
// no I/O; providers and controllers import it.
package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// PrefixRule is one entry of a prefix list (an ipPrefixes resource's
// ipPrefixRules): permit or deny the routes within NetworkPrefix whose
// length satisfies Condition and SubnetMaskLength.
type PrefixRule struct {
	Action           string `json:"action"`
	SequenceNumber   int64  `json:"sequenceNumber"`
	NetworkPrefix    string `json:"networkPrefix"`
	Condition        string `json:"condition,omitempty"`
	SubnetMaskLength string `json:"subnetMaskLength,omitempty"`
}

// The rule conditions (bounds on the matched prefix length).
const (
	EqualTo              = "EqualTo"
	GreaterThanOrEqualTo = "GreaterThanOrEqualTo"
	LesserThanOrEqualTo  = "LesserThanOrEqualTo"
	Range                = "Range"
)

// RuleError says which rule field is wrong and why.
type RuleError struct {
	Field  string // e.g. "ipPrefixRules[1].networkPrefix"
	Reason string
}

func (e *RuleError) Error() string { return e.Field + ": " + e.Reason }

// ValidatePrefixRules checks a prefix list and returns it in canonical
// form (enum casing fixed). Sequence numbers must be unique and in
// 1..4294967295, prefixes must be network addresses in CIDR form, and a
// condition's mask lengths must lie between the prefix's length and the
// family's maximum.
func ValidatePrefixRules(rules []PrefixRule) ([]PrefixRule, error) {
	if len(rules) == 0 {
		return nil, &RuleError{"ipPrefixRules", "at least one rule is required"}
	}
	out := make([]PrefixRule, len(rules))
	seen := make(map[int64]int, len(rules))
	for i, r := range rules {
		field := func(name string) string { return fmt.Sprintf("ipPrefixRules[%d].%s", i, name) }
		action, ok := oneOf(r.Action, "Permit", "Deny")
		if !ok {
			return nil, &RuleError{field("action"), fmt.Sprintf("must be Permit or Deny, not %q", r.Action)}
		}
		r.Action = action
		if r.SequenceNumber < 1 || r.SequenceNumber > 4294967295 {
			return nil, &RuleError{field("sequenceNumber"), fmt.Sprintf("must be between 1 and 4294967295, not %d", r.SequenceNumber)}
		}
		if j, dup := seen[r.SequenceNumber]; dup {
			return nil, &RuleError{field("sequenceNumber"), fmt.Sprintf("%d is already used by ipPrefixRules[%d]; sequence numbers must be unique", r.SequenceNumber, j)}
		}
		seen[r.SequenceNumber] = i
		prefix, err := netip.ParsePrefix(r.NetworkPrefix)
		if err != nil {
			return nil, &RuleError{field("networkPrefix"), fmt.Sprintf("%q is not a valid CIDR prefix such as 10.0.0.0/24 or 3ffe:ffff:0:cd30::/64", r.NetworkPrefix)}
		}
		if prefix.Masked() != prefix {
			return nil, &RuleError{field("networkPrefix"), fmt.Sprintf("%q has host bits set; the network prefix is %s", r.NetworkPrefix, prefix.Masked())}
		}
		r.NetworkPrefix = prefix.String()
		if err := checkCondition(&r, prefix, field); err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func checkCondition(r *PrefixRule, prefix netip.Prefix, field func(string) string) error {
	if r.Condition == "" {
		if r.SubnetMaskLength != "" {
			return &RuleError{field("subnetMaskLength"), "needs a condition (EqualTo, GreaterThanOrEqualTo, LesserThanOrEqualTo or Range)"}
		}
		return nil
	}
	cond, ok := oneOf(r.Condition, EqualTo, GreaterThanOrEqualTo, LesserThanOrEqualTo, Range)
	if !ok {
		return &RuleError{field("condition"), fmt.Sprintf("must be EqualTo, GreaterThanOrEqualTo, LesserThanOrEqualTo or Range, not %q", r.Condition)}
	}
	r.Condition = cond
	if r.SubnetMaskLength == "" {
		return &RuleError{field("subnetMaskLength"), fmt.Sprintf("is required with condition %s", cond)}
	}
	lo, hi := prefix.Bits(), prefix.Addr().BitLen()
	bound := func(s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < lo || n > hi {
			return 0, &RuleError{field("subnetMaskLength"), fmt.Sprintf("%q must be a mask length from %d (the prefix's) to %d", s, lo, hi)}
		}
		return n, nil
	}
	if cond != Range {
		n, err := bound(r.SubnetMaskLength)
		if err != nil {
			return err
		}
		r.SubnetMaskLength = strconv.Itoa(n)
		return nil
	}
	a, b, ok := strings.Cut(r.SubnetMaskLength, "-")
	if !ok {
		return &RuleError{field("subnetMaskLength"), fmt.Sprintf("%q must be a range such as %d-%d with condition Range", r.SubnetMaskLength, lo, hi)}
	}
	from, err := bound(a)
	if err != nil {
		return err
	}
	to, err := bound(b)
	if err != nil {
		return err
	}
	if from > to {
		return &RuleError{field("subnetMaskLength"), fmt.Sprintf("range %q runs backwards", r.SubnetMaskLength)}
	}
	r.SubnetMaskLength = fmt.Sprintf("%d-%d", from, to)
	return nil
}

// oneOf matches s against an enum case-insensitively and returns the
// canonical spelling.
func oneOf(s string, values ...string) (string, bool) {
	for _, v := range values {
		if strings.EqualFold(s, v) {
			return v, true
		}
	}
	return "", false
}
