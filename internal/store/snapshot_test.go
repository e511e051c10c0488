package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

// TestSnapshotRestore takes a snapshot of a store, restores it into a
// new data directory, and opens it: the keys and the revision are there.
func TestSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	s := storetest.Start(t)
	if _, err := s.Txn(ctx, store.Put("a/1", []byte("one")), store.Put("a/2", []byte("two"))); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "snap.db")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.Snapshot(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := s.Txn(ctx, store.Put("a/3", []byte("after"))); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := store.Restore(file, dir); err != nil {
		t.Fatal(err)
	}
	if err := store.Restore(file, dir); err == nil || !strings.Contains(err.Error(), "already holds a store") {
		t.Errorf("a second Restore into %s = %v, want refused", dir, err)
	}
	r, err := store.Open(ctx, store.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for key, want := range map[string]string{"a/1": "one", "a/2": "two"} {
		if kv, err := r.Get(ctx, key); err != nil || string(kv.Value) != want {
			t.Errorf("Get(%s) after restore = %q, %v, want %q", key, kv.Value, err, want)
		}
	}
	if _, err := r.Get(ctx, "a/3"); err == nil {
		t.Error("a key written after the snapshot is in the restored store")
	}
	if got, err := r.Revision(ctx); err != nil || got < rev {
		t.Errorf("Revision after restore = %d, %v, want at least the snapshot's %d", got, err, rev)
	}
	if err := store.Restore(filepath.Join(t.TempDir(), "missing.db"), t.TempDir()); err == nil {
		t.Error("Restore of a missing snapshot: no error")
	}
}
