package agentapi

// A machine's agent runs the virtual machines placed on it: the desired
// state lists them (Desired.VMs), the agent reconciles what runs with
// them and reports each one's state (Heartbeat's VMs).

// VM is one virtual machine a machine should run.
type VM struct {
	// ID is the virtualMachine's ARM ID; Name its name (the hostname).
	ID   string `json:"id"`
	Name string `json:"name"`
	// Power is what the VM should be: "On" or "Off".
	Power     string `json:"power"`
	Cores     int    `json:"cores"`
	MemoryMiB int    `json:"memoryMiB"`
	// Image is the VM's boot image, fetched from PathArtifacts by its
	// sha256; BootMethod is "UEFI" or "BIOS", OSType "Linux" or
	// "Windows".
	Image      Artifact `json:"image"`
	BootMethod string   `json:"bootMethod"`
	OSType     string   `json:"osType"`
	// UserData and NetworkData are the cloud-init NoCloud documents
	// (user-data, network-config), as given (base64 decoded);
	// SSHPublicKeys go into its meta-data.
	UserData      string   `json:"userData,omitempty"`
	NetworkData   string   `json:"networkData,omitempty"`
	SSHPublicKeys []string `json:"sshPublicKeys,omitempty"`
	NICs          []VMNIC  `json:"nics,omitempty"`
	// GPUs are the PCI addresses of the host's GPUs the VM is given,
	// passed through to it whole.
	GPUs []string `json:"gpus,omitempty"`
	// Disks are the VM's volumes on the storage appliances: its OS disk
	// first when it is Persistent, then its volume attachments in order.
	Disks []VMDisk `json:"disks,omitempty"`
	// Restarts and Reimages count the restart and reimage requests: a
	// higher count than the VM last saw asks for one more.
	Restarts int `json:"restarts,omitempty"`
	Reimages int `json:"reimages,omitempty"`
	// ConsoleRequests counts the requests for the VM's serial console log
	// (its console's readLog action): a higher count than the agent last
	// answered asks it to upload the last ConsoleTailBytes of the log to
	// PathConsole, once, with the count as the ConsoleLog's Request. The
	// driver is not involved: the VM runs on unchanged.
	ConsoleRequests  int `json:"consoleRequests,omitempty"`
	ConsoleTailBytes int `json:"consoleTailBytes,omitempty"`
	// Evicted says the VM is moving to another machine: it must not run
	// here, whatever Power says, and its status says once it is stopped.
	Evicted bool `json:"evicted,omitempty"`
}

// VMNIC is one network attachment of a VM: a virtio NIC on the bridge of
// the host network of VLAN, with its MAC address and, if the network
// gave it one, its IPv4 address.
type VMNIC struct {
	Name string `json:"name"`
	VLAN int    `json:"vlan"`
	MAC  string `json:"mac"`
	IPv4 string `json:"ipv4,omitempty"` // CIDR form
}

// VMDisk is a volume a VM reaches over NBD with TLS and a pre-shared
// key, which only the machine it is placed on is given.
type VMDisk struct {
	// Volume is the volume's ARM ID; Serial its serial number, which
	// the guest sees as the disk's serial.
	Volume string `json:"volume"`
	Serial string `json:"serial"`
	// URI is the export, nbd://host:port/name; PSKIdentity and PSK
	// (hex) authenticate the machine to the appliance.
	URI         string `json:"uri"`
	PSKIdentity string `json:"pskIdentity"`
	PSK         string `json:"psk"`
	// OS says the disk is the VM's Persistent OS disk: the driver writes
	// the VM's image to it when it is blank, and again at a reimage, and
	// boots from it.
	OS bool `json:"os,omitempty"`
}

// VMStatus is what a machine reports of one VM.
type VMStatus struct {
	ID    string `json:"id"`
	Power string `json:"power"` // "On", "Off"
	// Restarts and Reimages are the counts of requests done.
	Restarts int `json:"restarts,omitempty"`
	Reimages int `json:"reimages,omitempty"`
	// Error says why the VM is not as desired, "" when it is.
	Error string `json:"error,omitempty"`
	// Evicted says the VM is evicted (VM.Evicted) and stopped here: the
	// control plane may start it elsewhere.
	Evicted bool `json:"evicted,omitempty"`
}

// PathConsole takes a VM's console log from the agent of the machine the
// VM is placed on (PUT, a ConsoleLog): the answer to a console request.
const PathConsole = "/agent/v1/vms/console"

// ConsoleMaxBytes is the most of a console log a request may ask for,
// and the most the control plane keeps of an upload.
const ConsoleMaxBytes = 1 << 20

// ConsoleLog answers console request Request (VM.ConsoleRequests) of
// the VM ID: the last bytes of its serial console log as the driver has
// them (raw bytes: base64 in JSON), and whether the log was longer.
// Sending the same request again is harmless: the control plane keeps
// the first answer. Error, when the log could not be read, says why, for
// the operator's log; the requester is only told that it failed.
type ConsoleLog struct {
	ID        string `json:"id"`
	Request   int    `json:"request"`
	Log       []byte `json:"log,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`
}
