// Package networkcloud is the Microsoft.NetworkCloud namespace: cluster
// managers, clusters and the racks, bare-metal machines and storage
// appliances a cluster declares, and the rack SKU catalog. It declares the
// types to the resource framework, turns their JSON into package machine's
// rules (topology, hardware validation, the disruption guard), and drives
// each machine's BMC over Redfish.
package networkcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentauth"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/images"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/storage/ledger"
)

// Namespace is the provider namespace this package serves.
const Namespace = "Microsoft.NetworkCloud"

// APIVersions are the versions served: 2026-07-01 is current; clients
// still send the two before it.
var APIVersions = []string{"2026-07-01", "2025-09-01", "2025-02-01"}

// Full type names.
const (
	clusterManagerType   = Namespace + "/clusterManagers"
	clusterType          = Namespace + "/clusters"
	rackType             = Namespace + "/racks"
	machineType          = Namespace + "/bareMetalMachines"
	storageApplianceType = Namespace + "/storageAppliances"
	volumeType           = Namespace + "/volumes"
)

var (
	namePattern        = regexp.MustCompile(`^([a-zA-Z0-9][a-zA-Z0-9-_]{0,28}[a-zA-Z0-9])$`)
	machineNamePattern = regexp.MustCompile(`^([a-zA-Z0-9][a-zA-Z0-9]{0,62}[a-zA-Z0-9])$`)
	volumeNamePattern  = regexp.MustCompile(`^([a-zA-Z0-9][a-zA-Z0-9-_]{0,62}[a-zA-Z0-9])$`)
	macPattern         = regexp.MustCompile(`^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$`)
)

const (
	nameRule        = "It must have 2 to 30 letters, digits, '-' or '_', and start and end with a letter or digit."
	machineNameRule = "It must have 2 to 64 letters or digits."
	volumeNameRule  = "It must have 2 to 64 letters, digits, '-' or '_', and start and end with a letter or digit."
)

// Config configures the provider.
type Config struct {
	// Catalog holds the rack and machine SKUs.
	Catalog *machine.Catalog
	// ImageDir holds the OS images machines are provisioned with, one
	// "cluster-{version}.iso" per cluster version; ImageURL is where BMCs
	// fetch them ("https://host:port/images").
	ImageDir, ImageURL string
	// FirmwareURL is where BMCs fetch the firmware packages of imported
	// releases by their sha256 ("https://host:port/firmware", a package
	// at FirmwareURL/{sha256}), when drift control flashes a machine.
	FirmwareURL string
	// BMCCACert, when set, is the CA (PEM) BMC certificates chain to,
	// unless a machine's connection string pins a fingerprint.
	BMCCACert []byte
	// PowerTimeout bounds a wait for a machine to reach a power state;
	// GracefulTimeout is how long a graceful shutdown may take before the
	// machine is forced off.
	PowerTimeout, GracefulTimeout time.Duration
	// Parallelism is how many machines a deploy works on at once.
	Parallelism int
	// AgentTokens issues the bootstrap tokens that admit machines'
	// agents (a cluster's issueAgentToken action).
	AgentTokens *agentauth.Authority
	// Ledger keeps the storage appliances' thin-provisioned capacity;
	// OvercommitRatio is how far volumes may together exceed an
	// appliance's capacity (1, the default, is not at all).
	Ledger          *ledger.Ledger
	OvercommitRatio float64
	// ApplianceCheckInterval is how often the storage appliances are
	// asked how they are (default 10s).
	ApplianceCheckInterval time.Duration
	// Releases are the imported releases clusters update to;
	// MachineUpdateTimeout bounds the wait for one machine's update
	// (default 30 minutes).
	Releases             Releases
	MachineUpdateTimeout time.Duration
	// DriftCheckInterval is how often machines are compared with their
	// configuration (default 10 s); FirmwareCheckInterval how often each
	// BMC is asked for the firmware it runs (default 5 minutes).
	DriftCheckInterval, FirmwareCheckInterval time.Duration
	// Images is the VM image catalog virtual machines boot from;
	// VMTimeout bounds the wait for a VM's host to run it, power it or
	// restart it (default 10 minutes).
	Images    VMImages
	VMTimeout time.Duration
	// Audit, if set, records each step of an update in the activity log.
	Audit  *audit.Log
	Logger *slog.Logger
}

// VMImages finds the images virtual machines boot from (package images).
type VMImages interface {
	Lookup(ctx context.Context, name string) (images.Image, error)
}

// Provider serves Microsoft.NetworkCloud.
type Provider struct {
	svc *resource.Service
	cfg Config
	log *slog.Logger
	mem atomic.Pointer[memory] // once started
	// bookings queues the bookings of each machine behind the one
	// being written.
	bookings bookingQueue
}

// Register declares the namespace's types with svc.
func Register(svc *resource.Service, cfg Config) *Provider {
	if cfg.Catalog == nil {
		cfg.Catalog = machine.Builtin()
	}
	if cfg.PowerTimeout == 0 {
		cfg.PowerTimeout = 10 * time.Minute
	}
	if cfg.GracefulTimeout == 0 {
		cfg.GracefulTimeout = 5 * time.Minute
	}
	if cfg.Parallelism == 0 {
		cfg.Parallelism = 32
	}
	if cfg.OvercommitRatio == 0 {
		cfg.OvercommitRatio = 1
	}
	if cfg.ApplianceCheckInterval == 0 {
		cfg.ApplianceCheckInterval = 10 * time.Second
	}
	if cfg.VMTimeout == 0 {
		cfg.VMTimeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Provider{svc: svc, cfg: cfg, log: cfg.Logger.With("component", "networkcloud")}
	svc.Register(
		&resource.Type{
			Namespace: Namespace, Name: "clusterManagers", APIVersions: APIVersions, Tracked: true,
			NamePattern: namePattern, NameRule: nameRule,
			ReadOnly:    []string{"clusterVersions", "detailedStatus", "detailedStatusMessage", "managerExtendedLocation", "relayConfiguration"},
			Validate:    p.validateClusterManager,
			Provision:   p.provisionClusterManager,
			Deprovision: p.deprovisionClusterManager,
		},
		&resource.Type{
			Namespace: Namespace, Name: "clusters", APIVersions: APIVersions, Tracked: true,
			NamePattern: namePattern, NameRule: nameRule,
			ReadOnly:    clusterReadOnly,
			Sensitive:   clusterSensitive,
			Validate:    p.validateCluster,
			Provision:   p.provisionCluster,
			Deprovision: p.deprovisionCluster,
			Actions: map[string]resource.Action{
				"deploy":                {Validate: p.validateDeploy, Run: p.deploy},
				"issueAgentToken":       {Validate: p.validateAgentToken, Run: p.issueAgentToken},
				"updateVersion":         {Validate: p.validateUpdateVersion, Run: p.updateVersion},
				"continueUpdateVersion": {Validate: p.validateContinueUpdate, Run: p.continueUpdateVersion},
			},
		},
		&resource.Type{
			Namespace: Namespace, Name: "racks", APIVersions: APIVersions, Tracked: true, SystemManaged: true,
			NamePattern: namePattern, NameRule: nameRule,
			ReadOnly: []string{"availabilityZone", "clusterId", "detailedStatus", "detailedStatusMessage",
				"livenessMessage", "livenessState", "rackSerialNumber", "rackSkuId"},
		},
		p.applianceType(),
		p.volumeType(),
		p.vmType(),
		p.consoleType(),
		&resource.Type{
			Namespace: Namespace, Name: "bareMetalMachines", APIVersions: APIVersions, Tracked: true, SystemManaged: true,
			NamePattern: machineNamePattern, NameRule: machineNameRule,
			ReadOnly:  machineReadOnly,
			Reported:  machineReported,
			Sensitive: []string{"bmcCredentials.password", machineVMs}, // the VMs it runs carry their user data
			Actions:   p.machineActions(),
		},
		&resource.Type{
			Namespace: Namespace, Name: "rackSkus", APIVersions: APIVersions, Scope: resource.ScopeSubscription,
			SystemManaged: true, // the catalog: built in, or from the operator's SKU file
			Virtual:       p.rackSKU,
			List:          p.listRackSKUs,
		},
	)
	svc.Register(p.networkTypes()...)
	return p
}

// imagePath is where the OS image of a cluster version is kept.
func (p *Provider) imagePath(version string) string {
	return filepath.Join(p.cfg.ImageDir, "cluster-"+version+".iso")
}

// imageURL is where a BMC fetches the OS image of version, after checking
// that the catalog has it.
func (p *Provider) imageURL(version string) (string, error) {
	if _, err := os.Stat(p.imagePath(version)); err != nil {
		return "", arm.Errorf(http.StatusBadRequest, "ImageNotFound",
			"The image catalog has no OS image for cluster version '%s'.", version)
	}
	return strings.TrimSuffix(p.cfg.ImageURL, "/") + "/cluster-" + version + ".iso", nil
}

// clusterVersions lists the versions the image catalog holds, newest first.
func (p *Provider) clusterVersions() []string {
	matches, _ := filepath.Glob(filepath.Join(p.cfg.ImageDir, "cluster-*.iso"))
	var out []string
	for _, m := range matches {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "cluster-"), ".iso"))
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// decode decodes a JSON-shaped value (a map from stored properties) into v.
func decode(from, v any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// jsonValue turns a typed value into the generic shape properties hold.
func jsonValue(v any) any {
	var out any
	if err := decode(v, &out); err != nil {
		panic(fmt.Sprintf("networkcloud: %T does not round-trip through JSON: %v", v, err))
	}
	return out
}

func str(props map[string]any, name string) string {
	s, _ := props[name].(string)
	return s
}

// num is a number property of a stored resource (JSON numbers decode
// as float64), 0 when it has none.
func num(props map[string]any, name string) float64 {
	n, _ := props[name].(float64)
	return n
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }

// clusterMachines lists the bareMetalMachines cluster declared.
func (p *Provider) clusterMachines(ctx context.Context, cluster *resource.Resource) ([]*resource.Resource, error) {
	id, err := arm.ParseID(cluster.ID)
	if err != nil {
		return nil, err
	}
	return p.inCluster(ctx, id, machineType)
}

// inCluster lists the resources of type fullName that cluster declared.
func (p *Provider) inCluster(ctx context.Context, cluster arm.ID, fullName string) ([]*resource.Resource, error) {
	all, err := p.svc.Resources(ctx, cluster.ResourceGroupID(), fullName)
	if err != nil {
		return nil, err
	}
	var out []*resource.Resource
	for _, r := range all {
		if strings.EqualFold(str(r.Properties, "clusterId"), cluster.String()) {
			out = append(out, r)
		}
	}
	return out, nil
}

// isNotFound reports whether err says a resource does not exist.
func isNotFound(err error) bool {
	var e *arm.Error
	return errors.As(err, &e) && e.Code == arm.CodeResourceNotFound
}
