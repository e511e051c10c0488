package networkcloud

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/providers/extendedlocation"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/storage"
	"github.com/citadel-cloud/citadel/internal/storage/ledger"
)

// volumeReadOnly are the volume properties the server owns; attachments
// is Citadel's: where each attachment reaches the volume.
var volumeReadOnly = []string{"allocatedSizeMiB", "assignedStorageApplianceId", "attachedTo", "attachments",
	"detailedStatus", "detailedStatusMessage", "serialNumber"}

// volumeProperties are a volume's properties (2026-07-01 VolumeProperties).
type volumeProperties struct {
	SizeMiB                    int64        `json:"sizeMiB"`
	StorageApplianceID         string       `json:"storageApplianceId,omitempty"`
	AllocatedSizeMiB           int64        `json:"allocatedSizeMiB"`
	AssignedStorageApplianceID string       `json:"assignedStorageApplianceId,omitempty"`
	AttachedTo                 []string     `json:"attachedTo"`
	Attachments                []attachment `json:"attachments"`
	DetailedStatus             string       `json:"detailedStatus"`
	DetailedStatusMessage      string       `json:"detailedStatusMessage"`
	SerialNumber               string       `json:"serialNumber"`
	ProvisioningState          string       `json:"provisioningState,omitempty"`
}

// attachment is one consumer's access to a volume: an NBD export that
// only the machine it runs on is given the key of. PSK is sensitive:
// stored, never shown.
type attachment struct {
	AttachedTo         string `json:"attachedTo"`
	BareMetalMachineID string `json:"bareMetalMachineId"`
	ExportName         string `json:"exportName"` // the appliance's name for the export
	NBDURI             string `json:"nbdUri,omitempty"`
	PSKIdentity        string `json:"tlsPskIdentity"`
	PSK                string `json:"psk,omitempty"`
}

// Volume detailed statuses; Degraded is Citadel's, for a volume whose
// appliance reports itself degraded.
const (
	volumeActive       = "Active"
	volumeDegraded     = "Degraded"
	volumeError        = "Error"
	volumeProvisioning = "Provisioning"
)

func (p *Provider) volumeType() *resource.Type {
	return &resource.Type{
		Namespace: Namespace, Name: "volumes", APIVersions: APIVersions, Tracked: true,
		NamePattern: volumeNamePattern, NameRule: volumeNameRule,
		ReadOnly:       volumeReadOnly,
		Sensitive:      []string{"attachments[].psk"},
		Validate:       p.validateVolume,
		Provision:      p.provisionVolume,
		ValidateDelete: p.refuseAttached, OwnsPool: true,
		Deprovision: p.deprovisionVolume,
		Actions: map[string]resource.Action{
			"attach": {Validate: p.validateAttach, Run: p.attach},
			"detach": {Validate: p.validateDetach, Run: p.detach},
		},
	}
}

func volumeOf(r *resource.Resource) (volumeProperties, error) {
	var v volumeProperties
	return v, resource.DecodeProperties(r, &v)
}

// validateVolume checks a volume's size and appliance, gives a new volume
// its serial number, and refuses at once what its cluster's appliances
// cannot take now (the reservation itself is made when it is created).
func (p *Provider) validateVolume(ctx context.Context, w *resource.Write) error {
	v, err := volumeOf(w.New)
	if err != nil {
		return err
	}
	cluster, err := extendedlocation.Resolve(ctx, p.svc, "extendedLocation", w.New.ExtendedLocation, clusterType)
	if err != nil {
		return err
	}
	if v.SizeMiB < 1 {
		return arm.FieldError("properties.sizeMiB", "sizeMiB is required and must be at least 1, not %d.", v.SizeMiB)
	}
	grow := v.SizeMiB
	if w.Old != nil {
		old, err := volumeOf(w.Old)
		if err != nil {
			return err
		}
		if v.SizeMiB < old.SizeMiB {
			return arm.FieldError("properties.sizeMiB", "A volume cannot shrink: sizeMiB %d is less than its %d MiB.", v.SizeMiB, old.SizeMiB)
		}
		if v.StorageApplianceID == "" && old.StorageApplianceID != "" { // a PUT that leaves it out keeps it
			v.StorageApplianceID = old.StorageApplianceID
			w.New.Properties["storageApplianceId"] = old.StorageApplianceID
		}
		if !strings.EqualFold(v.StorageApplianceID, old.StorageApplianceID) {
			return arm.FieldError("properties.storageApplianceId", "storageApplianceId cannot change after the volume is created.")
		}
		grow = v.SizeMiB - old.SizeMiB
		v.SerialNumber = old.SerialNumber
	} else {
		v.SerialNumber = uuid.NewString()
		v.DetailedStatus, v.DetailedStatusMessage = volumeProvisioning, "The volume is being created."
		v.AttachedTo, v.Attachments, v.AllocatedSizeMiB, v.AssignedStorageApplianceID = []string{}, []attachment{}, 0, ""
	}
	if v.StorageApplianceID != "" {
		sa, err := p.svc.Lookup(ctx, mustID(v.StorageApplianceID))
		if err != nil || !strings.EqualFold(str(sa.Properties, "clusterId"), cluster.String()) {
			return arm.FieldError("properties.storageApplianceId", "The storage appliance '%s' is not one of the cluster '%s'.", v.StorageApplianceID, cluster)
		}
	}
	if grow > 0 {
		if err := p.checkRoom(ctx, cluster, v, grow); err != nil {
			return err
		}
	}
	w.New.Properties["serialNumber"] = v.SerialNumber
	if w.Old == nil {
		set(w.New.Properties, map[string]any{
			"detailedStatus": v.DetailedStatus, "detailedStatusMessage": v.DetailedStatusMessage,
			"attachedTo": []any{}, "attachments": []any{}, "allocatedSizeMiB": 0,
		})
	}
	return nil
}

// mustID parses id, or returns the zero ID, which nothing is found at.
func mustID(id string) arm.ID {
	parsed, _ := arm.ParseID(id)
	return parsed
}

// checkRoom refuses growing v by mib when no appliance it may go to has
// that much room now.
func (p *Provider) checkRoom(ctx context.Context, cluster arm.ID, v volumeProperties, mib int64) error {
	cands, err := p.candidates(ctx, cluster, cmp.Or(v.AssignedStorageApplianceID, v.StorageApplianceID))
	if err != nil {
		return err
	}
	if _, err := storage.Place(cands, mib, p.cfg.OvercommitRatio); err != nil {
		e := arm.Errorf(http.StatusBadRequest, "InsufficientStorageCapacity", "%s.", err)
		e.Target = "properties.sizeMiB"
		return e
	}
	return nil
}

// candidates are the appliances of cluster a volume may be placed on:
// only, when set, the one it is pinned to.
func (p *Provider) candidates(ctx context.Context, cluster arm.ID, only string) ([]storage.Candidate, error) {
	appliances, err := p.inCluster(ctx, cluster, storageApplianceType)
	if err != nil {
		return nil, err
	}
	var out []storage.Candidate
	for _, sa := range appliances {
		if only != "" && !strings.EqualFold(sa.ID, only) {
			continue
		}
		provisioned, err := p.cfg.Ledger.Provisioned(ctx, sa.ID)
		if err != nil {
			return nil, err
		}
		c := storage.Candidate{ID: sa.ID, CapacityMiB: capacityMiB(sa), ProvisionedMiB: provisioned}
		if s := str(sa.Properties, "detailedStatus"); s == "Error" || s == "Provisioning" {
			c.Unavailable = "it is " + s + ": " + str(sa.Properties, "detailedStatusMessage")
		}
		out = append(out, c)
	}
	return out, nil
}

// capacityMiB is an appliance's capacity (its property is GiB).
func capacityMiB(sa *resource.Resource) int64 { return int64(num(sa.Properties, "capacity") * 1024) }

// provisionVolume places the volume (or keeps it where it is), reserves
// its size on the appliance, and creates or grows it there.
func (p *Provider) provisionVolume(ctx context.Context, t *resource.Task) error {
	v, err := volumeOf(t.Resource)
	if err != nil {
		return controller.Terminal(err)
	}
	cluster, err := extendedlocation.Resolve(ctx, p.svc, "extendedLocation", t.Resource.ExtendedLocation, clusterType)
	if err != nil {
		return controller.Terminal(err)
	}
	target := cmp.Or(v.AssignedStorageApplianceID, v.StorageApplianceID)
	cands, err := p.candidates(ctx, cluster, target)
	if err != nil {
		return err
	}
	if target == "" {
		if target, err = storage.Place(cands, v.SizeMiB, p.cfg.OvercommitRatio); err != nil {
			return controller.Terminal(arm.Errorf(http.StatusBadRequest, "InsufficientStorageCapacity", "%s.", err))
		}
	}
	i := slices.IndexFunc(cands, func(c storage.Candidate) bool { return strings.EqualFold(c.ID, target) })
	if i < 0 {
		return controller.Terminal(arm.Errorf(http.StatusBadRequest, "StorageApplianceNotFound",
			"The storage appliance '%s' is not one of the cluster '%s'.", target, cluster))
	}
	limit := storage.Limit(cands[i].CapacityMiB, p.cfg.OvercommitRatio)
	if err := p.cfg.Ledger.Reserve(ctx, target, v.SerialNumber, v.SizeMiB, limit); errors.Is(err, ledger.ErrOvercommitted) {
		return controller.Terminal(arm.Errorf(http.StatusBadRequest, "InsufficientStorageCapacity",
			"The storage appliance '%s' cannot take %d MiB: %s (overcommit ratio %g).", mustID(target).Name(), v.SizeMiB, err, p.cfg.OvercommitRatio))
	} else if err != nil {
		return err
	}
	if v.AssignedStorageApplianceID == "" {
		// Recorded before the appliance is asked, so that the reconciler
		// knows where a crash may have left the volume.
		t.Resource.Properties["assignedStorageApplianceId"] = target
		if err := t.Save(ctx); err != nil {
			return err
		}
	}
	sa, err := p.svc.Lookup(ctx, mustID(target))
	if err != nil {
		return err
	}
	c, err := p.applianceClient(sa)
	if err != nil {
		return controller.Terminal(err)
	}
	defer c.Close()
	if _, err := c.PutVolume(ctx, v.SerialNumber, v.SizeMiB); err != nil {
		if storage.IsCode(err, storage.CodeInsufficient) || storage.IsCode(err, storage.CodeConflict) {
			return controller.Terminal(arm.Errorf(http.StatusConflict, "StorageApplianceRefused", "The storage appliance '%s' refused the volume: %s", sa.Name, err))
		}
		return fmt.Errorf("storage appliance %s: %w", sa.Name, err)
	}
	set(t.Resource.Properties, map[string]any{
		"allocatedSizeMiB": v.SizeMiB, "detailedStatus": volumeActive,
		"detailedStatusMessage": fmt.Sprintf("The volume is active on the storage appliance '%s'.", sa.Name),
	})
	p.log.InfoContext(ctx, "volume provisioned", "volume", t.Resource.ID, "appliance", sa.Name, "size_mib", v.SizeMiB)
	return nil
}

// refuseAttached refuses deleting a volume that something is attached
// to, or that a virtual machine uses (it may not be attached yet).
func (p *Provider) refuseAttached(ctx context.Context, r *resource.Resource) error {
	v, err := volumeOf(r)
	if err != nil {
		return err
	}
	if len(v.AttachedTo) > 0 {
		return arm.Errorf(http.StatusConflict, "VolumeAttached",
			"The volume '%s' is attached to %s; detach it before deleting it.", r.Name, strings.Join(v.AttachedTo, ", "))
	}
	claimed, err := p.svc.Claimed(ctx, resource.PoolOf(r.ID))
	if err != nil {
		return err
	}
	if vm, ok := claimed[volumeConsumer]; ok && !p.osDiskOfDeleted(ctx, r, vm) {
		return arm.Errorf(http.StatusConflict, "VolumeInUse",
			"The volume '%s' is used by the virtual machine '%s'; delete the virtual machine or take the volume out of its volumeAttachments first.", r.Name, vm)
	}
	return nil
}

// osDiskOfDeleted says whether volume r is the OS disk of VM vm, which
// is being deleted: the VM's deletion deletes it.
func (p *Provider) osDiskOfDeleted(ctx context.Context, r *resource.Resource, vm string) bool {
	if !strings.EqualFold(r.ID, osVolumeID(mustID(vm))) {
		return false
	}
	owner, err := p.lookup(ctx, vm)
	return isMissing(err) || err == nil && owner.ProvisioningState() == resource.StateDeleting
}

// deprovisionVolume deletes the volume from its appliance and releases
// its reservation.
func (p *Provider) deprovisionVolume(ctx context.Context, t *resource.Task) error {
	if err := p.refuseAttached(ctx, t.Resource); err != nil {
		return controller.Terminal(err)
	}
	v, err := volumeOf(t.Resource)
	if err != nil {
		return controller.Terminal(err)
	}
	if v.AssignedStorageApplianceID == "" {
		return nil // never placed
	}
	sa, err := p.svc.Lookup(ctx, mustID(v.AssignedStorageApplianceID))
	if err != nil {
		if isNotFound(err) {
			return p.cfg.Ledger.Release(ctx, v.AssignedStorageApplianceID, v.SerialNumber)
		}
		return err
	}
	c, err := p.applianceClient(sa)
	if err != nil {
		return controller.Terminal(err)
	}
	defer c.Close()
	if err := c.DeleteVolume(ctx, v.SerialNumber); err != nil {
		return fmt.Errorf("storage appliance %s: %w", sa.Name, err)
	}
	return p.cfg.Ledger.Release(ctx, sa.ID, v.SerialNumber)
}

// attachInput is the body of a volume's attach and detach actions, a
// Citadel extension (virtual machines attach their volumes through the
// same code): attachedTo is the consumer's resource ID (a virtual machine,
// or a bare-metal machine itself), bareMetalMachineId the machine it runs
// on, which alone is given the key.
type attachInput struct {
	AttachedTo         string `json:"attachedTo"`
	BareMetalMachineID string `json:"bareMetalMachineId"`
}

// attachResult is the attach action's result, in its
// OperationStatusResult's properties: the only place the key is shown.
type attachResult struct {
	AttachedTo         string `json:"attachedTo"`
	BareMetalMachineID string `json:"bareMetalMachineId"`
	NBDURI             string `json:"nbdUri"`
	Host               string `json:"host"`
	Port               int    `json:"port"`
	ExportName         string `json:"exportName"`
	PSKIdentity        string `json:"tlsPskIdentity"`
	PSK                string `json:"tlsPsk"`
}

func (in *attachInput) machine() string {
	if in.BareMetalMachineID == "" && strings.EqualFold(mustID(in.AttachedTo).Type(), machineType) {
		return in.AttachedTo
	}
	return in.BareMetalMachineID
}

func (p *Provider) validateAttach(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	var in attachInput
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if _, err := arm.ParseID(in.AttachedTo); err != nil {
		return arm.FieldError("attachedTo", "attachedTo must be the resource ID of what the volume is attached to, not '%s'.", in.AttachedTo)
	}
	if in.machine() == "" {
		return arm.FieldError("bareMetalMachineId", "bareMetalMachineId is required: the machine that reaches the volume.")
	}
	v, err := volumeOf(r)
	if err != nil {
		return err
	}
	if v.AllocatedSizeMiB == 0 {
		return arm.Errorf(http.StatusConflict, "VolumeNotReady", "The volume '%s' is not created yet.", r.Name)
	}
	m, err := p.svc.Lookup(ctx, mustID(in.machine()))
	if err != nil || !strings.EqualFold(m.Type, machineType) {
		return arm.FieldError("bareMetalMachineId", "The bare-metal machine '%s' was not found.", in.machine())
	}
	sa, err := p.svc.Lookup(ctx, mustID(v.AssignedStorageApplianceID))
	if err != nil {
		return err
	}
	if !strings.EqualFold(str(m.Properties, "clusterId"), str(sa.Properties, "clusterId")) {
		return arm.FieldError("bareMetalMachineId", "The machine '%s' cannot reach the volume: it is not in the cluster of the storage appliance '%s'.", m.Name, sa.Name)
	}
	return nil
}

// exportName names the export of the volume to consumer on its appliance:
// stable, so that an attach run again after a crash finds its export.
func exportName(consumer string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(consumer)))
	return "att-" + hex.EncodeToString(sum[:8])
}

// attach exports the volume to the consumer's machine with a new key, or
// returns the export it has.
func (p *Provider) attach(ctx context.Context, t *resource.Task) (any, error) {
	in, v, err := attachTask(t)
	if err != nil {
		return nil, err
	}
	name := exportName(in.AttachedTo)
	i := slices.IndexFunc(v.Attachments, func(a attachment) bool { return a.ExportName == name })
	if i < 0 || !strings.EqualFold(v.Attachments[i].BareMetalMachineID, in.machine()) {
		key := make([]byte, 32)
		rand.Read(key)
		a := attachment{AttachedTo: in.AttachedTo, BareMetalMachineID: in.machine(), ExportName: name,
			PSKIdentity: name, PSK: hex.EncodeToString(key)}
		if i < 0 {
			v.Attachments = append(v.Attachments, a)
			i = len(v.Attachments) - 1
		} else {
			v.Attachments[i] = a // moved to another machine: a new key
		}
		// The key is kept before the appliance is given it, so that an
		// attach run again after a crash offers the same one.
		p.setAttachments(t.Resource, v.Attachments)
		if err := t.Save(ctx); err != nil {
			return nil, err
		}
	}
	a := v.Attachments[i]
	sa, c, err := p.applianceOf(ctx, v)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	e, err := c.PutExport(ctx, v.SerialNumber, a.ExportName, storage.ExportSpec{PSKIdentity: a.PSKIdentity, PSK: a.PSK})
	if err != nil {
		return nil, fmt.Errorf("storage appliance %s: export: %w", sa.Name, err)
	}
	v.Attachments[i].NBDURI = e.URI()
	p.setAttachments(t.Resource, v.Attachments)
	t.Note("attachedTo", a.AttachedTo)
	return attachResult{AttachedTo: a.AttachedTo, BareMetalMachineID: a.BareMetalMachineID, NBDURI: e.URI(),
		Host: e.Host, Port: e.Port, ExportName: e.ExportName, PSKIdentity: e.PSKIdentity, PSK: a.PSK}, nil
}

// attachTask reads an attach or detach task's input and volume.
func attachTask(t *resource.Task) (attachInput, volumeProperties, error) {
	var in attachInput
	if err := t.Input(&in); err != nil {
		return in, volumeProperties{}, controller.Terminal(err)
	}
	v, err := volumeOf(t.Resource)
	if err != nil {
		return in, v, controller.Terminal(err)
	}
	return in, v, nil
}

// applianceOf is the appliance volume v is placed on, and a client of it.
func (p *Provider) applianceOf(ctx context.Context, v volumeProperties) (*resource.Resource, *storage.Client, error) {
	sa, err := p.svc.Lookup(ctx, mustID(v.AssignedStorageApplianceID))
	if err != nil {
		return nil, nil, err
	}
	c, err := p.applianceClient(sa)
	if err != nil {
		return nil, nil, controller.Terminal(err)
	}
	return sa, c, nil
}

// setAttachments writes attachments and the attachedTo the spec shows.
func (p *Provider) setAttachments(r *resource.Resource, as []attachment) {
	to := []any{}
	for _, a := range as {
		to = append(to, a.AttachedTo)
	}
	r.Properties["attachments"], r.Properties["attachedTo"] = jsonValue(as), to
}

func (p *Provider) validateDetach(_ context.Context, r *resource.Resource, input json.RawMessage) error {
	var in attachInput
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if in.AttachedTo == "" {
		return arm.FieldError("attachedTo", "attachedTo is required: what to detach the volume from.")
	}
	return nil
}

// detach ends the consumer's export; detaching what is not attached
// succeeds.
func (p *Provider) detach(ctx context.Context, t *resource.Task) (any, error) {
	in, v, err := attachTask(t)
	if err != nil {
		return nil, err
	}
	name := exportName(in.AttachedTo)
	if !slices.ContainsFunc(v.Attachments, func(a attachment) bool { return a.ExportName == name }) {
		return nil, nil
	}
	sa, c, err := p.applianceOf(ctx, v)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.DeleteExport(ctx, v.SerialNumber, name); err != nil {
		return nil, fmt.Errorf("storage appliance %s: end export: %w", sa.Name, err)
	}
	p.setAttachments(t.Resource, slices.DeleteFunc(v.Attachments, func(a attachment) bool { return a.ExportName == name }))
	return nil, nil
}
