package networkcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// machineReadOnly are the machine properties users cannot change: all
// but machineDetails. A replace changes the hardware identity; the agent
// reports agentInventory, agentVersion and the OAM addresses, and the
// liveness tracker livenessState (Citadel's, beside the spec's); a
// cluster update sets updateTarget and updateCordoned, and drift control
// configurationDrift.
var machineReadOnly = []string{"actionStates", "agentInventory", "agentVersion", "associatedResourceIds", "livenessMessage", "livenessState", "bmcConnectionString", "bmcCredentials",
	"bmcIpv4Address", "bmcIpv6Address", "bmcMacAddress", "bootMacAddress", "caCertificate", "clusterId",
	"cordonStatus", "detailedStatus", "detailedStatusMessage", "hardwareInventory", "hardwareValidationStatus",
	"hybridAksClustersAssociatedIds", "kubernetesNodeName", "kubernetesVersion", "machineClusterVersion",
	"machineName", "machineRoles", "machineSkuId", "monitoringConfigurationStatus", "oamIpv4Address",
	"oamIpv6Address", "osImage", "powerState", "rackId", "rackSlot", "readyState", "runtimeProtectionStatus",
	"secretRotationStatus", "serialNumber", "serviceTag", "virtualMachinesAssociatedIds", "hostNetworks", machineVMs,
	"updateTarget", "updateCordoned", "configurationDrift"}

// machineReported are the machine properties written while an action
// runs on it by others than the action: its agent's reports and
// liveness, drift control, an update. The action's save keeps theirs.
var machineReported = []string{"agentInventory", "agentVersion", "oamIpv4Address", "oamIpv6Address", "livenessState",
	"livenessMessage", "configurationDrift", "updateTarget", "updateCordoned", "hostNetworks", machineVMs}

// machineInput is the body of every machine action; each action reads the
// fields it has (BT BareMetalMachine*Parameters). safeguardMode is the
// spec's on reimage and replace, and Citadel's on every disruptive action.
type machineInput struct {
	SkipShutdown   string       `json:"skipShutdown"`
	Evacuate       string       `json:"evacuate"`
	SafeguardMode  string       `json:"safeguardMode"`
	StoragePolicy  string       `json:"storagePolicy"`
	BMCCredentials *credentials `json:"bmcCredentials"`
	BMCMacAddress  string       `json:"bmcMacAddress"`
	BootMacAddress string       `json:"bootMacAddress"`
	MachineName    string       `json:"machineName"`
	SerialNumber   string       `json:"serialNumber"`
	// BMCConnectionString is Citadel's: the new machine's BMC address
	// when it is not the old one's.
	BMCConnectionString string `json:"bmcConnectionString"`
}

// machineAction is one of the machine's POST actions.
type machineAction struct {
	fields     []string // the input fields it accepts
	disruptive func(in machineInput) bool
	run        func(p *Provider, ctx context.Context, t *resource.Task, in machineInput, tr *tracker) error
}

var (
	always = func(machineInput) bool { return true }
	never  = func(machineInput) bool { return false }
)

var machineActions = map[string]machineAction{
	"powerOff": {fields: []string{"skipShutdown", "safeguardMode"}, disruptive: always, run: (*Provider).powerOff},
	"start":    {disruptive: never, run: (*Provider).start},
	"restart":  {fields: []string{"safeguardMode"}, disruptive: always, run: (*Provider).restart},
	"reimage":  {fields: []string{"safeguardMode"}, disruptive: always, run: (*Provider).reimage},
	"replace":  {fields: []string{"bmcCredentials", "bmcMacAddress", "bootMacAddress", "machineName", "serialNumber", "safeguardMode", "storagePolicy", "bmcConnectionString"}, disruptive: always, run: (*Provider).replace},
	"cordon":   {fields: []string{"evacuate", "safeguardMode"}, disruptive: func(in machineInput) bool { return in.Evacuate == "True" }, run: (*Provider).cordon},
	"uncordon": {disruptive: never, run: (*Provider).uncordon},
}

func (p *Provider) machineActions() map[string]resource.Action {
	out := map[string]resource.Action{}
	for name, a := range machineActions {
		out[name] = resource.Action{
			Validate: func(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
				return p.validateMachineAction(ctx, r, name, a, input)
			},
			Serialize: func(r *resource.Resource, _ json.RawMessage) string {
				return "networkcloud-cluster:" + strings.ToLower(str(r.Properties, "clusterId"))
			},
			Run: func(ctx context.Context, t *resource.Task) (any, error) { return p.runMachineAction(ctx, t, name, a) },
		}
	}
	return out
}

// decodeMachineInput decodes an action's body, refusing the fields the
// action does not take and values outside the enums.
func decodeMachineInput(action string, a machineAction, input json.RawMessage) (machineInput, error) {
	var in machineInput
	var fields map[string]json.RawMessage
	if err := arm.DecodeStrict(input, &fields); err != nil {
		return in, err
	}
	for f := range fields {
		if !containsFold(a.fields, f) {
			return in, arm.FieldError(f, "The %s action takes no '%s'.", action, f)
		}
	}
	if err := arm.DecodeStrict(input, &in); err != nil {
		return in, err
	}
	for _, e := range []struct {
		field, value string
		allowed      []string
	}{
		{"skipShutdown", in.SkipShutdown, []string{"True", "False"}},
		{"evacuate", in.Evacuate, []string{"True", "False"}},
		{"safeguardMode", in.SafeguardMode, []string{"All", "None"}},
		{"storagePolicy", in.StoragePolicy, []string{"DiscardAll", "Preserve"}},
	} {
		if e.value != "" && !containsFold(e.allowed, e.value) {
			return in, arm.FieldError(e.field, "%s must be one of %s, not '%s'.", e.field, strings.Join(e.allowed, ", "), e.value)
		}
	}
	for _, m := range []struct{ field, value string }{{"bmcMacAddress", in.BMCMacAddress}, {"bootMacAddress", in.BootMacAddress}} {
		if m.value != "" && !macPattern.MatchString(m.value) {
			return in, arm.FieldError(m.field, "%s '%s' is not a MAC address.", m.field, m.value)
		}
	}
	if in.MachineName != "" && !machineNamePattern.MatchString(in.MachineName) {
		return in, arm.FieldError("machineName", "machineName '%s' is invalid. %s", in.MachineName, machineNameRule)
	}
	if in.BMCConnectionString != "" {
		if _, err := parseBMC(in.BMCConnectionString); err != nil {
			return in, arm.FieldError("bmcConnectionString", "%v", err)
		}
	}
	return in, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// validateMachineAction checks the body, that no deploy of the cluster is
// running, and, for a disruptive action, the disruption guard.
func (p *Provider) validateMachineAction(ctx context.Context, r *resource.Resource, name string, a machineAction, input json.RawMessage) error {
	in, err := decodeMachineInput(name, a, input)
	if err != nil {
		return err
	}
	clusterID, err := arm.ParseID(str(r.Properties, "clusterId"))
	if err != nil {
		return err
	}
	cluster, err := p.svc.Lookup(ctx, clusterID)
	if err != nil {
		return err
	}
	if cluster.Busy && str(cluster.Properties, "detailedStatus") == "Deploying" {
		return arm.Errorf(http.StatusConflict, arm.CodeAnotherOperationInProgress,
			"The cluster '%s' is being deployed; retry the %s action when the deploy completes.", clusterID.Name(), name)
	}
	if !a.disruptive(in) || in.SafeguardMode == "None" {
		return nil
	}
	return p.checkGuard(ctx, cluster, r, name)
}

// checkGuard refuses to take machine r down when that would leave its
// rack with more machines down than the update strategy allows, or the
// control plane without a quorum.
func (p *Provider) checkGuard(ctx context.Context, cluster, r *resource.Resource, action string) error {
	clusterID, _ := arm.ParseID(cluster.ID)
	machines, err := p.inCluster(ctx, clusterID, machineType)
	if err != nil {
		return err
	}
	members := make([]machine.Member, 0, len(machines))
	for _, m := range machines {
		var roles []string
		decode(m.Properties["machineRoles"], &roles)
		members = append(members, machine.Member{Name: m.Name, Rack: str(m.Properties, "rackId"), Roles: roles, Down: isDown(m)})
	}
	var c clusterProperties
	if err := decode(cluster.Properties, &c); err != nil {
		return err
	}
	policy := machine.GuardPolicy{}
	if c.UpdateStrategy != nil {
		policy.MaxUnavailablePerRack = c.UpdateStrategy.MaxUnavailable
	}
	if refusal := machine.CheckDisruption(members, r.Name, policy); refusal != nil {
		return arm.Errorf(http.StatusConflict, "DisruptionGuard",
			"The %s of '%s' is refused by the disruption guard (rule %s, machines %s): %s. Send safeguardMode None to override.",
			action, r.Name, refusal.Rule, strings.Join(refusal.Machines, ", "), refusal.Message)
	}
	return nil
}

// isDown says whether a machine is out of service: off, cordoned, not
// provisioned, or with an action in flight.
func isDown(m *resource.Resource) bool {
	return m.Busy || str(m.Properties, "powerState") == "Off" || str(m.Properties, "cordonStatus") == "Cordoned" ||
		str(m.Properties, "detailedStatus") != "Provisioned"
}

// runMachineAction runs one action with its actionStates entry.
func (p *Provider) runMachineAction(ctx context.Context, t *resource.Task, name string, a machineAction) (any, error) {
	in, err := decodeMachineInput(name, a, t.Op.Input)
	if err != nil {
		return nil, controller.Terminal(err)
	}
	if a.disruptive(in) && in.SafeguardMode == "None" {
		t.Note("safeguardMode", "None")
		t.Note("safeguardOverride", fmt.Sprintf("The disruption guard was bypassed for the %s of '%s'.", name, t.Resource.Name))
	}
	tr := startTracking(ctx, t.Resource, t.Save, machineType+"/"+name+"/action", t.CorrelationID())
	err = a.run(p, ctx, t, in, tr)
	if err != nil && ctx.Err() != nil {
		return nil, err // interrupted: the next leader runs it again
	}
	tr.end(err)
	setReadyState(t.Resource.Properties)
	if err != nil {
		var ae *arm.Error
		if !errors.As(err, &ae) {
			err = arm.Errorf(http.StatusInternalServerError, "MachineActionFailed", "The %s of '%s' failed: %v", name, t.Resource.Name, err)
		}
		return nil, controller.Terminal(err)
	}
	return nil, nil
}

// setReadyState derives readyState (machine.ReadyState).
func setReadyState(props map[string]any) {
	props["readyState"] = machine.ReadyState(str(props, "detailedStatus"), str(props, "powerState"), str(props, "cordonStatus"), str(props, "livenessState"))
}

func (p *Provider) powerOff(ctx context.Context, t *resource.Task, in machineInput, tr *tracker) error {
	if str(t.Resource.Properties, "powerState") == "Off" {
		tr.message = "The machine is already off."
		return nil
	}
	bmc, err := p.connect(ctx, tr)
	if err != nil {
		return err
	}
	defer bmc.close(ctx)
	force := in.SkipShutdown == "True"
	tr.step(ctx, map[bool]string{true: "Force off", false: "Shut down gracefully"}[force])
	if err := bmc.client.PowerOff(ctx, bmc.system, force, p.cfg.GracefulTimeout); err != nil {
		return err
	}
	t.Resource.Properties["powerState"] = "Off"
	return nil
}

func (p *Provider) start(ctx context.Context, t *resource.Task, _ machineInput, tr *tracker) error {
	if str(t.Resource.Properties, "powerState") == "On" {
		tr.message = "The machine is already on."
		return nil
	}
	bmc, err := p.connect(ctx, tr)
	if err != nil {
		return err
	}
	defer bmc.close(ctx)
	tr.step(ctx, "Power on")
	if err := bmc.client.PowerOn(ctx, bmc.system); err != nil {
		return err
	}
	t.Resource.Properties["powerState"] = "On"
	return nil
}

func (p *Provider) restart(ctx context.Context, t *resource.Task, _ machineInput, tr *tracker) error {
	bmc, err := p.connect(ctx, tr)
	if err != nil {
		return err
	}
	defer bmc.close(ctx)
	tr.step(ctx, "Restart")
	if err := bmc.client.Restart(ctx, bmc.system, p.cfg.GracefulTimeout); err != nil {
		return err
	}
	t.Resource.Properties["powerState"] = "On"
	return nil
}

// reimage installs the machine's cluster version afresh through virtual
// media: detailedStatus goes Provisioning, then Provisioned.
func (p *Provider) reimage(ctx context.Context, t *resource.Task, _ machineInput, tr *tracker) error {
	version, err := p.machineVersion(ctx, t.Resource)
	if err != nil {
		return err
	}
	bmc, err := p.connect(ctx, tr)
	if err != nil {
		return p.machineFailed(t.Resource, err)
	}
	defer bmc.close(ctx)
	return p.provisionOS(ctx, bmc, version, tr)
}

// machineVersion is the cluster version a machine runs: its own, or its
// cluster's.
func (p *Provider) machineVersion(ctx context.Context, r *resource.Resource) (string, error) {
	if v := str(r.Properties, "machineClusterVersion"); v != "" {
		return v, nil
	}
	cid, err := arm.ParseID(str(r.Properties, "clusterId"))
	if err != nil {
		return "", err
	}
	c, err := p.svc.Lookup(ctx, cid)
	if err != nil {
		return "", err
	}
	return str(c.Properties, "clusterVersion"), nil
}

// connect logs in to the BMC of the machine tr tracks, as a step.
func (p *Provider) connect(ctx context.Context, tr *tracker) (*bmcSession, error) {
	tr.step(ctx, "Connect to the BMC")
	return p.dialBMC(ctx, tr.r)
}

// provisionOS installs the OS image of version on the machine tr tracks,
// through its BMC; detailedStatus shows Provisioning meanwhile.
func (p *Provider) provisionOS(ctx context.Context, bmc *bmcSession, version string, tr *tracker) error {
	r := tr.r
	image, err := p.imageURL(version)
	if err != nil {
		return err
	}
	set(r.Properties, map[string]any{"detailedStatus": "Provisioning",
		"detailedStatusMessage": fmt.Sprintf("Installing the OS image of cluster version %s.", version)})
	if err := tr.persist(ctx); err != nil {
		return err
	}
	err = bmc.client.Reimage(ctx, bmc.system, image, func(step string) { tr.step(ctx, step) })
	if err != nil {
		return p.machineFailed(r, fmt.Errorf("installing %s: %w", image, err))
	}
	// The machine runs the installed OS now; the next boot is from disk.
	tr.step(ctx, "eject media")
	if err := bmc.client.EjectMedia(ctx, bmc.system); err != nil {
		return p.machineFailed(r, err)
	}
	set(r.Properties, map[string]any{"detailedStatus": "Provisioned", "detailedStatusMessage": "The machine is provisioned.",
		"osImage": image, "powerState": "On", "machineClusterVersion": version})
	return nil
}

// machineFailed records err as the machine's detailed status and returns it.
func (p *Provider) machineFailed(r *resource.Resource, err error) error {
	set(r.Properties, map[string]any{"detailedStatus": "Error", "detailedStatusMessage": err.Error()})
	return err
}

// replace takes new hardware into the machine's place: its identity
// changes, the new hardware is validated, and its OS installed (or kept,
// with storagePolicy Preserve).
func (p *Provider) replace(ctx context.Context, t *resource.Task, in machineInput, tr *tracker) error {
	props := t.Resource.Properties
	for field, v := range map[string]string{"serialNumber": in.SerialNumber, "bmcMacAddress": in.BMCMacAddress,
		"bootMacAddress": in.BootMacAddress, "bmcConnectionString": in.BMCConnectionString} {
		if v != "" {
			props[field] = v
		}
	}
	if in.BMCCredentials != nil {
		props["bmcCredentials"] = jsonValue(in.BMCCredentials)
	}
	if h := bmcHost(str(props, "bmcConnectionString")); h != "" {
		props["bmcIpv4Address"] = h
	}
	bmc, err := p.connect(ctx, tr)
	if err != nil {
		return p.machineFailed(t.Resource, err)
	}
	defer bmc.close(ctx)
	tr.step(ctx, "Validate the new hardware")
	ok, err := p.validateMachine(ctx, bmc, t.Resource)
	if err != nil || !ok {
		if err == nil {
			err = arm.Errorf(http.StatusBadRequest, "HardwareValidationFailed", "%s", str(props, "detailedStatusMessage"))
		}
		return err
	}
	if err := t.Save(ctx); err != nil {
		return err
	}
	if in.StoragePolicy == "Preserve" {
		tr.step(ctx, "Power on")
		if err := bmc.client.PowerOn(ctx, bmc.system); err != nil {
			return err
		}
		set(props, map[string]any{"detailedStatus": "Provisioned", "powerState": "On", "detailedStatusMessage": "The machine is provisioned."})
		return nil
	}
	version, err := p.machineVersion(ctx, t.Resource)
	if err != nil {
		return err
	}
	return p.provisionOS(ctx, bmc, version, tr)
}

// validateMachine reads machine r's inventory from its BMC and validates
// it against the machine SKU, recording hardwareInventory,
// hardwareValidationStatus and, on failure, detailedStatus Error with the
// parts that failed. It reports whether the hardware passed.
func (p *Provider) validateMachine(ctx context.Context, bmc *bmcSession, r *resource.Resource) (bool, error) {
	inv, err := bmc.client.Inventory(ctx, bmc.system)
	if err != nil {
		return false, p.machineFailed(r, fmt.Errorf("reading the inventory: %w", err))
	}
	set(r.Properties, map[string]any{"hardwareInventory": hardwareInventory(inv), "serviceTag": inv.SerialNumber,
		"powerState": powerState(inv.PowerState)})
	sku, ok := p.cfg.Catalog.Machine(str(r.Properties, "machineSkuId"))
	if !ok {
		return false, p.machineFailed(r, fmt.Errorf("the machine SKU '%s' is not in the catalog", str(r.Properties, "machineSkuId")))
	}
	findings := machine.ValidateHardware(sku, machine.Expected{Serial: str(r.Properties, "serialNumber"),
		BootMAC: str(r.Properties, "bootMacAddress")}, inv.Hardware())
	result := map[string]any{"lastValidationTime": now(), "result": "Pass"}
	r.Properties["hardwareValidationStatus"] = result
	if len(findings) == 0 {
		return true, nil
	}
	result["result"] = "Fail"
	msgs := make([]string, len(findings))
	for i, f := range findings {
		msgs[i] = f.Part + ": " + f.Message
	}
	set(r.Properties, map[string]any{"detailedStatus": "Error",
		"detailedStatusMessage": "Hardware validation failed: " + strings.Join(msgs, "; ")})
	return false, nil
}

// powerState maps Redfish power states on the spec's On and Off.
func powerState(s string) string {
	if s == "On" || s == "PoweringOff" {
		return "On"
	}
	return "Off"
}

func (p *Provider) cordon(ctx context.Context, t *resource.Task, in machineInput, tr *tracker) error {
	t.Resource.Properties["cordonStatus"] = "Cordoned"
	if in.Evacuate == "True" {
		tr.step(ctx, "Evacuate workloads")
		return p.evacuateMachine(ctx, t, tr)
	}
	return nil
}

func (p *Provider) uncordon(_ context.Context, t *resource.Task, _ machineInput, _ *tracker) error {
	t.Resource.Properties["cordonStatus"] = "Uncordoned"
	return nil
}

// tracker keeps a resource's actionStates entry for the action in flight:
// InProgress with its steps as they happen, then Completed or Failed.
type tracker struct {
	r       *resource.Resource
	persist func(context.Context) error // writes r
	state   actionState
	message string // the final message on success, if any
}

type actionState struct {
	ActionType    string      `json:"actionType"`
	CorrelationID string      `json:"correlationId,omitempty"`
	Status        string      `json:"status"`
	StartTime     string      `json:"startTime"`
	EndTime       string      `json:"endTime,omitempty"`
	Message       string      `json:"message,omitempty"`
	StepStates    []stepState `json:"stepStates"`
}

type stepState struct {
	StepName  string `json:"stepName"`
	Status    string `json:"status"`
	StartTime string `json:"startTime"`
	EndTime   string `json:"endTime,omitempty"`
	Message   string `json:"message,omitempty"`
}

// startTracking starts the entry of actionType on r, which persist writes.
func startTracking(ctx context.Context, r *resource.Resource, persist func(context.Context) error, actionType, correlationID string) *tracker {
	tr := &tracker{r: r, persist: persist, state: actionState{ActionType: actionType, CorrelationID: correlationID,
		Status: "InProgress", StartTime: now(), StepStates: []stepState{}}}
	tr.write()
	tr.save(ctx)
	return tr
}

// step ends the step in progress and starts the next one.
func (tr *tracker) step(ctx context.Context, name string) {
	tr.closeStep("Completed", "")
	tr.state.StepStates = append(tr.state.StepStates, stepState{StepName: name, Status: "InProgress", StartTime: now()})
	tr.write()
	tr.save(ctx)
}

func (tr *tracker) closeStep(status, message string) {
	if n := len(tr.state.StepStates); n > 0 && tr.state.StepStates[n-1].Status == "InProgress" {
		s := &tr.state.StepStates[n-1]
		s.Status, s.EndTime, s.Message = status, now(), message
	}
}

// end records the outcome; the operation's end saves it.
func (tr *tracker) end(err error) {
	tr.state.EndTime = now()
	if err != nil {
		tr.closeStep("Failed", err.Error())
		tr.state.Status, tr.state.Message = "Failed", err.Error()
	} else {
		tr.closeStep("Completed", "")
		tr.state.Status, tr.state.Message = "Completed", tr.message
	}
	tr.write()
}

// write puts the entry into the resource's actionStates, in place of the
// previous one of the same action type.
func (tr *tracker) write() {
	var states []actionState
	decode(tr.r.Properties["actionStates"], &states)
	out := []actionState{tr.state}
	for _, s := range states {
		if s.ActionType != tr.state.ActionType {
			out = append(out, s)
		}
	}
	tr.r.Properties["actionStates"] = jsonValue(out)
}

// save shows progress. It is best effort: the operation's end writes the
// state again, so a failure to show it does not fail the work.
func (tr *tracker) save(ctx context.Context) { _ = tr.persist(ctx) }
