// Package releases is the control plane's catalog of imported update
// releases: the vendor's root of trust, installed once ("trust add"), the
// [update.State] last accepted, and each release an operator imported
// from a signed bundle ([update.Verify]), with its artifacts (node
// images, the agent, firmware, switch images, policy packs) kept on disk.
//
// The trust, the state and the releases are in the store; the artifacts
// are files in the catalog's directory (<data-dir>/updates on a replica,
// a [blobs.Dir]), each named by its sha256 in hex, written only after the
// bundle verified and checked again while copied.
//
// The files are written by the replica that imports the bundle. Another
// replica copies an artifact it lacks from a replica that has it, checked
// against the digest and size its release records ([Catalog.Adopt]); an
// import of the bundle accepted last there also copies the files.
//
// The server (the /citadel/updates endpoints), and the code that serves
// artifacts to machines, import releases.
package releases

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/blobs"
	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/update"
)

// Errors about the root of trust, for the caller to branch on.
var (
	// ErrNoTrust: Import before AddTrust.
	ErrNoTrust = errors.New("no root of trust is installed: install the vendor's root.json first (citadel update trust add)")
	// ErrTrustInstalled: AddTrust of a root other than the installed one.
	ErrTrustInstalled = errors.New("a root of trust is already installed; a new root arrives inside a bundle's root chain")
	// ErrBadRoot: AddTrust of something that is not a signed root.json.
	ErrBadRoot = errors.New("not a vendor root.json")
)

// Release is an imported release.
type Release struct {
	ClusterVersion string         `json:"clusterVersion"`
	Notes          string         `json:"notes,omitempty"`
	Imported       time.Time      `json:"imported"`
	Artifacts      []ArtifactInfo `json:"artifacts"`
}

// ArtifactInfo is an artifact of a release; [Catalog.Open] reads it by
// its SHA256.
type ArtifactInfo struct {
	Name       string      `json:"name"`
	Kind       update.Kind `json:"kind"`
	Version    string      `json:"version"`
	MachineSKU string      `json:"machineSku,omitempty"`
	Component  string      `json:"component,omitempty"` // firmware: the BMC's FirmwareInventory member it flashes
	Size       int64       `json:"size"`
	SHA256     string      `json:"sha256"`
}

// trust is the one document that Import moves forward with a
// compare-and-swap: what the operator installed and what was accepted
// since.
type trust struct {
	// Installed is the root.json the operator installed; AddTrust of it
	// again is a no-op.
	Installed []byte `json:"installed"`
	// Root is the newest trusted root.json: Installed, or a successor
	// that a bundle's root chain rotated to.
	Root []byte `json:"root"`
	// State is what was accepted last.
	State update.State `json:"state"`
}

var (
	trustDoc = store.NewCollection[trust]("updates/")
	releases = store.NewCollection[Release]("updates/releases/")
)

// trustName is the trust document's name in trustDoc: "updates/trust".
const trustName = "trust"

// maxAttempts bounds the retries of an Import that loses its
// compare-and-swap to concurrent ones.
const maxAttempts = 10

// Catalog is the catalog over a store and an artifact directory.
type Catalog struct {
	st    *store.Store
	files *blobs.Dir
}

// New returns the catalog whose artifacts live in dir (created when
// needed), and removes the partial files a crash left there.
func New(st *store.Store, dir string) *Catalog {
	return &Catalog{st: st, files: blobs.New(dir)}
}

// Dir is the artifact directory.
func (c *Catalog) Dir() string { return c.files.Path() }

// CreateTemp creates a partial file in the catalog's directory, for a
// bundle on its way in: on the same file system as the artifacts, and
// removed by New if a crash leaves it.
func (c *Catalog) CreateTemp(pattern string) (*os.File, error) {
	f, err := c.files.CreateTemp(pattern)
	if err != nil {
		return nil, fmt.Errorf("releases: %w", err)
	}
	return f, nil
}

// AddTrust installs root, the vendor's root.json, as the root of trust,
// and returns the version of the root trusted now. Installing the root
// that is installed again changes nothing; any other is refused with
// ErrTrustInstalled, since a new root only arrives signed by the one
// before it, in a bundle.
func (c *Catalog) AddTrust(ctx context.Context, root []byte) (int64, error) {
	version, err := update.ParseRoot(root)
	if err != nil {
		return 0, fmt.Errorf("releases: %w: %v", ErrBadRoot, err)
	}
	for {
		it, err := trustDoc.Get(ctx, c.st, trustName)
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, err := c.st.Txn(ctx, trustDoc.Create(trustName, trust{Installed: root, Root: root}))
			if errors.Is(err, store.ErrConflict) {
				continue // installed meanwhile: compare with that one
			}
			if err != nil {
				return 0, fmt.Errorf("releases: add trust: %w", err)
			}
			return version, nil
		case err != nil:
			return 0, fmt.Errorf("releases: add trust: %w", err)
		}
		t := it.Value
		if !sameFile(t.Installed, root) && !sameFile(t.Root, root) {
			return 0, fmt.Errorf("releases: %w", ErrTrustInstalled)
		}
		return update.ParseRoot(t.Root)
	}
}

// sameFile reports whether a and b are the same JSON file, but for
// surrounding white space (a newline added by an editor).
func sameFile(a, b []byte) bool { return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)) }

// Import verifies the bundle in r against the root of trust and the state
// last accepted, at now, copies its artifacts into the directory and
// records the release, the new state and the new root (after a rotation)
// in one transaction. A bundle that does not verify is refused with an
// *update.Error and changes nothing. Importing the bundle accepted last
// again only copies its artifacts.
func (c *Catalog) Import(ctx context.Context, r io.ReaderAt, now time.Time) (Release, error) {
	copied := map[string]bool{} // by sha256: placed by an earlier attempt
	for range maxAttempts {
		it, err := trustDoc.Get(ctx, c.st, trustName)
		if errors.Is(err, store.ErrNotFound) {
			return Release{}, fmt.Errorf("releases: import: %w", ErrNoTrust)
		}
		if err != nil {
			return Release{}, fmt.Errorf("releases: import: %w", err)
		}
		t := it.Value
		b, err := update.Verify(r, t.Root, t.State, now)
		if err != nil {
			return Release{}, fmt.Errorf("releases: import: %w", err)
		}
		for _, a := range b.Artifacts {
			if copied[a.SHA256] {
				continue
			}
			if err := c.place(a); err != nil {
				return Release{}, fmt.Errorf("releases: import %s: %w", b.Release.ClusterVersion, err)
			}
			copied[a.SHA256] = true
		}
		rel := Release{ClusterVersion: b.Release.ClusterVersion, Notes: b.Release.Notes, Imported: now.UTC(), Artifacts: infos(b.Artifacts)}

		var ops []store.Op
		old, err := releases.Get(ctx, c.st, rel.ClusterVersion)
		switch {
		case err == nil && b.State == t.State && sameRelease(old.Value, rel):
			// The bundle accepted last, again: the files are copied, the
			// store already says it all.
			return old.Value, nil
		case err == nil:
			// The same cluster version signed again (a newer bundle of
			// it): the record says what the newest holds.
			ops = append(ops, releases.Update(rel.ClusterVersion, rel, old.Revision))
		case errors.Is(err, store.ErrNotFound):
			ops = append(ops, releases.Create(rel.ClusterVersion, rel))
		default:
			return Release{}, fmt.Errorf("releases: import: %w", err)
		}
		next := trust{Installed: t.Installed, Root: b.Root, State: b.State}
		ops = append(ops, trustDoc.Update(trustName, next, it.Revision))
		if _, err := c.st.Txn(ctx, ops...); errors.Is(err, store.ErrConflict) {
			continue // another import moved the state: verify against it
		} else if err != nil {
			return Release{}, fmt.Errorf("releases: import %s: %w", rel.ClusterVersion, err)
		}
		return rel, nil
	}
	return Release{}, fmt.Errorf("releases: import: %d concurrent imports in a row moved the state first; try again", maxAttempts)
}

func infos(as []update.Artifact) []ArtifactInfo {
	out := make([]ArtifactInfo, len(as))
	for i, a := range as {
		out[i] = ArtifactInfo{Name: a.Name, Kind: a.Kind, Version: a.Version, MachineSKU: a.MachineSKU, Component: a.Component,
			Size: a.Size, SHA256: a.SHA256}
	}
	return out
}

func sameRelease(a, b Release) bool {
	return a.ClusterVersion == b.ClusterVersion && a.Notes == b.Notes && slices.Equal(a.Artifacts, b.Artifacts)
}

// place copies a verified artifact into the directory, unless a whole
// file of its digest is there; its digest is checked as it copies
// (Artifact.Open), and again, with its size, by the directory.
func (c *Catalog) place(a update.Artifact) error {
	if _, _, err := c.files.Put(a.Open(), blobs.Want{SHA256: a.SHA256, Size: a.Size}); err != nil {
		return fmt.Errorf("%s: %w", a.Name, err)
	}
	return nil
}

// Releases lists the imported releases, oldest cluster version first.
func (c *Catalog) Releases(ctx context.Context) ([]Release, error) {
	items, _, err := releases.List(ctx, c.st, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("releases: list: %w", err)
	}
	out := make([]Release, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	slices.SortFunc(out, func(a, b Release) int {
		return cmp.Or(update.CompareVersions(a.ClusterVersion, b.ClusterVersion), strings.Compare(a.ClusterVersion, b.ClusterVersion))
	})
	return out, nil
}

// Release reads the release of clusterVersion; store.ErrNotFound when
// none was imported.
func (c *Catalog) Release(ctx context.Context, clusterVersion string) (Release, error) {
	it, err := releases.Get(ctx, c.st, clusterVersion)
	if err != nil {
		return Release{}, fmt.Errorf("releases: release %q: %w", clusterVersion, err)
	}
	return it.Value, nil
}

// Open opens the artifact whose sha256 (64 lower-case hex digits) is
// sha. An error wrapping os.ErrNotExist means the file is not on this
// replica.
func (c *Catalog) Open(sha string) (*os.File, error) {
	f, err := c.files.Open(sha)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("releases: artifact %s is not on this replica: %w", sha, err)
	}
	if err != nil {
		return nil, fmt.Errorf("releases: open artifact: %w", err)
	}
	return f, nil
}

// Adopt stores content as the artifact whose sha256 is sha, on a replica
// that lacks its file: the release that names it says what content must
// be, and content of another digest or size is refused (an error
// wrapping blobs.ErrDigestMismatch) and leaves nothing behind. An error
// wrapping os.ErrNotExist means no imported release has that artifact.
// A whole file of sha already here is kept, and content not read.
func (c *Catalog) Adopt(ctx context.Context, sha string, content io.Reader) error {
	a, err := c.artifact(ctx, sha)
	if err != nil {
		return err
	}
	if _, _, err := c.files.Put(content, blobs.Want{SHA256: a.SHA256, Size: a.Size}); err != nil {
		return fmt.Errorf("releases: adopt %s (%s): %w", sha, a.Name, err)
	}
	return nil
}

// artifact finds the artifact whose sha256 is sha among the releases.
func (c *Catalog) artifact(ctx context.Context, sha string) (ArtifactInfo, error) {
	rs, err := c.Releases(ctx)
	if err != nil {
		return ArtifactInfo{}, err
	}
	for _, r := range rs {
		for _, a := range r.Artifacts {
			if a.SHA256 == sha {
				return a, nil
			}
		}
	}
	return ArtifactInfo{}, fmt.Errorf("releases: artifact %q: no imported release has it: %w", sha, os.ErrNotExist)
}
