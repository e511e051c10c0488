// Package extendedlocation is the Microsoft.ExtendedLocation namespace:
// the custom locations that stand for an on-premises control plane (a
// NetworkCloud cluster manager or cluster). Their owners create and delete
// them; users read them and name them in the extendedLocation of the
// resources they create there.
package extendedlocation

import (
	"context"
	"fmt"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Namespace is the provider namespace this package serves.
const Namespace = "Microsoft.ExtendedLocation"

// TypeName is the full name of the custom location type.
const TypeName = Namespace + "/customLocations"

// APIVersions are the versions clients send.
var APIVersions = []string{"2021-08-31-preview", "2021-08-15", "2021-03-15-preview"}

// Register declares the custom location type.
func Register(svc *resource.Service) {
	svc.Register(&resource.Type{
		Namespace:     Namespace,
		Name:          "customLocations",
		APIVersions:   APIVersions,
		Tracked:       true,
		SystemManaged: true,
	})
}

// ID is the custom location that stands for host, named after it and kept
// in its resource group.
func ID(host arm.ID) arm.ID {
	kind := strings.ToLower(strings.TrimSuffix(host.Types[len(host.Types)-1], "s"))
	return host.ResourceGroupID().Child(TypeName, host.Name()+"-"+kind)
}

// Ensure creates (or keeps) the custom location of host and returns its
// extendedLocation value.
func Ensure(ctx context.Context, svc *resource.Service, host arm.ID) (map[string]any, error) {
	id := ID(host)
	_, err := svc.Upsert(ctx, id, func(r *resource.Resource, created bool) error {
		if !created && r.Properties["hostResourceId"] == host.String() {
			return resource.ErrUnchanged
		}
		r.Properties = map[string]any{
			"hostResourceId":      host.String(),
			"hostType":            "Kubernetes",
			"namespace":           strings.ToLower(host.Name()),
			"displayName":         host.Name(),
			"clusterExtensionIds": []string{},
			"provisioningState":   resource.StateSucceeded,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("custom location of %s: %w", host, err)
	}
	return Value(id), nil
}

// Value is the extendedLocation object that names custom location id.
func Value(id arm.ID) map[string]any {
	return map[string]any{"name": id.String(), "type": "CustomLocation"}
}

// Resolve checks an extendedLocation sent in a request (at field) and
// returns the resource the custom location stands for, which must be of
// type hostType (e.g. "Microsoft.NetworkCloud/clusters").
func Resolve(ctx context.Context, svc *resource.Service, field string, raw []byte, hostType string) (arm.ID, error) {
	var el struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if len(raw) == 0 {
		return arm.ID{}, arm.FieldError(field, "extendedLocation is required: the custom location of a %s.", shortType(hostType))
	}
	if err := arm.DecodeStrict(raw, &el); err != nil {
		return arm.ID{}, arm.FieldError(field, "extendedLocation must be an object with name and type.")
	}
	if !strings.EqualFold(el.Type, "CustomLocation") {
		return arm.ID{}, arm.FieldError(field+".type", "extendedLocation.type must be 'CustomLocation', not '%s'.", el.Type)
	}
	id, err := arm.ParseID(el.Name)
	if err != nil || !strings.EqualFold(id.Type(), TypeName) {
		return arm.ID{}, arm.FieldError(field+".name", "extendedLocation.name must be the resource ID of a custom location, not '%s'.", el.Name)
	}
	cl, err := svc.Lookup(ctx, id)
	if err != nil {
		return arm.ID{}, arm.FieldError(field+".name", "The custom location '%s' was not found.", el.Name)
	}
	host, _ := cl.Properties["hostResourceId"].(string)
	hid, err := arm.ParseID(host)
	if err != nil || !strings.EqualFold(hid.Type(), hostType) {
		return arm.ID{}, arm.FieldError(field+".name",
			"The custom location '%s' belongs to '%s', not to a %s.", el.Name, host, shortType(hostType))
	}
	return hid, nil
}

func shortType(full string) string {
	return full[strings.LastIndex(full, "/")+1:]
}
