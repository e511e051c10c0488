// Package agentcall makes the agent API's calls for the two kinds of
// client that speak it from outside the control plane: machines' agents
// and network devices. A call is JSON over HTTPS; an answer other than a
// success is a *StatusError. It also has what both need to be admitted
// (a key and its certificate request) and to keep from calling in step
// (Jitter, Sleep). It imports nothing of the control plane.
package agentcall

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"
)

// maxReply bounds what an answer may hold: a large fabric's
// config_db.json is a few hundred KiB.
const maxReply = 8 << 20

// StatusError is an answer other than a success.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Code, e.Body)
}

// Code is the HTTP status of a StatusError in err's chain, 0 when there
// is none (the call did not get an answer).
func Code(err error) int {
	if e, ok := errors.AsType[*StatusError](err); ok {
		return e.Code
	}
	return 0
}

// Do sends in (nil: no body) as JSON with method to server+path and
// decodes a successful answer into out (nil: ignored).
func Do(ctx context.Context, c *http.Client, server, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, server+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// NewKey makes a client's key (ECDSA P-256), kept by the client alone.
func NewKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// CSR is a PEM certificate request for key naming subject; the control
// plane decides the names the certificate carries, not the request.
func CSR(key *ecdsa.PrivateKey, subject string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: subject}}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// Jitter spreads d by ±10%, so that clients started together do not call
// in step.
func Jitter(d time.Duration) time.Duration {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(d/5)+1))
	return d - d/10 + time.Duration(n.Int64())
}

// Sleep waits d, or less when ctx ends first (then false).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
