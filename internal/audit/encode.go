package audit

import (
	"slices"
	"time"

	"github.com/citadel-cloud/citadel/internal/jsonstr"
)

// A stored event's JSON, written without reflection: every mutating
// request encodes its events, and encoding/json's reflection was the
// larger part of that. The bytes are encoding/json's for a storedEvent
// (FuzzAppendStoredEvent holds them to it): fields in their declared
// order, empty ones left out as the tags say, map keys sorted, strings
// escaped as json.Marshal escapes them (jsonstr.Append).

// appendJSON appends s as json.Marshal would write it.
func (s *storedEvent) appendJSON(b []byte) []byte {
	o := jsonObject{b: append(b, '{')}
	o.string("caller", s.Caller)
	o.stringMap("claims", s.Claims)
	o.string("correlationId", s.CorrelationID)
	o.string("description", s.Description)
	o.key("eventDataId")
	o.b = jsonstr.Append(o.b, s.EventDataID, true)
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
		var buf [8]string
		for _, k := range sortedKeys(buf[:0], s.Overrides) {
			m.key(k)
			if v := s.Overrides[k]; v != nil {
				m.b = jsonstr.Append(m.b, *v, true)
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

// key starts the member named k.
func (o *jsonObject) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = jsonstr.Append(o.b, k, true)
	o.b = append(o.b, ':')
}

// string writes a member that omitempty leaves out when empty.
func (o *jsonObject) string(k, v string) {
	if v != "" {
		o.key(k)
		o.b = jsonstr.Append(o.b, v, true)
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
	var buf [8]string
	for _, k := range sortedKeys(buf[:0], m) {
		inner.key(k)
		inner.b = jsonstr.Append(inner.b, m[k], true)
	}
	o.b = append(inner.b, '}')
}

// sortedKeys appends m's keys to keys, sorted: into a caller's array, an
// event's few keys cost no allocation.
func sortedKeys[V any](keys []string, m map[string]V) []string {
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
