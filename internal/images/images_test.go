package images_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/blobs"
	"github.com/citadel-cloud/citadel/internal/images"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

func newCatalog(t *testing.T) *images.Catalog {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return images.New(storetest.Start(t), filepath.Join(t.TempDir(), "vmimages"), log)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// files lists the image directory.
func files(t *testing.T, c *images.Catalog) []string {
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

func mustImport(t *testing.T, c *images.Catalog, name string, content []byte) images.Image {
	t.Helper()
	img, err := c.Import(t.Context(), name, images.Linux, images.UEFI, bytes.NewReader(content))
	if err != nil {
		t.Fatalf("Import(%q) = %v", name, err)
	}
	return img
}

func readFile(t *testing.T, c *images.Catalog, sha string) []byte {
	t.Helper()
	f, err := c.Open(sha)
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

var ignoreImported = cmpopts.IgnoreFields(images.Image{}, "Imported")

func TestImport(t *testing.T) {
	c := newCatalog(t)
	content := bytes.Repeat([]byte("a raw disk "), 10_000)
	got, err := c.Import(t.Context(), "Registry.Example/Ubuntu:22.04", "linux", "uefi", bytes.NewReader(content))
	if err != nil {
		t.Fatalf("Import = %v", err)
	}
	want := images.Image{Name: "Registry.Example/Ubuntu:22.04", OSType: "Linux", BootMethod: "UEFI", SHA256: sum(content),
		Size: int64(len(content)), Format: "raw"}
	if d := cmp.Diff(want, got, ignoreImported); d != "" {
		t.Errorf("Import (-want +got):\n%s", d)
	}
	if got.Imported.IsZero() {
		t.Errorf("Import().Imported is zero")
	}
	if !bytes.Equal(readFile(t, c, got.SHA256), content) {
		t.Errorf("Open(%s) differs from what was imported", got.SHA256)
	}
	if d := cmp.Diff([]string{sum(content)}, files(t, c)); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	for _, name := range []string{"registry.example/ubuntu:22.04", "REGISTRY.EXAMPLE/UBUNTU:22.04", got.Name} {
		img, err := c.Lookup(t.Context(), name)
		if err != nil {
			t.Fatalf("Lookup(%q) = %v", name, err)
		}
		if d := cmp.Diff(got, img); d != "" {
			t.Errorf("Lookup(%q) (-imported +looked up):\n%s", name, d)
		}
	}
	list, err := c.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]images.Image{got}, list); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
}

func TestImportFormat(t *testing.T) {
	c := newCatalog(t)
	for _, tc := range []struct {
		name    string
		content string
		want    string
	}{
		{"raw", "\x00\x00\x00\x00 a raw disk", images.Raw},
		{"qcow2", "QFI\xfb\x00\x00\x00\x03 the rest of a qcow2 header", images.QCOW2},
		{"magic only", "QFI\xfb", images.QCOW2},
		{"shorter than the magic", "QF", images.Raw},
		{"magic later", "xQFI\xfb", images.Raw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := mustImport(t, c, strings.ReplaceAll(tc.name, " ", "-"), []byte(tc.content))
			if img.Format != tc.want {
				t.Errorf("Import(%q).Format = %q, want %q", tc.content, img.Format, tc.want)
			}
		})
	}
}

// One content under several names is one file, removed with the last
// name that uses it.
func TestImportDeduplicates(t *testing.T) {
	c := newCatalog(t)
	content := []byte("the same disk")
	a, b := mustImport(t, c, "a:1", content), mustImport(t, c, "b:1", content)
	if a.SHA256 != b.SHA256 {
		t.Fatalf("the same content has two digests: %s, %s", a.SHA256, b.SHA256)
	}
	if d := cmp.Diff([]string{a.SHA256}, files(t, c)); d != "" {
		t.Errorf("files after two imports of one content (-want +got):\n%s", d)
	}
	if err := c.Delete(t.Context(), "A:1"); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if !bytes.Equal(readFile(t, c, a.SHA256), content) {
		t.Errorf("the file changed when one of its two names was deleted")
	}
	if _, err := c.Lookup(t.Context(), "a:1"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("Lookup of a deleted image = %v, want ErrNotFound", err)
	}
	if err := c.Delete(t.Context(), "b:1"); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if got := files(t, c); len(got) != 0 {
		t.Errorf("files after both names were deleted = %v, want none", got)
	}
	if _, err := c.Open(a.SHA256); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a removed file = %v, want os.ErrNotExist", err)
	}
	if list, err := c.List(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("List = %v, %v, want none", list, err)
	}
}

// Importing a name again, in another case, replaces its image; the old
// file goes unless another name uses it.
func TestImportReplaces(t *testing.T) {
	c := newCatalog(t)
	v1, v2 := []byte("version 1"), []byte("version 2")
	mustImport(t, c, "ubuntu:latest", v1)
	mustImport(t, c, "ubuntu:22.04", v1)
	got, err := c.Import(t.Context(), "Ubuntu:Latest", images.Windows, images.BIOS, bytes.NewReader(v2))
	if err != nil {
		t.Fatal(err)
	}
	looked, err := c.Lookup(t.Context(), "ubuntu:latest")
	if err != nil {
		t.Fatal(err)
	}
	want := images.Image{Name: "Ubuntu:Latest", OSType: "Windows", BootMethod: "BIOS", SHA256: sum(v2), Size: int64(len(v2)), Format: "raw"}
	if d := cmp.Diff(want, looked, ignoreImported); d != "" || looked != got {
		t.Errorf("Lookup after a second import (-want +got):\n%s", d)
	}
	wantFiles := []string{sum(v1), sum(v2)}
	slices.Sort(wantFiles)
	if d := cmp.Diff(wantFiles, files(t, c)); d != "" {
		t.Errorf("files while ubuntu:22.04 uses version 1 (-want +got):\n%s", d)
	}
	mustImport(t, c, "ubuntu:22.04", v2)
	if d := cmp.Diff([]string{sum(v2)}, files(t, c)); d != "" {
		t.Errorf("files once no image uses version 1 (-want +got):\n%s", d)
	}
	list, err := c.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range list {
		names = append(names, img.Name)
	}
	if d := cmp.Diff([]string{"ubuntu:22.04", "Ubuntu:Latest"}, names); d != "" {
		t.Errorf("List names (-want +got):\n%s", d)
	}
}

func TestImportRefuses(t *testing.T) {
	c := newCatalog(t)
	for _, tc := range []struct {
		name, image, osType, bootMethod, content string
		field                                    string
		reason                                   string
	}{
		{"no name", "", "Linux", "UEFI", "x", "name", "is required"},
		{"space", "ubuntu 22.04", "Linux", "UEFI", "x", "name", "space"},
		{"tab", "ubuntu\t22.04", "Linux", "UEFI", "x", "name", "space"},
		{"newline", "ubuntu\n", "Linux", "UEFI", "x", "name", "space"},
		{"NUL", "ubuntu\x00", "Linux", "UEFI", "x", "name", "control"},
		{"DEL", "ubuntu\x7f", "Linux", "UEFI", "x", "name", "control"},
		{"zero-width space", "ubu\u200bntu", "Linux", "UEFI", "x", "name", "invisible"},
		{"no-break space", "ubu\u00a0ntu", "Linux", "UEFI", "x", "name", "space"},
		{"not UTF-8", "ubuntu\xff", "Linux", "UEFI", "x", "name", "UTF-8"},
		{"too long", strings.Repeat("é", images.MaxNameLength+1), "Linux", "UEFI", "x", "name", "more than 256 characters"},
		{"dot", ".", "Linux", "UEFI", "x", "name", "not a name"},
		{"dot dot", "..", "Linux", "UEFI", "x", "name", "not a name"},
		{"no OS type", "ubuntu", "", "UEFI", "x", "osType", "is required: Linux or Windows"},
		{"other OS type", "ubuntu", "Plan9", "UEFI", "x", "osType", "must be Linux or Windows"},
		{"no boot method", "ubuntu", "Linux", "", "x", "bootMethod", "is required: UEFI or BIOS"},
		{"other boot method", "ubuntu", "Linux", "PXE", "x", "bootMethod", "must be UEFI or BIOS"},
		{"empty", "ubuntu", "Linux", "UEFI", "", "content", "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Import(t.Context(), tc.image, tc.osType, tc.bootMethod, strings.NewReader(tc.content))
			e, ok := errors.AsType[*images.FieldError](err)
			if !ok || e.Field != tc.field || !strings.Contains(e.Reason, tc.reason) {
				t.Fatalf("Import(%q, %q, %q) = %v, want a FieldError of %s containing %q", tc.image, tc.osType, tc.bootMethod, err, tc.field, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("Import error %q does not name the field %s", err, tc.field)
			}
		})
	}
	if got := files(t, c); len(got) != 0 {
		t.Errorf("files after refused imports = %v, want none", got)
	}
	if list, err := c.List(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("List after refused imports = %v, %v, want none", list, err)
	}
	if err := images.ValidName(strings.Repeat("é", images.MaxNameLength)); err != nil {
		t.Errorf("ValidName of %d characters = %v, want accepted", images.MaxNameLength, err)
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

func TestImportBrokenContent(t *testing.T) {
	c := newCatalog(t)
	_, err := c.Import(t.Context(), "ubuntu", images.Linux, images.UEFI, &brokenReader{n: 100_000})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Import of a broken upload = %v, want its reader's error", err)
	}
	if got := files(t, c); len(got) != 0 {
		t.Errorf("files after a broken import = %v, want none (no partial file left)", got)
	}
	if _, err := c.Lookup(t.Context(), "ubuntu"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("Lookup after a broken import = %v, want ErrNotFound", err)
	}
}

func TestNotFound(t *testing.T) {
	c := newCatalog(t)
	if _, err := c.Lookup(t.Context(), "nothing:here"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("Lookup = %v, want ErrNotFound", err)
	}
	if err := c.Delete(t.Context(), "nothing:here"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("Delete = %v, want ErrNotFound", err)
	}
	if _, err := c.Lookup(t.Context(), "bad name"); !isFieldError(err) {
		t.Errorf("Lookup(bad name) = %v, want a FieldError", err)
	}
}

// TestLookupFromMemory: a started catalog finds an image another replica
// imported a moment ago (read from the store), then from memory alone (it
// still finds it with the store closed, while a name it lacks is a store
// error, not ErrNotFound); a deletion reaches it too, and Delete reads the
// store, never the copy in memory.
func TestLookupFromMemory(t *testing.T) {
	st := storetest.Start(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	here := images.New(st, filepath.Join(t.TempDir(), "vmimages"), log)
	if err := here.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	there := images.New(st, filepath.Join(t.TempDir(), "vmimages"), log)
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
		}
	}

	gone := mustImport(t, there, "Gone:1", []byte("gone"))
	if got, err := here.Lookup(t.Context(), "gone:1"); err != nil || got.SHA256 != gone.SHA256 {
		t.Fatalf("Lookup of an image another replica imported = %+v, %v", got, err)
	}
	eventually("the import in memory", func() bool { return here.Mirrored("gone:1") })
	if err := there.Delete(t.Context(), "gone:1"); err != nil {
		t.Fatal(err)
	}
	eventually("the deletion in memory", func() bool { return !here.Mirrored("gone:1") })
	if _, err := here.Lookup(t.Context(), "gone:1"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("Lookup of a deleted image = %v, want ErrNotFound", err)
	}

	kept := mustImport(t, there, "kept:1", []byte("kept"))
	eventually("the second import in memory", func() bool { return here.Mirrored("KEPT:1") })
	if err := there.Delete(t.Context(), "kept:1"); err != nil {
		t.Fatal(err)
	}
	if err := here.Delete(t.Context(), "kept:1"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("Delete of an image deleted in the store = %v, want ErrNotFound whatever memory holds", err)
	}
	mustImport(t, there, "kept:1", []byte("kept"))
	eventually("the reimport in memory", func() bool { return here.Mirrored("kept:1") })
	st.Close()
	if got, err := here.Lookup(t.Context(), "kept:1"); err != nil || got.SHA256 != kept.SHA256 {
		t.Errorf("Lookup with the store closed = %+v, %v; want the image from memory", got, err)
	}
	if _, err := here.Lookup(t.Context(), "absent:1"); err == nil || errors.Is(err, images.ErrNotFound) {
		t.Errorf("Lookup of a name not in memory with the store closed = %v, want the store's error", err)
	}
}

func isFieldError(err error) bool {
	_, ok := errors.AsType[*images.FieldError](err)
	return ok
}

func TestOpenRefusesNames(t *testing.T) {
	c := newCatalog(t)
	mustImport(t, c, "ubuntu", []byte("disk"))
	for _, sha := range []string{"", "../vmimages/" + sum([]byte("disk")), strings.ToUpper(sum([]byte("disk"))), sum([]byte("disk"))[:63]} {
		if f, err := c.Open(sha); err == nil {
			f.Close()
			t.Errorf("Open(%q) succeeded, want refused", sha)
		}
	}
}

func TestNewRemovesPartialFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".partial-image-123"), []byte("half a disk"), 0o600)
	images.New(storetest.Start(t), dir, slog.New(slog.DiscardHandler))
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files after New = %v, want the partial one removed", entries)
	}
}

// Concurrent imports and deletes leave the file of every image and no
// other.
func TestConcurrent(t *testing.T) {
	c := newCatalog(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			name := fmt.Sprintf("image-%d", i%4)
			content := fmt.Appendf(nil, "content %d", i%3)
			if _, err := c.Import(t.Context(), name, images.Linux, images.UEFI, bytes.NewReader(content)); err != nil {
				t.Errorf("Import(%s) = %v", name, err)
			}
			if i%5 == 0 {
				if err := c.Delete(t.Context(), name); err != nil && !errors.Is(err, images.ErrNotFound) {
					t.Errorf("Delete(%s) = %v", name, err)
				}
			}
		})
	}
	wg.Wait()
	list, err := c.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, img := range list {
		if !slices.Contains(want, img.SHA256) {
			want = append(want, img.SHA256)
		}
	}
	slices.Sort(want)
	if d := cmp.Diff(want, files(t, c), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("files (-those of the images +got):\n%s", d)
	}
}

// FuzzValidName: ValidName never panics, and a name it accepts comes
// back whole the ways a name travels: in JSON, in the query of an
// import, escaped (url.PathEscape) as the last segment of a DELETE path,
// and in lower case as the catalog's key.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"ubuntu:22.04", "registry.example/library/ubuntu:22.04", "a b", "", ".", "..", "a/../b", "a//b",
		"x?y#z%2F", "é", "\u0130", "ubu\u200bntu", "\xff", "myacr.azurecr.io/img@sha256:" + strings.Repeat("0", 64)} {
		f.Add(s)
	}
	mux := http.NewServeMux()
	var got string
	mux.HandleFunc("DELETE /citadel/images/{name...}", func(w http.ResponseWriter, r *http.Request) { got = r.PathValue("name") })
	f.Fuzz(func(t *testing.T, name string) {
		if images.ValidName(name) != nil {
			return
		}
		if n := utf8.RuneCountInString(name); n < 1 || n > images.MaxNameLength {
			t.Fatalf("ValidName accepted %q of %d characters", name, n)
		}
		var img images.Image
		b, _ := json.Marshal(images.Image{Name: name})
		if err := json.Unmarshal(b, &img); err != nil || img.Name != name {
			t.Errorf("JSON round trip of %q = %q, %v", name, img.Name, err)
		}
		q, err := url.ParseQuery(url.Values{"name": {name}}.Encode())
		if err != nil || q.Get("name") != name {
			t.Errorf("query round trip of %q = %q, %v", name, q.Get("name"), err)
		}
		got = ""
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodDelete, "https://cp/citadel/images/"+url.PathEscape(name), nil))
		if w.Code != http.StatusOK || got != name {
			t.Errorf("DELETE path of %q = %d, name %q", name, w.Code, got)
		}
		if err := images.ValidName(strings.ToLower(name)); err != nil {
			t.Errorf("the lower case of accepted %q is not valid: %v", name, err)
		}
	})
}

// TestAdopt: a replica that lacks an image's file adopts it from a stream
// (a peer's copy), checked against the record's digest and size; it
// refuses other content and digests no image names.
func TestAdopt(t *testing.T) {
	st := storetest.Start(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	importer := images.New(st, filepath.Join(t.TempDir(), "vmimages"), log)
	good := []byte("QFI\xfb a qcow2 disk")
	img := mustImport(t, importer, "ubuntu:22.04", good)
	other := []byte("QFI\xfb a qcow2 dusk")

	for _, tc := range []struct {
		name    string
		sha     string
		content []byte
		want    error
	}{
		{"another content", img.SHA256, other, blobs.ErrDigestMismatch},
		{"truncated", img.SHA256, good[:len(good)-1], blobs.ErrDigestMismatch},
		{"longer", img.SHA256, append(bytes.Clone(good), 0), blobs.ErrDigestMismatch},
		{"a digest no image names", sum(other), other, os.ErrNotExist},
		{"not a digest", "../vmimages", good, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := images.New(st, filepath.Join(t.TempDir(), "vmimages"), log)
			if err := c.Adopt(t.Context(), tc.sha, bytes.NewReader(tc.content)); !errors.Is(err, tc.want) {
				t.Errorf("Adopt(%.12s, %q) = %v, want %v", tc.sha, tc.content, err, tc.want)
			}
			if got := files(t, c); len(got) != 0 {
				t.Errorf("a refused Adopt left files %v", got)
			}
			if _, err := c.Open(tc.sha); err == nil {
				t.Errorf("Open(%.12s) after a refused Adopt succeeded", tc.sha)
			}
		})
	}

	t.Run("adopts", func(t *testing.T) {
		c := images.New(st, filepath.Join(t.TempDir(), "vmimages"), log)
		if _, err := c.Open(img.SHA256); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "not on this replica") {
			t.Errorf("Open before Adopt = %v, want os.ErrNotExist, not on this replica", err)
		}
		peer, err := importer.Open(img.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		if err := c.Adopt(t.Context(), img.SHA256, peer); err != nil {
			t.Fatalf("Adopt = %v", err)
		}
		// Again: the file is kept and the content not read.
		if err := c.Adopt(t.Context(), img.SHA256, strings.NewReader("not read")); err != nil {
			t.Errorf("Adopt again = %v", err)
		}
		if got := readFile(t, c, img.SHA256); !bytes.Equal(got, good) {
			t.Errorf("Open after Adopt reads %q, want %q", got, good)
		}
		if d := cmp.Diff([]string{img.SHA256}, files(t, c)); d != "" {
			t.Errorf("files (-want +got):\n%s", d)
		}
		// The adopted file is the image's like an imported one: it goes
		// with the image.
		if err := c.Delete(t.Context(), img.Name); err != nil {
			t.Fatal(err)
		}
		if got := files(t, c); len(got) != 0 {
			t.Errorf("files after the image was deleted = %v, want none", got)
		}
		if err := c.Adopt(t.Context(), img.SHA256, bytes.NewReader(good)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Adopt of a deleted image's file = %v, want os.ErrNotExist", err)
		}
	})
}

// deleting deletes an image when first read, as an operator would while
// its file is on its way in from a peer.
type deleting struct {
	r    io.Reader
	once func()
}

func (d *deleting) Read(p []byte) (int, error) {
	if d.once != nil {
		d.once()
		d.once = nil
	}
	return d.r.Read(p)
}

// TestAdoptDeleted: an image deleted while its file is adopted leaves no
// file behind.
func TestAdoptDeleted(t *testing.T) {
	st := storetest.Start(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	content := []byte("a disk")
	img := mustImport(t, images.New(st, filepath.Join(t.TempDir(), "vmimages"), log), "ubuntu", content)
	c := images.New(st, filepath.Join(t.TempDir(), "vmimages"), log)
	r := &deleting{r: bytes.NewReader(content), once: func() {
		if err := c.Delete(t.Context(), "ubuntu"); err != nil {
			t.Errorf("Delete = %v", err)
		}
	}}
	if err := c.Adopt(t.Context(), img.SHA256, r); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Adopt of an image deleted meanwhile = %v, want os.ErrNotExist", err)
	}
	if got := files(t, c); len(got) != 0 {
		t.Errorf("files = %v, want none", got)
	}
}
