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
	"sync"
	"sync/atomic"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/releases"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/update"
)

// An update rolls a cluster out to an imported release one failure
// domain at a time (updateVersion): rack by rack in alphabetical order,
// inside a rack in batches of updateStrategy.maxUnavailable. Each machine
// is cordoned, given the release (its agent applies it), let back in once
// its agent reports the new version and the machine is Ready, and
// uncordoned. A rack that does not meet the strategy's threshold stops
// the update and is rolled back; with strategyType PauseAfterRack the
// update pauses after each rack until continueUpdateVersion. The cluster's
// updateState records the racks done, so that an update resumed after a
// crash, or continued, goes on where it was.
//
// A machine is unavailable for the update exactly while its updateTarget
// is set: set with the cordon, cleared with the uncordon.

const (
	updateAction   = clusterType + "/updateVersion/action"
	continueAction = clusterType + "/continueUpdateVersion/action"
	// defaultMachineUpdateTimeout bounds the wait for one machine.
	defaultMachineUpdateTimeout = 30 * time.Minute
)

type updateVersionInput struct {
	TargetClusterVersion string `json:"targetClusterVersion"`
	SafeguardMode        string `json:"safeguardMode"`
}

type continueUpdateInput struct {
	MachineGroupTargetingMode string `json:"machineGroupTargetingMode"`
	SafeguardMode             string `json:"safeguardMode"`
}

// updateState is the cluster's record of its update (the Citadel
// property updateState): where it is going, from where, and how far.
type updateState struct {
	TargetClusterVersion string   `json:"targetClusterVersion"`
	FromClusterVersion   string   `json:"fromClusterVersion"`
	CompletedRacks       []string `json:"completedRacks"`
	PausedAfterRack      string   `json:"pausedAfterRack,omitempty"`
	FailedRack           string   `json:"failedRack,omitempty"`
}

// Releases is the catalog of imported, verified releases (package
// releases).
type Releases interface {
	Releases(ctx context.Context) ([]releases.Release, error)
}

func (p *Provider) release(ctx context.Context, version string) (releases.Release, bool, error) {
	if p.cfg.Releases == nil {
		return releases.Release{}, false, nil
	}
	all, err := p.cfg.Releases.Releases(ctx)
	if err != nil {
		return releases.Release{}, false, err
	}
	for _, r := range all {
		if r.ClusterVersion == version {
			return r, true, nil
		}
	}
	return releases.Release{}, false, nil
}

func (p *Provider) validateUpdateVersion(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	var in updateVersionInput
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if err := checkSafeguardMode(in.SafeguardMode); err != nil {
		return err
	}
	if in.TargetClusterVersion == "" {
		return arm.FieldError("targetClusterVersion", "targetClusterVersion is required.")
	}
	var c clusterProperties
	if err := decode(r.Properties, &c); err != nil {
		return err
	}
	if s := str(r.Properties, "detailedStatus"); s != "Running" && s != "Degraded" {
		return arm.Errorf(http.StatusConflict, "ClusterNotReady",
			"The cluster is %s; it can be updated once it is Running (an update paused after a rack goes on with continueUpdateVersion).", s)
	}
	if update.CompareVersions(in.TargetClusterVersion, c.ClusterVersion) <= 0 {
		return arm.FieldError("targetClusterVersion", "The cluster runs %s; %s is not newer.", c.ClusterVersion, in.TargetClusterVersion)
	}
	if _, ok, err := p.release(ctx, in.TargetClusterVersion); err != nil {
		return err
	} else if !ok {
		return arm.FieldError("targetClusterVersion",
			"No imported release is %s: import its signed bundle first (citadel update import); availableUpgradeVersions lists what can be applied.", in.TargetClusterVersion)
	}
	if in.SafeguardMode == "None" {
		return nil
	}
	return p.checkMachinesUp(ctx, r)
}

// checkMachinesUp is updateVersion's safeguard: every machine of the
// cluster is up, since an update counts on the capacity of the machines
// it does not hold down.
func (p *Provider) checkMachinesUp(ctx context.Context, cluster *resource.Resource) error {
	machines, err := p.clusterMachines(ctx, cluster)
	if err != nil {
		return err
	}
	var down []string
	for _, m := range machines {
		var why []string
		if s := str(m.Properties, "detailedStatus"); s != "Provisioned" {
			why = append(why, s)
		}
		if s := str(m.Properties, "powerState"); s != "On" {
			why = append(why, "power "+s)
		}
		if s := str(m.Properties, "livenessState"); s != "" && s != "Ready" {
			why = append(why, "its agent "+s+" ("+str(m.Properties, "livenessMessage")+")")
		}
		if len(why) > 0 {
			down = append(down, m.Name+": "+strings.Join(why, ", "))
		}
	}
	if len(down) == 0 {
		return nil
	}
	slices.Sort(down)
	return arm.Errorf(http.StatusConflict, "UpdateSafeguardNotMet",
		"%d machines of the cluster are not up (%s): the update would have fewer machines than its strategy counts on. Bring them back, or pass safeguardMode None.",
		len(down), strings.Join(down, "; "))
}

func checkSafeguardMode(m string) error {
	if m != "" && m != "All" && m != "None" {
		return arm.FieldError("safeguardMode", "safeguardMode must be All or None, not '%s'.", m)
	}
	return nil
}

func (p *Provider) validateContinueUpdate(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	var in continueUpdateInput
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if err := checkSafeguardMode(in.SafeguardMode); err != nil {
		return err
	}
	if m := in.MachineGroupTargetingMode; m != "" && m != "AlphaByRack" {
		return arm.FieldError("machineGroupTargetingMode", "machineGroupTargetingMode must be AlphaByRack, not '%s'.", m)
	}
	if s := str(r.Properties, "detailedStatus"); s != "UpdatePaused" {
		return arm.Errorf(http.StatusConflict, "UpdateNotPaused", "The cluster is %s, not UpdatePaused: there is no update to continue.", s)
	}
	return nil
}

// updateVersion starts (or, asked again for the same version, resumes) an
// update to an imported release.
func (p *Provider) updateVersion(ctx context.Context, t *resource.Task) (any, error) {
	var in updateVersionInput
	if err := t.Input(&in); err != nil {
		return nil, controller.Terminal(err)
	}
	var st updateState
	decode(t.Resource.Properties["updateState"], &st)
	if st.TargetClusterVersion != in.TargetClusterVersion {
		st = updateState{TargetClusterVersion: in.TargetClusterVersion, FromClusterVersion: str(t.Resource.Properties, "clusterVersion"), CompletedRacks: []string{}}
	}
	st.FailedRack = ""
	return p.rollOut(ctx, t, st, updateAction)
}

// continueUpdateVersion goes on with an update paused after a rack.
func (p *Provider) continueUpdateVersion(ctx context.Context, t *resource.Task) (any, error) {
	var st updateState
	decode(t.Resource.Properties["updateState"], &st)
	if st.TargetClusterVersion == "" {
		return nil, controller.Terminal(arm.Errorf(http.StatusConflict, "UpdateNotPaused", "The cluster has no update to continue."))
	}
	st.PausedAfterRack = ""
	return p.rollOut(ctx, t, st, continueAction)
}

// rollOut updates the racks st has not completed, in order, until the
// update ends, pauses or fails.
func (p *Provider) rollOut(ctx context.Context, t *resource.Task, st updateState, actionType string) (any, error) {
	var c clusterProperties
	if err := decode(t.Resource.Properties, &c); err != nil {
		return nil, err
	}
	strategy := updateStrategy{StrategyType: machine.StrategyRack, ThresholdType: machine.PercentSuccess, ThresholdValue: 100}
	if c.UpdateStrategy != nil {
		strategy = *c.UpdateStrategy
	}
	target, ok, err := p.release(ctx, st.TargetClusterVersion)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, controller.Terminal(arm.Errorf(http.StatusBadRequest, "ReleaseNotImported", "The release %s is no longer imported.", st.TargetClusterVersion))
	}
	from, _, err := p.release(ctx, st.FromClusterVersion) // absent: the version the cluster was deployed with
	if err != nil {
		return nil, err
	}
	from.ClusterVersion = st.FromClusterVersion
	machines, err := p.clusterMachines(ctx, t.Resource)
	if err != nil {
		return nil, err
	}
	byName := map[string]*resource.Resource{}
	members := make([]machine.Member, 0, len(machines))
	for _, m := range machines {
		byName[m.Name] = m
		var roles []string
		decode(m.Properties["machineRoles"], &roles)
		members = append(members, machine.Member{Name: m.Name, Rack: str(m.Properties, "rackId"), Roles: roles})
	}
	plan := machine.PlanRollout(members, strategy.MaxUnavailable)

	ru := &rollout{p: p, t: t, target: target, from: from, byName: byName, total: len(machines),
		correlationID: t.CorrelationID(), operationID: t.Op.ID, caller: t.Op.Caller.Name}
	// status sets the cluster's status; the operation's end writes it, in
	// the same transaction, so a client that sees UpdatePaused or Degraded
	// can act on the cluster at once. save also writes it now.
	status := func(detailed, message string) {
		set(t.Resource.Properties, map[string]any{"detailedStatus": detailed, "detailedStatusMessage": message, "updateState": jsonValue(st)})
	}
	save := func(detailed, message string) {
		status(detailed, message)
		t.Save(ctx)
	}
	tr := startTracking(ctx, t.Resource, t.Save, actionType, t.CorrelationID())
	save("Updating", fmt.Sprintf("Updating to %s, rack by rack.", target.ClusterVersion))
	ru.event(ctx, t.Resource.ID, "Started", fmt.Sprintf("The update of %s from %s to %s started.", t.Resource.Name, from.ClusterVersion, target.ClusterVersion))

	processed := false
	for i, inc := range plan {
		if slices.Contains(st.CompletedRacks, inc.Rack) {
			ru.done.Add(int64(len(inc.Machines())))
			continue
		}
		if processed && strategy.WaitTimeMinutes > 0 {
			tr.step(ctx, fmt.Sprintf("Wait %d minutes", strategy.WaitTimeMinutes))
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(strategy.WaitTimeMinutes) * time.Minute):
			}
		}
		processed = true
		rackName := resourceName(inc.Rack)
		tr.step(ctx, "Update rack "+rackName)
		save("Updating", fmt.Sprintf("Updating rack %s (%d of %d) to %s.", rackName, i+1, len(plan), target.ClusterVersion))
		ru.event(ctx, inc.Rack, "Started", fmt.Sprintf("Rack %s: update to %s started.", rackName, target.ClusterVersion))
		met, summary := ru.updateRack(ctx, inc, strategy)
		if ctx.Err() != nil {
			return nil, ctx.Err() // interrupted: the next leader resumes
		}
		if !met {
			tr.step(ctx, "Roll rack "+rackName+" back")
			rolledBack := ru.rollBack(ctx, inc, strategy.MaxUnavailable)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			st.FailedRack = inc.Rack
			msg := fmt.Sprintf("The update to %s stopped at rack %s, which did not meet the threshold: %s %s", target.ClusterVersion, rackName, summary, rolledBack)
			status("Degraded", msg)
			ru.event(ctx, inc.Rack, "Failed", msg)
			err := arm.Errorf(http.StatusBadRequest, "UpdateThresholdNotMet", "%s", msg)
			tr.end(err)
			return nil, controller.Terminal(err)
		}
		st.CompletedRacks = append(st.CompletedRacks, inc.Rack)
		ru.event(ctx, inc.Rack, "Succeeded", fmt.Sprintf("Rack %s runs %s: %s", rackName, target.ClusterVersion, summary))
		remaining := slices.ContainsFunc(plan[i+1:], func(r machine.RackIncrement) bool { return !slices.Contains(st.CompletedRacks, r.Rack) })
		if strategy.StrategyType == machine.StrategyPauseAfterRack && remaining {
			st.PausedAfterRack = inc.Rack
			msg := fmt.Sprintf("The update to %s paused after rack %s (%d of %d racks done); continueUpdateVersion goes on.",
				target.ClusterVersion, rackName, len(st.CompletedRacks), len(plan))
			status("UpdatePaused", msg)
			ru.event(ctx, t.Resource.ID, "Succeeded", msg)
			tr.message = msg
			tr.end(nil)
			return nil, nil
		}
		save("Updating", fmt.Sprintf("Rack %s done; %d of %d racks run %s.", rackName, len(st.CompletedRacks), len(plan), target.ClusterVersion))
	}

	msg := fmt.Sprintf("The cluster runs %s: %d machines in %d racks updated.", target.ClusterVersion, len(machines), len(plan))
	delete(t.Resource.Properties, "updateState")
	set(t.Resource.Properties, map[string]any{"clusterVersion": target.ClusterVersion, "detailedStatus": "Running", "detailedStatusMessage": msg,
		"lastSuccessfulVersionUpdateTime": now()})
	if err := p.setUpgradeVersions(ctx, t.Resource); err != nil {
		return nil, err
	}
	ru.event(ctx, t.Resource.ID, "Succeeded", msg)
	tr.message = msg
	tr.end(nil)
	return nil, nil
}

// resourceName is the last segment of an ARM ID.
func resourceName(id string) string { return id[strings.LastIndexByte(id, '/')+1:] }

// rollout is one run of an update over a cluster's machines.
type rollout struct {
	p            *Provider
	t            *resource.Task
	target, from releases.Release
	byName       map[string]*resource.Resource
	total        int
	done         atomic.Int64 // machines done, for the operation's progress
	// The operation's, for the activity log: read once, as Progress
	// writes the operation from the machines' goroutines.
	correlationID, operationID, caller string
}

// updateRack updates one rack's machines, batch after batch, and
// evaluates the strategy's threshold over them. It stops taking machines
// down once the threshold can no longer be met.
func (ru *rollout) updateRack(ctx context.Context, inc machine.RackIncrement, s updateStrategy) (bool, string) {
	all := inc.Machines()
	th := machine.RackThreshold(s.ThresholdType, s.ThresholdValue, len(all))
	outcomes := make([]machine.Outcome, 0, len(all))
	for _, batch := range inc.Batches {
		results := make([]machine.Outcome, len(batch))
		var wg sync.WaitGroup
		for i, name := range batch {
			wg.Go(func() {
				results[i] = ru.updateMachine(ctx, ru.byName[name], toTarget(ru.target, ru.byName[name]))
				if results[i].OK {
					ru.t.Progress(ctx, float64(ru.done.Add(1))*100/float64(ru.total))
				}
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return false, ctx.Err().Error()
		}
		outcomes = append(outcomes, results...)
		if !th.Reachable(outcomes, len(all)) {
			break
		}
	}
	for _, name := range all[len(outcomes):] {
		outcomes = append(outcomes, machine.Outcome{Machine: name, Rack: inc.Rack, Reason: "not updated: the rack had already failed"})
	}
	return th.Evaluate(outcomes)
}

// toTarget is what release asks of machine m: the release's node image
// and agent, and the firmware for m's SKU.
func toTarget(r releases.Release, m *resource.Resource) machine.Target {
	t := machine.Target{ClusterVersion: r.ClusterVersion}
	sku := str(m.Properties, "machineSkuId")
	for _, a := range r.Artifacts {
		switch a.Kind {
		case update.KindNodeImage, update.KindAgent:
		case update.KindFirmware:
			if !strings.EqualFold(a.MachineSKU, sku) {
				continue
			}
		default:
			continue // switch images and policy packs are not the machines'
		}
		t.Artifacts = append(t.Artifacts, agentapi.Artifact{Name: a.Name, Kind: string(a.Kind), Version: a.Version, SHA256: a.SHA256, Size: a.Size})
	}
	return t
}

// updateMachine takes one machine to target: cordon it and hand it the
// release, wait for its agent to run it and the machine to be Ready, then
// let it back in. A machine already there is done.
func (ru *rollout) updateMachine(ctx context.Context, m *resource.Resource, target machine.Target) machine.Outcome {
	out := machine.Outcome{Machine: m.Name, Rack: str(m.Properties, "rackId")}
	id, err := arm.ParseID(m.ID)
	if err != nil {
		out.Reason = err.Error()
		return out
	}
	cur, err := ru.p.svc.Lookup(ctx, id)
	if err != nil {
		out.Reason = err.Error()
		return out
	}
	if str(cur.Properties, "machineClusterVersion") == target.ClusterVersion && cur.Properties["updateTarget"] == nil {
		out.OK = true
		return out
	}
	if cur.Properties["updateTarget"] == nil {
		ru.event(ctx, m.ID, "Started", fmt.Sprintf("%s cordoned (its workloads evacuated) to run %s.", m.Name, target.ClusterVersion))
	}
	if err := ru.p.updateProps(ctx, id, func(props map[string]any) {
		if str(props, "cordonStatus") != "Cordoned" {
			props["cordonStatus"], props["updateCordoned"] = "Cordoned", true
		}
		props["updateTarget"] = jsonValue(target)
		setReadyState(props)
	}); err != nil {
		out.Reason = err.Error()
		return out
	}
	if cur, err = ru.p.svc.Lookup(ctx, id); err == nil {
		err = ru.p.evacuate(ctx, cur, false, func(vm, to string, _, _ int) {
			ru.event(ctx, m.ID, "Succeeded", fmt.Sprintf("%s moved from %s to %s for its update.", vm, m.Name, to))
		})
	}
	if err != nil {
		out.Reason = "its virtual machines could not all move: " + err.Error()
		ru.event(ctx, m.ID, "Failed", fmt.Sprintf("%s did not update to %s: %s", m.Name, target.ClusterVersion, out.Reason))
		return out
	}
	if reason := ru.waitFor(ctx, id, target.ClusterVersion); reason != "" {
		out.Reason = reason
		ru.event(ctx, m.ID, "Failed", fmt.Sprintf("%s did not update to %s: %s", m.Name, target.ClusterVersion, reason))
		return out
	}
	if err := ru.p.updateProps(ctx, id, letBackIn(target.ClusterVersion)); err != nil {
		out.Reason = err.Error()
		return out
	}
	ru.event(ctx, m.ID, "Succeeded", fmt.Sprintf("%s runs %s, is Ready and uncordoned.", m.Name, target.ClusterVersion))
	out.OK = true
	return out
}

// letBackIn records that a machine runs version and ends its part in the
// update: its target cleared and, if the update cordoned it, uncordoned.
func letBackIn(version string) func(props map[string]any) {
	return func(props map[string]any) {
		props["machineClusterVersion"] = version
		delete(props, "updateTarget")
		if props["updateCordoned"] == true {
			props["cordonStatus"] = "Uncordoned"
			delete(props, "updateCordoned")
		}
		setReadyState(props)
	}
}

// waitFor waits until the machine's agent reports version and the
// machine is Ready; it returns why not otherwise ("" when it is).
func (ru *rollout) waitFor(ctx context.Context, id arm.ID, version string) string {
	timeout := cmp.Or(ru.p.cfg.MachineUpdateTimeout, defaultMachineUpdateTimeout)
	deadline := time.Now().Add(timeout)
	for {
		m, err := ru.p.svc.Lookup(ctx, id)
		if err != nil {
			return err.Error()
		}
		var inv agentapi.Inventory
		decode(m.Properties["agentInventory"], &inv)
		rt := inv.Runtime
		switch {
		case rt.ClusterVersion == version && str(m.Properties, "livenessState") == "Ready":
			return ""
		case rt.UpdateVersion == version && rt.UpdateError != "":
			return rt.UpdateError
		case time.Now().After(deadline):
			return fmt.Sprintf("its agent did not report %s within %v (it reports %q, liveness %s)", version, timeout,
				rt.ClusterVersion, cmp.Or(str(m.Properties, "livenessState"), "unknown"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err().Error()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// rollBack takes a failed rack back to the version it ran: first the
// machines the update holds down, then those it updated, in batches of
// maxUnavailable, so that no more of the rack are down than the update
// allowed. It returns a sentence for the cluster's status.
func (ru *rollout) rollBack(ctx context.Context, inc machine.RackIncrement, maxUnavailable int) string {
	var down, updated []string
	for _, name := range inc.Machines() {
		id, _ := arm.ParseID(ru.byName[name].ID)
		m, err := ru.p.svc.Lookup(ctx, id)
		if err != nil {
			continue
		}
		switch {
		case m.Properties["updateTarget"] != nil:
			down = append(down, name)
		case str(m.Properties, "machineClusterVersion") == ru.target.ClusterVersion:
			updated = append(updated, name)
		}
	}
	size := max(maxUnavailable, 1)
	if maxUnavailable <= 0 {
		size = len(inc.Machines())
	}
	batches := [][]string{down}
	for b := range slices.Chunk(updated, size) {
		batches = append(batches, b)
	}
	var failed []string
	for _, batch := range batches {
		results := make([]machine.Outcome, len(batch))
		var wg sync.WaitGroup
		for i, name := range batch {
			wg.Go(func() {
				m := ru.byName[name]
				results[i] = ru.updateMachine(ctx, m, toTarget(ru.from, m))
			})
		}
		wg.Wait()
		for _, o := range results {
			if !o.OK {
				failed = append(failed, o.Machine+": "+o.Reason)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Sprintf("Rolling rack %s back to %s failed for %s; those machines stay cordoned.", resourceName(inc.Rack), ru.from.ClusterVersion, strings.Join(failed, "; "))
	}
	return fmt.Sprintf("Rack %s was rolled back to %s.", resourceName(inc.Rack), ru.from.ClusterVersion)
}

// event records a step of the update in the activity log, as the
// operation's: the same correlation id, on the resource the step is about.
func (ru *rollout) event(ctx context.Context, resourceID, status, description string) {
	if ru.p.cfg.Audit == nil {
		return
	}
	e := audit.NewEvent(audit.EventInfo{Time: time.Now(), CorrelationID: ru.correlationID, OperationID: ru.operationID,
		OperationName: updateAction, Caller: ru.caller, ResourceID: resourceID, Status: status,
		Description: description})
	if err := ru.p.cfg.Audit.Record(ctx, e); err != nil {
		ru.p.log.WarnContext(ctx, "update step not recorded in the activity log", "resource", resourceID, "err", err)
	}
}

// setUpgradeVersions lists on cluster r the imported releases newer than
// the version it runs (availableUpgradeVersions).
func (p *Provider) setUpgradeVersions(ctx context.Context, r *resource.Resource) error {
	if p.cfg.Releases == nil {
		return nil
	}
	all, err := p.cfg.Releases.Releases(ctx)
	if err != nil {
		return err
	}
	current := str(r.Properties, "clusterVersion")
	versions := []any{}
	for _, rel := range all {
		if update.CompareVersions(rel.ClusterVersion, current) <= 0 {
			continue
		}
		versions = append(versions, map[string]any{
			"targetClusterVersion": rel.ClusterVersion,
			"controlImpact":        "True", // the control-plane machines update too, one at a time
			"workloadImpact":       "True", // machines are cordoned and their workloads evacuated
			"impactDescription":    cmp.Or(rel.Notes, "Updates every machine rack by rack; workloads move off each machine while it updates."),
			"expectedDuration":     "",
			"supportExpiryDate":    "",
		})
	}
	r.Properties["availableUpgradeVersions"] = versions
	return nil
}

// RefreshUpgradeVersions brings every cluster's availableUpgradeVersions
// up to date with the imported releases: after an import.
func (p *Provider) RefreshUpgradeVersions(ctx context.Context) error {
	clusters, err := p.svc.ResourcesOfType(ctx, clusterType)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range clusters {
		id, err := arm.ParseID(c.ID)
		if err != nil {
			continue
		}
		_, err = p.upsertDeclared(ctx, id, func(r *resource.Resource, created bool) error {
			if created {
				return resource.ErrUnchanged // deleted meanwhile
			}
			return p.setUpgradeVersions(ctx, r)
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// updateProps changes the properties of an existing resource on the
// system's behalf.
func (p *Provider) updateProps(ctx context.Context, id arm.ID, change func(props map[string]any)) error {
	_, err := p.svc.Upsert(ctx, id, func(r *resource.Resource, created bool) error {
		if created {
			return resource.ErrUnchanged // deleted meanwhile
		}
		change(r.Properties)
		return nil
	})
	return err
}
