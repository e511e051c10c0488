package authz

import (
	"strings"
	"testing"
)

func TestMatchAction(t *testing.T) {
	tests := []struct {
		pattern, action string
		want            bool
	}{
		{"*", "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action", true},
		{"*", "", true},
		{"*/read", "Microsoft.NetworkCloud/bareMetalMachines/read", true},
		{"*/read", "Microsoft.Resources/subscriptions/resourceGroups/read", true},
		{"*/read", "Microsoft.NetworkCloud/bareMetalMachines/write", false},
		{"*/read", "Microsoft.NetworkCloud/bareMetalMachines/readAll/action", false},
		{"*/read", "read", false},
		{"*/READ", "microsoft.networkcloud/racks/Read", true},
		{"Microsoft.NetworkCloud/*", "Microsoft.NetworkCloud/racks/write", true},
		{"Microsoft.NetworkCloud/*", "microsoft.networkcloud/racks/write", true},
		{"Microsoft.NetworkCloud/*", "Microsoft.NetworkCloudX/racks/write", false},
		{"Microsoft.NetworkCloud/*", "Microsoft.ManagedNetworkFabric/racks/write", false},
		{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/roleAssignments/delete", true},
		{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/locks/delete", true},
		{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/roleAssignments/read", false},
		{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/delete", false},
		{"Microsoft.NetworkCloud/bareMetalMachines/*/action", "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action", true},
		{"Microsoft.NetworkCloud/bareMetalMachines/*/action", "Microsoft.NetworkCloud/bareMetalMachines/write", false},
		{"Microsoft.NetworkCloud/bareMetalMachines/*/action", "Microsoft.NetworkCloud/bareMetalMachinesX/powerOff/action", false},
		{"Microsoft.NetworkCloud/bareMetalMachines/write", "Microsoft.NetworkCloud/bareMetalMachines/write", true},
		{"Microsoft.NetworkCloud/bareMetalMachines/write", "Microsoft.NetworkCloud/bareMetalMachines/writes", false},
		{"Microsoft.NetworkCloud/bareMetalMachines/write", "x/Microsoft.NetworkCloud/bareMetalMachines/write", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"a*bc", "abc", true},
		{"ab*bc", "abc", false}, // prefix and suffix must not overlap
		{"a**c", "ac", true},
		{"*a*", "bab", true},
		{"*a*", "bbb", false},
	}
	for _, tt := range tests {
		p, err := compile(tt.pattern)
		if err != nil {
			t.Fatalf("compile(%q): %v", tt.pattern, err)
		}
		if got := p.match(strings.ToLower(tt.action)); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.action, got, tt.want)
		}
	}
}

func TestCompileEmpty(t *testing.T) {
	for _, s := range []string{"", " ", "\t"} {
		if _, err := compile(s); err == nil {
			t.Errorf("compile(%q) = nil error, want one", s)
		}
	}
}

func TestPermissionNotActionsSamePermissionOnly(t *testing.T) {
	// The NotActions of one permission do not subtract from another.
	perms, err := compilePermissions([]Permission{
		{Actions: []string{"*"}, NotActions: []string{"Microsoft.Authorization/*"}},
		{Actions: []string{"Microsoft.Authorization/locks/write"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		action string
		want   bool
	}{
		{"microsoft.networkcloud/racks/write", true},
		{"microsoft.authorization/locks/write", true},
		{"microsoft.authorization/roleassignments/write", false},
	}
	for _, tt := range tests {
		if got := coversAction(perms, tt.action); got != tt.want {
			t.Errorf("coversAction(%q) = %v, want %v", tt.action, got, tt.want)
		}
	}
}

func TestScopeKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"//", "/"},
		{"/subscriptions/S", "/subscriptions/s"},
		{"/subscriptions/S/", "/subscriptions/s"},
		{"subscriptions/S", "/subscriptions/s"},
		{"/subscriptions//S/resourceGroups/RG", "/subscriptions/s/resourcegroups/rg"},
	}
	for _, tt := range tests {
		if got := scopeKey(tt.in); got != tt.want {
			t.Errorf("scopeKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		a, s string
		want bool
	}{
		{"/", "/", true},
		{"/", "/subscriptions/s", true},
		{"/subscriptions/s", "/subscriptions/s", true},
		{"/subscriptions/s", "/subscriptions/s/resourcegroups/rg1", true},
		{"/subscriptions/s", "/subscriptions/s2", false},
		{"/subscriptions/s/resourcegroups/rg1", "/subscriptions/s/resourcegroups/rg10", false},
		{"/subscriptions/s/resourcegroups/rg1", "/subscriptions/s/resourcegroups/rg1/providers/ns/t/n", true},
		{"/subscriptions/s/resourcegroups/rg1", "/subscriptions/s", false},
		{"/subscriptions/s/resourcegroups/rg1", "/", false},
	}
	for _, tt := range tests {
		if got := covers(tt.a, tt.s); got != tt.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tt.a, tt.s, got, tt.want)
		}
	}
}

func TestLower(t *testing.T) {
	for _, s := range []string{"", "abc", "ABC", "Microsoft.NetworkCloud/racks/read", "Ünï/ÄB", "aB\xffC",
		strings.Repeat("Ab/", 200), strings.Repeat("ab/", 200) + "Ä"} {
		if got, want := lower(s), strings.ToLower(s); got != want {
			t.Errorf("lower(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzMatchAction(f *testing.F) {
	f.Add("*/read", "Microsoft.NetworkCloud/racks/read")
	f.Add("Microsoft.NetworkCloud/*", "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action")
	f.Add("a*b*c", "aXbYc")
	f.Add("**", "")
	f.Add("ab*bc", "abc")
	f.Fuzz(func(t *testing.T, pat, action string) {
		p, err := compile(pat)
		if err != nil {
			return
		}
		a := lower(action)
		if want := strings.ToLower(action); a != want {
			t.Errorf("lower(%q) = %q, want %q", action, a, want)
		}
		got := p.match(a)
		if all, _ := compile("*"); !all.match(a) {
			t.Errorf("match(%q, %q) = false, want true", "*", action)
		}
		if !strings.Contains(pat, "*") && got != (strings.ToLower(pat) == a) {
			t.Errorf("match(%q, %q) = %v, want %v", pat, action, got, !got)
		}
		if self, err := compile(action); err == nil && !strings.Contains(action, "*") && !self.match(a) {
			t.Errorf("match(%q, %q) = false, want true", action, action)
		}
		// The pattern with each '*' replaced by some text matches.
		filled := strings.ReplaceAll(strings.ToLower(pat), "*", "x/")
		if !p.match(filled) {
			t.Errorf("match(%q, %q) = false, want true", pat, filled)
		}
	})
}
