package compliance

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query is a parsed queryResults or summarize request.
type Query struct {
	// Endpoint is the policyStates collection the request was sent to:
	// https://{host}{scope}/providers/Microsoft.PolicyInsights/policyStates.
	// @odata.context, @odata.nextLink and queryResultsUri are built on it;
	// the server sets it after ParseQuery.
	Endpoint string
	// Resource is the virtual resource of the path, "latest" (the default)
	// or "default". The server keeps only the latest states, so both answer
	// from the same ones; it names the context and the next link.
	Resource string
	// PageSize is the most rows a page holds; 0 is 1000. $top caps the rows
	// of all pages together.
	PageSize int

	values      url.Values // the parameters as given, for the next link and queryResultsUri
	filter      expr       // nil: every state
	test        func(*row) bool
	apply       []step
	columns     []*column  // what the rows have after $apply
	selected    []*column  // $select; nil: every column
	order       []ordering // $orderby, then tie-breakers that make the order total
	top         int        // -1 without $top
	details     bool       // $expand=PolicyEvaluationDetails
	from, to    time.Time  // zero when not given
	offset      int        // rows of earlier pages, from $skiptoken
	fingerprint uint64     // of the parameters a skip token belongs to
}

// ordering is one key of the order of the rows.
type ordering struct {
	col  *column
	desc bool
}

// QueryError is a query parameter the request cannot be answered with: the
// server answers 400 with Code and the message.
type QueryError struct {
	Parameter string // "$filter", as documented, or an unknown parameter as given
	Pos       int    // the 1-based byte position of the problem in the value; 0 for the value as a whole
	Message   string
}

// Error says it as ARM's message does: "The query parameter '$filter' is
// invalid at position 12: …".
func (e *QueryError) Error() string {
	if e.Pos > 0 {
		return fmt.Sprintf("The query parameter '%s' is invalid at position %d: %s.", e.Parameter, e.Pos, e.Message)
	}
	return fmt.Sprintf("The query parameter '%s' is invalid: %s.", e.Parameter, e.Message)
}

// parameterCodes are the query options of policy states, with the ARM
// error code of each: Azure answers InvalidFilterInQueryString for a bad
// $filter, and ARM front ends InvalidTopInQueryString for $top; the others
// follow the pattern.
var parameterCodes = map[string]string{
	"$filter": "InvalidFilterInQueryString", "$apply": "InvalidApplyInQueryString",
	"$select": "InvalidSelectInQueryString", "$orderby": "InvalidOrderByInQueryString",
	"$top": "InvalidTopInQueryString", "$from": "InvalidFromInQueryString", "$to": "InvalidToInQueryString",
	"$expand": "InvalidExpandInQueryString", "$skiptoken": "InvalidSkipTokenInQueryString",
}

// Code is the ARM error code of the error; BadRequest for a parameter
// that is not a query option of policy states.
func (e *QueryError) Code() string {
	if code, ok := parameterCodes[e.Parameter]; ok {
		return code
	}
	return "BadRequest"
}

// queryErrorf is a problem at a byte offset of a parameter's value.
func queryErrorf(param string, offset int, format string, args ...any) *QueryError {
	return &QueryError{Parameter: param, Pos: offset + 1, Message: fmt.Sprintf(format, args...)}
}

// valueErrorf is a problem with a parameter's value as a whole.
func valueErrorf(param string, format string, args ...any) *QueryError {
	return &QueryError{Parameter: param, Message: fmt.Sprintf(format, args...)}
}

// defaultPageSize is how many rows a page holds unless the server says.
const defaultPageSize = 1000

// defaultWindow is how far before $to the states are read without $from.
const defaultWindow = 24 * time.Hour

// ParseQuery reads the query options of a policy states request: $filter,
// $apply, $select, $orderby, $top, $from, $to, $expand and $skiptoken, in
// any case. Other parameters starting with $ are refused; the rest
// (api-version) are kept for the links. Every name is resolved and every
// type checked here, so Results and Summarize cannot fail.
func ParseQuery(values url.Values) (*Query, error) {
	q := &Query{values: url.Values{}, top: -1, columns: stateColumns}
	raw := map[string]string{}
	seen := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		q.values[key] = slices.Clone(values[key])
		name := strings.ToLower(key)
		if !strings.HasPrefix(name, "$") {
			continue
		}
		if _, ok := parameterCodes[name]; !ok {
			return nil, valueErrorf(key, "policy states take $filter, $apply, $select, $orderby, $top, $from, $to, $expand and $skiptoken")
		}
		if seen[name] || len(values[key]) > 1 {
			return nil, valueErrorf(name, "it is given more than once")
		}
		seen[name] = true
		if strings.TrimSpace(values[key][0]) != "" {
			raw[name] = values[key][0]
		}
	}
	var err error
	if s, ok := raw["$filter"]; ok {
		if q.filter, err = parseFilter(s); err != nil {
			return nil, err
		}
		q.test = q.filter.compile()
	}
	if s, ok := raw["$apply"]; ok {
		if q.apply, q.columns, err = parseApply(s); err != nil {
			return nil, err
		}
	}
	if s, ok := raw["$select"]; ok {
		if q.selected, err = parseSelect(s, q.columns); err != nil {
			return nil, err
		}
	}
	if q.order, err = parseOrderBy(raw["$orderby"], q.columns); err != nil {
		return nil, err
	}
	q.order = append(q.order, q.tieBreakers()...)
	if s, ok := raw["$top"]; ok {
		if q.top, err = strconv.Atoi(strings.TrimSpace(s)); err != nil || q.top < 0 {
			return nil, valueErrorf("$top", "'%s' is not a whole number of 0 or more", s)
		}
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"$from", &q.from}, {"$to", &q.to}} {
		if s, ok := raw[p.name]; ok {
			if *p.t, err = parseTime(strings.TrimSpace(s)); err != nil {
				return nil, valueErrorf(p.name, "'%s' is not an ISO 8601 timestamp", s)
			}
		}
	}
	if !q.from.IsZero() && !q.to.IsZero() && q.from.After(q.to) {
		return nil, valueErrorf("$from", "%s is after $to, %s", formatTime(q.from), formatTime(q.to))
	}
	if s, ok := raw["$expand"]; ok {
		for _, item := range split(s, ',') {
			if !strings.EqualFold(item.text, "PolicyEvaluationDetails") {
				return nil, queryErrorf("$expand", item.pos, "'%s' cannot be expanded: policy states expand PolicyEvaluationDetails", item.text)
			}
			q.details = true
		}
	}
	q.fingerprint = fingerprint(raw)
	if s, ok := raw["$skiptoken"]; ok {
		if err := q.readSkipToken(s); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// word is an item of a list parameter, trimmed, with its byte offset.
type word struct {
	text string
	pos  int
}

// split cuts s at sep, or at white space when sep is 0, and trims the items.
func split(s string, sep byte) []word {
	var out []word
	start := 0
	for i := 0; i <= len(s); i++ {
		at := i == len(s) || (sep == 0 && strings.IndexByte(" \t\r\n", s[i]) >= 0) || (sep != 0 && s[i] == sep)
		if !at {
			continue
		}
		item := s[start:i]
		trimmed := strings.TrimLeft(item, " \t\r\n")
		if sep != 0 || trimmed != "" {
			out = append(out, word{text: strings.TrimRight(trimmed, " \t\r\n"), pos: start + len(item) - len(trimmed)})
		}
		start = i + 1
	}
	return out
}

// parseSelect reads $select: properties of the rows, separated by commas.
func parseSelect(s string, columns []*column) ([]*column, error) {
	var selected []*column
	for _, item := range split(s, ',') {
		c := lookup(columns, item.text)
		switch {
		case item.text == "":
			return nil, queryErrorf("$select", item.pos, "expected a property")
		case c == nil:
			return nil, queryErrorf("$select", item.pos, "'%s' is not a property of %s", item.text, describeRows(columns))
		case slices.Contains(selected, c):
			return nil, queryErrorf("$select", item.pos, "'%s' is selected twice", item.text)
		}
		selected = append(selected, c)
	}
	return selected, nil
}

// parseOrderBy reads $orderby: properties each with asc or desc, desc
// being the default as Azure documents it, separated by commas.
func parseOrderBy(s string, columns []*column) ([]ordering, error) {
	if s == "" {
		return nil, nil
	}
	var order []ordering
	for _, item := range split(s, ',') {
		words := split(item.text, 0)
		if len(words) == 0 {
			return nil, queryErrorf("$orderby", item.pos, "expected a property")
		}
		name := words[0]
		c := lookup(columns, name.text)
		switch {
		case c == nil:
			return nil, queryErrorf("$orderby", item.pos+name.pos, "'%s' is not a property of %s", name.text, describeRows(columns))
		case c.kind == kindList || c.kind == kindDetails:
			return nil, queryErrorf("$orderby", item.pos+name.pos, "'%s' does not order", name.text)
		case slices.ContainsFunc(order, func(o ordering) bool { return o.col == c }):
			return nil, queryErrorf("$orderby", item.pos+name.pos, "'%s' is ordered by twice", name.text)
		}
		o := ordering{col: c, desc: true}
		if len(words) > 1 {
			switch dir := words[1]; strings.ToLower(dir.text) {
			case "asc":
				o.desc = false
			case "desc":
			default:
				return nil, queryErrorf("$orderby", item.pos+dir.pos, "expected asc or desc, got '%s'", dir.text)
			}
		}
		if len(words) > 2 {
			return nil, queryErrorf("$orderby", item.pos+words[2].pos, "expected , after the direction, got '%s'", words[2].text)
		}
		order = append(order, o)
	}
	return order, nil
}

// describeRows names what columns belong to, for an error message.
func describeRows(columns []*column) string {
	p := parser{columns: columns}
	return p.rows()
}

// tieBreakers complete the order so that it is total: for states, their
// key (resource, assignment, definition reference) and the newest first;
// for rows of $apply, every column. Columns ordered already are left out.
func (q *Query) tieBreakers() []ordering {
	keys := []ordering{{col: stateColumn("resourceId")}, {col: stateColumn("policyAssignmentId")},
		{col: stateColumn("policyDefinitionReferenceId")}, {col: stateColumn("policyDefinitionId")},
		{col: stateColumn("timestamp"), desc: true}}
	if q.apply != nil {
		keys = nil
		for _, c := range q.columns {
			keys = append(keys, ordering{col: c})
		}
	}
	return slices.DeleteFunc(keys, func(k ordering) bool {
		return slices.ContainsFunc(q.order, func(o ordering) bool { return o.col == k.col })
	})
}

// fingerprint hashes the parameters that decide the rows, so that a skip
// token is refused with another query.
func fingerprint(raw map[string]string) uint64 {
	h := fnv.New64a()
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if name != "$skiptoken" {
			fmt.Fprintf(h, "%s=%s\x00", name, raw[name])
		}
	}
	return h.Sum64()
}

// skipToken is where the next page starts: the rows before it and the end
// of the time window of the first page, which later pages keep.
func (q *Query) skipToken(offset int, to time.Time) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%d.%x", offset, to.UnixNano(), q.fingerprint))
}

func (q *Query) readSkipToken(s string) error {
	bad := valueErrorf("$skiptoken", "'%s' is not a skip token of this query", s)
	data, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return bad
	}
	parts := strings.Split(string(data), ".")
	if len(parts) != 3 {
		return bad
	}
	offset, err1 := strconv.Atoi(parts[0])
	to, err2 := strconv.ParseInt(parts[1], 10, 64)
	fp, err3 := strconv.ParseUint(parts[2], 16, 64)
	if err1 != nil || err2 != nil || err3 != nil || offset < 0 || fp != q.fingerprint {
		return bad
	}
	q.offset = offset
	q.to = time.Unix(0, to).UTC()
	return nil
}

// window is the time range of the states read: [$from, $to], $to being
// now and $from a day before $to unless given.
func (q *Query) window(now time.Time) (from, to time.Time) {
	to = q.to
	if to.IsZero() {
		to = now
	}
	from = q.from
	if from.IsZero() {
		from = to.Add(-defaultWindow)
	}
	return from, to
}

// matching are the indexes of the states of the window that pass $filter.
func (q *Query) matching(states []State, from, to time.Time) []int32 {
	var matches []int32
	var r row
	for i := range states {
		s := &states[i]
		if s.Timestamp.Before(from) || s.Timestamp.After(to) {
			continue
		}
		r.state = s
		if q.test == nil || q.test(&r) {
			matches = append(matches, int32(i))
		}
	}
	return matches
}

// compare orders two rows as the page does.
func (q *Query) compare(a, b *row) int {
	for _, o := range q.order {
		if c := compareValues(o.col.get(a), o.col.get(b)); c != 0 {
			if o.desc {
				return -c
			}
			return c
		}
	}
	return a.order - b.order
}

func (q *Query) resource() string {
	if q.Resource == "" {
		return "latest"
	}
	return q.Resource
}

// queryResultsURL is the queryResults action of the collection, with the
// request's api-version.
func (q *Query) queryResultsURL(resource string) string {
	u := q.Endpoint + "/" + resource + "/queryResults"
	for key, vs := range q.values {
		if strings.EqualFold(key, "api-version") && len(vs) > 0 {
			return u + "?api-version=" + url.QueryEscape(vs[0])
		}
	}
	return u
}
