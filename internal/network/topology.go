package network

import "net/netip"

// Device roles (a networkDevice's networkDeviceRole).
const (
	RoleCE         = "CE"         // customer edge router, in the aggregator rack
	RoleToR        = "ToR"        // top-of-rack switch, two per compute rack
	RoleManagement = "Management" // management switch: BMCs and device management ports
)

// Rack types (a networkRack's networkRackType).
const (
	RackAggregate = "Aggregate"
	RackCompute   = "Compute"
)

// FabricSpec is what a networkFabric resource decides about its shape.
type FabricSpec struct {
	Name             string       // the fabric's resource name
	ASN              uint32       // fabricASN: the CE devices' autonomous system
	ManagementPrefix netip.Prefix // ipv4Prefix: device management and loopback addresses come from it
	ComputeRacks     int          // rackCount, 1..8
	ServersPerRack   int          // serverCountPerRack, 1..16
}

// Topology is a fabric's devices and the cabling between them and to the
// servers, as PlanFabric lays them out. It is a pure function of the spec.
type Topology struct {
	Racks   []Rack
	Devices []Device
	// Links are the expected cables, device to device and device to
	// server, in a stable order.
	Links []Link
}

// Rack is one rack of the fabric: index 0 is the aggregator rack, 1..n
// the compute racks.
type Rack struct {
	Name  string // e.g. "AggrRack", "CompRack1"
	Type  string // RackAggregate or RackCompute
	Index int
}

// Device is one switch or router of the fabric.
type Device struct {
	Name     string // resource name, e.g. "nf1-CompRack1-TOR1"
	Rack     string // Rack.Name
	Role     string // RoleCE, RoleToR or RoleManagement
	Hostname string // what LLDP advertises as the system name
	// ManagementIP is the device's address on the management network;
	// Loopback its router ID (both from the fabric's ipv4Prefix).
	ManagementIP netip.Addr
	Loopback     netip.Addr
	ASN          uint32 // the device's BGP AS: the fabric's for CEs, one per rack for ToRs
	Ports        []Port
}

// Port is one front-panel interface of a device.
type Port struct {
	Name string // SONiC name, e.g. "Ethernet4"
	// Kind says what the port is cabled to: "uplink" (ToR to CE),
	// "downlink" (CE to ToR), "peer" (the rack's other ToR or CE),
	// "server" (a server NIC), "bmc" (a server's BMC, on the management
	// switch), "management" (a device's management port), "pe" (a CE's
	// port to a provider edge router, outside the plan: in no Link) or
	// "unused".
	Kind string
}

// Endpoint is one end of a cable: a device's or a server's port. A
// server is named by its rack and slot ("CompRack1", 3) and its port by
// the NIC's name ("eth0", "bmc").
type Endpoint struct {
	Device string // device name, or "" for a server
	Rack   string // for a server: Rack.Name
	Slot   int    // for a server: 1..ServersPerRack
	Port   string
}

// Link is one expected cable.
type Link struct {
	A, B Endpoint
}
