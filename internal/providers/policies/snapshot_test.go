package policies

import (
	"slices"
	"testing"

	"github.com/citadel-cloud/citadel/internal/policy"
)

// TestInScope checks which assignments apply where: at or above the
// resource on segment boundaries, not under a notScope, and only those
// whose definition can apply to the resource's type.
func TestInScope(t *testing.T) {
	aliases := policy.NewAliases(policy.CitadelAliases())
	definition := func(rule string) *policy.Definition {
		d, err := policy.ParseDefinition([]byte(`{"properties":{"mode":"All","policyRule":`+rule+`}}`), aliases)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	anyType := definition(`{"if":{"field":"location","exists":true},"then":{"effect":"deny"}}`)
	prefixes := definition(`{"if":{"field":"type","equals":"Microsoft.ManagedNetworkFabric/ipPrefixes"},"then":{"effect":"deny"}}`)
	s := newSnapshot()
	for _, a := range []struct {
		name, scope string
		def         *policy.Definition
		notScopes   []string
	}{
		{"root", "", anyType, nil},
		{"sub", "/subscriptions/s1", anyType, nil},
		{"sub-prefixes", "/subscriptions/s1", prefixes, nil},
		{"sub-but-rg2", "/subscriptions/s1", anyType, []string{"/subscriptions/s1/resourcegroups/rg2"}},
		{"other-sub", "/subscriptions/s10", anyType, nil},
		{"rg1", "/subscriptions/s1/resourcegroups/rg1", anyType, nil},
		{"rg10", "/subscriptions/s1/resourcegroups/rg10", anyType, nil},
		{"p1", "/subscriptions/s1/resourcegroups/rg1/providers/microsoft.managednetworkfabric/ipprefixes/p1", anyType, nil},
		{"rg3-but-p3", "/subscriptions/s1/resourcegroups/rg3", anyType,
			[]string{"/subscriptions/s1/resourcegroups/rg3/providers/microsoft.managednetworkfabric/ipprefixes/p3"}},
	} {
		compiled, err := policy.NewAssignment("/a/"+a.name, a.def, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.add(&assigned{scope: a.scope, notScopes: a.notScopes, compiled: compiled, enforce: true})
	}
	const prefixType = "Microsoft.ManagedNetworkFabric/ipPrefixes"
	for _, tc := range []struct {
		id, typ string
		want    []string
	}{
		{"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p1", prefixType,
			[]string{"p1", "rg1", "root", "sub", "sub-but-rg2", "sub-prefixes"}},
		{"/subscriptions/s1/resourceGroups/RG1/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p2", prefixType,
			[]string{"rg1", "root", "sub", "sub-but-rg2", "sub-prefixes"}},
		{"/subscriptions/s1/resourceGroups/rg2/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p1", prefixType,
			[]string{"root", "sub", "sub-prefixes"}},
		{"/subscriptions/s1/resourceGroups/rg1", "Microsoft.Resources/resourceGroups",
			[]string{"rg1", "root", "sub", "sub-but-rg2"}},
		{"/subscriptions/s1", "Microsoft.Resources/subscriptions", []string{"root", "sub", "sub-but-rg2"}},
		{"/subscriptions/s2/resourceGroups/rg1", "Microsoft.Resources/resourceGroups", []string{"root"}},
		// A notScope on one resource: its siblings keep the assignment.
		{"/subscriptions/s1/resourceGroups/rg3/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p3", prefixType,
			[]string{"root", "sub", "sub-but-rg2", "sub-prefixes"}},
		{"/subscriptions/s1/resourceGroups/rg3/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p4", prefixType,
			[]string{"rg3-but-p3", "root", "sub", "sub-but-rg2", "sub-prefixes"}},
		{"/subscriptions/s1/resourceGroups/rg3/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p3/children/c1", prefixType + "/children",
			[]string{"root", "sub", "sub-but-rg2"}},
	} {
		var got []string
		for range 2 { // the second time from the cache
			got = got[:0]
			for _, a := range s.inScope(tc.id, tc.typ).assigned {
				got = append(got, a.compiled.ID[len("/a/"):])
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("inScope(%s) = %v, want %v", tc.id, got, tc.want)
			}
		}
	}
}
