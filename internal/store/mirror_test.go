package store_test

import (
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

// TestMirrorChanged: the channel of a document closes when that document
// is written or deleted, and not when another one is.
func TestMirrorChanged(t *testing.T) {
	s := storetest.Start(t)
	ctx := t.Context()
	c := store.NewCollection[int]("m/")
	m := store.NewMirror(ctx, s, c)
	if err := m.Wait(ctx); err != nil {
		t.Fatalf("Wait() = %v", err)
	}
	isClosed := func(ch <-chan struct{}, within time.Duration) bool {
		select {
		case <-ch:
			return true
		case <-time.After(within):
			return false
		}
	}

	a := m.Changed("a")
	if got := m.Changed("a"); got != a {
		t.Errorf("Changed(a) twice gave two channels, want one")
	}
	if _, err := s.Txn(ctx, c.Put("b", 1)); err != nil {
		t.Fatal(err)
	}
	if isClosed(a, 100*time.Millisecond) {
		t.Errorf("Changed(a) closed when b was written")
	}
	if _, err := s.Txn(ctx, c.Put("a", 2)); err != nil {
		t.Fatal(err)
	}
	if !isClosed(a, waitLimit) {
		t.Fatalf("Changed(a) still open %v after a was written", waitLimit)
	}
	if it, ok := m.Get("a"); !ok || it.Value != 2 {
		t.Errorf("Get(a) after its channel closed = %v, %v, want 2", it.Value, ok)
	}

	a = m.Changed("a")
	if isClosed(a, 0) {
		t.Fatalf("Changed(a) after a change is closed already, want the next change's")
	}
	if _, err := s.Txn(ctx, c.Delete("a")); err != nil {
		t.Fatal(err)
	}
	if !isClosed(a, waitLimit) {
		t.Fatalf("Changed(a) still open %v after a was deleted", waitLimit)
	}
}
