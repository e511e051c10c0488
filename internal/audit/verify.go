package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Kind classifies a [Problem].
type Kind string

// Kinds of problems. The first five are tampering; syntax is a line that is
// not what the writer writes; the last three concern what the file can
// prove rather than what it says. Only uncovered is a warning: the writer
// signs a checkpoint every N records or T seconds, so the newest records of
// an export are usually not signed yet.
const (
	KindModified      Kind = "modified"       // a record's content differs from what was chained
	KindDeleted       Kind = "deleted"        // records are missing
	KindInserted      Kind = "inserted"       // a record that does not belong to the chain
	KindReordered     Kind = "reordered"      // a record out of sequence order
	KindBadCheckpoint Kind = "bad-checkpoint" // a checkpoint or anchor whose signature does not verify
	KindSyntax        Kind = "syntax"         // a line that is not valid, or a record not in canonical form
	KindUnanchored    Kind = "unanchored"     // the start cannot be tied to earlier history
	KindUncovered     Kind = "uncovered"      // the end is not signed, so it could be truncated
	KindBadKey        Kind = "bad-key"        // the header's key is malformed or not the trusted key
)

// Problem is one finding of [Verify]. Seq is the record (or checkpoint) it
// concerns, 0 for none; Line is 1-based; File is the index of the input in
// [VerifySegments] and 0 in [Verify].
type Problem struct {
	Seq    uint64
	Line   int
	File   int
	Kind   Kind
	Detail string
}

// String returns "line L: record S: kind: detail".
func (p Problem) String() string {
	var b strings.Builder
	if p.File > 0 {
		fmt.Fprintf(&b, "file %d: ", p.File)
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Seq > 0 {
		fmt.Fprintf(&b, "record %d: ", p.Seq)
	}
	fmt.Fprintf(&b, "%s: %s", p.Kind, p.Detail)
	return b.String()
}

// Report is the outcome of verifying an export.
type Report struct {
	Records         int    // record lines
	Checkpoints     int    // checkpoint lines whose signature verifies
	FirstSeq        uint64 // lowest and highest record seq found
	LastSeq         uint64
	VerifiedThrough uint64 // highest seq whose chain hash matches a valid checkpoint
	KeyID           string // the key checkpoints were verified with
	SelfAsserted    bool   // that key came from the file's own header
	Anchored        bool   // the first record is tied to a valid anchor or is record 1

	// Problems make the export fail, sorted by Seq then Line, so the first
	// one names the first bad record. Warnings are limits of what the file
	// proves; a strict verifier counts them as problems.
	Problems []Problem
	Warnings []Problem
}

// OK reports whether no problem was found.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// First returns the problem about the lowest record seq: the first bad
// record. Problems about no record in particular (the header) come first.
func (r Report) First() (Problem, bool) {
	if len(r.Problems) == 0 {
		return Problem{}, false
	}
	return r.Problems[0], true
}

// String summarises r for a terminal, one problem or warning per line.
func (r Report) String() string {
	var b strings.Builder
	verdict := "OK"
	if !r.OK() {
		verdict = fmt.Sprintf("FAILED (%d problems)", len(r.Problems))
	}
	fmt.Fprintf(&b, "%s: %d records (%d..%d), %d checkpoints, verified through %d, key %s",
		verdict, r.Records, r.FirstSeq, r.LastSeq, r.Checkpoints, r.VerifiedThrough, cmp.Or(r.KeyID, "none"))
	if r.SelfAsserted {
		b.WriteString(" (self-asserted: taken from the file; pass the trusted key to check it)")
	}
	b.WriteByte('\n')
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %v\n", p)
	}
	for _, p := range r.Warnings {
		fmt.Fprintf(&b, "warning: %v\n", p)
	}
	return b.String()
}

// Verifier checks exports offline.
type Verifier struct {
	// Key is the trusted public key. When nil, the header's key is used and
	// the report says it was self-asserted: the file then proves only that
	// it is consistent, not who wrote it.
	Key ed25519.PublicKey
	// Strict turns warnings (an unsigned tail) into problems.
	Strict bool
}

// Verify checks an export with [Verifier] {Key: trusted}.
func Verify(r io.Reader, trusted ed25519.PublicKey) (Report, error) {
	return Verifier{Key: trusted}.Verify(r)
}

// VerifySegments checks archive segments, oldest first, with [Verifier]
// {Key: trusted}.
func VerifySegments(trusted ed25519.PublicKey, files ...io.Reader) (Report, error) {
	return Verifier{Key: trusted}.VerifySegments(files...)
}

// Verify checks an export: line syntax, sequence contiguity, every record's
// Prev against the hash of the record before it, every checkpoint's
// signature and its hash against the chain, the anchor, and that the last
// record is covered by a checkpoint. The error is for reading r only; what
// is wrong with the content is in the Report.
//
// A record must appear exactly as [Record.Encode] writes it, so what a
// reader of the file sees is what the chain covers. Classification: a gap
// in seq is "deleted"; a repeated seq is "inserted" (the copy that fits the
// chain worse); a seq out of order is "reordered"; a broken link names the
// record whose hash changed, "modified". When a checkpoint does not match
// although all links hold, the chain was recomputed after the change; the
// verifier then tries undoing one insertion or one swap and, if that
// reproduces the signed hash, names that record; otherwise it names the
// first record after the last matching checkpoint.
func (v Verifier) Verify(r io.Reader) (Report, error) {
	s, err := v.scan(r)
	if err != nil {
		return Report{}, err
	}
	return s.report(v.Strict), nil
}

// VerifySegments checks archive segments, oldest first, each like
// [Verifier.Verify], and that together they are the whole history: the
// first starts at record 1, and each other one starts with the anchor equal
// to the last checkpoint of the segment before it, its first record
// following that segment's last one. Every segment but the last must end
// with a checkpoint; the last input may be the export of the live store,
// whose tail may still be unsigned (a warning). A missing segment shows as
// "deleted" records; Problem.File says which input a problem is in.
func (v Verifier) VerifySegments(files ...io.Reader) (Report, error) {
	var total Report
	var prev *scanState
	for i, f := range files {
		s, err := v.scan(f)
		if err != nil {
			return Report{}, fmt.Errorf("segment %d: %w", i, err)
		}
		rep := s.report(v.Strict)
		if i > 0 {
			// The chain check below covers a later segment's start.
			rep.Problems = slices.DeleteFunc(rep.Problems, func(p Problem) bool { return p.Kind == KindUnanchored })
		}
		if i < len(files)-1 {
			// Only the last input may end unsigned.
			rep.Problems = append(rep.Problems, rep.Warnings...)
			rep.Warnings = nil
		}
		switch {
		case prev != nil:
			rep.Problems = append(rep.Problems, chainSegments(prev, s)...)
		case s.hasRecords() && s.seqs[0] > 1:
			first := s.recs[s.bySeq[s.seqs[0]]]
			rep.Problems = append(rep.Problems, Problem{Seq: 1, Line: first.line, Kind: KindDeleted,
				Detail: fmt.Sprintf("%s: the oldest segment starts at record %d, so a segment before it is missing", missing(1, first.seq-1), first.seq)})
		}
		for j := range rep.Problems {
			rep.Problems[j].File = i
		}
		for j := range rep.Warnings {
			rep.Warnings[j].File = i
		}
		if i == 0 {
			total = rep
		} else {
			total.Records += rep.Records
			total.Checkpoints += rep.Checkpoints
			if rep.Records > 0 {
				total.LastSeq = rep.LastSeq
			}
			total.VerifiedThrough = max(total.VerifiedThrough, rep.VerifiedThrough)
			total.SelfAsserted = total.SelfAsserted || rep.SelfAsserted
			total.Problems = append(total.Problems, rep.Problems...)
			total.Warnings = append(total.Warnings, rep.Warnings...)
		}
		if s.hasRecords() && (prev == nil || s.seqs[len(s.seqs)-1] > prev.seqs[len(prev.seqs)-1]) {
			prev = s // a segment out of order does not reset the chain
		}
	}
	sortProblems(total.Problems)
	sortProblems(total.Warnings)
	return total, nil
}

// chainSegments checks that segment b continues segment a: b's first
// record follows a's last, and b's anchor is a's checkpoint of that record.
// Problems inside either segment are reported by its own scan.
func chainSegments(a, b *scanState) []Problem {
	if !b.hasRecords() {
		return nil
	}
	aLast, bFirst := a.recs[a.bySeq[a.seqs[len(a.seqs)-1]]], b.recs[b.bySeq[b.seqs[0]]]
	switch {
	case bFirst.seq > aLast.seq+1:
		return []Problem{{Seq: aLast.seq + 1, Line: bFirst.line, Kind: KindDeleted,
			Detail: fmt.Sprintf("%s between the previous segment, which ends at record %d, and this one, which starts at record %d: a segment is missing",
				missing(aLast.seq+1, bFirst.seq-1), aLast.seq, bFirst.seq)}}
	case bFirst.seq <= aLast.seq:
		return []Problem{{Seq: bFirst.seq, Line: bFirst.line, Kind: KindReordered,
			Detail: fmt.Sprintf("this segment starts at record %d, but the previous one already goes up to record %d: segments overlap or are out of order", bFirst.seq, aLast.seq)}}
	case b.anchor == nil:
		return []Problem{{Seq: bFirst.seq, Line: bFirst.line, Kind: KindUnanchored,
			Detail: "this segment has no valid anchor, so nothing signed ties it to the previous segment"}}
	}
	cp, ok := a.checkpointAt(aLast.seq)
	switch {
	case !ok:
		// a's scan reports its unsigned tail.
		return nil
	case cp.Hash != b.anchor.cp.Hash:
		return []Problem{{Seq: bFirst.seq, Line: b.anchor.line, Kind: KindModified,
			Detail: fmt.Sprintf("the anchor's hash for record %d differs from the previous segment's checkpoint of it: the segments come from different histories", aLast.seq)}}
	}
	return nil
}

// checkpointAt returns a valid checkpoint of record seq, preferring one
// that matches the record.
func (s *scanState) checkpointAt(seq uint64) (Checkpoint, bool) {
	var found *Checkpoint
	for i := range s.cps {
		if c := &s.cps[i].cp; c.Seq == seq {
			if h, ok := s.hashAt(seq); ok && h == c.Hash {
				return *c, true
			}
			found = c
		}
	}
	if found == nil {
		return Checkpoint{}, false
	}
	return *found, true
}

// maxLine bounds one line of an export; longer lines are a syntax problem.
const maxLine = 16 << 20

// maxRetained bounds the memory kept for undoing an insertion or a swap
// (the events since the last matching checkpoint), and maxForensic the
// number of records such an undo may span: it costs their square in hashes.
// maxReports bounds how many reordered or inserted records are reported
// one by one (the lowest seqs); the rest are counted in one more problem.
const maxReports = 100

// forensicBudget bounds the hashes all undos of one file may cost, so
// that a hostile file cannot make verification slow.
const (
	maxRetained    = 64 << 20
	maxForensic    = 1024
	forensicBudget = 4 << 20
)

type recMeta struct {
	seq   uint64
	line  int
	prev  Digest
	hash  Digest
	ok    bool   // decoded, so prev and hash are known
	event []byte // canonical event JSON, kept while it may be needed for forensics
}

type cpMeta struct {
	cp   Checkpoint
	line int
}

// base is what the first record of the export chains to.
type base struct {
	seq   uint64
	hash  Digest
	known bool // from a valid anchor or the zero Prev of record 1
}

type scanState struct {
	key      ed25519.PublicKey // nil: nothing to verify signatures with
	rep      Report
	problems []Problem
	warnings []Problem

	recs       []recMeta
	cps        []cpMeta // valid signatures only
	anchor     *cpMeta  // valid anchor
	anchorSeen bool
	retainFrom int
	retained   int
	budget     uint64 // hashes left for undo
	sawRecord  bool
	headerSeen bool

	// Filled by analyze.
	base   base
	bySeq  map[uint64]int // seq → index in recs of the record taken as that seq
	seqs   []uint64       // keys of bySeq, ascending
	goodCP map[uint64]bool
}

func (s *scanState) add(kind Kind, seq uint64, line int, format string, args ...any) {
	s.problems = append(s.problems, Problem{Seq: seq, Line: line, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

func (s *scanState) warn(kind Kind, seq uint64, line int, format string, args ...any) {
	s.warnings = append(s.warnings, Problem{Seq: seq, Line: line, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

func (s *scanState) hasRecords() bool { return len(s.seqs) > 0 }

func (v Verifier) scan(r io.Reader) (*scanState, error) {
	if v.Key != nil && len(v.Key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("verify: trusted key is %d bytes, want %d", len(v.Key), ed25519.PublicKeySize)
	}
	s := &scanState{key: v.Key, budget: forensicBudget}
	s.rep.SelfAsserted = v.Key == nil
	if v.Key != nil {
		s.rep.KeyID = KeyID(v.Key)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("verify: read line %d: %w", n, err)
		}
		switch {
		case tooLong:
			s.add(KindSyntax, 0, n, "line longer than %d bytes", maxLine)
			s.headerSeen = true
		case len(bytes.TrimSpace(line)) == 0:
			// A blank line carries nothing.
		case !s.headerSeen:
			s.headerSeen = true
			s.header(line, n, v.Key)
		default:
			s.line(line, n)
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if !s.headerSeen {
		s.add(KindSyntax, 0, 1, "empty file: no header")
	}
	s.analyze()
	return s, nil
}

// readLine returns the next line without its "\n" or "\r\n". A line longer
// than maxLine is skipped and reported as tooLong.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxLine+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		return line, tooLong, err
	}
}

func (s *scanState) header(line []byte, n int, trusted ed25519.PublicKey) {
	var h Header
	if err := strictUnmarshal(line, &h); err != nil {
		s.add(KindSyntax, 0, n, "not an export header: %v", err)
		return
	}
	if h.Format != Format {
		s.add(KindSyntax, 0, n, "format %q, want %q", h.Format, Format)
		return
	}
	if len(h.PublicKey) != ed25519.PublicKeySize {
		s.add(KindBadKey, 0, n, "header public key is %d bytes, want %d", len(h.PublicKey), ed25519.PublicKeySize)
		return
	}
	if id := KeyID(h.PublicKey); h.KeyID != id {
		s.add(KindBadKey, 0, n, "header key id %q does not name its public key (%s)", h.KeyID, id)
	}
	if trusted != nil {
		if !bytes.Equal(h.PublicKey, trusted) {
			s.add(KindBadKey, 0, n, "header public key %s is not the trusted key %s", KeyID(h.PublicKey), KeyID(trusted))
		}
		return
	}
	s.key = h.PublicKey
	s.rep.KeyID = KeyID(h.PublicKey)
}

// line handles every line after the header.
func (s *scanState) line(line []byte, n int) {
	// Fast path for the common line, a record as the exporter writes it.
	if raw, ok := bytes.CutPrefix(line, []byte(`{"record":`)); ok && bytes.HasSuffix(raw, []byte("}")) {
		if rec, err := DecodeRecord(raw[:len(raw)-1]); err == nil {
			s.record(line, rec, n)
			return
		}
	}
	var l struct {
		Record     json.RawMessage `json:"record"`
		Checkpoint json.RawMessage `json:"checkpoint"`
		Anchor     json.RawMessage `json:"anchor"`
	}
	if err := strictUnmarshal(line, &l); err != nil {
		s.add(KindSyntax, 0, n, "not an export line: %v", err)
		return
	}
	present := func(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }
	switch {
	case present(l.Record) && !present(l.Checkpoint) && !present(l.Anchor):
		rec, err := DecodeRecord(l.Record)
		if err != nil {
			s.badRecord(l.Record, n, err)
			return
		}
		s.record(line, rec, n)
	case present(l.Checkpoint) && !present(l.Record) && !present(l.Anchor):
		if cp, ok := s.checkpoint(l.Checkpoint, n, "checkpoint"); ok {
			s.cps = append(s.cps, cpMeta{cp, n})
			s.rep.Checkpoints++
			if last := len(s.recs) - 1; last >= 0 && s.recs[last].ok && s.recs[last].seq == cp.Seq && s.recs[last].hash == cp.Hash {
				s.release()
			}
		}
	case present(l.Anchor) && !present(l.Record) && !present(l.Checkpoint):
		switch {
		case s.sawRecord:
			s.add(KindSyntax, 0, n, "an anchor must come before the first record")
		case s.anchorSeen:
			s.add(KindSyntax, 0, n, "a second anchor")
		default:
			s.anchorSeen = true
			if cp, ok := s.checkpoint(l.Anchor, n, "anchor"); ok {
				s.anchor = &cpMeta{cp, n}
			}
		}
	default:
		s.add(KindSyntax, 0, n, "a line must hold exactly one of record, checkpoint and anchor")
	}
}

// badRecord notes a record line that does not decode. It keeps the seq if
// that can be read, so the record is not also reported as deleted.
func (s *scanState) badRecord(raw []byte, n int, err error) {
	s.sawRecord = true
	s.rep.Records++
	var w struct {
		Seq uint64 `json:"seq"`
	}
	if json.Unmarshal(raw, &w) == nil && w.Seq > 0 {
		s.recs = append(s.recs, recMeta{seq: w.Seq, line: n})
	}
	s.add(KindSyntax, w.Seq, n, "record: %v", err)
}

func (s *scanState) record(line []byte, rec Record, n int) {
	s.sawRecord = true
	s.rep.Records++
	enc := rec.Encode()
	if !bytes.Equal(line, slices.Concat([]byte(`{"record":`), enc, []byte(`}`))) {
		s.add(KindSyntax, rec.Seq, n, "the record line is not in canonical form, so it was edited; the chain is checked against its decoded content")
	}
	prefix := len(encodeRecord(rec.Seq, rec.Prev, nil)) - 1
	s.recs = append(s.recs, recMeta{
		seq: rec.Seq, line: n, prev: rec.Prev, hash: sha256.Sum256(enc), ok: true,
		event: enc[prefix : len(enc)-1],
	})
	s.retained += len(s.recs[len(s.recs)-1].event)
	for s.retained > maxRetained && s.retainFrom < len(s.recs) {
		s.drop(s.retainFrom)
		s.retainFrom++
	}
}

// release forgets the events read so far: a checkpoint matched them.
func (s *scanState) release() {
	for ; s.retainFrom < len(s.recs); s.retainFrom++ {
		s.drop(s.retainFrom)
	}
}

func (s *scanState) drop(i int) {
	if s.recs[i].event != nil {
		s.retained -= len(s.recs[i].event)
		s.recs[i].event = nil
	}
}

func (s *scanState) checkpoint(raw []byte, n int, what string) (Checkpoint, bool) {
	var cp Checkpoint
	if err := strictUnmarshal(raw, &cp); err != nil {
		s.add(KindSyntax, 0, n, "%s: %v", what, err)
		return Checkpoint{}, false
	}
	if s.key == nil {
		s.add(KindBadCheckpoint, cp.Seq, n, "%s of record %d cannot be verified: no valid public key", what, cp.Seq)
		return Checkpoint{}, false
	}
	if err := VerifyCheckpoint(s.key, cp); err != nil {
		s.add(KindBadCheckpoint, cp.Seq, n, "forged or altered %s: %v", what, err)
		return Checkpoint{}, false
	}
	return cp, true
}

// analyze runs once every line is read.
func (s *scanState) analyze() {
	s.findBase()
	s.order()
	s.links()
	if len(s.seqs) > 0 {
		s.rep.FirstSeq, s.rep.LastSeq = s.seqs[0], s.seqs[len(s.seqs)-1]
	}
}

func (s *scanState) findBase() {
	switch {
	case s.anchor != nil:
		s.base = base{seq: s.anchor.cp.Seq, hash: s.anchor.cp.Hash, known: true}
	case len(s.recs) == 0:
	default:
		first := slices.MinFunc(s.recs, func(a, b recMeta) int { return cmp.Compare(a.seq, b.seq) })
		if first.seq == 1 {
			s.base = base{known: true}
		} else {
			s.base = base{seq: first.seq - 1, hash: first.prev}
		}
	}
	s.rep.Anchored = s.base.known
}

// order decides which record stands for each seq and reports the rest as
// reordered or inserted.
func (s *scanState) order() {
	inLIS := longestIncreasing(s.recs)
	s.bySeq = make(map[uint64]int, len(s.recs))
	for i, in := range inLIS {
		if in {
			s.bySeq[s.recs[i].seq] = i
		}
	}
	// The longest increasing run is in place; a record off it is either a
	// second record for a seq (one of the two was inserted) or out of place.
	var reordered, inserted []int
	for i, in := range inLIS {
		if in {
			continue
		}
		seq := s.recs[i].seq
		j, dup := s.bySeq[seq]
		if !dup {
			s.bySeq[seq] = i
			reordered = append(reordered, i)
			continue
		}
		// Keep the record that fits better; of equals (copies), the first.
		if fi, fj := s.fit(i), s.fit(j); fi > fj || (fi == fj && s.recs[i].line < s.recs[j].line) {
			s.bySeq[seq] = i
			i = j
		}
		inserted = append(inserted, i)
	}
	reordered = slices.DeleteFunc(reordered, func(i int) bool {
		return s.bySeq[s.recs[i].seq] != i // it lost to a duplicate and is reported as inserted
	})
	bySeq := func(a, b int) int { return cmp.Compare(s.recs[a].seq, s.recs[b].seq) }
	slices.SortFunc(reordered, bySeq)
	slices.SortFunc(inserted, bySeq)
	if n := len(reordered); n > maxReports {
		r := s.recs[reordered[maxReports]]
		s.add(KindReordered, r.seq, r.line, "and %d more records out of sequence order", n-maxReports)
		reordered = reordered[:maxReports]
	}
	if n := len(inserted); n > maxReports {
		r := s.recs[inserted[maxReports]]
		s.add(KindInserted, r.seq, r.line, "and %d more records with a seq that is already taken", n-maxReports)
		inserted = inserted[:maxReports]
	}
	for _, i := range reordered {
		r := s.recs[i]
		// Name a record it overtook if there is one nearby, else the one
		// it follows.
		detail := ""
		for j := i + 1; j < len(s.recs) && j < i+1000; j++ {
			if s.recs[j].seq < r.seq {
				detail = fmt.Sprintf("record %d (line %d) comes before record %d (line %d)", r.seq, r.line, s.recs[j].seq, s.recs[j].line)
				break
			}
		}
		if detail == "" && i > 0 {
			detail = fmt.Sprintf("record %d (line %d) comes after record %d (line %d)", r.seq, r.line, s.recs[i-1].seq, s.recs[i-1].line)
		}
		s.add(KindReordered, r.seq, r.line, "out of sequence order: %s", detail)
	}
	for _, i := range inserted {
		r := s.recs[i]
		k := s.recs[s.bySeq[r.seq]]
		s.add(KindInserted, r.seq, r.line, "a second record %d; the one at line %d fits the chain and this one does not belong to it", r.seq, k.line)
	}
	// Records at or before the anchor do not belong to this export.
	if s.base.known {
		for seq, i := range s.bySeq {
			if seq <= s.base.seq {
				s.add(KindInserted, seq, s.recs[i].line, "record %d is at or before the anchor (record %d)", seq, s.base.seq)
				delete(s.bySeq, seq)
			}
		}
	}
	s.seqs = slices.Sorted(maps.Keys(s.bySeq))
}

// fit scores how well record i fits the chain at its seq.
func (s *scanState) fit(i int) int {
	r := s.recs[i]
	if !r.ok {
		return -1
	}
	score := 0
	if h, ok := s.hashAt(r.seq - 1); ok && h == r.prev {
		score++
	}
	if j, ok := s.bySeq[r.seq+1]; ok && s.recs[j].ok && s.recs[j].prev == r.hash {
		score++
	}
	for _, c := range s.cps {
		if c.cp.Seq == r.seq && c.cp.Hash == r.hash {
			score += 2
		}
	}
	return score
}

// hashAt returns the chain hash at seq, from the base or the record there.
func (s *scanState) hashAt(seq uint64) (Digest, bool) {
	if s.base.known && seq == s.base.seq {
		return s.base.hash, true
	}
	if i, ok := s.bySeq[seq]; ok && s.recs[i].ok {
		return s.recs[i].hash, true
	}
	return Digest{}, false
}

// links checks contiguity, every prev, and the checkpoints.
func (s *scanState) links() {
	if len(s.seqs) == 0 {
		for _, c := range s.cps {
			if c.cp.Seq > s.base.seq {
				s.add(KindDeleted, s.base.seq+1, c.line, "%s: the checkpoint at line %d covers record %d", missing(s.base.seq+1, c.cp.Seq), c.line, c.cp.Seq)
			}
		}
		return
	}
	first := s.recs[s.bySeq[s.seqs[0]]]
	if !s.base.known && s.anchor == nil && !s.anchorSeen {
		s.add(KindUnanchored, first.seq, first.line,
			"the export starts at record %d without an anchor: records before it could have been removed undetectably, and its prev is unchecked", first.seq)
	}

	// Contiguity and links. broken[n]: record n's prev is not the hash of
	// record n-1.
	broken := map[uint64]bool{}
	expect := s.base.seq + 1
	prevHash, prevOK := s.base.hash, s.base.known
	for _, seq := range s.seqs {
		r := s.recs[s.bySeq[seq]]
		if seq > expect {
			s.add(KindDeleted, expect, r.line, "%s before record %d", missing(expect, seq-1), seq)
			prevOK = false
		}
		if prevOK && r.ok && r.prev != prevHash {
			broken[seq] = true
		}
		prevHash, prevOK, expect = r.hash, r.ok, seq+1
	}

	s.goodCP = map[uint64]bool{}
	for _, c := range s.cps {
		if h, ok := s.hashAt(c.cp.Seq); ok && h == c.cp.Hash {
			s.goodCP[c.cp.Seq] = true
		}
	}

	// A modified record breaks the link after it; one whose prev was
	// edited breaks the links on both sides.
	culprit := map[uint64]bool{}
	for _, seq := range s.seqs {
		if !broken[seq] {
			continue
		}
		r := s.recs[s.bySeq[seq]]
		switch {
		case broken[seq+1]:
			s.add(KindModified, seq, r.line, "record %d does not fit between its neighbours: its prev is not the hash of record %d, and its hash is not the prev of record %d", seq, seq-1, seq+1)
			culprit[seq] = true
			broken[seq+1] = false
		case s.base.known && seq-1 == s.base.seq:
			s.add(KindModified, seq, r.line, "record %d's prev is not the hash of record %d that the anchor signs", seq, seq-1)
			culprit[seq] = true
		case s.goodCP[seq-1]:
			s.add(KindModified, seq, r.line, "record %d's prev is not the hash of record %d, which a checkpoint confirms", seq, seq-1)
			culprit[seq] = true
		default:
			p := s.recs[s.bySeq[seq-1]]
			s.add(KindModified, seq-1, p.line, "record %d was modified: its hash no longer matches the prev of record %d (line %d)", seq-1, seq, r.line)
			culprit[seq-1] = true
		}
	}

	// Checkpoints, in seq order.
	cps := slices.SortedFunc(slices.Values(s.cps), func(a, b cpMeta) int { return cmp.Compare(a.cp.Seq, b.cp.Seq) })
	last := s.seqs[len(s.seqs)-1]
	good := s.base
	good.known = true // the forensic base: unanchored, it is the first record's prev
	recomputed := false
	var lastCP uint64
	for _, c := range cps {
		seq := c.cp.Seq
		if seq <= s.base.seq {
			continue
		}
		lastCP = max(lastCP, seq)
		i, ok := s.bySeq[seq]
		switch {
		case !ok && seq > last:
			s.add(KindDeleted, last+1, c.line, "%s: the checkpoint at line %d covers record %d", missing(last+1, seq), c.line, seq)
			continue
		case !ok || !s.recs[i].ok:
			continue // a gap or an unreadable record, reported already
		case s.recs[i].hash == c.cp.Hash:
			good = base{seq: seq, hash: c.cp.Hash, known: true}
			s.rep.VerifiedThrough = max(s.rep.VerifiedThrough, seq)
			recomputed = false
			continue
		case culprit[seq] || recomputed:
			continue // explained already
		}
		if p, ok := s.undo(good, c); ok {
			s.problems = append(s.problems, p)
			recomputed = true
			continue
		}
		if seq == last || broken[seq+1] {
			s.add(KindModified, seq, s.recs[i].line, "record %d does not match its signed checkpoint (line %d)", seq, c.line)
			culprit[seq] = true
			continue
		}
		from := good.seq + 1
		s.add(KindModified, from, s.recs[s.bySeq[from]].line,
			"the chain hash at record %d does not match its signed checkpoint (line %d) although every link holds: a record in %d..%d was changed, added or removed and the chain recomputed after it",
			seq, c.line, from, seq)
		recomputed = true
	}
	if lastCP < last {
		from := max(lastCP, s.base.seq) + 1
		from = max(from, s.seqs[0])
		s.warn(KindUncovered, from, s.recs[s.bySeq[last]].line,
			"tail not covered by a checkpoint: %s could be truncated undetectably", span(from, last))
	}
}

// undo looks for a single inserted record, or a single swap of neighbours,
// after from that explains why checkpoint c does not match although the
// links hold: it rehashes the chain without that record (renumbering the
// rest) or with the two swapped back, and compares with the signed hash.
func (s *scanState) undo(from base, c cpMeta) (Problem, bool) {
	w := c.cp.Seq - from.seq
	if w == 0 || w > maxForensic || w*w > s.budget {
		return Problem{}, false
	}
	s.budget -= w * w
	// events[k] is the event of record from.seq+1+k, through c.cp.Seq+1.
	var events [][]byte
	for seq := from.seq + 1; seq <= c.cp.Seq+1; seq++ {
		i, ok := s.bySeq[seq]
		if !ok || s.recs[i].event == nil {
			if seq <= c.cp.Seq {
				return Problem{}, false
			}
			break
		}
		events = append(events, s.recs[i].event)
	}
	// prefix[k] is the chain hash at from.seq+k as the file has it.
	prefix := make([]Digest, w+1)
	prefix[0] = from.hash
	for k := uint64(1); k <= w; k++ {
		prefix[k] = s.recs[s.bySeq[from.seq+k]].hash
	}
	rehash := func(h Digest, seq uint64, order func(k uint64) []byte) Digest {
		for ; seq <= c.cp.Seq; seq++ {
			h = sha256.Sum256(encodeRecord(seq, h, order(seq-from.seq-1)))
		}
		return h
	}
	// Insertion: drop record from.seq+1+k.
	if uint64(len(events)) > w {
		for k := uint64(0); k < w; k++ {
			h := rehash(prefix[k], from.seq+1+k, func(j uint64) []byte { return events[j+1] })
			if h == c.cp.Hash {
				seq := from.seq + 1 + k
				return Problem{Seq: seq, Line: s.recs[s.bySeq[seq]].line, Kind: KindInserted,
					Detail: fmt.Sprintf("record %d was inserted and the records after it renumbered and rehashed: without it the chain matches the signed checkpoint of record %d (line %d)", seq, c.cp.Seq, c.line)}, true
			}
		}
	}
	// Swap: records from.seq+1+k and the one after.
	for k := uint64(0); k+1 < w; k++ {
		h := rehash(prefix[k], from.seq+1+k, func(j uint64) []byte {
			switch j {
			case k:
				return events[k+1]
			case k + 1:
				return events[k]
			}
			return events[j]
		})
		if h == c.cp.Hash {
			seq := from.seq + 1 + k
			return Problem{Seq: seq, Line: s.recs[s.bySeq[seq]].line, Kind: KindReordered,
				Detail: fmt.Sprintf("records %d and %d were swapped and the chain rehashed: swapped back, it matches the signed checkpoint of record %d (line %d)", seq, seq+1, c.cp.Seq, c.line)}, true
		}
	}
	return Problem{}, false
}

func (s *scanState) report(strict bool) Report {
	rep := s.rep
	rep.Problems = slices.Clone(s.problems)
	rep.Warnings = slices.Clone(s.warnings)
	if strict {
		rep.Problems = append(rep.Problems, rep.Warnings...)
		rep.Warnings = nil
	}
	sortProblems(rep.Problems)
	sortProblems(rep.Warnings)
	return rep
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
}

// longestIncreasing marks a longest run of records, in file order, whose
// seqs strictly increase (patience sorting, O(n log n)). Of equally long
// runs it keeps the one with the smallest seqs, so of two swapped
// neighbours the one that comes first in the file is left out.
func longestIncreasing(recs []recMeta) []bool {
	tails := []int{} // tails[l]: index of the smallest last record of a run of length l+1
	pred := make([]int, len(recs))
	for i, r := range recs {
		l := sort.Search(len(tails), func(k int) bool { return recs[tails[k]].seq >= r.seq })
		pred[i] = -1
		if l > 0 {
			pred[i] = tails[l-1]
		}
		if l == len(tails) {
			tails = append(tails, i)
		} else {
			tails[l] = i
		}
	}
	in := make([]bool, len(recs))
	if len(tails) > 0 {
		for i := tails[len(tails)-1]; i >= 0; i = pred[i] {
			in[i] = true
		}
	}
	return in
}

// missing writes "record 5 is missing" or "records 5..9 are missing".
func missing(from, to uint64) string {
	if from == to {
		return span(from, to) + " is missing"
	}
	return span(from, to) + " are missing"
}

// span writes "record 5" or "records 5..9".
func span(from, to uint64) string {
	if from == to {
		return "record " + strconv.FormatUint(from, 10)
	}
	return fmt.Sprintf("records %d..%d", from, to)
}
