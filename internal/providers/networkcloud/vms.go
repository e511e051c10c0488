package networkcloud

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/images"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/providers/extendedlocation"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/scheduler"
)

// Virtual machines: a PUT validates the VM against its cluster (image,
// networks, addresses claimed in the same transaction), then its
// provisioning places it with package scheduler and reserves the
// machine's capacity with a compare-and-swap of the machine: the
// machine's hidden virtualMachines list is what its agent runs and what
// the capacity counts, so two VMs can never be booked onto the room of
// one. The agent reports each VM's power, which the fleet writes to the
// VM (powerState, detailedStatus); provisioning and actions wait for it.

const vmType = Namespace + "/virtualMachines"

// machineVMs is the machine property that lists the VMs it runs
// ([]agentapi.VM): hidden, as it carries their user data.
const machineVMs = "virtualMachines"

// Host reserve: what a machine keeps for itself and its agent.
const (
	reservedCores     = 2
	reservedMemoryMiB = 8 << 10
)

var vmReadOnly = []string{"availabilityZone", "bareMetalMachineId", "clusterId", "detailedStatus", "detailedStatusMessage",
	"powerState", "volumes", "reportedRestarts", "reportedReimages", vmEvicted}

// vmReported are what the VM's host reports (through the fleet) and
// where it runs (set when it is placed or moved), which may change while
// an operation on it runs.
var vmReported = []string{"powerState", "detailedStatus", "detailedStatusMessage", "reportedRestarts", "reportedReimages", vmEvicted,
	"bareMetalMachineId", "availabilityZone"}

// vmEvicted is the VM's hidden property that says its host stopped it
// for its move to another machine (agentapi.VMStatus.Evicted).
const vmEvicted = "evicted"

var adminUsernamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,31}$`)

// vmProperties are the VM properties Citadel acts on.
type vmProperties struct {
	AdminUsername                  string              `json:"adminUsername"`
	BootMethod                     string              `json:"bootMethod"`
	CPUCores                       int                 `json:"cpuCores"`
	MemorySizeGB                   int                 `json:"memorySizeGB"`
	VMImage                        string              `json:"vmImage"`
	CloudServicesNetworkAttachment *networkAttachment  `json:"cloudServicesNetworkAttachment"`
	NetworkAttachments             []networkAttachment `json:"networkAttachments"`
	UserData                       string              `json:"userData"`
	UserDataContent                string              `json:"userDataContent"`
	NetworkData                    string              `json:"networkData"`
	NetworkDataContent             string              `json:"networkDataContent"`
	SSHPublicKeys                  []struct {
		KeyData string `json:"keyData"`
	} `json:"sshPublicKeys"`
	PlacementHints []struct {
		HintType            string `json:"hintType"`
		ResourceID          string `json:"resourceId"`
		SchedulingExecution string `json:"schedulingExecution"`
		Scope               string `json:"scope"`
	} `json:"placementHints"`
	StorageProfile struct {
		OsDisk struct {
			CreateOption string `json:"createOption"`
			DeleteOption string `json:"deleteOption"`
			DiskSizeGB   int    `json:"diskSizeGB"`
		} `json:"osDisk"`
		VolumeAttachments []string `json:"volumeAttachments"`
	} `json:"storageProfile"`
	BareMetalMachineID string `json:"bareMetalMachineId"`
	ClusterID          string `json:"clusterId"`
	vmReport
}

// networkAttachment is one of a VM's networks (NetworkAttachment).
type networkAttachment struct {
	AttachedNetworkID     string `json:"attachedNetworkId"`
	DefaultGateway        string `json:"defaultGateway,omitempty"`
	IPAllocationMethod    string `json:"ipAllocationMethod"`
	IPv4Address           string `json:"ipv4Address,omitempty"`
	IPv6Address           string `json:"ipv6Address,omitempty"`
	MACAddress            string `json:"macAddress,omitempty"`
	NetworkAttachmentName string `json:"networkAttachmentName,omitempty"`
}

func (p *Provider) vmType() *resource.Type {
	return &resource.Type{
		Namespace: Namespace, Name: "virtualMachines", APIVersions: APIVersions, Tracked: true,
		NamePattern: volumeNamePattern, NameRule: volumeNameRule,
		ReadOnly: vmReadOnly, Reported: vmReported,
		Sensitive:   []string{"userDataContent", "networkDataContent", "vmImageRepositoryCredentials.password", vmEvicted},
		Validate:    p.validateVM,
		Provision:   p.provisionVM,
		Deprovision: p.deprovisionVM,
		Actions: map[string]resource.Action{
			"powerOff": {Validate: p.validateVMAction, Run: p.vmAction("powerOff")},
			"start":    {Validate: p.validateVMAction, Run: p.vmAction("start")},
			"restart":  {Validate: p.validateVMAction, Run: p.vmAction("restart")},
			"reimage":  {Validate: p.validateVMAction, Run: p.vmAction("reimage")},
		},
	}
}

func vmOf(r *resource.Resource) vmProperties {
	var v vmProperties
	decode(r.Properties, &v)
	return v
}

func (p *Provider) validateVM(ctx context.Context, w *resource.Write) error {
	var v vmProperties
	if err := decode(w.New.Properties, &v); err != nil {
		return arm.FieldError("properties", "The virtual machine's properties are invalid: %v.", err)
	}
	features, gpus, err := hardwareNeeds(w.New.Tags)
	if err != nil {
		return err
	}
	if w.Old != nil {
		if err := unchangedVM(vmOf(w.Old), v); err != nil {
			return err
		}
		if oldFeatures, oldGPUs, _ := hardwareNeeds(w.Old.Tags); !slices.Equal(oldFeatures, features) || oldGPUs != gpus {
			return arm.Errorf(http.StatusConflict, "PropertyChangeNotAllowed",
				"A virtual machine's %s and %s tags cannot change; create another virtual machine instead.", tagCPUFeatures, tagGPUs)
		}
	}
	cluster, err := extendedlocation.Resolve(ctx, p.svc, "extendedLocation", w.New.ExtendedLocation, clusterType)
	if err != nil {
		return err
	}
	w.New.Properties["clusterId"] = cluster.String()
	switch {
	case !adminUsernamePattern.MatchString(v.AdminUsername):
		return arm.FieldError("properties.adminUsername", "adminUsername must be 1 to 32 lower-case letters, digits or '_', starting with a letter or '_', not '%s'.", v.AdminUsername)
	case v.CPUCores < 2:
		return arm.FieldError("properties.cpuCores", "cpuCores must be at least 2, not %d.", v.CPUCores)
	case v.MemorySizeGB < 1:
		return arm.FieldError("properties.memorySizeGB", "memorySizeGB must be at least 1, not %d.", v.MemorySizeGB)
	case v.StorageProfile.OsDisk.DiskSizeGB < 1:
		return arm.FieldError("properties.storageProfile.osDisk.diskSizeGB", "diskSizeGB must be at least 1, not %d.", v.StorageProfile.OsDisk.DiskSizeGB)
	}
	switch v.BootMethod {
	case "":
		w.New.Properties["bootMethod"] = "UEFI"
	case "UEFI", "BIOS":
	default:
		return arm.FieldError("properties.bootMethod", "bootMethod must be UEFI or BIOS, not '%s'.", v.BootMethod)
	}
	if err := p.checkImage(ctx, v.VMImage); err != nil {
		return err
	}
	if err := p.validateDisks(ctx, w, cluster, v); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{{"userDataContent", v.UserDataContent}, {"userData", v.UserData},
		{"networkDataContent", v.NetworkDataContent}, {"networkData", v.NetworkData}} {
		if _, err := base64.StdEncoding.DecodeString(f.value); err != nil {
			return arm.FieldError("properties."+f.name, "%s must be Base64, as cloud-init's documents are sent.", f.name)
		}
	}
	for i, h := range v.PlacementHints {
		field := fmt.Sprintf("properties.placementHints[%d]", i)
		switch {
		case h.HintType != "Affinity" && h.HintType != "AntiAffinity":
			return arm.FieldError(field+".hintType", "hintType must be Affinity or AntiAffinity, not '%s'.", h.HintType)
		case h.SchedulingExecution != "Hard" && h.SchedulingExecution != "Soft":
			return arm.FieldError(field+".schedulingExecution", "schedulingExecution must be Hard or Soft, not '%s'.", h.SchedulingExecution)
		case h.Scope != "Machine" && h.Scope != "Rack":
			return arm.FieldError(field+".scope", "scope must be Machine or Rack, not '%s'.", h.Scope)
		}
		if _, err := arm.ParseID(h.ResourceID); err != nil {
			return arm.FieldError(field+".resourceId", "resourceId must be the ID of a machine, a rack or a virtual machine, not '%s'.", h.ResourceID)
		}
	}
	return p.attachNetworks(ctx, w, cluster, v)
}

// unchangedVM refuses a change of what a placed VM was built from: its
// size, image, disks, networks and placement take a new VM.
func unchangedVM(old, v vmProperties) error {
	same := func(a, b any) bool { x, _ := json.Marshal(a); y, _ := json.Marshal(b); return string(x) == string(y) }
	for _, x := range []*vmProperties{&old, &v} { // the defaults, as validateDisks sets them
		x.StorageProfile.OsDisk.CreateOption = cmp.Or(x.StorageProfile.OsDisk.CreateOption, "Ephemeral")
		x.StorageProfile.OsDisk.DeleteOption = cmp.Or(x.StorageProfile.OsDisk.DeleteOption, "Delete")
	}
	for _, f := range []struct {
		name string
		a, b any
	}{{"cpuCores", old.CPUCores, v.CPUCores}, {"memorySizeGB", old.MemorySizeGB, v.MemorySizeGB}, {"vmImage", old.VMImage, v.VMImage},
		{"storageProfile", old.StorageProfile, v.StorageProfile}, {"placementHints", old.PlacementHints, v.PlacementHints},
		{"networkAttachments", attachedIDs(old.NetworkAttachments), attachedIDs(v.NetworkAttachments)}} {
		if !same(f.a, f.b) {
			return arm.Errorf(http.StatusConflict, "PropertyChangeNotAllowed",
				"A virtual machine's %s cannot change; create another virtual machine instead.", f.name)
		}
	}
	return nil
}

func attachedIDs(as []networkAttachment) []string {
	var out []string
	for _, a := range as {
		out = append(out, strings.ToLower(a.AttachedNetworkID), a.IPAllocationMethod)
	}
	return out
}

// checkImage finds vmImage in the image catalog.
func (p *Provider) checkImage(ctx context.Context, name string) error {
	if p.cfg.Images == nil {
		return arm.FieldError("properties.vmImage", "This control plane has no image catalog.")
	}
	if _, err := p.cfg.Images.Lookup(ctx, name); errors.Is(err, images.ErrNotFound) {
		return arm.FieldError("properties.vmImage", "The image catalog has no image '%s'; import it with `citadel image import FILE --name %s`.", name, name)
	} else if err != nil {
		return err
	}
	return nil
}

// attachNetworks checks the VM's networks (each of its cluster, an
// allocation method the network allows, one default gateway at most),
// claims the addresses of its L3 attachments and gives each attachment
// its MAC address.
func (p *Provider) attachNetworks(ctx context.Context, w *resource.Write, cluster arm.ID, v vmProperties) error {
	if v.CloudServicesNetworkAttachment == nil {
		return arm.FieldError("properties.cloudServicesNetworkAttachment", "cloudServicesNetworkAttachment is required.")
	}
	all := append([]networkAttachment{*v.CloudServicesNetworkAttachment}, v.NetworkAttachments...)
	gateways, names := 0, map[string]bool{}
	for i := range all {
		a := &all[i]
		field := fmt.Sprintf("properties.networkAttachments[%d]", i-1)
		allowed := []string{Namespace + "/l2Networks", Namespace + "/l3Networks", Namespace + "/trunkedNetworks"}
		if i == 0 {
			field, allowed = "properties.cloudServicesNetworkAttachment", []string{Namespace + "/cloudServicesNetworks"}
		}
		n, err := p.attachedNetwork(ctx, field+".attachedNetworkId", a.AttachedNetworkID, cluster, allowed)
		if err != nil {
			return err
		}
		isL3 := strings.EqualFold(n.Type, Namespace+"/l3Networks")
		switch m := a.IPAllocationMethod; {
		case m == "Disabled" || (i == 0 && m == "Dynamic"):
		case isL3 && (m == "Dynamic" || m == "Static"):
			ip, err := p.claimAddress(ctx, w, n.ID, m, a.IPv4Address)
			if e, ok := errors.AsType[*arm.Error](err); ok && e.Target == "" {
				e.Target = field + ".ipv4Address"
			}
			if err != nil {
				return err
			}
			a.IPv4Address = ip
		case isL3:
			return arm.FieldError(field+".ipAllocationMethod", "ipAllocationMethod must be Dynamic, Static or Disabled, not '%s'.", m)
		default:
			return arm.FieldError(field+".ipAllocationMethod", "ipAllocationMethod must be Disabled on a network that is not an L3 network, not '%s'.", m)
		}
		if a.DefaultGateway == "True" {
			gateways++
		}
		if len(a.NetworkAttachmentName) > 15 || names[a.NetworkAttachmentName] && a.NetworkAttachmentName != "" {
			return arm.FieldError(field+".networkAttachmentName", "networkAttachmentName '%s' must have at most 15 characters and be unique to the VM.", a.NetworkAttachmentName)
		}
		names[a.NetworkAttachmentName] = true
		a.MACAddress = vmMAC(w.ID.String(), i)
	}
	if gateways > 1 {
		return arm.FieldError("properties.networkAttachments", "Only one network attachment may be the default gateway.")
	}
	w.New.Properties["cloudServicesNetworkAttachment"] = jsonValue(all[0])
	w.New.Properties["networkAttachments"] = jsonValue(all[1:])
	return nil
}

// attachedNetwork finds the network id names, of one of the types
// allowed, in the VM's cluster.
func (p *Provider) attachedNetwork(ctx context.Context, field, id string, cluster arm.ID, allowed []string) (*resource.Resource, error) {
	rid, err := arm.ParseID(id)
	if err != nil || !slices.ContainsFunc(allowed, func(t string) bool { return strings.EqualFold(rid.Type(), t) }) {
		return nil, arm.FieldError(field, "'%s' is not the resource ID of a %s.", id, strings.Join(allowed, " or "))
	}
	n, err := p.svc.Lookup(ctx, rid)
	if isMissing(err) {
		return nil, arm.FieldError(field, "The network '%s' was not found.", id)
	} else if err != nil {
		return nil, err
	}
	if !strings.EqualFold(str(n.Properties, "clusterId"), cluster.String()) {
		return nil, arm.FieldError(field, "The network '%s' is in another cluster than the virtual machine's.", id)
	}
	if n.ProvisioningState() == resource.StateDeleting {
		return nil, arm.FieldError(field, "The network '%s' is being deleted.", id)
	}
	return n, nil
}

// vmMAC is the MAC address of a VM's i-th NIC: locally administered,
// derived from the VM's ID, so it is the same wherever the VM runs.
func vmMAC(vm string, i int) string {
	h := sha256.Sum256([]byte(strings.ToLower(vm) + fmt.Sprint(i)))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
}

// provisionVM places the VM, unless its host books it already (a
// provisioning that runs again), and waits until its host runs it.
func (p *Provider) provisionVM(ctx context.Context, t *resource.Task) error {
	v := vmOf(t.Resource)
	if booked, err := p.bookedOn(ctx, v.BareMetalMachineID, t.Resource.ID); err != nil || booked {
		if err != nil {
			return err
		}
		return p.awaitVM(ctx, t, 0, func(v vmReport) bool { return v.PowerState == "On" })
	}
	spec, err := p.vmSpec(ctx, t.Resource, v)
	if err != nil {
		return err
	}
	t.Resource.Properties["detailedStatus"] = "Scheduling"
	if err := p.ensureOSVolume(ctx, t.Resource, v); err != nil {
		return err
	}
	_, named, err := p.place(ctx, t.Resource, v, p.withDisks(ctx, t.Resource, spec), "",
		func(m *resource.Resource) string { return "The virtual machine is starting on " + m.Name + "." })
	if errors.Is(err, errVMGone) {
		return nil
	}
	if err != nil {
		t.Resource.Properties["detailedStatus"] = "Error"
		t.Resource.Properties["detailedStatusMessage"] = err.Error()
		if e := t.Save(ctx); e != nil {
			return e
		}
		return resource.Canceled(arm.Errorf(http.StatusConflict, "NoCapacity", "%s", err))
	}
	return p.awaitVM(ctx, t, named, func(v vmReport) bool { return v.PowerState == "On" })
}

// bookedOn reports whether machine (an ID, or "") books the VM.
func (p *Provider) bookedOn(ctx context.Context, machine, vm string) (bool, error) {
	if machine == "" {
		return false, nil
	}
	m, err := p.lookup(ctx, machine)
	if isMissing(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return hosts(m, vm), nil
}

// placeOn records machine m as the VM's host, with its rack's
// availability zone, unless vm names it already, and says whether it
// changed vm: the fleet writes what m reports of the VM from then on.
func placeOn(vm, m *resource.Resource, zone, message string) bool {
	if strings.EqualFold(str(vm.Properties, "bareMetalMachineId"), m.ID) {
		return false
	}
	set(vm.Properties, map[string]any{"bareMetalMachineId": m.ID, "availabilityZone": zone, "powerState": "Off",
		"detailedStatus": "Provisioning", "detailedStatusMessage": message, vmEvicted: false})
	return true
}

// zoneOf is the availability zone of machine m's rack.
func (p *Provider) zoneOf(ctx context.Context, m *resource.Resource) string {
	rack, err := p.lookup(ctx, str(m.Properties, "rackId"))
	if err != nil {
		return ""
	}
	return str(rack.Properties, "availabilityZone")
}

// vmSpec is what the VM's host is given to run it. A VM given no
// networkData gets one that configures its network attachments.
func (p *Provider) vmSpec(ctx context.Context, r *resource.Resource, v vmProperties) (agentapi.VM, error) {
	img, err := p.cfg.Images.Lookup(ctx, v.VMImage)
	if err != nil {
		return agentapi.VM{}, err
	}
	userData, _ := base64.StdEncoding.DecodeString(cmp.Or(v.UserDataContent, v.UserData))
	networkData, _ := base64.StdEncoding.DecodeString(cmp.Or(v.NetworkDataContent, v.NetworkData))
	spec := agentapi.VM{ID: r.ID, Name: r.Name, Power: "On", Cores: v.CPUCores, MemoryMiB: v.MemorySizeGB << 10,
		Image:      agentapi.Artifact{Name: img.Name, Kind: "vmImage", SHA256: img.SHA256, Size: img.Size},
		BootMethod: cmp.Or(v.BootMethod, "UEFI"), OSType: img.OSType, UserData: string(userData), NetworkData: string(networkData)}
	for _, k := range v.SSHPublicKeys {
		spec.SSHPublicKeys = append(spec.SSHPublicKeys, k.KeyData)
	}
	var guest []network.GuestNIC
	for i, a := range v.NetworkAttachments {
		n, err := p.lookup(ctx, a.AttachedNetworkID)
		if err != nil {
			return agentapi.VM{}, err
		}
		vlan := int(num(n.Properties, "vlan"))
		if strings.EqualFold(n.Type, Namespace+"/l2Networks") {
			if d, err := p.lookup(ctx, str(n.Properties, "l2IsolationDomainId")); err == nil {
				vlan = int(num(d.Properties, "vlanId"))
			}
		}
		nic := agentapi.VMNIC{Name: cmp.Or(a.NetworkAttachmentName, fmt.Sprintf("eth%d", i)), VLAN: vlan, MAC: a.MACAddress}
		guestNIC := network.GuestNIC{Name: nic.Name, MAC: nic.MAC}
		if pool, err := network.ParsePool(str(n.Properties, "ipv4ConnectedPrefix")); err == nil && a.IPv4Address != "" {
			if addr, err := netip.ParseAddr(a.IPv4Address); err == nil {
				guestNIC.IPv4 = netip.PrefixFrom(addr, pool.Prefix.Bits())
				nic.IPv4 = guestNIC.IPv4.String()
				if a.DefaultGateway == "True" {
					guestNIC.Gateway = pool.Gateway()
				}
			}
		}
		if vlan > 0 {
			spec.NICs = append(spec.NICs, nic)
			guest = append(guest, guestNIC)
		}
	}
	if spec.NetworkData == "" && len(guest) > 0 { // configured from its attachments
		spec.NetworkData = string(network.GuestNetworkConfig(guest))
	}
	return spec, nil
}

// withDisks is a VM's spec on machine m: spec with its volumes, which it
// has attached there.
func (p *Provider) withDisks(ctx context.Context, vm *resource.Resource, spec agentapi.VM) func(m *resource.Resource) (agentapi.VM, error) {
	return func(m *resource.Resource) (agentapi.VM, error) {
		if len(vmVolumes(vm)) == 0 {
			return spec, nil
		}
		disks, err := p.attachDisks(ctx, vm, m)
		spec.Disks = disks
		return spec, err
	}
}

// place chooses a machine for the VM and books the VM there with the
// spec specOn gives for it, naming the machine the VM's host (with
// message) in the same transaction: a compare-and-swap of the machine's
// list of VMs, checked against its room again, so concurrent placements
// never overbook a machine, and of the VM, so that the host's first
// report of it is written and a VM deleted meanwhile is not booked. A VM
// that moves is placed on another machine than from. It returns the
// machine and the revision at which it named it the VM's host (0: the VM
// named it already); errVMGone says the VM was deleted (or is being
// deleted), and is then on no machine place booked.
func (p *Provider) place(ctx context.Context, vm *resource.Resource, v vmProperties, specOn func(m *resource.Resource) (agentapi.VM, error), from string,
	message func(m *resource.Resource) string) (*resource.Resource, int64, error) {
	mem, err := p.memory()
	if err != nil {
		return nil, 0, err
	}
	features, gpus, err := hardwareNeeds(vm.Tags)
	if err != nil {
		return nil, 0, err
	}
	req := scheduler.Request{VM: vm.ID, Cores: v.CPUCores, MemoryMiB: v.MemorySizeGB << 10, Features: features, GPUs: gpus}
	for _, h := range v.PlacementHints {
		req.Hints = append(req.Hints, scheduler.Hint{Type: scheduler.HintType(h.HintType), Execution: scheduler.Execution(h.SchedulingExecution),
			Scope: scheduler.Scope(h.Scope), Target: h.ResourceID})
	}
	for attempt := 0; ; attempt++ {
		id, err := p.choose(mem, v.ClusterID, vm.ID, req, from)
		if err != nil {
			return nil, 0, err
		}
		b := p.book(ctx, vm.ID, id, gpus, specOn, message)
		if b.booked {
			mem.booked(id, vm.ID, b.revision)
			return b.m, b.named, nil
		}
		mem.booked(id, vm.ID, 0)
		if b.err != nil {
			return nil, 0, b.err
		}
		if attempt == 20 {
			return nil, 0, fmt.Errorf("machine %s kept filling up while the VM was placed; retry", resourceName(id))
		}
		// Choose again once the projection shows the machine as it was
		// when it refused the VM.
		if b.m != nil {
			wait, cancel := context.WithTimeout(ctx, time.Second)
			mem.machines.Until(wait, mustID(id), func(_ placementView, seen int64) bool { return seen >= b.revision })
			cancel()
		}
	}
}

// errVMGone says the VM was deleted (or is being deleted) while it was
// placed.
var errVMGone = errors.New("the virtual machine was deleted")

// choose picks the machine of the cluster to book the VM on, and reserves
// it there. A VM a machine other than from books already (a provisioning
// that runs again after a crash) stays where it is, never on two
// machines.
func (p *Provider) choose(mem *memory, cluster, vm string, req scheduler.Request, from string) (string, error) {
	mem.mu.Lock()
	defer mem.mu.Unlock()
	all := mem.fleetNow()
	for _, m := range all {
		if strings.EqualFold(m.Properties.ClusterID, cluster) && !strings.EqualFold(m.ID, from) && m.Properties.books(vm) {
			return m.ID, nil
		}
	}
	snapshot, err := mem.snapshot(all, cluster, from, p.schedulable)
	if err != nil {
		return "", err
	}
	id, err := snapshot.Place(req)
	if err != nil {
		return "", err
	}
	mem.commit(id, req)
	mem.reserve(id, bookedVM{ID: vm, Cores: req.Cores, MemoryMiB: req.MemoryMiB})
	return id, nil
}

// schedulableNow says whether machine m, as stored, takes new VMs: Ready
// and not cordoned.
func schedulableNow(m *resource.Resource) bool {
	return str(m.Properties, "cordonStatus") != "Cordoned" &&
		machine.ReadyState(str(m.Properties, "detailedStatus"), str(m.Properties, "powerState"), "", str(m.Properties, "livenessState")) == "True"
}

// schedulable describes a machine to the scheduler: its room after the
// host reserve, what it runs and what its agent says it is; false for
// the control plane's machines, which run no workloads. Machine from,
// which a VM moves off, takes none.
func (p *Provider) schedulable(id string, v placementView, from string) (scheduler.Machine, bool) {
	if !slices.Contains(v.MachineRoles, machine.RoleCompute) {
		return scheduler.Machine{}, false
	}
	cores, mem := p.room(v.MachineSkuID)
	sm := scheduler.Machine{ID: id, Rack: v.RackID, Cores: cores, MemoryMiB: mem,
		Ready:    machine.ReadyState(v.DetailedStatus, v.PowerState, "", v.LivenessState) == "True",
		Cordoned: v.CordonStatus == "Cordoned" || strings.EqualFold(id, from)}
	used := map[string]bool{}
	for _, x := range v.VirtualMachines {
		sm.UsedCores, sm.UsedMemoryMiB = sm.UsedCores+x.Cores, sm.UsedMemoryMiB+x.MemoryMiB
		if !x.Evicted { // a VM that moves is where it goes, for the hints
			sm.VMs = append(sm.VMs, x.ID)
		}
		for _, g := range x.GPUs {
			used[g] = true
		}
	}
	sm.Features = v.AgentInventory.CPU.Flags
	if len(v.AgentInventory.GPUs) > 0 {
		sm.Features = append(slices.Clip(sm.Features), "gpu")
	}
	for _, g := range v.AgentInventory.GPUs {
		if !used[g.PCIAddress] {
			sm.GPUs++
		}
	}
	return sm, true
}

// room is what a machine of the SKU offers VMs: its cores and memory
// less the host reserve.
func (p *Provider) room(skuID string) (cores, memoryMiB int) {
	sku, ok := p.cfg.Catalog.Machine(skuID)
	if !ok {
		return 0, 0
	}
	return max(sku.CPUCores-reservedCores, 0), max(sku.MemoryGiB<<10-reservedMemoryMiB, 0)
}

func hostedVMs(m *resource.Resource) []agentapi.VM {
	var list []agentapi.VM
	decode(m.Properties[machineVMs], &list)
	return list
}

// bookedVMs reads what placement counts of machine m's VMs straight from
// its stored list (generic JSON, as properties hold it), without
// converting every VM's spec: booking reads it on every placement.
func bookedVMs(m *resource.Resource) []bookedVM {
	entries, _ := m.Properties[machineVMs].([]any)
	list := make([]bookedVM, 0, len(entries))
	for _, e := range entries {
		x, _ := e.(map[string]any)
		b := bookedVM{ID: str(x, "id"), Cores: int(num(x, "cores")), MemoryMiB: int(num(x, "memoryMiB"))}
		b.Evicted, _ = x["evicted"].(bool)
		gpus, _ := x["gpus"].([]any)
		for _, g := range gpus {
			if g, ok := g.(string); ok {
				b.GPUs = append(b.GPUs, g)
			}
		}
		list = append(list, b)
	}
	return list
}

// hosts says whether machine m's list has the VM.
func hosts(m *resource.Resource, vm string) bool {
	return lists(bookedVMs(m), vm)
}

// changeHosted changes the VM's entry in its machine's list (change
// returns false to remove it).
func (p *Provider) changeHosted(ctx context.Context, machineID, vm string, change func(x *agentapi.VM) bool) error {
	mid, err := arm.ParseID(machineID)
	if err != nil {
		return err
	}
	_, err = p.svc.Upsert(ctx, mid, func(r *resource.Resource, created bool) error {
		if created {
			return resource.ErrUnchanged
		}
		list := hostedVMs(r)
		i := slices.IndexFunc(list, func(x agentapi.VM) bool { return strings.EqualFold(x.ID, vm) })
		if i < 0 {
			return resource.ErrUnchanged
		}
		if !change(&list[i]) {
			list = slices.Delete(list, i, i+1)
		}
		r.Properties[machineVMs] = jsonValue(list)
		return nil
	})
	return err
}

// deprovisionVM takes the VM off its machine, and off the one it was
// moving to if it was: their agents stop it and their room is free
// again. Its addresses are released with the resource.
func (p *Provider) deprovisionVM(ctx context.Context, t *resource.Task) error {
	v := vmOf(t.Resource)
	cluster, err := arm.ParseID(v.ClusterID)
	if err != nil {
		return err
	}
	machines, err := p.inCluster(ctx, cluster, machineType)
	if err != nil {
		return err
	}
	t.Resource.Properties["detailedStatus"] = "Terminating"
	for _, m := range machines {
		if hosts(m, t.Resource.ID) {
			if err := p.changeHosted(ctx, m.ID, t.Resource.ID, func(*agentapi.VM) bool { return false }); err != nil {
				return err
			}
		}
	}
	return p.releaseDisks(ctx, t.Resource)
}

func (p *Provider) validateVMAction(_ context.Context, r *resource.Resource, input json.RawMessage) error {
	if vmOf(r).BareMetalMachineID == "" {
		return arm.Errorf(http.StatusConflict, "VirtualMachineNotPlaced", "Virtual machine '%s' is not placed on a machine yet.", r.Name)
	}
	if len(input) > 0 {
		var in struct {
			SkipShutdown string `json:"skipShutdown"`
		}
		if err := arm.DecodeStrict(input, &in); err != nil {
			return err
		}
		if in.SkipShutdown != "" && in.SkipShutdown != "True" && in.SkipShutdown != "False" {
			return arm.FieldError("skipShutdown", "skipShutdown must be True or False, not '%s'.", in.SkipShutdown)
		}
	}
	return nil
}

// vmAction asks the VM's host for a power action and waits until it
// reports it done.
func (p *Provider) vmAction(name string) func(context.Context, *resource.Task) (any, error) {
	return func(ctx context.Context, t *resource.Task) (any, error) {
		v := vmOf(t.Resource)
		var want func(vmReport) bool
		err := p.changeHosted(ctx, v.BareMetalMachineID, t.Resource.ID, func(x *agentapi.VM) bool {
			switch name {
			case "powerOff":
				x.Power = "Off"
				want = func(v vmReport) bool { return v.PowerState == "Off" }
			case "start":
				x.Power = "On"
				want = func(v vmReport) bool { return v.PowerState == "On" }
			case "restart":
				x.Power, x.Restarts = "On", max(x.Restarts, v.ReportedRestarts)+1
				n := x.Restarts
				want = func(v vmReport) bool { return v.ReportedRestarts >= n && v.PowerState == "On" }
			case "reimage":
				x.Reimages = max(x.Reimages, v.ReportedReimages) + 1
				n := x.Reimages
				want = func(v vmReport) bool { return v.ReportedReimages >= n }
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		if want == nil {
			return nil, resource.Canceled(arm.Errorf(http.StatusConflict, "VirtualMachineNotPlaced", "Virtual machine '%s' is not on its machine's list.", t.Resource.Name))
		}
		if err := p.awaitVM(ctx, t, 0, want); err != nil {
			return nil, err
		}
		return map[string]any{"status": "Succeeded"}, nil
	}
}

// awaitVM waits until what the VM's host reports satisfies done, at
// revision since or later (0: as the VM is now), and gives the task what
// it reported, at the revision that reported it.
func (p *Provider) awaitVM(ctx context.Context, t *resource.Task, since int64, done func(vmReport) bool) error {
	id, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return err
	}
	_, reached, err := p.untilVM(ctx, id, since, done)
	if e, ok := errors.AsType[*arm.Error](err); ok {
		return resource.Canceled(e) // the VM is gone, say
	}
	if err != nil {
		return err
	}
	if err := t.Refresh(ctx); err != nil {
		return err
	}
	if !reached {
		return resource.Canceled(p.vmNotReady(t.Resource))
	}
	return nil
}

// waitVM waits until what the VM's host reports satisfies done and
// returns the stored VM, or fails after VMTimeout with what its host last
// reported.
func (p *Provider) waitVM(ctx context.Context, vm string, done func(vmReport) bool) (*resource.Resource, error) {
	id, err := arm.ParseID(vm)
	if err != nil {
		return nil, err
	}
	r, reached, err := p.untilVM(ctx, id, 0, done)
	if err != nil || r != nil {
		return r, err
	}
	if r, err = p.svc.Lookup(ctx, id); err != nil {
		return nil, err
	}
	if !reached {
		return nil, p.vmNotReady(r)
	}
	return r, nil
}

// untilVM waits until what VM id's host reports satisfies done, or
// VMTimeout passes: reached says which. With since 0 it reads the VM
// once, and returns it if it satisfies done already; otherwise it waits
// on the projection of the VMs for a revision, no earlier than the one it
// read or since, that does, and returns no VM.
func (p *Provider) untilVM(ctx context.Context, id arm.ID, since int64, done func(vmReport) bool) (r *resource.Resource, reached bool, err error) {
	mem, err := p.memory()
	if err != nil {
		return nil, false, err
	}
	if since == 0 {
		if r, err = p.svc.Lookup(ctx, id); err != nil {
			return nil, false, err
		}
		if done(vmOf(r).vmReport) {
			return r, true, nil
		}
		since, _ = r.Revision()
	}
	wait, cancel := context.WithTimeout(ctx, p.cfg.VMTimeout)
	defer cancel()
	seen := false // the projection has shown the VM
	_, _, waited := mem.vms.Until(wait, id, func(v vmReport, revision int64) bool {
		seen = seen || revision > 0
		if revision >= since {
			return done(v)
		}
		return revision == 0 && seen // deleted
	})
	if ctx.Err() != nil {
		return nil, false, ctx.Err()
	}
	return nil, waited == nil, nil
}

// vmNotReady is the error of VM r that did not get where it should
// within VMTimeout.
func (p *Provider) vmNotReady(r *resource.Resource) *arm.Error {
	return arm.Errorf(http.StatusGatewayTimeout, "VirtualMachineNotReady",
		"Virtual machine '%s' did not get there within %s: it is %s (%s).", r.Name, p.cfg.VMTimeout, cmp.Or(vmOf(r).DetailedStatus, "Provisioning"), str(r.Properties, "detailedStatusMessage"))
}

// lookup reads the stored resource id names.
func (p *Provider) lookup(ctx context.Context, id string) (*resource.Resource, error) {
	rid, err := arm.ParseID(id)
	if err != nil {
		return nil, err
	}
	return p.svc.Lookup(ctx, rid)
}
