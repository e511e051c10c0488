package sim

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/storage/appliance"
)

// The errors of the fault operations. FaultHandler answers 404 to the
// first two and 409 to the third.
var (
	ErrNoMachine = errors.New("no such machine")
	ErrNoRack    = errors.New("no such rack")
	// ErrNoAgents: every fault acts on agents (a power loss or a
	// partition stops them, a failed part or drift changes what they
	// report), so none can be injected before StartAgents.
	ErrNoAgents = errors.New("the agents are not started")
)

// driftedKernel is the kernel release a drifted machine reports: one
// installed by hand, not the image's.
const driftedKernel = "6.14.2-local"

// PowerOn restores a machine's power after PowerOff: its BMC reports On
// (the host boots) and its agent starts again.
func (s *Site) PowerOn(name string) error {
	m, err := s.agentMachine(name)
	if err != nil {
		return err
	}
	if err := m.BMC.SetPowerState("On"); err != nil {
		return fmt.Errorf("sim: power on %s: %w", name, err)
	}
	return s.StartAgent(name)
}

// PowerOffRack cuts the power of a whole rack, as a tripped breaker
// would: each of its machines goes as with PowerOff.
func (s *Site) PowerOffRack(rack int) error {
	ms, err := s.rackMachines(rack)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.PowerOff(m.Name); err != nil {
			return err
		}
	}
	return nil
}

// PowerOnRack restores the power of a rack: each of its machines comes
// back as with PowerOn.
func (s *Site) PowerOnRack(rack int) error {
	ms, err := s.rackMachines(rack)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.PowerOn(m.Name); err != nil {
			return err
		}
	}
	return nil
}

// FailDIMM fails the first healthy DIMM of a machine and returns its
// index in Machine.Hardware.DIMMs. Its BMC marks it Critical and drops
// its capacity from the memory total (redfishsim.BMC.FailDIMM), and the
// agent's host reports that much less memory, as the machine would once
// it runs without it. Faults that change one machine's inventory
// (FailDIMM, Drift) must not run concurrently; FaultHandler serializes
// them.
func (s *Site) FailDIMM(name string) (int, error) {
	m, err := s.agentMachine(name)
	if err != nil {
		return 0, err
	}
	for i, d := range m.Hardware.DIMMs {
		// The BMC refuses a DIMM that already failed: try the next.
		if m.BMC.FailDIMM(i) != nil {
			continue
		}
		return i, s.changeInventory(name, func(inv *agentapi.Inventory) {
			inv.MemoryBytes -= min(inv.MemoryBytes, uint64(d.CapacityMiB)<<20)
		})
	}
	return 0, fmt.Errorf("sim: %s has no healthy DIMM left", name)
}

// Drift changes a machine behind the control plane's back: its kernel
// becomes one installed by hand, which its agent reports with its
// inventory, so the control plane can see that the machine no longer
// runs what its image says.
func (s *Site) Drift(name string) error {
	if _, err := s.agentMachine(name); err != nil {
		return err
	}
	return s.changeInventory(name, func(inv *agentapi.Inventory) { inv.OS.Kernel = driftedKernel })
}

// DriftBIOS changes one of a machine's BIOS settings behind the control
// plane's back, as someone in the BIOS setup would: the first attribute of
// its SKU's BIOS settings, in name order, that is Enabled (or true)
// becomes Disabled (or false), else the first that is Disabled (or
// false) becomes Enabled. Its BMC reports the change at once
// (redfishsim.BMC.SetBIOSAttribute). It returns the attribute and its
// values before and after.
func (s *Site) DriftBIOS(name string) (attr string, from, to any, err error) {
	m, err := s.agentMachine(name)
	if err != nil {
		return "", nil, nil, err
	}
	sku, ok := s.opts.Catalog.Machine(m.Hardware.SKU)
	if !ok || len(sku.BIOSSettings) == 0 {
		return "", nil, nil, fmt.Errorf("sim: machine %q: its SKU %q has no BIOS settings to drift from", name, m.Hardware.SKU)
	}
	current := m.BMC.BIOSAttributes()
	flip := map[any]any{"Enabled": "Disabled", true: false, "Disabled": "Enabled", false: true}
	names := slices.Sorted(maps.Keys(sku.BIOSSettings))
	for _, from := range []any{"Enabled", true, "Disabled", false} { // prefer turning a setting off
		for _, a := range names {
			if v := current[a]; v == from {
				return a, v, flip[v], m.BMC.SetBIOSAttribute(a, flip[v])
			}
		}
	}
	return "", nil, nil, fmt.Errorf("sim: machine %q: none of the BIOS settings %s of its SKU is Enabled, Disabled or a boolean", name, strings.Join(names, ", "))
}

// installed gives machine name, whose BMC just installed an OS image, a
// pristine OS: what was changed by hand (a drifted kernel) is gone. It
// keeps the release it runs.
func (s *Site) installed(name string) {
	m := s.Machine(name)
	if m == nil || !s.agentsStarted.Load() { // hosts start pristine
		return
	}
	s.changeInventory(name, func(inv *agentapi.Inventory) {
		pristine := s.inventory(m)
		pristine.Runtime = inv.Runtime
		*inv = pristine
	})
}

// FailNextUpdate makes the next update of machine name fail: its agent
// reports the failure and the machine keeps the version it runs.
func (s *Site) FailNextUpdate(name string) error {
	if _, err := s.agentMachine(name); err != nil {
		return err
	}
	s.agentHost(name).FailNextUpdate()
	return nil
}

// changeInventory changes what the agent of machine name finds on its
// simulated host.
func (s *Site) changeInventory(name string, change func(*agentapi.Inventory)) error {
	h := s.agentHost(name)
	inv, err := h.Inventory(context.Background())
	if err != nil {
		return fmt.Errorf("sim: the inventory of %s: %w", name, err)
	}
	change(&inv)
	h.SetInventory(inv)
	return nil
}

// agentMachine returns the machine of that name once the agents run.
func (s *Site) agentMachine(name string) (*Machine, error) {
	m := s.Machine(name)
	if m == nil {
		return nil, fmt.Errorf("sim: machine %q: %w", name, ErrNoMachine)
	}
	if s.agents == nil {
		return nil, fmt.Errorf("sim: machine %q: %w", name, ErrNoAgents)
	}
	return m, nil
}

// rackMachines returns the machines of a rack once the agents run.
func (s *Site) rackMachines(rack int) ([]*Machine, error) {
	if rack < 0 || rack > s.Spec.ComputeRacks {
		return nil, fmt.Errorf("sim: rack %d (the site has racks 0 to %d): %w", rack, s.Spec.ComputeRacks, ErrNoRack)
	}
	if s.agents == nil {
		return nil, fmt.Errorf("sim: rack %d: %w", rack, ErrNoAgents)
	}
	var ms []*Machine
	for _, m := range s.Machines {
		if m.Rack == rack {
			ms = append(ms, m)
		}
	}
	return ms, nil
}

// agentHost is the simulated host of machine name's agent; the agents run.
func (s *Site) agentHost(name string) *host.Sim {
	s.agents.mu.Lock()
	defer s.agents.mu.Unlock()
	return s.agents.hosts[name]
}

// agentRunning says whether the agent of machine name runs.
func (s *Site) agentRunning(name string) bool {
	if s.agents == nil {
		return false
	}
	s.agents.mu.Lock()
	defer s.agents.mu.Unlock()
	_, ok := s.agents.running[name]
	return ok
}

// Fault is a fault to inject: the body of POST /faults. Machine names the
// machine of a machine fault, Rack the rack of a rack fault (0 is the
// aggregator).
type Fault struct {
	Kind    string `json:"fault"`
	Machine string `json:"machine,omitempty"`
	Rack    *int   `json:"rack,omitempty"`
	// Peer is the second machine of a cable-swap; Device the network
	// device of a switch-drift.
	Peer   string `json:"peer,omitempty"`
	Device string `json:"device,omitempty"`
}

// FaultResult is the answer to POST /faults: the fault and what was done,
// in words.
type FaultResult struct {
	Fault
	Done string `json:"done"`
}

// MachineStatus is one machine in the answer to GET /machines.
type MachineStatus struct {
	Name         string `json:"name"`
	Rack         int    `json:"rack"`
	Slot         int    `json:"slot"`
	Power        string `json:"power"` // the BMC's PowerState
	AgentRunning bool   `json:"agentRunning"`
}

// faultKind is one fault POST /faults knows: what it acts on, and how.
type faultKind struct {
	target faultTarget
	do     func(s *Site, f Fault) (string, error)
}

// faultTarget is what a fault acts on.
type faultTarget int

const (
	onMachine faultTarget = iota
	onRack
	onSAN    // the aggregator's storage appliance
	onDevice // a network device of the fabric
)

func (t faultTarget) String() string {
	return [...]string{"a machine", "a rack", "the storage appliance", "a network device"}[t]
}

// faultKinds are the faults POST /faults knows, by name.
//
// agent-hang freezes the agent in its loop (Site.HangAgent): it stays up,
// holding its connection state, and sends nothing until agent-resume.
var faultKinds = map[string]faultKind{
	"power-off": {do: func(s *Site, f Fault) (string, error) {
		return "power Off, agent stopped", s.PowerOff(f.Machine)
	}},
	"power-on": {do: func(s *Site, f Fault) (string, error) {
		return "power On, agent started", s.PowerOn(f.Machine)
	}},
	"agent-crash": {do: func(s *Site, f Fault) (string, error) {
		s.StopAgent(f.Machine)
		return "agent stopped", nil
	}},
	"agent-start": {do: func(s *Site, f Fault) (string, error) {
		return "agent started", s.startPoweredAgent(f.Machine)
	}},
	"agent-hang": {do: func(s *Site, f Fault) (string, error) {
		return "agent hung: no heartbeats until agent-resume", s.HangAgent(f.Machine, true)
	}},
	"agent-resume": {do: func(s *Site, f Fault) (string, error) {
		return "agent resumed", s.HangAgent(f.Machine, false)
	}},
	"rack-power-off": {target: onRack, do: func(s *Site, f Fault) (string, error) {
		return "power Off, agents stopped", s.PowerOffRack(*f.Rack)
	}},
	"rack-power-on": {target: onRack, do: func(s *Site, f Fault) (string, error) {
		return "power On, agents started", s.PowerOnRack(*f.Rack)
	}},
	"partition": {target: onRack, do: func(s *Site, f Fault) (string, error) {
		s.Partition(*f.Rack, true)
		return "cut off: its BMCs and agents do not answer until heal", nil
	}},
	"heal": {target: onRack, do: func(s *Site, f Fault) (string, error) {
		s.Partition(*f.Rack, false)
		return "reachable again, its agents started", nil
	}},
	"fail-dimm": {do: func(s *Site, f Fault) (string, error) {
		i, err := s.FailDIMM(f.Machine)
		if err != nil {
			return "", err
		}
		m := s.Machine(f.Machine)
		return fmt.Sprintf("DIMM%d failed: %d GiB less memory", i+1, m.Hardware.DIMMs[i].CapacityMiB/1024), nil
	}},
	"cable-swap": {do: func(s *Site, f Fault) (string, error) {
		if f.Peer == "" {
			return "", &fieldError{"peer", "required for cable-swap: the machine whose first cable is swapped with machine's"}
		}
		return "the first cables of " + f.Machine + " and " + f.Peer + " swapped", s.SwapCables(f.Machine, f.Peer)
	}},
	"switch-drift": {target: onDevice, do: func(s *Site, f Fault) (string, error) {
		return s.DriftSwitch(f.Device)
	}},
	"drift": {do: func(s *Site, f Fault) (string, error) {
		return "the host reports kernel " + driftedKernel + ", installed by hand", s.Drift(f.Machine)
	}},
	"bios-drift": {do: func(s *Site, f Fault) (string, error) {
		attr, from, to, err := s.DriftBIOS(f.Machine)
		return fmt.Sprintf("BIOS attribute %s changed by hand from %v to %v", attr, from, to), err
	}},
	"update-fail": {do: func(s *Site, f Fault) (string, error) {
		return "its next update will fail", s.FailNextUpdate(f.Machine)
	}},
	"san-degrade": {target: onSAN, do: func(s *Site, f Fault) (string, error) {
		return "the storage appliance reports itself Degraded: " + sanDegraded, s.DegradeSAN(sanDegraded)
	}},
	"san-recover": {target: onSAN, do: func(s *Site, f Fault) (string, error) {
		return "the storage appliance reports itself Available", s.DegradeSAN("")
	}},
}

// sanDegraded is why a degraded simulated appliance says it is.
const sanDegraded = "controller CT1 failed; CT0 serves alone without redundancy"

// ErrNoSAN: the site's aggregator rack has no storage appliance.
var ErrNoSAN = errors.New("the site has no storage appliance")

// DegradeSAN makes the site's storage appliance report itself Degraded
// with reason, or Available again when reason is "".
func (s *Site) DegradeSAN(reason string) error {
	if s.SAN == nil {
		return ErrNoSAN
	}
	s.SAN.Driver().(*appliance.Sim).SetDegraded(reason)
	return nil
}

// startPoweredAgent starts an agent, which needs its machine On.
func (s *Site) startPoweredAgent(name string) error {
	if p := s.Machine(name).BMC.PowerState(); p != "On" {
		return fmt.Errorf("sim: machine %q is powered %s: power-on starts its agent", name, p)
	}
	return s.StartAgent(name)
}

// fieldError is a bad request: which field, and why.
type fieldError struct{ field, reason string }

func (e *fieldError) Error() string { return e.field + ": " + e.reason }

// decodeFault reads and checks the body of POST /faults.
func decodeFault(body io.Reader) (Fault, faultKind, error) {
	var f Fault
	d := json.NewDecoder(body)
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return f, faultKind{}, &fieldError{te.Field, "want " + te.Type.String() + ", got a JSON " + te.Value}
		}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return f, faultKind{}, &fieldError{"body", "larger than 64 KiB"}
		}
		return f, faultKind{}, &fieldError{"body", err.Error()}
	}
	if f.Kind == "" {
		return f, faultKind{}, &fieldError{"fault", "required, one of " + strings.Join(faultNames(), ", ")}
	}
	k, ok := faultKinds[f.Kind]
	switch {
	case !ok:
		return f, k, &fieldError{"fault", fmt.Sprintf("%q is not one of %s", f.Kind, strings.Join(faultNames(), ", "))}
	case k.target == onRack && f.Rack == nil:
		return f, k, &fieldError{"rack", "required for " + f.Kind}
	case k.target == onMachine && f.Machine == "":
		return f, k, &fieldError{"machine", "required for " + f.Kind}
	case k.target != onMachine && f.Machine != "":
		return f, k, &fieldError{"machine", f.Kind + " acts on " + k.target.String() + ", not a machine"}
	case k.target != onRack && f.Rack != nil:
		return f, k, &fieldError{"rack", f.Kind + " acts on " + k.target.String() + ", not a rack"}
	case k.target == onDevice && f.Device == "":
		return f, k, &fieldError{"device", "required for " + f.Kind}
	}
	return f, k, nil
}

// faultNames are the names of the faults, sorted.
func faultNames() []string { return slices.Sorted(maps.Keys(faultKinds)) }

// inject checks that the fault's machine or rack exists and the agents
// run, then injects it.
func (s *Site) inject(f Fault, k faultKind) (string, error) {
	var err error
	switch k.target {
	case onRack:
		_, err = s.rackMachines(*f.Rack)
	case onMachine:
		_, err = s.agentMachine(f.Machine)
	}
	if err != nil {
		return "", err
	}
	return k.do(s, f)
}

// FaultHandler is the site's fault API, for `citadel sim`:
//
//	GET  /machines  every machine: name, rack, slot, BMC power state, whether its agent runs
//	POST /faults    {"fault": "power-off", "machine": "..."} or {"fault": "partition", "rack": 1}
//
// A fault answers 200 with what was done, 400 naming a bad field, 404
// for an unknown machine or rack and 409 when it cannot be done now (the
// agents are not started, no DIMM is left to fail). Faults run one at a
// time. It has no authentication: serve it on loopback only.
func (s *Site) FaultHandler() http.Handler {
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("GET /machines", func(w http.ResponseWriter, _ *http.Request) {
		ms := make([]MachineStatus, 0, len(s.Machines))
		for _, m := range s.Machines {
			ms = append(ms, MachineStatus{Name: m.Name, Rack: m.Rack, Slot: m.Slot, Power: m.BMC.PowerState(),
				AgentRunning: s.agentRunning(m.Name)})
		}
		writeJSON(w, http.StatusOK, ms)
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		f, k, err := decodeFault(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			writeFaultError(w, err)
			return
		}
		mu.Lock()
		done, err := s.inject(f, k)
		mu.Unlock()
		if err != nil {
			writeFaultError(w, err)
			return
		}
		target := slog.String("machine", f.Machine)
		switch k.target {
		case onRack:
			target = slog.Int("rack", *f.Rack)
		case onSAN:
			target = slog.String("appliance", s.sanSerial())
		case onDevice:
			target = slog.String("device", f.Device)
		}
		log := cmp.Or(s.opts.BMC.Logger, slog.Default())
		if s.agents != nil {
			log = s.agents.opts.Logger
		}
		log.InfoContext(r.Context(), "fault injected", "fault", f.Kind, target, "done", done)
		writeJSON(w, http.StatusOK, FaultResult{Fault: f, Done: done})
	})
	return mux
}

// writeFaultError is the only place a fault's error becomes a status.
func writeFaultError(w http.ResponseWriter, err error) {
	status, body := http.StatusConflict, map[string]string{"error": err.Error()}
	if fe, ok := errors.AsType[*fieldError](err); ok {
		status, body["field"] = http.StatusBadRequest, fe.field
	} else if errors.Is(err, ErrNoMachine) || errors.Is(err, ErrNoRack) || errors.Is(err, ErrNoSAN) {
		status = http.StatusNotFound
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
