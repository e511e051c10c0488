package machine

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fleet is 3 control-plane machines in rack agg (cp1-cp3) and two compute
// racks of 4 (a1-a4 in r1, b1-b4 in r2), with the named machines down.
func fleet(down ...string) []Member {
	var ms []Member
	for i := 1; i <= 3; i++ {
		ms = append(ms, Member{Name: fmt.Sprintf("cp%d", i), Rack: "agg", Roles: []string{RoleControlPlane}})
	}
	for _, r := range []struct{ prefix, rack string }{{"a", "r1"}, {"b", "r2"}} {
		for i := 1; i <= 4; i++ {
			ms = append(ms, Member{Name: fmt.Sprintf("%s%d", r.prefix, i), Rack: r.rack, Roles: []string{RoleCompute}})
		}
	}
	for _, d := range down {
		for i := range ms {
			if ms[i].Name == d {
				ms[i].Down = true
			}
		}
	}
	return ms
}

// fiveControllers is fleet with cp4 and cp5 added.
func fiveControllers(down ...string) []Member {
	ms := append(fleet(), Member{Name: "cp4", Rack: "agg", Roles: []string{"Control-Plane"}}, Member{Name: "cp5", Rack: "agg", Roles: []string{RoleControlPlane, RoleCompute}})
	for _, d := range down {
		for i := range ms {
			if ms[i].Name == d {
				ms[i].Down = true
			}
		}
	}
	return ms
}

func TestCheckDisruption(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		target  string
		limit   int
		want    *Refusal
	}{
		{name: "compute machine, nothing down", members: fleet(), target: "a1", limit: 1},
		{name: "within the rack budget", members: fleet("a1"), target: "a2", limit: 2},
		{name: "no limit", members: fleet("a1", "a2", "a3"), target: "a4"},
		{name: "another rack's machines do not count", members: fleet("b1", "b2"), target: "a1", limit: 1},
		{name: "already down is allowed", members: fleet("a1", "a2", "cp1", "cp2"), target: "a2", limit: 1},
		{name: "a control-plane machine, the others up", members: fleet(), target: "cp1", limit: 1},
		{name: "a compute machine while the control plane has lost quorum", members: fleet("cp1", "cp2"), target: "a1", limit: 1},
		{name: "five controllers, one down", members: fiveControllers("cp1"), target: "cp4"},

		{name: "rack budget spent", members: fleet("a1"), target: "a2", limit: 1,
			want: &Refusal{Rule: RuleMaxUnavailable, Machines: []string{"a1"},
				Message: `cannot take "a2" down: rack "r1" allows at most 1 unavailable machines and 1 already are (a1)`}},
		{name: "rack budget of 2 spent", members: fleet("a1", "a3", "b1"), target: "a4", limit: 2,
			want: &Refusal{Rule: RuleMaxUnavailable, Machines: []string{"a1", "a3"},
				Message: `cannot take "a4" down: rack "r1" allows at most 2 unavailable machines and 2 already are (a1, a3)`}},
		{name: "control-plane quorum", members: fleet("cp1"), target: "cp2",
			want: &Refusal{Rule: RuleControlPlaneQuorum, Machines: []string{"cp1"},
				Message: `cannot take control-plane machine "cp2" down: 1 of the 3 control-plane machines would stay up (cp3) and a quorum needs 2; already down: cp1`}},
		{name: "quorum is checked before the rack budget", members: fleet("cp1"), target: "cp3", limit: 1,
			want: &Refusal{Rule: RuleControlPlaneQuorum, Machines: []string{"cp1"},
				Message: `cannot take control-plane machine "cp3" down: 1 of the 3 control-plane machines would stay up (cp2) and a quorum needs 2; already down: cp1`}},
		{name: "five controllers, two down; roles ignore case", members: fiveControllers("cp1", "cp5"), target: "cp4",
			want: &Refusal{Rule: RuleControlPlaneQuorum, Machines: []string{"cp1", "cp5"},
				Message: `cannot take control-plane machine "cp4" down: 2 of the 5 control-plane machines would stay up (cp2, cp3) and a quorum needs 3; already down: cp1, cp5`}},
		{name: "a single control-plane machine", members: []Member{{Name: "only", Rack: "r", Roles: []string{RoleControlPlane}}}, target: "only",
			want: &Refusal{Rule: RuleControlPlaneQuorum,
				Message: `cannot take control-plane machine "only" down: 0 of the 1 control-plane machines would stay up (none) and a quorum needs 1`}},
		{name: "unknown machine", members: fleet(), target: "z9", limit: 1,
			want: &Refusal{Rule: RuleUnknownMachine, Message: `cannot take "z9" down: it is not a machine of the cluster`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckDisruption(tc.members, tc.target, GuardPolicy{MaxUnavailablePerRack: tc.limit})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("CheckDisruption(%s, %q, %d) = %v, want %v\n(-want +got):\n%s", tc.name, tc.target, tc.limit, got, tc.want, diff)
			}
			if got != nil && got.Error() != got.Message {
				t.Errorf("Refusal.Error() = %q, want the message %q", got.Error(), got.Message)
			}
		})
	}
}

func TestList(t *testing.T) {
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprint("m", i))
	}
	if got, want := list(names), "m0, m1, m2, m3, m4, m5, m6, m7, m8, m9 and 2 more"; got != want {
		t.Errorf("list(12 names) = %q, want %q", got, want)
	}
}

// BenchmarkCheckDisruption asks about one control-plane machine in a
// cluster of 1000: 5 controllers and 995 compute machines in 63 racks.
func BenchmarkCheckDisruption(b *testing.B) {
	var ms []Member
	for i := range 5 {
		ms = append(ms, Member{Name: fmt.Sprint("cp", i), Rack: "agg", Roles: []string{RoleControlPlane}, Down: i == 0})
	}
	for i := range 995 {
		ms = append(ms, Member{Name: fmt.Sprint("m", i), Rack: fmt.Sprint("r", i/16), Roles: []string{RoleCompute}, Down: i%16 == 0})
	}
	policy := GuardPolicy{MaxUnavailablePerRack: 2}
	if r := CheckDisruption(ms, "cp4", policy); r != nil {
		b.Fatalf("CheckDisruption = %v, want nil", r)
	}
	for b.Loop() {
		CheckDisruption(ms, "cp4", policy)
	}
}

func TestReadyState(t *testing.T) {
	tests := []struct {
		status, power, cordon, liveness string
		want                            string
	}{
		{"Provisioned", "On", "Uncordoned", "", "True"},
		{"Provisioned", "On", "Uncordoned", "Ready", "True"},
		{"Provisioned", "On", "Uncordoned", "NotReady", "False"},
		{"Provisioned", "On", "Uncordoned", "Unreachable", "False"},
		{"Provisioned", "On", "Cordoned", "Ready", "False"},
		{"Provisioned", "Off", "Uncordoned", "Ready", "False"},
		{"Error", "On", "Uncordoned", "Ready", "False"},
	}
	for _, tt := range tests {
		if got := ReadyState(tt.status, tt.power, tt.cordon, tt.liveness); got != tt.want {
			t.Errorf("ReadyState(%s, %s, %s, %q) = %s, want %s", tt.status, tt.power, tt.cordon, tt.liveness, got, tt.want)
		}
	}
}
