package networkcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/providers/extendedlocation"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/storage"
)

// Cluster managers.

type clusterManagerProperties struct {
	AnalyticsWorkspaceID              string          `json:"analyticsWorkspaceId"`
	AvailabilityZones                 []string        `json:"availabilityZones"`
	FabricControllerID                string          `json:"fabricControllerId"`
	ManagedResourceGroupConfiguration json.RawMessage `json:"managedResourceGroupConfiguration"`
	VMSize                            string          `json:"vmSize"`
	// Read-only, kept from the stored resource.
	ClusterVersions         json.RawMessage `json:"clusterVersions"`
	DetailedStatus          string          `json:"detailedStatus"`
	DetailedStatusMessage   string          `json:"detailedStatusMessage"`
	ManagerExtendedLocation json.RawMessage `json:"managerExtendedLocation"`
	RelayConfiguration      json.RawMessage `json:"relayConfiguration"`
}

func (p *Provider) validateClusterManager(_ context.Context, w *resource.Write) error {
	var cm clusterManagerProperties
	if err := resource.DecodeProperties(w.New, &cm); err != nil {
		return err
	}
	if cm.FabricControllerID == "" {
		return arm.FieldError("properties.fabricControllerId", "fabricControllerId is required.")
	}
	if _, err := arm.ParseID(cm.FabricControllerID); err != nil {
		return arm.FieldError("properties.fabricControllerId", "fabricControllerId must be a resource ID, not '%s'.", cm.FabricControllerID)
	}
	if k := w.New.Kind; k != "" && k != "Nexus" && k != "AzureLocal" {
		return arm.FieldError("kind", "kind must be 'Nexus' or 'AzureLocal', not '%s'.", k)
	}
	if w.New.Kind == "" {
		w.New.Kind = "Nexus"
	}
	return nil
}

// provisionClusterManager gives the manager its custom location and lists
// the cluster versions the image catalog can install.
func (p *Provider) provisionClusterManager(ctx context.Context, t *resource.Task) error {
	id, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return err
	}
	el, err := extendedlocation.Ensure(ctx, p.svc, id)
	if err != nil {
		return err
	}
	var versions []map[string]any
	for _, v := range p.clusterVersions() {
		versions = append(versions, map[string]any{"targetClusterVersion": v})
	}
	t.Resource.Properties["managerExtendedLocation"] = el
	t.Resource.Properties["clusterVersions"] = versions
	t.Resource.Properties["detailedStatus"] = "Available"
	t.Resource.Properties["detailedStatusMessage"] = "The cluster manager is available."
	return nil
}

// deprovisionClusterManager refuses while clusters remain in its care,
// then removes its custom location.
func (p *Provider) deprovisionClusterManager(ctx context.Context, t *resource.Task) error {
	id, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return err
	}
	clusters, err := p.svc.Resources(ctx, id.ResourceGroupID(), clusterType)
	if err != nil {
		return err
	}
	for _, c := range clusters {
		if strings.EqualFold(str(c.Properties, "clusterManagerId"), id.String()) {
			return controller.Terminal(arm.Errorf(http.StatusConflict, "ClusterManagerInUse",
				"The cluster manager '%s' still manages the cluster '%s'; delete the cluster first.", id.Name(), c.ID))
		}
	}
	return p.svc.Remove(ctx, extendedlocation.ID(id))
}

// Clusters.

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type machineConfig struct {
	// bmcConnectionString is read-only in the spec, where the fabric's
	// DHCP finds each BMC by its MAC; Citadel takes it from the operator
	// until the fabric does that (docs/architecture.md).
	BMCConnectionString string      `json:"bmcConnectionString"`
	BMCCredentials      credentials `json:"bmcCredentials"`
	BMCMacAddress       string      `json:"bmcMacAddress"`
	BootMacAddress      string      `json:"bootMacAddress"`
	MachineDetails      string      `json:"machineDetails"`
	MachineName         string      `json:"machineName"`
	RackSlot            int         `json:"rackSlot"`
	SerialNumber        string      `json:"serialNumber"`
}

type applianceConfig struct {
	AdminCredentials credentials `json:"adminCredentials"`
	// ManagementConnectionString is Citadel's: where the appliance's
	// management API is, "https://host:port?fingerprint=…" (the spec
	// finds it through the fabric, which Citadel does not manage yet).
	ManagementConnectionString string `json:"managementConnectionString"`
	RackSlot                   int    `json:"rackSlot"`
	SerialNumber               string `json:"serialNumber"`
	StorageApplianceName       string `json:"storageApplianceName"`
}

type rackDefinition struct {
	AvailabilityZone                  string            `json:"availabilityZone"`
	BareMetalMachineConfigurationData []machineConfig   `json:"bareMetalMachineConfigurationData"`
	NetworkRackID                     string            `json:"networkRackId"`
	RackLocation                      string            `json:"rackLocation"`
	RackSerialNumber                  string            `json:"rackSerialNumber"`
	RackSKUID                         string            `json:"rackSkuId"`
	StorageApplianceConfigurationData []applianceConfig `json:"storageApplianceConfigurationData"`
}

type threshold struct {
	Grouping string `json:"grouping"`
	Type     string `json:"type"`
	Value    int    `json:"value"`
}

type updateStrategy struct {
	MaxUnavailable  int    `json:"maxUnavailable"`
	StrategyType    string `json:"strategyType"`
	ThresholdType   string `json:"thresholdType"`
	ThresholdValue  int    `json:"thresholdValue"`
	WaitTimeMinutes int    `json:"waitTimeMinutes"`
}

type clusterProperties struct {
	AggregatorOrSingleRackDefinition *rackDefinition  `json:"aggregatorOrSingleRackDefinition"`
	ComputeRackDefinitions           []rackDefinition `json:"computeRackDefinitions"`
	ClusterType                      string           `json:"clusterType"`
	ClusterVersion                   string           `json:"clusterVersion"`
	NetworkFabricID                  string           `json:"networkFabricId"`
	ComputeDeploymentThreshold       *threshold       `json:"computeDeploymentThreshold"`
	UpdateStrategy                   *updateStrategy  `json:"updateStrategy"`
	ClusterLocation                  string           `json:"clusterLocation"`
	// ConfigurationDriftMode is Citadel's: Audit (the default) reports a
	// machine that drifted from its configuration, Enforce reimages it.
	ConfigurationDriftMode string `json:"configurationDriftMode"`
	// Settings Citadel keeps as given.
	AnalyticsOutputSettings           json.RawMessage `json:"analyticsOutputSettings"`
	AnalyticsWorkspaceID              json.RawMessage `json:"analyticsWorkspaceId"`
	ClusterServicePrincipal           json.RawMessage `json:"clusterServicePrincipal"`
	CommandOutputSettings             json.RawMessage `json:"commandOutputSettings"`
	ManagedResourceGroupConfiguration json.RawMessage `json:"managedResourceGroupConfiguration"`
	RuntimeProtectionConfiguration    json.RawMessage `json:"runtimeProtectionConfiguration"`
	SecretArchive                     json.RawMessage `json:"secretArchive"`
	SecretArchiveSettings             json.RawMessage `json:"secretArchiveSettings"`
	VulnerabilityScanningSettings     json.RawMessage `json:"vulnerabilityScanningSettings"`
	// Read-only, kept from the stored resource.
	ActionStates                   json.RawMessage `json:"actionStates"`
	AvailableUpgradeVersions       json.RawMessage `json:"availableUpgradeVersions"`
	ClusterCapacity                json.RawMessage `json:"clusterCapacity"`
	ClusterConnectionStatus        json.RawMessage `json:"clusterConnectionStatus"`
	ClusterExtendedLocation        json.RawMessage `json:"clusterExtendedLocation"`
	ClusterManagerConnectionStatus json.RawMessage `json:"clusterManagerConnectionStatus"`
	ClusterManagerID               json.RawMessage `json:"clusterManagerId"`
	DetailedStatus                 json.RawMessage `json:"detailedStatus"`
	DetailedStatusMessage          json.RawMessage `json:"detailedStatusMessage"`
	HybridAksExtendedLocation      json.RawMessage `json:"hybridAksExtendedLocation"`
	LastSuccessfulVersionUpdate    json.RawMessage `json:"lastSuccessfulVersionUpdateTime"`
	ManagedCredentials             json.RawMessage `json:"managedCredentials"`
	ManualActionCount              json.RawMessage `json:"manualActionCount"`
	SupportExpiryDate              json.RawMessage `json:"supportExpiryDate"`
	WorkloadResourceIDs            json.RawMessage `json:"workloadResourceIds"`
}

var clusterReadOnly = []string{"actionStates", "availableUpgradeVersions", "clusterCapacity", "clusterConnectionStatus",
	"clusterExtendedLocation", "clusterManagerConnectionStatus", "clusterManagerId", "detailedStatus",
	"detailedStatusMessage", "hybridAksExtendedLocation", "lastSuccessfulVersionUpdateTime", "managedCredentials",
	"manualActionCount", "supportExpiryDate", "workloadResourceIds", "updateState"}

// clusterSensitive are the passwords in a cluster's definition (the spec
// marks them sensitive): stored, never shown.
var clusterSensitive = []string{
	"aggregatorOrSingleRackDefinition.bareMetalMachineConfigurationData[].bmcCredentials.password",
	"aggregatorOrSingleRackDefinition.storageApplianceConfigurationData[].adminCredentials.password",
	"computeRackDefinitions[].bareMetalMachineConfigurationData[].bmcCredentials.password",
	"computeRackDefinitions[].storageApplianceConfigurationData[].adminCredentials.password",
	"clusterServicePrincipal.password",
}

// racks lists the cluster's rack definitions with the JSON path of each.
func (c *clusterProperties) racks() []machine.RackSpec {
	var out []machine.RackSpec
	add := func(field string, d *rackDefinition) {
		rs := machine.RackSpec{Field: field, SKU: skuName(d.RackSKUID), Serial: d.RackSerialNumber}
		for _, m := range d.BareMetalMachineConfigurationData {
			rs.Machines = append(rs.Machines, machine.MachineSpec{Name: m.MachineName, Serial: m.SerialNumber,
				BMCMAC: m.BMCMacAddress, BootMAC: m.BootMacAddress, BMCAddress: bmcHost(m.BMCConnectionString), Slot: m.RackSlot})
		}
		for _, a := range d.StorageApplianceConfigurationData {
			rs.Appliances = append(rs.Appliances, machine.ApplianceSpec{Name: a.StorageApplianceName, Serial: a.SerialNumber, Slot: a.RackSlot})
		}
		out = append(out, rs)
	}
	if c.AggregatorOrSingleRackDefinition != nil {
		add("properties.aggregatorOrSingleRackDefinition", c.AggregatorOrSingleRackDefinition)
	}
	for i := range c.ComputeRackDefinitions {
		add(fmt.Sprintf("properties.computeRackDefinitions[%d]", i), &c.ComputeRackDefinitions[i])
	}
	return out
}

// definitions pairs each rack definition with its topology spec.
func (c *clusterProperties) definitions() []*rackDefinition {
	var out []*rackDefinition
	if c.AggregatorOrSingleRackDefinition != nil {
		out = append(out, c.AggregatorOrSingleRackDefinition)
	}
	for i := range c.ComputeRackDefinitions {
		out = append(out, &c.ComputeRackDefinitions[i])
	}
	return out
}

// skuName accepts a rack SKU as a bare name or as the ID of a rackSkus
// resource.
func skuName(s string) string {
	if id, err := arm.ParseID(s); err == nil && len(id.Names) > 0 {
		return id.Name()
	}
	return s
}

func (p *Provider) validateCluster(ctx context.Context, w *resource.Write) error {
	var c clusterProperties
	if err := resource.DecodeProperties(w.New, &c); err != nil {
		return err
	}
	manager, err := extendedlocation.Resolve(ctx, p.svc, "extendedLocation", w.New.ExtendedLocation, clusterManagerType)
	if err != nil {
		return err
	}
	cm, err := p.svc.Lookup(ctx, manager)
	if err != nil {
		return arm.FieldError("extendedLocation.name", "The cluster manager '%s' of the custom location was not found.", manager)
	}
	if w.New.Kind == "" {
		w.New.Kind = cm.Kind
	} else if cm.Kind != "" && !strings.EqualFold(w.New.Kind, cm.Kind) {
		return arm.FieldError("kind", "kind '%s' does not match the cluster manager's kind '%s'.", w.New.Kind, cm.Kind)
	}
	switch {
	case c.ClusterType == "":
		return arm.FieldError("properties.clusterType", "clusterType is required: SingleRack or MultiRack.")
	case c.ClusterType != "SingleRack" && c.ClusterType != "MultiRack":
		return arm.FieldError("properties.clusterType", "clusterType must be SingleRack or MultiRack, not '%s'.", c.ClusterType)
	case c.ClusterVersion == "":
		return arm.FieldError("properties.clusterVersion", "clusterVersion is required.")
	case c.NetworkFabricID == "":
		return arm.FieldError("properties.networkFabricId", "networkFabricId is required.")
	case c.AggregatorOrSingleRackDefinition == nil:
		return arm.FieldError("properties.aggregatorOrSingleRackDefinition", "aggregatorOrSingleRackDefinition is required.")
	}
	if _, err := arm.ParseID(c.NetworkFabricID); err != nil {
		return arm.FieldError("properties.networkFabricId", "networkFabricId must be a resource ID, not '%s'.", c.NetworkFabricID)
	}
	if _, err := p.imageURL(c.ClusterVersion); err != nil {
		return arm.FieldError("properties.clusterVersion", "clusterVersion '%s' is not one the cluster manager offers (%s).",
			c.ClusterVersion, strings.Join(p.clusterVersions(), ", "))
	}
	if err := validateFields(&c); err != nil {
		return err
	}
	if m := c.ConfigurationDriftMode; m != "" && m != driftAudit && m != driftEnforce {
		return arm.FieldError("properties.configurationDriftMode", "configurationDriftMode must be Audit or Enforce, not '%s'.", m)
	}
	if t := c.ComputeDeploymentThreshold; t != nil {
		if err := (machine.Threshold{Type: t.Type, Grouping: t.Grouping, Value: t.Value}).Validate(); err != nil {
			return arm.FieldError("properties.computeDeploymentThreshold", "computeDeploymentThreshold is invalid: %v.", err)
		}
	}
	if u := c.UpdateStrategy; u != nil {
		if err := machine.ValidateStrategy(u.StrategyType, u.ThresholdType, u.ThresholdValue, u.MaxUnavailable, u.WaitTimeMinutes); err != nil {
			v := err.(machine.Violation)
			return arm.FieldError("properties.updateStrategy."+v.Field, "updateStrategy.%s is invalid: %s.", v.Field, v.Message)
		}
	}
	taken, err := p.takenIdentities(ctx, w.ID)
	if err != nil {
		return err
	}
	if vs := machine.ValidateTopology(p.cfg.Catalog, machine.ClusterSpec{Type: c.ClusterType, Racks: c.racks()}, taken); len(vs) > 0 {
		return topologyError(vs)
	}
	w.New.Properties["clusterManagerId"] = manager.String()
	if w.Old == nil {
		w.New.Properties["detailedStatus"] = "PendingDeployment"
		w.New.Properties["detailedStatusMessage"] = "The cluster is defined; deploy it to bring its machines up."
	}
	return nil
}

// validateFields checks the formats the spec gives for the fields of each
// rack definition.
func validateFields(c *clusterProperties) error {
	racks := c.racks()
	for i, d := range c.definitions() {
		field := racks[i].Field
		if d.RackSKUID == "" {
			return arm.FieldError(field+".rackSkuId", "rackSkuId is required.")
		}
		if d.RackSerialNumber == "" || len(d.RackSerialNumber) > 64 {
			return arm.FieldError(field+".rackSerialNumber", "rackSerialNumber is required and at most 64 characters.")
		}
		for j, m := range d.BareMetalMachineConfigurationData {
			mf := fmt.Sprintf("%s.bareMetalMachineConfigurationData[%d]", field, j)
			switch {
			case m.MachineName != "" && !machineNamePattern.MatchString(m.MachineName):
				return arm.FieldError(mf+".machineName", "machineName '%s' is invalid. %s", m.MachineName, machineNameRule)
			case !macPattern.MatchString(m.BMCMacAddress):
				return arm.FieldError(mf+".bmcMacAddress", "bmcMacAddress '%s' is not a MAC address.", m.BMCMacAddress)
			case !macPattern.MatchString(m.BootMacAddress):
				return arm.FieldError(mf+".bootMacAddress", "bootMacAddress '%s' is not a MAC address.", m.BootMacAddress)
			case m.RackSlot < 1 || m.RackSlot > 256:
				return arm.FieldError(mf+".rackSlot", "rackSlot must be from 1 to 256, not %d.", m.RackSlot)
			case m.SerialNumber == "" || len(m.SerialNumber) > 64:
				return arm.FieldError(mf+".serialNumber", "serialNumber is required and at most 64 characters.")
			case m.BMCCredentials.Username == "" || m.BMCCredentials.Password == "":
				return arm.FieldError(mf+".bmcCredentials", "bmcCredentials needs a username and a password.")
			}
			if _, err := parseBMC(m.BMCConnectionString); err != nil {
				return arm.FieldError(mf+".bmcConnectionString", "%v", err)
			}
		}
		for j, a := range d.StorageApplianceConfigurationData {
			af := fmt.Sprintf("%s.storageApplianceConfigurationData[%d]", field, j)
			switch {
			case a.StorageApplianceName != "" && !namePattern.MatchString(a.StorageApplianceName):
				return arm.FieldError(af+".storageApplianceName", "storageApplianceName '%s' is invalid. %s", a.StorageApplianceName, nameRule)
			case a.SerialNumber == "":
				return arm.FieldError(af+".serialNumber", "serialNumber is required.")
			case a.RackSlot < 1 || a.RackSlot > 256:
				return arm.FieldError(af+".rackSlot", "rackSlot must be from 1 to 256, not %d.", a.RackSlot)
			}
			if a.ManagementConnectionString != "" {
				if _, err := storage.ParseConnection(a.ManagementConnectionString); err != nil {
					return arm.FieldError(af+".managementConnectionString", "managementConnectionString %v", err)
				}
			}
		}
	}
	return nil
}

// topologyError is one error with a detail per broken rule.
func topologyError(vs []machine.Violation) error {
	msgs := make([]string, len(vs))
	e := arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "")
	for i, v := range vs {
		msgs[i] = v.Message
		d := arm.FieldError(v.Field, "%s", v.Message)
		d.Code = "InvalidClusterTopology"
		e.Details = append(e.Details, d)
	}
	e.Target = vs[0].Field
	e.Message = fmt.Sprintf("The cluster definition breaks %d topology rule(s): %s.", len(vs), strings.Join(msgs, "; "))
	return e
}

// takenIdentities are the serial numbers, MACs and BMC addresses of every
// machine outside cluster, for uniqueness across the boundary.
func (p *Provider) takenIdentities(ctx context.Context, cluster arm.ID) (machine.Identities, error) {
	taken := machine.Identities{Serials: map[string]string{}, MACs: map[string]string{}, BMCAddresses: map[string]string{}}
	subs, err := p.svc.Subscriptions(ctx)
	if err != nil {
		return taken, err
	}
	for _, s := range subs {
		ms, err := p.svc.Resources(ctx, arm.ID{Subscription: s.ID}, machineType)
		if err != nil {
			return taken, err
		}
		for _, m := range ms {
			if strings.EqualFold(str(m.Properties, "clusterId"), cluster.String()) {
				continue
			}
			taken.Serials[machine.NormalizeSerial(str(m.Properties, "serialNumber"))] = m.ID
			for _, f := range []string{"bmcMacAddress", "bootMacAddress"} {
				if mac, ok := machine.NormalizeMAC(str(m.Properties, f)); ok {
					taken.MACs[mac] = m.ID
				}
			}
			if h := bmcHost(str(m.Properties, "bmcConnectionString")); h != "" {
				taken.BMCAddresses[machine.NormalizeBMCAddress(h)] = m.ID
			}
		}
	}
	return taken, nil
}

// Names of the resources a cluster declares: rack i of the cluster (0 is
// the aggregator or single rack), its machines and its appliances.
func rackName(cluster arm.ID, i int) string { return fmt.Sprintf("%s-rack%d", cluster.Name(), i) }

func machineName(cluster arm.ID, rack int, m machineConfig) string {
	if m.MachineName != "" {
		return m.MachineName
	}
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, cluster.Name())
	return fmt.Sprintf("%sr%ds%d", base, rack, m.RackSlot)
}

func applianceName(cluster arm.ID, rack int, a applianceConfig) string {
	if a.StorageApplianceName != "" {
		return a.StorageApplianceName
	}
	return fmt.Sprintf("%s-rack%d-sa%d", cluster.Name(), rack, a.RackSlot)
}

// provisionCluster creates the cluster's custom location and the racks,
// machines and storage appliances its definitions declare, updates those
// whose definition changed, and removes those no longer declared.
func (p *Provider) provisionCluster(ctx context.Context, t *resource.Task) error {
	id, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return err
	}
	var c clusterProperties
	if err := decode(t.Resource.Properties, &c); err != nil {
		return err
	}
	el, err := extendedlocation.Ensure(ctx, p.svc, id)
	if err != nil {
		return err
	}
	elJSON, _ := json.Marshal(el)
	rg := id.ResourceGroupID()
	declared := map[string]bool{}
	capacity := map[string]int{}
	own := func(r *resource.Resource, created bool) error {
		if !created && !strings.EqualFold(str(r.Properties, "clusterId"), id.String()) {
			return controller.Terminal(arm.Errorf(http.StatusConflict, arm.CodeConflict,
				"'%s' already belongs to the cluster '%s'; give this cluster's resource another name.", r.ID, str(r.Properties, "clusterId")))
		}
		r.ExtendedLocation = elJSON
		r.Properties["clusterId"] = id.String()
		return nil
	}
	for i, d := range c.definitions() {
		sku, _ := p.cfg.Catalog.Rack(skuName(d.RackSKUID))
		rackID := rg.Child(rackType, rackName(id, i))
		declared[strings.ToLower(rackID.String())] = true
		zone := d.AvailabilityZone
		if zone == "" {
			zone = fmt.Sprint(i)
		}
		if _, err := p.upsertDeclared(ctx, rackID, func(r *resource.Resource, created bool) error {
			if err := own(r, created); err != nil {
				return err
			}
			set(r.Properties, map[string]any{
				"rackSkuId": d.RackSKUID, "rackSerialNumber": d.RackSerialNumber, "rackLocation": d.RackLocation,
				"availabilityZone": zone, "detailedStatus": "Available", "detailedStatusMessage": "The rack is available.",
			})
			return nil
		}); err != nil {
			return err
		}
		for _, m := range d.BareMetalMachineConfigurationData {
			mid := rg.Child(machineType, machineName(id, i, m))
			declared[strings.ToLower(mid.String())] = true
			skuID, _ := machine.SKUForSlot(p.cfg.Catalog, sku.ID, m.RackSlot)
			if ms, ok := p.cfg.Catalog.Machine(skuID); ok {
				capacity["cores"] += ms.CPUCores
				capacity["memory"] += ms.MemoryGiB
				for _, disk := range ms.Disks {
					capacity["disk"] += disk.CapacityGB
				}
			}
			if _, err := p.upsertDeclared(ctx, mid, func(r *resource.Resource, created bool) error {
				if err := own(r, created); err != nil {
					return err
				}
				if created {
					set(r.Properties, map[string]any{
						"detailedStatus": "Preparing", "detailedStatusMessage": "The machine waits for the cluster to be deployed.",
						"readyState": "False", "cordonStatus": "Uncordoned", "actionStates": []any{},
					})
				}
				// The hardware's identity follows the definition until the
				// machine is first provisioned; after that, new hardware in
				// its place comes through the replace action, which the
				// definition does not undo.
				if str(r.Properties, "machineClusterVersion") == "" {
					set(r.Properties, map[string]any{
						"bmcConnectionString": m.BMCConnectionString, "bmcCredentials": jsonValue(m.BMCCredentials),
						"bmcMacAddress": m.BMCMacAddress, "bootMacAddress": m.BootMacAddress, "serialNumber": m.SerialNumber,
						"bmcIpv4Address": bmcHost(m.BMCConnectionString),
					})
				}
				set(r.Properties, map[string]any{
					"machineDetails": m.MachineDetails, "machineName": mid.Name(), "rackId": rackID.String(), "rackSlot": m.RackSlot,
					"machineSkuId": skuID, "machineRoles": machine.Roles(p.cfg.Catalog, sku.ID, m.RackSlot),
					"kubernetesNodeName": strings.ToLower(mid.Name()),
				})
				return nil
			}); err != nil {
				return err
			}
		}
		for _, a := range d.StorageApplianceConfigurationData {
			aid := rg.Child(storageApplianceType, applianceName(id, i, a))
			declared[strings.ToLower(aid.String())] = true
			model, size := "", 0
			for _, slot := range sku.StorageAppliances {
				if slot.RackSlot == a.RackSlot {
					model, size = slot.Model, slot.CapacityGB
				}
			}
			capacity["appliance"] += size
			if _, err := p.upsertDeclared(ctx, aid, func(r *resource.Resource, created bool) error {
				if err := own(r, created); err != nil {
					return err
				}
				if created {
					// What the appliance reports replaces these once it answers.
					set(r.Properties, map[string]any{
						"model": model, "capacity": size, "capacityUsed": 0,
						"detailedStatus": "Provisioning", "detailedStatusMessage": "The storage appliance has not answered yet.",
						"remoteVendorManagementFeature": "Unsupported", "remoteVendorManagementStatus": "Unsupported",
					})
				}
				conn := a.ManagementConnectionString
				set(r.Properties, map[string]any{
					"administratorCredentials": jsonValue(a.AdminCredentials), "rackId": rackID.String(), "rackSlot": a.RackSlot,
					"serialNumber": a.SerialNumber, "storageApplianceSkuId": model,
					"managementConnectionString": conn, "managementIpv4Address": applianceHost(conn),
				})
				if conn == "" && created {
					set(r.Properties, map[string]any{"detailedStatus": "Available", "detailedStatusMessage": "The storage appliance is declared without a management API; Citadel does not manage its volumes."})
				}
				return nil
			}); err != nil {
				return err
			}
		}
	}
	if err := p.removeUndeclared(ctx, id, declared); err != nil {
		return err
	}
	set(t.Resource.Properties, map[string]any{
		"clusterExtendedLocation": el,
		"clusterCapacity": map[string]any{
			"totalCoreCount": capacity["cores"], "availableCoreCount": capacity["cores"],
			"totalMemoryGB": capacity["memory"], "availableMemoryGB": capacity["memory"],
			"totalHostStorageGB": capacity["disk"], "availableHostStorageGB": capacity["disk"],
			"totalApplianceStorageGB": capacity["appliance"], "availableApplianceStorageGB": capacity["appliance"],
		},
		"clusterConnectionStatus": "Connected", "clusterManagerConnectionStatus": "Connected",
	})
	return nil
}

// upsertDeclared is Upsert for what a cluster declares: a resource the
// definition leaves as it was is not written again, so that a change to
// one rack (an appliance added) touches nothing else.
func (p *Provider) upsertDeclared(ctx context.Context, id arm.ID, change func(r *resource.Resource, created bool) error) (*resource.Resource, error) {
	return p.svc.Upsert(ctx, id, func(r *resource.Resource, created bool) error {
		before, _ := json.Marshal(r)
		if err := change(r, created); err != nil {
			return err
		}
		if after, _ := json.Marshal(r); !created && string(after) == string(before) {
			return resource.ErrUnchanged
		}
		return nil
	})
}

// applianceHost is the host of a management connection string, "" when
// it has none.
func applianceHost(conn string) string {
	c, err := storage.ParseConnection(conn)
	if err != nil {
		return ""
	}
	host, _, err := net.SplitHostPort(c.Host)
	if err != nil {
		return c.Host
	}
	return host
}

// set copies values into props.
func set(props map[string]any, values map[string]any) {
	for k, v := range values {
		props[k] = v
	}
}

// removeUndeclared removes the cluster's racks, machines and appliances
// that its definitions no longer declare.
func (p *Provider) removeUndeclared(ctx context.Context, cluster arm.ID, declared map[string]bool) error {
	for _, typ := range []string{machineType, storageApplianceType, rackType} {
		rs, err := p.inCluster(ctx, cluster, typ)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if declared[strings.ToLower(r.ID)] {
				continue
			}
			id, err := arm.ParseID(r.ID)
			if err != nil {
				return err
			}
			if err := p.svc.Remove(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// deprovisionCluster removes everything the cluster declared and its
// custom location.
func (p *Provider) deprovisionCluster(ctx context.Context, t *resource.Task) error {
	id, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return err
	}
	if err := p.removeUndeclared(ctx, id, nil); err != nil {
		return err
	}
	return p.svc.Remove(ctx, extendedlocation.ID(id))
}
