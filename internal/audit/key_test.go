package audit_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/citadel-cloud/citadel/internal/audit"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	priv, err := audit.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateKey(new dir) = %v", err)
	}
	info, err := os.Stat(filepath.Join(dir, audit.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s mode = %04o, want 0600", audit.KeyFile, perm)
	}
	pubPEM, err := os.ReadFile(filepath.Join(dir, audit.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ParsePublicKey(pubPEM)
	if err != nil || !pub.Equal(priv.Public()) {
		t.Errorf("ParsePublicKey(%s) = %v, %v; want the public half of the key", audit.PublicKeyFile, pub, err)
	}
	again, err := audit.LoadOrCreateKey(dir)
	if err != nil || !again.Equal(priv) {
		t.Errorf("LoadOrCreateKey(again) = %v; want the same key", err)
	}
	// A lost public key file is rewritten.
	if err := os.Remove(filepath.Join(dir, audit.PublicKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.LoadOrCreateKey(dir); err != nil {
		t.Errorf("LoadOrCreateKey(no .pub) = %v, want nil", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, audit.PublicKeyFile)); string(b) != string(pubPEM) {
		t.Errorf("rewritten %s = %s, want %s", audit.PublicKeyFile, b, pubPEM)
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Go(func() {
			k, err := audit.LoadOrCreateKey(dir)
			if err != nil {
				t.Errorf("LoadOrCreateKey() = %v", err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i := range keys {
		if string(keys[i]) != string(keys[0]) {
			t.Fatalf("concurrent LoadOrCreateKey returned different keys")
		}
	}
}

func TestLoadOrCreateKeyErrors(t *testing.T) {
	other, err := audit.EncodePublicKey(testSigner(t, 9).PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		msg   string
	}{
		{"readable by others", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, audit.KeyFile), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "lets others read it"},
		{"corrupt key", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, audit.KeyFile), []byte("junk"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a single PEM PRIVATE KEY block"},
		{"public key of another key", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, audit.PublicKeyFile), other, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := audit.LoadOrCreateKey(dir); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			if _, err := audit.LoadOrCreateKey(dir); err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("LoadOrCreateKey() error = %v, want one containing %q", err, tt.msg)
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	pubPEM, err := audit.EncodePublicKey(testSigner(t, 1).PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"", "junk", string(pubPEM) + string(pubPEM)} {
		if _, err := audit.ParsePublicKey([]byte(in)); err == nil {
			t.Errorf("ParsePublicKey(%q) error = nil, want an error", in)
		}
	}
	if _, err := audit.ParsePrivateKey(pubPEM); err == nil {
		t.Errorf("ParsePrivateKey(a public key) error = nil, want an error")
	}
}
