package update_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/citadel-cloud/citadel/internal/update"
)

// resign rewrites a bundle's targets.json and snapshot.json with edit
// functions and signs them, and timestamp.json, again with keys, as a
// vendor's own tool might: Verify must not trust what is signed blindly.
func resign(t *testing.T, bundle []byte, keys update.Keys, editTargets func(*metadata.TargetsType), editSnapshot func(*metadata.SnapshotType)) []byte {
	t.Helper()
	get := func(name string) []byte {
		var data []byte
		edit(t, bundle, func(files []file) []file {
			for _, f := range files {
				if f.name == name {
					data = f.data
				}
			}
			return files
		})
		return data
	}
	sign := func(m interface {
		Sign(signature.Signer) (*metadata.Signature, error)
	}, k update.RoleKeys) {
		s, err := signature.LoadSigner(k.Keys[0], crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
	meta := func(data []byte) *metadata.MetaFiles {
		sum := sha256.Sum256(data)
		return &metadata.MetaFiles{Version: 42, Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}}
	}

	targets, err := metadata.Targets().FromBytes(get("metadata/targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	editTargets(&targets.Signed)
	targets.ClearSignatures()
	sign(targets, keys.Targets)
	targetsJSON, err := json.Marshal(targets)
	if err != nil {
		t.Fatal(err)
	}
	snapshot, err := metadata.Snapshot().FromBytes(get("metadata/snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	snapshot.Signed.Meta["targets.json"] = meta(targetsJSON)
	editSnapshot(&snapshot.Signed)
	snapshot.ClearSignatures()
	sign(snapshot, keys.Snapshot)
	snapshotJSON, err := json.Marshal(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	timestamp, err := metadata.Timestamp().FromBytes(get("metadata/timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	timestamp.Signed.Meta["snapshot.json"] = meta(snapshotJSON)
	timestamp.ClearSignatures()
	sign(timestamp, keys.Timestamp)
	timestampJSON, err := json.Marshal(timestamp)
	if err != nil {
		t.Fatal(err)
	}
	return edit(t, bundle, func(files []file) []file {
		for i, f := range files {
			switch f.name {
			case "metadata/targets.json":
				files[i].data = targetsJSON
			case "metadata/snapshot.json":
				files[i].data = snapshotJSON
			case "metadata/timestamp.json":
				files[i].data = timestampJSON
			}
		}
		return files
	})
}

// TestVerifySigned checks that Verify refuses what is signed but is not a
// bundle Build would make.
func TestVerifySigned(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys, t0.AddDate(5, 0, 0))
	good := build(t, options(keys, root))
	none := func(*metadata.SnapshotType) {}
	target := func(name string, fn func(*metadata.TargetFiles)) func(*metadata.TargetsType) {
		return func(tt *metadata.TargetsType) { fn(tt.Targets[name]) }
	}
	setCustom := func(s string) func(*metadata.TargetFiles) {
		return func(tf *metadata.TargetFiles) {
			raw := json.RawMessage(s)
			tf.Custom = &raw
		}
	}
	cases := []struct {
		name     string
		targets  func(*metadata.TargetsType)
		snapshot func(*metadata.SnapshotType)
		remove   string // a file to remove from the bundle
		want     update.Reason
		wantMsg  string
	}{
		{name: "re-signed as it was", targets: func(*metadata.TargetsType) {}, snapshot: none},
		{name: "a target out of targets/", targets: func(tt *metadata.TargetsType) { tt.Targets["../agent"] = tt.Targets["agent-linux-amd64"] },
			snapshot: none, want: update.Malformed, wantMsg: `metadata/targets.json: target name "../agent" has a ".." segment (path traversal)`},
		{name: "a null target", targets: func(tt *metadata.TargetsType) { tt.Targets["ghost"] = nil }, snapshot: none,
			want: update.Malformed, wantMsg: `metadata/targets.json: target "ghost" is null`},
		{name: "an unknown kind", targets: target("agent-linux-amd64", setCustom(`{"kind":"kernel","version":"1"}`)), snapshot: none,
			want: update.Malformed, wantMsg: `target "agent-linux-amd64": kind "kernel" is not one of`},
		{name: "no custom", targets: target("agent-linux-amd64", func(tf *metadata.TargetFiles) { tf.Custom = nil }), snapshot: none,
			want: update.Malformed, wantMsg: `target "agent-linux-amd64" has no custom kind and version`},
		{name: "firmware without a SKU", targets: target("firmware/r760/bios-2.19.1.bin", setCustom(`{"kind":"firmware","version":"2"}`)), snapshot: none,
			want: update.Malformed, wantMsg: "firmware without a machineSku"},
		{name: "firmware without a component (a bundle built before components)", snapshot: none,
			targets: target("firmware/r760/bios-2.19.1.bin", setCustom(`{"kind":"firmware","version":"2.19.1","machineSku":"R760"}`))},
		{name: "a component on the agent", targets: target("agent-linux-amd64", setCustom(`{"kind":"agent","version":"4.2.0","component":"BIOS"}`)), snapshot: none,
			want: update.Malformed, wantMsg: "a component on a target of kind agent (only firmware has one)"},
		{name: "a second release", targets: target("agent-linux-amd64", setCustom(`{"kind":"release","version":"4.2.0"}`)), snapshot: none,
			want: update.Malformed, wantMsg: "only release.json is of kind release"},
		{name: "release.json of another version", targets: target("release.json", setCustom(`{"kind":"release","version":"4.3.0"}`)), snapshot: none,
			want: update.Malformed, wantMsg: "clusterVersion 4.2.0 is not the version 4.3.0 that targets.json gives it"},
		{name: "release.json unlisted", targets: func(tt *metadata.TargetsType) { delete(tt.Targets, "release.json") }, snapshot: none,
			want: update.Malformed, wantMsg: "targets/release.json is not listed in targets.json"},
		{name: "no release", targets: func(tt *metadata.TargetsType) { delete(tt.Targets, "release.json") }, snapshot: none, remove: "targets/release.json",
			want: update.Malformed, wantMsg: "metadata/targets.json has no release.json target"},
		{name: "an unknown hash", targets: target("agent-linux-amd64", func(tf *metadata.TargetFiles) { tf.Hashes["md5"] = make([]byte, 16) }), snapshot: none,
			want: update.Malformed, wantMsg: `hash "md5" is not a sha256 or sha512 digest`},
		{name: "a wrong sha512", targets: target("agent-linux-amd64", func(tf *metadata.TargetFiles) { tf.Hashes["sha512"] = make([]byte, 64) }), snapshot: none,
			want: update.TargetMismatch, wantMsg: "targets/agent-linux-amd64: sha512 does not match targets.json"},
		{name: "delegations", targets: func(tt *metadata.TargetsType) {
			tt.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
		}, snapshot: none,
			want: update.Malformed, wantMsg: "a bundle has no delegated targets"},
		{name: "targets.json of another version", targets: func(tt *metadata.TargetsType) { tt.Version = 41 }, snapshot: none,
			want: update.Malformed, wantMsg: "metadata/targets.json: its version is not the one snapshot.json gives it"},
		{name: "snapshot.json without the hash of targets.json", targets: func(*metadata.TargetsType) {}, snapshot: func(s *metadata.SnapshotType) {
			s.Meta["targets.json"].Hashes = nil
		}, want: update.Malformed, wantMsg: "metadata/snapshot.json does not give the sha256 of targets.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bundle := resign(t, good, keys, c.targets, c.snapshot)
			if c.remove != "" {
				bundle = remove(t, bundle, c.remove)
			}
			b, err := update.Verify(bytes.NewReader(bundle), root, update.State{}, t0.Add(time.Hour))
			if c.want == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want a bundle", err)
				}
				return
			}
			e, ok := errors.AsType[*update.Error](err)
			if !ok || e.Reason != c.want || !strings.Contains(e.Msg, c.wantMsg) {
				t.Fatalf("Verify = %v, %v; want %s: %q", b, err, c.want, c.wantMsg)
			}
		})
	}
}
