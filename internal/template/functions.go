package template

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// functions builds the function table of a template with its own
// parameters: fns for its expressions and defaults for parameter default
// values, where utcNow() and newGuid() are also allowed.
func (x *expansion) functions() (fns, defaults *armexpr.Functions) {
	sub, rg, mg := x.ctx.SubscriptionID, x.ctx.ResourceGroup, x.ctx.ManagementGroup
	switch x.scope {
	case SubscriptionScope:
		rg, mg = "", ""
	case ManagementGroupScope:
		sub, rg = "", ""
	case TenantScope:
		sub, rg, mg = "", "", ""
	}
	base := armexpr.Builtins().Without("utcNow", "newGuid").
		With(armexpr.ResourceIDFunctions(sub, rg, mg)).
		With(x.contextFunctions())

	// A user-defined function sees the base functions, the other
	// user-defined functions and its own parameters only.
	notInUDF := func(c *armexpr.Call) (any, error) {
		return nil, fmt.Errorf("%s() can't be used in a user-defined function", c.Name())
	}
	var udfTable *armexpr.Functions
	udfs := map[string]armexpr.Func{}
	for _, f := range x.t.functions {
		udfs[f.name] = x.userFunction(f, &udfTable)
	}
	udfTable = base.With(map[string]armexpr.Func{
		"variables": notInUDF, "reference": notInUDF, "providers": notInUDF, "copyIndex": notInUDF,
	}).WithPrefix("list", notInUDF).With(udfs)

	needsRuntime := func(*armexpr.Call) (any, error) { return nil, errNeedsRuntime }
	fns = base.With(map[string]armexpr.Func{
		"parameters": armexpr.Eager(1, 1, func(args []any) (any, error) {
			name, ok := args[0].(string)
			if !ok {
				return nil, errors.New("expects the parameter name as a string")
			}
			return x.parameter(name)
		}),
		"variables": armexpr.Eager(1, 1, func(args []any) (any, error) {
			name, ok := args[0].(string)
			if !ok {
				return nil, errors.New("expects the variable name as a string")
			}
			return x.variable(name)
		}),
		"copyIndex": copyIndexFunc(nil),
		"reference": needsRuntime,
		"providers": needsRuntime,
	}).WithPrefix("list", needsRuntime).With(udfs)
	defaults = fns.With(map[string]armexpr.Func{"utcNow": builtin("utcNow"), "newGuid": builtin("newGuid")})
	return fns, defaults
}

func builtin(name string) armexpr.Func {
	f, _ := armexpr.Builtins().Lookup(name)
	return f
}

// userFunction is the Func of a user-defined function: its arguments are
// checked against the declared types and bound to parameters() while its
// output value is evaluated.
func (x *expansion) userFunction(f *userFunction, table **armexpr.Functions) armexpr.Func {
	return armexpr.Eager(len(f.params), len(f.params), func(args []any) (any, error) {
		values := make(map[string]any, len(args))
		for i, p := range f.params {
			if err := checkType(p.typ, args[i]); err != nil {
				return nil, fmt.Errorf("parameter '%s': %w", p.name, err)
			}
			values[strings.ToLower(p.name)] = args[i]
		}
		fns := (*table).With(map[string]armexpr.Func{
			"parameters": armexpr.Eager(1, 1, func(a []any) (any, error) {
				name, _ := a[0].(string)
				v, ok := values[strings.ToLower(name)]
				if !ok {
					return nil, fmt.Errorf("the function %s has no parameter '%s'", f.name, name)
				}
				return v, nil
			}),
		})
		v, err := evaluator{x: x, fns: fns}.value(f.output, "")
		if pe, ok := errors.AsType[*ParseError](err); ok {
			return nil, pe.Err // the error belongs where the function is called
		} else if err != nil {
			return nil, err
		}
		if err := checkType(strings.ToLower(f.outTyp), v); err != nil {
			return nil, fmt.Errorf("output: %w", err)
		}
		return v, nil
	})
}

// contextFunctions are the functions that describe where the deployment
// runs.
func (x *expansion) contextFunctions() map[string]armexpr.Func {
	ctx := x.ctx
	onlyAt := func(name string, scopes ...Scope) error {
		if slices.Contains(scopes, x.scope) {
			return nil
		}
		return fmt.Errorf("%s() is not available in a %s deployment", name, x.scope)
	}
	zones := func(args []any) (any, error) {
		if _, ok := args[2].([]any); !ok {
			if _, ok := args[2].(string); !ok {
				return nil, errors.New("expects a zone or an array of zones as its third parameter")
			}
		}
		return args[2], nil // Citadel maps logical zones one to one onto physical zones
	}
	return map[string]armexpr.Func{
		"subscription": armexpr.Eager(0, 0, func([]any) (any, error) {
			if err := onlyAt("subscription", ResourceGroupScope, SubscriptionScope); err != nil {
				return nil, err
			}
			return map[string]any{
				"id": armexpr.SubscriptionID(ctx.SubscriptionID), "subscriptionId": ctx.SubscriptionID,
				"tenantId": ctx.TenantID, "displayName": ctx.SubscriptionID,
			}, nil
		}),
		"resourceGroup": armexpr.Eager(0, 0, func([]any) (any, error) {
			if err := onlyAt("resourceGroup", ResourceGroupScope); err != nil {
				return nil, err
			}
			return map[string]any{
				"id":         armexpr.ResourceGroupID(ctx.SubscriptionID, ctx.ResourceGroup),
				"name":       ctx.ResourceGroup,
				"type":       "Microsoft.Resources/resourceGroups",
				"location":   ctx.Location,
				"properties": map[string]any{"provisioningState": "Succeeded"},
			}, nil
		}),
		"tenant": armexpr.Eager(0, 0, func([]any) (any, error) {
			return map[string]any{"id": "/tenants/" + ctx.TenantID, "tenantId": ctx.TenantID, "displayName": "", "countryCode": ""}, nil
		}),
		"managementGroup": armexpr.Eager(0, 1, func(args []any) (any, error) {
			name := ctx.ManagementGroup
			if len(args) == 1 {
				name, _ = args[0].(string)
			} else if err := onlyAt("managementGroup", ManagementGroupScope); err != nil {
				return nil, err
			}
			return map[string]any{
				"id": armexpr.ManagementGroupID(name), "name": name, "type": "Microsoft.Management/managementGroups",
				"properties": map[string]any{"tenantId": ctx.TenantID, "displayName": name},
			}, nil
		}),
		"deployment": armexpr.Eager(0, 0, func([]any) (any, error) {
			props := map[string]any{
				"template":          map[string]any{"contentVersion": x.t.ContentVersion, "metadata": x.t.metadata},
				"parameters":        map[string]any{},
				"mode":              "Incremental",
				"provisioningState": "Accepted",
			}
			if u, err := url.Parse(x.source); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
				props["templateLink"] = map[string]any{"uri": x.source, "contentVersion": x.t.ContentVersion}
			}
			d := map[string]any{"name": ctx.DeploymentName, "properties": props}
			if x.scope != ResourceGroupScope {
				d["location"] = ctx.Location
			}
			return d, nil
		}),
		"environment": armexpr.Eager(0, 0, func([]any) (any, error) {
			if ctx.Environment != nil {
				return ctx.Environment, nil
			}
			return DefaultEnvironment(), nil
		}),
		"deployer": armexpr.Eager(0, 0, func([]any) (any, error) {
			return map[string]any{"objectId": ctx.Deployer, "tenantId": ctx.TenantID}, nil
		}),
		"pickZones": armexpr.Eager(3, 5, func(args []any) (any, error) {
			n, offset := int64(1), int64(0)
			if len(args) > 3 {
				n, _ = args[3].(int64)
			}
			if len(args) > 4 {
				offset, _ = args[4].(int64)
			}
			out := []any{}
			for i := offset; i >= 0 && i < offset+n && i < int64(len(ctx.Zones)); i++ {
				out = append(out, ctx.Zones[i])
			}
			return out, nil
		}),
		"toLogicalZone":   armexpr.Eager(3, 3, zones),
		"toLogicalZones":  armexpr.Eager(3, 3, zones),
		"toPhysicalZone":  armexpr.Eager(3, 3, zones),
		"toPhysicalZones": armexpr.Eager(3, 3, zones),
	}
}

// DefaultEnvironment is what environment() returns when the Context has
// no Environment: the shape of Azure's cloud description with a
// disconnected Citadel's names. A control plane supplies its own.
func DefaultEnvironment() map[string]any {
	return map[string]any{
		"name":            "Citadel",
		"gallery":         "",
		"graph":           "",
		"portal":          "https://portal.citadel.local",
		"resourceManager": "https://management.citadel.local/",
		"authentication": map[string]any{
			"loginEndpoint":    "https://login.citadel.local/",
			"audiences":        []any{"https://management.citadel.local/"},
			"tenant":           "common",
			"identityProvider": "AAD",
		},
		"suffixes": map[string]any{
			"storage":           "citadel.local",
			"keyvaultDns":       ".vault.citadel.local",
			"sqlServerHostname": ".database.citadel.local",
			"acrLoginServer":    ".azurecr.citadel.local",
		},
	}
}

// checkFunctions fails on a call to a function the template can't use
// where it is written (unknown, or utcNow() outside a default value),
// naming the JSON path, before anything is evaluated.
func (x *expansion) checkFunctions() error {
	check := func(fns *armexpr.Functions) func(v any, p string) error {
		return func(v any, p string) error {
			return walkExpressions(x.t, v, p, func(e *armexpr.Expr, p string) error {
				for _, c := range e.Calls() {
					if _, ok := fns.Lookup(c.Name); !ok {
						return errorf(p, "the function '%s' is unknown or not allowed here", c.Name)
					}
				}
				return nil
			})
		}
	}
	inDefault, inTemplate := check(x.defaultFns), check(x.fns)
	for _, name := range slices.Sorted(maps.Keys(x.t.Parameters)) {
		if err := inDefault(x.t.Parameters[name].DefaultValue, keyPath(keyPath("parameters", name), "defaultValue")); err != nil {
			return err
		}
	}
	if err := inTemplate(x.t.variables, "variables"); err != nil {
		return err
	}
	for _, c := range x.t.variableCopies {
		if err := inTemplate([]any{c.count, c.input}, keyPath("variables.copy", c.name)); err != nil {
			return err
		}
	}
	var resources func(ds []*resourceDecl) error
	resources = func(ds []*resourceDecl) error {
		for _, d := range ds {
			raw := withoutKey(d.raw, "resources")
			if props, ok := raw["properties"].(map[string]any); ok && d.isDeployment && d.inner {
				raw["properties"] = withoutKey(props, "template") // checked with the nested template's own functions
			}
			if err := inTemplate(raw, d.path); err != nil {
				return err
			}
			if err := resources(d.children); err != nil {
				return err
			}
		}
		return nil
	}
	if err := resources(x.t.resources); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(x.t.outputs)) {
		if err := inTemplate(x.t.outputs[name], keyPath("outputs", name)); err != nil {
			return err
		}
	}
	return nil
}

// walkExpressions calls f for every expression in raw template JSON, in
// values and object keys.
func walkExpressions(t *Template, v any, p string, f func(e *armexpr.Expr, p string) error) error {
	switch v := v.(type) {
	case string:
		if e := t.exprs[v]; e != nil {
			return f(e, p)
		}
	case []any:
		for i, x := range v {
			if err := walkExpressions(t, x, indexPath(p, i), f); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			kp := keyPath(p, k)
			if e := t.exprs[k]; e != nil {
				if err := f(e, kp); err != nil {
					return err
				}
			}
			if err := walkExpressions(t, v[k], kp, f); err != nil {
				return err
			}
		}
	}
	return nil
}
