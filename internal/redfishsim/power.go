package redfishsim

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// power is the host's power state. A reset records when its phases end, and
// settle works out the state from the clock whenever the BMC is read, so
// an idle BMC needs no goroutine. A timer only makes settle run on time for
// the events.
type power struct {
	observed string    // the PowerState in the system resource
	target   string    // "On" or "Off" while a reset is in progress, else ""
	offUntil time.Time // end of the PoweringOff phase
	onUntil  time.Time // end of the PoweringOn phase (target On)
	timer    *time.Timer
}

// at is the power state at now.
func (p *power) at(now time.Time) string {
	switch {
	case p.target == "":
		return p.observed
	case now.Before(p.offUntil):
		return "PoweringOff"
	case p.target == "Off":
		return "Off"
	case now.Before(p.onUntil):
		return "PoweringOn"
	}
	return "On"
}

// next is when the state changes next, or zero.
func (p *power) next(now time.Time) time.Time {
	switch {
	case p.target == "":
		return time.Time{}
	case now.Before(p.offUntil):
		return p.offUntil
	case p.target == "On" && now.Before(p.onUntil):
		return p.onUntil
	}
	return time.Time{}
}

// settle brings the system resource up to the clock: it writes the power
// state, sends its event and, when a reset has reached On, boots.
// The caller holds b.mu.
func (b *BMC) settle() {
	if b.power.target == "" {
		return
	}
	now := b.opts.Now()
	state := b.power.at(now)
	b.setPowerState(state)
	if state != b.power.target {
		b.armTimer(now)
		return
	}
	b.power.target = ""
	if state == "On" {
		b.boot()
	}
}

// armTimer makes settle run when the current phase ends.
func (b *BMC) armTimer(now time.Time) {
	next := b.power.next(now)
	if next.IsZero() {
		return
	}
	if b.power.timer == nil {
		b.power.timer = time.AfterFunc(next.Sub(now), func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.settle()
		})
		return
	}
	b.power.timer.Reset(next.Sub(now))
}

// setPowerState writes state into the system resource and announces a
// change. The caller holds b.mu.
func (b *BMC) setPowerState(state string) {
	if state == b.power.observed {
		return
	}
	b.log.Debug("power state changed", "system", b.system, "from", b.power.observed, "to", state)
	b.power.observed = state
	sys, _ := b.object(b.system)
	sys["PowerState"] = state
	b.put(b.system, sys)
	m, ok := powerMessages[state]
	if !ok {
		return
	}
	b.emit(event{
		eventType: "StatusChange",
		messageID: "ResourceEvent.1.3." + m.name,
		message:   fmt.Sprintf(m.text, b.system),
		args:      []string{b.system},
		severity:  "OK",
		origin:    b.system,
	})
}

// powerMessages are the ResourceEvent registry messages announcing each
// power state.
var powerMessages = map[string]struct{ name, text string }{
	"On":          {"ResourcePoweredOn", "The resource `%s` has powered on."},
	"Off":         {"ResourcePoweredOff", "The resource `%s` has powered off."},
	"PoweringOn":  {"ResourcePoweringOn", "The resource `%s` is powering on."},
	"PoweringOff": {"ResourcePoweringOff", "The resource `%s` is powering off."},
}

// reset answers #ComputerSystem.Reset. Like iLO, it refuses a reset that
// makes no sense in the current state (On while On, ForceOff while Off)
// with InvalidOperationForSystemState.
func (b *BMC) reset(w http.ResponseWriter, r *http.Request, body []byte) error {
	const action = "ComputerSystem.Reset"
	in, err := newParams(action, body)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sys, _ := b.object(b.system)
	allowed := stringList(child(child(sys, "Actions"), "#"+action)["ResetType@Redfish.AllowableValues"])
	if allowed == nil {
		allowed = resetTypes
	}
	resetType := in.str("ResetType", true, allowed)
	if err := in.err(); err != nil {
		return err
	}
	b.settle()
	now, state := b.opts.Now(), b.power.observed
	p := &b.power
	off, on := b.opts.PowerOffDelay, b.opts.PowerOnDelay
	validStates, simulated := resetStates[resetType]
	switch {
	case !simulated:
		return refuse(http.StatusBadRequest, msg("ActionParameterNotSupported", "ResetType", action))
	case !slices.Contains(validStates, state):
		return refuse(http.StatusBadRequest, msg("InvalidOperationForSystemState", resetType, state))
	case resetType == "Nmi":
		// The host gets an NMI; the power state does not change.
	case resetType == "ForceOff" && state == "PoweringOff":
		p.target, p.offUntil = "Off", now // cut a graceful shutdown or restart short
	case resetType == "ForceOff" || resetType == "GracefulShutdown" || (resetType == "PushPowerButton" && state == "On"):
		p.target, p.offUntil = "Off", now.Add(off)
	case resetType == "GracefulRestart" || (resetType == "PowerCycle" && state == "On"):
		p.target, p.offUntil, p.onUntil = "On", now.Add(off), now.Add(off+on)
	default: // On, ForceOn, PushPowerButton from Off, ForceRestart, PowerCycle from Off
		p.target, p.offUntil, p.onUntil = "On", now, now.Add(on)
	}
	b.resets++
	b.log.DebugContext(r.Context(), "system reset", "system", b.system, "reset_type", resetType, "power_state", state)
	b.settle()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// resetTypes is the ResetType enumeration of the DMTF schema, for a system
// that does not list its allowable values.
var resetTypes = []string{"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi", "ForceOn", "PushPowerButton", "PowerCycle", "Suspend", "Pause", "Resume", "FullPowerCycle"}

// resetStates lists for each simulated reset type the power states that
// accept it. Suspend, Pause, Resume and FullPowerCycle are not simulated.
var resetStates = map[string][]string{
	"On":               {"Off"},
	"ForceOn":          {"Off"},
	"ForceOff":         {"On", "PoweringOn", "PoweringOff"},
	"GracefulShutdown": {"On"},
	"GracefulRestart":  {"On"},
	"ForceRestart":     {"On"},
	"Nmi":              {"On"},
	"PushPowerButton":  {"On", "Off"},
	"PowerCycle":       {"On", "Off"},
}

// boot is the host starting after a reset: the BIOS takes its pending
// settings, the boot follows the boot override, clears a Once override as
// real BMCs do, and a boot from a CD with media inserted installs that
// image. The caller holds b.mu.
func (b *BMC) boot() {
	b.applyBIOS()
	sys, _ := b.object(b.system)
	bootCfg := sub(sys, "Boot")
	source := "Hdd"
	if enabled, _ := bootCfg["BootSourceOverrideEnabled"].(string); enabled == "Once" || enabled == "Continuous" {
		if t, _ := bootCfg["BootSourceOverrideTarget"].(string); t != "" && t != "None" {
			source = t
		}
		if enabled == "Once" {
			bootCfg["BootSourceOverrideEnabled"] = "Disabled"
			b.put(b.system, sys)
		}
	}
	if source != "Cd" {
		return
	}
	if image := b.mediaImage(); image != "" {
		b.booted = image
		b.reimages++
		b.log.Debug("booted from virtual media", "system", b.system, "image", image)
		if b.opts.OnInstall != nil {
			go b.opts.OnInstall(image)
		}
	}
}

// SetPowerState forces the power state, as a power loss or someone at the
// power button would: "On" (which boots) or "Off".
func (b *BMC) SetPowerState(state string) error {
	if state != "On" && state != "Off" {
		return fmt.Errorf("power state %q: want On or Off", state)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle()
	b.power.target = ""
	was := b.power.observed
	b.setPowerState(state)
	if state == "On" && was != "On" {
		b.boot()
	}
	return nil
}

// PowerState is the system's PowerState now.
func (b *BMC) PowerState() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle()
	return b.power.observed
}

// ResetCount is the number of ComputerSystem.Reset actions accepted.
func (b *BMC) ResetCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.resets
}

// BootedImage is the image last installed by booting from virtual media.
func (b *BMC) BootedImage() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle()
	return b.booted
}

// Reimages counts the boots from virtual media, that is the reimages.
func (b *BMC) Reimages() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle()
	return b.reimages
}

// Boot is the boot source override of the system.
type Boot struct {
	Target, Enabled, Mode string
}

// BootOverride is the system's boot source override now.
func (b *BMC) BootOverride() Boot {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle()
	sys, _ := b.object(b.system)
	cfg := child(sys, "Boot")
	target, _ := cfg["BootSourceOverrideTarget"].(string)
	enabled, _ := cfg["BootSourceOverrideEnabled"].(string)
	mode, _ := cfg["BootSourceOverrideMode"].(string)
	return Boot{Target: target, Enabled: enabled, Mode: mode}
}
