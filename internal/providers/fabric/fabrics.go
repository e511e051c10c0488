package fabric

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// skus is the fabric SKU catalog: multi-rack fabrics of an aggregator
// rack (two CEs) and up to four or eight compute racks (two ToRs each),
// 16 servers a rack.
var skus = []struct {
	Name     string
	MaxRacks int
}{
	{"M4-A400-A100-C16-aa", 4},
	{"M8-A400-A100-C16-aa", 8},
}

func skuBody(name string, maxRacks int) map[string]any {
	return map[string]any{"type": "MultiRack", "maxComputeRacks": maxRacks, "maximumServerCount": maxRacks * 16,
		"supportedVersions": []string{"1.0.0"}, "details": "Citadel fabric: 2 CE, 2 ToR per compute rack, a management switch per rack",
		"provisioningState": resource.StateSucceeded}
}

func fabricSKU(_ context.Context, id arm.ID) (*resource.Resource, bool) {
	for _, s := range skus {
		if strings.EqualFold(s.Name, id.Name()) {
			return skuResource(id.Subscription, s.Name, s.MaxRacks), true
		}
	}
	return nil, false
}

func skuResource(subscription, name string, maxRacks int) *resource.Resource {
	id := arm.ID{Subscription: subscription, Namespace: Namespace, Types: []string{"networkFabricSkus"}, Names: []string{name}}
	return &resource.Resource{ID: id.String(), Name: name, Type: Namespace + "/networkFabricSkus", Properties: skuBody(name, maxRacks)}
}

func listFabricSKUs(_ context.Context, _ *resource.Request, scope arm.ID) (*resource.Response, error) {
	if scope.Subscription == "" || scope.ResourceGroup != "" {
		return nil, arm.Errorf(http.StatusBadRequest, "InvalidScope", "Network fabric SKUs are listed at subscription scope.")
	}
	page := resource.Page[*resource.Resource]{Value: []*resource.Resource{}}
	for _, s := range skus {
		page.Value = append(page.Value, skuResource(scope.Subscription, s.Name, s.MaxRacks))
	}
	return &resource.Response{Status: http.StatusOK, Body: page}, nil
}

func skuRacks(name string) (int, bool) {
	for _, s := range skus {
		if strings.EqualFold(s.Name, name) {
			return s.MaxRacks, true
		}
	}
	return 0, false
}

// validateController checks a networkFabricController: its address
// spaces are CIDR prefixes.
func validateController(_ context.Context, w *resource.Write) error {
	for _, f := range []string{"ipv4AddressSpace", "ipv6AddressSpace"} {
		if v := str(w.New.Properties, f); v != "" {
			if _, err := netip.ParsePrefix(v); err != nil {
				return arm.FieldError("properties."+f, "%s '%s' is not a CIDR prefix.", f, v)
			}
		}
	}
	if s := str(w.New.Properties, "nfcSku"); s != "" && !slices.Contains([]string{"Basic", "Standard", "HighPerformance"}, s) {
		return arm.FieldError("properties.nfcSku", "nfcSku must be Basic, Standard or HighPerformance, not '%s'.", s)
	}
	space := cmp.Or(str(w.New.Properties, "ipv4AddressSpace"), "10.0.0.0/19")
	w.New.Properties["infrastructureServices"] = map[string]any{"ipv4AddressSpaces": []string{space}}
	w.New.Properties["workloadServices"] = map[string]any{"ipv4AddressSpaces": []string{space}}
	return nil
}

// controllerFabrics fills in the fabrics that name the controller.
func (p *Provider) controllerFabrics(ctx context.Context, r *resource.Resource) error {
	all, err := p.svc.ResourcesOfType(ctx, fabricType)
	if err != nil {
		return err
	}
	ids := []string{}
	for _, f := range all {
		if strings.EqualFold(str(f.Properties, "networkFabricControllerId"), r.ID) {
			ids = append(ids, f.ID)
		}
	}
	r.Properties["networkFabricIds"] = ids
	return nil
}

// fabricProps are the properties of a networkFabric the control plane
// acts on.
type fabricProps struct {
	NetworkFabricSku          string `json:"networkFabricSku"`
	NetworkFabricControllerID string `json:"networkFabricControllerId"`
	FabricASN                 int64  `json:"fabricASN"`
	IPv4Prefix                string `json:"ipv4Prefix"`
	RackCount                 int    `json:"rackCount"`
	ServerCountPerRack        int    `json:"serverCountPerRack"`
	ConfigurationState        string `json:"configurationState"`
	FabricLocks               []lock `json:"fabricLocks"`
}

type lock struct {
	LockType  string `json:"lockType"`
	LockState string `json:"lockState"`
}

func fabricOf(r *resource.Resource) (fabricProps, error) {
	var f fabricProps
	err := decode(r.Properties, &f)
	return f, err
}

// spec is the shape the fabric's properties decide.
func (f fabricProps) spec(name string) (network.FabricSpec, error) {
	prefix, err := netip.ParsePrefix(f.IPv4Prefix)
	if err != nil {
		return network.FabricSpec{}, &network.RuleError{Field: "ipv4Prefix", Reason: fmt.Sprintf("'%s' is not a CIDR prefix such as 10.1.0.0/19", f.IPv4Prefix)}
	}
	if f.FabricASN < 1 || f.FabricASN > 4294967295 {
		return network.FabricSpec{}, &network.RuleError{Field: "fabricASN", Reason: fmt.Sprintf("must be from 1 to 4294967295, not %d", f.FabricASN)}
	}
	return network.FabricSpec{Name: name, ASN: uint32(f.FabricASN), ManagementPrefix: prefix,
		ComputeRacks: f.RackCount, ServersPerRack: f.ServerCountPerRack}, nil
}

func (f fabricProps) locked(kind string) bool {
	return slices.ContainsFunc(f.FabricLocks, func(l lock) bool { return l.LockType == kind && l.LockState == adminEnabled })
}

func (p *Provider) validateFabric(ctx context.Context, w *resource.Write) error {
	f, err := fabricOf(w.New)
	if err != nil {
		return arm.FieldError("properties", "The fabric's properties are invalid: %v.", err)
	}
	if f.RackCount == 0 {
		f.RackCount = 1
		w.New.Properties["rackCount"] = 1
	}
	maxRacks, ok := skuRacks(f.NetworkFabricSku)
	if !ok {
		return arm.FieldError("properties.networkFabricSku", "networkFabricSku '%s' is not in the catalog (%s).", f.NetworkFabricSku, skuNames())
	}
	if f.RackCount > maxRacks {
		return arm.FieldError("properties.rackCount", "rackCount %d is more than SKU %s allows (%d).", f.RackCount, f.NetworkFabricSku, maxRacks)
	}
	if _, err := p.reference(ctx, "properties.networkFabricControllerId", f.NetworkFabricControllerID, controllerType); err != nil {
		return err
	}
	for _, required := range []string{"managementNetworkConfiguration", "terminalServerConfiguration"} {
		if _, ok := w.New.Properties[required]; !ok {
			return arm.FieldError("properties."+required, "%s is required.", required)
		}
	}
	spec, err := f.spec(w.ID.Name())
	if err == nil {
		_, err = network.PlanFabric(spec)
	}
	if re, ok := errors.AsType[*network.RuleError](err); ok {
		return arm.FieldError("properties."+re.Field, "The value of %s is invalid: %s.", re.Field, re.Reason)
	} else if err != nil {
		return err
	}
	if w.Old != nil {
		old, _ := fabricOf(w.Old)
		if old.ConfigurationState == stateProvisioned && (old.RackCount != f.RackCount || old.ServerCountPerRack != f.ServerCountPerRack ||
			old.IPv4Prefix != f.IPv4Prefix || old.FabricASN != f.FabricASN || old.NetworkFabricSku != f.NetworkFabricSku) {
			return arm.Errorf(http.StatusConflict, "FabricProvisioned",
				"The shape of fabric '%s' (SKU, racks, servers, ASN, prefix) cannot change while it is provisioned; deprovision it first.", w.ID.Name())
		}
	}
	return nil
}

func skuNames() string {
	names := make([]string, len(skus))
	for i, s := range skus {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

func (p *Provider) validateFabricDelete(_ context.Context, r *resource.Resource) error {
	if f, _ := fabricOf(r); f.ConfigurationState == stateProvisioned {
		return arm.Errorf(http.StatusConflict, "FabricProvisioned", "Fabric '%s' is provisioned; deprovision it before deleting it.", r.Name)
	}
	return nil
}

// planFabric lays out the fabric's racks, devices and their interfaces
// from its SKU (the PUT's provisioning). Devices keep what they had
// (serial numbers, configuration) when the fabric is written again.
func (p *Provider) planFabric(ctx context.Context, t *resource.Task) error {
	fabricID, _ := arm.ParseID(t.Resource.ID)
	f, err := fabricOf(t.Resource)
	if err != nil {
		return err
	}
	spec, err := f.spec(fabricID.Name())
	if err != nil {
		return err
	}
	topo, err := network.PlanFabric(spec)
	if err != nil {
		return err
	}
	group := fabricID.ResourceGroupID().String()
	rackIDs := []string{}
	for _, rack := range topo.Racks {
		rackID := group + "/providers/" + rackType + "/" + spec.Name + "-" + rack.Name
		var deviceIDs []string
		for _, d := range topo.Devices {
			if d.Rack != rack.Name {
				continue
			}
			deviceID := group + "/providers/" + deviceType + "/" + d.Name
			deviceIDs = append(deviceIDs, deviceID)
			if err := p.createDevice(ctx, deviceID, rackID, t.Resource.ID, d, topo); err != nil {
				return err
			}
		}
		if err := p.upsert(ctx, rackID, func(props map[string]any) {
			props["networkFabricId"] = t.Resource.ID
			props["networkRackType"] = rack.Type
			props["networkDevices"] = deviceIDs
			if props["configurationState"] == nil {
				props["configurationState"] = stateSucceeded
			}
		}); err != nil {
			return err
		}
		rackIDs = append(rackIDs, rackID)
		t.Progress(ctx, float64(len(rackIDs))*100/float64(len(topo.Racks)))
	}
	if err := p.removeStale(ctx, t.Resource.ID, rackType, rackIDs); err != nil {
		return err
	}
	var routerIDs []string
	for _, d := range topo.Devices {
		if d.Loopback.IsValid() {
			routerIDs = append(routerIDs, d.Loopback.String())
		}
	}
	t.Resource.Properties["racks"] = rackIDs
	t.Resource.Properties["routerIds"] = routerIDs
	if t.Resource.Properties["configurationState"] == nil {
		t.Resource.Properties["configurationState"] = stateSucceeded
		t.Resource.Properties["administrativeState"] = adminDisabled
	}
	return nil
}

// createDevice creates or refreshes one device of the plan and its
// cabled interfaces.
func (p *Provider) createDevice(ctx context.Context, deviceID, rackID, fabricID string, d network.Device, topo network.Topology) error {
	if err := p.upsert(ctx, deviceID, func(props map[string]any) {
		props["networkFabricId"] = fabricID
		props["networkRackId"] = rackID
		props["networkDeviceRole"] = d.Role
		props["hostName"] = d.Hostname
		props["networkDeviceSku"] = "Citadel-SONiC-" + d.Role
		props["managementIpv4Address"] = d.ManagementIP.String()
		if props["serialNumber"] == nil {
			props["serialNumber"] = ""
			props["configurationState"] = stateSucceeded
			props["administrativeState"] = adminDisabled
		}
	}); err != nil {
		return err
	}
	for _, port := range d.Ports {
		if port.Kind == "unused" { // no cable, no interface (a smaller fabric's leftover goes)
			if err := p.removeByID(ctx, deviceID+"/networkInterfaces/"+port.Name); err != nil {
				return err
			}
			continue
		}
		kind := "Data"
		if port.Kind == "management" {
			kind = "Management"
		}
		far := farEnd(topo, network.Endpoint{Device: d.Name, Port: port.Name})
		if err := p.upsert(ctx, deviceID+"/networkInterfaces/"+port.Name, func(props map[string]any) {
			props["networkFabricId"] = fabricID
			props["physicalIdentifier"] = port.Name
			props["interfaceType"] = kind
			props["description"] = port.Kind
			props["connectedTo"] = far
			props["administrativeState"] = adminEnabled
			props["configurationState"] = stateSucceeded
		}); err != nil {
			return err
		}
	}
	return nil
}

// farEnd names what an endpoint is cabled to.
func farEnd(topo network.Topology, e network.Endpoint) string {
	for _, l := range topo.Links {
		switch {
		case l.A == e:
			return l.B.String()
		case l.B == e:
			return l.A.String()
		}
	}
	return ""
}

// upsert creates or changes a resource the fabric declares.
func (p *Provider) upsert(ctx context.Context, id string, change func(props map[string]any)) error {
	parsed, err := arm.ParseID(id)
	if err != nil {
		return err
	}
	_, err = p.svc.Upsert(ctx, parsed, func(r *resource.Resource, _ bool) error {
		change(r.Properties)
		return nil
	})
	return err
}

// removeStale removes the resources of type fullName of the fabric that
// are not in keep (racks a smaller fabric no longer has, with their
// devices).
func (p *Provider) removeStale(ctx context.Context, fabricID, fullName string, keep []string) error {
	all, err := p.svc.ResourcesOfType(ctx, fullName)
	if err != nil {
		return err
	}
	for _, r := range all {
		if !strings.EqualFold(str(r.Properties, "networkFabricId"), fabricID) ||
			slices.ContainsFunc(keep, func(k string) bool { return strings.EqualFold(k, r.ID) }) {
			continue
		}
		if fullName == rackType {
			var devices []string
			decode(r.Properties["networkDevices"], &devices)
			for _, d := range devices {
				if err := p.removeByID(ctx, d); err != nil {
					return err
				}
			}
		}
		if err := p.removeByID(ctx, r.ID); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provider) removeByID(ctx context.Context, id string) error {
	parsed, err := arm.ParseID(id)
	if err != nil {
		return err
	}
	return p.svc.Remove(ctx, parsed)
}

// removeFabricParts removes the racks and devices of a fabric being
// deleted.
func (p *Provider) removeFabricParts(ctx context.Context, t *resource.Task) error {
	return p.removeStale(ctx, t.Resource.ID, rackType, nil)
}

// lockFabric: {lockType, action}. A Configuration lock refuses commits
// and changes to the fabric's isolation domains, networks and policies;
// an Administrative lock refuses changes of administrative state.
type lockRequest struct {
	LockType string `json:"lockType"`
	Action   string `json:"action"`
}

func validateLock(_ context.Context, _ *resource.Resource, input json.RawMessage) error {
	var in lockRequest
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if in.LockType != lockConfiguration && in.LockType != lockAdministrative {
		return arm.FieldError("lockType", "lockType must be Administrative or Configuration, not '%s'.", in.LockType)
	}
	if in.Action != "Lock" && in.Action != "Unlock" {
		return arm.FieldError("action", "action must be Lock or Unlock, not '%s'.", in.Action)
	}
	return nil
}

func (p *Provider) lockFabric(_ context.Context, t *resource.Task) (any, error) {
	var in lockRequest
	if err := t.Input(&in); err != nil {
		return nil, err
	}
	f, err := fabricOf(t.Resource)
	if err != nil {
		return nil, err
	}
	locks := slices.DeleteFunc(f.FabricLocks, func(l lock) bool { return l.LockType == in.LockType })
	if in.Action == "Lock" {
		locks = append(locks, lock{LockType: in.LockType, LockState: adminEnabled})
	}
	t.Resource.Properties["fabricLocks"] = jsonValue(locks)
	t.Resource.Properties["lastOperation"] = map[string]any{"details": fmt.Sprintf("%s lock %sed at %s", in.LockType, strings.ToLower(in.Action), now())}
	return map[string]any{"status": "Succeeded"}, nil
}

// validateUnlocked refuses an action while the fabric holds a lock of
// kind.
func (p *Provider) validateUnlocked(kind string) func(context.Context, *resource.Resource, json.RawMessage) error {
	return func(_ context.Context, r *resource.Resource, _ json.RawMessage) error {
		f, err := fabricOf(r)
		if err != nil {
			return err
		}
		if f.locked(kind) {
			return fabricLocked(r.Name, kind)
		}
		return nil
	}
}

func fabricLocked(fabric, kind string) error {
	return arm.Errorf(http.StatusConflict, "FabricLocked",
		"Fabric '%s' holds a %s lock; unlock it with lockFabric before changing it.", fabric, kind)
}
