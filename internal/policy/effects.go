package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// Effect is what a policy does when its rule's if condition holds.
type Effect string

// The effects, spelled as Azure does. AuditAction is undocumented; it
// appears beside denyAction in General/MFA_DenyAction.json.
const (
	Append            Effect = "append"
	Audit             Effect = "audit"
	AuditIfNotExists  Effect = "auditIfNotExists"
	Deny              Effect = "deny"
	DenyAction        Effect = "denyAction"
	AuditAction       Effect = "auditAction"
	DeployIfNotExists Effect = "deployIfNotExists"
	Disabled          Effect = "disabled"
	Manual            Effect = "manual"
	Modify            Effect = "modify"
	Mutate            Effect = "mutate"
	AddToNetworkGroup Effect = "addToNetworkGroup"
)

var effects = []Effect{Append, Audit, AuditIfNotExists, Deny, DenyAction, AuditAction, DeployIfNotExists,
	Disabled, Manual, Modify, Mutate, AddToNetworkGroup}

// parseEffect reads an effect name, in any case.
func parseEffect(v any) (Effect, error) {
	s, _ := v.(string)
	for _, e := range effects {
		if strings.EqualFold(string(e), s) {
			return e, nil
		}
	}
	return "", fmt.Errorf("the effect %s is not one of %v", jsonText(v), effects)
}

// details are the effect details of a rule, by effect.
type details struct {
	appends      []*assignField // append
	modify       *modifyDetails
	exists       *existenceDetails // auditIfNotExists, deployIfNotExists
	actionNames  []string          // denyAction
	defaultState string            // manual
}

// assignField is an append entry or a modify operation.
type assignField struct {
	path      string // JSON path in the document
	operation string // add, addOrReplace or remove; append entries add
	field     *fieldRef
	value     *value
	condition *value // modify: the operation applies only when true
}

type modifyDetails struct {
	roleDefinitionIDs []string
	conflictEffect    Effect
	operations        []*assignField
}

type existenceDetails struct {
	resourceType      string
	name, group       *value // name and resourceGroupName
	existenceScope    string
	evaluationDelay   string
	deploymentScope   string
	condition         *condition
	roleDefinitionIDs []string
	deployment        map[string]any    // as written; its template is an ARM template
	deployParams      map[string]*value // deployment.properties.parameters.*.value
}

// effect compiles then.effect: an effect name or an expression.
func (c *compiler) effect(path string, v any) *value {
	s, ok := v.(string)
	if !ok {
		c.p.add(path, "the effect must be a string")
		return &value{static: true, lit: string(Disabled)}
	}
	val := c.value(path, s, scopeRule)
	if val.static {
		if _, err := parseEffect(val.lit); err != nil {
			c.p.add(path, "%v", err)
		}
	}
	return val
}

// possibleEffects are the effects an effect value may take: itself, or
// the allowed values (else the default) of the parameter it names; nil
// when that can't be known.
func (c *compiler) possibleEffects(effect *value) []Effect {
	var vals []any
	switch {
	case effect.static:
		vals = []any{effect.lit}
	case effect.expr != nil:
		calls := effect.expr.Calls()
		if len(calls) != 1 || !strings.EqualFold(calls[0].Name, "parameters") || calls[0].NumArgs() != 1 {
			return nil
		}
		arg, err := calls[0].EvalArg(0, templateFunctions)
		name, _ := arg.(string)
		p := findParameter(c.params, name)
		if err != nil || p == nil {
			return nil
		}
		vals = p.AllowedValues
		if vals == nil && p.DefaultValue != nil {
			vals = []any{p.DefaultValue}
		}
	}
	var out []Effect
	for _, v := range vals {
		if e, err := parseEffect(v); err == nil {
			out = append(out, e)
		}
	}
	return out
}

// details compiles then.details and checks that the effects the rule may
// take have what they need.
func (c *compiler) details(path string, v any, effect *value) *details {
	d := &details{}
	if c.lenient {
		return d // a resource provider mode's details are its RP's (Gatekeeper templates...)
	}
	possible := c.possibleEffects(effect)
	may := func(e Effect) bool { return slices.Contains(possible, e) }
	switch v := v.(type) {
	case nil:
	case []any:
		for i, item := range v {
			d.appends = append(d.appends, c.assignField(index(path, i), item, false))
		}
	case map[string]any:
		switch {
		case get(v, "operations") != nil:
			d.modify = c.modify(path, v)
		case get(v, "type") != nil || may(AuditIfNotExists) || may(DeployIfNotExists):
			d.exists = c.existence(path, v, may(DeployIfNotExists))
		case get(v, "actionNames") != nil:
			checkKeys(c.p, path, v, "actionNames", "cascadeBehaviors")
			names, ok := get(v, "actionNames").([]any)
			if !ok || len(names) == 0 {
				c.p.add(join(path, "actionNames"), "actionNames must be a non-empty array")
			}
			for _, n := range names {
				s, _ := n.(string)
				d.actionNames = append(d.actionNames, s)
			}
		case get(v, "defaultState") != nil:
			checkKeys(c.p, path, v, "defaultState")
			d.defaultState = optionalString(c.p, join(path, "defaultState"), get(v, "defaultState"), 0)
			if !slices.Contains([]string{"compliant", "noncompliant", "unknown"}, strings.ToLower(d.defaultState)) {
				c.p.add(join(path, "defaultState"), "defaultState must be Compliant, NonCompliant or Unknown")
			}
		}
	default:
		c.p.add(path, "details must be an object, or an array for append")
	}
	switch {
	case may(Append) && d.appends == nil:
		c.p.add(path, "the append effect needs details: an array of {field, value}")
	case may(Modify) && d.modify == nil:
		c.p.add(path, "the modify effect needs details with operations and roleDefinitionIds")
	case (may(AuditIfNotExists) || may(DeployIfNotExists)) && d.exists == nil:
		c.p.add(path, "the if-not-exists effects need details with a type")
	case may(DenyAction) && d.actionNames == nil:
		c.p.add(path, "the denyAction effect needs details with actionNames")
	}
	return d
}

// assignField compiles an append entry ({field, value}) or a modify
// operation ({operation, field, value, condition}).
func (c *compiler) assignField(path string, v any, isModify bool) *assignField {
	a := &assignField{path: path, operation: "add"}
	obj, ok := v.(map[string]any)
	if !ok {
		c.p.add(path, "must be an object with field and value")
		return a
	}
	if isModify {
		checkKeys(c.p, path, obj, "operation", "field", "value", "condition")
		op, _ := get(obj, "operation").(string)
		switch strings.ToLower(op) {
		case "add":
		case "addorreplace":
			a.operation = "addOrReplace"
		case "remove":
			a.operation = "remove"
		default:
			c.p.add(join(path, "operation"), "operation %q is not addOrReplace, add or remove", op)
		}
		if cond := get(obj, "condition"); cond != nil {
			a.condition = c.value(join(path, "condition"), cond, scopeModifyCondition)
		}
	} else {
		checkKeys(c.p, path, obj, "field", "value")
	}
	fpath := join(path, "field")
	a.field = c.fieldRef(fpath, get(obj, "field"), scopeRule)
	if f := a.field.field; f != nil {
		switch f.kind {
		case fieldAlias, fieldTag, fieldTags, fieldPath, fieldMissing:
		default:
			c.p.add(fpath, "%s can't be changed: use an alias or tags", a.field.written)
		}
	}
	raw, hasValue := lookupKey(obj, "value")
	switch {
	case a.operation == "remove" && hasValue:
		c.p.add(join(path, "value"), "a remove operation takes no value")
	case a.operation != "remove" && !hasValue:
		c.p.add(join(path, "value"), "value is required")
	case hasValue:
		a.value = c.value(join(path, "value"), raw, scopeRule)
	}
	return a
}

func (c *compiler) modify(path string, obj map[string]any) *modifyDetails {
	checkKeys(c.p, path, obj, "roleDefinitionIds", "conflictEffect", "operations")
	m := &modifyDetails{conflictEffect: Deny, roleDefinitionIDs: c.roleDefinitionIDs(join(path, "roleDefinitionIds"), get(obj, "roleDefinitionIds"))}
	if ce := get(obj, "conflictEffect"); ce != nil {
		e, err := parseEffect(ce)
		if err != nil || (e != Audit && e != Deny && e != Disabled) {
			c.p.add(join(path, "conflictEffect"), "conflictEffect must be audit, deny or disabled")
		}
		m.conflictEffect = e
	}
	opsPath := join(path, "operations")
	ops, ok := get(obj, "operations").([]any)
	if !ok || len(ops) == 0 {
		c.p.add(opsPath, "operations must be a non-empty array")
	}
	for i, op := range ops {
		m.operations = append(m.operations, c.assignField(index(opsPath, i), op, true))
	}
	return m
}

func (c *compiler) roleDefinitionIDs(path string, v any) []string {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		c.p.add(path, "roleDefinitionIds must be a non-empty array of role definition IDs")
	}
	var out []string
	for i, item := range arr {
		s, ok := item.(string)
		if !ok || s == "" {
			c.p.add(index(path, i), "a role definition ID is a string")
		}
		out = append(out, s)
	}
	return out
}

func (c *compiler) existence(path string, obj map[string]any, deploy bool) *existenceDetails {
	checkKeys(c.p, path, obj, "type", "name", "resourceGroupName", "existenceScope", "evaluationDelay",
		"existenceCondition", "roleDefinitionIds", "deploymentScope", "deployment")
	x := &existenceDetails{existenceScope: "ResourceGroup", evaluationDelay: "PT10M", deploymentScope: "ResourceGroup"}
	x.resourceType = optionalString(c.p, join(path, "type"), get(obj, "type"), 0)
	if x.resourceType == "" {
		c.p.add(join(path, "type"), "type is required: the type of the related resources")
	}
	if v := get(obj, "name"); v != nil {
		x.name = c.value(join(path, "name"), v, scopeRule)
	}
	if v := get(obj, "resourceGroupName"); v != nil {
		x.group = c.value(join(path, "resourceGroupName"), v, scopeRule)
	}
	for _, opt := range []struct {
		key     string
		into    *string
		allowed []string
	}{
		{"existenceScope", &x.existenceScope, []string{"ResourceGroup", "Subscription"}},
		{"deploymentScope", &x.deploymentScope, []string{"ResourceGroup", "Subscription"}},
		{"evaluationDelay", &x.evaluationDelay, nil},
	} {
		v := get(obj, opt.key)
		if v == nil {
			continue
		}
		s := optionalString(c.p, join(path, opt.key), v, 0)
		if i := slices.IndexFunc(opt.allowed, func(a string) bool { return strings.EqualFold(a, s) }); i >= 0 {
			s = opt.allowed[i]
		} else if opt.allowed != nil {
			c.p.add(join(path, opt.key), "%s must be one of %s", opt.key, strings.Join(opt.allowed, ", "))
		}
		*opt.into = s
	}
	if v := get(obj, "existenceCondition"); v != nil {
		x.condition = c.condition(join(path, "existenceCondition"), v)
	}
	if v := get(obj, "roleDefinitionIds"); v != nil || deploy {
		x.roleDefinitionIDs = c.roleDefinitionIDs(join(path, "roleDefinitionIds"), v)
	}
	dpath := join(path, "deployment")
	switch dep := get(obj, "deployment").(type) {
	case nil:
		if deploy {
			c.p.add(dpath, "the deployIfNotExists effect needs a deployment")
		}
	case map[string]any:
		x.deployment = dep
		props, ok := get(dep, "properties").(map[string]any)
		if !ok {
			c.p.add(join(dpath, "properties"), "deployment.properties must be an object with mode, template and parameters")
			break
		}
		if _, ok := get(props, "template").(map[string]any); !ok {
			c.p.add(join(join(dpath, "properties"), "template"), "the deployment needs a template object (a linked template is not allowed)")
		}
		params, _ := get(props, "parameters").(map[string]any)
		x.deployParams = map[string]*value{}
		for name, p := range params {
			ppath := join(join(join(dpath, "properties"), "parameters"), name)
			wrapper, ok := p.(map[string]any)
			raw, hasValue := lookupKey(wrapper, "value")
			if !ok || !hasValue {
				c.p.add(ppath, "a deployment parameter is {\"value\": ...}")
				continue
			}
			x.deployParams[name] = c.value(join(ppath, "value"), raw, scopeRule)
		}
	default:
		c.p.add(dpath, "deployment must be an object")
	}
	return x
}

// Change is one change append or modify makes to a request body.
type Change struct {
	Operation string // add, addOrReplace or remove; append adds
	Field     string // as the definition writes it
	Path      string // in the resource body: "tags.env", "properties.rules[*]"
	Value     any    `json:",omitempty"`
	path      jsonPath
}

// ApplyChanges makes the changes to body, in order, in place. add sets a
// property that is absent and appends a member to a [*] array (creating
// it); addOrReplace sets the property, or makes a [*] array hold only the
// value; remove deletes the property, or the members equal to the value.
// On X[*].p the operation is made on every member. A change whose parent
// object is absent is skipped, except that tags are created.
func ApplyChanges(body map[string]any, changes []Change) error {
	for _, c := range changes {
		path := c.path
		if path == nil {
			var err error
			if path, err = compilePath(c.Path); err != nil {
				return fmt.Errorf("change %s %s: %w", c.Operation, c.Path, err)
			}
		}
		switch c.Operation {
		case "add", "addOrReplace", "remove":
		default:
			return fmt.Errorf("change %s %s: the operation is not add, addOrReplace or remove", c.Operation, c.Path)
		}
		applyAt(body, path, c.Operation, clone(c.Value)) // a value may be shared by every evaluation of the assignment
	}
	return nil
}

// applyAt makes one change at path under obj.
func applyAt(obj map[string]any, path jsonPath, op string, v any) {
	for i := 0; i < len(path)-1; i++ {
		if path[i+1] == each {
			arr, _ := getKey(obj, path[i]).([]any)
			rest := path[i+2:]
			if len(rest) == 0 {
				setKey(obj, path[i], applyMember(arr, op, v))
				return
			}
			for _, m := range arr {
				if mo, ok := m.(map[string]any); ok {
					applyAt(mo, rest, op, v)
				}
			}
			return
		}
		next, ok := getKey(obj, path[i]).(map[string]any)
		if !ok {
			if i != 0 || !strings.EqualFold(path[0], "tags") {
				return // the parent is absent: nothing to change
			}
			next = map[string]any{}
			setKey(obj, path[i], next)
		}
		obj = next
	}
	key := path[len(path)-1]
	switch op {
	case "add":
		if getKey(obj, key) == nil {
			setKey(obj, key, v)
		}
	case "addOrReplace":
		setKey(obj, key, v)
	case "remove":
		for k := range obj {
			if strings.EqualFold(k, key) {
				delete(obj, k)
			}
		}
	}
}

// applyMember changes the members of a [*] array.
func applyMember(arr []any, op string, v any) []any {
	switch op {
	case "add":
		return append(slices.Clip(arr), v)
	case "addOrReplace":
		return []any{v}
	}
	return slices.DeleteFunc(slices.Clone(arr), func(m any) bool { return looseEqual(m, v) })
}

func getKey(obj map[string]any, key string) any {
	v, _ := lookupKey(obj, key)
	return v
}

// setKey sets obj[key], keeping the spelling of a key already there.
func setKey(obj map[string]any, key string, v any) {
	for k := range obj {
		if strings.EqualFold(k, key) {
			obj[k] = v
			return
		}
	}
	obj[key] = v
}

// Existence is what an auditIfNotExists or deployIfNotExists result asks
// the caller to look for: related resources of Type, named Name (any name
// when empty; a trailing "/?" is a wildcard segment), in the evaluated
// resource's group, the named group or its subscription (ExistenceScope),
// once EvaluationDelay has passed after provisioning. The resource is
// compliant when one of them is Satisfied; otherwise deployIfNotExists
// deploys Deployment.
type Existence struct {
	Type              string
	Name              string
	ResourceGroupName string
	ExistenceScope    string // ResourceGroup or Subscription
	EvaluationDelay   string // AfterProvisioning, AfterProvisioningSuccess, AfterProvisioningFailure or an ISO 8601 duration
	DeploymentScope   string
	RoleDefinitionIDs []string
	// Deployment is details.deployment with its parameter values
	// evaluated; its template is for the template engine.
	Deployment map[string]any `json:",omitempty"`

	ev   *evaluation
	cond *condition
}

// Satisfied reports whether a related resource meets the
// existenceCondition (any related resource does when there is none). Its
// field conditions read the related resource; field() reads the
// evaluated one.
func (x *Existence) Satisfied(related map[string]any) (bool, error) {
	if x.cond == nil {
		return true, nil
	}
	ev := newEvaluation(x.ev.m, related, x.ev.ctx)
	defer ev.release()
	ev.fnRes = x.ev.fnRes
	return ev.cond(x.cond, nil)
}

// existence evaluates the details of an if-not-exists effect.
func (ev *evaluation) existence(d *existenceDetails) (*Existence, error) {
	x := &Existence{Type: d.resourceType, ExistenceScope: d.existenceScope, EvaluationDelay: d.evaluationDelay,
		DeploymentScope: d.deploymentScope, RoleDefinitionIDs: d.roleDefinitionIDs, ev: ev, cond: d.condition}
	for _, s := range []struct {
		v    *value
		into *string
	}{{d.name, &x.Name}, {d.group, &x.ResourceGroupName}} {
		if s.v == nil {
			continue
		}
		v, err := ev.get(s.v)
		if err != nil {
			return nil, err
		}
		*s.into, _ = scalarText(v)
	}
	if d.deployment != nil {
		params := map[string]any{}
		for name, p := range d.deployParams {
			v, err := ev.get(p)
			if err != nil {
				return nil, fmt.Errorf("deployment parameter %s: %w", name, err)
			}
			params[name] = map[string]any{"value": v}
		}
		props, _ := get(d.deployment, "properties").(map[string]any)
		x.Deployment = map[string]any{"properties": map[string]any{
			"mode": get(props, "mode"), "template": get(props, "template"), "parameters": params,
		}}
	}
	return x, nil
}

// changes evaluates append entries or modify operations into Changes. A
// conflict (append meeting a different value, modify on a property it may
// not change) is returned as its reason.
func (ev *evaluation) changes(fields []*assignField, isModify bool) (changes []Change, conflict string, err error) {
	typ := ev.resourceType()
	for _, a := range fields {
		if a.condition != nil {
			v, err := ev.get(a.condition)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", a.path, err)
			}
			if ok, _ := boolish(v); !ok {
				continue
			}
		}
		f, err := ev.resolve(a.field)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", a.path, err)
		}
		path := f.bodyPath(typ)
		if path == nil {
			continue // not a property of this type
		}
		if isModify && !f.modifiable(typ) {
			if f.kind == fieldPath {
				continue // identity.type: only virtual machines and scale sets
			}
			return nil, fmt.Sprintf("%s: %s is not modifiable on %s", a.path, f.written, typ), nil
		}
		c := Change{Operation: a.operation, Field: f.written, Path: path.String(), path: path}
		if a.value != nil {
			if c.Value, err = ev.get(a.value); err != nil {
				return nil, "", fmt.Errorf("%s: %w", a.path, err)
			}
		}
		if !isModify && !path.isCollection() {
			values, collection, found := f.read(ev.res, nil, nil)
			if found && !collection && !looseEqual(values[0], c.Value) {
				return nil, fmt.Sprintf("%s: %s is %s, the policy appends %s", a.path, f.written, jsonText(values[0]), jsonText(c.Value)), nil
			}
		}
		changes = append(changes, c)
	}
	return changes, "", nil
}

// walk visits every expression of a rule.
func (r *rule) walk(visit func(*armexpr.Expr)) {
	var cond func(c *condition)
	var val func(v *value)
	val = func(v *value) {
		if v == nil {
			return
		}
		if v.expr != nil {
			visit(v.expr)
		}
		for _, item := range v.items {
			val(item)
		}
		for _, item := range v.fields {
			val(item)
		}
	}
	ref := func(f *fieldRef) {
		if f != nil && f.expr != nil {
			visit(f.expr)
		}
	}
	cond = func(c *condition) {
		if c == nil {
			return
		}
		for _, item := range c.items {
			cond(item)
		}
		ref(c.operand.field)
		val(c.operand.value)
		val(c.target)
		if n := c.operand.count; n != nil {
			ref(n.field)
			val(n.value)
			cond(n.where)
		}
	}
	cond(r.cond)
	val(r.effect)
	if r.details == nil {
		return
	}
	fields := r.details.appends
	if m := r.details.modify; m != nil {
		fields = append(slices.Clip(fields), m.operations...)
	}
	for _, a := range fields {
		ref(a.field)
		val(a.value)
		val(a.condition)
	}
	if x := r.details.exists; x != nil {
		val(x.name)
		val(x.group)
		cond(x.condition)
		for _, p := range x.deployParams {
			val(p)
		}
	}
}
