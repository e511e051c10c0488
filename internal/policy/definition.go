package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// FieldError is one problem of a policy document, at its JSON path
// ("properties.policyRule.if.allOf[1].field").
type FieldError struct {
	Path    string
	Message string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Message }

// InvalidError is every problem found in a policy document.
type InvalidError struct {
	Errors []*FieldError
}

func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "\n")
}

// problems collects the FieldErrors of one document.
type problems struct {
	errs []*FieldError
}

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return &InvalidError{Errors: p.errs}
}

// document is a decoded policy document: the properties object and the
// JSON path prefix of its members ("properties." for the full ARM
// resource shape, "" for bare properties).
type document struct {
	id, name string
	props    map[string]any
	prefix   string
}

// decodeDocument accepts the full ARM resource shape ({"id", "name",
// "properties": {...}}) or the bare properties.
func decodeDocument(data []byte) (*document, error) {
	v, err := armexpr.ParseJSON(data)
	if err != nil {
		return nil, &InvalidError{Errors: []*FieldError{{Path: "$", Message: "not valid JSON: " + err.Error()}}}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &InvalidError{Errors: []*FieldError{{Path: "$", Message: "a policy document is a JSON object"}}}
	}
	d := &document{props: obj}
	if props, ok := get(obj, "properties").(map[string]any); ok {
		d.props, d.prefix = props, "properties."
		d.id, _ = get(obj, "id").(string)
		d.name, _ = get(obj, "name").(string)
	}
	return d, nil
}

// IsSetDefinition reports whether a JSON document (either shape) is an
// initiative: its properties list policyDefinitions.
func IsSetDefinition(data []byte) bool {
	d, err := decodeDocument(data)
	return err == nil && get(d.props, "policyDefinitions") != nil
}

// get reads a member of a policy document; keys compare ignoring case, as
// Azure reads them ("allof", "Version").
func get(obj map[string]any, key string) any {
	v, _ := lookupKey(obj, key)
	return v
}

// checkKeys reports members of obj that are not in known.
func checkKeys(p *problems, path string, obj map[string]any, known ...string) {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.ContainsFunc(known, func(s string) bool { return strings.EqualFold(s, k) }) {
			p.add(join(path, k), "unknown property %q; expected one of %s", k, strings.Join(known, ", "))
		}
	}
}

func join(path, key string) string {
	if path == "" || strings.HasSuffix(path, ".") {
		return path + key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// Parameter is a parameter of a definition or an initiative.
type Parameter struct {
	Name          string
	Type          string // String, Array, Object, Boolean, Integer, Float or DateTime
	DefaultValue  any    // nil when there is none
	AllowedValues []any  // nil: any value of the type
	Metadata      map[string]any
	Schema        map[string]any // JSON Schema of an Object parameter
}

var parameterTypes = []string{"String", "Array", "Object", "Boolean", "Integer", "Float", "DateTime"}

// parseParameters reads the parameters object of a definition or an
// initiative.
func parseParameters(p *problems, path string, v any) map[string]*Parameter {
	out := map[string]*Parameter{}
	if v == nil {
		return out
	}
	obj, ok := v.(map[string]any)
	if !ok {
		p.add(path, "parameters must be an object")
		return out
	}
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		ppath := join(path, name)
		def, ok := obj[name].(map[string]any)
		if !ok {
			p.add(ppath, "a parameter is an object with a type")
			continue
		}
		checkKeys(p, ppath, def, "type", "metadata", "defaultValue", "allowedValues", "schema")
		param := &Parameter{Name: name, DefaultValue: get(def, "defaultValue")}
		typ, _ := get(def, "type").(string)
		if i := slices.IndexFunc(parameterTypes, func(t string) bool { return strings.EqualFold(t, typ) }); i >= 0 {
			param.Type = parameterTypes[i]
		} else {
			p.add(join(ppath, "type"), "type %q is not one of %s", typ, strings.Join(parameterTypes, ", "))
		}
		param.Metadata, _ = get(def, "metadata").(map[string]any)
		param.Schema, _ = get(def, "schema").(map[string]any)
		if av := get(def, "allowedValues"); av != nil {
			if param.AllowedValues, ok = av.([]any); !ok {
				p.add(join(ppath, "allowedValues"), "allowedValues must be an array")
			}
		}
		if param.Type != "" {
			for i, a := range param.AllowedValues {
				if err := param.checkType(a); err != nil && !(param.Type == "Array" && !isArray(a)) {
					p.add(index(join(ppath, "allowedValues"), i), "%v", err)
				}
			}
			if param.DefaultValue != nil {
				if err := param.check(param.DefaultValue); err != nil {
					p.add(join(ppath, "defaultValue"), "%v", err)
				}
			}
		}
		out[name] = param
	}
	return out
}

func isArray(v any) bool { _, ok := v.([]any); return ok }

// checkType fails unless v is a value of the parameter's type.
func (p *Parameter) checkType(v any) error {
	ok := false
	switch p.Type {
	case "String":
		_, ok = v.(string)
	case "Array":
		_, ok = v.([]any)
	case "Object":
		_, ok = v.(map[string]any)
	case "Boolean":
		_, ok = v.(bool)
	case "Integer":
		_, ok = toInt(v)
	case "Float":
		_, ok = toFloat(v)
	case "DateTime":
		s, isString := v.(string)
		_, err := time.Parse(time.RFC3339Nano, s)
		ok = isString && err == nil
	}
	if !ok {
		return fmt.Errorf("the value %s is not of type %s", jsonText(v), p.Type)
	}
	return nil
}

// check fails unless v has the parameter's type and is one of its allowed
// values (compared case-sensitively, as Azure does at assignment time); an
// array value passes when it is an allowed value or each of its members
// is.
func (p *Parameter) check(v any) error {
	if err := p.checkType(v); err != nil {
		return err
	}
	if p.AllowedValues == nil {
		return nil
	}
	allowed := func(x any) bool {
		return slices.ContainsFunc(p.AllowedValues, func(a any) bool { return armexpr.Equal(a, x) })
	}
	if allowed(v) {
		return nil
	}
	if arr, ok := v.([]any); ok && !slices.ContainsFunc(arr, func(x any) bool { return !allowed(x) }) {
		return nil
	}
	return fmt.Errorf("the value %s is not one of the allowed values %s", jsonText(v), jsonText(p.AllowedValues))
}

// bindParameters returns the values of declared parameters: the given
// value, else the default. Every parameter must have one, every value
// must be allowed, and no value may be given for an undeclared parameter.
func bindParameters(declared map[string]*Parameter, values map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(declared))
	for name, v := range values {
		if findParameter(declared, name) == nil {
			return nil, fmt.Errorf("the parameter %q is not declared", name)
		}
		out[strings.ToLower(name)] = v
	}
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		p := declared[name]
		v, ok := out[strings.ToLower(name)]
		if !ok {
			if p.DefaultValue == nil {
				return nil, fmt.Errorf("the parameter %q has no value and no default value", name)
			}
			v = p.DefaultValue
			out[strings.ToLower(name)] = v
		}
		if err := p.check(v); err != nil {
			return nil, fmt.Errorf("the parameter %q: %w", name, err)
		}
	}
	return out, nil
}

func findParameter(declared map[string]*Parameter, name string) *Parameter {
	if p, ok := declared[name]; ok {
		return p
	}
	for k, p := range declared {
		if strings.EqualFold(k, name) {
			return p
		}
	}
	return nil
}

// Definition is a loaded policy definition: its rule is parsed, its
// expressions and aliases checked. It is immutable and safe for concurrent
// use.
type Definition struct {
	ID, Name                 string // from the resource shape; empty for bare properties
	DisplayName, Description string
	Mode                     string // as written; empty means Indexed
	Version                  string
	Metadata                 map[string]any
	Parameters               map[string]*Parameter

	rpMode bool // a resource provider mode (Microsoft.KeyVault.Data...): its RP evaluates it, never ARM requests
	rule   *rule
	// types are the lower-case resource types the rule can match, when
	// typed (its if condition requires literal types); see AppliesTo.
	types []string
	typed bool
}

// modes are the definition modes; the Microsoft.*.Data ones are resource
// provider modes.
var modes = []string{"All", "Indexed",
	"Microsoft.Kubernetes.Data", "Microsoft.KeyVault.Data", "Microsoft.Network.Data",
	"Microsoft.ManagedHSM.Data", "Microsoft.DataFactory.Data", "Microsoft.MachineLearningServices.v2.Data",
	"Microsoft.ContainerService.Data", "Microsoft.CognitiveServices.Data", "Microsoft.LoadTestService.Data"}

// ParseDefinition loads a policy definition (the full ARM resource shape or
// its bare properties). The error is an *InvalidError listing every
// problem with its JSON path.
func ParseDefinition(data []byte, aliases *Aliases) (*Definition, error) {
	doc, err := decodeDocument(data)
	if err != nil {
		return nil, err
	}
	p := &problems{}
	pre, props := doc.prefix, doc.props
	d := &Definition{ID: doc.id, Name: doc.name}
	checkKeys(p, pre, props, "displayName", "description", "policyType", "mode", "version", "versions",
		"metadata", "parameters", "policyRule", "externalEvaluationEnforcementSettings")
	d.DisplayName = optionalString(p, join(pre, "displayName"), get(props, "displayName"), 128)
	d.Description = optionalString(p, join(pre, "description"), get(props, "description"), 512)
	d.Version = optionalString(p, join(pre, "version"), get(props, "version"), 0)
	d.Mode = optionalString(p, join(pre, "mode"), get(props, "mode"), 0)
	if d.Mode != "" {
		i := slices.IndexFunc(modes, func(m string) bool { return strings.EqualFold(m, d.Mode) })
		switch {
		case i < 0:
			p.add(join(pre, "mode"), "mode %q is not All, Indexed or a resource provider mode", d.Mode)
		case i >= 2:
			d.rpMode = true
		}
	}
	d.Metadata = optionalObject(p, join(pre, "metadata"), get(props, "metadata"))
	d.Parameters = parseParameters(p, join(pre, "parameters"), get(props, "parameters"))
	rulePath := join(pre, "policyRule")
	if ruleObj, ok := get(props, "policyRule").(map[string]any); ok {
		c := &compiler{p: p, aliases: aliases, params: d.Parameters, lenient: d.rpMode}
		d.rule = c.rule(rulePath, ruleObj)
	} else {
		p.add(rulePath, "policyRule is required: an object with if and then")
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	if d.rule != nil {
		d.types, d.typed = ruleTypes(d.rule.cond)
	}
	return d, nil
}

func optionalString(p *problems, path string, v any, maxLen int) string {
	if v == nil {
		return ""
	}
	s, ok := v.(string)
	switch {
	case !ok:
		p.add(path, "must be a string")
	case maxLen > 0 && len([]rune(s)) > maxLen:
		p.add(path, "is %d characters long; at most %d are allowed", len([]rune(s)), maxLen)
	}
	return s
}

func optionalObject(p *problems, path string, v any) map[string]any {
	if v == nil {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		p.add(path, "must be an object")
	}
	return obj
}

// SetDefinition is a loaded initiative: member definitions with the
// parameter values the initiative passes them.
type SetDefinition struct {
	ID, Name                 string
	DisplayName, Description string
	Version                  string
	Metadata                 map[string]any
	Parameters               map[string]*Parameter
	Members                  []*Member
	Groups                   []Group
}

// Member is one definition of an initiative.
type Member struct {
	DefinitionID      string
	ReferenceID       string // policyDefinitionReferenceId
	DefinitionVersion string // "1.*.*"
	GroupNames        []string
	// Parameters are the values passed to the member's parameters:
	// literals or expressions over the initiative's parameters.
	Parameters map[string]any
	params     map[string]*value
}

// Group is a policyDefinitionGroup: a category of members, for compliance
// reports.
type Group struct {
	Name, Category, DisplayName, Description, AdditionalMetadataID string
}

// ParseSetDefinition loads an initiative. Members are checked on their
// own; NewSetAssignment binds them to their definitions.
func ParseSetDefinition(data []byte) (*SetDefinition, error) {
	doc, err := decodeDocument(data)
	if err != nil {
		return nil, err
	}
	p := &problems{}
	pre, props := doc.prefix, doc.props
	s := &SetDefinition{ID: doc.id, Name: doc.name}
	checkKeys(p, pre, props, "displayName", "description", "policyType", "version", "versions",
		"metadata", "parameters", "policyDefinitions", "policyDefinitionGroups")
	s.DisplayName = optionalString(p, join(pre, "displayName"), get(props, "displayName"), 128)
	s.Description = optionalString(p, join(pre, "description"), get(props, "description"), 512)
	s.Version = optionalString(p, join(pre, "version"), get(props, "version"), 0)
	s.Metadata = optionalObject(p, join(pre, "metadata"), get(props, "metadata"))
	s.Parameters = parseParameters(p, join(pre, "parameters"), get(props, "parameters"))

	groupsPath := join(pre, "policyDefinitionGroups")
	if v := get(props, "policyDefinitionGroups"); v != nil {
		arr, ok := v.([]any)
		if !ok {
			p.add(groupsPath, "must be an array")
		}
		for i, g := range arr {
			gpath := index(groupsPath, i)
			obj, ok := g.(map[string]any)
			if !ok {
				p.add(gpath, "a group is an object with a name")
				continue
			}
			checkKeys(p, gpath, obj, "name", "category", "displayName", "description", "additionalMetadataId")
			grp := Group{
				Name:                 optionalString(p, join(gpath, "name"), get(obj, "name"), 0),
				Category:             optionalString(p, join(gpath, "category"), get(obj, "category"), 0),
				DisplayName:          optionalString(p, join(gpath, "displayName"), get(obj, "displayName"), 0),
				Description:          optionalString(p, join(gpath, "description"), get(obj, "description"), 0),
				AdditionalMetadataID: optionalString(p, join(gpath, "additionalMetadataId"), get(obj, "additionalMetadataId"), 0),
			}
			if grp.Name == "" {
				p.add(join(gpath, "name"), "a group needs a name")
			}
			s.Groups = append(s.Groups, grp)
		}
	}

	membersPath := join(pre, "policyDefinitions")
	arr, ok := get(props, "policyDefinitions").([]any)
	if !ok || len(arr) == 0 {
		p.add(membersPath, "policyDefinitions must be a non-empty array")
	}
	c := &compiler{p: p, params: s.Parameters, initiative: true}
	refs := map[string]bool{}
	for i, m := range arr {
		mpath := index(membersPath, i)
		obj, ok := m.(map[string]any)
		if !ok {
			p.add(mpath, "a member is an object with a policyDefinitionId")
			continue
		}
		checkKeys(p, mpath, obj, "policyDefinitionId", "policyDefinitionReferenceId", "definitionVersion", "parameters", "groupNames")
		mem := &Member{
			DefinitionID:      optionalString(p, join(mpath, "policyDefinitionId"), get(obj, "policyDefinitionId"), 0),
			ReferenceID:       optionalString(p, join(mpath, "policyDefinitionReferenceId"), get(obj, "policyDefinitionReferenceId"), 0),
			DefinitionVersion: optionalString(p, join(mpath, "definitionVersion"), get(obj, "definitionVersion"), 0),
			Parameters:        map[string]any{},
			params:            map[string]*value{},
		}
		if mem.DefinitionID == "" {
			p.add(join(mpath, "policyDefinitionId"), "policyDefinitionId is required")
		}
		if mem.ReferenceID == "" {
			mem.ReferenceID = fmt.Sprint(i)
		}
		if refs[strings.ToLower(mem.ReferenceID)] {
			p.add(join(mpath, "policyDefinitionReferenceId"), "the reference ID %q is used twice", mem.ReferenceID)
		}
		refs[strings.ToLower(mem.ReferenceID)] = true
		if gn := get(obj, "groupNames"); gn != nil {
			names, ok := gn.([]any)
			if !ok {
				p.add(join(mpath, "groupNames"), "must be an array of group names")
			}
			for j, n := range names {
				name, _ := n.(string)
				if !slices.ContainsFunc(s.Groups, func(g Group) bool { return strings.EqualFold(g.Name, name) }) {
					p.add(index(join(mpath, "groupNames"), j), "%s is not one of the policyDefinitionGroups", jsonText(n))
				}
				mem.GroupNames = append(mem.GroupNames, name)
			}
		}
		ppath := join(mpath, "parameters")
		if pv := get(obj, "parameters"); pv != nil {
			pobj, ok := pv.(map[string]any)
			if !ok {
				p.add(ppath, "must be an object of {\"value\": ...}")
			}
			for _, name := range slices.Sorted(maps.Keys(pobj)) {
				vpath := join(ppath, name)
				wrapper, ok := pobj[name].(map[string]any)
				if !ok || len(wrapper) != 1 || get(wrapper, "value") == nil {
					p.add(vpath, "a member parameter is {\"value\": ...}")
					continue
				}
				raw := get(wrapper, "value")
				mem.Parameters[name] = raw
				mem.params[name] = c.value(join(vpath, "value"), raw, scopeInitiative)
			}
		}
		s.Members = append(s.Members, mem)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return s, nil
}
