package update

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Keys are a vendor's signing keys, one set per TUF role. The root keys
// decide which keys may sign the other three and are best kept offline;
// the targets, snapshot and timestamp keys sign every bundle.
//
// Keys marshal to JSON as
//
//	{"root": {"threshold": 2, "keys": ["-----BEGIN PRIVATE KEY-----\n...", ...]},
//	 "targets": {...}, "snapshot": {...}, "timestamp": {...}}
//
// with each key a PKCS #8 PEM block; [ParseKeys] also accepts a key as
// base64 of its PKCS #8 DER, of its 32-byte seed or of its 64-byte
// private key. The file is the vendor's secret: whoever holds it can sign
// bundles.
type Keys struct {
	Root      RoleKeys `json:"root"`
	Targets   RoleKeys `json:"targets"`
	Snapshot  RoleKeys `json:"snapshot"`
	Timestamp RoleKeys `json:"timestamp"`
}

// RoleKeys are one role's private keys and how many of them must sign.
type RoleKeys struct {
	Threshold int
	Keys      []ed25519.PrivateKey
}

// GenerateKeys makes new keys: rootKeys root keys of which rootThreshold
// must sign a root, and one key for each of the other roles.
func GenerateKeys(rootKeys, rootThreshold int) (Keys, error) {
	if rootKeys < 1 || rootThreshold < 1 || rootThreshold > rootKeys {
		return Keys{}, fmt.Errorf("update: a root threshold of %d of %d keys is not possible", rootThreshold, rootKeys)
	}
	gen := func(n, threshold int) (RoleKeys, error) {
		rk := RoleKeys{Threshold: threshold}
		for range n {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return rk, fmt.Errorf("update: generate key: %w", err)
			}
			rk.Keys = append(rk.Keys, k)
		}
		return rk, nil
	}
	var k Keys
	var err error
	if k.Root, err = gen(rootKeys, rootThreshold); err != nil {
		return Keys{}, err
	}
	for _, rk := range []*RoleKeys{&k.Targets, &k.Snapshot, &k.Timestamp} {
		if *rk, err = gen(1, 1); err != nil {
			return Keys{}, err
		}
	}
	return k, nil
}

// ParseKeys reads Keys from their JSON form and checks them.
func ParseKeys(data []byte) (Keys, error) {
	var k Keys
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return Keys{}, fmt.Errorf("update: keys: %w", err)
	}
	if err := k.validate(); err != nil {
		return Keys{}, err
	}
	return k, nil
}

// role is a TUF role's name and keys.
type role struct {
	name string
	keys RoleKeys
}

func (k Keys) roles() []role {
	return []role{{metadata.ROOT, k.Root}, {metadata.TARGETS, k.Targets}, {metadata.SNAPSHOT, k.Snapshot}, {metadata.TIMESTAMP, k.Timestamp}}
}

func (k Keys) validate() error {
	for _, r := range k.roles() {
		if err := r.keys.validate(); err != nil {
			return fmt.Errorf("update: %s keys: %w", r.name, err)
		}
	}
	return nil
}

func (rk RoleKeys) validate() error {
	if rk.Threshold < 1 || rk.Threshold > len(rk.Keys) {
		return fmt.Errorf("a threshold of %d of %d keys is not possible", rk.Threshold, len(rk.Keys))
	}
	seen := map[string]bool{}
	for i, k := range rk.Keys {
		if len(k) != ed25519.PrivateKeySize {
			return fmt.Errorf("key %d is not an ed25519 private key", i)
		}
		pub := string(k.Public().(ed25519.PublicKey))
		if seen[pub] {
			return fmt.Errorf("key %d appears twice", i)
		}
		seen[pub] = true
	}
	return nil
}

type roleKeysJSON struct {
	Threshold int      `json:"threshold"`
	Keys      []string `json:"keys"`
}

// MarshalJSON writes each key as a PKCS #8 PEM block.
func (rk RoleKeys) MarshalJSON() ([]byte, error) {
	out := roleKeysJSON{Threshold: rk.Threshold, Keys: []string{}}
	for _, k := range rk.Keys {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		out.Keys = append(out.Keys, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads keys as PKCS #8 PEM blocks or base64 of PKCS #8
// DER, a 32-byte seed or a 64-byte private key.
func (rk *RoleKeys) UnmarshalJSON(data []byte) error {
	var in roleKeysJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*rk = RoleKeys{Threshold: in.Threshold}
	for i, s := range in.Keys {
		k, err := parsePrivateKey(s)
		if err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		rk.Keys = append(rk.Keys, k)
	}
	return nil
}

func parsePrivateKey(s string) (ed25519.PrivateKey, error) {
	var der []byte
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
		block, rest := pem.Decode([]byte(s))
		if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, errors.New("not one PEM block of type PRIVATE KEY")
		}
		der = block.Bytes
	} else {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, errors.New("neither PEM nor base64")
		}
		switch len(raw) {
		case ed25519.SeedSize:
			return ed25519.NewKeyFromSeed(raw), nil
		case ed25519.PrivateKeySize:
			k := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
			if !bytes.Equal(k, raw) {
				return nil, errors.New("the public half of the 64-byte key does not belong to its seed")
			}
			return k, nil
		}
		der = raw
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS #8 private key: %w", err)
	}
	k, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an ed25519 key", key)
	}
	return k, nil
}

// sign adds a signature by each of keys to m, skipping keys that signed it
// already (a key in both the old and the new root signs a rotation once).
func sign[T metadata.Roles](m *metadata.Metadata[T], keys []ed25519.PrivateKey) error {
	for _, k := range keys {
		id, err := keyID(k.Public())
		if err != nil {
			return err
		}
		if slices.ContainsFunc(m.Signatures, func(s metadata.Signature) bool { return s.KeyID == id }) {
			continue
		}
		s, err := signature.LoadSigner(k, crypto.Hash(0))
		if err != nil {
			return fmt.Errorf("update: load signer: %w", err)
		}
		if _, err := m.Sign(s); err != nil {
			return fmt.Errorf("update: sign: %w", err)
		}
	}
	return nil
}

func keyID(pub crypto.PublicKey) (string, error) {
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return "", err
	}
	return k.ID()
}
