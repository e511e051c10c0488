package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/store"
)

// minPasswordLen is the password policy for local users, in characters.
const minPasswordLen = 12

// ServicePrincipal is an application identity that signs in with a client
// secret or a certificate (az login --service-principal). Credentials are
// listed without their secret material.
type ServicePrincipal struct {
	AppID        string            `json:"appId"`
	ObjectID     string            `json:"objectId"`
	DisplayName  string            `json:"displayName"`
	Created      time.Time         `json:"created"`
	Secrets      []SecretInfo      `json:"secrets,omitempty"`
	Certificates []CertificateInfo `json:"certificates,omitempty"`
}

// SecretInfo describes a client secret.
type SecretInfo struct {
	ID      string    `json:"id"`
	Hint    string    `json:"hint"` // the first three characters, as Entra shows them
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
}

// CertificateInfo describes a certificate a service principal signs its
// client assertions with.
type CertificateInfo struct {
	ID         string    `json:"id"`
	Thumbprint string    `json:"thumbprint"` // SHA-1, upper-case hex, as az shows it
	Subject    string    `json:"subject"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"` // the certificate's NotAfter
}

// User is a local user who signs in with a password.
type User struct {
	UPN         string    `json:"upn"`
	ObjectID    string    `json:"objectId"`
	DisplayName string    `json:"displayName"`
	Created     time.Time `json:"created"`
}

// Stored records. Secrets and passwords are kept only as argon2id hashes.
type (
	spDoc struct {
		ServicePrincipal
		SecretHashes []secretDoc `json:"secretHashes,omitempty"`
		CertDERs     []certDoc   `json:"certificateData,omitempty"`
	}
	secretDoc struct {
		ID   string `json:"id"`
		Hash string `json:"hash"`
	}
	certDoc struct {
		ID  string `json:"id"`
		DER []byte `json:"der"`
	}
	userDoc struct {
		User
		PasswordHash string `json:"passwordHash"`
	}
)

var (
	servicePrincipals = store.NewCollection[spDoc]("identity/servicePrincipals/")
	users             = store.NewCollection[userDoc]("identity/users/")
)

func badRequest(format string, args ...any) *arm.Error {
	return arm.Errorf(http.StatusBadRequest, arm.CodeBadRequest, format, args...)
}

// CreateServicePrincipal makes a service principal with random application
// and object IDs and one client secret that does not expire. The secret is
// returned once; only its hash is kept.
func (i *Issuer) CreateServicePrincipal(ctx context.Context, displayName string) (ServicePrincipal, string, error) {
	sp, secret, _, err := i.PutServicePrincipal(ctx, uuid.NewString(), displayName, nil)
	return sp, secret, err
}

// GetServicePrincipal reads the service principal with application ID
// appID. A missing one is an error wrapping store.ErrNotFound.
func (i *Issuer) GetServicePrincipal(ctx context.Context, appID string) (ServicePrincipal, error) {
	it, err := i.getSP(ctx, appID)
	if err != nil {
		return ServicePrincipal{}, err
	}
	return it.Value.ServicePrincipal, nil
}

func (i *Issuer) getSP(ctx context.Context, appID string) (store.Item[spDoc], error) {
	key, ok := spKey(appID)
	if !ok {
		return store.Item[spDoc]{}, fmt.Errorf("identity: service principal %q: %w", appID, store.ErrNotFound)
	}
	it, err := servicePrincipals.Get(ctx, i.store, key)
	if err != nil {
		return store.Item[spDoc]{}, fmt.Errorf("identity: service principal %q: %w", appID, err)
	}
	return it, nil
}

// spKey is the store name of a service principal: its application ID,
// which must be a UUID (lower-cased).
func spKey(appID string) (string, bool) {
	u, err := uuid.Parse(appID)
	if err != nil || len(appID) != 36 {
		return "", false
	}
	return u.String(), true
}

// updateSP applies change to the service principal appID with a
// compare-and-swap, retrying when somebody else wrote it first.
func (i *Issuer) updateSP(ctx context.Context, appID string, change func(*spDoc) error) error {
	for range 5 {
		it, err := i.getSP(ctx, appID)
		if err != nil {
			return err
		}
		if err := change(&it.Value); err != nil {
			return err
		}
		_, err = i.store.Txn(ctx, servicePrincipals.Update(it.Name, it.Value, it.Revision))
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("identity: service principal %q: %w", appID, err)
		}
		return nil
	}
	return fmt.Errorf("identity: service principal %q: %w", appID, store.ErrConflict)
}

// AddSecret adds a client secret to the service principal appID. A zero
// expires means the secret does not expire. The secret is returned once;
// only its hash is kept.
func (i *Issuer) AddSecret(ctx context.Context, appID string, expires time.Time) (secretID, secret string, err error) {
	now := i.now().UTC()
	if !expires.IsZero() && !expires.After(now) {
		return "", "", badRequest("The expiry of a client secret must be in the future.")
	}
	secret = newSecret()
	hash, err := hashSecret(ctx, secret)
	if err != nil {
		return "", "", fmt.Errorf("identity: service principal %q: add secret: %w", appID, err)
	}
	secretID = uuid.NewString()
	err = i.updateSP(ctx, appID, func(d *spDoc) error {
		d.Secrets = append(d.Secrets, SecretInfo{ID: secretID, Hint: secret[:3], Created: now, Expires: expires.UTC()})
		d.SecretHashes = append(d.SecretHashes, secretDoc{ID: secretID, Hash: hash})
		return nil
	})
	if err != nil {
		return "", "", err
	}
	i.log.InfoContext(ctx, "client secret added", "app_id", appID, "secret_id", secretID)
	return secretID, secret, nil
}

// AddCertificate registers the certificate in certPEM (the first
// CERTIFICATE block; a private key in the same file is ignored) as a
// credential of the service principal appID: the principal may then sign in
// with a client assertion signed by its key (RSA of 2048 bits or more, or
// ECDSA P-256). The credential expires with the certificate. Adding a
// certificate that is already registered does nothing.
func (i *Issuer) AddCertificate(ctx context.Context, appID string, certPEM []byte) error {
	var cert *x509.Certificate
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return badRequest("The certificate is not a PEM-encoded X.509 certificate.")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return badRequest("The certificate cannot be parsed: %v.", err)
		}
		cert = c
		break
	}
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return badRequest("The certificate's RSA key has %d bits; at least 2048 are required.", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return badRequest("The certificate's ECDSA key must be on curve P-256.")
		}
	default:
		return badRequest("The certificate's key must be RSA or ECDSA P-256.")
	}
	now := i.now().UTC()
	if !cert.NotAfter.After(now) {
		return badRequest("The certificate expired on %s.", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	info := CertificateInfo{
		ID:         uuid.NewString(),
		Thumbprint: thumbprintSHA1(cert.Raw),
		Subject:    cert.Subject.String(),
		Created:    now,
		Expires:    cert.NotAfter.UTC(),
	}
	err := i.updateSP(ctx, appID, func(d *spDoc) error {
		if slices.ContainsFunc(d.Certificates, func(c CertificateInfo) bool { return c.Thumbprint == info.Thumbprint }) {
			info.ID = ""
			return nil
		}
		d.Certificates = append(d.Certificates, info)
		d.CertDERs = append(d.CertDERs, certDoc{ID: info.ID, DER: cert.Raw})
		return nil
	})
	if err != nil {
		return err
	}
	if info.ID != "" {
		i.log.InfoContext(ctx, "certificate added", "app_id", appID, "thumbprint", info.Thumbprint)
	}
	return nil
}

func thumbprintSHA1(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func thumbprintSHA256(der []byte) []byte {
	sum := sha256.Sum256(der)
	return sum[:]
}

// CreateUser makes a local user who signs in with upn and password (the
// OAuth2 password grant). UPNs are unique without regard to case. The
// password must have at least 12 characters; only its hash is kept.
func (i *Issuer) CreateUser(ctx context.Context, upn, displayName, password string) (User, error) {
	if password == "" {
		return User{}, badRequest("The password must have at least %d characters.", minPasswordLen)
	}
	if _, err := i.GetUser(ctx, upn); err == nil {
		return User{}, fmt.Errorf("identity: create user %q: %w", upn, store.ErrConflict)
	}
	u, _, err := i.PutUser(ctx, upn, displayName, password, nil)
	if err == nil {
		i.log.InfoContext(ctx, "user created", "upn", upn, "object_id", u.ObjectID)
	}
	return u, err
}

// GetUser reads the user called upn (any case). A missing one is an error
// wrapping store.ErrNotFound.
func (i *Issuer) GetUser(ctx context.Context, upn string) (User, error) {
	it, err := i.getUser(ctx, upn)
	if err != nil {
		return User{}, err
	}
	return it.Value.User, nil
}

func (i *Issuer) getUser(ctx context.Context, upn string) (store.Item[userDoc], error) {
	if checkUPN(upn) != nil {
		return store.Item[userDoc]{}, fmt.Errorf("identity: user %q: %w", upn, store.ErrNotFound)
	}
	it, err := users.Get(ctx, i.store, strings.ToLower(upn))
	if err != nil {
		return store.Item[userDoc]{}, fmt.Errorf("identity: user %q: %w", upn, err)
	}
	return it, nil
}

// checkUPN accepts name@domain without spaces, control characters or
// slashes (the UPN is a store key), at most 256 bytes.
func checkUPN(upn string) error {
	local, domain, ok := strings.Cut(upn, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || len(upn) > 256 || !utf8.ValidString(upn) ||
		strings.ContainsFunc(upn, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' }) {
		return badRequest("The user principal name '%s' is not of the form name@domain.", upn)
	}
	return nil
}

// ServicePrincipals lists the service principals, by application ID.
func (i *Issuer) ServicePrincipals(ctx context.Context) ([]ServicePrincipal, error) {
	items, _, err := servicePrincipals.List(ctx, i.store, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("identity: list service principals: %w", err)
	}
	out := make([]ServicePrincipal, len(items))
	for j, it := range items {
		out[j] = it.Value.ServicePrincipal
	}
	return out, nil
}

// Users lists the local users, by UPN.
func (i *Issuer) Users(ctx context.Context) ([]User, error) {
	items, _, err := users.List(ctx, i.store, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("identity: list users: %w", err)
	}
	out := make([]User, len(items))
	for j, it := range items {
		out[j] = it.Value.User
	}
	return out, nil
}
