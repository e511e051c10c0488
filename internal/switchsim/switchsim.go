// Package switchsim simulates a fabric's network devices, SONiC-like
// switches and routers, for `citadel sim` and tests. A simulated device
// knows only the control plane's address and its own serial number, as a
// real one does: it bootstraps with zero-touch provisioning, runs the
// config_db.json document it is given, and reports its running
// configuration and LLDP neighbours over mTLS. It reaches the control
// plane through the agent API only (agentapi) and imports nothing else of
// Citadel; the simulator and tests import it.
package switchsim

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentcall"
)

// States of a device, as State tells them.
const (
	StateZTP       = "ztp"       // waiting to be admitted by zero-touch provisioning
	StateRunning   = "running"   // admitted: runs a configuration and reports it
	StateRebooting = "rebooting" // dark for Config.RebootTime after a reboot without ZTP
)

// The kinds of agentapi.DeviceReply.Reboot.
const (
	rebootWithZTP    = "WithZTP"
	rebootWithoutZTP = "WithoutZTP"
)

const (
	defaultRetryInterval  = 2 * time.Second
	defaultRebootTime     = 2 * time.Second
	defaultReportInterval = 10 * time.Second // when the control plane names none
	requestTimeout        = 30 * time.Second
	maxReplyBytes         = 8 << 20 // a large fabric's config_db.json is a few hundred KiB
)

// configDB is a SONiC config_db.json document: table, key, field, value.
type configDB = map[string]map[string]map[string]string

// Config configures a simulated device.
type Config struct {
	// Controller is the agent API's base URL, e.g. https://127.0.0.1:8443,
	// and RootCAs verify its TLS certificate.
	Controller string
	RootCAs    *x509.CertPool
	// SerialNumber is "Make;Model;HardwareRevision;Serial": all the device
	// knows of itself, and what ZTP admits it by.
	SerialNumber string
	// Version is the software version the device reports.
	Version string
	// Neighbors, if set, says what LLDP hears on the device's ports right
	// now (the simulator's cabling, faults included). It is called on
	// every report.
	Neighbors func() []agentapi.Neighbor
	// RetryInterval is the wait between ZTP attempts while the device is
	// not admitted (default 2 s).
	RetryInterval time.Duration
	// RebootTime is how long a reboot without ZTP keeps the device dark
	// (default 2 s).
	RebootTime time.Duration
	// ReportInterval overrides the interval the ZTP reply asks for, whose
	// unit is a second (tests).
	ReportInterval time.Duration
	Logger         *slog.Logger
}

// Switch is one simulated device. Run runs it; the other methods may be
// called from any goroutine meanwhile.
type Switch struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex // guards what follows: Run changes it while the simulator reads and edits it
	state   string
	device  string // the networkDevice's ARM ID, once admitted
	applied int64  // the revision of the configuration applied last
	running configDB
}

// New prepares a device, powered on but not yet admitted; Run runs it.
func New(cfg Config) *Switch {
	cfg.RetryInterval = cmp.Or(cfg.RetryInterval, defaultRetryInterval)
	cfg.RebootTime = cmp.Or(cfg.RebootTime, defaultRebootTime)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Switch{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "switchsim", "serial", cfg.SerialNumber),
		state:   StateZTP,
		running: configDB{},
	}
}

// Run bootstraps the device and then reports until ctx ends. Like real
// hardware it never gives up: failures are logged and retried, and a
// device whose certificate is refused bootstraps again. Call it once.
func (s *Switch) Run(ctx context.Context) {
	for ctx.Err() == nil {
		adm, ok := s.bootstrap(ctx)
		if !ok {
			return
		}
		s.operate(ctx, adm)
	}
}

// admission is what ZTP gave the device: the client certificate for the
// key it made, and how often to report.
type admission struct {
	cert     tls.Certificate
	interval time.Duration
	// rejected is the revision of the configuration the device rejected
	// last: it is not fetched again unless a reapply asks for it.
	rejected int64
}

// bootstrap asks ZTP to admit the device until it does; false when ctx
// ended first.
func (s *Switch) bootstrap(ctx context.Context) (*admission, bool) {
	// Without a client certificate: the server's CA only.
	anon := &http.Client{Timeout: requestTimeout, Transport: s.transport(nil)}
	defer anon.CloseIdleConnections()
	for {
		adm, err := s.ztp(ctx, anon)
		switch code := agentcall.Code(err); {
		case err == nil:
			return adm, true
		case ctx.Err() != nil:
			return nil, false
		case code == http.StatusForbidden || code == http.StatusNotFound:
			// Unknown, or not waiting for a device: the usual answer
			// until the fabric is provisioned.
			s.log.DebugContext(ctx, "not admitted yet, retrying", "err", err)
		default:
			s.log.WarnContext(ctx, "zero-touch provisioning failed, retrying", "err", err)
		}
		if !agentcall.Sleep(ctx, agentcall.Jitter(s.cfg.RetryInterval)) {
			return nil, false
		}
	}
}

// ztp is one attempt at zero-touch provisioning, with a key of its own.
// An admitted device takes the configuration it is given.
func (s *Switch) ztp(ctx context.Context, c *http.Client) (*admission, error) {
	key, err := agentcall.NewKey()
	if err != nil {
		return nil, err
	}
	csr, err := agentcall.CSR(key, s.cfg.SerialNumber)
	if err != nil {
		return nil, err
	}
	var reply agentapi.ZTPReply
	req := agentapi.ZTPRequest{SerialNumber: s.cfg.SerialNumber, CSR: string(csr)}
	if err := agentcall.Do(ctx, c, s.cfg.Controller, http.MethodPost, agentapi.PathZTP, req, &reply); err != nil {
		return nil, err
	}
	cert, err := clientCertificate(key, reply.Certificate)
	if err != nil {
		return nil, fmt.Errorf("ztp: %w", err)
	}
	interval := time.Duration(reply.ReportSeconds) * time.Second
	if interval <= 0 {
		interval = defaultReportInterval
	}
	adm := &admission{cert: cert, interval: cmp.Or(s.cfg.ReportInterval, interval)}

	s.log.InfoContext(ctx, "admitted", "device", reply.Device, "report_interval", adm.interval)
	if !s.applyLogged(ctx, reply.Config) {
		adm.rejected = reply.Config.Revision
	}
	// Running once it runs what it was given, as a real device reports
	// itself up only after loading its configuration.
	s.mu.Lock()
	s.state, s.device = StateRunning, reply.Device
	s.mu.Unlock()
	return adm, nil
}

// operate reports at each interval and does what the answers say, until
// the device must bootstrap again (a reboot with ZTP, a refused
// certificate) or ctx ends.
func (s *Switch) operate(ctx context.Context, adm *admission) {
	c := &http.Client{Timeout: requestTimeout, Transport: s.transport(&adm.cert)}
	defer c.CloseIdleConnections()
	for ctx.Err() == nil {
		reply, err := s.report(ctx, c)
		if err == nil && reply.Reboot == "" {
			err = s.follow(ctx, c, adm, reply)
		}
		switch code := agentcall.Code(err); {
		case ctx.Err() != nil:
			return
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			s.log.WarnContext(ctx, "certificate refused, bootstrapping again", "err", err)
			s.forget(false)
			return
		case err != nil:
			s.log.WarnContext(ctx, "report failed, retrying", "err", err)
		case reply.Reboot == rebootWithZTP:
			s.log.InfoContext(ctx, "rebooting with zero-touch provisioning")
			s.forget(true)
			return
		case reply.Reboot == rebootWithoutZTP:
			s.log.InfoContext(ctx, "rebooting", "outage", s.cfg.RebootTime)
			s.setState(StateRebooting)
			c.CloseIdleConnections() // its connections go down with it
			if !agentcall.Sleep(ctx, s.cfg.RebootTime) {
				return
			}
			s.setState(StateRunning)
			s.log.InfoContext(ctx, "rebooted")
			continue // a device reports as soon as it is up
		case reply.Reboot != "":
			s.log.WarnContext(ctx, "unknown reboot kind ignored", "reboot", reply.Reboot)
		}
		if !agentcall.Sleep(ctx, agentcall.Jitter(adm.interval)) {
			return
		}
	}
}

// report sends the device's state and returns the answer.
func (s *Switch) report(ctx context.Context, c *http.Client) (agentapi.DeviceReply, error) {
	st := agentapi.DeviceState{Version: s.cfg.Version}
	if s.cfg.Neighbors != nil {
		st.Neighbors = s.cfg.Neighbors()
	}
	s.mu.Lock()
	st.AppliedRevision = s.applied
	running, err := json.Marshal(s.running) // map keys sorted: the same config, the same bytes
	s.mu.Unlock()
	if err != nil {
		return agentapi.DeviceReply{}, err
	}
	st.Running = running
	var reply agentapi.DeviceReply
	err = agentcall.Do(ctx, c, s.cfg.Controller, http.MethodPut, agentapi.PathDeviceState, st, &reply)
	return reply, err
}

// follow fetches and applies the intended configuration when the answer
// to a report says it is newer than the applied one (and not the one
// rejected last) or must replace the running one.
func (s *Switch) follow(ctx context.Context, c *http.Client, adm *admission, reply agentapi.DeviceReply) error {
	newer := reply.ConfigRevision > s.AppliedRevision() && reply.ConfigRevision != adm.rejected
	if !newer && !reply.Reapply {
		return nil
	}
	var dc agentapi.DeviceConfig
	if err := agentcall.Do(ctx, c, s.cfg.Controller, http.MethodGet, agentapi.PathDeviceConfig, nil, &dc); err != nil {
		return err
	}
	if !s.applyLogged(ctx, dc) {
		adm.rejected = dc.Revision
	}
	return nil
}

// applyLogged applies a configuration, or logs why it did not and
// returns false: the device then keeps running the configuration it had,
// and its reports say so.
func (s *Switch) applyLogged(ctx context.Context, dc agentapi.DeviceConfig) bool {
	if err := s.apply(dc); err != nil {
		s.log.ErrorContext(ctx, "configuration rejected, keeping the running one", "revision", dc.Revision, "err", err)
		return false
	}
	s.log.InfoContext(ctx, "configuration applied", "revision", dc.Revision)
	return true
}

// apply replaces the running configuration with dc's.
func (s *Switch) apply(dc agentapi.DeviceConfig) error {
	db, err := parseConfigDB(dc.ConfigDB)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.running, s.applied = db, dc.Revision
	s.mu.Unlock()
	return nil
}

// parseConfigDB reads a config_db.json document: an object of tables,
// each an object of entries, each an object of string fields. Anything
// else, null at any level included, is not one.
func parseConfigDB(doc []byte) (configDB, error) {
	var raw map[string]map[string]map[string]*string // *string: to tell null from ""
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("not a config_db document: %w", err)
	}
	if raw == nil {
		return nil, errors.New("not a config_db document: null")
	}
	db := make(configDB, len(raw))
	for table, entries := range raw {
		if entries == nil {
			return nil, fmt.Errorf("not a config_db document: table %q is null", table)
		}
		db[table] = make(map[string]map[string]string, len(entries))
		for key, fields := range entries {
			if fields == nil {
				return nil, fmt.Errorf("not a config_db document: %s|%s is null", table, key)
			}
			db[table][key] = make(map[string]string, len(fields))
			for field, value := range fields {
				if value == nil {
					return nil, fmt.Errorf("not a config_db document: %s|%s %s is null", table, key, field)
				}
				db[table][key][field] = *value
			}
		}
	}
	return db, nil
}

// forget drops the device's admission; all drops its configuration too,
// as a reboot with ZTP does.
func (s *Switch) forget(all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.device = StateZTP, ""
	if all {
		s.running, s.applied = configDB{}, 0
	}
}

func (s *Switch) setState(state string) {
	s.mu.Lock()
	s.state = state
	s.mu.Unlock()
}

// Running is a copy of the device's running configuration.
func (s *Switch) Running() map[string]map[string]map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(configDB, len(s.running))
	for table, entries := range s.running {
		out[table] = make(map[string]map[string]string, len(entries))
		for key, fields := range entries {
			out[table][key] = maps.Clone(fields)
		}
	}
	return out
}

// Edit changes one field of the running configuration by hand, as an
// operator on the device's console would: the drift the control plane
// must catch. An empty value deletes the field (the entry stays, perhaps
// with no fields, as config_db.json has them).
func (s *Switch) Edit(table, key, field, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		delete(s.running[table][key], field)
		return
	}
	if s.running[table] == nil {
		s.running[table] = map[string]map[string]string{}
	}
	if s.running[table][key] == nil {
		s.running[table][key] = map[string]string{}
	}
	s.running[table][key][field] = value
}

// DeleteEntry deletes an entry of the running configuration by hand; a
// table left with no entries goes too.
func (s *Switch) DeleteEntry(table, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.running[table][key]; !ok {
		return
	}
	delete(s.running[table], key)
	if len(s.running[table]) == 0 {
		delete(s.running, table)
	}
}

// State is StateZTP, StateRunning or StateRebooting.
func (s *Switch) State() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Device is the ARM ID of the networkDevice the device was admitted as,
// "" while it is not.
func (s *Switch) Device() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.device
}

// AppliedRevision is the revision of the configuration applied last, 0
// before the first.
func (s *Switch) AppliedRevision() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// clientCertificate pairs the PEM certificate the control plane issued
// with the key it was issued for.
func clientCertificate(key *ecdsa.PrivateKey, certPEM string) (tls.Certificate, error) {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return tls.Certificate{}, errors.New("no certificate in the reply")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("the certificate: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return tls.Certificate{}, errors.New("the certificate is not for the device's key")
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}

// transport trusts the control plane's CA and presents cert, if any.
func (s *Switch) transport(cert *tls.Certificate) *http.Transport {
	tc := &tls.Config{RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Transport{TLSClientConfig: tc}
}
