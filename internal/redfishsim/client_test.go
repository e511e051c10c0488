package redfishsim_test

import (
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/redfish"
	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

// TestClientOnMockups drives both shared DMTF mockups, served over TLS by
// the simulator, with the Redfish client as the control plane does: the
// inventory, a power cycle, a boot override read back, virtual media
// inserted and ejected, and a reimage.
func TestClientOnMockups(t *testing.T) {
	for _, name := range []string{"dmtf-public-rackmount1", "dmtf-public-tower"} {
		t.Run(name, func(t *testing.T) {
			opts := testOptions(t, nil)
			opts.PowerOnDelay, opts.PowerOffDelay = 30*time.Millisecond, 30*time.Millisecond
			b, err := redfishsim.FromMockup(mockup(t, name), opts)
			if err != nil {
				t.Fatal(err)
			}
			s, err := redfishsim.Serve(b, true)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			ctx := t.Context()
			c, err := redfish.Dial(ctx, redfish.Config{Endpoint: s.URL, Username: user, Password: password,
				Fingerprint: s.Fingerprint, PowerTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			sys, err := c.HostSystem(ctx)
			if err != nil {
				t.Fatal(err)
			}

			inv, err := c.Inventory(ctx, sys)
			if err != nil {
				t.Fatal(err)
			}
			if inv.SerialNumber == "" || len(inv.Processors) == 0 || inv.MemoryGiB == 0 || len(inv.NICs) == 0 {
				t.Errorf("inventory = %+v, want a serial number, processors, memory and NICs", inv)
			}

			if err := c.PowerOff(ctx, sys, false, 5*time.Second); err != nil {
				t.Fatalf("PowerOff: %v", err)
			}
			if got := b.PowerState(); got != "Off" {
				t.Errorf("after PowerOff: %s", got)
			}
			if err := c.PowerOn(ctx, sys); err != nil {
				t.Fatalf("PowerOn: %v", err)
			}
			if err := c.Restart(ctx, sys, 5*time.Second); err != nil {
				t.Fatalf("Restart: %v", err)
			}
			if got := b.PowerState(); got != "On" {
				t.Errorf("after PowerOn and Restart: %s", got)
			}

			if err := c.SetBootOverride(ctx, sys, redfish.BootOverride{Target: "Pxe", Enabled: "Once"}); err != nil {
				t.Fatalf("SetBootOverride: %v", err)
			}
			if got := b.BootOverride(); got.Target != "Pxe" || got.Enabled != "Once" {
				t.Errorf("boot override = %+v, want Pxe Once", got)
			}

			const image = "http://images.test/host.iso"
			if err := c.InsertMedia(ctx, sys, image); err != nil {
				t.Fatalf("InsertMedia: %v", err)
			}
			if got := b.MediaImage(); got != image {
				t.Errorf("media after insert = %q", got)
			}
			if err := c.EjectMedia(ctx, sys); err != nil {
				t.Fatalf("EjectMedia: %v", err)
			}
			// (rackmount1 has a second CD drive with an image of its own.)
			if got := b.MediaImage(); got == image {
				t.Errorf("media after eject = %q, want it gone", got)
			}

			if err := c.Reimage(ctx, sys, image, nil); err != nil {
				t.Fatalf("Reimage: %v", err)
			}
			if b.BootedImage() != image || b.Reimages() != 1 || b.PowerState() != "On" {
				t.Errorf("after Reimage: booted %q, %d reimages, power %s", b.BootedImage(), b.Reimages(), b.PowerState())
			}
		})
	}
}
