package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadOrCreateCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateCA: %v", err)
	}
	if ca.CertFile() != filepath.Join(dir, "ca.crt") || !filepath.IsAbs(ca.CertFile()) {
		t.Errorf("CertFile() = %q", ca.CertFile())
	}
	c := ca.Certificate()
	if !c.IsCA || c.PublicKeyAlgorithm != x509.ECDSA || c.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("CA certificate: IsCA %v, %v key", c.IsCA, c.PublicKeyAlgorithm)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < 10*365*24*time.Hour {
		t.Errorf("CA validity = %v, want 10 years", life)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, "ca.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode = %v, %v, want 0600", st.Mode(), err)
	}
	certBytes, _ := os.ReadFile(ca.CertFile())

	// Loaded again, not remade.
	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateCA (again): %v", err)
	}
	if !again.Certificate().Equal(c) {
		t.Errorf("second LoadOrCreateCA made a new CA")
	}
	if b, _ := os.ReadFile(ca.CertFile()); !bytes.Equal(b, certBytes) {
		t.Errorf("ca.crt was rewritten")
	}

	t.Run("missing key", func(t *testing.T) {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "ca.crt"), certBytes, 0o644)
		if _, err := LoadOrCreateCA(d); err == nil {
			t.Errorf("LoadOrCreateCA with ca.crt only succeeded")
		}
	})
	t.Run("mismatched key", func(t *testing.T) {
		d := t.TempDir()
		other, err := LoadOrCreateCA(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		otherKey, _ := os.ReadFile(filepath.Join(filepath.Dir(other.CertFile()), "ca.key"))
		os.WriteFile(filepath.Join(d, "ca.crt"), certBytes, 0o644)
		os.WriteFile(filepath.Join(d, "ca.key"), otherKey, 0o600)
		if _, err := LoadOrCreateCA(d); err == nil {
			t.Errorf("LoadOrCreateCA with another CA's key succeeded")
		}
	})
	t.Run("relative dir", func(t *testing.T) {
		t.Chdir(t.TempDir())
		ca, err := LoadOrCreateCA("pki")
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsAbs(ca.CertFile()) {
			t.Errorf("CertFile() = %q, want absolute", ca.CertFile())
		}
	})
}

func TestServerCertificate(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, err := ca.ServerCertificate(dir, []string{"citadel.example", "10.0.0.5", "Citadel.Example"}, ServerValidity)
	if err != nil {
		t.Fatalf("ServerCertificate: %v", err)
	}
	if certFile != filepath.Join(dir, "server.crt") || keyFile != filepath.Join(dir, "server.key") {
		t.Errorf("ServerCertificate() = %q, %q", certFile, keyFile)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("server.key mode = %v, %v", st.Mode(), err)
	}
	leaf := readCert(t, certFile)
	if d := cmp.Diff([]string{"citadel.example", "localhost"}, leaf.DNSNames); d != "" {
		t.Errorf("DNS names (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"10.0.0.5", "127.0.0.1", "::1"}, ipStrings(leaf.IPAddresses)); d != "" {
		t.Errorf("IP addresses (-want +got):\n%s", d)
	}

	// A real TLS handshake, trusting only the CA, for each name.
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, name := range []string{"localhost", "citadel.example", "127.0.0.1"} {
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Errorf("TLS handshake as %s: %v", name, err)
			continue
		}
		conn.Close()
	}

	// Same hosts (in another order): kept.
	before, _ := os.ReadFile(certFile)
	if _, _, err := ca.ServerCertificate(dir, []string{"10.0.0.5", "citadel.example", "localhost"}, ServerValidity); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(certFile); !bytes.Equal(before, after) {
		t.Errorf("server certificate for the same hosts was regenerated")
	}
	// Other hosts: regenerated.
	if _, _, err := ca.ServerCertificate(dir, []string{"citadel.example"}, ServerValidity); err != nil {
		t.Fatal(err)
	}
	if got := ipStrings(readCert(t, certFile).IPAddresses); strings.Contains(strings.Join(got, ","), "10.0.0.5") {
		t.Errorf("server certificate for other hosts kept 10.0.0.5: %v", got)
	}
	// Another CA: regenerated.
	other, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.ServerCertificate(dir, []string{"citadel.example"}, ServerValidity); err != nil {
		t.Fatal(err)
	}
	if err := readCert(t, certFile).CheckSignatureFrom(other.Certificate()); err != nil {
		t.Errorf("server certificate not reissued by the new CA: %v", err)
	}
	// Expiring within 30 days: regenerated.
	writeExpiringCert(t, other, certFile, keyFile, []string{"citadel.example", "localhost"}, 20*24*time.Hour)
	if _, _, err := other.ServerCertificate(dir, []string{"citadel.example"}, ServerValidity); err != nil {
		t.Fatal(err)
	}
	if left := time.Until(readCert(t, certFile).NotAfter); left < 300*24*time.Hour {
		t.Errorf("expiring server certificate kept: %v left", left)
	}
	// A bad host name.
	if _, _, err := other.ServerCertificate(dir, []string{"a b"}, ServerValidity); err == nil {
		t.Errorf("ServerCertificate(\"a b\") succeeded")
	}
}

func readCert(t testing.TB, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCertPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeExpiringCert(t testing.TB, ca *CA, certFile, keyFile string, dns []string, left time.Duration) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(),
		Subject:      pkix.Name{CommonName: dns[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(left),
		DNSNames:     dns,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1").To4(), net.ParseIP("::1")},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
}
