package networkcloud

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/redfish"
	"github.com/citadel-cloud/citadel/internal/releases"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/update"
)

// Drift control: between updates, machines must not drift from what was
// decided. WatchDrift compares what each provisioned machine's agent
// reports with what the machine should run (machine.DetectDrift) and
// records the difference on the machine as configurationDrift, with an
// activity-log event when it appears or goes away. Every
// FirmwareCheckInterval it also reads each machine's BMC: its firmware
// against the SKU's baseline, its BIOS attributes against the SKU's BIOS
// settings. A cluster whose configurationDriftMode is Enforce has a
// drifted machine corrected by actions the control plane itself requests,
// so the disruption guard decides, as for anyone's: a reimage for its OS,
// a restart to apply BIOS settings staged on its BMC. Firmware below the
// baseline is flashed through the BMC (UpdateService.SimpleUpdate) with
// the newest package of the imported releases that meets it, when the
// disruption guard would let the machine go down.

// The configurationDriftMode values.
const (
	driftAudit   = "Audit"
	driftEnforce = "Enforce"
	// defaultDriftInterval is how often drift is checked: with the
	// agents' reports, a drift shows within 20 s.
	defaultDriftInterval = 10 * time.Second
	// defaultFirmwareInterval is how often each BMC is asked for the
	// firmware it runs and its BIOS settings.
	defaultFirmwareInterval = 5 * time.Minute
	// firmwareFlashTimeout bounds a BMC's flash of one machine's
	// firmware packages, their tasks included.
	firmwareFlashTimeout = 30 * time.Minute
	// firmwareItem starts the drift items of firmware components.
	firmwareItem = "firmware/"
	// biosItem starts the drift items of BIOS attributes.
	biosItem = "bios/"
)

// configurationDrift is a machine's drift as recorded on it.
type configurationDrift struct {
	Status       string              `json:"status"` // InSync or Drifted
	Items        []machine.DriftItem `json:"items"`
	DetectedTime string              `json:"detectedTime,omitempty"`
	// Correction says what Enforce did about it: the reimage or restart
	// requested, the BIOS settings staged, or why it could not.
	Correction string `json:"correction,omitempty"`
}

// WatchDrift checks drift every DriftCheckInterval until ctx ends; it
// runs on one leader.
func (p *Provider) WatchDrift(ctx context.Context) {
	tick := time.NewTicker(cmp.Or(p.cfg.DriftCheckInterval, defaultDriftInterval))
	defer tick.Stop()
	readings := &bmcReadings{byMachine: map[string]bmcReading{}, flashed: map[string]map[string]string{}}
	for {
		if err := p.syncHostNetworks(ctx); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "host networks not synced", "err", err)
		}
		if err := p.checkDrift(ctx, readings); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "drift not checked", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// bmcReadings are what was last read from each machine's BMC, and when:
// BMCs are asked every FirmwareCheckInterval, not at every check.
type bmcReadings struct {
	byMachine map[string]bmcReading
	// flashed holds, by machine and component, the version Enforce had
	// the machine's BMC flash, until a reading shows the component in
	// sync: a BMC that applies a package at the next reset still reports
	// the old version meanwhile, and is not asked to flash it again.
	flashed map[string]map[string]string
}

// forgetFlashed forgets the flashes of machine id's components that
// items (from a reading of its BMC) no longer show drifted.
func (rs *bmcReadings) forgetFlashed(id string, items []machine.DriftItem) {
	for c := range rs.flashed[id] {
		if !slices.ContainsFunc(items, func(it machine.DriftItem) bool { return it.Item == firmwareItem+c }) {
			delete(rs.flashed[id], c)
		}
	}
}

type bmcReading struct {
	firmware map[string]string
	// bios holds the BIOS attributes when the SKU has BIOS settings and
	// the BMC shows them; nil otherwise, and the BIOS is not judged.
	bios map[string]any
	read time.Time
	// staged says Enforce has PATCHed this reading's drifted BIOS
	// settings into the BIOS's settings object, stageErr why it could
	// not: either way the BMC is not asked again before the next reading.
	staged   bool
	stageErr error
	// flashFailed says why Enforce could not flash this reading's
	// drifted firmware: the BMC is not asked again before the next
	// reading.
	flashFailed string
}

// readBMCs reads the BMCs of the machines whose reading is older than
// FirmwareCheckInterval, a few at a time. A BMC that does not answer
// keeps its last reading.
func (p *Provider) readBMCs(ctx context.Context, readings *bmcReadings, machines []*resource.Resource) {
	every := cmp.Or(p.cfg.FirmwareCheckInterval, defaultFirmwareInterval)
	var due []*resource.Resource
	for _, m := range machines {
		if time.Since(readings.byMachine[m.ID].read) >= every {
			due = append(due, m)
		}
	}
	read := make([]*bmcReading, len(due))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(len(due), 16) {
		wg.Go(func() {
			for i := range work {
				read[i] = p.readBMC(ctx, due[i])
			}
		})
	}
	for i := range due {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, m := range due {
		if read[i] != nil {
			readings.byMachine[m.ID] = *read[i]
		}
	}
}

// readBMC reads a machine's firmware versions from its BMC and, when its
// SKU has BIOS settings, its BIOS attributes, in one session; nil when the
// BMC does not answer.
func (p *Provider) readBMC(ctx context.Context, m *resource.Resource) *bmcReading {
	bmc, err := p.dialBMC(ctx, m)
	if err != nil {
		p.log.DebugContext(ctx, "bmc not read", "machine", m.ID, "err", err)
		return nil
	}
	defer bmc.close(ctx)
	inv, err := bmc.client.Inventory(ctx, bmc.system)
	if err != nil {
		p.log.DebugContext(ctx, "firmware not read", "machine", m.ID, "err", err)
		return nil
	}
	r := &bmcReading{firmware: inv.Hardware().Firmware, read: time.Now()}
	if sku, ok := p.cfg.Catalog.Machine(str(m.Properties, "machineSkuId")); ok && len(sku.BIOSSettings) > 0 {
		r.bios, err = bmc.client.BIOS(ctx, bmc.system)
		switch {
		case errors.Is(err, redfish.ErrNoBIOS):
			p.log.InfoContext(ctx, "bios settings not compared", "machine", m.ID, "reason", "the BMC shows no BIOS settings")
		case err != nil:
			p.log.DebugContext(ctx, "bios not read", "machine", m.ID, "err", err)
			return nil
		}
	}
	return r
}

// checkDrift checks every provisioned machine that is not being worked on
// once.
func (p *Provider) checkDrift(ctx context.Context, readings *bmcReadings) error {
	machines, err := p.svc.ResourcesOfType(ctx, machineType)
	if err != nil {
		return err
	}
	clusters, err := p.svc.ResourcesOfType(ctx, clusterType)
	if err != nil {
		return err
	}
	mode := map[string]string{}
	for _, c := range clusters {
		mode[strings.ToLower(c.ID)] = cmp.Or(str(c.Properties, "configurationDriftMode"), driftAudit)
	}
	var configs []machine.Configuration
	byName := map[string]*resource.Resource{}
	for _, m := range machines {
		c, ok := observedConfiguration(m)
		if !ok {
			continue
		}
		configs = append(configs, c)
		byName[c.Name] = m
	}
	drifted := machine.DetectDrift(configs)
	judged := slices.Collect(maps.Values(byName))
	p.readBMCs(ctx, readings, judged)
	for name, m := range byName {
		items := drifted[name]
		if sku, ok := p.cfg.Catalog.Machine(str(m.Properties, "machineSkuId")); ok {
			if r, ok := readings.byMachine[m.ID]; ok {
				items = append(items, machine.FirmwareDrift(sku, r.firmware)...)
				if r.bios != nil {
					items = append(items, machine.BIOSDrift(sku, r.bios)...)
				}
				readings.forgetFlashed(m.ID, items)
			}
		}
		if err := p.recordDrift(ctx, m, items); err != nil {
			p.log.WarnContext(ctx, "drift not recorded", "machine", m.ID, "err", err)
			continue
		}
		if len(items) > 0 && mode[strings.ToLower(str(m.Properties, "clusterId"))] == driftEnforce && !m.Busy {
			p.correctDrift(ctx, m, items, readings)
		}
	}
	return nil
}

// observedConfiguration is what a machine runs, by its agent's report;
// ok is false for a machine not to judge now: not provisioned, in an
// update, being worked on, or whose agent has not reported.
func observedConfiguration(m *resource.Resource) (machine.Configuration, bool) {
	if str(m.Properties, "detailedStatus") != "Provisioned" || m.Properties["updateTarget"] != nil || m.Busy ||
		m.Properties["agentInventory"] == nil {
		return machine.Configuration{}, false
	}
	var inv agentapi.Inventory
	if err := decode(m.Properties["agentInventory"], &inv); err != nil {
		return machine.Configuration{}, false
	}
	running := inv.Runtime.ClusterVersion
	release := str(m.Properties, "machineClusterVersion")
	if running == "" { // an agent that has no release of its own to report runs what it was given
		running = release
	}
	return machine.Configuration{
		Name: m.ID, Cluster: strings.ToLower(str(m.Properties, "clusterId")), SKU: str(m.Properties, "machineSkuId"),
		Release: release, Running: running,
		Kernel: inv.OS.Kernel, OS: strings.TrimSpace(inv.OS.Name + " " + inv.OS.Version), Agent: str(m.Properties, "agentVersion"),
		Network: networkDigest(inv.NICs),
	}, true
}

// networkDigest sums up a machine's network interfaces as configured:
// names, MAC addresses and speeds (not whether a link is up, which the
// liveness of the machine tells).
func networkDigest(nics []agentapi.NIC) string {
	lines := make([]string, 0, len(nics))
	for _, n := range nics {
		lines = append(lines, fmt.Sprintf("%s %s %d", n.Name, strings.ToLower(n.MAC), n.SpeedMbps))
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:8])
}

// recordDrift writes items as the machine's configurationDrift when they
// changed, with an activity-log event when the machine drifts or comes
// back in sync.
func (p *Provider) recordDrift(ctx context.Context, m *resource.Resource, items []machine.DriftItem) error {
	before := driftOf(m)
	after := configurationDrift{Status: "InSync", Items: []machine.DriftItem{}}
	if len(items) > 0 {
		after = configurationDrift{Status: "Drifted", Items: items, DetectedTime: cmp.Or(before.DetectedTime, now()), Correction: before.Correction}
	}
	if before.Status != "" && reflect.DeepEqual(before, after) {
		return nil
	}
	if err := p.setDrift(ctx, m, after); err != nil {
		return err
	}
	switch {
	case after.Status == "Drifted" && before.Status != "Drifted":
		p.event(ctx, driftOperation, m.ID, "Warning", fmt.Sprintf("%s drifted from its configuration: %s.", m.Name, describeDrift(items)))
	case after.Status == "InSync" && before.Status == "Drifted":
		p.event(ctx, driftOperation, m.ID, "Informational", fmt.Sprintf("%s is back in sync with its configuration.", m.Name))
	}
	return nil
}

func driftOf(m *resource.Resource) configurationDrift {
	var d configurationDrift
	decode(m.Properties["configurationDrift"], &d)
	return d
}

func (p *Provider) setDrift(ctx context.Context, m *resource.Resource, d configurationDrift) error {
	id, err := arm.ParseID(m.ID)
	if err != nil {
		return err
	}
	m.Properties["configurationDrift"] = jsonValue(d)
	return p.updateProps(ctx, id, func(props map[string]any) { props["configurationDrift"] = jsonValue(d) })
}

func describeDrift(items []machine.DriftItem) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = fmt.Sprintf("%s is %q, not %q", it.Item, it.Observed, it.Desired)
	}
	return strings.Join(parts, "; ")
}

// driftOperation is the activity log's name for drift events.
const driftOperation = "Citadel.Platform/configurationDrift/action"

// event records what the control plane did or found on its own, such as
// a drift or an HA restart, in the activity log.
func (p *Provider) event(ctx context.Context, operation, resourceID, level, description string) {
	if p.cfg.Audit == nil {
		return
	}
	e := audit.NewEvent(audit.EventInfo{Time: time.Now(), OperationName: operation, Caller: resource.SystemCaller.Name,
		ResourceID: resourceID, Status: "Succeeded", Level: level, Description: description})
	if err := p.cfg.Audit.Record(ctx, e); err != nil {
		p.log.WarnContext(ctx, "activity-log event not recorded", "operation", operation, "resource", resourceID, "err", err)
	}
}

// correctDrift has a drifted machine corrected: the control plane asks
// for it as any caller would, so the disruption guard may refuse, and the
// request and its outcome are in the activity log. A drifted OS is
// reimaged. Drifted BIOS settings are PATCHed into the BIOS's settings
// object (once a reading of the BMC) and applied by a reset: the
// reimage's, or else a restart requested for them; once it is accepted,
// the BMC is read again at the next check. Firmware below the baseline is
// flashed (correctFirmware), but not while a reimage or restart was just
// requested: at a check after it.
func (p *Provider) correctDrift(ctx context.Context, m *resource.Resource, items []machine.DriftItem, readings *bmcReadings) {
	id, err := arm.ParseID(m.ID)
	if err != nil {
		return
	}
	var osItems, biosItems, firmwareItems []machine.DriftItem
	for _, it := range items {
		switch {
		case strings.HasPrefix(it.Item, firmwareItem):
			firmwareItems = append(firmwareItems, it)
		case strings.HasPrefix(it.Item, biosItem):
			biosItems = append(biosItems, it)
		default:
			osItems = append(osItems, it)
		}
	}
	var notes []string
	warn := false
	staged := false
	if len(biosItems) > 0 {
		r := readings.byMachine[m.ID]
		if !r.staged && r.stageErr == nil {
			r.stageErr = p.stageBIOS(ctx, m, biosItems)
			r.staged = r.stageErr == nil
			readings.byMachine[m.ID] = r
		}
		if r.stageErr != nil {
			notes, warn = append(notes, "The BIOS settings could not be staged: "+r.stageErr.Error()), true
			biosItems = nil
		}
		staged = r.staged
	}
	action := ""
	switch {
	case len(osItems) > 0:
		action = "reimage"
	case staged:
		action = "restart"
	}
	requested := false
	if action != "" {
		err := p.requestCorrection(ctx, id, action, append(osItems, biosItems...))
		requested = err == nil
		switch {
		case err != nil && action == "restart":
			notes, warn = append(notes, "The BIOS settings were staged; the restart to apply them was refused: "+err.Error()), true
		case err != nil:
			notes, warn = append(notes, "The reimage was refused: "+err.Error()), true
		case action == "restart":
			notes = append(notes, "The BIOS settings were staged and a restart was requested to apply them.")
		case staged:
			notes = append(notes, "A reimage was requested; its reset applies the BIOS settings staged.")
		default:
			notes = append(notes, reimageRequested)
		}
		if err == nil && staged {
			delete(readings.byMachine, m.ID) // read the BMC again once the machine is back
		}
	}
	switch {
	case len(firmwareItems) == 0:
	case requested:
		notes = append(notes, fmt.Sprintf("The firmware is flashed at a check after the %s.", action))
	default:
		note, bad := p.correctFirmware(ctx, m, firmwareItems, readings)
		notes, warn = append(notes, note), warn || bad
	}
	p.noteCorrection(ctx, m, items, strings.Join(notes, " "), warn)
}

// correctFirmware has the machine's BMC flash, for each firmware item,
// the newest firmware package of the imported releases for the machine's
// SKU and that component that meets the baseline, fetched from the
// control plane (FirmwareURL/{sha256}), and says what it did; bad is
// true when it did not correct all of it.
//
// A flash is the control plane's own work on the BMC, not a machine
// action, and it may take the machine down (a BMC applies a BIOS package
// at once or at the next reset, and a BMC package resets the BMC), so it
// is held to the rules a restart is: the disruption guard is asked first
// (checkGuard: the control plane's quorum, the rack's budget, the
// machines already down), and a refusal is noted and asked again at the
// next check. That is simpler than an action of its own, which the ARM
// API does not have, and as safe: drift checks run on one leader and
// flash one machine at a time, waiting for each BMC's task, so flashes
// never take more than one machine down at once, and the guard sees
// every other machine that is down. A machine is flashed once per
// reading of its BMC: after a flash the BMC is read again at the next
// check, after a failure at the next reading. A package flashed is not
// flashed again while the BMC still reports the old version: it may be
// waiting for a reset of the machine to apply it.
func (p *Provider) correctFirmware(ctx context.Context, m *resource.Resource, items []machine.DriftItem, readings *bmcReadings) (note string, bad bool) {
	r := readings.byMachine[m.ID]
	if r.flashFailed != "" {
		return r.flashFailed, true
	}
	sku := str(m.Properties, "machineSkuId")
	var all []releases.Release
	if p.cfg.Releases != nil {
		var err error
		if all, err = p.cfg.Releases.Releases(ctx); err != nil {
			return "The firmware was not flashed: the imported releases cannot be read: " + err.Error(), true
		}
	}
	var notes []string
	var flashes []firmwareFlash
	for _, it := range items {
		component := strings.TrimPrefix(it.Item, firmwareItem)
		a, release, ok := firmwareFor(all, sku, component, it.Desired)
		switch {
		case !ok:
			notes, bad = append(notes, fmt.Sprintf("No imported release has %s firmware %s or newer for machine SKU %s: import a release with a firmware target for machine SKU %s and component %s.",
				component, it.Desired, sku, sku, component)), true
		case readings.flashed[m.ID][component] == a.Version:
			notes, bad = append(notes, fmt.Sprintf("The %s firmware %s of release %s was flashed, but the BMC still reports %s: it may apply it at the machine's next restart.",
				component, a.Version, release, it.Observed)), true
		default:
			flashes = append(flashes, firmwareFlash{item: it, component: component, artifact: a, release: release})
		}
	}
	if len(flashes) == 0 {
		return strings.Join(notes, " "), bad
	}
	if err := p.guardFlash(ctx, m); err != nil {
		return strings.Join(append(notes, "The firmware update was refused: "+err.Error()), " "), true
	}
	failed := p.flash(ctx, m, flashes)
	for _, f := range flashes {
		if err := failed[f.component]; err != nil {
			notes, bad = append(notes, fmt.Sprintf("The %s firmware %s of release %s could not be flashed: %v.", f.component, f.artifact.Version, f.release, err)), true
			continue
		}
		notes = append(notes, fmt.Sprintf("The %s firmware %s of release %s was flashed.", f.component, f.artifact.Version, f.release))
		if readings.flashed[m.ID] == nil {
			readings.flashed[m.ID] = map[string]string{}
		}
		readings.flashed[m.ID][f.component] = f.artifact.Version
		p.event(ctx, driftOperation, m.ID, "Informational", fmt.Sprintf("%s's %s firmware was flashed to %s (%s of release %s): it was %s, below the baseline %s.",
			m.Name, f.component, f.artifact.Version, f.artifact.Name, f.release, f.item.Observed, f.item.Desired))
	}
	note = strings.Join(notes, " ")
	if len(failed) < len(flashes) {
		delete(readings.byMachine, m.ID) // read the BMC again at the next check
	} else {
		r.flashFailed = note
		readings.byMachine[m.ID] = r
	}
	return note, bad
}

// firmwareFlash is a firmware package to flash for a drift item.
type firmwareFlash struct {
	item      machine.DriftItem
	component string
	artifact  releases.ArtifactInfo
	release   string // the cluster version of its release
}

// firmwareFor is the newest firmware of the releases (oldest first) for
// machine SKU sku and component whose version is at least baseline, and
// the cluster version of its release (of packages of one version, the
// newest release's); ok is false when there is none.
func firmwareFor(all []releases.Release, sku, component, baseline string) (a releases.ArtifactInfo, release string, ok bool) {
	for _, r := range all {
		for _, x := range r.Artifacts {
			if x.Kind != update.KindFirmware || !strings.EqualFold(x.MachineSKU, sku) || !strings.EqualFold(x.Component, component) ||
				machine.CompareVersions(x.Version, baseline) < 0 {
				continue
			}
			if !ok || machine.CompareVersions(x.Version, a.Version) >= 0 {
				a, release, ok = x, r.ClusterVersion, true
			}
		}
	}
	return a, release, ok
}

// guardFlash asks the disruption guard whether machine m may go down for
// a firmware update now.
func (p *Provider) guardFlash(ctx context.Context, m *resource.Resource) error {
	clusterID, err := arm.ParseID(str(m.Properties, "clusterId"))
	if err != nil {
		return err
	}
	cluster, err := p.svc.Lookup(ctx, clusterID)
	if err != nil {
		return err
	}
	return p.checkGuard(ctx, cluster, m, "firmware update")
}

// flash has m's BMC flash each package, in one session; failed holds
// why a component's flash failed.
func (p *Provider) flash(ctx context.Context, m *resource.Resource, flashes []firmwareFlash) (failed map[string]error) {
	failed = map[string]error{}
	fail := func(err error) map[string]error {
		for _, f := range flashes {
			failed[f.component] = err
		}
		return failed
	}
	if p.cfg.FirmwareURL == "" {
		return fail(errors.New("the control plane serves no firmware to BMCs (no firmware URL is configured)"))
	}
	ctx, cancel := context.WithTimeout(ctx, firmwareFlashTimeout)
	defer cancel()
	bmc, err := p.dialBMC(ctx, m)
	if err != nil {
		return fail(err)
	}
	defer bmc.close(ctx)
	for _, f := range flashes {
		uri := strings.TrimSuffix(p.cfg.FirmwareURL, "/") + "/" + f.artifact.SHA256
		t0 := time.Now()
		if err := bmc.client.SimpleUpdate(ctx, bmc.system, uri, []string{f.component}); err != nil {
			failed[f.component] = err
			continue
		}
		p.log.InfoContext(ctx, "firmware flashed", "machine", m.ID, "component", f.component, "version", f.artifact.Version,
			"release", f.release, "took", time.Since(t0))
	}
	return failed
}

const reimageRequested = "A reimage was requested."

// requestCorrection requests a machine action (reimage or restart) for
// the drift items, as the control plane.
func (p *Provider) requestCorrection(ctx context.Context, id arm.ID, action string, items []machine.DriftItem) error {
	why := fmt.Sprintf("Drift correction (configurationDriftMode Enforce): %s.", describeDrift(items))
	req := &resource.Request{ID: id, APIVersion: APIVersions[0], Header: http.Header{}, Caller: resource.SystemCaller,
		Body: []byte(`{}`), Audit: &audit.EventInfo{
			CorrelationID: uuid.NewString(), Caller: resource.SystemCaller.Name, Method: http.MethodPost,
			OperationName: machineType + "/" + action + "/action", Description: why,
		}}
	_, err := p.svc.Action(ctx, req, action)
	return err
}

// stageBIOS PATCHes the SKU's values of the drifted BIOS attributes into
// the machine's BIOS settings object, where they wait for a reset.
func (p *Provider) stageBIOS(ctx context.Context, m *resource.Resource, items []machine.DriftItem) error {
	sku, ok := p.cfg.Catalog.Machine(str(m.Properties, "machineSkuId"))
	if !ok {
		return fmt.Errorf("the machine SKU %q is not in the catalog", str(m.Properties, "machineSkuId"))
	}
	attrs := map[string]any{}
	for _, it := range items {
		name := strings.TrimPrefix(it.Item, biosItem)
		attrs[name] = sku.BIOSSettings[name]
	}
	bmc, err := p.dialBMC(ctx, m)
	if err != nil {
		return err
	}
	defer bmc.close(ctx)
	if err := bmc.client.SetBIOS(ctx, bmc.system, attrs); err != nil {
		return err
	}
	p.log.InfoContext(ctx, "bios settings staged", "machine", m.ID, "attributes", slices.Sorted(maps.Keys(attrs)))
	return nil
}

// noteCorrection records what Enforce did about a machine's drift, once
// per outcome; what it could not do (warn) is also an activity-log
// warning.
func (p *Provider) noteCorrection(ctx context.Context, m *resource.Resource, items []machine.DriftItem, correction string, warn bool) {
	d := driftOf(m)
	if d.Correction == correction {
		return // the same outcome again: said already
	}
	d.Correction = correction
	if err := p.setDrift(ctx, m, d); err != nil {
		p.log.WarnContext(ctx, "drift correction not recorded", "machine", m.ID, "err", err)
	}
	p.log.InfoContext(ctx, "drift correction", "machine", m.ID, "drift", describeDrift(items), "correction", correction)
	if warn {
		p.event(ctx, driftOperation, m.ID, "Warning", fmt.Sprintf("%s's drift was not corrected: %s", m.Name, correction))
	}
}
