package store_test

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
)

// TestEmbeddedCluster runs three embedded members in one process on
// loopback, over TLS: the first alone, two admitted by AddMember (what the
// join endpoint does). A write through one is read through the others;
// with one member closed the two left keep a quorum and serve writes; the
// closed one, opened again on its data dir, is the same member and
// catches up; a member gone for good is removed.
func TestEmbeddedCluster(t *testing.T) {
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	stores := make([]*store.Store, 3)
	open := func(i int, m store.Member) {
		t.Helper()
		s, err := store.Open(t.Context(), store.Config{Dir: dirs[i], Member: m, Logger: log})
		if err != nil {
			t.Fatalf("Open(member %d) = %v", i, err)
		}
		stores[i] = s
		t.Cleanup(func() { s.Close() })
	}
	open(0, store.Member{})
	for i := 1; i < 3; i++ {
		peer := freePort(t)
		g, err := stores[0].AddMember(t.Context(), "m"+string(rune('0'+i)), "https://"+peer, nil)
		if err != nil {
			t.Fatalf("AddMember(m%d) = %v", i, err)
		}
		open(i, store.Member{PeerListen: peer, Join: &g})
	}
	if ms, err := stores[2].Members(t.Context()); err != nil || len(ms) != 3 {
		t.Fatalf("Members() = %v, %v, want 3 members", ms, err)
	}

	read := func(s *store.Store, key string) string {
		t.Helper()
		kv, err := s.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("Get(%q) = %v", key, err)
		}
		return string(kv.Value)
	}
	put(t, stores[0], "a", "1")
	for i, s := range stores {
		if got := read(s, "a"); got != "1" {
			t.Errorf("member %d: Get(a) = %q, want 1", i, got)
		}
	}

	// One member down: two of three are a quorum.
	stores[2].Close()
	put(t, stores[1], "b", "2")
	if got := read(stores[0], "b"); got != "2" {
		t.Errorf("Get(b) through member 0 with member 2 down = %q, want 2", got)
	}

	// Back on its data dir, without a grant: the same member, caught up.
	open(2, store.Member{})
	waitFor(t, "the restarted member to see b", func() bool {
		kv, err := stores[2].Get(t.Context(), "b")
		return err == nil && string(kv.Value) == "2"
	})
	if ms, err := stores[0].Members(t.Context()); err != nil || len(ms) != 3 {
		t.Fatalf("Members() after the restart = %v, %v, want the same 3", ms, err)
	}

	// Gone for good: removed, and the two left still write.
	stores[2].Close()
	if err := stores[0].RemoveMember(t.Context(), "m2"); err != nil {
		t.Fatalf("RemoveMember(m2) = %v", err)
	}
	if ms, err := stores[0].Members(t.Context()); err != nil || len(ms) != 2 {
		t.Fatalf("Members() after RemoveMember = %v, %v, want 2", ms, err)
	}
	put(t, stores[0], "c", "3")
	if got := read(stores[1], "c"); got != "3" {
		t.Errorf("Get(c) through member 1 = %q, want 3", got)
	}
}

// TestJoinGrantPinsCA checks that a joining member gets the cluster's CA,
// whose hash is what a join token pins.
func TestJoinGrantPinsCA(t *testing.T) {
	s, err := store.Open(t.Context(), store.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The member added never starts, and the cluster keeps calling it at
	// its peer URL: a port no test listens on, not a free one, which
	// another test's etcd could take meanwhile and then be called by a
	// cluster not its own ("incompatible with current running cluster").
	const nobody = "https://127.0.0.1:1"
	if _, err := s.AddMember(t.Context(), "a=b", nobody, nil); err == nil {
		t.Error("AddMember(name with '=') = nil, want an error")
	}
	g, err := s.AddMember(t.Context(), "other", nobody, []string{"127.0.0.1"})
	if err != nil {
		t.Fatalf("AddMember = %v", err)
	}
	if _, err := store.CAHash(g.CACert); err != nil {
		t.Errorf("CAHash(grant CA) = %v", err)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
