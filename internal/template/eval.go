package template

import (
	"maps"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// Eval evaluates one expression in a deployment context, with parameters
// and variables written as in a template (raw JSON whose strings may be
// expressions, as the shared arm-expressions corpus gives them): it
// expands a template that declares them and outputs the expression. The
// scope is the narrowest the context names: a resource group, a
// subscription, a management group, else the tenant.
func Eval(expression string, ctx Context, parameters, variables map[string]any) (any, error) {
	schema := "https://schema.management.azure.com/schemas/2019-08-01/tenantDeploymentTemplate.json#"
	switch {
	case ctx.SubscriptionID != "" && ctx.ResourceGroup != "":
		schema = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
	case ctx.SubscriptionID != "":
		schema = "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#"
	case ctx.ManagementGroup != "":
		schema = "https://schema.management.azure.com/schemas/2019-08-01/managementGroupDeploymentTemplate.json#"
	}
	params := map[string]any{}
	for name, v := range parameters {
		params[name] = map[string]any{"defaultValue": v}
	}
	doc := map[string]any{
		"$schema":    schema,
		"parameters": params,
		"variables":  maps.Clone(variables),
		"outputs":    map[string]any{"result": map[string]any{"value": expression}},
	}
	exprs := map[string]*armexpr.Expr{}
	if err := collectExpressions(doc, "", exprs); err != nil {
		return nil, err
	}
	t, err := parseTemplate(doc, "", exprs)
	if err != nil {
		return nil, err
	}
	d, err := Expand(t, Options{Context: ctx})
	if err != nil {
		return nil, err
	}
	return d.Outputs["result"], nil
}
