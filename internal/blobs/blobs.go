// Package blobs is a directory of content-addressed files: each file is
// named by the sha256 of its content in hex, so a name says what the file
// must hold and a file can be checked, or fetched from anywhere, by it.
//
// A file is written under a name that starts with ".partial-", synced,
// and then renamed to its digest, so the directory never shows half a
// file under a digest; [New] removes the partial files a crash left.
//
// The update catalog (package releases) and the VM image catalog
// (package images) keep their files in a Dir, one per replica. They
// import blobs; nothing else needs to.
package blobs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrDigestMismatch is the error of Put and Stage of content that is not
// what the caller expected: another sha256 or another size.
var ErrDigestMismatch = errors.New("the content does not match its sha256 and size")

// partial starts the names of files being written.
const partial = ".partial-"

// Dir is a directory of content-addressed files. Several Dirs, and
// several goroutines, may use one directory: a file only ever appears
// whole, under the digest of its content.
type Dir struct {
	path string
}

// New returns the Dir over path, which is created when a file is first
// written, and removes the partial files a crash left there.
func New(path string) *Dir {
	if stale, err := filepath.Glob(filepath.Join(path, partial+"*")); err == nil {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	return &Dir{path: path}
}

// Path is the directory.
func (d *Dir) Path() string { return d.path }

// Valid reports whether sum names a file: 64 lower-case hex digits, a
// sha256 as Put names it. Other names (a path, a partial file) are
// never opened.
func Valid(sum string) bool {
	if len(sum) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(sum) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// file is the name of the file whose sha256 is sum, after a check that
// sum is one.
func (d *Dir) file(sum string) (string, error) {
	if !Valid(sum) {
		return "", fmt.Errorf("%q is not a sha256: a file is named by 64 lower-case hex digits", sum)
	}
	return filepath.Join(d.path, sum), nil
}

// Open opens the file whose sha256 is sum. An error wrapping
// os.ErrNotExist means the directory does not have it.
func (d *Dir) Open(sum string) (*os.File, error) {
	name, err := d.file(sum)
	if err != nil {
		return nil, err
	}
	return os.Open(name)
}

// Has reports whether the directory holds the file of sum with size
// bytes, reading it to check its digest: a file damaged since it was
// written is not had (and the next Put of it replaces it).
func (d *Dir) Has(sum string, size int64) (bool, error) {
	f, err := d.Open(sum)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() != size {
		return false, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("check %s: %w", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)) == sum, nil
}

// Want is what the caller expects content to be. The zero Want expects
// nothing; a Want with a SHA256 expects that digest and Size bytes.
type Want struct {
	SHA256 string
	Size   int64
}

// Put stores the content of r under its sha256 and returns the digest
// and the size. When want names a digest, content that does not match
// want is refused with an error wrapping ErrDigestMismatch and leaves
// nothing behind, and a file of that digest already here and whole is
// kept without r being read.
func (d *Dir) Put(r io.Reader, want Want) (sum string, size int64, err error) {
	if want.SHA256 != "" {
		if ok, err := d.Has(want.SHA256, want.Size); err != nil || ok {
			return want.SHA256, want.Size, err
		}
	}
	s, err := d.Stage(r, want)
	if err != nil {
		return "", 0, err
	}
	defer s.Discard() // after the commit, a no-op
	if err := s.Commit(); err != nil {
		return "", 0, err
	}
	return s.SHA256, s.Size, nil
}

// Staged is content written and synced to a partial file, checked
// against what was wanted, and not yet in the directory: Commit puts it
// there, Discard removes it. A caller stages, then commits under its own
// lock, when the file must appear in step with something else (a record
// that names it).
type Staged struct {
	// SHA256 (hex) and Size are those of the content.
	SHA256 string
	Size   int64

	dir  string
	name string
	done bool
}

// Stage copies r to a new partial file in the directory while it hashes
// it and syncs the file. Content that does not match want (see Put) is
// refused with an error wrapping ErrDigestMismatch; r is read at most one
// byte beyond a wanted size. Nothing is left behind on an error.
func (d *Dir) Stage(r io.Reader, want Want) (*Staged, error) {
	if want.SHA256 != "" {
		if !Valid(want.SHA256) {
			return nil, fmt.Errorf("stage: want %q: not a sha256 (64 lower-case hex digits)", want.SHA256)
		}
		r = io.LimitReader(r, want.Size+1)
	}
	f, err := d.CreateTemp("blob-*")
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	sum := hex.EncodeToString(h.Sum(nil))
	switch {
	case err != nil:
		err = fmt.Errorf("stage: %w", err)
	case want.SHA256 != "" && size != want.Size:
		err = fmt.Errorf("%w: the content has more than %d bytes, want %d", ErrDigestMismatch, want.Size, want.Size)
		if size < want.Size {
			err = fmt.Errorf("%w: the content has %d bytes, want %d", ErrDigestMismatch, size, want.Size)
		}
	case want.SHA256 != "" && sum != want.SHA256:
		err = fmt.Errorf("%w: the content has sha256 %s, want %s", ErrDigestMismatch, sum, want.SHA256)
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &Staged{SHA256: sum, Size: size, dir: d.path, name: f.Name()}, nil
}

// Commit renames the staged file to its digest, replacing a file of the
// same digest (which mends one damaged since), and makes the rename
// durable.
func (s *Staged) Commit() error {
	if s.done {
		return fmt.Errorf("commit %s: already committed or discarded", s.SHA256)
	}
	if err := os.Rename(s.name, filepath.Join(s.dir, s.SHA256)); err != nil {
		return fmt.Errorf("commit %s: %w", s.SHA256, err)
	}
	s.done = true
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("commit %s: %w", s.SHA256, err)
	}
	return nil
}

// Discard removes the staged file unless it was committed.
func (s *Staged) Discard() {
	if !s.done {
		os.Remove(s.name)
		s.done = true
	}
}

// CreateTemp creates a partial file in the directory (see
// os.CreateTemp for pattern), for content on its way in: on the same
// file system as the files, and removed by New if a crash leaves it.
func (d *Dir) CreateTemp(pattern string) (*os.File, error) {
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return nil, err
	}
	return os.CreateTemp(d.path, partial+pattern)
}

// Remove removes the file of sum; an error wrapping os.ErrNotExist when
// there is none.
func (d *Dir) Remove(sum string) error {
	name, err := d.file(sum)
	if err != nil {
		return err
	}
	return os.Remove(name)
}

// List lists the digests of the files in the directory, in order;
// none when the directory was never written.
func (d *Dir) List() ([]string, error) {
	entries, err := os.ReadDir(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if Valid(e.Name()) && e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil
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
