package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/storage"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

// faultSite starts a site of three compute racks of one machine each,
// with a fault API. With agents, they run the real agent code against a
// control plane that is down, so they keep retrying to join: the faults
// still stop and start them and change what their hosts report.
func faultSite(t *testing.T, agents bool) (*Site, *httptest.Server) {
	t.Helper()
	s, err := Start(Spec{Name: "f", ComputeRacks: 3, MachinesPerRack: 1},
		Options{BMC: redfishsim.Options{Username: "root", Password: "pw", InitialPower: "On"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if agents {
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		if err := s.StartAgents(AgentOptions{Server: down.URL, Token: "token",
			MachineID: func(name string) string { return "/machines/" + name },
			Logger:    slog.New(slog.NewTextHandler(t.Output(), nil))}); err != nil {
			t.Fatal(err)
		}
	}
	api := httptest.NewServer(s.FaultHandler())
	t.Cleanup(api.Close)
	return s, api
}

func post(t *testing.T, api *httptest.Server, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(api.URL+"/faults", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST /faults %s: %v", body, err)
	}
	return resp.StatusCode, out
}

func TestFaultRequests(t *testing.T) {
	site, api := faultSite(t, false)
	for _, tc := range []struct {
		body       string
		wantStatus int
		wantField  string // of a 400
	}{
		{`not json`, 400, "body"},
		{`{}`, 400, "fault"},
		{`{"fault": "melt", "machine": "fr1m1"}`, 400, "fault"},
		{`{"fault": "power-off"}`, 400, "machine"},
		{`{"fault": "power-off", "machine": "fr1m1", "rack": 1}`, 400, "rack"},
		{`{"fault": "partition"}`, 400, "rack"},
		{`{"fault": "partition", "rack": "one"}`, 400, "rack"},
		{`{"fault": "heal", "rack": 1, "machine": "fr1m1"}`, 400, "machine"},
		{`{"fault": "drift", "machine": "fr1m1", "colour": "red"}`, 400, "body"},
		{`{"fault": "power-off", "machine": "nope"}`, 404, ""},
		{`{"fault": "rack-power-off", "rack": 4}`, 404, ""},
		{`{"fault": "partition", "rack": -1}`, 404, ""},
		// Without agents, every fault says so.
		{`{"fault": "agent-crash", "machine": "fr1m1"}`, 409, ""},
		{`{"fault": "power-off", "machine": "fr1m1"}`, 409, ""},
		{`{"fault": "partition", "rack": 0}`, 409, ""},
		{`{"fault": "san-degrade", "machine": "fr1m1"}`, 400, "machine"},
		{`{"fault": "san-recover", "rack": 0}`, 400, "rack"},
		// The storage appliance has no agent.
		{`{"fault": "san-degrade"}`, 200, ""},
	} {
		status, out := post(t, api, tc.body)
		if field, _ := out["field"].(string); status != tc.wantStatus || field != tc.wantField {
			t.Errorf("POST /faults %s = %d %v, want %d naming field %q", tc.body, status, out, tc.wantStatus, tc.wantField)
		}
		if status == 409 && !strings.Contains(out["error"].(string), "agents are not started") {
			t.Errorf("POST /faults %s: error %q, want one saying the agents are not started", tc.body, out["error"])
		}
	}
	if health, why := site.SAN.Driver().Health(); health != storage.HealthDegraded || why != sanDegraded {
		t.Errorf("after san-degrade the appliance is %s (%q), want Degraded", health, why)
	}
}

func TestFaults(t *testing.T) {
	s, api := faultSite(t, true)
	memory := func(name string) uint64 {
		inv, err := s.agentHost(name).Inventory(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return inv.MemoryBytes
	}
	full := memory("fr1m1")
	dimm := uint64(s.Machine("fr1m1").Hardware.DIMMs[0].CapacityMiB) << 20

	// state is what a step leaves: each machine's power and agent.
	type state struct {
		Power string
		Agent bool
	}
	up, off, stopped := state{"On", true}, state{"Off", false}, state{"On", false}
	for _, tc := range []struct {
		body       string
		wantStatus int
		want       map[string]state
		check      func() error
	}{
		{body: `{"fault": "power-off", "machine": "fr1m1"}`, wantStatus: 200, want: map[string]state{"fr1m1": off, "fr2m1": up}},
		{body: `{"fault": "agent-start", "machine": "fr1m1"}`, wantStatus: 409, want: map[string]state{"fr1m1": off}},
		{body: `{"fault": "power-on", "machine": "fr1m1"}`, wantStatus: 200, want: map[string]state{"fr1m1": up}},
		{body: `{"fault": "agent-crash", "machine": "fr1m1"}`, wantStatus: 200, want: map[string]state{"fr1m1": stopped}},
		{body: `{"fault": "agent-start", "machine": "fr1m1"}`, wantStatus: 200, want: map[string]state{"fr1m1": up}},
		{body: `{"fault": "agent-hang", "machine": "fc1"}`, wantStatus: 200, want: map[string]state{"fc1": up},
			check: func() error { return answers(s, "fc1", false) }},
		{body: `{"fault": "agent-resume", "machine": "fc1"}`, wantStatus: 200, want: map[string]state{"fc1": up},
			check: func() error { return answers(s, "fc1", true) }},
		{body: `{"fault": "rack-power-off", "rack": 0}`, wantStatus: 200,
			want: map[string]state{"fc1": off, "fc2": off, "fc3": off, "fr1m1": up}},
		{body: `{"fault": "rack-power-on", "rack": 0}`, wantStatus: 200, want: map[string]state{"fc1": up, "fc2": up, "fc3": up}},
		{body: `{"fault": "partition", "rack": 2}`, wantStatus: 200, want: map[string]state{"fr2m1": stopped, "fr3m1": up},
			check: func() error { return reachable(s.Machine("fr2m1"), false) }},
		{body: `{"fault": "heal", "rack": 2}`, wantStatus: 200, want: map[string]state{"fr2m1": up},
			check: func() error { return reachable(s.Machine("fr2m1"), true) }},
		{body: `{"fault": "fail-dimm", "machine": "fr1m1"}`, wantStatus: 200, want: map[string]state{"fr1m1": up},
			check: func() error { return wantMemory(memory("fr1m1"), full-dimm) }},
		{body: `{"fault": "fail-dimm", "machine": "fr1m1"}`, wantStatus: 200,
			check: func() error { return wantMemory(memory("fr1m1"), full-2*dimm) }},
		{body: `{"fault": "fail-dimm", "machine": "fr3m1"}`, wantStatus: 200,
			check: func() error { return wantMemory(memory("fr3m1"), full-dimm) }},
		{body: `{"fault": "drift", "machine": "fr3m1"}`, wantStatus: 200, check: func() error {
			if inv, _ := s.agentHost("fr3m1").Inventory(t.Context()); inv.OS.Kernel != driftedKernel {
				return fmt.Errorf("the host reports kernel %s, want %s", inv.OS.Kernel, driftedKernel)
			}
			return nil
		}},
		// The compute SKU's BIOS settings, in name order: BootMode Uefi,
		// then LogicalProc Enabled, the first to turn off.
		{body: `{"fault": "bios-drift", "machine": "fr3m1"}`, wantStatus: 200, check: func() error {
			if got := s.Machine("fr3m1").BMC.BIOSAttributes()["LogicalProc"]; got != "Disabled" {
				return fmt.Errorf("the BMC reports LogicalProc %v, want Disabled", got)
			}
			return nil
		}},
		{body: `{"fault": "bios-drift", "machine": "fr3m1"}`, wantStatus: 200, check: func() error {
			if got := s.Machine("fr3m1").BMC.BIOSAttributes()["ProcVirtualization"]; got != "Disabled" {
				return fmt.Errorf("the BMC reports ProcVirtualization %v, want Disabled", got)
			}
			return nil
		}},
		// The controllers' SKU leaves the BIOS as it comes: nothing to drift from.
		{body: `{"fault": "bios-drift", "machine": "fc1"}`, wantStatus: 409},
	} {
		status, out := post(t, api, tc.body)
		if status != tc.wantStatus {
			t.Fatalf("POST /faults %s = %d %v, want %d", tc.body, status, out, tc.wantStatus)
		}
		if status == 200 && out["done"] == "" {
			t.Errorf("POST /faults %s = %v, want it to say what was done", tc.body, out)
		}
		got := map[string]state{}
		for _, m := range machines(t, api) {
			if _, ok := tc.want[m.Name]; ok {
				got[m.Name] = state{m.Power, m.AgentRunning}
			}
		}
		if diff := cmp.Diff(tc.want, got); tc.want != nil && diff != "" {
			t.Errorf("GET /machines after %s (-want +got):\n%s", tc.body, diff)
		}
		if tc.check != nil {
			if err := tc.check(); err != nil {
				t.Errorf("after %s: %v", tc.body, err)
			}
		}
	}
}

func machines(t *testing.T, api *httptest.Server) []MachineStatus {
	t.Helper()
	resp, err := http.Get(api.URL + "/machines")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ms []MachineStatus
	if err := json.NewDecoder(resp.Body).Decode(&ms); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /machines = %d, %v", resp.StatusCode, err)
	}
	return ms
}

func TestFaultMachines(t *testing.T) {
	_, api := faultSite(t, false)
	ms := machines(t, api)
	want := MachineStatus{Name: "fr3m1", Rack: 3, Slot: 1, Power: "On"}
	if len(ms) != 6 || ms[5] != want {
		t.Errorf("GET /machines = %+v, want 6 machines ending with %+v", ms, want)
	}
}

// reachable checks whether the BMC of m answers, as a partition decides.
func reachable(m *Machine, want bool) error {
	// The fleet's certificate is self-signed for this test's purpose: only
	// whether the BMC answers matters.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(m.Server.URL + "/redfish/v1")
	if err == nil {
		resp.Body.Close()
	}
	if got := err == nil; got != want {
		return fmt.Errorf("the BMC of %s answers: %t, want %t (%v)", m.Name, got, want, err)
	}
	return nil
}

func wantMemory(got, want uint64) error {
	if got != want {
		return fmt.Errorf("the host reports %d bytes of memory, want %d", got, want)
	}
	return nil
}

func FuzzDecodeFault(f *testing.F) {
	f.Add([]byte(`{"fault": "power-off", "machine": "m"}`))
	f.Add([]byte(`{"fault": "partition", "rack": 1}`))
	f.Add([]byte(`{"fault": "heal", "rack": "x", "machine": 1}`))
	f.Add([]byte(`{"fault": "san-degrade"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fault, k, err := decodeFault(bytes.NewReader(body))
		if err != nil {
			if _, ok := errors.AsType[*fieldError](err); !ok {
				t.Fatalf("decodeFault(%q) error %v, want a *fieldError", body, err)
			}
			return
		}
		if (k.target == onRack) != (fault.Rack != nil) || (k.target == onMachine) != (fault.Machine != "") {
			t.Fatalf("decodeFault(%q) = %+v without an error, want a machine, a rack or neither as %q needs", body, fault, fault.Kind)
		}
	})
}

// answers checks whether the host of machine name answers its agent: a
// hung agent is stuck reading it.
func answers(s *Site, name string, want bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.agents.hangs[name].Inventory(ctx)
	if got := err == nil; got != want {
		return fmt.Errorf("the host of %s answers its agent: %v (%v), want %v", name, got, err, want)
	}
	return nil
}
