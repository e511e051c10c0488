package redfishsim_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

// TestMockupServesEveryFile loads each DMTF mockup and fetches every file
// over HTTP: JSON resources come back as in the mockup (plus the media
// actions and query features the loader adds), other files byte for byte.
func TestMockupServesEveryFile(t *testing.T) {
	for _, name := range []string{"dmtf-public-rackmount1", "dmtf-public-tower"} {
		t.Run(name, func(t *testing.T) {
			dir := mockup(t, name)
			b, err := redfishsim.FromMockup(dir, testOptions(t, nil))
			if err != nil {
				t.Fatalf("FromMockup() error = %v", err)
			}
			c := newClient(t, serve(t, b))
			n := 0
			err = filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				n++
				rel, _ := filepath.Rel(dir, name)
				rel = filepath.ToSlash(rel)
				url := path.Clean("/redfish/v1/" + rel)
				if base := path.Base(rel); base == "index.json" || base == "index.xml" {
					url = path.Clean("/redfish/v1/" + path.Dir(rel))
				}
				want, err := os.ReadFile(name)
				if err != nil {
					return err
				}
				resp := c.do(http.MethodGet, url, nil)
				if resp.status != http.StatusOK {
					t.Errorf("GET %s (%s) = %d, want 200", url, rel, resp.status)
					return nil
				}
				if path.Base(rel) != "index.json" {
					if !bytes.Equal(resp.raw, want) {
						t.Errorf("GET %s differs from %s", url, rel)
					}
					return nil
				}
				var wantObj map[string]any
				if err := json.Unmarshal(want, &wantObj); err != nil {
					return err
				}
				got := resp.body
				if url == "/redfish/v1" {
					delete(got, "ProtocolFeaturesSupported")
					delete(wantObj, "ProtocolFeaturesSupported")
				}
				if t, _ := got["@odata.type"].(string); len(t) > 14 && t[:14] == "#VirtualMedia." {
					actions := got["Actions"].(map[string]any)
					delete(actions, "#VirtualMedia.InsertMedia")
					delete(actions, "#VirtualMedia.EjectMedia")
					if len(actions) == 0 {
						delete(got, "Actions")
					}
				}
				if diff := cmp.Diff(wantObj, got); diff != "" {
					t.Errorf("GET %s differs from %s (-want +got):\n%s", url, rel, diff)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n < 100 {
				t.Errorf("walked %d files of %s, want the whole mockup", n, name)
			}
		})
	}
}

// TestMockupReimage drives a reimage on each mockup, with its virtual media
// where the mockup puts it: under the system (rackmount1) or the manager
// (tower).
func TestMockupReimage(t *testing.T) {
	tests := []struct {
		mockup, system, media string
	}{
		{"dmtf-public-rackmount1", "/redfish/v1/Systems/437XR1138R2", "/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD1"},
		{"dmtf-public-tower", "/redfish/v1/Systems/437XR1238R2", "/redfish/v1/Managers/BMC/VirtualMedia/CD1"},
	}
	for _, tt := range tests {
		t.Run(tt.mockup, func(t *testing.T) {
			b, err := redfishsim.FromMockup(mockup(t, tt.mockup), testOptions(t, nil))
			if err != nil {
				t.Fatalf("FromMockup() error = %v", err)
			}
			c := newClient(t, serve(t, b))
			const image = "http://images.example/os/citadel-os-1.2.iso"
			steps := []struct {
				method, path string
				body         any
				want         int
			}{
				{"POST", tt.media + "/Actions/VirtualMedia.EjectMedia", map[string]any{}, http.StatusNoContent},
				{"POST", tt.media + "/Actions/VirtualMedia.InsertMedia", map[string]any{"Image": image, "Inserted": true, "WriteProtected": true}, http.StatusNoContent},
				{"PATCH", tt.system, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "UEFI"}}, http.StatusNoContent},
				{"POST", tt.system + "/Actions/ComputerSystem.Reset", map[string]any{"ResetType": "ForceRestart"}, http.StatusNoContent},
			}
			for _, s := range steps {
				if resp := c.do(s.method, s.path, s.body); resp.status != s.want {
					t.Fatalf("%s %s = %d, want %d\n%s", s.method, s.path, resp.status, s.want, resp.raw)
				}
			}
			if got := b.BootedImage(); got != image {
				t.Errorf("BootedImage() = %q, want %q", got, image)
			}
			if got := b.Reimages(); got != 1 {
				t.Errorf("Reimages() = %d, want 1", got)
			}
			if got := field(c.get(tt.system), "Boot", "BootSourceOverrideEnabled"); got != "Disabled" {
				t.Errorf("BootSourceOverrideEnabled after the boot = %v, want Disabled", got)
			}
			if got := field(c.get(tt.media), "ImageName"); got != "citadel-os-1.2.iso" {
				t.Errorf("ImageName = %v, want citadel-os-1.2.iso", got)
			}
		})
	}
}

func TestFromMockupErrors(t *testing.T) {
	empty := t.TempDir()
	notJSON := t.TempDir()
	if err := os.WriteFile(filepath.Join(notJSON, "index.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"missing": filepath.Join(empty, "nope"), "empty": empty, "bad JSON": notJSON} {
		if _, err := redfishsim.FromMockup(dir, redfishsim.Options{}); err == nil {
			t.Errorf("FromMockup(%s) error = nil, want an error", name)
		}
	}
	if _, err := redfishsim.FromMockup(mockup(t, "dmtf-public-tower"), redfishsim.Options{InitialPower: "Sideways"}); err == nil {
		t.Errorf("FromMockup(InitialPower: Sideways) error = nil, want an error")
	}
}
