package frontdoor

import (
	"context"
	"net/http"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/providers/resources"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// handler answers one routed request.
type handler func(ctx context.Context) (*resource.Response, error)

// route maps a parsed path and method to its handler (arm-contract §1, §3).
func (f *FrontDoor) route(method string, p arm.Path, req *resource.Request, expand string) (handler, error) {
	id := p.ID
	switch {
	case id.IsZero():
		return f.routeTenant(method, p.Tail, req)
	case id.Namespace == "" && id.ResourceGroup == "":
		return f.routeSubscription(method, p.Tail, req, expand)
	case id.Namespace == "":
		return f.routeGroup(method, p.Tail, req, expand)
	case len(id.Types) == 0:
		return f.routeNamespace(method, p.Tail, req)
	case isOperationURL(id) && len(p.Tail) == 0:
		return only(method, http.MethodGet, func(ctx context.Context) (*resource.Response, error) {
			if strings.EqualFold(id.Types[1], "operationStatuses") {
				return f.svc.OperationStatus(ctx, id.Subscription, id.Names[1])
			}
			return f.svc.OperationResult(ctx, req, id.Subscription, id.Names[1])
		})
	}
	switch len(p.Tail) {
	case 0:
		return f.crud(method, req)
	case 1:
		if method == http.MethodPost {
			return func(ctx context.Context) (*resource.Response, error) { return f.svc.Action(ctx, req, p.Tail[0]) }, nil
		}
		return only(method, http.MethodGet, func(ctx context.Context) (*resource.Response, error) {
			return f.svc.List(ctx, req, p.Tail[0])
		})
	}
	return nil, notFound(req)
}

// isOperationURL matches …/providers/{ns}/locations/{loc}/operationStatuses|operationResults/{id}.
func isOperationURL(id arm.ID) bool {
	return id.ResourceGroup == "" && id.Scope == nil && len(id.Types) == 2 &&
		strings.EqualFold(id.Types[0], "locations") &&
		(strings.EqualFold(id.Types[1], "operationStatuses") || strings.EqualFold(id.Types[1], "operationResults"))
}

func (f *FrontDoor) routeTenant(method string, tail []string, req *resource.Request) (handler, error) {
	switch {
	case is(tail, "tenants"):
		return core(method, req, f.core.ListTenants)
	case is(tail, "subscriptions"):
		return core(method, req, f.core.ListSubscriptions)
	case is(tail, "providers"):
		return core(method, req, func(ctx context.Context) (*resource.Response, error) { return f.core.ListProviders(ctx, "") })
	}
	return nil, notFound(req)
}

func (f *FrontDoor) routeSubscription(method string, tail []string, req *resource.Request, expand string) (handler, error) {
	sub := req.ID.Subscription
	switch {
	case len(tail) == 0:
		return core(method, req, func(ctx context.Context) (*resource.Response, error) { return f.core.GetSubscription(ctx, sub) })
	case is(tail, "locations"):
		return core(method, req, func(ctx context.Context) (*resource.Response, error) { return f.core.ListLocations(ctx, sub) })
	case is(tail, "providers"):
		return core(method, req, func(ctx context.Context) (*resource.Response, error) { return f.core.ListProviders(ctx, sub) })
	case is(tail, "resourceGroups"):
		return only(method, http.MethodGet, func(ctx context.Context) (*resource.Response, error) {
			return f.svc.List(ctx, req, resources.Namespace+"/resourceGroups")
		})
	case is(tail, "resources"):
		return core(method, req, func(ctx context.Context) (*resource.Response, error) {
			return f.core.ListResources(ctx, req, req.Filter, expand)
		})
	case len(tail) == 2 && strings.EqualFold(tail[0], "operationresults"):
		return only(method, http.MethodGet, func(ctx context.Context) (*resource.Response, error) {
			return f.svc.OperationResult(ctx, req, sub, tail[1])
		})
	}
	return nil, notFound(req)
}

func (f *FrontDoor) routeGroup(method string, tail []string, req *resource.Request, expand string) (handler, error) {
	switch {
	case len(tail) == 0:
		return f.crud(method, req)
	case is(tail, "resources"):
		return core(method, req, func(ctx context.Context) (*resource.Response, error) {
			return f.core.ListResources(ctx, req, req.Filter, expand)
		})
	}
	return nil, notFound(req)
}

// routeNamespace serves [{scope}]/providers/{ns}[/{type}|/register]: a
// provider, its registration, or a collection at the tenant root, a
// subscription, a group or a resource.
func (f *FrontDoor) routeNamespace(method string, tail []string, req *resource.Request) (handler, error) {
	id := req.ID
	switch {
	case len(tail) == 0 && id.ResourceGroup == "" && id.Scope == nil:
		return core(method, req, func(ctx context.Context) (*resource.Response, error) {
			return f.core.GetProvider(ctx, id.Subscription, id.Namespace)
		})
	case id.Subscription != "" && id.ResourceGroup == "" && id.Scope == nil && (is(tail, "register") || is(tail, "unregister")) && method == http.MethodPost:
		return core(http.MethodGet, req, func(ctx context.Context) (*resource.Response, error) {
			return f.core.GetProvider(ctx, id.Subscription, id.Namespace)
		})
	case len(tail) == 1:
		return only(method, http.MethodGet, func(ctx context.Context) (*resource.Response, error) {
			return f.svc.List(ctx, req, tail[0])
		})
	}
	return nil, notFound(req)
}

// crud routes the methods on one resource (a group or a typed resource).
func (f *FrontDoor) crud(method string, req *resource.Request) (handler, error) {
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
		return nil, methodNotAllowed(method)
	}
	return func(ctx context.Context) (*resource.Response, error) { return fn(ctx, req) }, nil
}

// core wraps a Microsoft.Resources endpoint: GET only, core api-versions.
func core(method string, req *resource.Request, fn handler) (handler, error) {
	if err := resources.CheckAPIVersion(req.APIVersion); err != nil {
		return nil, err
	}
	return only(method, http.MethodGet, fn)
}

func only(method, allowed string, fn handler) (handler, error) {
	if method != allowed {
		return nil, methodNotAllowed(method)
	}
	return fn, nil
}

func is(tail []string, name string) bool { return len(tail) == 1 && strings.EqualFold(tail[0], name) }

func methodNotAllowed(method string) error {
	return arm.Errorf(http.StatusMethodNotAllowed, arm.CodeMethodNotAllowed, "The HTTP method '%s' is not supported at this path.", method)
}

func notFound(req *resource.Request) error {
	return arm.Errorf(http.StatusNotFound, "NotFound", "No route matches the path '%s'.", req.Path)
}
