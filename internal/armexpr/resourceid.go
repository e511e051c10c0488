package armexpr

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ResourceID joins a scope, a resource type and its names into a resource
// ID: scope + "/providers/Ns/type1/name1[/type2/name2...]". The scope is
// "" (the tenant), a subscription, a resource group, a management group or
// any resource ID (for extension resources). A name may hold several
// segments ("vnet/subnet"); there must be one per type segment after the
// namespace. A resource group in a subscription is the special ID
// /subscriptions/{s}/resourceGroups/{name}.
func ResourceID(scope, resourceType string, names ...string) (string, error) {
	segs := strings.Split(strings.Trim(resourceType, "/"), "/")
	if len(segs) < 2 || slices.Contains(segs, "") {
		return "", fmt.Errorf("the resource type '%s' must be 'Namespace/type' with optional child types", resourceType)
	}
	var nameSegs []string
	for _, n := range names {
		nameSegs = append(nameSegs, strings.Split(n, "/")...)
	}
	if len(nameSegs) != len(segs)-1 {
		return "", fmt.Errorf("the resource type '%s' needs %d name segment(s) but '%s' has %d", resourceType, len(segs)-1, strings.Join(names, "/"), len(nameSegs))
	}
	scope = strings.TrimSuffix(scope, "/")
	if strings.EqualFold(resourceType, "Microsoft.Resources/resourceGroups") && isSubscriptionID(scope) {
		return scope + "/resourceGroups/" + nameSegs[0], nil
	}
	var b strings.Builder
	b.WriteString(scope)
	b.WriteString("/providers/")
	b.WriteString(segs[0])
	for i, t := range segs[1:] {
		b.WriteString("/" + t + "/" + nameSegs[i])
	}
	return b.String(), nil
}

// isSubscriptionID reports whether an ID is exactly /subscriptions/{s}.
func isSubscriptionID(id string) bool {
	rest, ok := strings.CutPrefix(strings.ToLower(id), "/subscriptions/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// SubscriptionID is the ID of a subscription.
func SubscriptionID(subscriptionID string) string { return "/subscriptions/" + subscriptionID }

// ResourceGroupID is the ID of a resource group.
func ResourceGroupID(subscriptionID, resourceGroup string) string {
	return "/subscriptions/" + subscriptionID + "/resourceGroups/" + resourceGroup
}

// ManagementGroupID is the ID of a management group.
func ManagementGroupID(managementGroup string) string {
	return "/providers/Microsoft.Management/managementGroups/" + managementGroup
}

// ResourceIDFunctions returns resourceId(), subscriptionResourceId(),
// tenantResourceId(), extensionResourceId() and
// managementGroupResourceId() for a deployment at a scope: a resource
// group (both IDs set), a subscription (no resource group), a management
// group (only managementGroup) or the tenant (none). At a scope above a
// resource group, resourceId() without a resource group argument builds
// an ID at that scope.
func ResourceIDFunctions(subscriptionID, resourceGroup, managementGroup string) map[string]Func {
	return map[string]Func{
		"resourceId": Eager(2, -1, func(args []any) (any, error) {
			before, typ, names, err := typeAndNames(args, 2)
			if err != nil {
				return nil, err
			}
			sub, rg := subscriptionID, resourceGroup
			switch len(before) {
			case 1:
				rg = before[0]
			case 2:
				sub, rg = before[0], before[1]
			}
			scope := ""
			switch {
			case rg != "":
				if sub == "" {
					return nil, errors.New("a resource group ID needs a subscription, and this deployment is not in one")
				}
				scope = ResourceGroupID(sub, rg)
			case sub != "":
				scope = SubscriptionID(sub)
			}
			return ResourceID(scope, typ, names...)
		}),
		"subscriptionResourceId": Eager(2, -1, func(args []any) (any, error) {
			before, typ, names, err := typeAndNames(args, 1)
			if err != nil {
				return nil, err
			}
			sub := subscriptionID
			if len(before) == 1 {
				sub = before[0]
			}
			if sub == "" {
				return nil, errors.New("this deployment is not in a subscription: pass the subscription ID")
			}
			return ResourceID(SubscriptionID(sub), typ, names...)
		}),
		"managementGroupResourceId": Eager(2, -1, func(args []any) (any, error) {
			before, typ, names, err := typeAndNames(args, 1)
			if err != nil {
				return nil, err
			}
			mg := managementGroup
			if len(before) == 1 {
				mg = before[0]
			}
			if mg == "" {
				return nil, errors.New("this deployment is not in a management group: pass the management group name")
			}
			return ResourceID(ManagementGroupID(mg), typ, names...)
		}),
		"tenantResourceId": Eager(2, -1, func(args []any) (any, error) {
			_, typ, names, err := typeAndNames(args, 0)
			if err != nil {
				return nil, err
			}
			return ResourceID("", typ, names...)
		}),
		"extensionResourceId": Eager(3, -1, func(args []any) (any, error) {
			base, err := stringArg(args, 0)
			if err != nil {
				return nil, err
			}
			_, typ, names, err := typeAndNames(args[1:], 0)
			if err != nil {
				return nil, err
			}
			return ResourceID(base, typ, names...)
		}),
	}
}

// typeAndNames splits string arguments into up to maxBefore leading scope
// arguments, the resource type (the first argument with a '/') and the
// names after it.
func typeAndNames(args []any, maxBefore int) (before []string, typ string, names []string, err error) {
	strs := make([]string, len(args))
	for i := range args {
		if strs[i], err = stringArg(args, i); err != nil {
			return nil, "", nil, err
		}
	}
	at := -1
	for i, s := range strs {
		if strings.Contains(s, "/") {
			at = i
			break
		}
	}
	switch {
	case at < 0:
		return nil, "", nil, errors.New("no argument is a resource type such as 'Microsoft.Network/virtualNetworks'")
	case at > maxBefore:
		return nil, "", nil, fmt.Errorf("the resource type '%s' must come within the first %d argument(s)", strs[at], maxBefore+1)
	case at == len(strs)-1:
		return nil, "", nil, fmt.Errorf("the resource type '%s' needs at least one resource name after it", strs[at])
	}
	return strs[:at], strs[at], strs[at+1:], nil
}
