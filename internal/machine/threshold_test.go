package machine

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestThresholdValidate(t *testing.T) {
	tests := []struct {
		in   Threshold
		want error
	}{
		{Threshold{CountSuccess, PerCluster, 0}, nil},
		{Threshold{PercentSuccess, PerRack, 100}, nil},
		{Threshold{"countsuccess", "perrack", 1000}, nil},
		{Threshold{"Count", PerCluster, 1}, Violation{"type", `"Count" is not CountSuccess or PercentSuccess`}},
		{Threshold{CountSuccess, "PerRow", 1}, Violation{"grouping", `"PerRow" is not PerCluster or PerRack`}},
		{Threshold{CountSuccess, PerCluster, -1}, Violation{"value", "-1 is negative"}},
		{Threshold{PercentSuccess, PerCluster, 101}, Violation{"value", "101 percent is more than 100"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			err := tc.in.Validate()
			if tc.want == nil {
				if err != nil {
					t.Errorf("Validate(%v) = %v, want nil", tc.in, err)
				}
				return
			}
			v, ok := errors.AsType[Violation](err)
			if !ok || !cmp.Equal(error(v), tc.want) {
				t.Errorf("Validate(%v) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}

func TestThresholdEvaluate(t *testing.T) {
	// Rack r1: 4 of 4; r2: 3 of 4 (b3 failed); r3: 2 of 4 (c1, c2 failed).
	outcomes := []Outcome{
		{"a1", "r1", true, ""}, {"a2", "r1", true, ""}, {"a3", "r1", true, ""}, {"a4", "r1", true, ""},
		{"b1", "r2", true, ""}, {"b2", "r2", true, ""}, {"b3", "r2", false, "BMC unreachable"}, {"b4", "r2", true, ""},
		{"c1", "r3", false, "memory: 480 GiB enabled, the SKU needs 512 GiB"}, {"c2", "r3", false, ""}, {"c3", "r3", true, ""}, {"c4", "r3", true, ""},
	}
	tests := []struct {
		t        Threshold
		outcomes []Outcome
		met      bool
		summary  string
	}{
		{Threshold{CountSuccess, PerCluster, 9}, outcomes, true, "9 of 12 machines (75%) succeeded, CountSuccess needs 9"},
		{Threshold{CountSuccess, PerCluster, 10}, outcomes, false,
			"9 of 12 machines (75%) succeeded, CountSuccess needs 10; failed: b3 (BMC unreachable), c1 (memory: 480 GiB enabled, the SKU needs 512 GiB), c2"},
		{Threshold{PercentSuccess, PerCluster, 75}, outcomes, true, "9 of 12 machines (75%) succeeded, PercentSuccess needs 75%"},
		{Threshold{PercentSuccess, PerCluster, 76}, outcomes, false,
			"9 of 12 machines (75%) succeeded, PercentSuccess needs 76%; failed: b3 (BMC unreachable), c1 (memory: 480 GiB enabled, the SKU needs 512 GiB), c2"},
		{Threshold{CountSuccess, PerRack, 2}, outcomes, true,
			`every rack met the threshold (CountSuccess needs 2): rack "r1" 4 of 4 machines (100%), rack "r2" 3 of 4 machines (75%), rack "r3" 2 of 4 machines (50%)`},
		{Threshold{CountSuccess, PerRack, 3}, outcomes, false,
			`rack "r3": 2 of 4 machines (50%) succeeded, CountSuccess needs 3; failed: c1 (memory: 480 GiB enabled, the SKU needs 512 GiB), c2`},
		{Threshold{PercentSuccess, PerRack, 80}, outcomes, false,
			`rack "r2": 3 of 4 machines (75%) succeeded, PercentSuccess needs 80%; failed: b3 (BMC unreachable); ` +
				`rack "r3": 2 of 4 machines (50%) succeeded, PercentSuccess needs 80%; failed: c1 (memory: 480 GiB enabled, the SKU needs 512 GiB), c2`},
		{Threshold{"percentsuccess", "perrack", 50}, outcomes, true,
			`every rack met the threshold (PercentSuccess needs 50%): rack "r1" 4 of 4 machines (100%), rack "r2" 3 of 4 machines (75%), rack "r3" 2 of 4 machines (50%)`},
		{Threshold{CountSuccess, PerCluster, 0}, nil, true, "0 of 0 machines succeeded, CountSuccess needs 0"},
		{Threshold{CountSuccess, PerRack, 1}, nil, false, "0 of 0 machines succeeded, CountSuccess needs 1; failed: none"},
		{Threshold{PercentSuccess, PerRack, 100}, nil, true, "0 of 0 machines succeeded, PercentSuccess needs 100%"},
		{Threshold{"Count", PerCluster, 1}, outcomes, false, `invalid threshold: type: "Count" is not CountSuccess or PercentSuccess`},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.t), func(t *testing.T) {
			met, summary := tc.t.Evaluate(tc.outcomes)
			if met != tc.met || summary != tc.summary {
				t.Errorf("%v.Evaluate(%d outcomes) = %v, %q, want %v, %q", tc.t, len(tc.outcomes), met, summary, tc.met, tc.summary)
			}
		})
	}
}
