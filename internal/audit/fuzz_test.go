package audit_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/audit"
)

func FuzzVerify(f *testing.F) {
	// Small seeds: the fuzzer minimises every new input, at a cost that
	// grows with its size and with the cost of one run.
	signer := testSigner(f, 1)
	var h audit.Head
	var records []audit.Record
	var cps []audit.Checkpoint
	for i := range 4 {
		var r audit.Record
		r, h = h.Append(audit.Event{Caller: string(rune('a' + i))})
		records = append(records, r)
		if i%2 == 1 {
			cps = append(cps, signer.Sign(h, t0))
		}
	}
	hdr := audit.Header{PublicKey: signer.PublicKey()}
	clean := exportOf(f, hdr, records, cps)
	ls := lines(clean)
	f.Add(clean)
	var anchored bytes.Buffer
	if err := audit.WriteExport(&anchored, hdr, &cps[0], audit.Items(recordSeq(records[2:]), cps[1:])); err != nil {
		f.Fatal(err)
	}
	f.Add(anchored.Bytes())
	f.Add(join(slices.Delete(slices.Clone(ls), 2, 3)))
	swapped := slices.Clone(ls)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	f.Add(join(swapped))
	f.Add(join(append(slices.Clone(ls), ls[1])))
	f.Add([]byte(ls[0] + "\n{\"record\":{\"seq\":1}}\n{\"anchor\":null}\n"))
	f.Add([]byte{})
	f.Add([]byte("\n\r\n{}"))
	pub := signer.PublicKey()
	f.Fuzz(func(t *testing.T, b []byte) {
		r1, err := audit.Verify(bytes.NewReader(b), pub)
		if err != nil {
			t.Fatalf("Verify() error = %v; only read errors are errors", err)
		}
		if r1.OK() && r1.Records > 0 && !r1.Anchored {
			t.Fatalf("Verify() = OK for an unanchored export:\n%v", r1)
		}
	})
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"eventTimestamp ge 2026-11-23T15:35:02.078076 and eventTimestamp le 2026-11-23T16:35:02.078076 and resourceGroupName eq 'rg1'",
		"eventTimestamp ge '2026-11-23T15:35:02Z' and caller eq 'o''brien'",
		"eventTimestamp ge 2026-11-23 and status eq Failed and correlationId eq 'x' and resourceUri eq '/a/b'",
		"eventTimestamp ge 9999-12-31T23:00:00-05:00",
		"resourceGroupName eq 'rg'", "'", "eventTimestamp ge '", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := audit.ParseFilter(s)
		if err != nil {
			if !errors.Is(err, audit.ErrBadFilter) {
				t.Fatalf("ParseFilter(%q) error = %v, want ErrBadFilter", s, err)
			}
			return
		}
		again, err := audit.ParseFilter(flt.String())
		if err != nil || !cmp.Equal(again, flt) {
			t.Fatalf("ParseFilter(%q) = %+v, %v; want %+v (from %q)", flt.String(), again, err, flt, s)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(audit.Next(audit.Digest{1}, 2, testEvent(1)).Encode())
	f.Add(audit.Next(audit.Digest{}, 1, audit.Event{Caller: "a", Claims: map[string]string{"oid": "o"}, EventTimestamp: t0}).Encode())
	f.Add([]byte(`{"seq":1,"prev":"` + string(bytes.Repeat([]byte("0"), 64)) + `","event":{"eventTimestamp":"2026-01-01T00:00:00+14:00","caller":"\ud800"}}`))
	f.Add([]byte(`{"seq":18446744073709551615,"prev":"` + string(bytes.Repeat([]byte("f"), 64)) + `","event":{"claims":{"a":"b","A":"c"}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := audit.DecodeRecord(b)
		if err != nil {
			return
		}
		enc := r.Encode()
		back, err := audit.DecodeRecord(enc)
		if err != nil {
			t.Fatalf("DecodeRecord(Encode(DecodeRecord(%q))) error = %v", b, err)
		}
		if again := back.Encode(); !bytes.Equal(again, enc) {
			t.Fatalf("Encode is not stable through DecodeRecord:\n%s\n%s", enc, again)
		}
		if back.Hash() != r.Hash() {
			t.Fatalf("Hash() changed through a round trip")
		}
	})
}
