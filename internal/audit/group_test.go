package audit

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func groupEvent(i int, status string, props map[string]string) Event {
	return NewEvent(EventInfo{
		Time:          time.Date(2026, 12, 5, 7, 0, i, 0, time.UTC),
		EventDataID:   fmt.Sprintf("00000000-0000-0000-0000-%012d", i),
		CorrelationID: "11111111-0000-0000-0000-000000000001",
		OperationName: "Microsoft.ManagedNetworkFabric/ipPrefixes/write",
		Caller:        "admin@citadel.local",
		Claims:        map[string]string{"oid": "oid-1", "appid": "app-1"},
		ClientIP:      "10.0.0.7",
		Method:        "PUT",
		ResourceID:    "/subscriptions/sub1/resourceGroups/rg/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p1",
		Status:        status,
		StatusCode:    map[string]int{StatusStarted: 0, StatusAccepted: 201, StatusFailed: 400}[status],
		Properties:    props,
	})
}

// TestEventLines: the events of a write, stored together, read back as
// each event's own stored form.
func TestEventLines(t *testing.T) {
	tests := []struct {
		name   string
		events []Event
	}{
		{"one event", []Event{groupEvent(1, StatusAccepted, nil)}},
		{"started and accepted", []Event{groupEvent(1, StatusStarted, nil), groupEvent(2, StatusAccepted, nil)}},
		{"a field only the first has", []Event{groupEvent(1, StatusFailed, map[string]string{"statusMessage": "no"}), groupEvent(2, StatusAccepted, nil)}},
		{"a field only the second has", []Event{groupEvent(1, StatusStarted, nil), groupEvent(2, StatusFailed, map[string]string{"statusMessage": "no"}), groupEvent(3, StatusStarted, nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			value := encodeEvents(tc.events)
			lines := eventLines(value)
			if len(lines) != len(tc.events) {
				t.Fatalf("%d lines, want %d", len(lines), len(tc.events))
			}
			for i, e := range tc.events {
				if want := encodeEvent(e); !bytes.Equal(lines[i], want) {
					t.Errorf("line %d = %s, want %s", i, lines[i], want)
				}
			}
		})
	}
	// A tampered line does not decode; the others still do.
	value := encodeEvents([]Event{groupEvent(1, StatusStarted, nil), groupEvent(2, StatusAccepted, nil), groupEvent(3, StatusFailed, nil)})
	parts := bytes.Split(value, []byte{'\n'})
	parts[1] = []byte(`{"status":`)
	lines := eventLines(bytes.Join(parts, []byte{'\n'}))
	if _, err := decodeEvent(lines[1]); err == nil {
		t.Errorf("a broken line decodes: %s", lines[1])
	}
	if e, err := decodeEvent(lines[2]); err != nil || e.EventDataID != groupEvent(3, StatusFailed, nil).EventDataID {
		t.Errorf("the line after a broken one = %v, %v", e.EventDataID, err)
	}
}
