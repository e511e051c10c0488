// Package fabric is the Microsoft.ManagedNetworkFabric namespace: the
// network fabric controller, fabrics with the racks, devices and
// interfaces their SKU lays out, isolation domains, internal networks,
// route policies, access control lists and prefix lists. It turns the
// resources into package network's intent, renders each device's SONiC
// configuration, hands it to the devices when they bootstrap (ZTP) and
// report (the agent API's fabric paths), and watches them for drift.
package fabric

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Namespace is the provider namespace this package serves.
const Namespace = "Microsoft.ManagedNetworkFabric"

// APIVersions are the versions served: 2025-07-15 is current, 2023-06-15
// the previous stable one clients still send.
var APIVersions = []string{"2025-07-15", "2023-06-15"}

// Full type names.
const (
	controllerType = Namespace + "/networkFabricControllers"
	fabricType     = Namespace + "/networkFabrics"
	rackType       = Namespace + "/networkRacks"
	deviceType     = Namespace + "/networkDevices"
	interfaceType  = Namespace + "/networkDevices/networkInterfaces"
	l2DomainType   = Namespace + "/l2IsolationDomains"
	l3DomainType   = Namespace + "/l3IsolationDomains"
	internalType   = Namespace + "/l3IsolationDomains/internalNetworks"
	externalType   = Namespace + "/l3IsolationDomains/externalNetworks"
	routePolicy    = Namespace + "/routePolicies"
	aclType        = Namespace + "/accessControlLists"
	ipPrefixType   = Namespace + "/ipPrefixes"
)

// stateful are the properties the fabric owns on its configurable types.
var stateful = []string{"administrativeState", "configurationState", "lastOperation"}

// namePattern is the name rule shared by the fabric's types.
var namePattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-_]{2,127}$`)

const nameRule = "It must start with a letter and have 3 to 128 letters, digits, '-' or '_'."

// Configuration states (configurationState) the fabric uses.
const (
	stateSucceeded      = "Succeeded"
	statePendingCommit  = "PendingCommit"
	stateProvisioning   = "Provisioning"
	stateProvisioned    = "Provisioned"
	stateDeprovisioned  = "Deprovisioned"
	stateDeferred       = "DeferredControl" // a device runs something else than it was given
	stateFailed         = "Failed"
	adminEnabled        = "Enabled"
	adminDisabled       = "Disabled"
	adminMaintenance    = "UnderMaintenance"
	lockConfiguration   = "Configuration"
	lockAdministrative  = "Administrative"
	defaultDeviceReport = 5 * time.Second
)

// Config configures the provider.
type Config struct {
	// Audit, if set, records devices' drift in the activity log.
	Audit *audit.Log
	// Certificates, if set, revokes a device's client certificate when it
	// must bootstrap again (a reboot with ZTP, a deprovision).
	Certificates interface {
		Revoke(ctx context.Context, subject string) error
	}
	// DeviceReport is how often devices report (default 5 s).
	DeviceReport time.Duration
	// ApplyTimeout bounds the wait for devices to bootstrap or apply a
	// configuration (default 10 minutes).
	ApplyTimeout time.Duration
	Logger       *slog.Logger
}

// Provider serves Microsoft.ManagedNetworkFabric.
type Provider struct {
	svc     *resource.Service
	cfg     Config
	log     *slog.Logger
	devices deviceCache
}

// Register declares the namespace's types.
func Register(svc *resource.Service, cfg Config) *Provider {
	if cfg.DeviceReport <= 0 {
		cfg.DeviceReport = defaultDeviceReport
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Provider{svc: svc, cfg: cfg, log: cfg.Logger.With("component", "fabric")}
	configurable := func(name string, validate func(context.Context, *resource.Write) error, actions map[string]resource.Action) *resource.Type {
		return &resource.Type{
			Namespace: Namespace, Name: name, APIVersions: APIVersions, Tracked: !strings.Contains(name, "/"),
			NamePattern: namePattern, NameRule: nameRule, ReadOnly: stateful,
			Validate: validate, ValidateDelete: p.validateIntentDelete, Actions: actions,
		}
	}
	adminState := map[string]resource.Action{"updateAdministrativeState": {Validate: p.validateAdminState, Run: p.updateAdministrativeState}}
	svc.Register(
		&resource.Type{
			Namespace: Namespace, Name: "networkFabricControllers", APIVersions: APIVersions, Tracked: true,
			NamePattern: namePattern, NameRule: nameRule,
			ReadOnly: []string{"infrastructureServices", "workloadServices", "networkFabricIds", "tenantInternetGatewayIds", "lastOperation"},
			Validate: validateController, Computed: p.controllerFabrics,
		},
		&resource.Type{
			Namespace: Namespace, Name: "networkFabricSkus", APIVersions: APIVersions, Scope: resource.ScopeSubscription,
			SystemManaged: true, Virtual: fabricSKU, List: listFabricSKUs,
		},
		&resource.Type{
			Namespace: Namespace, Name: "networkFabrics", APIVersions: APIVersions, Tracked: true,
			NamePattern: namePattern, NameRule: nameRule,
			ReadOnly: []string{"administrativeState", "configurationState", "lastOperation", "racks", "routerIds",
				"l2IsolationDomains", "l3IsolationDomains", "fabricLocks", "activeCommitBatches", "secretRotationSummary"},
			Sensitive:      []string{"terminalServerConfiguration.password", "commitBatch"},
			Validate:       p.validateFabric,
			ValidateDelete: p.validateFabricDelete,
			Provision:      p.planFabric,
			Deprovision:    p.removeFabricParts,
			Actions: map[string]resource.Action{
				"provision":             {Validate: p.validateProvision, Run: p.provision},
				"deprovision":           {Validate: p.validateUnlocked(lockAdministrative), Run: p.deprovision},
				"commitConfiguration":   {Validate: p.validateCommit, Run: p.commitConfiguration, Serialize: sameFabric},
				"validateConfiguration": {Validate: validateValidation, Run: p.validateConfiguration},
				"refreshConfiguration":  {Validate: p.validateProvisioned, Run: p.refreshFabric, Serialize: sameFabric},
				"lockFabric":            {Validate: validateLock, Run: p.lockFabric, Serialize: sameFabric},
			},
		},
		&resource.Type{
			Namespace: Namespace, Name: "networkRacks", APIVersions: APIVersions, Tracked: true, SystemManaged: true,
			NamePattern: namePattern, NameRule: nameRule,
			ReadOnly: []string{"configurationState", "lastOperation", "networkDevices", "networkFabricId", "networkRackType"},
		},
		&resource.Type{
			Namespace: Namespace, Name: "networkDevices", APIVersions: APIVersions, Tracked: true, SystemManaged: true,
			NamePattern: namePattern, NameRule: nameRule,
			ReadOnly: []string{"administrativeState", "configurationState", "lastOperation", "managementIpv4Address",
				"managementIpv6Address", "networkDeviceRole", "networkFabricId", "networkRackId", "version",
				"configurationDrift", "appliedConfigurationRevision", "lldpNeighbors", "lastReportTime"},
			Reported:  deviceReported,
			Sensitive: deviceHidden,
			Validate:  validateDevice,
			Actions: map[string]resource.Action{
				"reboot":                    {Validate: p.validateReboot, Run: p.reboot},
				"refreshConfiguration":      {Validate: p.validateDeviceProvisioned, Run: p.refreshDevice},
				"updateAdministrativeState": {Validate: p.validateAdminState, Run: p.updateAdministrativeState},
			},
		},
		&resource.Type{
			Namespace: Namespace, Name: "networkDevices/networkInterfaces", APIVersions: APIVersions, SystemManaged: true,
			NamePattern: namePattern, NameRule: nameRule,
			ReadOnly: []string{"administrativeState", "configurationState", "lastOperation", "connectedTo", "description",
				"interfaceType", "ipv4Address", "ipv6Address", "networkFabricId", "physicalIdentifier"},
		},
		configurable("l2IsolationDomains", p.validateL2Domain, adminState),
		configurable("l3IsolationDomains", p.validateL3Domain, adminState),
		configurable("l3IsolationDomains/internalNetworks", p.validateInternalNetwork, adminState),
		configurable("l3IsolationDomains/externalNetworks", p.validateExternalNetwork, adminState),
		configurable("routePolicies", p.validateRoutePolicy, adminState),
		configurable("accessControlLists", p.validateACL, adminState),
		&resource.Type{
			Namespace: Namespace, Name: "ipPrefixes", APIVersions: APIVersions, Tracked: true,
			NamePattern: namePattern, NameRule: nameRule, ReadOnly: stateful,
			Validate: validateIPPrefix, Provision: acceptPrefixList,
		},
	)
	return p
}

// sameFabric serializes the actions that change one fabric's
// configuration.
func sameFabric(r *resource.Resource, _ json.RawMessage) string { return strings.ToLower(r.ID) }

// decode decodes a JSON-shaped value (stored properties) into v.
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
		panic(fmt.Sprintf("fabric: %T does not round-trip through JSON: %v", v, err))
	}
	return out
}

func str(props map[string]any, name string) string {
	s, _ := props[name].(string)
	return s
}

func nameOf(id string) string { return id[strings.LastIndexByte(id, '/')+1:] }

func now() string { return time.Now().UTC().Format(time.RFC3339) }

// reference checks that property field of a write names a stored
// resource of type fullName and returns it.
func (p *Provider) reference(ctx context.Context, field, id, fullName string) (*resource.Resource, error) {
	parsed, err := arm.ParseID(id)
	if err != nil || !strings.EqualFold(parsed.Type(), fullName) {
		return nil, arm.FieldError(field, "%s must be the resource ID of a %s, not '%s'.", nameOf(strings.ReplaceAll(field, ".", "/")), fullName, id)
	}
	r, err := p.svc.Lookup(ctx, parsed)
	if err != nil {
		return nil, arm.FieldError(field, "%s '%s' does not exist.", fullName, id)
	}
	return r, nil
}

// updateProps changes some properties of a stored resource on the
// system's behalf.
func (p *Provider) updateProps(ctx context.Context, id string, change func(props map[string]any)) error {
	parsed, err := arm.ParseID(id)
	if err != nil {
		return err
	}
	_, err = p.svc.Upsert(ctx, parsed, func(r *resource.Resource, created bool) error {
		if created {
			return resource.ErrUnchanged // deleted meanwhile
		}
		change(r.Properties)
		return nil
	})
	return err
}

// event records what happened to a fabric resource in the activity log.
func (p *Provider) event(ctx context.Context, resourceID, operation, level, description string) {
	if p.cfg.Audit == nil {
		return
	}
	e := audit.NewEvent(audit.EventInfo{Time: time.Now(), OperationName: operation, Caller: resource.SystemCaller.Name,
		ResourceID: resourceID, Status: audit.StatusSucceeded, Level: level, Description: description})
	if err := p.cfg.Audit.Record(ctx, e); err != nil {
		p.log.WarnContext(ctx, "fabric event not recorded in the activity log", "resource", resourceID, "err", err)
	}
}
