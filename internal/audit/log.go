package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
)

// The activity log in the store. A mutation's event is written to
// audit/pending/ in the same transaction as the mutation itself, so there
// is no change without its record and no record of a change that did not
// happen. The chainer, on one replica at a time, then takes pending events
// in commit order, gives each its place in the hash chain under
// audit/records/, and signs checkpoints. Writers never contend on the
// chain's head: only the chainer moves it.
var (
	pendingEvents = store.NewCollection[Event]("audit/pending/")
	records       = store.NewCollection[Record]("audit/records/")
	checkpoints   = store.NewCollection[Checkpoint]("audit/checkpoints/")
	heads         = store.NewCollection[Head]("audit/")
)

// headName is the key of the chain's head under heads.
const headName = "head"

func seqName(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// LogConfig configures the store-backed activity log.
type LogConfig struct {
	Store  *store.Store
	Signer *Signer
	// A checkpoint is signed every CheckpointEvery records or every
	// CheckpointInterval, whichever comes first (defaults 1000 and 10 s).
	CheckpointEvery    uint64
	CheckpointInterval time.Duration
	Logger             *slog.Logger
}

// Log writes, chains and reads the activity log.
type Log struct {
	store  *store.Store
	signer *Signer
	every  uint64
	period time.Duration
	log    *slog.Logger
}

// NewLog returns the activity log.
func NewLog(cfg LogConfig) *Log {
	l := &Log{store: cfg.Store, signer: cfg.Signer, every: cfg.CheckpointEvery, period: cfg.CheckpointInterval, log: cfg.Logger}
	if l.every == 0 {
		l.every = 1000
	}
	if l.period == 0 {
		l.period = 10 * time.Second
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With("component", "audit")
	return l
}

// PublicKey is the key that signs the checkpoints.
func (l *Log) PublicKey() []byte { return l.signer.PublicKey() }

// Pending is the write that records e: put it in the transaction of the
// change it describes.
func (l *Log) Pending(e Event) store.Op { return pendingEvents.Create(e.EventDataID, e) }

// Record writes e on its own, for a request that changed nothing (one that
// was refused, say).
func (l *Log) Record(ctx context.Context, e Event) error {
	_, err := l.store.Txn(ctx, l.Pending(e))
	return err
}

// RunChainer chains pending events until ctx ends, on the replica that
// holds the election.
func (l *Log) RunChainer(ctx context.Context, replicaID string) error {
	return l.store.Lead(ctx, "audit-chainer", replicaID, func(ctx context.Context) {
		for ctx.Err() == nil {
			if err := l.chainPending(ctx); err != nil && ctx.Err() == nil {
				l.log.WarnContext(ctx, "chaining failed; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

// maxBatch keeps a chaining transaction under etcd's limit of 128
// operations (two per record, plus the head and a checkpoint).
const maxBatch = 60

// chainPending moves every pending event into the chain, oldest commit
// first, and signs a checkpoint when one is due.
func (l *Log) chainPending(ctx context.Context) error {
	for {
		items, _, err := pendingEvents.List(ctx, l.store, "", "", 0)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return l.checkpointIfDue(ctx, false)
		}
		// Commit order; events committed together are ordered by id.
		slices.SortFunc(items, func(a, b store.Item[Event]) int {
			if a.Revision != b.Revision {
				return int(a.Revision - b.Revision)
			}
			return strings.Compare(a.Name, b.Name)
		})
		for len(items) > 0 {
			n := min(len(items), maxBatch)
			if err := l.chainBatch(ctx, items[:n]); err != nil {
				return err
			}
			items = items[n:]
		}
		if err := l.checkpointIfDue(ctx, false); err != nil {
			return err
		}
	}
}

func (l *Log) chainBatch(ctx context.Context, batch []store.Item[Event]) error {
	head, headRev, err := l.head(ctx)
	if err != nil {
		return err
	}
	ops := make([]store.Op, 0, 2*len(batch)+1)
	for _, it := range batch {
		var rec Record
		rec, head = head.Append(it.Value)
		ops = append(ops, records.Create(seqName(rec.Seq), rec), pendingEvents.DeleteAt(it.Name, it.Revision))
	}
	ops = append(ops, heads.Update(headName, head, headRev))
	_, err = l.store.Txn(ctx, ops...)
	return err
}

func (l *Log) head(ctx context.Context) (Head, int64, error) {
	it, err := heads.Get(ctx, l.store, headName)
	if errors.Is(err, store.ErrNotFound) {
		return Head{}, 0, nil
	}
	return it.Value, it.Revision, err
}

// checkpointIfDue signs the head when enough records or time have passed
// since the last checkpoint, or always when force is set and the head is
// not covered yet.
func (l *Log) checkpointIfDue(ctx context.Context, force bool) error {
	head, _, err := l.head(ctx)
	if err != nil || head.Seq == 0 {
		return err
	}
	last, err := l.lastCheckpoint(ctx)
	if err != nil {
		return err
	}
	if last.Seq == head.Seq {
		return nil
	}
	now := time.Now()
	if !force && !CheckpointDue(last.Seq, last.Time, head, now, l.every, l.period) {
		return nil
	}
	cp := l.signer.Sign(head, now)
	_, err = l.store.Txn(ctx, checkpoints.Create(seqName(cp.Seq), cp))
	if errors.Is(err, store.ErrConflict) {
		return nil // another replica signed the same head
	}
	return err
}

func (l *Log) lastCheckpoint(ctx context.Context) (Checkpoint, error) {
	// Names are zero-padded sequence numbers: the last in key order is the
	// latest. Checkpoints are few (one per thousand records or per 10 s).
	items, _, err := checkpoints.List(ctx, l.store, "", "", 0)
	if err != nil || len(items) == 0 {
		return Checkpoint{}, err
	}
	return items[len(items)-1].Value, nil
}

// Records reads the chained records with sequence numbers from first on,
// at most limit (0: all).
func (l *Log) Records(ctx context.Context, first uint64, limit int) ([]Record, bool, error) {
	after := ""
	if first > 1 {
		after = seqName(first - 1)
	}
	items, more, err := records.List(ctx, l.store, "", after, limit)
	if err != nil {
		return nil, false, err
	}
	out := make([]Record, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	return out, more, nil
}

// Checkpoints reads every checkpoint, oldest first.
func (l *Log) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	items, _, err := checkpoints.List(ctx, l.store, "", "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]Checkpoint, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	return out, nil
}

// Flush waits until the chainer has chained what is pending, then signs a
// checkpoint over the head, so that an export taken now is covered to its
// end. It does not chain itself: only the chainer moves the head.
func (l *Log) Flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		items, _, err := pendingEvents.List(ctx, l.store, "", "", 1)
		if err != nil {
			return fmt.Errorf("audit flush: %w", err)
		}
		if len(items) == 0 {
			return l.checkpointIfDue(ctx, true)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit flush: the chainer did not catch up: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
