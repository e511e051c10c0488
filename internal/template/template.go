// Package template is the ARM template language above the expressions of
// internal/armexpr: it parses template documents (JSON with comments,
// languageVersion 1.0 and 2.0) and expands them into what a deployment
// engine needs, each resource with its resource ID, its evaluated body and
// the IDs it depends on, in an order that respects them.
//
// Some values are only known while the deployment runs: reference(),
// list*(), providers() and Key Vault parameter references. Expand
// evaluates everything else and leaves those values as their expression
// strings, as Azure's what-if shows them; the engine calls
// Resource.Evaluate with its Runtime just before it deploys each resource,
// after the resource's dependencies, and Deployment.EvaluateOutputs at the
// end.
//
// template is pure (no I/O): linked templates come through a loader the
// caller supplies. internal/deploy and cmd/citadel import it.
package template

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// Scope is the level a template deploys to, from its $schema.
type Scope string

// The deployment scopes.
const (
	ResourceGroupScope   Scope = "resourceGroup"
	SubscriptionScope    Scope = "subscription"
	ManagementGroupScope Scope = "managementGroup"
	TenantScope          Scope = "tenant"
)

// Template is a parsed template document. It is immutable; one Template
// can be expanded any number of times, concurrently.
type Template struct {
	Schema          string
	LanguageVersion string // "" or "2.0" (symbolic resource names, existing)
	ContentVersion  string
	APIProfile      string
	Scope           Scope
	Parameters      map[string]*Parameter // by name as declared

	variables      map[string]any // raw, without "copy"
	variableCopies []*copyDecl
	functions      map[string]*userFunction // by lower-case "namespace.member"
	resources      []*resourceDecl
	outputs        map[string]map[string]any
	metadata       any
	exprs          map[string]*armexpr.Expr // every expression string of the document
}

// Parameter is a declared template parameter.
type Parameter struct {
	Name          string
	Type          string // lower case: string, securestring, int, bool, object, secureobject, array; "any" when a 2.0 type leaves it open
	DefaultValue  any    // raw template JSON, possibly an expression
	HasDefault    bool
	AllowedValues []any
	MinValue      *int64
	MaxValue      *int64
	MinLength     *int64
	MaxLength     *int64
	Nullable      bool
}

// Secure reports whether the parameter's value must never be shown.
func (p *Parameter) Secure() bool { return p.Type == "securestring" || p.Type == "secureobject" }

// userFunction is a member of the functions section, called as
// namespace.member(args).
type userFunction struct {
	name   string // namespace.member as declared
	params []udfParam
	output any // raw output.value
	outTyp string
}

type udfParam struct{ name, typ string }

// resourceDecl is a resource as declared, before copy loops and
// conditions are applied.
type resourceDecl struct {
	path         string // JSON path, for errors
	symbolic     string // languageVersion 2.0
	raw          map[string]any
	copy         *copyDecl
	children     []*resourceDecl
	existing     bool
	isDeployment bool               // Microsoft.Resources/deployments
	inner        bool               // expressionEvaluationOptions.scope is inner
	nested       *Template          // the inline template of a deployment
	refs         []armexpr.CallSite // its reference() and list*() calls, for implicit dependencies
}

// copyDecl is a copy loop: of a resource, a variable, a property or an
// output.
type copyDecl struct {
	name      string
	count     any
	mode      string // "serial" or "parallel" (resources)
	batchSize any
	input     any
}

// ParseError is a template that does not parse or validate; Path is the
// JSON path of the offending value.
type ParseError struct {
	Path string
	Err  error
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *ParseError) Unwrap() error { return e.Err }

func errorf(path, format string, args ...any) error {
	return &ParseError{Path: path, Err: fmt.Errorf(format, args...)}
}

// wrap attributes an error to a JSON path, unless it already has one.
func wrap(path string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*ParseError](err); ok {
		return err
	}
	return &ParseError{Path: path, Err: err}
}

// nest attributes an error inside a nested template to the path of the
// deployment that holds it.
func nest(path string, err error) error {
	return &ParseError{Path: path, Err: err}
}

// Parse parses a template document.
func Parse(data []byte) (*Template, error) {
	v, err := armexpr.ParseJSON(data)
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errorf("", "a template is a JSON object, not %s", jsonType(v))
	}
	exprs := map[string]*armexpr.Expr{}
	if err := collectExpressions(doc, "", exprs); err != nil {
		return nil, err
	}
	return parseTemplate(doc, "", exprs)
}

// collectExpressions parses every expression string of a document, in
// values and in object keys, into exprs.
func collectExpressions(v any, path string, exprs map[string]*armexpr.Expr) error {
	parse := func(s, path string) error {
		if !armexpr.IsExpression(s) || exprs[s] != nil {
			return nil
		}
		e, err := armexpr.Parse(s)
		if err != nil {
			return wrap(path, err)
		}
		exprs[s] = e
		return nil
	}
	switch v := v.(type) {
	case string:
		return parse(v, path)
	case []any:
		for i, e := range v {
			if err := collectExpressions(e, indexPath(path, i), exprs); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p := keyPath(path, k)
			if err := parse(k, p); err != nil {
				return err
			}
			if err := collectExpressions(v[k], p, exprs); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyPath and indexPath extend a JSON path.
func keyPath(path, key string) string {
	simple := key != ""
	for i := 0; i < len(key) && simple; i++ {
		c := key[i]
		simple = c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
	}
	switch {
	case !simple:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case int64, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	}
	return "an object"
}

// scopeOf reads the deployment scope from a $schema URL.
func scopeOf(schema string) Scope {
	s := strings.ToLower(schema)
	switch {
	case strings.Contains(s, "subscriptiondeploymenttemplate"):
		return SubscriptionScope
	case strings.Contains(s, "managementgroupdeploymenttemplate"):
		return ManagementGroupScope
	case strings.Contains(s, "tenantdeploymenttemplate"):
		return TenantScope
	}
	return ResourceGroupScope
}

// parseTemplate reads the sections of a template object found at path.
func parseTemplate(doc map[string]any, path string, exprs map[string]*armexpr.Expr) (*Template, error) {
	t := &Template{
		Parameters: map[string]*Parameter{},
		variables:  map[string]any{},
		functions:  map[string]*userFunction{},
		outputs:    map[string]map[string]any{},
		metadata:   doc["metadata"],
		exprs:      exprs,
	}
	var err error
	strField := func(key string) string {
		if err != nil {
			return ""
		}
		v, ok := doc[key]
		if !ok {
			return ""
		}
		s, isStr := v.(string)
		if !isStr {
			err = errorf(keyPath(path, key), "must be a string, not %s", jsonType(v))
		}
		return s
	}
	t.Schema = strField("$schema")
	t.LanguageVersion = strField("languageVersion")
	t.ContentVersion = strField("contentVersion")
	t.APIProfile = strField("apiProfile")
	if err != nil {
		return nil, err
	}
	t.Scope = scopeOf(t.Schema)
	definitions, _ := doc["definitions"].(map[string]any)

	sections := []struct {
		key   string
		parse func(any, string) error
	}{
		{"parameters", func(v any, p string) error { return t.parseParameters(v, p, definitions) }},
		{"variables", t.parseVariables},
		{"functions", t.parseFunctions},
		{"resources", t.parseResources},
		{"outputs", t.parseOutputs},
	}
	for _, s := range sections {
		if v, ok := doc[s.key]; ok && v != nil {
			if err := s.parse(v, keyPath(path, s.key)); err != nil {
				return nil, err
			}
		}
	}
	if err := t.checkFunctionCycles(keyPath(path, "functions")); err != nil {
		return nil, err
	}
	return t, nil
}

var parameterTypes = []string{"string", "securestring", "int", "bool", "object", "secureobject", "array"}

func (t *Template) parseParameters(v any, path string, definitions map[string]any) error {
	params, ok := v.(map[string]any)
	if !ok {
		return errorf(path, "must be an object, not %s", jsonType(v))
	}
	for name, pv := range params {
		p := keyPath(path, name)
		decl, ok := pv.(map[string]any)
		if !ok {
			return errorf(p, "must be an object, not %s", jsonType(pv))
		}
		decl, err := resolveRef(decl, definitions, p)
		if err != nil {
			return err
		}
		param := &Parameter{Name: name, Type: "any"}
		if typ, ok := decl["type"]; ok {
			s, _ := typ.(string)
			param.Type = strings.ToLower(s)
			if !slices.Contains(parameterTypes, param.Type) {
				return errorf(keyPath(p, "type"), "the type %v is not one of %s", typ, strings.Join(parameterTypes, ", "))
			}
		}
		param.DefaultValue, param.HasDefault = decl["defaultValue"]
		param.Nullable, _ = decl["nullable"].(bool)
		if av, ok := decl["allowedValues"]; ok {
			if param.AllowedValues, ok = av.([]any); !ok {
				return errorf(keyPath(p, "allowedValues"), "must be an array, not %s", jsonType(av))
			}
		}
		for key, dst := range map[string]**int64{"minValue": &param.MinValue, "maxValue": &param.MaxValue, "minLength": &param.MinLength, "maxLength": &param.MaxLength} {
			if lv, ok := decl[key]; ok {
				n, isInt := lv.(int64)
				if !isInt {
					return errorf(keyPath(p, key), "must be an integer, not %s", jsonType(lv))
				}
				*dst = &n
			}
		}
		t.Parameters[name] = param
	}
	return nil
}

// resolveRef follows a languageVersion 2.0 "$ref": "#/definitions/x",
// merging the definition under the declaration's own keys.
func resolveRef(decl, definitions map[string]any, path string) (map[string]any, error) {
	for range 32 {
		ref, ok := decl["$ref"].(string)
		if !ok {
			return decl, nil
		}
		name, ok := strings.CutPrefix(ref, "#/definitions/")
		def, found := definitions[name].(map[string]any)
		if !ok || !found {
			return nil, errorf(keyPath(path, "$ref"), "'%s' is not a definition of this template", ref)
		}
		merged := maps.Clone(def)
		for k, v := range decl {
			if k != "$ref" {
				merged[k] = v
			}
		}
		decl = merged
	}
	return nil, errorf(keyPath(path, "$ref"), "the definitions refer to each other in a loop")
}

func (t *Template) parseVariables(v any, path string) error {
	vars, ok := v.(map[string]any)
	if !ok {
		return errorf(path, "must be an object, not %s", jsonType(v))
	}
	for name, val := range vars {
		if name != "copy" {
			t.variables[name] = val
			continue
		}
		list, ok := val.([]any)
		if !ok {
			return errorf(keyPath(path, "copy"), "must be an array of {name, count, input}")
		}
		for i, c := range list {
			cd, err := parseCopy(c, indexPath(keyPath(path, "copy"), i), true)
			if err != nil {
				return err
			}
			t.variableCopies = append(t.variableCopies, cd)
		}
	}
	return nil
}

// parseCopy reads a copy loop declaration; withInput requires an input
// (variable, property and output loops).
func parseCopy(v any, path string, withInput bool) (*copyDecl, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(path, "a copy loop must be an object, not %s", jsonType(v))
	}
	c := &copyDecl{count: m["count"], batchSize: m["batchSize"], input: m["input"]}
	if n, ok := m["name"]; ok {
		if c.name, ok = n.(string); !ok {
			return nil, errorf(keyPath(path, "name"), "must be a string")
		}
	}
	if _, ok := m["count"]; !ok {
		return nil, errorf(path, "a copy loop needs a count")
	}
	if _, ok := m["input"]; withInput && !ok {
		return nil, errorf(path, "a copy loop needs an input")
	}
	if mode, ok := m["mode"].(string); ok {
		c.mode = strings.ToLower(mode)
		if c.mode != "serial" && c.mode != "parallel" {
			return nil, errorf(keyPath(path, "mode"), "must be Serial or Parallel, not %q", mode)
		}
	}
	return c, nil
}

func (t *Template) parseFunctions(v any, path string) error {
	list, ok := v.([]any)
	if !ok {
		return errorf(path, "must be an array of {namespace, members}, not %s", jsonType(v))
	}
	for i, nv := range list {
		p := indexPath(path, i)
		ns, _ := nv.(map[string]any)
		namespace, _ := ns["namespace"].(string)
		members, ok := ns["members"].(map[string]any)
		if namespace == "" || !ok {
			return errorf(p, "a function namespace needs a namespace name and members")
		}
		for name, mv := range members {
			mp := keyPath(keyPath(p, "members"), name)
			m, _ := mv.(map[string]any)
			out, ok := m["output"].(map[string]any)
			if !ok {
				return errorf(mp, "a function needs an output {type, value}")
			}
			f := &userFunction{name: namespace + "." + name, output: out["value"]}
			f.outTyp, _ = out["type"].(string)
			params, _ := m["parameters"].([]any)
			for j, pv := range params {
				pm, _ := pv.(map[string]any)
				pname, _ := pm["name"].(string)
				ptype, _ := pm["type"].(string)
				if pname == "" {
					return errorf(indexPath(keyPath(mp, "parameters"), j), "a function parameter needs a name")
				}
				f.params = append(f.params, udfParam{name: pname, typ: strings.ToLower(ptype)})
			}
			t.functions[strings.ToLower(f.name)] = f
		}
	}
	return nil
}

// checkFunctionCycles rejects user-defined functions that call themselves,
// directly or through others.
func (t *Template) checkFunctionCycles(path string) error {
	calls := map[string][]string{}
	for key, f := range t.functions {
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case string:
				if e := t.exprs[v]; e != nil {
					for _, c := range e.Calls() {
						if callee := strings.ToLower(c.Name); t.functions[callee] != nil {
							calls[key] = append(calls[key], callee)
						}
					}
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			case map[string]any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(f.output)
	}
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(f string) error
	visit = func(f string) error {
		switch state[f] {
		case 1:
			return errorf(path, "the user-defined function %s calls itself", t.functions[f].name)
		case 2:
			return nil
		}
		state[f] = 1
		for _, g := range calls[f] {
			if err := visit(g); err != nil {
				return err
			}
		}
		state[f] = 2
		return nil
	}
	for _, f := range slices.Sorted(maps.Keys(t.functions)) {
		if err := visit(f); err != nil {
			return err
		}
	}
	return nil
}

func (t *Template) parseResources(v any, path string) error {
	switch rs := v.(type) {
	case []any:
		for i, rv := range rs {
			d, err := t.parseResource(rv, indexPath(path, i), "")
			if err != nil {
				return err
			}
			t.resources = append(t.resources, d)
		}
	case map[string]any:
		if t.LanguageVersion == "" {
			return errorf(path, "resources is an object (symbolic names) only with languageVersion 2.0")
		}
		for _, name := range slices.Sorted(maps.Keys(rs)) {
			d, err := t.parseResource(rs[name], keyPath(path, name), name)
			if err != nil {
				return err
			}
			t.resources = append(t.resources, d)
		}
	default:
		return errorf(path, "must be an array (or an object with languageVersion 2.0), not %s", jsonType(v))
	}
	return nil
}

func (t *Template) parseResource(v any, path, symbolic string) (*resourceDecl, error) {
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(path, "a resource must be an object, not %s", jsonType(v))
	}
	d := &resourceDecl{path: path, symbolic: symbolic, raw: raw}
	typ, ok := raw["type"].(string)
	if !ok || typ == "" {
		return nil, errorf(keyPath(path, "type"), "a resource needs a type")
	}
	if _, ok := raw["name"].(string); !ok {
		return nil, errorf(keyPath(path, "name"), "a resource needs a name")
	}
	if av, ok := raw["apiVersion"]; ok {
		if _, ok := av.(string); !ok {
			return nil, errorf(keyPath(path, "apiVersion"), "must be a string")
		}
	} else if t.APIProfile == "" && raw["existing"] != true {
		return nil, errorf(keyPath(path, "apiVersion"), "a resource needs an apiVersion (or the template an apiProfile)")
	}
	d.existing, _ = raw["existing"].(bool)
	if c, ok := raw["copy"]; ok {
		cd, err := parseCopy(c, keyPath(path, "copy"), false)
		if err != nil {
			return nil, err
		}
		if cd.name == "" {
			return nil, errorf(keyPath(keyPath(path, "copy"), "name"), "a resource copy loop needs a name")
		}
		d.copy = cd
	}
	if dep, ok := raw["dependsOn"]; ok {
		if _, ok := dep.([]any); !ok {
			return nil, errorf(keyPath(path, "dependsOn"), "must be an array, not %s", jsonType(dep))
		}
	}
	if children, ok := raw["resources"]; ok {
		list, ok := children.([]any)
		if !ok {
			return nil, errorf(keyPath(path, "resources"), "must be an array, not %s", jsonType(children))
		}
		for i, cv := range list {
			c, err := t.parseResource(cv, indexPath(keyPath(path, "resources"), i), "")
			if err != nil {
				return nil, err
			}
			d.children = append(d.children, c)
		}
	}
	if strings.EqualFold(typ, "Microsoft.Resources/deployments") {
		d.isDeployment = true
		props, _ := raw["properties"].(map[string]any)
		opts, _ := props["expressionEvaluationOptions"].(map[string]any)
		scope, _ := opts["scope"].(string)
		d.inner = strings.EqualFold(scope, "inner")
		if tv, ok := props["template"]; ok {
			doc, ok := tv.(map[string]any)
			if !ok {
				return nil, errorf(keyPath(keyPath(path, "properties"), "template"), "must be an object, not %s", jsonType(tv))
			}
			nested, err := parseTemplate(doc, keyPath(keyPath(path, "properties"), "template"), t.exprs)
			if err != nil {
				return nil, err
			}
			d.nested = nested
		}
	}
	d.refs = runtimeCalls(t, d)
	return d, nil
}

func (t *Template) parseOutputs(v any, path string) error {
	outs, ok := v.(map[string]any)
	if !ok {
		return errorf(path, "must be an object, not %s", jsonType(v))
	}
	for name, ov := range outs {
		p := keyPath(path, name)
		o, ok := ov.(map[string]any)
		if !ok {
			return errorf(p, "an output must be an object, not %s", jsonType(ov))
		}
		_, hasValue := o["value"]
		c, hasCopy := o["copy"]
		switch {
		case hasCopy:
			if _, err := parseCopy(c, keyPath(p, "copy"), true); err != nil {
				return err
			}
		case !hasValue:
			return errorf(p, "an output needs a value or a copy loop")
		}
		t.outputs[name] = o
	}
	return nil
}
