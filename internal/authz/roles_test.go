package authz

import (
	"crypto/sha1"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// uuidv5 is RFC 9562 UUIDv5 of name in the URL namespace.
func uuidv5(name string) string {
	ns := []byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	h := sha1.Sum(append(ns, name...))
	u := h[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func TestBuiltInRoles(t *testing.T) {
	want := map[string]string{
		"Owner":                     OwnerRole,
		"Contributor":               ContributorRole,
		"Reader":                    ReaderRole,
		"User Access Administrator": UserAccessAdministratorRole,
		"Role Based Access Control Administrator": RBACAdministratorRole,
		"Bare Metal Machine Operator":             BareMetalMachineOperatorRole,
		"Network Fabric Operator":                 NetworkFabricOperatorRole,
		"Virtual Machine Contributor":             VirtualMachineContributorRole,
		"Auditor":                                 AuditorRole,
	}
	roles := BuiltInRoles()
	if len(roles) != len(want) {
		t.Errorf("len(BuiltInRoles()) = %d, want %d", len(roles), len(want))
	}
	for _, r := range roles {
		if got := want[r.RoleName]; r.Name != got {
			t.Errorf("BuiltInRoles(): %q has GUID %q, want %q", r.RoleName, r.Name, got)
		}
		if r.ID != "/providers/Microsoft.Authorization/roleDefinitions/"+r.Name || r.Type != RoleTypeBuiltIn {
			t.Errorf("BuiltInRoles(): %q has ID %q and type %q", r.RoleName, r.ID, r.Type)
		}
	}
	for _, name := range []string{"Bare Metal Machine Operator", "Network Fabric Operator", "Virtual Machine Contributor", "Auditor"} {
		if got := uuidv5("citadel:role:" + name); got != want[name] {
			t.Errorf("uuidv5(%q) = %s, want the constant %s", "citadel:role:"+name, got, want[name])
		}
	}
	if _, err := NewPolicy(roles, nil, nil, nil); err != nil {
		t.Errorf("NewPolicy(BuiltInRoles()) = %v", err)
	}
	// Each call is a fresh copy.
	roles[0].Permissions[0].Actions[0] = "nothing"
	if got := BuiltInRoles()[0].Permissions[0].Actions[0]; got != "*" {
		t.Errorf("BuiltInRoles()[0] Actions[0] = %q after a caller's change, want *", got)
	}
}

// roleTable renders the table of BuiltInRoles' doc comment: one line per
// action, then one per NotAction marked "not".
func roleTable(roles []RoleDefinition) string {
	w := 0
	for _, r := range roles {
		w = max(w, len(r.RoleName))
	}
	var b strings.Builder
	line := func(role, guid, action string) {
		s := fmt.Sprintf("%-*s  %-36s  %s", w, role, guid, action)
		b.WriteString(strings.TrimRight("//\t"+s, " ") + "\n")
	}
	line("Role", "GUID", "Actions")
	for _, r := range roles {
		p := r.Permissions[0]
		lines := slices.Clone(p.Actions)
		for _, a := range p.NotActions {
			lines = append(lines, "not "+a)
		}
		for i, a := range lines {
			if i == 0 {
				line(r.RoleName, r.Name, a)
			} else {
				line("", "", a)
			}
		}
	}
	return b.String()
}

// TestBuiltInRolesDoc checks that the table in BuiltInRoles' doc comment,
// which the project docs copy, says what BuiltInRoles returns.
func TestBuiltInRolesDoc(t *testing.T) {
	src, err := os.ReadFile("roles.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range BuiltInRoles() {
		if len(r.Permissions) != 1 || len(r.Permissions[0].DataActions) != 0 {
			t.Fatalf("BuiltInRoles(): %q has %d permissions or data actions: the table cannot show it", r.RoleName, len(r.Permissions))
		}
	}
	if want := roleTable(BuiltInRoles()); !strings.Contains(string(src), want) {
		t.Errorf("the BuiltInRoles doc comment in roles.go does not have the table of BuiltInRoles(); want\n%s", want)
	}
}
