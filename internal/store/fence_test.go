package store

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLeaderFenced: a leader whose lease lapsed cannot write with its
// leader context, even before it notices, while the next leader can.
func TestLeaderFenced(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, Config{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	led := make(chan context.Context)
	release := make(chan struct{})
	go s.Lead(ctx, "fence-test", "first", func(leaderCtx context.Context) {
		led <- leaderCtx
		<-release
	})
	first := <-led
	if _, err := s.Txn(first, Put("fenced/a", []byte("1"))); err != nil {
		t.Fatalf("the leader's write = %v", err)
	}
	// The first leader's lease lapses (a long pause, say): revoke it.
	f := first.Value(fenceKey{}).(fence)
	resp, err := s.client.Get(ctx, f.key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the election key: %v %v", resp, err)
	}
	if _, err := s.client.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	second := make(chan context.Context, 1)
	go s.Lead(ctx, "fence-test", "second", func(leaderCtx context.Context) {
		second <- leaderCtx
		<-ctx.Done()
	})
	var next context.Context
	select {
	case next = <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("no new leader 10 s after the first one's lease lapsed")
	}
	// A write the first leader was already making: its context may not be
	// cancelled yet.
	if _, err := s.Txn(context.WithoutCancel(first), Put("fenced/a", []byte("stale"))); !errors.Is(err, ErrFenced) {
		t.Errorf("the deposed leader's write = %v, want ErrFenced", err)
	}
	if _, err := s.Txn(next, Put("fenced/a", []byte("2"))); err != nil {
		t.Errorf("the new leader's write = %v", err)
	}
	if kv, err := s.Get(ctx, "fenced/a"); err != nil || string(kv.Value) != "2" {
		t.Errorf("fenced/a = %q, %v, want the new leader's 2", kv.Value, err)
	}
	// Writes without a leader context are not fenced, and a conflict is
	// still a conflict for a leader.
	if _, err := s.Txn(ctx, Put("fenced/b", []byte("x"))); err != nil {
		t.Errorf("an ordinary write = %v", err)
	}
	if _, err := s.Txn(next, Create("fenced/b", []byte("y"))); !errors.Is(err, ErrConflict) {
		t.Errorf("the leader's create of an existing key = %v, want ErrConflict", err)
	}
	close(release)
}
