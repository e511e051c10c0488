package networkcloud

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// A booking asks for a VM to be booked on a machine (see book).
type booking struct {
	vm      string
	gpus    int
	specOn  func(m *resource.Resource) (agentapi.VM, error)
	message func(m *resource.Resource) string // the VM's status message once booked

	spec *agentapi.VM // the VM's spec on the machine, made once

	// What the write that took it did, once done is closed (and turn is
	// false): see book.
	m             *resource.Resource
	booked, wrote bool
	revision      int64 // of the write that booked it; 0: booked there already
	named         int64 // of the write that named the machine the VM's host; 0: it named it already
	err           error

	done chan struct{}
	// turn says that done was closed to hand this booking the writing of
	// its machine's queue, this booking first, rather than because it
	// was written.
	turn bool
}

// bookingQueue holds, for each machine with a booking being written (by
// lower-case ID), the bookings that came meanwhile: the next write takes
// them all, so that VMs placed on one machine at about the same time
// cost one read and one write of its list, not one each.
type bookingQueue struct {
	mu      sync.Mutex
	waiting map[string][]*booking
}

// book books the VM on machine id if it is still Ready, uncordoned and
// has room, and names the machine the VM's host (see place), and returns
// what it did: booked says whether it is booked there, with the machine
// as stored; a machine that refused is returned with the revision it was
// read at; errVMGone says the VM is gone or going. Bookings of one
// machine are written one batch at a time, in the order they came, each
// checked against the room the ones before it left.
func (p *Provider) book(ctx context.Context, vm, id string, gpus int, specOn func(m *resource.Resource) (agentapi.VM, error),
	message func(m *resource.Resource) string) *booking {
	b := &booking{vm: vm, gpus: gpus, specOn: specOn, message: message, done: make(chan struct{})}
	key := strings.ToLower(id)
	q := &p.bookings
	q.mu.Lock()
	queue, writing := q.waiting[key]
	if q.waiting == nil {
		q.waiting = map[string][]*booking{}
	}
	q.waiting[key] = append(queue, b)
	q.mu.Unlock()
	if writing {
		<-b.done // the write is bounded: waiting keeps the queue's order
	}
	if !writing || b.turn {
		p.writeBookings(ctx, id, key, b)
	}
	return b
}

// writeBookings writes the machine's queue of bookings, self's first,
// then hands the next queue, if any came meanwhile, to its first
// booking's caller.
func (p *Provider) writeBookings(ctx context.Context, id, key string, self *booking) {
	q := &p.bookings
	q.mu.Lock()
	queue := q.waiting[key]
	n := min(len(queue), maxBookings)
	batch := queue[:n:n]
	q.waiting[key] = queue[n:] // still writing: later bookings queue
	q.mu.Unlock()

	p.bookAll(ctx, id, batch)
	for _, b := range batch {
		if b != self {
			close(b.done)
		}
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	next := q.waiting[key]
	if len(next) == 0 {
		delete(q.waiting, key)
		return
	}
	next[0].turn = true
	close(next[0].done)
}

// maxBookings bounds the bookings one write takes: its transaction
// writes the machine and each VM (etcd takes at most store.MaxTxnOps
// operations in one).
const maxBookings = 100

// bookAll books the batch on machine id and names the machine the host
// of the VMs it books, in one transaction with the machine and the VMs.
func (p *Provider) bookAll(ctx context.Context, id string, batch []*booking) {
	ids := make([]arm.ID, 1, len(batch)+1)
	var err error
	if ids[0], err = arm.ParseID(id); err == nil {
		for _, b := range batch {
			vid, perr := arm.ParseID(b.vm)
			err = cmp.Or(err, perr)
			ids = append(ids, vid)
		}
	}
	if err != nil {
		for _, b := range batch {
			b.err = err
		}
		return
	}
	zone, zoneRead := "", false // of the machine's rack
	var named []bool            // by booking: its write names the VM's host
	stored, err := p.svc.UpsertAll(ctx, ids, func(rs []*resource.Resource) ([]bool, error) {
		for _, b := range batch { // this runs again after a conflict: only the last run counts
			b.booked, b.wrote, b.err = false, false, nil
		}
		m, vms := rs[0], rs[1:]
		if m == nil {
			return nil, resource.ErrUnchanged
		}
		changed := make([]bool, len(rs))
		named = changed[1:]
		// A VM gone or going is booked nowhere: its entry, if it has one
		// (booked before a crash), leaves with this write.
		gone := func(i int) bool { return vms[i] == nil || vms[i].ProvisioningState() == resource.StateDeleting }
		entries, _ := m.Properties[machineVMs].([]any)
		kept := slices.DeleteFunc(slices.Clone(entries), func(e any) bool {
			x, _ := e.(map[string]any)
			i := slices.IndexFunc(batch, func(b *booking) bool { return strings.EqualFold(b.vm, str(x, "id")) })
			return i >= 0 && gone(i)
		})
		if len(kept) < len(entries) {
			m.Properties[machineVMs], changed[0] = kept, true
		}
		list := bookedVMs(m)
		var unspecified []*booking
		for i, b := range batch {
			if b.spec == nil && !gone(i) && !lists(list, b.vm) {
				unspecified = append(unspecified, b)
			}
		}
		each(unspecified, func(b *booking) {
			spec, err := b.specOn(m)
			if err != nil {
				b.err = err
				return
			}
			b.spec = &spec
		})
		if !zoneRead {
			zone, zoneRead = p.zoneOf(ctx, m), true
		}
		cores, mem := p.room(str(m.Properties, "machineSkuId"))
		for _, x := range list {
			cores, mem = cores-x.Cores, mem-x.MemoryMiB
		}
		ready := schedulableNow(m)
		for i, b := range batch {
			switch {
			case gone(i):
				b.err = errVMGone
			case lists(list, b.vm):
				b.booked = true
				changed[i+1] = placeOn(vms[i], m, zone, b.message(m))
			case b.err != nil:
			case !ready || cores < b.spec.Cores || mem < b.spec.MemoryMiB || !giveGPUs(m, list, b.spec, b.gpus):
				// taken, cordoned or down meanwhile: schedule again
			default:
				cores, mem = cores-b.spec.Cores, mem-b.spec.MemoryMiB
				list = append(list, bookedVM{ID: b.vm, Cores: b.spec.Cores, MemoryMiB: b.spec.MemoryMiB, GPUs: b.spec.GPUs})
				// Only the new entry is converted: the list holds every VM's spec.
				kept = append(kept, jsonValue(*b.spec))
				m.Properties[machineVMs], changed[0] = kept, true
				changed[i+1] = placeOn(vms[i], m, zone, b.message(m))
				b.booked, b.wrote = true, true
			}
		}
		return changed, nil
	})
	for i, b := range batch {
		switch {
		case err != nil:
			b.booked, b.err = false, err
		case stored[0] == nil:
			b.booked, b.err = false, nil
		default:
			b.m = stored[0]
			b.revision, _ = b.m.Revision()
			if b.booked && !b.wrote {
				b.revision = 0
			}
			if named[i] {
				b.named, _ = stored[i+1].Revision()
			}
		}
	}
}

// each runs fn on every booking of bs, at once when there are several.
func each(bs []*booking, fn func(b *booking)) {
	if len(bs) == 1 {
		fn(bs[0])
		return
	}
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() { fn(b) })
	}
	wg.Wait()
}
