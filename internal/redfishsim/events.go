package redfishsim

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxOutbox bounds the events waiting for delivery; beyond it new events
// are dropped, which best-effort delivery allows.
const maxOutbox = 256

// event is one entry of a Redfish Event document.
type event struct {
	eventType, messageID, message, severity, origin string
	args                                            []string
}

// delivery is one Event document on its way to one subscriber.
type delivery struct {
	destination string
	header      http.Header
	body        []byte
}

// emit queues ev for each subscription that wants it and makes sure a
// goroutine delivers the queue. Delivery is asynchronous and best-effort:
// one attempt, in order, and the goroutine ends when the queue is empty.
// The caller holds b.mu.
func (b *BMC) emit(ev event) {
	if b.subsPath == "" {
		return
	}
	b.eventID++
	id := strconv.Itoa(b.eventID)
	origin, _ := b.object(ev.origin)
	originType, _ := origin["@odata.type"].(string)
	originType, _, _ = strings.Cut(strings.TrimPrefix(originType, "#"), ".")
	args := ev.args
	if args == nil {
		args = []string{}
	}
	record := map[string]any{
		"EventType":         ev.eventType,
		"EventId":           id,
		"EventTimestamp":    b.opts.Now().UTC().Format(time.RFC3339),
		"Severity":          ev.severity,
		"MessageSeverity":   ev.severity,
		"Message":           ev.message,
		"MessageId":         ev.messageID,
		"MessageArgs":       args,
		"OriginOfCondition": link(ev.origin),
	}
	for _, p := range b.members(b.subsPath) {
		s, _ := b.object(p)
		if !wants(s, ev, originType) {
			continue
		}
		if len(b.outbox) >= maxOutbox {
			b.log.Warn("event dropped", "subscription", p, "event_id", id)
			continue
		}
		destination, _ := s["Destination"].(string)
		subContext, _ := s["Context"].(string)
		body := encode(map[string]any{
			"@odata.type": "#Event.v1_7_0.Event",
			"Id":          id,
			"Name":        "Event Array",
			"Context":     subContext,
			"Events":      []any{record},
		})
		b.outbox = append(b.outbox, delivery{destination: destination, header: b.subHeaders[p], body: body})
	}
	if len(b.outbox) > 0 && !b.delivering {
		b.delivering = true
		go b.deliver()
	}
}

// wants reports whether the subscription s takes ev: a Redfish push
// subscription whose EventTypes, RegistryPrefixes and ResourceTypes filters,
// when set, match.
func wants(s map[string]any, ev event, originType string) bool {
	protocol, _ := s["Protocol"].(string)
	subType, _ := s["SubscriptionType"].(string)
	format, _ := s["EventFormatType"].(string)
	destination, _ := s["Destination"].(string)
	registry, _, _ := strings.Cut(ev.messageID, ".")
	return cmp.Or(protocol, "Redfish") == "Redfish" &&
		cmp.Or(subType, "RedfishEvent") == "RedfishEvent" &&
		cmp.Or(format, "Event") == "Event" &&
		isHTTPURL(destination) &&
		matches(s["EventTypes"], ev.eventType) &&
		matches(s["RegistryPrefixes"], registry) &&
		matches(s["ResourceTypes"], originType)
}

// matches reports whether v passes a subscription filter; an empty filter
// passes everything.
func matches(filter any, v string) bool {
	list := stringList(filter)
	return len(list) == 0 || slices.Contains(list, v)
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// deliver posts the queued events until the queue is empty.
func (b *BMC) deliver() {
	for {
		b.mu.Lock()
		if len(b.outbox) == 0 {
			b.outbox, b.delivering = nil, false
			b.mu.Unlock()
			return
		}
		d := b.outbox[0]
		b.outbox = b.outbox[1:]
		b.mu.Unlock()
		b.send(d)
	}
}

// deliveryTimeout bounds one delivery, so that a stuck subscriber cannot
// hold up the queue whatever the HTTP client's own timeout.
const deliveryTimeout = 10 * time.Second

// send posts one Event document; failures are logged and forgotten.
func (b *BMC) send(d delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.destination, bytes.NewReader(d.body))
	if err != nil {
		b.log.InfoContext(ctx, "event not delivered", "destination", d.destination, "err", err)
		return
	}
	for k, v := range d.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.opts.HTTPClient.Do(req)
	if err != nil {
		b.log.InfoContext(ctx, "event not delivered", "destination", d.destination, "err", err)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) //nolint:errcheck // drained only to reuse the connection
	resp.Body.Close()
	if resp.StatusCode > 299 {
		b.log.InfoContext(ctx, "event refused", "destination", d.destination, "status", resp.StatusCode)
	}
}

// subscribe answers a POST to the subscription collection: 201 with the new
// EventDestination and its Location.
func (b *BMC) subscribe(w http.ResponseWriter, r *http.Request, body []byte) error {
	in, err := newParams("", body)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	service, _ := b.object(path.Dir(b.subsPath))
	eventTypes := stringList(service["EventTypesForSubscription"])
	destination := in.str("Destination", true, nil)
	sub := map[string]any{
		"@odata.type":         "#EventDestination.v1_14_0.EventDestination",
		"Destination":         destination,
		"Protocol":            cmp.Or(in.str("Protocol", false, []string{"Redfish"}), "Redfish"),
		"Context":             in.str("Context", false, nil),
		"SubscriptionType":    cmp.Or(in.str("SubscriptionType", false, []string{"RedfishEvent"}), "RedfishEvent"),
		"EventFormatType":     cmp.Or(in.str("EventFormatType", false, []string{"Event"}), "Event"),
		"DeliveryRetryPolicy": cmp.Or(in.str("DeliveryRetryPolicy", false, []string{"TerminateAfterRetries", "SuspendAfterRetries", "RetryForever", "RetryForeverWithBackoff"}), "TerminateAfterRetries"),
		"VerifyCertificate":   in.boolean("VerifyCertificate", false),
		"HttpHeaders":         []any{}, // never read back, as the schema requires
	}
	for _, filter := range []struct {
		name    string
		allowed []string
	}{{"EventTypes", eventTypes}, {"RegistryPrefixes", nil}, {"ResourceTypes", nil}} {
		if list := in.strs(filter.name, filter.allowed); list != nil {
			sub[filter.name] = list
		}
	}
	headers := in.headers("HttpHeaders")
	if destination != "" && !isHTTPURL(destination) {
		in.msgs = append(in.msgs, msg("PropertyValueFormatError", jsonText(destination), "Destination"))
	}
	if err := in.err(); err != nil {
		return err
	}
	n := 1
	for b.res[b.subsPath+"/"+strconv.Itoa(n)] != nil {
		n++
	}
	id := strconv.Itoa(n)
	p := b.subsPath + "/" + id
	sub["@odata.id"], sub["Id"], sub["Name"] = p, id, "Event Subscription "+id
	b.put(p, sub)
	b.addMember(b.subsPath, p)
	if len(headers) > 0 {
		if b.subHeaders == nil {
			b.subHeaders = map[string]http.Header{}
		}
		b.subHeaders[p] = headers
	}
	b.log.DebugContext(r.Context(), "subscription created", "subscription", p, "destination", destination)
	writeCreated(w, p, b.res[p])
	return nil
}

// submitTestEvent answers #EventService.SubmitTestEvent: it sends the event
// described by the body, with defaults for what the body leaves out.
func (b *BMC) submitTestEvent(w http.ResponseWriter, r *http.Request, body []byte) error {
	in, err := newParams("EventService.SubmitTestEvent", body)
	if err != nil {
		return err
	}
	severity := in.str("Severity", false, []string{"OK", "Warning", "Critical"})
	origin := rootPath
	if o := in.str("OriginOfCondition", false, nil); o != "" {
		origin = cleanPath(o)
	}
	ev := event{
		eventType: cmp.Or(in.str("EventType", false, nil), "Alert"),
		messageID: cmp.Or(in.str("MessageId", false, nil), "ResourceEvent.1.3.TestMessage"),
		message:   cmp.Or(in.str("Message", false, nil), "Test message."),
		severity:  cmp.Or(in.str("MessageSeverity", false, []string{"OK", "Warning", "Critical"}), severity, "OK"),
		args:      in.strs("MessageArgs", nil),
		origin:    origin,
	}
	for _, ignored := range []string{"EventId", "EventTimestamp", "EventGroupId"} {
		in.value(ignored, false)
	}
	if err := in.err(); err != nil {
		return err
	}
	b.mu.Lock()
	b.emit(ev)
	b.mu.Unlock()
	b.log.DebugContext(r.Context(), "test event submitted", "message_id", ev.messageID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
