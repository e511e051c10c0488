package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agentapi"
)

const testMachine = "/subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/bareMetalMachines/m1"

// fakeAPI is the agent API, as little of it as an agent needs: it admits
// any join, hands out one desired state and keeps the heartbeats.
type fakeAPI struct {
	*httptest.Server
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate

	mu         sync.Mutex
	desired    *agentapi.Desired // nil: the long poll never answers
	heartbeats []agentapi.Heartbeat

	consoles fakeConsoles // the console logs sent (consoles_test.go)
}

func startFakeAPI(t *testing.T, desired *agentapi.Desired) *fakeAPI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test node CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	f := &fakeAPI{caKey: key, caCert: ca, desired: desired}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathJoin, f.join)
	mux.HandleFunc("PUT "+agentapi.PathConsole, f.console)
	mux.HandleFunc("PUT "+agentapi.PathInventory, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST "+agentapi.PathHeartbeat, func(w http.ResponseWriter, r *http.Request) {
		var hb agentapi.Heartbeat
		if err := json.NewDecoder(r.Body).Decode(&hb); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.heartbeats = append(f.heartbeats, hb)
		f.mu.Unlock()
		json.NewEncoder(w).Encode(agentapi.HeartbeatReply{})
	})
	mux.HandleFunc("GET "+agentapi.PathDesired, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		d := f.desired
		f.mu.Unlock()
		if d == nil || r.URL.Query().Get("after") != "0" {
			select { // nothing newer: hold the poll, as the control plane does
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
			if d == nil {
				http.Error(w, "no desired state", http.StatusServiceUnavailable)
				return
			}
		}
		json.NewEncoder(w).Encode(d)
	})
	f.Server = httptest.NewUnstartedServer(mux)
	f.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

// join signs the agent's request for a certificate, whatever its token.
func (f *fakeAPI) join(w http.ResponseWriter, r *http.Request) {
	var req agentapi.JoinRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, _ := pem.Decode([]byte(req.CSR))
	if b == nil {
		http.Error(w, "no CSR", http.StatusBadRequest)
		return
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: csr.Subject, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.caCert, csr.PublicKey, f.caKey)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	json.NewEncoder(w).Encode(agentapi.Certificate{Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		CACertificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.caCert.Raw}))})
}

func (f *fakeAPI) serverCA() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
}

// sent are the heartbeats received so far.
func (f *fakeAPI) sent() []agentapi.Heartbeat {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]agentapi.Heartbeat(nil), f.heartbeats...)
}

// runAgent runs an agent on h against api until the test ends,
// heartbeating every 20 ms.
func runAgent(t *testing.T, api *fakeAPI, h host.Host) { runAgentEvery(t, api, h, 20*time.Millisecond) }

// runAgentEvery runs an agent heartbeating every interval.
func runAgentEvery(t *testing.T, api *fakeAPI, h host.Host, interval time.Duration) {
	t.Helper()
	a := New(Config{Server: api.URL, ServerCA: api.serverCA(), Machine: testMachine, Token: "token", Host: h,
		Interval: interval, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func testVM(name, power string) agentapi.VM {
	return agentapi.VM{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/virtualMachines/" + name,
		Name: name, Power: power, Cores: 1, MemoryMiB: 512, BootMethod: "BIOS", OSType: "Linux",
		Image: agentapi.Artifact{Name: "tiny", Kind: "vmImage"}}
}

// TestAgentRunsVMs: the agent runs the VMs of its desired state on a
// simulated machine and reports them with its heartbeats, On once they
// booted.
func TestAgentRunsVMs(t *testing.T) {
	h := host.NewSim(agentapi.Inventory{Hostname: "m1"})
	h.VMs().SetBootTime(300 * time.Millisecond)
	d := &agentapi.Desired{Revision: 1, VMs: []agentapi.VM{testVM("a", "On"), testVM("b", "Off")}}
	api := startFakeAPI(t, d)
	runAgent(t, api, h)

	a, b := d.VMs[0].ID, d.VMs[1].ID
	deadline := time.Now().Add(20 * time.Second)
	for {
		var last []agentapi.VMStatus
		if hbs := api.sent(); len(hbs) > 0 {
			last = hbs[len(hbs)-1].VMs
		}
		if len(last) == 2 && last[0] == (agentapi.VMStatus{ID: a, Power: "On"}) && last[1] == (agentapi.VMStatus{ID: b, Power: "Off"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last heartbeat reports VMs %+v, want a On and b Off", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// While a booted, it was reported Off.
	booting := false
	for _, hb := range api.sent() {
		booting = booting || len(hb.VMs) == 2 && hb.VMs[0] == (agentapi.VMStatus{ID: a, Power: "Off"})
	}
	if !booting {
		t.Errorf("no heartbeat reported VM a Off while it booted")
	}
}

// TestAgentReportsNewVMsAtOnce: the VMs of a new desired state are
// reported in a heartbeat sent as soon as they run, not an interval
// later: the control plane waits for them.
func TestAgentReportsNewVMsAtOnce(t *testing.T) {
	h := host.NewSim(agentapi.Inventory{Hostname: "m1"})
	d := &agentapi.Desired{Revision: 1, VMs: []agentapi.VM{testVM("a", "On")}}
	api := startFakeAPI(t, d)
	runAgentEvery(t, api, h, time.Hour)

	deadline := time.Now().Add(20 * time.Second)
	for !slices.ContainsFunc(api.sent(), func(hb agentapi.Heartbeat) bool { return len(hb.VMs) == 1 && hb.VMs[0].ID == d.VMs[0].ID }) {
		if time.Now().After(deadline) {
			t.Fatalf("heartbeats %+v, want one reporting VM a long before the hour's interval", api.sent())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentHoldsEvictedVMs: a VM its desired state marks evicted (it
// moves to another machine) is stopped, whatever its power should be,
// and reported so; the others run.
func TestAgentHoldsEvictedVMs(t *testing.T) {
	h := host.NewSim(agentapi.Inventory{Hostname: "m1"})
	moving := testVM("a", "On")
	if _, err := h.RunVMs(t.Context(), []agentapi.VM{moving}); err != nil { // it ran before its eviction
		t.Fatal(err)
	}
	moving.Evicted = true
	d := &agentapi.Desired{Revision: 1, VMs: []agentapi.VM{moving, testVM("b", "On")}}
	api := startFakeAPI(t, d)
	runAgent(t, api, h)

	want := []agentapi.VMStatus{{ID: moving.ID, Power: "Off", Evicted: true}, {ID: d.VMs[1].ID, Power: "On"}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var last []agentapi.VMStatus
		if hbs := api.sent(); len(hbs) > 0 {
			last = hbs[len(hbs)-1].VMs
		}
		if slices.Equal(last, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last heartbeat reports VMs %+v, want %+v", last, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := h.VMs().Running(); !slices.Equal(got, []string{d.VMs[1].ID}) {
		t.Errorf("running %v, want only b", got)
	}
}

// TestAgentKeepsVMsUntilDesired: an agent that (re)started does not run
// the VMs, and so does not remove those the machine runs, before it has
// a desired state that says which to keep.
func TestAgentKeepsVMsUntilDesired(t *testing.T) {
	h := host.NewSim(agentapi.Inventory{Hostname: "m1"})
	running := testVM("a", "On")
	if _, err := h.RunVMs(t.Context(), []agentapi.VM{running}); err != nil { // before the agent's restart
		t.Fatal(err)
	}
	api := startFakeAPI(t, nil)
	runAgent(t, api, h)

	deadline := time.Now().Add(20 * time.Second)
	for len(api.sent()) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d heartbeats, want 5", len(api.sent()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, hb := range api.sent() {
		if len(hb.VMs) > 0 {
			t.Errorf("a heartbeat before any desired state reports VMs %+v, want none", hb.VMs)
		}
	}
	if _, err := h.Console(running.ID); err != nil {
		t.Errorf("the VM the machine ran is gone before the agent had a desired state: %v", err)
	}
}
