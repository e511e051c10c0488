package redfish

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// mockupBIOS is the current BIOS of both DMTF mockups.
var mockupBIOS = map[string]any{
	"AdminPhone": "", "BootMode": "Uefi", "EmbeddedSata": "Raid", "NicBoot1": "NetworkBoot", "NicBoot2": "Disabled",
	"PowerProfile": "MaxPerf", "ProcCoreDisable": float64(0), "ProcHyperthreading": "Enabled", "ProcTurboMode": "Enabled",
	"UsbControl": "UsbEnabled",
}

func TestBIOS(t *testing.T) {
	tests := []struct {
		name   string
		mockup string
		bend   bend
		system string
	}{
		{"DMTF rackmount1", rackmount1, bend{}, rackSystem},
		{"DMTF tower", tower, bend{}, towerSystem},
		{"HPE iLO: lower-case Bios link", rackmount1, bend{lowercaseLinks: true}, rackSystem},
		{"HPE iLO: trailing slashes", rackmount1, bend{trailingSlash: true}, rackSystem + "/"},
		{"Dell: ids with ':' and '.'", rackmount1, bend{rename: map[string]string{"437XR1138R2": "System.Embedded.1"}}, "/redfish/v1/Systems/System.Embedded.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBMC(t, tt.mockup, tt.bend)
			synctest.Test(t, func(t *testing.T) {
				got, err := dialFake(t, f).BIOS(t.Context(), tt.system)
				if err != nil {
					t.Fatalf("BIOS(%s) = %v", tt.system, err)
				}
				if diff := cmp.Diff(mockupBIOS, got); diff != "" {
					t.Errorf("BIOS(%s) mismatch (-want +got):\n%s", tt.system, diff)
				}
			})
		})
	}
}

func TestSetBIOS(t *testing.T) {
	const (
		bios     = rackSystem + "/Bios"
		settings = bios + "/Settings"
	)
	change := map[string]any{"ProcTurboMode": "Disabled", "ProcCoreDisable": 2}
	tests := []struct {
		name        string
		bend        bend
		attrs       map[string]any
		wantPatches []patch
		wantIfMatch []string
		wantBIOS    map[string]any // the current attributes after SetBIOS
		wantErr     string
	}{
		{"settings object (DMTF): staged for the next reset", bend{}, change,
			[]patch{{settings, map[string]any{"Attributes": map[string]any{"ProcTurboMode": "Disabled", "ProcCoreDisable": float64(2)}}}},
			[]string{""}, mockupBIOS, ""},
		{"settings object that applies OnReset (Dell): asked for", bend{biosApplyTimes: []string{"Immediate", "OnReset"}}, change,
			[]patch{{settings, map[string]any{"Attributes": map[string]any{"ProcTurboMode": "Disabled", "ProcCoreDisable": float64(2)},
				"@Redfish.SettingsApplyTime": map[string]any{"ApplyTime": "OnReset"}}}},
			[]string{""}, mockupBIOS, ""},
		{"settings object linked in lower case (HPE iLO)", bend{lowercaseLinks: true}, map[string]any{"NicBoot2": "NetworkBoot"},
			[]patch{{settings, map[string]any{"Attributes": map[string]any{"NicBoot2": "NetworkBoot"}}}}, []string{""}, mockupBIOS, ""},
		{"no settings object: the Bios itself", bend{noBIOSSettings: true}, change,
			[]patch{{bios, map[string]any{"Attributes": map[string]any{"ProcTurboMode": "Disabled", "ProcCoreDisable": float64(2)}}}},
			[]string{""}, with(mockupBIOS, map[string]any{"ProcTurboMode": "Disabled", "ProcCoreDisable": float64(2)}), ""},
		{"no settings object, ETag changed once", bend{noBIOSSettings: true, etag: true, stale412: 1}, map[string]any{"BootMode": "LegacyBios"},
			[]patch{{bios, map[string]any{"Attributes": map[string]any{"BootMode": "LegacyBios"}}}},
			[]string{`W/"gen-0"`, `W/"gen-1"`}, with(mockupBIOS, map[string]any{"BootMode": "LegacyBios"}), ""},
		{"unknown attribute", bend{}, map[string]any{"SriovGlobalEnable": "Enabled"}, nil, []string{""}, mockupBIOS, "PropertyUnknown"},
		{"nothing to change", bend{}, nil, nil, nil, mockupBIOS, ""},
		{"no Bios (Supermicro X10)", bend{noBIOS: true}, change, nil, nil, nil, ErrNoBIOS.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBMC(t, rackmount1, tt.bend)
			synctest.Test(t, func(t *testing.T) {
				c := dialFake(t, f)
				err := c.SetBIOS(t.Context(), rackSystem, tt.attrs)
				if !errorContains(err, tt.wantErr) {
					t.Fatalf("SetBIOS() = %v, want an error containing %q", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantPatches, f.patches, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("PATCHes mismatch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantIfMatch, f.ifMatch, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("If-Match mismatch (-want +got):\n%s", diff)
				}
				if tt.bend.lowercaseLinks && f.count("PATCH "+strings.ToLower(bios)+"/Settings") != 1 {
					t.Errorf("requests %q, want one PATCH of the settings object as linked in lower case, then corrected", f.requests)
				}
				got, err := c.BIOS(t.Context(), rackSystem)
				if tt.wantBIOS == nil {
					if !errors.Is(err, ErrNoBIOS) {
						t.Errorf("BIOS() = %v, %v, want ErrNoBIOS", got, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.wantBIOS, got); diff != "" {
					t.Errorf("BIOS() after SetBIOS mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// with is m changed by change, as a new map.
func with(m, change map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range change {
		out[k] = v
	}
	return out
}
