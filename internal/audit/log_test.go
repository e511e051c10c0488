package audit_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

// TestLogChainsEveryEventOfAWrite: the events of one write (a
// long-running request's Started and Accepted) share a key, and each is a
// record of its own, in the order written, chained to the one before.
func TestLogChainsEveryEventOfAWrite(t *testing.T) {
	st := storetest.Start(t)
	l := audit.NewLog(audit.LogConfig{Store: st, Signer: testSigner(t, 1)})
	runChainer(t, l)

	writes := [][]audit.Event{{testEvent(4), testEvent(1)}, {testEvent(0)}, {testEvent(9), testEvent(6), testEvent(5)}}
	var want []string
	for _, events := range writes {
		if _, err := st.Txn(t.Context(), store.Put("resource", []byte("changed")), l.Op(events...)); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			want = append(want, e.EventDataID)
		}
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs, more, err := l.Records(t.Context(), 1, 0)
	if err != nil || more {
		t.Fatalf("Records = %v, more %v", err, more)
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	var prev audit.Digest
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.Event.EventDataID != want[i] || r.Prev != prev {
			t.Errorf("record %d = seq %d, event %s, prev %x; want seq %d, event %s, prev %x", i, r.Seq, r.Event.EventDataID, r.Prev, i+1, want[i], prev)
		}
		prev = r.Hash()
	}
	// Reading from the middle of a write's events starts there.
	recs, _, err = l.Records(t.Context(), 5, 0)
	if err != nil || len(recs) != 2 || recs[0].Event.EventDataID != want[4] {
		t.Errorf("Records(from 5) = %d records, %v; want %s first", len(recs), err, want[4])
	}
}

// TestLogArchivesALargeBatch: a chaining transaction can link more event
// keys than etcd takes operations in one transaction; archiving them still
// removes them all from the store.
func TestLogArchivesALargeBatch(t *testing.T) {
	st := storetest.Start(t)
	l := audit.NewLog(audit.LogConfig{Store: st, Signer: testSigner(t, 1)})
	const n = 300 // written before the chainer starts: it links them in one batch
	for i := range n {
		if _, err := st.Txn(t.Context(), l.Op(testEvent(i))); err != nil {
			t.Fatal(err)
		}
	}
	runChainer(t, l)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if events, err := st.Created(t.Context(), "audit/events/", 0, 0, 0); err != nil || len(events) != n {
		t.Fatalf("before archiving: %d events in the store, %v; want %d", len(events), err, n)
	}
	path, err := l.Archive(t.Context(), t.TempDir(), t0.Add(time.Hour*24*365))
	if err != nil || path == "" {
		t.Fatalf("Archive = %q, %v", path, err)
	}
	if events, err := st.Created(t.Context(), "audit/events/", 0, 0, 0); err != nil || len(events) != 0 {
		t.Errorf("after archiving: %d events in the store, %v; want none", len(events), err)
	}
	if recs, _, err := l.Records(t.Context(), 1, 0); err != nil || len(recs) != 0 {
		t.Errorf("Records after archiving = %d, %v; want none in the store", len(recs), err)
	}
}

// TestLogCheckpointBefore: a query from time t starts after the last
// checkpoint signed before t, and never after a record dated t or later.
func TestLogCheckpointBefore(t *testing.T) {
	st := storetest.Start(t)
	l := audit.NewLog(audit.LogConfig{Store: st, Signer: testSigner(t, 1), ClockSkew: time.Millisecond})
	runChainer(t, l)

	// Three phases of five events, each ended by a checkpoint (Flush),
	// with a moment marked between them.
	marks := []time.Time{time.Now()}
	for phase := range 3 {
		time.Sleep(20 * time.Millisecond)
		for i := range 5 {
			e := audit.NewEvent(audit.EventInfo{Time: time.Now(), OperationName: "Microsoft.Resources/tags/write",
				ResourceID: fmt.Sprintf("/subscriptions/s/resourceGroups/rg%d-%d", phase, i), Status: audit.StatusSucceeded})
			if _, err := st.Txn(t.Context(), l.Op(e)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		marks = append(marks, time.Now())
	}
	marks = append(marks, time.Now().Add(time.Hour))
	recs, _, err := l.Records(t.Context(), 1, 0)
	if err != nil || len(recs) != 15 {
		t.Fatalf("Records = %d, %v; want 15", len(recs), err)
	}
	for i, mark := range marks {
		want := uint64(min(i, 3) * 5) // the phases before the mark
		cp, err := l.CheckpointBefore(t.Context(), mark)
		var got uint64
		if cp != nil {
			got = cp.Seq
		}
		if err != nil || got != want || cp != nil && !cp.Time.Before(mark) {
			t.Errorf("CheckpointBefore(mark %d) = %+v, %v; want the checkpoint at %d, signed before %v", i, cp, err, want, mark)
		}
		for _, r := range recs {
			if r.Seq <= got && !r.Event.EventTimestamp.Before(mark) {
				t.Errorf("CheckpointBefore(mark %d) covers record %d, dated %v, not before the mark %v", i, r.Seq, r.Event.EventTimestamp, mark)
			}
		}
	}
}

// TestLogChainsAfterCompaction: a chainer that starts when etcd's history
// no longer reaches back to the last event chained (the last write an
// hour ago) follows new events all the same, without failing and trying
// again.
func TestLogChainsAfterCompaction(t *testing.T) {
	st := storetest.Start(t)
	logged, err := os.CreateTemp(t.TempDir(), "log") // read back without racing the chainer's writes
	if err != nil {
		t.Fatal(err)
	}
	defer logged.Close()
	l := audit.NewLog(audit.LogConfig{Store: st, Signer: testSigner(t, 1),
		Logger: slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	write := func(i int) {
		if _, err := st.Txn(t.Context(), l.Op(testEvent(i))); err != nil {
			t.Fatal(err)
		}
	}

	stop := runChainer(t, l)
	write(1)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	stop()
	for range 10 { // other writes, then history compacted past the last event
		if _, err := st.Txn(t.Context(), store.Put("other", []byte("v"))); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := st.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{st.ClientURL()}, TLS: st.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Compact(t.Context(), rev); err != nil {
		t.Fatal(err)
	}

	runChainer(t, l)
	time.Sleep(300 * time.Millisecond) // the chainer is past its backlog, and one that failed has said so
	write(2)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	write(3)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if recs, _, err := l.Records(t.Context(), 1, 0); err != nil || len(recs) != 3 {
		t.Errorf("Records = %d, %v; want 3", len(recs), err)
	}
	if warned, err := os.ReadFile(logged.Name()); err != nil || len(warned) > 0 {
		t.Errorf("the chainer warned (%v):\n%s", err, warned)
	}
}

// TestLogCheckpointBeforeTampered: a checkpoint whose stored sequence
// number disagrees with its name does not send the bisection backwards.
func TestLogCheckpointBeforeTampered(t *testing.T) {
	st := storetest.Start(t)
	l := audit.NewLog(audit.LogConfig{Store: st, Signer: testSigner(t, 1)})
	runChainer(t, l)
	for phase := range 3 {
		for i := range 5 {
			if _, err := st.Txn(t.Context(), l.Op(testEvent(phase*5+i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := l.Checkpoints(t.Context(), 0, math.MaxUint64)
	if err != nil || len(cps) < 3 {
		t.Fatalf("Checkpoints = %v, %v; want one per phase at least", cps, err)
	}
	forged := cps[len(cps)-2]
	name := fmt.Sprintf("%020d", forged.Seq)
	forged.Seq = 1
	b, err := json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Txn(t.Context(), store.Put("audit/checkpoints/"+name, b)); err != nil {
		t.Fatal(err)
	}
	cp, err := l.CheckpointBefore(t.Context(), time.Now().Add(time.Hour))
	if err != nil || cp == nil || cp.Seq != 15 {
		t.Errorf("CheckpointBefore(in an hour) = %+v, %v; want the last checkpoint, at 15", cp, err)
	}
}
