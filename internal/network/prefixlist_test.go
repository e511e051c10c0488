package network

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidatePrefixRules(t *testing.T) {
	rule := func(seq int64, prefix, cond, mask string) PrefixRule {
		return PrefixRule{Action: "permit", SequenceNumber: seq, NetworkPrefix: prefix, Condition: cond, SubnetMaskLength: mask}
	}
	tests := []struct {
		name      string
		in        []PrefixRule
		want      []PrefixRule
		wantField string
	}{
		{name: "plain v4", in: []PrefixRule{rule(10, "10.0.0.0/8", "", "")},
			want: []PrefixRule{{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "10.0.0.0/8"}}},
		{name: "v6 canonicalised", in: []PrefixRule{rule(1, "3FFE:FFFF:0:CD30::/126", "", "")},
			want: []PrefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "3ffe:ffff:0:cd30::/126"}}},
		{name: "ge within bounds", in: []PrefixRule{rule(1, "10.0.0.0/8", "greaterthanorequalto", "24")},
			want: []PrefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8", Condition: GreaterThanOrEqualTo, SubnetMaskLength: "24"}}},
		{name: "range", in: []PrefixRule{rule(1, "10.0.0.0/8", "Range", "16-24")},
			want: []PrefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8", Condition: Range, SubnetMaskLength: "16-24"}}},
		{name: "empty list", in: nil, wantField: "ipPrefixRules"},
		{name: "bad action", in: []PrefixRule{{Action: "Allow", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8"}}, wantField: "ipPrefixRules[0].action"},
		{name: "sequence zero", in: []PrefixRule{rule(0, "10.0.0.0/8", "", "")}, wantField: "ipPrefixRules[0].sequenceNumber"},
		{name: "sequence too big", in: []PrefixRule{rule(4294967296, "10.0.0.0/8", "", "")}, wantField: "ipPrefixRules[0].sequenceNumber"},
		{name: "duplicate sequence", in: []PrefixRule{rule(5, "10.0.0.0/8", "", ""), rule(5, "11.0.0.0/8", "", "")}, wantField: "ipPrefixRules[1].sequenceNumber"},
		{name: "not cidr", in: []PrefixRule{rule(1, "10.0.0.0", "", "")}, wantField: "ipPrefixRules[0].networkPrefix"},
		{name: "host bits", in: []PrefixRule{rule(1, "10.10.10.10/30", "", "")}, wantField: "ipPrefixRules[0].networkPrefix"},
		{name: "mask without condition", in: []PrefixRule{rule(1, "10.0.0.0/8", "", "24")}, wantField: "ipPrefixRules[0].subnetMaskLength"},
		{name: "condition without mask", in: []PrefixRule{rule(1, "10.0.0.0/8", "EqualTo", "")}, wantField: "ipPrefixRules[0].subnetMaskLength"},
		{name: "unknown condition", in: []PrefixRule{rule(1, "10.0.0.0/8", "Between", "9")}, wantField: "ipPrefixRules[0].condition"},
		{name: "mask shorter than prefix", in: []PrefixRule{rule(1, "10.10.10.8/30", "GreaterThanOrEqualTo", "10")}, wantField: "ipPrefixRules[0].subnetMaskLength"},
		{name: "mask longer than family", in: []PrefixRule{rule(1, "10.0.0.0/8", "LesserThanOrEqualTo", "33")}, wantField: "ipPrefixRules[0].subnetMaskLength"},
		{name: "v6 mask up to 128", in: []PrefixRule{rule(1, "2001:db8::/32", "LesserThanOrEqualTo", "128")},
			want: []PrefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "2001:db8::/32", Condition: LesserThanOrEqualTo, SubnetMaskLength: "128"}}},
		{name: "range backwards", in: []PrefixRule{rule(1, "10.0.0.0/8", "Range", "24-16")}, wantField: "ipPrefixRules[0].subnetMaskLength"},
		{name: "range not a range", in: []PrefixRule{rule(1, "10.0.0.0/8", "Range", "16")}, wantField: "ipPrefixRules[0].subnetMaskLength"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidatePrefixRules(tt.in)
			if tt.wantField != "" {
				re, ok := err.(*RuleError)
				if !ok || re.Field != tt.wantField {
					t.Fatalf("ValidatePrefixRules(%v) error = %v, want a RuleError on %s", tt.in, err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("ValidatePrefixRules(%v) error = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ValidatePrefixRules(%v) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func BenchmarkValidatePrefixRules(b *testing.B) {
	rules := make([]PrefixRule, 64)
	for i := range rules {
		rules[i] = PrefixRule{Action: "Permit", SequenceNumber: int64(i + 1), NetworkPrefix: "10.0.0.0/8", Condition: Range, SubnetMaskLength: "16-24"}
	}
	for b.Loop() {
		if _, err := ValidatePrefixRules(rules); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzValidatePrefixRules(f *testing.F) {
	f.Add("Permit", int64(10), "10.0.0.0/8", "Range", "16-24")
	f.Add("deny", int64(1), "3ffe:ffff:0:cd30::/64", "GreaterThanOrEqualTo", "96")
	f.Add("Permit", int64(4294967295), "0.0.0.0/0", "", "")
	f.Add("Permit", int64(5), "10.10.10.10/30", "EqualTo", " 31")
	f.Fuzz(func(t *testing.T, action string, seq int64, prefix, cond, mask string) {
		in := []PrefixRule{{Action: action, SequenceNumber: seq, NetworkPrefix: prefix, Condition: cond, SubnetMaskLength: mask}}
		out, err := ValidatePrefixRules(in)
		if err != nil {
			if _, ok := err.(*RuleError); !ok {
				t.Fatalf("ValidatePrefixRules(%v) error %T, want *RuleError", in, err)
			}
			return
		}
		// A canonical list validates to itself.
		again, err := ValidatePrefixRules(out)
		if err != nil {
			t.Fatalf("ValidatePrefixRules(%v) of its own output: %v", out, err)
		}
		if again[0] != out[0] {
			t.Fatalf("not canonical: %v then %v", out[0], again[0])
		}
	})
}
