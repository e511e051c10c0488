package agentauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentauth"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func csr(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func parse(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatalf("not PEM: %q", certPEM)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestJoinRenewRevoke(t *testing.T) {
	st := storetest.Start(t)
	clk := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	a, err := agentauth.Open(t.Context(), st, agentauth.Config{CertTTL: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	members := map[string]bool{"m1": true, "m2": true}
	inCluster := func(_ context.Context, cluster, machine string) bool { return cluster == "c1" && members[machine] }

	machineToken, _, err := a.IssueToken(ctx, agentauth.Grant{Cluster: "c1", Machine: "m1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clusterToken, _, err := a.IssueToken(ctx, agentauth.Grant{Cluster: "c1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expiring, _, err := a.IssueToken(ctx, agentauth.Grant{Cluster: "c1", Machine: "m2"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	// Refusals first: wrong machine, not in the cluster, garbage, bad CSR.
	for _, tc := range []struct {
		name, token, machine string
		csr                  []byte
		want                 error
	}{
		{"token of another machine", machineToken, "m2", csr(t, "x"), agentauth.ErrBadToken},
		{"cluster token, foreign machine", clusterToken, "intruder", csr(t, "x"), agentauth.ErrBadToken},
		{"unknown token", "not-a-token", "m1", csr(t, "x"), agentauth.ErrBadToken},
		{"bad CSR", machineToken, "m1", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), agentauth.ErrBadCSR},
	} {
		if _, err := a.Join(ctx, tc.token, tc.machine, tc.csr, inCluster); !errors.Is(err, tc.want) {
			t.Errorf("%s: Join = %v, want %v", tc.name, err, tc.want)
		}
	}

	certPEM, err := a.Join(ctx, machineToken, "m1", csr(t, "whatever the agent asks"), inCluster)
	if err != nil {
		t.Fatalf("Join(m1) = %v", err)
	}
	cert := parse(t, certPEM)
	if cert.Subject.CommonName != "m1" || cert.Subject.Organization[0] != "c1" {
		t.Errorf("certificate subject = %v, want CN m1, O c1 from the grant", cert.Subject)
	}
	if err := a.Verify(cert); err != nil {
		t.Errorf("Verify(m1) = %v", err)
	}
	if _, err := a.Join(ctx, machineToken, "m1", csr(t, "x"), inCluster); !errors.Is(err, agentauth.ErrBadToken) {
		t.Errorf("reused token: Join = %v, want ErrBadToken", err)
	}
	// A cluster token admits each machine of the cluster once.
	if _, err := a.Join(ctx, clusterToken, "m2", csr(t, "x"), inCluster); err != nil {
		t.Errorf("cluster token for m2: %v", err)
	}
	if _, err := a.Join(ctx, clusterToken, "m2", csr(t, "x"), inCluster); !errors.Is(err, agentauth.ErrBadToken) {
		t.Errorf("cluster token reused by m2: Join = %v, want ErrBadToken", err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := a.Join(ctx, expiring, "m2", csr(t, "x"), inCluster); !errors.Is(err, agentauth.ErrBadToken) {
		t.Errorf("expired token: Join = %v, want ErrBadToken", err)
	}

	// Renewal gives a new certificate for the same machine; an expired
	// one is refused.
	renewedPEM, err := a.Renew(cert, csr(t, "x"))
	if err != nil {
		t.Fatalf("Renew = %v", err)
	}
	renewed := parse(t, renewedPEM)
	if renewed.Subject.CommonName != "m1" || !renewed.NotAfter.After(cert.NotAfter) {
		t.Errorf("renewed certificate %v until %v, want m1 beyond %v", renewed.Subject, renewed.NotAfter, cert.NotAfter)
	}
	clk.Advance(2 * time.Hour)
	if err := a.Verify(cert); err == nil {
		t.Error("Verify(expired) = nil")
	}

	// Revocation refuses the machine's certificates until it joins again.
	fresh, _, _ := a.IssueToken(ctx, agentauth.Grant{Cluster: "c1", Machine: "m1"}, time.Hour)
	current, err := a.Join(ctx, fresh, "m1", csr(t, "x"), inCluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for err := a.Verify(parse(t, current)); !errors.Is(err, agentauth.ErrRevoked); err = a.Verify(parse(t, current)) {
		if time.Now().After(deadline) {
			t.Fatalf("Verify(revoked) = %v, want ErrRevoked", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.Renew(parse(t, current), csr(t, "x")); !errors.Is(err, agentauth.ErrRevoked) {
		t.Errorf("Renew(revoked) = %v, want ErrRevoked", err)
	}
	clk.Advance(2 * time.Minute)
	again, _, _ := a.IssueToken(ctx, agentauth.Grant{Cluster: "c1", Machine: "m1"}, time.Hour)
	readmitted, err := a.Join(ctx, again, "m1", csr(t, "x"), inCluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(parse(t, readmitted)); err != nil {
		t.Errorf("a certificate from a new token after the revocation: %v", err)
	}

	// Another replica on the same store shares the CA.
	b, err := agentauth.Open(ctx, st, agentauth.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if string(b.CACertPEM()) != string(a.CACertPEM()) {
		t.Error("a second Authority on the same store made another CA")
	}
}

// TestRotateCA: the node CA is replaced when a third of its validity is
// left; a certificate the old one signed stays valid, its renewal is
// signed by the new one, and another replica follows.
func TestRotateCA(t *testing.T) {
	st := storetest.Start(t)
	clk := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	cfg := agentauth.Config{CertTTL: time.Hour, CAValidity: 30 * 24 * time.Hour, Now: clk.Now}
	a, err := agentauth.Open(t.Context(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	other, err := agentauth.Open(t.Context(), st, cfg) // another replica
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	old := parse(t, a.CACertPEM())
	if rotated, err := a.RotateIfDue(ctx); err != nil || rotated {
		t.Fatalf("RotateIfDue with 30 days left = %v, %v, want nothing done", rotated, err)
	}
	clk.Advance(21 * 24 * time.Hour) // 9 of 30 days left
	token, _, err := a.IssueToken(ctx, agentauth.Grant{Cluster: "c1", Machine: "m1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := a.Join(ctx, token, "m1", csr(t, "m1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cert := parse(t, certPEM)
	if rotated, err := a.RotateIfDue(ctx); err != nil || !rotated {
		t.Fatalf("RotateIfDue with 9 of 30 days left = %v, %v, want rotated", rotated, err)
	}
	for _, r := range []*agentauth.Authority{a, other} {
		for deadline := time.Now().Add(5 * time.Second); parse(t, r.CACertPEM()).Equal(old); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("a replica still has the old node CA 5 s after the rotation")
			}
		}
	}
	clk.Advance(10 * time.Minute)
	if err := other.Verify(cert); err != nil {
		t.Errorf("Verify of a certificate the old CA signed, after the rotation = %v", err)
	}
	renewedPEM, err := other.Renew(cert, csr(t, "m1"))
	if err != nil {
		t.Fatalf("Renew with a certificate of the old CA = %v", err)
	}
	renewed := parse(t, renewedPEM)
	if err := renewed.CheckSignatureFrom(parse(t, a.CACertPEM())); err != nil {
		t.Errorf("the renewed certificate is not signed by the new CA: %v", err)
	}
	if err := a.Verify(renewed); err != nil {
		t.Errorf("Verify(renewed) = %v", err)
	}
	if rotated, err := a.RotateIfDue(ctx); err != nil || rotated {
		t.Errorf("RotateIfDue right after a rotation = %v, %v, want nothing done", rotated, err)
	}
}
