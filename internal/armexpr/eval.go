package armexpr

import (
	"errors"
	"fmt"
	"strings"
)

// Func is a template language function. It reads its arguments through c,
// which evaluates them on demand: most functions are written with Eager,
// while if() and the lambda functions evaluate only what they need.
type Func func(c *Call) (any, error)

// Functions is a table of functions by case-insensitive name. A table is
// immutable: With, WithPrefix and Without return a new table layered over
// the old one, so a caller can derive a table per resource cheaply.
type Functions struct {
	parent     *Functions
	funcs      map[string]Func // lower-case names
	prefix     string          // lower-case; any name starting with it resolves to prefixFunc
	prefixFunc Func
	hidden     map[string]bool
}

// With returns a table where funcs (keyed by name, any case) are added to
// f or replace the functions of the same name.
func (f *Functions) With(funcs map[string]Func) *Functions {
	m := make(map[string]Func, len(funcs))
	for name, fn := range funcs {
		m[strings.ToLower(name)] = fn
	}
	return &Functions{parent: f, funcs: m}
}

// WithPrefix returns a table where every name starting with prefix
// resolves to fn; the template engine uses it for the open-ended list*()
// family (listKeys, listSecrets, listAccountSas...).
func (f *Functions) WithPrefix(prefix string, fn Func) *Functions {
	return &Functions{parent: f, prefix: strings.ToLower(prefix), prefixFunc: fn}
}

// Without returns a table where the named functions do not exist, for a
// dialect that forbids them (Azure Policy forbids copyIndex, reference,
// lambda...).
func (f *Functions) Without(names ...string) *Functions {
	hidden := make(map[string]bool, len(names))
	for _, n := range names {
		hidden[strings.ToLower(n)] = true
	}
	return &Functions{parent: f, hidden: hidden}
}

// Lookup returns the function of that name (any case).
func (f *Functions) Lookup(name string) (Func, bool) {
	return f.lookup(strings.ToLower(name))
}

func (f *Functions) lookup(lower string) (Func, bool) {
	for t := f; t != nil; t = t.parent {
		if t.hidden[lower] {
			return nil, false
		}
		if fn, ok := t.funcs[lower]; ok {
			return fn, true
		}
		if t.prefixFunc != nil && strings.HasPrefix(lower, t.prefix) {
			return t.prefixFunc, true
		}
	}
	return nil, false
}

// Error is a failed evaluation. It names the function that failed and why,
// as ARM does; Function is empty when a property or index access failed.
type Error struct {
	Function string
	Err      error
}

func (e *Error) Error() string {
	if e.Function == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("the template language function '%s' failed: %v", e.Function, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownFunction is the reason of an Error for a name the table does
// not define.
var ErrUnknownFunction = errors.New("the function is not valid here: it is unknown or not allowed")

// Eval evaluates the expression with the functions of fns.
func (e *Expr) Eval(fns *Functions) (any, error) {
	return eval(e.root, &env{fns: fns})
}

// env is what an evaluation sees: the function table and the variables of
// the lambdas being applied, innermost first.
type env struct {
	fns  *Functions
	vars *binding
}

type binding struct {
	name  string
	value any
	next  *binding
}

func eval(n node, e *env) (any, error) {
	switch n := n.(type) {
	case *literal:
		return n.value, nil
	case *call:
		fn, ok := e.fns.lookup(n.lower)
		if !ok {
			return nil, &Error{Function: n.name, Err: ErrUnknownFunction}
		}
		v, err := fn(&Call{name: n.name, args: n.args, env: e})
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				err = &Error{Function: n.name, Err: err}
			}
			return nil, err
		}
		return v, nil
	case *member:
		x, err := eval(n.x, e)
		if err != nil {
			return nil, err
		}
		return property(x, n.name)
	case *index:
		x, err := eval(n.x, e)
		if err != nil {
			return nil, err
		}
		i, err := eval(n.i, e)
		if err != nil {
			return nil, err
		}
		return element(x, i)
	}
	panic(fmt.Sprintf("armexpr: unknown node %T", n))
}

// property reads x.name. Names match exactly first, then ignoring case, as
// ARM's property access is case-insensitive.
func property(x any, name string) (any, error) {
	obj, ok := x.(map[string]any)
	if !ok {
		return nil, &Error{Err: fmt.Errorf("the language expression property '%s' can't be evaluated: the value is of type '%s', not an object", name, typeName(x))}
	}
	if v, ok := lookupKey(obj, name); ok {
		return v, nil
	}
	return nil, &Error{Err: fmt.Errorf("the language expression property '%s' doesn't exist, available properties are '%s'", name, strings.Join(sortedKeys(obj), ", "))}
}

// lookupKey finds a key exactly, then ignoring case.
func lookupKey(obj map[string]any, name string) (any, bool) {
	if v, ok := obj[name]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// element reads x[i]: an array by integer, an object by string.
func element(x, i any) (any, error) {
	switch x := x.(type) {
	case []any:
		n, ok := toInt(i)
		if !ok {
			return nil, &Error{Err: fmt.Errorf("the language expression array index must be an integer, not of type '%s'", typeName(i))}
		}
		if n < 0 || n >= int64(len(x)) {
			return nil, &Error{Err: fmt.Errorf("the language expression property array index '%d' is out of bounds", n)}
		}
		return x[n], nil
	case map[string]any:
		s, ok := i.(string)
		if !ok {
			return nil, &Error{Err: fmt.Errorf("the language expression property name must be a string, not of type '%s'", typeName(i))}
		}
		return property(x, s)
	}
	return nil, &Error{Err: fmt.Errorf("the language expression can't index a value of type '%s'", typeName(x))}
}

// Call is one invocation of a Func: its arguments, unevaluated.
type Call struct {
	name string
	args []node
	env  *env
}

// Name is the function's name as written.
func (c *Call) Name() string { return c.name }

// NumArgs is the number of arguments written.
func (c *Call) NumArgs() int { return len(c.args) }

// Arg evaluates argument i.
func (c *Call) Arg(i int) (any, error) { return eval(c.args[i], c.env) }

// Args evaluates every argument, in order.
func (c *Call) Args() ([]any, error) {
	out := make([]any, len(c.args))
	for i, a := range c.args {
		v, err := eval(a, c.env)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// CheckArity fails unless the call has between minArgs and maxArgs
// arguments; maxArgs < 0 means any number.
func (c *Call) CheckArity(minArgs, maxArgs int) error {
	n := len(c.args)
	switch {
	case n >= minArgs && (maxArgs < 0 || n <= maxArgs):
		return nil
	case minArgs == maxArgs:
		return fmt.Errorf("function requires %d argument(s) while %d were provided", minArgs, n)
	case maxArgs < 0:
		return fmt.Errorf("function requires at least %d argument(s) while %d were provided", minArgs, n)
	default:
		return fmt.Errorf("function requires between %d and %d argument(s) while %d were provided", minArgs, maxArgs, n)
	}
}

// Eager makes a Func of f, which takes its arguments evaluated: the Func
// checks the argument count (maxArgs < 0: any number), evaluates every
// argument and calls f.
func Eager(minArgs, maxArgs int, f func(args []any) (any, error)) Func {
	return func(c *Call) (any, error) {
		if err := c.CheckArity(minArgs, maxArgs); err != nil {
			return nil, err
		}
		args, err := c.Args()
		if err != nil {
			return nil, err
		}
		return f(args)
	}
}

// Lambda is a lambda('a', ['b', ...], body) argument, ready to apply.
type Lambda struct {
	params []string
	body   node
	env    *env
}

// Lambda returns argument i, which must be a lambda() call, without
// evaluating its body.
func (c *Call) Lambda(i int) (*Lambda, error) {
	lc, ok := c.args[i].(*call)
	if !ok || lc.lower != "lambda" {
		return nil, fmt.Errorf("argument %d must be a lambda function", i+1)
	}
	if _, ok := c.env.fns.lookup("lambda"); !ok {
		return nil, &Error{Function: "lambda", Err: ErrUnknownFunction}
	}
	if len(lc.args) < 2 {
		return nil, &Error{Function: "lambda", Err: errors.New("a lambda needs at least one variable name and a body")}
	}
	l := &Lambda{body: lc.args[len(lc.args)-1], env: c.env}
	for _, a := range lc.args[:len(lc.args)-1] {
		v, err := eval(a, c.env)
		if err != nil {
			return nil, err
		}
		name, ok := v.(string)
		if !ok {
			return nil, &Error{Function: "lambda", Err: fmt.Errorf("variable names must be strings, not of type '%s'", typeName(v))}
		}
		l.params = append(l.params, name)
	}
	return l, nil
}

// NumParams is the number of variables the lambda declares.
func (l *Lambda) NumParams() int { return len(l.params) }

// Apply evaluates the body with the lambda's variables bound to args; extra
// arguments (an index the lambda did not ask for) are ignored.
func (l *Lambda) Apply(args ...any) (any, error) {
	vars := l.env.vars
	for i, name := range l.params {
		if i < len(args) {
			vars = &binding{name: name, value: args[i], next: vars}
		}
	}
	return eval(l.body, &env{fns: l.env.fns, vars: vars})
}

// lambdaVariable returns the value of a lambda variable in scope.
func (c *Call) lambdaVariable(name string) (any, error) {
	for b := c.env.vars; b != nil; b = b.next {
		if b.name == name {
			return b.value, nil
		}
	}
	return nil, fmt.Errorf("the lambda variable '%s' is not defined here", name)
}
