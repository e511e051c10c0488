package vm

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// Sim is the driver of a simulated machine: its VMs live in memory, keep
// the counts and power states QEMU's do and write a console log of their
// boots, for `citadel sim` and tests. A started or restarted VM reports
// On once its boot time is over (QEMU reports On as soon as its process
// runs), so that the control plane sees the delay of a real boot.
//
// A VM's disks are checked as QEMU checks them (checkDisks) and attached
// at its start, as QEMU's are: Disks shows them. No SAN is reached: an
// export that is unreachable, or refuses the key, fails only under QEMU.
type Sim struct {
	mu       sync.Mutex
	bootTime time.Duration
	vms      map[string]*simVM
	faults   map[string]error
}

type simVM struct {
	name               string
	restarts, reimages int // done
	running            bool
	upAt               time.Time // when its boot is over
	booted             bool      // its console says so
	boots              int
	disks              []agentapi.VMDisk // attached at its last start
	console            bytes.Buffer
}

// NewSim returns a Sim whose VMs boot at once.
func NewSim() *Sim {
	return &Sim{vms: map[string]*simVM{}, faults: map[string]error{}}
}

// SetBootTime sets how long a VM takes to boot, from its start to On.
func (s *Sim) SetBootTime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootTime = d
}

// Fail makes the VM fail with err, as a host fault would: it stops if it
// runs, and it does not start, reporting err, until Fail(id, nil).
func (s *Sim) Fail(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.faults, id)
		return
	}
	s.faults[id] = err
}

// Reconcile implements Driver.
func (s *Sim) Reconcile(_ context.Context, want []agentapi.VM) ([]agentapi.VMStatus, error) {
	if err := checkWant(want); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]agentapi.VMStatus, len(want))
	wanted := make(map[string]bool, len(want))
	for i, v := range want {
		wanted[v.ID] = true
		out[i] = s.reconcile(v, now)
	}
	for id := range s.vms {
		if !wanted[id] {
			delete(s.vms, id)
		}
	}
	return out, nil
}

func (s *Sim) reconcile(v agentapi.VM, now time.Time) agentapi.VMStatus {
	m := s.vms[v.ID]
	if m == nil {
		m = &simVM{restarts: v.Restarts, reimages: v.Reimages}
		s.vms[v.ID] = m
	}
	m.name = v.Name
	err := check(v)
	if err == nil {
		err = s.faults[v.ID]
		if err != nil && m.running {
			m.running = false
			fmt.Fprintf(&m.console, "[sim] %s failed: %v\n", m.name, err)
		}
	}
	if err == nil && v.Reimages > m.reimages {
		// A reimage writes the image to the OS disk of a VM that has one.
		if err = checkDisks(v.Disks); err == nil {
			if m.running {
				m.running = false
				fmt.Fprintf(&m.console, "[sim] %s powered off for its reimage\n", m.name)
			}
			onto := ""
			if i := slices.IndexFunc(v.Disks, func(d agentapi.VMDisk) bool { return d.OS }); i >= 0 {
				onto = " onto its OS disk " + v.Disks[i].Serial
			}
			fmt.Fprintf(&m.console, "[sim] %s reimaged from %s%s\n", m.name, v.Image.Name, onto)
			m.reimages, m.restarts = v.Reimages, max(m.restarts, v.Restarts)
		}
	}
	if err == nil {
		if v.Restarts > m.restarts {
			if m.running && v.Power == On {
				s.boot(m, now, "restarting")
			}
			m.restarts = v.Restarts
		}
		switch {
		case v.Power == On && !m.running:
			if err = checkDisks(v.Disks); err == nil {
				m.running, m.disks = true, slices.Clone(v.Disks)
				if len(m.disks) > 0 {
					fmt.Fprintf(&m.console, "[sim] %s attaches disks %s\n", m.name, simDisks(m.disks))
				}
				s.boot(m, now, "starting")
			}
		case v.Power == Off && m.running:
			m.running = false
			fmt.Fprintf(&m.console, "[sim] %s powered off\n", m.name)
		}
	}
	st := agentapi.VMStatus{ID: v.ID, Power: Off, Restarts: m.restarts, Reimages: m.reimages}
	if m.running && !now.Before(m.upAt) {
		st.Power = On
		if !m.booted {
			m.booted = true
			fmt.Fprintf(&m.console, "[sim] %s is up (boot %d)\n", m.name, m.boots)
		}
	}
	if err != nil {
		st.Error = err.Error()
	}
	return st
}

// boot starts a boot of m: it is up after the boot time.
func (s *Sim) boot(m *simVM, now time.Time, what string) {
	m.boots++
	m.upAt, m.booted = now.Add(s.bootTime), false
	fmt.Fprintf(&m.console, "[sim] %s %s (boot %d)\n", m.name, what, m.boots)
}

// simDisks lists disks for a console line: their serials, the OS disk's
// marked.
func simDisks(disks []agentapi.VMDisk) string {
	names := make([]string, len(disks))
	for i, d := range disks {
		names[i] = d.Serial
		if d.OS {
			names[i] += " (OS)"
		}
	}
	return strings.Join(names, ", ")
}

// Disks are the disks the VM was last started with, as QEMU attaches
// them: nil if it never started, or is not there.
func (s *Sim) Disks(id string) []agentapi.VMDisk {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.vms[id]; m != nil {
		return slices.Clone(m.disks)
	}
	return nil
}

// PowerLoss stops every VM at once, as the loss of its host's power
// does; they start again as their agent reconciles them.
func (s *Sim) PowerLoss() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.vms {
		if m.running {
			m.running = false
			fmt.Fprintf(&m.console, "[sim] %s lost its host's power\n", m.name)
		}
	}
}

// Running are the IDs of the VMs that run (booting or up).
func (s *Sim) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, m := range s.vms {
		if m.running {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Console implements Driver.
func (s *Sim) Console(id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.vms[id]
	if m == nil {
		return nil, fmt.Errorf("vm %q: %w", id, ErrNotFound)
	}
	return bytes.Clone(m.console.Bytes()), nil
}

var (
	_ Driver = (*Sim)(nil)
	_ Driver = (*QEMU)(nil)
)
