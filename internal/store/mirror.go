package store

import (
	"context"
	"sync"
	"time"
)

// Mirror is an in-memory copy of a collection, kept current by a watch:
// for data read on every request and written rarely (subscriptions, later
// role assignments), so that reading it costs no round trip to etcd. It
// lags the store by the watch's delay; a write's own transaction must still
// guard on what it depends on.
type Mirror[T any] struct {
	c       Collection[T]
	s       *Store
	mu      sync.RWMutex
	items   map[string]Item[T]
	version uint64 // counts changes, so that users can cache what they derive
	ready   chan struct{}
	// changed holds, by name, the channel Changed gave out for the
	// document's next change, which closes it.
	changed map[string]chan struct{}
}

// NewMirror starts mirroring c until ctx ends. Call Wait before relying on
// its contents.
func NewMirror[T any](ctx context.Context, s *Store, c Collection[T]) *Mirror[T] {
	m := &Mirror[T]{c: c, s: s, items: map[string]Item[T]{}, ready: make(chan struct{}), changed: map[string]chan struct{}{}}
	go m.run(ctx)
	return m
}

func (m *Mirror[T]) run(ctx context.Context) {
	first := true
	for ctx.Err() == nil {
		rev, err := m.load(ctx)
		if err != nil {
			m.s.log.WarnContext(ctx, "mirror load failed", "prefix", m.c.prefix, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if first {
			close(m.ready)
			first = false
		}
		for ev := range m.s.Watch(ctx, m.c.prefix, rev) {
			m.apply(ev)
		}
	}
}

// load replaces the copy with a fresh list and returns its revision.
func (m *Mirror[T]) load(ctx context.Context) (int64, error) {
	rev, err := m.s.Revision(ctx)
	if err != nil {
		return 0, err
	}
	items := map[string]Item[T]{}
	after := ""
	for {
		page, more, err := m.c.List(ctx, m.s, "", after, 1000)
		if err != nil {
			return 0, err
		}
		for _, it := range page {
			items[it.Name] = it
			after = it.Name
		}
		if !more {
			break
		}
	}
	m.mu.Lock()
	m.items = items
	m.version++
	for name, ch := range m.changed { // any of them may have changed
		close(ch)
		delete(m.changed, name)
	}
	m.mu.Unlock()
	return rev, nil
}

func (m *Mirror[T]) apply(ev Event) {
	name := ev.KV.Key[len(m.c.prefix):]
	m.mu.Lock()
	defer m.mu.Unlock()
	m.version++
	if ch, ok := m.changed[name]; ok {
		close(ch)
		delete(m.changed, name)
	}
	if ev.Deleted {
		delete(m.items, name)
		return
	}
	it, err := m.c.Decode(ev.KV)
	if err != nil {
		m.s.log.Warn("mirror skipped an undecodable value", "key", ev.KV.Key, "err", err)
		return
	}
	m.items[name] = it
}

// Wait blocks until the first load is done.
func (m *Mirror[T]) Wait(ctx context.Context) error {
	select {
	case <-m.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Changed returns a channel that closes at the next change of the
// document called name: a write, its deletion, or a reload of the whole
// mirror. It lets a caller wait for a document to reach a state without
// polling: take the channel, then Get, then wait on the channel if the
// document is not there yet.
func (m *Mirror[T]) Changed(name string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, ok := m.changed[name]
	if !ok {
		ch = make(chan struct{})
		m.changed[name] = ch
	}
	return ch
}

// Get returns the mirrored document called name.
func (m *Mirror[T]) Get(name string) (Item[T], bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	it, ok := m.items[name]
	return it, ok
}

// All returns every mirrored document, in no particular order, and the
// mirror's version: it changes whenever the contents do.
func (m *Mirror[T]) All() ([]Item[T], uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Item[T], 0, len(m.items))
	for _, it := range m.items {
		out = append(out, it)
	}
	return out, m.version
}

// Version changes whenever the contents do.
func (m *Mirror[T]) Version() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.version
}
