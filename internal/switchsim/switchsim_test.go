package switchsim

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

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

const (
	testSerial = "Sim;S5248;1;ABC123"
	testDevice = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedNetworkFabric/networkDevices/nf1-CompRack1-TOR1"

	// The test's configurations are compact with sorted keys, as the
	// device reports them.
	config1 = `{"DEVICE_METADATA":{"localhost":{"hostname":"nf1-CompRack1-TOR1","hwsku":"S5248"}},` +
		`"LOOPBACK_INTERFACE":{"Loopback0|10.0.0.1/32":{}},` +
		`"PORT":{"Ethernet0":{"admin_status":"up","mtu":"9100"},"Ethernet4":{"admin_status":"up","mtu":"9100"}}}`
	config2 = `{"DEVICE_METADATA":{"localhost":{"hostname":"nf1-CompRack1-TOR1","hwsku":"S5248"}},` +
		`"LOOPBACK_INTERFACE":{"Loopback0|10.0.0.1/32":{}},` +
		`"PORT":{"Ethernet0":{"admin_status":"up","mtu":"9100"},"Ethernet4":{"admin_status":"up","mtu":"9100"}},` +
		`"VLAN":{"Vlan100":{"vlanid":"100"}}}`
)

var testNeighbors = []agentapi.Neighbor{
	{LocalPort: "Ethernet0", SystemName: "nf1-CompRack1-TOR2", PortID: "Ethernet0"},
	{LocalPort: "Ethernet4", SystemName: "server1", PortID: "eth0"},
}

// controller is a minimal control plane: the three fabric endpoints of
// the agent API, with a throwaway CA for the devices' certificates. It
// admits testSerial only, once admit is called.
type controller struct {
	srv   *httptest.Server
	roots *x509.CertPool // verify srv's certificate
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey

	mu       sync.Mutex
	known    bool
	config   agentapi.DeviceConfig
	reapply  bool                   // asked once, at the next report
	reboot   string                 // asked once, at the next report
	revoked  map[string]bool        // by certificate serial number
	issued   []string               // the serial numbers of the certificates issued
	csrKeys  []string               // the public key of each admitted CSR, DER
	ztpTries int                    // all ZTP calls, admitted or not
	events   []string               // "ztp", "config", "state", in the order served
	reports  []agentapi.DeviceState // every report, in order
}

func newController(t *testing.T) *controller {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fabric CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c := &controller{ca: ca, caKey: caKey, revoked: map[string]bool{},
		config: agentapi.DeviceConfig{Revision: 1, ConfigDB: json.RawMessage(config1)}}

	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathZTP, c.ztp)
	mux.HandleFunc("GET "+agentapi.PathDeviceConfig, c.deviceConfig)
	mux.HandleFunc("PUT "+agentapi.PathDeviceState, c.deviceState)
	c.srv = httptest.NewUnstartedServer(mux)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca)
	c.srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clientCAs}
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	c.roots = x509.NewCertPool()
	c.roots.AddCert(c.srv.Certificate())
	return c
}

func (c *controller) ztp(w http.ResponseWriter, r *http.Request) {
	var req agentapi.ZTPRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ztpTries++
	if !c.known || req.SerialNumber != testSerial {
		http.Error(w, "no device waits for this serial number", http.StatusNotFound)
		return
	}
	b, _ := pem.Decode([]byte(req.CSR))
	if b == nil {
		http.Error(w, "no CSR", http.StatusBadRequest)
		return
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err == nil {
		err = csr.CheckSignature()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: testDevice},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.ca, csr.PublicKey, c.caKey)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	pub, _ := x509.MarshalPKIXPublicKey(csr.PublicKey)
	c.csrKeys = append(c.csrKeys, string(pub))
	c.issued = append(c.issued, serial.String())
	c.events = append(c.events, "ztp")
	writeJSON(w, agentapi.ZTPReply{
		Device:        testDevice,
		Certificate:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		CACertificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.ca.Raw})),
		Config:        c.config,
		ReportSeconds: 1,
	})
}

// authorized says whether r comes with a certificate the controller
// issued and has not revoked, and answers it if not.
func (c *controller) authorized(w http.ResponseWriter, r *http.Request) bool {
	if len(r.TLS.PeerCertificates) == 0 { // VerifyClientCertIfGiven verified any given
		http.Error(w, "no client certificate", http.StatusUnauthorized)
		return false
	}
	cert := r.TLS.PeerCertificates[0]
	if cert.Subject.CommonName != testDevice || c.revoked[cert.SerialNumber.String()] {
		http.Error(w, "certificate refused", http.StatusForbidden)
		return false
	}
	return true
}

func (c *controller) deviceConfig(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.authorized(w, r) {
		return
	}
	c.events = append(c.events, "config")
	writeJSON(w, c.config)
}

func (c *controller) deviceState(w http.ResponseWriter, r *http.Request) {
	var st agentapi.DeviceState
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.authorized(w, r) {
		return
	}
	c.events = append(c.events, "state")
	c.reports = append(c.reports, st)
	writeJSON(w, agentapi.DeviceReply{ConfigRevision: c.config.Revision, Reapply: c.reapply, Reboot: c.reboot})
	c.reapply, c.reboot = false, ""
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// admit makes testSerial known, or unknown again.
func (c *controller) admit(known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = known
}

// setConfig makes doc the intended configuration at revision, and
// returns how many events were served before.
func (c *controller) setConfig(revision int64, doc string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.config = agentapi.DeviceConfig{Revision: revision, ConfigDB: json.RawMessage(doc)}
	return len(c.events)
}

func (c *controller) askReapply() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reapply = true
}

func (c *controller) askReboot(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reboot = kind
}

// revokeAll refuses every certificate issued so far.
func (c *controller) revokeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, serial := range c.issued {
		c.revoked[serial] = true
	}
}

func (c *controller) ztps() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.csrKeys)
}

func (c *controller) tries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ztpTries
}

// lastReport is the last report received, and whether there was one.
func (c *controller) lastReport() (agentapi.DeviceState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reports) == 0 {
		return agentapi.DeviceState{}, false
	}
	return c.reports[len(c.reports)-1], true
}

// servedAfter says whether, after the first n events, first was served
// and then then.
func (c *controller) servedAfter(n int, first, then string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.events[n:], first)
	return i >= 0 && slices.Contains(c.events[n+i+1:], then)
}

// count is how many times event was served.
func (c *controller) count(event string) int { return c.countAfter(0, event) }

// countAfter is how many times event was served after the first n
// events.
func (c *controller) countAfter(n int, event string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := 0
	for _, e := range c.events[n:] {
		if e == event {
			k++
		}
	}
	return k
}

// start runs a device against c until the test ends.
func start(t *testing.T, c *controller, serial string, edit func(*Config)) *Switch {
	t.Helper()
	cfg := Config{
		Controller:     c.srv.URL,
		RootCAs:        c.roots,
		SerialNumber:   serial,
		Version:        "SONiC.sim-202411",
		Neighbors:      func() []agentapi.Neighbor { return slices.Clone(testNeighbors) },
		RetryInterval:  20 * time.Millisecond,
		RebootTime:     time.Second,
		ReportInterval: 50 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	s := New(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustParse(t *testing.T, doc string) map[string]map[string]map[string]string {
	t.Helper()
	db, err := parseConfigDB([]byte(doc))
	if err != nil {
		t.Fatalf("parseConfigDB(%s): %v", doc, err)
	}
	return db
}

// admitted starts a device, admits it and waits until the controller has
// its first report at revision 1.
func admitted(t *testing.T, edit func(*Config)) (*controller, *Switch) {
	t.Helper()
	c := newController(t)
	c.admit(true)
	s := start(t, c, testSerial, edit)
	waitFor(t, "a report at revision 1", func() bool {
		st, ok := c.lastReport()
		return ok && st.AppliedRevision == 1
	})
	return c, s
}

func TestZTPUntilKnown(t *testing.T) {
	c := newController(t)
	s := start(t, c, testSerial, nil)
	stranger := start(t, c, "Sim;S5248;1;OTHER", nil)
	waitFor(t, "ZTP retried", func() bool { return c.tries() >= 4 })
	if got := s.State(); got != StateZTP {
		t.Errorf("State() = %q before admission, want %q", got, StateZTP)
	}
	if got := s.Device(); got != "" {
		t.Errorf("Device() = %q before admission, want \"\"", got)
	}

	c.admit(true)
	waitFor(t, "the device running", func() bool { return s.State() == StateRunning })
	if got := s.Device(); got != testDevice {
		t.Errorf("Device() = %q, want %q", got, testDevice)
	}
	if diff := cmp.Diff(mustParse(t, config1), s.Running()); diff != "" {
		t.Errorf("Running() after ZTP (-want +got):\n%s", diff)
	}
	if got := s.AppliedRevision(); got != 1 {
		t.Errorf("AppliedRevision() = %d, want 1", got)
	}
	waitFor(t, "a report", func() bool { _, ok := c.lastReport(); return ok })
	st, _ := c.lastReport()
	want := agentapi.DeviceState{AppliedRevision: 1, Running: json.RawMessage(config1), Neighbors: testNeighbors, Version: "SONiC.sim-202411"}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if got := stranger.State(); got != StateZTP {
		t.Errorf("State() of an unknown serial = %q, want %q", got, StateZTP)
	}
	if got := c.ztps(); got != 1 {
		t.Errorf("%d devices admitted, want 1", got)
	}
}

func TestNewRevision(t *testing.T) {
	c, s := admitted(t, nil)
	c.setConfig(2, config2)
	waitFor(t, "a report at revision 2", func() bool {
		st, ok := c.lastReport()
		return ok && st.AppliedRevision == 2
	})
	st, _ := c.lastReport()
	if string(st.Running) != config2 {
		t.Errorf("report's running = %s, want %s", st.Running, config2)
	}
	if diff := cmp.Diff(mustParse(t, config2), s.Running()); diff != "" {
		t.Errorf("Running() at revision 2 (-want +got):\n%s", diff)
	}
}

func TestEditReported(t *testing.T) {
	c, s := admitted(t, nil)
	s.Edit("PORT", "Ethernet0", "admin_status", "down")
	s.Edit("PORT", "Ethernet4", "mtu", "")
	s.DeleteEntry("LOOPBACK_INTERFACE", "Loopback0|10.0.0.1/32")
	s.Edit("VLAN", "Vlan200", "vlanid", "200")
	want := `{"DEVICE_METADATA":{"localhost":{"hostname":"nf1-CompRack1-TOR1","hwsku":"S5248"}},` +
		`"PORT":{"Ethernet0":{"admin_status":"down","mtu":"9100"},"Ethernet4":{"admin_status":"up"}},` +
		`"VLAN":{"Vlan200":{"vlanid":"200"}}}`
	waitFor(t, "a report of the edits", func() bool {
		st, ok := c.lastReport()
		return ok && string(st.Running) == want
	})
	if got := s.AppliedRevision(); got != 1 {
		t.Errorf("AppliedRevision() after edits = %d, want 1", got)
	}
}

func TestReapply(t *testing.T) {
	c, s := admitted(t, nil)
	s.Edit("PORT", "Ethernet0", "admin_status", "down")
	waitFor(t, "a report of the edit", func() bool {
		st, ok := c.lastReport()
		return ok && string(st.Running) != config1
	})
	c.askReapply()
	waitFor(t, "the edit undone", func() bool {
		st, ok := c.lastReport()
		return ok && string(st.Running) == config1
	})
	if diff := cmp.Diff(mustParse(t, config1), s.Running()); diff != "" {
		t.Errorf("Running() after reapply (-want +got):\n%s", diff)
	}
}

func TestRebootWithZTP(t *testing.T) {
	c, s := admitted(t, nil)
	c.admit(false) // hold the device in ZTP, to see what it forgot
	c.askReboot("WithZTP")
	waitFor(t, "the device back in ZTP", func() bool { return s.State() == StateZTP })
	if got := s.Device(); got != "" {
		t.Errorf("Device() in ZTP = %q, want \"\"", got)
	}
	if got := s.Running(); len(got) != 0 {
		t.Errorf("Running() in ZTP = %v, want it forgotten", got)
	}
	if got := s.AppliedRevision(); got != 0 {
		t.Errorf("AppliedRevision() in ZTP = %d, want 0", got)
	}

	c.setConfig(2, config2)
	c.admit(true)
	waitFor(t, "a report at revision 2", func() bool {
		st, ok := c.lastReport()
		return ok && st.AppliedRevision == 2 && string(st.Running) == config2
	})
	c.mu.Lock()
	keys := slices.Clone(c.csrKeys)
	c.mu.Unlock()
	if len(keys) != 2 || keys[0] == keys[1] {
		t.Errorf("%d admissions, the same key: %t; want 2 with a new key", len(keys), len(keys) == 2 && keys[0] == keys[1])
	}
	if got := s.Device(); got != testDevice {
		t.Errorf("Device() = %q, want %q", got, testDevice)
	}
}

func TestRebootWithoutZTP(t *testing.T) {
	c, s := admitted(t, nil)
	s.Edit("PORT", "Ethernet0", "admin_status", "down")
	before := s.Running()
	c.askReboot("WithoutZTP")
	waitFor(t, "the device rebooting", func() bool { return s.State() == StateRebooting })
	waitFor(t, "the device running again", func() bool { return s.State() == StateRunning })
	if diff := cmp.Diff(before, s.Running()); diff != "" {
		t.Errorf("Running() after the reboot (-before +after):\n%s", diff)
	}
	if got := c.ztps(); got != 1 {
		t.Errorf("%d admissions, want 1: a reboot without ZTP keeps the certificate", got)
	}
	if got := s.Device(); got != testDevice {
		t.Errorf("Device() = %q, want %q", got, testDevice)
	}
}

func TestRevoked(t *testing.T) {
	c, s := admitted(t, nil)
	c.revokeAll()
	waitFor(t, "a second admission", func() bool { return c.ztps() == 2 })
	waitFor(t, "the device running", func() bool { return s.State() == StateRunning })
	if diff := cmp.Diff(mustParse(t, config1), s.Running()); diff != "" {
		t.Errorf("Running() after a new admission (-want +got):\n%s", diff)
	}
}

func TestRejectsBadConfig(t *testing.T) {
	c, s := admitted(t, nil)
	n := c.setConfig(2, `{"PORT":{"Ethernet0":{"mtu":9100}}}`)
	waitFor(t, "a report after the configuration was fetched", func() bool { return c.servedAfter(n, "config", "state") })
	st, _ := c.lastReport()
	if st.AppliedRevision != 1 || string(st.Running) != config1 {
		t.Errorf("report after a bad configuration = revision %d, %s; want revision 1, %s", st.AppliedRevision, st.Running, config1)
	}
	if got := s.AppliedRevision(); got != 1 {
		t.Errorf("AppliedRevision() = %d, want 1", got)
	}

	// The rejected revision is not fetched again at each report.
	m := c.count("state") + 3
	waitFor(t, "three more reports", func() bool { return c.count("state") >= m })
	if got := c.countAfter(n, "config"); got != 1 {
		t.Errorf("the rejected configuration was fetched %d times, want 1", got)
	}

	c.setConfig(3, config2)
	waitFor(t, "a report at revision 3", func() bool {
		st, ok := c.lastReport()
		return ok && st.AppliedRevision == 3 && string(st.Running) == config2
	})
}

func TestParseConfigDB(t *testing.T) {
	tests := []struct {
		doc string
		ok  bool
	}{
		{config1, true},
		{`{}`, true},
		{`{"PORT":{}}`, true},
		{``, false},
		{`null`, false},
		{`[]`, false},
		{`"PORT"`, false},
		{`{"PORT":[]}`, false},
		{`{"PORT":null}`, false},
		{`{"PORT":{"Ethernet0":null}}`, false},
		{`{"PORT":{"Ethernet0":{"mtu":9100}}}`, false},
		{`{"PORT":{"Ethernet0":{"mtu":null}}}`, false},
		{`{"PORT":{"Ethernet0":{"mtu":""}}}`, true},
		{`{"VLAN":{"Vlan1":{"members":["Ethernet0"]}}}`, false},
		{`{} {}`, false},
	}
	for _, tt := range tests {
		_, err := parseConfigDB([]byte(tt.doc))
		if (err == nil) != tt.ok {
			t.Errorf("parseConfigDB(%s) = %v, want ok %t", tt.doc, err, tt.ok)
		}
	}
}

func TestEdit(t *testing.T) {
	s := New(Config{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	type db = map[string]map[string]map[string]string
	steps := []struct {
		name string
		do   func()
		want db
	}{
		{"set creates", func() { s.Edit("PORT", "Ethernet0", "mtu", "9100") }, db{"PORT": {"Ethernet0": {"mtu": "9100"}}}},
		{"set replaces", func() { s.Edit("PORT", "Ethernet0", "mtu", "1500") }, db{"PORT": {"Ethernet0": {"mtu": "1500"}}}},
		{"empty deletes the field", func() { s.Edit("PORT", "Ethernet0", "mtu", "") }, db{"PORT": {"Ethernet0": {}}}},
		{"empty on nothing", func() { s.Edit("VLAN", "Vlan1", "vlanid", "") }, db{"PORT": {"Ethernet0": {}}}},
		{"delete a missing entry", func() { s.DeleteEntry("PORT", "Ethernet4") }, db{"PORT": {"Ethernet0": {}}}},
		{"delete the last entry", func() { s.DeleteEntry("PORT", "Ethernet0") }, db{}},
	}
	for _, step := range steps {
		step.do()
		if diff := cmp.Diff(step.want, s.Running()); diff != "" {
			t.Errorf("%s: Running() (-want +got):\n%s", step.name, diff)
		}
	}

	s.Edit("PORT", "Ethernet0", "mtu", "9100")
	s.Running()["PORT"]["Ethernet0"]["mtu"] = "1"
	if got := s.Running()["PORT"]["Ethernet0"]["mtu"]; got != "9100" {
		t.Errorf("after changing a copy, Running() has mtu %q, want 9100", got)
	}
}
