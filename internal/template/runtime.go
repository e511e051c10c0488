package template

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// Runtime answers what only the running deployment knows. The deployment
// engine implements it over the resources it has deployed so far.
type Runtime interface {
	// Reference is reference(): a resource's properties, or the whole
	// resource (id, location, tags, sku, properties...) when full is set.
	// apiVersion is "" when neither the call nor the template gives one.
	Reference(id, apiVersion string, full bool) (any, error)
	// List is a list*() call (action "listKeys", "listSecrets"...) on a
	// resource, with the optional request body.
	List(action, id, apiVersion string, body any) (any, error)
	// Providers is providers(): a resource provider's registration, or one
	// of its types (resourceType "" for all).
	Providers(namespace, resourceType string) (any, error)
	// Secret reads a Key Vault secret that a nested deployment passes as a
	// parameter; version "" is the latest.
	Secret(vaultID, name, version string) (string, error)
}

// Evaluated is a resource as it deploys.
type Evaluated struct {
	Skip       bool // not to deploy: the condition is false, or the resource is existing
	Body       map[string]any
	Deployment *Deployment // a nested deployment's template, expanded with its parameters' runtime values
}

// Evaluate evaluates the resource's body with the runtime, just before
// the resource deploys (after its dependencies). With a nil runtime it
// gives the body Expand gave, values that need the runtime left as
// expressions. Evaluate may run concurrently for different resources.
func (r *Resource) Evaluate(rt Runtime) (*Evaluated, error) {
	if r.Existing {
		return &Evaluated{Skip: true}, nil
	}
	x := r.x
	fns := r.fns
	if rt != nil {
		fns = x.withRuntime(fns, rt)
	}
	e := evaluator{x: x, fns: fns, loops: r.loops, keepRuntime: rt == nil, copies: true}
	if r.Condition != "" {
		v, err := e.str(r.Condition, keyPath(r.path, "condition"))
		if err != nil {
			return nil, err
		}
		b, ok := v.(bool)
		if !ok && rt != nil {
			return nil, errorf(keyPath(r.path, "condition"), "must be a boolean, not %s", jsonType(v))
		}
		if ok && !b {
			return &Evaluated{Skip: true}, nil
		}
	}
	body, err := x.body(r, e)
	if err != nil {
		return nil, err
	}
	out := &Evaluated{Body: body, Deployment: r.Deployment}
	if r.decl.isDeployment && r.pending && rt != nil {
		now := *r
		now.Body = body
		if err := x.expandNested(&now, e, rt); err != nil {
			return nil, err
		}
		out.Deployment = now.Deployment
	}
	return out, nil
}

// EvaluateOutputs evaluates the outputs with the runtime, once every
// resource has deployed, and checks them against their declared types.
func (d *Deployment) EvaluateOutputs(rt Runtime) (map[string]any, error) {
	fns := d.x.fns
	if rt != nil {
		fns = d.x.withRuntime(fns, rt)
	}
	return d.x.outputs(fns, rt)
}

// withRuntime adds reference(), list*() and providers() over rt.
func (x *expansion) withRuntime(fns *armexpr.Functions, rt Runtime) *armexpr.Functions {
	return fns.With(map[string]armexpr.Func{
		"reference": armexpr.Eager(1, 3, func(args []any) (any, error) {
			strs, err := stringArgs(args)
			if err != nil {
				return nil, err
			}
			id, apiVersion, err := x.target(strs[0])
			if err != nil {
				return nil, err
			}
			if len(strs) > 1 && strs[1] != "" {
				apiVersion = strs[1]
			}
			full := len(strs) > 2 && strings.EqualFold(strs[2], "Full")
			return rt.Reference(id, apiVersion, full)
		}),
		"providers": armexpr.Eager(1, 2, func(args []any) (any, error) {
			strs, err := stringArgs(args)
			if err != nil {
				return nil, err
			}
			return rt.Providers(strs[0], strings.Join(strs[1:], ""))
		}),
	}).WithPrefix("list", func(c *armexpr.Call) (any, error) {
		if err := c.CheckArity(2, 3); err != nil {
			return nil, err
		}
		args, err := c.Args()
		if err != nil {
			return nil, err
		}
		strs, err := stringArgs(args[:2])
		if err != nil {
			return nil, err
		}
		id, _, err := x.target(strs[0])
		if err != nil {
			return nil, err
		}
		var body any
		if len(args) == 3 {
			body = args[2]
		}
		return rt.List(c.Name(), id, strs[1], body)
	})
}

func stringArgs(args []any) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("expects argument %d to be a string, not %s", i+1, jsonType(a))
		}
		out[i] = s
	}
	return out, nil
}

// secretMask replaces secure values in what Redacted returns.
const secretMask = "********"

// Redacted returns a copy of the deployment fit to show: the values of
// secure parameters, and every occurrence of them in bodies and outputs,
// are masked, here and in nested deployments.
func (d *Deployment) Redacted() *Deployment {
	return d.redacted(nil)
}

func (d *Deployment) redacted(secrets []string) *Deployment {
	out := *d
	out.Parameters = map[string]any{}
	for name, v := range d.Parameters {
		if p := d.x.t.parameter(name); p != nil && p.Secure() {
			secrets = appendStrings(secrets, v)
			out.Parameters[name] = secretMask
			continue
		}
		out.Parameters[name] = v
	}
	secrets = slices.DeleteFunc(secrets, func(s string) bool { return s == "" })
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) }) // longest first
	mask := func(v any) any { return maskSecrets(v, secrets) }
	out.Outputs, _ = mask(d.Outputs).(map[string]any)
	out.Resources = make([]*Resource, len(d.Resources))
	for i, r := range d.Resources {
		rc := *r
		rc.Body, _ = mask(r.Body).(map[string]any)
		if r.Deployment != nil {
			rc.Deployment = r.Deployment.redacted(secrets)
		}
		out.Resources[i] = &rc
	}
	return &out
}

// appendStrings appends the strings of a value (all of them for a secure
// object).
func appendStrings(out []string, v any) []string {
	switch v := v.(type) {
	case string:
		return append(out, v)
	case []any:
		for _, x := range v {
			out = appendStrings(out, x)
		}
	case map[string]any:
		for _, x := range v {
			out = appendStrings(out, x)
		}
	}
	return out
}

func maskSecrets(v any, secrets []string) any {
	switch v := v.(type) {
	case string:
		for _, s := range secrets {
			v = strings.ReplaceAll(v, s, secretMask)
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = maskSecrets(x, secrets)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = maskSecrets(x, secrets)
		}
		return out
	}
	return v
}
