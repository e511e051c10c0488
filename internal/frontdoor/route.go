package frontdoor

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/providers/authorization"
	"github.com/citadel-cloud/citadel/internal/providers/resources"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// route is where a request goes and what the caller must be allowed to do
// for it.
type route struct {
	// action is the ARM operation checked against RBAC and locks at scope.
	// It is empty only for reads that every authenticated caller may make
	// (tenants, providers) or whose answers are filtered item by item
	// (lists, operation status); a mutating route always has one.
	action string
	scope  string
	serve  func(ctx context.Context) (*resource.Response, error)
	// change is set on the routes that create, update or delete a
	// resource: Azure Policy applies to them.
	change string // http.MethodPut, http.MethodPatch or http.MethodDelete
}

// open is a route with no action: a read everyone may make, or a list
// filtered to what the caller may read.
func open(serve func(ctx context.Context) (*resource.Response, error)) route {
	return route{serve: serve}
}

// checked is a route on which the caller needs action at scope.
func checked(action, scope string, serve func(ctx context.Context) (*resource.Response, error)) route {
	return route{action: action, scope: scope, serve: serve}
}

// route maps a parsed path and method to its route (arm-contract §1, §3).
func (f *FrontDoor) route(method string, p arm.Path, req *resource.Request, expand string, who authz.Principal) (route, error) {
	id := p.ID
	if id.Namespace == "" && id.ResourceGroup != "" && len(p.Tail) >= 2 && strings.EqualFold(p.Tail[0], "deployments") {
		// A group's deployments also answer at ARM's older path without
		// providers/Microsoft.Resources (az lists deployment operations there).
		p.ID = arm.ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup,
			Namespace: "Microsoft.Resources", Types: []string{"deployments"}, Names: []string{p.Tail[1]}}
		p.Tail = p.Tail[2:]
		req.ID, req.Path = p.ID, p.ID.String()+tailPath(p.Tail)
		return f.route(method, p, req, expand, who)
	}
	switch {
	case id.IsZero():
		return f.routeTenant(method, p.Tail, req)
	case id.Namespace == "" && id.ResourceGroup == "":
		return f.routeSubscription(method, p.Tail, req, expand)
	case id.Namespace == "":
		return f.routeGroup(method, p.Tail, req, expand)
	case len(id.Types) == 0:
		return f.routeNamespace(method, p.Tail, req, who)
	case isActivityLog(id, p.Tail) && f.insights != nil:
		scope := "/"
		if id.Subscription != "" {
			scope = "/subscriptions/" + id.Subscription
		}
		return only(method, http.MethodGet, checked("Microsoft.Insights/eventtypes/values/read", scope,
			func(ctx context.Context) (*resource.Response, error) {
				return f.insights.ListEvents(ctx, req, id.Subscription, req.Filter, req.Select)
			}))
	case isOperationURL(id) && len(p.Tail) == 0:
		return only(method, http.MethodGet, open(func(ctx context.Context) (*resource.Response, error) {
			if strings.EqualFold(id.Types[1], "operationStatuses") {
				return f.svc.OperationStatus(ctx, req, id.Subscription, id.Names[1])
			}
			return f.svc.OperationResult(ctx, req, id.Subscription, id.Names[1])
		}))
	}
	switch len(p.Tail) {
	case 0:
		return f.crud(method, req)
	case 1:
		name := p.Tail[0]
		if method == http.MethodPost {
			return checked(authz.Operation(id.Type(), method, name), id.String(), func(ctx context.Context) (*resource.Response, error) {
				return f.svc.Action(ctx, req, name)
			}), nil
		}
		return only(method, http.MethodGet, open(func(ctx context.Context) (*resource.Response, error) {
			return f.svc.List(ctx, req, name)
		}))
	}
	return route{}, notFound(req)
}

// isActivityLog matches [/subscriptions/{s}]/providers/Microsoft.Insights/eventtypes/management/values:
// a subscription's activity log, or without one the tenant's (what happens
// at the tenant root: role assignments there, identities).
func isActivityLog(id arm.ID, tail []string) bool {
	return id.ResourceGroup == "" && id.Scope == nil &&
		strings.EqualFold(id.Namespace, "Microsoft.Insights") && len(id.Types) == 1 &&
		strings.EqualFold(id.Types[0], "eventtypes") && strings.EqualFold(id.Names[0], "management") && is(tail, "values")
}

// isOperationURL matches …/providers/{ns}/locations/{loc}/operationStatuses|operationResults/{id}.
func isOperationURL(id arm.ID) bool {
	return id.ResourceGroup == "" && id.Scope == nil && len(id.Types) == 2 &&
		strings.EqualFold(id.Types[0], "locations") &&
		(strings.EqualFold(id.Types[1], "operationStatuses") || strings.EqualFold(id.Types[1], "operationResults"))
}

func (f *FrontDoor) routeTenant(method string, tail []string, req *resource.Request) (route, error) {
	switch {
	case is(tail, "tenants"):
		return core(method, req, open(f.core.ListTenants))
	case is(tail, "subscriptions"):
		return core(method, req, open(func(ctx context.Context) (*resource.Response, error) { return f.core.ListSubscriptions(ctx, req) }))
	case is(tail, "providers"):
		return core(method, req, open(func(ctx context.Context) (*resource.Response, error) { return f.core.ListProviders(ctx, "") }))
	}
	return route{}, notFound(req)
}

func (f *FrontDoor) routeSubscription(method string, tail []string, req *resource.Request, expand string) (route, error) {
	sub := req.ID.Subscription
	scope := req.ID.String()
	switch {
	case len(tail) == 0:
		return core(method, req, checked("Microsoft.Resources/subscriptions/read", scope, func(ctx context.Context) (*resource.Response, error) {
			return f.core.GetSubscription(ctx, sub)
		}))
	case is(tail, "locations"):
		return core(method, req, checked("Microsoft.Resources/subscriptions/locations/read", scope, func(ctx context.Context) (*resource.Response, error) {
			return f.core.ListLocations(ctx, sub)
		}))
	case is(tail, "providers"):
		return core(method, req, open(func(ctx context.Context) (*resource.Response, error) { return f.core.ListProviders(ctx, sub) }))
	case is(tail, "resourceGroups"):
		return only(method, http.MethodGet, open(func(ctx context.Context) (*resource.Response, error) {
			return f.svc.List(ctx, req, resources.Namespace+"/resourceGroups")
		}))
	case is(tail, "resources"):
		return core(method, req, open(func(ctx context.Context) (*resource.Response, error) {
			return f.core.ListResources(ctx, req, req.Filter, expand)
		}))
	case len(tail) == 2 && strings.EqualFold(tail[0], "operationresults"):
		return only(method, http.MethodGet, open(func(ctx context.Context) (*resource.Response, error) {
			return f.svc.OperationResult(ctx, req, sub, tail[1])
		}))
	}
	return route{}, notFound(req)
}

func (f *FrontDoor) routeGroup(method string, tail []string, req *resource.Request, expand string) (route, error) {
	switch {
	case len(tail) == 0:
		return f.crud(method, req)
	case is(tail, "resources"):
		return core(method, req, open(func(ctx context.Context) (*resource.Response, error) {
			return f.core.ListResources(ctx, req, req.Filter, expand)
		}))
	}
	return route{}, notFound(req)
}

// routeNamespace serves [{scope}]/providers/{ns}[/{type}|/register]: a
// provider, its registration, or a collection at the tenant root, a
// subscription, a group or a resource.
func (f *FrontDoor) routeNamespace(method string, tail []string, req *resource.Request, who authz.Principal) (route, error) {
	id := req.ID
	atSubscription := id.Subscription != "" && id.ResourceGroup == "" && id.Scope == nil
	switch {
	case id.Subscription == "" && strings.EqualFold(id.Namespace, "Citadel.Audit") && is(tail, "export") && f.insights != nil:
		return only(method, http.MethodGet, checked("Citadel.Audit/export/read", "/", func(ctx context.Context) (*resource.Response, error) {
			return f.insights.Export(ctx, req, req.Query.Get("from"), req.Query.Get("to"))
		}))
	case id.Subscription != "" && strings.EqualFold(id.Namespace, "Microsoft.Authorization") && is(tail, "permissions"):
		// What the caller's roles allow here: anyone may ask about
		// themselves (the portal greys out what they cannot do).
		scope := arm.ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup}
		if id.Scope != nil {
			scope = *id.Scope
		}
		if !slices.Contains(authorization.PermissionsVersions, req.APIVersion) {
			return route{}, arm.InvalidAPIVersion(req.APIVersion, authorization.PermissionsVersions)
		}
		return only(method, http.MethodGet, open(func(ctx context.Context) (*resource.Response, error) {
			return permissionsResponse(f.authz.Permissions(who, scope.String())), nil
		}))
	case len(tail) == 0 && id.ResourceGroup == "" && id.Scope == nil:
		return core(method, req, open(func(ctx context.Context) (*resource.Response, error) {
			return f.core.GetProvider(ctx, id.Subscription, id.Namespace)
		}))
	case atSubscription && (is(tail, "register") || is(tail, "unregister")) && method == http.MethodPost:
		if err := resources.CheckAPIVersion(req.APIVersion); err != nil {
			return route{}, err
		}
		// Every namespace served stays registered; registering is allowed
		// and changes nothing.
		return checked(id.Namespace+"/"+strings.ToLower(tail[0])+"/action", "/subscriptions/"+id.Subscription,
			func(ctx context.Context) (*resource.Response, error) {
				return f.core.GetProvider(ctx, id.Subscription, id.Namespace)
			}), nil
	case len(tail) == 1:
		return only(method, http.MethodGet, open(func(ctx context.Context) (*resource.Response, error) {
			return f.svc.List(ctx, req, tail[0])
		}))
	}
	return route{}, notFound(req)
}

// crud routes the methods on one resource (a group or a typed resource).
func (f *FrontDoor) crud(method string, req *resource.Request) (route, error) {
	var fn func(context.Context, *resource.Request) (*resource.Response, error)
	switch method {
	case http.MethodGet:
		fn = f.svc.Get
	case http.MethodHead:
		fn = f.svc.Head
	case http.MethodPut:
		fn = f.svc.Put
	case http.MethodPatch:
		fn = f.svc.Patch
	case http.MethodDelete:
		fn = f.svc.Delete
	default:
		return route{}, methodNotAllowed(method)
	}
	r := checked(authz.Operation(req.ID.Type(), method, ""), req.ID.String(), func(ctx context.Context) (*resource.Response, error) {
		return fn(ctx, req)
	})
	if method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete {
		r.change = method
	}
	return r, nil
}

// core is a Microsoft.Resources endpoint: GET only, core api-versions.
func core(method string, req *resource.Request, r route) (route, error) {
	if err := resources.CheckAPIVersion(req.APIVersion); err != nil {
		return route{}, err
	}
	return only(method, http.MethodGet, r)
}

func only(method, allowed string, r route) (route, error) {
	if method != allowed {
		return route{}, methodNotAllowed(method)
	}
	return r, nil
}

func is(tail []string, name string) bool { return len(tail) == 1 && strings.EqualFold(tail[0], name) }

func methodNotAllowed(method string) error {
	return arm.Errorf(http.StatusMethodNotAllowed, arm.CodeMethodNotAllowed, "The HTTP method '%s' is not supported at this path.", method)
}

func notFound(req *resource.Request) error {
	return arm.Errorf(http.StatusNotFound, "NotFound", "No route matches the path '%s'.", req.Path)
}

// permissionsResponse is ARM's Permissions list: one entry per permission
// of each role the caller holds.
func permissionsResponse(ps []authz.Permission) *resource.Response {
	value := make([]any, len(ps))
	for i, p := range ps {
		value[i] = map[string]any{
			"actions": orEmpty(p.Actions), "notActions": orEmpty(p.NotActions),
			"dataActions": orEmpty(p.DataActions), "notDataActions": orEmpty(p.NotDataActions),
		}
	}
	return &resource.Response{Status: http.StatusOK, Body: map[string]any{"value": value}}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
