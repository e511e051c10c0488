package compliance

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Page is the body of a queryResults answer: PolicyStatesQueryResults.
type Page struct {
	Context  string // @odata.context: {Endpoint}/$metadata#latest
	Rows     []Row  // policy states, or what $apply made of them
	NextLink string // @odata.nextLink, with the $skiptoken of the next page; empty on the last page
}

// MarshalJSON writes the page as Azure does: each row with a null
// @odata.id and its @odata.context, and @odata.count the rows of this page.
func (p Page) MarshalJSON() ([]byte, error) {
	value := make([]Row, len(p.Rows))
	for i, r := range p.Rows {
		value[i] = append(Row{{Name: "@odata.id"}, {Name: "@odata.context", Value: p.Context + "/$entity"}}, r...)
	}
	return marshal(struct {
		Context  string `json:"@odata.context"`
		Count    int    `json:"@odata.count"`
		Value    []Row  `json:"value"`
		NextLink string `json:"@odata.nextLink,omitempty"`
	}{p.Context, len(p.Rows), value, p.NextLink})
}

// Row is one object of a page, its properties in the order they are
// written.
type Row []Field

// Field is a property of a row: Value is nil (null), a string, a bool, an
// int64 (a count), a []string or an *EvaluationDetails. Timestamps are
// RFC 3339 strings.
type Field struct {
	Name  string
	Value any
}

// MarshalJSON writes the row as a JSON object, keeping the order.
func (r Row) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// Encode ends each value with a newline, which the next byte replaces.
	b.WriteByte('{')
	for _, f := range r {
		if err := enc.Encode(f.Name); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1)
		b.WriteByte(':')
		if err := enc.Encode(f.Value); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1)
		b.WriteByte(',')
	}
	if len(r) > 0 {
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Results answers queryResults: the states of the time window that pass
// $filter, transformed by $apply, in the order of $orderby, with the
// properties of $select, from the row $skiptoken says, at most PageSize
// rows and no more than $top in all. The order is total, so pages neither
// repeat nor skip a row while the states stay the same; a next page keeps
// the time window of the first.
func (q *Query) Results(states []State, now time.Time) Page {
	from, to := q.window(now)
	matches := q.matching(states, from, to)
	// States are ordered by their index, 4 bytes each; rows are made for
	// $apply, and for the page.
	var rows []row
	count := len(matches)
	if q.apply != nil {
		rows = make([]row, len(matches))
		for k, i := range matches {
			rows[k] = row{state: &states[i], order: int(i)}
		}
		for _, s := range q.apply {
			rows = s.run(rows)
		}
		count = len(rows)
	}
	limit := count
	if q.top >= 0 {
		limit = min(limit, q.top)
	}
	pageSize := q.PageSize
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	end := min(q.offset+pageSize, limit)
	resource := q.resource()
	page := Page{Context: q.Endpoint + "/$metadata#" + resource, Rows: []Row{}}
	if q.offset >= end {
		return page
	}
	if q.apply == nil {
		first := firstInOrder(matches, end, func(a, b int32) int {
			return q.compare(&row{state: &states[a], order: int(a)}, &row{state: &states[b], order: int(b)})
		})
		for _, i := range first[q.offset:] {
			page.Rows = append(page.Rows, q.output(&row{state: &states[i]}))
		}
	} else {
		for _, r := range firstInOrder(rows, end, func(a, b row) int { return q.compare(&a, &b) })[q.offset:] {
			page.Rows = append(page.Rows, q.output(&r))
		}
	}
	if end < limit {
		next := url.Values{}
		for key, vs := range q.values {
			if !strings.EqualFold(key, "$skiptoken") {
				next[key] = vs
			}
		}
		next.Set("$skiptoken", q.skipToken(end, to))
		page.NextLink = q.Endpoint + "/" + resource + "/queryResults?" + next.Encode()
	}
	return page
}

// output is the row as the page writes it: the columns of $select, or
// all, policyEvaluationDetails only when expanded or selected.
func (q *Query) output(r *row) Row {
	columns := q.selected
	if columns == nil {
		columns = q.columns
	}
	out := make(Row, 0, len(columns))
	for _, c := range columns {
		if q.selected == nil && c.kind == kindDetails && !q.details {
			continue
		}
		out = append(out, Field{Name: c.name, Value: c.get(r).jsonValue()})
	}
	return out
}

// marshal is json.Marshal leaving <, > and & as they are: whoever writes
// the body decides whether to escape them, as for any other value.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// firstInOrder returns the first n items in the order of compare, sorted.
// It sorts all items only when most of them are wanted; otherwise it keeps
// the n first in a heap, in one pass where most items lose at the top.
func firstInOrder[T any](items []T, n int, compare func(a, b T) int) []T {
	if n <= 0 {
		return nil
	}
	if 2*n >= len(items) {
		slices.SortFunc(items, compare)
		return items[:min(n, len(items))]
	}
	h := make([]T, 0, n) // a max-heap: the last of the n first at h[0]
	for _, item := range items {
		switch {
		case len(h) < n:
			h = append(h, item)
			heapUp(h, len(h)-1, compare)
		case compare(item, h[0]) < 0:
			h[0] = item
			heapDown(h, 0, compare)
		}
	}
	slices.SortFunc(h, compare)
	return h
}

func heapUp[T any](h []T, i int, compare func(a, b T) int) {
	for i > 0 {
		parent := (i - 1) / 2
		if compare(h[i], h[parent]) <= 0 {
			return
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func heapDown[T any](h []T, i int, compare func(a, b T) int) {
	for {
		largest := i
		for _, child := range [2]int{2*i + 1, 2*i + 2} {
			if child < len(h) && compare(h[child], h[largest]) > 0 {
				largest = child
			}
		}
		if largest == i {
			return
		}
		h[i], h[largest] = h[largest], h[i]
		i = largest
	}
}
