// Package armexpr is the expression language of Azure Resource Manager
// templates: it parses a "[...]" string once into an Expr and evaluates it
// over JSON values as many times as needed (once per resource, per copy
// index, per policy evaluation).
//
// Values are what ParseJSON returns: nil, bool, int64, float64, string,
// []any and map[string]any. Integers are int64 (ARM arithmetic is 64-bit
// signed); float64 only comes from non-integer JSON numbers and float().
//
// The language has no fixed function set: Builtins holds every function
// whose result depends only on its arguments, and a caller extends it with
// the functions of its context (the template engine adds parameters(),
// variables(), resourceId(), reference()...; a policy engine adds field()
// and current()) and removes what its dialect forbids (Functions.Without).
//
// armexpr is pure (no I/O); internal/template and the policy engine import
// it.
package armexpr

import (
	"fmt"
	"strconv"
	"strings"
)

// Expr is a parsed expression. It is immutable and safe for concurrent
// evaluation.
type Expr struct {
	root node
}

// node is one element of the syntax tree: *literal, *call, *member or *index.
type node interface {
	write(b *strings.Builder)
}

// literal is a string or integer constant.
type literal struct {
	value any // string or int64
}

// call is a function call; name is as written, lower is its lookup key.
type call struct {
	name  string
	lower string
	args  []node
}

// member is property access: x.name.
type member struct {
	x    node
	name string
}

// index is x[i] over an array (int) or an object (string).
type index struct {
	x, i node
}

// IsExpression reports whether a JSON string is an expression: it starts
// with "[" and ends with "]", and does not start with "[[" (the escape of a
// literal "[").
func IsExpression(s string) bool {
	return len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' && s[1] != '['
}

// Unescape returns the literal value of a JSON string that is not an
// expression: "[[...]" stands for "[...]"; other strings are unchanged.
func Unescape(s string) string {
	if len(s) >= 2 && strings.HasPrefix(s, "[[") && s[len(s)-1] == ']' {
		return s[1:]
	}
	return s
}

// maxDepth bounds the nesting of calls, accesses and indexes, so that a
// hostile expression cannot exhaust the stack (ARM's own limit is 64 for
// policy rules).
const maxDepth = 256

// SyntaxError is an expression that does not parse.
type SyntaxError struct {
	Expression string
	Offset     int // byte offset in Expression
	Reason     string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("the language expression %q is not valid: %s at position %d", e.Expression, e.Reason, e.Offset)
}

// Parse parses an expression string, brackets included: "[concat('a', 'b')]".
func Parse(s string) (*Expr, error) {
	if !IsExpression(s) {
		return nil, &SyntaxError{Expression: s, Reason: "an expression starts with '[' and ends with ']'"}
	}
	p := &parser{src: s, pos: 1, end: len(s) - 1}
	root, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != p.end {
		return nil, p.fail("unexpected %q", p.src[p.pos:p.end])
	}
	return &Expr{root: root}, nil
}

// String returns the expression in canonical form; parsing it gives the
// same expression.
func (e *Expr) String() string {
	var b strings.Builder
	b.WriteByte('[')
	e.root.write(&b)
	b.WriteByte(']')
	return b.String()
}

// Uses reports whether the expression calls the named function anywhere
// (names are case-insensitive), without evaluating it: the template engine
// asks it about reference().
func (e *Expr) Uses(name string) bool {
	for _, c := range e.Calls() {
		if strings.EqualFold(c.Name, name) {
			return true
		}
	}
	return false
}

// CallSite is one function call written in an expression. Its arguments
// can be evaluated on their own, for example to find which resource a
// reference() call targets before the deployment runs.
type CallSite struct {
	Name string // as written
	args []node
}

// NumArgs is the number of arguments written.
func (c CallSite) NumArgs() int { return len(c.args) }

// EvalArg evaluates argument i with fns.
func (c CallSite) EvalArg(i int, fns *Functions) (any, error) {
	return eval(c.args[i], &env{fns: fns})
}

// Calls returns every function call in the expression, outermost first.
func (e *Expr) Calls() []CallSite {
	var out []CallSite
	var walk func(n node)
	walk = func(n node) {
		switch n := n.(type) {
		case *call:
			out = append(out, CallSite{Name: n.name, args: n.args})
			for _, a := range n.args {
				walk(a)
			}
		case *member:
			walk(n.x)
		case *index:
			walk(n.x)
			walk(n.i)
		}
	}
	walk(e.root)
	return out
}

func (l *literal) write(b *strings.Builder) {
	switch v := l.value.(type) {
	case string:
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(v, "'", "''"))
		b.WriteByte('\'')
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	}
}

func (c *call) write(b *strings.Builder) {
	b.WriteString(c.name)
	b.WriteByte('(')
	for i, a := range c.args {
		if i > 0 {
			b.WriteString(", ")
		}
		a.write(b)
	}
	b.WriteByte(')')
}

func (m *member) write(b *strings.Builder) {
	m.x.write(b)
	b.WriteByte('.')
	b.WriteString(m.name)
}

func (x *index) write(b *strings.Builder) {
	x.x.write(b)
	b.WriteByte('[')
	x.i.write(b)
	b.WriteByte(']')
}

// parser is a recursive-descent parser over src[pos:end] (inside the
// brackets).
type parser struct {
	src      string
	pos, end int
}

func (p *parser) fail(format string, args ...any) error {
	return &SyntaxError{Expression: p.src, Offset: p.pos, Reason: fmt.Sprintf(format, args...)}
}

func (p *parser) space() {
	for p.pos < p.end && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// peek returns the next non-space byte, or 0 at the end.
func (p *parser) peek() byte {
	p.space()
	if p.pos >= p.end {
		return 0
	}
	return p.src[p.pos]
}

func (p *parser) expect(c byte) error {
	if p.peek() != c {
		if p.pos >= p.end {
			return p.fail("expected '%c' but the expression ended", c)
		}
		return p.fail("expected '%c' but found '%c'", c, p.src[p.pos])
	}
	p.pos++
	return nil
}

func (p *parser) ident() (string, error) {
	p.space()
	start := p.pos
	if p.pos >= p.end || !isIdentStart(p.src[p.pos]) {
		return "", p.fail("expected a name")
	}
	for p.pos < p.end && isIdentPart(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos], nil
}

// expr := primary { '.' name | '[' expr ']' }
func (p *parser) expr(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.fail("the expression is nested more than %d deep", maxDepth)
	}
	n, err := p.primary(depth)
	if err != nil {
		return nil, err
	}
	for {
		switch p.peek() {
		case '.':
			p.pos++
			name, err := p.ident()
			if err != nil {
				return nil, err
			}
			n = &member{x: n, name: name}
		case '[':
			p.pos++
			i, err := p.expr(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect(']'); err != nil {
				return nil, err
			}
			n = &index{x: n, i: i}
		default:
			return n, nil
		}
		if depth++; depth > maxDepth {
			return nil, p.fail("the expression is nested more than %d deep", maxDepth)
		}
	}
}

// primary := string | integer | name ['.' name] '(' [expr {',' expr}] ')'
func (p *parser) primary(depth int) (node, error) {
	switch c := p.peek(); {
	case c == 0:
		return nil, p.fail("expected a value but the expression ended")
	case c == '\'':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.integer()
	case isIdentStart(c):
		return p.call(depth)
	default:
		return nil, p.fail("unexpected '%c'", c)
	}
}

func (p *parser) str() (node, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for p.pos < p.end {
		c := p.src[p.pos]
		p.pos++
		if c != '\'' {
			b.WriteByte(c)
			continue
		}
		if p.pos < p.end && p.src[p.pos] == '\'' {
			b.WriteByte('\'')
			p.pos++
			continue
		}
		return &literal{value: b.String()}, nil
	}
	return nil, p.fail("the string literal is not terminated")
}

func (p *parser) integer() (node, error) {
	start := p.pos
	if p.src[p.pos] == '-' {
		p.pos++
	}
	digits := p.pos
	for p.pos < p.end && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
	}
	if p.pos == digits {
		return nil, p.fail("expected a digit after '-'")
	}
	if p.pos < p.end && (isIdentPart(p.src[p.pos]) || p.src[p.pos] == '.') {
		return nil, p.fail("%q is not an integer", p.src[start:p.pos+1])
	}
	v, err := strconv.ParseInt(p.src[start:p.pos], 10, 64)
	if err != nil {
		return nil, p.fail("the integer %s is out of range", p.src[start:p.pos])
	}
	return &literal{value: v}, nil
}

func (p *parser) call(depth int) (node, error) {
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	if p.peek() == '.' { // namespace.function(...), a user-defined function
		p.pos++
		fn, err := p.ident()
		if err != nil {
			return nil, err
		}
		name += "." + fn
	}
	if p.peek() != '(' {
		return nil, p.fail("expected '(' after the function name %q", name)
	}
	p.pos++
	c := &call{name: name, lower: strings.ToLower(name)}
	if p.peek() == ')' {
		p.pos++
		return c, nil
	}
	for {
		a, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		c.args = append(c.args, a)
		switch p.peek() {
		case ',':
			p.pos++
		case ')':
			p.pos++
			return c, nil
		case 0:
			return nil, p.fail("expected ')' but the expression ended")
		default:
			return nil, p.fail("expected ',' or ')' but found '%c'", p.src[p.pos])
		}
	}
}
