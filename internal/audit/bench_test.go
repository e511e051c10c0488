package audit_test

import (
	"bytes"
	"testing"

	"github.com/citadel-cloud/citadel/internal/audit"
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
