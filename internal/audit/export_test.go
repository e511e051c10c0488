package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/audit"
)

// kinds summarises items as "r1 r2 c2 …".
func kinds(tb testing.TB, items iter.Seq2[audit.Item, error]) string {
	tb.Helper()
	var out []string
	for it, err := range items {
		switch {
		case err != nil:
			out = append(out, "err")
		case it.Record != nil:
			out = append(out, "r"+itoa(it.Record.Seq))
		default:
			out = append(out, "c"+itoa(it.Checkpoint.Seq))
		}
	}
	return strings.Join(out, " ")
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestItems(t *testing.T) {
	c := newChain(t, 6, 2) // checkpoints at 2, 4, 6
	tests := []struct {
		name    string
		records []audit.Record
		cps     []audit.Checkpoint
		want    string
	}{
		{"all", c.records, c.cps, "r1 r2 c2 r3 r4 c4 r5 r6 c6"},
		{"unsorted checkpoints", c.records, []audit.Checkpoint{c.cps[2], c.cps[0], c.cps[1]}, "r1 r2 c2 r3 r4 c4 r5 r6 c6"},
		{"from the middle", c.records[2:], c.cps, "r3 r4 c4 r5 r6 c6"},
		{"checkpoint past the end", c.records[:3], c.cps[:2], "r1 r2 c2 r3 c4"},
		{"no records", nil, c.cps, "c2 c4 c6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kinds(t, audit.Items(recordSeq(tt.records), tt.cps)); got != tt.want {
				t.Errorf("Items() = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		failing := func(yield func(audit.Record, error) bool) {
			if yield(c.records[0], nil) {
				yield(audit.Record{}, errors.New("etcd is gone"))
			}
		}
		if got, want := kinds(t, audit.Items(failing, c.cps)), "r1 err"; got != want {
			t.Errorf("Items(failing) = %q, want %q", got, want)
		}
	})
}

func TestWriteExport(t *testing.T) {
	c := newChain(t, 4, 2)
	export := c.export(t, 3, 4)
	ls := lines(export)
	var h audit.Header
	if err := json.Unmarshal([]byte(ls[0]), &h); err != nil {
		t.Fatal(err)
	}
	want := audit.Header{Format: audit.Format, PublicKey: c.signer.PublicKey(), KeyID: c.signer.KeyID(), ExportedAt: t0.Add(3600e9)}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("header mismatch (-want +got):\n%s", diff)
	}
	prefixes := []string{`{"format":`, `{"anchor":{"seq":2,`, `{"record":{"seq":3,`, `{"record":{"seq":4,`, `{"checkpoint":{"seq":4,`}
	if len(ls) != len(prefixes) {
		t.Fatalf("export has %d lines, want %d:\n%s", len(ls), len(prefixes), export)
	}
	for i, p := range prefixes {
		if !strings.HasPrefix(ls[i], p) {
			t.Errorf("line %d = %s, want it to start with %s", i+1, ls[i], p)
		}
	}
}

func TestWriteExportErrors(t *testing.T) {
	c := newChain(t, 2, 2)
	r := c.records[0]
	tests := []struct {
		name  string
		h     audit.Header
		items iter.Seq2[audit.Item, error]
		w     io.Writer
	}{
		{"no public key", audit.Header{}, audit.Items(recordSeq(c.records), nil), &bytes.Buffer{}},
		{"item with both", c.header(), func(yield func(audit.Item, error) bool) {
			yield(audit.Item{Record: &r, Checkpoint: &c.cps[0]}, nil)
		}, &bytes.Buffer{}},
		{"empty item", c.header(), func(yield func(audit.Item, error) bool) { yield(audit.Item{}, nil) }, &bytes.Buffer{}},
		{"source error", c.header(), func(yield func(audit.Item, error) bool) { yield(audit.Item{}, errors.New("boom")) }, &bytes.Buffer{}},
		{"write error", c.header(), audit.Items(recordSeq(c.records), c.cps), failingWriter{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := audit.WriteExport(tt.w, tt.h, nil, tt.items); err == nil {
				t.Errorf("WriteExport(%s) = nil, want an error", tt.name)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// segments writes records 1..200 as four archive segments of 50.
func segments(t *testing.T, c *chain) [][]byte {
	t.Helper()
	var out [][]byte
	for from := uint64(1); from <= 200; from += 50 {
		var anchor *audit.Checkpoint
		if from > 1 {
			anchor = c.checkpoint(t, from-1)
		}
		var buf bytes.Buffer
		err := audit.WriteSegment(&buf, c.header(), anchor, audit.Items(recordSeq(c.records[from-1:from+49]), []audit.Checkpoint{*c.checkpoint(t, from+49)}))
		if err != nil {
			t.Fatalf("WriteSegment(%d..%d) = %v", from, from+49, err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

func readers(files ...[]byte) []io.Reader {
	var rs []io.Reader
	for _, f := range files {
		rs = append(rs, bytes.NewReader(f))
	}
	return rs
}

func TestVerifySegments(t *testing.T) {
	c := newChain(t, 220, 50)
	segs := segments(t, c)
	live := c.export(t, 201, 220) // anchored at 200, tail unsigned
	// Another history: same key, record 100 differs, so everything after.
	evs := eventsOf(c.records)
	evs[99] = forged(evs[99])
	fork := &chain{signer: c.signer, records: rechain(evs)}
	for _, cp := range c.cps {
		fork.cps = append(fork.cps, c.signer.Sign(audit.Head{Seq: cp.Seq, Hash: fork.records[cp.Seq-1].Hash()}, t0))
	}
	otherSegs := segments(t, fork)
	tamperedSeg := func(seg []byte, seq uint64) []byte {
		ls := lines(seg)
		i := recordLine(t, ls, seq)
		r := recordOf(t, ls[i])
		r.Event.Caller = "mallory"
		ls[i] = lineOf(r)
		return join(ls)
	}
	tests := []struct {
		name  string
		files [][]byte
		kind  audit.Kind // of the first problem; "" for none
		seq   uint64
		file  int
		count int
	}{
		{"all segments", segs, "", 0, 0, 0},
		{"all segments and the live store", append(slices.Clone(segs), live), "", 0, 0, 0},
		{"a segment is missing", [][]byte{segs[0], segs[2], segs[3]}, audit.KindDeleted, 51, 1, 1},
		{"the first segment is missing", segs[1:], audit.KindDeleted, 1, 0, 1},
		{"segments out of order", [][]byte{segs[1], segs[0], segs[2], segs[3]}, audit.KindDeleted, 1, 0, 2},
		{"a record modified in a segment", [][]byte{segs[0], tamperedSeg(segs[1], 70), segs[2], segs[3]}, audit.KindModified, 70, 1, 1},
		{"the last record of a segment modified", [][]byte{segs[0], tamperedSeg(segs[1], 100), segs[2], segs[3]}, audit.KindModified, 100, 1, 1},
		{"a segment from another history", [][]byte{segs[0], segs[1], otherSegs[2], otherSegs[3]}, audit.KindModified, 101, 2, 1},
		{"a segment without its anchor", [][]byte{segs[0], join(slices.Delete(lines(segs[1]), 1, 2)), segs[2], segs[3]}, audit.KindUnanchored, 51, 1, 1},
		{"a segment truncated", [][]byte{segs[0], join(lines(segs[1])[:30]), segs[2], segs[3]}, audit.KindUncovered, 51, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.VerifySegments(c.signer.PublicKey(), readers(tt.files...)...)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%v", got)
			first, _ := got.First()
			if first.Kind != tt.kind || first.Seq != tt.seq || first.File != tt.file || (tt.count > 0 && len(got.Problems) != tt.count) {
				t.Errorf("VerifySegments() first problem = %+v (of %d), want %s at record %d in file %d (of %d); report:\n%v",
					first, len(got.Problems), tt.kind, tt.seq, tt.file, tt.count, got)
			}
		})
	}
	t.Run("totals", func(t *testing.T) {
		got, err := audit.VerifySegments(c.signer.PublicKey(), readers(append(slices.Clone(segs), live)...)...)
		if err != nil {
			t.Fatal(err)
		}
		if got.Records != 220 || got.FirstSeq != 1 || got.LastSeq != 220 || got.VerifiedThrough != 200 || got.Checkpoints != 4 || len(got.Warnings) != 1 {
			t.Errorf("VerifySegments() = %v, want 220 records 1..220, 4 checkpoints, verified through 200, 1 warning", got)
		}
	})
}

func TestWriteSegmentRefuses(t *testing.T) {
	c := newChain(t, 100, 50)
	other := testSigner(t, 2)
	broken := slices.Clone(c.records[50:100])
	broken[10].Event.Caller = "mallory"
	tests := []struct {
		name    string
		anchor  *audit.Checkpoint
		records []audit.Record
		cps     []audit.Checkpoint
		msg     string
	}{
		{"gap", c.checkpoint(t, 50), slices.Delete(slices.Clone(c.records[50:100]), 5, 6), c.cps[1:], "record 57 where record 56 belongs"},
		{"broken link", c.checkpoint(t, 50), broken, c.cps[1:], "record 62: prev"},
		{"no final checkpoint", c.checkpoint(t, 50), c.records[50:99], c.cps[1:1], "has no checkpoint"},
		{"wrong anchor", c.checkpoint(t, 50), c.records[51:100], c.cps[1:], "record 52 where record 51 belongs"},
		{"no anchor mid-chain", nil, c.records[50:100], c.cps[1:], "record 51 where record 1 belongs"},
		{"forged checkpoint", c.checkpoint(t, 50), c.records[50:100], []audit.Checkpoint{other.Sign(audit.Head{Seq: 100, Hash: c.records[99].Hash()}, t0)}, "signed by another key"},
		{"stale checkpoint", c.checkpoint(t, 50), c.records[50:100], []audit.Checkpoint{c.signer.Sign(audit.Head{Seq: 100, Hash: c.records[98].Hash()}, t0)}, "does not cover"},
		{"forged anchor", &audit.Checkpoint{Seq: 50}, c.records[50:100], c.cps[1:], "segment anchor"},
		{"empty", c.checkpoint(t, 50), nil, nil, "no records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := audit.WriteSegment(io.Discard, c.header(), tt.anchor, audit.Items(recordSeq(tt.records), tt.cps))
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("WriteSegment() = %v, want an error containing %q", err, tt.msg)
			}
		})
	}
}
