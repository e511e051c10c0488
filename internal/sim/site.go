// Package sim runs a simulated site in one process: racks of machines
// built to catalog SKUs, each with a simulated BMC (package redfishsim) on
// a loopback address of its own and, once started, the real agent code on
// a simulated host; the ARM definition of the cluster they form; and the
// faults a site suffers (a machine's power lost, an agent crashed, a rack
// cut off). `citadel up` and the end-to-end tests use it. The control
// plane reaches these BMCs over HTTPS like real ones; nothing here
// touches it.
package sim

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/redfishsim"
	"github.com/citadel-cloud/citadel/internal/storage/appliance"
)

// Spec is the shape of a multi-rack site: an aggregator rack (three
// controllers and a storage appliance) and ComputeRacks racks of
// MachinesPerRack machines.
type Spec struct {
	// Name names the cluster; machine names derive from it:
	// {name}c{slot} for controllers, {name}r{rack}m{slot} for compute.
	Name                          string
	ComputeRacks, MachinesPerRack int
	// The rack and machine SKUs; empty means the built-in ones.
	AggregatorRack, ComputeRack, ComputeMachine string
	// Updates is how the machines' updates go: how long switching to
	// another cluster version takes, and how often it fails.
	Updates host.UpdateBehavior
}

// Options are how the site's BMCs behave.
type Options struct {
	// Catalog holds the SKUs; nil means the built-in catalog.
	Catalog *machine.Catalog
	// BMC is every BMC's options (credentials, power delays, image
	// fetching); Change, if set, alters one machine's hardware or options
	// by name before its BMC starts.
	BMC    redfishsim.Options
	Change func(name string, m *redfishsim.Machine, o *redfishsim.Options)
	// StateDir, if set, keeps the BMCs' certificate and addresses, so
	// that a site started again on it is reachable where the control
	// plane recorded it. Its machines then start On, as hardware that
	// kept running while the simulation was stopped, unless BMC says
	// otherwise.
	StateDir string
}

// Machine is one simulated machine and its BMC.
type Machine struct {
	Name       string
	Rack, Slot int // rack 0 is the aggregator
	Hardware   redfishsim.Machine
	BMC        *redfishsim.BMC
	Server     *redfishsim.Server
	username   string
	password   string
}

// ConnectionString is the machine's bmcConnectionString: its BMC's URL,
// pinning its certificate.
func (m *Machine) ConnectionString() string {
	return "redfish+" + m.Server.URL + "?fingerprint=" + m.Server.Fingerprint
}

// Config is the machine's entry in a rack definition
// (bareMetalMachineConfigurationData).
func (m *Machine) Config() map[string]any {
	return map[string]any{
		"machineName": m.Name, "rackSlot": m.Slot, "serialNumber": m.Hardware.SerialNumber,
		"bmcMacAddress": m.Hardware.BMCMAC(), "bootMacAddress": m.Hardware.BootMAC(),
		"bmcConnectionString": m.ConnectionString(),
		"bmcCredentials":      map[string]string{"username": m.username, "password": m.password},
		"machineDetails":      "simulated " + m.Hardware.Model,
	}
}

// Site is a running simulated site.
type Site struct {
	Spec     Spec
	Machines []*Machine // the aggregator's first, then each compute rack's, by slot
	opts     Options
	fleet    *redfishsim.Fleet
	state    siteState
	agents   *agents // once StartAgents ran
	// agentsStarted is set once StartAgents has run: BMC callbacks, on
	// goroutines of their own, read agents only then.
	agentsStarted atomic.Bool
	// SAN is the aggregator rack's storage appliance: the real appliance
	// service with the sim driver, when the rack SKU has an appliance.
	SAN     *appliance.Service
	sanStop context.CancelFunc
	sanDone chan struct{}
	sanTemp string // its data directory when the site keeps no state
	// fabric is the site's simulated network fabric (nil for a site too
	// large for one); its devices run once StartSwitches ran.
	fabric *fabric
}

// siteState is what StateDir keeps.
type siteState struct {
	CertificatePEM string            `json:"certificatePem"`
	KeyPEM         string            `json:"keyPem"`
	Addresses      map[string]string `json:"addresses"` // machine name → host:port
	SANAddress     string            `json:"sanAddress,omitempty"`
}

const stateFile = "site.json"

// Start starts the BMCs of every machine of spec.
func Start(spec Spec, opts Options) (*Site, error) {
	if spec.Name == "" || spec.ComputeRacks < 1 || spec.MachinesPerRack < 1 {
		return nil, fmt.Errorf("sim: a site needs a name, compute racks and machines per rack: %+v", spec)
	}
	opts.Catalog = cmp.Or(opts.Catalog, machine.Builtin())
	spec.AggregatorRack = cmp.Or(spec.AggregatorRack, machine.RackSKUAggregator)
	if spec.ComputeRack == "" {
		spec.ComputeRack, spec.ComputeMachine = machine.RackSKUCompute8, machine.SKUCompute
		if spec.MachinesPerRack > 8 {
			spec.ComputeRack = machine.RackSKUCompute16
		}
	}
	s := &Site{Spec: spec, opts: opts, state: siteState{Addresses: map[string]string{}}}
	s.planFabric()
	if err := s.startFleet(); err != nil {
		return nil, err
	}
	agg, ok := opts.Catalog.Rack(spec.AggregatorRack)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("sim: no rack SKU %q", spec.AggregatorRack)
	}
	for _, slot := range agg.ControllerMachines {
		if _, err := s.add(fmt.Sprintf("%sc%d", spec.Name, slot.RackSlot), 0, slot.RackSlot, slot.MachineSKU); err != nil {
			s.Close()
			return nil, err
		}
	}
	for r := 1; r <= spec.ComputeRacks; r++ {
		for slot := 1; slot <= spec.MachinesPerRack; slot++ {
			if _, err := s.add(fmt.Sprintf("%sr%dm%d", spec.Name, r, slot), r, slot, spec.ComputeMachine); err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	if len(agg.StorageAppliances) > 0 {
		if err := s.startSAN(agg.StorageAppliances[0]); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.saveState(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// startSAN starts the aggregator's storage appliance with the sim driver,
// at its kept address and with its kept certificate when the site keeps
// state.
func (s *Site) startSAN(slot machine.ApplianceSlot) error {
	cfg := appliance.DefaultConfig()
	cfg.Driver, cfg.Listen = "sim", cmp.Or(s.state.SANAddress, "127.0.0.1:0")
	cfg.Username, cfg.Password = sanUser, cmp.Or(s.opts.BMC.Password, "sim-appliance")
	cfg.SerialNumber, cfg.CapacityMiB, cfg.SimUsedFraction = s.sanSerial(), int64(slot.CapacityGB)*1024, 0.25
	cfg.Logger = cmp.Or(s.opts.BMC.Logger, slog.New(slog.DiscardHandler))
	if s.opts.StateDir != "" {
		cfg.DataDir = filepath.Join(s.opts.StateDir, "san")
	} else {
		dir, err := os.MkdirTemp("", "citadel-sim-san-")
		if err != nil {
			return err
		}
		cfg.DataDir, s.sanTemp = dir, dir
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := appliance.Start(ctx, cfg)
	if err != nil {
		cancel()
		return fmt.Errorf("sim: storage appliance: %w", err)
	}
	s.SAN, s.sanStop, s.sanDone = svc, cancel, make(chan struct{})
	go func() {
		defer close(s.sanDone)
		svc.Run(ctx)
	}()
	u, err := url.Parse(svc.ConnectionString())
	if err != nil {
		return err
	}
	s.state.SANAddress = u.Host
	return nil
}

const sanUser = "pureuser"

func (s *Site) sanSerial() string { return strings.ToUpper(s.Spec.Name) + "-SAN" }

// startFleet starts the fleet with the kept certificate, or a new one.
func (s *Site) startFleet() error {
	if s.opts.StateDir != "" {
		b, err := os.ReadFile(filepath.Join(s.opts.StateDir, stateFile))
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &s.state); err != nil {
				return fmt.Errorf("sim: %s: %w", stateFile, err)
			}
			s.opts.BMC.InitialPower = cmp.Or(s.opts.BMC.InitialPower, "On")
			s.fleet, err = redfishsim.NewTLSFleet([]byte(s.state.CertificatePEM), []byte(s.state.KeyPEM))
			return err
		case !errors.Is(err, os.ErrNotExist):
			return err
		}
	}
	s.fleet = redfishsim.NewFleet(true)
	return nil
}

func (s *Site) saveState() error {
	if s.opts.StateDir == "" {
		return nil
	}
	certPEM, keyPEM, err := s.fleet.Certificate()
	if err != nil {
		return err
	}
	s.state.CertificatePEM, s.state.KeyPEM = string(certPEM), string(keyPEM)
	b, err := json.MarshalIndent(s.state, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.opts.StateDir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.opts.StateDir, stateFile), b, 0o600)
}

// add starts the BMC of machine name, of machine SKU sku, at its kept
// address if it has one.
func (s *Site) add(name string, rack, slot int, sku string) (*Machine, error) {
	m, err := s.start(name, sku, strings.ToUpper(name))
	if err != nil {
		return nil, err
	}
	m.Rack, m.Slot = rack, slot
	s.Machines = append(s.Machines, m)
	return m, nil
}

func (s *Site) start(name, sku, serial string) (*Machine, error) {
	ms, ok := s.opts.Catalog.Machine(sku)
	if !ok {
		return nil, fmt.Errorf("sim: no machine SKU %q", sku)
	}
	hw, opts := redfishsim.ForSKU(ms, serial), s.opts.BMC
	opts.OnInstall = func(string) { s.installed(name) }
	if s.opts.Change != nil {
		s.opts.Change(name, &hw, &opts)
	}
	addr := cmp.Or(s.state.Addresses[name], "127.0.0.1:0")
	bmc := redfishsim.New(hw, opts)
	srv, err := s.fleet.AddAt(bmc, addr)
	if err != nil {
		return nil, fmt.Errorf("sim: the BMC of %s at %s: %w", name, addr, err)
	}
	s.state.Addresses[name] = strings.TrimPrefix(srv.URL, "https://")
	return &Machine{Name: name, Hardware: hw, Server: srv, BMC: bmc, username: opts.Username, password: opts.Password}, nil
}

// Spare starts a machine that belongs to no rack yet, to replace one:
// its BMC is reachable and its hardware is built to sku.
func (s *Site) Spare(name, sku string) (*Machine, error) {
	m, err := s.start(name, sku, strings.ToUpper(name))
	if err != nil {
		return nil, err
	}
	return m, s.saveState()
}

// Machine returns the machine of that name, or nil.
func (s *Site) Machine(name string) *Machine {
	for _, m := range s.Machines {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// ClusterProperties are the properties of the cluster's PUT: its rack
// definitions, from the machines of the site, as MultiRack at version.
// fabricGroup is the resource group ID of the network fabric the racks
// name.
func (s *Site) ClusterProperties(version, fabricGroup string) map[string]any {
	racks := make([]map[string]any, s.Spec.ComputeRacks+1)
	for i := range racks {
		sku, serial, networkRack := s.Spec.ComputeRack, fmt.Sprintf("%s-R%d", strings.ToUpper(s.Spec.Name), i), fmt.Sprintf("CompRack%d", i)
		if i == 0 {
			sku, serial, networkRack = s.Spec.AggregatorRack, strings.ToUpper(s.Spec.Name)+"-AGG", "AggrRack"
		}
		racks[i] = map[string]any{
			"rackSkuId": sku, "rackSerialNumber": serial, "rackLocation": "Hall 1, row " + serial,
			"networkRackId":                     fabricGroup + "/providers/Microsoft.ManagedNetworkFabric/networkRacks/" + s.FabricName() + "-" + networkRack,
			"bareMetalMachineConfigurationData": []any{},
		}
	}
	for _, m := range s.Machines {
		r := racks[m.Rack]
		r["bareMetalMachineConfigurationData"] = append(r["bareMetalMachineConfigurationData"].([]any), m.Config())
	}
	if agg, ok := s.opts.Catalog.Rack(s.Spec.AggregatorRack); ok && len(agg.StorageAppliances) > 0 {
		san := map[string]any{
			"storageApplianceName": s.Spec.Name + "-san", "rackSlot": agg.StorageAppliances[0].RackSlot,
			"serialNumber":     s.sanSerial(),
			"adminCredentials": map[string]string{"username": sanUser, "password": cmp.Or(s.opts.BMC.Password, "sim-appliance")},
		}
		if s.SAN != nil {
			san["managementConnectionString"] = s.SAN.ConnectionString()
		}
		racks[0]["storageApplianceConfigurationData"] = []any{san}
	}
	compute := make([]any, 0, len(racks)-1)
	for _, r := range racks[1:] {
		compute = append(compute, r)
	}
	return map[string]any{
		"clusterType": "MultiRack", "clusterVersion": version,
		"networkFabricId":                  fabricGroup + "/providers/Microsoft.ManagedNetworkFabric/networkFabrics/" + s.FabricName(),
		"aggregatorOrSingleRackDefinition": racks[0],
		"computeRackDefinitions":           compute,
	}
}

// Close stops every agent and BMC of the site.
func (s *Site) Close() {
	s.fabric.close()
	if s.agents != nil {
		s.agents.stop()
	}
	if s.SAN != nil {
		s.sanStop()
		<-s.sanDone
	}
	if s.sanTemp != "" {
		os.RemoveAll(s.sanTemp)
	}
	s.fleet.Close()
}
