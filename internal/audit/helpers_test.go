package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/audit"
)

// t0 is the time of the first test event; event i is i seconds later.
var t0 = time.Date(2026, 11, 23, 15, 35, 2, 78076000, time.UTC)

// testKey returns a fixed key, so failures reproduce.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func testSigner(tb testing.TB, seed byte) *audit.Signer {
	tb.Helper()
	s, err := audit.NewSigner(testKey(seed))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// testEvent returns the i-th event of a plausible mix: power actions,
// refusals, and LRO progress.
func testEvent(i int) audit.Event {
	status, code := audit.StatusSucceeded, 200
	switch i % 5 {
	case 1:
		status, code = audit.StatusAccepted, 202
	case 3:
		status, code = audit.StatusFailed, 403
	case 4:
		status, code = audit.StatusStarted, 0
	}
	return audit.NewEvent(audit.EventInfo{
		Time:            t0.Add(time.Duration(i) * time.Second),
		EventDataID:     fmt.Sprintf("00000000-0000-0000-0000-%012d", i),
		CorrelationID:   fmt.Sprintf("11111111-0000-0000-0000-%012d", i/2),
		OperationName:   "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action",
		Role:            "Contributor",
		Caller:          fmt.Sprintf("user%d@citadel.local", i%7),
		Claims:          map[string]string{"oid": fmt.Sprintf("oid-%d", i%7), "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
		ClientIP:        "10.0.0.7",
		ClientRequestID: fmt.Sprintf("req-%d", i),
		Method:          "POST",
		ResourceID:      fmt.Sprintf("/subscriptions/sub1/resourceGroups/rg%d/providers/Microsoft.NetworkCloud/bareMetalMachines/bmm%d", i%3, i%11),
		Status:          status,
		StatusCode:      code,
		TenantID:        "tenant1",
	})
}

// chain is a test chain with checkpoints every `every` records.
type chain struct {
	signer  *audit.Signer
	records []audit.Record // records[i] has Seq i+1
	cps     []audit.Checkpoint
}

func newChain(tb testing.TB, n, every int) *chain {
	tb.Helper()
	c := &chain{signer: testSigner(tb, 1)}
	var h audit.Head
	for i := 1; i <= n; i++ {
		var r audit.Record
		r, h = h.Append(testEvent(i))
		c.records = append(c.records, r)
		if i%every == 0 {
			c.cps = append(c.cps, c.signer.Sign(h, t0.Add(time.Duration(i)*time.Second)))
		}
	}
	return c
}

func (c *chain) header() audit.Header {
	return audit.Header{PublicKey: c.signer.PublicKey(), ExportedAt: t0.Add(time.Hour)}
}

// checkpoint returns the checkpoint at seq; the test fails if there is none.
func (c *chain) checkpoint(tb testing.TB, seq uint64) *audit.Checkpoint {
	tb.Helper()
	for i := range c.cps {
		if c.cps[i].Seq == seq {
			return &c.cps[i]
		}
	}
	tb.Fatalf("no checkpoint at %d", seq)
	return nil
}

// export writes records from..to (1-based, inclusive) with their
// checkpoints, anchored at the checkpoint of from-1.
func (c *chain) export(tb testing.TB, from, to uint64) []byte {
	tb.Helper()
	var anchor *audit.Checkpoint
	if from > 1 {
		anchor = c.checkpoint(tb, from-1)
	}
	var cps []audit.Checkpoint
	for _, cp := range c.cps {
		if cp.Seq <= to {
			cps = append(cps, cp)
		}
	}
	var buf bytes.Buffer
	if err := audit.WriteExport(&buf, c.header(), anchor, audit.Items(recordSeq(c.records[from-1:to]), cps)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func recordSeq(rs []audit.Record) iter.Seq2[audit.Record, error] {
	return func(yield func(audit.Record, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// lines splits an export into lines without their newlines.
func lines(b []byte) []string { return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") }

func join(ls []string) []byte { return []byte(strings.Join(ls, "\n") + "\n") }

// recordLine returns the index in ls of the line of record seq.
func recordLine(tb testing.TB, ls []string, seq uint64) int {
	tb.Helper()
	prefix := fmt.Sprintf(`{"record":{"seq":%d,`, seq)
	for i, l := range ls {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	tb.Fatalf("no line for record %d", seq)
	return -1
}

func recordOf(tb testing.TB, line string) audit.Record {
	tb.Helper()
	r, err := audit.DecodeRecord([]byte(strings.TrimSuffix(strings.TrimPrefix(line, `{"record":`), "}")))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func lineOf(r audit.Record) string { return `{"record":` + string(r.Encode()) + `}` }

// runChainer runs l's chainer until stop is called or the test ends.
func runChainer(tb testing.TB, l *audit.Log) (stop func()) {
	ctx, cancel := context.WithCancel(tb.Context())
	done := make(chan error, 1)
	go func() { done <- l.RunChainer(ctx, "test") }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	tb.Cleanup(stop)
	return stop
}
