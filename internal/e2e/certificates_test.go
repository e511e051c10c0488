package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// servedSerial is the serial number of the certificate the server at
// endpoint serves to a new connection.
func servedSerial(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true}) // only reading what is served
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestServerCertificateRenewal: the server certificate the CA issues is
// renewed while the server runs, and clients on new and kept-alive
// connections see no error through the renewals.
func TestServerCertificateRenewal(t *testing.T) {
	t.Parallel()
	cp := servertest.Start(t, func(c *server.Config) {
		c.TLSCertValidity, c.CertificateCheck = 3*time.Second, 100*time.Millisecond
	})
	fresh := cp.HTTPClient(t)
	fresh.Transport.(*http.Transport).DisableKeepAlives = true
	serials := map[string]bool{}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if r, err := cp.Client.Do(t.Context(), http.MethodGet, "/subscriptions?api-version=2022-12-01", nil); err != nil || r.Status != 200 {
			t.Fatalf("a request on a kept-alive connection during renewals = %v %v", r, err)
		}
		resp, err := fresh.Get(cp.Creds.ARMEndpoint + "healthz")
		if err != nil {
			t.Fatalf("a new connection during renewals: %v", err)
		}
		resp.Body.Close()
		serials[servedSerial(t, cp.Creds.ARMEndpoint)] = true
	}
	if len(serials) < 2 {
		t.Errorf("the server served %d certificate(s) in 5 s with a 3 s validity, want it renewed", len(serials))
	}
}

// TestOperatorCertificate: an operator's certificate is read again when
// its files change, without a restart, and one close to its expiry is a
// Warning in the activity log. The node CA, valid for seconds here, is
// replaced when a third is left, which the activity log records too.
func TestOperatorCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "operator CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	issue := func(serial int64, notBefore, notAfter time.Time) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "citadel.example"},
			NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
		// The key first, then the certificate, as an operator's tooling
		// replaces them; a pair that does not match yet is not served.
		os.WriteFile(keyFile+".new", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
		os.WriteFile(certFile+".new", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		os.Rename(keyFile+".new", keyFile)
		os.Rename(certFile+".new", certFile)
	}
	// Ten days of life, one left: less than a sixth.
	issue(100, time.Now().Add(-9*24*time.Hour), time.Now().Add(24*time.Hour))
	start := time.Now()
	cp := servertest.Start(t, func(c *server.Config) {
		c.TLSCert, c.TLSKey, c.CertificateCheck = certFile, keyFile, 100*time.Millisecond
		c.NodeCAValidity = 3 * time.Second
	})
	if got := servedSerial(t, cp.Creds.ARMEndpoint); got != "100" {
		t.Fatalf("served serial %s, want the operator's 100", got)
	}
	// Clients trust the operator's CA.
	caFile := filepath.Join(dir, "ca.crt")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	creds := cp.Creds
	creds.CACertFile = caFile
	c, err := client.New(creds)
	if err != nil {
		t.Fatal(err)
	}
	var warning, rotation *alEvent
	for deadline := time.Now().Add(10 * time.Second); warning == nil || rotation == nil; time.Sleep(100 * time.Millisecond) {
		alFlush(t, cp)
		for _, e := range alEvents(t, alQuery(t, c, cp.Creds.SubscriptionID, url.Values{"$filter": {alFilter(start, time.Time{})}})) {
			switch {
			case e.OperationName == "Citadel.Platform/certificates/expiring" && strings.Contains(e.ResourceID, cp.Creds.SubscriptionID):
				warning = &e
			case e.OperationName == "Citadel.Platform/nodeCA/rotate":
				rotation = &e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s on, the activity log has the expiry Warning: %v, the node CA rotation: %v", warning != nil, rotation != nil)
		}
	}
	if warning.Level != "Warning" {
		t.Errorf("the expiry event's level is %q, want Warning", warning.Level)
	}
	// The operator replaces the files: the next handshakes get the new
	// certificate, and requests keep working.
	issue(200, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	for deadline := time.Now().Add(10 * time.Second); servedSerial(t, cp.Creds.ARMEndpoint) != "200"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate is not served 10 s later")
		}
	}
	if r, err := c.Do(t.Context(), http.MethodGet, "/subscriptions?api-version=2022-12-01", nil); err != nil || r.Status != 200 {
		t.Errorf("a request after the replacement = %v %v", r, err)
	}
}
