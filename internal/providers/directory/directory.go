// Package directory is the Citadel.Identity namespace: the local identity
// provider's service principals, users and groups as ARM resources at the
// tenant root, managed under RBAC like everything else. The identity
// package keeps them, with their credential hashes, which never appear
// here: a service principal's first secret is in its create response
// only, and a user's password is write-only.
package directory

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Namespace is the provider namespace this package serves.
const Namespace = "Citadel.Identity"

// APIVersions are the versions served.
var APIVersions = []string{"2026-01-01"}

// Provider serves Citadel.Identity.
type Provider struct {
	id *identity.Issuer
}

// Register declares the namespace's types with svc.
func Register(svc *resource.Service, id *identity.Issuer) {
	p := &Provider{id: id}
	for _, kind := range []string{"servicePrincipals", "users", "groups"} {
		svc.Register(&resource.Type{
			Namespace: Namespace, Name: kind, APIVersions: APIVersions, Scope: resource.ScopeAny,
			Validate: atTenantRoot,
			Keeper:   keeper{p: p, kind: kind},
			Virtual:  p.get,
			List: func(ctx context.Context, req *resource.Request, scope arm.ID) (*resource.Response, error) {
				return p.list(ctx, req, scope, kind)
			},
		})
	}
}

func atTenantRoot(_ context.Context, w *resource.Write) error {
	if w.ID.Subscription != "" || w.ID.Scope != nil || len(w.ID.Types) != 1 {
		return arm.Errorf(http.StatusBadRequest, arm.CodeInvalidResourceID, "Identities live at the tenant root: /providers/%s/{kind}/{name}.", Namespace)
	}
	return nil
}

// keeper writes one kind of identity through the identity provider.
type keeper struct {
	p    *Provider
	kind string
}

func (k keeper) Put(ctx context.Context, w *resource.Write, audit resource.Writes) (*resource.Resource, bool, error) {
	props, name := w.New.Properties, w.ID.Name()
	display, _ := props["displayName"].(string)
	switch k.kind {
	case "groups":
		var members []string
		list, _ := props["members"].([]any)
		for _, m := range list {
			if s, ok := m.(string); ok {
				members = append(members, s)
			}
		}
		g, created, err := k.p.id.PutGroup(ctx, name, display, members, audit)
		if err != nil {
			return nil, false, err
		}
		return groupView(g), created, nil
	case "servicePrincipals":
		sp, secret, created, err := k.p.id.PutServicePrincipal(ctx, name, display, audit)
		if err != nil {
			return nil, false, err
		}
		r := spView(sp)
		if created {
			r.Properties["secretText"] = secret // shown once, kept nowhere
		}
		return r, created, nil
	}
	password, _ := props["password"].(string)
	u, created, err := k.p.id.PutUser(ctx, name, display, password, audit)
	if err != nil {
		return nil, false, err
	}
	return userView(u), created, nil
}

func (k keeper) Delete(ctx context.Context, id arm.ID, audit resource.Writes) (bool, error) {
	switch k.kind {
	case "groups":
		return k.p.id.DeleteGroup(ctx, id.Name(), audit)
	case "servicePrincipals":
		return k.p.id.DeleteServicePrincipal(ctx, id.Name(), audit)
	}
	return k.p.id.DeleteUser(ctx, id.Name(), audit)
}

// all lists every identity of kind as a resource.
func (p *Provider) all(ctx context.Context, kind string) ([]*resource.Resource, error) {
	var out []*resource.Resource
	switch strings.ToLower(kind) {
	case "serviceprincipals":
		sps, err := p.id.ServicePrincipals(ctx)
		if err != nil {
			return nil, err
		}
		for _, sp := range sps {
			out = append(out, spView(sp))
		}
	case "users":
		us, err := p.id.Users(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			out = append(out, userView(u))
		}
	case "groups":
		gs, err := p.id.Groups(ctx)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			out = append(out, groupView(g))
		}
	}
	return out, nil
}

func spView(sp identity.ServicePrincipal) *resource.Resource {
	return view("servicePrincipals", sp.AppID, map[string]any{
		"appId": sp.AppID, "objectId": sp.ObjectID, "displayName": sp.DisplayName, "createdDateTime": sp.Created.Format(time.RFC3339),
		"passwordCredentials": sp.Secrets, "keyCredentials": sp.Certificates,
	})
}

func userView(u identity.User) *resource.Resource {
	return view("users", u.UPN, map[string]any{
		"userPrincipalName": u.UPN, "objectId": u.ObjectID, "displayName": u.DisplayName, "createdDateTime": u.Created.Format(time.RFC3339),
	})
}

func groupView(g identity.Group) *resource.Resource {
	return view("groups", g.ObjectID, map[string]any{"objectId": g.ObjectID, "displayName": g.DisplayName, "members": g.Members})
}

func view(kind, name string, props map[string]any) *resource.Resource {
	props["provisioningState"] = resource.StateSucceeded
	return &resource.Resource{
		ID: "/providers/" + Namespace + "/" + kind + "/" + name, Name: name, Type: Namespace + "/" + kind, Properties: props,
	}
}

// get finds one identity; identities live only at the tenant root.
func (p *Provider) get(ctx context.Context, id arm.ID) (*resource.Resource, bool) {
	if id.Subscription != "" || id.Scope != nil || len(id.Types) != 1 {
		return nil, false
	}
	all, err := p.all(ctx, id.Types[0])
	if err != nil {
		return nil, false
	}
	i := slices.IndexFunc(all, func(r *resource.Resource) bool { return strings.EqualFold(r.Name, id.Name()) })
	if i < 0 {
		return nil, false
	}
	return all[i], true
}

// list answers GET /providers/Citadel.Identity/{kind}: those the caller
// may read.
func (p *Provider) list(ctx context.Context, req *resource.Request, scope arm.ID, kind string) (*resource.Response, error) {
	if !scope.IsZero() {
		return nil, arm.Errorf(http.StatusNotFound, arm.CodeInvalidResourceType, "Identities live at the tenant root: /providers/%s.", Namespace)
	}
	all, err := p.all(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := []*resource.Resource{}
	for _, r := range all {
		if req.CanRead == nil || req.CanRead(r.Type, r.ID) {
			out = append(out, r)
		}
	}
	return &resource.Response{Status: http.StatusOK, Body: resource.Page[*resource.Resource]{Value: out}}, nil
}
