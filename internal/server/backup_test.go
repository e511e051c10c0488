package server

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarOf builds a tar stream of name → content.
func tarOf(t testing.TB, files ...[2]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		if err := addFile(tw, f[0], int64(len(f[1])), strings.NewReader(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	return b.Bytes()
}

func TestRestoreRefuses(t *testing.T) {
	manifest := [2]string{manifestName, `{"format": 1, "files": ["pki/ca.crt"]}`}
	for _, tc := range []struct {
		name  string
		input []byte
		want  string
	}{
		{"not a tar", []byte("hello"), "damaged or truncated"},
		{"empty", tarOf(t), "no manifest"},
		{"escaping path", tarOf(t, manifest, [2]string{"data/../../etc/passwd", "x"}), "not a file a backup takes"},
		{"other directory", tarOf(t, manifest, [2]string{"data/images/cluster.iso", "x"}), "not a file a backup takes"},
		{"unknown entry", tarOf(t, [2]string{"notes.txt", "x"}), "not a file a backup takes"},
		{"future format", tarOf(t, [2]string{manifestName, `{"format": 9}`}), "format 9"},
		{"listed file missing", tarOf(t, manifest, [2]string{snapshotName, "x"}), "lists pki/ca.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if _, err := Restore(bytes.NewReader(tc.input), dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Restore() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	used := t.TempDir()
	os.WriteFile(filepath.Join(used, "x"), nil, 0o600)
	if _, err := Restore(bytes.NewReader(tarOf(t, manifest)), used); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Restore into a used directory = %v, want refused", err)
	}
}

// FuzzRestore: whatever the backup holds, Restore never panics and never
// writes outside the data directory.
func FuzzRestore(f *testing.F) {
	f.Add(tarOf(f, [2]string{manifestName, `{"format": 1}`}, [2]string{"data/pki/ca.crt", "x"}))
	f.Add(tarOf(f, [2]string{"data/../x", "x"}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, input []byte) {
		root := t.TempDir()
		Restore(bytes.NewReader(input), filepath.Join(root, "data"))
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if e.Name() != "data" {
				t.Fatalf("Restore wrote %s outside the data directory", e.Name())
			}
		}
	})
}
