package releases_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/blobs"
	"github.com/citadel-cloud/citadel/internal/releases"
	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
	"github.com/citadel-cloud/citadel/internal/update"
)

// t0 is when the test bundles are signed; they are imported an hour later.
var (
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now = t0.Add(time.Hour)
)

// testKeys are a vendor's keys, the same for the same seed.
func testKeys(seed byte) update.Keys {
	key := func(i byte) ed25519.PrivateKey {
		return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed, i}, ed25519.SeedSize/2))
	}
	one := func(i byte) update.RoleKeys { return update.RoleKeys{Threshold: 1, Keys: []ed25519.PrivateKey{key(i)}} }
	return update.Keys{Root: one(1), Targets: one(2), Snapshot: one(3), Timestamp: one(4)}
}

func newRoot(t *testing.T, keys update.Keys) []byte {
	t.Helper()
	root, err := update.NewRoot(keys, t0.AddDate(5, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// content is an artifact's bytes in the release of clusterVersion.
func content(name, clusterVersion string) []byte {
	return []byte("the content of " + name + " in " + clusterVersion)
}

// bundle builds the bundle of clusterVersion with metadata version
// version, signed with keys, with two artifacts.
func bundle(t *testing.T, keys update.Keys, clusterVersion string, version int64, roots ...[]byte) []byte {
	t.Helper()
	opts := update.BuildOptions{Keys: keys, Roots: roots, ClusterVersion: clusterVersion, Notes: "notes of " + clusterVersion,
		Version: version, Now: t0}
	for _, a := range []struct {
		name           string
		kind           update.Kind
		sku, component string
	}{{"agent-linux-amd64", update.KindAgent, "", ""}, {"firmware/r760/bios.bin", update.KindFirmware, "R760", "BIOS"}} {
		c := content(a.name, clusterVersion)
		opts.Targets = append(opts.Targets, update.Target{Name: a.name, Kind: a.kind, Version: clusterVersion, MachineSKU: a.sku,
			Component: a.component, Size: int64(len(c)), Content: bytes.NewReader(c)})
	}
	var buf bytes.Buffer
	if err := update.Build(&buf, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// wantRelease is what bundle(…, clusterVersion, …) imports as.
func wantRelease(clusterVersion string) releases.Release {
	agent, bios := content("agent-linux-amd64", clusterVersion), content("firmware/r760/bios.bin", clusterVersion)
	return releases.Release{ClusterVersion: clusterVersion, Notes: "notes of " + clusterVersion, Imported: now, Artifacts: []releases.ArtifactInfo{
		{Name: "agent-linux-amd64", Kind: update.KindAgent, Version: clusterVersion, Size: int64(len(agent)), SHA256: sum(agent)},
		{Name: "firmware/r760/bios.bin", Kind: update.KindFirmware, Version: clusterVersion, MachineSKU: "R760", Component: "BIOS",
			Size: int64(len(bios)), SHA256: sum(bios)},
	}}
}

// newCatalog is a catalog on a fresh store that trusts root.
func newCatalog(t *testing.T, root []byte) *releases.Catalog {
	t.Helper()
	c := releases.New(storetest.Start(t), filepath.Join(t.TempDir(), "updates"))
	if root != nil {
		if _, err := c.AddTrust(t.Context(), root); err != nil {
			t.Fatalf("AddTrust: %v", err)
		}
	}
	return c
}

// versions lists the catalog's releases' cluster versions.
func versions(t *testing.T, c *releases.Catalog) []string {
	t.Helper()
	rs, err := c.Releases(t.Context())
	if err != nil {
		t.Fatalf("Releases: %v", err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.ClusterVersion)
	}
	return out
}

// files lists the artifact directory.
func files(t *testing.T, c *releases.Catalog) []string {
	t.Helper()
	entries, err := os.ReadDir(c.Dir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestImport(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys)
	c := newCatalog(t, root)
	got, err := c.Import(t.Context(), bytes.NewReader(bundle(t, keys, "4.2.0", 42, root)), now)
	if err != nil {
		t.Fatalf("Import = %v", err)
	}
	want := wantRelease("4.2.0")
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Import (-want +got):\n%s", d)
	}
	listed, err := c.Releases(t.Context())
	if err != nil || len(listed) != 1 {
		t.Fatalf("Releases = %v, %v; want the release", listed, err)
	}
	if d := cmp.Diff(want, listed[0]); d != "" {
		t.Errorf("Releases (-want +got):\n%s", d)
	}
	if r, err := c.Release(t.Context(), "4.2.0"); err != nil || !cmp.Equal(r, want) {
		t.Errorf("Release(4.2.0) = %+v, %v", r, err)
	}
	if _, err := c.Release(t.Context(), "4.3.0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Release(4.3.0) = %v, want store.ErrNotFound", err)
	}
	for _, a := range want.Artifacts {
		f, err := c.Open(a.SHA256)
		if err != nil {
			t.Fatalf("Open(%s) = %v", a.Name, err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if sum(b) != a.SHA256 || int64(len(b)) != a.Size {
			t.Errorf("the file of %s has %d bytes with sha256 %s, want %d, %s", a.Name, len(b), sum(b), a.Size, a.SHA256)
		}
	}
	if d := cmp.Diff([]string{want.Artifacts[0].SHA256, want.Artifacts[1].SHA256}, files(t, c), cmpSorted); d != "" {
		t.Errorf("the directory holds (-want +got):\n%s", d)
	}
}

var cmpSorted = cmp.Transformer("sorted", func(s []string) []string { return slices.Sorted(slices.Values(s)) })

func TestOpenRefusesNames(t *testing.T) {
	c := newCatalog(t, nil)
	os.MkdirAll(c.Dir(), 0o700)
	os.WriteFile(filepath.Join(filepath.Dir(c.Dir()), "secret"), []byte("x"), 0o600)
	for _, name := range []string{"", "../secret", "/etc/passwd", strings.Repeat("A", 64), strings.Repeat("a", 63), strings.Repeat("a", 64) + "/..", ".partial-x"} {
		if f, err := c.Open(name); err == nil || !strings.Contains(err.Error(), "64 lower-case hex digits") {
			f.Close()
			t.Errorf("Open(%q) = %v, want refused", name, err)
		}
	}
	if _, err := c.Open(strings.Repeat("a", 64)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(a missing artifact) = %v, want os.ErrNotExist", err)
	}
}

func TestImportRefuses(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys)
	good := bundle(t, keys, "4.2.0", 42, root)
	tampered := bytes.Clone(good)
	i := bytes.Index(tampered, []byte("the content of agent"))
	tampered[i] ^= 1
	other := testKeys(2)
	for _, c := range []struct {
		name    string
		bundle  []byte
		reason  update.Reason
		message string
	}{
		{"a changed artifact", tampered, update.TargetMismatch, "targets/agent-linux-amd64: sha256 does not match targets.json"},
		{"another vendor", bundle(t, other, "4.2.0", 42, newRoot(t, other)), update.UnknownRoot, "signed for another root of trust"},
		{"not a bundle", []byte("hello"), update.Malformed, "not a whole tar archive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cat := newCatalog(t, root)
			_, err := cat.Import(t.Context(), bytes.NewReader(c.bundle), now)
			e, ok := errors.AsType[*update.Error](err)
			if !ok || e.Reason != c.reason || !strings.Contains(e.Msg, c.message) {
				t.Fatalf("Import = %v, want %s: %q", err, c.reason, c.message)
			}
			if v := versions(t, cat); len(v) != 0 {
				t.Errorf("a refused import recorded releases %v", v)
			}
			if f := files(t, cat); len(f) != 0 {
				t.Errorf("a refused import left files %v", f)
			}
			// The state did not move: the good bundle imports.
			if _, err := cat.Import(t.Context(), bytes.NewReader(good), now); err != nil {
				t.Errorf("Import of the good bundle after the refusal = %v", err)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		cat := newCatalog(t, root)
		_, err := cat.Import(t.Context(), bytes.NewReader(good), t0.AddDate(1, 0, 0))
		if e, ok := errors.AsType[*update.Error](err); !ok || e.Reason != update.Expired {
			t.Errorf("Import a year later = %v, want expired", err)
		}
	})
	t.Run("no trust", func(t *testing.T) {
		cat := newCatalog(t, nil)
		if _, err := cat.Import(t.Context(), bytes.NewReader(good), now); !errors.Is(err, releases.ErrNoTrust) {
			t.Errorf("Import without trust = %v, want ErrNoTrust", err)
		}
		if f := files(t, cat); len(f) != 0 {
			t.Errorf("a refused import left files %v", f)
		}
	})
}

func TestImportRollback(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys)
	c := newCatalog(t, root)
	if _, err := c.Import(t.Context(), bytes.NewReader(bundle(t, keys, "4.3.0", 43, root)), now); err != nil {
		t.Fatal(err)
	}
	_, err := c.Import(t.Context(), bytes.NewReader(bundle(t, keys, "4.2.0", 42, root)), now)
	if e, ok := errors.AsType[*update.Error](err); !ok || e.Reason != update.Rollback {
		t.Fatalf("Import of an older bundle = %v, want rollback", err)
	}
	// An older release signed again with a newer metadata version is
	// still older than the release installed.
	_, err = c.Import(t.Context(), bytes.NewReader(bundle(t, keys, "4.2.0", 44, root)), now)
	if e, ok := errors.AsType[*update.Error](err); !ok || e.Reason != update.Rollback {
		t.Fatalf("Import of an older release in a newer bundle = %v, want rollback", err)
	}
	if v := versions(t, c); !slices.Equal(v, []string{"4.3.0"}) {
		t.Errorf("Releases = %v, want [4.3.0]", v)
	}
	if _, err := c.Import(t.Context(), bytes.NewReader(bundle(t, keys, "4.10.0", 44, root)), now); err != nil {
		t.Fatal(err)
	}
	if v := versions(t, c); !slices.Equal(v, []string{"4.3.0", "4.10.0"}) {
		t.Errorf("Releases = %v, want [4.3.0 4.10.0] (semantic order)", v)
	}
}

// TestImportAgain: the bundle imported last imports again (on another
// replica, say) without changing the record, and puts back artifact files
// that are missing or damaged.
func TestImportAgain(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys)
	c := newCatalog(t, root)
	b := bundle(t, keys, "4.2.0", 42, root)
	first, err := c.Import(t.Context(), bytes.NewReader(b), now)
	if err != nil {
		t.Fatal(err)
	}
	agent, bios := first.Artifacts[0].SHA256, first.Artifacts[1].SHA256
	os.Remove(filepath.Join(c.Dir(), agent))
	os.WriteFile(filepath.Join(c.Dir(), bios), []byte("damaged"), 0o600)
	again, err := c.Import(t.Context(), bytes.NewReader(b), now.Add(time.Minute))
	if err != nil {
		t.Fatalf("Import again = %v", err)
	}
	if d := cmp.Diff(first, again); d != "" {
		t.Errorf("the second import changed the release (-first +again):\n%s", d)
	}
	for _, a := range first.Artifacts {
		got, _ := os.ReadFile(filepath.Join(c.Dir(), a.SHA256))
		if sum(got) != a.SHA256 {
			t.Errorf("%s was not put back", a.Name)
		}
	}
}

func TestAddTrust(t *testing.T) {
	k1, k2 := testKeys(1), testKeys(2)
	r1 := newRoot(t, k1)
	c := newCatalog(t, nil)
	for _, root := range [][]byte{r1, r1, append(bytes.Clone(r1), '\n')} {
		if v, err := c.AddTrust(t.Context(), root); err != nil || v != 1 {
			t.Errorf("AddTrust(the same root) = %d, %v; want 1", v, err)
		}
	}
	if _, err := c.AddTrust(t.Context(), newRoot(t, k2)); !errors.Is(err, releases.ErrTrustInstalled) {
		t.Errorf("AddTrust(another root) = %v, want ErrTrustInstalled", err)
	}
	tampered := bytes.Replace(r1, []byte(`"expires"`), []byte(`"expires" `), 1)
	tampered = bytes.Replace(tampered, []byte(`"version": 1`), []byte(`"version": 3`), 1)
	for _, bad := range [][]byte{[]byte("{}"), tampered, bundle(t, k1, "4.2.0", 1, r1)} {
		if _, err := c.AddTrust(t.Context(), bad); !errors.Is(err, releases.ErrBadRoot) {
			t.Errorf("AddTrust(%.20q) = %v, want ErrBadRoot", bad, err)
		}
	}
}

// TestImportRotation: a bundle whose root chain rotates the keys moves the
// trust to the new root; the root the operator installed stays accepted
// by AddTrust.
func TestImportRotation(t *testing.T) {
	k1, k2 := testKeys(1), testKeys(2)
	r1 := newRoot(t, k1)
	r2, err := update.RotateRoot(r1, k1.Root, k2, t0.AddDate(5, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	c := newCatalog(t, r1)
	if _, err := c.Import(t.Context(), bytes.NewReader(bundle(t, k2, "4.2.0", 42, r1, r2)), now); err != nil {
		t.Fatalf("Import of a rotating bundle = %v", err)
	}
	// Only root 2 verifies a bundle that carries no chain from root 1.
	if _, err := c.Import(t.Context(), bytes.NewReader(bundle(t, k2, "4.3.0", 43, r2)), now); err != nil {
		t.Fatalf("Import of a bundle with root 2 only = %v", err)
	}
	_, err = c.Import(t.Context(), bytes.NewReader(bundle(t, k1, "4.4.0", 44, r1)), now)
	if e, ok := errors.AsType[*update.Error](err); !ok || e.Reason != update.Rollback {
		t.Errorf("Import of a bundle signed with the retired keys = %v, want rollback", err)
	}
	if v, err := c.AddTrust(t.Context(), r1); err != nil || v != 2 {
		t.Errorf("AddTrust(the installed root) after the rotation = %d, %v; want 2", v, err)
	}
	if v, err := c.AddTrust(t.Context(), r2); err != nil || v != 2 {
		t.Errorf("AddTrust(the rotated root) = %d, %v; want 2", v, err)
	}
}

// TestImportConcurrent: two bundles imported at once are both recorded,
// or the older one is refused as a rollback; no update is lost.
func TestImportConcurrent(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys)
	older, newer := bundle(t, keys, "4.2.0", 42, root), bundle(t, keys, "4.3.0", 43, root)
	for round := range 3 {
		c := newCatalog(t, root)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, b := range [][]byte{older, newer} {
			wg.Go(func() { _, errs[i] = c.Import(t.Context(), bytes.NewReader(b), now) })
		}
		wg.Wait()
		if errs[1] != nil {
			t.Fatalf("round %d: Import of the newer bundle = %v", round, errs[1])
		}
		want := []string{"4.2.0", "4.3.0"}
		if errs[0] != nil {
			if e, ok := errors.AsType[*update.Error](errs[0]); !ok || e.Reason != update.Rollback {
				t.Fatalf("round %d: Import of the older bundle = %v, want success or rollback", round, errs[0])
			}
			want = want[1:]
		}
		if v := versions(t, c); !slices.Equal(v, want) {
			t.Errorf("round %d: Releases = %v, want %v (older: %v)", round, v, want, errs[0])
		}
		// The state is the newer bundle's: the older one is a rollback now.
		_, err := c.Import(t.Context(), bytes.NewReader(older), now)
		if e, ok := errors.AsType[*update.Error](err); !ok || e.Reason != update.Rollback {
			t.Errorf("round %d: Import of the older bundle afterwards = %v, want rollback", round, err)
		}
	}
}

// TestNewRemovesPartialFiles: a crash mid-copy leaves a partial file,
// which the next New removes; artifacts stay.
func TestNewRemovesPartialFiles(t *testing.T) {
	st := storetest.Start(t)
	dir := t.TempDir()
	artifact := filepath.Join(dir, strings.Repeat("a", 64))
	os.WriteFile(artifact, []byte("x"), 0o600)
	c := releases.New(st, dir)
	f, err := c.CreateTemp("bundle-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	releases.New(st, dir)
	if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New left %s: %v", f.Name(), err)
	}
	if _, err := os.Stat(artifact); err != nil {
		t.Errorf("New removed an artifact: %v", err)
	}
}

// TestAdopt: a replica that lacks an artifact's file adopts it from a
// stream (a peer's copy), checked against the release's digest and
// size; it refuses other content and digests no release names.
func TestAdopt(t *testing.T) {
	keys := testKeys(1)
	root := newRoot(t, keys)
	st := storetest.Start(t)
	// The importing replica and another one, on the same store.
	importer := releases.New(st, filepath.Join(t.TempDir(), "updates"))
	if _, err := importer.AddTrust(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	rel, err := importer.Import(t.Context(), bytes.NewReader(bundle(t, keys, "4.2.0", 42, root)), now)
	if err != nil {
		t.Fatal(err)
	}
	agent := rel.Artifacts[0]
	good := content(agent.Name, "4.2.0")
	other := content(agent.Name, "4.3.0")

	for _, tc := range []struct {
		name    string
		sha     string
		content []byte
		want    error
	}{
		{"another content", agent.SHA256, other, blobs.ErrDigestMismatch},
		{"truncated", agent.SHA256, good[:len(good)-1], blobs.ErrDigestMismatch},
		{"longer", agent.SHA256, append(bytes.Clone(good), '\n'), blobs.ErrDigestMismatch},
		{"a digest no release names", sum(other), other, os.ErrNotExist},
		{"not a digest", "../secret", good, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := releases.New(st, filepath.Join(t.TempDir(), "updates"))
			if err := c.Adopt(t.Context(), tc.sha, bytes.NewReader(tc.content)); !errors.Is(err, tc.want) {
				t.Errorf("Adopt(%.12s, %q) = %v, want %v", tc.sha, tc.content, err, tc.want)
			}
			if f := files(t, c); len(f) != 0 {
				t.Errorf("a refused Adopt left files %v", f)
			}
			if _, err := c.Open(tc.sha); err == nil {
				t.Errorf("Open(%.12s) after a refused Adopt succeeded", tc.sha)
			}
		})
	}

	t.Run("adopts", func(t *testing.T) {
		c := releases.New(st, filepath.Join(t.TempDir(), "updates"))
		if _, err := c.Open(agent.SHA256); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "not on this replica") {
			t.Errorf("Open before Adopt = %v, want os.ErrNotExist, not on this replica", err)
		}
		peer, err := importer.Open(agent.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		if err := c.Adopt(t.Context(), agent.SHA256, peer); err != nil {
			t.Fatalf("Adopt = %v", err)
		}
		// Again: the file is kept and the content not read.
		if err := c.Adopt(t.Context(), agent.SHA256, strings.NewReader("not read")); err != nil {
			t.Errorf("Adopt again = %v", err)
		}
		f, err := c.Open(agent.SHA256)
		if err != nil {
			t.Fatalf("Open after Adopt = %v", err)
		}
		defer f.Close()
		if b, _ := io.ReadAll(f); !bytes.Equal(b, good) {
			t.Errorf("Open after Adopt reads %q, want %q", b, good)
		}
		if d := cmp.Diff([]string{agent.SHA256}, files(t, c)); d != "" {
			t.Errorf("the directory holds (-want +got):\n%s", d)
		}
	})
}
