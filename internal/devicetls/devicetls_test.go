package devicetls

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTrustValidate(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		trust Trust
		want  string // "" for valid
	}{
		{"none", Trust{}, ""},
		{"fingerprint", Trust{Fingerprint: fp}, ""},
		{"fingerprint with colons", Trust{Fingerprint: strings.TrimSuffix(strings.Repeat("AB:", 32), ":")}, ""},
		{"insecure", Trust{Insecure: true}, ""},
		{"two ways", Trust{Insecure: true, Fingerprint: fp}, "exclude each other"},
		{"not hex", Trust{Fingerprint: strings.Repeat("zz", 32)}, "fingerprint: "},
		{"too short", Trust{Fingerprint: "abcd"}, "want a SHA-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.trust.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestPinning connects to a server with its own certificate pinned, and
// with another one's: only the first is trusted.
func TestPinning(t *testing.T) {
	cert, err := SelfSigned("device", "test", net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	other, err := SelfSigned("other", "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	srv.StartTLS()
	defer srv.Close()
	for _, tt := range []struct {
		name  string
		trust Trust
		ok    bool
	}{
		{"pinned", Trust{Fingerprint: cert.Fingerprint}, true},
		{"pinned other", Trust{Fingerprint: other.Fingerprint}, false},
		{"its CA", Trust{CACertPEM: cert.CertPEM}, true},
		{"other CA", Trust{CACertPEM: other.CertPEM}, false},
		{"system roots", Trust{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.trust.ClientConfig()
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := c.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil) != tt.ok {
				t.Errorf("GET with %s: err = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

// TestLoad round-trips a certificate through its PEM files.
func TestLoad(t *testing.T) {
	cert, err := SelfSigned("device", "test")
	if err != nil {
		t.Fatal(err)
	}
	key, err := cert.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(cert.CertPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint != cert.Fingerprint {
		t.Errorf("Load fingerprint = %s, want %s", got.Fingerprint, cert.Fingerprint)
	}
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add("AB:CD")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseFingerprint(s)
		if err == nil && len(b) != 32 {
			t.Errorf("ParseFingerprint(%q) = %d bytes", s, len(b))
		}
	})
}
