package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Names of the key files under the data directory.
const (
	KeyFile       = "audit-signing.key" // PKCS#8 PEM, mode 0600
	PublicKeyFile = "audit-signing.pub" // PKIX PEM, for verifiers
)

// LoadOrCreateKey returns the checkpoint signing key kept in dir, creating
// it on first use. The private key is refused if its file is readable by
// group or others. The public key file is (re)written from the private key
// when missing, and is an error when it names another key.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	priv, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err = createKey(dir, path)
	}
	if err != nil {
		return nil, err
	}
	if err := ensurePublicKey(filepath.Join(dir, PublicKeyFile), priv.Public().(ed25519.PublicKey)); err != nil {
		return nil, err
	}
	return priv, nil
}

func readKey(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("audit key %s: mode %04o lets others read it; want 0600", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	priv, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("audit key %s: %w", path, err)
	}
	return priv, nil
}

// createKey writes a new key without ever replacing an existing one: it is
// written to a temporary file and linked into place, so of two processes
// starting at once one wins and the other loads the winner's key.
func createKey(dir, path string) (ed25519.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("audit key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	tmp, err := writeTemp(dir, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	defer func() { _ = os.Remove(tmp) }()
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return readKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	return priv, nil
}

func ensurePublicKey(path string, pub ed25519.PublicKey) error {
	want, err := EncodePublicKey(pub)
	if err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	got, err := os.ReadFile(path)
	switch {
	case err == nil:
		have, perr := ParsePublicKey(got)
		if perr != nil || !have.Equal(pub) {
			return fmt.Errorf("audit public key %s does not match %s; remove it to have it rewritten", path, KeyFile)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("audit public key: %w", err)
	}
	tmp, err := writeTemp(filepath.Dir(path), want)
	if err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("audit public key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("audit public key: %w", err)
	}
	return nil
}

// writeTemp writes b to a new mode-0600 file in dir, synced, and returns
// its name.
func writeTemp(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".audit-key-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// ParsePrivateKey reads an Ed25519 private key from PKCS#8 PEM.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("not a single PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want Ed25519", k)
	}
	return priv, nil
}

// ParsePublicKey reads an Ed25519 public key from PKIX PEM, the format of
// [PublicKeyFile] and of `citadel audit verify --key`.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("not a single PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, want Ed25519", k)
	}
	return pub, nil
}

// EncodePublicKey returns pub as PKIX PEM.
func EncodePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
