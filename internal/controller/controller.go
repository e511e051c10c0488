// Package controller runs level-based reconcilers: it watches a key prefix
// in the store, queues the names that changed, calls Reconcile for each and
// retries failures with backoff. With several replicas, exactly one of them
// (the holder of an etcd election) runs a given controller. Any package that
// owns background work may import it.
package controller

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
)

// Reconciler brings the world in line with the object called name (a key
// below the watched prefix). It reads desired and actual state afresh, acts
// and returns; calling it again with nothing changed does nothing. An error
// is retried with backoff unless wrapped by Terminal.
type Reconciler func(ctx context.Context, name string) error

type terminalError struct{ err error }

func (e terminalError) Error() string { return e.err.Error() }
func (e terminalError) Unwrap() error { return e.err }

// Terminal marks err as final: the name is not retried until it changes.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err}
}

// IsTerminal reports whether err was marked by Terminal.
func IsTerminal(err error) bool {
	var t terminalError
	return errors.As(err, &t)
}

// Config describes one controller.
type Config struct {
	Name      string // election and log name
	ReplicaID string // this process in the election
	Store     *store.Store
	Prefix    string // the keys to watch; names are what follows the prefix
	// IgnoreDeletions leaves a key's deletion unreconciled, for keys that
	// are deleted only once there is nothing left to do.
	IgnoreDeletions bool
	Workers         int // reconciles running at once; default 4
	Reconcile       Reconciler
	// Resync re-lists every name this often, catching anything a reconcile
	// is waiting for outside the store; 0 means never.
	Resync     time.Duration
	MaxBackoff time.Duration // default 30s
	Logger     *slog.Logger
}

// Run campaigns for leadership and, while leader, reconciles. It returns when
// ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "controller", "controller", cfg.Name)
	return cfg.Store.Lead(ctx, "controller/"+cfg.Name, cfg.ReplicaID, func(ctx context.Context) {
		runLeader(ctx, cfg, log)
	})
}

func runLeader(ctx context.Context, cfg Config, log *slog.Logger) {
	q := newQueue()
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() { work(ctx, cfg, q, log) })
	}
	defer wg.Wait()
	defer q.shutdown()
	for ctx.Err() == nil {
		rev, err := listAll(ctx, cfg, q)
		if err != nil {
			log.WarnContext(ctx, "list failed", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		watchUntilBroken(ctx, cfg, q, rev)
	}
}

// listAll queues every existing name and returns the revision to watch from.
func listAll(ctx context.Context, cfg Config, q *queue) (int64, error) {
	rev, err := cfg.Store.Revision(ctx)
	if err != nil {
		return 0, err
	}
	after := ""
	for {
		page, err := cfg.Store.List(ctx, cfg.Prefix, after, 1000)
		if err != nil {
			return 0, err
		}
		for _, kv := range page.KVs {
			q.add(kv.Key[len(cfg.Prefix):], 0, 0)
			after = kv.Key
		}
		if !page.More {
			return rev, nil
		}
	}
}

func watchUntilBroken(ctx context.Context, cfg Config, q *queue, rev int64) {
	var resync <-chan time.Time
	if cfg.Resync > 0 {
		t := time.NewTicker(cfg.Resync)
		defer t.Stop()
		resync = t.C
	}
	// The watch ends with this function, not only with leadership: a
	// resync must not leave it running.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := cfg.Store.Watch(ctx, cfg.Prefix, rev)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Deleted && cfg.IgnoreDeletions {
				continue
			}
			q.add(ev.KV.Key[len(cfg.Prefix):], 0, 0)
		case <-resync:
			return // the caller lists afresh
		case <-ctx.Done():
			return
		}
	}
}

func work(ctx context.Context, cfg Config, q *queue, log *slog.Logger) {
	for {
		name, failures, ok := q.next(ctx)
		if !ok {
			return
		}
		err := cfg.Reconcile(ctx, name)
		q.done(name)
		switch {
		case err == nil, ctx.Err() != nil:
		case IsTerminal(err):
			log.WarnContext(ctx, "reconcile failed for good", "name", name, "err", err)
		default:
			delay := backoff(failures, cfg.MaxBackoff)
			log.InfoContext(ctx, "reconcile failed, retrying", "name", name, "err", err, "retry_in", delay)
			q.add(name, delay, failures+1)
		}
	}
}

func backoff(failures int, max time.Duration) time.Duration {
	d := 100 * time.Millisecond << min(failures, 16)
	d = min(d, max)
	return d/2 + rand.N(d/2+1) // jitter so that retries of many names spread out
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
