package agentapi

import "encoding/json"

// Network devices (the fabric's switches and routers) use the agent API
// too. A device starts knowing only the control plane's address and its
// own serial number: zero-touch provisioning (ZTP) admits it by that
// serial while its networkDevice waits for it (after the fabric's
// provision, or a reboot with ZTP), and hands it a client certificate and
// its configuration. From then on it reports over mTLS like an agent.
const (
	// PathZTP is the one call a device makes without a certificate.
	PathZTP = "/agent/v1/fabric/ztp"
	// PathDeviceConfig answers the device's intended configuration.
	PathDeviceConfig = "/agent/v1/fabric/config"
	// PathDeviceState takes the device's running configuration and LLDP
	// neighbours, and answers what the device should do next.
	PathDeviceState = "/agent/v1/fabric/state"
)

// ZTPRequest is a device's bootstrap: its serial number (the
// networkDevice's serialNumber, "Make;Model;HardwareRevision;Serial") and
// a PEM certificate request for the key it made.
type ZTPRequest struct {
	SerialNumber string `json:"serialNumber"`
	CSR          string `json:"csr"`
}

// ZTPReply admits a device: the networkDevice's ARM ID, which its
// certificate names, the certificates, its configuration, and how often
// to report.
type ZTPReply struct {
	Device        string       `json:"device"`
	Certificate   string       `json:"certificate"`
	CACertificate string       `json:"caCertificate"`
	Config        DeviceConfig `json:"config"`
	ReportSeconds int          `json:"reportSeconds"`
}

// DeviceConfig is a device's intended configuration: a SONiC
// config_db.json document, and the revision it was rendered at.
type DeviceConfig struct {
	Revision int64           `json:"revision"`
	ConfigDB json.RawMessage `json:"configDb"`
}

// DeviceState is what a device reports: the revision of the configuration
// it applied last, what it runs now (its config_db.json as it is, hand
// edits included), and what LLDP hears on each port.
type DeviceState struct {
	AppliedRevision int64           `json:"appliedRevision"`
	Running         json.RawMessage `json:"running"`
	Neighbors       []Neighbor      `json:"neighbors,omitempty"`
	Version         string          `json:"version,omitempty"` // the device's software version
}

// Neighbor is what LLDP hears on one local port: the system name and
// port of the other end.
type Neighbor struct {
	LocalPort  string `json:"localPort"`
	SystemName string `json:"systemName"`
	PortID     string `json:"portId"`
}

// DeviceReply answers a report: the revision of the intended
// configuration (fetch PathDeviceConfig when it is newer than the one
// applied, or when Reapply says the running one must be replaced), and
// whether to reboot.
type DeviceReply struct {
	ConfigRevision int64 `json:"configRevision"`
	// Reapply asks the device to fetch and apply its configuration even
	// at the same revision (refreshConfiguration after drift).
	Reapply bool `json:"reapply,omitempty"`
	// Reboot is "", "WithZTP" (forget the certificate and configuration
	// and bootstrap again) or "WithoutZTP".
	Reboot string `json:"reboot,omitempty"`
}
