// Package audit is Citadel's tamper-evident activity log: the record format
// (an armmonitor EventData), the hash chain that links the records, the
// Ed25519-signed checkpoints over the chain, export and archive files, their
// offline verification, and the $filter/$select support of the
// Microsoft.Insights activity-log query.
//
// The format, the chain, checkpoints, exports and their verification are
// pure logic over values, byte slices and io.Reader/io.Writer, so that an
// export can be verified offline with nothing but this package and a public
// key; [LoadOrCreateKey] is the one function that touches the file system.
// The writer keeps the chain [Head] in the store and compare-and-swaps it in
// the transaction that adds the record returned by [Head.Append]. Any
// package may import audit.
//
// The chain: record n carries Prev = Hash(record n-1) (zero for record 1), and
// Hash is SHA-256 over the record's canonical encoding ([Record.Encode]). A
// [Checkpoint] signs (seq, hash) of the head every N records or T seconds
// ([CheckpointDue]). An export is JSON Lines: a [Header], an optional anchor
// (the signed checkpoint just before the first record), then records and
// checkpoints in sequence order. [Verify] recomputes the chain and names the
// first modified, deleted, inserted or reordered record and any forged
// checkpoint. Archive segments ([WriteSegment], [VerifySegments]) use the same
// format and chain to one another through their anchors.
package audit
