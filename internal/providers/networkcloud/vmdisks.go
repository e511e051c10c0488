package networkcloud

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/providers/extendedlocation"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// A VM's disks on the SAN: a Persistent OS disk is a volume the VM's
// provisioning creates ({vm}-os in the VM's group, deleted with the VM),
// and volumeAttachments are volumes the user created. A VM claims each
// of its volumes (one VM per volume; a volume's deletion conflicts with
// the claim), and before it is booked on a
// machine has each attached there (the volume's attach action: an
// export with a key only that machine is given), so that its agent finds
// them in the VM's spec. A VM that moves has them attached to its new
// machine, with new keys; one deleted has them detached, and its OS disk
// deleted.

// volumeConsumer is the one item of a volume's pool of claims
// (resource.PoolOf): the VM that uses it holds it.
const volumeConsumer = "consumer"

// maxVolumeAttachments bounds a VM's volumeAttachments.
const maxVolumeAttachments = 16

// osVolumeID is the ID of the Persistent OS disk of VM vm: in its group,
// named after it (cut to fit a volume's 64 characters).
func osVolumeID(vm arm.ID) string {
	name := vm.Name()
	if len(name) > 61 {
		name = strings.TrimRight(name[:61], "-_")
	}
	return vm.ResourceGroupID().String() + "/providers/" + Namespace + "/volumes/" + name + "-os"
}

// validateDisks checks the VM's storage profile and claims its volumes:
// each must be a volume of the VM's cluster that no other VM uses. It
// sets the VM's read-only volumes.
func (p *Provider) validateDisks(ctx context.Context, w *resource.Write, cluster arm.ID, v vmProperties) error {
	disk := v.StorageProfile.OsDisk
	switch disk.CreateOption {
	case "", "Ephemeral", "Persistent":
	default:
		return arm.FieldError("properties.storageProfile.osDisk.createOption", "createOption must be Ephemeral or Persistent, not '%s'.", disk.CreateOption)
	}
	if disk.DeleteOption != "" && disk.DeleteOption != "Delete" {
		return arm.FieldError("properties.storageProfile.osDisk.deleteOption", "deleteOption must be Delete, not '%s'.", disk.DeleteOption)
	}
	setIn(w.New.Properties, []string{"storageProfile", "osDisk", "createOption"}, cmp.Or(disk.CreateOption, "Ephemeral"))
	setIn(w.New.Properties, []string{"storageProfile", "osDisk", "deleteOption"}, "Delete")
	attachments := v.StorageProfile.VolumeAttachments
	if len(attachments) > maxVolumeAttachments {
		return arm.FieldError("properties.storageProfile.volumeAttachments", "A virtual machine has at most %d volume attachments, not %d.", maxVolumeAttachments, len(attachments))
	}
	volumes := []string{}
	claim := func(id string, vol *resource.Resource) error {
		claimed, err := p.svc.Claimed(ctx, resource.PoolOf(id))
		if err != nil {
			return err
		}
		if holder, ok := claimed[volumeConsumer]; ok && !strings.EqualFold(holder, w.ID.String()) {
			return arm.Errorf(http.StatusConflict, "VolumeInUse", "The volume '%s' is used by the virtual machine '%s'.", id, holder)
		}
		if vol == nil { // the OS disk, not created yet
			w.Claims = append(w.Claims, resource.Claim{Pool: resource.PoolOf(id), Item: volumeConsumer})
		} else {
			w.ClaimIn(vol, volumeConsumer)
		}
		volumes = append(volumes, id)
		return nil
	}
	if disk.CreateOption == "Persistent" {
		id := osVolumeID(w.ID)
		if w.Old == nil {
			if _, err := p.svc.Lookup(ctx, mustID(id)); err == nil {
				return arm.FieldError("properties.storageProfile.osDisk.createOption", "The volume '%s', which would be this virtual machine's OS disk, exists already.", id)
			}
			if err := p.checkRoom(ctx, cluster, volumeProperties{}, int64(disk.DiskSizeGB)<<10); err != nil {
				if e, ok := errors.AsType[*arm.Error](err); ok {
					e.Target = "properties.storageProfile.osDisk.diskSizeGB"
				}
				return err
			}
		}
		if err := claim(id, nil); err != nil {
			return err
		}
	}
	for i, id := range attachments {
		field := fmt.Sprintf("properties.storageProfile.volumeAttachments[%d]", i)
		vid, err := arm.ParseID(id)
		if err != nil || !strings.EqualFold(vid.Type(), volumeType) {
			return arm.FieldError(field, "'%s' is not the resource ID of a volume.", id)
		}
		vol, err := p.svc.Lookup(ctx, vid)
		if isMissing(err) {
			return arm.FieldError(field, "The volume '%s' was not found.", id)
		} else if err != nil {
			return err
		}
		if c, err := extendedlocation.Resolve(ctx, p.svc, field, vol.ExtendedLocation, clusterType); err != nil || !strings.EqualFold(c.String(), cluster.String()) {
			return arm.FieldError(field, "The volume '%s' is in another cluster than the virtual machine's.", id)
		}
		if slices.ContainsFunc(volumes, func(x string) bool { return strings.EqualFold(x, vol.ID) }) {
			return arm.FieldError(field, "The volume '%s' is attached twice.", id)
		}
		if err := claim(vol.ID, vol); err != nil {
			return err
		}
	}
	w.New.Properties["volumes"] = volumes
	return nil
}

// setIn sets the value at path in props, making the objects on the way.
func setIn(props map[string]any, path []string, value any) {
	for _, k := range path[:len(path)-1] {
		next, ok := props[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			props[k] = next
		}
		props = next
	}
	props[path[len(path)-1]] = value
}

// vmVolumes are the IDs of the VM's volumes: its OS disk first.
func vmVolumes(vm *resource.Resource) []string {
	var ids []string
	decode(vm.Properties["volumes"], &ids)
	return ids
}

// ensureOSVolume creates the VM's Persistent OS disk, as the control
// plane, unless it exists, and waits until it is created.
func (p *Provider) ensureOSVolume(ctx context.Context, vm *resource.Resource, v vmProperties) error {
	if v.StorageProfile.OsDisk.CreateOption != "Persistent" {
		return nil
	}
	id := mustID(osVolumeID(mustID(vm.ID)))
	if _, err := p.svc.Lookup(ctx, id); isMissing(err) {
		body := map[string]any{"location": vm.Location, "extendedLocation": vm.ExtendedLocation,
			"tags":       map[string]string{"citadel-os-disk-of": vm.ID},
			"properties": map[string]any{"sizeMiB": v.StorageProfile.OsDisk.DiskSizeGB << 10}}
		if err := p.systemRequest(ctx, http.MethodPut, id, "", body, "Create the OS disk of "+vm.Name); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	_, err := p.awaitVolume(ctx, id, func(r *resource.Resource) (bool, error) {
		switch str(r.Properties, "provisioningState") {
		case resource.StateSucceeded:
			return true, nil
		case resource.StateFailed, resource.StateCanceled:
			return false, fmt.Errorf("the OS disk '%s' was not created: %s", id.Name(), str(r.Properties, "detailedStatusMessage"))
		}
		return false, nil
	})
	return err
}

// attachDisks has the VM's volumes attached to machine m and returns
// them as its host is to reach them.
func (p *Provider) attachDisks(ctx context.Context, vm *resource.Resource, m *resource.Resource) ([]agentapi.VMDisk, error) {
	var disks []agentapi.VMDisk
	isOS := vmOf(vm).StorageProfile.OsDisk.CreateOption == "Persistent"
	for i, vid := range vmVolumes(vm) {
		id := mustID(vid)
		export := exportName(vm.ID)
		attached := func(r *resource.Resource) (attachment, bool) {
			v, _ := volumeOf(r)
			for _, a := range v.Attachments {
				if a.ExportName == export && strings.EqualFold(a.BareMetalMachineID, m.ID) && a.NBDURI != "" {
					return a, true
				}
			}
			return attachment{}, false
		}
		vol, err := p.svc.Lookup(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", id.Name(), err)
		}
		if _, ok := attached(vol); !ok {
			in := attachInput{AttachedTo: vm.ID, BareMetalMachineID: m.ID}
			if err := p.systemRequest(ctx, http.MethodPost, id, "attach", in, fmt.Sprintf("Attach to %s on %s", vm.Name, m.Name)); err != nil {
				return nil, err
			}
		}
		var a attachment
		vol, err = p.awaitVolume(ctx, id, func(r *resource.Resource) (bool, error) {
			var ok bool
			if a, ok = attached(r); !ok {
				return false, fmt.Errorf("the volume '%s' was not attached to %s: see its attach operation in the activity log", id.Name(), m.Name)
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		v, _ := volumeOf(vol)
		disks = append(disks, agentapi.VMDisk{Volume: vol.ID, Serial: v.SerialNumber, URI: a.NBDURI, PSKIdentity: a.PSKIdentity,
			PSK: a.PSK, OS: isOS && i == 0})
	}
	return disks, nil
}

// releaseDisks detaches the VM's volumes and deletes its OS disk.
func (p *Provider) releaseDisks(ctx context.Context, vm *resource.Resource) error {
	export := exportName(vm.ID)
	for _, vid := range vmVolumes(vm) {
		id := mustID(vid)
		vol, err := p.svc.Lookup(ctx, id)
		if isMissing(err) {
			continue
		} else if err != nil {
			return err
		}
		v, _ := volumeOf(vol)
		if slices.ContainsFunc(v.Attachments, func(a attachment) bool { return a.ExportName == export }) {
			if err := p.systemRequest(ctx, http.MethodPost, id, "detach", attachInput{AttachedTo: vm.ID}, "Detach from "+vm.Name); err != nil {
				return err
			}
			if _, err := p.awaitVolume(ctx, id, func(r *resource.Resource) (bool, error) {
				v, _ := volumeOf(r)
				if slices.ContainsFunc(v.Attachments, func(a attachment) bool { return a.ExportName == export }) {
					return false, fmt.Errorf("the volume '%s' was not detached from %s: see its detach operation in the activity log", id.Name(), vm.Name)
				}
				return true, nil
			}); err != nil {
				return err
			}
		}
	}
	if vmOf(vm).StorageProfile.OsDisk.CreateOption != "Persistent" {
		return nil
	}
	id := mustID(osVolumeID(mustID(vm.ID)))
	if _, err := p.svc.Lookup(ctx, id); isMissing(err) {
		return nil
	}
	if err := p.systemRequest(ctx, http.MethodDelete, id, "", nil, "Delete the OS disk of "+vm.Name); err != nil {
		return err
	}
	_, err := p.awaitVolume(ctx, id, func(r *resource.Resource) (bool, error) {
		return false, fmt.Errorf("the OS disk '%s' was not deleted: %s", id.Name(), str(r.Properties, "detailedStatusMessage"))
	})
	if isMissing(err) {
		return nil
	}
	return err
}

// systemRequest makes a request of the ARM API as the control plane: a
// PUT or DELETE of id, or a POST of its action, recorded in the activity
// log with why. A request refused because another operation is in
// flight on id is made again once it ends.
func (p *Provider) systemRequest(ctx context.Context, method string, id arm.ID, action string, body any, why string) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	operation := id.Type() + "/write"
	switch {
	case action != "":
		operation = id.Type() + "/" + action + "/action"
	case method == http.MethodDelete:
		operation = id.Type() + "/delete"
	}
	for {
		req := &resource.Request{ID: id, APIVersion: APIVersions[0], Body: raw, Header: http.Header{}, Caller: resource.SystemCaller,
			Audit: &audit.EventInfo{CorrelationID: uuid.NewString(), Caller: resource.SystemCaller.Name, Method: method,
				OperationName: operation, Description: why}}
		switch {
		case action != "":
			_, err = p.svc.Action(ctx, req, action)
		case method == http.MethodDelete:
			_, err = p.svc.Delete(ctx, req)
		default:
			_, err = p.svc.Put(ctx, req)
		}
		if e, ok := errors.AsType[*arm.Error](err); !ok || e.Code != arm.CodeAnotherOperationInProgress {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// awaitVolume waits, for at most VMTimeout, until volume id has no
// operation in flight, and returns it if done says it is as wanted; done
// may fail it, or ask to wait on. The error of a volume that is gone is a
// NotFound.
func (p *Provider) awaitVolume(ctx context.Context, id arm.ID, done func(*resource.Resource) (bool, error)) (*resource.Resource, error) {
	deadline := time.Now().Add(p.cfg.VMTimeout)
	for {
		r, err := p.svc.Lookup(ctx, id)
		if err != nil {
			return nil, err
		}
		if !r.Busy {
			if ok, err := done(r); ok || err != nil {
				return r, err
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the volume '%s' was not ready within %s: it is %s (%s)", id.Name(), p.cfg.VMTimeout,
				cmp.Or(str(r.Properties, "detailedStatus"), str(r.Properties, "provisioningState")), str(r.Properties, "detailedStatusMessage"))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
