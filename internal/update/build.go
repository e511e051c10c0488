package update

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Default lifetimes of the metadata Build signs, counted from
// BuildOptions.Now. The timestamp is short-lived so that a bundle cannot be
// held back and imported much later; the operator's clock must be right.
const (
	DefaultTimestampLifetime = 7 * 24 * time.Hour
	DefaultSnapshotLifetime  = 30 * 24 * time.Hour
	DefaultTargetsLifetime   = 365 * 24 * time.Hour
)

// NewRoot returns a vendor's first root.json (version 1), which delegates
// each role to keys and is signed by the root keys. An operator installs
// it once, out of band; it and its successors verify every bundle.
func NewRoot(keys Keys, expires time.Time) ([]byte, error) {
	return newRoot(1, keys, nil, expires)
}

// RotateRoot returns the root.json that follows prev: one version up,
// delegating each role to next, signed by the threshold of prev's root keys
// (prevRoot) and by next's root keys, so that an operator who trusts prev
// moves to it when a bundle ships it. Use it to replace lost or retired
// keys of any role.
func RotateRoot(prev []byte, prevRoot RoleKeys, next Keys, expires time.Time) ([]byte, error) {
	p, err := metadata.Root().FromBytes(prev)
	if err != nil {
		return nil, fmt.Errorf("update: previous root: %w", err)
	}
	if err := prevRoot.validate(); err != nil {
		return nil, fmt.Errorf("update: previous root keys: %w", err)
	}
	return newRoot(p.Signed.Version+1, next, prevRoot.Keys, expires)
}

func newRoot(version int64, keys Keys, prevRootKeys []ed25519.PrivateKey, expires time.Time) ([]byte, error) {
	if err := keys.validate(); err != nil {
		return nil, err
	}
	if expires.IsZero() {
		return nil, errors.New("update: a root needs an expiry time")
	}
	root := metadata.Root(tufTime(expires))
	root.Signed.Version = version
	root.Signed.ConsistentSnapshot = false // a bundle names targets by path, not by hash
	for _, r := range keys.roles() {
		for _, k := range r.keys.Keys {
			key, err := metadata.KeyFromPublicKey(k.Public())
			if err != nil {
				return nil, err
			}
			if err := root.Signed.AddKey(key, r.name); err != nil {
				return nil, err
			}
		}
		root.Signed.Roles[r.name].Threshold = r.keys.Threshold
	}
	if err := sign(root, prevRootKeys); err != nil {
		return nil, err
	}
	if err := sign(root, keys.Root.Keys); err != nil {
		return nil, err
	}
	return root.ToBytes(true)
}

// tufTime is t as TUF writes expiry times: UTC, whole seconds.
func tufTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// BuildOptions are what a bundle is made of.
type BuildOptions struct {
	// Keys sign targets.json, snapshot.json and timestamp.json. They must
	// be the keys the newest of Roots delegates to; Build does not check:
	// verify the bundle with Verify before shipping it.
	Keys Keys
	// Roots is the vendor's root chain, oldest first, each root.json
	// exactly as signed: from the oldest root an operator may still trust
	// (usually 1) to the newest. Versions must be consecutive.
	Roots [][]byte
	// ClusterVersion is the release's Citadel version, a semantic version.
	ClusterVersion string
	Notes          string
	Targets        []Target
	// Version is the version of targets.json, snapshot.json and
	// timestamp.json, at least 1. It must grow from bundle to bundle: an
	// operator refuses a bundle below the one last imported.
	Version int64
	// Now is the signing time (default: time.Now()); the archive's
	// modification times and the default expiry times count from it.
	Now time.Time
	// The metadata's expiry times; zero means Now plus the default lifetime.
	TimestampExpires, SnapshotExpires, TargetsExpires time.Time
}

// Target is one artifact to put in a bundle.
type Target struct {
	Name       string // path under targets/, e.g. "agent-linux-amd64" or "firmware/r760/bios-2.19.1.bin"
	Kind       Kind   // not KindRelease: Build writes release.json
	Version    string // the artifact's own version
	MachineSKU string // for firmware, and only firmware
	Component  string // for firmware, and only firmware: the BMC's FirmwareInventory member it flashes, e.g. "BIOS"
	Size       int64  // the length of Content
	Content    io.Reader
}

// custom is a target's TUF custom metadata.
type custom struct {
	Kind       Kind   `json:"kind"`
	Version    string `json:"version"`
	MachineSKU string `json:"machineSku,omitempty"`
	Component  string `json:"component,omitempty"`
}

// validate checks custom metadata as Verify does: a firmware target of a
// bundle built before components existed has none, and still verifies.
func (c custom) validate() error {
	switch {
	case c.Kind != KindRelease && !c.Kind.artifact():
		return fmt.Errorf("kind %q is not one of nodeImage, agent, firmware, switchImage, policyPack", c.Kind)
	case c.Version == "":
		return errors.New("no version")
	case c.Kind == KindFirmware && c.MachineSKU == "":
		return errors.New("firmware without a machineSku")
	case c.Kind != KindFirmware && c.MachineSKU != "":
		return fmt.Errorf("a machineSku on a %s target (only firmware has one)", c.Kind)
	case c.Kind != KindFirmware && c.Component != "":
		return fmt.Errorf("a component on a target of kind %s (only firmware has one)", c.Kind)
	}
	return nil
}

// validateNew checks the custom metadata of a target Build writes: new
// firmware names its component.
func (c custom) validateNew() error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.Kind == KindFirmware && c.Component == "" {
		return errors.New("firmware without a component (the firmware inventory member it flashes, e.g. BIOS)")
	}
	return nil
}

// Build writes a bundle to w (see the package documentation for the
// format). It reads each target's Content once.
func Build(w io.Writer, opts BuildOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = tufTime(now)
	expires := func(t time.Time, d time.Duration) time.Time {
		if t.IsZero() {
			return now.Add(d)
		}
		return tufTime(t)
	}

	tw := tar.NewWriter(w)
	write := func(name string, size int64, r io.Reader) ([]byte, error) {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: now}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("update: %s: %w", name, err)
		}
		h := sha256.New()
		n, err := io.Copy(tw, io.TeeReader(io.LimitReader(r, size), h))
		if err != nil {
			return nil, fmt.Errorf("update: %s: %w", name, err)
		}
		if n != size {
			return nil, fmt.Errorf("update: %s: the content has %d bytes, its Size says %d", name, n, size)
		}
		if extra, _ := r.Read(make([]byte, 1)); extra != 0 {
			return nil, fmt.Errorf("update: %s: the content is longer than its Size, %d bytes", name, size)
		}
		return h.Sum(nil), nil
	}

	targets := metadata.Targets(expires(opts.TargetsExpires, DefaultTargetsLifetime))
	targets.Signed.Version = opts.Version
	add := func(t Target) error {
		sum, err := write("targets/"+t.Name, t.Size, t.Content)
		if err != nil {
			return err
		}
		c, err := json.Marshal(custom{Kind: t.Kind, Version: t.Version, MachineSKU: t.MachineSKU, Component: t.Component})
		if err != nil {
			return err
		}
		raw := json.RawMessage(c)
		targets.Signed.Targets[t.Name] = &metadata.TargetFiles{
			Length: t.Size, Hashes: metadata.Hashes{"sha256": sum}, Custom: &raw,
		}
		return nil
	}
	release, err := json.Marshal(Release{ClusterVersion: opts.ClusterVersion, Notes: opts.Notes})
	if err != nil {
		return err
	}
	if err := add(Target{Name: releaseName, Kind: KindRelease, Version: opts.ClusterVersion,
		Size: int64(len(release)), Content: bytes.NewReader(release)}); err != nil {
		return err
	}
	for _, t := range opts.Targets {
		if err := add(t); err != nil {
			return err
		}
	}
	if err := sign(targets, opts.Keys.Targets.Keys); err != nil {
		return err
	}
	targetsJSON, err := targets.ToBytes(true)
	if err != nil {
		return err
	}

	snapshot := metadata.Snapshot(expires(opts.SnapshotExpires, DefaultSnapshotLifetime))
	snapshot.Signed.Version = opts.Version
	snapshot.Signed.Meta["targets.json"] = metaFile(opts.Version, targetsJSON)
	if err := sign(snapshot, opts.Keys.Snapshot.Keys); err != nil {
		return err
	}
	snapshotJSON, err := snapshot.ToBytes(true)
	if err != nil {
		return err
	}

	timestamp := metadata.Timestamp(expires(opts.TimestampExpires, DefaultTimestampLifetime))
	timestamp.Signed.Version = opts.Version
	timestamp.Signed.Meta["snapshot.json"] = metaFile(opts.Version, snapshotJSON)
	if err := sign(timestamp, opts.Keys.Timestamp.Keys); err != nil {
		return err
	}
	timestampJSON, err := timestamp.ToBytes(true)
	if err != nil {
		return err
	}

	for _, r := range opts.Roots {
		v, _ := rootVersion(r) // validate parsed it
		if _, err := write(fmt.Sprintf("metadata/%d.root.json", v), int64(len(r)), bytes.NewReader(r)); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"metadata/targets.json", targetsJSON}, {"metadata/snapshot.json", snapshotJSON}, {"metadata/timestamp.json", timestampJSON}} {
		if _, err := write(f.name, int64(len(f.data)), bytes.NewReader(f.data)); err != nil {
			return err
		}
	}
	return tw.Close()
}

func metaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	return &metadata.MetaFiles{Version: version, Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

func rootVersion(data []byte) (int64, error) {
	r, err := metadata.Root().FromBytes(data)
	if err != nil {
		return 0, err
	}
	return r.Signed.Version, nil
}

func (opts *BuildOptions) validate() error {
	if err := opts.Keys.validate(); err != nil {
		return err
	}
	if opts.Version < 1 {
		return fmt.Errorf("update: metadata version %d: it starts at 1", opts.Version)
	}
	if _, err := parseSemver(opts.ClusterVersion); err != nil {
		return fmt.Errorf("update: cluster version: %w", err)
	}
	if len(opts.Roots) == 0 {
		return errors.New("update: a bundle needs its root chain, at least the newest root.json")
	}
	var prev int64
	for i, r := range opts.Roots {
		v, err := rootVersion(r)
		if err != nil {
			return fmt.Errorf("update: root %d: %w", i, err)
		}
		if i > 0 && v != prev+1 {
			return fmt.Errorf("update: root chain: version %d follows version %d", v, prev)
		}
		prev = v
	}
	seen := map[string]bool{releaseName: true}
	for _, t := range opts.Targets {
		if err := checkName(t.Name); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if seen[t.Name] {
			return fmt.Errorf("update: target %q: the name is taken", t.Name)
		}
		seen[t.Name] = true
		if t.Kind == KindRelease {
			return fmt.Errorf("update: target %q: Build writes the release target itself", t.Name)
		}
		if err := (custom{Kind: t.Kind, Version: t.Version, MachineSKU: t.MachineSKU, Component: t.Component}).validateNew(); err != nil {
			return fmt.Errorf("update: target %q: %w", t.Name, err)
		}
		if t.Size < 0 || t.Content == nil {
			return fmt.Errorf("update: target %q: no content", t.Name)
		}
	}
	return nil
}
