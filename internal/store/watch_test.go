package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

// waitLimit bounds every wait on the real etcd; a healthy store answers in
// milliseconds.
const waitLimit = 10 * time.Second

// receive reads n events from ch.
func receive(t *testing.T, ch <-chan store.Event, n int) []store.Event {
	t.Helper()
	var got []store.Event
	timeout := time.After(waitLimit)
	for len(got) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("Watch channel closed after %d events %v, want %d", len(got), got, n)
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("Watch: got %d events %v in %v, want %d", len(got), got, waitLimit, n)
		}
	}
	return got
}

// quiet checks that ch delivers nothing for a little while.
func quiet(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		t.Errorf("Watch sent %v (open %v), want nothing", ev, ok)
	case <-time.After(100 * time.Millisecond):
	}
}

// closed waits for ch to close, discarding events.
func closed(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("Watch channel still open %v after its context ended", waitLimit)
		}
	}
}

func TestWatch(t *testing.T) {
	s := storetest.Start(t)
	ctx := t.Context()
	opts := cmp.Options{cmpopts.EquateEmpty(), ignoreCreated}

	start, err := s.Revision(ctx)
	if err != nil {
		t.Fatalf("Revision() = %v", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	ch := s.Watch(wctx, "w/", start)

	r1 := put(t, s, "w/a", "1")
	r2 := put(t, s, "w/b", "2")
	put(t, s, "w", "outside", "w0", "outside", "x/a", "outside")
	r4, err := s.Txn(ctx, store.Delete("w/a"))
	if err != nil {
		t.Fatalf("Txn(Delete(w/a)) = %v", err)
	}
	r5, err := s.Txn(ctx, store.Put("w/a", []byte("3")), store.Put("w/c/d", []byte("4")))
	if err != nil {
		t.Fatalf("Txn(Put(w/a), Put(w/c/d)) = %v", err)
	}
	if _, err := s.Txn(ctx, store.Delete("w/missing")); err != nil { // deletes nothing: no event
		t.Fatalf("Txn(Delete(w/missing)) = %v", err)
	}
	r6, err := s.Txn(ctx, store.DeletePrefix("w/c/"))
	if err != nil {
		t.Fatalf("Txn(DeletePrefix(w/c/)) = %v", err)
	}
	want := []store.Event{
		{KV: store.KV{Key: "w/a", Value: []byte("1"), Revision: r1}},
		{KV: store.KV{Key: "w/b", Value: []byte("2"), Revision: r2}},
		{Deleted: true, KV: store.KV{Key: "w/a", Revision: r4}},
		{KV: store.KV{Key: "w/a", Value: []byte("3"), Revision: r5}},
		{KV: store.KV{Key: "w/c/d", Value: []byte("4"), Revision: r5}},
		{Deleted: true, KV: store.KV{Key: "w/c/d", Revision: r6}},
	}

	t.Run("sees changes in order", func(t *testing.T) {
		got := receive(t, ch, len(want))
		if diff := cmp.Diff(want, got, opts); diff != "" {
			t.Errorf("Watch(w/, %d) events mismatch (-want +got):\n%s", start, diff)
		}
		quiet(t, ch)
	})

	t.Run("closes when its context ends", func(t *testing.T) {
		cancel()
		closed(t, ch)
	})

	t.Run("replays from an old revision", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got := receive(t, s.Watch(ctx, "w/", start), len(want))
		if diff := cmp.Diff(want, got, opts); diff != "" {
			t.Errorf("Watch(w/, %d) replay mismatch (-want +got):\n%s", start, diff)
		}
		// Only the changes after the revision given.
		ch := s.Watch(ctx, "w/", r2)
		got = receive(t, ch, len(want)-2)
		if diff := cmp.Diff(want[2:], got, opts); diff != "" {
			t.Errorf("Watch(w/, %d) replay mismatch (-want +got):\n%s", r2, diff)
		}
		// The replay goes on into live changes.
		r7 := put(t, s, "w/z", "live")
		got = receive(t, ch, 1)
		wantLive := []store.Event{{KV: store.KV{Key: "w/z", Value: []byte("live"), Revision: r7}}}
		if diff := cmp.Diff(wantLive, got, opts); diff != "" {
			t.Errorf("Watch(w/, %d) live mismatch (-want +got):\n%s", r2, diff)
		}
	})

	t.Run("closes while nobody reads", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		ch := s.Watch(ctx, "w/", start) // history that nobody reads
		time.Sleep(50 * time.Millisecond)
		cancel()
		closed(t, ch)
	})
}

// returned waits for a Lead to return nil.
func returned(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s = %v after its context ended, want nil", what, err)
		}
	case <-time.After(waitLimit):
		t.Errorf("%s still running %v after its context ended", what, waitLimit)
	}
}

func TestLead(t *testing.T) {
	s := storetest.Start(t)

	t.Run("one leader at a time, takeover on cancel", func(t *testing.T) {
		var running, overlaps atomic.Int32
		won := make(chan string, 10)
		cancelled := make(chan string, 10)
		fn := func(id string) func(ctx context.Context) {
			return func(ctx context.Context) {
				if running.Add(1) > 1 {
					overlaps.Add(1)
				}
				won <- id
				<-ctx.Done()
				running.Add(-1)
				cancelled <- id
			}
		}
		type replica struct {
			cancel context.CancelFunc
			done   chan error
		}
		replicas := map[string]replica{}
		for _, id := range []string{"r1", "r2"} {
			ctx, cancel := context.WithCancel(t.Context())
			r := replica{cancel: cancel, done: make(chan error, 1)}
			replicas[id] = r
			go func() { r.done <- s.Lead(ctx, "test", id, fn(id)) }()
		}
		stopped := map[string]bool{}
		defer func() {
			for id, r := range replicas {
				r.cancel()
				if !stopped[id] {
					returned(t, "Lead("+id+")", r.done)
				}
			}
		}()
		next := func() string {
			t.Helper()
			select {
			case id := <-won:
				return id
			case <-time.After(waitLimit):
				t.Fatalf("no leader after %v", waitLimit)
				return ""
			}
		}

		first := next()
		// Give the other replica a chance to (wrongly) win too.
		time.Sleep(200 * time.Millisecond)
		select {
		case id := <-won:
			t.Fatalf("%s won while %s leads", id, first)
		default:
		}

		t0 := time.Now()
		replicas[first].cancel()
		returned(t, "Lead("+first+")", replicas[first].done)
		stopped[first] = true
		select {
		case id := <-cancelled:
			if id != first {
				t.Errorf("fn of %s was cancelled, want %s", id, first)
			}
		default:
			t.Errorf("Lead(%s) returned before its fn's context was cancelled", first)
		}

		second := next()
		if second == first {
			t.Errorf("leader after %s stepped down = %s, want the other replica", first, second)
		}
		// Stepping down resigns; the other should not wait for the lease
		// (10s) to expire.
		if took := time.Since(t0); took > 5*time.Second {
			t.Errorf("takeover took %v, want it without waiting for the lease to expire", took)
		}
		if n := overlaps.Load(); n != 0 {
			t.Errorf("fn started %d times while another replica's fn ran, want 0", n)
		}
	})

	t.Run("fn returning early campaigns again", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var calls atomic.Int32
		done := make(chan error, 1)
		go func() {
			done <- s.Lead(ctx, "again", "r1", func(ctx context.Context) {
				if calls.Add(1) == 3 {
					cancel()
				}
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Lead() = %v, want nil", err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("Lead() still running after %v, fn called %d times", waitLimit, calls.Load())
		}
		if n := calls.Load(); n != 3 {
			t.Errorf("fn called %d times, want 3", n)
		}
	})

	t.Run("returns when ctx ends while campaigning", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		leading := make(chan struct{})
		holder := make(chan error, 1)
		go func() {
			holder <- s.Lead(ctx, "busy", "holder", func(ctx context.Context) {
				close(leading)
				<-ctx.Done()
			})
		}()
		select {
		case <-leading:
		case <-time.After(waitLimit):
			t.Fatalf("Lead(holder) did not lead within %v", waitLimit)
		}
		wctx, wcancel := context.WithCancel(t.Context())
		waiter := make(chan error, 1)
		go func() {
			waiter <- s.Lead(wctx, "busy", "waiter", func(ctx context.Context) {
				t.Errorf("waiter became leader while the holder leads")
			})
		}()
		time.Sleep(100 * time.Millisecond)
		wcancel()
		select {
		case err := <-waiter:
			if err != nil {
				t.Errorf("Lead(waiter) = %v, want nil", err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("Lead(waiter) did not return %v after its context ended", waitLimit)
		}
		cancel()
		returned(t, "Lead(holder)", holder)
	})
}

// TestWatchAfterManyEnd ends many watches at once and then watches again.
// Through etcd's in-process client (v3client) this wedges the watch stream
// that all of a Store's watches share (etcd-io/etcd#18879, #20716): the new
// Watch never delivers, and elections, which watch too, never complete.
func TestWatchAfterManyEnd(t *testing.T) {
	s := storetest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	for range 100 {
		s.Watch(ctx, "many/", 0)
	}
	cancel()

	rev := put(t, s, "after/a", "1")
	got := make(chan store.Event, 1)
	go func() {
		for ev := range s.Watch(t.Context(), "after/", rev-1) {
			got <- ev
			return
		}
	}()
	select {
	case ev := <-got:
		want := store.Event{KV: store.KV{Key: "after/a", Value: []byte("1"), Revision: rev}}
		if diff := cmp.Diff(want, ev, ignoreCreated); diff != "" {
			t.Errorf("Watch(after/, %d) mismatch (-want +got):\n%s", rev-1, diff)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("Watch(after/, %d) delivered nothing in 3s after 100 other watches ended, want the put at %d", rev-1, rev)
	}
}
