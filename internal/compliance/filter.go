package compliance

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// expr is a condition of $filter, or of filter() in $apply, with its
// properties resolved to the columns of the rows it tests. String writes it
// back in a canonical form that parses to the same expression.
type expr interface {
	String() string
	precedence() int
	compile() func(*row) bool
}

// Precedences, loosest first; not binds tighter than and, and than or.
const (
	precOr = iota + 1
	precAnd
	precUnary
)

// logical is "left and right" or "left or right".
type logical struct {
	and         bool
	left, right expr
}

func (e *logical) precedence() int {
	if e.and {
		return precAnd
	}
	return precOr
}

func (e *logical) String() string {
	op := " or "
	if e.and {
		op = " and "
	}
	// Both are parsed left to right: a right operand of the same
	// precedence was parenthesised.
	return group(e.left, e.precedence()-1) + op + group(e.right, e.precedence())
}

func (e *logical) compile() func(*row) bool {
	left, right := e.left.compile(), e.right.compile()
	if e.and {
		return func(r *row) bool { return left(r) && right(r) }
	}
	return func(r *row) bool { return left(r) || right(r) }
}

// group writes e, in parentheses when it binds no tighter than within.
func group(e expr, within int) string {
	if e.precedence() <= within {
		return "(" + e.String() + ")"
	}
	return e.String()
}

// negation is "not (x)".
type negation struct{ x expr }

func (e *negation) precedence() int { return precUnary }
func (e *negation) String() string  { return "not (" + e.x.String() + ")" }
func (e *negation) compile() func(*row) bool {
	x := e.x.compile()
	return func(r *row) bool { return !x(r) }
}

// operand is a side of a comparison: a column, or a literal when col is nil.
type operand struct {
	col *column
	lit value
	pos int // where it is written
}

func (o operand) kind() kind {
	if o.col != nil {
		return o.col.kind
	}
	return o.lit.kind
}

func (o operand) get(r *row) value {
	if o.col != nil {
		return o.col.get(r)
	}
	return o.lit
}

func (o operand) String() string {
	if o.col != nil {
		return o.col.name
	}
	return literal(o.lit)
}

// literal writes a value as $filter does.
func literal(v value) string {
	switch v.kind {
	case kindString:
		return "'" + strings.ReplaceAll(v.str, "'", "''") + "'"
	case kindBool:
		return strconv.FormatBool(v.flag)
	case kindTime:
		return formatTime(v.time)
	case kindNumber:
		return strconv.FormatInt(v.num, 10)
	}
	return "null"
}

// comparison is "left op right" with op one of eq, ne, gt, ge, lt, le.
// A comparison with null, or with an empty string as the order operators
// see it, is false, as in OData.
type comparison struct {
	op          string
	left, right operand
}

func (e *comparison) precedence() int { return precUnary }
func (e *comparison) String() string {
	return e.left.String() + " " + e.op + " " + e.right.String()
}

func (e *comparison) compile() func(*row) bool {
	left, right := e.left, e.right
	if e.op == "eq" || e.op == "ne" {
		want := e.op == "eq"
		return func(r *row) bool { return equal(left.get(r), right.get(r)) == want }
	}
	holds := map[string]func(int) bool{
		"gt": func(c int) bool { return c > 0 }, "ge": func(c int) bool { return c >= 0 },
		"lt": func(c int) bool { return c < 0 }, "le": func(c int) bool { return c <= 0 },
	}[e.op]
	return func(r *row) bool {
		a, b := left.get(r), right.get(r)
		return !isNull(a) && !isNull(b) && holds(compareValues(a, b))
	}
}

// membership is "x in (v1, v2, …)".
type membership struct {
	x    operand
	list []value
}

func (e *membership) precedence() int { return precUnary }
func (e *membership) String() string {
	items := make([]string, len(e.list))
	for i, v := range e.list {
		items[i] = literal(v)
	}
	return e.x.String() + " in (" + strings.Join(items, ", ") + ")"
}

func (e *membership) compile() func(*row) bool {
	x, list := e.x, e.list
	return func(r *row) bool {
		v := x.get(r)
		return slices.ContainsFunc(list, func(item value) bool { return equal(v, item) })
	}
}

// contains is "'item' in collection": Azure's test of
// policyDefinitionGroupNames.
type contains struct {
	item       string
	collection *column
}

func (e *contains) precedence() int { return precUnary }
func (e *contains) String() string {
	return literal(value{kind: kindString, str: e.item}) + " in " + e.collection.name
}

func (e *contains) compile() func(*row) bool {
	item, collection := e.item, e.collection
	return func(r *row) bool {
		return slices.ContainsFunc(collection.get(r).list, func(s string) bool { return strings.EqualFold(s, item) })
	}
}

// truth is a Boolean property on its own: "isCompliant".
type truth struct{ col *column }

func (e *truth) precedence() int { return precUnary }
func (e *truth) String() string  { return e.col.name }
func (e *truth) compile() func(*row) bool {
	col := e.col
	return func(r *row) bool { return col.get(r).flag }
}

// isNull is whether a value is null; an empty string reads as null, as it
// is written.
func isNull(v value) bool { return v.kind == kindNull || v.kind == kindString && v.str == "" }

// equal is eq: strings ignore case, and null equals null (and "").
func equal(a, b value) bool {
	if isNull(a) || isNull(b) {
		return isNull(a) && isNull(b)
	}
	switch a.kind {
	case kindString:
		return strings.EqualFold(a.str, b.str)
	case kindBool:
		return a.flag == b.flag
	case kindTime:
		return a.time.Equal(b.time)
	case kindNumber:
		return a.num == b.num
	}
	return false
}

// compareValues orders two values of one kind: null first, strings
// ignoring case, false before true. Collections and details do not order.
func compareValues(a, b value) int {
	if an, bn := isNull(a), isNull(b); an || bn {
		switch {
		case an && bn:
			return 0
		case an:
			return -1
		}
		return 1
	}
	switch a.kind {
	case kindString:
		return compareFold(a.str, b.str)
	case kindBool:
		if a.flag == b.flag {
			return 0
		}
		if b.flag {
			return -1
		}
		return 1
	case kindTime:
		return a.time.Compare(b.time)
	case kindNumber:
		return cmp.Compare(a.num, b.num)
	}
	return 0
}

// compareFold compares strings ignoring case, without allocating for ASCII.
func compareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca >= utf8.RuneSelf || cb >= utf8.RuneSelf {
			return strings.Compare(strings.ToLower(a[i:]), strings.ToLower(b[i:]))
		}
		if ca != cb {
			ca, cb = lowerASCII(ca), lowerASCII(cb)
			if ca != cb {
				return cmp.Compare(ca, cb)
			}
		}
	}
	return cmp.Compare(len(a), len(b))
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// parser reads $filter, or $apply, from its tokens. columns are the
// properties the rows have at this point of the query.
type parser struct {
	param   string
	toks    []token
	i       int
	columns []*column
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEnd {
		p.i++
	}
	return t
}

// keyword consumes the next token if it is that word, in any case.
func (p *parser) keyword(word string) bool {
	t := p.peek()
	if t.kind == tokName && strings.EqualFold(t.text, word) {
		p.i++
		return true
	}
	return false
}

// expect consumes a token of that kind, or says what was found instead.
func (p *parser) expect(k tokenKind, what string) (token, error) {
	t := p.next()
	if t.kind != k {
		return t, queryErrorf(p.param, t.pos, "expected %s, got %s", what, t.describe())
	}
	return t, nil
}

// parseFilter parses $filter over the properties of a policy state.
func parseFilter(src string) (expr, error) {
	toks, err := lex("$filter", src)
	if err != nil {
		return nil, err
	}
	p := &parser{param: "$filter", toks: toks, columns: stateColumns}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEnd {
		return nil, queryErrorf(p.param, t.pos, "expected and, or, or the end, got %s", t.describe())
	}
	return e, nil
}

func (p *parser) or() (expr, error) {
	left, err := p.and()
	for err == nil && p.keyword("or") {
		var right expr
		if right, err = p.and(); err == nil {
			left = &logical{left: left, right: right}
		}
	}
	return left, err
}

func (p *parser) and() (expr, error) {
	left, err := p.unary()
	for err == nil && p.keyword("and") {
		var right expr
		if right, err = p.unary(); err == nil {
			left = &logical{and: true, left: left, right: right}
		}
	}
	return left, err
}

func (p *parser) unary() (expr, error) {
	if p.keyword("not") {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &negation{x: x}, nil
	}
	if p.peek().kind == tokOpen {
		p.next()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokClose, "and, or, or )"); err != nil {
			return nil, err
		}
		return x, nil
	}
	return p.predicate()
}

// comparisonOperators are the operators of comparison, and in.
var comparisonOperators = []string{"eq", "ne", "gt", "ge", "lt", "le", "in"}

// keywords cannot name a property or an alias.
var keywords = append([]string{"and", "or", "not", "as", "with"}, comparisonOperators...)

func (p *parser) predicate() (expr, error) {
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	op := strings.ToLower(t.text)
	if t.kind != tokName || !slices.Contains(comparisonOperators, op) {
		if left.col != nil && left.col.kind == kindBool {
			return &truth{col: left.col}, nil
		}
		return nil, queryErrorf(p.param, t.pos, "expected eq, ne, gt, ge, lt, le or in after %s, got %s", left, t.describe())
	}
	p.next()
	if op == "in" {
		return p.in(left)
	}
	right, err := p.operand()
	if err != nil {
		return nil, err
	}
	if err := p.comparable(op, &left, &right); err != nil {
		return nil, err
	}
	return &comparison{op: op, left: left, right: right}, nil
}

// operand reads a property or a literal.
func (p *parser) operand() (operand, error) {
	t := p.next()
	switch t.kind {
	case tokLiteral:
		return operand{lit: t.lit, pos: t.pos}, nil
	case tokName:
		if c := lookup(p.columns, t.text); c != nil {
			return operand{col: c, pos: t.pos}, nil
		}
		if !slices.Contains(keywords, strings.ToLower(t.text)) {
			return operand{}, queryErrorf(p.param, t.pos, "%s is not a property of %s", t.describe(), p.rows())
		}
	}
	return operand{}, queryErrorf(p.param, t.pos, "expected a property or a literal, got %s", t.describe())
}

// rows names what the properties belong to, for an error message.
func (p *parser) rows() string {
	if slices.Equal(p.columns, stateColumns) {
		return "policy states"
	}
	names := make([]string, len(p.columns))
	for i, c := range p.columns {
		names[i] = c.name
	}
	return "the rows at this point of $apply (" + strings.Join(names, ", ") + ")"
}

// comparable checks that op can compare a with b. A quoted timestamp
// compared with a timestamp property becomes a timestamp.
func (p *parser) comparable(op string, a, b *operand) error {
	for _, pair := range [][2]*operand{{a, b}, {b, a}} {
		x, lit := pair[0], pair[1]
		if x.kind() == kindTime && lit.col == nil && lit.lit.kind == kindString {
			t, err := parseTime(lit.lit.str)
			if err != nil {
				return queryErrorf(p.param, lit.pos, "%s is compared with %s but is not an ISO 8601 timestamp", lit, x)
			}
			lit.lit = value{kind: kindTime, time: t}
		}
	}
	ordering := op != "eq" && op != "ne"
	for _, x := range []*operand{a, b} {
		switch k := x.kind(); {
		case k == kindList:
			return queryErrorf(p.param, x.pos, "%s is a collection: test it with 'value' in %s", x, x)
		case k == kindDetails:
			return queryErrorf(p.param, x.pos, "%s cannot be compared", x)
		case ordering && (k == kindNull || k == kindBool):
			return queryErrorf(p.param, x.pos, "%s does not order: %s is of type %s", op, x, k)
		}
	}
	if a.kind() != b.kind() && a.kind() != kindNull && b.kind() != kindNull {
		return queryErrorf(p.param, b.pos, "%s (%s) cannot be compared with %s (%s)", a, a.kind(), b, b.kind())
	}
	return nil
}

// in reads what follows in: a list of literals, or a collection property
// after a string.
func (p *parser) in(x operand) (expr, error) {
	if p.peek().kind != tokOpen {
		t := p.next()
		c := lookup(p.columns, t.text)
		if t.kind != tokName || c == nil || c.kind != kindList {
			return nil, queryErrorf(p.param, t.pos, "expected a list in parentheses or a collection property after in, got %s", t.describe())
		}
		if x.col != nil || x.lit.kind != kindString {
			return nil, queryErrorf(p.param, x.pos, "what is in %s must be a quoted string, not %s", c.name, x)
		}
		return &contains{item: x.lit.str, collection: c}, nil
	}
	p.next()
	e := &membership{x: x}
	for {
		t := p.next()
		if t.kind != tokLiteral {
			return nil, queryErrorf(p.param, t.pos, "expected a literal in the list of in, got %s", t.describe())
		}
		item := operand{lit: t.lit, pos: t.pos}
		if err := p.comparable("eq", &x, &item); err != nil {
			return nil, err
		}
		e.list = append(e.list, item.lit)
		if t, err := p.expect(tokComma, ", or )"); err != nil {
			if t.kind == tokClose {
				return e, nil
			}
			return nil, err
		}
	}
}
