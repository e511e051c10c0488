package authz

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// matrixOps are a representative operation per resource type, each with the
// resource it is checked on, relative to a group: "" is the group itself
// (and, for queries, the scope they list).
var matrixOps = []struct{ op, rel string }{
	{"Microsoft.Resources/subscriptions/resourceGroups/read", ""},
	{"Microsoft.Resources/subscriptions/resourceGroups/write", ""},
	{"Microsoft.Resources/subscriptions/resourceGroups/delete", ""},
	{"Microsoft.ManagedNetworkFabric/ipPrefixes/read", "/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/prefix1"},
	{"Microsoft.ManagedNetworkFabric/ipPrefixes/write", "/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/prefix1"},
	{"Microsoft.ManagedNetworkFabric/ipPrefixes/delete", "/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/prefix1"},
	{"Microsoft.NetworkCloud/bareMetalMachines/read", "/providers/Microsoft.NetworkCloud/bareMetalMachines/bmm1"},
	{"Microsoft.NetworkCloud/bareMetalMachines/write", "/providers/Microsoft.NetworkCloud/bareMetalMachines/bmm1"},
	{"Microsoft.NetworkCloud/bareMetalMachines/powerOff/action", "/providers/Microsoft.NetworkCloud/bareMetalMachines/bmm1"},
	{"Microsoft.NetworkCloud/bareMetalMachines/restart/action", "/providers/Microsoft.NetworkCloud/bareMetalMachines/bmm1"},
	{"Microsoft.NetworkCloud/virtualMachines/read", "/providers/Microsoft.NetworkCloud/virtualMachines/vm1"},
	{"Microsoft.NetworkCloud/virtualMachines/write", "/providers/Microsoft.NetworkCloud/virtualMachines/vm1"},
	{"Microsoft.NetworkCloud/virtualMachines/delete", "/providers/Microsoft.NetworkCloud/virtualMachines/vm1"},
	{"Microsoft.NetworkCloud/virtualMachines/start/action", "/providers/Microsoft.NetworkCloud/virtualMachines/vm1"},
	{"Microsoft.NetworkCloud/volumes/write", "/providers/Microsoft.NetworkCloud/volumes/vol1"},
	{"Microsoft.Authorization/roleAssignments/read", "/providers/Microsoft.Authorization/roleAssignments/5b2e7a4c-0000-0000-0000-000000000001"},
	{"Microsoft.Authorization/roleAssignments/write", "/providers/Microsoft.Authorization/roleAssignments/5b2e7a4c-0000-0000-0000-000000000001"},
	{"Microsoft.Authorization/roleAssignments/delete", "/providers/Microsoft.Authorization/roleAssignments/5b2e7a4c-0000-0000-0000-000000000001"},
	{"Microsoft.Authorization/locks/write", "/providers/Microsoft.Authorization/locks/lock1"},
	{"Microsoft.Insights/eventtypes/values/read", ""},
	{"Microsoft.PolicyInsights/policyStates/queryResults/action", ""},
}

// matrixScopes are where the role is assigned and where the operation is
// checked: on a resource in a group, or at the subscription itself.
var matrixScopes = []struct{ assigned, checked string }{
	{"sub", "rg1"},
	{"rg1", "rg1"},
	{"rg1", "rg2"},
	{"rg1", "sub"},
}

// matrix renders the decision of every built-in role × operation × scope.
func matrix(t *testing.T) string {
	t.Helper()
	scopes := map[string]string{"sub": sub, "rg1": rg1, "rg2": rg2}
	var b strings.Builder
	fmt.Fprintf(&b, `# Citadel RBAC matrix: each built-in role, assigned to one principal, ×
# a representative operation per resource type × where the role is assigned
# and where the operation is checked. Deny beats allow; the default is deny.
# Rewrite with: go test ./internal/authz -update
#
# sub = %s
# rg1 = %s
# rg2 = %s
# "checked rg1" is the operation on a resource in rg1 (on rg1 itself for
# resourceGroups, eventtypes and policyStates); "checked sub" is the
# operation at the subscription itself.
#
`, sub, rg1, rg2)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "# role\tassigned\tchecked\toperation\tdecision")
	who := Principal{ObjectID: alice}
	for _, r := range BuiltInRoles() {
		for _, op := range matrixOps {
			for _, sc := range matrixScopes {
				p := newPolicy(t, []Assignment{assign(alice, r.Name, scopes[sc.assigned])}, nil, nil)
				scope := scopes[sc.checked]
				if sc.checked != "sub" {
					scope += op.rel
				}
				decision := "deny"
				if p.Check(who, op.op, scope).Allowed {
					decision = "allow"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.RoleName, sc.assigned, sc.checked, op.op, decision)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestMatrixGolden(t *testing.T) {
	got := matrix(t)
	path := filepath.Join("testdata", "authz-matrix.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/authz -update to create it)", err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(got, "\n")); diff != "" {
		t.Errorf("%s mismatch (-want +got); run go test ./internal/authz -update if the change is intended:\n%s", path, diff)
	}
}

// TestMatrixSpotChecks pins a few decisions of the matrix independently of
// the golden file, so that -update cannot bless a regression in them.
func TestMatrixSpotChecks(t *testing.T) {
	got := map[string]string{}
	for _, line := range strings.Split(matrix(t), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || strings.HasPrefix(line, "#") {
			continue
		}
		n := len(f)
		role := strings.Join(f[:n-4], " ")
		got[role+"|"+f[n-4]+">"+f[n-3]+"|"+f[n-2]] = f[n-1]
	}
	tests := []struct{ key, want string }{
		{"Owner|sub>rg1|Microsoft.Authorization/roleAssignments/write", "allow"},
		{"Owner|rg1>rg2|Microsoft.NetworkCloud/virtualMachines/read", "deny"},
		{"Owner|rg1>sub|Microsoft.Resources/subscriptions/resourceGroups/read", "deny"},
		{"Contributor|sub>rg1|Microsoft.Authorization/roleAssignments/write", "deny"},
		{"Contributor|sub>rg1|Microsoft.Authorization/locks/write", "deny"},
		{"Contributor|rg1>rg1|Microsoft.NetworkCloud/bareMetalMachines/powerOff/action", "allow"},
		{"Reader|sub>rg1|Microsoft.NetworkCloud/virtualMachines/read", "allow"},
		{"Reader|sub>rg1|Microsoft.NetworkCloud/virtualMachines/write", "deny"},
		{"Reader|sub>rg1|Microsoft.PolicyInsights/policyStates/queryResults/action", "deny"},
		{"User Access Administrator|rg1>rg1|Microsoft.Authorization/locks/write", "allow"},
		{"User Access Administrator|rg1>rg1|Microsoft.NetworkCloud/virtualMachines/write", "deny"},
		{"Role Based Access Control Administrator|rg1>rg1|Microsoft.Authorization/roleAssignments/delete", "allow"},
		{"Role Based Access Control Administrator|rg1>rg1|Microsoft.Authorization/locks/write", "deny"},
		{"Bare Metal Machine Operator|sub>rg1|Microsoft.NetworkCloud/bareMetalMachines/restart/action", "allow"},
		{"Bare Metal Machine Operator|sub>rg1|Microsoft.NetworkCloud/virtualMachines/start/action", "deny"},
		{"Network Fabric Operator|sub>rg1|Microsoft.ManagedNetworkFabric/ipPrefixes/delete", "allow"},
		{"Network Fabric Operator|sub>rg1|Microsoft.NetworkCloud/bareMetalMachines/write", "deny"},
		{"Virtual Machine Contributor|rg1>rg1|Microsoft.NetworkCloud/virtualMachines/delete", "allow"},
		{"Virtual Machine Contributor|rg1>rg1|Microsoft.NetworkCloud/volumes/write", "allow"},
		{"Virtual Machine Contributor|rg1>rg1|Microsoft.NetworkCloud/bareMetalMachines/read", "deny"},
		{"Virtual Machine Contributor|rg1>rg2|Microsoft.NetworkCloud/virtualMachines/write", "deny"},
		{"Auditor|sub>rg1|Microsoft.PolicyInsights/policyStates/queryResults/action", "allow"},
		{"Auditor|sub>rg1|Microsoft.Insights/eventtypes/values/read", "allow"},
		{"Auditor|sub>rg1|Microsoft.NetworkCloud/virtualMachines/write", "deny"},
	}
	for _, tt := range tests {
		if got[tt.key] != tt.want {
			t.Errorf("matrix[%s] = %q, want %q", tt.key, got[tt.key], tt.want)
		}
	}
	if want := len(BuiltInRoles()) * len(matrixOps) * len(matrixScopes); len(got) != want {
		t.Errorf("matrix has %d decisions, want %d", len(got), want)
	}
}
