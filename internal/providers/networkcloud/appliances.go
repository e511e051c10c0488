package networkcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/storage"
)

// applianceReadOnly are the storage appliance's properties; all are the
// system's. managementConnectionString is Citadel's: where its management
// API is, from the cluster's definition.
var applianceReadOnly = []string{"administratorCredentials", "capacity", "capacityUsed", "clusterId", "detailedStatus",
	"detailedStatusMessage", "expansionShelves", "managementConnectionString", "managementIpv4Address", "manufacturer", "model",
	"rackId", "rackSlot", "remoteVendorManagementExpiry", "remoteVendorManagementFeature", "remoteVendorManagementStatus",
	"serialNumber", "storageApplianceSkuId", "version"}

func (p *Provider) applianceType() *resource.Type {
	return &resource.Type{
		Namespace: Namespace, Name: "storageAppliances", APIVersions: APIVersions, Tracked: true, SystemManaged: true,
		NamePattern: namePattern, NameRule: nameRule,
		ReadOnly:  applianceReadOnly,
		Sensitive: []string{"administratorCredentials.password"},
		Actions: map[string]resource.Action{
			"runReadCommands":               {Validate: validateReadCommands, Run: p.runReadCommands},
			"enableRemoteVendorManagement":  {Validate: validateVendorManagement, Run: p.enableVendorManagement},
			"disableRemoteVendorManagement": {Validate: validateNoInput, Run: p.disableVendorManagement},
		},
	}
}

// applianceClient is a client for the management API of appliance sa,
// with its administrator credentials.
func (p *Provider) applianceClient(sa *resource.Resource) (*storage.Client, error) {
	conn, err := storage.ParseConnection(str(sa.Properties, "managementConnectionString"))
	if err != nil {
		return nil, arm.Errorf(http.StatusConflict, "StorageApplianceUnreachable",
			"The storage appliance '%s' has no usable management connection string: %s", sa.Name, err)
	}
	var creds credentials
	if err := decode(sa.Properties["administratorCredentials"], &creds); err != nil {
		return nil, err
	}
	return storage.Dial(conn, creds.Username, creds.Password, nil)
}

// readCommandsInput is the body of runReadCommands
// (StorageApplianceRunReadCommandsParameters).
type readCommandsInput struct {
	Commands         []storage.Command `json:"commands"`
	LimitTimeSeconds int               `json:"limitTimeSeconds"`
}

func validateReadCommands(_ context.Context, _ *resource.Resource, input json.RawMessage) error {
	var in readCommandsInput
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if len(in.Commands) == 0 {
		return arm.FieldError("commands", "commands must list at least one command.")
	}
	if in.LimitTimeSeconds < 60 || in.LimitTimeSeconds > 14400 {
		return arm.FieldError("limitTimeSeconds", "limitTimeSeconds must be from 60 to 14400, not %d.", in.LimitTimeSeconds)
	}
	for i, c := range in.Commands {
		if _, ok := storage.ReadCommands[c.Command]; !ok {
			allowed := make([]string, 0, len(storage.ReadCommands))
			for name := range storage.ReadCommands {
				allowed = append(allowed, name)
			}
			slices.Sort(allowed)
			return arm.FieldError(fmt.Sprintf("commands[%d].command", i),
				"'%s' is not a read-only diagnostic this appliance runs; the allowed commands are %s.", c.Command, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// readCommandsResult is what runReadCommands reports: the output of every
// command, each under a "$ command" line, and the first non-zero exit code.
type readCommandsResult struct {
	ExitCode   string `json:"exitCode"`
	OutputHead string `json:"outputHead"`
}

// runReadCommands runs the diagnostics on the appliance, within the time
// limit.
func (p *Provider) runReadCommands(ctx context.Context, t *resource.Task) (any, error) {
	var in readCommandsInput
	if err := t.Input(&in); err != nil {
		return nil, controller.Terminal(err)
	}
	c, err := p.applianceClient(t.Resource)
	if err != nil {
		return nil, controller.Terminal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(in.LimitTimeSeconds)*time.Second)
	defer cancel()
	var out strings.Builder
	exit := 0
	for _, cmd := range in.Commands {
		res, err := c.Run(ctx, cmd)
		if err != nil {
			return nil, fmt.Errorf("storage appliance %s: %s: %w", t.Resource.Name, cmd.Command, err)
		}
		fmt.Fprintf(&out, "$ %s\n%s", strings.Join(append([]string{cmd.Command}, cmd.Arguments...), " "), res.Output)
		if !strings.HasSuffix(res.Output, "\n") {
			out.WriteByte('\n')
		}
		if exit == 0 {
			exit = res.ExitCode
		}
	}
	return readCommandsResult{ExitCode: fmt.Sprint(exit), OutputHead: out.String()}, nil
}

// vendorManagementInput is the body of enableRemoteVendorManagement:
// supportEndpoints is deprecated and refused; durationMinutes is
// Citadel's, how long the switch stays on (default 240, at most a day).
type vendorManagementInput struct {
	SupportEndpoints []string `json:"supportEndpoints"`
	DurationMinutes  int      `json:"durationMinutes"`
}

func validateVendorManagement(_ context.Context, r *resource.Resource, input json.RawMessage) error {
	var in vendorManagementInput
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if len(in.SupportEndpoints) > 0 {
		return arm.FieldError("supportEndpoints", "supportEndpoints is deprecated and rejected when provided.")
	}
	if in.DurationMinutes < 0 || in.DurationMinutes > 24*60 {
		return arm.FieldError("durationMinutes", "durationMinutes must be from 1 to 1440, not %d.", in.DurationMinutes)
	}
	return nil
}

func validateNoInput(_ context.Context, _ *resource.Resource, input json.RawMessage) error {
	var in struct{}
	return arm.DecodeStrict(input, &in)
}

// enableVendorManagement turns remote vendor management on for a while:
// the appliance itself turns it off when the time is up.
func (p *Provider) enableVendorManagement(ctx context.Context, t *resource.Task) (any, error) {
	var in vendorManagementInput
	if err := t.Input(&in); err != nil {
		return nil, controller.Terminal(err)
	}
	d := 240 * time.Minute
	if in.DurationMinutes > 0 {
		d = time.Duration(in.DurationMinutes) * time.Minute
	}
	until := time.Now().Add(d).UTC().Truncate(time.Second)
	if err := p.setVendorManagement(ctx, t, storage.VendorManagement{Enabled: true, Until: until}); err != nil {
		return nil, err
	}
	t.Note("remoteVendorManagementExpiry", until.Format(time.RFC3339))
	return nil, nil
}

func (p *Provider) disableVendorManagement(ctx context.Context, t *resource.Task) (any, error) {
	return nil, p.setVendorManagement(ctx, t, storage.VendorManagement{})
}

func (p *Provider) setVendorManagement(ctx context.Context, t *resource.Task, vm storage.VendorManagement) error {
	c, err := p.applianceClient(t.Resource)
	if err != nil {
		return controller.Terminal(err)
	}
	defer c.Close()
	s, err := c.SetVendorManagement(ctx, vm)
	if err != nil {
		return fmt.Errorf("storage appliance %s: %w", t.Resource.Name, err)
	}
	set(t.Resource.Properties, vendorManagementProperties(s.VendorManagement, time.Now()))
	return nil
}

// vendorManagementProperties shows the switch as the appliance reports it.
func vendorManagementProperties(vm storage.VendorManagement, now time.Time) map[string]any {
	if !vm.Enabled || !vm.Until.After(now) {
		return map[string]any{"remoteVendorManagementFeature": "Supported", "remoteVendorManagementStatus": "Disabled", "remoteVendorManagementExpiry": nil}
	}
	return map[string]any{"remoteVendorManagementFeature": "Supported", "remoteVendorManagementStatus": "Enabled",
		"remoteVendorManagementExpiry": vm.Until.UTC().Format(time.RFC3339)}
}

// WatchAppliances asks every storage appliance how it is, every
// ApplianceCheckInterval, until ctx ends: it shows what each reports
// (capacity, health, the vendor management switch); marks an appliance
// that stops answering and its volumes Error, naming what uses them;
// serves again the exports of attachments an appliance lost; and removes
// from each appliance what no volume accounts for (a volume or export a
// crash left half-made). Run it on one replica.
func (p *Provider) WatchAppliances(ctx context.Context) {
	w := &applianceWatch{p: p, silentSince: map[string]time.Time{}}
	tick := time.NewTicker(p.cfg.ApplianceCheckInterval)
	defer tick.Stop()
	for {
		w.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// applianceWatch is WatchAppliances' state: when each silent appliance
// last answered.
type applianceWatch struct {
	p           *Provider
	mu          sync.Mutex
	silentSince map[string]time.Time
}

func (w *applianceWatch) checkAll(ctx context.Context) {
	appliances, err := w.p.svc.ResourcesOfType(ctx, storageApplianceType)
	if err != nil {
		w.p.log.WarnContext(ctx, "storage appliances not listed", "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, sa := range appliances {
		if str(sa.Properties, "managementConnectionString") == "" {
			continue // declared without a management API: nothing to ask
		}
		wg.Go(func() { w.check(ctx, sa) })
	}
	wg.Wait()
}

// check asks one appliance how it is and acts on the answer.
func (w *applianceWatch) check(ctx context.Context, sa *resource.Resource) {
	c, err := w.p.applianceClient(sa)
	if err != nil {
		w.p.log.WarnContext(ctx, "storage appliance not checked", "appliance", sa.ID, "err", err)
		return
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, min(w.p.cfg.ApplianceCheckInterval, 5*time.Second))
	status, err := c.Status(cctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			w.silent(ctx, sa, err)
		}
		return
	}
	w.mu.Lock()
	delete(w.silentSince, strings.ToLower(sa.ID))
	w.mu.Unlock()
	w.answered(ctx, sa, status)
	if err := w.p.reconcileAppliance(ctx, sa, c); err != nil && ctx.Err() == nil {
		w.p.log.WarnContext(ctx, "storage appliance not reconciled", "appliance", sa.ID, "err", err)
	}
}

// silent marks an appliance that did not answer twice in a row Error,
// and its volumes with it.
func (w *applianceWatch) silent(ctx context.Context, sa *resource.Resource, cause error) {
	w.mu.Lock()
	since, seen := w.silentSince[strings.ToLower(sa.ID)]
	if !seen {
		since = time.Now().UTC()
		w.silentSince[strings.ToLower(sa.ID)] = since
	}
	w.mu.Unlock()
	if !seen {
		return // one missed answer is not yet a failure
	}
	volumes, users, err := w.p.volumesOn(ctx, sa.ID)
	if err != nil {
		return
	}
	msg := fmt.Sprintf("The storage appliance has not answered since %s (%v); %d volume(s) on it are unreachable%s.",
		since.Format(time.RFC3339), cause, len(volumes), usedBy(users))
	w.p.setStatus(ctx, mustID(sa.ID), "Error", msg, nil)
	for _, v := range volumes {
		w.p.setStatus(ctx, mustID(v.ID), volumeError, fmt.Sprintf("The storage appliance '%s' does not answer%s.", sa.Name, usedBy(volumeUsers(v))), nil)
	}
	w.p.log.WarnContext(ctx, "storage appliance silent", "appliance", sa.ID, "since", since, "volumes", len(volumes), "used_by", users)
}

// answered shows what an appliance reported, and its volumes' health.
func (w *applianceWatch) answered(ctx context.Context, sa *resource.Resource, s storage.Status) {
	status, msg := "Available", "The storage appliance is available."
	if s.Health == storage.HealthDegraded {
		status, msg = "Degraded", "The storage appliance is degraded: "+s.HealthMessage
	}
	shelves := []any{}
	for _, sh := range s.ExpansionShelves {
		shelves = append(shelves, map[string]any{"model": sh.Model, "version": sh.Version})
	}
	props := map[string]any{
		"capacity": s.CapacityMiB / 1024, "capacityUsed": (s.UsedMiB + 1023) / 1024,
		"manufacturer": s.Manufacturer, "model": s.Model, "version": s.Version, "expansionShelves": shelves,
	}
	for k, v := range vendorManagementProperties(s.VendorManagement, time.Now()) {
		props[k] = v
	}
	w.p.setStatus(ctx, mustID(sa.ID), status, msg, props)
	volumes, _, err := w.p.volumesOn(ctx, sa.ID)
	if err != nil {
		return
	}
	vstatus, vmsg := volumeActive, fmt.Sprintf("The volume is active on the storage appliance '%s'.", sa.Name)
	if status == "Degraded" {
		vstatus, vmsg = volumeDegraded, fmt.Sprintf("The storage appliance '%s' is degraded: %s", sa.Name, s.HealthMessage)
	}
	for _, v := range volumes {
		w.p.setStatus(ctx, mustID(v.ID), vstatus, vmsg, nil)
	}
}

// setStatus writes a resource's detailedStatus, its message and props,
// when they change.
func (p *Provider) setStatus(ctx context.Context, id arm.ID, status, msg string, props map[string]any) {
	_, err := p.svc.Upsert(ctx, id, func(r *resource.Resource, created bool) error {
		if created {
			return resource.ErrUnchanged // removed meanwhile
		}
		want := map[string]any{"detailedStatus": status, "detailedStatusMessage": msg}
		for k, v := range props {
			want[k] = v
		}
		changed := false
		for k, v := range want {
			if fmt.Sprint(r.Properties[k]) != fmt.Sprint(jsonValue(v)) {
				r.Properties[k], changed = jsonValue(v), true
			}
		}
		if !changed {
			return resource.ErrUnchanged
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		p.log.WarnContext(ctx, "status not recorded", "resource", id, "err", err)
	}
}

// volumesOn lists the created volumes placed on appliance, and what uses
// them.
func (p *Provider) volumesOn(ctx context.Context, appliance string) ([]*resource.Resource, []string, error) {
	all, err := p.svc.ResourcesOfType(ctx, volumeType)
	if err != nil {
		return nil, nil, err
	}
	var out []*resource.Resource
	var users []string
	for _, r := range all {
		if strings.EqualFold(str(r.Properties, "assignedStorageApplianceId"), appliance) && allocated(r) {
			out = append(out, r)
			users = append(users, volumeUsers(r)...)
		}
	}
	return out, users, nil
}

// allocated reports whether a stored volume was created on its appliance.
func allocated(r *resource.Resource) bool { return num(r.Properties, "allocatedSizeMiB") > 0 }

// volumeUsers names what a volume is attached to.
func volumeUsers(r *resource.Resource) []string {
	var out []string
	to, _ := r.Properties["attachedTo"].([]any)
	for _, a := range to {
		if s, ok := a.(string); ok {
			out = append(out, mustID(s).Name())
		}
	}
	return out
}

func usedBy(users []string) string {
	if len(users) == 0 {
		return ""
	}
	return "; used by " + strings.Join(users, ", ")
}

// reconcileAppliance removes from the appliance the volumes and exports
// that no volume accounts for, serves again the exports of attachments
// the appliance lost, and removes from the ledger the reservations of
// volumes that are gone. It reads the appliance before the store, so a
// volume created meanwhile is always seen: its resource is written
// before the appliance is asked to create it.
func (p *Provider) reconcileAppliance(ctx context.Context, sa *resource.Resource, c *storage.Client) error {
	onAppliance, err := c.Volumes(ctx)
	if err != nil {
		return err
	}
	all, err := p.svc.ResourcesOfType(ctx, volumeType)
	if err != nil {
		return err
	}
	wanted := map[string]*resource.Resource{} // serial number → the volume that keeps it here
	for _, r := range all {
		if p.keeps(r, sa.ID) {
			wanted[str(r.Properties, "serialNumber")] = r
		}
	}
	for _, av := range onAppliance {
		r, ok := wanted[av.SerialNumber]
		if !ok {
			if err := p.removeOrphan(ctx, sa, c, av); err != nil {
				return err
			}
			continue
		}
		v, err := volumeOf(r)
		if err != nil {
			continue
		}
		for _, e := range av.Exports {
			if slices.ContainsFunc(v.Attachments, func(a attachment) bool { return a.ExportName == e.Name }) {
				continue
			}
			p.log.InfoContext(ctx, "orphan export removed", "appliance", sa.Name, "volume", av.SerialNumber, "export", e.Name)
			if err := c.DeleteExport(ctx, av.SerialNumber, e.Name); err != nil {
				return err
			}
		}
		if r.Busy {
			continue // an attach or detach in flight makes its own export
		}
		for _, a := range v.Attachments {
			if slices.ContainsFunc(av.Exports, func(e storage.Export) bool { return e.Name == a.ExportName }) {
				continue
			}
			// The appliance lost it (its state restored from before the
			// attach, say): the attachment's key serves it again.
			p.log.InfoContext(ctx, "missing export restored", "appliance", sa.Name, "volume", av.SerialNumber, "export", a.ExportName)
			e, err := c.PutExport(ctx, av.SerialNumber, a.ExportName, storage.ExportSpec{PSKIdentity: a.PSKIdentity, PSK: a.PSK})
			if err != nil {
				return err
			}
			if e.URI() != a.NBDURI {
				p.setExportURI(ctx, mustID(r.ID), a.ExportName, e.URI())
			}
		}
	}
	reserved, err := p.cfg.Ledger.Volumes(ctx, sa.ID)
	if err != nil {
		return err
	}
	for serial := range reserved {
		if _, ok := wanted[serial]; !ok {
			if err := p.cfg.Ledger.Release(ctx, sa.ID, serial); err != nil {
				return err
			}
		}
	}
	return nil
}

// keeps reports whether volume r keeps its serial number on appliance:
// it was placed there, and is either in flight or was created (a
// creation that failed before the appliance took it keeps nothing).
func (p *Provider) keeps(r *resource.Resource, appliance string) bool {
	if r.Busy {
		a := str(r.Properties, "assignedStorageApplianceId")
		return a == "" || strings.EqualFold(a, appliance)
	}
	if !strings.EqualFold(str(r.Properties, "assignedStorageApplianceId"), appliance) {
		return false
	}
	switch str(r.Properties, "provisioningState") {
	case resource.StateFailed, resource.StateCanceled:
		return allocated(r)
	}
	return true
}

// setExportURI records where an attachment's export is served now.
func (p *Provider) setExportURI(ctx context.Context, volume arm.ID, exportName, uri string) {
	_, err := p.svc.Upsert(ctx, volume, func(r *resource.Resource, created bool) error {
		v, err := volumeOf(r)
		if created || err != nil {
			return resource.ErrUnchanged
		}
		i := slices.IndexFunc(v.Attachments, func(a attachment) bool { return a.ExportName == exportName })
		if i < 0 || v.Attachments[i].NBDURI == uri {
			return resource.ErrUnchanged
		}
		v.Attachments[i].NBDURI = uri
		p.setAttachments(r, v.Attachments)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		p.log.WarnContext(ctx, "export address not recorded", "volume", volume, "err", err)
	}
}

// removeOrphan deletes a volume no resource accounts for, exports first.
func (p *Provider) removeOrphan(ctx context.Context, sa *resource.Resource, c *storage.Client, v storage.Volume) error {
	for _, e := range v.Exports {
		if err := c.DeleteExport(ctx, v.SerialNumber, e.Name); err != nil {
			return err
		}
	}
	p.log.InfoContext(ctx, "orphan volume removed", "appliance", sa.Name, "volume", v.SerialNumber, "size_mib", v.SizeMiB)
	return c.DeleteVolume(ctx, v.SerialNumber)
}
