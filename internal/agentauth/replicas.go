package agentauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The control plane's replicas reach each other's agent API with client
// certificates from the node CA too (to copy a file one lacks from one
// that has it): a replica's certificate names it "citadel-replica:{id}",
// which no machine's certificate can (those name ARM IDs, and the names
// come from the grant, never from a request).
const replicaPrefix = "citadel-replica:"

// ReplicaTLS is the client TLS configuration with which replica id calls
// the other replicas' agent API: it trusts roots (their server
// certificates' CA) and presents a certificate of the node CA naming the
// replica, issued on first use and again when a third of its life is
// left.
func (a *Authority) ReplicaTLS(id string, roots *x509.CertPool) *tls.Config {
	var (
		mu      sync.Mutex
		cert    *tls.Certificate
		renewAt time.Time
	)
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			if now := a.cfg.Now(); cert == nil || now.After(renewAt) {
				c, err := a.replicaCertificate(id)
				if err != nil {
					return nil, err
				}
				cert, renewAt = c, now.Add(c.Leaf.NotAfter.Sub(now)*2/3)
			}
			return cert, nil
		}}
}

// replicaCertificate makes a key and a certificate naming replica id.
func (a *Authority) replicaCertificate(id string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	st, err := a.current()
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: replicaPrefix + id},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(a.cfg.CertTTL),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, st.cert, &key.PublicKey, st.key)
	if err != nil {
		return nil, fmt.Errorf("agentauth: replica certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Replica verifies the client certificate of a request to the agent API
// and returns the replica it names; an agent's certificate is refused.
func (a *Authority) Replica(r *http.Request) (string, error) {
	name, _, err := a.Peer(r)
	if err != nil {
		return "", err
	}
	id, ok := strings.CutPrefix(name, replicaPrefix)
	if !ok {
		return "", errors.New("only the control plane's replicas may call this")
	}
	return id, nil
}
