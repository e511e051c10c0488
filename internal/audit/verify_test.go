package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/audit"
)

// rechain links events into a fresh chain from record 1, as an attacker
// who recomputes the hashes would.
func rechain(events []audit.Event) []audit.Record {
	var h audit.Head
	out := make([]audit.Record, len(events))
	for i, e := range events {
		out[i], h = h.Append(e)
	}
	return out
}

func eventsOf(rs []audit.Record) []audit.Event {
	out := make([]audit.Event, len(rs))
	for i, r := range rs {
		out[i] = r.Event
	}
	return out
}

// exportOf writes records with checkpoints placed by Items.
func exportOf(tb testing.TB, h audit.Header, records []audit.Record, cps []audit.Checkpoint) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := audit.WriteExport(&buf, h, nil, audit.Items(recordSeq(records), cps)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func forged(e audit.Event) audit.Event {
	e.Caller = "mallory@citadel.local"
	e.Status = audit.LocalizableString{Value: audit.StatusSucceeded, LocalizedValue: audit.StatusSucceeded}
	return e
}

func TestVerifyClean(t *testing.T) {
	c := newChain(t, 200, 50)
	pub := c.signer.PublicKey()
	tests := []struct {
		name    string
		export  []byte
		trusted ed25519.PublicKey
		want    audit.Report
	}{
		{"whole chain", c.export(t, 1, 200), pub, audit.Report{
			Records: 200, Checkpoints: 4, FirstSeq: 1, LastSeq: 200, VerifiedThrough: 200,
			KeyID: c.signer.KeyID(), Anchored: true,
		}},
		{"self-asserted key", c.export(t, 1, 200), nil, audit.Report{
			Records: 200, Checkpoints: 4, FirstSeq: 1, LastSeq: 200, VerifiedThrough: 200,
			KeyID: c.signer.KeyID(), SelfAsserted: true, Anchored: true,
		}},
		{"anchored mid-chain", c.export(t, 51, 150), pub, audit.Report{
			Records: 100, Checkpoints: 2, FirstSeq: 51, LastSeq: 150, VerifiedThrough: 150,
			KeyID: c.signer.KeyID(), Anchored: true,
		}},
		{"unsigned tail is a warning", c.export(t, 101, 180), pub, audit.Report{
			Records: 80, Checkpoints: 1, FirstSeq: 101, LastSeq: 180, VerifiedThrough: 150,
			KeyID: c.signer.KeyID(), Anchored: true,
			Warnings: []audit.Problem{{Seq: 151, Line: 83, Kind: audit.KindUncovered,
				Detail: "tail not covered by a checkpoint: records 151..180 could be truncated undetectably"}},
		}},
		{"no records yet", c.export(t, 1, 0), pub, audit.Report{KeyID: c.signer.KeyID()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.Verify(bytes.NewReader(tt.export), tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify() report mismatch (-want +got):\n%s", diff)
			}
			if !got.OK() {
				t.Errorf("Verify().OK() = false, want true:\n%v", got)
			}
		})
	}
}

func TestVerifyStrict(t *testing.T) {
	c := newChain(t, 200, 50)
	export := c.export(t, 101, 180)
	got, err := audit.Verifier{Key: c.signer.PublicKey(), Strict: true}.Verify(bytes.NewReader(export))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := got.First()
	if got.OK() || first.Kind != audit.KindUncovered || first.Seq != 151 {
		t.Errorf("strict Verify(tail 151..180 unsigned) = %v, want an uncovered problem at 151", got)
	}
}

// TestVerifyTamper changes an export of 200 records with checkpoints every
// 50 in each way the issue lists, and checks that Verify names the first bad
// record with the right kind, and nothing else.
func TestVerifyTamper(t *testing.T) {
	c := newChain(t, 200, 50)
	clean := lines(c.export(t, 1, 200))
	attacker := testSigner(t, 2)
	events := eventsOf(c.records)

	modify := func(seq uint64, f func(*audit.Record)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			ls := slices.Clone(clean)
			i := recordLine(t, ls, seq)
			r := recordOf(t, ls[i])
			f(&r)
			ls[i] = lineOf(r)
			return join(ls)
		}
	}
	edit := func(f func(t *testing.T, ls []string) []string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return join(f(t, slices.Clone(clean))) }
	}
	// inPlace writes records into the clean export's record lines in order,
	// inserting a line where there are more records than lines before a
	// checkpoint: checkpoint lines stay where they were.
	inPlace := func(t *testing.T, records []audit.Record, insertAt uint64) []byte {
		var out []string
		k := 0
		for _, l := range clean {
			if !strings.HasPrefix(l, `{"record":`) {
				out = append(out, l)
				continue
			}
			out = append(out, lineOf(records[k]))
			k++
			if records[k-1].Seq == insertAt {
				out = append(out, lineOf(records[k]))
				k++
			}
		}
		return join(out)
	}
	withInserted := func() []audit.Record {
		evs := slices.Concat(events[:120], []audit.Event{forged(events[120])}, events[120:])
		return rechain(evs)
	}

	tests := []struct {
		name     string
		export   func(t *testing.T) []byte
		untruste bool // verify with the header's key instead of the trusted one
		kind     audit.Kind
		seq      uint64
		count    int // problems expected in all
	}{
		{"modify a record", modify(77, func(r *audit.Record) { r.Event.Caller = "mallory" }), false, audit.KindModified, 77, 1},
		{"modify a property", modify(78, func(r *audit.Record) { r.Event.Properties["statusCode"] = "OK" }), false, audit.KindModified, 78, 1},
		{"modify the first record", modify(1, func(r *audit.Record) { r.Event.Status.Value = "Succeeded" }), false, audit.KindModified, 1, 1},
		{"modify a checkpointed record", modify(100, func(r *audit.Record) { r.Event.Caller = "mallory" }), false, audit.KindModified, 100, 1},
		{"modify the last record", modify(200, func(r *audit.Record) { r.Event.Caller = "mallory" }), false, audit.KindModified, 200, 1},
		{"modify a record's prev", modify(77, func(r *audit.Record) { r.Prev[0] ^= 1 }), false, audit.KindModified, 77, 1},
		{"modify a record's seq", modify(77, func(r *audit.Record) { r.Seq = 1077 }), false, audit.KindDeleted, 77, 3},
		{"modify a record, chain recomputed", func(t *testing.T) []byte {
			evs := slices.Clone(events)
			evs[119] = forged(evs[119])
			return exportOf(t, c.header(), rechain(evs), c.cps)
		}, false, audit.KindModified, 101, 1},

		{"delete a record", edit(func(t *testing.T, ls []string) []string {
			return slices.Delete(ls, recordLine(t, ls, 120), recordLine(t, ls, 120)+1)
		}), false, audit.KindDeleted, 120, 1},
		{"delete the first record", edit(func(t *testing.T, ls []string) []string {
			return slices.Delete(ls, 1, 2)
		}), false, audit.KindUnanchored, 2, 1},
		{"delete a checkpointed record and its checkpoint", edit(func(t *testing.T, ls []string) []string {
			i := recordLine(t, ls, 100)
			return slices.Delete(ls, i, i+2)
		}), false, audit.KindDeleted, 100, 1},
		{"delete the last records, keeping the checkpoint", edit(func(t *testing.T, ls []string) []string {
			return slices.Delete(ls, recordLine(t, ls, 191), recordLine(t, ls, 200)+1)
		}), false, audit.KindDeleted, 191, 1},
		{"delete a record, chain recomputed", func(t *testing.T) []byte {
			return exportOf(t, c.header(), rechain(slices.Delete(slices.Clone(events), 119, 120)), c.cps)
		}, false, audit.KindModified, 101, 2},

		{"insert a forged record, chain recomputed", func(t *testing.T) []byte {
			return inPlace(t, withInserted(), 120)
		}, false, audit.KindInserted, 121, 1},
		{"insert a forged record, chain recomputed, checkpoints moved", func(t *testing.T) []byte {
			return exportOf(t, c.header(), withInserted(), c.cps)
		}, false, audit.KindInserted, 121, 1},
		{"insert a second record with the same seq", edit(func(t *testing.T, ls []string) []string {
			i := recordLine(t, ls, 60)
			r := recordOf(t, ls[i])
			r.Event = forged(r.Event)
			return slices.Insert(ls, i+1, lineOf(r))
		}), false, audit.KindInserted, 60, 1},
		{"insert a copy of a record", edit(func(t *testing.T, ls []string) []string {
			i := recordLine(t, ls, 60)
			return slices.Insert(ls, i+1, ls[i])
		}), false, audit.KindInserted, 60, 1},
		{"append a record after the last checkpoint", edit(func(t *testing.T, ls []string) []string {
			r, _ := audit.Head{Seq: 200, Hash: c.records[199].Hash()}.Append(forged(events[0]))
			return append(ls, lineOf(r))
		}), false, "", 0, 0},

		{"reorder two records", edit(func(t *testing.T, ls []string) []string {
			i, j := recordLine(t, ls, 130), recordLine(t, ls, 131)
			ls[i], ls[j] = ls[j], ls[i]
			return ls
		}), false, audit.KindReordered, 131, 1},
		{"move a record to the end", edit(func(t *testing.T, ls []string) []string {
			i := recordLine(t, ls, 10)
			l := ls[i]
			return append(slices.Delete(ls, i, i+1), l)
		}), false, audit.KindReordered, 10, 1},
		{"reverse the whole export", edit(func(t *testing.T, ls []string) []string {
			slices.Reverse(ls[1:])
			return ls
		}), false, audit.KindReordered, 2, 101},
		{"swap two records, chain recomputed", func(t *testing.T) []byte {
			evs := slices.Clone(events)
			evs[129], evs[130] = evs[130], evs[129]
			return exportOf(t, c.header(), rechain(evs), c.cps)
		}, false, audit.KindReordered, 130, 1},

		{"forge a checkpoint signature", edit(func(t *testing.T, ls []string) []string {
			i := recordLine(t, ls, 100) + 1
			var l struct{ Checkpoint audit.Checkpoint }
			if err := json.Unmarshal([]byte(ls[i]), &l); err != nil {
				t.Fatal(err)
			}
			l.Checkpoint.Signature[0] ^= 1
			ls[i] = checkpointLine(t, l.Checkpoint)
			return ls
		}), false, audit.KindBadCheckpoint, 100, 1},
		{"change a checkpoint's hash", edit(func(t *testing.T, ls []string) []string {
			cp := *c.checkpoint(t, 150)
			cp.Hash = c.records[148].Hash()
			ls[recordLine(t, ls, 150)+1] = checkpointLine(t, cp)
			return ls
		}), false, audit.KindBadCheckpoint, 150, 1},
		{"forge a checkpoint with another key", edit(func(t *testing.T, ls []string) []string {
			cp := attacker.Sign(audit.Head{Seq: 150, Hash: c.records[149].Hash()}, t0)
			ls[recordLine(t, ls, 150)+1] = checkpointLine(t, cp)
			return ls
		}), false, audit.KindBadCheckpoint, 150, 1},
		{"swap the header's public key", edit(func(t *testing.T, ls []string) []string {
			ls[0] = headerLine(t, attacker.PublicKey())
			return ls
		}), false, audit.KindBadKey, 0, 1},
		{"swap the header's public key, no trusted key", edit(func(t *testing.T, ls []string) []string {
			ls[0] = headerLine(t, attacker.PublicKey())
			return ls
		}), true, audit.KindBadCheckpoint, 50, 4},
		{"rewrite and re-sign everything with another key", func(t *testing.T) []byte {
			evs := slices.Clone(events)
			evs[76] = forged(evs[76])
			rs := rechain(evs)
			var cps []audit.Checkpoint
			for i := 50; i <= 200; i += 50 {
				cps = append(cps, attacker.Sign(audit.Head{Seq: uint64(i), Hash: rs[i-1].Hash()}, t0))
			}
			return exportOf(t, audit.Header{PublicKey: attacker.PublicKey()}, rs, cps)
		}, false, audit.KindBadKey, 0, 5},

		{"a line of garbage", edit(func(t *testing.T, ls []string) []string {
			return slices.Insert(ls, 30, "garbage")
		}), false, audit.KindSyntax, 0, 1},
		{"a record reformatted", edit(func(t *testing.T, ls []string) []string {
			i := recordLine(t, ls, 42)
			ls[i] = strings.Replace(ls[i], `"caller":`, `"caller": `, 1)
			return ls
		}), false, audit.KindSyntax, 42, 1},
		{"a record with a duplicated key", edit(func(t *testing.T, ls []string) []string {
			i := recordLine(t, ls, 42)
			ls[i] = strings.Replace(ls[i], `"caller":`, `"Caller":"mallory","caller":`, 1)
			return ls
		}), false, audit.KindSyntax, 42, 1},
		{"a truncated record line", edit(func(t *testing.T, ls []string) []string {
			i := recordLine(t, ls, 42)
			ls[i] = ls[i][:len(ls[i])/2]
			return ls
		}), false, audit.KindSyntax, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trusted := c.signer.PublicKey()
			if tt.untruste {
				trusted = nil
			}
			export := tt.export(t)
			got, err := audit.Verify(bytes.NewReader(export), trusted)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%v", got)
			if tt.count == 0 {
				if !got.OK() {
					t.Errorf("Verify() = %v, want OK", got)
				}
				return
			}
			first, ok := got.First()
			if !ok || first.Kind != tt.kind || first.Seq != tt.seq || len(got.Problems) != tt.count {
				t.Fatalf("Verify() first problem = %v (of %d), want %s at record %d (of %d); report:\n%v",
					first, len(got.Problems), tt.kind, tt.seq, tt.count, got)
			}
			// The line named holds the record named.
			if first.Seq > 0 && first.Kind != audit.KindDeleted && first.Kind != audit.KindBadCheckpoint && first.Kind != audit.KindUnanchored {
				l := lines(export)[first.Line-1]
				if r := recordOf(t, normalize(l)); r.Seq != first.Seq {
					t.Errorf("Verify() names line %d for record %d, but it holds record %d", first.Line, first.Seq, r.Seq)
				}
			}
		})
	}
}

// normalize undoes the reformatting tamper cases so the line can be decoded.
func normalize(l string) string {
	l = strings.Replace(l, `"caller": `, `"caller":`, 1)
	return strings.Replace(l, `"Caller":"mallory",`, ``, 1)
}

func checkpointLine(tb testing.TB, cp audit.Checkpoint) string {
	tb.Helper()
	b, err := json.Marshal(map[string]audit.Checkpoint{"checkpoint": cp})
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func headerLine(tb testing.TB, pub ed25519.PublicKey) string {
	tb.Helper()
	var buf bytes.Buffer
	x, err := audit.NewExporter(&buf, audit.Header{PublicKey: pub}, nil)
	if err == nil {
		err = x.Flush()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return lines(buf.Bytes())[0]
}

func TestVerifyAnchor(t *testing.T) {
	c := newChain(t, 200, 50)
	pub := c.signer.PublicKey()
	mid := lines(c.export(t, 101, 200)) // header, anchor (100), records…
	tests := []struct {
		name  string
		edit  func(ls []string) []string
		kind  audit.Kind
		seq   uint64
		count int
	}{
		{"no anchor", func(ls []string) []string { return slices.Delete(ls, 1, 2) }, audit.KindUnanchored, 101, 1},
		{"forged anchor", func(ls []string) []string {
			cp := *c.checkpoint(t, 100)
			cp.Hash[0] ^= 1
			ls[1] = strings.Replace(checkpointLine(t, cp), `"checkpoint"`, `"anchor"`, 1)
			return ls
		}, audit.KindBadCheckpoint, 100, 1},
		{"anchor from an earlier checkpoint", func(ls []string) []string {
			ls[1] = strings.Replace(checkpointLine(t, *c.checkpoint(t, 50)), `"checkpoint"`, `"anchor"`, 1)
			return ls
		}, audit.KindDeleted, 51, 1},
		{"anchor after a record", func(ls []string) []string {
			a := ls[1]
			return slices.Insert(slices.Delete(ls, 1, 2), 2, a)
		}, audit.KindSyntax, 0, 2},
		{"first record modified", func(ls []string) []string {
			r := recordOf(t, ls[2])
			r.Event.Caller = "mallory"
			r.Prev[0] ^= 1
			ls[2] = lineOf(r)
			return ls
		}, audit.KindModified, 101, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.Verify(bytes.NewReader(join(tt.edit(slices.Clone(mid)))), pub)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := got.First()
			if first.Kind != tt.kind || first.Seq != tt.seq || len(got.Problems) != tt.count {
				t.Errorf("Verify() first problem = %v (of %d), want %s at record %d (of %d); report:\n%v",
					first, len(got.Problems), tt.kind, tt.seq, tt.count, got)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	c := newChain(t, 10, 5)
	valid := c.export(t, 1, 10)
	tests := []struct {
		name string
		in   string
		kind audit.Kind
	}{
		{"empty", "", audit.KindSyntax},
		{"blank lines only", "\n\n", audit.KindSyntax},
		{"not JSON", "hello\n", audit.KindSyntax},
		{"wrong format", `{"format":"other","publicKey":"","keyId":""}` + "\n", audit.KindSyntax},
		{"short key", `{"format":"citadel-audit-export-v1","publicKey":"AAAA","keyId":"x"}` + "\n", audit.KindBadKey},
		{"header only, CRLF", strings.ReplaceAll(lines(valid)[0]+"\n", "\n", "\r\n"), ""},
		{"line with two items", lines(valid)[0] + "\n" + `{"record":{},"checkpoint":{}}` + "\n", audit.KindSyntax},
		{"null record", lines(valid)[0] + "\n" + `{"record":null}` + "\n", audit.KindSyntax},
		{"seq zero", lines(valid)[0] + "\n" + `{"record":{"seq":0,"prev":"","event":{}}}` + "\n", audit.KindSyntax},
		{"unknown field", lines(valid)[0] + "\n" + `{"note":"hi"}` + "\n", audit.KindSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.Verify(strings.NewReader(tt.in), nil)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := got.First()
			if first.Kind != tt.kind {
				t.Errorf("Verify(%q) first problem = %v, want kind %q; report:\n%v", tt.in, first, tt.kind, got)
			}
		})
	}
	t.Run("CRLF export", func(t *testing.T) {
		got, err := audit.Verify(bytes.NewReader(bytes.ReplaceAll(valid, []byte("\n"), []byte("\r\n"))), c.signer.PublicKey())
		if err != nil || !got.OK() {
			t.Errorf("Verify(CRLF export) = %v, %v; want OK", got, err)
		}
	})
	t.Run("bad trusted key", func(t *testing.T) {
		if _, err := audit.Verify(bytes.NewReader(valid), ed25519.PublicKey{1, 2}); err == nil {
			t.Errorf("Verify(trusted key of 2 bytes) error = nil, want an error")
		}
	})
}

func TestReportString(t *testing.T) {
	r := audit.Report{Records: 3, FirstSeq: 1, LastSeq: 3, KeyID: "abcd", SelfAsserted: true,
		Problems: []audit.Problem{{Seq: 2, Line: 3, Kind: audit.KindModified, Detail: "record 2 was modified"}}}
	got := r.String()
	for _, want := range []string{"FAILED (1 problems)", "self-asserted", "problem: line 3: record 2: modified: record 2 was modified"} {
		if !strings.Contains(got, want) {
			t.Errorf("Report.String() = %q, want it to contain %q", got, want)
		}
	}
}

func TestVerifyLargeGapIsCheap(t *testing.T) {
	// A chain hash mismatch far from the last good checkpoint must not
	// make Verify try quadratic undo over an unbounded window.
	c := newChain(t, 3001, 3000)
	evs := eventsOf(c.records)
	evs[10] = forged(evs[10])
	start := time.Now()
	got, err := audit.Verify(bytes.NewReader(exportOf(t, c.header(), rechain(evs), c.cps)), c.signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := got.First(); first.Kind != audit.KindModified || first.Seq != 1 {
		t.Errorf("Verify() first problem = %v, want modified at 1", first)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Verify() took %v", d)
	}
}
