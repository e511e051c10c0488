package arm

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	nc  = "Microsoft.NetworkCloud"
	mnf = "Microsoft.ManagedNetworkFabric"
)

func TestParsePath(t *testing.T) {
	rg := ID{Subscription: "s", ResourceGroup: "rg"}
	bmm := ID{Subscription: "s", ResourceGroup: "rg", Namespace: nc, Types: []string{"bareMetalMachines"}, Names: []string{"b1"}}
	tests := []struct {
		path string
		want Path
	}{
		{"", Path{}},
		{"/", Path{}},
		{"//", Path{}},
		{"/tenants", Path{Tail: []string{"tenants"}}},
		{"/subscriptions", Path{Tail: []string{"subscriptions"}}},
		{"/subscriptions/", Path{Tail: []string{"subscriptions"}}},
		{"/subscriptions/s", Path{ID: ID{Subscription: "s"}}},
		{"subscriptions/s", Path{ID: ID{Subscription: "s"}}},
		{"/SUBSCRIPTIONS/s/", Path{ID: ID{Subscription: "s"}}},
		{"/subscriptions/s/resourceGroups", Path{ID: ID{Subscription: "s"}, Tail: []string{"resourceGroups"}}},
		{"/subscriptions/s/resourcegroups", Path{ID: ID{Subscription: "s"}, Tail: []string{"resourcegroups"}}},
		{"/subscriptions/s/resourcegroups/rg", Path{ID: rg}},
		{"/subscriptions/s/RESOURCEGROUPS/rg/", Path{ID: rg}},
		{"/subscriptions/s/resourceGroups/rg/resources", Path{ID: rg, Tail: []string{"resources"}}},
		{"/subscriptions/s/locations", Path{ID: ID{Subscription: "s"}, Tail: []string{"locations"}}},
		{"/subscriptions/s/resources", Path{ID: ID{Subscription: "s"}, Tail: []string{"resources"}}},
		{"/subscriptions/s/providers", Path{ID: ID{Subscription: "s"}, Tail: []string{"providers"}}},
		{"/subscriptions/s/providers/Microsoft.X", Path{ID: ID{Subscription: "s", Namespace: "Microsoft.X"}}},
		{"/subscriptions/s/providers/Microsoft.X/register", Path{ID: ID{Subscription: "s", Namespace: "Microsoft.X"}, Tail: []string{"register"}}},
		{"/subscriptions/s/operationresults/abc", Path{ID: ID{Subscription: "s"}, Tail: []string{"operationresults", "abc"}}},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/ipPrefixes", Path{
			ID:   ID{Subscription: "s", ResourceGroup: "rg", Namespace: "NS"},
			Tail: []string{"ipPrefixes"},
		}},
		{"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/bareMetalMachines/b1", Path{ID: bmm}},
		{"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/bareMetalMachines/b1/powerOff", Path{ID: bmm, Tail: []string{"powerOff"}}},
		// az: "providers/NS//type/x" and a trailing slash.
		{"/subscriptions/s/resourcegroups/rg/providers/" + nc + "//bareMetalMachines/b1/", Path{ID: bmm}},
		{"///subscriptions//s//resourceGroups//rg//providers//" + nc + "//bareMetalMachines//b1//", Path{ID: bmm}},
		{"/Subscriptions/s/ResourceGroups/rg/Providers/" + nc + "/bareMetalMachines/b1", Path{ID: bmm}},
		{"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/l3IsolationDomains/d1/internalNetworks/n1", Path{ID: ID{
			Subscription: "s", ResourceGroup: "rg", Namespace: nc,
			Types: []string{"l3IsolationDomains", "internalNetworks"}, Names: []string{"d1", "n1"},
		}}},
		{"/subscriptions/s/providers/" + nc + "/locations/local/operationStatuses/op1", Path{ID: ID{
			Subscription: "s", Namespace: nc,
			Types: []string{"locations", "operationStatuses"}, Names: []string{"local", "op1"},
		}}},
		{"/subscriptions/s/providers/" + nc + "/rackSkus", Path{ID: ID{Subscription: "s", Namespace: nc}, Tail: []string{"rackSkus"}}},
		{"/providers/Microsoft.Authorization/operations", Path{ID: ID{Namespace: "Microsoft.Authorization"}, Tail: []string{"operations"}}},
		{"/providers/Microsoft.Authorization/roleDefinitions/r1", Path{ID: ID{
			Namespace: "Microsoft.Authorization", Types: []string{"roleDefinitions"}, Names: []string{"r1"},
		}}},
		{"/providers", Path{Tail: []string{"providers"}}},
		// Extension resources.
		{"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/bareMetalMachines/b1/providers/Microsoft.Authorization/roleAssignments/a1", Path{ID: ID{
			Scope: &bmm, Subscription: "s", ResourceGroup: "rg", Namespace: "Microsoft.Authorization",
			Types: []string{"roleAssignments"}, Names: []string{"a1"},
		}}},
		{"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/bareMetalMachines/b1/PROVIDERS/Microsoft.Authorization/roleAssignments", Path{
			ID:   ID{Scope: &bmm, Subscription: "s", ResourceGroup: "rg", Namespace: "Microsoft.Authorization"},
			Tail: []string{"roleAssignments"},
		}},
		{"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/bareMetalMachines/b1/providers", Path{ID: bmm, Tail: []string{"providers"}}},
		{"/subscriptions/s/providers/Microsoft.X/providers/Microsoft.Y", Path{
			ID:   ID{Subscription: "s", Namespace: "Microsoft.X"},
			Tail: []string{"providers", "Microsoft.Y"},
		}},
		// Extension on a group is an ordinary ID with the group as scope.
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/policyAssignments/pa1", Path{ID: ID{
			Subscription: "s", ResourceGroup: "rg", Namespace: "Microsoft.Authorization",
			Types: []string{"policyAssignments"}, Names: []string{"pa1"},
		}}},
		// Deployments list with az's trailing slash.
		{"/subscriptions/s/resourcegroups/rg/providers/Microsoft.Resources/deployments/", Path{
			ID:   ID{Subscription: "s", ResourceGroup: "rg", Namespace: "Microsoft.Resources"},
			Tail: []string{"deployments"},
		}},
		// Unicode group names and names with odd but legal characters.
		{"/subscriptions/s/resourceGroups/grüppe_(1).x/providers/NS/t/a b.c=d", Path{ID: ID{
			Subscription: "s", ResourceGroup: "grüppe_(1).x", Namespace: "NS", Types: []string{"t"}, Names: []string{"a b.c=d"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := ParsePath(tt.path)
			if err != nil {
				t.Fatalf("ParsePath(%q) error = %v", tt.path, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePath(%q) mismatch (-want +got):\n%s", tt.path, diff)
			}
		})
	}
}

func TestParsePathErrors(t *testing.T) {
	long := strings.Repeat("a", 261)
	tests := []struct {
		path string
		code string
		msg  string // a substring of the message
	}{
		{"/subscriptions/s/resourceGroups/rg.", CodeInvalidResourceGroupName, "'rg.'"},
		{"/subscriptions/s/resourceGroups/a b", CodeInvalidResourceGroupName, "' '"},
		{"/subscriptions/s/resourceGroups/" + strings.Repeat("g", 91), CodeInvalidResourceGroupName, "limit is 90"},
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft_X/t/n", CodeInvalidResourceNamespace, "'Microsoft_X'"},
		{"/subscriptions/s/providers/Micro-soft", CodeInvalidResourceNamespace, "'Micro-soft'"},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/a:b", CodeInvalidResourceName, "':'"},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/a%b", CodeInvalidResourceName, "'%'"},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/a?b", CodeInvalidResourceName, "'?'"},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/a\\b", CodeInvalidResourceName, "'\\'"},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/a<b", CodeInvalidResourceName, "'<'"},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/a\x01b", CodeInvalidResourceName, "U+0001"},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/" + long, CodeInvalidResourceName, "limit is 260"},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t-1/n", CodeInvalidResourceType, "'t-1'"},
		{"/providers/NS/t/n/providers/N_S/x/y", CodeInvalidResourceNamespace, "'N_S'"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := ParsePath(tt.path)
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("ParsePath(%q) error = %v, want *Error", tt.path, err)
			}
			if e.Status != 400 || e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("ParsePath(%q) = %d %v, want 400 %s containing %q", tt.path, e.Status, e, tt.code, tt.msg)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String of the result
		wantErr string // error code
	}{
		{"/", "/", ""},
		{"", "", CodeInvalidResourceID},
		{"/subscriptions/s", "/subscriptions/s", ""},
		{"/subscriptions/s/resourcegroups/RG", "/subscriptions/s/resourceGroups/RG", ""},
		{"subscriptions/s/resourcegroups/rg/providers/NS/t/n/", "/subscriptions/s/resourceGroups/rg/providers/NS/t/n", ""},
		{"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
			"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7", ""},
		{"/subscriptions/s/providers/Microsoft.X", "/subscriptions/s/providers/Microsoft.X", ""},
		{"/subscriptions/s/resourceGroups", "", CodeInvalidResourceID},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t", "", CodeInvalidResourceID},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/n/powerOff", "", CodeInvalidResourceID},
		{"/subscriptions/s/resourceGroups/rg./providers/NS/t/n", "", CodeInvalidResourceGroupName},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			id, err := ParseID(tt.in)
			if tt.wantErr != "" {
				if e, ok := errors.AsType[*Error](err); !ok || e.Code != tt.wantErr || e.Status != 400 {
					t.Errorf("ParseID(%q) = %v, %v; want error %s", tt.in, id, err, tt.wantErr)
				}
				return
			}
			if err != nil || id.String() != tt.want {
				t.Errorf("ParseID(%q) = %v, %v; want %v", tt.in, id, err, tt.want)
			}
		})
	}
}

func mustParseID(t testing.TB, s string) ID {
	t.Helper()
	id, err := ParseID(s)
	if err != nil {
		t.Fatalf("ParseID(%q): %v", s, err)
	}
	return id
}

func TestIDAccessors(t *testing.T) {
	ext := "/subscriptions/S/resourceGroups/RG/providers/" + nc + "/bareMetalMachines/B1/providers/Microsoft.Authorization/roleAssignments/A1"
	tests := []struct {
		id, str, key, typ, name, parent, group string
		zero                                   bool
	}{
		{"/", "/", "/", "", "", "", "/", true},
		{"/subscriptions/S", "/subscriptions/S", "/subscriptions/s", "Microsoft.Resources/subscriptions", "S", "/", "/", false},
		{"/SUBSCRIPTIONS/S/resourcegroups/RG", "/subscriptions/S/resourceGroups/RG", "/subscriptions/s/resourcegroups/rg",
			"Microsoft.Resources/resourceGroups", "RG", "/subscriptions/S", "/subscriptions/S/resourceGroups/RG", false},
		{"/subscriptions/s/providers/Microsoft.X", "/subscriptions/s/providers/Microsoft.X", "/subscriptions/s/providers/microsoft.x",
			"Microsoft.X", "Microsoft.X", "/subscriptions/s", "/", false},
		{"/subscriptions/s/resourceGroups/rg/providers/" + mnf + "/ipPrefixes/P1",
			"/subscriptions/s/resourceGroups/rg/providers/" + mnf + "/ipPrefixes/P1",
			"/subscriptions/s/resourcegroups/rg/providers/microsoft.managednetworkfabric/ipprefixes/p1",
			mnf + "/ipPrefixes", "P1", "/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg", false},
		{"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/l3IsolationDomains/d1/internalNetworks/n1",
			"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/l3IsolationDomains/d1/internalNetworks/n1",
			"/subscriptions/s/resourcegroups/rg/providers/microsoft.networkcloud/l3isolationdomains/d1/internalnetworks/n1",
			nc + "/l3IsolationDomains/internalNetworks", "n1",
			"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/l3IsolationDomains/d1", "/subscriptions/s/resourceGroups/rg", false},
		{ext, ext, strings.ToLower(ext), "Microsoft.Authorization/roleAssignments", "A1",
			"/subscriptions/S/resourceGroups/RG/providers/" + nc + "/bareMetalMachines/B1", "/subscriptions/S/resourceGroups/RG", false},
		{"/providers/Microsoft.Authorization/roleDefinitions/R", "/providers/Microsoft.Authorization/roleDefinitions/R",
			"/providers/microsoft.authorization/roledefinitions/r", "Microsoft.Authorization/roleDefinitions", "R", "/", "/", false},
		{"/subscriptions/s/resourceGroups/Grüppe/providers/NS/t/ÄÖ", "/subscriptions/s/resourceGroups/Grüppe/providers/NS/t/ÄÖ",
			"/subscriptions/s/resourcegroups/grüppe/providers/ns/t/äö", "NS/t", "ÄÖ", "/subscriptions/s/resourceGroups/Grüppe",
			"/subscriptions/s/resourceGroups/Grüppe", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			id := mustParseID(t, tt.id)
			if got := id.String(); got != tt.str {
				t.Errorf("ID(%q).String() = %q, want %q", tt.id, got, tt.str)
			}
			if got := id.Key(); got != tt.key {
				t.Errorf("ID(%q).Key() = %q, want %q", tt.id, got, tt.key)
			}
			if got := id.Type(); got != tt.typ {
				t.Errorf("ID(%q).Type() = %q, want %q", tt.id, got, tt.typ)
			}
			if got := id.Name(); got != tt.name {
				t.Errorf("ID(%q).Name() = %q, want %q", tt.id, got, tt.name)
			}
			if got := id.IsZero(); got != tt.zero {
				t.Errorf("ID(%q).IsZero() = %v, want %v", tt.id, got, tt.zero)
			}
			if got := id.ResourceGroupID().String(); got != tt.group {
				t.Errorf("ID(%q).ResourceGroupID() = %q, want %q", tt.id, got, tt.group)
			}
			p, ok := id.Parent()
			if got := p.String(); ok != (tt.parent != "") || ok && got != tt.parent {
				t.Errorf("ID(%q).Parent() = %q, %v, want %q", tt.id, got, ok, tt.parent)
			}
		})
	}
}

func TestParentChain(t *testing.T) {
	id := mustParseID(t, "/subscriptions/s/resourceGroups/rg/providers/NS/a/1/b/2/providers/X.Y/c/3")
	want := []string{
		"/subscriptions/s/resourceGroups/rg/providers/NS/a/1/b/2/providers/X.Y/c/3",
		"/subscriptions/s/resourceGroups/rg/providers/NS/a/1/b/2",
		"/subscriptions/s/resourceGroups/rg/providers/NS/a/1",
		"/subscriptions/s/resourceGroups/rg",
		"/subscriptions/s",
		"/",
	}
	var got []string
	for ok := true; ok; id, ok = id.Parent() {
		got = append(got, id.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parent chain mismatch (-want +got):\n%s", diff)
	}
}

func TestContains(t *testing.T) {
	tests := []struct {
		id, other string
		want      bool
	}{
		{"/", "/subscriptions/s", true},
		{"/", "/", true},
		{"/subscriptions/s", "/subscriptions/s", true},
		{"/subscriptions/s", "/SUBSCRIPTIONS/S/resourcegroups/rg", true},
		{"/subscriptions/s", "/subscriptions/s2", false},
		{"/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/RG/providers/NS/t/n/c/m", true},
		{"/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg2/providers/NS/t/n", false},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/n", "/subscriptions/s/resourceGroups/rg/providers/NS/t/n/providers/Microsoft.Authorization/roleAssignments/a", true},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/n", "/subscriptions/s/resourceGroups/rg", false},
		{"/subscriptions/s/resourceGroups/rg/providers/NS/t/n", "/subscriptions/s/resourceGroups/rg/providers/NS/t/n2", false},
		{"/subscriptions/s", "/", false},
	}
	for _, tt := range tests {
		t.Run(tt.id+" "+tt.other, func(t *testing.T) {
			id, other := mustParseID(t, tt.id), mustParseID(t, tt.other)
			if got := id.Contains(other); got != tt.want {
				t.Errorf("ID(%q).Contains(%q) = %v, want %v", tt.id, tt.other, got, tt.want)
			}
		})
	}
}

func TestChild(t *testing.T) {
	tests := []struct {
		id, typ, name, want string
	}{
		{"/subscriptions/s/resourceGroups/rg", nc + "/racks", "r1", "/subscriptions/s/resourceGroups/rg/providers/" + nc + "/racks/r1"},
		{"/subscriptions/s", nc + "/rackSkus", "k", "/subscriptions/s/providers/" + nc + "/rackSkus/k"},
		{"/", "Microsoft.Authorization/roleDefinitions", "r", "/providers/Microsoft.Authorization/roleDefinitions/r"},
		{"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/l3IsolationDomains/d1", "internalNetworks", "n1",
			"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/l3IsolationDomains/d1/internalNetworks/n1"},
		{"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/bareMetalMachines/b1", "Microsoft.Authorization/roleAssignments", "a",
			"/subscriptions/s/resourceGroups/rg/providers/" + nc + "/bareMetalMachines/b1/providers/Microsoft.Authorization/roleAssignments/a"},
		{"/subscriptions/s/providers/" + nc, "locations", "local", "/subscriptions/s/providers/" + nc + "/locations/local"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			id := mustParseID(t, tt.id)
			got := id.Child(tt.typ, tt.name)
			if got.String() != tt.want {
				t.Errorf("ID(%q).Child(%q, %q) = %q, want %q", tt.id, tt.typ, tt.name, got, tt.want)
			}
			// The result must be what parsing its string gives.
			if diff := cmp.Diff(mustParseID(t, tt.want), got); diff != "" {
				t.Errorf("ID(%q).Child(%q, %q) mismatch with parsed ID (-parsed +got):\n%s", tt.id, tt.typ, tt.name, diff)
			}
			if id.String() != mustParseID(t, tt.id).String() {
				t.Errorf("Child changed its receiver to %q", id)
			}
		})
	}
}

// Child must not write into a parent's backing array shared with a sibling.
func TestChildDoesNotAlias(t *testing.T) {
	parent := ID{Subscription: "s", ResourceGroup: "rg", Namespace: "NS",
		Types: make([]string, 1, 4), Names: make([]string, 1, 4)}
	parent.Types[0], parent.Names[0] = "a", "1"
	x := parent.Child("b", "x")
	y := parent.Child("b", "y")
	if x.Name() != "x" || y.Name() != "y" {
		t.Errorf("siblings = %q, %q; want names x, y", x, y)
	}
}

func TestValidateNames(t *testing.T) {
	tests := []struct {
		name     string
		rg, res  bool // valid as a group name, as a resource name
		failCode string
	}{
		{"rg1", true, true, ""},
		{"my-rg_(1).a", true, true, ""},
		{"日本語", true, true, ""},
		{"rg.", false, true, ""},
		{"a b", false, true, ""},
		{"a:b", false, false, ""},
		{"a/b", false, false, ""},
		{"a&b", false, false, ""},
		{"a\tb", false, false, ""},
		{"", false, false, ""},
		{strings.Repeat("x", 90), true, true, ""},
		{strings.Repeat("x", 91), false, true, ""},
		{strings.Repeat("é", 260), false, true, ""},
		{strings.Repeat("é", 261), false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateResourceGroupName(tt.name)
			if (err == nil) != tt.rg {
				t.Errorf("ValidateResourceGroupName(%q) = %v, want valid %v", tt.name, err, tt.rg)
			}
			if e, ok := errors.AsType[*Error](err); err != nil && (!ok || e.Code != CodeInvalidResourceGroupName) {
				t.Errorf("ValidateResourceGroupName(%q) = %v, want code %s", tt.name, err, CodeInvalidResourceGroupName)
			}
			err = ValidateResourceName(tt.name)
			if (err == nil) != tt.res {
				t.Errorf("ValidateResourceName(%q) = %v, want valid %v", tt.name, err, tt.res)
			}
			if e, ok := errors.AsType[*Error](err); err != nil && (!ok || e.Code != CodeInvalidResourceName) {
				t.Errorf("ValidateResourceName(%q) = %v, want code %s", tt.name, err, CodeInvalidResourceName)
			}
		})
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"", "/", "//", "/tenants", "/subscriptions", "/subscriptions/s/resourcegroups/rg",
		"/subscriptions/s/resourceGroups/rg/providers/Microsoft.NetworkCloud//bareMetalMachines/b1/powerOff",
		"/subscriptions/s/providers/Microsoft.NetworkCloud/locations/local/operationStatuses/op1",
		"/subscriptions/s/resourceGroups/rg/providers/NS/t/n/providers/Microsoft.Authorization/roleAssignments/a",
		"/providers/Microsoft.Authorization/roleDefinitions/r", "/subscriptions/s/providers/X/providers/Y",
		"/subscriptions/providers/resourceGroups/providers/providers/P/providers/q",
		"/subscriptions/S/resourceGroups/Grüppe/providers/NS/t/ÄÖ", "subscriptions/s/operationresults/x/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("ParsePath(%q) error %T, want *Error", s, err)
			}
			return
		}
		id := p.ID
		if got, want := id.Key(), strings.ToLower(id.String()); got != want {
			t.Fatalf("ParsePath(%q).ID.Key() = %q, want %q", s, got, want)
		}
		again, err := ParseID(id.String())
		if err != nil {
			t.Fatalf("ParseID(%q) (from ParsePath(%q)) error = %v", id.String(), s, err)
		}
		if again.Key() != id.Key() {
			t.Fatalf("ParseID(%q).Key() = %q, want %q", id.String(), again.Key(), id.Key())
		}
		if diff := cmp.Diff(id, again); diff != "" {
			t.Fatalf("ParseID(%q) mismatch (-first +again):\n%s", id.String(), diff)
		}
		if parent, ok := id.Parent(); ok && !parent.Contains(id) {
			t.Fatalf("Parent %q of %q does not contain it", parent, id)
		}
	})
}

func BenchmarkParsePath(b *testing.B) {
	const sub = "/subscriptions/0b2d7b5e-7d5e-4d4b-9a3e-3f7b6c0f2a11"
	for _, bb := range []struct{ name, path string }{
		{"group", sub + "/resourcegroups/rg1"},
		{"child", sub + "/resourceGroups/rg1/providers/Microsoft.NetworkCloud/l3IsolationDomains/d1/internalNetworks/n1"},
		{"action", sub + "/resourcegroups/rg1/providers/Microsoft.NetworkCloud//bareMetalMachines/b1/powerOff/"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParsePath(bb.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIDKey(b *testing.B) {
	id := mustParseID(b, "/subscriptions/0b2d7b5e-7d5e-4d4b-9a3e-3f7b6c0f2a11/resourceGroups/RG1/providers/Microsoft.NetworkCloud/l3IsolationDomains/d1/internalNetworks/n1")
	b.ReportAllocs()
	for b.Loop() {
		_ = id.Key()
	}
}
