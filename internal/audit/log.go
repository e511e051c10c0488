package audit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
)

// The activity log in the store.
//
// A mutation's events are written once, in canonical form, to
// audit/events/{eventDataId of the first} in the same transaction as the
// mutation, so there is no change without its record and no record of a
// change that did not happen; they are never rewritten. The events of
// one transaction (a long-running request's Started and Accepted) share
// one key (see encodeEvents), since every key and byte is a cost on
// etcd's commit path. The chainer, on one replica at a time, takes events in commit
// order and appends a small link per event: the event's key, its line,
// and the hash of the record (seq, previous hash, event bytes). The links
// of one chaining transaction are stored together under
// audit/links/{seq of the last}, a key per batch rather than per event. It
// signs checkpoints over the head, which is always the end of a batch. Writers
// never contend on the chain's head: only the chainer moves it. Records
// are assembled from links and events when read, so a change to an event
// or a link in etcd shows as a broken chain.
var (
	eventsPrefix = "audit/events/"
	links        = store.NewCollection[[]link]("audit/links/")
	checkpoints  = store.NewCollection[Checkpoint]("audit/checkpoints/")
	heads        = store.NewCollection[chainHead]("audit/")
)

// link places one event in the chain.
type link struct {
	Event string `json:"event"`          // the key under audit/events/: the eventDataId of its first event
	Line  int    `json:"line,omitempty"` // which of the key's events
	Hash  Digest `json:"hash"`           // of the record seq, prev, event
}

// chainHead is the end of the chain and how far through the events'
// commits the chainer has come.
type chainHead struct {
	Head
	Revision int64 `json:"revision"` // the commit revision of the last event chained
}

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
	// Records older than Retention move into signed segment files in
	// ArchiveDir (checked every hour); 0 keeps everything in the store.
	Retention  time.Duration
	ArchiveDir string
	// ClockSkew bounds how far the replicas' clocks disagree (default a
	// minute): events are dated by the replica that served the request,
	// checkpoints by the chainer's. CheckpointBefore allows for it.
	ClockSkew time.Duration
	Logger    *slog.Logger
}

// Log writes, chains and reads the activity log.
type Log struct {
	store      *store.Store
	signer     *Signer
	every      uint64
	period     time.Duration
	retention  time.Duration
	archiveDir string
	clockSkew  time.Duration
	log        *slog.Logger
}

// NewLog returns the activity log.
func NewLog(cfg LogConfig) *Log {
	l := &Log{store: cfg.Store, signer: cfg.Signer, every: cfg.CheckpointEvery, period: cfg.CheckpointInterval,
		retention: cfg.Retention, archiveDir: cfg.ArchiveDir, clockSkew: cfg.ClockSkew, log: cfg.Logger}
	if l.every == 0 {
		l.every = 1000
	}
	if l.period == 0 {
		l.period = 10 * time.Second
	}
	if l.clockSkew == 0 {
		l.clockSkew = time.Minute
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With("component", "audit")
	return l
}

// PublicKey is the key that signs the checkpoints.
func (l *Log) PublicKey() []byte { return l.signer.PublicKey() }

// Op is the write that records events, in this order: put it in the
// transaction of the change they describe.
func (l *Log) Op(events ...Event) store.Op {
	return store.Create(eventsPrefix+events[0].EventDataID, encodeEvents(events))
}

// Record writes e on its own, for a request that changed nothing (one that
// was refused, say).
func (l *Log) Record(ctx context.Context, e Event) error {
	_, err := l.store.Txn(ctx, l.Op(e))
	return err
}

// RunChainer chains events until ctx ends, on the replica that holds the
// election.
func (l *Log) RunChainer(ctx context.Context, replicaID string) error {
	return l.store.Lead(ctx, "audit-chainer", replicaID, func(ctx context.Context) {
		if l.retention > 0 && l.archiveDir != "" {
			go l.archiveEvery(ctx, time.Hour)
		}
		for ctx.Err() == nil {
			if err := l.chain(ctx); err != nil && ctx.Err() == nil {
				l.log.WarnContext(ctx, "chaining failed; retrying", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	})
}

// maxBatch bounds the event keys one chaining transaction takes: their
// links are one value, which etcd limits in size (1.5 MiB by default; a
// link is about 130 bytes, and a key holds one or two events).
const maxBatch = 500

// chainEvery is how often the chainer chains what it has seen. Each round
// is a transaction through etcd's commit path beside the writes it
// records, so rounds are few and large; the chain lags the events by at
// most this much.
const chainEvery = 100 * time.Millisecond

// chain catches up with every event committed since the head, then
// follows new ones through a watch, chaining them in commit order every
// chainEvery. It returns when the watch breaks.
func (l *Log) chain(ctx context.Context) error {
	// Only the chainer moves the head, and only it and Flush sign: it reads
	// the head and the last checkpoint once and keeps them from then on.
	// The compare-and-swap on the head catches any other writer.
	head, headRev, err := l.head(ctx)
	if err != nil {
		return err
	}
	last, err := l.lastCheckpoint(ctx)
	if err != nil {
		return err
	}
	// The backlog, then a watch from before it was read: the head may be
	// older than etcd's history (the last event an hour ago, say), and the
	// watch replays only what append skips.
	now, err := l.store.Revision(ctx)
	if err != nil {
		return err
	}
	backlog, err := l.store.Created(ctx, eventsPrefix, head.Revision, 0, 0)
	if err != nil {
		return err
	}
	slices.SortFunc(backlog, byCommit)
	if head, headRev, err = l.append(ctx, head, headRev, backlog); err != nil {
		return err
	}
	watch := l.store.Watch(ctx, eventsPrefix, max(head.Revision, now))
	tick := time.NewTicker(chainEvery)
	defer tick.Stop()
	var batch []store.KV
	for {
		select {
		case ev, ok := <-watch:
			if !ok {
				if _, _, err := l.append(ctx, head, headRev, batch); err != nil || ctx.Err() != nil {
					return err
				}
				return errors.New("the watch of activity-log events ended")
			}
			switch {
			case ev.Deleted:
				// Archiving removes events; verification shows any other loss.
				l.log.DebugContext(ctx, "an activity-log event left the store", "key", ev.KV.Key)
			case ev.KV.Created != ev.KV.Revision:
				// Events are written once: a rewrite is tampering (or its
				// repair), which verification will show. It is not a new event.
				l.log.WarnContext(ctx, "an activity-log event was rewritten in the store", "key", ev.KV.Key)
			default:
				batch = append(batch, ev.KV)
			}
		case <-tick.C:
			if head, headRev, err = l.append(ctx, head, headRev, batch); err != nil {
				return err
			}
			batch = batch[:0]
			if last, err = l.checkpointIfDue(ctx, head.Head, last, false); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// byCommit orders events by the revision that created them, then by key.
func byCommit(a, b store.KV) int {
	return cmp.Or(cmp.Compare(a.Created, b.Created), strings.Compare(a.Key, b.Key))
}

// append chains events (in commit order) after head, stored at revision
// headRev, in transactions of at most maxBatch, each moving the head with
// a compare-and-swap; it returns the new head and its revision. Events the
// head has already passed are skipped, so a replay after a broken watch is
// harmless.
func (l *Log) append(ctx context.Context, head chainHead, headRev int64, events []store.KV) (chainHead, int64, error) {
	for len(events) > 0 {
		for len(events) > 0 && events[0].Created <= head.Revision {
			events = events[1:]
		}
		n := min(len(events), maxBatch)
		// Never split one commit's events between two transactions: the
		// head remembers only the commit revision.
		for n < len(events) && n > 0 && events[n].Created == events[n-1].Created {
			n--
		}
		if n == 0 {
			n = min(len(events), maxBatch)
		}
		if n == 0 {
			break
		}
		batch := make([]link, 0, n)
		for _, kv := range events[:n] {
			for line, event := range eventLines(kv.Value) {
				seq := head.Seq + 1
				hash := Digest(sha256.Sum256(encodeRecord(seq, head.Hash, event)))
				batch = append(batch, link{Event: kv.Key[len(eventsPrefix):], Line: line, Hash: hash})
				head.Head = Head{Seq: seq, Hash: hash}
			}
			head.Revision = kv.Created
		}
		rev, err := l.store.Txn(ctx, links.Create(seqName(head.Seq), batch), heads.Update(headName, head, headRev))
		if err != nil {
			return chainHead{}, 0, err
		}
		headRev = rev
		events = events[n:]
	}
	return head, headRev, nil
}

func (l *Log) head(ctx context.Context) (chainHead, int64, error) {
	it, err := heads.Get(ctx, l.store, headName)
	if errors.Is(err, store.ErrNotFound) {
		return chainHead{}, 0, nil
	}
	return it.Value, it.Revision, err
}

// checkpointIfDue signs head when enough records or time have passed
// since the last checkpoint, or always when force is set and the head is
// not covered yet. It returns the last checkpoint after it.
func (l *Log) checkpointIfDue(ctx context.Context, head Head, last Checkpoint, force bool) (Checkpoint, error) {
	if head.Seq == 0 || last.Seq == head.Seq {
		return last, nil
	}
	now := time.Now()
	if !force && !CheckpointDue(last.Seq, last.Time, head, now, l.every, l.period) {
		return last, nil
	}
	cp := l.signer.Sign(head, now)
	_, err := l.store.Txn(ctx, checkpoints.Create(seqName(cp.Seq), cp))
	if errors.Is(err, store.ErrConflict) {
		return l.lastCheckpoint(ctx) // another replica signed the same head
	}
	return cp, err
}

func (l *Log) lastCheckpoint(ctx context.Context) (Checkpoint, error) {
	cp, err := l.lastCheckpointWhere(ctx, func(*Checkpoint) bool { return true })
	if err != nil || cp == nil {
		return Checkpoint{}, err
	}
	return *cp, nil
}

// lastCheckpointWhere returns the checkpoint of the highest sequence number
// that ok accepts, where ok accepts every checkpoint before one it accepts
// (a time they were signed before, say), or nil. It bisects the sequence
// numbers up to the head, reading one checkpoint per step, rather than
// list the checkpoints (a retention window can hold hundreds of thousands).
// Should ok not be monotonic after all, what it returns is still one ok
// accepts.
func (l *Log) lastCheckpointWhere(ctx context.Context, ok func(*Checkpoint) bool) (*Checkpoint, error) {
	head, _, err := l.head(ctx)
	if err != nil {
		return nil, err
	}
	var found *Checkpoint
	for lo, hi := uint64(1), head.Seq; lo <= hi; {
		mid := lo + (hi-lo)/2
		// The first checkpoint at or after mid, by its name (its value may
		// have been tampered with; verification says so, not this).
		cps, _, err := checkpoints.List(ctx, l.store, "", seqName(mid-1), 1)
		if err != nil {
			return nil, err
		}
		if len(cps) == 0 || !ok(&cps[0].Value) {
			hi = mid - 1
			continue
		}
		at, err := strconv.ParseUint(cps[0].Name, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("audit: checkpoint %q: %w", cps[0].Name, err)
		}
		found, lo = &cps[0].Value, max(at, mid)+1 // later steps look only further on
	}
	return found, nil
}

// Records assembles the records with sequence numbers from first on, at
// most limit (0: all), from the links and the events. A record whose
// event is gone is left out: the gap shows in verification.
func (l *Log) Records(ctx context.Context, first uint64, limit int) ([]Record, bool, error) {
	mark, err := l.archived(ctx)
	if err != nil {
		return nil, false, err
	}
	var prev Digest
	if mark != nil && first <= mark.Seq+1 {
		// The history up to the mark is archived: start after it, chained
		// to the mark's hash.
		first, prev = mark.Seq+1, mark.Hash
	}
	// Up to the head as it is now: while writes go on, the chain grows
	// faster than a reader could catch up with it.
	head, _, err := l.head(ctx)
	if err != nil {
		return nil, false, err
	}
	var out []Record
	after := ""
	if first > 1 {
		after = seqName(first - 2) // from the batch holding the link before, for the first record's prev
	}
	for {
		batches, more, err := links.List(ctx, l.store, "", after, 16)
		if err != nil {
			return nil, false, err
		}
		for _, b := range batches {
			last, err := strconv.ParseUint(b.Name, 10, 64)
			if err != nil {
				return nil, false, fmt.Errorf("audit: link batch %q: %w", b.Name, err)
			}
			// The events of the links from the i'th on are read together, as
			// many as one transaction takes, or as are still wanted.
			events, asked := map[string]store.KV{}, map[string]bool{}
			read := func(i int) error {
				var keys []string
				for _, lk := range b.Value[i:] {
					if len(keys) == store.MaxTxnOps || limit > 0 && len(keys) == limit-len(out) {
						break
					}
					if k := eventsPrefix + lk.Event; !asked[k] {
						asked[k] = true
						keys = append(keys, k)
					}
				}
				got, err := l.store.GetMany(ctx, keys, 0)
				maps.Copy(events, got)
				return err
			}
			for i, lk := range b.Value {
				seq := last + 1 - uint64(len(b.Value)-i)
				if seq > head.Seq {
					return out, false, nil
				}
				if seq < first {
					prev = lk.Hash
					continue
				}
				if limit > 0 && len(out) == limit {
					return out, true, nil
				}
				if !asked[eventsPrefix+lk.Event] {
					if err := read(i); err != nil {
						return nil, false, err
					}
				}
				if kv, ok := events[eventsPrefix+lk.Event]; ok {
					if lines := eventLines(kv.Value); lk.Line < len(lines) {
						if e, err := decodeEvent(lines[lk.Line]); err == nil {
							out = append(out, Record{Seq: seq, Prev: prev, Event: e})
						}
					}
				}
				prev = lk.Hash
			}
			after = b.Name
		}
		if !more {
			return out, false, nil
		}
	}
}

// CheckpointBefore returns the last checkpoint signed before t (less the
// clock skew), or nil if there is none in the store. No record up to it is
// dated t or later: a checkpoint covers only records already chained, and
// so committed and dated, when it was signed. Finding it reads a few
// checkpoints, not every record or checkpoint, so that a query for the
// last hour does not read the months before it.
func (l *Log) CheckpointBefore(ctx context.Context, t time.Time) (*Checkpoint, error) {
	before := t.Add(-l.clockSkew)
	return l.lastCheckpointWhere(ctx, func(cp *Checkpoint) bool { return cp.Time.Before(before) })
}

// Checkpoints reads the checkpoints after sequence number after and up to
// through (math.MaxUint64: to the last), oldest first.
func (l *Log) Checkpoints(ctx context.Context, after, through uint64) ([]Checkpoint, error) {
	items, err := l.checkpointItems(ctx, after, through)
	if err != nil {
		return nil, err
	}
	out := make([]Checkpoint, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	return out, nil
}

// checkpointItems lists the checkpoints named after sequence number after
// and up to through, a page at a time.
func (l *Log) checkpointItems(ctx context.Context, after, through uint64) ([]store.Item[Checkpoint], error) {
	var out []store.Item[Checkpoint]
	last := seqName(through)
	for name := seqName(after); ; {
		page, more, err := checkpoints.List(ctx, l.store, "", name, 1000)
		if err != nil {
			return nil, err
		}
		for _, it := range page {
			if it.Name > last {
				return out, nil
			}
			out = append(out, it)
		}
		if !more || len(page) == 0 {
			return out, nil
		}
		name = page[len(page)-1].Name
	}
}

// Flush waits until the chainer has chained every event committed so far,
// then signs a checkpoint over the head, so that an export taken now is
// covered to its end. It does not chain itself: only the chainer moves
// the head.
func (l *Log) Flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now, err := l.store.Revision(ctx)
	if err != nil {
		return fmt.Errorf("audit flush: %w", err)
	}
	head, _, err := l.head(ctx)
	if err != nil {
		return fmt.Errorf("audit flush: %w", err)
	}
	// The chainer chains in commit order: once its head has passed the
	// last event committed by now, every earlier one is chained too.
	last, err := l.store.LastCreated(ctx, eventsPrefix, head.Revision, now)
	if err != nil {
		return fmt.Errorf("audit flush: %w", err)
	}
	for head.Revision < last {
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit flush: the chainer did not catch up: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
		if head, _, err = l.head(ctx); err != nil {
			return fmt.Errorf("audit flush: %w", err)
		}
	}
	cp, err := l.lastCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("audit flush: %w", err)
	}
	_, err = l.checkpointIfDue(ctx, head.Head, cp, true)
	return err
}

// archived is the checkpoint that ends the last archive segment: the
// records up to it have left the store, and exports start after it.
const archivedName = "archived"

var archivedMark = store.NewCollection[Checkpoint]("audit/")

func (l *Log) archived(ctx context.Context) (*Checkpoint, error) {
	it, err := archivedMark.Get(ctx, l.store, archivedName)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &it.Value, nil
}

// Archived returns the checkpoint that ends the archived history, or nil.
func (l *Log) Archived(ctx context.Context) (*Checkpoint, error) { return l.archived(ctx) }

// Archive moves the oldest records, up to the last checkpoint signed
// before cutoff (CheckpointBefore: all of them are older), into a signed
// segment file in dir, then removes them from the store. Only whole
// checkpointed ranges move, the segment is written and synced before
// anything is deleted, and a segment is checked as it is written
// (WriteSegment refuses a broken chain), so nothing leaves the store
// unless it is safely archived. It returns the segment's path, or "" when
// nothing was old enough.
func (l *Log) Archive(ctx context.Context, dir string, cutoff time.Time) (string, error) {
	anchor, err := l.archived(ctx)
	if err != nil {
		return "", err
	}
	if err := l.dropArchived(ctx, anchor); err != nil { // finish an archive a crash interrupted
		return "", err
	}
	start := uint64(1)
	if anchor != nil {
		start = anchor.Seq + 1
	}
	end, err := l.CheckpointBefore(ctx, cutoff)
	if err != nil {
		return "", err
	}
	if end == nil || end.Seq < start {
		return "", nil
	}
	recs, _, err := l.Records(ctx, start, int(end.Seq-start+1))
	if err != nil {
		return "", err
	}
	covering, err := l.Checkpoints(ctx, start-1, end.Seq)
	if err != nil {
		return "", err
	}
	path, err := l.writeSegment(dir, anchor, start, end.Seq, recs, covering)
	if err != nil {
		return "", err
	}
	if _, err := l.store.Txn(ctx, archivedMark.Put(archivedName, *end)); err != nil {
		return "", err
	}
	return path, l.dropArchived(ctx, end)
}

func (l *Log) writeSegment(dir string, anchor *Checkpoint, from, to uint64, recs []Record, cps []Checkpoint) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("segment-%s-%s.jsonl", seqName(from), seqName(to)))
	f, err := os.CreateTemp(dir, ".segment-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	seq := func(yield func(Record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
	h := Header{PublicKey: l.signer.PublicKey(), ExportedAt: time.Now().UTC()}
	if err := WriteSegment(f, h, anchor, Items(seq, cps)); err != nil {
		return "", fmt.Errorf("archive records %d-%d: %w", from, to, err)
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// dropArchived deletes from the store the links, events and checkpoints
// up to the archived mark, in transactions of bounded size.
func (l *Log) dropArchived(ctx context.Context, mark *Checkpoint) error {
	if mark == nil {
		return nil
	}
	for {
		batches, _, err := links.List(ctx, l.store, "", "", 1)
		if err != nil {
			return err
		}
		if len(batches) == 0 || batches[0].Name > seqName(mark.Seq) {
			break
		}
		// The events first, the batch last: a crash in between leaves the
		// batch to be dropped again.
		var ops []store.Op
		for _, lk := range batches[0].Value {
			if lk.Line == 0 { // a key's later events go with its first
				ops = append(ops, store.Delete(eventsPrefix+lk.Event))
			}
		}
		ops = append(ops, links.Delete(batches[0].Name))
		if err := l.txnChunks(ctx, ops); err != nil {
			return err
		}
	}
	cps, err := l.checkpointItems(ctx, 0, mark.Seq-1)
	if err != nil {
		return err
	}
	var ops []store.Op
	for _, it := range cps {
		ops = append(ops, checkpoints.Delete(it.Name))
	}
	return l.txnChunks(ctx, ops)
}

// txnChunks commits ops in order, as many per transaction as etcd takes.
func (l *Log) txnChunks(ctx context.Context, ops []store.Op) error {
	for chunk := range slices.Chunk(ops, store.MaxTxnOps) {
		if _, err := l.store.Txn(ctx, chunk...); err != nil {
			return err
		}
	}
	return nil
}

// archiveEvery moves records past the retention window to the archive,
// at start and then every period, until ctx ends.
func (l *Log) archiveEvery(ctx context.Context, period time.Duration) {
	for {
		path, err := l.Archive(ctx, l.archiveDir, time.Now().Add(-l.retention))
		switch {
		case err != nil && ctx.Err() == nil:
			l.log.ErrorContext(ctx, "activity-log archive failed; the records stay in the store", "err", err)
		case path != "":
			l.log.InfoContext(ctx, "activity-log records archived", "segment", path)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}
