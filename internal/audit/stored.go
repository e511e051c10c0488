package audit

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The stored form of an event.
//
// Records, exports, archive segments and the store hold an event as its
// facts: the fields [NewEvent] takes from the request, plus, under
// "overrides", each field NewEvent would derive whose value is not the
// derived one. Reading expands the facts back into the armmonitor shape.
// So a record is about a quarter of the size of the shape the API
// answers with (the activity log's cost on every write is mostly bytes),
// nothing is lost (every Event round-trips), and each event has one
// encoding: an override equal to its derivation is not canonical, and
// [Verify] reports it as an edit.
type storedEvent struct {
	Caller        string            `json:"caller,omitempty"`
	Claims        map[string]string `json:"claims,omitempty"`
	CorrelationID string            `json:"correlationId,omitempty"`
	Description   string            `json:"description,omitempty"`
	EventDataID   string            `json:"eventDataId"`
	Time          time.Time         `json:"eventTimestamp,omitzero"`
	Submitted     *time.Time        `json:"submissionTimestamp,omitempty"` // only when not Time
	HTTPRequest   HTTPRequest       `json:"httpRequest,omitzero"`
	OperationName string            `json:"operationName,omitempty"`
	Properties    map[string]string `json:"properties,omitempty"` // less the derived ones
	ResourceID    string            `json:"resourceId,omitempty"`
	Role          string            `json:"role,omitempty"`
	Status        string            `json:"status,omitempty"`
	SubStatus     string            `json:"subStatus,omitempty"`
	TenantID      string            `json:"tenantId,omitempty"`
	// Overrides holds the derivable fields whose value differs from the
	// derived one, by the names of derivedFields; null stands for a derived
	// property that the event does not have.
	Overrides map[string]*string `json:"overrides,omitempty"`
}

// derivedField is a field of Event that NewEvent derives from others. A
// derivation reads only facts (the resource id's parts among them, parsed
// once per event) and fields listed before it.
type derivedField struct {
	name   string
	field  func(e *Event) *string
	derive func(e *Event, id resourceIDParts) string
}

// derivedFields lists them in the order they are derived; it mirrors
// NewEvent.
var derivedFields = []derivedField{
	{"authorization.action", func(e *Event) *string { return &e.Authorization.Action },
		func(e *Event, _ resourceIDParts) string { return e.OperationName.Value }},
	{"authorization.scope", func(e *Event) *string { return &e.Authorization.Scope },
		func(e *Event, _ resourceIDParts) string {
			if e.Authorization.Action == "" {
				return ""
			}
			return e.ResourceID
		}},
	{"channels", func(e *Event) *string { return &e.Channels }, constant("Operation")},
	{"eventName.value", func(e *Event) *string { return &e.EventName.Value },
		func(e *Event, _ resourceIDParts) string {
			if e.Status.Value == StatusStarted {
				return "BeginRequest"
			}
			return "EndRequest"
		}},
	{"eventName.localizedValue", func(e *Event) *string { return &e.EventName.LocalizedValue },
		func(e *Event, _ resourceIDParts) string {
			switch e.EventName.Value {
			case "BeginRequest":
				return "Begin request"
			case "EndRequest":
				return "End request"
			}
			return e.EventName.Value
		}},
	{"category.value", func(e *Event) *string { return &e.Category.Value }, constant("Administrative")},
	{"category.localizedValue", func(e *Event) *string { return &e.Category.LocalizedValue },
		func(e *Event, _ resourceIDParts) string { return e.Category.Value }},
	{"id", func(e *Event) *string { return &e.ID },
		func(e *Event, _ resourceIDParts) string {
			return e.ResourceID + "/events/" + e.EventDataID + "/ticks/" + strconv.FormatInt(Ticks(e.EventTimestamp), 10)
		}},
	{"level", func(e *Event) *string { return &e.Level },
		func(e *Event, _ resourceIDParts) string {
			if e.Status.Value == StatusFailed {
				return LevelError
			}
			return LevelInformational
		}},
	{"operationId", func(e *Event) *string { return &e.OperationID },
		func(e *Event, _ resourceIDParts) string { return e.CorrelationID }},
	{"operationName.localizedValue", func(e *Event) *string { return &e.OperationName.LocalizedValue },
		func(e *Event, _ resourceIDParts) string { return e.OperationName.Value }},
	{"subscriptionId", func(e *Event) *string { return &e.SubscriptionID },
		func(_ *Event, id resourceIDParts) string { return id.sub }},
	{"resourceGroupName", func(e *Event) *string { return &e.ResourceGroupName },
		func(_ *Event, id resourceIDParts) string { return id.rg }},
	{"resourceProviderName.value", func(e *Event) *string { return &e.ResourceProviderName.Value },
		func(_ *Event, id resourceIDParts) string { return id.provider }},
	{"resourceProviderName.localizedValue", func(e *Event) *string { return &e.ResourceProviderName.LocalizedValue },
		func(e *Event, _ resourceIDParts) string { return e.ResourceProviderName.Value }},
	{"resourceType.value", func(e *Event) *string { return &e.ResourceType.Value },
		func(_ *Event, id resourceIDParts) string { return id.typ }},
	{"resourceType.localizedValue", func(e *Event) *string { return &e.ResourceType.LocalizedValue },
		func(e *Event, _ resourceIDParts) string { return e.ResourceType.Value }},
	{"status.localizedValue", func(e *Event) *string { return &e.Status.LocalizedValue },
		func(e *Event, _ resourceIDParts) string { return e.Status.Value }},
	{"subStatus.localizedValue", func(e *Event) *string { return &e.SubStatus.LocalizedValue },
		func(e *Event, _ resourceIDParts) string {
			if code, ok := httpStatusCode[e.SubStatus.Value]; ok {
				return httpSubStatus(code)
			}
			return e.SubStatus.Value
		}},
}

// derivedProperty is a property NewEvent adds, with its derivation; a
// property derived as "" is absent.
type derivedProperty struct {
	key    string
	derive func(e *Event, id resourceIDParts) string
}

// derivedProperties lists them.
var derivedProperties = []derivedProperty{
	{"entity", func(e *Event, _ resourceIDParts) string { return e.ResourceID }},
	{"eventCategory", func(e *Event, _ resourceIDParts) string { return e.Category.Value }},
	{"message", func(e *Event, _ resourceIDParts) string { return e.OperationName.Value }},
	{"statusCode", func(e *Event, _ resourceIDParts) string {
		if _, ok := httpStatusCode[e.SubStatus.Value]; ok {
			return e.SubStatus.Value
		}
		return ""
	}},
}

func constant(s string) func(*Event, resourceIDParts) string {
	return func(*Event, resourceIDParts) string { return s }
}

// httpStatusCode is httpStatusText reversed.
var httpStatusCode = func() map[string]int {
	m := make(map[string]int, len(httpStatusText))
	for code, text := range httpStatusText {
		m[text] = code
	}
	return m
}()

// httpSubStatus is the localized subStatus of an HTTP status, as Azure
// writes it: "No Content (HTTP Status Code: 204)".
func httpSubStatus(code int) string {
	return fmt.Sprintf("%s (HTTP Status Code: %d)", spaced(httpStatusText[code]), code)
}

// store returns the stored form of e, which must be canonical.
func (e Event) store() storedEvent {
	s := storedEvent{
		Caller: e.Caller, Claims: e.Claims, CorrelationID: e.CorrelationID, Description: e.Description,
		EventDataID: e.EventDataID, Time: e.EventTimestamp, HTTPRequest: e.HTTPRequest,
		OperationName: e.OperationName.Value, ResourceID: e.ResourceID, Role: e.Authorization.Role,
		Status: e.Status.Value, SubStatus: e.SubStatus.Value, TenantID: e.TenantID,
	}
	if !e.SubmissionTimestamp.Equal(e.EventTimestamp) {
		s.Submitted = &e.SubmissionTimestamp
	}
	override := func(name string, value *string) {
		if s.Overrides == nil {
			s.Overrides = map[string]*string{}
		}
		s.Overrides[name] = value
	}
	id := parseResourceID(e.ResourceID)
	for _, f := range derivedFields {
		if v := *f.field(&e); v != f.derive(&e, id) {
			override(f.name, new(v))
		}
	}
	for _, p := range derivedProperties {
		v, has := e.Properties[p.key]
		derived := p.derive(&e, id)
		switch {
		case !has && derived != "":
			override("properties."+p.key, nil)
		case has && (v != derived || derived == ""):
			override("properties."+p.key, new(v))
		}
	}
	for k, v := range e.Properties {
		if !slices.ContainsFunc(derivedProperties, func(p derivedProperty) bool { return p.key == k }) {
			if s.Properties == nil {
				s.Properties = map[string]string{}
			}
			s.Properties[k] = v
		}
	}
	return s
}

// event expands s into the armmonitor shape; it fails on an override it
// does not know.
func (s storedEvent) event() (Event, error) {
	e := Event{
		Authorization: Authorization{Role: s.Role}, Caller: s.Caller, Claims: s.Claims,
		CorrelationID: s.CorrelationID, Description: s.Description, EventDataID: s.EventDataID,
		EventTimestamp: s.Time, SubmissionTimestamp: s.Time, HTTPRequest: s.HTTPRequest,
		OperationName: LocalizableString{Value: s.OperationName}, ResourceID: s.ResourceID,
		Status: LocalizableString{Value: s.Status}, SubStatus: LocalizableString{Value: s.SubStatus},
		TenantID: s.TenantID,
	}
	if s.Submitted != nil {
		e.SubmissionTimestamp = *s.Submitted
	}
	for name := range s.Overrides {
		if !knownOverride(name) {
			return Event{}, fmt.Errorf("unknown override %q", name)
		}
	}
	id := parseResourceID(e.ResourceID)
	for _, f := range derivedFields {
		v, ok := s.Overrides[f.name]
		switch {
		case !ok:
			*f.field(&e) = f.derive(&e, id)
		case v == nil:
			return Event{}, fmt.Errorf("override %s: null, want a string", f.name)
		default:
			*f.field(&e) = *v
		}
	}
	e.Properties = maps.Clone(s.Properties)
	if e.Properties == nil {
		e.Properties = map[string]string{}
	}
	for _, p := range derivedProperties {
		v, ok := s.Overrides["properties."+p.key]
		switch {
		case ok:
			if v != nil {
				e.Properties[p.key] = *v
			}
		case p.derive(&e, id) != "":
			e.Properties[p.key] = p.derive(&e, id)
		}
	}
	return e, nil
}

func knownOverride(name string) bool {
	if key, ok := strings.CutPrefix(name, "properties."); ok {
		for _, p := range derivedProperties {
			if p.key == key {
				return true
			}
		}
		return false
	}
	for _, f := range derivedFields {
		if f.name == name {
			return true
		}
	}
	return false
}

// encodeEvent is e's stored form as compact JSON with its fields in a fixed
// order and map keys sorted.
func encodeEvent(e Event) []byte { return appendEvent(nil, e) }

// appendEvent appends e's stored form (see encodeEvent) to b.
func appendEvent(b []byte, e Event) []byte {
	s := e.canonical().store()
	return s.appendJSON(b)
}

// decodeEvent reads a stored event strictly: unknown fields, unknown
// overrides and trailing data are errors. It does not require the
// canonical form; [Verify] does.
func decodeEvent(b []byte) (Event, error) {
	var s storedEvent
	if err := strictUnmarshal(b, &s); err != nil {
		return Event{}, err
	}
	e, err := s.event()
	if err != nil {
		return Event{}, err
	}
	return e.canonical(), nil
}
