package networkcloud

import (
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
	vm     string
	gpus   int
	specOn func(m *resource.Resource) (agentapi.VM, error)
	chosen func(m *resource.Resource) (*resource.Resource, error)

	spec *agentapi.VM // the VM's spec on the machine, made once
	told bool         // chosen has been told of the machine

	// What the write that took it did, once done is closed (and turn is
	// false): see book.
	m             *resource.Resource
	booked, wrote bool
	revision      int64
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

// book books the VM on machine id, once chosen has been told of the
// machine, if it is still Ready, uncordoned and has room: booked says
// whether it is, with the revision of the write that booked it (0: it
// was booked there already). A machine that refused is returned with the
// revision it was read at. Bookings of one machine are written one batch
// at a time, in the order they came, each checked against the room the
// ones before it left.
func (p *Provider) book(ctx context.Context, vm, id string, gpus int, specOn func(m *resource.Resource) (agentapi.VM, error),
	chosen func(m *resource.Resource) (*resource.Resource, error)) (m *resource.Resource, booked bool, revision int64, err error) {
	b := &booking{vm: vm, gpus: gpus, specOn: specOn, chosen: chosen, done: make(chan struct{})}
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
	return b.m, b.booked, b.revision, b.err
}

// writeBookings writes the machine's queue of bookings, self's first,
// then hands the next queue, if any came meanwhile, to its first
// booking's caller.
func (p *Provider) writeBookings(ctx context.Context, id, key string, self *booking) {
	q := &p.bookings
	q.mu.Lock()
	batch := q.waiting[key]
	q.waiting[key] = nil // still writing: later bookings queue
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

// bookAll books the batch on machine id in one compare-and-swap of its
// list.
func (p *Provider) bookAll(ctx context.Context, id string, batch []*booking) {
	mid, err := arm.ParseID(id)
	if err != nil {
		for _, b := range batch {
			b.err = err
		}
		return
	}
	m, err := p.svc.Upsert(ctx, mid, func(r *resource.Resource, created bool) error {
		for _, b := range batch { // Upsert runs this again after a conflict: only the last run counts
			b.booked, b.wrote, b.err = false, false, nil
		}
		if created {
			return resource.ErrUnchanged
		}
		list := bookedVMs(r)
		var fit []*booking
		each(batch, func(b *booking) {
			if b.spec != nil || lists(list, b.vm) {
				return
			}
			spec, err := b.specOn(r)
			if err != nil {
				b.err = err
				return
			}
			b.spec = &spec
		})
		cores, mem := p.room(str(r.Properties, "machineSkuId"))
		for _, x := range list {
			cores, mem = cores-x.Cores, mem-x.MemoryMiB
		}
		ready := schedulableNow(r)
		for _, b := range batch {
			switch {
			case lists(list, b.vm):
				b.booked = true
			case b.err != nil:
			case !ready || cores < b.spec.Cores || mem < b.spec.MemoryMiB || !giveGPUs(r, list, b.spec, b.gpus):
				// taken, cordoned or down meanwhile: schedule again
			default:
				fit = append(fit, b)
				cores, mem = cores-b.spec.Cores, mem-b.spec.MemoryMiB
				list = append(list, bookedVM{ID: b.vm, Cores: b.spec.Cores, MemoryMiB: b.spec.MemoryMiB, GPUs: b.spec.GPUs})
			}
		}
		each(fit, func(b *booking) { // before the booking, which the machine's agent acts on
			if b.told {
				return
			}
			if _, b.err = b.chosen(r); b.err == nil {
				b.told = true
			}
		})
		// Only the new entries are converted: the list holds every VM's spec.
		entries, _ := r.Properties[machineVMs].([]any)
		added := slices.Clip(entries)
		for _, b := range fit {
			if b.err == nil {
				added = append(added, jsonValue(*b.spec))
				b.booked, b.wrote = true, true
			}
		}
		if len(added) == len(entries) {
			return resource.ErrUnchanged
		}
		r.Properties[machineVMs] = added
		return nil
	})
	var revision int64
	if m != nil {
		revision, _ = m.Revision()
	}
	for _, b := range batch {
		switch {
		case err != nil:
			b.err = err
		case m == nil:
			b.booked, b.err = false, nil
		default:
			b.m, b.revision = m, revision
			if b.booked && !b.wrote {
				b.revision = 0
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
