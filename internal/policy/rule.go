package policy

import (
	"maps"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// rule is a compiled policyRule.
type rule struct {
	cond    *condition
	effect  *value
	details *details
	// fields are the field names written as literal arguments of field(),
	// resolved when the definition loaded.
	fields  map[string]*fieldRef
	aliases *Aliases
}

// condition is a node of the if tree: allOf, anyOf, not, or a leaf
// comparing an operand with an operator's value.
type condition struct {
	path  string // JSON path in the document
	logic string // "allOf", "anyOf", "not", or "" for a leaf
	items []*condition

	operand operand
	op      *operator
	target  *value
}

// operand is the left side of a leaf: a field, a value or a count.
type operand struct {
	field *fieldRef
	value *value
	count *count
}

// count counts array members, of a [*] field or of a value, that satisfy
// where (all of them without where).
type count struct {
	field *fieldRef // a [*] alias
	value *value
	name  string // the value count's name for current(); "" is the default
	where *condition
}

// value is a JSON value of a rule that may hold expressions, itself or in
// its members.
type value struct {
	lit     any           // the value when it holds no expression
	expr    *armexpr.Expr // a "[...]" string
	items   []*value      // an array with expressions inside
	fields  map[string]*value
	static  bool   // lit is the value
	written string // the expression as written
	// call and arg are set for the two expressions rules write most,
	// [field('x')] and [current('x')], which evaluate without armexpr.
	call, arg string
}

// fieldRef is a field as written: a name, or an expression that gives one.
type fieldRef struct {
	written string
	expr    *armexpr.Expr
	field   *field
}

// scope is where an expression stands, which decides the functions it may
// call.
type scope int

const (
	scopeRule            scope = iota // the if condition, effect details
	scopeWhere                        // inside count.where: current() too
	scopeModifyCondition              // a modify operation's condition
	scopeInitiative                   // a value an initiative passes to a member
)

// contextFunctions are the functions a policy evaluation adds to the
// template functions (lower-case names), by the scopes that allow them.
var contextFunctions = map[string][]scope{
	"parameters":     {scopeRule, scopeWhere, scopeModifyCondition, scopeInitiative},
	"field":          {scopeRule, scopeWhere},
	"current":        {scopeWhere},
	"requestcontext": {scopeRule, scopeWhere, scopeModifyCondition},
	"policy":         {scopeRule, scopeWhere, scopeModifyCondition},
	"resourcegroup":  {scopeRule, scopeWhere},
	"subscription":   {scopeRule, scopeWhere},
	"utcnow":         {scopeRule, scopeWhere, scopeModifyCondition},
}

// compiler turns a policy document's JSON into rules, recording problems.
type compiler struct {
	p          *problems
	aliases    *Aliases
	params     map[string]*Parameter
	lenient    bool // a resource provider mode: its aliases are the RP's, not ARM's
	initiative bool
	fields     map[string]*fieldRef
	counts     int // count expressions enclosing the current position
}

func (c *compiler) rule(path string, obj map[string]any) *rule {
	checkKeys(c.p, path, obj, "if", "then")
	c.fields = map[string]*fieldRef{}
	r := &rule{aliases: c.aliases, fields: c.fields}
	r.cond = c.condition(join(path, "if"), get(obj, "if"))
	thenPath := join(path, "then")
	then, ok := get(obj, "then").(map[string]any)
	if !ok {
		c.p.add(thenPath, "then must be an object with an effect")
		return r
	}
	checkKeys(c.p, thenPath, then, "effect", "details")
	r.effect = c.effect(join(thenPath, "effect"), get(then, "effect"))
	r.details = c.details(join(thenPath, "details"), get(then, "details"), r.effect)
	return r
}

var logicalKeys = []string{"allOf", "anyOf", "not"}

// condition compiles a node of the if tree.
func (c *compiler) condition(path string, v any) *condition {
	obj, ok := v.(map[string]any)
	if !ok {
		c.p.add(path, "a condition is an object: allOf, anyOf, not, or an operand with an operator")
		return &condition{path: path, logic: "allOf"}
	}
	for _, k := range logicalKeys {
		raw, found := lookupKey(obj, k)
		if !found {
			continue
		}
		node := &condition{path: path, logic: k}
		if len(obj) != 1 {
			c.p.add(path, "%s must be the only property of its object", k)
		}
		lpath := join(path, keyAsWritten(obj, k))
		if k == "not" {
			node.items = []*condition{c.condition(lpath, raw)}
			return node
		}
		arr, ok := raw.([]any)
		if !ok {
			c.p.add(lpath, "%s takes an array of conditions", k)
			return node
		}
		for i, item := range arr {
			node.items = append(node.items, c.condition(index(lpath, i), item))
		}
		return node
	}
	return c.leaf(path, obj)
}

// keyAsWritten returns obj's key matching k ignoring case.
func keyAsWritten(obj map[string]any, k string) string {
	for key := range obj {
		if strings.EqualFold(key, k) {
			return key
		}
	}
	return k
}

var operandKeys = []string{"field", "value", "count", "source"}

func (c *compiler) leaf(path string, obj map[string]any) *condition {
	node := &condition{path: path}
	var operands, ops []string
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch {
		case slices.ContainsFunc(operandKeys, func(o string) bool { return strings.EqualFold(o, k) }):
			operands = append(operands, k)
		case lookupOperator(k) != nil:
			ops = append(ops, k)
		default:
			c.p.add(join(path, k), "unknown property %q: a condition has one of field, value or count and one operator", k)
		}
	}
	if len(operands) != 1 {
		c.p.add(path, "a condition needs exactly one of field, value or count; it has %d", len(operands))
	}
	if len(ops) != 1 {
		c.p.add(path, "a condition needs exactly one operator; it has %d", len(ops))
	}
	if len(operands) != 1 || len(ops) != 1 {
		node.op = lookupOperator("equals")
		node.operand.value = &value{static: true}
		node.target = &value{static: true}
		return node
	}
	key := operands[0]
	opath := join(path, key)
	sc := scopeRule
	if c.counts > 0 {
		sc = scopeWhere
	}
	switch strings.ToLower(key) {
	case "field":
		node.operand.field = c.fieldRef(opath, obj[key], sc)
	case "value":
		node.operand.value = c.value(opath, obj[key], sc)
	case "count":
		node.operand.count = c.count(opath, obj[key])
	case "source":
		c.p.add(opath, "the legacy source operand is not supported: use field or value")
	}
	node.op = lookupOperator(ops[0])
	tpath := join(path, ops[0])
	node.target = c.value(tpath, obj[ops[0]], sc)
	c.checkTarget(tpath, node.op, node.target)
	if node.operand.value == nil && node.operand.field == nil && node.operand.count == nil {
		node.operand.value = &value{static: true}
	}
	return node
}

// checkTarget checks what can be known of an operator's value at load:
// its type when it is a literal.
func (c *compiler) checkTarget(path string, op *operator, target *value) {
	if !target.static {
		return
	}
	switch op.kind {
	case opIn:
		if _, ok := target.lit.([]any); !ok {
			c.p.add(path, "%s takes an array, got %s", op.name, jsonText(target.lit))
		}
	case opExists:
		if _, ok := boolish(target.lit); !ok {
			c.p.add(path, "exists takes true or false, got %s", jsonText(target.lit))
		}
	case opLike, opMatch, opMatchInsensitively, opContainsKey:
		if _, ok := target.lit.(string); !ok {
			c.p.add(path, "%s takes a string, got %s", op.name, jsonText(target.lit))
		}
	case opEquals:
		switch target.lit.(type) {
		case []any, map[string]any:
			c.p.add(path, "%s takes a string, a number or a boolean, got %s: use in or notIn for a list", op.name, jsonText(target.lit))
		}
	}
}

func (c *compiler) count(path string, v any) *count {
	obj, ok := v.(map[string]any)
	if !ok {
		c.p.add(path, "count is an object with field or value, and optionally where")
		return &count{value: &value{static: true, lit: []any{}}}
	}
	checkKeys(c.p, path, obj, "field", "value", "name", "where")
	n := &count{}
	fv, hasField := lookupKey(obj, "field")
	vv, hasValue := lookupKey(obj, "value")
	switch {
	case hasField == hasValue:
		c.p.add(path, "count needs exactly one of field and value")
		n.value = &value{static: true, lit: []any{}}
	case hasField:
		fpath := join(path, "field")
		n.field = c.fieldRef(fpath, fv, scopeRule)
		if f := n.field.field; f != nil && f.kind != fieldMissing && !f.isCollection() {
			c.p.add(fpath, "count.field must be an array alias, with [*]: %q", n.field.written)
		}
		if get(obj, "name") != nil {
			c.p.add(join(path, "name"), "name is for a value count")
		}
	default:
		sc := scopeRule
		if c.counts > 0 {
			sc = scopeWhere
		}
		n.value = c.value(join(path, "value"), vv, sc)
		if name := get(obj, "name"); name != nil {
			s, ok := name.(string)
			if !ok || s == "" {
				c.p.add(join(path, "name"), "name must be a non-empty string")
			}
			n.name = s
		} else if c.counts > 0 {
			c.p.add(path, "a nested value count needs a name")
		}
	}
	if w := get(obj, "where"); w != nil {
		c.counts++
		n.where = c.condition(join(path, "where"), w)
		c.counts--
	}
	return n
}

// fieldRef compiles the operand of field, or of count.field.
func (c *compiler) fieldRef(path string, v any, sc scope) *fieldRef {
	s, ok := v.(string)
	if !ok || s == "" {
		c.p.add(path, "field must be a field name or an alias")
		return &fieldRef{field: &field{kind: fieldName, name: "name"}}
	}
	ref := &fieldRef{written: s}
	if armexpr.IsExpression(s) {
		ref.expr = c.expr(path, s, sc)
		return ref
	}
	f, err := resolveField(s, c.aliases)
	if err != nil {
		if !c.lenient {
			c.p.add(path, "%v '%s'", err, s)
		}
		f = &field{kind: fieldMissing, name: s}
	}
	ref.field = f
	return ref
}

// value compiles a JSON value whose strings may be expressions.
func (c *compiler) value(path string, v any, sc scope) *value {
	switch v := v.(type) {
	case string:
		if armexpr.IsExpression(v) {
			val := &value{expr: c.expr(path, v, sc), written: v}
			val.call, val.arg = simpleCall(val.expr)
			return val
		}
		return &value{lit: armexpr.Unescape(v), static: true}
	case []any:
		out := &value{items: make([]*value, len(v)), static: true}
		for i, item := range v {
			out.items[i] = c.value(index(path, i), item, sc)
			out.static = out.static && out.items[i].static
		}
		if out.static {
			return &value{lit: literalOf(out), static: true}
		}
		return out
	case map[string]any:
		out := &value{fields: make(map[string]*value, len(v)), static: true}
		for k, item := range v {
			out.fields[k] = c.value(join(path, k), item, sc)
			out.static = out.static && out.fields[k].static
		}
		if out.static {
			return &value{lit: literalOf(out), static: true}
		}
		return out
	}
	return &value{lit: v, static: true}
}

// simpleCall recognises field('x') and current('x'): one call of a
// literal, nothing else.
func simpleCall(e *armexpr.Expr) (name, arg string) {
	if e == nil {
		return "", ""
	}
	calls := e.Calls()
	if len(calls) != 1 || calls[0].NumArgs() != 1 {
		return "", ""
	}
	name = strings.ToLower(calls[0].Name)
	v, err := calls[0].EvalArg(0, templateFunctions)
	s, ok := v.(string)
	if err != nil || !ok || (name != "field" && name != "current") {
		return "", ""
	}
	bare, err := armexpr.Parse("[" + name + "('" + strings.ReplaceAll(s, "'", "''") + "')]")
	if err != nil || !strings.EqualFold(bare.String(), e.String()) {
		return "", "" // more than the call: .property, [index]
	}
	return name, s
}

// literalOf is the plain value of a static value.
func literalOf(v *value) any {
	switch {
	case v.items != nil:
		out := make([]any, len(v.items))
		for i, item := range v.items {
			out[i] = literalOf(item)
		}
		return out
	case v.fields != nil:
		out := make(map[string]any, len(v.fields))
		for k, item := range v.fields {
			out[k] = literalOf(item)
		}
		return out
	}
	return v.lit
}

// expr parses an expression and checks the functions it calls: each must
// exist and be allowed where it stands, parameters() must name a declared
// parameter, and field() a known field or alias.
func (c *compiler) expr(path, s string, sc scope) *armexpr.Expr {
	e, err := armexpr.Parse(s)
	if err != nil {
		c.p.add(path, "%v", err)
		return nil
	}
	for _, call := range e.Calls() {
		name := strings.ToLower(call.Name)
		allowedIn, isContext := contextFunctions[name]
		switch {
		case isContext && !slices.Contains(allowedIn, sc):
			c.p.add(path, "the function '%s' is not allowed %s", call.Name, scopeText(sc))
			continue
		case !isContext:
			if _, ok := templateFunctions.Lookup(name); !ok {
				c.p.add(path, "the function '%s' is unknown or not allowed in a policy rule", call.Name)
			}
			continue
		}
		if call.NumArgs() == 0 {
			continue
		}
		arg, err := call.EvalArg(0, templateFunctions)
		literal, isString := arg.(string)
		if err != nil || !isString {
			continue // computed from other functions: checked when evaluated
		}
		switch name {
		case "parameters":
			if findParameter(c.params, literal) == nil {
				c.p.add(path, "the parameter '%s' is not declared in parameters", literal)
			}
		case "field":
			if _, done := c.fields[strings.ToLower(literal)]; done || armexpr.IsExpression(literal) {
				continue
			}
			ref := c.fieldRef(path, literal, sc)
			c.fields[strings.ToLower(literal)] = ref
		}
	}
	return e
}

func scopeText(sc scope) string {
	switch sc {
	case scopeModifyCondition:
		return "in a modify operation's condition"
	case scopeInitiative:
		return "in a value an initiative passes to its members"
	}
	return "outside count.where"
}
