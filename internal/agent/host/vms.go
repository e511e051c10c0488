package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/citadel-cloud/citadel/internal/agent/vm"
	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// VMRunner is a host that runs the virtual machines its desired state
// lists, with a vm.Driver. The agent calls RunVMs with them once it has
// applied a desired state, and again at every heartbeat (the driver is
// level-based: a power off's grace ends, a crashed VM starts again), and
// sends the statuses with the heartbeat. Before the first desired state
// the agent does not call it: an empty list would remove every VM.
type VMRunner interface {
	RunVMs(ctx context.Context, want []agentapi.VM) ([]agentapi.VMStatus, error)
	// Console is the VM's serial console log so far.
	Console(id string) ([]byte, error)
}

var (
	_ VMRunner = (*Linux)(nil)
	_ VMRunner = (*Sim)(nil)
)

// errNoVMDriver is why a Linux host without a driver runs no VM.
var errNoVMDriver = errors.New("host: this machine's agent runs no VMs (it has no VM driver: citadel agent --vm-dir)")

// WithVMs makes the machine run its VMs with d (vm.NewQEMU, whose
// Images is StagedPath).
func (l *Linux) WithVMs(d vm.Driver) *Linux {
	l.vms = d
	return l
}

// RunVMs implements VMRunner. Without a driver (WithVMs) each VM wanted
// reports that it cannot run here.
func (l *Linux) RunVMs(ctx context.Context, want []agentapi.VM) ([]agentapi.VMStatus, error) {
	if l.vms != nil {
		return l.vms.Reconcile(ctx, want)
	}
	var out []agentapi.VMStatus
	for _, v := range want {
		out = append(out, agentapi.VMStatus{ID: v.ID, Power: vm.Off, Error: errNoVMDriver.Error()})
	}
	return out, nil
}

// Console implements VMRunner.
func (l *Linux) Console(id string) ([]byte, error) {
	if l.vms == nil {
		return nil, errNoVMDriver
	}
	return l.vms.Console(id)
}

// StagedPath is the file of an artifact the agent staged (Stage): what
// vm.QEMUConfig.Images needs of a VM's image. An artifact not staged
// (yet) is an error, which the VM reports.
func (l *Linux) StagedPath(a agentapi.Artifact) (string, error) {
	if !l.Staged(a.SHA256) {
		return "", fmt.Errorf("host: the image %s (sha256 %s) is not staged", a.Name, a.SHA256)
	}
	return filepath.Join(l.path(artifactsDir), a.SHA256), nil
}

// RunVMs implements VMRunner with the simulated driver, VMs.
func (s *Sim) RunVMs(ctx context.Context, want []agentapi.VM) ([]agentapi.VMStatus, error) {
	return s.vms.Reconcile(ctx, want)
}

// Console implements VMRunner.
func (s *Sim) Console(id string) ([]byte, error) { return s.vms.Console(id) }

// VMs is the machine's simulated VM driver, for tests and faults to set
// its VMs' boot time and fail them.
func (s *Sim) VMs() *vm.Sim { return s.vms }

// redactVMs returns vms without their cloud-init documents, which may
// hold secrets: for files others may read.
func redactVMs(vms []agentapi.VM) []agentapi.VM {
	if vms == nil {
		return nil
	}
	out := make([]agentapi.VM, len(vms))
	for i, v := range vms {
		v.UserData, v.NetworkData = "", ""
		out[i] = v
	}
	return out
}
