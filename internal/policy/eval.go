package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// Context is what an evaluation knows besides the resource: the values of
// requestContext(), resourceGroup(), subscription() and utcNow().
type Context struct {
	APIVersion    string         // requestContext().apiVersion: the request's api-version
	Identity      map[string]any // requestContext().identity: idtyp, appid, acrs of the caller's token
	ResourceGroup map[string]any // resourceGroup(): id, name, type, location, tags...; nil outside a group
	Subscription  map[string]any // subscription(): id, subscriptionId, tenantId, displayName
	Now           time.Time      // utcNow(); the zero time reads the clock
	// Load, if set, fills ResourceGroup and Subscription the first time
	// an evaluation calls resourceGroup() or subscription(), for a caller
	// whose reads of them cost I/O: most rules call neither. It is called
	// at most once.
	Load   func(c *Context)
	loaded sync.Once
}

// resourceGroup is resourceGroup()'s object, loaded on first use.
func (c *Context) resourceGroup() map[string]any {
	c.load()
	return c.ResourceGroup
}

// subscription is subscription()'s object, loaded on first use.
func (c *Context) subscription() map[string]any {
	c.load()
	return c.Subscription
}

func (c *Context) load() {
	if c.Load != nil {
		c.loaded.Do(func() { c.Load(c) })
	}
}

// evaluation is one definition evaluated against one resource.
type evaluation struct {
	m   *boundDefinition
	ctx *Context
	// res is the resource field conditions read; fnRes the one field()
	// reads. They differ in an existenceCondition, whose conditions read
	// the related resource and whose field() reads the evaluated one.
	res, fnRes map[string]any
	bindings   []binding // the count members in scope, innermost last
	fns        *armexpr.Functions
	buf        []any
	scratch    [4]any // buf's first array
}

// binding is the member a count is at. A field count's member stands for
// its array in paths under prefix; a value count's is current(name).
type binding struct {
	prefix jsonPath // field count: the counted path, ending with [*]
	name   string   // value count
	member any
}

// evaluations are reused: an evaluation's function table, whose
// functions read the evaluation they belong to, is made once.
var evaluations = sync.Pool{New: func() any {
	ev := &evaluation{}
	ev.fns = templateFunctions.With(map[string]armexpr.Func{
		"parameters":     armexpr.Eager(1, 1, func(args []any) (any, error) { return ev.m.parameter(args) }),
		"policy":         armexpr.Eager(0, 0, func(args []any) (any, error) { return ev.m.policyInfo(args) }),
		"field":          armexpr.Eager(1, 1, ev.field),
		"current":        armexpr.Eager(0, 1, ev.current),
		"requestContext": armexpr.Eager(0, 0, ev.requestContext),
		"resourceGroup":  armexpr.Eager(0, 0, func([]any) (any, error) { return contextObject("resourceGroup", ev.ctx.resourceGroup()) }),
		"subscription":   armexpr.Eager(0, 0, func([]any) (any, error) { return contextObject("subscription", ev.ctx.subscription()) }),
		"utcNow":         armexpr.Eager(0, 0, ev.utcNow),
	})
	return ev
}}

// newEvaluation returns an evaluation of m on res; release gives it back.
func newEvaluation(m *boundDefinition, res map[string]any, ctx *Context) *evaluation {
	if ctx == nil {
		ctx = &Context{}
	}
	ev := evaluations.Get().(*evaluation)
	ev.m, ev.ctx, ev.res, ev.fnRes = m, ctx, res, res
	ev.bindings, ev.buf = ev.bindings[:0], ev.scratch[:0]
	return ev
}

// release returns the evaluation for reuse; nothing may hold it.
func (ev *evaluation) release() {
	ev.m, ev.ctx, ev.res, ev.fnRes = nil, nil, nil, nil
	clear(ev.scratch[:])
	clear(ev.bindings[:cap(ev.bindings)])
	evaluations.Put(ev)
}

func (ev *evaluation) resourceType() string {
	t, _ := lookupKey(ev.res, "type")
	s, _ := t.(string)
	return s
}

// eval evaluates an expression, or returns its value computed when the
// assignment was made.
func (ev *evaluation) eval(e *armexpr.Expr) (any, error) {
	if e == nil {
		return nil, errors.New("the expression did not parse")
	}
	if v, ok := ev.m.consts[e]; ok {
		return v, nil
	}
	return e.Eval(ev.fns)
}

// get evaluates a value of the rule.
func (ev *evaluation) get(v *value) (any, error) {
	switch {
	case v.static:
		return v.lit, nil
	case v.call == "field":
		return ev.fieldValue(v.arg)
	case v.call == "current":
		return ev.currentValue(v.arg)
	case v.expr != nil:
		return ev.eval(v.expr)
	case v.items != nil:
		out := make([]any, len(v.items))
		for i, item := range v.items {
			x, err := ev.get(item)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case v.fields != nil:
		out := make(map[string]any, len(v.fields))
		for k, item := range v.fields {
			x, err := ev.get(item)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	}
	return nil, errors.New("the value did not parse")
}

// resolve returns the field a reference names, evaluating a field name
// given as an expression.
func (ev *evaluation) resolve(ref *fieldRef) (*field, error) {
	if ref.field != nil {
		return ref.field, nil
	}
	v, err := ev.eval(ref.expr)
	if err != nil {
		return nil, err
	}
	name, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("the field name %s evaluated to %s, not a string", ref.written, jsonText(v))
	}
	return ev.m.def.rule.resolveField(name)
}

// resolveField resolves a field name known only when evaluating.
func (r *rule) resolveField(name string) (*field, error) {
	if ref, ok := r.fields[strings.ToLower(name)]; ok && ref.field != nil {
		return ref.field, nil
	}
	f, err := resolveField(name, r.aliases)
	if err != nil {
		return nil, fmt.Errorf("%w '%s'", err, name)
	}
	return f, nil
}

// field is the field() function: the field's value, an array of the
// selected values for a [*] alias, "" for a missing value.
func (ev *evaluation) field(args []any) (any, error) {
	name, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("field() takes a field name, got %s", jsonText(args[0]))
	}
	return ev.fieldValue(name)
}

func (ev *evaluation) fieldValue(name string) (any, error) {
	f, err := ev.m.def.rule.resolveField(name)
	if err != nil {
		return nil, err
	}
	values, collection, found := f.read(ev.fnRes, ev.bindings, nil)
	switch {
	case collection:
		if values == nil {
			values = []any{}
		}
		return values, nil
	case !found:
		return "", nil
	}
	return values[0], nil
}

// current is current(): the member a count is at, by the value count's
// name or by an alias under the counted array; without an argument, the
// innermost count's member.
func (ev *evaluation) current(args []any) (any, error) {
	if len(ev.bindings) == 0 {
		return nil, errors.New("current() is only valid inside count.where")
	}
	if len(args) == 0 {
		return ev.bindings[len(ev.bindings)-1].member, nil
	}
	name, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("current() takes a count name or an alias, got %s", jsonText(args[0]))
	}
	return ev.currentValue(name)
}

func (ev *evaluation) currentValue(name string) (any, error) {
	for i := len(ev.bindings) - 1; i >= 0; i-- {
		if b := ev.bindings[i]; b.prefix == nil && strings.EqualFold(b.name, name) {
			return b.member, nil
		}
	}
	f, err := ev.m.def.rule.resolveField(name)
	if err != nil {
		return nil, fmt.Errorf("current('%s'): no count by that name, and %w", name, err)
	}
	path := f.bodyPath(ev.resourceType())
	for i := len(ev.bindings) - 1; i >= 0; i-- {
		b := ev.bindings[i]
		if b.prefix == nil || !path.hasPrefix(b.prefix) {
			continue
		}
		rest := path[len(b.prefix):]
		values, found := selectPath(b.member, rest, nil)
		switch {
		case rest.isCollection():
			if values == nil {
				values = []any{}
			}
			return values, nil
		case !found:
			return nil, nil
		}
		return values[0], nil
	}
	return nil, fmt.Errorf("current('%s'): the alias is not under an array being counted", name)
}

func (ev *evaluation) requestContext([]any) (any, error) {
	rc := map[string]any{"apiVersion": ev.ctx.APIVersion}
	if ev.ctx.Identity != nil {
		rc["identity"] = ev.ctx.Identity
	}
	return rc, nil
}

func contextObject(fn string, v map[string]any) (any, error) {
	if v == nil {
		return nil, fmt.Errorf("%s() has no value for this resource", fn)
	}
	return v, nil
}

func (ev *evaluation) utcNow([]any) (any, error) {
	now := ev.ctx.Now
	if now.IsZero() {
		now = time.Now()
	}
	return now.UTC().Format(timeLayout), nil
}

// cond evaluates a condition. An error (a function that failed, a type
// mismatch) makes the whole evaluation fail, which Azure counts as deny.
//
// With a non-nil why, cond appends the leaf conditions that gave the
// result: every leaf of an allOf that held, those of the member that
// failed; those of the anyOf member that held, every leaf of one that
// failed.
func (ev *evaluation) cond(c *condition, why *[]Reason) (bool, error) {
	switch c.logic {
	case "allOf", "anyOf":
		decisive := c.logic == "anyOf" // the outcome one member decides
		start := 0
		if why != nil {
			start = len(*why)
		}
		for _, item := range c.items {
			mark := 0
			if why != nil {
				mark = len(*why)
			}
			ok, err := ev.cond(item, why)
			if err != nil {
				return false, err
			}
			if ok == decisive {
				if why != nil {
					*why = append((*why)[:start], (*why)[mark:]...)
				}
				return ok, nil
			}
		}
		return !decisive, nil
	case "not":
		ok, err := ev.cond(c.items[0], why)
		return !ok && err == nil, err
	}
	r, err := ev.leaf(c, why != nil)
	if why != nil && err == nil {
		*why = append(*why, r)
	}
	return r.Result, err
}

// leaf evaluates a leaf condition. With explain, the Reason carries the
// values compared; without, only Result is set.
func (ev *evaluation) leaf(c *condition, explain bool) (Reason, error) {
	r := Reason{Condition: c.path, Operator: c.op.name}
	target, err := ev.get(c.target)
	if err != nil {
		return r, fmt.Errorf("%s: %w", c.path, err)
	}
	if explain {
		r.Target = target
	}
	switch {
	case c.operand.field != nil:
		r.Kind, r.Expression = "Field", c.operand.field.written
		f, err := ev.resolve(c.operand.field)
		if err != nil {
			return r, fmt.Errorf("%s: %w", c.path, err)
		}
		values, collection, found := f.read(ev.res, ev.bindings, ev.buf[:0])
		ev.buf = values[:0]
		if explain {
			r.Path = f.bodyPath(ev.resourceType()).String()
			if collection {
				r.Value = append([]any{}, values...)
			} else {
				r.Value = values[0]
			}
		}
		if !collection {
			if r.Result, err = c.op.test(values[0], found, target); err != nil {
				return r, fmt.Errorf("%s: %w", c.path, err)
			}
			break
		}
		// A condition on a [*] alias holds when it holds for every
		// selected value (and so for none).
		r.Result = true
		for _, v := range values {
			if ok, err := c.op.test(v, v != nil, target); err != nil || !ok {
				r.Result = false
				if err != nil {
					return r, fmt.Errorf("%s: %w", c.path, err)
				}
				break
			}
		}
	case c.operand.value != nil:
		r.Kind, r.Expression = "Value", c.operand.value.written
		v, err := ev.get(c.operand.value)
		if err != nil {
			return r, fmt.Errorf("%s: %w", c.path, err)
		}
		if explain {
			r.Value = v
		}
		r.Result, err = c.op.test(v, v != nil, target)
		if err != nil {
			return r, fmt.Errorf("%s: %w", c.path, err)
		}
	default:
		r.Kind = "Count"
		if c.operand.count.field != nil {
			r.Expression = c.operand.count.field.written
		}
		n, err := ev.count(c.operand.count)
		if err != nil {
			return r, fmt.Errorf("%s: %w", c.path, err)
		}
		if explain {
			r.Value = int64(n)
		}
		if r.Result, err = c.op.test(int64(n), true, target); err != nil {
			return r, fmt.Errorf("%s: %w", c.path, err)
		}
	}
	return r, nil
}

// count counts the members of a [*] field or of a value array that
// satisfy where, each evaluated as if it were the only member.
func (ev *evaluation) count(n *count) (int, error) {
	var members []any
	var prefix jsonPath
	if n.field != nil {
		f, err := ev.resolve(n.field)
		if err != nil {
			return 0, err
		}
		if !f.isCollection() {
			return 0, fmt.Errorf("count.field %s is not an array alias", n.field.written)
		}
		members, _, _ = f.read(ev.res, ev.bindings, nil)
		prefix = f.bodyPath(ev.resourceType())
	} else {
		v, err := ev.get(n.value)
		if err != nil {
			return 0, err
		}
		arr, ok := v.([]any)
		if !ok {
			return 0, fmt.Errorf("count.value must be an array, got %s", jsonText(v))
		}
		members = arr
	}
	if n.where == nil {
		return len(members), nil
	}
	total := 0
	for _, m := range members {
		ev.bindings = append(ev.bindings, binding{prefix: prefix, name: n.name, member: m})
		ok, err := ev.cond(n.where, nil)
		ev.bindings = ev.bindings[:len(ev.bindings)-1]
		if err != nil {
			return 0, err
		}
		if ok {
			total++
		}
	}
	return total, nil
}
