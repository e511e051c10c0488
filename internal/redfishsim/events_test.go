package redfishsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

// receiver is an event listener like the controller's: it records each
// Event document and the Authorization header it came with.
type receiver struct {
	srv    *httptest.Server
	events chan received
}

type received struct {
	auth string
	doc  map[string]any
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{events: make(chan received, 64)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var doc map[string]any
		if err := json.NewDecoder(req.Body).Decode(&doc); err != nil {
			t.Errorf("event body: %v", err)
		}
		r.events <- received{auth: req.Header.Get("Authorization"), doc: doc}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next event; events are asynchronous.
func (r *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
		return received{}
	}
}

// record is the part of an event entry a test compares.
func record(doc map[string]any) map[string]any {
	events, _ := doc["Events"].([]any)
	if len(events) != 1 {
		return map[string]any{"Events": events}
	}
	e := events[0].(map[string]any)
	return map[string]any{
		"Context":   doc["Context"],
		"EventType": e["EventType"],
		"MessageId": e["MessageId"],
		"Severity":  e["Severity"],
		"Origin":    field(e, "OriginOfCondition", "@odata.id"),
	}
}

func TestEvents(t *testing.T) {
	rcv := newReceiver(t)
	b, c := sample(t, nil, func(o *redfishsim.Options) { o.PowerOnDelay = 20 * time.Millisecond })
	const subs = "/redfish/v1/EventService/Subscriptions"
	resp := c.do(http.MethodPost, subs, map[string]any{
		"Destination": rcv.srv.URL + "/events", "Protocol": "Redfish", "Context": "citadel-42",
		"EventTypes": []string{"StatusChange", "Alert"}, "HttpHeaders": []map[string]string{{"Authorization": "Bearer xyz"}},
	})
	if resp.status != http.StatusCreated {
		t.Fatalf("subscribe = %d, want 201\n%s", resp.status, resp.raw)
	}
	location := resp.header.Get("Location")
	if got := field(c.get(location), "Destination"); got != rcv.srv.URL+"/events" {
		t.Errorf("subscription Destination = %v", got)
	}
	if got := field(c.get(location), "HttpHeaders"); len(got.([]any)) != 0 {
		t.Errorf("subscription HttpHeaders = %v, want them hidden", got)
	}

	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "On"})
	want := []map[string]any{
		{"Context": "citadel-42", "EventType": "StatusChange", "MessageId": "ResourceEvent.1.3.ResourcePoweringOn", "Severity": "OK", "Origin": system},
		{"Context": "citadel-42", "EventType": "StatusChange", "MessageId": "ResourceEvent.1.3.ResourcePoweredOn", "Severity": "OK", "Origin": system},
	}
	var got []map[string]any
	for range want {
		e := rcv.next(t)
		if e.auth != "Bearer xyz" {
			t.Errorf("event Authorization = %q, want the subscription's HttpHeaders", e.auth)
		}
		got = append(got, record(e.doc))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("power events (-want +got):\n%s", diff)
	}

	if err := b.FailDIMM(0); err != nil {
		t.Fatalf("FailDIMM(0) error = %v", err)
	}
	wantAlert := map[string]any{"Context": "citadel-42", "EventType": "Alert", "MessageId": "ResourceEvent.1.3.ResourceStatusChangedCritical", "Severity": "Critical", "Origin": system + "/Memory/DIMM1"}
	if diff := cmp.Diff(wantAlert, record(rcv.next(t).doc)); diff != "" {
		t.Errorf("DIMM alert (-want +got):\n%s", diff)
	}

	if resp := c.do(http.MethodPost, "/redfish/v1/EventService/Actions/EventService.SubmitTestEvent", map[string]any{"EventType": "Alert", "MessageId": "ResourceEvent.1.3.TestMessage"}); resp.status != http.StatusNoContent {
		t.Fatalf("SubmitTestEvent = %d, want 204\n%s", resp.status, resp.raw)
	}
	if got := record(rcv.next(t).doc)["MessageId"]; got != "ResourceEvent.1.3.TestMessage" {
		t.Errorf("test event MessageId = %v", got)
	}

	if resp := c.do(http.MethodDelete, location, nil); resp.status != http.StatusNoContent {
		t.Fatalf("DELETE subscription = %d, want 204", resp.status)
	}
	if resp := c.do(http.MethodGet, location, nil); resp.status != http.StatusNotFound {
		t.Errorf("GET deleted subscription = %d, want 404", resp.status)
	}
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "ForceOff"})
	select {
	case e := <-rcv.events:
		t.Errorf("event after unsubscribing: %v", e.doc)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestEventFilters: a subscription gets only the event types it asked for.
func TestEventFilters(t *testing.T) {
	alerts, all := newReceiver(t), newReceiver(t)
	b, c := sample(t, nil, nil)
	const subs = "/redfish/v1/EventService/Subscriptions"
	for _, s := range []map[string]any{
		{"Destination": alerts.srv.URL, "EventTypes": []string{"Alert"}, "Context": "alerts"},
		{"Destination": all.srv.URL, "Context": "all", "RegistryPrefixes": []string{"ResourceEvent"}},
	} {
		if resp := c.do(http.MethodPost, subs, s); resp.status != http.StatusCreated {
			t.Fatalf("subscribe %v = %d\n%s", s, resp.status, resp.raw)
		}
	}
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "On"})
	if got := record(all.next(t).doc)["MessageId"]; got != "ResourceEvent.1.3.ResourcePoweredOn" {
		t.Errorf("unfiltered subscription got %v first, want ResourcePoweredOn", got)
	}
	if err := b.FailDIMM(1); err != nil {
		t.Fatal(err)
	}
	if got := record(alerts.next(t).doc)["EventType"]; got != "Alert" {
		t.Errorf("Alert subscription got %v, want Alert", got)
	}
	if got := record(all.next(t).doc)["EventType"]; got != "Alert" {
		t.Errorf("unfiltered subscription got %v, want the Alert", got)
	}
}

func TestSubscribeErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    any
		wantIDs []string
	}{
		{"no destination", map[string]any{"Protocol": "Redfish"}, []string{"Base.CreateFailedMissingReqProperties"}},
		{"not a URL", map[string]any{"Destination": "controller:8443"}, []string{"Base.PropertyValueFormatError"}},
		{"SNMP", map[string]any{"Destination": "http://x/", "Protocol": "SNMPv2c"}, []string{"Base.PropertyValueNotInList"}},
		{"bad event type", map[string]any{"Destination": "http://x/", "EventTypes": []string{"Gossip"}}, []string{"Base.PropertyValueNotInList"}},
		{"event types not a list", map[string]any{"Destination": "http://x/", "EventTypes": "Alert"}, []string{"Base.PropertyValueTypeError"}},
		{"bad headers", map[string]any{"Destination": "http://x/", "HttpHeaders": []any{"Authorization: x"}}, []string{"Base.PropertyValueTypeError"}},
		{"unknown property", map[string]any{"Destination": "http://x/", "Colour": "red"}, []string{"Base.PropertyUnknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := sample(t, nil, nil)
			resp := c.do(http.MethodPost, "/redfish/v1/EventService/Subscriptions", tt.body)
			if resp.status != http.StatusBadRequest {
				t.Fatalf("subscribe %v = %d, want 400", tt.body, resp.status)
			}
			if diff := cmp.Diff(tt.wantIDs, resp.messageIDs(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if n := field(c.get("/redfish/v1/EventService/Subscriptions"), "Members@odata.count"); n != 0.0 {
				t.Errorf("Members@odata.count = %v after a refused subscription, want 0", n)
			}
		})
	}
}
