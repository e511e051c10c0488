// Package resources is the Microsoft.Resources namespace: tenants,
// subscriptions, locations, resource providers and their registration,
// resource groups, and the generic resource list. It is a thin facade over
// the resource framework; the front door routes to it.
package resources

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Namespace is the provider namespace this package serves.
const Namespace = "Microsoft.Resources"

// APIVersions are the Microsoft.Resources versions clients send (az 2.45
// uses 2021-04-01 and 2019-11-01, the Go SDK 2021-04-01, 2022-12-01 and
// 2019-05-01, Azure Stack profiles 2016-06-01 and 2019-10-01).
var APIVersions = []string{
	"2024-11-01", "2024-07-01", "2024-03-01", "2023-07-01", "2022-12-01", "2022-09-01",
	"2022-01-01", "2021-04-01", "2021-01-01", "2020-10-01", "2020-08-01", "2020-06-01",
	"2020-01-01", "2019-11-01", "2019-10-01", "2019-09-01", "2019-08-01", "2019-07-01",
	"2019-06-01", "2019-05-10", "2019-05-01", "2019-03-01", "2018-11-01", "2018-09-01",
	"2018-08-01", "2018-07-01", "2018-06-01", "2018-05-01", "2018-02-01", "2018-01-01",
	"2017-12-01", "2017-08-01", "2017-06-01", "2017-05-10", "2017-05-01", "2017-03-01",
	"2016-09-01", "2016-07-01", "2016-06-01", "2016-02-01", "2015-11-01", "2015-01-01",
}

// Provider serves Microsoft.Resources.
type Provider struct {
	svc *resource.Service
}

// New registers the resource group type with svc and returns the provider.
func New(svc *resource.Service) *Provider {
	p := &Provider{svc: svc}
	svc.Register(&resource.Type{
		Namespace:   Namespace,
		Name:        "resourceGroups",
		APIVersions: APIVersions,
		Scope:       resource.ScopeSubscription,
		Tracked:     true,
		// Deleting a group deletes everything in it, which takes a while.
		Deprovision: svc.DeleteContents,
	})
	return p
}

// CheckAPIVersion refuses a version Microsoft.Resources does not serve.
func CheckAPIVersion(v string) error {
	if !slices.Contains(APIVersions, v) {
		return arm.InvalidAPIVersion(v, APIVersions)
	}
	return nil
}

// ListTenants answers GET /tenants.
func (p *Provider) ListTenants(ctx context.Context) (*resource.Response, error) {
	ts, err := p.svc.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(ts))
	for _, t := range ts {
		out = append(out, map[string]any{
			"id": "/tenants/" + t.ID, "tenantId": t.ID, "tenantCategory": "Home",
			"displayName": t.DisplayName, "defaultDomain": t.DefaultDomain, "domains": []string{t.DefaultDomain},
		})
	}
	return ok(resource.Page[map[string]any]{Value: out}), nil
}

func subscriptionBody(s resource.Subscription) map[string]any {
	return map[string]any{
		"id":             "/subscriptions/" + s.ID,
		"subscriptionId": s.ID,
		"tenantId":       s.TenantID,
		"displayName":    s.DisplayName,
		"state":          s.State,
		"subscriptionPolicies": map[string]any{
			"locationPlacementId": "Internal_2014-09-01",
			"quotaId":             "Internal_2014-09-01",
			"spendingLimit":       "Off",
		},
		"authorizationSource": "RoleBased",
		"managedByTenants":    []any{},
		"tags":                s.Tags,
	}
}

// ListSubscriptions answers GET /subscriptions: those the caller may read.
func (p *Provider) ListSubscriptions(ctx context.Context, req *resource.Request) (*resource.Response, error) {
	subs, err := p.svc.Subscriptions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(subs))
	for _, s := range subs {
		if req.CanRead == nil || req.CanRead("Microsoft.Resources/subscriptions", "/subscriptions/"+s.ID) {
			out = append(out, subscriptionBody(s))
		}
	}
	return ok(resource.Page[map[string]any]{Value: out}), nil
}

// GetSubscription answers GET /subscriptions/{s}.
func (p *Provider) GetSubscription(ctx context.Context, id string) (*resource.Response, error) {
	s, err := p.svc.Subscription(ctx, id)
	if err != nil {
		return nil, err
	}
	return ok(subscriptionBody(s)), nil
}

// ListLocations answers GET /subscriptions/{s}/locations.
func (p *Provider) ListLocations(ctx context.Context, sub string) (*resource.Response, error) {
	if _, err := p.svc.Subscription(ctx, sub); err != nil {
		return nil, err
	}
	loc := p.svc.Location()
	return ok(resource.Page[map[string]any]{Value: []map[string]any{{
		"id":                  "/subscriptions/" + sub + "/locations/" + loc,
		"name":                loc,
		"displayName":         loc,
		"regionalDisplayName": loc,
		"type":                "Region",
		"metadata":            map[string]any{"regionType": "Physical", "regionCategory": "Recommended"},
	}}}), nil
}

// providerTypes groups the registered types by namespace, adding the
// operation types every namespace has (arm-contract §3.3).
func (p *Provider) providerTypes() map[string][]map[string]any {
	loc := p.svc.Location()
	byNS := map[string][]map[string]any{}
	versions := map[string][]string{}
	entry := func(name string, vs []string) map[string]any {
		return map[string]any{
			"resourceType": name, "locations": []string{loc}, "apiVersions": vs,
			"defaultApiVersion": firstStable(vs), "capabilities": "None",
			"apiProfiles": []any{}, "locationMappings": []any{}, "zoneMappings": []any{},
		}
	}
	for _, t := range p.svc.Types() {
		vs := t.SortedAPIVersions()
		byNS[t.Namespace] = append(byNS[t.Namespace], entry(t.Name, vs))
		versions[t.Namespace] = append(versions[t.Namespace], vs...)
	}
	if _, ok := byNS[Namespace]; !ok {
		versions[Namespace] = APIVersions
	}
	byNS[Namespace] = append(byNS[Namespace], entry("subscriptions", sortedVersions(APIVersions)), entry("tenants", sortedVersions(APIVersions)))
	for ns, vs := range versions {
		all := sortedVersions(vs)
		for _, name := range []string{"operations", "locations", "locations/operationStatuses", "locations/operationResults"} {
			byNS[ns] = append(byNS[ns], entry(name, all))
		}
	}
	return byNS
}

func sortedVersions(vs []string) []string {
	out := slices.Clone(vs)
	slices.Sort(out)
	out = slices.Compact(out)
	arm.SortAPIVersions(out)
	return out
}

func firstStable(vs []string) string {
	for _, v := range vs {
		if pv, err := arm.ParseAPIVersion(v); err == nil && !pv.IsPreview() {
			return v
		}
	}
	if len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func providerBody(sub, ns string, types []map[string]any) map[string]any {
	id := "/providers/" + ns
	if sub != "" {
		id = "/subscriptions/" + sub + id
	}
	return map[string]any{
		"id": id, "namespace": ns, "registrationState": "Registered",
		"registrationPolicy": "RegistrationRequired", "resourceTypes": types,
	}
}

// ListProviders answers GET [/subscriptions/{s}]/providers. Every
// namespace this control plane serves is always registered.
func (p *Provider) ListProviders(ctx context.Context, sub string) (*resource.Response, error) {
	if sub != "" {
		if _, err := p.svc.Subscription(ctx, sub); err != nil {
			return nil, err
		}
	}
	byNS := p.providerTypes()
	names := make([]string, 0, len(byNS))
	for ns := range byNS {
		names = append(names, ns)
	}
	sort.Strings(names)
	out := make([]map[string]any, 0, len(names))
	for _, ns := range names {
		out = append(out, providerBody(sub, ns, byNS[ns]))
	}
	return ok(resource.Page[map[string]any]{Value: out}), nil
}

// GetProvider answers GET [/subscriptions/{s}]/providers/{ns} and POST
// …/register and …/unregister, which change nothing: every namespace
// served is registered for good.
func (p *Provider) GetProvider(ctx context.Context, sub, ns string) (*resource.Response, error) {
	if sub != "" {
		if _, err := p.svc.Subscription(ctx, sub); err != nil {
			return nil, err
		}
	}
	for name, types := range p.providerTypes() {
		if strings.EqualFold(name, ns) {
			return ok(providerBody(sub, name, types)), nil
		}
	}
	return nil, arm.Errorf(http.StatusNotFound, arm.CodeInvalidResourceNamespace,
		"The resource namespace '%s' is invalid.", ns)
}

// ListResources answers GET {subscription|group}/resources?$filter=….
func (p *Provider) ListResources(ctx context.Context, req *resource.Request, filter, expand string) (*resource.Response, error) {
	f, err := arm.ParseFilter(filter)
	if err != nil {
		return nil, err
	}
	return p.svc.ListResources(ctx, req, f, expand)
}

func ok(body any) *resource.Response { return &resource.Response{Status: http.StatusOK, Body: body} }
