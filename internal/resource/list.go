package resource

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
)

// defaultPageSize is the page size when the client gives no $top.
const defaultPageSize = 1000

// Page is the body of a collection GET (arm-contract §2.9).
type Page[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

// List answers GET on a collection: the resources of one type directly
// below req.ID. typeName is a child type's bare name ("internalNetworks")
// or a full type name ("Microsoft.Resources/resourceGroups"). When req.ID is
// a provider namespace in a subscription or group, the list covers that
// subscription or group (every group, for a subscription).
func (s *Service) List(ctx context.Context, req *Request, typeName string) (*Response, error) {
	fullName := typeName
	if !strings.Contains(typeName, "/") {
		fullName = req.ID.Type() + "/" + typeName
	}
	t, err := s.lookupVersioned(fullName, req.APIVersion)
	if err != nil {
		return nil, err
	}
	scope := req.ID
	if len(scope.Types) == 0 {
		if scope.Scope != nil {
			scope = *scope.Scope // {resource}/providers/{ns}/{type}: the list is at the resource
		} else {
			scope = arm.ID{Subscription: scope.Subscription, ResourceGroup: scope.ResourceGroup}
		}
	}
	if t.List != nil {
		return t.List(ctx, req, scope)
	}
	if err := s.CheckExists(ctx, scope); err != nil {
		return nil, err
	}
	wholeSubscription := scope.ResourceGroup == "" && t.Scope == ScopeResourceGroup
	prefix := typePrefix(t) + scope.Key() + "/"
	items, more, err := resources.List(ctx, s.store, prefix, req.SkipToken, pageSize(req.Top))
	if err != nil {
		return nil, err
	}
	page := Page[*Resource]{Value: make([]*Resource, 0, len(items))}
	for _, it := range items {
		id, err := arm.ParseID(it.Value.Resource.ID)
		if err != nil {
			continue
		}
		if parent, _ := id.Parent(); !wholeSubscription && parent.Key() != scope.Key() {
			continue // a deeper descendant that shares the prefix
		}
		if req.CanRead != nil && !req.CanRead(t.FullName(), it.Value.Resource.ID) {
			continue
		}
		page.Value = append(page.Value, s.resourceResponse(http.StatusOK, t, &it.Value.Resource, it.Revision).Body.(*Resource))
	}
	if more && len(items) > 0 {
		page.NextLink = nextLink(req, items[len(items)-1].Name)
	}
	return &Response{Status: http.StatusOK, Body: page}, nil
}

// CheckExists checks that the tenant root, a subscription, group or
// resource exists.
func (s *Service) CheckExists(ctx context.Context, id arm.ID) error {
	if id.IsZero() {
		return nil
	}
	if id.ResourceGroup == "" && len(id.Types) == 0 {
		_, err := s.checkParents(ctx, arm.ID{Subscription: id.Subscription, ResourceGroup: "x"})
		return err
	}
	_, err := s.read(ctx, id)
	return err
}

func pageSize(top int) int {
	if top > 0 && top < defaultPageSize {
		return top
	}
	return defaultPageSize
}

// nextLink is the absolute URL of the page after the store key lastKey.
func nextLink(req *Request, lastKey string) string {
	q := url.Values{}
	q.Set("api-version", req.APIVersion)
	q.Set("$skipToken", arm.EncodeSkipToken(lastKey))
	if req.Top > 0 {
		q.Set("$top", fmt.Sprint(req.Top))
	}
	if req.Filter != "" {
		q.Set("$filter", req.Filter)
	}
	return req.BaseURL + req.Path + "?" + q.Encode()
}

// GenericResource is an item of GET …/resources (arm-contract §3.3).
type GenericResource struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Type              string            `json:"type"`
	Location          string            `json:"location,omitempty"`
	ExtendedLocation  any               `json:"extendedLocation,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	Kind              string            `json:"kind,omitempty"`
	ManagedBy         string            `json:"managedBy,omitempty"`
	SKU               any               `json:"sku,omitempty"`
	Identity          any               `json:"identity,omitempty"`
	CreatedTime       *time.Time        `json:"createdTime,omitempty"`
	ChangedTime       *time.Time        `json:"changedTime,omitempty"`
	ProvisioningState string            `json:"provisioningState,omitempty"`
}

// ListResources answers GET {subscription|group}/resources: the top-level
// resources of every type below scope that match the filter, in pages.
// Microsoft.Resources' own types (groups, deployments) are not listed.
func (s *Service) ListResources(ctx context.Context, req *Request, filter arm.Filter, expand string) (*Response, error) {
	if err := s.CheckExists(ctx, req.ID); err != nil {
		return nil, err
	}
	expandSet := map[string]bool{}
	for _, e := range strings.Split(expand, ",") {
		expandSet[strings.ToLower(strings.TrimSpace(e))] = true
	}
	limit := pageSize(req.Top)
	page := Page[GenericResource]{Value: []GenericResource{}}
	scope := req.ID.Key() + "/"
	// Types are visited in the order of their keys, which is the order
	// the skip token (the last key returned) compares in.
	for _, t := range s.types.inKeyOrder() {
		if strings.Contains(t.Name, "/") || strings.EqualFold(t.Namespace, "Microsoft.Resources") || t.Scope == ScopeAny {
			continue // children, ARM's own types and extension resources (locks, role assignments) are not listed
		}
		prefix := typePrefix(t) + scope
		if req.SkipToken != "" && req.SkipToken >= prefix+"\xff" {
			continue // this type was finished on an earlier page
		}
		after := ""
		if strings.HasPrefix(req.SkipToken, prefix) {
			after = req.SkipToken
		}
		for {
			items, more, err := resources.List(ctx, s.store, prefix, after, limit)
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				after = it.Name
				r := it.Value
				id, err := arm.ParseID(r.Resource.ID)
				if err != nil || len(id.Types) != 1 || !filter.Match(arm.Item{ResourceGroup: id.ResourceGroup, Type: r.Resource.Type, Name: r.Resource.Name, Location: r.Resource.Location, Tags: r.Resource.Tags}) {
					continue
				}
				if req.CanRead != nil && !req.CanRead(r.Resource.Type, r.Resource.ID) {
					continue
				}
				page.Value = append(page.Value, genericItem(&r, expandSet))
				if len(page.Value) == limit {
					page.NextLink = nextLink(req, after)
					return &Response{Status: http.StatusOK, Body: page}, nil
				}
			}
			if !more {
				break
			}
		}
	}
	return &Response{Status: http.StatusOK, Body: page}, nil
}

func genericItem(r *record, expand map[string]bool) GenericResource {
	g := GenericResource{ID: r.Resource.ID, Name: r.Resource.Name, Type: r.Resource.Type, Location: r.Resource.Location, Tags: r.Resource.Tags, Kind: r.Resource.Kind, ManagedBy: r.Resource.ManagedBy}
	if len(r.Resource.ExtendedLocation) > 0 {
		g.ExtendedLocation = r.Resource.ExtendedLocation
	}
	if len(r.Resource.SKU) > 0 {
		g.SKU = r.Resource.SKU
	}
	if len(r.Resource.Identity) > 0 {
		g.Identity = r.Resource.Identity
	}
	if expand["createdtime"] {
		g.CreatedTime = &r.CreatedTime
	}
	if expand["changedtime"] {
		g.ChangedTime = &r.ChangedTime
	}
	if expand["provisioningstate"] {
		g.ProvisioningState = r.Resource.ProvisioningState()
	}
	return g
}
