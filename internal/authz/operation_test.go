package authz

import "testing"

func TestOperation(t *testing.T) {
	tests := []struct {
		typ, method, action string
		want                string
	}{
		{"Microsoft.NetworkCloud/bareMetalMachines", "GET", "", "Microsoft.NetworkCloud/bareMetalMachines/read"},
		{"Microsoft.NetworkCloud/bareMetalMachines", "head", "", "Microsoft.NetworkCloud/bareMetalMachines/read"},
		{"Microsoft.NetworkCloud/bareMetalMachines", "PUT", "", "Microsoft.NetworkCloud/bareMetalMachines/write"},
		{"Microsoft.NetworkCloud/bareMetalMachines", "PATCH", "", "Microsoft.NetworkCloud/bareMetalMachines/write"},
		{"Microsoft.NetworkCloud/bareMetalMachines", "DELETE", "", "Microsoft.NetworkCloud/bareMetalMachines/delete"},
		{"Microsoft.NetworkCloud/bareMetalMachines", "POST", "powerOff", "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action"},
		{"Microsoft.NetworkCloud/virtualMachines/consoles", "PUT", "", "Microsoft.NetworkCloud/virtualMachines/consoles/write"},
		{"Microsoft.NetworkCloud", "POST", "register", "Microsoft.NetworkCloud/register/action"},
		{"Microsoft.Resources/resourceGroups", "GET", "", "Microsoft.Resources/subscriptions/resourceGroups/read"},
		{"microsoft.resources/resourcegroups", "DELETE", "", "Microsoft.Resources/subscriptions/resourceGroups/delete"},
		{"Microsoft.Resources/resourceGroups/resources", "GET", "", "Microsoft.Resources/subscriptions/resourceGroups/resources/read"},
		{"Microsoft.Resources/resourceGroupsX", "GET", "", "Microsoft.Resources/resourceGroupsX/read"},
		{"Microsoft.Resources/subscriptions", "GET", "", "Microsoft.Resources/subscriptions/read"},
		{"Microsoft.Resources/deployments", "POST", "validate", "Microsoft.Resources/deployments/validate/action"},
		{"Microsoft.NetworkCloud/bareMetalMachines", "POST", "", ""},
		{"Microsoft.NetworkCloud/bareMetalMachines", "OPTIONS", "", ""},
		{"", "GET", "", ""},
	}
	for _, tt := range tests {
		if got := Operation(tt.typ, tt.method, tt.action); got != tt.want {
			t.Errorf("Operation(%q, %q, %q) = %q, want %q", tt.typ, tt.method, tt.action, got, tt.want)
		}
	}
}
