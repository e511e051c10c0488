package store

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// view is one call of Attend's changed.
type view struct {
	ctx     context.Context
	members []Attendee
}

// TestRoster: replicas see each other join and leave; one whose lease
// lapsed (a freeze, say) is fenced off at once, drops out of the others'
// view, and comes back with a new presence.
func TestRoster(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, Config{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	attend := func(id string) <-chan view {
		views := make(chan view, 16)
		go s.Attend(ctx, "test", id, "url-of-"+id, 2*time.Second, func(ctx context.Context, m []Attendee) { views <- view{ctx, m} })
		return views
	}
	// next waits for a view whose members are want.
	next := func(views <-chan view, want ...string) view {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			select {
			case v := <-views:
				var ids []string
				for _, m := range v.members {
					ids = append(ids, m.ID)
					if m.Value != "url-of-"+m.ID {
						t.Fatalf("member %s published %q", m.ID, m.Value)
					}
				}
				if slices.Equal(ids, want) {
					return v
				}
			case <-timeout:
				t.Fatalf("no view of %v within 15 s", want)
			}
		}
	}
	a := attend("a")
	next(a, "a")
	b := attend("b")
	first := next(b, "a", "b")
	next(a, "a", "b")
	if _, err := s.Txn(first.ctx, Put("owned/x", []byte("1"))); err != nil {
		t.Fatalf("a present replica's write = %v", err)
	}

	// b's lease lapses.
	f := first.ctx.Value(fenceKey{}).(fence)
	resp, err := s.client.Get(ctx, f.key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("b's key: %v %v", resp, err)
	}
	if _, err := s.client.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(context.WithoutCancel(first.ctx), Put("owned/x", []byte("stale"))); !errors.Is(err, ErrFenced) {
		t.Errorf("the write of a replica whose presence lapsed = %v, want ErrFenced", err)
	}
	next(a, "a") // b left the view
	select {
	case <-first.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Error("b's context lasts after its presence lapsed")
	}
	again := next(b, "a", "b") // and came back
	next(a, "a", "b")
	if _, err := s.Txn(again.ctx, Put("owned/x", []byte("2"))); err != nil {
		t.Errorf("the write of b's new presence = %v", err)
	}
}
