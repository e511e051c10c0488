package liveness

import "sync/atomic"

// index finds a machine by name without a lock, so that heartbeats on many
// cores write nothing but their own machine's word. It is a hash table
// with open addressing (linear probing): readers probe it with atomic
// loads; the one writer, holding Tracker.mu, adds machines, replaces
// removed ones with a tombstone, and when the table is half full (live
// machines and tombstones) builds a new one and swaps it in whole. A
// reader still probing the old table may miss a machine being registered
// or find one being forgotten, as if it had come a moment earlier.
type index struct {
	slots []atomic.Pointer[machine]
	mask  uint64
	used  int // slots that are not empty; only the writer reads it
}

// tombstone marks the slot of a removed machine: a probe goes on past it.
var tombstone = &machine{}

func newIndex(live int) *index {
	size := 16
	for size < 3*live { // a third full at most, so a rebuild is rare
		size *= 2
	}
	return &index{slots: make([]atomic.Pointer[machine], size), mask: uint64(size - 1)}
}

// find is the machine named name, whose hash is h, or nil.
func (x *index) find(name string, h uint64) *machine {
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		m := x.slots[i].Load()
		if m == nil {
			return nil
		}
		if m.hash == h && m != tombstone && m.name == name {
			return m
		}
	}
}

// put adds m, which is not in x; x has an empty slot to spare.
func (x *index) put(m *machine) {
	for i := m.hash & x.mask; ; i = (i + 1) & x.mask {
		if x.slots[i].Load() == nil {
			x.slots[i].Store(m)
			x.used++
			return
		}
	}
}

// remove replaces m with a tombstone.
func (x *index) remove(m *machine) {
	for i := m.hash & x.mask; ; i = (i + 1) & x.mask {
		switch x.slots[i].Load() {
		case m:
			x.slots[i].Store(tombstone)
			return
		case nil:
			return
		}
	}
}

// insert adds m to the tracker's index, rebuilding it first when it would
// be more than half full. t.mu is held.
func (t *Tracker) insert(m *machine) {
	x := t.index.Load()
	if (x.used+1)*2 > len(x.slots) {
		bigger := newIndex(t.machines + 1)
		for i := range x.slots {
			if old := x.slots[i].Load(); old != nil && old != tombstone {
				bigger.put(old)
			}
		}
		t.index.Store(bigger)
		x = bigger
	}
	x.put(m)
}
