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
	// Restarts and Reimages count the restart and reimage requests: a
	// higher count than the VM last saw asks for one more.
	Restarts int `json:"restarts,omitempty"`
	Reimages int `json:"reimages,omitempty"`
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

// VMStatus is what a machine reports of one VM.
type VMStatus struct {
	ID    string `json:"id"`
	Power string `json:"power"` // "On", "Off"
	// Restarts and Reimages are the counts of requests done.
	Restarts int `json:"restarts,omitempty"`
	Reimages int `json:"reimages,omitempty"`
	// Error says why the VM is not as desired, "" when it is.
	Error string `json:"error,omitempty"`
}
