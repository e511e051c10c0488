package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"

	caValidity = 10 * 365 * 24 * time.Hour
	// ServerValidity is how long a server certificate is valid by
	// default; one with less than a third of its validity left is
	// replaced.
	ServerValidity = 365 * 24 * time.Hour
	// backdate covers clocks that are a little behind.
	backdate = time.Hour
)

// CA is Citadel's own certificate authority: it signs the server's HTTPS
// certificate (clients trust CertFile) and, later, agents' client
// certificates.
type CA struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	certFile string // absolute
}

// LoadOrCreateCA loads the CA from dir (ca.crt, ca.key) or, when neither
// file exists, creates a self-signed ECDSA P-256 CA valid for ten years.
// A directory with only one of the two files is an error rather than a
// silent replacement of an authority clients may trust.
func LoadOrCreateCA(dir string) (*CA, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("identity: ca in %s: %w", dir, err)
	}
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err := parseCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("identity: load ca from %s: %w", dir, err)
		}
		ca.certFile = certPath
		return ca, nil
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return createCA(dir)
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: load ca: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: load ca: %w", keyErr)
	default:
		return nil, fmt.Errorf("identity: load ca from %s: only one of %s and %s exists; restore the other or remove both to make a new CA",
			dir, caCertFile, caKeyFile)
	}
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, errors.New("ca.crt is not a CA certificate")
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("ca.key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca.key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("ca.key is a %T, not ECDSA", k)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("ca.key does not belong to ca.crt")
	}
	return &CA{cert: cert, key: key}, nil
}

func parseCertPEM(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func createCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: create ca: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: create ca: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: "Citadel Root CA", Organization: []string{"Citadel"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("identity: create ca: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: create ca: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("identity: create ca: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	// The key first: a crash in between leaves a key without a
	// certificate, which LoadOrCreateCA reports instead of overwriting.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("identity: create ca: %w", err)
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("identity: create ca: %w", err)
	}
	return &CA{cert: cert, key: key, certFile: certPath}, nil
}

// CertFile is the absolute path of the CA certificate (PEM), for clients'
// trust stores (REQUESTS_CA_BUNDLE for az, SSL_CERT_FILE for Go).
func (ca *CA) CertFile() string { return ca.certFile }

// Certificate is the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// ServerCertificate writes server.crt and server.key in dir: a server
// certificate signed by the CA for hosts (DNS names or IP addresses) plus
// localhost, 127.0.0.1 and ::1, valid for validity. Existing files are
// kept when the CA signed them, they cover exactly the same hosts and more
// than a third of validity is left; otherwise they are replaced. It
// returns the absolute paths.
func (ca *CA) ServerCertificate(dir string, hosts []string, validity time.Duration) (certFile, keyFile string, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("identity: server certificate in %s: %w", dir, err)
	}
	certFile, keyFile = filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile)
	dns, ips, err := splitHosts(hosts)
	if err != nil {
		return "", "", fmt.Errorf("identity: server certificate: %w", err)
	}
	if ca.serverCertCurrent(certFile, keyFile, dns, ips, validity/3) {
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("identity: server certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("identity: server certificate: %w", err)
	}
	now := time.Now()
	cn := "localhost"
	if len(hosts) > 0 {
		cn = strings.TrimSpace(hosts[0])
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Citadel"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", fmt.Errorf("identity: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("identity: server certificate: %w", err)
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("identity: server certificate: %w", err)
	}
	if err := writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", fmt.Errorf("identity: server certificate: %w", err)
	}
	return certFile, keyFile, nil
}

// serverCertCurrent reports whether the existing server certificate can be
// kept.
func (ca *CA) serverCertCurrent(certFile, keyFile string, dns []string, ips []net.IP, renewBefore time.Duration) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile) // also checks the key matches
	if err != nil {
		return false
	}
	cert := pair.Leaf
	if cert == nil {
		if cert, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return false
		}
	}
	if cert.CheckSignatureFrom(ca.cert) != nil || time.Until(cert.NotAfter) <= renewBefore {
		return false
	}
	haveDNS := slices.Clone(cert.DNSNames)
	slices.Sort(haveDNS)
	haveIPs := ipStrings(cert.IPAddresses)
	return slices.Equal(haveDNS, dns) && slices.Equal(haveIPs, ipStrings(ips))
}

// splitHosts adds the loopback names and returns the hosts as sorted,
// de-duplicated DNS names (lower-case) and IP addresses.
func splitHosts(hosts []string) ([]string, []net.IP, error) {
	var dns []string
	ipSet := map[string]net.IP{}
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hosts...) {
		h = strings.TrimSpace(h)
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			ipSet[ip.String()] = ip
			continue
		}
		if strings.ContainsAny(h, " /:@") {
			return nil, nil, fmt.Errorf("%q is neither a DNS name nor an IP address", h)
		}
		dns = append(dns, strings.ToLower(h))
	}
	slices.Sort(dns)
	dns = slices.Compact(dns)
	keys := make([]string, 0, len(ipSet))
	for k := range ipSet {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ips := make([]net.IP, len(keys))
	for j, k := range keys {
		ips[j] = ipSet[k]
	}
	return dns, ips, nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for j, ip := range ips {
		out[j] = ip.String()
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n.Add(n, big.NewInt(1))
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it over path, so that readers never see half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
