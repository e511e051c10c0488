package redfishsim_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

func TestTLS(t *testing.T) {
	b := redfishsim.New(redfishsim.SampleMachine("SN1234"), testOptions(t, nil))
	s, err := redfishsim.Serve(b, true)
	if err != nil {
		t.Fatalf("Serve(TLS) error = %v", err)
	}
	t.Cleanup(s.Close)
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Errorf("URL = %s, want https://127.0.0.1:port", s.URL)
	}

	// Pinned by CA: the certificate verifies for 127.0.0.1.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM) {
		t.Fatal("CACertPEM holds no certificate")
	}
	c := newClient(t, s)
	c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	c.get(system)

	// Pinned by fingerprint: the leaf hashes to Fingerprint.
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("tls.Dial() error = %v", err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	if got := hex.EncodeToString(sum[:]); got != s.Fingerprint {
		t.Errorf("leaf SHA-256 = %s, want Fingerprint %s", got, s.Fingerprint)
	}
	if leaf.Subject.CommonName != "bmc-sn1234" || b.Hostname() != "bmc-sn1234" {
		t.Errorf("certificate CN = %q, Hostname() = %q; want bmc-sn1234", leaf.Subject.CommonName, b.Hostname())
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("certificate key algorithm = %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}

	// Without trust the client refuses the BMC, as with a real one.
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get(s.URL + "/redfish/v1/"); err == nil {
		resp.Body.Close()
		t.Errorf("GET without trusting the certificate succeeded")
	}
}

func TestFleet(t *testing.T) {
	f := redfishsim.NewFleet(true)
	t.Cleanup(f.Close)
	const n = 50
	var servers []*redfishsim.Server
	for i := range n {
		s, err := f.Add(redfishsim.New(redfishsim.SampleMachine("SN"+string(rune('A'+i%26))+strings.Repeat("0", i/26)), redfishsim.Options{}))
		if err != nil {
			t.Fatalf("Add() error = %v", err)
		}
		servers = append(servers, s)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(servers[0].CACertPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	seen := map[string]bool{}
	for _, s := range servers {
		if s.Fingerprint != servers[0].Fingerprint {
			t.Errorf("fleet servers have different certificates: %s, %s", s.Fingerprint, servers[0].Fingerprint)
		}
		resp, err := hc.Get(s.URL + "/redfish/v1/Systems")
		if err != nil {
			t.Fatalf("GET %s: %v", s.URL, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s/redfish/v1/Systems = %d", s.URL, resp.StatusCode)
		}
		seen[s.URL] = true
	}
	if len(seen) != n {
		t.Errorf("fleet has %d distinct URLs, want %d", len(seen), n)
	}

	// Closing one server leaves the others up.
	servers[0].Close()
	if resp, err := hc.Get(servers[0].URL + "/redfish/v1/"); err == nil {
		resp.Body.Close()
		t.Errorf("GET on a closed server succeeded")
	}
	if resp, err := hc.Get(servers[1].URL + "/redfish/v1/"); err != nil {
		t.Errorf("GET on a neighbour of a closed server: %v", err)
	} else {
		resp.Body.Close()
	}
	f.Close()
	if _, err := f.Add(redfishsim.New(redfishsim.SampleMachine("SNX"), redfishsim.Options{})); err == nil {
		t.Errorf("Add() after Close() error = nil, want an error")
	}
}

func TestUnreachable(t *testing.T) {
	b, c := sample(t, nil, nil)
	c.get(system) // leaves a kept-alive connection behind
	b.SetUnreachable(true)
	for range 2 { // the old connection and a new one
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, c.base+"/redfish/v1/", nil)
		if resp, err := c.http.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("GET on an unreachable BMC = %d, want a connection error", resp.StatusCode)
		}
	}
	b.SetUnreachable(false)
	c.get(system)
}

func TestFailDIMM(t *testing.T) {
	b, c := sample(t, nil, nil)
	before := c.get(system)
	if err := b.FailDIMM(2); err != nil {
		t.Fatalf("FailDIMM(2) error = %v", err)
	}
	after := c.get(system)
	if got, want := field(after, "MemorySummary", "TotalSystemMemoryGiB"), field(before, "MemorySummary", "TotalSystemMemoryGiB").(float64)-32; got != want {
		t.Errorf("TotalSystemMemoryGiB = %v, want %v", got, want)
	}
	for _, k := range [][]string{{"Status", "Health"}, {"Status", "HealthRollup"}, {"MemorySummary", "Status", "HealthRollup"}} {
		if got := field(after, k...); got != "Critical" {
			t.Errorf("system %v = %v, want Critical", k, got)
		}
	}
	dimm := c.get(system + "/Memory/DIMM3")
	if diff := cmp.Diff(map[string]any{"State": "Disabled", "Health": "Critical"}, dimm["Status"]); diff != "" {
		t.Errorf("DIMM3 Status (-want +got):\n%s", diff)
	}
	for _, i := range []int{2, 13, -1, 99} { // failed already, an empty slot, out of range
		if err := b.FailDIMM(i); err == nil {
			t.Errorf("FailDIMM(%d) error = nil, want an error", i)
		}
	}
}

func TestProtocol(t *testing.T) {
	_, c := sample(t, nil, nil)
	tests := []struct {
		name    string
		method  string
		path    string
		body    any
		status  int
		wantIDs []string
	}{
		{"version document", "GET", "/redfish", nil, 200, nil},
		{"root with slash", "GET", "/redfish/v1/", nil, 200, nil},
		{"root without slash", "GET", "/redfish/v1", nil, 200, nil},
		{"trailing slash tolerated", "GET", system + "/", nil, 200, nil},
		{"case matters", "GET", "/redfish/v1/systems/SN1234", nil, 404, []string{"Base.ResourceNotFound"}},
		{"not found", "GET", "/redfish/v1/Nope", nil, 404, []string{"Base.ResourceNotFound"}},
		{"outside the service", "GET", "/index.html", nil, 404, []string{"Base.ResourceNotFound"}},
		{"$expand not supported", "GET", "/redfish/v1/Systems?$expand=.", nil, 501, []string{"Base.QueryNotSupported"}},
		{"GET of an action", "GET", resetAt, nil, 405, []string{"Base.GeneralError"}},
		{"DELETE of the system", "DELETE", system, nil, 405, []string{"Base.GeneralError"}},
		{"PUT", "PUT", system, map[string]any{}, 405, []string{"Base.GeneralError"}},
		{"POST to a resource", "POST", system, map[string]any{}, 405, []string{"Base.GeneralError"}},
		{"POST to nothing", "POST", "/redfish/v1/Nope", map[string]any{}, 404, []string{"Base.ResourceNotFound"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := c.do(tt.method, tt.path, tt.body)
			if resp.status != tt.status {
				t.Fatalf("%s %s = %d, want %d\n%s", tt.method, tt.path, resp.status, tt.status, resp.raw)
			}
			if diff := cmp.Diff(tt.wantIDs, resp.messageIDs()); diff != "" {
				t.Errorf("%s %s messages (-want +got):\n%s", tt.method, tt.path, diff)
			}
			if tt.status == 405 && resp.header.Get("Allow") == "" {
				t.Errorf("%s %s = 405 without an Allow header", tt.method, tt.path)
			}
			if got := resp.header.Get("OData-Version"); got != "4.0" {
				t.Errorf("OData-Version = %q, want 4.0", got)
			}
		})
	}
	if got := c.get("/redfish")["v1"]; got != "/redfish/v1/" {
		t.Errorf("GET /redfish v1 = %v, want /redfish/v1/", got)
	}
}

// TestLengthRequired sends a POST without Content-Length, which the DMTF
// server answers with 411.
func TestLengthRequired(t *testing.T) {
	b := redfishsim.New(redfishsim.SampleMachine("SN1234"), redfishsim.Options{})
	s := serve(t, b)
	for _, req := range []string{
		"POST " + resetAt + " HTTP/1.1\r\nHost: bmc\r\nContent-Type: application/json\r\n\r\n",
		"POST " + resetAt + " HTTP/1.1\r\nHost: bmc\r\nTransfer-Encoding: chunked\r\n\r\n13\r\n{\"ResetType\":\"On\"}\r\n0\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusLengthRequired {
			t.Errorf("POST without Content-Length = %d, want 411", resp.StatusCode)
		}
	}
	if got := b.PowerState(); got != "Off" {
		t.Errorf("PowerState() = %s, want Off: a 411 changes nothing", got)
	}
}

// TestFleetRestart: a fleet started again from the saved certificate, at
// the same address, presents the same fingerprint at the same URL.
func TestFleetRestart(t *testing.T) {
	first := redfishsim.NewFleet(true)
	s1, err := first.Add(redfishsim.New(redfishsim.SampleMachine("R1"), redfishsim.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := first.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	second, err := redfishsim.NewTLSFleet(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	s2, err := second.AddAt(redfishsim.New(redfishsim.SampleMachine("R1"), redfishsim.Options{}), strings.TrimPrefix(s1.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	if s2.URL != s1.URL || s2.Fingerprint != s1.Fingerprint {
		t.Errorf("restarted at %s (%s), want %s (%s)", s2.URL, s2.Fingerprint, s1.URL, s1.Fingerprint)
	}
	if _, err := redfishsim.NewTLSFleet(certPEM, []byte("not a key")); err == nil {
		t.Error("NewTLSFleet with a bad key: no error")
	}
}
