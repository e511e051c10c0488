// Package agent is `citadel agent`, which runs on every machine: it joins
// the control plane with a one-time bootstrap token and a key of its own,
// talks to it over mTLS afterwards, reports the machine's inventory,
// sends heartbeats at a jittered interval, follows its desired state,
// runs the virtual machines it lists (reporting them with the heartbeats)
// and renews its certificate before it expires. What it knows of the machine
// comes from a host.Host: the real Linux host, or a simulated one in the
// fleet simulator, which runs this same code.
package agent

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agent/vm"
	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentcall"
)

// Version is the agent's version, reported with every heartbeat.
const Version = "0.1.0"

// Config configures an agent.
type Config struct {
	// Server is the agent API of a replica of the control plane,
	// https://host:port, which the agent joins through; it learns the
	// other replicas from the heartbeats' answers (replicas.go). ServerCA
	// is the PEM CA their certificates chain to.
	Server   string
	ServerCA []byte
	// Machine is the ARM ID of the machine's bareMetalMachine resource.
	Machine string
	// Token is the bootstrap token, needed only until the agent holds a
	// certificate.
	Token string
	// StateDir keeps the agent's key and certificate across restarts;
	// empty keeps them in memory only (simulated agents).
	StateDir string
	// Host is the machine; if it is a host.VMRunner, the agent runs the
	// VMs of its desired state and reports them with its heartbeats.
	Host host.Host
	// Interval overrides the heartbeat interval the control plane asks for.
	Interval time.Duration
	// Transport, if set, is the base of the agent's HTTP transport (the
	// fleet simulator shares dialers); its TLS settings are the agent's.
	Transport *http.Transport
	// NoWatch turns the long poll of the desired state off: the agent
	// then fetches it when a heartbeat's answer says it changed (the
	// fleet benchmark, whose agents keep no connection open).
	NoWatch bool
	Logger  *slog.Logger
}

// Agent is one running agent.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	replicas *replicas  // of the control plane: the one the agent talks to, and the others
	mu       sync.Mutex // guards key and cert, which a renewal replaces while the desired state is watched
	key      *ecdsa.PrivateKey
	cert     *x509.Certificate
	certPEM  []byte
	renewAt  time.Time // when two thirds of the certificate's life, as the agent got it, are gone
	client   *http.Client
	interval atomic.Int64 // the heartbeat interval, in nanoseconds: Config.Interval, or the control plane's
	applied  atomic.Int64 // desired revision applied
	beats    atomic.Int64 // heartbeats answered
	reportMu sync.Mutex   // serialises reports of the inventory, from heartbeats and from applying the desired state
	reported agentapi.Inventory
	vmMu     sync.Mutex // serialises runs of the VMs, from heartbeats and from applying the desired state; guards what follows
	vms      []agentapi.VM
	vmsKnown bool        // a desired state was applied: until then an empty list would remove the VMs the machine runs
	vmErr    string      // the last error of RunVMs, logged when it changes
	staging  atomic.Bool // VM images are being staged in the background
	// beatNow asks for a heartbeat before the interval is up: the VMs
	// of a new desired state run, and the control plane waits for
	// their statuses.
	beatNow chan struct{}

	consoles consoleAnswers // the console requests answered (consoles.go)
}

// New prepares an agent; Run runs it.
func New(cfg Config) *Agent {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("component", "agent", "machine", cfg.Machine), replicas: newReplicas(cfg.Server),
		beatNow: make(chan struct{}, 1)}
	a.setInterval(cmp.Or(cfg.Interval, 10*time.Second))
	return a
}

// Run joins (unless a certificate is kept) and then reports until ctx
// ends. Transient failures are retried; a refused join or a revoked
// certificate ends it with an error.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.load(); err != nil {
		return err
	}
	if a.cert == nil {
		if err := a.join(ctx); err != nil {
			return err
		}
	}
	a.client = a.httpClient()
	defer func() { a.client.CloseIdleConnections() }()
	if !a.cfg.NoWatch {
		watch, stop := context.WithCancel(ctx)
		defer stop() // a refused agent stops watching too
		go a.watchDesired(watch)
	}
	for failures := 0; ; {
		beats := a.beats.Load()
		err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var refused *refusal
		if errors.As(err, &refused) {
			return err
		}
		if a.beats.Load() != beats {
			failures = 0 // it worked for a while: this is a new outage
		}
		failures++
		a.log.WarnContext(ctx, "agent: control plane unreachable, retrying", "err", err)
		if !agentcall.Sleep(ctx, agentcall.Jitter(retryAfter(failures, a.heartbeatInterval()))) {
			return nil
		}
	}
}

// session reports the inventory, then sends heartbeats until something
// fails.
func (a *Agent) session(ctx context.Context) error {
	for {
		if time.Now().After(a.renewAt) {
			if err := a.renew(ctx); err != nil {
				return err
			}
		}
		inv, err := a.report(ctx)
		if err != nil {
			return err
		}
		if h, ok := a.cfg.Host.(host.Healer); ok {
			if repaired, err := h.Heal(ctx); err != nil {
				a.log.WarnContext(ctx, "agent: host not repaired", "err", err)
			} else if len(repaired) > 0 {
				a.log.WarnContext(ctx, "agent: host repaired after a change by hand", "changes", repaired)
			}
		}
		a.restageVMs(ctx)
		a.retryConsoles(ctx, a.client)
		var reply agentapi.HeartbeatReply
		hb := agentapi.Heartbeat{Observed: agentapi.Observed{AgentVersion: Version, OSImage: inv.OS.Name,
			Addresses: addresses(inv), DesiredRevision: a.applied.Load()}, VMs: a.runVMs(ctx)}
		if err := a.call(ctx, http.MethodPost, agentapi.PathHeartbeat, hb, &reply); err != nil {
			return err
		}
		a.beats.Add(1)
		a.replicas.learn(reply.Replicas)
		if reply.HeartbeatSeconds > 0 && a.cfg.Interval == 0 {
			a.setInterval(time.Duration(reply.HeartbeatSeconds) * time.Second)
		}
		if a.cfg.NoWatch && reply.DesiredRevision > a.applied.Load() {
			if err := a.fetchDesired(ctx, a.client); err != nil {
				return err
			}
		}
		if !a.untilNextBeat(ctx) {
			return nil
		}
	}
}

// untilNextBeat waits for the next heartbeat: the interval, jittered, or
// less when a new desired state changed the VMs. It returns false when
// ctx ends.
func (a *Agent) untilNextBeat(ctx context.Context) bool {
	t := time.NewTimer(agentcall.Jitter(a.heartbeatInterval()))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-a.beatNow:
	}
	return true
}

// retryAfter is how long an agent waits before its next try after
// failures calls in a row found no replica to answer: a second, doubling
// up to the heartbeat interval. A replica that failed over is found again
// well within the silence that makes a machine NotReady, and a control
// plane that is down is not called faster than the heartbeats would.
func retryAfter(failures int, interval time.Duration) time.Duration {
	return min(interval, time.Second<<min(failures-1, 10))
}

func (a *Agent) setInterval(d time.Duration)      { a.interval.Store(int64(d)) }
func (a *Agent) heartbeatInterval() time.Duration { return time.Duration(a.interval.Load()) }

// report sends the machine's inventory when it changed since the last
// report, and returns what was last reported. A host that cannot be read
// is logged and reported as before.
func (a *Agent) report(ctx context.Context) (agentapi.Inventory, error) {
	a.reportMu.Lock()
	defer a.reportMu.Unlock()
	inv, err := a.cfg.Host.Inventory(ctx)
	if err != nil {
		a.log.WarnContext(ctx, "agent: reading the inventory failed", "err", err)
		return a.reported, nil
	}
	if !reflect.DeepEqual(inv, a.reported) {
		if err := a.call(ctx, http.MethodPut, agentapi.PathInventory, inv, nil); err != nil {
			return a.reported, err
		}
		a.reported = inv
	}
	return a.reported, nil
}

// watchDesired long-polls the desired state and applies each new one,
// until ctx ends.
func (a *Agent) watchDesired(ctx context.Context) {
	var c *http.Client // its own: the poll outlasts the usual timeout
	var made *x509.Certificate
	for ctx.Err() == nil {
		if cert := a.certificate(); cert != made { // renewed: present the new one
			if c != nil {
				c.CloseIdleConnections()
			}
			c, made = a.httpClient(), cert
			c.Timeout = 0
		}
		if err := a.fetchDesired(ctx, c); err != nil && ctx.Err() == nil {
			a.log.WarnContext(ctx, "agent: waiting for the desired state failed", "err", err)
			agentcall.Sleep(ctx, agentcall.Jitter(a.heartbeatInterval()))
		}
	}
	if c != nil {
		c.CloseIdleConnections()
	}
}

// certificate is the agent's current certificate.
func (a *Agent) certificate() *x509.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cert
}

// fetchDesired gets the desired state newer than the applied one (the
// control plane holds the request until there is one, or for a while)
// and applies it.
func (a *Agent) fetchDesired(ctx context.Context, c *http.Client) error {
	var d agentapi.Desired
	if err := do(ctx, c, a.replicas.get(), http.MethodGet, fmt.Sprintf("%s?after=%d", agentapi.PathDesired, a.applied.Load()), nil, &d); err != nil {
		return err
	}
	if d.Revision <= a.applied.Load() {
		return nil
	}
	if stager, ok := a.cfg.Host.(host.Stager); ok {
		if err := a.stage(ctx, c, stager, d.Artifacts); err != nil {
			return err
		}
	}
	if err := a.cfg.Host.Apply(ctx, d); err != nil {
		return fmt.Errorf("applying the desired state: %w", err)
	}
	a.applyVMs(ctx, c, d.VMs)
	a.log.InfoContext(ctx, "agent: desired state applied", "revision", d.Revision, "cordoned", d.Cordoned, "osImage", d.OSImage,
		"clusterVersion", d.ClusterVersion)
	a.applied.Store(d.Revision)
	// What applying changed (the release it runs) is reported now, not
	// at the next heartbeat: an update waits for it.
	_, err := a.report(ctx)
	a.answerConsoles(ctx, c, d.VMs) // after the report, which an update waits for
	return err
}

// applyVMs stages the images of the desired VMs and runs them. An image
// that cannot be staged leaves its VM in error (its status says so), not
// the desired state unapplied: the heartbeats stage it again.
func (a *Agent) applyVMs(ctx context.Context, c *http.Client, vms []agentapi.VM) {
	if _, ok := a.cfg.Host.(host.VMRunner); !ok {
		if len(vms) > 0 {
			a.log.WarnContext(ctx, "agent: the desired state lists VMs, but this host runs none", "vms", len(vms))
		}
		return
	}
	if stager, ok := a.cfg.Host.(host.Stager); ok {
		a.stageVMs(ctx, c, stager, vms)
	}
	a.vmMu.Lock()
	changed := !a.vmsKnown || !reflect.DeepEqual(a.vms, vms)
	a.vms, a.vmsKnown = vms, true
	a.vmMu.Unlock()
	a.runVMs(ctx) // the statuses go with the next heartbeat, which runs them again
	if changed {  // which goes now: the control plane waits for them
		select {
		case a.beatNow <- struct{}{}:
		default:
		}
	}
}

// runVMs runs the VMs of the desired state applied and returns their
// statuses: none before a desired state was applied, or when the host
// runs no VMs.
func (a *Agent) runVMs(ctx context.Context) []agentapi.VMStatus {
	r, ok := a.cfg.Host.(host.VMRunner)
	if !ok {
		return nil
	}
	a.vmMu.Lock()
	defer a.vmMu.Unlock()
	if !a.vmsKnown {
		return nil
	}
	statuses, err := r.RunVMs(ctx, held(a.vms))
	for i, st := range statuses {
		statuses[i].Evicted = i < len(a.vms) && a.vms[i].Evicted && st.Power == vm.Off
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != a.vmErr && msg != "" {
		a.log.WarnContext(ctx, "agent: running the VMs failed", "err", err)
	}
	a.vmErr = msg
	return statuses
}

// held is what the host runs of vms: an evicted VM held off, wherever
// its power should be once it runs on its new machine.
func held(vms []agentapi.VM) []agentapi.VM {
	out := make([]agentapi.VM, len(vms))
	for i, v := range vms {
		if v.Evicted {
			v.Power = vm.Off
		}
		out[i] = v
	}
	return out
}

// restageVMs stages, in the background, the images of the desired VMs
// that staging them with the desired state failed to: an image of
// several GiB must not hold up the heartbeats.
func (a *Agent) restageVMs(ctx context.Context) {
	stager, ok := a.cfg.Host.(host.Stager)
	if !ok {
		return
	}
	a.vmMu.Lock()
	vms := a.vms
	a.vmMu.Unlock()
	missing := false
	for _, img := range vmImages(vms) {
		missing = missing || !stager.Staged(img.SHA256)
	}
	if !missing || !a.staging.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer a.staging.Store(false)
		c := a.httpClient()
		c.Timeout = 0 // an image takes what it takes; ctx bounds it
		defer c.CloseIdleConnections()
		a.stageVMs(ctx, c, stager, vms)
	}()
}

// stageVMs stages the images of vms, each on its own: one that fails is
// logged, and its VM reports it is not staged.
func (a *Agent) stageVMs(ctx context.Context, c *http.Client, h host.Stager, vms []agentapi.VM) {
	for _, img := range vmImages(vms) {
		if err := a.stage(ctx, c, h, []agentapi.Artifact{img}); err != nil && ctx.Err() == nil {
			a.log.WarnContext(ctx, "agent: staging a VM image failed", "image", img.Name, "sha256", img.SHA256, "err", err)
		}
	}
}

// vmImages are the images of vms, each once.
func vmImages(vms []agentapi.VM) []agentapi.Artifact {
	var out []agentapi.Artifact
	seen := map[string]bool{"": true} // no image to fetch: the driver reports the VM
	for _, v := range vms {
		if !seen[v.Image.SHA256] {
			seen[v.Image.SHA256] = true
			out = append(out, v.Image)
		}
	}
	return out
}

// stage fetches the artifacts the host does not hold yet from the agent
// API and hands them to it, which keeps each only if its digest matches.
func (a *Agent) stage(ctx context.Context, c *http.Client, h host.Stager, artifacts []agentapi.Artifact) error {
	for _, art := range artifacts {
		if h.Staged(art.SHA256) {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.replicas.get()+agentapi.PathArtifacts+art.SHA256, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("fetching the artifact %s: %w", art.Name, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("fetching the artifact %s: %s", art.Name, resp.Status)
		}
		err = h.Stage(ctx, art, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		a.log.InfoContext(ctx, "agent: artifact staged", "name", art.Name, "sha256", art.SHA256, "size", art.Size)
	}
	return nil
}

// join makes a key, asks for a certificate with the bootstrap token and
// keeps both.
func (a *Agent) join(ctx context.Context) error {
	if a.cfg.Token == "" {
		return &refusal{errors.New("agent: no certificate and no bootstrap token to join with")}
	}
	key, err := agentcall.NewKey()
	if err != nil {
		return err
	}
	csr, err := agentcall.CSR(key, a.cfg.Machine)
	if err != nil {
		return err
	}
	// Joining uses the server's CA only: there is no client certificate yet.
	anon := &http.Client{Timeout: 30 * time.Second, Transport: a.transport(nil)}
	var c agentapi.Certificate
	req := agentapi.JoinRequest{Token: a.cfg.Token, Machine: a.cfg.Machine, CSR: string(csr)}
	for {
		err = do(ctx, anon, a.cfg.Server, http.MethodPost, agentapi.PathJoin, req, &c)
		var refused *refusal
		if err == nil || errors.As(err, &refused) || ctx.Err() != nil {
			break
		}
		a.log.WarnContext(ctx, "agent: join failed, retrying", "err", err)
		if !agentcall.Sleep(ctx, agentcall.Jitter(5*time.Second)) {
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	return a.keep(key, c)
}

// renew replaces the certificate before it expires, over mTLS.
func (a *Agent) renew(ctx context.Context) error {
	key, err := agentcall.NewKey()
	if err != nil {
		return err
	}
	csr, err := agentcall.CSR(key, a.cfg.Machine)
	if err != nil {
		return err
	}
	var c agentapi.Certificate
	if err := a.call(ctx, http.MethodPost, agentapi.PathRenew, agentapi.RenewRequest{CSR: string(csr)}, &c); err != nil {
		return err
	}
	if err := a.keep(key, c); err != nil {
		return err
	}
	a.client.CloseIdleConnections()
	a.client = a.httpClient()
	a.log.InfoContext(ctx, "agent: certificate renewed", "until", a.cert.NotAfter)
	return nil
}

// keep takes a certificate answer for key into use and saves both.
func (a *Agent) keep(key *ecdsa.PrivateKey, c agentapi.Certificate) error {
	b, _ := pem.Decode([]byte(c.Certificate))
	if b == nil {
		return errors.New("agent: the control plane sent no certificate")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.key, a.cert, a.certPEM = key, cert, []byte(c.Certificate)
	a.mu.Unlock()
	a.renewAt = renewTime(cert)
	if c.HeartbeatSeconds > 0 && a.cfg.Interval == 0 {
		a.setInterval(time.Duration(c.HeartbeatSeconds) * time.Second)
	}
	if a.cfg.StateDir == "" {
		return nil
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.cfg.StateDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.cfg.StateDir, "agent.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(a.cfg.StateDir, "agent.crt"), a.certPEM, 0o600)
}

// load reads a kept key and certificate, if any.
func (a *Agent) load() error {
	if a.cfg.StateDir == "" {
		return nil
	}
	certPEM, err := os.ReadFile(filepath.Join(a.cfg.StateDir, "agent.crt"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(filepath.Join(a.cfg.StateDir, "agent.key"))
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("agent: the kept certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return errors.New("agent: the kept key is not ECDSA")
	}
	if time.Now().After(cert.NotAfter) {
		return nil // expired: join again
	}
	a.key, a.cert, a.certPEM = key, cert, certPEM
	a.renewAt = renewTime(cert)
	return nil
}

// renewTime is when a certificate held from now should be renewed: with
// a third of its remaining life left. (Its NotBefore is backdated for
// clocks that lag, so it does not say when it was issued.)
func renewTime(cert *x509.Certificate) time.Time {
	now := time.Now()
	return now.Add(cert.NotAfter.Sub(now) * 2 / 3)
}

// transport trusts the server's CA and presents cert, if any.
func (a *Agent) transport(cert *tls.Certificate) *http.Transport {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.cfg.ServerCA)
	t := &http.Transport{}
	if a.cfg.Transport != nil {
		t = a.cfg.Transport.Clone()
	}
	// A session cache lets a reconnecting agent resume its TLS session
	// instead of a full handshake.
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	if cert != nil {
		t.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	return t
}

func (a *Agent) httpClient() *http.Client {
	a.mu.Lock()
	cert := &tls.Certificate{Certificate: [][]byte{a.cert.Raw}, PrivateKey: a.key, Leaf: a.cert}
	a.mu.Unlock()
	return &http.Client{Timeout: 30 * time.Second, Transport: a.transport(cert)}
}

// refusal is an answer that retrying will not change: a refused join or
// a revoked certificate.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// do makes one call of the agent API; a 401 or 403 is a refusal.
func do(ctx context.Context, c *http.Client, server, method, path string, in, out any) error {
	err := agentcall.Do(ctx, c, server, method, path, in, out)
	if code := agentcall.Code(err); code == http.StatusForbidden || code == http.StatusUnauthorized {
		return &refusal{fmt.Errorf("agent: %w", err)}
	}
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// addresses are the machine's IP addresses, from its NICs.
func addresses(inv agentapi.Inventory) []string {
	var out []string
	for _, n := range inv.NICs {
		out = append(out, n.Addresses...)
	}
	return out
}
