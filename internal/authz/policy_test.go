package authz

import (
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/google/go-cmp/cmp"
)

const (
	sub   = "/subscriptions/11111111-1111-1111-1111-111111111111"
	sub2  = "/subscriptions/22222222-2222-2222-2222-222222222222"
	rg1   = sub + "/resourceGroups/rg1"
	rg10  = sub + "/resourceGroups/rg10"
	rg2   = sub + "/resourceGroups/rg2"
	bmm1  = rg1 + "/providers/Microsoft.NetworkCloud/bareMetalMachines/bmm1"
	bmm10 = rg1 + "/providers/Microsoft.NetworkCloud/bareMetalMachines/bmm10"
	vm1   = rg1 + "/providers/Microsoft.NetworkCloud/virtualMachines/vm1"
	con1  = vm1 + "/consoles/default"
	vm10  = rg10 + "/providers/Microsoft.NetworkCloud/virtualMachines/vm1"
	vm2   = rg2 + "/providers/Microsoft.NetworkCloud/virtualMachines/vm1"

	alice = "aaaaaaaa-0000-0000-0000-000000000001"
	bob   = "bbbbbbbb-0000-0000-0000-000000000002"
	ops   = "99999999-0000-0000-0000-00000000000a" // a group
	devs  = "99999999-0000-0000-0000-00000000000b" // a group

	vmWrite  = "Microsoft.NetworkCloud/virtualMachines/write"
	vmRead   = "Microsoft.NetworkCloud/virtualMachines/read"
	vmDelete = "Microsoft.NetworkCloud/virtualMachines/delete"
	powerOff = "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action"
)

// dataRole is a custom role with data actions only.
var dataRole = RoleDefinition{
	ID:               sub + "/providers/Microsoft.Authorization/roleDefinitions/dddddddd-0000-0000-0000-000000000000",
	Name:             "dddddddd-0000-0000-0000-000000000000",
	RoleName:         "Data Everything",
	Type:             RoleTypeCustom,
	AssignableScopes: []string{sub},
	Permissions:      []Permission{{DataActions: []string{"*"}}},
}

func assign(principal, role, scope string) Assignment {
	return Assignment{
		ID:               scope + "/providers/Microsoft.Authorization/roleAssignments/" + principal[:8] + "-" + role[:8],
		Scope:            scope,
		RoleDefinitionID: "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Authorization/roleDefinitions/" + role,
		PrincipalID:      principal,
	}
}

func newPolicy(t testing.TB, as []Assignment, ds []DenyAssignment, ls []Lock) *Policy {
	t.Helper()
	p, err := NewPolicy(append(BuiltInRoles(), dataRole), as, ds, ls)
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

func TestCheck(t *testing.T) {
	var (
		aliceP    = Principal{ObjectID: alice}
		aliceOps  = Principal{ObjectID: alice, Groups: []string{devs, ops}}
		deleteAll = []Permission{{Actions: []string{"*/delete"}}}
	)
	tests := []struct {
		name    string
		as      []Assignment
		ds      []DenyAssignment
		who     Principal
		action  string
		scope   string
		allowed bool
	}{
		{"default deny", nil, nil, aliceP, vmRead, vm1, false},
		{"default deny at root", nil, nil, aliceP, vmRead, "/", false},

		// Roles.
		{"reader reads", []Assignment{assign(alice, ReaderRole, sub)}, nil, aliceP, vmRead, vm1, true},
		{"reader cannot write", []Assignment{assign(alice, ReaderRole, sub)}, nil, aliceP, vmWrite, vm1, false},
		{"reader cannot act", []Assignment{assign(alice, ReaderRole, sub)}, nil, aliceP, powerOff, bmm1, false},
		{"contributor writes", []Assignment{assign(alice, ContributorRole, sub)}, nil, aliceP, vmWrite, vm1, true},
		{"contributor acts", []Assignment{assign(alice, ContributorRole, sub)}, nil, aliceP, powerOff, bmm1, true},
		{"contributor reads assignments", []Assignment{assign(alice, ContributorRole, sub)}, nil, aliceP,
			"Microsoft.Authorization/roleAssignments/read", sub, true},
		{"contributor cannot assign", []Assignment{assign(alice, ContributorRole, sub)}, nil, aliceP,
			"Microsoft.Authorization/roleAssignments/write", sub, false},
		{"contributor cannot lock", []Assignment{assign(alice, ContributorRole, sub)}, nil, aliceP,
			"Microsoft.Authorization/locks/write", rg1, false},
		{"user access administrator assigns", []Assignment{assign(alice, UserAccessAdministratorRole, sub)}, nil, aliceP,
			"Microsoft.Authorization/roleAssignments/write", rg1, true},
		{"user access administrator cannot write", []Assignment{assign(alice, UserAccessAdministratorRole, sub)}, nil, aliceP,
			vmWrite, vm1, false},
		{"owner does anything", []Assignment{assign(alice, OwnerRole, sub)}, nil, aliceP,
			"Microsoft.Authorization/roleAssignments/delete", rg1, true},
		{"data actions never grant", []Assignment{assign(alice, dataRole.Name, sub)}, nil, aliceP, vmRead, vm1, false},
		{"empty action", []Assignment{assign(alice, OwnerRole, "/")}, nil, aliceP, "", vm1, false},

		// Case.
		{"action case", []Assignment{assign(alice, ReaderRole, sub)}, nil, aliceP, strings.ToUpper(vmRead), vm1, true},
		{"scope case", []Assignment{assign(alice, ReaderRole, strings.ToUpper(rg1))}, nil, aliceP, vmRead, vm1, true},
		{"principal case", []Assignment{assign(strings.ToUpper(alice), ReaderRole, sub)}, nil, aliceP, vmRead, vm1, true},
		{"role id case", []Assignment{assign(alice, strings.ToUpper(ReaderRole), sub)}, nil, aliceP, vmRead, vm1, true},

		// Inheritance: subscription → group → resource → child resource.
		{"root covers all", []Assignment{assign(alice, ReaderRole, "/")}, nil, aliceP, vmRead, vm2, true},
		{"sub at sub", []Assignment{assign(alice, ReaderRole, sub)}, nil, aliceP, vmRead, sub, true},
		{"sub at group", []Assignment{assign(alice, ReaderRole, sub)}, nil, aliceP, vmRead, rg1, true},
		{"sub at child", []Assignment{assign(alice, ReaderRole, sub)}, nil, aliceP, vmRead, con1, true},
		{"sub not other sub", []Assignment{assign(alice, ReaderRole, sub)}, nil, aliceP, vmRead, sub2, false},
		{"group at group", []Assignment{assign(alice, ContributorRole, rg1)}, nil, aliceP, vmWrite, rg1, true},
		{"group at resource", []Assignment{assign(alice, ContributorRole, rg1)}, nil, aliceP, vmWrite, vm1, true},
		{"group at child", []Assignment{assign(alice, ContributorRole, rg1)}, nil, aliceP, vmWrite, con1, true},
		{"group not sibling rg10", []Assignment{assign(alice, ContributorRole, rg1)}, nil, aliceP, vmWrite, vm10, false},
		{"group not sibling rg10 itself", []Assignment{assign(alice, ContributorRole, rg1)}, nil, aliceP, vmWrite, rg10, false},
		{"group not other group", []Assignment{assign(alice, ContributorRole, rg1)}, nil, aliceP, vmWrite, vm2, false},
		{"group not subscription", []Assignment{assign(alice, ContributorRole, rg1)}, nil, aliceP, vmWrite, sub, false},
		{"resource at resource", []Assignment{assign(alice, OwnerRole, bmm1)}, nil, aliceP, powerOff, bmm1, true},
		{"resource not sibling bmm10", []Assignment{assign(alice, OwnerRole, bmm1)}, nil, aliceP, powerOff, bmm10, false},
		{"resource not group", []Assignment{assign(alice, OwnerRole, bmm1)}, nil, aliceP, powerOff, rg1, false},
		{"resource at child", []Assignment{assign(alice, ContributorRole, vm1)}, nil, aliceP,
			"Microsoft.NetworkCloud/virtualMachines/consoles/write", con1, true},
		{"child not parent", []Assignment{assign(alice, ContributorRole, con1)}, nil, aliceP, vmWrite, vm1, false},
		{"trailing slash scope", []Assignment{assign(alice, ReaderRole, rg1)}, nil, aliceP, vmRead, vm1 + "/", true},

		// Groups.
		{"group grants member", []Assignment{assign(ops, ContributorRole, rg1)}, nil, aliceOps, vmWrite, vm1, true},
		{"group not non-member", []Assignment{assign(ops, ContributorRole, rg1)}, nil, aliceP, vmWrite, vm1, false},
		{"other principal", []Assignment{assign(bob, OwnerRole, sub)}, nil, aliceOps, vmRead, vm1, false},
		{"best of own and group", []Assignment{assign(alice, ReaderRole, rg1), assign(ops, ContributorRole, rg1)}, nil,
			aliceOps, vmWrite, vm1, true},
		{"everyone assignment grants nobody", []Assignment{assign(Everyone, OwnerRole, sub)}, nil, aliceOps, vmRead, vm1, false},
		{"anonymous", []Assignment{assign(alice, OwnerRole, sub)}, nil, Principal{}, vmRead, vm1, false},

		// Deny beats allow.
		{"deny beats owner", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{alice}}},
			aliceP, vmDelete, vm1, false},
		{"deny covers its actions only", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{alice}}},
			aliceP, vmWrite, vm1, true},
		{"deny at its scope only", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{alice}}},
			aliceP, vmDelete, vm10, true},
		{"deny inherited at child", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{alice}}},
			aliceP, "Microsoft.NetworkCloud/virtualMachines/consoles/delete", con1, false},
		{"deny of another principal", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{bob}}},
			aliceOps, vmDelete, vm1, true},
		{"deny via group", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{ops}}},
			aliceOps, vmDelete, vm1, false},
		{"deny everyone", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{Everyone}}},
			aliceP, vmDelete, vm1, false},
		{"deny everyone excludes principal", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{Everyone}, ExcludePrincipals: []string{strings.ToUpper(alice)}}},
			aliceP, vmDelete, vm1, true},
		{"deny everyone excludes group", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{Everyone}, ExcludePrincipals: []string{ops}}},
			aliceOps, vmDelete, vm1, true},
		{"deny excludes someone else", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{Everyone}, ExcludePrincipals: []string{bob}}},
			aliceOps, vmDelete, vm1, false},
		{"deny not actions", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: sub, Permissions: []Permission{{Actions: []string{"*"}, NotActions: []string{"*/read"}}}, Principals: []string{alice}}},
			aliceP, vmRead, vm1, true},
		{"deny not actions write", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: sub, Permissions: []Permission{{Actions: []string{"*"}, NotActions: []string{"*/read"}}}, Principals: []string{alice}}},
			aliceP, vmWrite, vm1, false},
		{"deny data actions only", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: sub, Permissions: []Permission{{DataActions: []string{"*"}}}, Principals: []string{alice}}},
			aliceP, vmWrite, vm1, true},
		{"deny without allow", nil,
			[]DenyAssignment{{ID: "d", Scope: sub, Permissions: deleteAll, Principals: []string{alice}}},
			aliceP, vmRead, vm1, false},

		// DoNotApplyToChildScopes.
		{"deny at own scope", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{alice}, DoNotApplyToChildScopes: true}},
			aliceP, "Microsoft.Resources/subscriptions/resourceGroups/delete", rg1, false},
		{"deny at own scope any case", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{alice}, DoNotApplyToChildScopes: true}},
			aliceP, "Microsoft.Resources/subscriptions/resourceGroups/delete", strings.ToUpper(rg1), false},
		{"deny not at child scope", []Assignment{assign(alice, OwnerRole, sub)},
			[]DenyAssignment{{ID: "d", Scope: rg1, Permissions: deleteAll, Principals: []string{alice}, DoNotApplyToChildScopes: true}},
			aliceP, vmDelete, vm1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(t, tt.as, tt.ds, nil)
			if got := p.Check(tt.who, tt.action, tt.scope); got.Allowed != tt.allowed {
				t.Errorf("Check(%v, %q, %q) = %+v, want allowed %v", tt.who, tt.action, tt.scope, got, tt.allowed)
			}
		})
	}
}

func TestCheckReason(t *testing.T) {
	a := Assignment{
		ID:               rg1 + "/providers/Microsoft.Authorization/roleAssignments/a1",
		Scope:            rg1,
		RoleDefinitionID: ContributorRole,
		PrincipalID:      alice,
	}
	d := DenyAssignment{ID: "/providers/Microsoft.Authorization/denyAssignments/d1", Scope: vm1,
		Permissions: []Permission{{Actions: []string{"*/delete"}}}, Principals: []string{Everyone}}
	p := newPolicy(t, []Assignment{a}, []DenyAssignment{d}, nil)
	who := Principal{ObjectID: alice}
	tests := []struct {
		action, scope string
		want          Decision
	}{
		{vmWrite, vm1, Decision{Allowed: true, Role: "Contributor", Reason: "role assignment '" + a.ID + "' grants 'Contributor' (" + ContributorRole + ") to '" + alice + "' at scope '" + rg1 + "'"}},
		{vmDelete, vm1, Decision{Reason: "deny assignment '/providers/Microsoft.Authorization/denyAssignments/d1' at scope '" + vm1 + "'"}},
		{vmWrite, vm2, Decision{Reason: reasonNone}},
	}
	for _, tt := range tests {
		if got := p.Check(who, tt.action, tt.scope); got != tt.want {
			t.Errorf("Check(%v, %q, %q) = %+v, want %+v", who, tt.action, tt.scope, got, tt.want)
		}
	}
}

func TestDecisionErr(t *testing.T) {
	who := Principal{ObjectID: alice, Groups: []string{ops}}
	if err := (Decision{Allowed: true}).Err(who, powerOff, bmm1); err != nil {
		t.Errorf("Decision{Allowed: true}.Err() = %v, want nil", err)
	}
	got := Decision{Reason: reasonNone}.Err(who, powerOff, bmm1)
	want := &arm.Error{
		Status: 403,
		Code:   "AuthorizationFailed",
		Message: "The client 'aaaaaaaa-0000-0000-0000-000000000001' with object id 'aaaaaaaa-0000-0000-0000-000000000001' " +
			"does not have authorization to perform action 'Microsoft.NetworkCloud/bareMetalMachines/powerOff/action' " +
			"over scope '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.NetworkCloud/bareMetalMachines/bmm1' " +
			"or the scope is invalid.",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decision.Err() mismatch (-want +got):\n%s", diff)
	}
}

func TestNewPolicyErrors(t *testing.T) {
	custom := func(f func(*RoleDefinition)) []RoleDefinition {
		r := dataRole
		f(&r)
		return []RoleDefinition{r}
	}
	tests := []struct {
		name  string
		roles []RoleDefinition
		as    []Assignment
		ds    []DenyAssignment
		ls    []Lock
		want  string
	}{
		{"unknown role", BuiltInRoles(), []Assignment{assign(alice, dataRole.Name, sub)}, nil, nil,
			"unknown role definition"},
		{"no principal", BuiltInRoles(), []Assignment{{ID: "a", Scope: sub, RoleDefinitionID: ReaderRole}}, nil, nil,
			"no principal ID"},
		{"bad assignment scope", BuiltInRoles(), []Assignment{assign(alice, ReaderRole, "/subscriptions")}, nil, nil,
			"role assignment"},
		{"empty assignment scope", BuiltInRoles(), []Assignment{assign(alice, ReaderRole, "")}, nil, nil,
			"role assignment"},
		{"no role name", custom(func(r *RoleDefinition) { r.Name = "" }), nil, nil, nil, "no name"},
		{"duplicate role", append(BuiltInRoles(), BuiltInRoles()[0]), nil, nil, nil, "duplicate name"},
		{"role id and name differ", custom(func(r *RoleDefinition) { r.ID = "/providers/Microsoft.Authorization/roleDefinitions/x" }), nil, nil, nil,
			"does not end in its name"},
		{"role type", custom(func(r *RoleDefinition) { r.Type = "Custom" }), nil, nil, nil, "neither"},
		{"role assignable scope", custom(func(r *RoleDefinition) { r.AssignableScopes = []string{"/subscriptions/s/x"} }), nil, nil, nil,
			"assignable scope"},
		{"empty action", custom(func(r *RoleDefinition) { r.Permissions = []Permission{{Actions: []string{""}}} }), nil, nil, nil,
			"empty action pattern"},
		{"empty not action", custom(func(r *RoleDefinition) { r.Permissions = []Permission{{NotActions: []string{" "}}} }), nil, nil, nil,
			"empty action pattern"},
		{"deny scope", nil, nil, []DenyAssignment{{ID: "d", Scope: "x/y", Principals: []string{alice}}}, nil, "deny assignment"},
		{"deny principals", nil, nil, []DenyAssignment{{ID: "d", Scope: sub}}, nil, "want object IDs"},
		{"deny action", nil, nil, []DenyAssignment{{ID: "d", Scope: sub, Principals: []string{alice},
			Permissions: []Permission{{Actions: []string{""}}}}}, nil, "empty action pattern"},
		{"lock level", nil, nil, nil, []Lock{{ID: "l", Scope: sub, Level: "readonly"}}, "neither"},
		{"lock scope", nil, nil, nil, []Lock{{ID: "l", Scope: "", Level: LockReadOnly}}, "lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(tt.roles, tt.as, tt.ds, tt.ls)
			if err == nil || !strings.Contains(err.Error(), tt.want) || p != nil {
				t.Errorf("NewPolicy() = %v, %v; want nil and an error containing %q", p, err, tt.want)
			}
		})
	}
}

func TestNewPolicyJoinsErrors(t *testing.T) {
	_, err := NewPolicy(BuiltInRoles(), []Assignment{
		{ID: "a1", Scope: sub, RoleDefinitionID: "nope", PrincipalID: alice},
		{ID: "a2", Scope: sub, RoleDefinitionID: "nope either", PrincipalID: alice},
	}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `"a1"`) || !strings.Contains(err.Error(), `"a2"`) {
		t.Errorf("NewPolicy() = %v, want errors about a1 and a2", err)
	}
}

func TestRole(t *testing.T) {
	p := newPolicy(t, nil, nil, nil)
	for _, id := range []string{
		ReaderRole,
		strings.ToUpper(ReaderRole),
		"/providers/Microsoft.Authorization/roleDefinitions/" + ReaderRole,
		sub + "/providers/Microsoft.Authorization/roleDefinitions/" + ReaderRole,
		sub + "/providers/Microsoft.Authorization/roleDefinitions/" + ReaderRole + "/",
	} {
		if r, ok := p.Role(id); !ok || r.RoleName != "Reader" {
			t.Errorf("Role(%q) = %q, %v; want Reader, true", id, r.RoleName, ok)
		}
	}
	if r, ok := p.Role("00000000-0000-0000-0000-00000000ffff"); ok {
		t.Errorf("Role(unknown) = %q, true; want false", r.RoleName)
	}
}

func TestPolicyKeepsNoReference(t *testing.T) {
	roles := []RoleDefinition{dataRole.clone()}
	roles[0].Permissions = []Permission{{Actions: []string{"*/read"}}}
	p, err := NewPolicy(roles, []Assignment{assign(alice, dataRole.Name, sub)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	roles[0].Permissions[0].Actions[0] = "*"
	roles[0].RoleName = "changed"
	if got := p.Check(Principal{ObjectID: alice}, vmWrite, vm1); got.Allowed {
		t.Errorf("Check() = %+v after the caller changed the role, want a deny", got)
	}
	r, _ := p.Role(dataRole.Name)
	r.Permissions[0].Actions[0] = "*"
	if r, _ := p.Role(dataRole.Name); r.RoleName != dataRole.RoleName || r.Permissions[0].Actions[0] != "*/read" {
		t.Errorf("Role() = %+v, want the role as given to NewPolicy", r)
	}
}

func TestAssignableAt(t *testing.T) {
	tests := []struct {
		scopes []string
		scope  string
		want   bool
	}{
		{[]string{"/"}, vm1, true},
		{[]string{sub}, rg1, true},
		{[]string{sub}, sub, true},
		{[]string{strings.ToUpper(sub)}, vm1, true},
		{[]string{sub}, sub2, false},
		{[]string{rg1}, rg10, false},
		{[]string{rg2, rg1}, vm1, true},
		{nil, vm1, false},
	}
	for _, tt := range tests {
		r := RoleDefinition{AssignableScopes: tt.scopes}
		if got := r.AssignableAt(tt.scope); got != tt.want {
			t.Errorf("AssignableAt(%q) with scopes %q = %v, want %v", tt.scope, tt.scopes, got, tt.want)
		}
	}
}

func TestPermissions(t *testing.T) {
	p := newPolicy(t, []Assignment{
		assign(alice, ReaderRole, sub),
		assign(alice, ReaderRole, rg1), // the same role twice: listed once
		assign(ops, ContributorRole, rg1),
		assign(bob, OwnerRole, rg2),
	}, nil, nil)
	reader, _ := p.Role(ReaderRole)
	contributor, _ := p.Role(ContributorRole)
	tests := []struct {
		name  string
		who   Principal
		scope string
		want  []Permission
	}{
		{"inherited from the subscription", Principal{ObjectID: alice}, rg2, reader.Permissions},
		{"held at the scope", Principal{ObjectID: alice}, bmm1, reader.Permissions},
		{"through a group", Principal{ObjectID: alice, Groups: []string{ops}}, bmm1, append(append([]Permission{}, reader.Permissions...), contributor.Permissions...)},
		{"not above the assignment", Principal{ObjectID: bob}, sub, nil},
		{"a sibling group", Principal{ObjectID: bob}, rg1, nil},
		{"nobody", Principal{ObjectID: "cccccccc-0000-0000-0000-000000000003"}, rg1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, p.Permissions(tt.who, tt.scope)); d != "" {
				t.Errorf("Permissions (-want +got):\n%s", d)
			}
		})
	}
}
