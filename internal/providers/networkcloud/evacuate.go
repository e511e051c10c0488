package networkcloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Evacuation and HA restart: a VM leaves a machine by a move, the same
// whether the machine is cordoned with evacuate True or declared Failed.
// A move marks the VM evicted on its machine (its agent stops it and
// says so), records the machine the scheduler picks (within its
// placement hints) as its host and books it there, then takes it off the
// old machine's list. Every step is idempotent and the old entry
// goes last, so a move cut short by a crash is finished by running it
// again, and no VM is lost. No VM runs twice: a running machine's VM
// starts elsewhere only once its agent reports it stopped, and a failed
// machine's only once its BMC has powered the machine off (fenced).

// failoverInterval is how often the machines declared Failed are looked
// for: with liveness's defaults, their VMs run elsewhere within a minute
// of their last heartbeat.
const failoverInterval = 2 * time.Second

// failoverOperation is the activity log's name for an HA restart.
const failoverOperation = "Citadel.Platform/virtualMachineFailover/action"

// moveVM moves the VM of entry off machine from and returns the machine
// it now runs on. With stopped false it waits for from's agent to report
// the VM stopped; true says from is fenced (powered off). A move that
// fails once the VM is booked elsewhere returns that machine with the
// error: the VM must stay evicted on from.
func (p *Provider) moveVM(ctx context.Context, from string, entry agentapi.VM, stopped bool) (*resource.Resource, error) {
	vm, err := p.lookup(ctx, entry.ID)
	if isMissing(err) { // deleted meanwhile: its room on from is free again
		return nil, p.changeHosted(ctx, from, entry.ID, func(*agentapi.VM) bool { return false })
	} else if err != nil {
		return nil, err
	}
	if !entry.Evicted {
		if err := p.changeHosted(ctx, from, entry.ID, func(x *agentapi.VM) bool { x.Evicted = true; return true }); err != nil {
			return nil, err
		}
	}
	if !stopped && strings.EqualFold(vmOf(vm).BareMetalMachineID, from) {
		if _, err := p.waitVM(ctx, entry.ID, func(v vmReport) bool { return v.Evicted }); err != nil {
			return nil, fmt.Errorf("%s did not stop on its machine: %w", vm.Name, err)
		}
	}
	spec := entry
	spec.Evicted = false
	fromName := from[strings.LastIndexByte(from, '/')+1:]
	to, _, err := p.place(ctx, vm, vmOf(vm), p.withDisks(ctx, vm, spec), from,
		func(to *resource.Resource) string {
			return fmt.Sprintf("The virtual machine is moving from %s to %s.", fromName, to.Name)
		})
	if errors.Is(err, errVMGone) { // deleted while it moved: on no machine but from
		return nil, p.changeHosted(ctx, from, entry.ID, func(*agentapi.VM) bool { return false })
	}
	if err != nil {
		return to, err
	}
	return to, p.changeHosted(ctx, from, vm.ID, func(*agentapi.VM) bool { return false })
}

// unevict lets machine m run the VM again: its move found no room.
func (p *Provider) unevict(ctx context.Context, m, vm string) error {
	return p.changeHosted(ctx, m, vm, func(x *agentapi.VM) bool { x.Evicted = false; return true })
}

// evacuate moves every VM off machine m, one at a time, calling moved
// after each; stopped says m is fenced. A VM that finds no room is given
// back to m, which runs it if it runs, and named in the error; the
// others still move.
func (p *Provider) evacuate(ctx context.Context, m *resource.Resource, stopped bool, moved func(vm, to string, done, total int)) error {
	entries := hostedVMs(m)
	var errs []error
	for i, e := range entries {
		to, err := p.moveVM(ctx, m.ID, e, stopped)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if to == nil {
				err = errors.Join(err, p.unevict(ctx, m.ID, e.ID))
			}
			errs = append(errs, fmt.Errorf("%s: %w", e.Name, err))
			continue
		}
		if to != nil {
			moved(e.Name, to.Name, i+1, len(entries))
		}
	}
	return errors.Join(errs...)
}

// evacuateMachine is cordon's evacuation: every VM of the machine the
// task cordons moves elsewhere, each move a step of its action state.
func (p *Provider) evacuateMachine(ctx context.Context, t *resource.Task, tr *tracker) error {
	if err := t.Save(ctx); err != nil { // the scheduler sees it cordoned
		return err
	}
	m, err := p.lookup(ctx, t.Resource.ID)
	if err != nil {
		return err
	}
	if len(hostedVMs(m)) == 0 {
		tr.message = "The machine is cordoned; it hosted no workloads to evacuate."
		return nil
	}
	count := 0
	err = p.evacuate(ctx, m, false, func(vm, to string, done, total int) {
		count++
		tr.step(ctx, fmt.Sprintf("Moved %s to %s", vm, to))
		t.Progress(ctx, float64(100*done)/float64(total))
	})
	if err != nil {
		return arm.Errorf(http.StatusConflict, "EvacuationFailed", "%d virtual machines moved off '%s', not all: %v", count, t.Resource.Name, err)
	}
	tr.message = fmt.Sprintf("The machine is cordoned; its %d virtual machines moved to other machines.", count)
	return nil
}

// WatchFailedMachines restarts elsewhere the VMs of the machines the
// liveness tracker declared Failed, until ctx ends; it runs on one
// leader.
func (p *Provider) WatchFailedMachines(ctx context.Context) {
	tick := time.NewTicker(failoverInterval)
	defer tick.Stop()
	f := &failover{fenced: map[string]bool{}, retry: map[string]time.Time{}}
	var machines *resource.Projection[failoverView]
	for {
		var err error
		if machines == nil {
			machines, err = resource.MirrorProjection[failoverView](ctx, p.svc, machineType)
		}
		if err == nil {
			views, _ := machines.All()
			err = p.failOver(ctx, f, views)
		}
		if err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "failed machines not handled", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// failover is what the failover leader remembers of the Failed
// machines: which it fenced, and when to try again to move the VMs that
// found no room.
type failover struct {
	fenced map[string]bool
	retry  map[string]time.Time
}

// failoverRetry is how long the VMs of a failed machine that found no
// room elsewhere wait before they are tried again.
const failoverRetry = 15 * time.Second

// failoverView is what the failover leader watches of each machine, in a
// projection that follows the store's changes: a pass reads no machine
// from the store until one has failed.
type failoverView struct {
	LivenessState string `json:"livenessState"`
	CordonStatus  string `json:"cordonStatus"`
	VMs           []struct {
		ID      string `json:"id"`
		Evicted bool   `json:"evicted"`
	} `json:"virtualMachines"`
}

// failOver fences each Failed machine that still lists VMs, once, and
// moves its VMs. It also lets a machine that is back run the VMs a move
// cut short left evicted on it.
func (p *Provider) failOver(ctx context.Context, f *failover, machines []resource.Projected[failoverView]) error {
	p.returnEvicted(ctx, machines)
	failed := map[string]bool{}
	for _, v := range machines {
		if v.Properties.LivenessState != "Failed" {
			continue
		}
		failed[v.ID] = true
		if len(v.Properties.VMs) == 0 || time.Now().Before(f.retry[v.ID]) {
			continue
		}
		m, err := p.lookup(ctx, v.ID)
		if isMissing(err) {
			continue // deleted meanwhile
		} else if err != nil {
			return err
		}
		if !f.fenced[m.ID] {
			if err := p.fence(ctx, m); err != nil {
				p.event(ctx, failoverOperation, m.ID, "Error", fmt.Sprintf("%s failed, and its virtual machines wait: it could not be fenced: %v", m.Name, err))
				continue
			}
			f.fenced[m.ID] = true
			p.event(ctx, failoverOperation, m.ID, "Warning", fmt.Sprintf("%s failed (%s); it is powered off, and its %d virtual machines restart on other machines.",
				m.Name, str(m.Properties, "livenessMessage"), len(hostedVMs(m))))
		}
		err = p.evacuate(ctx, m, true, func(vm, to string, _, _ int) {
			p.event(ctx, failoverOperation, m.ID, "Informational", fmt.Sprintf("%s restarts on %s after %s failed.", vm, to, m.Name))
		})
		if err != nil {
			p.log.WarnContext(ctx, "virtual machines of a failed machine wait for room", "machine", m.Name, "err", err)
			p.noteWaiting(ctx, m, err)
			f.retry[m.ID] = time.Now().Add(failoverRetry)
		}
	}
	for id := range f.fenced {
		if !failed[id] {
			delete(f.fenced, id)
			delete(f.retry, id)
		}
	}
	return nil
}

// returnEvicted lets each machine that is Ready and not cordoned (an
// evacuation, by cordon or by a rollout, cordons first) run again the VMs
// left evicted on it and booked nowhere else: moves cut short (the
// leader that ran them died) before the VM was booked elsewhere.
func (p *Provider) returnEvicted(ctx context.Context, machines []resource.Projected[failoverView]) {
	booked := map[string]int{}
	for _, m := range machines {
		for _, e := range m.Properties.VMs {
			booked[strings.ToLower(e.ID)]++
		}
	}
	for _, m := range machines {
		if m.Properties.LivenessState != "Ready" || m.Properties.CordonStatus == "Cordoned" {
			continue
		}
		for _, e := range m.Properties.VMs {
			if e.Evicted && booked[strings.ToLower(e.ID)] == 1 {
				if err := p.unevict(ctx, m.ID, e.ID); err != nil {
					p.log.WarnContext(ctx, "an evicted VM was not given back to its machine", "machine", m.ID, "vm", e.ID, "err", err)
				}
			}
		}
	}
}

// fence powers a failed machine off through its BMC, so that whatever it
// still runs stops before its VMs start elsewhere; it fails when the BMC
// cannot confirm the machine is off.
func (p *Provider) fence(ctx context.Context, m *resource.Resource) error {
	bmc, err := p.dialBMC(ctx, m)
	if err != nil {
		return err
	}
	defer bmc.close(ctx)
	return bmc.client.PowerOff(ctx, bmc.system, true, 0)
}

// noteWaiting tells the VMs still on failed machine m why they wait.
func (p *Provider) noteWaiting(ctx context.Context, m *resource.Resource, why error) {
	for _, e := range hostedVMs(m) {
		id, err := arm.ParseID(e.ID)
		if err != nil {
			continue
		}
		msg := fmt.Sprintf("Its machine %s failed; it waits for room on another: %v", m.Name, why)
		p.svc.Upsert(ctx, id, func(r *resource.Resource, created bool) error {
			if created || !strings.EqualFold(str(r.Properties, "bareMetalMachineId"), m.ID) || str(r.Properties, "detailedStatusMessage") == msg {
				return resource.ErrUnchanged
			}
			set(r.Properties, map[string]any{"detailedStatus": "Error", "powerState": "Off", "detailedStatusMessage": msg})
			return nil
		})
	}
}
