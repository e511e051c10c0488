package identity

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
)

const (
	keyBits = 2048
	// keyPruneLeeway is added to the token lifetime before a retired key's
	// public half is dropped: the last token it signed may still be in use.
	keyPruneLeeway = 5 * time.Minute
	// keyRefresh is how long a replica trusts its cached key set before it
	// re-reads the store on the signing path (another replica may have
	// rotated).
	keyRefresh = time.Minute
	// keyReloadInterval rate-limits store reads caused by tokens with an
	// unknown kid, which anybody can send.
	keyReloadInterval = time.Second
)

// keyDoc is a signing key as stored under identity/keys/{generation}. The
// generation (zero-padded, so that key order is age order) makes rotation a
// compare-and-swap: replicas that rotate at once all try to create the same
// name, one wins and the others read its key.
type keyDoc struct {
	Kid        string    `json:"kid"`
	Created    time.Time `json:"created"`
	PrivateKey []byte    `json:"privateKey"` // PKCS #8 DER
}

var keys = store.NewCollection[keyDoc]("identity/keys/")

func keyName(gen int64) string { return fmt.Sprintf("%020d", gen) }

// signingKey is a parsed key of the set.
type signingKey struct {
	gen     int64
	rev     int64
	kid     string
	created time.Time
	priv    *rsa.PrivateKey
	header  string // the encoded JWT header of tokens it signs
	jwk     jwk
}

// keySet is an immutable snapshot of the keys, oldest first; the newest is
// the active one.
type keySet struct {
	keys   []*signingKey
	byKid  map[string]*signingKey
	loaded time.Time // wall clock, for keyRefresh
	// pruneAt is the earliest time a retired key is due to be dropped.
	pruneAt time.Time
}

func (ks *keySet) active() *signingKey {
	if ks == nil || len(ks.keys) == 0 {
		return nil
	}
	return ks.keys[len(ks.keys)-1]
}

// current reports whether ks can be used for signing at now without a
// visit to the store.
func (i *Issuer) current(ks *keySet, now time.Time) bool {
	a := ks.active()
	return a != nil &&
		now.Sub(a.created) < i.rotation &&
		time.Since(ks.loaded) < keyRefresh &&
		(ks.pruneAt.IsZero() || now.Before(ks.pruneAt))
}

// keySet returns the current keys, rotating and pruning them first if due.
func (i *Issuer) keySet(ctx context.Context) (*keySet, error) {
	if ks := i.keys.Load(); ks.active() != nil {
		if i.current(ks, i.now()) {
			return ks, nil
		}
		// Generating a key takes from 0.1 to several seconds. While
		// another request does it, the old key is still good to use.
		if !i.keysMu.TryLock() {
			return ks, nil
		}
	} else {
		i.keysMu.Lock()
	}
	defer i.keysMu.Unlock()
	if ks := i.keys.Load(); ks != nil && i.current(ks, i.now()) {
		return ks, nil
	}
	return i.maintainKeys(ctx)
}

// maintainKeys reads the keys, makes a new one when the active key is older
// than the rotation period, and deletes retired keys whose tokens have all
// expired. Called with keysMu held.
func (i *Issuer) maintainKeys(ctx context.Context) (*keySet, error) {
	for range 3 {
		ks, err := i.loadKeys(ctx)
		if err != nil {
			return nil, err
		}
		now := i.now()
		a := ks.active()
		if a != nil && now.Sub(a.created) < i.rotation {
			ks = i.pruneKeys(ctx, ks, now)
			i.keys.Store(ks)
			return ks, nil
		}
		gen := int64(1)
		if a != nil {
			gen = a.gen + 1
		}
		priv, err := rsa.GenerateKey(rand.Reader, keyBits)
		if err != nil {
			return nil, fmt.Errorf("identity: generate signing key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("identity: encode signing key: %w", err)
		}
		doc := keyDoc{Kid: keyID(&priv.PublicKey), Created: now.UTC(), PrivateKey: der}
		_, err = i.store.Txn(ctx, keys.Create(keyName(gen), doc))
		switch {
		case errors.Is(err, store.ErrConflict):
			// Another replica rotated first: read and use its key.
			i.log.InfoContext(ctx, "signing key rotated elsewhere", "generation", gen)
		case err != nil:
			return nil, fmt.Errorf("identity: store signing key %d: %w", gen, err)
		default:
			i.log.InfoContext(ctx, "signing key created", "kid", doc.Kid, "generation", gen)
		}
	}
	return nil, errors.New("identity: signing key rotation did not settle after 3 attempts")
}

// loadKeys reads every key from the store, reusing parsed keys from the
// cached set.
func (i *Issuer) loadKeys(ctx context.Context) (*keySet, error) {
	items, _, err := keys.List(ctx, i.store, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("identity: read signing keys: %w", err)
	}
	old := i.keys.Load()
	ks := &keySet{byKid: make(map[string]*signingKey, len(items)), loaded: time.Now()}
	for _, it := range items {
		gen, err := strconv.ParseInt(it.Name, 10, 64)
		if err != nil {
			i.log.WarnContext(ctx, "ignoring malformed signing key name", "name", it.Name)
			continue
		}
		var k *signingKey
		if old != nil {
			if c := old.byKid[it.Value.Kid]; c != nil && c.gen == gen {
				k = c
			}
		}
		if k == nil {
			k, err = parseKey(gen, it.Value)
			if err != nil {
				i.log.WarnContext(ctx, "ignoring unreadable signing key", "generation", gen, "err", err)
				continue
			}
		}
		k.rev = it.Revision
		ks.keys = append(ks.keys, k)
		ks.byKid[k.kid] = k
	}
	slices.SortFunc(ks.keys, func(a, b *signingKey) int { return cmp.Compare(a.gen, b.gen) })
	for j := 0; j+1 < len(ks.keys); j++ {
		at := ks.keys[j+1].created.Add(i.lifetime + keyPruneLeeway)
		if ks.pruneAt.IsZero() || at.Before(ks.pruneAt) {
			ks.pruneAt = at
		}
	}
	return ks, nil
}

func parseKey(gen int64, doc keyDoc) (*signingKey, error) {
	p, err := x509.ParsePKCS8PrivateKey(doc.PrivateKey)
	if err != nil {
		return nil, err
	}
	priv, ok := p.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key is a %T, not RSA", p)
	}
	kid := keyID(&priv.PublicKey)
	k := &signingKey{
		gen:     gen,
		kid:     kid,
		created: doc.Created,
		priv:    priv,
		header:  base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"` + kid + `","typ":"JWT"}`)),
		jwk: jwk{
			Kty: "RSA",
			Use: "sig",
			Alg: "RS256",
			Kid: kid,
			N:   base64.RawURLEncoding.EncodeToString(priv.N.Bytes()),
			E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(priv.E)).Bytes()),
		},
	}
	return k, nil
}

// keyID is the first 22 characters (128 bits) of the key's base64url RFC 7638
// SHA-256 thumbprint.
func keyID(pub *rsa.PublicKey) string {
	n := base64.RawURLEncoding.EncodeToString(pub.N.Bytes())
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	sum := sha256.Sum256([]byte(`{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:22]
}

// pruneKeys deletes the retired keys whose tokens have all expired: a key
// retires when its successor is created, and its last token expires one
// token lifetime later (plus leeway).
func (i *Issuer) pruneKeys(ctx context.Context, ks *keySet, now time.Time) *keySet {
	if ks.pruneAt.IsZero() || now.Before(ks.pruneAt) {
		return ks
	}
	kept := &keySet{byKid: make(map[string]*signingKey, len(ks.keys)), loaded: ks.loaded}
	for j, k := range ks.keys {
		if j+1 < len(ks.keys) {
			at := ks.keys[j+1].created.Add(i.lifetime + keyPruneLeeway)
			if !now.Before(at) {
				_, err := i.store.Txn(ctx, keys.DeleteAt(keyName(k.gen), k.rev))
				if err == nil || errors.Is(err, store.ErrConflict) {
					// Deleted, by us or by another replica.
					i.log.InfoContext(ctx, "signing key pruned", "kid", k.kid, "generation", k.gen)
					continue
				}
				i.log.WarnContext(ctx, "signing key prune failed", "kid", k.kid, "err", err)
			} else if kept.pruneAt.IsZero() || at.Before(kept.pruneAt) {
				kept.pruneAt = at
			}
		}
		kept.keys = append(kept.keys, k)
		kept.byKid[k.kid] = k
	}
	return kept
}

// verificationKey returns the key called kid. An unknown kid makes it
// re-read the store, at most once per keyReloadInterval: another replica may
// have rotated.
func (i *Issuer) verificationKey(ctx context.Context, kid string) *signingKey {
	if ks := i.keys.Load(); ks != nil {
		if k := ks.byKid[kid]; k != nil {
			return k
		}
	}
	if kid == "" {
		return nil
	}
	i.keysMu.Lock()
	defer i.keysMu.Unlock()
	if ks := i.keys.Load(); ks != nil {
		if k := ks.byKid[kid]; k != nil {
			return k // another goroutine reloaded meanwhile
		}
	}
	if !i.lastReload.IsZero() && time.Since(i.lastReload) < i.reloadInterval {
		return nil
	}
	i.lastReload = time.Now()
	ks, err := i.loadKeys(ctx)
	if err != nil {
		i.log.WarnContext(ctx, "signing key reload failed", "err", err)
		return nil
	}
	i.keys.Store(ks)
	return ks.byKid[kid]
}

// jwk is a public signing key as published in the JWKS.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// serveJWKS publishes the public halves of the active and the retired (but
// not yet pruned) keys.
func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	ks, err := i.keySet(r.Context())
	if err != nil {
		i.log.ErrorContext(r.Context(), "jwks unavailable", "err", err)
		http.Error(w, "signing keys unavailable", http.StatusServiceUnavailable)
		return
	}
	out := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(ks.keys))}
	for j := len(ks.keys) - 1; j >= 0; j-- { // newest first
		out.Keys = append(out.Keys, ks.keys[j].jwk)
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, out)
}
