package update_test

import (
	"archive/tar"
	"bytes"
	stdcmp "cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/update"
)

// t0 is when the test bundles are signed.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testKeys are a vendor's keys, the same for the same seed: three root
// keys with a threshold of two and one key for each other role.
func testKeys(seed byte) update.Keys {
	key := func(i byte) ed25519.PrivateKey {
		return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed, i}, ed25519.SeedSize/2))
	}
	one := func(i byte) update.RoleKeys { return update.RoleKeys{Threshold: 1, Keys: []ed25519.PrivateKey{key(i)}} }
	return update.Keys{
		Root:    update.RoleKeys{Threshold: 2, Keys: []ed25519.PrivateKey{key(1), key(2), key(3)}},
		Targets: one(4), Snapshot: one(5), Timestamp: one(6),
	}
}

func newRoot(t testing.TB, keys update.Keys, expires time.Time) []byte {
	t.Helper()
	root, err := update.NewRoot(keys, expires)
	if err != nil {
		t.Fatalf("NewRoot: %v", err)
	}
	return root
}

func rotateRoot(t testing.TB, prev []byte, prevRoot update.RoleKeys, next update.Keys) []byte {
	t.Helper()
	root, err := update.RotateRoot(prev, prevRoot, next, t0.AddDate(5, 0, 0))
	if err != nil {
		t.Fatalf("RotateRoot: %v", err)
	}
	return root
}

// artifacts are the release's artifacts; agent-linux-amd64 is 16 bytes.
var artifacts = []update.Artifact{
	{Name: "agent-linux-amd64", Kind: update.KindAgent, Version: "4.2.0"},
	{Name: "firmware/r760/bios-2.19.1.bin", Kind: update.KindFirmware, Version: "2.19.1", MachineSKU: "R760", Component: "BIOS"},
	{Name: "node-image/azurelinux-3.0.raw", Kind: update.KindNodeImage, Version: "2026.02.1"},
	{Name: "policy/baseline.json", Kind: update.KindPolicyPack, Version: "7"},
	{Name: "switch/sonic-202511.bin", Kind: update.KindSwitchImage, Version: "202511.3"},
}

func content(name string) []byte {
	if name == "agent-linux-amd64" {
		return []byte("\x7fELF agent 4.2.0")
	}
	return []byte("the content of " + name)
}

// options are for a good bundle of artifacts, signed with keys.
func options(keys update.Keys, roots ...[]byte) update.BuildOptions {
	opts := update.BuildOptions{Keys: keys, Roots: roots, ClusterVersion: "4.2.0", Notes: "Faster reimage.", Version: 42, Now: t0}
	for _, a := range artifacts {
		c := content(a.Name)
		opts.Targets = append(opts.Targets, update.Target{Name: a.Name, Kind: a.Kind, Version: a.Version,
			MachineSKU: a.MachineSKU, Component: a.Component, Size: int64(len(c)), Content: bytes.NewReader(c)})
	}
	return opts
}

func build(t testing.TB, opts update.BuildOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := update.Build(&buf, opts); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return buf.Bytes()
}

// file is an entry of a bundle's archive.
type file struct {
	name string
	data []byte
	typ  byte
}

// edit rewrites a bundle's archive with fn.
func edit(t testing.TB, bundle []byte, fn func([]file) []file) []byte {
	t.Helper()
	var files []file
	tr := tar.NewReader(bytes.NewReader(bundle))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, file{hdr.Name, data, hdr.Typeflag})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range fn(files) {
		hdr := &tar.Header{Name: f.name, Typeflag: f.typ, Size: int64(len(f.data)), Mode: 0o644}
		if f.typ == tar.TypeSymlink {
			hdr.Linkname, hdr.Size = "/etc/passwd", 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write(f.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// replace replaces old by new in the file name of a bundle.
func replace(t testing.TB, bundle []byte, name, old, new string) []byte {
	t.Helper()
	return edit(t, bundle, func(files []file) []file {
		for i, f := range files {
			if f.name == name {
				if !bytes.Contains(f.data, []byte(old)) {
					t.Fatalf("%s does not contain %q", name, old)
				}
				files[i].data = bytes.Replace(f.data, []byte(old), []byte(new), 1)
				return files
			}
		}
		t.Fatalf("no %s in the bundle", name)
		return nil
	})
}

func add(t testing.TB, bundle []byte, f file) []byte {
	t.Helper()
	return edit(t, bundle, func(files []file) []file { return append(files, f) })
}

func remove(t testing.TB, bundle []byte, name string) []byte {
	t.Helper()
	return edit(t, bundle, func(files []file) []file {
		for i, f := range files {
			if f.name == name {
				return append(files[:i], files[i+1:]...)
			}
		}
		t.Fatalf("no %s in the bundle", name)
		return nil
	})
}

func TestVerify(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys, t0.AddDate(5, 0, 0))
	good := build(t, options(keys, root))

	other := testKeys(2)
	stray := keys
	stray.Targets = testKeys(3).Targets
	withOpts := func(fn func(*update.BuildOptions)) []byte {
		opts := options(keys, root)
		fn(&opts)
		return build(t, opts)
	}
	shortRoot := newRoot(t, keys, t0.AddDate(0, 0, 2))
	installed := update.State{Root: 1, Timestamp: 42, Snapshot: 42, Targets: 42, ClusterVersion: "4.2.0"}
	reg := func(name, data string) file { return file{name, []byte(data), tar.TypeReg} }

	cases := []struct {
		name    string
		bundle  []byte
		root    []byte        // default: root
		last    update.State  // default: the zero State
		after   time.Duration // Verify at t0 + after, default an hour
		want    update.Reason // "" for a good bundle
		wantMsg string
	}{
		{name: "good", bundle: good},
		{name: "the same bundle again", bundle: good, last: installed},
		{name: "a newer bundle", bundle: good, last: update.State{Root: 1, Timestamp: 41, Snapshot: 41, Targets: 41, ClusterVersion: "4.1.3"}},
		{name: "the release after its release candidate", bundle: good, last: update.State{ClusterVersion: "4.2.0-rc.2"}},
		{name: "with directory entries", bundle: add(t, add(t, good, file{"targets/", nil, tar.TypeDir}), file{"targets/firmware/r760/", nil, tar.TypeDir})},

		{name: "changed target", bundle: replace(t, good, "targets/agent-linux-amd64", "4.2.0", "6.6.6"),
			want: update.TargetMismatch, wantMsg: "targets/agent-linux-amd64: sha256 does not match targets.json (the file was changed after signing)"},
		{name: "longer target", bundle: replace(t, good, "targets/agent-linux-amd64", "4.2.0", "4.2.0!"),
			want: update.TargetMismatch, wantMsg: "targets/agent-linux-amd64 has 17 bytes, targets.json says 16"},
		{name: "changed release", bundle: replace(t, good, "targets/release.json", "4.2.0", "9.2.0"),
			want: update.TargetMismatch, wantMsg: "targets/release.json: the sha256 does not match targets.json"},
		{name: "missing target", bundle: remove(t, good, "targets/policy/baseline.json"),
			want: update.TargetMismatch, wantMsg: "targets/policy/baseline.json is listed in targets.json but missing from the bundle"},

		{name: "changed timestamp.json", bundle: replace(t, good, "metadata/timestamp.json", "2026-03-08T12:00:00Z", "2026-03-09T12:00:00Z"),
			want: update.BadSignature, wantMsg: "metadata/timestamp.json is not signed by 1 of the timestamp keys of root version 1"},
		{name: "changed targets.json", bundle: replace(t, good, "metadata/targets.json", `"version": "4.2.0"`, `"version": "4.2.1"`),
			want: update.BadSignature, wantMsg: "metadata/targets.json: the length or sha256 does not match snapshot.json (the file was changed after signing)"},
		{name: "targets.json cut short", bundle: replace(t, good, "metadata/targets.json", "}", ""),
			want: update.BadSignature, wantMsg: "metadata/targets.json: the length or sha256 does not match snapshot.json"},
		{name: "targets.json signed by a key not in root", bundle: build(t, options(stray, root)),
			want: update.BadSignature, wantMsg: "metadata/targets.json is not signed by 1 of the targets keys of root version 1"},

		{name: "timestamp expired", bundle: good, after: 8 * 24 * time.Hour,
			want: update.Expired, wantMsg: "metadata/timestamp.json expired at 2026-03-08T12:00:00Z"},
		{name: "snapshot expired", bundle: withOpts(func(o *update.BuildOptions) { o.TimestampExpires = t0.AddDate(0, 2, 0) }), after: 31 * 24 * time.Hour,
			want: update.Expired, wantMsg: "metadata/snapshot.json expired at 2026-03-31T12:00:00Z"},
		{name: "targets expired", bundle: withOpts(func(o *update.BuildOptions) { o.TargetsExpires = t0.AddDate(0, 0, 3) }), after: 4 * 24 * time.Hour,
			want: update.Expired, wantMsg: "metadata/targets.json expired at 2026-03-04T12:00:00Z"},
		{name: "root expired", bundle: build(t, options(keys, shortRoot)), root: shortRoot, after: 3 * 24 * time.Hour,
			want: update.Expired, wantMsg: "metadata/1.root.json expired at 2026-03-03T12:00:00Z"},

		{name: "rollback of the metadata", bundle: good, last: update.State{Root: 1, Timestamp: 43, Snapshot: 43, Targets: 43},
			want: update.Rollback, wantMsg: "rollback: metadata/timestamp.json is version 42, older than the installed version 43"},
		{name: "rollback of targets.json", bundle: good, last: update.State{Targets: 43},
			want: update.Rollback, wantMsg: "rollback: metadata/targets.json is version 42, older than the installed version 43"},
		{name: "rollback of the release", bundle: good, last: update.State{ClusterVersion: "4.10.0"},
			want: update.Rollback, wantMsg: "rollback: bundle release 4.2.0 is older than the installed 4.10.0"},
		{name: "rollback to a release candidate", bundle: withOpts(func(o *update.BuildOptions) { o.ClusterVersion = "4.2.0-rc.1" }), last: installed,
			want: update.Rollback, wantMsg: "rollback: bundle release 4.2.0-rc.1 is older than the installed 4.2.0"},
		{name: "rollback of the root", bundle: good, last: update.State{Root: 2},
			want: update.Rollback, wantMsg: "rollback: metadata/1.root.json is version 1, older than the installed version 2"},
		{name: "an expired rollback is a rollback", bundle: good, last: update.State{Timestamp: 43}, after: 30 * 24 * time.Hour,
			want: update.Rollback},

		{name: "another vendor's bundle", bundle: build(t, options(other, newRoot(t, other, t0.AddDate(5, 0, 0)))),
			want: update.UnknownRoot, wantMsg: "metadata/1.root.json is not the trusted root version 1: the bundle is signed for another root of trust"},
		{name: "another vendor's trust", bundle: good, root: newRoot(t, other, t0.AddDate(5, 0, 0)),
			want: update.UnknownRoot, wantMsg: "metadata/1.root.json is not the trusted root version 1"},

		{name: "an unlisted target", bundle: add(t, good, reg("targets/extra.bin", "x")),
			want: update.Malformed, wantMsg: "targets/extra.bin is not listed in targets.json"},
		{name: "an unexpected file", bundle: add(t, good, reg("README", "x")),
			want: update.Malformed, wantMsg: "README: unexpected file in the bundle"},
		{name: "unexpected metadata", bundle: add(t, good, reg("metadata/mirrors.json", "{}")),
			want: update.Malformed, wantMsg: "metadata/mirrors.json: unexpected file"},
		{name: "path traversal in targets", bundle: add(t, good, reg("targets/../../etc/cron.d/x", "x")),
			want: update.Malformed, wantMsg: `target name "../../etc/cron.d/x" has a ".." segment (path traversal)`},
		{name: "path traversal", bundle: add(t, good, reg("../x", "x")),
			want: update.Malformed, wantMsg: `../x: a name in the bundle may not be absolute or contain ".." (path traversal)`},
		{name: "absolute path", bundle: add(t, good, reg("/etc/passwd", "x")),
			want: update.Malformed, wantMsg: "/etc/passwd: a name in the bundle may not be absolute"},
		{name: "a symlink", bundle: add(t, good, file{"targets/link", nil, tar.TypeSymlink}),
			want: update.Malformed, wantMsg: "targets/link: not a regular file"},
		{name: "a file twice", bundle: add(t, good, reg("targets/agent-linux-amd64", "\x7fELF agent 4.2.0")),
			want: update.Malformed, wantMsg: "targets/agent-linux-amd64 is in the bundle twice"},
		{name: "no timestamp.json", bundle: remove(t, good, "metadata/timestamp.json"),
			want: update.Malformed, wantMsg: "metadata/timestamp.json is missing from the bundle"},
		{name: "no root", bundle: remove(t, good, "metadata/1.root.json"),
			want: update.Malformed, wantMsg: "the bundle has no metadata/N.root.json"},
		{name: "not a tar archive", bundle: bytes.Repeat([]byte("not a bundle "), 100),
			want: update.Malformed, wantMsg: "the bundle is not a whole tar archive"},
		{name: "truncated", bundle: good[:len(good)/2],
			want: update.Malformed, wantMsg: "the bundle is not a whole tar archive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			trusted := root
			if c.root != nil {
				trusted = c.root
			}
			b, err := update.Verify(bytes.NewReader(c.bundle), trusted, c.last, t0.Add(stdcmp.Or(c.after, time.Hour)))
			if c.want == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want a bundle", err)
				}
				if len(b.Artifacts) != len(artifacts) {
					t.Errorf("Verify returned %d artifacts, want %d", len(b.Artifacts), len(artifacts))
				}
				return
			}
			e, ok := errors.AsType[*update.Error](err)
			if !ok {
				t.Fatalf("Verify = %v, %v; want an *update.Error %s", b, err, c.want)
			}
			if e.Reason != c.want || !strings.Contains(e.Msg, c.wantMsg) {
				t.Errorf("Verify = %s: %q; want %s: %q", e.Reason, e.Msg, c.want, c.wantMsg)
			}
		})
	}
}

// TestVerifyGood checks what Verify returns for a good bundle, and that
// the artifacts read back as built.
func TestVerifyGood(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys, t0.AddDate(5, 0, 0))
	bundle := build(t, options(keys, root))
	b, err := update.Verify(bytes.NewReader(bundle), root, update.State{}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := &update.Bundle{
		State:   update.State{Root: 1, Timestamp: 42, Snapshot: 42, Targets: 42, ClusterVersion: "4.2.0"},
		Root:    root,
		Release: update.Release{ClusterVersion: "4.2.0", Notes: "Faster reimage."},
	}
	for _, a := range artifacts {
		sum := sha256.Sum256(content(a.Name))
		a.Size, a.SHA256 = int64(len(content(a.Name))), hex.EncodeToString(sum[:])
		want.Artifacts = append(want.Artifacts, a)
	}
	if diff := cmp.Diff(want, b, cmpopts.IgnoreUnexported(update.Artifact{})); diff != "" {
		t.Errorf("Verify (-want +got):\n%s", diff)
	}
	for _, a := range b.Artifacts {
		got, err := io.ReadAll(a.Open())
		if err != nil || !bytes.Equal(got, content(a.Name)) {
			t.Errorf("%s: Open read %q, %v; want %q", a.Name, got, err, content(a.Name))
		}
	}
}

// TestArtifactOpen checks that an artifact changed in the bundle after
// Verify does not read back.
func TestArtifactOpen(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys, t0.AddDate(5, 0, 0))
	bundle := build(t, options(keys, root))
	b, err := update.Verify(bytes.NewReader(bundle), root, update.State{}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(bundle, content("agent-linux-amd64"))
	bundle[i] ^= 1
	_, err = io.ReadAll(b.Artifacts[0].Open())
	if e, ok := errors.AsType[*update.Error](err); !ok || e.Reason != update.TargetMismatch {
		t.Errorf("reading %s changed after Verify: %v, want a %s error", b.Artifacts[0].Name, err, update.TargetMismatch)
	}
	if _, err := io.ReadAll(b.Artifacts[1].Open()); err != nil {
		t.Errorf("reading %s: %v", b.Artifacts[1].Name, err)
	}
}

// TestRootRotation moves a vendor from root 1 to new keys in root 2.
func TestRootRotation(t *testing.T) {
	k1, k2, k3 := testKeys(1), testKeys(4), testKeys(5)
	r1 := newRoot(t, k1, t0.AddDate(5, 0, 0))
	r2 := rotateRoot(t, r1, k1.Root, k2)
	r3 := rotateRoot(t, r2, k2.Root, k3)
	next := func(keys update.Keys, roots ...[]byte) []byte {
		opts := options(keys, roots...)
		opts.Version, opts.ClusterVersion = 43, "4.3.0"
		return build(t, opts)
	}
	oneOldKey := update.RoleKeys{Threshold: 1, Keys: k1.Root.Keys[:1]}
	cases := []struct {
		name     string
		bundle   []byte
		trusted  []byte
		last     update.State
		want     update.Reason
		wantMsg  string
		wantRoot []byte
	}{
		{name: "rotation", bundle: next(k2, r1, r2), trusted: r1, last: update.State{Root: 1, Timestamp: 42}, wantRoot: r2},
		{name: "two rotations", bundle: next(k3, r1, r2, r3), trusted: r1, wantRoot: r3},
		{name: "a chain from the trusted root", bundle: next(k3, r2, r3), trusted: r2, wantRoot: r3},
		{name: "a chain that starts after the trusted root", bundle: next(k2, r2), trusted: r1, wantRoot: r2},
		{name: "after the rotation", bundle: next(k2, r1, r2), trusted: r2, last: update.State{Root: 2}, wantRoot: r2},
		{name: "signed by a rotated-out key", bundle: next(k1, r1, r2), trusted: r1,
			want: update.BadSignature, wantMsg: "metadata/timestamp.json is not signed by 1 of the timestamp keys of root version 2"},
		{name: "an old bundle after the rotation", bundle: build(t, options(k1, r1)), trusted: r2,
			want: update.Rollback, wantMsg: "rollback: the bundle's newest root is version 1, older than the trusted version 2"},
		{name: "a root not signed by the old root keys", bundle: next(k2, r1, rotateRoot(t, r1, testKeys(9).Root, k2)), trusted: r1,
			want: update.UnknownRoot, wantMsg: "metadata/2.root.json is not signed by the root keys of root version 1 and by its own"},
		{name: "a root signed by fewer old root keys than the threshold", bundle: next(k2, r1, rotateRoot(t, r1, oneOldKey, k2)), trusted: r1,
			want: update.UnknownRoot, wantMsg: "metadata/2.root.json is not signed by the root keys of root version 1"},
		{name: "a gap in the chain", bundle: remove(t, next(k3, r1, r2, r3), "metadata/2.root.json"), trusted: r1,
			want: update.UnknownRoot, wantMsg: "metadata/2.root.json is missing: the root chain from the trusted version 1 to version 3 does not link"},
		{name: "a root under another version's name", bundle: replace(t, next(k2, r1, r2), "metadata/2.root.json", `"version": 2`, `"version": 7`), trusted: r1,
			want: update.Malformed, wantMsg: "metadata/2.root.json holds root version 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := update.Verify(bytes.NewReader(c.bundle), c.trusted, c.last, t0.Add(time.Hour))
			if c.want == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want a bundle", err)
				}
				if !bytes.Equal(b.Root, c.wantRoot) {
					t.Errorf("Verify returned the root\n%s\nwant\n%s", b.Root, c.wantRoot)
				}
				return
			}
			e, ok := errors.AsType[*update.Error](err)
			if !ok || e.Reason != c.want || !strings.Contains(e.Msg, c.wantMsg) {
				t.Fatalf("Verify = %v; want %s: %q", err, c.want, c.wantMsg)
			}
		})
	}

	// The operator stores what Verify returns and takes the next bundle.
	b, err := update.Verify(bytes.NewReader(next(k2, r1, r2)), r1, update.State{}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := (update.State{Root: 2, Timestamp: 43, Snapshot: 43, Targets: 43, ClusterVersion: "4.3.0"}); b.State != want {
		t.Errorf("State = %+v, want %+v", b.State, want)
	}
	later := options(k2, r1, r2)
	later.Version, later.ClusterVersion = 44, "4.3.1"
	if _, err := update.Verify(bytes.NewReader(build(t, later)), b.Root, b.State, t0.Add(time.Hour)); err != nil {
		t.Errorf("the next bundle after a rotation: %v", err)
	}
}

func TestBuildRefuses(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys, t0.AddDate(5, 0, 0))
	r2 := rotateRoot(t, root, keys.Root, keys)
	r3 := rotateRoot(t, r2, keys.Root, keys)
	cases := []struct {
		name    string
		edit    func(*update.BuildOptions)
		wantErr string
	}{
		{"no version", func(o *update.BuildOptions) { o.Version = 0 }, "metadata version 0"},
		{"a bad cluster version", func(o *update.BuildOptions) { o.ClusterVersion = "v4.2" }, `"v4.2" is not a semantic version`},
		{"no roots", func(o *update.BuildOptions) { o.Roots = nil }, "needs its root chain"},
		{"a gap in the roots", func(o *update.BuildOptions) { o.Roots = [][]byte{root, r3} }, "version 3 follows version 1"},
		{"a threshold above the keys", func(o *update.BuildOptions) { o.Keys.Targets.Threshold = 2 }, "targets keys: a threshold of 2 of 1 keys"},
		{"path traversal", func(o *update.BuildOptions) { o.Targets[0].Name = "../agent" }, `".." segment`},
		{"a hidden name", func(o *update.BuildOptions) { o.Targets[0].Name = "a/.agent" }, "starting with a letter or digit"},
		{"release.json", func(o *update.BuildOptions) { o.Targets[0].Name = "release.json" }, "the name is taken"},
		{"a name twice", func(o *update.BuildOptions) { o.Targets[1].Name = o.Targets[0].Name }, "the name is taken"},
		{"an unknown kind", func(o *update.BuildOptions) { o.Targets[0].Kind = "kernel" }, `kind "kernel" is not one of`},
		{"a release target", func(o *update.BuildOptions) { o.Targets[0].Kind = update.KindRelease }, "writes the release target itself"},
		{"firmware without a SKU", func(o *update.BuildOptions) { o.Targets[1].MachineSKU = "" }, "firmware without a machineSku"},
		{"a SKU on the agent", func(o *update.BuildOptions) { o.Targets[0].MachineSKU = "R760" }, "only firmware has one"},
		{"firmware without a component", func(o *update.BuildOptions) { o.Targets[1].Component = "" }, "firmware without a component"},
		{"a component on the agent", func(o *update.BuildOptions) { o.Targets[0].Component = "BIOS" }, "a component on a target of kind agent (only firmware has one)"},
		{"no version on a target", func(o *update.BuildOptions) { o.Targets[0].Version = "" }, "no version"},
		{"content shorter than Size", func(o *update.BuildOptions) { o.Targets[0].Size++ }, "the content has 16 bytes, its Size says 17"},
		{"content longer than Size", func(o *update.BuildOptions) { o.Targets[0].Size-- }, "the content is longer than its Size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := options(keys, root)
			c.edit(&opts)
			err := update.Build(io.Discard, opts)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Build = %v, want an error with %q", err, c.wantErr)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	keys, err := update.GenerateKeys(3, 2)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(keys)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("the keys file has no PEM keys:\n%s", data)
	}
	back, err := update.ParseKeys(data)
	if err != nil {
		t.Fatalf("ParseKeys(%s) = %v", data, err)
	}
	if diff := cmp.Diff(keys, back); diff != "" {
		t.Errorf("ParseKeys(Marshal(keys)) (-want +got):\n%s", diff)
	}

	// Keys loaded from a file sign bundles that verify.
	root := newRoot(t, back, t0.AddDate(1, 0, 0))
	if _, err := update.Verify(bytes.NewReader(build(t, options(keys, root))), root, update.State{}, t0); err != nil {
		t.Errorf("a bundle signed with generated keys: %v", err)
	}

	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	b64 := func(b []byte) string { return `"` + base64.StdEncoding.EncodeToString(b) + `"` }
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	role := func(threshold int, keys ...string) string {
		return fmt.Sprintf(`{"threshold":%d,"keys":[%s]}`, threshold, strings.Join(keys, ","))
	}
	file := func(root string) string {
		one := role(1, b64(seed))
		return fmt.Sprintf(`{"root":%s,"targets":%s,"snapshot":%s,"timestamp":%s}`, root, one, one, one)
	}
	rsaPEM, err := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}})))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, file, wantErr string
	}{
		{"a seed", file(role(1, b64(seed))), ""},
		{"a 64-byte key", file(role(1, b64(priv))), ""},
		{"PKCS #8 DER", file(role(1, b64(der))), ""},
		{"a threshold of 0", file(role(0, b64(seed))), "root keys: a threshold of 0 of 1 keys is not possible"},
		{"a threshold above the keys", file(role(2, b64(seed))), "root keys: a threshold of 2 of 1 keys is not possible"},
		{"a key twice", file(role(1, b64(seed), b64(priv))), "key 1 appears twice"},
		{"a 64-byte key that does not match", file(role(1, b64(append(slices.Clone(seed), make([]byte, 32)...)))), "does not belong to its seed"},
		{"an RSA key", file(role(1, string(rsaPEM))), "not one PEM block of type PRIVATE KEY"},
		{"not base64", file(role(1, `"%%%"`)), "neither PEM nor base64"},
		{"an unknown role", `{"root":{},"mirror":{}}`, "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := update.ParseKeys([]byte(c.file))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("ParseKeys(%s) = %v", c.file, err)
			case c.wantErr == "" && !bytes.Equal(k.Root.Keys[0], priv):
				t.Errorf("ParseKeys(%s) read another key", c.file)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("ParseKeys(%s) = %v, want an error with %q", c.file, err, c.wantErr)
			}
		})
	}
}

func TestParseRoot(t *testing.T) {
	k1, k2 := testKeys(1), testKeys(4)
	r1 := newRoot(t, k1, t0.AddDate(5, 0, 0))
	r2 := rotateRoot(t, r1, k1.Root, k2)
	var tampered map[string]any
	if err := json.Unmarshal(r1, &tampered); err != nil {
		t.Fatal(err)
	}
	tampered["signed"].(map[string]any)["expires"] = "2099-01-01T00:00:00Z"
	tamperedJSON, _ := json.Marshal(tampered)
	unsigned := bytes.Replace(r1, []byte(`"signatures"`), []byte(`"ignored"`), 1)
	targets := bundleFile(t, build(t, options(k1, r1)), "metadata/targets.json")
	for _, c := range []struct {
		name    string
		data    []byte
		want    int64
		wantErr string
	}{
		{name: "the first root", data: r1, want: 1},
		{name: "a rotated root", data: r2, want: 2},
		{name: "changed after signing", data: tamperedJSON, wantErr: "not signed by the threshold of its own root keys"},
		{name: "no signatures", data: unsigned, wantErr: "root.json"},
		{name: "targets.json", data: targets, wantErr: "root.json"},
		{name: "not JSON", data: []byte("-----BEGIN PRIVATE KEY-----"), wantErr: "root.json"},
		{name: "null", data: []byte("null"), wantErr: "root.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := update.ParseRoot(c.data)
			if c.wantErr == "" {
				if err != nil || got != c.want {
					t.Fatalf("ParseRoot() = %d, %v; want %d", got, err, c.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("ParseRoot() = %d, %v; want an error containing %q", got, err, c.wantErr)
			}
		})
	}
}

// bundleFile returns the content of the file name in a bundle.
func bundleFile(t testing.TB, bundle []byte, name string) []byte {
	t.Helper()
	var data []byte
	edit(t, bundle, func(files []file) []file {
		for _, f := range files {
			if f.name == name {
				data = f.data
			}
		}
		return files
	})
	if data == nil {
		t.Fatalf("no %s in the bundle", name)
	}
	return data
}
