package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

// waitLimit bounds every wait on the real store; a healthy controller
// reacts in milliseconds.
const waitLimit = 10 * time.Second

// start runs a controller until the returned stop is called (or the test
// ends). stop waits for Run to return.
func start(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = "replica-1"
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run(%s) = %v after its context ended, want nil", cfg.Name, err)
				}
			case <-time.After(waitLimit):
				t.Errorf("Run(%s) still running %v after its context ended", cfg.Name, waitLimit)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// calls counts reconciles per name.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
	return c.n[name]
}

func (c *calls) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

func (c *calls) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for k, v := range c.n {
		m[k] = v
	}
	return m
}

// watchGoroutines counts the goroutines that forward a store.Watch.
func watchGoroutines() int {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		panic(err)
	}
	return strings.Count(buf.String(), "internal/store.(*Store).Watch.func1(")
}

func put(t *testing.T, s *store.Store, kv ...string) {
	t.Helper()
	for len(kv) > 0 {
		n := min(len(kv), 200)
		var ops []store.Op
		for i := 0; i < n; i += 2 {
			ops = append(ops, store.Put(kv[i], []byte(kv[i+1])))
		}
		if _, err := s.Txn(t.Context(), ops...); err != nil {
			t.Fatalf("Txn(put %d keys) = %v", n/2, err)
		}
		kv = kv[n:]
	}
}

func TestRun(t *testing.T) {
	s := storetest.Start(t)

	t.Run("reconciles existing and changed names", func(t *testing.T) {
		// More than one List page (1000) so that listing pages through.
		const n = 1200
		var kv []string
		want := map[string]int{}
		for i := range n {
			name := fmt.Sprintf("vm%04d", i)
			kv = append(kv, "level/"+name, "v1")
			want[name] = 1
		}
		put(t, s, kv...)
		// Outside the prefix: never reconciled.
		put(t, s, "level", "x", "level0", "x", "leve/l", "x")

		var c calls
		start(t, Config{
			Name: "level", Store: s, Prefix: "level/", MaxBackoff: 20 * time.Millisecond,
			Reconcile: func(ctx context.Context, name string) error {
				c.add(name)
				return nil
			},
		})
		eventually(t, "reconcile every existing name", func() bool { return len(c.snapshot()) >= n })
		time.Sleep(100 * time.Millisecond)
		if diff := cmp.Diff(want, c.snapshot()); diff != "" {
			t.Errorf("reconciles at start per name mismatch (-want +got):\n%s", diff)
		}

		put(t, s, "level/new", "v1")
		eventually(t, "reconcile a new name", func() bool { return c.get("new") == 1 })
		put(t, s, "level/vm0007", "v2")
		eventually(t, "reconcile a changed name", func() bool { return c.get("vm0007") == 2 })
		if _, err := s.Txn(t.Context(), store.Delete("level/vm0008")); err != nil {
			t.Fatalf("Txn(Delete(level/vm0008)) = %v", err)
		}
		eventually(t, "reconcile a deleted name", func() bool { return c.get("vm0008") == 2 })
		put(t, s, "level0", "y", "level", "y")
		time.Sleep(100 * time.Millisecond)
		for _, name := range []string{"", "0", "level", "level0"} {
			if got := c.get(name); got != 0 {
				t.Errorf("name %q reconciled %d times, want 0 (outside the prefix)", name, got)
			}
		}
	})

	t.Run("ignores deletions when told to", func(t *testing.T) {
		put(t, s, "ended/a", "v1", "ended/b", "v1")
		var c calls
		start(t, Config{
			Name: "ended", Store: s, Prefix: "ended/", IgnoreDeletions: true, MaxBackoff: 20 * time.Millisecond,
			Reconcile: func(ctx context.Context, name string) error {
				c.add(name)
				return nil
			},
		})
		eventually(t, "reconcile a and b", func() bool { return c.get("a") == 1 && c.get("b") == 1 })
		if _, err := s.Txn(t.Context(), store.Delete("ended/a")); err != nil {
			t.Fatal(err)
		}
		put(t, s, "ended/b", "v2") // after the deletion: once it is reconciled, the deletion was seen
		eventually(t, "reconcile b changed", func() bool { return c.get("b") == 2 })
		if got := c.get("a"); got != 1 {
			t.Errorf("a reconciled %d times, want once: its deletion is not reconciled", got)
		}
	})

	t.Run("retries with backoff until success", func(t *testing.T) {
		const fails = 3
		const maxBackoff = 400 * time.Millisecond
		var mu sync.Mutex
		var at []time.Time
		put(t, s, "retry/a", "v")
		start(t, Config{
			Name: "retry", Store: s, Prefix: "retry/", MaxBackoff: maxBackoff,
			Reconcile: func(ctx context.Context, name string) error {
				mu.Lock()
				defer mu.Unlock()
				at = append(at, time.Now())
				if len(at) <= fails {
					return fmt.Errorf("attempt %d: not yet", len(at))
				}
				return nil
			},
		})
		attempts := func() []time.Time {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(at)
		}
		eventually(t, "reconcile succeeds", func() bool { return len(attempts()) > fails })
		time.Sleep(maxBackoff + 100*time.Millisecond)
		got := attempts()
		if len(got) != fails+1 {
			t.Errorf("Reconcile called %d times, want %d (%d failures, then success)", len(got), fails+1, fails)
		}
		// After f failures, the retry waits at least half of
		// min(100ms·2^f, MaxBackoff).
		for f := 0; f+1 < len(got); f++ {
			least := min(100*time.Millisecond<<f, maxBackoff) / 2
			if gap := got[f+1].Sub(got[f]); gap < least {
				t.Errorf("retry after %d failures came after %v, want at least %v", f+1, gap, least)
			}
		}
	})

	t.Run("does not retry a terminal error", func(t *testing.T) {
		var c calls
		put(t, s, "terminal/a", "v1", "terminal/b", "v1")
		start(t, Config{
			Name: "terminal", Store: s, Prefix: "terminal/", MaxBackoff: 10 * time.Millisecond,
			Reconcile: func(ctx context.Context, name string) error {
				c.add(name)
				err := Terminal(errors.New("bad spec"))
				if name == "b" {
					err = fmt.Errorf("vm %q: %w", name, err)
				}
				return err
			},
		})
		eventually(t, "reconcile a and b", func() bool { return c.get("a") > 0 && c.get("b") > 0 })
		time.Sleep(300 * time.Millisecond)
		if diff := cmp.Diff(map[string]int{"a": 1, "b": 1}, c.snapshot()); diff != "" {
			t.Errorf("reconciles after a terminal error mismatch (-want +got):\n%s", diff)
		}
		// A change is reconciled again.
		put(t, s, "terminal/a", "v2")
		eventually(t, "reconcile a changed name", func() bool { return c.get("a") >= 2 })
	})

	t.Run("one reconcile per name at a time", func(t *testing.T) {
		names := []string{"a", "b", "c", "d"}
		var mu sync.Mutex
		inflight := map[string]int{}
		last := map[string]string{} // the value each name's latest reconcile saw
		var overlaps, total atomic.Int32
		start(t, Config{
			Name: "single", Store: s, Prefix: "single/", Workers: 8, MaxBackoff: 5 * time.Millisecond,
			Reconcile: func(ctx context.Context, name string) error {
				mu.Lock()
				inflight[name]++
				if inflight[name] > 1 {
					overlaps.Add(1)
				}
				mu.Unlock()
				defer func() {
					mu.Lock()
					inflight[name]--
					mu.Unlock()
				}()
				n := total.Add(1)
				kv, err := s.Get(ctx, "single/"+name)
				if err != nil {
					return err
				}
				time.Sleep(2 * time.Millisecond)
				mu.Lock()
				last[name] = string(kv.Value)
				mu.Unlock()
				if n%3 == 0 {
					return errors.New("flaky")
				}
				return nil
			},
		})
		for i := range 40 {
			for _, name := range names {
				put(t, s, "single/"+name, fmt.Sprint(i))
			}
		}
		for _, name := range names {
			put(t, s, "single/"+name, "final")
		}
		eventually(t, "every name reconciled at its final value", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, name := range names {
				if last[name] != "final" {
					return false
				}
			}
			return true
		})
		if n := overlaps.Load(); n != 0 {
			t.Errorf("%d reconciles overlapped another of the same name (of %d), want 0", n, total.Load())
		}
	})

	t.Run("resync reconciles again", func(t *testing.T) {
		var c calls
		put(t, s, "resync/a", "v")
		start(t, Config{
			Name: "resync", Store: s, Prefix: "resync/", Resync: 50 * time.Millisecond,
			Reconcile: func(ctx context.Context, name string) error {
				c.add(name)
				return nil
			},
		})
		eventually(t, "reconcile a three times without changes", func() bool { return c.get("a") >= 3 })
	})

	t.Run("resync does not leak watches", func(t *testing.T) {
		// A store of its own: many watches ending at once can wedge the
		// embedded etcd's in-process watch stream (see TestWatchAfterManyEnd
		// in store), which would break the other subtests.
		s := storetest.Start(t)
		var c calls
		put(t, s, "resyncleak/a", "v")
		start(t, Config{
			Name: "resyncleak", Store: s, Prefix: "resyncleak/", Resync: 10 * time.Millisecond,
			Reconcile: func(ctx context.Context, name string) error {
				c.add(name)
				return nil
			},
		})
		eventually(t, "20 resyncs", func() bool { return c.get("a") >= 20 })
		// Each pass watches afresh; the previous watch must end with it.
		// A little slack for one that is still winding down.
		if n := watchGoroutines(); n > 3 {
			t.Errorf("%d store watches running after 20 resyncs of one controller, want at most 3 (one live)", n)
		}
	})

	t.Run("stops when ctx ends", func(t *testing.T) {
		var c calls
		put(t, s, "stop/a", "v")
		entered := make(chan struct{})
		var sawCancel atomic.Bool
		stop := start(t, Config{
			Name: "stop", Store: s, Prefix: "stop/",
			Reconcile: func(ctx context.Context, name string) error {
				if c.add(name) == 1 && name == "a" {
					close(entered)
					<-ctx.Done()
					sawCancel.Store(true)
					return ctx.Err()
				}
				return nil
			},
		})
		select {
		case <-entered:
		case <-time.After(waitLimit):
			t.Fatalf("Reconcile(a) not called within %v", waitLimit)
		}
		stop()
		if !sawCancel.Load() {
			t.Errorf("Run returned before the running Reconcile's context ended")
		}
		before := c.snapshot()
		put(t, s, "stop/a", "v2", "stop/b", "v")
		time.Sleep(200 * time.Millisecond)
		if diff := cmp.Diff(before, c.snapshot()); diff != "" {
			t.Errorf("reconciles after Run returned (-before +after):\n%s", diff)
		}
	})

	t.Run("one replica reconciles at a time", func(t *testing.T) {
		names := []string{"a", "b", "c"}
		for _, name := range names {
			put(t, s, "replicas/"+name, "v")
		}
		var mu sync.Mutex
		by := map[string]map[string]int{} // replica → name → reconciles
		reconciler := func(replica string) Reconciler {
			return func(ctx context.Context, name string) error {
				mu.Lock()
				defer mu.Unlock()
				if by[replica] == nil {
					by[replica] = map[string]int{}
				}
				by[replica][name]++
				return nil
			}
		}
		reconciled := func(replica string) int {
			mu.Lock()
			defer mu.Unlock()
			return len(by[replica])
		}
		stop1 := start(t, Config{Name: "replicas", ReplicaID: "r1", Store: s, Prefix: "replicas/", Reconcile: reconciler("r1")})
		eventually(t, "r1 reconciles every name", func() bool { return reconciled("r1") == len(names) })
		start(t, Config{Name: "replicas", ReplicaID: "r2", Store: s, Prefix: "replicas/", Reconcile: reconciler("r2")})
		put(t, s, "replicas/d", "v")
		eventually(t, "r1 reconciles a new name", func() bool { return reconciled("r1") == len(names)+1 })
		if n := reconciled("r2"); n != 0 {
			t.Errorf("replica r2 reconciled %d names while r1 leads, want 0", n)
		}
		stop1()
		eventually(t, "r2 takes over and reconciles every name", func() bool { return reconciled("r2") == len(names)+1 })
	})
}
