// Package agentapi is the wire contract between `citadel agent` on each
// machine and the control plane: not ARM, a small JSON API over mTLS
// (ARCHITECTURE.md, "The agent path"). Both sides import these types;
// the package has no code of its own beyond them.
package agentapi

// Inventory is what a machine really is, as its agent reads it from the
// host.
type Inventory struct {
	Hostname string `json:"hostname"`
	CPU      CPU    `json:"cpu"`
	// MemoryBytes is MemTotal.
	MemoryBytes uint64 `json:"memoryBytes"`
	Disks       []Disk `json:"disks"`
	NICs        []NIC  `json:"nics"`
	GPUs        []GPU  `json:"gpus"`
	OS          OS     `json:"os"`
	// Runtime is the Citadel release the machine runs.
	Runtime Runtime `json:"runtime"`
}

// Runtime is the Citadel release a machine runs and how its last update
// went.
type Runtime struct {
	ClusterVersion string `json:"clusterVersion,omitempty"`
	// Staged are the sha256 digests of the update artifacts the machine
	// holds, each checked against the digest the control plane sent.
	Staged []string `json:"staged,omitempty"`
	// UpdateError says why the update to UpdateVersion failed; both are
	// empty unless the last update failed.
	UpdateVersion string `json:"updateVersion,omitempty"`
	UpdateError   string `json:"updateError,omitempty"`
}

// CPU describes the processors: the model of the first, and totals.
type CPU struct {
	Model   string `json:"model"`
	Sockets int    `json:"sockets"`
	Cores   int    `json:"cores"`   // physical cores, all sockets
	Threads int    `json:"threads"` // logical processors
	// Flags are the /proc/cpuinfo flags of the first processor, sorted
	// (avx512f, amx_tile, amx_int8, amx_bf16 ...).
	Flags []string `json:"flags"`
}

// Disk is a block device that is a whole disk (not a partition, loop or
// RAM device).
type Disk struct {
	Name       string `json:"name"` // "nvme0n1"
	Model      string `json:"model,omitempty"`
	Serial     string `json:"serial,omitempty"`
	SizeBytes  uint64 `json:"sizeBytes"`
	Rotational bool   `json:"rotational"`
}

// NIC is a physical network interface (one with a device behind it).
type NIC struct {
	Name      string `json:"name"`
	MAC       string `json:"mac"` // aa:bb:cc:dd:ee:ff
	SpeedMbps int    `json:"speedMbps,omitempty"`
	Up        bool   `json:"up"`
	// Addresses are its global unicast IP addresses, CIDR form.
	Addresses []string `json:"addresses,omitempty"`
	// Neighbor is what LLDP hears on the NIC's cable (nil when nothing
	// answers): the switch port it is cabled to.
	Neighbor *Neighbor `json:"neighbor,omitempty"`
}

// GPU is a PCI display or 3D controller (class 0x03xx) or processing
// accelerator (0x12xx).
type GPU struct {
	PCIAddress string `json:"pciAddress"` // "0000:17:00.0"
	VendorID   string `json:"vendorId"`   // "0x10de"
	DeviceID   string `json:"deviceId"`
	Vendor     string `json:"vendor"` // "NVIDIA", "AMD", "Intel" or the vendor id
	Class      string `json:"class"`  // "0x030200"
}

// OS is the running operating system.
type OS struct {
	Name    string `json:"name"`    // PRETTY_NAME of os-release
	Version string `json:"version"` // VERSION_ID
	Kernel  string `json:"kernel"`
}

// The agent API's paths. Join is the only one an agent calls without its
// client certificate.
const (
	PathJoin      = "/agent/v1/join"
	PathRenew     = "/agent/v1/renew"
	PathHeartbeat = "/agent/v1/heartbeat"
	PathInventory = "/agent/v1/inventory"
	PathDesired   = "/agent/v1/desired"
	// PathArtifacts + an artifact's sha256 is the artifact's content.
	PathArtifacts = "/agent/v1/artifacts/"
	// PathReplicaFiles + a sha256 is the content of an artifact the
	// replica holds itself, for the other replicas only: one copies from
	// another what it lacks.
	PathReplicaFiles = "/agent/v1/replica-files/"
)

// JoinRequest admits a machine: its one-time bootstrap token, the ARM ID
// of its bareMetalMachine resource, and a PEM certificate request for the
// key the agent made (and keeps). The agent's certificate names the
// machine by that ID.
type JoinRequest struct {
	Token   string `json:"token"`
	Machine string `json:"machine"`
	CSR     string `json:"csr"`
}

// Certificate is the answer to a join or a renewal: the agent's client
// certificate and the node CA's, and how often it should send a
// heartbeat.
type Certificate struct {
	Certificate      string `json:"certificate"`
	CACertificate    string `json:"caCertificate"`
	HeartbeatSeconds int    `json:"heartbeatSeconds"`
}

// RenewRequest asks for a new certificate for the key of CSR; the agent
// authenticates with its current one.
type RenewRequest struct {
	CSR string `json:"csr"`
}

// Heartbeat is what an agent sends at each interval: who it is comes from
// its certificate. Observed is its view of itself; VMs the status of each
// virtual machine its desired state lists, in that order (none until the
// agent applied a desired state, or when its host runs no VMs). The
// control plane writes a VM's status only when it changed.
type Heartbeat struct {
	Observed Observed   `json:"observed"`
	VMs      []VMStatus `json:"vms,omitempty"`
}

// Observed is the state an agent reports about its machine.
type Observed struct {
	AgentVersion string   `json:"agentVersion"`
	OSImage      string   `json:"osImage"`
	Addresses    []string `json:"addresses"` // OAM addresses, CIDR form
	// DesiredRevision is the revision of the desired state last applied.
	DesiredRevision int64 `json:"desiredRevision"`
}

// HeartbeatReply tells the agent whether there is newer desired state,
// and how often to send heartbeats.
type HeartbeatReply struct {
	DesiredRevision int64 `json:"desiredRevision"`
	// HeartbeatSeconds is the interval the control plane asks for now: an
	// agent that restarted with a kept certificate learns it here.
	HeartbeatSeconds int `json:"heartbeatSeconds,omitempty"`
	// Replicas are the agent API URLs of the control plane's replicas
	// now: the ones an agent tries when the one it talks to stops
	// answering.
	Replicas []string `json:"replicas,omitempty"`
}

// Misdirected is the answer, with status 421 Misdirected Request, to a
// heartbeat sent to a replica that does not hold the liveness of the
// machine's cell: Owner is the agent API URL of the one that does, where
// the agent sends its calls from then on.
type Misdirected struct {
	Error string `json:"error"`
	Owner string `json:"owner"`
}

// Desired is what the control plane wants the machine to run. GET
// PathDesired?after=N waits (long-poll) until the revision is above N.
type Desired struct {
	Revision int64  `json:"revision"`
	OSImage  string `json:"osImage,omitempty"`
	Cordoned bool   `json:"cordoned"`
	// ClusterVersion is the release the machine should run, and
	// Artifacts that release's files for the machine (from an imported,
	// verified update bundle), to fetch from PathArtifacts.
	ClusterVersion string     `json:"clusterVersion,omitempty"`
	Artifacts      []Artifact `json:"artifacts,omitempty"`
	// Networks are the workload networks of the machine's cluster, each
	// a VLAN on the machine's uplink and a bridge that VMs attach to.
	Networks []Network `json:"networks,omitempty"`
	// VMs are the virtual machines placed on the machine (vm.go). The
	// agent runs exactly these: one no longer listed is removed.
	VMs []VM `json:"vms,omitempty"`
}

// Network is one workload network a machine carries: the VLAN its
// isolation domain gives it, and the host's addresses on it (none for a
// network only VMs use).
type Network struct {
	Name      string   `json:"name"` // the network resource's name
	VLAN      int      `json:"vlan"`
	MTU       int      `json:"mtu,omitempty"`
	Addresses []string `json:"addresses,omitempty"` // CIDR form
}

// Artifact is one file of a release.
type Artifact struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"` // nodeImage, agent, firmware, ...
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}
