// Package devicetls is how Citadel trusts the devices it manages (BMCs,
// storage appliances) and how simulated devices present themselves:
// devices ship self-signed certificates, often odd ones (SHA-1, CN=hostname,
// no IP SAN) that Go's verifier rejects, so the operator pins each one by
// the SHA-256 of its certificate, or names a CA, or, knowingly, trusts
// anything.
package devicetls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Trust says which server certificates a client accepts: at most one of
// CACertPEM (a pinned CA), Fingerprint (the SHA-256 of the leaf
// certificate's DER, hex, colons optional) and Insecure. With none of them
// the system roots are used.
type Trust struct {
	CACertPEM   []byte
	Fingerprint string
	Insecure    bool
}

// Validate reports a Trust that sets more than one way, or a malformed
// fingerprint.
func (t Trust) Validate() error {
	n := 0
	for _, set := range []bool{len(t.CACertPEM) > 0, t.Fingerprint != "", t.Insecure} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("a CA certificate, a fingerprint and insecure exclude each other")
	}
	if t.Fingerprint != "" {
		if _, err := ParseFingerprint(t.Fingerprint); err != nil {
			return fmt.Errorf("fingerprint: %w", err)
		}
	}
	return nil
}

// ParseFingerprint reads a SHA-256 fingerprint: 64 hex digits, colons or
// spaces optional, either case.
func ParseFingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.NewReplacer(":", "", " ", "").Replace(s))
	if err != nil {
		return nil, err
	}
	if len(b) != sha256.Size {
		return nil, fmt.Errorf("%d bytes, want a SHA-256 (32 bytes)", len(b))
	}
	return b, nil
}

// ClientConfig is the TLS configuration that trusts what t says; nil means
// the system roots. A pinned fingerprint replaces chain verification.
func (t Trust) ClientConfig() (*tls.Config, error) {
	switch {
	case t.Fingerprint != "":
		want, err := ParseFingerprint(t.Fingerprint)
		if err != nil {
			return nil, err
		}
		return &tls.Config{
			InsecureSkipVerify: true, // replaced by the fingerprint check below
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return errors.New("the device sent no certificate")
				}
				got := sha256.Sum256(raw[0])
				if subtle.ConstantTimeCompare(got[:], want) != 1 {
					return fmt.Errorf("certificate fingerprint %x does not match the pinned %x", got, want)
				}
				return nil
			},
		}, nil
	case len(t.CACertPEM) > 0:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.CACertPEM) {
			return nil, errors.New("no certificate in the CA PEM")
		}
		return &tls.Config{RootCAs: pool}, nil
	case t.Insecure:
		return &tls.Config{InsecureSkipVerify: true}, nil // the operator asked for it
	}
	return nil, nil
}

// Certificate is a device's self-signed TLS certificate.
type Certificate struct {
	TLS tls.Certificate
	// Fingerprint is the hex SHA-256 of the certificate's DER, what
	// clients pin.
	Fingerprint string
	CertPEM     []byte
}

// KeyPEM is the certificate's private key, PEM-encoded PKCS#8, for a
// device that keeps its certificate across restarts.
func (c *Certificate) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.TLS.PrivateKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// SelfSigned generates an ECDSA P-256 certificate with CN hostname, valid
// for ten years, for the addresses given (127.0.0.1 when none), marked as
// a CA so that clients can also pin it as their root.
func SelfSigned(hostname, organization string, ips ...net.IP) (*Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	if len(ips) == 0 {
		ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{organization}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           ips,
		DNSNames:              []string{hostname},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return fromDER(der, key), nil
}

// Load reads a certificate and key saved from CertPEM and KeyPEM.
func Load(certPEM, keyPEM []byte) (*Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	c := fromDER(pair.Certificate[0], pair.PrivateKey)
	c.TLS = pair
	return c, nil
}

func fromDER(der []byte, key any) *Certificate {
	sum := sha256.Sum256(der)
	return &Certificate{
		TLS:         tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		Fingerprint: hex.EncodeToString(sum[:]),
		CertPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}
