package machine

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlanRollout(t *testing.T) {
	cp := []string{"control-plane"}
	members := []Member{
		{Name: "c3", Rack: "rack0", Roles: cp}, {Name: "c1", Rack: "rack0", Roles: cp}, {Name: "c2", Rack: "rack0", Roles: cp},
		{Name: "m10", Rack: "rack2"}, {Name: "m2", Rack: "rack2"}, {Name: "m1", Rack: "rack2"},
		{Name: "m3", Rack: "rack1"}, {Name: "m1a", Rack: "rack1"},
	}
	tests := []struct {
		name           string
		maxUnavailable int
		want           []RackIncrement
	}{
		{"whole racks", 0, []RackIncrement{
			{"rack0", [][]string{{"c1"}, {"c2"}, {"c3"}}}, // quorum of 3: one down at a time
			{"rack1", [][]string{{"m1a", "m3"}}},
			{"rack2", [][]string{{"m1", "m2", "m10"}}},
		}},
		{"two at a time", 2, []RackIncrement{
			{"rack0", [][]string{{"c1"}, {"c2"}, {"c3"}}},
			{"rack1", [][]string{{"m1a", "m3"}}},
			{"rack2", [][]string{{"m1", "m2"}, {"m10"}}},
		}},
		{"one at a time", 1, []RackIncrement{
			{"rack0", [][]string{{"c1"}, {"c2"}, {"c3"}}},
			{"rack1", [][]string{{"m1a"}, {"m3"}}},
			{"rack2", [][]string{{"m1"}, {"m2"}, {"m10"}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, PlanRollout(members, tt.maxUnavailable)); d != "" {
				t.Errorf("PlanRollout (-want +got):\n%s", d)
			}
		})
	}
	// Five control-plane machines can lose two.
	five := []Member{{Name: "c1", Rack: "r", Roles: cp}, {Name: "c2", Rack: "r", Roles: cp}, {Name: "c3", Rack: "r", Roles: cp},
		{Name: "c4", Rack: "r", Roles: cp}, {Name: "c5", Rack: "r", Roles: cp}, {Name: "w1", Rack: "r"}}
	want := []RackIncrement{{"r", [][]string{{"c1", "c2"}, {"c3", "c4"}, {"c5", "w1"}}}}
	if d := cmp.Diff(want, PlanRollout(five, 3)); d != "" {
		t.Errorf("PlanRollout of five control-plane machines (-want +got):\n%s", d)
	}
}

func TestNaturalCompare(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"m2", "m10", -1}, {"m10", "m2", 1}, {"m02", "m2", 0}, {"a", "b", -1}, {"rack1m1", "rack1m1", 0},
		{"m", "m1", -1}, {"r2m10", "r10m1", -1}, {"", "a", -1},
	} {
		if got := naturalCompare(tt.a, tt.b); got != tt.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestRackThreshold(t *testing.T) {
	outcomes := []Outcome{{Machine: "m1", OK: true}, {Machine: "m2", OK: true}, {Machine: "m3", Reason: "update failed"}}
	for _, tt := range []struct {
		typ   string
		value int
		met   bool
	}{
		{CountSuccess, 2, true}, {CountSuccess, 3, false}, {CountSuccess, 10, false},
		{PercentSuccess, 60, true}, {PercentSuccess, 70, false}, {PercentSuccess, 0, true},
	} {
		met, summary := RackThreshold(tt.typ, tt.value, len(outcomes)).Evaluate(outcomes)
		if met != tt.met {
			t.Errorf("%s %d: met = %v (%s), want %v", tt.typ, tt.value, met, summary, tt.met)
		}
	}
	// A count above the rack's size asks for the whole rack.
	if met, _ := RackThreshold(CountSuccess, 10, 2).Evaluate(outcomes[:2]); !met {
		t.Error("CountSuccess 10 of a rack of 2 that fully updated: not met")
	}
}

func TestValidateStrategy(t *testing.T) {
	for _, tt := range []struct {
		strategy, threshold   string
		value, maxU, waitMins int
		field                 string
	}{
		{"Rack", "PercentSuccess", 80, 2, 0, ""},
		{"PauseAfterRack", "CountSuccess", 1, 0, 60, ""},
		{"Zone", "CountSuccess", 1, 1, 0, "strategyType"},
		{"Rack", "Most", 1, 1, 0, "thresholdType"},
		{"Rack", "PercentSuccess", 101, 1, 0, "thresholdValue"},
		{"Rack", "CountSuccess", -1, 1, 0, "thresholdValue"},
		{"Rack", "CountSuccess", 1, -1, 0, "maxUnavailable"},
		{"Rack", "CountSuccess", 1, 1, 61, "waitTimeMinutes"},
	} {
		err := ValidateStrategy(tt.strategy, tt.threshold, tt.value, tt.maxU, tt.waitMins)
		field := ""
		if v, ok := err.(Violation); ok {
			field = v.Field
		}
		if field != tt.field {
			t.Errorf("ValidateStrategy(%+v) = %v, want a violation of %q", tt, err, tt.field)
		}
	}
}

func BenchmarkPlanRollout(b *testing.B) {
	var members []Member
	for r := range 64 {
		for m := range 16 {
			members = append(members, Member{Name: fmt.Sprintf("r%dm%d", r, m), Rack: fmt.Sprintf("rack%02d", r)})
		}
	}
	for b.Loop() {
		PlanRollout(members, 4)
	}
}
