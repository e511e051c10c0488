package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
)

// TestRBAC drives Microsoft.Authorization with the Azure SDK for Go and az:
// role definitions (built-in and custom), role assignments and what they
// grant a second service principal, and management locks. The subtests
// share one control plane and use separate resource groups and principals,
// except the subscription lock, which would lock everyone else out and so
// gets a control plane of its own.
func TestRBAC(t *testing.T) {
	start := time.Now()
	e := newSDKEnv(t)
	t.Cleanup(func() { t.Logf("TestRBAC took %v", time.Since(start).Round(time.Millisecond)) })
	t.Run("role definitions", func(t *testing.T) { t.Parallel(); testRBACRoleDefinitions(t, e) })
	t.Run("invalid role definitions", func(t *testing.T) { t.Parallel(); testRBACInvalidDefinitions(t, e) })
	t.Run("custom role assignment", func(t *testing.T) { t.Parallel(); testRBACCustomRole(t, e) })
	t.Run("no assignment", func(t *testing.T) { t.Parallel(); testRBACNoAssignment(t, e) })
	t.Run("group locks", func(t *testing.T) { t.Parallel(); testRBACGroupLocks(t, e) })
	t.Run("subscription locks", func(t *testing.T) { t.Parallel(); testRBACSubscriptionLocks(t, newSDKEnv(t)) })
	t.Run("az", func(t *testing.T) { t.Parallel(); testRBACAz(t, e) })
}

// roleView is the part of a role definition the tests compare.
type roleView struct {
	ID, Name, Type, RoleName, RoleType string
	AssignableScopes                   []string
	Actions, NotActions                []string
}

func viewRole(r *armauthorization.RoleDefinition) roleView {
	v := roleView{ID: deref(r.ID), Name: deref(r.Name), Type: deref(r.Type)}
	if p := r.Properties; p != nil {
		v.RoleName, v.RoleType = deref(p.RoleName), deref(p.RoleType)
		v.AssignableScopes = derefAll(p.AssignableScopes)
		for _, perm := range p.Permissions {
			v.Actions = append(v.Actions, derefAll(perm.Actions)...)
			v.NotActions = append(v.NotActions, derefAll(perm.NotActions)...)
		}
	}
	return v
}

func derefAll(ps []*string) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, deref(p))
	}
	return out
}

// listRoles lists the role definitions at scope with an optional $filter.
func listRoles(t *testing.T, c rbacClients, scope, filter string) []roleView {
	t.Helper()
	var opts *armauthorization.RoleDefinitionsClientListOptions
	if filter != "" {
		opts = &armauthorization.RoleDefinitionsClientListOptions{Filter: to.Ptr(filter)}
	}
	var out []roleView
	for pager := c.definitions.NewListPager(scope, opts); pager.More(); {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatalf("RoleDefinitions.NewListPager(%s, %q).NextPage = %v", scope, filter, err)
		}
		for _, r := range page.Value {
			out = append(out, viewRole(r))
		}
	}
	return out
}

const roleDefinitionType = "Microsoft.Authorization/roleDefinitions"

func testRBACRoleDefinitions(t *testing.T, e *sdkEnv) {
	admin := newRBACClients(t, e, e.cred)
	subScope := "/subscriptions/" + e.sub

	t.Run("filter by roleName", func(t *testing.T) {
		got := listRoles(t, admin, subScope, "roleName eq 'Reader'")
		want := []roleView{{
			ID: e.rbacRoleID(rbacReader), Name: rbacReader, Type: roleDefinitionType,
			RoleName: "Reader", RoleType: "BuiltInRole", AssignableScopes: []string{"/"},
			Actions: []string{"*/read"}, NotActions: []string{},
		}}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("RoleDefinitions.NewListPager(%s, roleName eq 'Reader') mismatch (-want +got):\n%s", subScope, diff)
		}
	})

	t.Run("get Owner by ID", func(t *testing.T) {
		for _, id := range []string{
			e.rbacRoleID(rbacOwner),
			"/providers/Microsoft.Authorization/roleDefinitions/" + rbacOwner,
		} {
			t.Run(id, func(t *testing.T) {
				got, err := admin.definitions.GetByID(t.Context(), id, nil)
				if err != nil {
					t.Fatalf("RoleDefinitions.GetByID(%s) = %v", id, err)
				}
				want := roleView{
					ID: id, Name: rbacOwner, Type: roleDefinitionType,
					RoleName: "Owner", RoleType: "BuiltInRole", AssignableScopes: []string{"/"},
					Actions: []string{"*"}, NotActions: []string{},
				}
				if diff := cmp.Diff(want, viewRole(&got.RoleDefinition), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("RoleDefinitions.GetByID(%s) mismatch (-want +got):\n%s", id, diff)
				}
			})
		}
	})

	builtIns := map[string]string{
		rbacOwner:                              "Owner",
		"b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
		rbacReader:                             "Reader",
		"18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
		"f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
		"947d48a7-fa50-5271-9def-4feeb1f6127f": "Bare Metal Machine Operator",
		"8a95dcc0-bb3d-50db-8e5e-f736546c7c7a": "Network Fabric Operator",
		"20c2eeb0-fa68-5d6b-8221-eed60900d21f": "Virtual Machine Contributor",
		"98c7bee1-d1ba-58e8-b97a-4ef54e636ceb": "Auditor",
	}
	for _, tc := range []struct{ name, filter string }{
		{"list all", ""},
		{"filter by type", "type eq 'BuiltInRole'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, r := range listRoles(t, admin, subScope, tc.filter) {
				if _, dup := got[r.Name]; dup {
					t.Errorf("RoleDefinitions.NewListPager(%s, %q): %s (%s) listed twice", subScope, tc.filter, r.Name, r.RoleName)
				}
				if r.RoleType == "BuiltInRole" {
					got[r.Name] = r.RoleName
				} else if tc.filter != "" {
					t.Errorf("RoleDefinitions.NewListPager(%s, %q) lists %s (%s) of type %q", subScope, tc.filter, r.Name, r.RoleName, r.RoleType)
				}
				if want := e.rbacRoleID(r.Name); r.ID != want {
					t.Errorf("RoleDefinitions.NewListPager(%s, %q): id = %s, want %s", subScope, tc.filter, r.ID, want)
				}
			}
			if diff := cmp.Diff(builtIns, got); diff != "" {
				t.Errorf("RoleDefinitions.NewListPager(%s, %q) built-in roles mismatch (-want +got):\n%s", subScope, tc.filter, diff)
			}
		})
	}
}

// ipPrefixEditorActions are the custom role's actions: read groups, read
// and write (not delete) ipPrefixes.
var ipPrefixEditorActions = []string{
	"Microsoft.Resources/subscriptions/resourceGroups/read",
	"Microsoft.ManagedNetworkFabric/ipPrefixes/read",
	"Microsoft.ManagedNetworkFabric/ipPrefixes/write",
}

func customRole(name string, actions, scopes []string) armauthorization.RoleDefinition {
	return armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{
		RoleName:         to.Ptr(name),
		Description:      to.Ptr("rbac_test: " + name),
		RoleType:         to.Ptr("CustomRole"),
		Permissions:      []*armauthorization.Permission{{Actions: to.SliceOfPtrs(actions...), NotActions: []*string{}}},
		AssignableScopes: to.SliceOfPtrs(scopes...),
	}}
}

func testRBACInvalidDefinitions(t *testing.T, e *sdkEnv) {
	admin := newRBACClients(t, e, e.cred)
	subScope := "/subscriptions/" + e.sub
	valid := func() armauthorization.RoleDefinition {
		return customRole("rbac-test invalid "+uuid.NewString()[:8], ipPrefixEditorActions, []string{subScope})
	}
	tests := []struct {
		name   string
		change func(p *armauthorization.RoleDefinitionProperties)
	}{
		{"no permissions", func(p *armauthorization.RoleDefinitionProperties) { p.Permissions = []*armauthorization.Permission{} }},
		{"empty action", func(p *armauthorization.RoleDefinitionProperties) {
			p.Permissions[0].Actions = to.SliceOfPtrs("Microsoft.ManagedNetworkFabric/ipPrefixes/read", "")
		}},
		{"bad assignable scope", func(p *armauthorization.RoleDefinitionProperties) { p.AssignableScopes = to.SliceOfPtrs("not-a-scope") }},
		{"no assignable scope", func(p *armauthorization.RoleDefinitionProperties) { p.AssignableScopes = []*string{} }},
		{"no role name", func(p *armauthorization.RoleDefinitionProperties) { p.RoleName = to.Ptr("") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			guid := uuid.NewString()
			def := valid()
			tt.change(def.Properties)
			_, err := admin.definitions.CreateOrUpdate(t.Context(), subScope, guid, def, nil)
			rbacCheckError(t, "RoleDefinitions.CreateOrUpdate("+tt.name+")", err, http.StatusBadRequest, "")
			_, err = admin.definitions.GetByID(t.Context(), e.rbacRoleID(guid), nil)
			rbacCheckError(t, "RoleDefinitions.GetByID after the refused create ("+tt.name+")", err, http.StatusNotFound, "")
		})
	}

	t.Run("change a built-in role", func(t *testing.T) {
		def := customRole("Reader", []string{"*"}, []string{subScope})
		_, err := admin.definitions.CreateOrUpdate(t.Context(), subScope, rbacReader, def, nil)
		rbacCheckError(t, "RoleDefinitions.CreateOrUpdate(Reader with *)", err, http.StatusBadRequest, "")
		_, err = admin.definitions.Delete(t.Context(), subScope, rbacReader, nil)
		rbacCheckError(t, "RoleDefinitions.Delete(Reader)", err, http.StatusBadRequest, "")
		got, err := admin.definitions.GetByID(t.Context(), e.rbacRoleID(rbacReader), nil)
		if err != nil {
			t.Fatalf("RoleDefinitions.GetByID(Reader) = %v", err)
		}
		if v := viewRole(&got.RoleDefinition); v.RoleType != "BuiltInRole" || !cmp.Equal(v.Actions, []string{"*/read"}) {
			t.Errorf("Reader after the refused changes = %+v, want the built-in with */read", v)
		}
	})
}

// assignmentView is the part of a role assignment the tests compare.
type assignmentView struct {
	ID, Name, Type, Scope, RoleDefinitionID, PrincipalID, PrincipalType string
}

func viewAssignment(a *armauthorization.RoleAssignment) assignmentView {
	v := assignmentView{ID: deref(a.ID), Name: deref(a.Name), Type: deref(a.Type)}
	if p := a.Properties; p != nil {
		v.Scope, v.RoleDefinitionID, v.PrincipalID = deref(p.Scope), deref(p.RoleDefinitionID), deref(p.PrincipalID)
		v.PrincipalType = string(deref(p.PrincipalType))
	}
	return v
}

// testRBACCustomRole creates a custom role, assigns it to a second service
// principal at one resource group, checks what that grants and refuses,
// lists the assignment, and deletes it and the role again.
func testRBACCustomRole(t *testing.T, e *sdkEnv) {
	ctx := t.Context()
	admin := newRBACClients(t, e, e.cred)
	subScope := "/subscriptions/" + e.sub
	const group, other = "rbac-rg", "rbac-other-rg"
	groupScope := e.rbacGroupID(group)
	e.createGroup(t, group)
	e.createGroup(t, other)

	roleGUID := uuid.NewString()
	roleName := "rbac-test ipPrefix editor " + roleGUID[:8]
	wantRole := roleView{
		ID: e.rbacRoleID(roleGUID), Name: roleGUID, Type: roleDefinitionType,
		RoleName: roleName, RoleType: "CustomRole", AssignableScopes: []string{subScope},
		Actions: ipPrefixEditorActions, NotActions: []string{},
	}
	created, err := admin.definitions.CreateOrUpdate(ctx, subScope, roleGUID, customRole(roleName, ipPrefixEditorActions, []string{subScope}), nil)
	if err != nil {
		t.Fatalf("RoleDefinitions.CreateOrUpdate(%s, %s) = %v", subScope, roleGUID, err)
	}
	if diff := cmp.Diff(wantRole, viewRole(&created.RoleDefinition), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("RoleDefinitions.CreateOrUpdate(%s) mismatch (-want +got):\n%s", roleGUID, diff)
	}
	t.Run("custom role is readable", func(t *testing.T) {
		got, err := admin.definitions.GetByID(ctx, wantRole.ID, nil)
		if err != nil {
			t.Fatalf("RoleDefinitions.GetByID(%s) = %v", wantRole.ID, err)
		}
		if diff := cmp.Diff(wantRole, viewRole(&got.RoleDefinition), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("RoleDefinitions.GetByID(%s) mismatch (-want +got):\n%s", wantRole.ID, diff)
		}
		// Assignable at the subscription, so listed there and below it.
		for _, scope := range []string{subScope, groupScope} {
			got := listRoles(t, admin, scope, "roleName eq '"+roleName+"'")
			if diff := cmp.Diff([]roleView{wantRole}, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("RoleDefinitions.NewListPager(%s, roleName eq %q) mismatch (-want +got):\n%s", scope, roleName, diff)
			}
		}
	})

	sp := newRBACPrincipal(t, e, "rbac-ipprefix-editor")
	as := newRBACClients(t, e, sp.cred)
	name := uuid.NewString()
	wantAssignment := assignmentView{
		ID: groupScope + "/providers/Microsoft.Authorization/roleAssignments/" + name, Name: name,
		Type: "Microsoft.Authorization/roleAssignments", Scope: groupScope,
		RoleDefinitionID: wantRole.ID, PrincipalID: sp.ObjectID, PrincipalType: "ServicePrincipal",
	}
	ra, err := admin.assignments.Create(ctx, groupScope, name, armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{
			RoleDefinitionID: to.Ptr(wantRole.ID),
			PrincipalID:      to.Ptr(sp.ObjectID),
			PrincipalType:    to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
		},
	}, nil)
	if err != nil {
		t.Fatalf("RoleAssignments.Create(%s, %s) = %v", groupScope, name, err)
	}
	if diff := cmp.Diff(wantAssignment, viewAssignment(&ra.RoleAssignment)); diff != "" {
		t.Errorf("RoleAssignments.Create(%s, %s) mismatch (-want +got):\n%s", groupScope, name, diff)
	}
	rbacEventually(t, "the assignment lets "+sp.ObjectID+" read "+group, func() error {
		_, err := as.groups.Get(ctx, group, nil)
		return err
	})

	t.Run("permissions", func(t *testing.T) {
		// What the Permissions API tells the editor it may do, in its
		// group and in another.
		pc, err := armauthorization.NewPermissionsClient(e.sub, sp.cred, e.opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			group string
			want  [][]string
		}{{group, [][]string{ipPrefixEditorActions}}, {other, nil}} {
			var got [][]string
			pager := pc.NewListForResourceGroupPager(tc.group, nil)
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					t.Fatalf("Permissions.NewListForResourceGroupPager(%s) = %v", tc.group, err)
				}
				for _, p := range page.Value {
					got = append(got, derefAll(p.Actions))
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Permissions.NewListForResourceGroupPager(%s) as the editor (-want +got):\n%s", tc.group, diff)
			}
		}
	})

	prefix := e.ipPrefixID(group, "pfx1")
	t.Run("allowed", func(t *testing.T) {
		g, err := as.groups.Get(ctx, group, nil)
		if err != nil {
			t.Fatalf("ResourceGroups.Get(%s) as the editor = %v", group, err)
		}
		if !strings.EqualFold(deref(g.ID), groupScope) {
			t.Errorf("ResourceGroups.Get(%s) as the editor: id = %s, want %s", group, deref(g.ID), groupScope)
		}
		if err := rbacPutIPPrefix(t, as, prefix, e.cp.Creds.Location); err != nil {
			t.Fatalf("PUT %s as the editor = %v", prefix, err)
		}
		got, err := as.resources.GetByID(ctx, prefix, fabricAPIVersion, nil)
		if err != nil {
			t.Fatalf("GetByID(%s) as the editor = %v", prefix, err)
		}
		if p := propertiesOf(t, got.GenericResource); p.ProvisioningState != "Succeeded" {
			t.Errorf("GetByID(%s) as the editor: provisioningState = %s, want Succeeded", prefix, p.ProvisioningState)
		}
	})

	t.Run("refused", func(t *testing.T) {
		otherPrefix := e.ipPrefixID(other, "pfx1")
		newGroup := e.rbacGroupID("rbac-new-rg")
		selfAssignment := uuid.NewString()
		newRole := uuid.NewString()
		tests := []struct {
			name, action, scope string
			call                func() error
		}{
			{
				"delete ipPrefix", "Microsoft.ManagedNetworkFabric/ipPrefixes/delete", prefix,
				func() error { _, err := as.resources.BeginDeleteByID(ctx, prefix, fabricAPIVersion, nil); return err },
			},
			{
				"put ipPrefix in another group", "Microsoft.ManagedNetworkFabric/ipPrefixes/write", otherPrefix,
				func() error {
					_, err := as.resources.BeginCreateOrUpdateByID(ctx, otherPrefix, fabricAPIVersion, ipPrefix(e.cp.Creds.Location, rbacRule), nil)
					return err
				},
			},
			{
				"read another group", "Microsoft.Resources/subscriptions/resourceGroups/read", e.rbacGroupID(other),
				func() error { _, err := as.groups.Get(ctx, other, nil); return err },
			},
			{
				"create group", "Microsoft.Resources/subscriptions/resourceGroups/write", newGroup,
				func() error {
					_, err := as.groups.CreateOrUpdate(ctx, "rbac-new-rg", armresources.ResourceGroup{Location: to.Ptr(e.cp.Creds.Location)}, nil)
					return err
				},
			},
			{
				"delete its group", "Microsoft.Resources/subscriptions/resourceGroups/delete", groupScope,
				func() error { _, err := as.groups.BeginDelete(ctx, group, nil); return err },
			},
			{
				"create role assignment", "Microsoft.Authorization/roleAssignments/write",
				groupScope + "/providers/Microsoft.Authorization/roleAssignments/" + selfAssignment,
				func() error {
					_, err := as.assignments.Create(ctx, groupScope, selfAssignment, armauthorization.RoleAssignmentCreateParameters{
						Properties: &armauthorization.RoleAssignmentProperties{
							RoleDefinitionID: to.Ptr(e.rbacRoleID(rbacOwner)),
							PrincipalID:      to.Ptr(sp.ObjectID),
							PrincipalType:    to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
						},
					}, nil)
					return err
				},
			},
			{
				"create role definition", "Microsoft.Authorization/roleDefinitions/write",
				subScope + "/providers/Microsoft.Authorization/roleDefinitions/" + newRole,
				func() error {
					_, err := as.definitions.CreateOrUpdate(ctx, subScope, newRole, customRole("rbac-test escalate", []string{"*"}, []string{subScope}), nil)
					return err
				},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rbacCheckForbidden(t, tt.name+" as the editor", tt.call(), sp.ObjectID, tt.action, tt.scope)
			})
		}
		// Nothing that was refused happened.
		for _, path := range []string{
			newGroup + "?api-version=2021-04-01",
			otherPrefix + "?api-version=" + fabricAPIVersion,
			groupScope + "/providers/Microsoft.Authorization/roleAssignments/" + selfAssignment + "?api-version=2022-04-01",
		} {
			resp, err := e.cp.Client.Do(ctx, http.MethodGet, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusNotFound {
				t.Errorf("GET %s after the refused request = %d %s, want 404", path, resp.Status, resp.Body)
			}
		}
		if _, err := admin.resources.GetByID(ctx, prefix, fabricAPIVersion, nil); err != nil {
			t.Errorf("GetByID(%s) after the refused delete = %v", prefix, err)
		}
	})

	t.Run("group list is filtered", func(t *testing.T) {
		got, err := rbacGroupNames(t, as)
		if err != nil {
			t.Fatalf("ResourceGroups.NewListPager as the editor = %v", err)
		}
		if diff := cmp.Diff([]string{group}, got); diff != "" {
			t.Errorf("ResourceGroups.NewListPager as the editor mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("subscription is listed", func(t *testing.T) {
		// Azure lists every subscription in which the caller has a role
		// assignment, at or below the subscription: that is how az login
		// finds the subscription of a user who may only use one group.
		got := listSubscriptions(t, e, sp)
		if diff := cmp.Diff([]string{e.sub}, got); diff != "" {
			t.Errorf("Subscriptions.NewListPager as a principal with a role at %s mismatch (-want +got):\n%s", groupScope, diff)
		}
	})

	t.Run("list assignments", func(t *testing.T) {
		tests := []struct {
			scope, filter string
			want          string // "exactly", "includes" or "excludes" the assignment
		}{
			{groupScope, "", "includes"},
			{groupScope, "atScope()", "includes"},
			{subScope, "atScope()", "excludes"},
			{subScope, "", "includes"},
			{subScope, "principalId eq '" + sp.ObjectID + "'", "exactly"},
			{subScope, "assignedTo('" + sp.ObjectID + "')", "exactly"},
		}
		for _, tt := range tests {
			t.Run(tt.scope+" "+tt.filter, func(t *testing.T) {
				// The SDK puts the filter into the query as it is: callers
				// must escape it, or the request line carries spaces
				// (Azure answers those 400 too: azure-sdk-for-go#20847).
				var opts *armauthorization.RoleAssignmentsClientListForScopeOptions
				if tt.filter != "" {
					opts = &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: to.Ptr(url.PathEscape(tt.filter))}
				}
				var got []assignmentView
				for pager := admin.assignments.NewListForScopePager(tt.scope, opts); pager.More(); {
					page, err := pager.NextPage(ctx)
					if err != nil {
						t.Fatalf("RoleAssignments.NewListForScopePager(%s, %q).NextPage = %v", tt.scope, tt.filter, err)
					}
					for _, a := range page.Value {
						got = append(got, viewAssignment(a))
					}
				}
				checkAssignmentList(t, fmt.Sprintf("RoleAssignments.NewListForScopePager(%s, %q)", tt.scope, tt.filter), got, wantAssignment, tt.want)
			})
		}
		t.Run("resource group pager", func(t *testing.T) {
			var got []assignmentView
			for pager := admin.assignments.NewListForResourceGroupPager(group, nil); pager.More(); {
				page, err := pager.NextPage(ctx)
				if err != nil {
					t.Fatalf("RoleAssignments.NewListForResourceGroupPager(%s).NextPage = %v", group, err)
				}
				for _, a := range page.Value {
					got = append(got, viewAssignment(a))
				}
			}
			checkAssignmentList(t, "RoleAssignments.NewListForResourceGroupPager("+group+")", got, wantAssignment, "includes")
		})
		t.Run("get", func(t *testing.T) {
			got, err := admin.assignments.Get(ctx, groupScope, name, nil)
			if err != nil {
				t.Fatalf("RoleAssignments.Get(%s, %s) = %v", groupScope, name, err)
			}
			if diff := cmp.Diff(wantAssignment, viewAssignment(&got.RoleAssignment)); diff != "" {
				t.Errorf("RoleAssignments.Get(%s, %s) mismatch (-want +got):\n%s", groupScope, name, diff)
			}
		})
	})

	t.Run("invalid assignments", func(t *testing.T) {
		tests := []struct {
			name, role   string
			status       int
			code, absent string
		}{
			{"duplicate", wantRole.ID, http.StatusConflict, "RoleAssignmentExists", uuid.NewString()},
			{"unknown role", e.rbacRoleID(uuid.NewString()), http.StatusBadRequest, "RoleDefinitionDoesNotExist", uuid.NewString()},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := admin.assignments.Create(ctx, groupScope, tt.absent, armauthorization.RoleAssignmentCreateParameters{
					Properties: &armauthorization.RoleAssignmentProperties{
						RoleDefinitionID: to.Ptr(tt.role),
						PrincipalID:      to.Ptr(sp.ObjectID),
						PrincipalType:    to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
					},
				}, nil)
				rbacCheckError(t, "RoleAssignments.Create("+tt.name+")", err, tt.status, tt.code)
				_, err = admin.assignments.Get(ctx, groupScope, tt.absent, nil)
				rbacCheckError(t, "RoleAssignments.Get after the refused create ("+tt.name+")", err, http.StatusNotFound, "")
			})
		}
	})

	t.Run("delete assignment", func(t *testing.T) {
		if _, err := admin.assignments.Delete(ctx, groupScope, name, nil); err != nil {
			t.Fatalf("RoleAssignments.Delete(%s, %s) = %v", groupScope, name, err)
		}
		rbacEventually(t, "deleting the assignment takes "+group+" away from "+sp.ObjectID, func() error {
			_, err := as.groups.Get(ctx, group, nil)
			if err == nil {
				return errors.New("ResourceGroups.Get as the editor still succeeds")
			}
			return nil
		})
		_, err := as.groups.Get(ctx, group, nil)
		rbacCheckForbidden(t, "ResourceGroups.Get after the assignment is gone", err, sp.ObjectID,
			"Microsoft.Resources/subscriptions/resourceGroups/read", groupScope)
		_, err = as.resources.BeginCreateOrUpdateByID(ctx, prefix, fabricAPIVersion, ipPrefix(e.cp.Creds.Location, rbacRule), nil)
		rbacCheckForbidden(t, "PUT ipPrefix after the assignment is gone", err, sp.ObjectID,
			"Microsoft.ManagedNetworkFabric/ipPrefixes/write", prefix)
		_, err = admin.assignments.Get(ctx, groupScope, name, nil)
		rbacCheckError(t, "RoleAssignments.Get after Delete", err, http.StatusNotFound, "")
	})

	t.Run("delete custom role", func(t *testing.T) {
		if _, err := admin.definitions.Delete(ctx, subScope, roleGUID, nil); err != nil {
			t.Fatalf("RoleDefinitions.Delete(%s, %s) = %v", subScope, roleGUID, err)
		}
		_, err := admin.definitions.GetByID(ctx, wantRole.ID, nil)
		rbacCheckError(t, "RoleDefinitions.GetByID after Delete", err, http.StatusNotFound, "")
	})
}

// checkAssignmentList checks that a list holds want exactly once and
// nothing else ("exactly"), holds it once ("includes") or lacks it
// ("excludes").
func checkAssignmentList(t *testing.T, op string, got []assignmentView, want assignmentView, how string) {
	t.Helper()
	n := 0
	for _, a := range got {
		if strings.EqualFold(a.ID, want.ID) {
			n++
			if diff := cmp.Diff(want, a); diff != "" {
				t.Errorf("%s: assignment mismatch (-want +got):\n%s", op, diff)
			}
		}
	}
	switch {
	case how == "exactly" && (n != 1 || len(got) != 1):
		t.Errorf("%s = %+v, want exactly %s", op, got, want.ID)
	case how == "includes" && n != 1:
		t.Errorf("%s lists %s %d times, want once: %+v", op, want.ID, n, got)
	case how == "excludes" && n != 0:
		t.Errorf("%s lists %s, want it left out: %+v", op, want.ID, got)
	}
}

// listSubscriptions lists the subscription IDs that p sees.
func listSubscriptions(t *testing.T, e *sdkEnv, p *rbacPrincipal) []string {
	t.Helper()
	client, err := armsubscriptions.NewClient(p.cred, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for pager := client.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatalf("Subscriptions.NewListPager as %s = %v", p.ObjectID, err)
		}
		for _, s := range page.Value {
			ids = append(ids, deref(s.SubscriptionID))
		}
	}
	return ids
}

// testRBACNoAssignment checks what a principal without any role
// assignment gets: refusals, and no subscription (so az login would say
// it found none).
func testRBACNoAssignment(t *testing.T, e *sdkEnv) {
	const group = "rbac-nobody-rg"
	e.createGroup(t, group)
	p := newRBACPrincipal(t, e, "rbac-nobody")
	c := newRBACClients(t, e, p.cred)

	_, err := c.groups.Get(t.Context(), group, nil)
	rbacCheckForbidden(t, "ResourceGroups.Get without an assignment", err, p.ObjectID,
		"Microsoft.Resources/subscriptions/resourceGroups/read", e.rbacGroupID(group))

	if got := listSubscriptions(t, e, p); len(got) != 0 {
		t.Errorf("Subscriptions.NewListPager without an assignment = %v, want none", got)
	}
	got, err := rbacGroupNames(t, c)
	if err == nil && len(got) != 0 {
		t.Errorf("ResourceGroups.NewListPager without an assignment = %v, want none or a refusal", got)
	}
}

// testRBACGroupLocks puts CanNotDelete and ReadOnly locks on resource
// groups and checks what they block.
func testRBACGroupLocks(t *testing.T, e *sdkEnv) {
	t.Run("CanNotDelete", func(t *testing.T) { t.Parallel(); testRBACCanNotDelete(t, e) })
	t.Run("ReadOnly", func(t *testing.T) { t.Parallel(); testRBACReadOnly(t, e) })
	t.Run("invalid level", func(t *testing.T) {
		t.Parallel()
		const group = "lock-invalid-rg"
		e.createGroup(t, group)
		path := rbacLockPath(e.rbacGroupID(group), "sometimes")
		resp, err := e.cp.Client.Do(t.Context(), http.MethodPut, path, map[string]any{"properties": map[string]any{"level": "Sometimes"}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusBadRequest {
			t.Errorf("PUT %s level Sometimes = %d %s, want 400", path, resp.Status, resp.Body)
		}
	})
}

// waitLocked polls call, whose success must be harmless, until a lock
// refuses it.
func waitLocked(t *testing.T, what string, call func() error) {
	t.Helper()
	rbacEventually(t, what, func() error {
		if err := call(); !rbacIsLocked(err) {
			return fmt.Errorf("not refused with ScopeLocked: %v", err)
		}
		return nil
	})
}

// waitUnlocked polls call until no lock refuses it, and requires it to
// succeed then.
func waitUnlocked(t *testing.T, what string, call func() error) {
	t.Helper()
	var last error
	rbacEventually(t, what, func() error {
		last = call()
		if rbacIsLocked(last) {
			return last
		}
		return nil
	})
	if last != nil {
		t.Fatalf("%s: %v", what, last)
	}
}

func testRBACCanNotDelete(t *testing.T, e *sdkEnv) {
	ctx := t.Context()
	admin := newRBACClients(t, e, e.cred)
	const group = "lock-cnd-rg"
	groupScope := e.rbacGroupID(group)
	e.createGroup(t, group)
	prefix := e.ipPrefixID(group, "pfx1")
	e.createIPPrefix(t, prefix, rbacRule)

	e.rbacPutLock(t, groupScope, "nodelete", "CanNotDelete")
	// Deleting what does not exist is harmless whether the lock shows yet
	// or not.
	canary := e.ipPrefixID(group, "canary")
	waitLocked(t, "the CanNotDelete lock on "+group+" shows", func() error { return rbacDeleteByID(t, admin, canary) })

	t.Run("blocks delete", func(t *testing.T) {
		_, err := admin.groups.BeginDelete(ctx, group, nil)
		rbacCheckLocked(t, "ResourceGroups.BeginDelete(locked group)", err, groupScope, "delete", groupScope)
		_, err = admin.resources.BeginDeleteByID(ctx, prefix, fabricAPIVersion, nil)
		rbacCheckLocked(t, "BeginDeleteByID(ipPrefix in locked group)", err, prefix, "delete", groupScope)
		if _, err := admin.resources.GetByID(ctx, prefix, fabricAPIVersion, nil); err != nil {
			t.Errorf("GetByID(%s) after the refused delete = %v", prefix, err)
		}
	})
	t.Run("allows writes", func(t *testing.T) {
		if err := rbacPutIPPrefix(t, admin, prefix, e.cp.Creds.Location); err != nil {
			t.Errorf("PUT %s (update) under CanNotDelete = %v", prefix, err)
		}
		if err := rbacPutIPPrefix(t, admin, e.ipPrefixID(group, "pfx2"), e.cp.Creds.Location); err != nil {
			t.Errorf("PUT pfx2 (create) under CanNotDelete = %v", err)
		}
		if _, err := admin.groups.Update(ctx, group, armresources.ResourceGroupPatchable{Tags: tags(map[string]string{"locked": "cannotdelete"})}, nil); err != nil {
			t.Errorf("ResourceGroups.Update(%s, tags) under CanNotDelete = %v", group, err)
		}
	})
	t.Run("delete the lock", func(t *testing.T) {
		e.rbacDeleteLock(t, groupScope, "nodelete")
		waitUnlocked(t, "deleting the lock lets pfx1 go", func() error { return rbacDeleteByID(t, admin, prefix) })
		if err := rbacDeleteGroup(t, admin, group); err != nil {
			t.Errorf("ResourceGroups.BeginDelete(%s) after the lock is gone = %v", group, err)
		}
	})
}

func testRBACReadOnly(t *testing.T, e *sdkEnv) {
	ctx := t.Context()
	admin := newRBACClients(t, e, e.cred)
	const group = "lock-ro-rg"
	groupScope := e.rbacGroupID(group)
	e.createGroup(t, group)
	prefix := e.ipPrefixID(group, "pfx1")
	e.createIPPrefix(t, prefix, rbacRule)
	groupTags := armresources.ResourceGroupPatchable{Tags: tags(map[string]string{"env": "ro"})}
	if _, err := admin.groups.Update(ctx, group, groupTags, nil); err != nil {
		t.Fatalf("ResourceGroups.Update(%s, tags) = %v", group, err)
	}

	e.rbacPutLock(t, groupScope, "readonly", "ReadOnly")
	// Setting the tags the group already has is harmless.
	waitLocked(t, "the ReadOnly lock on "+group+" shows", func() error {
		_, err := admin.groups.Update(ctx, group, groupTags, nil)
		return err
	})

	pfx2 := e.ipPrefixID(group, "pfx2")
	tests := []struct {
		name, scope, kind string
		call              func() error
	}{
		{"update ipPrefix", prefix, "write", func() error {
			_, err := admin.resources.BeginCreateOrUpdateByID(ctx, prefix, fabricAPIVersion, ipPrefix(e.cp.Creds.Location, rbacRule), nil)
			return err
		}},
		{"create ipPrefix", pfx2, "write", func() error {
			_, err := admin.resources.BeginCreateOrUpdateByID(ctx, pfx2, fabricAPIVersion, ipPrefix(e.cp.Creds.Location, rbacRule), nil)
			return err
		}},
		{"patch ipPrefix tags", prefix, "write", func() error {
			_, err := admin.resources.BeginUpdateByID(ctx, prefix, fabricAPIVersion, armresources.GenericResource{Tags: tags(map[string]string{"a": "b"})}, nil)
			return err
		}},
		{"update group tags", groupScope, "write", func() error {
			_, err := admin.groups.Update(ctx, group, armresources.ResourceGroupPatchable{Tags: tags(map[string]string{"x": "y"})}, nil)
			return err
		}},
		{"delete ipPrefix", prefix, "delete", func() error {
			_, err := admin.resources.BeginDeleteByID(ctx, prefix, fabricAPIVersion, nil)
			return err
		}},
		{"delete group", groupScope, "delete", func() error {
			_, err := admin.groups.BeginDelete(ctx, group, nil)
			return err
		}},
	}
	t.Run("blocks", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rbacCheckLocked(t, tt.name+" under ReadOnly", tt.call(), tt.scope, tt.kind, groupScope)
			})
		}
		if _, err := admin.resources.GetByID(ctx, pfx2, fabricAPIVersion, nil); err == nil {
			t.Errorf("GetByID(%s) after the refused create succeeded, want 404", pfx2)
		}
	})
	t.Run("allows reads", func(t *testing.T) {
		g, err := admin.groups.Get(ctx, group, nil)
		if err != nil {
			t.Fatalf("ResourceGroups.Get(%s) under ReadOnly = %v", group, err)
		}
		if got := plainTags(g.Tags); !cmp.Equal(got, map[string]string{"env": "ro"}) {
			t.Errorf("ResourceGroups.Get(%s).Tags under ReadOnly = %v, want map[env:ro]", group, got)
		}
		if _, err := admin.resources.GetByID(ctx, prefix, fabricAPIVersion, nil); err != nil {
			t.Errorf("GetByID(%s) under ReadOnly = %v", prefix, err)
		}
		// The lock is an extension resource, which Azure does not list
		// among the group's resources.
		var ids []string
		for pager := admin.resources.NewListByResourceGroupPager(group, nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatalf("Resources.NewListByResourceGroupPager(%s) under ReadOnly = %v", group, err)
			}
			for _, r := range page.Value {
				ids = append(ids, deref(r.ID))
			}
		}
		if diff := cmp.Diff([]string{prefix}, ids); diff != "" {
			t.Errorf("Resources.NewListByResourceGroupPager(%s) under ReadOnly mismatch (-want +got):\n%s", group, diff)
		}
	})
	t.Run("locks stay manageable", func(t *testing.T) {
		// Locks are exempt from locks, or none could ever be removed.
		e.rbacPutLock(t, groupScope, "second", "CanNotDelete")
		e.rbacPutLock(t, groupScope, "second", "ReadOnly")
		e.rbacDeleteLock(t, groupScope, "second")
	})
	t.Run("delete the lock", func(t *testing.T) {
		e.rbacDeleteLock(t, groupScope, "readonly")
		waitUnlocked(t, "deleting the lock lets the group's tags change", func() error {
			_, err := admin.groups.Update(ctx, group, armresources.ResourceGroupPatchable{Tags: tags(map[string]string{"x": "y"})}, nil)
			return err
		})
		if err := rbacPutIPPrefix(t, admin, pfx2, e.cp.Creds.Location); err != nil {
			t.Errorf("PUT %s after the lock is gone = %v", pfx2, err)
		}
		if err := rbacDeleteGroup(t, admin, group); err != nil {
			t.Errorf("ResourceGroups.BeginDelete(%s) after the lock is gone = %v", group, err)
		}
	})
}

// testRBACSubscriptionLocks checks that locks at the subscription apply to
// its groups and their resources. e is a control plane of its own.
func testRBACSubscriptionLocks(t *testing.T, e *sdkEnv) {
	ctx := t.Context()
	admin := newRBACClients(t, e, e.cred)
	subScope := "/subscriptions/" + e.sub
	const group = "sub-lock-rg"
	groupScope := e.rbacGroupID(group)
	e.createGroup(t, group)
	prefix := e.ipPrefixID(group, "pfx1")
	e.createIPPrefix(t, prefix, rbacRule)

	e.rbacPutLock(t, subScope, "sublock", "CanNotDelete")
	waitLocked(t, "the subscription's CanNotDelete lock shows", func() error {
		return rbacDeleteByID(t, admin, e.ipPrefixID(group, "canary"))
	})
	t.Run("CanNotDelete", func(t *testing.T) {
		_, err := admin.groups.BeginDelete(ctx, group, nil)
		rbacCheckLocked(t, "ResourceGroups.BeginDelete under a subscription lock", err, groupScope, "delete", subScope)
		_, err = admin.resources.BeginDeleteByID(ctx, prefix, fabricAPIVersion, nil)
		rbacCheckLocked(t, "BeginDeleteByID(ipPrefix) under a subscription lock", err, prefix, "delete", subScope)
		if err := rbacPutIPPrefix(t, admin, prefix, e.cp.Creds.Location); err != nil {
			t.Errorf("PUT %s under the subscription's CanNotDelete = %v", prefix, err)
		}
	})

	e.rbacPutLock(t, subScope, "sublock", "ReadOnly")
	waitLocked(t, "the subscription's lock turned ReadOnly shows", func() error {
		_, err := admin.groups.Update(ctx, group, armresources.ResourceGroupPatchable{}, nil)
		return err
	})
	t.Run("ReadOnly", func(t *testing.T) {
		_, err := admin.groups.Update(ctx, group, armresources.ResourceGroupPatchable{Tags: tags(map[string]string{"a": "b"})}, nil)
		rbacCheckLocked(t, "ResourceGroups.Update under a subscription ReadOnly lock", err, groupScope, "write", subScope)
		_, err = admin.groups.CreateOrUpdate(ctx, "sub-lock-new-rg", armresources.ResourceGroup{Location: to.Ptr(e.cp.Creds.Location)}, nil)
		rbacCheckLocked(t, "ResourceGroups.CreateOrUpdate under a subscription ReadOnly lock", err, e.rbacGroupID("sub-lock-new-rg"), "write", subScope)
		_, err = admin.resources.BeginCreateOrUpdateByID(ctx, prefix, fabricAPIVersion, ipPrefix(e.cp.Creds.Location, rbacRule), nil)
		rbacCheckLocked(t, "PUT ipPrefix under a subscription ReadOnly lock", err, prefix, "write", subScope)
		if _, err := admin.groups.Get(ctx, group, nil); err != nil {
			t.Errorf("ResourceGroups.Get(%s) under a subscription ReadOnly lock = %v", group, err)
		}
	})
	t.Run("locks stay manageable", func(t *testing.T) {
		e.rbacPutLock(t, groupScope, "grouplock", "CanNotDelete")
		e.rbacDeleteLock(t, groupScope, "grouplock")
	})

	e.rbacDeleteLock(t, subScope, "sublock")
	waitUnlocked(t, "deleting the subscription's lock lets the group go", func() error {
		return rbacDeleteGroup(t, admin, group)
	})
}

// testRBACAz checks RBAC and locks through Debian's az 2.45: az rest for
// role assignments and definitions (its az role commands crash before
// sending anything, arm-contract §0), az resource for locks, and the view
// of a principal that is Reader at one group.
func testRBACAz(t *testing.T, e *sdkEnv) {
	requireAz(t)
	ctx := t.Context()
	c := e.cp.Creds
	subScope := "/subscriptions/" + e.sub
	const readerGroup, lockGroup = "az-reader-rg", "az-lock-rg"
	readerScope, lockScope := e.rbacGroupID(readerGroup), e.rbacGroupID(lockGroup)
	admin := newRBACClients(t, e, e.cred)

	// Set up with the SDK, which is quicker than az.
	e.createGroup(t, readerGroup)
	e.createGroup(t, lockGroup)
	prefix := e.ipPrefixID(lockGroup, "pfx1")
	e.createIPPrefix(t, prefix, rbacRule)
	reader := newRBACPrincipal(t, e, "rbac-az-reader")

	az := newAzCLI(t, e.cp)
	t.Cleanup(func() { az.logTimings(t) })
	rbacAzLogin(t, az, c.ClientID, c.ClientSecret, c.ARMEndpoint, c.TenantID, e.sub)

	name := uuid.NewString()
	if !t.Run("assign Reader with az rest", func(t *testing.T) {
		body := fmt.Sprintf(`{"properties":{"roleDefinitionId":%q,"principalId":%q,"principalType":"ServicePrincipal"}}`, e.rbacRoleID(rbacReader), reader.ObjectID)
		var got struct {
			ID         string `json:"id"`
			Name       string `json:"name"`
			Type       string `json:"type"`
			Properties struct {
				RoleDefinitionID string `json:"roleDefinitionId"`
				PrincipalID      string `json:"principalId"`
				PrincipalType    string `json:"principalType"`
				Scope            string `json:"scope"`
			} `json:"properties"`
		}
		az.json(t, &got, "rest", "--method", "put", "--url",
			readerScope+"/providers/Microsoft.Authorization/roleAssignments/"+name+"?api-version=2022-04-01", "--body", body)
		want := assignmentView{
			ID: readerScope + "/providers/Microsoft.Authorization/roleAssignments/" + name, Name: name,
			Type: "Microsoft.Authorization/roleAssignments", Scope: readerScope,
			RoleDefinitionID: e.rbacRoleID(rbacReader), PrincipalID: reader.ObjectID, PrincipalType: "ServicePrincipal",
		}
		p := got.Properties
		gotView := assignmentView{got.ID, got.Name, got.Type, p.Scope, p.RoleDefinitionID, p.PrincipalID, p.PrincipalType}
		if diff := cmp.Diff(want, gotView); diff != "" {
			t.Errorf("az rest --method put roleAssignments mismatch (-want +got):\n%s", diff)
		}
	}) {
		t.Fatal("the Reader assignment failed; the reader's steps depend on it")
	}

	t.Run("role definitions with az rest", func(t *testing.T) {
		var got struct {
			Value []struct {
				ID         string `json:"id"`
				Name       string `json:"name"`
				Properties struct {
					RoleName    string `json:"roleName"`
					Type        string `json:"type"`
					Permissions []struct {
						Actions []string `json:"actions"`
					} `json:"permissions"`
				} `json:"properties"`
			} `json:"value"`
		}
		az.json(t, &got, "rest", "--method", "get", "--url",
			subScope+"/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=roleName eq 'Reader'")
		if len(got.Value) != 1 {
			t.Fatalf("az rest roleDefinitions $filter=roleName eq 'Reader' = %+v, want just Reader", got.Value)
		}
		r := got.Value[0]
		if r.ID != e.rbacRoleID(rbacReader) || r.Name != rbacReader || r.Properties.RoleName != "Reader" || r.Properties.Type != "BuiltInRole" ||
			len(r.Properties.Permissions) != 1 || !slices.Equal(r.Properties.Permissions[0].Actions, []string{"*/read"}) {
			t.Errorf("az rest roleDefinitions $filter=roleName eq 'Reader' = %+v, want %s Reader BuiltInRole */read", r, e.rbacRoleID(rbacReader))
		}
	})

	t.Run("lock", func(t *testing.T) {
		t.Parallel()
		lockID := lockScope + "/providers/Microsoft.Authorization/locks/nodelete"
		var lock struct {
			ID         string `json:"id"`
			Properties struct {
				Level string `json:"level"`
			} `json:"properties"`
		}
		az.json(t, &lock, "resource", "create", "--id", lockID, "--api-version", lockAPIVersion, "-p", `{"level":"CanNotDelete","notes":"az"}`)
		if !strings.EqualFold(lock.ID, lockID) || lock.Properties.Level != "CanNotDelete" {
			t.Errorf("az resource create lock = id %s, level %s; want %s, CanNotDelete", lock.ID, lock.Properties.Level, lockID)
		}
		canary := e.ipPrefixID(lockGroup, "canary")
		waitLocked(t, "the lock az made shows", func() error { return rbacDeleteByID(t, admin, canary) })

		az.fail(t, []string{"ScopeLocked"}, "group", "delete", "-n", lockGroup, "--yes")
		// az resource delete only says that the delete failed; --verbose
		// makes it print the error.
		az.fail(t, []string{"ScopeLocked"}, "resource", "delete", "--ids", prefix, "--verbose")
		if _, err := admin.resources.GetByID(ctx, prefix, fabricAPIVersion, nil); err != nil {
			t.Errorf("GetByID(%s) after the refused az resource delete = %v", prefix, err)
		}

		az.ok(t, "resource", "delete", "--ids", lockID, "--api-version", lockAPIVersion)
		waitUnlocked(t, "deleting the lock with az lifts it", func() error { return rbacDeleteByID(t, admin, canary) })
		az.ok(t, "group", "delete", "-n", lockGroup, "--yes")
		_, err := admin.groups.Get(ctx, lockGroup, nil)
		rbacCheckError(t, "ResourceGroups.Get after az group delete", err, http.StatusNotFound, "ResourceGroupNotFound")
	})

	t.Run("reader", func(t *testing.T) {
		t.Parallel()
		rc := newRBACClients(t, e, reader.cred)
		rbacEventually(t, "the az rest assignment lets the reader read "+readerGroup, func() error {
			_, err := rc.groups.Get(ctx, readerGroup, nil)
			return err
		})
		raz := newAzCLI(t, e.cp)
		raz.secret = reader.Secret
		t.Cleanup(func() { raz.logTimings(t) })
		rbacAzLogin(t, raz, reader.AppID, reader.Secret, c.ARMEndpoint, c.TenantID, e.sub)

		var groups []azResource
		raz.json(t, &groups, "group", "list")
		var names []string
		for _, g := range groups {
			names = append(names, g.Name)
		}
		if diff := cmp.Diff([]string{readerGroup}, names); diff != "" {
			t.Errorf("az group list as the reader mismatch (-want +got):\n%s", diff)
		}
		raz.fail(t, []string{"AuthorizationFailed", reader.ObjectID}, "group", "create", "-n", "az-reader-new-rg", "-l", "local")
		raz.fail(t, []string{"AuthorizationFailed"}, "group", "show", "-n", lockGroup)
	})
}

// rbacAzLogin registers the control plane as a cloud in az's config and
// logs in as a service principal, which must see exactly the subscription
// sub.
func rbacAzLogin(t *testing.T, az *azCLI, appID, secret, endpoint, tenant, sub string) {
	t.Helper()
	az.ok(t, "cloud", "register", "-n", "citadel", "--endpoint-resource-manager", endpoint)
	az.ok(t, "cloud", "set", "-n", "citadel")
	var subs []struct {
		ID string `json:"id"`
	}
	az.json(t, &subs, "login", "--service-principal", "-u", appID, "-p", secret, "--tenant", tenant)
	if len(subs) != 1 || subs[0].ID != sub {
		t.Fatalf("az login as %s = %+v, want subscription %s", appID, subs, sub)
	}
}
