package update_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/update"
)

// FuzzVerify checks that no bundle makes Verify panic, that each refusal is
// an *update.Error, and that what Verify accepts reads back.
func FuzzVerify(f *testing.F) {
	keys := testKeys(1)
	root := newRoot(f, keys, t0.AddDate(5, 0, 0))
	good := build(f, options(keys, root))
	f.Add(good)
	f.Add(build(f, options(testKeys(4), root, rotateRoot(f, root, keys.Root, testKeys(4)))))
	f.Add(add(f, good, file{"targets/extra", []byte("x"), tar.TypeReg}))
	f.Add(remove(f, good, "metadata/timestamp.json"))
	f.Add(good[:len(good)-1024])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := update.Verify(bytes.NewReader(data), root, update.State{}, t0.Add(time.Hour))
		if err != nil {
			if _, ok := errors.AsType[*update.Error](err); !ok {
				t.Fatalf("Verify = %v (%T), want an *update.Error", err, err)
			}
			return
		}
		for _, a := range b.Artifacts {
			if _, err := io.Copy(io.Discard, a.Open()); err != nil {
				t.Errorf("%s: Open: %v", a.Name, err)
			}
		}
	})
}

// BenchmarkVerify verifies a bundle with a 16 MiB node image; the
// throughput is that of the image.
func BenchmarkVerify(b *testing.B) {
	keys := testKeys(1)
	root := newRoot(b, keys, t0.AddDate(5, 0, 0))
	image := bytes.Repeat([]byte("citadel node image "), 16<<20/19+1)[:16<<20]
	opts := options(keys, root)
	opts.Targets = []update.Target{{Name: "node-image/azurelinux-3.0.raw", Kind: update.KindNodeImage,
		Version: "2026.02.1", Size: int64(len(image)), Content: bytes.NewReader(image)}}
	bundle := build(b, opts)
	b.SetBytes(int64(len(image)))
	for b.Loop() {
		if _, err := update.Verify(bytes.NewReader(bundle), root, update.State{}, t0.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseRoot checks that no input makes ParseRoot panic and that what
// it accepts can be the trusted root of a Verify.
func FuzzParseRoot(f *testing.F) {
	keys := testKeys(1)
	root := newRoot(f, keys, t0.AddDate(5, 0, 0))
	f.Add(root)
	f.Add(rotateRoot(f, root, keys.Root, testKeys(4)))
	f.Add([]byte(`{"signed":null,"signatures":[]}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := update.ParseRoot(data); err != nil {
			return
		}
		if _, err := update.Verify(bytes.NewReader(nil), data, update.State{}, t0); err == nil {
			t.Fatal("Verify of an empty bundle passed")
		} else if _, ok := errors.AsType[*update.Error](err); !ok {
			t.Fatalf("Verify with a root ParseRoot accepts = %v, want an *update.Error about the bundle", err)
		}
	})
}
