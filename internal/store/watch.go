package store

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// Event is one change seen by Watch.
type Event struct {
	Deleted bool
	KV      KV // Value is empty for a deletion
}

// Watch sends the changes to keys under prefix made after revision rev.
// The channel closes when ctx ends or the watch breaks (for example when
// rev has been compacted away); a level-based caller lists afresh and
// watches again from the list's revision.
func (s *Store) Watch(ctx context.Context, prefix string, rev int64) <-chan Event {
	out := make(chan Event, 64)
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	watcher := s.newWatcher()
	wch := watcher.Watch(ctx, s.prefix+prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	go func() {
		defer close(out)
		defer watcher.Close()
		defer cancel()
		for resp := range wch {
			if err := resp.Err(); err != nil {
				s.log.WarnContext(ctx, "watch ended", "prefix", prefix, "err", err)
				return
			}
			for _, ev := range resp.Events {
				e := Event{
					Deleted: ev.Type == clientv3.EventTypeDelete,
					KV:      KV{Key: string(ev.Kv.Key[len(s.prefix):]), Value: ev.Kv.Value, Revision: ev.Kv.ModRevision, Created: ev.Kv.CreateRevision},
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// newWatcher gives each watch a stream of its own: with etcd's
// in-process client, many watches ending at once on one shared stream
// wedge it for every other watch (etcd-io/etcd#18879), and the
// in-process client cannot open a second stream, so embedded mode makes
// a client per watch. Watches are few and long-lived.
func (s *Store) newWatcher() clientv3.Watcher {
	if s.etcd != nil {
		return v3client.New(s.etcd.Server)
	}
	return clientv3.NewWatcher(s.client)
}

// Lead runs fn whenever this process holds the leadership called name, and
// keeps campaigning for it until ctx ends. fn's context is cancelled when the
// leadership is lost (the session's lease expired, say after a network
// partition), so that at most one replica runs fn at a time. id names this
// replica in the election.
func (s *Store) Lead(ctx context.Context, name, id string, fn func(ctx context.Context)) error {
	for ctx.Err() == nil {
		if err := s.leadOnce(ctx, name, id, fn); err != nil {
			s.log.WarnContext(ctx, "leadership lost", "election", name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (s *Store) leadOnce(ctx context.Context, name, id string, fn func(ctx context.Context)) error {
	session, err := concurrency.NewSession(s.client, concurrency.WithTTL(10), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("store: election %q: session: %w", name, err)
	}
	defer session.Close()
	election := concurrency.NewElection(session, s.prefix+"elections/"+name)
	if err := election.Campaign(ctx, id); err != nil {
		return fmt.Errorf("store: election %q: campaign: %w", name, err)
	}
	// Every write made with leaderCtx is fenced by the election's key: it
	// fails once the session's lease has lapsed, even before this replica
	// notices, so a deposed leader cannot write after the next one starts.
	leaderCtx, cancel := context.WithCancel(context.WithValue(ctx, fenceKey{},
		fence{holder: fmt.Sprintf("no longer the leader of %q", name), key: election.Key(), rev: election.Rev()}))
	defer cancel()
	go func() {
		select {
		case <-session.Done():
			cancel()
		case <-leaderCtx.Done():
		}
	}()
	s.log.InfoContext(ctx, "leadership won", "election", name, "id", id)
	fn(leaderCtx)
	resignCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer done()
	_ = election.Resign(resignCtx) // the lease expiring does the same
	return nil
}

// fence is the leadership or presence a write depends on: a key (the
// election's, the roster's), as this replica created it.
type fence struct {
	holder string // what the replica is no longer when the fence fails, for errors
	key    string
	rev    int64
}

type fenceKey struct{}

// leads reports whether the fence's key is still the one this replica
// created.
func (s *Store) leads(ctx context.Context, f fence) bool {
	resp, err := s.client.Get(context.WithoutCancel(ctx), f.key)
	return err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].CreateRevision == f.rev
}
