package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Attendee is a replica present in a roster, with what it published there
// (say, the address of an API it serves).
type Attendee struct {
	ID    string
	Value string
}

// Attend keeps this replica present in the roster called name, as id
// with value, until ctx ends, and calls changed with the members present
// (this replica among them, sorted by ID) every time they change. Its
// presence is a key under a lease of ttl: a replica that dies or freezes
// drops out of every member's view within ttl or so.
//
// changed's context lasts as long as this presence: it is cancelled when
// the lease lapses, and every write made with it is fenced by the
// presence (it fails with ErrFenced once the lease has lapsed, even
// before this replica notices), so a replica that froze cannot write as
// the owner of what the others gave away meanwhile. After a lapse Attend
// comes back with a new presence and calls changed again with a new
// context. changed is called from one goroutine, never concurrently.
func (s *Store) Attend(ctx context.Context, name, id, value string, ttl time.Duration, changed func(ctx context.Context, members []Attendee)) {
	for ctx.Err() == nil {
		if err := s.attendOnce(ctx, name, id, value, ttl, changed); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "roster presence lost", "roster", name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (s *Store) attendOnce(ctx context.Context, name, id, value string, ttl time.Duration, changed func(ctx context.Context, members []Attendee)) error {
	session, err := concurrency.NewSession(s.client, concurrency.WithTTL(max(int(ttl/time.Second), 1)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("store: roster %q: session: %w", name, err)
	}
	defer session.Close()
	dir := s.prefix + "rosters/" + name + "/"
	key := dir + id
	// A key left by this replica's previous presence is deleted first, so
	// that the key this one puts is new: its creation revision is what
	// fences its writes.
	if _, err := s.client.Delete(ctx, key); err != nil {
		return fmt.Errorf("store: roster %q: %w", name, err)
	}
	put, err := s.client.Put(ctx, key, value, clientv3.WithLease(session.Lease()))
	if err != nil {
		return fmt.Errorf("store: roster %q: %w", name, err)
	}
	presentCtx, cancel := context.WithCancel(context.WithValue(ctx, fenceKey{},
		fence{holder: fmt.Sprintf("no longer present in roster %q", name), key: key, rev: put.Header.Revision}))
	defer cancel()

	list, err := s.client.Get(presentCtx, dir, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("store: roster %q: %w", name, err)
	}
	present := map[string]string{}
	for _, kv := range list.Kvs {
		present[strings.TrimPrefix(string(kv.Key), dir)] = string(kv.Value)
	}
	watcher := s.newWatcher()
	defer watcher.Close()
	events := watcher.Watch(clientv3.WithRequireLeader(presentCtx), dir, clientv3.WithPrefix(), clientv3.WithRev(list.Header.Revision+1))
	s.log.InfoContext(ctx, "present in roster", "roster", name, "id", id)
	for {
		changed(presentCtx, attendees(present))
		select {
		case <-session.Done():
			return fmt.Errorf("store: roster %q: the lease lapsed", name)
		case <-ctx.Done():
			return nil
		case resp, ok := <-events:
			if !ok || resp.Err() != nil {
				return fmt.Errorf("store: roster %q: watch ended: %v", name, resp.Err())
			}
			for _, ev := range resp.Events {
				member := strings.TrimPrefix(string(ev.Kv.Key), dir)
				if ev.Type == clientv3.EventTypeDelete {
					delete(present, member)
				} else {
					present[member] = string(ev.Kv.Value)
				}
			}
			if _, ok := present[id]; !ok {
				return fmt.Errorf("store: roster %q: this replica's presence was removed", name)
			}
		}
	}
}

// attendees is present as a list sorted by ID.
func attendees(present map[string]string) []Attendee {
	out := make([]Attendee, 0, len(present))
	for id, v := range present {
		out = append(out, Attendee{ID: id, Value: v})
	}
	slices.SortFunc(out, func(a, b Attendee) int { return strings.Compare(a.ID, b.ID) })
	return out
}
