package controller

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

type handout struct {
	name     string
	failures int
	ok       bool
}

// nextAsync calls q.next in a goroutine; the result arrives on the channel.
func nextAsync(ctx context.Context, q *queue) <-chan handout {
	ch := make(chan handout, 1)
	go func() {
		name, failures, ok := q.next(ctx)
		ch <- handout{name, failures, ok}
	}()
	return ch
}

// mustNext takes the next name, which must be ready now.
func mustNext(t *testing.T, q *queue, want handout) {
	t.Helper()
	ch := nextAsync(t.Context(), q)
	synctest.Wait()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("next() = %v, want %v", got, want)
		}
	default:
		q.shutdown() // release the goroutine
		t.Fatalf("next() blocks, want %v", want)
	}
}

// mustBlock checks that next has nothing to hand out now and returns the
// channel where the eventual result arrives.
func mustBlock(t *testing.T, q *queue) <-chan handout {
	t.Helper()
	ch := nextAsync(t.Context(), q)
	synctest.Wait()
	select {
	case got := <-ch:
		t.Fatalf("next() = %v, want it to block", got)
	default:
	}
	return ch
}

// received returns what a waiting next handed out: it must have returned
// by now.
func received(t *testing.T, ch <-chan handout) handout {
	t.Helper()
	synctest.Wait()
	select {
	case got := <-ch:
		return got
	default:
		t.Fatalf("next() blocks, want it to have returned")
		return handout{}
	}
}

func TestQueue(t *testing.T) {
	t.Run("hands out in order", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			for _, name := range []string{"c", "a", "b"} {
				q.add(name, 0, 0)
			}
			for _, name := range []string{"c", "a", "b"} {
				mustNext(t, q, handout{name, 0, true})
			}
			mustBlock(t, q)
		})
	})

	t.Run("dedupes a queued name", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			q.add("a", 0, 0)
			q.add("b", 0, 0)
			q.add("a", 0, 0)
			mustNext(t, q, handout{"a", 0, true})
			mustNext(t, q, handout{"b", 0, true})
			mustBlock(t, q)
		})
	})

	t.Run("wakes a waiting worker", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			ch := mustBlock(t, q)
			q.add("a", 0, 0)
			if got, want := received(t, ch), (handout{"a", 0, true}); got != want {
				t.Errorf("next() = %v, want %v", got, want)
			}
		})
	})

	t.Run("one worker per name", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			q.add("a", 0, 0)
			mustNext(t, q, handout{"a", 0, true})
			// Added while active: not handed out to a second worker...
			q.add("a", 0, 0)
			q.add("a", 0, 0)
			q.add("b", 0, 0)
			mustNext(t, q, handout{"b", 0, true})
			ch := mustBlock(t, q)
			// ...but again, once, after the first is done.
			q.done("a")
			if got, want := received(t, ch), (handout{"a", 0, true}); got != want {
				t.Errorf("next() after done(a) = %v, want %v", got, want)
			}
			q.done("a")
			q.done("b")
			mustBlock(t, q)
		})
	})

	t.Run("done without changes does not requeue", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			q.add("a", 0, 0)
			mustNext(t, q, handout{"a", 0, true})
			q.done("a")
			mustBlock(t, q)
			// And the name can be queued again later.
			q.add("a", 0, 0)
		})
	})

	t.Run("delayed add fires after the delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			t0 := time.Now()
			q.add("a", 5*time.Second, 2)
			ch := mustBlock(t, q)
			time.Sleep(5*time.Second - time.Nanosecond)
			synctest.Wait()
			select {
			case got := <-ch:
				t.Fatalf("next() = %v after %v, want it after 5s", got, time.Since(t0))
			default:
			}
			time.Sleep(time.Nanosecond)
			got := received(t, ch)
			if want := (handout{"a", 2, true}); got != want {
				t.Errorf("next() = %v, want %v", got, want)
			}
			if took := time.Since(t0); took != 5*time.Second {
				t.Errorf("delayed add(a, 5s) handed out after %v, want 5s", took)
			}
		})
	})

	t.Run("delayed adds of one name fire once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			q.add("a", time.Second, 1)
			q.add("a", 2*time.Second, 2)
			ch := mustBlock(t, q)
			time.Sleep(time.Second)
			got := received(t, ch)
			if got.name != "a" || !got.ok {
				t.Fatalf("next() = %v, want a", got)
			}
			q.done("a")
			ch = nextAsync(t.Context(), q)
			time.Sleep(10 * time.Second)
			synctest.Wait()
			select {
			case got := <-ch:
				t.Errorf("next() = %v, want a single hand-out of two delayed adds", got)
			default:
			}
		})
	})

	t.Run("delayed add of a queued name", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			q.add("a", 0, 0)
			q.add("a", time.Second, 3)
			mustNext(t, q, handout{"a", 0, true})
			q.done("a")
			ch := mustBlock(t, q)
			time.Sleep(time.Second)
			if got, want := received(t, ch), (handout{"a", 3, true}); got != want {
				t.Errorf("next() = %v, want %v", got, want)
			}
		})
	})

	t.Run("failures are carried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			q.add("a", 0, 3)
			mustNext(t, q, handout{"a", 3, true})
			// Added while active, with failures: kept for the requeue.
			q.add("a", 0, 5)
			q.done("a")
			mustNext(t, q, handout{"a", 5, true})
			// Delayed while active: the timer's add lands in the
			// requeue after done.
			q.add("a", time.Second, 6)
			time.Sleep(2 * time.Second)
			ch := mustBlock(t, q)
			q.done("a")
			if got, want := received(t, ch), (handout{"a", 6, true}); got != want {
				t.Errorf("next() = %v, want %v", got, want)
			}
		})
	})

	t.Run("shutdown unblocks next", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			var chs []<-chan handout
			for range 3 {
				chs = append(chs, mustBlock(t, q))
			}
			q.add("late", time.Second, 0)
			q.shutdown()
			for i, ch := range chs {
				if got := received(t, ch); got.ok {
					t.Errorf("next() #%d after shutdown = %v, want ok false", i, got)
				}
			}
			// Adds after shutdown, and timers pending at it, are dropped.
			q.add("a", 0, 0)
			time.Sleep(2 * time.Second)
			if name, failures, ok := q.next(t.Context()); ok {
				t.Errorf("next() after shutdown = %q, %d, true, want ok false", name, failures)
			}
		})
	})

	t.Run("context ends next", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue()
			defer q.shutdown()
			ctx, cancel := context.WithCancel(t.Context())
			ch := nextAsync(ctx, q)
			synctest.Wait()
			cancel()
			if got := received(t, ch); got.ok {
				t.Errorf("next() after cancel = %v, want ok false", got)
			}
		})
	})
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		failures int
		max      time.Duration
		want     time.Duration // before jitter
	}{
		{0, 30 * time.Second, 100 * time.Millisecond},
		{1, 30 * time.Second, 200 * time.Millisecond},
		{2, 30 * time.Second, 400 * time.Millisecond},
		{8, 30 * time.Second, 25600 * time.Millisecond},
		{9, 30 * time.Second, 30 * time.Second},
		{16, 30 * time.Second, 30 * time.Second},
		{17, 30 * time.Second, 30 * time.Second},
		{1000, 30 * time.Second, 30 * time.Second},
		{16, 24 * time.Hour, 100 * time.Millisecond << 16},
		{1000, 24 * time.Hour, 100 * time.Millisecond << 16},
		{0, 20 * time.Millisecond, 20 * time.Millisecond},
		{3, time.Second, 800 * time.Millisecond},
		{4, time.Second, time.Second},
		{0, time.Nanosecond, time.Nanosecond},
		{5, 3 * time.Nanosecond, 3 * time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d failures max %v", tt.failures, tt.max), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 1000 {
				d := backoff(tt.failures, tt.max)
				if d < tt.want/2 || d > tt.want {
					t.Fatalf("backoff(%d, %v) = %v, want within [%v, %v]", tt.failures, tt.max, d, tt.want/2, tt.want)
				}
				seen[d] = true
			}
			// Jitter spreads retries out.
			if tt.want >= time.Millisecond && len(seen) < 100 {
				t.Errorf("backoff(%d, %v) gave %d distinct values in 1000 calls, want jitter", tt.failures, tt.max, len(seen))
			}
		})
	}

	t.Run("grows", func(t *testing.T) {
		// Each failure doubles the range: every delay after f+1
		// failures is at least every delay after f.
		for f := range 12 {
			var most, least time.Duration = 0, time.Hour
			for range 200 {
				most = max(most, backoff(f, time.Hour))
				least = min(least, backoff(f+1, time.Hour))
			}
			if least < most {
				t.Errorf("backoff(%d) up to %v, backoff(%d) from %v, want it to grow", f, most, f+1, least)
			}
		}
	})
}

func TestTerminal(t *testing.T) {
	base := errors.New("bad spec")
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{base, false},
		{Terminal(base), true},
		{fmt.Errorf("vm %q: %w", "a", Terminal(base)), true},
		{Terminal(fmt.Errorf("vm %q: %w", "a", base)), true},
	}
	for _, tt := range tests {
		if got := IsTerminal(tt.err); got != tt.want {
			t.Errorf("IsTerminal(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	err := Terminal(base)
	if !errors.Is(err, base) {
		t.Errorf("errors.Is(Terminal(%v), %v) = false, want true", base, base)
	}
	if got, want := err.Error(), base.Error(); got != want {
		t.Errorf("Terminal(%v).Error() = %q, want %q", base, got, want)
	}
}
