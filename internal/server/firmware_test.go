package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/releases"
	"github.com/citadel-cloud/citadel/internal/update"
)

// fakeFiles is a release catalog of one release whose artifacts are
// files in dir, named by their digest as the catalog names them.
type fakeFiles struct {
	dir string
	rel releases.Release
	err error
}

func (f *fakeFiles) Releases(context.Context) ([]releases.Release, error) {
	return []releases.Release{f.rel}, f.err
}

func (f *fakeFiles) Open(_ context.Context, sha string) (*os.File, error) {
	return os.Open(filepath.Join(f.dir, sha))
}

// add puts an artifact in the release and, when onDisk, its file in dir.
func (f *fakeFiles) add(t *testing.T, kind update.Kind, content string, onDisk bool) string {
	t.Helper()
	s := sha256.Sum256([]byte(content))
	sha := hex.EncodeToString(s[:])
	f.rel.Artifacts = append(f.rel.Artifacts, releases.ArtifactInfo{Name: string(kind), Kind: kind, Version: "1", SHA256: sha, Size: int64(len(content))})
	if onDisk {
		if err := os.WriteFile(filepath.Join(f.dir, sha), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return sha
}

func TestServeFirmware(t *testing.T) {
	files := &fakeFiles{dir: t.TempDir(), rel: releases.Release{ClusterVersion: "4.3.0"}}
	const bios = "citadel-firmware BIOS 2.4.1\nthe rest of the package"
	firmware := files.add(t, update.KindFirmware, bios, true)
	agent := files.add(t, update.KindAgent, "\x7fELF the agent", true)
	elsewhere := files.add(t, update.KindFirmware, "citadel-firmware BMC 8.0\n", false)
	stray := sha256.Sum256([]byte("a file no release lists"))
	os.WriteFile(filepath.Join(files.dir, hex.EncodeToString(stray[:])), []byte("a file no release lists"), 0o600)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /firmware/{sha256}", serveFirmware(files, slog.New(slog.NewTextHandler(t.Output(), nil))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name     string
		path     string
		want     int
		wantBody string
	}{
		{"firmware of a release", "/firmware/" + firmware, 200, bios},
		{"another kind of artifact", "/firmware/" + agent, 404, ""},
		{"a file no release lists", "/firmware/" + hex.EncodeToString(stray[:]), 404, ""},
		{"firmware not on this replica", "/firmware/" + elsewhere, 404, ""},
		{"not a digest", "/firmware/" + firmware[:10], 404, ""},
		{"upper-case digest", "/firmware/" + strings.ToUpper(firmware), 404, ""},
		{"path traversal", "/firmware/..%2f..%2fetc%2fpasswd", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s = %d, want %d\n%s", tt.path, resp.StatusCode, tt.want, body)
			}
			if tt.want == 200 && (string(body) != tt.wantBody || resp.Header.Get("Content-Type") != "application/octet-stream") {
				t.Errorf("GET %s = %q (%s), want %q (application/octet-stream)", tt.path, body, resp.Header.Get("Content-Type"), tt.wantBody)
			}
		})
	}

	files.err = errors.New("the store is away")
	resp, err := http.Get(srv.URL + "/firmware/" + firmware)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("GET /firmware/%s with the catalog unreadable = %d, want 500", firmware, resp.StatusCode)
	}
}
