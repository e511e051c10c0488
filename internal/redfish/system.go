package redfish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// System is a ComputerSystem as the lifecycle needs it.
type System struct {
	ID               string // @odata.id
	Manufacturer     string
	Model            string
	SKU              string
	SerialNumber     string
	UUID             string
	BiosVersion      string
	PowerState       string // On, Off, PoweringOn, PoweringOff, Paused
	Health           string
	ProcessorSummary ProcessorSummary
	MemoryGiB        float64 // MemorySummary.TotalSystemMemoryGiB
	// ResetTypes and BootTargets are nil when the BMC does not say.
	ResetTypes  []string
	BootTargets []string
	Boot        BootOverride // the current override

	reset    action
	links    systemLinks
	settings string // @Redfish.Settings: where pending changes wait for a reset
	etag     string
}

// ProcessorSummary is the system's own count of its processors.
type ProcessorSummary struct {
	Count int
	Model string
}

// BootOverride is the one-time (or continuous) boot source override.
type BootOverride struct {
	Target  string // BootSourceOverrideTarget: None, Pxe, Cd, Hdd, Usb, BiosSetup, UefiHttp, ...
	Enabled string // BootSourceOverrideEnabled: Disabled, Once, Continuous
	Mode    string // BootSourceOverrideMode: UEFI or Legacy; empty leaves it as it is
}

type systemLinks struct {
	processors, memory, storage, simpleStorage, ethernet, virtualMedia, bios string
	managedBy                                                                []string
}

const resetAction = "#ComputerSystem.Reset"

func decodeSystem(b []byte) (*System, error) {
	v, err := decode[struct {
		ODataID          string `json:"@odata.id"`
		ETag             string `json:"@odata.etag"`
		Manufacturer     string
		Model            string
		SKU              string
		SerialNumber     string
		UUID             string
		BiosVersion      string
		PowerState       string
		Status           Status
		ProcessorSummary ProcessorSummary
		MemorySummary    struct{ TotalSystemMemoryGiB float64 }
		Boot             struct {
			BootSourceOverrideTarget  string
			BootSourceOverrideEnabled string
			BootSourceOverrideMode    string
			Targets                   []string `json:"BootSourceOverrideTarget@Redfish.AllowableValues"`
		}
		Actions map[string]action
		// Links to the system's parts.
		Processors, Memory, Storage, SimpleStorage, EthernetInterfaces, VirtualMedia, Bios link
		Links                                                                              struct{ ManagedBy []link }
		Settings                                                                           struct{ SettingsObject link } `json:"@Redfish.Settings"`
	}](b)
	if err != nil {
		return nil, err
	}
	s := &System{
		ID:               v.ODataID,
		Manufacturer:     v.Manufacturer,
		Model:            v.Model,
		SKU:              v.SKU,
		SerialNumber:     v.SerialNumber,
		UUID:             v.UUID,
		BiosVersion:      v.BiosVersion,
		PowerState:       v.PowerState,
		Health:           v.Status.Health,
		ProcessorSummary: v.ProcessorSummary,
		MemoryGiB:        v.MemorySummary.TotalSystemMemoryGiB,
		BootTargets:      nonEmpty(v.Boot.Targets),
		Boot:             BootOverride{Target: v.Boot.BootSourceOverrideTarget, Enabled: v.Boot.BootSourceOverrideEnabled, Mode: v.Boot.BootSourceOverrideMode},
		reset:            v.Actions[resetAction],
		links: systemLinks{
			processors:    v.Processors.ID,
			memory:        v.Memory.ID,
			storage:       v.Storage.ID,
			simpleStorage: v.SimpleStorage.ID,
			ethernet:      v.EthernetInterfaces.ID,
			virtualMedia:  v.VirtualMedia.ID,
			bios:          v.Bios.ID,
		},
		settings: v.Settings.SettingsObject.ID,
		etag:     v.ETag,
	}
	s.ResetTypes = nonEmpty(s.reset.allowable["ResetType"])
	for _, m := range v.Links.ManagedBy {
		if m.ID != "" {
			s.links.managedBy = append(s.links.managedBy, m.ID)
		}
	}
	return s, nil
}

// nonEmpty treats an empty list of allowable values as "not said".
func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// Power states, as Redfish spells them.
const (
	On  = "On"
	Off = "Off"
)

// pollInterval is how often the client reads a state it waits for, when
// the BMC gives no Retry-After. A power-state wait starts at
// firstPowerPoll and doubles up to pollInterval: most transitions end
// within a second or take minutes.
const (
	pollInterval   = 2 * time.Second
	firstPowerPoll = 50 * time.Millisecond
)

// Systems returns the @odata.id of each ComputerSystem.
func (c *Client) Systems(ctx context.Context) ([]string, error) {
	ids, err := c.members(ctx, c.root.systems)
	if err != nil {
		return nil, fmt.Errorf("redfish %s: systems: %w", c.cfg.Endpoint, err)
	}
	return ids, nil
}

// HostSystem returns the system that is the machine's host. A BMC may
// expose several: the GB300's also manages its NVIDIA GPU baseboard as a
// ComputerSystem, listed first or not. The host can be reset, has a boot
// override and is not made by NVIDIA; when that leaves more than one
// candidate the caller has to choose.
func (c *Client) HostSystem(ctx context.Context) (string, error) {
	ids, err := c.Systems(ctx)
	if err != nil {
		return "", err
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("redfish %s: host system: the BMC lists no systems", c.cfg.Endpoint)
	case 1:
		return ids[0], nil
	}
	var best []string
	bestScore := -1
	for _, id := range ids {
		s, err := c.system(ctx, id)
		if err != nil {
			return "", fmt.Errorf("redfish %s: host system: %w", c.cfg.Endpoint, err)
		}
		score := 0
		if s.reset.target != "" {
			score++
		}
		if s.Boot.Target != "" || s.BootTargets != nil {
			score++
		}
		if !strings.Contains(strings.ToLower(s.Manufacturer), "nvidia") {
			score += 2
		}
		switch {
		case score > bestScore:
			best, bestScore = []string{id}, score
		case score == bestScore:
			best = append(best, id)
		}
	}
	if len(best) != 1 {
		return "", fmt.Errorf("redfish %s: host system: %d systems look alike (%s); choose one", c.cfg.Endpoint, len(best), strings.Join(best, ", "))
	}
	return best[0], nil
}

// System reads a system, with the reset types from its ActionInfo when
// the BMC lists them there.
func (c *Client) System(ctx context.Context, sys string) (*System, error) {
	s, err := c.systemForReset(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("redfish %s: system %s: %w", c.cfg.Endpoint, sys, err)
	}
	return s, nil
}

func (c *Client) systemForReset(ctx context.Context, sys string) (*System, error) {
	s, err := c.system(ctx, sys)
	if err == nil && s.ResetTypes == nil && s.reset.actionInfo != "" {
		s.ResetTypes, err = c.allowable(ctx, s.reset, "ResetType")
	}
	return s, err
}

// system reads a system as it is, without following ActionInfo.
func (c *Client) system(ctx context.Context, sys string) (*System, error) {
	resp, err := c.get(ctx, sys)
	if err != nil {
		return nil, err
	}
	s, err := decodeSystem(resp.body)
	if err != nil {
		return nil, fmt.Errorf("system %s: %w", sys, err)
	}
	if s.ID == "" {
		s.ID = sys
	}
	if etag := resp.header.Get("ETag"); etag != "" {
		s.etag = etag
	}
	return s, nil
}

// allowable returns the values an action allows for param, inline or from
// its ActionInfo; nil when the BMC does not say.
func (c *Client) allowable(ctx context.Context, a action, param string) ([]string, error) {
	if v := nonEmpty(a.allowable[param]); v != nil || a.actionInfo == "" {
		return v, nil
	}
	resp, err := c.get(ctx, a.actionInfo)
	if err != nil {
		return nil, err
	}
	ai, err := decodeActionInfo(resp.body)
	if err != nil {
		return nil, fmt.Errorf("action info %s: %w", a.actionInfo, err)
	}
	return nonEmpty(ai.allowable(param)), nil
}

// allows reports whether a reset type may be tried: it is listed, or the
// BMC does not say.
func allows(s *System, resetType string) bool {
	return s.ResetTypes == nil || slices.Contains(s.ResetTypes, resetType)
}

// Reset sends ComputerSystem.Reset. It refuses a type the BMC does not
// list, and follows a task monitor when the BMC answers 202. The reset
// itself is asynchronous: wait for the power state to see it done.
func (c *Client) Reset(ctx context.Context, sys, resetType string) error {
	s, err := c.systemForReset(ctx, sys)
	if err == nil {
		err = c.reset(ctx, s, resetType)
	}
	if err != nil {
		return fmt.Errorf("redfish %s: reset %s %s: %w", c.cfg.Endpoint, sys, resetType, err)
	}
	return nil
}

func (c *Client) reset(ctx context.Context, s *System, resetType string) error {
	if s.reset.target == "" {
		return errors.New("the system has no ComputerSystem.Reset action")
	}
	if !allows(s, resetType) {
		return fmt.Errorf("the BMC allows only %s", strings.Join(s.ResetTypes, ", "))
	}
	resp, err := c.do(ctx, http.MethodPost, s.reset.target, map[string]string{"ResetType": resetType}, "")
	if err != nil {
		return err
	}
	c.log.InfoContext(ctx, "redfish reset sent", "system", s.ID, "reset_type", resetType, "status", resp.status)
	if loc := resp.header.Get("Location"); resp.status == http.StatusAccepted && loc != "" {
		return c.waitTask(ctx, loc, retryAfter(resp.header))
	}
	return nil
}

// waitTask follows a task monitor until the task ends, and fails when it
// was killed or cancelled or ended in an exception.
func (c *Client) waitTask(ctx context.Context, monitor string, delay time.Duration) error {
	t, err := c.followTask(ctx, monitor, "", delay)
	if err != nil {
		return err
	}
	if t.ended() && t.TaskState != "Completed" {
		return t.failure(monitor)
	}
	return nil
}

// followTask polls a task monitor until the task ends and returns the
// Task: 202 while it runs (honouring Retry-After), then the final answer,
// the Task or the operation's own. A monitor that is the task itself
// (Dell) answers 200 while the task runs: it is polled on. When the final
// answer is not a Task, or the monitor is gone once the task ended (404),
// the task is read itself where taskID names it; else the zero task says
// that the operation answered success without one. ctx bounds the wait.
func (c *Client) followTask(ctx context.Context, monitor, taskID string, delay time.Duration) (task, error) {
	for {
		if err := sleep(ctx, delay); err != nil {
			return task{}, fmt.Errorf("task %s: %w", monitor, err)
		}
		resp, err := c.do(ctx, http.MethodGet, monitor, nil, "")
		readTask := taskID != "" && !sameID(monitor, taskID)
		if isStatus(err, http.StatusNotFound) && readTask {
			monitor, delay = taskID, 0
			continue
		}
		if err != nil {
			return task{}, fmt.Errorf("task %s: %w", monitor, err)
		}
		delay = retryAfter(resp.header)
		if resp.status == http.StatusAccepted {
			continue
		}
		t, err := decodeTask(resp.body)
		switch {
		case err == nil && t.ended():
			return t, nil
		case err == nil && t.TaskState != "":
			continue // the task itself, still running
		case readTask:
			monitor, delay = taskID, 0
			continue
		}
		return task{}, nil
	}
}

// retryAfter reads Retry-After (seconds or an HTTP date), bounded to
// between one second and a minute.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	d := pollInterval
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, time.Second), time.Minute)
}

// WaitPowerState polls the system's PowerState until it is want. Errors
// while polling are retried: a BMC may stumble while its host resets.
func (c *Client) WaitPowerState(ctx context.Context, sys, want string, timeout time.Duration) error {
	if err := c.waitPower(ctx, sys, want, timeout); err != nil {
		return fmt.Errorf("redfish %s: %w", c.cfg.Endpoint, err)
	}
	return nil
}

func (c *Client) waitPower(ctx context.Context, sys, want string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	last, lastErr := "unknown", error(nil)
	for wait := firstPowerPoll; ; wait = min(2*wait, pollInterval) {
		s, err := c.system(ctx, sys)
		switch {
		case err == nil && s.PowerState == want:
			c.log.InfoContext(ctx, "redfish power state reached", "system", sys, "power_state", want, "took", time.Since(t0))
			return nil
		case ctx.Err() != nil: // the wait is over: report what was seen before
		case err != nil:
			lastErr = err
		default:
			last, lastErr = s.PowerState, nil
		}
		if err := sleep(ctx, wait); err != nil {
			if lastErr != nil {
				return fmt.Errorf("wait for %s to be %s: %w (last error: %v)", sys, want, err, lastErr)
			}
			return fmt.Errorf("wait for %s to be %s: still %s after %v: %w", sys, want, last, time.Since(t0).Round(time.Second), err)
		}
	}
}

// stateRefused reports a BMC refusing a reset because the system is in
// that state already, or getting there (HPE iLO rejects On when On).
func stateRefused(err error) bool { return HasMessage(err, "InvalidOperationForSystemState") }

// PowerOn switches the system on and waits until it is On. On when it is
// On already is success.
func (c *Client) PowerOn(ctx context.Context, sys string) error {
	if err := c.powerOn(ctx, sys); err != nil {
		return fmt.Errorf("redfish %s: power on %s: %w", c.cfg.Endpoint, sys, err)
	}
	return nil
}

func (c *Client) powerOn(ctx context.Context, sys string) error {
	s, err := c.systemForReset(ctx, sys)
	if err != nil {
		return err
	}
	if s.PowerState == On {
		return nil
	}
	if err := c.reset(ctx, s, On); err != nil {
		if !stateRefused(err) {
			return err
		}
		c.log.InfoContext(ctx, "redfish reset refused in the current state, waiting", "system", sys, "reset_type", On)
	}
	return c.waitPower(ctx, sys, On, c.cfg.PowerTimeout)
}

// PowerOff switches the system off and waits until it is Off. Off when it
// is Off already is success. Unless force, it asks the OS first
// (GracefulShutdown) and forces the power off after gracefulTimeout.
func (c *Client) PowerOff(ctx context.Context, sys string, force bool, gracefulTimeout time.Duration) error {
	if err := c.powerOff(ctx, sys, force, gracefulTimeout); err != nil {
		return fmt.Errorf("redfish %s: power off %s: %w", c.cfg.Endpoint, sys, err)
	}
	return nil
}

func (c *Client) powerOff(ctx context.Context, sys string, force bool, gracefulTimeout time.Duration) error {
	s, err := c.systemForReset(ctx, sys)
	if err != nil {
		return err
	}
	if s.PowerState == Off {
		return nil
	}
	switch {
	case force:
	case !allows(s, "GracefulShutdown"):
		c.log.WarnContext(ctx, "redfish graceful shutdown not supported, forcing off", "system", sys)
	default:
		if err := c.reset(ctx, s, "GracefulShutdown"); err != nil && !stateRefused(err) {
			return err
		}
		err := c.waitPower(ctx, sys, Off, gracefulTimeout)
		if err == nil || ctx.Err() != nil {
			return err
		}
		c.log.WarnContext(ctx, "redfish graceful shutdown timed out, forcing off", "system", sys, "timeout", gracefulTimeout)
	}
	if err := c.reset(ctx, s, "ForceOff"); err != nil && !stateRefused(err) {
		return err
	}
	return c.waitPower(ctx, sys, Off, c.cfg.PowerTimeout)
}

// Restart restarts the system and waits until it is On: GracefulRestart
// where the BMC has it, else a graceful power off (forced after
// gracefulTimeout) and On. Dell, AMI and Intel BMCs have no
// GracefulRestart. A system that is Off is only switched on.
func (c *Client) Restart(ctx context.Context, sys string, gracefulTimeout time.Duration) error {
	if err := c.restart(ctx, sys, gracefulTimeout); err != nil {
		return fmt.Errorf("redfish %s: restart %s: %w", c.cfg.Endpoint, sys, err)
	}
	return nil
}

func (c *Client) restart(ctx context.Context, sys string, gracefulTimeout time.Duration) error {
	s, err := c.systemForReset(ctx, sys)
	if err != nil {
		return err
	}
	if s.PowerState == Off {
		return c.powerOn(ctx, sys)
	}
	if allows(s, "GracefulRestart") {
		if err := c.reset(ctx, s, "GracefulRestart"); err != nil {
			return err
		}
		return c.waitPower(ctx, sys, On, c.cfg.PowerTimeout)
	}
	c.log.InfoContext(ctx, "redfish graceful restart not supported, powering off and on", "system", sys)
	if err := c.powerOff(ctx, sys, false, gracefulTimeout); err != nil {
		return err
	}
	return c.powerOn(ctx, sys)
}

// SetBootOverride sets the boot source override and reads it back. With
// an ETag it sends If-Match, and on 412 reads the system again and retries
// once. Some BMCs (sushy-tools) turn Once into Continuous: that is
// accepted with a warning, since the override still takes effect.
func (c *Client) SetBootOverride(ctx context.Context, sys string, b BootOverride) error {
	if err := c.setBoot(ctx, sys, b); err != nil {
		return fmt.Errorf("redfish %s: boot override %s %s/%s: %w", c.cfg.Endpoint, sys, b.Target, b.Enabled, err)
	}
	return nil
}

func (c *Client) setBoot(ctx context.Context, sys string, b BootOverride) error {
	s, err := c.system(ctx, sys)
	if err != nil {
		return err
	}
	if s.BootTargets != nil && !slices.Contains(s.BootTargets, b.Target) {
		return fmt.Errorf("the BMC allows only %s", strings.Join(s.BootTargets, ", "))
	}
	boot := map[string]string{"BootSourceOverrideTarget": b.Target, "BootSourceOverrideEnabled": b.Enabled}
	if b.Mode != "" {
		boot["BootSourceOverrideMode"] = b.Mode
	}
	patch := map[string]any{"Boot": boot}
	_, err = c.do(ctx, http.MethodPatch, sys, patch, s.etag)
	if isStatus(err, http.StatusPreconditionFailed) {
		c.log.InfoContext(ctx, "redfish etag changed, retrying", "system", sys)
		if s, err = c.system(ctx, sys); err != nil {
			return err
		}
		_, err = c.do(ctx, http.MethodPatch, sys, patch, s.etag)
	}
	if err != nil {
		return err
	}
	return c.verifyBoot(ctx, sys, b)
}

// verifyBoot reads the override back, from the system or, where the BMC
// applies settings on the next reset (Dell), from its settings object.
func (c *Client) verifyBoot(ctx context.Context, sys string, want BootOverride) error {
	s, err := c.system(ctx, sys)
	if err != nil {
		return err
	}
	got := s.Boot
	if !bootMatches(got, want) && s.settings != "" {
		pending, err := c.system(ctx, s.settings)
		if err != nil {
			return err
		}
		got = pending.Boot
	}
	if !bootMatches(got, want) {
		return fmt.Errorf("read back %s/%s/%s", got.Target, got.Enabled, got.Mode)
	}
	if got.Enabled != want.Enabled {
		c.log.WarnContext(ctx, "redfish boot override is continuous, not once", "system", sys, "target", got.Target)
	}
	return nil
}

func bootMatches(got, want BootOverride) bool {
	enabled := got.Enabled == want.Enabled || want.Enabled == "Once" && got.Enabled == "Continuous"
	mode := want.Mode == "" || got.Mode == "" || got.Mode == want.Mode
	return got.Target == want.Target && enabled && mode
}
