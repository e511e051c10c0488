package sim

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/switchsim"
)

// ErrNoSwitch: no simulated device of that name.
var ErrNoSwitch = errors.New("no such network device")

// The site's network fabric is named after it and laid out as the
// control plane lays out a fabric of its size (network.PlanFabric): an
// aggregator rack with two CEs, two ToRs per compute rack, a management
// switch per rack. Its devices and cables are simulated: each machine's
// first two NICs hear their ToR ports over LLDP, and each device hears
// the devices it is cabled to.

// FabricName is the name of the site's networkFabric.
func (s *Site) FabricName() string { return s.Spec.Name + "-fabric" }

// DeviceSerial is the serial number of the simulated device named
// device (the networkDevice's name), in the Make;Model;HardwareRevision;
// Serial form networkDevices take.
func DeviceSerial(device string) string { return "Citadel;SimSwitch;1;" + strings.ToUpper(device) }

// fabric is the site's simulated fabric: its plan, the LLDP each end
// hears, and the devices once started.
type fabric struct {
	topo     network.Topology
	mu       sync.Mutex
	hears    map[network.Endpoint]network.Endpoint // what LLDP hears at each cabled end
	switches map[string]*switchsim.Switch          // by device name
	cancel   context.CancelFunc
}

// planFabric lays out the site's fabric; a site too large for one
// fabric (more than 8 compute racks or 16 machines a rack) has none. The
// simulator needs the plan's names and cables only, which do not depend
// on the ASN and prefix the operator gives the fabric.
func (s *Site) planFabric() {
	topo, err := network.PlanFabric(network.FabricSpec{Name: s.FabricName(), ASN: 65048,
		ManagementPrefix: netip.MustParsePrefix("10.254.0.0/19"), ComputeRacks: s.Spec.ComputeRacks, ServersPerRack: s.Spec.MachinesPerRack})
	if err != nil {
		return
	}
	f := &fabric{topo: topo, hears: map[network.Endpoint]network.Endpoint{}, switches: map[string]*switchsim.Switch{}}
	for _, l := range topo.Links {
		f.hears[l.A], f.hears[l.B] = l.B, l.A
	}
	s.fabric = f
}

// hostname is the LLDP system name of a device.
func (f *fabric) hostname(device string) string {
	for _, d := range f.topo.Devices {
		if d.Name == device {
			return d.Hostname
		}
	}
	return device
}

// serverEnd is the fabric's name for a machine's NIC: its rack and slot,
// and "eth{i}" for its i-th NIC.
func serverEnd(m *Machine, nic int) network.Endpoint {
	return network.Endpoint{Rack: fmt.Sprintf("CompRack%d", m.Rack), Slot: m.Slot, Port: fmt.Sprintf("eth%d", nic)}
}

// neighbor is what the NIC of a machine hears, or nil.
func (s *Site) neighbor(m *Machine, nic int) *agentapi.Neighbor {
	if s.fabric == nil || m.Rack == 0 {
		return nil
	}
	s.fabric.mu.Lock()
	far, ok := s.fabric.hears[serverEnd(m, nic)]
	s.fabric.mu.Unlock()
	if !ok || far.Device == "" {
		return nil
	}
	return &agentapi.Neighbor{LocalPort: fmt.Sprintf("eth%d", nic), SystemName: s.fabric.hostname(far.Device), PortID: far.Port}
}

// deviceNeighbors is what LLDP hears on the ports of device: the
// devices it is cabled to.
func (f *fabric) deviceNeighbors(device string) []agentapi.Neighbor {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []agentapi.Neighbor
	for _, d := range f.topo.Devices {
		if d.Name != device {
			continue
		}
		for _, p := range d.Ports {
			far, ok := f.hears[network.Endpoint{Device: device, Port: p.Name}]
			if ok && far.Device != "" {
				out = append(out, agentapi.Neighbor{LocalPort: p.Name, SystemName: f.hostname(far.Device), PortID: far.Port})
			}
		}
	}
	return out
}

// StartSwitches starts every device of the site's fabric: each knows
// only the agent API's address, its CA and its serial number, and
// bootstraps once the control plane provisions the fabric. They stop
// with Close. report, if not zero, overrides the report interval the
// control plane asks for.
func (s *Site) StartSwitches(server string, serverCA []byte, report time.Duration, log *slog.Logger) error {
	if s.fabric == nil {
		return errors.New("sim: the site is too large for one fabric (at most 8 compute racks of 16 machines)")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(serverCA) {
		return errors.New("sim: no certificate in the agent API's CA")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.fabric.cancel = cancel
	for _, d := range s.fabric.topo.Devices {
		name := d.Name
		sw := switchsim.New(switchsim.Config{Controller: server, RootCAs: pool, SerialNumber: DeviceSerial(name), Version: "citadel-sonic-1.0",
			Neighbors: func() []agentapi.Neighbor { return s.fabric.deviceNeighbors(name) }, ReportInterval: report,
			Logger: log.With("device", name)})
		s.fabric.switches[name] = sw
		go sw.Run(ctx)
	}
	return nil
}

// Switch is the simulated device of that name, or nil.
func (s *Site) Switch(device string) *switchsim.Switch {
	if s.fabric == nil {
		return nil
	}
	return s.fabric.switches[device]
}

// Devices are the names of the fabric's devices, in plan order.
func (s *Site) Devices() []string {
	if s.fabric == nil {
		return nil
	}
	var out []string
	for _, d := range s.fabric.topo.Devices {
		out = append(out, d.Name)
	}
	return out
}

// SwapCables swaps the cables of the first NICs of machines a and b, as
// a technician who mixed up two patch cords would: each machine now
// hears the other's ToR port.
func (s *Site) SwapCables(a, b string) error {
	ma, err := s.agentMachine(a)
	if err != nil {
		return err
	}
	mb, err := s.agentMachine(b)
	if err != nil {
		return err
	}
	if s.fabric == nil || ma.Rack == 0 || mb.Rack == 0 {
		return fmt.Errorf("sim: %s and %s are not cabled to the fabric", a, b)
	}
	ea, eb := serverEnd(ma, 0), serverEnd(mb, 0)
	s.fabric.mu.Lock()
	fa, fb := s.fabric.hears[ea], s.fabric.hears[eb]
	s.fabric.hears[ea], s.fabric.hears[eb] = fb, fa
	s.fabric.hears[fa], s.fabric.hears[fb] = eb, ea
	s.fabric.mu.Unlock()
	for _, m := range []*Machine{ma, mb} {
		if err := s.changeInventory(m.Name, func(inv *agentapi.Inventory) {
			if len(inv.NICs) > 0 {
				inv.NICs[0].Neighbor = s.neighbor(m, 0)
			}
		}); err != nil {
			return err
		}
	}
	return nil
}

// DriftSwitch changes the running configuration of device by hand: the
// MTU of its first VLAN, or its hostname when it has none.
func (s *Site) DriftSwitch(device string) (string, error) {
	sw := s.Switch(device)
	if sw == nil {
		return "", fmt.Errorf("sim: %q: %w", device, ErrNoSwitch)
	}
	if sw.State() != switchsim.StateRunning {
		return "", fmt.Errorf("sim: %s is not running a configuration yet", device)
	}
	for key := range sw.Running()["VLAN"] {
		sw.Edit("VLAN", key, "mtu", "9000")
		return fmt.Sprintf("VLAN %s mtu set to 9000 by hand", key), nil
	}
	sw.Edit("DEVICE_METADATA", "localhost", "hostname", "changed-by-hand")
	return "hostname changed by hand", nil
}

func (f *fabric) close() {
	if f != nil && f.cancel != nil {
		f.cancel()
	}
}
