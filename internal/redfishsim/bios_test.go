package redfishsim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/redfish"
	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

const (
	bios         = system + "/Bios"
	biosSettings = bios + "/Settings"
)

// TestBIOSSettingsApplyAtBoot: the Bios is read-only, a PATCH of its
// settings object waits there, and the next boot (not a shutdown) applies
// it.
func TestBIOSSettingsApplyAtBoot(t *testing.T) {
	b, c := sample(t, nil, func(o *redfishsim.Options) { o.InitialPower = "On" })
	if got := field(c.get(system), "Bios", "@odata.id"); got != bios {
		t.Fatalf("the system links Bios %v, want %s", got, bios)
	}
	if got := field(c.get(bios), "@Redfish.Settings", "SettingsObject", "@odata.id"); got != biosSettings {
		t.Fatalf("the Bios links the settings object %v, want %s", got, biosSettings)
	}
	if got := field(c.get(bios), "Attributes", "ProcTurboMode"); got != "Enabled" {
		t.Fatalf("ProcTurboMode = %v, want Enabled", got)
	}
	if resp := c.do(http.MethodPatch, bios, map[string]any{"Attributes": map[string]any{"ProcTurboMode": "Disabled"}}); resp.status != http.StatusBadRequest {
		t.Errorf("PATCH of the Bios itself = %d, want 400 (its settings object takes changes)\n%s", resp.status, resp.raw)
	}
	resp := c.do(http.MethodPatch, biosSettings, map[string]any{"Attributes": map[string]any{"ProcTurboMode": "Disabled"},
		"@Redfish.SettingsApplyTime": map[string]any{"ApplyTime": "OnReset"}})
	if resp.status != http.StatusNoContent {
		t.Fatalf("PATCH %s = %d, want 204\n%s", biosSettings, resp.status, resp.raw)
	}
	pending := map[string]any{"ProcTurboMode": "Disabled"}
	check := func(when, current string, pendingWant map[string]any) {
		t.Helper()
		if got := b.BIOSAttributes()["ProcTurboMode"]; got != current {
			t.Errorf("%s: ProcTurboMode = %v, want %s", when, got, current)
		}
		if got := field(c.get(bios), "Attributes", "ProcTurboMode"); got != current {
			t.Errorf("%s: GET %s ProcTurboMode = %v, want %s", when, bios, got, current)
		}
		if diff := cmp.Diff(pendingWant, b.PendingBIOSAttributes()); diff != "" {
			t.Errorf("%s: pending (-want +got):\n%s", when, diff)
		}
		if diff := cmp.Diff(pendingWant, field(c.get(biosSettings), "Attributes")); diff != "" {
			t.Errorf("%s: GET %s Attributes (-want +got):\n%s", when, biosSettings, diff)
		}
	}
	check("staged", "Enabled", pending)
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "ForceOff"})
	check("after ForceOff", "Enabled", pending)
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "On"})
	check("after the boot", "Disabled", map[string]any{})
}

func TestBIOSPatchErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    any
		wantIDs []string
	}{
		{"unknown attribute", map[string]any{"Attributes": map[string]any{"NoSuchKnob": "On"}}, []string{"Base.PropertyUnknown"}},
		{"a number for a string", map[string]any{"Attributes": map[string]any{"BootMode": 1}}, []string{"Base.PropertyValueTypeError"}},
		{"an object for a string", map[string]any{"Attributes": map[string]any{"BootMode": map[string]any{}}}, []string{"Base.PropertyValueTypeError"}},
		{"Attributes not an object", map[string]any{"Attributes": "BootMode=Uefi"}, []string{"Base.PropertyValueTypeError"}},
		{"apply time not simulated", map[string]any{"Attributes": map[string]any{"BootMode": "Bios"}, "@Redfish.SettingsApplyTime": map[string]any{"ApplyTime": "Immediate"}},
			[]string{"Base.PropertyValueNotInList"}},
		{"read-only member", map[string]any{"Id": "x"}, []string{"Base.PropertyNotWritable"}},
		{"one good, one bad: nothing staged", map[string]any{"Attributes": map[string]any{"BootMode": "Bios", "Colour": "blue"}}, []string{"Base.PropertyUnknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := sample(t, nil, nil)
			resp := c.do(http.MethodPatch, biosSettings, tt.body)
			if resp.status != http.StatusBadRequest {
				t.Fatalf("PATCH %v = %d, want 400\n%s", tt.body, resp.status, resp.raw)
			}
			if diff := cmp.Diff(tt.wantIDs, resp.messageIDs()); diff != "" {
				t.Errorf("PATCH messages (-want +got):\n%s", diff)
			}
			if got := b.PendingBIOSAttributes(); len(got) != 0 {
				t.Errorf("a refused PATCH staged %v", got)
			}
		})
	}
}

func TestSetBIOSAttribute(t *testing.T) {
	b, c := sample(t, nil, nil)
	if err := b.SetBIOSAttribute("ProcVirtualization", "Disabled"); err != nil {
		t.Fatal(err)
	}
	if got := field(c.get(bios), "Attributes", "ProcVirtualization"); got != "Disabled" {
		t.Errorf("ProcVirtualization after SetBIOSAttribute = %v, want Disabled", got)
	}
	if err := b.SetBIOSAttribute("NoSuchKnob", "On"); err == nil {
		t.Error("SetBIOSAttribute(NoSuchKnob) = nil, want an error: the BIOS has no such attribute")
	}
	if err := b.SetBIOSAttribute("BootMode", []string{"Uefi"}); err == nil {
		t.Error("SetBIOSAttribute(BootMode, a list) = nil, want an error")
	}
}

// TestClientBIOS drives the BIOS of a machine built to the compute SKU,
// and of both DMTF mockups, with the Redfish client: the SKU's settings
// are what it reads, SetBIOS stages changes and a restart applies them.
func TestClientBIOS(t *testing.T) {
	sku, _ := machine.Builtin().Machine(machine.SKUCompute)
	generated := func(t *testing.T, opts redfishsim.Options) *redfishsim.BMC {
		opts.InitialPower = "On"
		return redfishsim.New(redfishsim.ForSKU(sku, "SN-BIOS"), opts)
	}
	fromMockup := func(name string) func(t *testing.T, opts redfishsim.Options) *redfishsim.BMC {
		return func(t *testing.T, opts redfishsim.Options) *redfishsim.BMC {
			b, err := redfishsim.FromMockup(mockup(t, name), opts)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	for _, tt := range []struct {
		name   string
		bmc    func(t *testing.T, opts redfishsim.Options) *redfishsim.BMC
		before map[string]any // some of the attributes as read first
		change map[string]any
		after  map[string]any      // some of the attributes after the restart
		drift  []machine.DriftItem // against the compute SKU, after the restart; nil: not checked
	}{
		{"compute SKU", generated,
			map[string]any{"BootMode": "Uefi", "ProcVirtualization": "Enabled", "SriovGlobalEnable": "Enabled", "LogicalProc": "Enabled", "ProcTurboMode": "Enabled"},
			map[string]any{"ProcVirtualization": "Enabled", "SriovGlobalEnable": "Disabled"},
			map[string]any{"ProcVirtualization": "Enabled", "SriovGlobalEnable": "Disabled", "ProcTurboMode": "Enabled"},
			[]machine.DriftItem{{Item: "bios/SriovGlobalEnable", Desired: "Enabled", Observed: "Disabled"}}},
		{"DMTF rackmount1", fromMockup("dmtf-public-rackmount1"),
			map[string]any{"ProcTurboMode": "Enabled", "ProcCoreDisable": float64(0), "NicBoot2": "Disabled"},
			map[string]any{"ProcTurboMode": "Enabled", "ProcCoreDisable": 2},
			// The mockup's own pending settings apply too.
			map[string]any{"ProcTurboMode": "Enabled", "ProcCoreDisable": float64(2), "NicBoot2": "NetworkBoot"}, nil},
		{"DMTF tower", fromMockup("dmtf-public-tower"),
			map[string]any{"ProcTurboMode": "Enabled", "EmbeddedSata": "Raid"},
			map[string]any{"PowerProfile": "Balanced"},
			map[string]any{"PowerProfile": "Balanced", "EmbeddedSata": "RAID"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t, nil)
			opts.PowerOnDelay, opts.PowerOffDelay = 20*time.Millisecond, 20*time.Millisecond
			b := tt.bmc(t, opts)
			s := serve(t, b)
			ctx := t.Context()
			c, err := redfish.Dial(ctx, redfish.Config{Endpoint: s.URL, Username: user, Password: password, PowerTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			sys, err := c.HostSystem(ctx)
			if err != nil {
				t.Fatal(err)
			}
			some := func(attrs map[string]any, like map[string]any) map[string]any {
				out := map[string]any{}
				for k := range like {
					out[k] = attrs[k]
				}
				return out
			}
			got, err := c.BIOS(ctx, sys)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.before, some(got, tt.before)); diff != "" {
				t.Errorf("BIOS() (-want +got):\n%s", diff)
			}
			if err := c.SetBIOS(ctx, sys, tt.change); err != nil {
				t.Fatalf("SetBIOS(%v) = %v", tt.change, err)
			}
			if again, _ := c.BIOS(ctx, sys); !cmp.Equal(got, again) {
				t.Errorf("BIOS() changed before a reset: %v, then %v", got, again)
			}
			if err := c.Restart(ctx, sys, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			got, err = c.BIOS(ctx, sys)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.after, some(got, tt.after)); diff != "" {
				t.Errorf("BIOS() after the restart (-want +got):\n%s", diff)
			}
			if p := b.PendingBIOSAttributes(); len(p) != 0 {
				t.Errorf("still pending after the restart: %v", p)
			}
			if tt.drift != nil {
				if diff := cmp.Diff(tt.drift, machine.BIOSDrift(sku, got)); diff != "" {
					t.Errorf("BIOSDrift after the restart (-want +got):\n%s", diff)
				}
			}
		})
	}
}
