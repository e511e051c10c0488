package update

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strings"
)

// Kind is what a target is.
type Kind string

// The kinds of artifact a release carries, and of its release.json.
const (
	KindNodeImage   Kind = "nodeImage"
	KindAgent       Kind = "agent"
	KindFirmware    Kind = "firmware" // for one machine SKU
	KindSwitchImage Kind = "switchImage"
	KindPolicyPack  Kind = "policyPack"
	KindRelease     Kind = "release" // release.json only
)

func (k Kind) artifact() bool {
	switch k {
	case KindNodeImage, KindAgent, KindFirmware, KindSwitchImage, KindPolicyPack:
		return true
	}
	return false
}

// releaseName is the target that carries the [Release].
const releaseName = "release.json"

// Release is a bundle's release.json.
type Release struct {
	ClusterVersion string `json:"clusterVersion"` // semantic version, e.g. "4.2.0"
	Notes          string `json:"notes,omitempty"`
}

// State is what an operator last accepted: the versions of the trusted
// root and of the bundle's metadata, and the cluster version. Verify
// refuses a bundle below it (a rollback), so store [Bundle.State] after
// each accepted import and pass it to the next Verify. The zero State
// accepts any bundle.
type State struct {
	Root           int64  `json:"root"`
	Timestamp      int64  `json:"timestamp"`
	Snapshot       int64  `json:"snapshot"`
	Targets        int64  `json:"targets"`
	ClusterVersion string `json:"clusterVersion,omitempty"`
}

// Bundle is a verified bundle.
type Bundle struct {
	State     State      // to store as the last accepted state
	Root      []byte     // the newest trusted root.json: store it as the trust
	Release   Release    // from release.json
	Artifacts []Artifact // sorted by name; release.json is not one of them
}

// Artifact is a verified target of a bundle.
type Artifact struct {
	Name       string // under targets/ in the bundle
	Kind       Kind
	Version    string
	MachineSKU string // firmware only
	Component  string // firmware only; "" in bundles built before components existed
	Size       int64
	SHA256     string // hex

	bundle io.ReaderAt
	offset int64
}

// Open reads the artifact's bytes from the bundle it was verified in. The
// bundle must not change meanwhile: the reader hashes what it reads and,
// instead of io.EOF, returns a targetMismatch *Error if the bytes are not
// those that Verify checked, so use them only after a read to io.EOF.
func (a Artifact) Open() io.Reader {
	sum, err := hex.DecodeString(a.SHA256)
	if a.bundle == nil || err != nil {
		return errReader{errors.New("update: the artifact is not from a verified bundle")}
	}
	return &checkedReader{r: io.NewSectionReader(a.bundle, a.offset, a.Size), h: sha256.New(), want: sum, name: a.Name}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// checkedReader checks at EOF that what it read has the sha256 want.
type checkedReader struct {
	r    io.Reader
	h    hash.Hash
	want []byte
	name string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF && !bytes.Equal(c.h.Sum(nil), c.want) {
		err = &Error{Reason: TargetMismatch, File: "targets/" + c.name,
			Msg: fmt.Sprintf("targets/%s: sha256 does not match targets.json (the bundle changed after it was verified)", c.name)}
	}
	return n, err
}

// Reason is why Verify refused a bundle, for programs to act on.
type Reason string

// The reasons.
const (
	// UnknownRoot: the bundle's root chain does not link to the trusted
	// root (another vendor's bundle, or a root not signed by its
	// predecessor).
	UnknownRoot Reason = "unknownRoot"
	// BadSignature: metadata is not signed by the threshold of its role's
	// keys in the trusted root, or was changed after signing.
	BadSignature Reason = "badSignature"
	// Expired: the trusted root or a role's metadata has expired.
	Expired Reason = "expired"
	// Rollback: the bundle is older than the trusted root or than the
	// State the operator last accepted.
	Rollback Reason = "rollback"
	// TargetMismatch: a target file is missing or is not the length or
	// hash that targets.json signs.
	TargetMismatch Reason = "targetMismatch"
	// Malformed: the bundle is not a well-formed bundle: not a tar
	// archive, a file missing or unexpected, a bad name, bad JSON.
	Malformed Reason = "malformed"
)

// Error is why a bundle was refused. Verify returns one for every problem
// with the bundle.
type Error struct {
	Reason Reason
	File   string // the file in the bundle at fault, e.g. "metadata/timestamp.json"; may be ""
	Msg    string // for people; names the file
	Err    error  // the cause, if any
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Err }

func fail(reason Reason, file string, cause error, format string, args ...any) *Error {
	return &Error{Reason: reason, File: file, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// nameSegment is a segment of a target name: no "." or "..", no
// separators, nothing a shell or a file system reads specially.
var nameSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// checkName checks a target name (the path under targets/).
func checkName(name string) error {
	if name == "" || len(name) > 255 {
		return errors.New("a target name has 1 to 255 characters")
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == ".." || seg == "." {
			return fmt.Errorf("target name %q has a %q segment (path traversal)", name, seg)
		}
		if !nameSegment.MatchString(seg) {
			return fmt.Errorf("target name %q: each '/'-separated segment is [A-Za-z0-9._+-] starting with a letter or digit", name)
		}
	}
	return nil
}
