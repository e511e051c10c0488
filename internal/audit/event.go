package audit

import (
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Event statuses of the activity log. A synchronous request has one record
// (Succeeded or Failed, Failed also for refusals); a long-running one has
// Started or Accepted first and Succeeded or Failed when it ends.
const (
	StatusStarted   = "Started"
	StatusAccepted  = "Accepted"
	StatusSucceeded = "Succeeded"
	StatusFailed    = "Failed"
)

// Event levels.
const (
	LevelCritical      = "Critical"
	LevelError         = "Error"
	LevelWarning       = "Warning"
	LevelInformational = "Informational"
	LevelVerbose       = "Verbose"
)

// LocalizableString is armmonitor's {value, localizedValue}. Citadel has one
// language, so localizedValue mirrors value unless there is a friendlier text.
type LocalizableString struct {
	Value          string `json:"value"`
	LocalizedValue string `json:"localizedValue"`
}

// Authorization says which action was checked on which scope, and which role
// allowed it (empty when it was denied).
type Authorization struct {
	Action string `json:"action"`
	Role   string `json:"role,omitempty"`
	Scope  string `json:"scope"`
}

// HTTPRequest describes the request that caused the event.
type HTTPRequest struct {
	ClientRequestID string `json:"clientRequestId,omitempty"`
	ClientIPAddress string `json:"clientIpAddress,omitempty"`
	Method          string `json:"method,omitempty"`
}

// Event is one activity-log entry in the JSON shape of armmonitor's
// EventData, which az and the Azure SDKs decode. It is also the payload of a
// [Record], so every field here is covered by the hash chain. Build one with
// [NewEvent].
type Event struct {
	Authorization        Authorization     `json:"authorization,omitzero"`
	Caller               string            `json:"caller"`
	Channels             string            `json:"channels"`
	Claims               map[string]string `json:"claims,omitempty"`
	CorrelationID        string            `json:"correlationId"`
	Description          string            `json:"description"`
	EventDataID          string            `json:"eventDataId"`
	EventName            LocalizableString `json:"eventName"`
	Category             LocalizableString `json:"category"`
	EventTimestamp       time.Time         `json:"eventTimestamp,omitzero"`
	SubmissionTimestamp  time.Time         `json:"submissionTimestamp,omitzero"`
	HTTPRequest          HTTPRequest       `json:"httpRequest,omitzero"`
	ID                   string            `json:"id"`
	Level                string            `json:"level"`
	OperationID          string            `json:"operationId"`
	OperationName        LocalizableString `json:"operationName"`
	Properties           map[string]string `json:"properties,omitempty"`
	ResourceGroupName    string            `json:"resourceGroupName"`
	ResourceProviderName LocalizableString `json:"resourceProviderName"`
	ResourceID           string            `json:"resourceId"`
	ResourceType         LocalizableString `json:"resourceType"`
	Status               LocalizableString `json:"status"`
	SubStatus            LocalizableString `json:"subStatus"`
	SubscriptionID       string            `json:"subscriptionId"`
	TenantID             string            `json:"tenantId"`
}

// EventInfo is what the request pipeline knows about a mutation; [NewEvent]
// turns it into an [Event], deriving everything else.
type EventInfo struct {
	Time            time.Time // eventTimestamp; required
	Submitted       time.Time // submissionTimestamp; Time when zero
	EventDataID     string    // unique id of this event; a new UUID when empty
	CorrelationID   string    // x-ms-correlation-request-id of the request
	OperationID     string    // the operation (LRO) id; CorrelationID when empty
	OperationName   string    // the ARM action, e.g. "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action"
	Role            string    // the role that allowed the action; empty if none did
	Scope           string    // the scope authorization was checked on; ResourceID when empty
	Caller          string    // UPN or object id of the principal
	Claims          map[string]string
	ClientIP        string
	ClientRequestID string
	Method          string // PUT, PATCH, DELETE or POST; empty for LRO progress
	ResourceID      string // the target resource
	Status          string // Started, Accepted, Succeeded or Failed
	SubStatus       string // e.g. "Created", "Forbidden"; from StatusCode when empty
	StatusCode      int    // the HTTP status answered, if any
	Level           string // Informational, or Error when Failed, when empty
	Description     string
	Properties      map[string]string
	TenantID        string
}

// NewEvent builds the armmonitor shape from info: localizedValue mirrors,
// category Administrative, channels Operation, eventName BeginRequest or
// EndRequest, subscription, resource group, provider and type parsed from
// the resource id, and id = "{resourceId}/events/{eventDataId}/ticks/{ticks}"
// with ticks the .NET ticks of the event time. The result is in canonical
// form (UTC times, valid UTF-8), as stored in a [Record].
func NewEvent(info EventInfo) Event {
	t := info.Time.UTC()
	sub := info.Submitted
	if sub.IsZero() {
		sub = t
	}
	id := info.EventDataID
	if id == "" {
		// Version 7: ids ascend with time, so an event's key in the store
		// goes where the last ones went in etcd's index, not anywhere
		// among the tens of thousands before it: a random key made every
		// lookup in the index a walk through cold memory, and a
		// synchronous PUT 6% slower (docs/performance.md).
		id = uuid.Must(uuid.NewV7()).String()
	}
	opID := info.OperationID
	if opID == "" {
		opID = info.CorrelationID
	}
	level := info.Level
	if level == "" {
		level = LevelInformational
		if info.Status == StatusFailed {
			level = LevelError
		}
	}
	name := LocalizableString{"EndRequest", "End request"}
	if info.Status == StatusStarted {
		name = LocalizableString{"BeginRequest", "Begin request"}
	}
	subStatus := LocalizableString{info.SubStatus, info.SubStatus}
	code := ""
	if text, ok := httpStatusText[info.StatusCode]; ok {
		code = text
		if subStatus.Value == "" {
			subStatus = LocalizableString{text, httpSubStatus(info.StatusCode)}
		}
	}
	parts := parseResourceID(info.ResourceID)

	e := Event{
		Caller:               info.Caller,
		Channels:             "Operation",
		Claims:               maps.Clone(info.Claims),
		CorrelationID:        info.CorrelationID,
		Description:          info.Description,
		EventDataID:          id,
		EventName:            name,
		Category:             LocalizableString{"Administrative", "Administrative"},
		EventTimestamp:       t,
		SubmissionTimestamp:  sub.UTC(),
		HTTPRequest:          HTTPRequest{ClientRequestID: info.ClientRequestID, ClientIPAddress: info.ClientIP, Method: info.Method},
		ID:                   info.ResourceID + "/events/" + id + "/ticks/" + strconv.FormatInt(Ticks(t), 10),
		Level:                level,
		OperationID:          opID,
		OperationName:        LocalizableString{info.OperationName, info.OperationName},
		ResourceGroupName:    parts.rg,
		ResourceProviderName: LocalizableString{parts.provider, parts.provider},
		ResourceID:           info.ResourceID,
		ResourceType:         LocalizableString{parts.typ, parts.typ},
		Status:               LocalizableString{info.Status, info.Status},
		SubStatus:            subStatus,
		SubscriptionID:       parts.sub,
		TenantID:             info.TenantID,
	}
	if info.OperationName != "" {
		scope := info.Scope
		if scope == "" {
			scope = info.ResourceID
		}
		e.Authorization = Authorization{Action: info.OperationName, Role: info.Role, Scope: scope}
	}
	props := maps.Clone(info.Properties)
	if props == nil {
		props = map[string]string{}
	}
	defaults := [...]struct{ k, v string }{
		{"eventCategory", "Administrative"},
		{"entity", info.ResourceID},
		{"message", info.OperationName},
		{"statusCode", code},
	}
	for _, d := range defaults {
		if _, ok := props[d.k]; !ok && d.v != "" {
			props[d.k] = d.v
		}
	}
	e.Properties = props
	return e.canonical()
}

// Ticks returns t in .NET ticks: 100 ns intervals since 0001-01-01 UTC, the
// number at the end of an activity-log event id.
func Ticks(t time.Time) int64 {
	const unixToDotNet = 62135596800 // seconds from 0001-01-01 to 1970-01-01
	return (t.Unix()+unixToDotNet)*10_000_000 + int64(t.Nanosecond()/100)
}

// canonical returns e with times in UTC (zero if they cannot be written as
// RFC 3339) and strings made valid UTF-8, so that decoding the encoding
// yields a value with the same encoding. Maps are copied only when a key or
// value has to change.
func (e Event) canonical() Event {
	e.EventTimestamp = canonicalTime(e.EventTimestamp)
	e.SubmissionTimestamp = canonicalTime(e.SubmissionTimestamp)
	if e.validUTF8() {
		return e
	}
	for _, s := range e.strings() {
		*s = strings.ToValidUTF8(*s, "\uFFFD")
	}
	e.Claims = validMap(e.Claims)
	e.Properties = validMap(e.Properties)
	return e
}

func canonicalTime(t time.Time) time.Time {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}
	}
	return t
}

// strings lists pointers to every string field of e, for canonical. An
// array rather than a slice, so that checking an event does not move it to
// the heap.
func (e *Event) strings() [32]*string {
	return [...]*string{
		&e.Authorization.Action, &e.Authorization.Role, &e.Authorization.Scope,
		&e.Caller, &e.Channels, &e.CorrelationID, &e.Description, &e.EventDataID,
		&e.EventName.Value, &e.EventName.LocalizedValue,
		&e.Category.Value, &e.Category.LocalizedValue,
		&e.HTTPRequest.ClientRequestID, &e.HTTPRequest.ClientIPAddress, &e.HTTPRequest.Method,
		&e.ID, &e.Level, &e.OperationID,
		&e.OperationName.Value, &e.OperationName.LocalizedValue,
		&e.ResourceGroupName,
		&e.ResourceProviderName.Value, &e.ResourceProviderName.LocalizedValue,
		&e.ResourceID,
		&e.ResourceType.Value, &e.ResourceType.LocalizedValue,
		&e.Status.Value, &e.Status.LocalizedValue,
		&e.SubStatus.Value, &e.SubStatus.LocalizedValue,
		&e.SubscriptionID, &e.TenantID,
	}
}

func (e *Event) validUTF8() bool {
	for _, s := range e.strings() {
		if !utf8.ValidString(*s) {
			return false
		}
	}
	for _, m := range []map[string]string{e.Claims, e.Properties} {
		for k, v := range m {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

// validMap returns m with keys and values made valid UTF-8. Two keys that
// become equal keep the value of the greater original key, so the result
// does not depend on map iteration order.
func validMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	orig := make(map[string]string, len(m))
	for k, v := range m {
		vk := strings.ToValidUTF8(k, "\uFFFD")
		if prev, ok := orig[vk]; ok && prev > k {
			continue
		}
		orig[vk] = k
		out[vk] = strings.ToValidUTF8(v, "\uFFFD")
	}
	return out
}

// resourceIDParts are the parts of a resource id that an event names.
type resourceIDParts struct{ sub, rg, provider, typ string }

// parseResourceID extracts subscription, resource group, provider namespace
// and full resource type from an ARM resource id. It is lenient: the id was
// validated by the front door, and an odd one yields empty parts.
func parseResourceID(id string) resourceIDParts {
	var sub, rg, provider, typ string
	segs := strings.Split(strings.Trim(id, "/"), "/")
	var types []string
	for i := 0; i+1 < len(segs); {
		switch {
		case strings.EqualFold(segs[i], "subscriptions") && provider == "":
			sub = segs[i+1]
			i += 2
		case strings.EqualFold(segs[i], "resourceGroups") && provider == "":
			rg = segs[i+1]
			i += 2
		case strings.EqualFold(segs[i], "providers"):
			// An extension resource restarts the type under a new namespace.
			provider, types = segs[i+1], nil
			i += 2
			for ; i < len(segs) && !strings.EqualFold(segs[i], "providers"); i += 2 {
				types = append(types, segs[i])
			}
		default:
			i += 2
		}
	}
	switch {
	case provider != "" && len(types) > 0:
		typ = provider + "/" + strings.Join(types, "/")
	case provider != "":
		typ = provider
	case rg != "":
		provider, typ = "Microsoft.Resources", "Microsoft.Resources/subscriptions/resourceGroups"
	case sub != "":
		provider, typ = "Microsoft.Resources", "Microsoft.Resources/subscriptions"
	}
	return resourceIDParts{sub, rg, provider, typ}
}

// httpStatusText names the statuses a mutation answers, as Azure's
// subStatus does. net/http is not imported for this one table.
var httpStatusText = map[int]string{
	200: "OK",
	201: "Created",
	202: "Accepted",
	204: "NoContent",
	400: "BadRequest",
	401: "Unauthorized",
	403: "Forbidden",
	404: "NotFound",
	405: "MethodNotAllowed",
	409: "Conflict",
	412: "PreconditionFailed",
	429: "TooManyRequests",
	500: "InternalServerError",
	503: "ServiceUnavailable",
}

// spaced turns "NoContent" into "No Content" for the localized subStatus.
func spaced(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' && !(s[i-1] >= 'A' && s[i-1] <= 'Z') {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
