package audit_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

// BenchmarkAppend measures the next record of a chain: canonical encoding
// and hashing of one record.
func BenchmarkAppend(b *testing.B) {
	e := testEvent(3)
	h := audit.Head{Seq: 41, Hash: audit.Digest{1}}
	b.ReportAllocs()
	for b.Loop() {
		_, h = h.Append(e)
	}
}

// BenchmarkVerify verifies an export of 1000 records with checkpoints every
// 50.
func BenchmarkVerify(b *testing.B) {
	c := newChain(b, 1000, 50)
	export := c.export(b, 1, 1000)
	pub := c.signer.PublicKey()
	b.SetBytes(int64(len(export)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := audit.Verify(bytes.NewReader(export), pub)
		if err != nil || !rep.OK() {
			b.Fatalf("Verify() = %v, %v", rep, err)
		}
	}
}

// BenchmarkOp measures what the activity log adds to a long-running
// request's transaction before etcd: its Started and Accepted events in
// their stored form.
func BenchmarkOp(b *testing.B) {
	l := audit.NewLog(audit.LogConfig{})
	started, accepted := testEvent(4), testEvent(1)
	b.ReportAllocs()
	for b.Loop() {
		l.Op(started, accepted)
	}
}

// BenchmarkQueryRecent reads the records of the last moment from a store
// holding 20,000 older ones: from the checkpoint before that moment
// (CheckpointBefore, as the activity-log query does), against from the
// first record.
func BenchmarkQueryRecent(b *testing.B) {
	st := storetest.Start(b)
	l := audit.NewLog(audit.LogConfig{Store: st, Signer: testSigner(b, 1), ClockSkew: time.Millisecond})
	runChainer(b, l)
	write := func(from, n int) {
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := from + w; i < from+n; i += 16 {
					if _, err := st.Txn(b.Context(), l.Op(testEvent(i))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := l.Flush(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	const old, recent = 20000, 100
	write(0, old)
	time.Sleep(10 * time.Millisecond)
	since := time.Now()
	write(old, recent)
	for _, bb := range []struct {
		name  string
		first func() uint64
	}{
		{"fromCheckpoint", func() uint64 {
			cp, err := l.CheckpointBefore(b.Context(), since)
			if err != nil || cp == nil {
				b.Fatalf("CheckpointBefore = %v, %v", cp, err)
			}
			return cp.Seq + 1
		}},
		{"fromFirst", func() uint64 { return 1 }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				recs, _, err := l.Records(b.Context(), bb.first(), 0)
				if err != nil || len(recs) < recent {
					b.Fatalf("Records = %d, %v; want at least the %d recent", len(recs), err, recent)
				}
			}
		})
	}
}
