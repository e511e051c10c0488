// Package server assembles one control-plane replica: the store, the token
// issuer, the resource framework with its providers, the front door over
// HTTPS and the controllers. cmd/citadel and servertest start it; nothing
// else imports it.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/citadel-cloud/citadel/internal/agentauth"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/deploy"
	"github.com/citadel-cloud/citadel/internal/fleet"
	"github.com/citadel-cloud/citadel/internal/frontdoor"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/images"
	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/policy"
	"github.com/citadel-cloud/citadel/internal/portal"
	"github.com/citadel-cloud/citadel/internal/providers/authorization"
	"github.com/citadel-cloud/citadel/internal/providers/directory"
	"github.com/citadel-cloud/citadel/internal/providers/extendedlocation"
	"github.com/citadel-cloud/citadel/internal/providers/fabric"
	"github.com/citadel-cloud/citadel/internal/providers/insights"
	"github.com/citadel-cloud/citadel/internal/providers/networkcloud"
	"github.com/citadel-cloud/citadel/internal/providers/policies"
	"github.com/citadel-cloud/citadel/internal/providers/resources"
	"github.com/citadel-cloud/citadel/internal/releases"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/storage/ledger"
	"github.com/citadel-cloud/citadel/internal/store"
)

// DefaultAudience is the ARM audience tokens are issued for.
const DefaultAudience = "https://management.citadel.local/"

// Config is `citadel server`'s configuration.
type Config struct {
	DataDir string
	Listen  string
	// AgentListen is the agent API's address; empty serves none.
	AgentListen string
	// AgentHeartbeat is the interval agents are asked to keep (default
	// 10 s), and Liveness the rules that judge their silence (zero fields
	// take liveness.DefaultConfig's).
	AgentHeartbeat time.Duration
	Liveness       liveness.Config
	// AgentCertTTL is how long agents' certificates last (default 24 h);
	// NodeCAValidity how long the node CA that signs them does (default
	// ten years; replaced when a third is left).
	AgentCertTTL   time.Duration
	NodeCAValidity time.Duration
	EtcdEndpoints  []string
	// The embedded etcd member: its name and addresses (empty: what it
	// had, or loopback), and Join, a replica's URL to join the cluster of
	// on the first start, with JoinToken, that cluster's join token.
	EtcdName            string
	EtcdPeerListen      string
	EtcdClientListen    string
	EtcdAdvertisePeer   string
	EtcdAdvertiseClient string
	Join                string
	JoinToken           string
	EtcdCA              string
	EtcdCert            string
	EtcdKey             string
	Location            string
	TLSSANs             []string
	TLSCert             string
	TLSKey              string
	// AuditRetention is how long activity-log records stay in etcd before
	// they move to signed archive segments under the data dir.
	AuditRetention time.Duration
	// BenchmarkWithoutActivityLog leaves ARM requests out of the activity
	// log. Only citadel bench api --without-activity-log sets it, for the
	// baseline that measures what the log adds to a request; no flag of
	// citadel serve reaches it.
	BenchmarkWithoutActivityLog bool
	// SKUFile, when set, adds operator rack and machine SKUs to the
	// built-in catalog (a JSON file, see package machine).
	SKUFile string
	// BMCCAFile, when set, is the CA that BMC certificates chain to.
	BMCCAFile string
	// PolicyPack, when set, is a directory of built-in policy definitions
	// and initiatives (an offline policy pack); PolicyAliases a file of
	// Azure's policy aliases (CSV, gzip allowed) for definitions written
	// for Azure's types. PolicyScan is how often every resource's
	// compliance is evaluated again (default 10 minutes).
	PolicyPack    string
	PolicyAliases string
	PolicyScan    time.Duration
	// StorageOvercommit is how far the volumes on a storage appliance may
	// together exceed its capacity (thin provisioning; 1 is not at all);
	// ApplianceCheck is how often each appliance is asked how it is.
	StorageOvercommit float64
	ApplianceCheck    time.Duration
	// MachineUpdateTimeout bounds how long a cluster update waits for one
	// machine to run the new release; DriftCheck is how often machines
	// are compared with their configuration.
	MachineUpdateTimeout time.Duration
	DriftCheck           time.Duration
	// DeviceReport is how often network devices report their running
	// configuration; DeviceApplyTimeout bounds the wait for the devices
	// of a fabric to bootstrap or apply a configuration.
	DeviceReport       time.Duration
	DeviceApplyTimeout time.Duration
	// FirmwareCheck is how often each machine's BMC is asked for the
	// firmware it runs, to compare with its SKU's baseline.
	FirmwareCheck time.Duration
	// TLSCertValidity is how long the server certificate the CA issues is
	// valid; it is renewed, without a restart, when a third is left.
	// CertificateCheck is how often the served certificate is renewed or
	// read again, and every certificate checked for its expiry.
	TLSCertValidity  time.Duration
	CertificateCheck time.Duration
	Logger           *slog.Logger
}

// DefaultConfig is the configuration of a single replica on this machine.
func DefaultConfig() Config {
	return Config{DataDir: "./citadel-data", Listen: "127.0.0.1:8443", AgentListen: "127.0.0.1:8444", Location: "local",
		AuditRetention: 90 * 24 * time.Hour, PolicyScan: 10 * time.Minute, StorageOvercommit: 1, ApplianceCheck: 10 * time.Second,
		TLSCertValidity: identity.ServerValidity, CertificateCheck: time.Hour}
}

// AddFlags binds the configuration to command-line flags.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the embedded etcd, certificates and bootstrap credentials")
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTPS address to serve the ARM API on")
	fs.StringVar(&c.AgentListen, "agent-listen", c.AgentListen, "HTTPS address of the agent API that machines' agents join and report to over mTLS (empty: none)")
	fs.Func("etcd-endpoints", "comma-separated endpoints of an external etcd cluster (default: embedded etcd under the data dir)", func(s string) error {
		c.EtcdEndpoints = splitList(s)
		return nil
	})
	fs.StringVar(&c.EtcdName, "etcd-name", c.EtcdName, "name of the embedded etcd member (default: the one it has, or a new unique one)")
	fs.StringVar(&c.EtcdPeerListen, "etcd-peer-listen", c.EtcdPeerListen, "host:port the embedded etcd member listens on for other members, over TLS (default: loopback, a port chosen on the first start and kept)")
	fs.StringVar(&c.EtcdClientListen, "etcd-client-listen", c.EtcdClientListen, "host:port the embedded etcd member serves clients on, over TLS with client certificates (default: a free loopback port)")
	fs.StringVar(&c.EtcdAdvertisePeer, "etcd-advertise-peer", c.EtcdAdvertisePeer, "https URL other members reach this member at (default: from --etcd-peer-listen)")
	fs.StringVar(&c.EtcdAdvertiseClient, "etcd-advertise-client", c.EtcdAdvertiseClient, "https URL clients reach this member at (default: from --etcd-client-listen)")
	fs.StringVar(&c.Join, "join", c.Join, "URL of a running replica (https://host:port) whose embedded etcd cluster this replica joins on its first start")
	fs.StringVar(&c.JoinToken, "join-token", c.JoinToken, "the cluster's join token, from <data-dir>/join-token of a replica or `citadel store join-token`")
	fs.StringVar(&c.EtcdCA, "etcd-ca", c.EtcdCA, "CA certificate of the external etcd cluster")
	fs.StringVar(&c.EtcdCert, "etcd-cert", c.EtcdCert, "client certificate for the external etcd cluster")
	fs.StringVar(&c.EtcdKey, "etcd-key", c.EtcdKey, "client key for the external etcd cluster")
	fs.StringVar(&c.Location, "location", c.Location, "the region name this control plane serves")
	fs.Func("tls-san", "extra DNS name or IP for the generated server certificate (repeatable, or comma-separated)", func(s string) error {
		c.TLSSANs = append(c.TLSSANs, splitList(s)...)
		return nil
	})
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "server certificate to use instead of a generated one")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "key of --tls-cert (both files are read again when they change)")
	fs.DurationVar(&c.TLSCertValidity, "tls-cert-validity", c.TLSCertValidity, "validity of the server certificate the CA issues; renewed without a restart when a third is left")
	fs.DurationVar(&c.CertificateCheck, "certificate-check-interval", c.CertificateCheck, "how often the server certificate is renewed or read again and every certificate checked for its expiry")
	fs.StringVar(&c.SKUFile, "sku-file", c.SKUFile, "JSON file of operator rack and machine SKUs to add to the built-in catalog")
	fs.StringVar(&c.BMCCAFile, "bmc-ca-file", c.BMCCAFile, "CA certificate (PEM) that BMC certificates chain to, for BMCs whose connection string pins no fingerprint")
	fs.StringVar(&c.PolicyPack, "policy-pack", c.PolicyPack, "directory of built-in Azure Policy definitions and initiatives (JSON files) to serve as BuiltIn")
	fs.StringVar(&c.PolicyAliases, "policy-aliases", c.PolicyAliases, "Azure's policy alias list (CSV, .gz allowed), for definitions written for Azure's resource types")
	fs.DurationVar(&c.PolicyScan, "policy-scan-interval", c.PolicyScan, "how often every resource's policy compliance is evaluated again")
	fs.Float64Var(&c.StorageOvercommit, "storage-overcommit-ratio", c.StorageOvercommit, "how far the volumes on a storage appliance may together exceed its capacity (thin provisioning; 1: not at all)")
	fs.DurationVar(&c.ApplianceCheck, "appliance-check-interval", c.ApplianceCheck, "how often each storage appliance is asked how it is")
	fs.DurationVar(&c.FirmwareCheck, "firmware-check-interval", c.FirmwareCheck, "how often each machine's BMC is asked for its firmware versions, compared with its SKU's baseline (0: 5 minutes)")
	fs.DurationVar(&c.DeviceReport, "device-report-interval", c.DeviceReport, "how often network devices report their running configuration, so drift shows within it (0: 5 s)")
	fs.DurationVar(&c.DeviceApplyTimeout, "device-apply-timeout", c.DeviceApplyTimeout, "how long a fabric's provision or commit waits for its devices to run their configuration (0: 10 minutes)")
	fs.DurationVar(&c.DriftCheck, "drift-check-interval", c.DriftCheck, "how often each machine is compared with the configuration it should run (0: 10 s)")
	fs.DurationVar(&c.MachineUpdateTimeout, "machine-update-timeout", c.MachineUpdateTimeout, "how long a cluster update waits for one machine to run the new release before counting it failed (0: 30 minutes)")
	fs.DurationVar(&c.AuditRetention, "audit-retention", c.AuditRetention, "how long activity-log records stay in etcd before moving to signed archive segments under <data-dir>/audit/archive (0: keep them all)")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("--data-dir is required")
	case c.Location == "" || strings.ContainsAny(c.Location, " /"):
		return fmt.Errorf("--location %q must be a non-empty name without spaces or '/'", c.Location)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case (c.Join == "") != (c.JoinToken == ""):
		return errors.New("--join and --join-token go together")
	case c.Join != "" && len(c.EtcdEndpoints) > 0:
		return errors.New("--join is for the embedded etcd; it cannot go with --etcd-endpoints")
	case (c.EtcdCert == "") != (c.EtcdKey == ""):
		return errors.New("--etcd-cert and --etcd-key go together")
	case c.AuditRetention < 0:
		return errors.New("--audit-retention cannot be negative")
	case c.StorageOvercommit < 0 || c.StorageOvercommit > 0 && c.StorageOvercommit < 1:
		return fmt.Errorf("--storage-overcommit-ratio %g must be at least 1", c.StorageOvercommit)
	case c.ApplianceCheck < 0 || c.MachineUpdateTimeout < 0 || c.DriftCheck < 0 || c.FirmwareCheck < 0 || c.DeviceReport < 0 || c.DeviceApplyTimeout < 0:
		return errors.New("--appliance-check-interval, --machine-update-timeout, --drift-check-interval and --firmware-check-interval cannot be negative")
	case c.TLSCertValidity < 0 || c.CertificateCheck < 0:
		return errors.New("--tls-cert-validity and --certificate-check-interval cannot be negative")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	if c.AgentListen != "" {
		if _, _, err := net.SplitHostPort(c.AgentListen); err != nil {
			return fmt.Errorf("--agent-listen %q: %w", c.AgentListen, err)
		}
	}
	return nil
}

// Server is a running replica.
type Server struct {
	// URL is the ARM endpoint, "https://host:port/".
	URL string
	// CredentialsFile is the admin credentials written on the first start.
	CredentialsFile string
	// DataDir is the data directory, absolute.
	DataDir   string
	Store     *store.Store
	Identity  *identity.Issuer
	Resources *resource.Service
	Audit     *audit.Log
	// AgentURL is the agent API, "https://host:port", when it is served;
	// Agents admits agents (it issues their bootstrap tokens) and Fleet
	// holds their liveness.
	AgentURL string
	Agents   *agentauth.Authority
	Fleet    *fleet.Server
	// Metrics is what GET /metrics serves.
	Metrics *prometheus.Registry
	// Policies enforces Azure Policy and keeps compliance.
	Policies *policies.Provider
	// Releases is the catalog of imported update releases, their
	// artifacts under <data-dir>/updates.
	Releases *releases.Catalog
	// Images is the catalog of VM images, their files under
	// <data-dir>/vmimages.
	Images *images.Catalog

	networkCloud *networkcloud.Provider // after an import, clusters list the new release
	http         *http.Server
	agentHTTP    *http.Server
	cancel       context.CancelFunc
	closeOnce    sync.Once
	closeErr     error
	done         sync.WaitGroup
	errs         chan error
	ready        atomic.Bool
}

// Start brings a replica up and returns once it serves requests.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg.TLSCertValidity = cmp.Or(cfg.TLSCertValidity, identity.ServerValidity)
	cfg.CertificateCheck = cmp.Or(cfg.CertificateCheck, time.Hour)
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	listener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{errs: make(chan error, 5)} // one per background part, so none blocks
	ok := false
	defer func() {
		if !ok {
			if s.cancel != nil {
				s.cancel()
			}
			listener.Close()
			if s.Store != nil {
				s.Store.Close()
			}
		}
	}()

	host := publicHost(listener.Addr().(*net.TCPAddr), cfg.TLSSANs)
	s.URL = "https://" + net.JoinHostPort(host, fmt.Sprint(listener.Addr().(*net.TCPAddr).Port)) + "/"

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	p, err := openParts(ctx, runCtx, cfg, dataDir, s.URL, log)
	if err != nil {
		return nil, err
	}
	s.Store, s.Identity, s.Audit, s.Resources, s.Policies = p.store, p.identity, p.audit, p.resources, p.policies
	s.Releases, s.Images, s.networkCloud = p.releases, p.images, p.networkCloud
	// The CA is the replicas' shared one (openParts took it from the store).
	ca, err := identity.LoadOrCreateCA(filepath.Join(dataDir, "pki"))
	if err != nil {
		return nil, err
	}
	var joinToken string
	if len(cfg.EtcdEndpoints) == 0 {
		if joinToken, err = ensureJoinToken(ctx, s.Store, dataDir, ca.CertFile()); err != nil {
			return nil, err
		}
	}
	load := operatorCertificate(cfg.TLSCert, cfg.TLSKey)
	if cfg.TLSCert == "" {
		load = generatedCertificate(ca, filepath.Join(dataDir, "pki"), append([]string{host}, cfg.TLSSANs...), cfg.TLSCertValidity)
	}
	served, err := newServedCertificate(load)
	if err != nil {
		return nil, err
	}
	core, rbac, boot := p.core, p.rbac, p.boot
	s.CredentialsFile, s.DataDir = filepath.Join(dataDir, "bootstrap", "admin.json"), dataDir
	if err := ensureAdminCredentials(ctx, s.Store, s.Identity, boot, client.Credentials{
		TenantID: boot.TenantID, SubscriptionID: boot.SubscriptionID, ARMEndpoint: s.URL,
		Audience: boot.Audience, CACertFile: ca.CertFile(), Location: cfg.Location,
	}, s.CredentialsFile); err != nil {
		return nil, err
	}
	if err := ensureAdminIsOwner(ctx, s.Identity, s.Resources, s.CredentialsFile); err != nil {
		return nil, err
	}

	metrics := prometheus.NewRegistry()
	s.Metrics = metrics
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), storeUsage{s.Store})
	other := http.NewServeMux()
	s.Identity.Routes(other)
	other.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	other.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	s.serveJoin(other, ca.CertFile(), joinToken, log)
	other.Handle("GET /citadel/backup", s.serveBackup(rbac, cfg.Location, log))
	s.serveUpdates(other, rbac, log)
	s.serveImages(other, rbac, log)
	// BMCs fetch OS images from here when they reimage a machine.
	isos := os.DirFS(filepath.Join(dataDir, "images"))
	other.HandleFunc("GET /images/{file}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, isos, r.PathValue("file"))
	})
	// And the firmware of imported releases when drift control flashes it.
	other.HandleFunc("GET /firmware/{sha256}", serveFirmware(p.artifacts, log))
	// The portal gets a mux of its own: /portal/ would clash with the
	// issuer's /{tenant}/... patterns, being no more specific than them.
	site := http.NewServeMux()
	site.Handle("/portal/", portal.Handler())
	site.Handle("GET /{$}", http.RedirectHandler("/portal/", http.StatusFound))
	site.Handle("/", other)
	fd := frontdoor.New(frontdoor.Config{
		Resources: s.Resources, Core: core, Identity: s.Identity, Authz: rbac, Insights: insights.New(s.Audit), Audit: p.requests,
		Policy: p.policies, Other: site, Logger: log, Metrics: metrics,
	})
	p.deployments.Attach(fd)
	p.policies.Attach(fd)
	s.http = &http.Server{
		Handler:           fd,
		TLSConfig:         &tls.Config{GetCertificate: served.get, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		// Without it an idle keep-alive connection is closed by the
		// header timeout after 10 s, racing a client that reuses it.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	replicaID := uuid.NewString()
	s.done.Go(func() {
		if err := s.Resources.RunOperations(runCtx, replicaID); err != nil {
			s.errs <- err
		}
	})
	s.done.Go(func() {
		if err := s.Audit.RunChainer(runCtx, replicaID); err != nil {
			s.errs <- err
		}
	})
	s.done.Go(func() {
		s.Store.Lead(runCtx, "storage-appliances", replicaID, p.networkCloud.WatchAppliances)
	})
	s.done.Go(func() {
		s.Store.Lead(runCtx, "configuration-drift", replicaID, p.networkCloud.WatchDrift)
	})
	s.done.Go(func() {
		s.Store.Lead(runCtx, "vm-failover", replicaID, p.networkCloud.WatchFailedMachines)
	})
	s.done.Go(func() {
		s.watchCertificates(runCtx, served, p.agents, []expiring{
			{"server certificate", served.leaf},
			{"HTTPS CA", ca.Certificate},
			{"node CA", p.agents.CACertificate},
		}, cfg.CertificateCheck, log)
	})
	s.done.Go(func() {
		if err := s.http.ServeTLS(listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errs <- err
		}
	})
	if cfg.AgentListen != "" {
		// A TLS configuration of its own: the ARM server's changes once it serves.
		agentTLS := &tls.Config{GetCertificate: served.get, MinVersion: tls.VersionTLS12}
		roots := x509.NewCertPool()
		roots.AddCert(ca.Certificate())
		if err := s.serveAgents(ctx, runCtx, cfg, host, replicaID, roots, p, agentTLS, metrics, log); err != nil {
			return nil, err
		}
	}
	s.ready.Store(true)
	ok = true
	log.InfoContext(ctx, "citadel server ready", "url", s.URL, "location", cfg.Location,
		"credentials", s.CredentialsFile, "ca", ca.CertFile())
	if joinToken != "" {
		log.InfoContext(ctx, "other replicas can join", "join", strings.TrimSuffix(s.URL, "/"), "join_token_file", filepath.Join(dataDir, JoinTokenFile))
	}
	return s, nil
}

// serveAgents serves the agent API on its own listener, with the
// server's certificate and agents' client certificates from the node CA,
// and keeps the machines' liveness. The replicas copy the files they lack
// from each other through it too, with certificates of the node CA that
// name them, trusting roots (the HTTPS CA).
func (s *Server) serveAgents(ctx, runCtx context.Context, cfg Config, host, replicaID string, roots *x509.CertPool, p *parts, base *tls.Config,
	metrics prometheus.Registerer, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.AgentListen)
	if err != nil {
		return fmt.Errorf("agent listen: %w", err)
	}
	s.Agents = p.agents
	s.AgentURL = "https://" + net.JoinHostPort(host, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	s.Fleet = fleet.New(fleet.Config{Auth: s.Agents, Resources: s.Resources, BMCs: p.networkCloud, Artifacts: p.artifacts,
		Devices: p.fabric, DeviceReport: cfg.DeviceReport, Heartbeat: cfg.AgentHeartbeat, Liveness: cfg.Liveness,
		Roster: s.Store, ReplicaID: replicaID, URL: s.AgentURL, Metrics: metrics, Logger: log})
	p.artifacts.peers = s.Fleet.Peers
	p.artifacts.client = &http.Client{Transport: &http.Transport{TLSClientConfig: p.agents.ReplicaTLS(replicaID, roots)}}
	s.agentHTTP = &http.Server{
		Handler:           s.Fleet.Handler(),
		TLSConfig:         s.Agents.ServerTLS(base),
		ReadHeaderTimeout: 10 * time.Second,
		// Without it an idle keep-alive connection is closed by the
		// header timeout after 10 s, racing a client that reuses it.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.done.Go(func() { s.Fleet.Run(runCtx) })
	s.done.Go(func() {
		if err := s.agentHTTP.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errs <- err
		}
	})
	log.InfoContext(ctx, "agent API ready", "url", s.AgentURL)
	return nil
}

// registerNetworkCloud serves Microsoft.NetworkCloud with the built-in SKU
// catalog plus the operator's, and the OS images under the data dir.
func registerNetworkCloud(p *parts, cfg Config, dataDir, publicURL string, log *slog.Logger) (*networkcloud.Provider, error) {
	catalog := machine.Builtin()
	if cfg.SKUFile != "" {
		f, err := os.Open(cfg.SKUFile)
		if err != nil {
			return nil, fmt.Errorf("--sku-file: %w", err)
		}
		defer f.Close()
		if err := catalog.Load(f); err != nil {
			return nil, fmt.Errorf("--sku-file %s: %w", cfg.SKUFile, err)
		}
	}
	var bmcCA []byte
	if cfg.BMCCAFile != "" {
		var err error
		if bmcCA, err = os.ReadFile(cfg.BMCCAFile); err != nil {
			return nil, fmt.Errorf("--bmc-ca-file: %w", err)
		}
	}
	isos := filepath.Join(dataDir, "images")
	if err := os.MkdirAll(isos, 0o755); err != nil {
		return nil, err
	}
	return networkcloud.Register(p.resources, networkcloud.Config{
		Catalog: catalog, ImageDir: isos, ImageURL: strings.TrimSuffix(publicURL, "/") + "/images", FirmwareURL: strings.TrimSuffix(publicURL, "/") + "/firmware",
		BMCCACert: bmcCA, AgentTokens: p.agents, Ledger: ledger.New(p.store),
		OvercommitRatio: cfg.StorageOvercommit, ApplianceCheckInterval: cfg.ApplianceCheck,
		Releases: p.releases, MachineUpdateTimeout: cfg.MachineUpdateTimeout, DriftCheckInterval: cfg.DriftCheck, FirmwareCheckInterval: cfg.FirmwareCheck,
		Images: p.images, Audit: p.audit, Logger: log,
	}), nil
}

// publicHost is the host clients use: the first --tls-san, else the
// listen address, with loopback for a wildcard listener.
func publicHost(addr *net.TCPAddr, sans []string) string {
	if len(sans) > 0 {
		return sans[0]
	}
	if addr.IP.IsUnspecified() {
		return "127.0.0.1"
	}
	return addr.IP.String()
}

// Err reports a fatal error of a background part (the HTTP server, a
// controller).
func (s *Server) Err() <-chan error { return s.errs }

// Close stops serving, then the controllers, then the store. Calling it
// again does nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.ready.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := s.http.Shutdown(ctx)
		if s.agentHTTP != nil {
			err = errors.Join(err, s.agentHTTP.Shutdown(ctx))
		}
		s.cancel()
		s.done.Wait()
		s.closeErr = errors.Join(err, s.Store.Close())
	})
	return s.closeErr
}

// parts are the pieces of a replica that do not serve HTTP, which the
// offline administration commands need too.
type parts struct {
	store     *store.Store
	identity  *identity.Issuer
	audit     *audit.Log
	resources *resource.Service
	core      *resources.Provider
	rbac      *authorization.Provider
	boot      deployment
	// networkCloud drives BMCs; the agent API asks it about silent machines.
	networkCloud *networkcloud.Provider
	// deployments creates templates' resources through the front door.
	deployments *deploy.Provider
	// policies enforces Azure Policy on writes and evaluates compliance.
	policies *policies.Provider
	// agents admits machines' agents; clusters issue its tokens.
	agents *agentauth.Authority
	// releases is the catalog of imported update releases.
	releases *releases.Catalog
	// images is the catalog of VM images.
	images *images.Catalog
	// artifacts are both catalogs' files, copied from other replicas
	// when missing here.
	artifacts *artifacts
	// fabric configures the network devices; the agent API serves them.
	fabric *fabric.Provider
	// requests records ARM requests: audit, or nil in a benchmark's
	// baseline without the log.
	requests *audit.Log
}

// openParts opens the store and assembles the identity provider, the
// activity log and the resource framework with its providers. What keeps
// running (mirrors) runs until runCtx ends.
func openParts(ctx, runCtx context.Context, cfg Config, dataDir, publicURL string, log *slog.Logger) (*parts, error) {
	storeCfg := store.Config{Dir: filepath.Join(dataDir, "etcd"), Endpoints: cfg.EtcdEndpoints, Member: etcdMember(cfg), Logger: log}
	var err error
	if _, statErr := os.Stat(filepath.Join(storeCfg.Dir, "member-data")); cfg.Join != "" && errors.Is(statErr, os.ErrNotExist) {
		// The first start of a joining replica; later ones are the member it became.
		if storeCfg.Member, err = joinCluster(ctx, cfg, log); err != nil {
			return nil, err
		}
	}
	if len(cfg.EtcdEndpoints) > 0 && (cfg.EtcdCA != "" || cfg.EtcdCert != "") {
		if storeCfg.TLS, err = etcdTLS(cfg); err != nil {
			return nil, err
		}
	}
	p := &parts{}
	if p.store, err = store.Open(ctx, storeCfg); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.store.Close()
		}
	}()
	p.releases = releases.New(p.store, filepath.Join(dataDir, "updates"))
	p.images = images.New(p.store, filepath.Join(dataDir, "vmimages"), log)
	if err := p.images.Start(runCtx); err != nil {
		return nil, err
	}
	p.artifacts = &artifacts{releases: p.releases, images: p.images, log: log}
	if p.boot, err = bootstrap(ctx, p.store, cfg.Location); err != nil {
		return nil, err
	}
	if err := shareKeys(ctx, p.store, dataDir); err != nil {
		return nil, err
	}
	if p.identity, err = identity.New(identity.Config{
		Store: p.store, PublicURL: publicURL, Audience: p.boot.Audience, TenantID: p.boot.TenantID, Logger: log,
	}); err != nil {
		return nil, err
	}
	auditKey, err := audit.LoadOrCreateKey(filepath.Join(dataDir, "audit"))
	if err != nil {
		return nil, err
	}
	signer, err := audit.NewSigner(auditKey)
	if err != nil {
		return nil, err
	}
	p.audit = audit.NewLog(audit.LogConfig{
		Store: p.store, Signer: signer, Logger: log,
		Retention: cfg.AuditRetention, ArchiveDir: filepath.Join(dataDir, "audit", "archive"),
	})
	rc := resource.Config{Store: p.store, Location: cfg.Location, Logger: log}
	if !cfg.BenchmarkWithoutActivityLog {
		// Set only with a log: a nil *audit.Log in rc.Audit would not be nil.
		p.requests, rc.Audit = p.audit, p.audit
	}
	p.resources = resource.NewService(rc)
	p.core = resources.New(p.resources)
	p.rbac = authorization.New(p.resources, log)
	directory.Register(p.resources, p.identity)
	extendedlocation.Register(p.resources)
	if p.agents, err = agentauth.Open(runCtx, p.store, agentauth.Config{CertTTL: cfg.AgentCertTTL, CAValidity: cfg.NodeCAValidity}); err != nil {
		return nil, err
	}
	p.fabric = fabric.Register(p.resources, fabric.Config{Audit: p.audit, Certificates: p.agents,
		DeviceReport: cfg.DeviceReport, ApplyTimeout: cfg.DeviceApplyTimeout, Logger: log})
	if p.networkCloud, err = registerNetworkCloud(p, cfg, dataDir, publicURL, log); err != nil {
		return nil, err
	}
	p.deployments = deploy.Register(deploy.Config{Resources: p.resources, Authz: p.rbac, Groups: p.identity.GroupsOf, Logger: log})
	if p.policies, err = registerPolicies(p.resources, p.identity.GroupsOf, cfg, log); err != nil {
		return nil, err
	}
	if err := p.resources.CreateTenancy(ctx, p.boot.tenant(), p.boot.subscription()); err != nil {
		return nil, err
	}
	if err := p.resources.Start(runCtx); err != nil {
		return nil, err
	}
	if err := p.rbac.Start(runCtx); err != nil {
		return nil, err
	}
	if err := p.policies.Start(runCtx); err != nil {
		return nil, err
	}
	if err := p.networkCloud.Start(runCtx); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// registerPolicies loads the policy aliases (Citadel's, and Azure's when
// given) and the policy pack, and registers the policy types.
func registerPolicies(svc *resource.Service, groups func(context.Context, string) ([]string, error), cfg Config, log *slog.Logger) (*policies.Provider, error) {
	lists := [][]policy.Alias{policy.CitadelAliases()}
	if cfg.PolicyAliases != "" {
		f, err := os.Open(cfg.PolicyAliases)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		azure, err := policy.ReadAliasCSV(f)
		if err != nil {
			return nil, fmt.Errorf("--policy-aliases: %w", err)
		}
		lists = append(lists, azure)
	}
	pc := policies.Config{Resources: svc, Aliases: policy.NewAliases(lists...), ScanInterval: cfg.PolicyScan, Groups: groups, Logger: log}
	if cfg.PolicyPack != "" {
		pc.Pack = os.DirFS(cfg.PolicyPack)
	}
	p, err := policies.Register(pc)
	if err != nil {
		return nil, fmt.Errorf("--policy-pack: %w", err)
	}
	return p, nil
}
