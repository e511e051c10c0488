package authz

import (
	"slices"
)

// RoleDefinition is a Microsoft.Authorization/roleDefinitions resource: a
// named set of permissions. Name is the role's GUID, ID its full resource ID
// (/providers/Microsoft.Authorization/roleDefinitions/{guid} for a built-in
// role).
type RoleDefinition struct {
	ID               string
	Name             string // the GUID
	RoleName         string // e.g. "Reader"
	Type             string // RoleTypeBuiltIn or RoleTypeCustom
	Description      string
	AssignableScopes []string
	Permissions      []Permission
}

// Role types, as in properties.type.
const (
	RoleTypeBuiltIn = "BuiltInRole"
	RoleTypeCustom  = "CustomRole"
)

// Permission is one entry of a role's (or a deny assignment's) permissions.
// An operation is covered if it matches some pattern of Actions and none of
// NotActions of the same Permission. Patterns are ARM operation names in
// which '*' matches any run of characters, '/' included; case is ignored.
// DataActions and NotDataActions are kept and returned, but Check evaluates
// control-plane operations only: a data action never grants one.
type Permission struct {
	Actions        []string
	NotActions     []string
	DataActions    []string
	NotDataActions []string
}

// GUIDs of the built-in roles. The first five are Azure's; the Citadel roles
// are UUIDv5 of "citadel:role:{RoleName}" in the URL namespace, so they never
// change.
const (
	OwnerRole                     = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	ContributorRole               = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	ReaderRole                    = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	UserAccessAdministratorRole   = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	RBACAdministratorRole         = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
	BareMetalMachineOperatorRole  = "947d48a7-fa50-5271-9def-4feeb1f6127f"
	NetworkFabricOperatorRole     = "8a95dcc0-bb3d-50db-8e5e-f736546c7c7a"
	VirtualMachineContributorRole = "20c2eeb0-fa68-5d6b-8221-eed60900d21f"
	AuditorRole                   = "98c7bee1-d1ba-58e8-b97a-4ef54e636ceb"
)

// BuiltInRoles returns the built-in roles, assignable at every scope ("/").
// The first five are Azure's, with Azure's GUIDs and permissions; the last
// four are Citadel's. Each call returns a fresh copy. Actions marked "not"
// are NotActions.
//
//	Role                                     GUID                                  Actions
//	Owner                                    8e3af657-a8ff-443c-a75c-2fe8c4bcb635  *
//	Contributor                              b24988ac-6180-42a0-ab88-20f7382dd24c  *
//	                                                                               not Microsoft.Authorization/*/Delete
//	                                                                               not Microsoft.Authorization/*/Write
//	                                                                               not Microsoft.Authorization/elevateAccess/Action
//	                                                                               not Microsoft.Blueprint/blueprintAssignments/write
//	                                                                               not Microsoft.Blueprint/blueprintAssignments/delete
//	                                                                               not Microsoft.Compute/galleries/share/action
//	                                                                               not Microsoft.Purview/consents/write
//	                                                                               not Microsoft.Purview/consents/delete
//	                                                                               not Microsoft.Resources/deploymentStacks/manageDenySetting/action
//	                                                                               not Microsoft.Subscription/cancel/action
//	                                                                               not Microsoft.Subscription/enable/action
//	Reader                                   acdd72a7-3385-48ef-bd42-f606fba81ae7  */read
//	User Access Administrator                18d7d88d-d35e-4fb5-a5c3-7773c20a72d9  */read
//	                                                                               Microsoft.Authorization/*
//	                                                                               Microsoft.Support/*
//	Role Based Access Control Administrator  f58310d9-a9f6-439a-9e8d-f62e7b41a168  Microsoft.Authorization/roleAssignments/write
//	                                                                               Microsoft.Authorization/roleAssignments/delete
//	                                                                               */read
//	                                                                               Microsoft.Support/*
//	Bare Metal Machine Operator              947d48a7-fa50-5271-9def-4feeb1f6127f  */read
//	                                                                               Microsoft.NetworkCloud/bareMetalMachines/*/action
//	                                                                               Microsoft.NetworkCloud/bareMetalMachines/write
//	Network Fabric Operator                  8a95dcc0-bb3d-50db-8e5e-f736546c7c7a  */read
//	                                                                               Microsoft.ManagedNetworkFabric/*
//	Virtual Machine Contributor              20c2eeb0-fa68-5d6b-8221-eed60900d21f  Microsoft.NetworkCloud/virtualMachines/*
//	                                                                               Microsoft.NetworkCloud/volumes/*
//	                                                                               Microsoft.NetworkCloud/cloudServicesNetworks/read
//	                                                                               Microsoft.NetworkCloud/l2Networks/read
//	                                                                               Microsoft.NetworkCloud/l3Networks/read
//	                                                                               Microsoft.NetworkCloud/trunkedNetworks/read
//	                                                                               Microsoft.AzureStackHCI/virtualMachineInstances/*
//	                                                                               Microsoft.AzureStackHCI/networkInterfaces/*
//	                                                                               Microsoft.AzureStackHCI/virtualHardDisks/*
//	                                                                               Microsoft.AzureStackHCI/logicalNetworks/read
//	                                                                               Microsoft.AzureStackHCI/galleryImages/read
//	                                                                               Microsoft.AzureStackHCI/marketplaceGalleryImages/read
//	                                                                               Microsoft.AzureStackHCI/storageContainers/read
//	                                                                               Microsoft.Resources/subscriptions/resourceGroups/read
//	                                                                               Microsoft.Resources/deployments/*
//	Auditor                                  98c7bee1-d1ba-58e8-b97a-4ef54e636ceb  */read
//	                                                                               Microsoft.Insights/eventtypes/values/read
//	                                                                               Microsoft.PolicyInsights/policyStates/queryResults/action
//
// None of them has data actions. The Citadel roles are:
//
//   - Bare Metal Machine Operator reads all infrastructure, writes
//     bare-metal machines and runs their actions (power off, restart,
//     cordon, reimage, replace, run commands). It cannot delete them or
//     change anything else.
//   - Network Fabric Operator reads everything and manages the network
//     fabric (Microsoft.ManagedNetworkFabric).
//   - Virtual Machine Contributor is self-service: virtual machines and
//     their volumes, disks and network interfaces, plus reading the
//     networks, images and storage containers a VM is built from and the
//     resource group, and deployments (of templates that create VMs). It
//     cannot read anything else.
//   - Auditor reads everything, the activity log and policy states, and
//     writes nothing.
func BuiltInRoles() []RoleDefinition {
	builtIn := func(name, roleName, desc string, actions, notActions []string) RoleDefinition {
		return RoleDefinition{
			ID:               "/providers/Microsoft.Authorization/roleDefinitions/" + name,
			Name:             name,
			RoleName:         roleName,
			Type:             RoleTypeBuiltIn,
			Description:      desc,
			AssignableScopes: []string{"/"},
			Permissions: []Permission{{
				Actions:        actions,
				NotActions:     notActions,
				DataActions:    []string{},
				NotDataActions: []string{},
			}},
		}
	}
	none := []string{}
	return []RoleDefinition{
		builtIn(OwnerRole, "Owner",
			"Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
			[]string{"*"}, none),
		builtIn(ContributorRole, "Contributor",
			"Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
			[]string{"*"}, []string{
				"Microsoft.Authorization/*/Delete",
				"Microsoft.Authorization/*/Write",
				"Microsoft.Authorization/elevateAccess/Action",
				"Microsoft.Blueprint/blueprintAssignments/write",
				"Microsoft.Blueprint/blueprintAssignments/delete",
				"Microsoft.Compute/galleries/share/action",
				"Microsoft.Purview/consents/write",
				"Microsoft.Purview/consents/delete",
				"Microsoft.Resources/deploymentStacks/manageDenySetting/action",
				"Microsoft.Subscription/cancel/action",
				"Microsoft.Subscription/enable/action",
			}),
		builtIn(ReaderRole, "Reader",
			"View all resources, but does not allow you to make any changes.",
			[]string{"*/read"}, none),
		builtIn(UserAccessAdministratorRole, "User Access Administrator",
			"Lets you manage user access to Azure resources.",
			[]string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}, none),
		builtIn(RBACAdministratorRole, "Role Based Access Control Administrator",
			"Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.",
			[]string{
				"Microsoft.Authorization/roleAssignments/write",
				"Microsoft.Authorization/roleAssignments/delete",
				"*/read",
				"Microsoft.Support/*",
			}, none),
		builtIn(BareMetalMachineOperatorRole, "Bare Metal Machine Operator",
			"Read all infrastructure, update bare-metal machines and run their actions (power off, restart, cordon, reimage, replace, run commands).",
			[]string{
				"*/read",
				"Microsoft.NetworkCloud/bareMetalMachines/*/action",
				"Microsoft.NetworkCloud/bareMetalMachines/write",
			}, none),
		builtIn(NetworkFabricOperatorRole, "Network Fabric Operator",
			"Read all resources and manage the network fabric.",
			[]string{"*/read", "Microsoft.ManagedNetworkFabric/*"}, none),
		builtIn(VirtualMachineContributorRole, "Virtual Machine Contributor",
			"Create and manage virtual machines and their volumes, disks and network interfaces, and read the networks and images they use. No access to other resources.",
			[]string{
				"Microsoft.NetworkCloud/virtualMachines/*",
				"Microsoft.NetworkCloud/volumes/*",
				"Microsoft.NetworkCloud/cloudServicesNetworks/read",
				"Microsoft.NetworkCloud/l2Networks/read",
				"Microsoft.NetworkCloud/l3Networks/read",
				"Microsoft.NetworkCloud/trunkedNetworks/read",
				"Microsoft.AzureStackHCI/virtualMachineInstances/*",
				"Microsoft.AzureStackHCI/networkInterfaces/*",
				"Microsoft.AzureStackHCI/virtualHardDisks/*",
				"Microsoft.AzureStackHCI/logicalNetworks/read",
				"Microsoft.AzureStackHCI/galleryImages/read",
				"Microsoft.AzureStackHCI/marketplaceGalleryImages/read",
				"Microsoft.AzureStackHCI/storageContainers/read",
				"Microsoft.Resources/subscriptions/resourceGroups/read",
				"Microsoft.Resources/deployments/*",
			}, none),
		builtIn(AuditorRole, "Auditor",
			"Read all resources, the activity log and policy states. No changes.",
			[]string{
				"*/read",
				"Microsoft.Insights/eventtypes/values/read",
				"Microsoft.PolicyInsights/policyStates/queryResults/action",
			}, none),
	}
}

// AssignableAt reports whether r may be assigned at scope: whether one of its
// AssignableScopes is scope or an ancestor of it.
func (r RoleDefinition) AssignableAt(scope string) bool {
	s := scopeKey(scope)
	return slices.ContainsFunc(r.AssignableScopes, func(a string) bool { return covers(scopeKey(a), s) })
}

// clone returns a deep copy of r, so that a Policy shares no slice with its
// caller.
func (r RoleDefinition) clone() RoleDefinition {
	r.AssignableScopes = slices.Clone(r.AssignableScopes)
	r.Permissions = clonePermissions(r.Permissions)
	return r
}

func clonePermissions(ps []Permission) []Permission {
	ps = slices.Clone(ps)
	for i, p := range ps {
		ps[i] = Permission{
			Actions:        slices.Clone(p.Actions),
			NotActions:     slices.Clone(p.NotActions),
			DataActions:    slices.Clone(p.DataActions),
			NotDataActions: slices.Clone(p.NotDataActions),
		}
	}
	return ps
}
