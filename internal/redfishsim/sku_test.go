package redfishsim_test

import (
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/redfish"
	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

// TestForSKU reads the inventory of a machine built to each built-in SKU
// through the Redfish client and validates it against the SKU: it passes,
// and fails naming the memory once a DIMM fails.
func TestForSKU(t *testing.T) {
	cat := machine.Builtin()
	for _, sku := range cat.Machines() {
		t.Run(sku.ID, func(t *testing.T) {
			m := redfishsim.ForSKU(sku, "SN-"+sku.ID)
			b := redfishsim.New(m, testOptions(t, nil))
			s := serve(t, b)
			c, err := redfish.Dial(t.Context(), redfish.Config{Endpoint: s.URL, Username: user, Password: password})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(t.Context())
			want := machine.Expected{Serial: m.SerialNumber, BootMAC: m.BootMAC()}
			validate := func() []machine.Finding {
				t.Helper()
				sys, err := c.HostSystem(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				inv, err := c.Inventory(t.Context(), sys)
				if err != nil {
					t.Fatal(err)
				}
				return machine.ValidateHardware(sku, want, inv.Hardware())
			}
			if got := validate(); len(got) != 0 {
				t.Fatalf("ValidateHardware(ForSKU(%s)) = %v, want no findings", sku.ID, got)
			}
			if err := b.FailDIMM(0); err != nil {
				t.Fatal(err)
			}
			got := validate()
			if len(got) != 1 || got[0].Part != "memory" || !strings.Contains(got[0].Message, "Critical") {
				t.Errorf("after FailDIMM(0): findings = %v, want one memory finding naming the Critical DIMM", got)
			}
		})
	}
}

// TestForSKUMACs checks that the derived MACs are distinct per machine
// and per port, and that the boot MAC is the first port's.
func TestForSKUMACs(t *testing.T) {
	sku, _ := machine.Builtin().Machine(machine.SKUCompute)
	seen := map[string]string{}
	for _, serial := range []string{"A1", "A2", "B1"} {
		m := redfishsim.ForSKU(sku, serial)
		macs := []string{m.BMCMAC()}
		for _, n := range m.NICs {
			macs = append(macs, n.MACAddress)
		}
		if m.BootMAC() != m.NICs[0].MACAddress {
			t.Errorf("%s: BootMAC = %s, want the first port's %s", serial, m.BootMAC(), m.NICs[0].MACAddress)
		}
		for _, mac := range macs {
			if _, ok := machine.NormalizeMAC(mac); !ok {
				t.Errorf("%s: %q is not a MAC", serial, mac)
			}
			if other, dup := seen[mac]; dup {
				t.Errorf("%s and %s share the MAC %s", serial, other, mac)
			}
			seen[mac] = serial
		}
	}
}
