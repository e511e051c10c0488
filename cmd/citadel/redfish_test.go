package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

// TestRedfishCommands runs `citadel redfish inventory` and `citadel
// redfish power` against a simulated BMC over TLS.
func TestRedfishCommands(t *testing.T) {
	b := redfishsim.New(redfishsim.SampleMachine("CLI0001"), redfishsim.Options{
		Username: "root", Password: "calvin", PowerOnDelay: 50 * time.Millisecond, PowerOffDelay: 50 * time.Millisecond,
	})
	s, err := redfishsim.Serve(b, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		// The command, the BMC's flags, then the test's (which win).
		full := append([]string{args[0], "--endpoint", s.URL, "--username", "root", "--password", "calvin", "--fingerprint", s.Fingerprint}, args[1:]...)
		err := runRedfish(t.Context(), full, &out)
		return out.String(), err
	}

	out, err := run("inventory")
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	var inv struct {
		SerialNumber string
		Processors   []any
		MemoryGiB    float64
	}
	if err := json.Unmarshal([]byte(out), &inv); err != nil || inv.SerialNumber != "CLI0001" || len(inv.Processors) == 0 || inv.MemoryGiB != 384 {
		t.Errorf("inventory printed %q (%v), want the machine's JSON inventory", out, err)
	}

	for _, step := range []struct{ args []string }{
		{[]string{"power", "status"}}, {[]string{"power", "on"}}, {[]string{"power", "restart"}},
		{[]string{"power", "off", "--force"}}, {[]string{"power", "status"}},
	} {
		if _, err := run(step.args...); err != nil {
			t.Fatalf("%s: %v", strings.Join(step.args, " "), err)
		}
	}
	if out, _ := run("power", "status"); strings.TrimSpace(out) != "Off" || b.PowerState() != "Off" {
		t.Errorf("power status after off = %q, BMC %s; want Off", out, b.PowerState())
	}
	if b.ResetCount() < 3 {
		t.Errorf("the BMC saw %d resets, want on, restart and off", b.ResetCount())
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"power", "sideways"}, `unknown power action "sideways"`},
		{[]string{"inventory", "--password", "wrong"}, "401"},
		{[]string{"inventory", "--fingerprint", strings.Repeat("0", 64)}, "fingerprint"},
	} {
		if _, err := run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
