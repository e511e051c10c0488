package redfishsim_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

const (
	insertAt = cd + "/Actions/VirtualMedia.InsertMedia"
	ejectAt  = cd + "/Actions/VirtualMedia.EjectMedia"
)

func TestVirtualMedia(t *testing.T) {
	b, c := sample(t, nil, nil)
	const image = "http://images.example/citadel/os-2.0.iso"
	steps := []struct {
		name    string
		path    string
		body    any
		status  int
		wantIDs []string
	}{
		{"eject when empty", ejectAt, map[string]any{}, 400, []string{"Base.NoOperation"}},
		{"insert without an image", insertAt, map[string]any{"Inserted": true}, 400, []string{"Base.ActionParameterMissing"}},
		{"insert with a bad protocol", insertAt, map[string]any{"Image": image, "TransferProtocolType": "NFS"}, 400, []string{"Base.PropertyValueNotInList"}},
		{"insert with an unknown parameter", insertAt, map[string]any{"Image": image, "Colour": "red"}, 400, []string{"Base.ActionParameterUnknown"}},
		{"insert", insertAt, map[string]any{"Image": image, "Inserted": true, "WriteProtected": true, "TransferProtocolType": "HTTP", "TransferMethod": "Stream"}, 204, nil},
		{"insert again", insertAt, map[string]any{"Image": image}, 400, []string{"Base.ResourceInUse"}},
	}
	for _, s := range steps {
		resp := c.do(http.MethodPost, s.path, s.body)
		if resp.status != s.status {
			t.Fatalf("%s: POST %s = %d, want %d\n%s", s.name, s.path, resp.status, s.status, resp.raw)
		}
		if diff := cmp.Diff(s.wantIDs, resp.messageIDs()); diff != "" {
			t.Errorf("%s: messages (-want +got):\n%s", s.name, diff)
		}
	}
	vm := c.get(cd)
	want := map[string]any{"Image": image, "ImageName": "os-2.0.iso", "Inserted": true, "ConnectedVia": "URI", "WriteProtected": true}
	for k, v := range want {
		if vm[k] != v {
			t.Errorf("%s = %v, want %v", k, vm[k], v)
		}
	}
	if got := b.MediaImage(); got != image {
		t.Errorf("MediaImage() = %q, want %q", got, image)
	}

	// Boot from the CD: that is a reimage.
	c.do(http.MethodPatch, system, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}})
	if resp := c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "On"}); resp.status != http.StatusNoContent {
		t.Fatalf("Reset(On) = %d, want 204", resp.status)
	}
	if got, n := b.BootedImage(), b.Reimages(); got != image || n != 1 {
		t.Errorf("BootedImage(), Reimages() = %q, %d; want %q, 1", got, n, image)
	}
	// The next boot is from the disk again.
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "ForceRestart"})
	if n := b.Reimages(); n != 1 {
		t.Errorf("Reimages() after a boot from disk = %d, want 1", n)
	}

	if resp := c.do(http.MethodPost, ejectAt, map[string]any{}); resp.status != http.StatusNoContent {
		t.Fatalf("eject = %d, want 204\n%s", resp.status, resp.raw)
	}
	vm = c.get(cd)
	for k, v := range map[string]any{"Image": nil, "Inserted": false, "ConnectedVia": "NotConnected"} {
		if vm[k] != v {
			t.Errorf("after eject %s = %v, want %v", k, vm[k], v)
		}
	}
	if got := b.MediaImage(); got != "" {
		t.Errorf("MediaImage() after eject = %q, want empty", got)
	}
	if got := b.BootedImage(); got != image {
		t.Errorf("BootedImage() after eject = %q, want the installed %q", got, image)
	}
}

// TestBootFromEmptyCd: with no media the firmware falls back to the disk.
func TestBootFromEmptyCd(t *testing.T) {
	b, c := sample(t, nil, nil)
	c.do(http.MethodPatch, system, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}})
	c.do(http.MethodPost, resetAt, map[string]any{"ResetType": "On"})
	if got, n := b.BootedImage(), b.Reimages(); got != "" || n != 0 {
		t.Errorf("BootedImage(), Reimages() = %q, %d; want empty, 0", got, n)
	}
}

func TestFetchImages(t *testing.T) {
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/os.iso":
			w.WriteHeader(http.StatusOK)
		case "/get-only.iso": // some servers refuse HEAD
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			w.Write([]byte("ISO"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(images.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name    string
		image   string
		status  int
		wantIDs []string
	}{
		{"reachable", images.URL + "/os.iso", 204, nil},
		{"HEAD refused, GET works", images.URL + "/get-only.iso", 204, nil},
		{"not found", images.URL + "/missing.iso", 400, []string{"Base.ResourceMissingAtURI"}},
		{"unreachable", closed.URL + "/os.iso", 400, []string{"Base.CouldNotEstablishConnection"}},
		{"not a URL", "os.iso", 400, []string{"Base.ActionParameterValueFormatError"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := sample(t, nil, func(o *redfishsim.Options) { o.FetchImages, o.HTTPClient = true, images.Client() })
			resp := c.do(http.MethodPost, insertAt, map[string]any{"Image": tt.image})
			if resp.status != tt.status {
				t.Fatalf("InsertMedia(%s) = %d, want %d\n%s", tt.image, resp.status, tt.status, resp.raw)
			}
			if diff := cmp.Diff(tt.wantIDs, resp.messageIDs()); diff != "" {
				t.Errorf("InsertMedia(%s) messages (-want +got):\n%s", tt.image, diff)
			}
			want := ""
			if tt.status == 204 {
				want = tt.image
			}
			if got := b.MediaImage(); got != want {
				t.Errorf("MediaImage() = %q, want %q", got, want)
			}
		})
	}
}

// TestVirtualMediaPlacement generates media under the system, the manager
// or nowhere, as different vendors do.
func TestVirtualMediaPlacement(t *testing.T) {
	tests := []struct {
		under, systemLink, managerLink string
	}{
		{"", system + "/VirtualMedia", ""},
		{"System", system + "/VirtualMedia", ""},
		{"Manager", "", "/redfish/v1/Managers/BMC/VirtualMedia"},
		{"None", "", ""},
	}
	for _, tt := range tests {
		t.Run("under "+tt.under, func(t *testing.T) {
			m := redfishsim.SampleMachine("SN1234")
			m.VirtualMediaUnder = tt.under
			c := newClient(t, serve(t, redfishsim.New(m, testOptions(t, nil))))
			sysLink, _ := field(c.get(system), "VirtualMedia", "@odata.id").(string)
			mgrLink, _ := field(c.get("/redfish/v1/Managers/BMC"), "VirtualMedia", "@odata.id").(string)
			if sysLink != tt.systemLink || mgrLink != tt.managerLink {
				t.Fatalf("VirtualMedia links: system %q, manager %q; want %q, %q", sysLink, mgrLink, tt.systemLink, tt.managerLink)
			}
			if link := sysLink + mgrLink; link != "" {
				members := c.get(link)["Members"].([]any)
				if len(members) != 1 {
					t.Fatalf("%s lists %d members, want 1", link, len(members))
				}
				media := field(members[0].(map[string]any), "@odata.id").(string)
				if resp := c.do(http.MethodPost, media+"/Actions/VirtualMedia.InsertMedia", map[string]any{"Image": "http://x/a.iso"}); resp.status != http.StatusNoContent {
					t.Errorf("InsertMedia on %s = %d, want 204", media, resp.status)
				}
			}
		})
	}
}
