package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Checkpoint errors, for errors.Is.
var (
	ErrBadSignature = errors.New("signature does not verify")
	ErrWrongKey     = errors.New("signed by another key")
)

// checkpointDomain separates checkpoint signatures from anything else the
// key could ever sign.
const checkpointDomain = "citadel-audit-checkpoint-v1\n"

// Checkpoint is the server's signed statement that record Seq of the chain
// has hash Hash. Everything up to Seq is then fixed: changing, removing,
// adding or reordering any earlier record changes the chain hash at Seq.
type Checkpoint struct {
	Seq       uint64    `json:"seq"`
	Hash      Digest    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"keyId"`
	Signature []byte    `json:"signature"`
}

// SignedMessage returns the bytes the signature covers:
// "citadel-audit-checkpoint-v1\n<seq>\n<hash hex>\n<time RFC 3339 UTC>\n".
func (cp Checkpoint) SignedMessage() []byte {
	b := []byte(checkpointDomain)
	b = strconv.AppendUint(b, cp.Seq, 10)
	b = append(b, '\n')
	b = hex.AppendEncode(b, cp.Hash[:])
	b = append(b, '\n')
	b = cp.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '\n')
}

// Head returns the chain head the checkpoint vouches for.
func (cp Checkpoint) Head() Head { return Head{Seq: cp.Seq, Hash: cp.Hash} }

// KeyID names a public key: the first 16 hex digits of SHA-256 of the raw
// 32-byte key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Signer signs checkpoints with the server's audit key.
type Signer struct {
	priv  ed25519.PrivateKey
	keyID string
}

// NewSigner returns a Signer for priv, a key from [LoadOrCreateKey].
func NewSigner(priv ed25519.PrivateKey) (*Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit signer: private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	return &Signer{priv: priv, keyID: KeyID(priv.Public().(ed25519.PublicKey))}, nil
}

// PublicKey returns the key that verifies s's checkpoints; export it to
// whoever verifies exports offline.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// KeyID returns [KeyID] of s's public key.
func (s *Signer) KeyID() string { return s.keyID }

// Sign returns the checkpoint of h at time t (kept to the nanosecond, in UTC).
func (s *Signer) Sign(h Head, t time.Time) Checkpoint {
	cp := Checkpoint{Seq: h.Seq, Hash: h.Hash, Time: t.UTC(), KeyID: s.keyID}
	cp.Signature = ed25519.Sign(s.priv, cp.SignedMessage())
	return cp
}

// VerifyCheckpoint checks that cp names pub's key id and that its signature
// over [Checkpoint.SignedMessage] verifies with pub.
func VerifyCheckpoint(pub ed25519.PublicKey, cp Checkpoint) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("checkpoint %d: public key is %d bytes, want %d", cp.Seq, len(pub), ed25519.PublicKeySize)
	}
	if id := KeyID(pub); cp.KeyID != id {
		return fmt.Errorf("checkpoint %d: key id %q, want %q: %w", cp.Seq, cp.KeyID, id, ErrWrongKey)
	}
	if !ed25519.Verify(pub, cp.SignedMessage(), cp.Signature) {
		return fmt.Errorf("checkpoint %d: %w", cp.Seq, ErrBadSignature)
	}
	return nil
}

// CheckpointDue reports whether the writer should sign a checkpoint of head
// now: there are records after the last checkpoint and either everyN of
// them or everyT has passed since it. A zero everyN or everyT disables that
// trigger; with no checkpoint yet, pass zero values.
func CheckpointDue(lastCheckpointSeq uint64, lastCheckpointTime time.Time, head Head, now time.Time, everyN uint64, everyT time.Duration) bool {
	if head.Seq <= lastCheckpointSeq {
		return false
	}
	if everyN > 0 && head.Seq-lastCheckpointSeq >= everyN {
		return true
	}
	return everyT > 0 && (lastCheckpointTime.IsZero() || now.Sub(lastCheckpointTime) >= everyT)
}

// Covering returns the checkpoint with the greatest Seq not above seq. An
// export of records from seq s on starts at Covering(cps, s-1).Seq+1, with
// that checkpoint as its anchor; an archive segment ends at the Covering
// checkpoint of its last old record.
func Covering(cps []Checkpoint, seq uint64) (Checkpoint, bool) {
	var best Checkpoint
	found := false
	for _, cp := range cps {
		if cp.Seq <= seq && (!found || cp.Seq > best.Seq) {
			best, found = cp, true
		}
	}
	return best, found
}
