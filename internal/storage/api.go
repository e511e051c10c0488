// Package storage is Citadel's shared SAN storage: the management API a
// storage appliance serves (its wire types and the client the control
// plane calls it with) and the placement of volumes on appliances. The
// appliance service itself, with its drivers, is package
// storage/appliance; the record of each appliance's thin-provisioned
// capacity is package storage/ledger.
//
// The API is HTTPS with Basic authentication by the appliance's
// administrator credentials (the cluster definition's adminCredentials):
//
//	GET    /v1/status                            Status
//	GET    /v1/volumes                           []Volume
//	PUT    /v1/volumes/{serial}                  VolumeSpec → Volume (create or grow)
//	DELETE /v1/volumes/{serial}                  (refused while exported)
//	PUT    /v1/volumes/{serial}/exports/{name}   ExportSpec → Export
//	DELETE /v1/volumes/{serial}/exports/{name}
//	POST   /v1/commands                          Command → CommandResult
//	PUT    /v1/remote-vendor-management          VendorManagement → Status
//
// Every PUT and DELETE is idempotent: the control plane repeats them after
// a crash. Errors are an APIError with the HTTP status.
package storage

import (
	"fmt"
	"regexp"
	"time"
)

// Status is what an appliance reports about itself.
type Status struct {
	SerialNumber string `json:"serialNumber"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	Version      string `json:"version"`
	Driver       string `json:"driver"` // "nbd" or "sim"
	// CapacityMiB is the usable capacity; UsedMiB what the volumes'
	// written blocks take of it (thin provisioning: less than the sum of
	// their sizes); ProvisionedMiB the sum of their sizes.
	CapacityMiB    int64 `json:"capacityMiB"`
	UsedMiB        int64 `json:"usedMiB"`
	ProvisionedMiB int64 `json:"provisionedMiB"`
	// Health is HealthAvailable or HealthDegraded, with a reason.
	Health           string           `json:"health"`
	HealthMessage    string           `json:"healthMessage,omitempty"`
	ExpansionShelves []Shelf          `json:"expansionShelves"`
	VendorManagement VendorManagement `json:"remoteVendorManagement"`
}

// Appliance health.
const (
	HealthAvailable = "Available"
	HealthDegraded  = "Degraded"
)

// Shelf is an expansion shelf attached to an appliance.
type Shelf struct {
	Model   string `json:"model"`
	Version string `json:"version"`
}

// VendorManagement is the remote vendor management switch: off unless an
// operator turns it on, and then only until Until.
type VendorManagement struct {
	Enabled bool      `json:"enabled"`
	Until   time.Time `json:"until,omitzero"`
}

// VolumeSpec is the size a volume is created or grown to.
type VolumeSpec struct {
	SizeMiB int64 `json:"sizeMiB"`
}

// Volume is one volume on an appliance.
type Volume struct {
	SerialNumber string `json:"serialNumber"`
	SizeMiB      int64  `json:"sizeMiB"`
	// AllocatedMiB is what its written blocks take on the appliance.
	AllocatedMiB int64    `json:"allocatedMiB"`
	Exports      []Export `json:"exports"`
}

// ExportSpec is one attachment's access to a volume: NBD over TLS with a
// pre-shared key that only the attached machine is given.
type ExportSpec struct {
	PSKIdentity string `json:"pskIdentity"`
	PSK         string `json:"psk"` // hex, at least 32 bytes
}

// Export is where an attachment reaches its volume: the NBD server at
// Host:Port, export ExportName, TLS with the attachment's PSK identity.
// The key itself is never sent back.
type Export struct {
	Name        string `json:"name"`
	Host        string `json:"host"`
	Port        int    `json:"port"`
	ExportName  string `json:"exportName"`
	PSKIdentity string `json:"pskIdentity"`
}

// URI is the export's NBD URI, as qemu writes it.
func (e Export) URI() string {
	return fmt.Sprintf("nbd://%s:%d/%s", e.Host, e.Port, e.ExportName)
}

// Command is one read-only diagnostic to run on an appliance.
type Command struct {
	Command   string   `json:"command"`
	Arguments []string `json:"arguments,omitempty"`
}

// CommandResult is a diagnostic's output.
type CommandResult struct {
	Output   string `json:"output"`
	ExitCode int    `json:"exitCode"`
}

// ReadCommands is the fixed allow-list of read-only diagnostics an
// appliance runs, with what each shows. Nothing else is ever run.
var ReadCommands = map[string]string{
	"capacity": "capacity, used and provisioned MiB",
	"health":   "the appliance's health and its reason",
	"version":  "manufacturer, model, version and expansion shelves",
	"volumes":  "each volume with its size and allocated MiB; an argument narrows to one serial number",
	"exports":  "each export with its volume, address and PSK identity (never the key)",
}

// APIError is the body of every error the API answers.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes.
const (
	CodeNotFound     = "NotFound"
	CodeInvalid      = "InvalidRequest"
	CodeConflict     = "Conflict"     // shrinking a volume, deleting an exported one
	CodeInsufficient = "Insufficient" // the appliance has no room for the volume
	CodeUnauthorized = "Unauthorized"
)

var (
	serialPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,62}$`)
	hexPattern    = regexp.MustCompile(`^([0-9a-fA-F]{2}){32,}$`)
)

// ValidName reports whether s may name a volume or an export: letters,
// digits and '-', 1 to 63, starting with a letter or digit.
func ValidName(s string) bool { return serialPattern.MatchString(s) }

// Validate checks an export's credentials.
func (s ExportSpec) Validate() error {
	switch {
	case !ValidName(s.PSKIdentity):
		return fmt.Errorf("pskIdentity %q must be 1 to 63 letters, digits or '-'", s.PSKIdentity)
	case !hexPattern.MatchString(s.PSK):
		return fmt.Errorf("psk must be at least 32 bytes in hex")
	}
	return nil
}
