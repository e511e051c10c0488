package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent"
	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agent/vm"
	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// AgentOptions say how the site's machines run the real agent code, each
// with a simulated host.
type AgentOptions struct {
	// Server is the control plane's agent API and ServerCA the CA of its
	// certificate.
	Server   string
	ServerCA []byte
	// MachineID is the ARM ID of a machine's bareMetalMachine, by name.
	MachineID func(name string) string
	// Token is a bootstrap token that admits every machine of the cluster.
	Token string
	// Interval overrides the heartbeat interval the control plane asks for.
	Interval time.Duration
	// StateDir keeps each agent's key and certificate in a directory of
	// its own, so that an agent restarted after a crash or a partition
	// does not need a new token; empty keeps them in memory only.
	StateDir string
	// PerRequest has the agents keep no connection open: one per request
	// (TLS sessions resumed) and no long poll of the desired state (a
	// heartbeat's answer says when to fetch it). Each agent has a TLS
	// identity of its own, so connections cannot be shared; this is what
	// keeps thousands of agents within the open-file limit.
	PerRequest bool
	Logger     *slog.Logger
}

// agents are the running agents of a site.
type agents struct {
	opts    AgentOptions
	mu      sync.Mutex
	running map[string]context.CancelFunc
	hosts   map[string]*host.Sim
	hangs   map[string]*hangingHost
	wg      sync.WaitGroup
}

// hangingHost is a machine's simulated host that can freeze its agent:
// while hung, reading the inventory (which the agent does before every
// heartbeat) blocks, so the agent stops in the middle of its loop with all
// it holds, as a hung process would. The rest is the simulated host's
// (its VMs too).
type hangingHost struct {
	*host.Sim
	mu   sync.Mutex
	hung chan struct{} // closed to resume; nil while running
}

func (h *hangingHost) Inventory(ctx context.Context) (agentapi.Inventory, error) {
	h.mu.Lock()
	hung := h.hung
	h.mu.Unlock()
	if hung != nil {
		select {
		case <-hung:
		case <-ctx.Done():
			return agentapi.Inventory{}, ctx.Err()
		}
	}
	return h.Sim.Inventory(ctx)
}

// set hangs (true) or resumes (false) the agent on this host.
func (h *hangingHost) set(hang bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case hang && h.hung == nil:
		h.hung = make(chan struct{})
	case !hang && h.hung != nil:
		close(h.hung)
		h.hung = nil
	}
}

// hang is the hangable host of machine name, made once.
func (a *agents) hang(name string, h *host.Sim) *hangingHost {
	if a.hangs[name] == nil {
		a.hangs[name] = &hangingHost{Sim: h}
	}
	return a.hangs[name]
}

// HangAgent freezes (true) or resumes (false) the agent of machine name
// without stopping it.
func (s *Site) HangAgent(name string, hang bool) error {
	if s.agents == nil {
		return ErrNoAgents
	}
	s.agents.mu.Lock()
	h, ok := s.agents.hangs[name]
	s.agents.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoMachine, name)
	}
	h.set(hang)
	return nil
}

// StartAgents starts an agent on every machine of the site; StopAgent and
// StartAgent simulate a crash and a restart. They stop with Close.
func (s *Site) StartAgents(opts AgentOptions) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s.agents = &agents{opts: opts, running: map[string]context.CancelFunc{}, hosts: map[string]*host.Sim{}, hangs: map[string]*hangingHost{}}
	for _, m := range s.Machines {
		h := host.NewSim(s.inventory(m))
		h.SetUpdateBehavior(s.Spec.Updates)
		s.agents.hosts[m.Name] = h
		if err := s.StartAgent(m.Name); err != nil {
			return err
		}
	}
	s.agentsStarted.Store(true)
	return nil
}

// StartAgent starts (or restarts) the agent of machine name.
func (s *Site) StartAgent(name string) error {
	a := s.agents
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.running[name]; ok {
		return nil
	}
	h, ok := a.hosts[name]
	if !ok {
		return fmt.Errorf("sim: no machine %q", name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.running[name] = cancel
	stateDir := ""
	if a.opts.StateDir != "" {
		stateDir = filepath.Join(a.opts.StateDir, name)
	}
	cfg := agent.Config{Server: a.opts.Server, ServerCA: a.opts.ServerCA, Machine: a.opts.MachineID(name),
		Token: a.opts.Token, StateDir: stateDir, Host: a.hang(name, h), Interval: a.opts.Interval, Logger: a.opts.Logger}
	if a.opts.PerRequest {
		cfg.Transport, cfg.NoWatch = &http.Transport{DisableKeepAlives: true}, true
	}
	ag := agent.New(cfg)
	a.wg.Go(func() {
		if err := ag.Run(ctx); err != nil {
			a.opts.Logger.Warn("sim: agent stopped", "machine", name, "err", err)
		}
	})
	return nil
}

// StopAgent stops the agent of machine name, as a crash would.
func (s *Site) StopAgent(name string) {
	a := s.agents
	a.mu.Lock()
	defer a.mu.Unlock()
	if cancel, ok := a.running[name]; ok {
		cancel()
		delete(a.running, name)
	}
}

// PowerOff cuts a machine's power: its BMC reports Off, its agent stops
// and its VMs with it.
func (s *Site) PowerOff(name string) error {
	m := s.Machine(name)
	if m == nil {
		return fmt.Errorf("sim: no machine %q", name)
	}
	s.StopAgent(name)
	if s.agents != nil {
		if h := s.agentHost(name); h != nil {
			h.VMs().PowerLoss()
		}
	}
	return m.BMC.SetPowerState("Off")
}

// Partition cuts a rack off the network: its agents and BMCs stop
// answering (heal with Heal).
func (s *Site) Partition(rack int, cut bool) {
	for _, m := range s.Machines {
		if m.Rack != rack {
			continue
		}
		m.BMC.SetUnreachable(cut)
		if cut {
			s.StopAgent(m.Name)
		} else {
			s.StartAgent(m.Name)
		}
	}
}

// stopAgents stops every agent and waits for them.
func (a *agents) stop() {
	a.mu.Lock()
	for name, cancel := range a.running {
		cancel()
		delete(a.running, name)
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// inventory is what the agent of m finds on its simulated host: the
// hardware its SKU says.
func (s *Site) inventory(m *Machine) agentapi.Inventory {
	inv := agentapi.Inventory{Hostname: strings.ToLower(m.Name),
		OS: agentapi.OS{Name: "Citadel Host OS", Version: "4.1", Kernel: "6.12.0-citadel"}}
	if sku, ok := s.opts.Catalog.Machine(m.Hardware.SKU); ok {
		inv.CPU = agentapi.CPU{Model: sku.CPUModel, Sockets: sku.CPUSockets, Cores: sku.CPUCores, Threads: sku.TotalThreads,
			Flags: append([]string(nil), sku.CPUFeatures...)}
	}
	for _, d := range m.Hardware.DIMMs {
		inv.MemoryBytes += uint64(d.CapacityMiB) << 20
	}
	for i, d := range m.Hardware.Drives {
		inv.Disks = append(inv.Disks, agentapi.Disk{Name: fmt.Sprintf("nvme%dn1", i), Model: d.Model, Serial: d.SerialNumber,
			SizeBytes: uint64(d.CapacityBytes)})
	}
	for i, n := range m.Hardware.NICs {
		inv.NICs = append(inv.NICs, agentapi.NIC{Name: fmt.Sprintf("ens%df0", i+1), MAC: n.MACAddress, SpeedMbps: n.SpeedMbps, Up: true,
			Neighbor: s.neighbor(m, i)})
	}
	if len(inv.NICs) > 0 { // the OAM network: 10.{rack}.{slot}.10 and its IPv6 twin
		inv.NICs[0].Addresses = []string{fmt.Sprintf("10.%d.%d.10/24", m.Rack, m.Slot), fmt.Sprintf("fd00:%x:%x::10/64", m.Rack, m.Slot)}
	}
	for i, p := range m.Hardware.Processors {
		if p.ProcessorType != "GPU" {
			continue
		}
		for j := range max(p.Count, 1) {
			inv.GPUs = append(inv.GPUs, agentapi.GPU{PCIAddress: fmt.Sprintf("0000:%02x:00.0", 0x40+i*8+j), VendorID: "0x10de",
				Vendor: "NVIDIA", Class: "0x030200"})
		}
	}
	return inv
}

// VMs is the simulated VM driver of machine name's host, which runs the
// VMs its desired state lists: for tests to set their boot time, fail
// them and read their consoles.
func (s *Site) VMs(name string) (*vm.Sim, error) {
	if s.agents == nil {
		return nil, ErrNoAgents
	}
	s.agents.mu.Lock()
	h, ok := s.agents.hosts[name]
	s.agents.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoMachine, name)
	}
	return h.VMs(), nil
}

// Desired is the desired state the agent of machine name last applied to
// its host.
func (s *Site) Desired(name string) (agentapi.Desired, error) {
	if s.agents == nil {
		return agentapi.Desired{}, ErrNoAgents
	}
	s.agents.mu.Lock()
	h, ok := s.agents.hosts[name]
	s.agents.mu.Unlock()
	if !ok {
		return agentapi.Desired{}, fmt.Errorf("%w: %q", ErrNoMachine, name)
	}
	return h.Desired(), nil
}
