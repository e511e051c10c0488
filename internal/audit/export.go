package audit

import (
	"bufio"
	"cmp"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"time"
)

// Format is the header's format of export files and archive segments.
const Format = "citadel-audit-export-v1"

// Header is the first line of an export. Only the records, checkpoints and
// anchor are authenticated; the header is a label, and its public key is
// believed only when the verifier has no trusted key of its own.
type Header struct {
	Format     string            `json:"format"`
	PublicKey  ed25519.PublicKey `json:"publicKey"` // raw 32 bytes, base64
	KeyID      string            `json:"keyId"`
	From       time.Time         `json:"from,omitzero"` // the time range asked for, if any
	To         time.Time         `json:"to,omitzero"`
	ExportedAt time.Time         `json:"exportedAt,omitzero"`
}

// Item is one line after the header and anchor: a record or a checkpoint.
type Item struct {
	Record     *Record
	Checkpoint *Checkpoint
}

// Exporter writes an export file line by line, so that the caller can page
// through the store. It writes what it is given, in the order given: an
// export of a damaged store must show the damage, not refuse it.
type Exporter struct {
	w   *bufio.Writer
	err error
}

// NewExporter writes the header and, when the export starts after record 1,
// the anchor: the signed checkpoint of the record just before the first one
// exported. Format and KeyID are filled in when empty.
func NewExporter(w io.Writer, h Header, anchor *Checkpoint) (*Exporter, error) {
	if len(h.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("export header: public key is %d bytes, want %d", len(h.PublicKey), ed25519.PublicKeySize)
	}
	if h.Format == "" {
		h.Format = Format
	}
	if h.KeyID == "" {
		h.KeyID = KeyID(h.PublicKey)
	}
	h.From, h.To, h.ExportedAt = h.From.UTC(), h.To.UTC(), h.ExportedAt.UTC()
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("export header: %w", err)
	}
	x := &Exporter{w: bufio.NewWriter(w)}
	x.line(b)
	if anchor != nil {
		x.checkpoint("anchor", *anchor)
	}
	return x, x.err
}

// Record writes {"record":…}.
func (x *Exporter) Record(r Record) error {
	x.line([]byte(`{"record":`), r.Encode(), []byte(`}`))
	return x.err
}

// Checkpoint writes {"checkpoint":…}; it belongs after the record it covers.
func (x *Exporter) Checkpoint(cp Checkpoint) error {
	x.checkpoint("checkpoint", cp)
	return x.err
}

// Flush writes out what is buffered; call it at the end.
func (x *Exporter) Flush() error {
	if x.err == nil {
		x.err = x.w.Flush()
	}
	return x.err
}

func (x *Exporter) checkpoint(key string, cp Checkpoint) {
	cp.Time = cp.Time.UTC()
	b, err := json.Marshal(cp)
	if err != nil {
		x.err = cmp.Or(x.err, fmt.Errorf("export %s %d: %w", key, cp.Seq, err))
		return
	}
	x.line([]byte(`{"`+key+`":`), b, []byte(`}`))
}

func (x *Exporter) line(parts ...[]byte) {
	for _, p := range parts {
		if x.err == nil {
			_, x.err = x.w.Write(p)
		}
	}
	if x.err == nil {
		x.err = x.w.WriteByte('\n')
	}
}

func (x *Exporter) item(it Item) error {
	switch {
	case it.Record != nil && it.Checkpoint == nil:
		return x.Record(*it.Record)
	case it.Checkpoint != nil && it.Record == nil:
		return x.Checkpoint(*it.Checkpoint)
	}
	return errors.New("export: an item must hold exactly one of a record and a checkpoint")
}

// WriteExport writes a whole export: header, anchor (nil when the first
// record is record 1) and items in sequence order, see [Items].
func WriteExport(w io.Writer, h Header, anchor *Checkpoint, items iter.Seq2[Item, error]) error {
	x, err := NewExporter(w, h, anchor)
	if err != nil {
		return err
	}
	for it, err := range items {
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := x.item(it); err != nil {
			return err
		}
	}
	return x.Flush()
}

// Items merges records (in sequence order) with their checkpoints: each
// checkpoint follows the record it covers. Checkpoints before the first
// record are left out; those after the last record are written at the end,
// where they prove that records were lost, so pass only the checkpoints up to
// the end of the range exported.
func Items(records iter.Seq2[Record, error], checkpoints []Checkpoint) iter.Seq2[Item, error] {
	cps := slices.SortedStableFunc(slices.Values(checkpoints), func(a, b Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
	return func(yield func(Item, error) bool) {
		i, first := 0, true
		for r, err := range records {
			if err != nil {
				yield(Item{}, err)
				return
			}
			if first {
				for i < len(cps) && cps[i].Seq < r.Seq {
					i++
				}
				first = false
			}
			if !yield(Item{Record: &r}, nil) {
				return
			}
			for ; i < len(cps) && cps[i].Seq <= r.Seq; i++ {
				if !yield(Item{Checkpoint: &cps[i]}, nil) {
					return
				}
			}
		}
		for ; i < len(cps); i++ {
			if !yield(Item{Checkpoint: &cps[i]}, nil) {
				return
			}
		}
	}
}

// WriteSegment writes an archive segment: an export of a closed range of
// records that ends with the checkpoint of its last record and starts with
// the anchor that chains it to the segment before (nil for the segment that
// starts at record 1). Unlike [WriteExport] it checks what it writes, the
// chain links and every signature against h.PublicKey, and fails on the
// first defect: only sound history is archived and then removed from the
// store. On error the output is incomplete and must be discarded.
func WriteSegment(w io.Writer, h Header, anchor *Checkpoint, items iter.Seq2[Item, error]) error {
	x, err := NewExporter(w, h, anchor)
	if err != nil {
		return err
	}
	next, prev := uint64(1), Digest{}
	if anchor != nil {
		if err := VerifyCheckpoint(h.PublicKey, *anchor); err != nil {
			return fmt.Errorf("segment anchor: %w", err)
		}
		next, prev = anchor.Seq+1, anchor.Hash
	}
	records, covered := 0, false
	for it, err := range items {
		if err != nil {
			return fmt.Errorf("segment: %w", err)
		}
		switch {
		case it.Record != nil && it.Checkpoint == nil:
			r := *it.Record
			if r.Seq != next {
				return fmt.Errorf("segment: record %d where record %d belongs", r.Seq, next)
			}
			if r.Prev != prev {
				return fmt.Errorf("segment: record %d: prev %v, want %v (hash of record %d)", r.Seq, r.Prev, prev, r.Seq-1)
			}
			next, prev = r.Seq+1, r.Hash()
			records++
			covered = false
		case it.Checkpoint != nil && it.Record == nil:
			cp := *it.Checkpoint
			if err := VerifyCheckpoint(h.PublicKey, cp); err != nil {
				return fmt.Errorf("segment: %w", err)
			}
			if records == 0 || cp.Seq != next-1 || cp.Hash != prev {
				return fmt.Errorf("segment: checkpoint %d (%v) does not cover the record just written (record %d, %v)", cp.Seq, cp.Hash, next-1, prev)
			}
			covered = true
		}
		if err := x.item(it); err != nil {
			return err
		}
	}
	switch {
	case records == 0:
		return errors.New("segment: no records")
	case !covered:
		return fmt.Errorf("segment: last record %d has no checkpoint; a segment must end with one", next-1)
	}
	return x.Flush()
}
