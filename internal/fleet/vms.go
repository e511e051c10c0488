package fleet

import (
	"context"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// A machine's agent runs the VMs its bareMetalMachine's hidden
// virtualMachines property lists (desiredProps) and reports each one's
// status with every heartbeat. The fleet writes a status to the VM's
// resource only when it changed, and only from the VM's host: a VM that
// moved is not overwritten by its old host, which reports it until it
// learns of the move.

// vmType is the ARM type of the VMs the agents report.
const vmType = "Microsoft.NetworkCloud/virtualMachines"

// The properties of a VM resource the fleet writes.
const (
	propPowerState       = "powerState"            // "On", "Off"
	propDetailedStatus   = "detailedStatus"        // "Running", "Stopped", "Error"
	propStatusMessage    = "detailedStatusMessage" // the error, or what the status means
	propReportedRestarts = "reportedRestarts"      // restarts done, which the restart action waits for
	propReportedReimages = "reportedReimages"      // reimages done, which the reimage action waits for
	propVMHost           = "bareMetalMachineId"    // read: the machine the VM is placed on
	propEvicted          = "evicted"               // hidden: its host stopped it for its move elsewhere
)

// writeVMs writes the VM statuses of a heartbeat that differ from those
// this replica last wrote (or found written) for the machine, together.
// A write that fails is logged and tried again at the next heartbeat: the
// heartbeat itself succeeds, as the machine is alive.
func (s *Server) writeVMs(ctx context.Context, p peer, reported []agentapi.VMStatus) {
	s.mu.Lock()
	last := s.vms[p.name]
	s.mu.Unlock()
	if sameVMs(last, reported) {
		return
	}
	next := make(map[string]agentapi.VMStatus, len(reported))
	var changed []agentapi.VMStatus
	for _, st := range reported {
		if prev, ok := last[st.ID]; ok && prev == st {
			next[st.ID] = st
		} else {
			changed = append(changed, st)
		}
	}
	for chunk := range slices.Chunk(changed, maxVMWrites) {
		settled, err := s.writeVMChunk(ctx, p, chunk)
		if err != nil {
			s.log.WarnContext(ctx, "fleet: vm statuses not written", "machine", p.name, "vms", len(chunk), "err", err)
		}
		for _, st := range settled {
			next[st.ID] = st
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(next) == 0 {
		delete(s.vms, p.name)
	} else {
		s.vms[p.name] = next
	}
}

// maxVMWrites bounds the VMs one transaction writes (etcd takes at most
// store.MaxTxnOps operations in one).
const maxVMWrites = 100

// sameVMs reports whether reported are exactly the statuses last
// settled: the common heartbeat, which costs no allocation.
func sameVMs(last map[string]agentapi.VMStatus, reported []agentapi.VMStatus) bool {
	if len(last) != len(reported) {
		return false
	}
	for _, st := range reported {
		if prev, ok := last[st.ID]; !ok || prev != st {
			return false
		}
	}
	return true
}

// writeVMChunk writes each status to its VM's resource if the VM is placed
// on the machine p, in one transaction, and returns those the resources
// now hold: not a VM gone or placed elsewhere, which the next heartbeat
// checks again.
func (s *Server) writeVMChunk(ctx context.Context, p peer, statuses []agentapi.VMStatus) (settled []agentapi.VMStatus, err error) {
	var ids []arm.ID
	var valid []agentapi.VMStatus
	for _, st := range statuses {
		id, err := arm.ParseID(st.ID)
		if err != nil || !strings.EqualFold(id.Type(), vmType) {
			s.log.WarnContext(ctx, "fleet: a reported vm is not a virtual machine", "machine", p.name, "vm", st.ID)
			continue
		}
		ids, valid = append(ids, id), append(valid, st)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	_, err = s.cfg.Resources.UpsertAll(ctx, ids, func(rs []*resource.Resource) ([]bool, error) {
		settled = settled[:0] // this runs again after a conflict: only the last run counts
		changed := make([]bool, len(rs))
		for i, r := range rs {
			if r == nil || !strings.EqualFold(str(r.Properties, propVMHost), p.name) {
				continue // deleted, or not (or no longer) this machine's
			}
			settled = append(settled, valid[i])
			changed[i] = setVMStatus(r.Properties, valid[i])
		}
		return changed, nil
	})
	if err != nil {
		return nil, err
	}
	return settled, nil
}

// setVMStatus sets the properties of a VM's resource that its status
// gives, and reports whether any changed.
func setVMStatus(props map[string]any, st agentapi.VMStatus) (changed bool) {
	power, detailed, message := "Off", "Stopped", "The virtual machine is stopped."
	if st.Power == "On" {
		power, detailed, message = "On", "Running", "The virtual machine is running."
	}
	if st.Evicted {
		message = "The virtual machine is stopped to move to another machine."
	}
	if st.Error != "" {
		detailed, message = "Error", st.Error
	}
	for name, v := range map[string]string{propPowerState: power, propDetailedStatus: detailed, propStatusMessage: message} {
		if str(props, name) != v {
			props[name], changed = v, true
		}
	}
	if evicted, _ := props[propEvicted].(bool); evicted != st.Evicted {
		props[propEvicted], changed = st.Evicted, true
	}
	for name, n := range map[string]int{propReportedRestarts: st.Restarts, propReportedReimages: st.Reimages} {
		if count, ok := number(props[name]); !ok || count != n {
			props[name], changed = n, true
		}
	}
	return changed
}

// number is a count as the store decodes it (a float64) or as it was
// set.
func number(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		return int(n), float64(int(n)) == n
	case int:
		return n, true
	}
	return 0, false
}
