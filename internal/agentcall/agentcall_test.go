package agentcall

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"revision": 7}`))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "no device awaits a bootstrap", http.StatusForbidden)
		}
	}))
	defer srv.Close()
	var out struct{ Revision int }
	if err := Do(t.Context(), srv.Client(), srv.URL, http.MethodPut, "/ok", map[string]int{"a": 1}, &out); err != nil || out.Revision != 7 {
		t.Errorf("Do(/ok) = %v, revision %d; want nil, 7", err, out.Revision)
	}
	if err := Do(t.Context(), srv.Client(), srv.URL, http.MethodGet, "/empty", nil, &out); err != nil {
		t.Errorf("Do(/empty) = %v, want nil", err)
	}
	err := Do(t.Context(), srv.Client(), srv.URL, http.MethodPost, "/ztp", nil, nil)
	if Code(err) != http.StatusForbidden || err.Error() != "POST /ztp: 403 no device awaits a bootstrap" {
		t.Errorf("Do(/ztp) = %v (code %d), want the 403 and its body", err, Code(err))
	}
	if Code(nil) != 0 {
		t.Error("Code(nil) != 0")
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := Jitter(time.Second); d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("Jitter(1s) = %v, want within ±10%%", d)
		}
	}
}

func TestCSR(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := CSR(key, "Citadel;SimSwitch;1;X")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil || csr.Subject.CommonName != "Citadel;SimSwitch;1;X" {
		t.Errorf("CSR = %v, %v; want a signed request naming the subject", csr, err)
	}
}
