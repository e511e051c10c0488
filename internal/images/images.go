// Package images is the control plane's catalog of virtual machine
// images: each one an operator imported (citadel image import) under the
// name VMs give as their vmImage, with its OS type and boot method.
//
// The records are in the store, under images/<name in lower case>; the
// image files are in the catalog's directory (<data-dir>/vmimages on a
// replica), each named by the sha256 of its content in hex, so that the
// same content imported under several names is stored once. A file
// whose name starts with ".partial-" is one being written; [New]
// removes those a crash left. A file no record names any more is removed
// when a record is deleted or replaced.
//
// The files are the importing replica's, like update artifacts (package
// releases): another replica has an image once it is imported there too,
// or once its file is copied into that replica's directory by hand.
//
// The server (the /citadel/images endpoints and the agent API, which
// serves image files to the machines that run VMs) imports images.
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

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

// partial starts the names of files being written in the directory.
const partial = ".partial-"

// Catalog is the catalog over a store and an image directory. Only one
// Catalog writes a directory.
type Catalog struct {
	st  *store.Store
	dir string
	log *slog.Logger
	// mu makes placing a file and recording it one step with respect to
	// prune, so that prune never removes a file a record is about to
	// name.
	mu sync.Mutex
}

// New returns the catalog whose files live in dir (created when needed),
// and removes the partial files a crash left there.
func New(st *store.Store, dir string, log *slog.Logger) *Catalog {
	if stale, err := filepath.Glob(filepath.Join(dir, partial+"*")); err == nil {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	return &Catalog{st: st, dir: dir, log: log.With("component", "images")}
}

// Dir is the image directory.
func (c *Catalog) Dir() string { return c.dir }

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
	f, sum, size, head, err := c.spool(content)
	if err != nil {
		return Image{}, fmt.Errorf("images: import %q: %w", name, err)
	}
	defer os.Remove(f) // after the rename, a no-op
	if size == 0 {
		return Image{}, &FieldError{Field: "content", Value: "", Reason: "is empty"}
	}
	img := Image{Name: name, OSType: osType, BootMethod: bootMethod, SHA256: sum, Size: size, Format: Raw, Imported: time.Now().UTC()}
	if head == qcow2Magic {
		img.Format = QCOW2
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	// The same content may be here already (under another name): the
	// new file replaces it, which also mends one damaged since.
	if err := os.Rename(f, filepath.Join(c.dir, sum)); err != nil {
		return Image{}, fmt.Errorf("images: import %q: %w", name, err)
	}
	if err := syncDir(c.dir); err != nil {
		return Image{}, fmt.Errorf("images: import %q: %w", name, err)
	}
	if _, err := c.st.Txn(ctx, records.Put(key(name), img)); err != nil {
		return Image{}, fmt.Errorf("images: import %q: %w", name, err)
	}
	// The image replaced, if any, may have been the last to use its file.
	c.prune(ctx)
	return img, nil
}

// spool copies r to a new partial file in the directory, synced, and
// returns its name, its sha256 (hex), its size and its first bytes (as
// many as qcow2's magic number has).
func (c *Catalog) spool(r io.Reader) (name, sum string, size int64, head string, err error) {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return "", "", 0, "", err
	}
	f, err := os.CreateTemp(c.dir, partial+"image-*")
	if err != nil {
		return "", "", 0, "", err
	}
	h := sha256.New()
	var first prefix
	size, err = io.Copy(io.MultiWriter(f, h, &first), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", "", 0, "", err
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), size, string(first), nil
}

// prefix keeps the first bytes written to it, up to qcow2's magic number.
type prefix []byte

func (p *prefix) Write(b []byte) (int, error) {
	if n := len(qcow2Magic) - len(*p); n > 0 {
		*p = append(*p, b[:min(n, len(b))]...)
	}
	return len(b), nil
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
	entries, err := os.ReadDir(c.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) { // none imported on this replica
		c.log.WarnContext(ctx, "unused image files not removed", "err", err)
	}
	for _, e := range entries {
		if !digest.MatchString(e.Name()) || used[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(c.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.WarnContext(ctx, "unused image file not removed", "sha256", e.Name(), "err", err)
		} else {
			c.log.InfoContext(ctx, "unused image file removed", "sha256", e.Name())
		}
	}
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Lookup reads the image called name, in any case; ErrNotFound when
// there is none.
func (c *Catalog) Lookup(ctx context.Context, name string) (Image, error) {
	if err := ValidName(name); err != nil {
		return Image{}, err
	}
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
	if _, err := c.Lookup(ctx, name); err != nil {
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

var digest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Open opens the image file whose sha256 (64 lower-case hex digits) is
// sha. An error wrapping os.ErrNotExist means this replica does not have
// it: import the image here too.
func (c *Catalog) Open(sha string) (*os.File, error) {
	if !digest.MatchString(sha) {
		return nil, fmt.Errorf("images: open %q: an image file is named by its sha256, 64 lower-case hex digits", sha)
	}
	f, err := os.Open(filepath.Join(c.dir, sha))
	if err != nil {
		return nil, fmt.Errorf("images: image file %s (import the image on this replica too): %w", sha, err)
	}
	return f, nil
}
