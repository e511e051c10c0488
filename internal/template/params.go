package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// ParseParameters reads a parameter file in the deploymentParameters
// format, {"parameters": {"name": {"value": ...}}} (comments allowed),
// into parameter values by name. Key Vault references are the deployment
// engine's to resolve, so they are refused here.
func ParseParameters(data []byte) (map[string]any, error) {
	v, err := armexpr.ParseJSON(data)
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errorf("", "a parameter file is a JSON object, not %s", jsonType(v))
	}
	params := doc
	if inner, ok := doc["parameters"].(map[string]any); ok {
		params = inner
	}
	out := map[string]any{}
	for name, pv := range params {
		if strings.HasPrefix(name, "$") || name == "contentVersion" {
			continue
		}
		p := keyPath("parameters", name)
		entry, ok := pv.(map[string]any)
		if !ok {
			return nil, errorf(p, "must be {\"value\": ...}, not %s", jsonType(pv))
		}
		if _, ok := entry["reference"]; ok {
			return nil, errorf(p, "a Key Vault reference can only be resolved by the deployment engine")
		}
		value, ok := entry["value"]
		if !ok {
			return nil, errorf(p, "must be {\"value\": ...}")
		}
		out[name] = value
	}
	return out, nil
}

// bindParameters gives every declared parameter its value: the one
// supplied, else its default value (an expression may read other
// parameters), else null when it is nullable. Values are validated
// against the declaration. Pending parameters (a nested deployment's,
// whose value only the runtime knows) make parameters() fail with
// errNeedsRuntime, and so do defaults that read them.
func (x *expansion) bindParameters(supplied map[string]any, pending map[string]bool) error {
	x.supplied, x.pending = map[string]any{}, map[string]bool{}
	x.params, x.paramBusy = map[string]any{}, map[string]bool{}
	for name, v := range supplied {
		p := x.t.parameter(name)
		if p == nil {
			return errorf(keyPath("parameters", name), "the template has no parameter '%s'", name)
		}
		x.supplied[p.Name] = v
		if pending[name] {
			x.pending[p.Name] = true
			x.params[p.Name] = v // shown as given; parameters() can't read it yet
		}
	}
	for _, name := range slices.Sorted(maps.Keys(x.t.Parameters)) {
		if _, err := x.parameter(name); errors.Is(err, errNeedsRuntime) {
			x.pending[name] = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// parameter finds a parameter declaration; names are case-insensitive.
func (t *Template) parameter(name string) *Parameter {
	if p, ok := t.Parameters[name]; ok {
		return p
	}
	for k, p := range t.Parameters {
		if strings.EqualFold(k, name) {
			return p
		}
	}
	return nil
}

// parameter returns a parameter's value, binding it on first use.
func (x *expansion) parameter(name string) (any, error) {
	p := x.t.parameter(name)
	if p == nil {
		return nil, fmt.Errorf("the template has no parameter '%s'", name)
	}
	if x.pending[p.Name] {
		return nil, errNeedsRuntime
	}
	if v, ok := x.params[p.Name]; ok {
		return v, nil
	}
	path := keyPath("parameters", p.Name)
	if x.paramBusy[p.Name] {
		return nil, errorf(path, "the default value depends on itself")
	}
	x.paramBusy[p.Name] = true
	defer delete(x.paramBusy, p.Name)
	v, given := x.supplied[p.Name]
	switch {
	case given:
	case p.HasDefault:
		var err error
		e := evaluator{x: x, fns: x.defaultFns, copies: true}
		if v, err = e.value(p.DefaultValue, keyPath(path, "defaultValue")); err != nil {
			return nil, err
		}
	case p.Nullable:
	default:
		return nil, errorf(path, "no value was given and the parameter has no defaultValue")
	}
	if err := p.validate(v); err != nil {
		return nil, wrap(path, err)
	}
	x.params[p.Name] = v
	return v, nil
}

// validate checks a value against the declaration: type, allowed values,
// range and length. A secure value is never printed.
func (p *Parameter) validate(v any) error {
	if v == nil && p.Nullable {
		return nil
	}
	if err := checkType(p.Type, v); err != nil {
		return err
	}
	show := func(v any) string {
		if p.Secure() {
			return "the value"
		}
		b, _ := json.Marshal(v)
		return "the value " + string(b)
	}
	if len(p.AllowedValues) > 0 {
		candidates := []any{v}
		if arr, ok := v.([]any); ok && p.Type == "array" {
			candidates = arr // each element of an array must be allowed
		}
		for _, c := range candidates {
			if !slices.ContainsFunc(p.AllowedValues, func(a any) bool { return armexpr.Equal(a, c) }) {
				b, _ := json.Marshal(p.AllowedValues)
				return fmt.Errorf("%s is not one of the allowed values %s", show(c), b)
			}
		}
	}
	if n, ok := v.(int64); ok {
		if p.MinValue != nil && n < *p.MinValue {
			return fmt.Errorf("%s is less than the minimum value %d", show(v), *p.MinValue)
		}
		if p.MaxValue != nil && n > *p.MaxValue {
			return fmt.Errorf("%s is more than the maximum value %d", show(v), *p.MaxValue)
		}
	}
	length := -1
	switch v := v.(type) {
	case string:
		length = len([]rune(v))
	case []any:
		length = len(v)
	}
	if length >= 0 && p.MinLength != nil && int64(length) < *p.MinLength {
		return fmt.Errorf("the value's length %d is less than the minimum length %d", length, *p.MinLength)
	}
	if length >= 0 && p.MaxLength != nil && int64(length) > *p.MaxLength {
		return fmt.Errorf("the value's length %d is more than the maximum length %d", length, *p.MaxLength)
	}
	return nil
}

// checkType checks a value against a parameter or output type.
func checkType(typ string, v any) error {
	ok := true
	switch typ {
	case "string", "securestring":
		_, ok = v.(string)
	case "int":
		_, ok = v.(int64)
	case "bool":
		_, ok = v.(bool)
	case "object", "secureobject":
		_, ok = v.(map[string]any)
	case "array":
		_, ok = v.([]any)
	}
	if !ok {
		return fmt.Errorf("expected a value of type %s, not %s", typ, jsonType(v))
	}
	return nil
}
