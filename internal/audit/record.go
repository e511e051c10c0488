package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Digest is a SHA-256 hash: of a record ([Record.Hash]) or the chain head.
// It is written as 64 lower-case hex digits.
type Digest [32]byte

// String returns d in hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is the all-zero digest, the Prev of record 1.
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText writes d in hex.
func (d Digest) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, d[:]), nil }

// UnmarshalText reads exactly 64 hex digits.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 2*len(d) {
		return fmt.Errorf("digest: %d characters, want %d hex digits", len(b), 2*len(d))
	}
	if _, err := hex.Decode(d[:], b); err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	return nil
}

// Record is one link of the chain: the event with its sequence number
// (1, 2, 3, … with no gaps) and the hash of the record before it.
type Record struct {
	Seq   uint64
	Prev  Digest // Hash of record Seq-1; zero for record 1
	Event Event
}

// Next returns record seq with the given Prev, its event in canonical form.
func Next(prev Digest, seq uint64, e Event) Record {
	return Record{Seq: seq, Prev: prev, Event: e.canonical()}
}

// Encode returns the canonical encoding that [Record.Hash] covers and that
// export files and the store hold: compact JSON
// {"seq":N,"prev":"<hex>","event":{…}} with the event's fields in a fixed
// order, map keys sorted, times in UTC RFC 3339 and no floating point.
// Decoding the encoding and encoding again yields the same bytes.
func (r Record) Encode() []byte {
	return encodeRecord(r.Seq, r.Prev, encodeEvent(r.Event))
}

// Hash returns SHA-256 of [Record.Encode].
func (r Record) Hash() Digest { return sha256.Sum256(r.Encode()) }

// MarshalJSON returns [Record.Encode], so a Record embedded in other JSON is
// canonical too.
func (r Record) MarshalJSON() ([]byte, error) { return r.Encode(), nil }

// UnmarshalJSON decodes like [DecodeRecord].
func (r *Record) UnmarshalJSON(b []byte) error {
	rec, err := DecodeRecord(b)
	if err != nil {
		return err
	}
	*r = rec
	return nil
}

// recordWire is the JSON shape of a Record, for decoding. Encoding is done
// by encodeRecord so that its byte layout is fixed.
type recordWire struct {
	Seq   *uint64         `json:"seq"`
	Prev  *Digest         `json:"prev"`
	Event json.RawMessage `json:"event"`
}

// DecodeRecord parses a record's JSON strictly: seq, prev and event must be
// present, unknown fields and trailing data are errors. It does not require
// the canonical form; [Verify] does.
func DecodeRecord(b []byte) (Record, error) {
	var w recordWire
	if err := strictUnmarshal(b, &w); err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	switch {
	case w.Seq == nil:
		return Record{}, errors.New("decode record: no seq")
	case *w.Seq == 0:
		return Record{}, errors.New("decode record: seq 0; records count from 1")
	case w.Prev == nil:
		return Record{}, errors.New("decode record: no prev")
	case w.Event == nil:
		return Record{}, errors.New("decode record: no event")
	}
	e, err := decodeEvent(w.Event)
	if err != nil {
		return Record{}, fmt.Errorf("decode record: event: %w", err)
	}
	return Record{Seq: *w.Seq, Prev: *w.Prev, Event: e}, nil
}

// strictUnmarshal decodes exactly one JSON value into v, rejecting unknown
// fields and trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// encodeRecord lays out a record around its encoded event. Verify uses it
// to rehash an event under another seq and prev.
func encodeRecord(seq uint64, prev Digest, event []byte) []byte {
	b := make([]byte, 0, len(event)+100)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"prev":"`...)
	b = hex.AppendEncode(b, prev[:])
	b = append(b, `","event":`...)
	b = append(b, event...)
	return append(b, '}')
}

// Head is the end of the chain: the last record's seq and hash, zero for an
// empty chain. The writer stores it beside the records and compare-and-swaps
// it in the transaction that adds a record, so two writers cannot both
// append record n.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash Digest `json:"hash"`
}

// Append returns the record that follows h and the new head.
func (h Head) Append(e Event) (Record, Head) {
	r := Next(h.Hash, h.Seq+1, e)
	return r, Head{Seq: r.Seq, Hash: r.Hash()}
}

// String returns "seq:hash".
func (h Head) String() string { return strconv.FormatUint(h.Seq, 10) + ":" + h.Hash.String() }
