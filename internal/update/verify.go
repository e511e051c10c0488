package update

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Limits on what Verify reads into memory; target files are only streamed.
const (
	maxRoots        = 256
	maxRootSize     = 1 << 20
	maxMetadataSize = 16 << 20 // timestamp.json, snapshot.json, targets.json
	maxReleaseSize  = 1 << 20
)

// The hashes a target may have, and their sizes.
var (
	hashes    = map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New}
	hashSizes = map[string]int{"sha256": sha256.Size, "sha512": sha512.Size}
)

var rootFile = regexp.MustCompile(`^metadata/([1-9][0-9]{0,17})\.root\.json$`)

// Verify checks the bundle in r, offline, as TUF's client workflow does:
// it walks the bundle's root chain from trustedRoot (the root.json the
// operator trusts), then checks timestamp.json, snapshot.json and
// targets.json (signatures and thresholds, expiry at now, versions, the
// lengths and hashes of snapshot.json and targets.json), then each target
// file's length and hashes. It refuses a bundle that goes back from last:
// a root or metadata version, or the release's cluster version, below
// last's. A bundle equal to last, the same bundle again, passes.
//
// Every problem with the bundle is an *Error with its [Reason]; other
// errors are about trustedRoot, last or reading r.
func Verify(r io.ReaderAt, trustedRoot []byte, last State, now time.Time) (*Bundle, error) {
	if now.IsZero() {
		return nil, errors.New("update: Verify needs the time now, to check expiry")
	}
	trusted, err := parseRoot(trustedRoot)
	if err != nil {
		return nil, fmt.Errorf("update: the trusted root: %w", err)
	}
	var installed *semver
	if last.ClusterVersion != "" {
		v, err := parseSemver(last.ClusterVersion)
		if err != nil {
			return nil, fmt.Errorf("update: the installed cluster version: %w", err)
		}
		installed = &v
	}
	a, err := readArchive(r)
	if err != nil {
		return nil, err
	}
	v := &verification{a: a, last: last, installed: installed}
	if err := v.walkRoots(trustedRoot, trusted, now); err != nil {
		return nil, err
	}
	if err := v.checkMetadata(); err != nil {
		return nil, err
	}
	return v.checkTargets()
}

// verification is the state of one Verify.
type verification struct {
	a         *archive
	last      State
	installed *semver
	tm        *trustedmetadata.TrustedMetadata
	root      []byte // the newest trusted root.json
}

// entry is a target file's place in the archive.
type entry struct{ offset, size int64 }

// archive is what a bundle's tar archive holds: the metadata, read, and
// where each target file is.
type archive struct {
	r       io.ReaderAt
	roots   map[int64][]byte
	meta    map[string][]byte // "timestamp.json" → its bytes
	entries map[string]entry  // target name → its place
}

func readArchive(r io.ReaderAt) (*archive, error) {
	a := &archive{r: r, roots: map[int64][]byte{}, meta: map[string][]byte{}, entries: map[string]entry{}}
	sr := io.NewSectionReader(r, 0, math.MaxInt64)
	tr := tar.NewReader(sr)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return a, nil
		}
		if err != nil {
			return nil, fail(Malformed, "", err, "the bundle is not a whole tar archive: %v", err)
		}
		name := hdr.Name
		if seen[name] {
			return nil, fail(Malformed, name, nil, "%s is in the bundle twice", name)
		}
		seen[name] = true
		if hdr.Typeflag == tar.TypeDir {
			dir := strings.TrimSuffix(name, "/")
			if t, ok := strings.CutPrefix(dir, "targets/"); dir == "metadata" || dir == "targets" || (ok && checkName(t) == nil) {
				continue
			}
			return nil, fail(Malformed, name, nil, "%s: unexpected directory in the bundle", name)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fail(Malformed, name, nil, "%s: not a regular file (tar type %q); a bundle has only files", name, hdr.Typeflag)
		}
		read := func(limit int64) ([]byte, error) {
			if hdr.Size > limit {
				return nil, fail(Malformed, name, nil, "%s has %d bytes, more than the %d it may have", name, hdr.Size, limit)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fail(Malformed, name, err, "the bundle is not a whole tar archive: %s: %v", name, err)
			}
			return data, nil
		}
		switch m := rootFile.FindStringSubmatch(name); {
		case name == "metadata/timestamp.json" || name == "metadata/snapshot.json" || name == "metadata/targets.json":
			if a.meta[strings.TrimPrefix(name, "metadata/")], err = read(maxMetadataSize); err != nil {
				return nil, err
			}
		case m != nil:
			if len(a.roots) == maxRoots {
				return nil, fail(Malformed, name, nil, "%s: a bundle has at most %d roots", name, maxRoots)
			}
			v, _ := strconv.ParseInt(m[1], 10, 64) // at most 18 digits
			if a.roots[v], err = read(maxRootSize); err != nil {
				return nil, err
			}
		case strings.HasPrefix(name, "targets/"):
			if err := checkName(strings.TrimPrefix(name, "targets/")); err != nil {
				return nil, fail(Malformed, name, err, "%s: %v", name, err)
			}
			offset, err := sr.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, fail(Malformed, name, err, "%s: %v", name, err)
			}
			a.entries[strings.TrimPrefix(name, "targets/")] = entry{offset, hdr.Size}
		case strings.HasPrefix(name, "/") || slices.Contains(strings.Split(name, "/"), ".."):
			return nil, fail(Malformed, name, nil, "%s: a name in the bundle may not be absolute or contain \"..\" (path traversal)", name)
		default:
			return nil, fail(Malformed, name, nil, "%s: unexpected file in the bundle (only metadata/ and targets/ belong in it)", name)
		}
	}
}

// ParseRoot checks that data is a root.json an operator can install as
// the root of trust (NewRoot's output): well formed, and signed by the
// threshold of its own root keys. It returns the root's version. It does
// not check expiry: Verify does, with every bundle.
func ParseRoot(data []byte) (version int64, err error) {
	root, err := parseRoot(data)
	if err != nil {
		return 0, fmt.Errorf("update: root.json: %w", err)
	}
	if _, err := trustedmetadata.New(data); err != nil {
		return 0, fmt.Errorf("update: root.json is not signed by the threshold of its own root keys: %w", err)
	}
	return root.Signed.Version, nil
}

// parseRoot parses a root.json and checks what go-tuf takes for granted.
func parseRoot(data []byte) (*metadata.Metadata[metadata.RootType], error) {
	root, err := metadata.Root().FromBytes(data)
	if err != nil {
		return nil, err
	}
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		if root.Signed.Roles[role] == nil {
			return nil, fmt.Errorf("no %s role", role)
		}
	}
	for id, k := range root.Signed.Keys {
		if k == nil {
			return nil, fmt.Errorf("key %s is null", id)
		}
		if pub, err := hex.DecodeString(k.Value.PublicKey); k.Type == metadata.KeyTypeEd25519 && (err != nil || len(pub) != ed25519.PublicKeySize) {
			return nil, fmt.Errorf("key %s is not an ed25519 public key", id)
		}
	}
	return root, nil
}

// sameRoot reports whether a and b sign the same content.
func sameRoot(a, b *metadata.Metadata[metadata.RootType]) bool {
	x, err1 := json.Marshal(a.Signed)
	y, err2 := json.Marshal(b.Signed)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// walkRoots walks the bundle's root chain from the trusted root to its newest.
func (v *verification) walkRoots(trustedRoot []byte, trusted *metadata.Metadata[metadata.RootType], now time.Time) error {
	if len(v.a.roots) == 0 {
		return fail(Malformed, "", nil, "the bundle has no metadata/N.root.json")
	}
	versions := slices.Sorted(maps.Keys(v.a.roots))
	for _, ver := range versions {
		file := rootName(ver)
		root, err := parseRoot(v.a.roots[ver])
		if err != nil {
			return fail(Malformed, file, err, "%s: %v", file, err)
		}
		if root.Signed.Version != ver {
			return fail(Malformed, file, nil, "%s holds root version %d", file, root.Signed.Version)
		}
		if ver == trusted.Signed.Version && !sameRoot(root, trusted) {
			return fail(UnknownRoot, file, nil, "%s is not the trusted root version %d: the bundle is signed for another root of trust", file, ver)
		}
	}
	newest := versions[len(versions)-1]
	if newest < trusted.Signed.Version {
		return fail(Rollback, rootName(newest), nil, "rollback: the bundle's newest root is version %d, older than the trusted version %d", newest, trusted.Signed.Version)
	}
	if err := v.rollback(rootName(newest), newest, v.last.Root); err != nil {
		return err
	}

	tm, err := trustedmetadata.New(trustedRoot)
	if err != nil {
		return fmt.Errorf("update: the trusted root: %w", err)
	}
	tm.RefTime = now.UTC()
	v.tm, v.root = tm, trustedRoot
	for ver := trusted.Signed.Version + 1; ver <= newest; ver++ {
		file := rootName(ver)
		data, ok := v.a.roots[ver]
		if !ok {
			return fail(UnknownRoot, file, nil, "%s is missing: the root chain from the trusted version %d to version %d does not link", file, trusted.Signed.Version, newest)
		}
		prev := tm.Root.Signed.Version
		if _, err := tm.UpdateRoot(data); err != nil {
			if _, ok := errors.AsType[*metadata.ErrUnsignedMetadata](err); ok {
				return fail(UnknownRoot, file, err, "%s is not signed by the root keys of root version %d and by its own: the root chain does not link to the trusted root", file, prev)
			}
			return fail(Malformed, file, err, "%s: %v", file, err)
		}
		v.root = data
	}
	return nil
}

func rootName(version int64) string { return fmt.Sprintf("metadata/%d.root.json", version) }

// checkMetadata checks timestamp.json, snapshot.json and targets.json with
// go-tuf's trusted-metadata state machine.
func (v *verification) checkMetadata() error {
	tm := v.tm
	data, err := v.file("timestamp.json")
	if err != nil {
		return err
	}
	_, err = tm.UpdateTimestamp(data)
	if tm.Timestamp != nil {
		if err := v.rollback("metadata/timestamp.json", tm.Timestamp.Signed.Version, v.last.Timestamp); err != nil {
			return err
		}
	}
	if _, expired := errors.AsType[*metadata.ErrExpiredMetadata](err); expired && tm.Timestamp == nil {
		file := rootName(tm.Root.Signed.Version)
		return fail(Expired, file, err, "%s expired at %s", file, tm.Root.Signed.Expires.Format(time.RFC3339))
	}
	if err != nil {
		return v.tufError("metadata/timestamp.json", metadata.TIMESTAMP, err, func() time.Time { return tm.Timestamp.Signed.Expires })
	}
	if err := hashed("metadata/timestamp.json", tm.Timestamp.Signed.Meta, "snapshot.json"); err != nil {
		return err
	}

	if data, err = v.file("snapshot.json"); err != nil {
		return err
	}
	_, err = tm.UpdateSnapshot(data, false)
	if tm.Snapshot != nil {
		if err := v.rollback("metadata/snapshot.json", tm.Snapshot.Signed.Version, v.last.Snapshot); err != nil {
			return err
		}
	}
	if err != nil {
		return v.tufError("metadata/snapshot.json", metadata.SNAPSHOT, err, func() time.Time { return tm.Snapshot.Signed.Expires })
	}
	if err := hashed("metadata/snapshot.json", tm.Snapshot.Signed.Meta, "targets.json"); err != nil {
		return err
	}
	meta := tm.Snapshot.Signed.Meta["targets.json"]

	// snapshot.json signs the version of targets.json: a rollback shows
	// before targets.json is read.
	if err := v.rollback("metadata/targets.json", meta.Version, v.last.Targets); err != nil {
		return err
	}
	if data, err = v.file("targets.json"); err != nil {
		return err
	}
	// go-tuf checks the hash too, but after nullTargets looks at the bytes.
	if err := meta.VerifyLengthHashes(data); err != nil {
		return v.tufError("metadata/targets.json", metadata.TARGETS, err, nil)
	}
	if err := nullTargets(data); err != nil {
		return err
	}
	targets, err := tm.UpdateTargets(data)
	if err != nil {
		return v.tufError("metadata/targets.json", metadata.TARGETS, err, func() time.Time {
			t, _ := metadata.Targets().FromBytes(data) // UpdateTargets parsed it
			return t.Signed.Expires
		})
	}
	if targets.Signed.Delegations != nil {
		return fail(Malformed, "metadata/targets.json", nil, "metadata/targets.json delegates: a bundle has no delegated targets")
	}
	return nil
}

// hashed checks that meta, of file, gives the sha256 of name: go-tuf
// checks a hash when there is one, and then parses only signed bytes.
func hashed(file string, meta map[string]*metadata.MetaFiles, name string) error {
	if m := meta[name]; m == nil || len(m.Hashes["sha256"]) != sha256.Size {
		return fail(Malformed, file, nil, "%s does not give the sha256 of %s", file, name)
	}
	return nil
}

func (v *verification) file(name string) ([]byte, error) {
	data, ok := v.a.meta[name]
	if !ok {
		return nil, fail(Malformed, "metadata/"+name, nil, "metadata/%s is missing from the bundle", name)
	}
	return data, nil
}

func (v *verification) rollback(file string, version, installed int64) error {
	if version < installed {
		return fail(Rollback, file, nil, "rollback: %s is version %d, older than the installed version %d", file, version, installed)
	}
	return nil
}

// tufError turns what go-tuf found wrong with file, of role, into an *Error.
// expires tells when the metadata expires; it is called on expiry errors
// only, when the metadata was parsed.
func (v *verification) tufError(file, role string, err error, expires func() time.Time) *Error {
	by := map[string]string{metadata.SNAPSHOT: "timestamp.json", metadata.TARGETS: "snapshot.json"}[role]
	if _, ok := errors.AsType[*metadata.ErrUnsignedMetadata](err); ok {
		r := v.tm.Root.Signed
		return fail(BadSignature, file, err, "%s is not signed by %d of the %s keys of root version %d", file, r.Roles[role].Threshold, role, r.Version)
	}
	if _, ok := errors.AsType[*metadata.ErrLengthOrHashMismatch](err); ok {
		return fail(BadSignature, file, err, "%s: the length or sha256 does not match %s (the file was changed after signing)", file, by)
	}
	if _, ok := errors.AsType[*metadata.ErrBadVersionNumber](err); ok {
		return fail(Malformed, file, err, "%s: its version is not the one %s gives it (%v)", file, by, err)
	}
	if _, ok := errors.AsType[*metadata.ErrExpiredMetadata](err); ok {
		return fail(Expired, file, err, "%s expired at %s", file, expires().Format(time.RFC3339))
	}
	return fail(Malformed, file, err, "%s: %v", file, err)
}

// nullTargets refuses a targets.json with a null target, which go-tuf's
// parser does not survive.
func nullTargets(data []byte) error {
	var probe struct {
		Signed struct {
			Targets map[string]json.RawMessage `json:"targets"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return fail(Malformed, "metadata/targets.json", err, "metadata/targets.json: %v", err)
	}
	for name, raw := range probe.Signed.Targets {
		if string(bytes.TrimSpace(raw)) == "null" {
			return fail(Malformed, "metadata/targets.json", nil, "metadata/targets.json: target %q is null", name)
		}
	}
	return nil
}

// checkTargets checks the target files against the verified targets.json.
func (v *verification) checkTargets() (*Bundle, error) {
	tm := v.tm
	listed := tm.Targets[metadata.TARGETS].Signed.Targets
	for _, name := range slices.Sorted(maps.Keys(v.a.entries)) {
		if listed[name] == nil {
			return nil, fail(Malformed, "targets/"+name, nil, "targets/%s is not listed in targets.json", name)
		}
	}
	names := slices.Sorted(maps.Keys(listed))
	b := &Bundle{
		State: State{Root: tm.Root.Signed.Version, Timestamp: tm.Timestamp.Signed.Version,
			Snapshot: tm.Snapshot.Signed.Version, Targets: tm.Targets[metadata.TARGETS].Signed.Version},
		Root: slices.Clone(v.root),
	}
	customs := map[string]custom{}
	for _, name := range names {
		tf := listed[name]
		c, err := targetCustom(name, tf)
		if err != nil {
			return nil, err
		}
		customs[name] = c
		e, ok := v.a.entries[name]
		if !ok {
			return nil, fail(TargetMismatch, "targets/"+name, nil, "targets/%s is listed in targets.json but missing from the bundle", name)
		}
		if e.size != tf.Length {
			return nil, fail(TargetMismatch, "targets/"+name, nil, "targets/%s has %d bytes, targets.json says %d (the file was changed after signing)", name, e.size, tf.Length)
		}
	}

	rel, ok := listed[releaseName]
	if !ok {
		return nil, fail(Malformed, "metadata/targets.json", nil, "metadata/targets.json has no %s target", releaseName)
	}
	if err := v.release(rel, customs[releaseName], &b.Release); err != nil {
		return nil, err
	}
	b.State.ClusterVersion = b.Release.ClusterVersion

	buf := make([]byte, 1<<20)
	for _, name := range names {
		if name == releaseName {
			continue
		}
		if err := v.hash(name, listed[name], buf); err != nil {
			return nil, err
		}
		c, e := customs[name], v.a.entries[name]
		b.Artifacts = append(b.Artifacts, Artifact{Name: name, Kind: c.Kind, Version: c.Version, MachineSKU: c.MachineSKU,
			Component: c.Component, Size: e.size, SHA256: hex.EncodeToString(listed[name].Hashes["sha256"]), bundle: v.a.r, offset: e.offset})
	}
	return b, nil
}

// targetCustom checks a target's name, hashes and custom metadata.
func targetCustom(name string, tf *metadata.TargetFiles) (custom, error) {
	const file = "metadata/targets.json"
	var c custom
	if err := checkName(name); err != nil {
		return c, fail(Malformed, file, err, "%s: %v", file, err)
	}
	for alg, sum := range tf.Hashes {
		if n, ok := hashSizes[alg]; !ok || len(sum) != n {
			return c, fail(Malformed, file, nil, "%s: target %q: hash %q is not a sha256 or sha512 digest", file, name, alg)
		}
	}
	if tf.Hashes["sha256"] == nil {
		return c, fail(Malformed, file, nil, "%s: target %q has no sha256", file, name)
	}
	if tf.Custom == nil {
		return c, fail(Malformed, file, nil, "%s: target %q has no custom kind and version", file, name)
	}
	if err := json.Unmarshal(*tf.Custom, &c); err != nil {
		return c, fail(Malformed, file, err, "%s: target %q: custom: %v", file, name, err)
	}
	if err := c.validate(); err != nil {
		return c, fail(Malformed, file, err, "%s: target %q: %v", file, name, err)
	}
	if (c.Kind == KindRelease) != (name == releaseName) {
		return c, fail(Malformed, file, nil, "%s: target %q: only %s is of kind %s", file, name, releaseName, KindRelease)
	}
	return c, nil
}

// release reads and checks release.json into rel.
func (v *verification) release(tf *metadata.TargetFiles, c custom, rel *Release) error {
	const file = "targets/" + releaseName
	e := v.a.entries[releaseName]
	if e.size > maxReleaseSize {
		return fail(Malformed, file, nil, "%s has %d bytes, more than the %d it may have", file, e.size, maxReleaseSize)
	}
	data := make([]byte, e.size)
	if n, err := v.a.r.ReadAt(data, e.offset); n < len(data) {
		return fmt.Errorf("update: read %s: %w", file, err)
	}
	if err := tf.VerifyLengthHashes(data); err != nil {
		return fail(TargetMismatch, file, err, "%s: the sha256 does not match targets.json (the file was changed after signing)", file)
	}
	if err := json.Unmarshal(data, rel); err != nil {
		return fail(Malformed, file, err, "%s: %v", file, err)
	}
	got, err := parseSemver(rel.ClusterVersion)
	if err != nil {
		return fail(Malformed, file, err, "%s: clusterVersion: %v", file, err)
	}
	if rel.ClusterVersion != c.Version {
		return fail(Malformed, file, nil, "%s: clusterVersion %s is not the version %s that targets.json gives it", file, rel.ClusterVersion, c.Version)
	}
	if v.installed != nil && got.compare(*v.installed) < 0 {
		return fail(Rollback, file, nil, "rollback: bundle release %s is older than the installed %s", rel.ClusterVersion, v.last.ClusterVersion)
	}
	return nil
}

// hash checks a target file's hashes, reading it once.
func (v *verification) hash(name string, tf *metadata.TargetFiles, buf []byte) error {
	file := "targets/" + name
	algs := slices.Sorted(maps.Keys(tf.Hashes))
	hs := make([]hash.Hash, len(algs))
	ws := make([]io.Writer, len(algs))
	for i, alg := range algs {
		hs[i] = hashes[alg]()
		ws[i] = hs[i]
	}
	e := v.a.entries[name]
	n, err := io.CopyBuffer(io.MultiWriter(ws...), io.NewSectionReader(v.a.r, e.offset, e.size), buf)
	if err != nil {
		return fmt.Errorf("update: read %s: %w", file, err)
	}
	if n != e.size {
		return fail(TargetMismatch, file, nil, "%s: the bundle ends %d bytes into it, targets.json says %d", file, n, e.size)
	}
	for i, alg := range algs {
		if !bytes.Equal(hs[i].Sum(nil), tf.Hashes[alg]) {
			return fail(TargetMismatch, file, nil, "%s: %s does not match targets.json (the file was changed after signing)", file, alg)
		}
	}
	return nil
}
