package audit_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/audit"
)

func TestParseFilter(t *testing.T) {
	from := time.Date(2026, 11, 23, 15, 35, 2, 78076000, time.UTC)
	to := from.Add(time.Hour)
	tests := []struct {
		in   string
		want audit.Filter
	}{
		// What az monitor activity-log list -g rg1 --offset 1h sends.
		{"eventTimestamp ge 2026-11-23T15:35:02.078076 and eventTimestamp le 2026-11-23T16:35:02.078076 and resourceGroupName eq 'rg1'",
			audit.Filter{From: from, To: to, ResourceGroupName: "rg1"}},
		{"eventTimestamp ge '2026-11-23T15:35:02.078076Z'", audit.Filter{From: from}},
		{"eventTimestamp ge '2026-11-23T16:35:02.078076+01:00'", audit.Filter{From: from}},
		{"eventTimestamp ge 2026-11-23", audit.Filter{From: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}},
		{"EVENTTIMESTAMP GE 2026-11-23T15:35:02.078076 AND Status Eq Failed", audit.Filter{From: from, Status: "Failed"}},
		{"eventTimestamp le '2026-11-23T16:35:02.078076Z' and eventTimestamp ge '2026-11-23T15:35:02.078076Z'", audit.Filter{From: from, To: to}},
		{"eventTimestamp ge 2026-11-23T15:35:02.078076 and resourceUri eq '/subscriptions/s/resourceGroups/rg/providers/Microsoft.NetworkCloud/bareMetalMachines/b1'",
			audit.Filter{From: from, ResourceURI: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.NetworkCloud/bareMetalMachines/b1"}},
		{"eventTimestamp ge 2026-11-23T15:35:02.078076 and resourceProvider eq 'Microsoft.NetworkCloud'", audit.Filter{From: from, ResourceProvider: "Microsoft.NetworkCloud"}},
		{"eventTimestamp ge 2026-11-23T15:35:02.078076 and correlationId eq '1c2e3f'", audit.Filter{From: from, CorrelationID: "1c2e3f"}},
		{"eventTimestamp ge 2026-11-23T15:35:02.078076 and caller eq 'o''brien@citadel.local'", audit.Filter{From: from, Caller: "o'brien@citadel.local"}},
		{"eventTimestamp ge 2026-11-23T15:35:02.078076 and subscriptionId eq 'sub1'", audit.Filter{From: from, SubscriptionID: "sub1"}},
		{"eventTimestamp ge 2026-11-23T15:35:02.078076 and eventChannels eq 'Admin, Operation'", audit.Filter{From: from}},
		{"  eventTimestamp\tge  2026-11-23T15:35:02.078076  and resourceGroupName eq 'a and b' ", audit.Filter{From: from, ResourceGroupName: "a and b"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := audit.ParseFilter(tt.in)
			if err != nil {
				t.Fatalf("ParseFilter(%q) error = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseFilter(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			again, err := audit.ParseFilter(got.String())
			if err != nil || !cmp.Equal(again, got) {
				t.Errorf("ParseFilter(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	const ge = "eventTimestamp ge 2026-11-23T15:35:02 and "
	tests := []struct {
		in, msg string
	}{
		{"", "The $filter must contain eventTimestamp ge"},
		{"resourceGroupName eq 'rg'", "The $filter must contain eventTimestamp ge"},
		{"eventTimestamp le 2026-11-23", "The $filter must contain eventTimestamp ge"},
		{"eventTimestamp ge yesterday", "is not a time"},
		{"eventTimestamp gt 2026-11-23", "supports ge and le"},
		{"eventTimestamp ge 2026-11-23 and eventTimestamp ge 2026-11-24", "given twice"},
		{"eventTimestamp ge 2026-11-24 and eventTimestamp le 2026-11-23", "is before"},
		{ge + "resourceGroupName ne 'rg'", "supports eq only"},
		{ge + "resourceGroupName eq 'rg' and resourceGroupName eq 'rg2'", "given twice"},
		{ge + "level eq 'Error'", "not supported"},
		{ge + "resourceGroupName eq ''", "empty"},
		{ge + "resourceGroupName eq 'rg", "not closed"},
		{ge + "resourceGroupName eq", "incomplete"},
		{ge + "resourceGroupName eq 'rg' or caller eq 'x'", "expected 'and'"},
		{ge + "resourceGroupName eq 'rg' and", "incomplete"},
		{"'eventTimestamp' ge 2026-11-23", "expected <field>"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := audit.ParseFilter(tt.in)
			if !errors.Is(err, audit.ErrBadFilter) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParseFilter(%q) error = %v, want ErrBadFilter containing %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	e := testEvent(3) // rg0, bmm3, user3, Failed, at t0+3s
	at := e.EventTimestamp
	tests := []struct {
		name string
		f    audit.Filter
		want bool
	}{
		{"in range", audit.Filter{From: at.Add(-time.Second), To: at.Add(time.Second)}, true},
		{"inclusive ends", audit.Filter{From: at, To: at}, true},
		{"open end", audit.Filter{From: at}, true},
		{"too early", audit.Filter{From: at.Add(time.Nanosecond)}, false},
		{"too late", audit.Filter{From: at.Add(-time.Hour), To: at.Add(-time.Nanosecond)}, false},
		{"resource group, any case", audit.Filter{From: at, ResourceGroupName: "RG0"}, true},
		{"other resource group", audit.Filter{From: at, ResourceGroupName: "rg1"}, false},
		{"resource uri", audit.Filter{From: at, ResourceURI: strings.ToLower(e.ResourceID)}, true},
		{"other resource uri", audit.Filter{From: at, ResourceURI: e.ResourceID + "x"}, false},
		{"provider", audit.Filter{From: at, ResourceProvider: "microsoft.networkcloud"}, true},
		{"other provider", audit.Filter{From: at, ResourceProvider: "Microsoft.Compute"}, false},
		{"correlation id", audit.Filter{From: at, CorrelationID: e.CorrelationID}, true},
		{"status", audit.Filter{From: at, Status: "failed"}, true},
		{"other status", audit.Filter{From: at, Status: "Succeeded"}, false},
		{"caller", audit.Filter{From: at, Caller: "user3@citadel.local"}, true},
		{"other caller", audit.Filter{From: at, Caller: "user4@citadel.local"}, false},
		{"subscription", audit.Filter{From: at, SubscriptionID: "sub1"}, true},
		{"all at once", audit.Filter{From: at, To: at, ResourceGroupName: "rg0", Status: "Failed", Caller: "user3@citadel.local", SubscriptionID: "SUB1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(e); got != tt.want {
				t.Errorf("(%v).Match(event) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}

func TestParseSelect(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"  ", nil, false},
		{"eventTimestamp", []string{"eventTimestamp"}, false},
		{"EventTimestamp, operationName ,status,caller,resourceGroupName,correlationId",
			[]string{"eventTimestamp", "operationName", "status", "caller", "resourceGroupName", "correlationId"}, false},
		{"status,STATUS", []string{"status"}, false},
		{"status,,caller", nil, true},
		{"status,bogus", nil, true},
		{"httpRequest/method", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := audit.ParseSelect(tt.in)
			if tt.err {
				if !errors.Is(err, audit.ErrBadSelect) {
					t.Errorf("ParseSelect(%q) error = %v, want ErrBadSelect", tt.in, err)
				}
				return
			}
			if err != nil || !cmp.Equal(got, tt.want) {
				t.Errorf("ParseSelect(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestProject(t *testing.T) {
	e := testEvent(3)
	got := audit.Project(e, []string{"eventTimestamp", "status", "caller"})
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"caller":"user3@citadel.local","eventTimestamp":"2026-11-23T15:35:05.078076Z","status":{"value":"Failed","localizedValue":"Failed"}}`
	if string(b) != want {
		t.Errorf("Project(status, caller, eventTimestamp) = %s, want %s", b, want)
	}
	// All fields: the same JSON object as the event itself.
	all, err := json.Marshal(audit.Project(e, nil))
	if err != nil {
		t.Fatal(err)
	}
	whole, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m1, m2 map[string]any
	if err := json.Unmarshal(all, &m1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(whole, &m2); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m2, m1); diff != "" {
		t.Errorf("Project(nil) differs from the event's JSON (-event +project):\n%s", diff)
	}
}
