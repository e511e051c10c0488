package audit

import (
	"slices"
	"time"
	"unicode/utf8"
)

// A stored event's JSON, written without reflection: every mutating
// request encodes its events, and encoding/json's reflection was the
// larger part of that. The bytes are encoding/json's for a storedEvent
// (FuzzAppendStoredEvent holds them to it): fields in their declared
// order, empty ones left out as the tags say, map keys sorted, strings
// escaped as json.Marshal escapes them.

// appendJSON appends s as json.Marshal would write it.
func (s *storedEvent) appendJSON(b []byte) []byte {
	o := jsonObject{b: append(b, '{')}
	o.string("caller", s.Caller)
	o.stringMap("claims", s.Claims)
	o.string("correlationId", s.CorrelationID)
	o.string("description", s.Description)
	o.key("eventDataId")
	o.b = appendJSONString(o.b, s.EventDataID)
	o.time("eventTimestamp", s.Time)
	if s.Submitted != nil {
		o.key("submissionTimestamp")
		o.b = appendJSONTime(o.b, *s.Submitted)
	}
	if s.HTTPRequest != (HTTPRequest{}) {
		o.key("httpRequest")
		r := jsonObject{b: append(o.b, '{')}
		r.string("clientRequestId", s.HTTPRequest.ClientRequestID)
		r.string("clientIpAddress", s.HTTPRequest.ClientIPAddress)
		r.string("method", s.HTTPRequest.Method)
		o.b = append(r.b, '}')
	}
	o.string("operationName", s.OperationName)
	o.stringMap("properties", s.Properties)
	o.string("resourceId", s.ResourceID)
	o.string("role", s.Role)
	o.string("status", s.Status)
	o.string("subStatus", s.SubStatus)
	o.string("tenantId", s.TenantID)
	if len(s.Overrides) > 0 {
		o.key("overrides")
		m := jsonObject{b: append(o.b, '{')}
		for _, k := range sortedKeys(s.Overrides) {
			m.key(k)
			if v := s.Overrides[k]; v != nil {
				m.b = appendJSONString(m.b, *v)
			} else {
				m.b = append(m.b, "null"...)
			}
		}
		o.b = append(m.b, '}')
	}
	return append(o.b, '}')
}

// jsonObject writes the members of a JSON object after its '{'.
type jsonObject struct {
	b []byte
	n int
}

// key starts a member. Keys written by key itself must need no escaping.
func (o *jsonObject) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = appendJSONString(o.b, k)
	o.b = append(o.b, ':')
}

// string writes a member that omitempty leaves out when empty.
func (o *jsonObject) string(k, v string) {
	if v != "" {
		o.key(k)
		o.b = appendJSONString(o.b, v)
	}
}

// time writes a member that omitzero leaves out when zero.
func (o *jsonObject) time(k string, t time.Time) {
	if !t.IsZero() {
		o.key(k)
		o.b = appendJSONTime(o.b, t)
	}
}

// stringMap writes a member that omitempty leaves out when empty.
func (o *jsonObject) stringMap(k string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	o.key(k)
	inner := jsonObject{b: append(o.b, '{')}
	for _, k := range sortedKeys(m) {
		inner.key(k)
		inner.b = appendJSONString(inner.b, m[k])
	}
	o.b = append(inner.b, '}')
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendJSONTime writes t as time.Time's MarshalJSON does; t's year must
// be within 0-9999, as canonical events' are.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONString writes s as a JSON string escaped as json.Marshal
// escapes it: quotes, backslashes and control characters, the HTML
// characters <, > and &, U+2028 and U+2029, and invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
