// Package agentauth admits the agents of machines to the control plane:
// one-time bootstrap tokens, the node CA that signs each agent's key into
// a short-lived client certificate, renewal over mTLS, and revocation.
// Its state (the CA, tokens, revocations) is in etcd, so that every
// replica admits and verifies agents alike.
//
// A token grants one machine, or every machine of one cluster, a single
// join each; it expires. A certificate names its machine (CommonName) and
// cluster (Organization); a revoked machine's certificates issued before
// the revocation are refused, and it joins again only with a new token.
package agentauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
)

// Errors a join or a verification fails with; the agent API maps them to
// its answers.
var (
	ErrBadToken = errors.New("the bootstrap token is unknown, expired or already used")
	ErrRevoked  = errors.New("the machine's certificate is revoked")
	ErrBadCSR   = errors.New("the certificate request is invalid")
)

// Config configures an Authority.
type Config struct {
	// CertTTL is how long an agent's certificate is valid (default 24h);
	// agents renew it when a third is left.
	CertTTL time.Duration
	// CAValidity is how long a node CA is valid (default ten years); it is
	// replaced when a third is left (RotateIfDue).
	CAValidity time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Authority is the node CA and the token and revocation books.
type Authority struct {
	st  *store.Store
	cfg Config
	// cas follows the node CA's record, which any replica may rotate;
	// state is what was parsed of it, at the mirror's version.
	cas     *store.Mirror[caRecord]
	state   atomic.Pointer[caState]
	revoked *store.Mirror[revocation]
	// verified remembers certificates whose chain checked out: SHA-256 of
	// the certificate → its NotAfter.
	verified      sync.Map
	verifiedCount atomic.Uint64
}

// caRecord is the node CA as kept in etcd: the current one, which signs,
// and those it replaced, still trusted until the last certificate they
// signed has expired.
type caRecord struct {
	CertPEM string      `json:"certPem"`
	KeyPEM  string      `json:"keyPem"`
	Retired []retiredCA `json:"retired,omitempty"`
}

type retiredCA struct {
	CertPEM      string    `json:"certPem"`
	TrustedUntil time.Time `json:"trustedUntil"`
}

// caState is a caRecord parsed: the signing CA, and the pool of every CA
// an agent's certificate may chain to.
type caState struct {
	version uint64 // of the mirror it was parsed at
	cert    *x509.Certificate
	pem     []byte
	key     *ecdsa.PrivateKey
	retired []retiredCA
	roots   []*x509.Certificate // the current CA, then the retired ones
}

// tokenRecord is a bootstrap token, kept under the SHA-256 of its value.
type tokenRecord struct {
	Cluster string    `json:"cluster"`
	Machine string    `json:"machine,omitempty"` // empty: any machine of the cluster
	Expires time.Time `json:"expires"`
}

// joinRecord says a machine has used a token.
type joinRecord struct {
	At time.Time `json:"at"`
}

// revocation is a revoked machine.
type revocation struct {
	At time.Time `json:"at"`
}

var (
	caKeys      = store.NewCollection[caRecord]("agentauth/ca/")
	tokens      = store.NewCollection[tokenRecord]("agentauth/tokens/")
	joins       = store.NewCollection[joinRecord]("agentauth/joins/")
	revocations = store.NewCollection[revocation]("agentauth/revoked/")
)

const caName = "node-ca"

// backdate is how far before its issue a certificate's validity starts,
// for agents whose clock is a little behind; NotBefore+backdate is when it
// was issued.
const backdate = time.Minute

// Open loads the node CA from the store, creating it on the first start,
// and follows revocations until ctx ends.
func Open(ctx context.Context, st *store.Store, cfg Config) (*Authority, error) {
	if cfg.CertTTL <= 0 {
		cfg.CertTTL = 24 * time.Hour
	}
	if cfg.CAValidity <= 0 {
		cfg.CAValidity = 10 * 365 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Authority{st: st, cfg: cfg}
	if _, err := loadOrCreateCA(ctx, st, cfg.Now(), cfg.CAValidity); err != nil {
		return nil, err
	}
	a.cas = store.NewMirror(ctx, st, caKeys)
	if err := a.cas.Wait(ctx); err != nil {
		return nil, err
	}
	if _, err := a.current(); err != nil {
		return nil, err
	}
	a.revoked = store.NewMirror(ctx, st, revocations)
	if err := a.revoked.Wait(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func loadOrCreateCA(ctx context.Context, st *store.Store, now time.Time, validity time.Duration) (caRecord, error) {
	it, err := caKeys.Get(ctx, st, caName)
	if err == nil {
		return it.Value, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return caRecord{}, err
	}
	rec, err := newCA(now, validity)
	if err != nil {
		return caRecord{}, err
	}
	if _, err := st.Txn(ctx, caKeys.Create(caName, rec)); errors.Is(err, store.ErrConflict) {
		return loadOrCreateCA(ctx, st, now, validity) // another replica created it first
	} else if err != nil {
		return caRecord{}, err
	}
	return rec, nil
}

func newCA(now time.Time, validity time.Duration) (caRecord, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return caRecord{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Citadel Node CA", Organization: []string{"Citadel"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return caRecord{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return caRecord{}, err
	}
	return caRecord{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}, nil
}

// current is the node CA as the store has it now, parsed again when a
// replica rotated it.
func (a *Authority) current() (*caState, error) {
	v := a.cas.Version()
	if st := a.state.Load(); st != nil && st.version == v {
		return st, nil
	}
	it, ok := a.cas.Get(caName)
	if !ok {
		return nil, errors.New("agentauth: the node CA is missing from the store")
	}
	st, err := parseCA(it.Value)
	if err != nil {
		return nil, err
	}
	st.version = v
	a.state.Store(st)
	return st, nil
}

func parseCA(rec caRecord) (*caState, error) {
	pair, err := tls.X509KeyPair([]byte(rec.CertPEM), []byte(rec.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("agentauth: node CA: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("agentauth: node CA: the key is not ECDSA")
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("agentauth: node CA: %w", err)
	}
	st := &caState{cert: cert, pem: []byte(rec.CertPEM), key: key, retired: rec.Retired, roots: []*x509.Certificate{cert}}
	for _, r := range rec.Retired {
		b, _ := pem.Decode([]byte(r.CertPEM))
		if b == nil {
			return nil, errors.New("agentauth: a retired node CA is not PEM")
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("agentauth: retired node CA: %w", err)
		}
		st.roots = append(st.roots, c)
	}
	return st, nil
}

// CACertPEM is the node CA's certificate, which agents' certificates
// chain to.
func (a *Authority) CACertPEM() []byte {
	st, err := a.current()
	if err != nil {
		return nil
	}
	return st.pem
}

// CACertificate is the node CA's certificate, parsed.
func (a *Authority) CACertificate() *x509.Certificate {
	st, err := a.current()
	if err != nil {
		return nil
	}
	return st.cert
}

// RotateIfDue replaces the node CA when a third of its validity is left,
// and reports whether it did. The CA it replaces is still trusted until
// every certificate it signed has expired (CertTTL), so agents keep
// working and move to the new CA at their next renewal. Replicas may call
// it at once: one rotates, the others see its rotation.
func (a *Authority) RotateIfDue(ctx context.Context) (bool, error) {
	st, err := a.current()
	if err != nil {
		return false, err
	}
	now := a.cfg.Now()
	if st.cert.NotAfter.Sub(now) > st.cert.NotAfter.Sub(st.cert.NotBefore)/3 {
		return false, nil
	}
	return true, a.Rotate(ctx)
}

// Rotate replaces the node CA now (see RotateIfDue).
func (a *Authority) Rotate(ctx context.Context) error {
	it, err := caKeys.Get(ctx, a.st, caName)
	if err != nil {
		return err
	}
	now := a.cfg.Now()
	next, err := newCA(now, a.cfg.CAValidity)
	if err != nil {
		return err
	}
	for _, r := range it.Value.Retired {
		if r.TrustedUntil.After(now) {
			next.Retired = append(next.Retired, r)
		}
	}
	next.Retired = append(next.Retired, retiredCA{CertPEM: it.Value.CertPEM, TrustedUntil: now.Add(a.cfg.CertTTL + backdate).UTC()})
	// Every replica, this one too, moves to the new CA when its mirror
	// sees the change; until then it signs with the old one, which stays
	// trusted.
	if _, err := a.st.Txn(ctx, caKeys.Update(caName, next, it.Revision)); err != nil && !errors.Is(err, store.ErrConflict) {
		return err // a conflict: another replica rotated it first
	}
	return nil
}

// Grant says whom a token admits: one machine of a cluster, or any
// machine of it when Machine is empty.
type Grant struct {
	Cluster, Machine string
}

// IssueToken creates a bootstrap token for grant, valid for ttl.
func (a *Authority) IssueToken(ctx context.Context, g Grant, ttl time.Duration) (token string, expires time.Time, err error) {
	if g.Cluster == "" || ttl <= 0 {
		return "", time.Time{}, errors.New("agentauth: a token needs a cluster and a lifetime")
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token = base64.RawURLEncoding.EncodeToString(raw)
	expires = a.cfg.Now().Add(ttl).UTC()
	if _, err := a.st.Txn(ctx, tokens.Create(tokenKey(token), tokenRecord{Cluster: g.Cluster, Machine: g.Machine, Expires: expires})); err != nil {
		return "", time.Time{}, err
	}
	return token, expires, nil
}

func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Join admits machine with token: it checks that the token grants the
// machine and that the machine has not used it, records the use, and
// signs the agent's certificate request (PEM). inCluster says whether a
// machine belongs to a cluster, for tokens that grant a whole cluster.
func (a *Authority) Join(ctx context.Context, token, machine string, csrPEM []byte,
	inCluster func(ctx context.Context, cluster, machine string) bool) ([]byte, error) {
	if machine == "" {
		return nil, fmt.Errorf("%w: no machine named", ErrBadToken)
	}
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	key := tokenKey(token)
	it, err := tokens.Get(ctx, a.st, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrBadToken
	}
	if err != nil {
		return nil, err
	}
	g := it.Value
	switch {
	case !a.cfg.Now().Before(g.Expires):
		return nil, ErrBadToken
	case g.Machine != "" && g.Machine != machine:
		return nil, fmt.Errorf("%w: it grants another machine", ErrBadToken)
	case g.Machine == "" && (inCluster == nil || !inCluster(ctx, g.Cluster, machine)):
		return nil, fmt.Errorf("%w: %s is not a machine of its cluster", ErrBadToken, machine)
	}
	// The use is recorded only if the token is still the one read: a
	// token deleted meanwhile, or this machine's second use, fails.
	if _, err := a.st.Txn(ctx, store.Unchanged(tokens.Key(key), it.Revision),
		joins.Create(key+"/"+machine, joinRecord{At: a.cfg.Now().UTC()})); errors.Is(err, store.ErrConflict) {
		return nil, ErrBadToken
	} else if err != nil {
		return nil, err
	}
	return a.sign(csr, machine, g.Cluster)
}

// Renew signs a new certificate for the machine of peer, an agent's
// current certificate already verified by Verify.
func (a *Authority) Renew(peer *x509.Certificate, csrPEM []byte) ([]byte, error) {
	if err := a.Verify(peer); err != nil {
		return nil, err
	}
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	cluster := ""
	if len(peer.Subject.Organization) > 0 {
		cluster = peer.Subject.Organization[0]
	}
	return a.sign(csr, peer.Subject.CommonName, cluster)
}

func parseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%w: not a PEM CERTIFICATE REQUEST", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	return csr, nil
}

// Admit signs a client certificate naming subject for the key of csrPEM,
// without a token: for a caller that has vouched for the subject itself
// (a network device bootstrapping by its serial number while its
// networkDevice waits for it).
func (a *Authority) Admit(subject string, csrPEM []byte) ([]byte, error) {
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	return a.sign(csr, subject, "")
}

// sign issues the client certificate of machine in cluster for the key of
// csr; the names come from the grant, never from the request.
func (a *Authority) sign(csr *x509.CertificateRequest, machine, cluster string) ([]byte, error) {
	st, err := a.current()
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	notBefore := now.Add(-backdate).Truncate(time.Second) // what x509 keeps of it
	if r, ok := a.revoked.Get(machine); ok && !notBefore.Add(backdate).After(r.Value.At) {
		// Revoked earlier in this very second: the new certificate
		// must still count as issued after the revocation.
		notBefore = r.Value.At.Truncate(time.Second).Add(time.Second - backdate)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: machine, Organization: []string{cluster}},
		NotBefore:    notBefore,
		NotAfter:     now.Add(a.cfg.CertTTL),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, st.cert, csr.PublicKey, st.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// Revoke refuses the certificates machine holds now; it must join again
// with a new token.
func (a *Authority) Revoke(ctx context.Context, machine string) error {
	_, err := a.st.Txn(ctx, revocations.Put(machine, revocation{At: a.cfg.Now().UTC()}))
	return err
}

// Verify checks an agent's client certificate: signed by the node CA, in
// its validity, for client authentication, and not revoked. It runs on
// every request of the agent API; revocations are read from memory.
func (a *Authority) Verify(cert *x509.Certificate) error {
	now := a.cfg.Now()
	if err := a.verifyChain(cert, now); err != nil {
		return err
	}
	if r, ok := a.revoked.Get(cert.Subject.CommonName); ok && !cert.NotBefore.Add(backdate).After(r.Value.At) {
		return fmt.Errorf("%w: %s since %s", ErrRevoked, cert.Subject.CommonName, r.Value.At.Format(time.RFC3339))
	}
	return nil
}

// verifyChain checks that the node CA signed cert for client
// authentication and that now is in its validity. A certificate that
// passed is remembered by its hash until it expires, so that the
// signature is checked once per certificate rather than per heartbeat.
func (a *Authority) verifyChain(cert *x509.Certificate, now time.Time) error {
	key := sha256.Sum256(cert.Raw)
	if until, ok := a.verified.Load(key); ok && now.Before(until.(time.Time)) && !now.Before(cert.NotBefore) {
		return nil
	}
	st, err := a.current()
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	for i, root := range st.roots {
		if i == 0 || st.retired[i-1].TrustedUntil.After(now) {
			pool.AddCert(root)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return err
	}
	a.verified.Store(key, cert.NotAfter)
	if a.verifiedCount.Add(1)%1024 == 0 { // now and then, forget the expired
		a.verified.Range(func(k, until any) bool {
			if !now.Before(until.(time.Time)) {
				a.verified.Delete(k)
			}
			return true
		})
	}
	return nil
}

// ServerTLS is the agent API's TLS configuration on top of base (which
// holds the server certificate): a client certificate is asked for but
// not checked in the handshake, so that a revoked or expired one gets an
// answer the agent understands; Peer checks it on each request.
func (a *Authority) ServerTLS(base *tls.Config) *tls.Config {
	c := base.Clone()
	c.ClientAuth = tls.RequestClientCert
	return c
}

// Peer verifies the client certificate of a request to the agent API and
// returns the machine and cluster it names.
func (a *Authority) Peer(r *http.Request) (machine, cluster string, err error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", "", errors.New("no client certificate: join first")
	}
	cert := r.TLS.PeerCertificates[0]
	if err := a.Verify(cert); err != nil {
		return "", "", err
	}
	if len(cert.Subject.Organization) > 0 {
		cluster = cert.Subject.Organization[0]
	}
	return cert.Subject.CommonName, cluster, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
