package compliance

import (
	"encoding/binary"
	"slices"
	"strings"
	"unicode/utf8"
)

// step is one transformation of $apply: groupby, aggregate or filter.
// String writes it back as it parses.
type step interface {
	String() string
	run(rows []row) []row
}

// groupBy is groupby((keys…)[, aggregate($count as count)]): one row for
// each distinct combination of the keys' values (strings ignoring case),
// with the number of rows in it when count is set.
type groupBy struct {
	keys []*column
	// carried are the keys that an earlier step computed: the group row
	// keeps their values in values, in this order, and the count after.
	carried []*column
	count   string
}

func (g *groupBy) String() string {
	names := make([]string, len(g.keys))
	for i, c := range g.keys {
		names[i] = c.name
	}
	s := "groupby((" + strings.Join(names, ", ") + ")"
	if g.count != "" {
		s += ", " + countString(g.count)
	}
	return s + ")"
}

func countString(alias string) string { return "aggregate($count as " + alias + ")" }

func (g *groupBy) run(rows []row) []row {
	width := len(g.carried)
	if g.count != "" {
		width++
	}
	index := map[string]int{}
	var groups []row
	var key []byte
	for i := range rows {
		r := &rows[i]
		key = key[:0]
		for _, c := range g.keys {
			key = appendKey(key, c.get(r))
		}
		n, ok := index[string(key)]
		if !ok {
			n = len(groups)
			index[string(key)] = n
			values := make([]value, width)
			for j, c := range g.carried {
				values[j] = c.get(r)
			}
			if g.count != "" {
				values[width-1] = value{kind: kindNumber}
			}
			groups = append(groups, row{state: r.state, values: values, order: n})
		}
		if g.count != "" {
			groups[n].values[width-1].num++
		}
	}
	return groups
}

// appendKey appends a value to a group key: equal values, strings ignoring
// case, append the same bytes, and different ones different bytes.
func appendKey(key []byte, v value) []byte {
	if isNull(v) {
		return append(key, byte(kindNull))
	}
	key = append(key, byte(v.kind))
	switch v.kind {
	case kindString:
		key = binary.AppendUvarint(key, uint64(len(v.str)))
		return appendFold(key, v.str)
	case kindBool:
		if v.flag {
			return append(key, 1)
		}
		return append(key, 0)
	case kindTime:
		return binary.BigEndian.AppendUint64(key, uint64(v.time.UnixNano()))
	case kindNumber:
		return binary.BigEndian.AppendUint64(key, uint64(v.num))
	}
	return key
}

// appendFold appends s in lower case, without allocating for ASCII. Its
// length was appended before it, so a key stays unambiguous even where
// lower case changes the length.
func appendFold(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return append(b, strings.ToLower(s[i:])...)
		}
		b = append(b, lowerASCII(s[i]))
	}
	return b
}

// aggregate is aggregate($count as alias): one row, with the number of rows.
type aggregate struct{ alias string }

func (a *aggregate) String() string { return countString(a.alias) }
func (a *aggregate) run(rows []row) []row {
	return []row{{values: []value{{kind: kindNumber, num: int64(len(rows))}}}}
}

// filterStep is filter(cond).
type filterStep struct {
	cond expr
	test func(*row) bool
}

func (f *filterStep) String() string { return "filter(" + f.cond.String() + ")" }
func (f *filterStep) run(rows []row) []row {
	kept := rows[:0]
	for i := range rows {
		if f.test(&rows[i]) {
			kept = append(kept, rows[i])
		}
	}
	return kept
}

// applyString writes $apply back.
func applyString(steps []step) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = s.String()
	}
	return strings.Join(parts, "/")
}

// parseApply parses $apply: transformations joined by /. It returns them
// and the columns of the rows they make.
func parseApply(src string) ([]step, []*column, error) {
	toks, err := lex("$apply", src)
	if err != nil {
		return nil, nil, err
	}
	p := &parser{param: "$apply", toks: toks, columns: stateColumns}
	var steps []step
	for {
		t := p.next()
		var s step
		switch strings.ToLower(t.text) {
		case "groupby":
			s, err = p.groupBy()
		case "aggregate":
			s, err = p.aggregate()
		case "filter":
			s, err = p.filter()
		default:
			err = queryErrorf(p.param, t.pos, "expected groupby, aggregate or filter, got %s", t.describe())
		}
		if err != nil {
			return nil, nil, err
		}
		steps = append(steps, s)
		t = p.next()
		if t.kind == tokEnd {
			return steps, p.columns, nil
		}
		if t.kind != tokSlash {
			return nil, nil, queryErrorf(p.param, t.pos, "expected / or the end, got %s", t.describe())
		}
	}
}

// groupBy reads "((key, …)[, aggregate($count as alias)])" after groupby.
func (p *parser) groupBy() (step, error) {
	if _, err := p.expect(tokOpen, "( after groupby"); err != nil {
		return nil, err
	}
	if _, err := p.expect(tokOpen, "the ( of the list of properties to group by"); err != nil {
		return nil, err
	}
	g := &groupBy{}
	var out []*column
	for {
		t, err := p.expect(tokName, "a property")
		if err != nil {
			return nil, err
		}
		c := lookup(p.columns, t.text)
		switch {
		case c == nil:
			return nil, queryErrorf(p.param, t.pos, "%s is not a property of %s", t.describe(), p.rows())
		case c.kind == kindList || c.kind == kindDetails:
			return nil, queryErrorf(p.param, t.pos, "%s cannot be grouped by", t.describe())
		case slices.Contains(g.keys, c):
			return nil, queryErrorf(p.param, t.pos, "%s is grouped by twice", t.describe())
		}
		g.keys = append(g.keys, c)
		if c.read == nil {
			c = &column{name: c.name, kind: c.kind, index: len(g.carried)}
			g.carried = append(g.carried, c)
		}
		out = append(out, c)
		if t, err := p.expect(tokComma, ", or )"); err != nil {
			if t.kind != tokClose {
				return nil, err
			}
			break
		}
	}
	if p.peek().kind == tokComma {
		p.next()
		if !p.keyword("aggregate") {
			t := p.peek()
			return nil, queryErrorf(p.param, t.pos, "expected aggregate, got %s", t.describe())
		}
		alias, err := p.count(out)
		if err != nil {
			return nil, err
		}
		g.count = alias
		out = append(out, &column{name: alias, kind: kindNumber, index: len(g.carried)})
	}
	if _, err := p.expect(tokClose, ")"); err != nil {
		return nil, err
	}
	p.columns = out
	return g, nil
}

// aggregate reads "($count as alias)" after aggregate.
func (p *parser) aggregate() (step, error) {
	alias, err := p.count(nil)
	if err != nil {
		return nil, err
	}
	p.columns = []*column{{name: alias, kind: kindNumber, index: 0}}
	return &aggregate{alias: alias}, nil
}

// count reads "($count as alias)"; the alias must not name one of columns.
func (p *parser) count(columns []*column) (string, error) {
	if _, err := p.expect(tokOpen, "( after aggregate"); err != nil {
		return "", err
	}
	if t := p.next(); t.kind != tokName || t.text != "$count" {
		return "", queryErrorf(p.param, t.pos, "expected $count, the only aggregate of policy states, got %s", t.describe())
	}
	if !p.keyword("as") {
		t := p.peek()
		return "", queryErrorf(p.param, t.pos, "expected as, got %s", t.describe())
	}
	t, err := p.expect(tokName, "a name for the count")
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(t.text, "$") || isDigit(t.text[0]) || slices.Contains(keywords, strings.ToLower(t.text)):
		return "", queryErrorf(p.param, t.pos, "%s cannot name a count: start it with a letter", t.describe())
	case lookup(columns, t.text) != nil:
		return "", queryErrorf(p.param, t.pos, "%s is already a property of the rows", t.describe())
	}
	if _, err := p.expect(tokClose, ")"); err != nil {
		return "", err
	}
	return t.text, nil
}

// filter reads "(cond)" after filter.
func (p *parser) filter() (step, error) {
	if _, err := p.expect(tokOpen, "( after filter"); err != nil {
		return nil, err
	}
	cond, err := p.or()
	if err != nil {
		return nil, err
	}
	if _, err := p.expect(tokClose, "and, or, or )"); err != nil {
		return nil, err
	}
	return &filterStep{cond: cond, test: cond.compile()}, nil
}
