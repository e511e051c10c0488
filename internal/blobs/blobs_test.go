package blobs_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/blobs"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// entries lists the directory, partial files too.
func entries(t *testing.T, d *blobs.Dir) []string {
	t.Helper()
	es, err := os.ReadDir(d.Path())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func read(t *testing.T, d *blobs.Dir, sha string) []byte {
	t.Helper()
	f, err := d.Open(sha)
	if err != nil {
		t.Fatalf("Open(%s) = %v", sha, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPut(t *testing.T) {
	content := []byte("a disk")
	for _, tc := range []struct {
		name     string
		content  string
		want     blobs.Want
		mismatch bool
	}{
		{"anything", "a disk", blobs.Want{}, false},
		{"empty", "", blobs.Want{}, false},
		{"expected", "a disk", blobs.Want{SHA256: sum(content), Size: 6}, false},
		{"expected empty", "", blobs.Want{SHA256: sum(nil), Size: 0}, false},
		{"other content", "a disc", blobs.Want{SHA256: sum(content), Size: 6}, true},
		{"shorter", "a dis", blobs.Want{SHA256: sum(content), Size: 6}, true},
		{"longer", "a disk and more", blobs.Want{SHA256: sum(content), Size: 6}, true},
		{"wrong size", "a disk", blobs.Want{SHA256: sum(content), Size: 5}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := blobs.New(filepath.Join(t.TempDir(), "blobs"))
			gotSum, gotSize, err := d.Put(strings.NewReader(tc.content), tc.want)
			if tc.mismatch {
				if !errors.Is(err, blobs.ErrDigestMismatch) {
					t.Fatalf("Put(%q, %+v) = %v, want ErrDigestMismatch", tc.content, tc.want, err)
				}
				if got := entries(t, d); len(got) != 0 {
					t.Errorf("Put of a mismatch left %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Put(%q, %+v) = %v", tc.content, tc.want, err)
			}
			if want := sum([]byte(tc.content)); gotSum != want || gotSize != int64(len(tc.content)) {
				t.Errorf("Put(%q) = %s, %d; want %s, %d", tc.content, gotSum, gotSize, want, len(tc.content))
			}
			if got := read(t, d, gotSum); string(got) != tc.content {
				t.Errorf("Open(%s) reads %q, want %q", gotSum, got, tc.content)
			}
			if diff := cmp.Diff([]string{gotSum}, entries(t, d)); diff != "" {
				t.Errorf("the directory holds (-want +got):\n%s", diff)
			}
		})
	}
}

// errReader fails every read, to show that r is not read.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read") }

// TestPutKeeps: a Put of content expected and here already does not read
// it; one of content here but damaged replaces the file.
func TestPutKeeps(t *testing.T) {
	d := blobs.New(t.TempDir())
	content := []byte("a disk")
	want := blobs.Want{SHA256: sum(content), Size: int64(len(content))}
	if _, _, err := d.Put(bytes.NewReader(content), want); err != nil {
		t.Fatal(err)
	}
	if s, n, err := d.Put(errReader{}, want); err != nil || s != want.SHA256 || n != want.Size {
		t.Errorf("Put of a file here = %s, %d, %v; want it kept, r unread", s, n, err)
	}
	os.WriteFile(filepath.Join(d.Path(), want.SHA256), []byte("a dusk"), 0o600)
	if _, _, err := d.Put(bytes.NewReader(content), want); err != nil {
		t.Fatal(err)
	}
	if got := read(t, d, want.SHA256); !bytes.Equal(got, content) {
		t.Errorf("Put over a damaged file left %q", got)
	}
}

// brokenReader fails after n bytes, as an upload broken off.
type brokenReader struct{ n int }

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(r.n, len(p))
	r.n -= k
	return k, nil
}

func TestPutBroken(t *testing.T) {
	d := blobs.New(t.TempDir())
	if _, _, err := d.Put(&brokenReader{n: 100_000}, blobs.Want{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Put of a broken reader = %v, want its error", err)
	}
	if got := entries(t, d); len(got) != 0 {
		t.Errorf("a broken Put left %v", got)
	}
}

func TestHas(t *testing.T) {
	d := blobs.New(t.TempDir())
	content := []byte("a disk")
	s, n, err := d.Put(bytes.NewReader(content), blobs.Want{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sum  string
		size int64
		want bool
	}{
		{"whole", s, n, true},
		{"another size", s, n + 1, false},
		{"missing", sum([]byte("another")), 7, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := d.Has(tc.sum, tc.size); err != nil || got != tc.want {
				t.Errorf("Has(%s, %d) = %v, %v; want %v", tc.sum, tc.size, got, err, tc.want)
			}
		})
	}
	os.WriteFile(filepath.Join(d.Path(), s), []byte("a dusk"), 0o600)
	if got, err := d.Has(s, n); err != nil || got {
		t.Errorf("Has(a damaged file) = %v, %v; want false", got, err)
	}
	if _, err := d.Has("../x", 1); err == nil {
		t.Errorf("Has(../x) = nil error, want refused")
	}
}

func TestOpenRefusesNames(t *testing.T) {
	d := blobs.New(filepath.Join(t.TempDir(), "blobs"))
	os.WriteFile(filepath.Join(filepath.Dir(d.Path()), "secret"), []byte("x"), 0o600)
	f, err := d.CreateTemp("x")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, name := range []string{"", "../secret", "/etc/passwd", filepath.Base(f.Name()), strings.Repeat("A", 64), strings.Repeat("a", 63),
		strings.Repeat("a", 65), strings.Repeat("a", 64) + "/..", strings.Repeat("g", 64)} {
		if f, err := d.Open(name); err == nil || !strings.Contains(err.Error(), "64 lower-case hex digits") {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q) = %v, want refused", name, err)
		}
	}
	if _, err := d.Open(strings.Repeat("a", 64)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(a missing file) = %v, want os.ErrNotExist", err)
	}
}

// TestNewRemovesPartialFiles: a crash mid-write leaves a partial file,
// which the next New removes; whole files stay.
func TestNewRemovesPartialFiles(t *testing.T) {
	dir := t.TempDir()
	d := blobs.New(dir)
	s, _, err := d.Put(strings.NewReader("whole"), blobs.Want{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.CreateTemp("bundle-*.tar")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half a bundle")
	f.Close()
	staged, err := d.Stage(strings.NewReader("staged, never committed"), blobs.Want{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries(t, d)) != 3 {
		t.Fatalf("the directory holds %v, want a file and two partial ones", entries(t, d))
	}
	_ = staged // then the crash: neither committed nor discarded
	blobs.New(dir)
	if diff := cmp.Diff([]string{s}, entries(t, d)); diff != "" {
		t.Errorf("the directory after New (-want +got):\n%s", diff)
	}
}

func TestStage(t *testing.T) {
	d := blobs.New(t.TempDir())
	content := []byte("a disk")
	s, err := d.Stage(bytes.NewReader(content), blobs.Want{})
	if err != nil {
		t.Fatal(err)
	}
	if s.SHA256 != sum(content) || s.Size != int64(len(content)) {
		t.Errorf("Stage = %s, %d; want %s, %d", s.SHA256, s.Size, sum(content), len(content))
	}
	if _, err := d.Open(s.SHA256); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open before Commit = %v, want os.ErrNotExist", err)
	}
	if err := s.Commit(); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	s.Discard()
	if got := read(t, d, s.SHA256); !bytes.Equal(got, content) {
		t.Errorf("Open after Commit reads %q", got)
	}
	if err := s.Commit(); err == nil {
		t.Errorf("a second Commit = nil, want an error")
	}

	discarded, err := d.Stage(strings.NewReader("another disk"), blobs.Want{})
	if err != nil {
		t.Fatal(err)
	}
	discarded.Discard()
	if diff := cmp.Diff([]string{s.SHA256}, entries(t, d)); diff != "" {
		t.Errorf("the directory after Discard (-want +got):\n%s", diff)
	}
	if err := discarded.Commit(); err == nil {
		t.Errorf("Commit after Discard = nil, want an error")
	}
}

func TestListRemove(t *testing.T) {
	d := blobs.New(filepath.Join(t.TempDir(), "blobs"))
	if got, err := d.List(); err != nil || len(got) != 0 {
		t.Errorf("List of a directory never written = %v, %v; want none", got, err)
	}
	var want []string
	for _, c := range []string{"one", "two", "three"} {
		s, _, err := d.Put(strings.NewReader(c), blobs.Want{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, s)
	}
	if _, err := d.CreateTemp("x"); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(d.Path(), strings.Repeat("b", 64)), 0o700)
	sorted := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	got, err := d.List()
	if diff := cmp.Diff(want, got, sorted); err != nil || diff != "" {
		t.Errorf("List (-want +got), %v:\n%s", err, diff)
	}
	if err := d.Remove(want[0]); err != nil {
		t.Errorf("Remove = %v", err)
	}
	if err := d.Remove(want[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove of a removed file = %v, want os.ErrNotExist", err)
	}
	if err := d.Remove("../blobs"); err == nil {
		t.Errorf("Remove(../blobs) = nil, want refused")
	}
	got, err = d.List()
	if diff := cmp.Diff(want[1:], got, sorted); err != nil || diff != "" {
		t.Errorf("List after Remove (-want +got), %v:\n%s", err, diff)
	}
}

// FuzzValid: a name Valid accepts is a sha256 in hex, and stays in the
// directory.
func FuzzValid(f *testing.F) {
	for _, s := range []string{"", "..", "../x", strings.Repeat("a", 64), strings.Repeat("A", 64), sum(nil), ".partial-" + sum(nil)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !blobs.Valid(name) {
			return
		}
		b, err := hex.DecodeString(name)
		if err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != name {
			t.Errorf("Valid(%q), which is not a sha256 in lower-case hex", name)
		}
		if filepath.Base(name) != name || filepath.Clean(name) != name {
			t.Errorf("Valid(%q), which is not a plain file name", name)
		}
	})
}

// BenchmarkPut writes 64 MiB: new content (hashed, synced, renamed), and
// content checked against its expected digest.
func BenchmarkPut(b *testing.B) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 4<<20)
	want := blobs.Want{SHA256: sum(content), Size: int64(len(content))}
	b.Run("new", func(b *testing.B) {
		d := blobs.New(b.TempDir())
		b.SetBytes(int64(len(content)))
		for b.Loop() {
			if _, _, err := d.Put(bytes.NewReader(content), blobs.Want{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verified", func(b *testing.B) {
		d := blobs.New(b.TempDir())
		b.SetBytes(int64(len(content)))
		for b.Loop() {
			if _, _, err := d.Put(bytes.NewReader(content), want); err != nil {
				b.Fatal(err)
			}
			d.Remove(want.SHA256) // else the next Put only checks it
		}
	})
	b.Run("has", func(b *testing.B) {
		d := blobs.New(b.TempDir())
		if _, _, err := d.Put(bytes.NewReader(content), want); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(content)))
		for b.Loop() {
			if ok, err := d.Has(want.SHA256, want.Size); !ok || err != nil {
				b.Fatalf("Has = %v, %v", ok, err)
			}
		}
	})
}
