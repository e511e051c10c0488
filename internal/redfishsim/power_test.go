package redfishsim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

func TestReset(t *testing.T) {
	tests := []struct {
		name      string
		initial   string
		resetType string
		status    int
		wantIDs   []string
		want      string // PowerState afterwards
	}{
		{"On from Off", "Off", "On", http.StatusNoContent, nil, "On"},
		{"ForceOff from On", "On", "ForceOff", http.StatusNoContent, nil, "Off"},
		{"GracefulShutdown from On", "On", "GracefulShutdown", http.StatusNoContent, nil, "Off"},
		{"GracefulRestart from On", "On", "GracefulRestart", http.StatusNoContent, nil, "On"},
		{"ForceRestart from On", "On", "ForceRestart", http.StatusNoContent, nil, "On"},
		{"PushPowerButton from Off", "Off", "PushPowerButton", http.StatusNoContent, nil, "On"},
		{"PushPowerButton from On", "On", "PushPowerButton", http.StatusNoContent, nil, "Off"},
		{"Nmi while On", "On", "Nmi", http.StatusNoContent, nil, "On"},
		{"On while On", "On", "On", http.StatusBadRequest, []string{"Base.InvalidOperationForSystemState"}, "On"},
		{"ForceOff while Off", "Off", "ForceOff", http.StatusBadRequest, []string{"Base.InvalidOperationForSystemState"}, "Off"},
		{"GracefulShutdown while Off", "Off", "GracefulShutdown", http.StatusBadRequest, []string{"Base.InvalidOperationForSystemState"}, "Off"},
		{"ForceRestart while Off", "Off", "ForceRestart", http.StatusBadRequest, []string{"Base.InvalidOperationForSystemState"}, "Off"},
		{"Nmi while Off", "Off", "Nmi", http.StatusBadRequest, []string{"Base.InvalidOperationForSystemState"}, "Off"},
		{"not allowed here", "Off", "PowerCycle", http.StatusBadRequest, []string{"Base.PropertyValueNotInList"}, "Off"},
		{"not a reset type", "Off", "Explode", http.StatusBadRequest, []string{"Base.PropertyValueNotInList"}, "Off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := sample(t, nil, func(o *redfishsim.Options) { o.InitialPower = tt.initial })
			resp := c.do(http.MethodPost, resetAt, map[string]any{"ResetType": tt.resetType})
			if resp.status != tt.status {
				t.Fatalf("Reset(%s) = %d, want %d\n%s", tt.resetType, resp.status, tt.status, resp.raw)
			}
			if diff := cmp.Diff(tt.wantIDs, resp.messageIDs()); diff != "" {
				t.Errorf("Reset(%s) messages (-want +got):\n%s", tt.resetType, diff)
			}
			if got := field(c.get(system), "PowerState"); got != tt.want {
				t.Errorf("PowerState after Reset(%s) = %v, want %s", tt.resetType, got, tt.want)
			}
			wantResets := 0
			if tt.status == http.StatusNoContent {
				wantResets = 1
			}
			if got := b.ResetCount(); got != wantResets {
				t.Errorf("ResetCount() = %d, want %d", got, wantResets)
			}
		})
	}
}

func TestResetBodyErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    any
		wantIDs []string
	}{
		{"missing ResetType", map[string]any{}, []string{"Base.ActionParameterMissing"}},
		{"empty body", "", []string{"Base.ActionParameterMissing"}},
		{"wrong type", map[string]any{"ResetType": 1}, []string{"Base.ActionParameterValueTypeError"}},
		{"unknown parameter", map[string]any{"ResetType": "On", "Force": true}, []string{"Base.ActionParameterUnknown"}},
		{"malformed", `{"ResetType":`, []string{"Base.MalformedJSON"}},
		{"not an object", `["On"]`, []string{"Base.MalformedJSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := sample(t, nil, nil)
			resp := c.do(http.MethodPost, resetAt, tt.body)
			if resp.status != http.StatusBadRequest {
				t.Fatalf("Reset(%v) = %d, want 400", tt.body, resp.status)
			}
			if diff := cmp.Diff(tt.wantIDs, resp.messageIDs()); diff != "" {
				t.Errorf("Reset(%v) messages (-want +got):\n%s", tt.body, diff)
			}
			if got := b.PowerState(); got != "Off" {
				t.Errorf("PowerState() = %s, want Off", got)
			}
		})
	}
}

// TestPowerDelays follows the transitional states on a clock the test
// moves: a restart goes PoweringOff, PoweringOn, On.
func TestPowerDelays(t *testing.T) {
	clk := newClock()
	b, c := sample(t, clk, func(o *redfishsim.Options) {
		o.PowerOnDelay, o.PowerOffDelay = 10*time.Second, 5*time.Second
	})
	state := func() any { return field(c.get(system), "PowerState") }

	if resp := c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "On"}); resp.status != http.StatusNoContent {
		t.Fatalf("Reset(On) = %d, want 204", resp.status)
	}
	steps := []struct {
		advance time.Duration
		want    string
	}{{0, "PoweringOn"}, {9 * time.Second, "PoweringOn"}, {time.Second, "On"}}
	for _, s := range steps {
		clk.Advance(s.advance)
		if got := state(); got != s.want {
			t.Fatalf("PowerState after %v more = %v, want %s", s.advance, got, s.want)
		}
	}
	resp := c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "GracefulRestart"})
	if resp.status != http.StatusNoContent {
		t.Fatalf("Reset(GracefulRestart) = %d, want 204", resp.status)
	}
	if got := state(); got != "PoweringOff" {
		t.Fatalf("PowerState right after GracefulRestart = %v, want PoweringOff", got)
	}
	// In transition, only ForceOff is accepted.
	resp = c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "On"})
	if diff := cmp.Diff([]string{"Base.InvalidOperationForSystemState"}, resp.messageIDs()); resp.status != http.StatusBadRequest || diff != "" {
		t.Errorf("Reset(On) while PoweringOff = %d, messages (-want +got):\n%s", resp.status, diff)
	}
	clk.Advance(5 * time.Second)
	if got := state(); got != "PoweringOn" {
		t.Fatalf("PowerState 5 s into GracefulRestart = %v, want PoweringOn", got)
	}
	clk.Advance(10 * time.Second)
	if got := b.PowerState(); got != "On" {
		t.Fatalf("PowerState() 15 s into GracefulRestart = %s, want On", got)
	}

	// ForceOff cuts a restart short: Off at once, and no boot follows.
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "GracefulRestart"})
	if resp := c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "ForceOff"}); resp.status != http.StatusNoContent {
		t.Fatalf("Reset(ForceOff) while PoweringOff = %d, want 204\n%s", resp.status, resp.raw)
	}
	for _, advance := range []time.Duration{0, time.Minute} {
		clk.Advance(advance)
		if got := state(); got != "Off" {
			t.Fatalf("PowerState %v after ForceOff = %v, want Off", advance, got)
		}
	}
}

// TestPowerDelayRealTime checks that the transition completes on its own,
// with the real clock, as a client polling PowerState sees it.
func TestPowerDelayRealTime(t *testing.T) {
	b, c := sample(t, nil, func(o *redfishsim.Options) { o.PowerOnDelay = 50 * time.Millisecond })
	start := time.Now()
	if resp := c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "On"}); resp.status != http.StatusNoContent {
		t.Fatalf("Reset(On) = %d, want 204", resp.status)
	}
	if got := field(c.get(system), "PowerState"); got != "PoweringOn" && time.Since(start) < 50*time.Millisecond {
		t.Errorf("PowerState right after Reset(On) = %v, want PoweringOn", got)
	}
	for field(c.get(system), "PowerState") != "On" {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("PowerState is %s 5 s after Reset(On), want On", b.PowerState())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSetPowerState(t *testing.T) {
	b, c := sample(t, nil, nil)
	if err := b.SetPowerState("On"); err != nil {
		t.Fatalf("SetPowerState(On) error = %v", err)
	}
	if got := field(c.get(system), "PowerState"); got != "On" {
		t.Errorf("PowerState after SetPowerState(On) = %v, want On", got)
	}
	if err := b.SetPowerState("PoweringOn"); err == nil {
		t.Errorf("SetPowerState(PoweringOn) error = nil, want an error")
	}
	if err := b.SetPowerState("Off"); err != nil {
		t.Fatalf("SetPowerState(Off) error = %v", err)
	}
	if got := b.PowerState(); got != "Off" {
		t.Errorf("PowerState() = %s, want Off", got)
	}
}
