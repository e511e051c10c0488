package audit_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/audit"
)

func TestCheckpointSignVerify(t *testing.T) {
	s := testSigner(t, 1)
	other := testSigner(t, 2)
	head := audit.Head{Seq: 50, Hash: audit.Digest{7}}
	at := time.Date(2026, 11, 23, 16, 0, 0, 123, time.FixedZone("", 3600))
	cp := s.Sign(head, at)

	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(cp.KeyID) || cp.KeyID != audit.KeyID(s.PublicKey()) {
		t.Errorf("Sign().KeyID = %q, want 16 hex digits naming the public key", cp.KeyID)
	}
	wantMsg := "citadel-audit-checkpoint-v1\n50\n07" + "00000000000000000000000000000000000000000000000000000000000000" + "\n2026-11-23T15:00:00.000000123Z\n"
	if got := string(cp.SignedMessage()); got != wantMsg {
		t.Errorf("SignedMessage() = %q, want %q", got, wantMsg)
	}
	if cp.Head() != head {
		t.Errorf("Head() = %v, want %v", cp.Head(), head)
	}

	tests := []struct {
		name   string
		change func(*audit.Checkpoint)
		pub    func() []byte
		want   error
	}{
		{"genuine", func(*audit.Checkpoint) {}, nil, nil},
		{"same instant in another zone", func(cp *audit.Checkpoint) { cp.Time = cp.Time.In(time.FixedZone("", -3600)) }, nil, nil},
		{"seq changed", func(cp *audit.Checkpoint) { cp.Seq++ }, nil, audit.ErrBadSignature},
		{"hash changed", func(cp *audit.Checkpoint) { cp.Hash[31] ^= 1 }, nil, audit.ErrBadSignature},
		{"time changed", func(cp *audit.Checkpoint) { cp.Time = cp.Time.Add(time.Nanosecond) }, nil, audit.ErrBadSignature},
		{"signature changed", func(cp *audit.Checkpoint) { cp.Signature[3] ^= 1 }, nil, audit.ErrBadSignature},
		{"signature truncated", func(cp *audit.Checkpoint) { cp.Signature = cp.Signature[:10] }, nil, audit.ErrBadSignature},
		{"other key", func(*audit.Checkpoint) {}, func() []byte { return other.PublicKey() }, audit.ErrWrongKey},
		{"other key, key id forged", func(cp *audit.Checkpoint) { cp.KeyID = other.KeyID() }, func() []byte { return other.PublicKey() }, audit.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cp
			c.Signature = append([]byte(nil), cp.Signature...)
			tt.change(&c)
			pub := s.PublicKey()
			if tt.pub != nil {
				pub = tt.pub()
			}
			if err := audit.VerifyCheckpoint(pub, c); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("VerifyCheckpoint(%+v) = %v, want %v", c, err, tt.want)
			}
		})
	}
	if err := audit.VerifyCheckpoint([]byte{1}, cp); err == nil {
		t.Errorf("VerifyCheckpoint(1-byte key) = nil, want an error")
	}
}

func TestCheckpointJSON(t *testing.T) {
	s := testSigner(t, 1)
	cp := s.Sign(audit.Head{Seq: 9, Hash: audit.Digest{1}}, t0)
	b, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	var back audit.Checkpoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cp, back); diff != "" {
		t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
	}
	if err := audit.VerifyCheckpoint(s.PublicKey(), back); err != nil {
		t.Errorf("VerifyCheckpoint(decoded) = %v, want nil", err)
	}
}

func TestNewSigner(t *testing.T) {
	if _, err := audit.NewSigner(make([]byte, 10)); err == nil {
		t.Errorf("NewSigner(10 bytes) error = nil, want an error")
	}
}

func TestCheckpointDue(t *testing.T) {
	now := t0
	tests := []struct {
		name    string
		lastSeq uint64
		lastAt  time.Time
		head    uint64
		everyN  uint64
		everyT  time.Duration
		want    bool
	}{
		{"nothing new", 100, now.Add(-time.Hour), 100, 50, time.Minute, false},
		{"N reached", 100, now, 150, 50, time.Minute, true},
		{"N not reached, T not passed", 100, now.Add(-30 * time.Second), 149, 50, time.Minute, false},
		{"T passed", 100, now.Add(-time.Minute), 101, 50, time.Minute, true},
		{"first checkpoint, T set", 0, time.Time{}, 1, 50, time.Minute, true},
		{"first checkpoint, T disabled", 0, time.Time{}, 1, 50, 0, false},
		{"N disabled", 0, now, 1000, 0, time.Minute, false},
		{"both disabled", 0, time.Time{}, 1000, 0, 0, false},
		{"head behind (restored backup)", 100, now.Add(-time.Hour), 90, 1, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := audit.Head{Seq: tt.head}
			if got := audit.CheckpointDue(tt.lastSeq, tt.lastAt, head, now, tt.everyN, tt.everyT); got != tt.want {
				t.Errorf("CheckpointDue(%d, %v, %v, now, %d, %v) = %v, want %v", tt.lastSeq, tt.lastAt, head, tt.everyN, tt.everyT, got, tt.want)
			}
		})
	}
}

func TestCovering(t *testing.T) {
	cps := []audit.Checkpoint{{Seq: 100}, {Seq: 50}, {Seq: 150}}
	tests := []struct {
		seq    uint64
		want   uint64
		wantOK bool
	}{
		{0, 0, false},
		{49, 0, false},
		{50, 50, true},
		{99, 50, true},
		{100, 100, true},
		{1000, 150, true},
	}
	for _, tt := range tests {
		got, ok := audit.Covering(cps, tt.seq)
		if ok != tt.wantOK || got.Seq != tt.want {
			t.Errorf("Covering(50,100,150; %d) = %d, %v; want %d, %v", tt.seq, got.Seq, ok, tt.want, tt.wantOK)
		}
	}
}
