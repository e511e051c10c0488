// Package appliance is Citadel's storage appliance service, `citadel
// storage-agent`: it serves package storage's management API (Server)
// over a Driver, either nbd, which keeps volumes as sparse files and
// serves each export with its own qemu-storage-daemon over NBD with
// TLS-PSK, or sim, the same semantics in memory for the fleet simulator.
// cmd/citadel and the simulator import it; the control plane reaches
// appliances only over the API, with storage.Client.
package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/devicetls"
	"github.com/citadel-cloud/citadel/internal/storage"
)

// Config is `citadel storage-agent`'s configuration.
type Config struct {
	// Listen is the HTTPS address of the management API.
	Listen string
	// DataDir holds the TLS certificate (tls.crt, tls.key) and, with the
	// nbd driver, state.json and the volumes.
	DataDir string
	// Driver is "nbd" or "sim".
	Driver string
	// Username and Password are the administrator credentials the API
	// requires (Basic authentication).
	Username, Password string
	// The appliance's identity, as Status reports it.
	SerialNumber, Manufacturer, Model, Version string
	// CapacityMiB is the capacity reported; 0, with nbd only, is the size
	// of the filesystem holding DataDir.
	CapacityMiB int64
	// NBDHost is the address the exports listen on and report; empty is
	// the listen address's host or, when that is unspecified, this
	// machine's first non-loopback IPv4 address (127.0.0.1 without one).
	NBDHost string
	// NBDPorts is the range export ports are given from.
	NBDPorts PortRange
	// QemuStorageDaemon is the path of qemu-storage-daemon (nbd).
	QemuStorageDaemon string
	// SimUsedFraction is the part of each volume's size the sim driver
	// counts as written.
	SimUsedFraction float64
	Logger          *slog.Logger
}

// DefaultConfig is an nbd appliance on loopback. The password and the
// serial number have no default.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:8450", DataDir: "./citadel-storage", Driver: "nbd", Username: "admin",
		Manufacturer: "Citadel", Model: "citadel-nbd", Version: "1.0", NBDPorts: PortRange{First: 10809, Last: 11808},
		QemuStorageDaemon: "/usr/bin/qemu-storage-daemon"}
}

// AddFlags binds the configuration to command-line flags.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTPS address of the management API")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the TLS certificate, state.json and the volumes")
	fs.StringVar(&c.Driver, "driver", c.Driver, "nbd (sparse files served by qemu-storage-daemon) or sim (in memory, nothing served)")
	fs.StringVar(&c.Username, "username", c.Username, "administrator user name")
	fs.StringVar(&c.Password, "password", c.Password, "administrator password")
	fs.StringVar(&c.SerialNumber, "serial-number", c.SerialNumber, "the appliance's serial number")
	fs.StringVar(&c.Manufacturer, "manufacturer", c.Manufacturer, "the manufacturer reported")
	fs.StringVar(&c.Model, "model", c.Model, "the model reported")
	fs.StringVar(&c.Version, "version", c.Version, "the version reported")
	fs.Int64Var(&c.CapacityMiB, "capacity-mib", c.CapacityMiB, "capacity reported, MiB (0: the size of the filesystem holding --data-dir; required with sim)")
	fs.StringVar(&c.NBDHost, "nbd-host", c.NBDHost, "address the exports listen on and report (default: the --listen host, or this machine's first non-loopback address)")
	fs.Var(&c.NBDPorts, "nbd-ports", "range of the exports' ports, first-last")
	fs.StringVar(&c.QemuStorageDaemon, "qemu-storage-daemon", c.QemuStorageDaemon, "path of qemu-storage-daemon")
	fs.Float64Var(&c.SimUsedFraction, "sim-used-fraction", c.SimUsedFraction, "part of each volume the sim driver counts as written, 0 to 1")
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("--data-dir is required")
	case c.Driver != "nbd" && c.Driver != "sim":
		return fmt.Errorf("--driver %q must be nbd or sim", c.Driver)
	case c.Username == "" || c.Password == "":
		return errors.New("--username and --password are required")
	case !storage.ValidName(c.SerialNumber):
		return fmt.Errorf("--serial-number %q must be 1 to 63 letters, digits or '-'", c.SerialNumber)
	case c.Manufacturer == "" || c.Model == "" || c.Version == "":
		return errors.New("--manufacturer, --model and --version cannot be empty")
	case c.CapacityMiB < 0:
		return errors.New("--capacity-mib cannot be negative")
	case c.Driver == "sim" && c.CapacityMiB == 0:
		return errors.New("--capacity-mib is required with --driver sim")
	case c.Driver == "nbd" && c.QemuStorageDaemon == "":
		return errors.New("--qemu-storage-daemon is required with --driver nbd")
	case c.SimUsedFraction < 0 || c.SimUsedFraction > 1:
		return fmt.Errorf("--sim-used-fraction %v must be from 0 to 1", c.SimUsedFraction)
	case strings.ContainsAny(c.NBDHost, ",=/ "):
		return fmt.Errorf("--nbd-host %q must be a host name or an IP address", c.NBDHost)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	if err := c.NBDPorts.Validate(); err != nil {
		return fmt.Errorf("--nbd-ports: %w", err)
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// nbdHost is the address the exports listen on and report.
func (c *Config) nbdHost() string {
	if c.NBDHost != "" {
		return c.NBDHost
	}
	if host, _, _ := net.SplitHostPort(c.Listen); host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			return host
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// Service is a started appliance: its listener is bound and its driver's
// exports are served.
type Service struct {
	log        *slog.Logger
	driver     Driver
	server     *Server
	cert       *devicetls.Certificate
	ln         net.Listener
	connection string
}

// Start opens the driver (restarting the nbd exports state.json lists)
// and binds the listener, so that the address is known before Run. On
// the first start it generates the TLS certificate it keeps in DataDir.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("storage agent: %w", err)
	}
	host := cfg.nbdHost()
	cert, err := loadCertificate(cfg, host)
	if err != nil {
		return nil, fmt.Errorf("storage agent: certificate: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("storage agent: %w", err)
	}
	var d Driver
	switch cfg.Driver {
	case "nbd":
		d, err = OpenNBD(ctx, NBDConfig{Dir: cfg.DataDir, CapacityMiB: cfg.CapacityMiB, Host: host, Ports: cfg.NBDPorts,
			DaemonPath: cfg.QemuStorageDaemon, Logger: cfg.logger()})
		if err != nil {
			return nil, errors.Join(err, ln.Close())
		}
	case "sim":
		d = NewSim(SimConfig{CapacityMiB: cfg.CapacityMiB, UsedFraction: cfg.SimUsedFraction, Host: host, Ports: cfg.NBDPorts})
	}
	apiHost, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(apiHost); ip != nil && ip.IsUnspecified() {
		apiHost = host
	}
	return &Service{log: cfg.logger().With("component", "storage_agent"), driver: d, server: NewServer(cfg, d), cert: cert, ln: ln,
		connection: fmt.Sprintf("https://%s?fingerprint=%s", net.JoinHostPort(apiHost, port), cert.Fingerprint)}, nil
}

// loadCertificate reads DataDir's tls.crt and tls.key, or generates and
// writes them on the first start, so that the fingerprint clients pin
// survives restarts.
func loadCertificate(cfg Config, host string) (*devicetls.Certificate, error) {
	certPath, keyPath := filepath.Join(cfg.DataDir, "tls.crt"), filepath.Join(cfg.DataDir, "tls.key")
	certPEM, err := os.ReadFile(certPath)
	if err == nil {
		keyPEM, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, err
		}
		return devicetls.Load(certPEM, keyPEM)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
		ips = append(ips, ip)
	}
	cert, err := devicetls.SelfSigned(cfg.SerialNumber, cfg.Manufacturer, ips...)
	if err != nil {
		return nil, err
	}
	keyPEM, err := cert.KeyPEM()
	if err != nil {
		return nil, err
	}
	// The key first: a certificate on disk always has its key.
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(certPath, cert.CertPEM, 0o600); err != nil {
		return nil, err
	}
	return cert, nil
}

// Driver is the service's storage driver: the simulator reaches the sim
// driver's fault injection through it.
func (s *Service) Driver() Driver { return s.driver }

// ConnectionString is how the control plane reaches the appliance,
// "https://host:port?fingerprint=<hex>", its certificate pinned.
func (s *Service) ConnectionString() string { return s.connection }

// Run serves the API until ctx ends, then stops the exports' daemons;
// the next Start serves them again.
func (s *Service) Run(ctx context.Context) error {
	hs := &http.Server{
		Handler:           s.server,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.cert.TLS}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(s.ln, "", "") }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("storage agent: serve: %w", err)
	}
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = errors.Join(err, hs.Shutdown(stop), s.driver.Close())
	s.log.InfoContext(stop, "storage agent stopped", "addr", s.ln.Addr().String())
	return err
}
