package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// TestSimCommands runs `citadel sim machines` and `citadel sim fault`
// against the fault API of a small simulated site, whose agents run
// against a control plane that is down (they keep retrying to join).
func TestSimCommands(t *testing.T) {
	site, err := sim.Start(sim.Spec{Name: "cli", ComputeRacks: 3, MachinesPerRack: 1},
		sim.Options{BMC: redfishsim.Options{Username: "root", Password: "pw", InitialPower: "On"}})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	api := httptest.NewServer(site.FaultHandler())
	defer api.Close()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runSim(t.Context(), append(args, "--sim", api.URL), &out)
		return out.String(), err
	}

	// Before the agents start, the faults say they cannot act.
	if _, err := run("fault", "power-off", "--machine", "clir1m1"); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("fault power-off before the agents start: error %v, want a 409", err)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if err := site.StartAgents(sim.AgentOptions{Server: down.URL, Token: "token",
		MachineID: func(name string) string { return "/machines/" + name },
		Logger:    slog.New(slog.NewTextHandler(t.Output(), nil))}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		want string // in the output
	}{
		{[]string{"machines"}, "clir3m1  3     1     On     running"},
		{[]string{"fault", "power-off", "--machine", "clir1m1"}, "power-off clir1m1: power Off, agent stopped"},
		{[]string{"machines"}, "clir1m1  1     1     Off    stopped"},
		{[]string{"fault", "--rack", "2", "partition"}, "partition rack 2: cut off"},
		{[]string{"fault", "heal", "--rack", "2"}, "heal rack 2: reachable again"},
		{[]string{"fault", "rack-power-off", "--rack", "0"}, "rack-power-off rack 0: power Off, agents stopped"},
		{[]string{"machines"}, "clic1    0     1     Off    stopped"},
		{[]string{"fault", "drift", "--machine", "clir2m1"}, "drift clir2m1: the host reports kernel"},
		{[]string{"fault", "bios-drift", "--machine", "clir2m1"}, "bios-drift clir2m1: BIOS attribute LogicalProc changed by hand from Enabled to Disabled"},
	} {
		out, err := run(tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("citadel sim %s = %q, %v; want output containing %q", strings.Join(tc.args, " "), out, err, tc.want)
		}
	}
	if p := site.Machine("clir1m1").BMC.PowerState(); p != "Off" {
		t.Errorf("clir1m1 is %s after fault power-off, want Off", p)
	}

	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"fault", "melt", "--machine", "clir1m1"}, `400 Bad Request: fault: "melt" is not one of`},
		{[]string{"fault", "power-off"}, "400 Bad Request: machine: required for power-off"},
		{[]string{"fault", "partition", "--machine", "clir1m1"}, "400 Bad Request: rack: required for partition"},
		{[]string{"fault", "power-off", "--machine", "nope"}, "404 Not Found"},
		{[]string{"fault", "heal", "--rack", "9"}, "404 Not Found"},
		{[]string{"fault"}, "usage: citadel sim fault"},
		{[]string{"machines", "extra"}, "unexpected arguments"},
		{[]string{"reboot"}, `unknown sim command "reboot"`},
	} {
		if _, err := run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("citadel sim %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestListenSimControl: the fault API, which has no authentication,
// listens on loopback only.
func TestListenSimControl(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		listen bool
	}{
		{"", false}, {"127.0.0.1:0", true}, {"[::1]:0", true}, {"localhost:0", true},
		{"0.0.0.0:0", false}, {":0", false}, {"example.com:8445", false}, {"127.0.0.1", false},
	} {
		ln, err := listenSimControl(tc.addr)
		if ln != nil {
			ln.Close()
		}
		if tc.listen && err != nil && !strings.Contains(err.Error(), "cannot assign") {
			t.Errorf("listenSimControl(%q) error %v, want a listener", tc.addr, err)
		}
		if !tc.listen && ln != nil {
			t.Errorf("listenSimControl(%q) listens at %s, want no listener", tc.addr, ln.Addr())
		}
		if !tc.listen && tc.addr != "" && err == nil {
			t.Errorf("listenSimControl(%q): no error, want one", tc.addr)
		}
	}
}
