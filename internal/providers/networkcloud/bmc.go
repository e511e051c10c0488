package networkcloud

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/redfish"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// bmcAddress is a parsed bmcConnectionString:
// "redfish+https://10.0.0.5:443/redfish/v1/Systems/1?fingerprint=ab:cd:…",
// with an optional system path and the BMC's TLS trust in the query
// (fingerprint=SHA-256 of its certificate, or insecure=true).
type bmcAddress struct {
	Endpoint    string // "https://host:port"
	Host        string // "host:port", what must be unique across the boundary
	System      string // "/redfish/v1/Systems/1", or "" to find the host system
	Fingerprint string
	Insecure    bool
}

func parseBMC(s string) (bmcAddress, error) {
	if s == "" {
		return bmcAddress{}, fmt.Errorf("bmcConnectionString is required: Citadel reaches the BMC at this address")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return bmcAddress{}, fmt.Errorf("bmcConnectionString '%s' is not a URL such as redfish+https://10.0.0.5/redfish/v1/Systems/1", s)
	}
	scheme := strings.TrimPrefix(strings.ToLower(u.Scheme), "redfish+")
	if scheme != "https" && scheme != "http" {
		return bmcAddress{}, fmt.Errorf("bmcConnectionString '%s' must use redfish+https, redfish+http, https or http", s)
	}
	a := bmcAddress{Endpoint: scheme + "://" + u.Host, Host: strings.ToLower(u.Host)}
	if p := strings.TrimSuffix(u.Path, "/"); strings.Contains(strings.ToLower(p), "/systems/") {
		a.System = p
	}
	q := u.Query()
	a.Fingerprint = q.Get("fingerprint")
	a.Insecure = q.Get("insecure") == "true"
	return a, nil
}

// bmcHost is the host:port of a connection string, "" when it has none.
func bmcHost(s string) string {
	a, err := parseBMC(s)
	if err != nil {
		return ""
	}
	return a.Host
}

// bmcSession is a logged-in connection to one machine's BMC, and the
// system on it that is the machine.
type bmcSession struct {
	client *redfish.Client
	system string
}

// dialBMC logs in to the BMC of machine r.
func (p *Provider) dialBMC(ctx context.Context, r *resource.Resource) (*bmcSession, error) {
	addr, err := parseBMC(str(r.Properties, "bmcConnectionString"))
	if err != nil {
		return nil, err
	}
	var creds credentials
	if err := decode(r.Properties["bmcCredentials"], &creds); err != nil {
		return nil, err
	}
	c, err := redfish.Dial(ctx, redfish.Config{
		Endpoint: addr.Endpoint, Username: creds.Username, Password: creds.Password,
		Fingerprint: addr.Fingerprint, Insecure: addr.Insecure, CACertPEM: p.cfg.BMCCACert,
		Logger: p.log,
	})
	if err != nil {
		return nil, fmt.Errorf("the BMC at %s cannot be reached: %w", addr.Endpoint, err)
	}
	sys := addr.System
	if sys == "" {
		if sys, err = c.HostSystem(ctx); err != nil {
			c.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("the BMC at %s: %w", addr.Endpoint, err)
		}
	}
	return &bmcSession{client: c, system: sys}, nil
}

func (b *bmcSession) close(ctx context.Context) { b.client.Close(context.WithoutCancel(ctx)) }

// hardwareInventory is the machine's hardwareInventory property.
func hardwareInventory(inv *redfish.Inventory) map[string]any {
	var cpu string
	cores := 0
	for _, pr := range inv.Processors {
		if !strings.EqualFold(pr.ProcessorType, "GPU") {
			cpu = pr.Model
			cores += pr.TotalCores
		}
	}
	var ifaces, nics []any
	for _, n := range inv.NICs {
		ifaces = append(ifaces, map[string]any{"name": n.ID, "macAddress": n.MACAddress, "linkStatus": n.LinkStatus})
		nics = append(nics, map[string]any{"name": n.ID, "macAddress": n.MACAddress})
	}
	return map[string]any{
		"additionalHostInformation": fmt.Sprintf("%s %s, serial %s; %d cores (%s); %.0f GiB memory; %d drives; BIOS %s",
			inv.Manufacturer, inv.Model, inv.SerialNumber, cores, cpu, inv.MemoryGiB, len(inv.Drives), inv.BIOSVersion),
		"interfaces": ifaces,
		"nics":       nics,
	}
}

// PowerState is machine's power as its BMC reports it now ("On", "Off",
// "PoweringOn", ...); an error means the BMC cannot be reached or read.
// The liveness tracker asks it before it declares a silent machine failed.
func (p *Provider) PowerState(ctx context.Context, machine arm.ID) (string, error) {
	r, err := p.svc.Lookup(ctx, machine)
	if err != nil {
		return "", err
	}
	bmc, err := p.dialBMC(ctx, r)
	if err != nil {
		return "", err
	}
	defer bmc.close(ctx)
	s, err := bmc.client.System(ctx, bmc.system)
	if err != nil {
		return "", err
	}
	return s.PowerState, nil
}
