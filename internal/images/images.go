// Package images is the control plane's catalog of virtual machine
// images: each one an operator imported (citadel image import) under the
// name VMs give as their vmImage, with its OS type and boot method.
//
// The records are in the store, under images/<name in lower case>; the
// image files are in the catalog's directory (<data-dir>/vmimages on a
// replica, a [blobs.Dir]), each named by the sha256 of its content in
// hex, so that the same content imported under several names is stored
// once. A file no record names any more is removed when a record is
// deleted or replaced.
//
// A file is written by the replica that imports the image, like update
// artifacts (package releases). Another replica copies a file it lacks
// from a replica that has it, checked against the digest and size its
// record names ([Catalog.Adopt]).
//
// The server (the /citadel/images endpoints and the agent API, which
// serves image files to the machines that run VMs) imports images.
package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/citadel-cloud/citadel/internal/blobs"
	"github.com/citadel-cloud/citadel/internal/store"
)

// The values of Image.OSType, Image.BootMethod and Image.Format.
const (
	Linux   = "Linux"
	Windows = "Windows"
	UEFI    = "UEFI"
	BIOS    = "BIOS"
	Raw     = "raw"
	QCOW2   = "qcow2"
)

// MaxNameLength is the most characters (runes) an image name has.
const MaxNameLength = 256

// qcow2Magic starts every qcow2 file.
const qcow2Magic = "QFI\xfb"

// ErrNotFound is the error of Lookup and Delete of a name no image has.
var ErrNotFound = errors.New("no such image")

// FieldError is an Import argument (or a name given to Lookup or Delete)
// that is not valid: Field is "name", "osType", "bootMethod" or
// "content".
type FieldError struct {
	Field  string
	Value  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("images: %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("images: %s %q: %s", e.Field, e.Value, e.Reason)
}

// Image is an imported image.
type Image struct {
	// Name is the name as last imported; the catalog finds it whatever
	// the case.
	Name string `json:"name"`
	// OSType is Linux or Windows; BootMethod UEFI or BIOS.
	OSType     string `json:"osType"`
	BootMethod string `json:"bootMethod"`
	// SHA256 (hex) names the file; Open opens it.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Format is qcow2 for content with qcow2's magic number, else raw.
	Format   string    `json:"format"`
	Imported time.Time `json:"imported"`
}

var records = store.NewCollection[Image]("images/")

// Catalog is the catalog over a store and an image directory. Only one
// Catalog writes a directory.
type Catalog struct {
	st    *store.Store
	files *blobs.Dir
	log   *slog.Logger
	// mu makes placing a file and recording it (or checking that a
	// record names it) one step with respect to prune, so that prune
	// never removes a file a record is about to name.
	mu sync.Mutex
	// mirror, once Start has loaded it, holds the records in memory for
	// Lookup, which every VM's creation calls twice.
	mirror *store.Mirror[Image]
}

// New returns the catalog whose files live in dir (created when needed),
// and removes the partial files a crash left there.
func New(st *store.Store, dir string, log *slog.Logger) *Catalog {
	return &Catalog{st: st, files: blobs.New(dir), log: log.With("component", "images")}
}

// Start loads the records into memory and keeps them current until ctx
// ends. Call it before Lookup is used; without it, Lookup reads the store
// each time.
func (c *Catalog) Start(ctx context.Context) error {
	c.mirror = store.NewMirror(ctx, c.st, records)
	return c.mirror.Wait(ctx)
}

// Dir is the image directory.
func (c *Catalog) Dir() string { return c.files.Path() }

// ValidName checks a name as VMs give it in vmImage ("registry/path:tag",
// "name:tag"): 1 to MaxNameLength characters of valid UTF-8 and none of
// them white space, a control or an invisible one; "." and ".." are not
// names (they would not survive a URL path).
func ValidName(name string) error {
	bad := func(reason string, args ...any) error {
		return &FieldError{Field: "name", Value: name, Reason: fmt.Sprintf(reason, args...)}
	}
	switch {
	case name == "":
		return bad("is required")
	case len(name) > utf8.UTFMax*MaxNameLength || utf8.RuneCountInString(name) > MaxNameLength:
		return bad("has more than %d characters", MaxNameLength)
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	case name == "." || name == "..":
		return bad("is not a name")
	}
	for i, r := range name {
		switch {
		case unicode.IsSpace(r):
			return bad("has white space (%U) at byte %d", r, i)
		case unicode.IsControl(r):
			return bad("has a control character (%U) at byte %d", r, i)
		case !unicode.IsGraphic(r):
			return bad("has an invisible character (%U) at byte %d", r, i)
		}
	}
	return nil
}

// key is the name's key in records: the catalog's names are
// case-insensitive.
func key(name string) string { return strings.ToLower(name) }

// canonical returns v among allowed, whatever its case.
func canonical(field, v string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, nil
		}
	}
	reason := "must be " + strings.Join(allowed, " or ")
	if v == "" {
		reason = "is required: " + strings.Join(allowed, " or ")
	}
	return "", &FieldError{Field: field, Value: v, Reason: reason}
}

// Import stores content under name, with its OS type (Linux or Windows)
// and boot method (UEFI or BIOS), either in any case. It streams content
// to a partial file while it hashes it, renames the file to its sha256
// and records the image; an image already called name (in any case) is
// replaced. A FieldError says which argument is not valid, before
// content is read.
func (c *Catalog) Import(ctx context.Context, name, osType, bootMethod string, content io.Reader) (Image, error) {
	if err := ValidName(name); err != nil {
		return Image{}, err
	}
	osType, err := canonical("osType", osType, Linux, Windows)
	if err != nil {
		return Image{}, err
	}
	bootMethod, err = canonical("bootMethod", bootMethod, UEFI, BIOS)
	if err != nil {
		return Image{}, err
	}
	var head prefix
	staged, err := c.files.Stage(io.TeeReader(content, &head), blobs.Want{})
	if err != nil {
		return Image{}, fmt.Errorf("images: import %q: %w", name, err)
	}
	defer staged.Discard() // after the commit, a no-op
	if staged.Size == 0 {
		return Image{}, &FieldError{Field: "content", Value: "", Reason: "is empty"}
	}
	img := Image{Name: name, OSType: osType, BootMethod: bootMethod, SHA256: staged.SHA256, Size: staged.Size, Format: Raw,
		Imported: time.Now().UTC()}
	if string(head) == qcow2Magic {
		img.Format = QCOW2
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	// The same content may be here already (under another name): the
	// new file replaces it, which also mends one damaged since.
	if err := staged.Commit(); err != nil {
		return Image{}, fmt.Errorf("images: import %q: %w", name, err)
	}
	if _, err := c.st.Txn(ctx, records.Put(key(name), img)); err != nil {
		return Image{}, fmt.Errorf("images: import %q: %w", name, err)
	}
	// The image replaced, if any, may have been the last to use its file.
	c.prune(ctx)
	return img, nil
}

// prefix keeps the first bytes written to it, up to qcow2's magic number.
type prefix []byte

func (p *prefix) Write(b []byte) (int, error) {
	if n := len(qcow2Magic) - len(*p); n > 0 {
		*p = append(*p, b[:min(n, len(b))]...)
	}
	return len(b), nil
}

// Adopt stores content as the image file whose sha256 is sha, on a
// replica that lacks it: the image records that name it say what content
// must be, and content of another digest or size is refused (an error
// wrapping blobs.ErrDigestMismatch) and leaves nothing behind. An error
// wrapping os.ErrNotExist means no image has that file. A whole file of
// sha already here is kept, and content not read.
func (c *Catalog) Adopt(ctx context.Context, sha string, content io.Reader) error {
	img, err := c.named(ctx, sha)
	if err != nil {
		return err
	}
	had, err := c.files.Has(img.SHA256, img.Size)
	if err != nil {
		return fmt.Errorf("images: adopt %s: %w", sha, err)
	}
	if had {
		return nil
	}
	staged, err := c.files.Stage(content, blobs.Want{SHA256: img.SHA256, Size: img.Size})
	if err != nil {
		return fmt.Errorf("images: adopt %s (%q): %w", sha, img.Name, err)
	}
	defer staged.Discard() // after the commit, a no-op

	c.mu.Lock()
	defer c.mu.Unlock()
	// The image may have been deleted while the content came: then its
	// file is no longer wanted.
	if _, err := c.named(ctx, sha); err != nil {
		return err
	}
	if err := staged.Commit(); err != nil {
		return fmt.Errorf("images: adopt %s (%q): %w", sha, img.Name, err)
	}
	return nil
}

// named finds an image whose file is sha.
func (c *Catalog) named(ctx context.Context, sha string) (Image, error) {
	items, _, err := records.List(ctx, c.st, "", "", 0)
	if err != nil {
		return Image{}, fmt.Errorf("images: image file %s: %w", sha, err)
	}
	for _, it := range items {
		if it.Value.SHA256 == sha {
			return it.Value, nil
		}
	}
	return Image{}, fmt.Errorf("images: image file %q: no image has it: %w", sha, os.ErrNotExist)
}

// prune removes the image files no record names. The caller holds c.mu.
// It is done once the records are: a file it cannot remove now (the
// error is logged) is removed by a later prune.
func (c *Catalog) prune(ctx context.Context) {
	items, _, err := records.List(ctx, c.st, "", "", 0)
	if err != nil {
		c.log.WarnContext(ctx, "unused image files not removed", "err", err)
		return
	}
	used := map[string]bool{}
	for _, it := range items {
		used[it.Value.SHA256] = true
	}
	present, err := c.files.List()
	if err != nil {
		c.log.WarnContext(ctx, "unused image files not removed", "err", err)
	}
	for _, sha := range present {
		if used[sha] {
			continue
		}
		if err := c.files.Remove(sha); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.WarnContext(ctx, "unused image file not removed", "sha256", sha, "err", err)
		} else {
			c.log.InfoContext(ctx, "unused image file removed", "sha256", sha)
		}
	}
}

// Lookup finds the image called name, in any case; ErrNotFound when
// there is none. It answers from memory once Start has run: an import or
// a delete shows there within the store's watch delay, and a name not
// there yet (imported a moment ago on another replica) is read from the
// store.
func (c *Catalog) Lookup(ctx context.Context, name string) (Image, error) {
	if err := ValidName(name); err != nil {
		return Image{}, err
	}
	if c.mirror != nil {
		if it, ok := c.mirror.Get(key(name)); ok {
			return it.Value, nil
		}
	}
	return c.read(ctx, name)
}

// read reads the image called name from the store.
func (c *Catalog) read(ctx context.Context, name string) (Image, error) {
	it, err := records.Get(ctx, c.st, key(name))
	if errors.Is(err, store.ErrNotFound) {
		return Image{}, fmt.Errorf("images: image %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Image{}, fmt.Errorf("images: image %q: %w", name, err)
	}
	return it.Value, nil
}

// List lists the images by name.
func (c *Catalog) List(ctx context.Context) ([]Image, error) {
	items, _, err := records.List(ctx, c.st, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("images: list: %w", err)
	}
	out := make([]Image, len(items)) // in key order: by name in lower case
	for i, it := range items {
		out[i] = it.Value
	}
	return out, nil
}

// Delete removes the image called name, in any case, and its file unless
// another image has the same content; ErrNotFound when there is none.
func (c *Catalog) Delete(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if _, err := c.read(ctx, name); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.st.Txn(ctx, records.Delete(key(name))); err != nil {
		return fmt.Errorf("images: delete %q: %w", name, err)
	}
	c.prune(ctx)
	return nil
}

// Open opens the image file whose sha256 (64 lower-case hex digits) is
// sha. An error wrapping os.ErrNotExist means the file is not on this
// replica.
func (c *Catalog) Open(sha string) (*os.File, error) {
	f, err := c.files.Open(sha)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("images: image file %s is not on this replica: %w", sha, err)
	}
	if err != nil {
		return nil, fmt.Errorf("images: open image file: %w", err)
	}
	return f, nil
}
