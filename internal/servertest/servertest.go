// Package servertest runs the whole control plane in-process for tests:
// embedded etcd in a temporary directory, HTTPS on a loopback port, and the
// admin credentials that real clients (az, the Azure SDK) log in with.
package servertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/server"
)

// ControlPlane is a running server and how to reach it.
type ControlPlane struct {
	*server.Server
	DataDir string
	Creds   client.Credentials
	Client  *client.Client // an admin ARM client
}

// Start starts a control plane and stops it when the test ends. Options
// change the configuration before it starts.
func Start(t testing.TB, options ...func(*server.Config)) *ControlPlane {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen, cfg.AgentListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, o := range options {
		o(&cfg)
	}
	s, err := server.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	creds, err := client.LoadCredentials(s.CredentialsFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(creds)
	if err != nil {
		t.Fatal(err)
	}
	c.PollInterval = 20 * time.Millisecond // tests wait for operations that take milliseconds
	return &ControlPlane{Server: s, DataDir: cfg.DataDir, Creds: creds, Client: c}
}

// HTTPClient trusts the control plane's CA.
func (cp *ControlPlane) HTTPClient(t testing.TB) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(cp.Creds.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// Token is an admin access token.
func (cp *ControlPlane) Token(t testing.TB) string {
	t.Helper()
	tok, err := cp.Client.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
