package audit_test

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/audit"
)

func TestNewEvent(t *testing.T) {
	bmm := "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.NetworkCloud/bareMetalMachines/bmm1"
	at := time.Date(2026, 11, 23, 15, 35, 2, 78076500, time.FixedZone("CET", 3600))
	got := audit.NewEvent(audit.EventInfo{
		Time:            at,
		EventDataID:     "e1",
		CorrelationID:   "c1",
		OperationName:   "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action",
		Role:            "Contributor",
		Caller:          "alice@citadel.local",
		Claims:          map[string]string{"oid": "o1", "appid": "a1"},
		ClientIP:        "10.0.0.7",
		ClientRequestID: "r1",
		Method:          "POST",
		ResourceID:      bmm,
		Status:          audit.StatusAccepted,
		StatusCode:      202,
		Properties:      map[string]string{"message": "custom"},
		TenantID:        "t1",
	})
	utc := at.UTC()
	want := audit.Event{
		Authorization:  audit.Authorization{Action: "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action", Role: "Contributor", Scope: bmm},
		Caller:         "alice@citadel.local",
		Channels:       "Operation",
		Claims:         map[string]string{"oid": "o1", "appid": "a1"},
		CorrelationID:  "c1",
		EventDataID:    "e1",
		EventName:      audit.LocalizableString{Value: "EndRequest", LocalizedValue: "End request"},
		Category:       audit.LocalizableString{Value: "Administrative", LocalizedValue: "Administrative"},
		EventTimestamp: utc, SubmissionTimestamp: utc,
		HTTPRequest:          audit.HTTPRequest{ClientRequestID: "r1", ClientIPAddress: "10.0.0.7", Method: "POST"},
		ID:                   bmm + "/events/e1/ticks/639310413020780765",
		Level:                "Informational",
		OperationID:          "c1",
		OperationName:        audit.LocalizableString{Value: "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action", LocalizedValue: "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action"},
		Properties:           map[string]string{"message": "custom", "eventCategory": "Administrative", "entity": bmm, "statusCode": "Accepted"},
		ResourceGroupName:    "rg1",
		ResourceProviderName: audit.LocalizableString{Value: "Microsoft.NetworkCloud", LocalizedValue: "Microsoft.NetworkCloud"},
		ResourceID:           bmm,
		ResourceType:         audit.LocalizableString{Value: "Microsoft.NetworkCloud/bareMetalMachines", LocalizedValue: "Microsoft.NetworkCloud/bareMetalMachines"},
		Status:               audit.LocalizableString{Value: "Accepted", LocalizedValue: "Accepted"},
		SubStatus:            audit.LocalizableString{Value: "Accepted", LocalizedValue: "Accepted (HTTP Status Code: 202)"},
		SubscriptionID:       "sub1",
		TenantID:             "t1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewEvent() mismatch (-want +got):\n%s", diff)
	}
}

func TestNewEventDerived(t *testing.T) {
	tests := []struct {
		name string
		in   audit.EventInfo
		want func(e audit.Event) map[string]string
		out  map[string]string
	}{
		{
			name: "resource group",
			in:   audit.EventInfo{ResourceID: "/subscriptions/s/resourceGroups/rg", Status: audit.StatusSucceeded, StatusCode: 201},
			out: map[string]string{"rg": "rg", "sub": "s", "provider": "Microsoft.Resources", "type": "Microsoft.Resources/subscriptions/resourceGroups",
				"level": "Informational", "eventName": "EndRequest", "subStatus": "Created", "subStatusLocalized": "Created (HTTP Status Code: 201)"},
		},
		{
			name: "subscription",
			in:   audit.EventInfo{ResourceID: "/subscriptions/s", Status: audit.StatusStarted},
			out: map[string]string{"rg": "", "sub": "s", "provider": "Microsoft.Resources", "type": "Microsoft.Resources/subscriptions",
				"level": "Informational", "eventName": "BeginRequest", "subStatus": "", "subStatusLocalized": ""},
		},
		{
			name: "child resource, refused",
			in: audit.EventInfo{ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.NetworkCloud/virtualMachines/vm/consoles/default",
				Status: audit.StatusFailed, StatusCode: 403},
			out: map[string]string{"rg": "rg", "sub": "s", "provider": "Microsoft.NetworkCloud", "type": "Microsoft.NetworkCloud/virtualMachines/consoles",
				"level": "Error", "eventName": "EndRequest", "subStatus": "Forbidden", "subStatusLocalized": "Forbidden (HTTP Status Code: 403)"},
		},
		{
			name: "extension resource",
			in: audit.EventInfo{ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default",
				Status: audit.StatusSucceeded, StatusCode: 204, Level: "Warning"},
			out: map[string]string{"rg": "rg", "sub": "s", "provider": "Microsoft.AzureStackHCI", "type": "Microsoft.AzureStackHCI/virtualMachineInstances",
				"level": "Warning", "eventName": "EndRequest", "subStatus": "NoContent", "subStatusLocalized": "No Content (HTTP Status Code: 204)"},
		},
		{
			name: "explicit subStatus, odd id",
			in:   audit.EventInfo{ResourceID: "/weird", Status: audit.StatusFailed, SubStatus: "Conflict", StatusCode: 409},
			out: map[string]string{"rg": "", "sub": "", "provider": "", "type": "",
				"level": "Error", "eventName": "EndRequest", "subStatus": "Conflict", "subStatusLocalized": "Conflict"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := audit.NewEvent(tt.in)
			got := map[string]string{
				"rg": e.ResourceGroupName, "sub": e.SubscriptionID,
				"provider": e.ResourceProviderName.Value, "type": e.ResourceType.Value,
				"level": e.Level, "eventName": e.EventName.Value,
				"subStatus": e.SubStatus.Value, "subStatusLocalized": e.SubStatus.LocalizedValue,
			}
			if diff := cmp.Diff(tt.out, got); diff != "" {
				t.Errorf("NewEvent(%+v) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestNewEventGeneratesID: generated eventDataIds are UUIDs (version 7)
// that ascend in the order the events are made, so that each event's key
// goes at the end of the store's index.
func TestNewEventGeneratesID(t *testing.T) {
	a := audit.NewEvent(audit.EventInfo{Time: t0, ResourceID: "/subscriptions/s"})
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(a.EventDataID) {
		t.Errorf("NewEvent().EventDataID = %q, want a version 7 UUID", a.EventDataID)
	}
	if want := "/subscriptions/s/events/" + a.EventDataID + "/ticks/639310449020780760"; a.ID != want {
		t.Errorf("NewEvent().ID = %q, want %q", a.ID, want)
	}
	prev := a.EventDataID
	for range 10000 {
		id := audit.NewEvent(audit.EventInfo{Time: t0, ResourceID: "/subscriptions/s"}).EventDataID
		if id <= prev {
			t.Fatalf("NewEvent() eventDataId %q after %q, want ascending ids", id, prev)
		}
		prev = id
	}
}

func TestTicks(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int64
	}{
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Unix(0, 0), 621355968000000000},
		{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 630822816000000000},
		{time.Date(2000, 1, 1, 0, 0, 0, 199, time.UTC), 630822816000000001},
		{time.Date(2000, 1, 1, 1, 0, 0, 0, time.FixedZone("", 3600)), 630822816000000000},
	}
	for _, tt := range tests {
		if got := audit.Ticks(tt.t); got != tt.want {
			t.Errorf("Ticks(%v) = %d, want %d", tt.t, got, tt.want)
		}
	}
}

// TestEventJSON checks the wire shape az and the Azure SDKs decode.
func TestEventJSON(t *testing.T) {
	e := testEvent(3)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"authorization", "caller", "channels", "claims", "correlationId", "description", "eventDataId",
		"eventName", "category", "eventTimestamp", "submissionTimestamp", "httpRequest", "id", "level", "operationId",
		"operationName", "properties", "resourceGroupName", "resourceProviderName", "resourceId", "resourceType",
		"status", "subStatus", "subscriptionId", "tenantId"} {
		if _, ok := m[k]; !ok {
			t.Errorf("json.Marshal(Event) has no %q: %s", k, b)
		}
	}
	if got, want := m["eventTimestamp"], "2026-11-23T15:35:05.078076Z"; got != want {
		t.Errorf("eventTimestamp = %v, want %v", got, want)
	}
	if got := m["status"].(map[string]any)["localizedValue"]; got != "Failed" {
		t.Errorf("status.localizedValue = %v, want Failed", got)
	}
}
