package redfishsim_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

func TestBootOverrideOnce(t *testing.T) {
	b, c := sample(t, nil, func(o *redfishsim.Options) { o.InitialPower = "On" })
	resp := c.do(http.MethodPatch, system, map[string]any{"Boot": map[string]any{
		"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "UEFI"}})
	if resp.status != http.StatusNoContent {
		t.Fatalf("PATCH Boot = %d, want 204\n%s", resp.status, resp.raw)
	}
	want := redfishsim.Boot{Target: "Pxe", Enabled: "Once", Mode: "UEFI"}
	if got := b.BootOverride(); got != want {
		t.Errorf("BootOverride() after PATCH = %+v, want %+v", got, want)
	}
	if got := field(c.get(system), "Boot", "BootSourceOverrideEnabled"); got != "Once" {
		t.Errorf("BootSourceOverrideEnabled = %v, want Once", got)
	}
	// A shutdown is not a boot: the override stays.
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "ForceOff"})
	if got := b.BootOverride().Enabled; got != "Once" {
		t.Errorf("BootSourceOverrideEnabled after ForceOff = %s, want Once", got)
	}
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "On"})
	if got := field(c.get(system), "Boot", "BootSourceOverrideEnabled"); got != "Disabled" {
		t.Errorf("BootSourceOverrideEnabled after the boot = %v, want Disabled", got)
	}
	if got := b.Reimages(); got != 0 {
		t.Errorf("Reimages() after a PXE boot = %d, want 0", got)
	}

	// Continuous stays.
	c.do(http.MethodPatch, system, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Continuous"}})
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "ForceRestart"})
	if got := b.BootOverride().Enabled; got != "Continuous" {
		t.Errorf("BootSourceOverrideEnabled after a boot = %s, want Continuous", got)
	}
}

func TestPatchErrors(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		body    any
		status  int
		wantIDs []string
	}{
		{"target not allowed", system, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Floppy"}}, 400, []string{"Base.PropertyValueNotInList"}},
		{"target not a string", system, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": 3}}, 400, []string{"Base.PropertyValueTypeError"}},
		{"bad enabled", system, map[string]any{"Boot": map[string]any{"BootSourceOverrideEnabled": "Twice"}}, 400, []string{"Base.PropertyValueNotInList"}},
		{"Boot not an object", system, map[string]any{"Boot": "Cd"}, 400, []string{"Base.PropertyValueTypeError"}},
		{"read-only property", system, map[string]any{"PowerState": "On"}, 400, []string{"Base.PropertyNotWritable"}},
		{"read-only nested property", system, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget@Redfish.AllowableValues": []string{"Cd"}}}, 400, []string{"Base.PropertyNotWritable"}},
		{"unknown property", system, map[string]any{"Colour": "blue"}, 400, []string{"Base.PropertyUnknown"}},
		{"one bad, one good: nothing applied", system, map[string]any{"AssetTag": "rack-7", "SerialNumber": "X"}, 400, []string{"Base.PropertyNotWritable"}},
		{"every problem named", system, map[string]any{"Model": "X", "Boot": map[string]any{"BootSourceOverrideMode": "BIOS"}}, 400, []string{"Base.PropertyValueNotInList", "Base.PropertyNotWritable"}},
		{"empty object", system, map[string]any{}, 400, []string{"Base.EmptyJSON"}},
		{"malformed", system, `{"Boot":`, 400, []string{"Base.MalformedJSON"}},
		{"media is not PATCHed", cd, map[string]any{"Image": "http://x/y.iso", "Inserted": true}, 400, []string{"Base.PropertyNotWritable", "Base.PropertyNotWritable"}},
		{"read-only resource", "/redfish/v1/Chassis/1", map[string]any{"AssetTag": "x"}, 400, []string{"Base.PropertyUnknown"}},
		{"not found", system + "/Nope", map[string]any{"AssetTag": "x"}, 404, []string{"Base.ResourceNotFound"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := sample(t, nil, nil)
			before := c.do(http.MethodGet, tt.path, nil).raw
			resp := c.do(http.MethodPatch, tt.path, tt.body)
			if resp.status != tt.status {
				t.Fatalf("PATCH %s %v = %d, want %d\n%s", tt.path, tt.body, resp.status, tt.status, resp.raw)
			}
			if diff := cmp.Diff(tt.wantIDs, resp.messageIDs()); diff != "" {
				t.Errorf("PATCH messages (-want +got):\n%s", diff)
			}
			if after := c.do(http.MethodGet, tt.path, nil).raw; string(after) != string(before) {
				t.Errorf("a refused PATCH changed %s:\nbefore %s\nafter  %s", tt.path, before, after)
			}
		})
	}
}

func TestETag(t *testing.T) {
	_, c := sample(t, nil, nil)
	resp := c.do(http.MethodGet, system, nil)
	tag := resp.header.Get("ETag")
	if tag == "" {
		t.Fatal("GET of the system has no ETag")
	}
	if again := c.do(http.MethodGet, system, nil).header.Get("ETag"); again != tag {
		t.Errorf("ETag changed without a change: %s then %s", tag, again)
	}
	patch := map[string]any{"AssetTag": "rack-7"}
	if resp := c.do(http.MethodPatch, system, patch, "If-Match", `"stale"`); resp.status != http.StatusPreconditionFailed {
		t.Errorf("PATCH with a stale If-Match = %d, want 412", resp.status)
	} else if diff := cmp.Diff([]string{"Base.PreconditionFailed"}, resp.messageIDs()); diff != "" {
		t.Errorf("412 messages (-want +got):\n%s", diff)
	}
	resp = c.do(http.MethodPatch, system, patch, "If-Match", tag)
	if resp.status != http.StatusNoContent {
		t.Fatalf("PATCH with the current If-Match = %d, want 204\n%s", resp.status, resp.raw)
	}
	newTag := resp.header.Get("ETag")
	if newTag == "" || newTag == tag {
		t.Errorf("ETag after PATCH = %q, want a new one (was %s)", newTag, tag)
	}
	if got := c.do(http.MethodGet, system, nil).header.Get("ETag"); got != newTag {
		t.Errorf("GET ETag = %s, want the one PATCH returned, %s", got, newTag)
	}
	if resp := c.do(http.MethodPatch, system, patch, "If-Match", tag); resp.status != http.StatusPreconditionFailed {
		t.Errorf("PATCH with the old ETag = %d, want 412", resp.status)
	}
	for _, m := range []string{"*", "W/" + newTag, `"other", ` + newTag} {
		if resp := c.do(http.MethodPatch, system, patch, "If-Match", m); resp.status != http.StatusNoContent {
			t.Errorf("PATCH with If-Match %s = %d, want 204", m, resp.status)
		}
	}
	if got := field(c.get(system), "AssetTag"); got != "rack-7" {
		t.Errorf("AssetTag = %v, want rack-7", got)
	}
}
