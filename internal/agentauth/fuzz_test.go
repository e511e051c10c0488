package agentauth

import (
	"errors"
	"testing"
)

func FuzzParseCSR(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIBADCBpwIBADAOMQwwCgYDVQQDEwNmb28wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ=\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		csr, err := parseCSR(b)
		if err != nil && !errors.Is(err, ErrBadCSR) {
			t.Errorf("parseCSR: %v, want ErrBadCSR or nothing", err)
		}
		if err == nil && csr.PublicKey == nil {
			t.Error("parseCSR accepted a request without a key")
		}
	})
}
