package audit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Query errors, for errors.Is; the Insights provider answers them with 400
// BadRequest.
var (
	ErrBadFilter = errors.New("invalid $filter")
	ErrBadSelect = errors.New("invalid $select")
)

// Filter is a parsed activity-log $filter (arm-contract §3.9): a time range
// and optional equality conditions. An empty string field is no condition;
// a zero To is no upper bound.
type Filter struct {
	From              time.Time // eventTimestamp ge, inclusive; required
	To                time.Time // eventTimestamp le, inclusive
	ResourceGroupName string    // resourceGroupName eq
	ResourceURI       string    // resourceUri eq: the event's resourceId
	ResourceProvider  string    // resourceProvider eq: the namespace
	CorrelationID     string    // correlationId eq
	Status            string    // status eq: status.value
	Caller            string    // caller eq
	SubscriptionID    string    // subscriptionId eq
}

// field returns the Filter field an "eq" condition on name sets: nil, true
// for a field that is accepted and ignored; false for an unknown one.
func (f *Filter) field(name string) (*string, bool) {
	switch strings.ToLower(name) {
	case "resourcegroupname":
		return &f.ResourceGroupName, true
	case "resourceuri", "resourceid": // az 2.45 sends resourceId
		return &f.ResourceURI, true
	case "resourceprovider":
		return &f.ResourceProvider, true
	case "correlationid":
		return &f.CorrelationID, true
	case "status":
		return &f.Status, true
	case "caller":
		return &f.Caller, true
	case "subscriptionid":
		return &f.SubscriptionID, true
	case "eventchannels":
		return nil, true // old az versions send it; every event is on the Operation channel
	}
	return nil, false
}

// ParseFilter parses the $filter of
// /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values:
// conditions joined by "and", each "eventTimestamp ge|le <time>" or
// "<field> eq <value>" for resourceGroupName, resourceUri, resourceProvider,
// correlationId, status, caller and subscriptionId. Values may be bare or
// quoted, with a quote inside doubled; times are RFC 3339, or without a
// zone (as az sends them, meaning UTC), or a date. Keywords and field names
// are case-insensitive. "eventTimestamp ge" is required, as in Azure.
func ParseFilter(s string) (Filter, error) {
	var f Filter
	bad := func(format string, args ...any) (Filter, error) {
		return Filter{}, fmt.Errorf("%w: %s", ErrBadFilter, fmt.Sprintf(format, args...))
	}
	toks, err := tokenize(s)
	if err != nil {
		return bad("%v", err)
	}
	hasFrom, hasTo := false, false
	seen := map[string]bool{}
	for i := 0; i < len(toks); {
		if i > 0 {
			if toks[i].quoted || !strings.EqualFold(toks[i].text, "and") {
				return bad("expected 'and' after a condition, got %v", toks[i])
			}
			i++
		}
		if i+3 > len(toks) {
			return bad("incomplete condition at the end; a condition is <field> <operator> <value>")
		}
		name, op, val := toks[i], toks[i+1], toks[i+2]
		i += 3
		if name.quoted || op.quoted {
			return bad("expected <field> <operator> <value>, got %v %v %v", name, op, val)
		}
		if strings.EqualFold(name.text, "eventTimestamp") {
			t, err := parseTime(val.text)
			if err != nil {
				return bad("eventTimestamp %s: %v", op.text, err)
			}
			switch strings.ToLower(op.text) {
			case "ge":
				if hasFrom {
					return bad("eventTimestamp ge is given twice")
				}
				f.From, hasFrom = t, true
			case "le":
				if hasTo {
					return bad("eventTimestamp le is given twice")
				}
				f.To, hasTo = t, true
			default:
				return bad("eventTimestamp supports ge and le, not %v", op)
			}
			continue
		}
		ptr, ok := f.field(name.text)
		if !ok {
			return bad("filtering on %v is not supported", name)
		}
		if !strings.EqualFold(op.text, "eq") {
			return bad("%s supports eq only, not %v", name.text, op)
		}
		if val.text == "" {
			return bad("%s eq: the value is empty", name.text)
		}
		key := strings.ToLower(name.text)
		if seen[key] {
			return bad("%s is given twice", name.text)
		}
		seen[key] = true
		if ptr != nil {
			*ptr = val.text
		}
	}
	if !hasFrom {
		return bad("The $filter must contain eventTimestamp ge")
	}
	if hasTo && f.To.Before(f.From) {
		return bad("eventTimestamp le %s is before eventTimestamp ge %s", f.To.Format(time.RFC3339Nano), f.From.Format(time.RFC3339Nano))
	}
	return f, nil
}

type token struct {
	text   string
	quoted bool
}

func (t token) String() string {
	if t.quoted {
		return "'" + strings.ReplaceAll(t.text, "'", "''") + "'"
	}
	return "'" + t.text + "'"
}

// tokenize splits s into bare words and quoted strings.
func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		r := rune(s[i])
		switch {
		case r < 0x80 && unicode.IsSpace(r):
			i++
		case r == '\'':
			var b strings.Builder
			for i++; ; i++ {
				if i >= len(s) {
					return nil, errors.New("a quoted value is not closed")
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i++
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
			}
			toks = append(toks, token{b.String(), true})
		default:
			j := i
			for j < len(s) && !(s[j] < 0x80 && unicode.IsSpace(rune(s[j]))) {
				j++
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		}
	}
	return toks, nil
}

// parseTime reads RFC 3339, a zoneless date-time (UTC) or a date (UTC).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		t = t.UTC()
		if y := t.Year(); y < 0 || y > 9999 {
			return time.Time{}, fmt.Errorf("%q is out of range", s)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time like 2026-11-23T15:35:02.078076Z", s)
}

// String writes f back as a $filter that ParseFilter reads as f.
func (f Filter) String() string {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	parts := []string{"eventTimestamp ge " + q(f.From.UTC().Format(time.RFC3339Nano))}
	if !f.To.IsZero() {
		parts = append(parts, "eventTimestamp le "+q(f.To.UTC().Format(time.RFC3339Nano)))
	}
	for _, c := range []struct{ name, val string }{
		{"resourceGroupName", f.ResourceGroupName},
		{"resourceUri", f.ResourceURI},
		{"resourceProvider", f.ResourceProvider},
		{"correlationId", f.CorrelationID},
		{"status", f.Status},
		{"caller", f.Caller},
		{"subscriptionId", f.SubscriptionID},
	} {
		if c.val != "" {
			parts = append(parts, c.name+" eq "+q(c.val))
		}
	}
	return strings.Join(parts, " and ")
}

// Match reports whether e satisfies f. Times are inclusive at both ends;
// names and ids compare case-insensitively, as ARM does.
func (f Filter) Match(e Event) bool {
	t := e.EventTimestamp
	if t.Before(f.From) || (!f.To.IsZero() && t.After(f.To)) {
		return false
	}
	eq := func(want, got string) bool { return want == "" || strings.EqualFold(want, got) }
	return eq(f.ResourceGroupName, e.ResourceGroupName) &&
		eq(f.ResourceURI, e.ResourceID) &&
		eq(f.ResourceProvider, e.ResourceProviderName.Value) &&
		eq(f.CorrelationID, e.CorrelationID) &&
		eq(f.Status, e.Status.Value) &&
		eq(f.Caller, e.Caller) &&
		eq(f.SubscriptionID, e.SubscriptionID)
}

// eventFields are the top-level fields of an Event by JSON name, in the
// order they are written, for $select.
var eventFields = []struct {
	name string
	get  func(e *Event) any
}{
	{"authorization", func(e *Event) any { return e.Authorization }},
	{"caller", func(e *Event) any { return e.Caller }},
	{"channels", func(e *Event) any { return e.Channels }},
	{"claims", func(e *Event) any { return e.Claims }},
	{"correlationId", func(e *Event) any { return e.CorrelationID }},
	{"description", func(e *Event) any { return e.Description }},
	{"eventDataId", func(e *Event) any { return e.EventDataID }},
	{"eventName", func(e *Event) any { return e.EventName }},
	{"category", func(e *Event) any { return e.Category }},
	{"eventTimestamp", func(e *Event) any { return e.EventTimestamp }},
	{"submissionTimestamp", func(e *Event) any { return e.SubmissionTimestamp }},
	{"httpRequest", func(e *Event) any { return e.HTTPRequest }},
	{"id", func(e *Event) any { return e.ID }},
	{"level", func(e *Event) any { return e.Level }},
	{"operationId", func(e *Event) any { return e.OperationID }},
	{"operationName", func(e *Event) any { return e.OperationName }},
	{"properties", func(e *Event) any { return e.Properties }},
	{"resourceGroupName", func(e *Event) any { return e.ResourceGroupName }},
	{"resourceProviderName", func(e *Event) any { return e.ResourceProviderName }},
	{"resourceId", func(e *Event) any { return e.ResourceID }},
	{"resourceType", func(e *Event) any { return e.ResourceType }},
	{"status", func(e *Event) any { return e.Status }},
	{"subStatus", func(e *Event) any { return e.SubStatus }},
	{"subscriptionId", func(e *Event) any { return e.SubscriptionID }},
	{"tenantId", func(e *Event) any { return e.TenantID }},
}

// ParseSelect parses a $select: comma-separated top-level EventData field
// names, case-insensitive, returned in their JSON spelling without
// duplicates. An empty $select is nil: all fields.
func ParseSelect(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		name := strings.TrimSpace(item)
		if name == "" {
			return nil, fmt.Errorf("%w: an empty field name in %q", ErrBadSelect, s)
		}
		found := ""
		for _, f := range eventFields {
			if strings.EqualFold(f.name, name) {
				found = f.name
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%w: unknown field %q", ErrBadSelect, name)
		}
		if !slices.Contains(out, found) {
			out = append(out, found)
		}
	}
	return out, nil
}

// Project returns the fields of e named by fields (from [ParseSelect]) for
// JSON encoding; nil fields means all of them. Unknown names are skipped.
func Project(e Event, fields []string) map[string]any {
	out := make(map[string]any, max(len(fields), len(eventFields)))
	for _, f := range eventFields {
		if fields == nil || slices.Contains(fields, f.name) {
			out[f.name] = f.get(&e)
		}
	}
	return out
}
