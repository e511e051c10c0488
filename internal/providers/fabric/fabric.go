// Package fabric is the Microsoft.ManagedNetworkFabric namespace: a thin
// facade that declares its resource types to the resource framework and
// leaves the domain logic to package network.
package fabric

import (
	"context"
	"errors"
	"regexp"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Namespace is the provider namespace this package serves.
const Namespace = "Microsoft.ManagedNetworkFabric"

// APIVersions are the versions served: 2025-07-15 is current, 2023-06-15
// the previous stable one clients still send.
var APIVersions = []string{"2025-07-15", "2023-06-15"}

// readOnly are the properties the fabric owns on most of its types.
var readOnly = []string{"administrativeState", "configurationState", "lastOperation", "networkFabricId"}

// namePattern is the name rule shared by the fabric's types.
var namePattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-_]{2,127}$`)

const nameRule = "It must start with a letter and have 3 to 128 letters, digits, '-' or '_'."

// Register declares the namespace's types.
func Register(svc *resource.Service) {
	svc.Register(&resource.Type{
		Namespace:   Namespace,
		Name:        "ipPrefixes",
		APIVersions: APIVersions,
		Tracked:     true,
		NamePattern: namePattern,
		NameRule:    nameRule,
		ReadOnly:    readOnly,
		Validate:    validateIPPrefix,
		Provision:   provisionIPPrefix,
	})
}

type ipPrefixProperties struct {
	Annotation    string               `json:"annotation"`
	IPPrefixRules []network.PrefixRule `json:"ipPrefixRules"`
}

func validateIPPrefix(_ context.Context, w *resource.Write) error {
	var p ipPrefixProperties
	if err := resource.DecodeProperties(w.New, &p); err != nil {
		return err
	}
	if _, ok := w.New.Properties["ipPrefixRules"]; !ok {
		return arm.FieldError("properties.ipPrefixRules", "ipPrefixRules is required.")
	}
	rules, err := network.ValidatePrefixRules(p.IPPrefixRules)
	var re *network.RuleError
	if errors.As(err, &re) {
		return arm.FieldError("properties."+re.Field, "The value of %s is invalid: %s.", re.Field, re.Reason)
	}
	if err != nil {
		return err
	}
	w.New.Properties["ipPrefixRules"] = rules
	return nil
}

// provisionIPPrefix accepts the prefix list into the fabric's
// configuration. A prefix list is configured on devices only when a route
// policy that uses it is committed; until then it is Succeeded and Enabled.
func provisionIPPrefix(_ context.Context, t *resource.Task) error {
	t.Resource.Properties["configurationState"] = "Succeeded"
	t.Resource.Properties["administrativeState"] = "Enabled"
	return nil
}
