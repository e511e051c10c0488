package fabric

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// A networkDevice keeps, hidden from clients, the configuration rendered
// for it and the one before (for a commit's rollback), whether it awaits
// its zero-touch bootstrap, and what the control plane asked of it.
var deviceHidden = []string{"intendedConfiguration", "previousConfiguration", "bootstrap", "pendingReboot", "reapply"}

// deviceReported are what devices' reports write while an action on the
// device runs.
var deviceReported = []string{"configurationDrift", "appliedConfigurationRevision", "lldpNeighbors", "version",
	"configurationState", "bootstrap", "pendingReboot", "reapply", "intendedConfiguration", "previousConfiguration"}

// renderedConfig is a device's configuration at one revision.
type renderedConfig struct {
	Revision int64  `json:"revision"`
	ConfigDB string `json:"configDb"`
}

// deviceState is what the fabric keeps of a device.
type deviceState struct {
	SerialNumber       string              `json:"serialNumber"`
	HostName           string              `json:"hostName"`
	Role               string              `json:"networkDeviceRole"`
	FabricID           string              `json:"networkFabricId"`
	ConfigurationState string              `json:"configurationState"`
	Intended           *renderedConfig     `json:"intendedConfiguration"`
	Previous           *renderedConfig     `json:"previousConfiguration"`
	Bootstrap          string              `json:"bootstrap"`
	PendingReboot      string              `json:"pendingReboot"`
	Reapply            bool                `json:"reapply"`
	Applied            int64               `json:"appliedConfigurationRevision"`
	Drift              deviceDrift         `json:"configurationDrift"`
	Neighbors          []agentapi.Neighbor `json:"lldpNeighbors"`
}

// deviceDrift is a device's configurationDrift: how its running
// configuration differs from the one it was given.
type deviceDrift struct {
	Status       string   `json:"status"` // InSync or Drifted
	Items        []string `json:"items"`
	DetectedTime string   `json:"detectedTime,omitempty"`
}

const awaiting = "Awaiting"

func deviceOf(r *resource.Resource) deviceState {
	var d deviceState
	decode(r.Properties, &d)
	return d
}

func validateDevice(_ context.Context, w *resource.Write) error {
	serial := str(w.New.Properties, "serialNumber")
	if serial != "" && strings.Count(serial, ";") != 3 {
		return arm.FieldError("properties.serialNumber", "serialNumber must be Make;Model;HardwareRevisionId;SerialNumber, not '%s'.", serial)
	}
	if w.Old != nil && str(w.Old.Properties, "serialNumber") != serial && str(w.Old.Properties, "configurationState") == stateProvisioned {
		return arm.Errorf(http.StatusConflict, "DeviceProvisioned",
			"Device '%s' is provisioned; replace its serial number after rebooting it with ZTP or deprovisioning the fabric.", w.ID.Name())
	}
	return nil
}

// fabricDevices lists the devices of a fabric.
func (p *Provider) fabricDevices(ctx context.Context, fabricID string) ([]*resource.Resource, error) {
	all, err := p.svc.ResourcesOfType(ctx, deviceType)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(r *resource.Resource) bool {
		return !strings.EqualFold(str(r.Properties, "networkFabricId"), fabricID)
	}), nil
}

// topology is the fabric's plan, from its stored properties.
func topology(f *resource.Resource) (network.Topology, error) {
	fp, err := fabricOf(f)
	if err != nil {
		return network.Topology{}, err
	}
	spec, err := fp.spec(f.Name)
	if err != nil {
		return network.Topology{}, err
	}
	return network.PlanFabric(spec)
}

// render renders every device's configuration of the fabric from its
// current intent.
func (p *Provider) render(ctx context.Context, fabric *resource.Resource) (map[string][]byte, []string, error) {
	topo, err := topology(fabric)
	if err != nil {
		return nil, nil, err
	}
	intent, pending, err := p.collectIntent(ctx, fabric.ID)
	if err != nil {
		return nil, nil, err
	}
	if err := intent.Validate(); err != nil {
		if re, ok := errors.AsType[*network.RuleError](err); ok {
			return nil, nil, resource.Canceled(arm.Errorf(http.StatusBadRequest, "InvalidConfiguration",
				"The fabric's configuration cannot be rendered: %s: %s.", re.Field, re.Reason))
		}
		return nil, nil, err
	}
	out := map[string][]byte{}
	for _, d := range topo.Devices {
		db, err := network.Render(topo, d.Name, intent)
		if err != nil {
			return nil, nil, err
		}
		out[strings.ToLower(d.Name)] = db.JSON()
	}
	return out, pending, nil
}

// give makes config the device's intended configuration, at a new
// revision when it differs from the one it has, and keeps the one it
// replaces for a rollback; change, if set, changes other properties in
// the same write.
func (p *Provider) give(ctx context.Context, device *resource.Resource, config []byte, change func(props map[string]any)) (int64, error) {
	var rev int64
	err := p.updateProps(ctx, device.ID, func(props map[string]any) {
		var cur *renderedConfig
		decode(props["intendedConfiguration"], &cur)
		rev = 1
		if cur != nil {
			rev = cur.Revision
			if cur.ConfigDB != string(config) {
				rev++
				props["previousConfiguration"] = jsonValue(cur)
			}
		}
		props["intendedConfiguration"] = jsonValue(renderedConfig{Revision: rev, ConfigDB: string(config)})
		if change != nil {
			change(props)
		}
	})
	return rev, err
}

// awaitApplied waits until every device in want runs its revision in
// sync, reporting progress.
func (p *Provider) awaitApplied(ctx context.Context, t *resource.Task, want map[string]int64) error {
	deadline := time.Now().Add(p.cfg.ApplyTimeout)
	for {
		var late []string
		for id, rev := range want {
			r, err := p.lookup(ctx, id)
			if err != nil {
				return err
			}
			if d := deviceOf(r); d.Applied < rev || d.Drift.Status == "Drifted" {
				late = append(late, r.Name)
			}
		}
		if len(want) > 0 {
			t.Progress(ctx, float64(len(want)-len(late))*100/float64(len(want)))
		}
		if len(late) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			slices.Sort(late)
			return resource.Canceled(arm.Errorf(http.StatusGatewayTimeout, "DevicesNotConfigured",
				"%d device(s) did not apply their configuration within %s: %s.", len(late), p.cfg.ApplyTimeout, strings.Join(late, ", ")))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.cfg.DeviceReport / 2):
		}
	}
}

func (p *Provider) validateProvision(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	f, err := fabricOf(r)
	if err != nil {
		return err
	}
	if f.locked(lockAdministrative) {
		return fabricLocked(r.Name, lockAdministrative)
	}
	devices, err := p.fabricDevices(ctx, r.ID)
	if err != nil {
		return err
	}
	if len(devices) == 0 {
		return arm.Errorf(http.StatusConflict, "FabricNotReady", "Fabric '%s' has no devices yet; wait for its creation to finish.", r.Name)
	}
	var missing []string
	for _, d := range devices {
		if deviceOf(d).SerialNumber == "" {
			missing = append(missing, d.Name)
		}
	}
	if len(missing) > 0 {
		return arm.Errorf(http.StatusBadRequest, "SerialNumberRequired",
			"Every device needs its serialNumber before the fabric is provisioned; missing on %s.", strings.Join(missing, ", "))
	}
	return nil
}

// provision renders every device's configuration and opens their
// zero-touch bootstrap, then waits for all of them to run it.
func (p *Provider) provision(ctx context.Context, t *resource.Task) (any, error) {
	configs, pending, err := p.render(ctx, t.Resource)
	if err != nil {
		return nil, err
	}
	devices, err := p.fabricDevices(ctx, t.Resource.ID)
	if err != nil {
		return nil, err
	}
	want := map[string]int64{}
	for _, d := range devices {
		bootstrapped := deviceOf(d).ConfigurationState == stateProvisioned
		rev, err := p.give(ctx, d, configs[strings.ToLower(d.Name)], func(props map[string]any) {
			if !bootstrapped {
				props["bootstrap"] = awaiting
				props["configurationState"] = stateProvisioning
			}
		})
		if err != nil {
			return nil, err
		}
		want[d.ID] = rev
	}
	t.Resource.Properties["configurationState"] = stateProvisioning
	if err := t.Save(ctx); err != nil {
		return nil, err
	}
	if err := p.awaitApplied(ctx, t, want); err != nil {
		return nil, err
	}
	if err := p.settle(ctx, pending); err != nil {
		return nil, err
	}
	t.Resource.Properties["configurationState"] = stateProvisioned
	t.Resource.Properties["administrativeState"] = adminEnabled
	t.Resource.Properties["lastOperation"] = map[string]any{"details": fmt.Sprintf("%d devices provisioned at %s", len(devices), now())}
	return map[string]any{"status": "Succeeded", "configurationState": stateProvisioned}, nil
}

// settle marks the intent resources a commit applied as configured.
func (p *Provider) settle(ctx context.Context, ids []string) error {
	for _, id := range ids {
		if err := p.updateProps(ctx, id, func(props map[string]any) { props["configurationState"] = stateSucceeded }); err != nil {
			return err
		}
	}
	return nil
}

// deprovision withdraws the devices' configurations: they are refused
// from now on until the fabric is provisioned again.
func (p *Provider) deprovision(ctx context.Context, t *resource.Task) (any, error) {
	devices, err := p.fabricDevices(ctx, t.Resource.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range devices {
		if err := p.updateProps(ctx, d.ID, func(props map[string]any) {
			props["configurationState"] = stateDeprovisioned
			props["bootstrap"] = ""
			delete(props, "intendedConfiguration")
			delete(props, "previousConfiguration")
			props["appliedConfigurationRevision"] = 0
		}); err != nil {
			return nil, err
		}
		if p.cfg.Certificates != nil {
			if err := p.cfg.Certificates.Revoke(ctx, d.ID); err != nil {
				return nil, err
			}
		}
	}
	t.Resource.Properties["configurationState"] = stateDeprovisioned
	t.Resource.Properties["administrativeState"] = adminDisabled
	return map[string]any{"status": "Succeeded", "configurationState": stateDeprovisioned}, nil
}

func (p *Provider) validateProvisioned(_ context.Context, r *resource.Resource, _ json.RawMessage) error {
	if str(r.Properties, "configurationState") != stateProvisioned {
		return arm.Errorf(http.StatusConflict, "FabricNotProvisioned", "Fabric '%s' is not provisioned.", r.Name)
	}
	return nil
}

// commitConfiguration applies the staged changes. Without a stage it
// applies them to every device at once. Start applies them to a first
// batch (the devices named, or the CEs) and keeps what they ran before;
// Continue applies them to the rest; Rollback gives the batch back what
// it ran before.
type commitRequest struct {
	CommitStage  string   `json:"commitStage"`
	CommitPolicy string   `json:"commitPolicy"`
	Devices      []string `json:"devices"`
}

// commitBatch is a started commit (hidden on the fabric).
type commitBatch struct {
	ID      string   `json:"id"`
	Devices []string `json:"devices"`
}

func (p *Provider) validateCommit(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	if err := p.validateProvisioned(ctx, r, input); err != nil {
		return err
	}
	f, _ := fabricOf(r)
	if f.locked(lockConfiguration) {
		return fabricLocked(r.Name, lockConfiguration)
	}
	var in commitRequest
	if len(input) > 0 {
		if err := arm.DecodeStrict(input, &in); err != nil {
			return err
		}
	}
	batch := batchOf(r)
	switch in.CommitStage {
	case "":
		if batch != nil {
			return arm.Errorf(http.StatusConflict, "CommitBatchActive", "Commit batch %s is active; Continue or Rollback it.", batch.ID)
		}
	case "Start":
		if batch != nil {
			return arm.Errorf(http.StatusConflict, "CommitBatchActive", "Commit batch %s is active; Continue or Rollback it.", batch.ID)
		}
	case "Continue", "Rollback":
		if batch == nil {
			return arm.FieldError("commitStage", "There is no commit batch to %s; Start one first.", strings.ToLower(in.CommitStage))
		}
	default:
		return arm.FieldError("commitStage", "commitStage must be Start, Continue or Rollback, not '%s'.", in.CommitStage)
	}
	devices, err := p.fabricDevices(ctx, r.ID)
	if err != nil {
		return err
	}
	for i, id := range in.Devices {
		if !slices.ContainsFunc(devices, func(d *resource.Resource) bool { return strings.EqualFold(d.ID, id) }) {
			return arm.FieldError("devices["+strconv.Itoa(i)+"]", "'%s' is not a device of fabric '%s'.", id, r.Name)
		}
	}
	return nil
}

func batchOf(r *resource.Resource) *commitBatch {
	var b *commitBatch
	decode(r.Properties["commitBatch"], &b)
	return b
}

func (p *Provider) commitConfiguration(ctx context.Context, t *resource.Task) (any, error) {
	var in commitRequest
	if len(t.Op.Input) > 0 {
		if err := t.Input(&in); err != nil {
			return nil, err
		}
	}
	devices, err := p.fabricDevices(ctx, t.Resource.ID)
	if err != nil {
		return nil, err
	}
	batch := batchOf(t.Resource)
	inBatch := func(d *resource.Resource) bool {
		return batch != nil && slices.ContainsFunc(batch.Devices, func(id string) bool { return strings.EqualFold(id, d.ID) })
	}
	want := map[string]int64{}
	var pending []string
	switch in.CommitStage {
	case "Rollback":
		for _, d := range devices {
			if !inBatch(d) {
				continue
			}
			prev := deviceOf(d).Previous
			if prev == nil {
				continue
			}
			rev, err := p.give(ctx, d, []byte(prev.ConfigDB), nil)
			if err != nil {
				return nil, err
			}
			want[d.ID] = rev
		}
		batch = nil
	default:
		var configs map[string][]byte
		if configs, pending, err = p.render(ctx, t.Resource); err != nil {
			return nil, err
		}
		var first []string
		if in.CommitStage == "Start" {
			first = in.Devices
			if len(first) == 0 {
				for _, d := range devices {
					if deviceOf(d).Role == network.RoleCE {
						first = append(first, d.ID)
					}
				}
			}
			batch = &commitBatch{ID: t.Op.ID, Devices: first}
		}
		for _, d := range devices {
			take := in.CommitStage == "" || in.CommitStage == "Continue" && !inBatch(d) ||
				in.CommitStage == "Start" && slices.ContainsFunc(first, func(id string) bool { return strings.EqualFold(id, d.ID) })
			if !take {
				continue
			}
			rev, err := p.give(ctx, d, configs[strings.ToLower(d.Name)], nil)
			if err != nil {
				return nil, err
			}
			want[d.ID] = rev
		}
		if in.CommitStage == "Continue" {
			batch = nil
		}
	}
	if err := p.awaitApplied(ctx, t, want); err != nil {
		return nil, err
	}
	if batch == nil {
		if err := p.settle(ctx, pending); err != nil {
			return nil, err
		}
		delete(t.Resource.Properties, "commitBatch")
		t.Resource.Properties["activeCommitBatches"] = []string{}
	} else {
		t.Resource.Properties["commitBatch"] = jsonValue(batch)
		t.Resource.Properties["activeCommitBatches"] = []string{batch.ID}
	}
	stage := cmp.Or(in.CommitStage, "Commit")
	t.Resource.Properties["lastOperation"] = map[string]any{"details": fmt.Sprintf("%s applied to %d device(s) at %s", stage, len(want), now())}
	return map[string]any{"status": "Succeeded", "configurationState": stateProvisioned, "devices": len(want)}, nil
}

// refreshFabric re-applies every drifted device's configuration.
func (p *Provider) refreshFabric(ctx context.Context, t *resource.Task) (any, error) {
	devices, err := p.fabricDevices(ctx, t.Resource.ID)
	if err != nil {
		return nil, err
	}
	return p.refresh(ctx, t, devices)
}

func (p *Provider) validateDeviceProvisioned(_ context.Context, r *resource.Resource, _ json.RawMessage) error {
	if deviceOf(r).Intended == nil {
		return arm.Errorf(http.StatusConflict, "DeviceNotProvisioned", "Device '%s' has no configuration yet; provision its fabric first.", r.Name)
	}
	return nil
}

func (p *Provider) refreshDevice(ctx context.Context, t *resource.Task) (any, error) {
	return p.refresh(ctx, t, []*resource.Resource{t.Resource})
}

// refresh asks devices that drifted to apply their configuration again,
// and waits until they run it.
func (p *Provider) refresh(ctx context.Context, t *resource.Task, devices []*resource.Resource) (any, error) {
	want := map[string]int64{}
	for _, d := range devices {
		ds := deviceOf(d)
		if ds.Intended == nil {
			continue
		}
		want[d.ID] = ds.Intended.Revision
		if ds.Drift.Status != "Drifted" {
			continue
		}
		if err := p.updateProps(ctx, d.ID, func(props map[string]any) { props["reapply"] = true }); err != nil {
			return nil, err
		}
	}
	err := p.awaitApplied(ctx, t, want)
	for id := range want {
		if e := p.updateProps(ctx, id, func(props map[string]any) { delete(props, "reapply") }); e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"status": "Succeeded", "configurationState": stateProvisioned}, nil
}

// reboot: {rebootType}. A reboot with ZTP makes the device forget its
// certificate and configuration and bootstrap again.
type rebootRequest struct {
	RebootType string `json:"rebootType"`
}

func (p *Provider) validateReboot(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	var in rebootRequest
	if len(input) > 0 {
		if err := arm.DecodeStrict(input, &in); err != nil {
			return err
		}
	}
	if in.RebootType != "" && !slices.Contains([]string{"GracefulRebootWithZTP", "GracefulRebootWithoutZTP",
		"UngracefulRebootWithZTP", "UngracefulRebootWithoutZTP"}, in.RebootType) {
		return arm.FieldError("rebootType", "rebootType must be GracefulRebootWithZTP, GracefulRebootWithoutZTP, UngracefulRebootWithZTP or UngracefulRebootWithoutZTP, not '%s'.", in.RebootType)
	}
	return p.validateDeviceProvisioned(ctx, r, input)
}

func (p *Provider) reboot(ctx context.Context, t *resource.Task) (any, error) {
	var in rebootRequest
	if len(t.Op.Input) > 0 {
		if err := t.Input(&in); err != nil {
			return nil, err
		}
	}
	kind := "WithoutZTP"
	if in.RebootType == "" || strings.HasSuffix(in.RebootType, "WithZTP") {
		kind = "WithZTP"
	}
	if err := p.updateProps(ctx, t.Resource.ID, func(props map[string]any) { props["pendingReboot"] = kind }); err != nil {
		return nil, err
	}
	// The device learns of it at its next report; with ZTP it comes back
	// through the bootstrap, which Report sees as a fresh report with
	// the configuration applied.
	deadline := time.Now().Add(p.cfg.ApplyTimeout)
	for {
		r, err := p.lookup(ctx, t.Resource.ID)
		if err != nil {
			return nil, err
		}
		d := deviceOf(r)
		if d.PendingReboot == "" && d.Bootstrap != awaiting && d.Intended != nil && d.Applied >= d.Intended.Revision {
			break
		}
		if time.Now().After(deadline) {
			return nil, resource.Canceled(arm.Errorf(http.StatusGatewayTimeout, "DeviceNotBack", "Device '%s' did not come back within %s.", t.Resource.Name, p.cfg.ApplyTimeout))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(p.cfg.DeviceReport / 2):
		}
	}
	t.Resource.Properties["lastOperation"] = map[string]any{"details": "rebooted " + kind + " at " + now()}
	return map[string]any{"status": "Succeeded"}, nil
}

// ErrNotAwaited refuses a bootstrap: no device with that serial number
// waits for one.
var ErrNotAwaited = errors.New("no network device awaits a bootstrap with this serial number")

// Bootstrap admits the device with serial number serial if it awaits its
// zero-touch bootstrap, and returns its ID and configuration.
func (p *Provider) Bootstrap(ctx context.Context, serial string) (string, agentapi.DeviceConfig, error) {
	all, err := p.svc.ResourcesOfType(ctx, deviceType)
	if err != nil {
		return "", agentapi.DeviceConfig{}, err
	}
	for _, r := range all {
		d := deviceOf(r)
		if d.SerialNumber != serial || d.Bootstrap != awaiting || d.Intended == nil {
			continue
		}
		p.log.InfoContext(ctx, "device bootstrapping", "device", r.ID)
		return r.ID, agentapi.DeviceConfig{Revision: d.Intended.Revision, ConfigDB: json.RawMessage(d.Intended.ConfigDB)}, nil
	}
	return "", agentapi.DeviceConfig{}, ErrNotAwaited
}

// DeviceConfig answers a device's intended configuration.
func (p *Provider) DeviceConfig(ctx context.Context, device string) (agentapi.DeviceConfig, error) {
	r, err := p.lookup(ctx, device)
	if err != nil {
		return agentapi.DeviceConfig{}, err
	}
	d := deviceOf(r)
	if d.Intended == nil {
		return agentapi.DeviceConfig{}, ErrNotAwaited
	}
	return agentapi.DeviceConfig{Revision: d.Intended.Revision, ConfigDB: json.RawMessage(d.Intended.ConfigDB)}, nil
}

// deviceCache remembers, per device, the last running configuration
// compared and what the comparison found, so that a report that changes
// nothing costs a read and a hash.
type deviceCache struct {
	mu sync.Mutex
	m  map[string]cachedDiff
}

type cachedDiff struct {
	intended int64
	running  [32]byte
	items    []string
}

func (c *deviceCache) diff(device string, intended *renderedConfig, running []byte) ([]string, error) {
	sum := sha256.Sum256(running)
	c.mu.Lock()
	got, ok := c.m[device]
	c.mu.Unlock()
	if ok && got.intended == intended.Revision && got.running == sum {
		return got.items, nil
	}
	want, err := network.ParseConfigDB([]byte(intended.ConfigDB))
	if err != nil {
		return nil, err
	}
	have, err := network.ParseConfigDB(running)
	if err != nil {
		return nil, err
	}
	items := []string{}
	for _, d := range network.DiffConfig(want, have) {
		items = append(items, d.String())
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cachedDiff{}
	}
	c.m[device] = cachedDiff{intended: intended.Revision, running: sum, items: items}
	c.mu.Unlock()
	return items, nil
}

// Report takes a device's report: what it applied, what it runs and what
// LLDP hears. It records what changed (never the report itself) and
// answers what the device should do.
func (p *Provider) Report(ctx context.Context, device string, st agentapi.DeviceState) (agentapi.DeviceReply, error) {
	r, err := p.lookup(ctx, device)
	if err != nil {
		return agentapi.DeviceReply{}, err
	}
	d := deviceOf(r)
	if d.Intended == nil {
		return agentapi.DeviceReply{}, ErrNotAwaited
	}
	drift := deviceDrift{Status: "InSync", Items: []string{}}
	if st.AppliedRevision == d.Intended.Revision {
		items, err := p.devices.diff(r.ID, d.Intended, st.Running)
		if err != nil {
			return agentapi.DeviceReply{}, arm.Errorf(http.StatusBadRequest, "BadRunningConfiguration", "%v", err)
		}
		if len(items) > 0 {
			drift = deviceDrift{Status: "Drifted", Items: items, DetectedTime: d.Drift.DetectedTime}
			if drift.DetectedTime == "" {
				drift.DetectedTime = now()
			}
		}
	} else {
		drift = d.Drift // still applying: judged once it runs the revision
		if drift.Status == "" {
			drift = deviceDrift{Status: "InSync", Items: []string{}}
		}
	}
	state := d.ConfigurationState
	switch {
	case st.AppliedRevision < d.Intended.Revision:
	case drift.Status == "Drifted":
		state = stateDeferred
	default:
		state = stateProvisioned
	}
	reply := agentapi.DeviceReply{ConfigRevision: d.Intended.Revision, Reapply: d.Reapply && drift.Status == "Drifted", Reboot: d.PendingReboot}
	neighbors := st.Neighbors
	if neighbors == nil {
		neighbors = []agentapi.Neighbor{}
	}
	changed := d.Applied != st.AppliedRevision || !reflect.DeepEqual(d.Drift.Items, drift.Items) && !(len(d.Drift.Items) == 0 && len(drift.Items) == 0) ||
		d.Drift.Status != drift.Status || state != d.ConfigurationState || d.Bootstrap == awaiting || d.PendingReboot != "" ||
		!reflect.DeepEqual(d.Neighbors, neighbors) && !(len(d.Neighbors) == 0 && len(neighbors) == 0) || str(r.Properties, "version") != st.Version
	if !changed {
		return reply, nil
	}
	if err := p.updateProps(ctx, r.ID, func(props map[string]any) {
		props["appliedConfigurationRevision"] = st.AppliedRevision
		props["configurationDrift"] = jsonValue(drift)
		props["configurationState"] = state
		props["lldpNeighbors"] = jsonValue(neighbors)
		props["version"] = st.Version
		props["bootstrap"] = ""
		if d.PendingReboot != "" {
			props["pendingReboot"] = ""
			if d.PendingReboot == "WithZTP" {
				props["bootstrap"] = awaiting
			}
		}
	}); err != nil {
		return agentapi.DeviceReply{}, err
	}
	if d.PendingReboot == "WithZTP" && p.cfg.Certificates != nil {
		if err := p.cfg.Certificates.Revoke(ctx, r.ID); err != nil {
			p.log.WarnContext(ctx, "device certificate not revoked", "device", r.ID, "err", err)
		}
	}
	switch {
	case drift.Status == "Drifted" && d.Drift.Status != "Drifted":
		p.event(ctx, r.ID, driftOperation, "Warning", fmt.Sprintf("%s runs a configuration that differs from the one it was given: %s.", r.Name, strings.Join(drift.Items, "; ")))
	case drift.Status == "InSync" && d.Drift.Status == "Drifted":
		p.event(ctx, r.ID, driftOperation, "Informational", fmt.Sprintf("%s runs its configuration again.", r.Name))
	}
	return reply, nil
}

// driftOperation is the activity log's name for device drift events.
const driftOperation = "Citadel.Platform/configurationDrift/action"
