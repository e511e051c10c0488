package controller

import (
	"context"
	"sync"
	"time"
)

// queue hands out names to workers: each name at most once at a time, a
// name added again while queued is queued once, and a name added while being
// reconciled is reconciled again afterwards.
type queue struct {
	mu      sync.Mutex
	cond    chan struct{} // closed and replaced whenever something changes
	ready   []string
	queued  map[string]int // name → failures so far
	active  map[string]bool
	again   map[string]int // added while active
	stopped bool
	timers  map[string]*time.Timer
}

func newQueue() *queue {
	return &queue{
		cond:   make(chan struct{}),
		queued: map[string]int{},
		active: map[string]bool{},
		again:  map[string]int{},
		timers: map[string]*time.Timer{},
	}
}

// add queues name after delay, remembering how many times it failed.
func (q *queue) add(name string, delay time.Duration, failures int) {
	f := failures
	if delay > 0 {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.stopped || q.timers[name] != nil {
			return
		}
		q.timers[name] = time.AfterFunc(delay, func() {
			q.mu.Lock()
			delete(q.timers, name)
			q.mu.Unlock()
			q.add(name, 0, f)
		})
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return
	}
	if q.active[name] {
		q.again[name] = f
		return
	}
	if _, ok := q.queued[name]; ok {
		return
	}
	q.queued[name] = f
	q.ready = append(q.ready, name)
	q.signal()
}

func (q *queue) signal() {
	close(q.cond)
	q.cond = make(chan struct{})
}

// next waits for a name to reconcile.
func (q *queue) next(ctx context.Context) (name string, failures int, ok bool) {
	for {
		q.mu.Lock()
		if q.stopped {
			q.mu.Unlock()
			return "", 0, false
		}
		if len(q.ready) > 0 {
			name = q.ready[0]
			q.ready = q.ready[1:]
			failures = q.queued[name]
			delete(q.queued, name)
			q.active[name] = true
			q.mu.Unlock()
			return name, failures, true
		}
		wait := q.cond
		q.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return "", 0, false
		}
	}
}

// done ends a reconcile of name, requeueing it if it was added meanwhile.
func (q *queue) done(name string) {
	q.mu.Lock()
	delete(q.active, name)
	f, again := q.again[name]
	delete(q.again, name)
	q.mu.Unlock()
	if again {
		q.add(name, 0, f)
	}
}

func (q *queue) shutdown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	for _, t := range q.timers {
		t.Stop()
	}
	q.signal()
}
