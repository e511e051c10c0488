package redfishsim

import (
	"fmt"
)

// SetUnreachable makes the BMC drop every connection (true) or answer again
// (false), like a BMC whose network or web server has failed.
func (b *BMC) SetUnreachable(unreachable bool) { b.unreachable.Store(unreachable) }

// FailDIMM fails the index-th member of the host's Memory collection: its
// Status becomes Disabled and Critical, the system's memory total drops by
// its capacity, the system's health rolls up to Critical, and subscribers
// get an Alert.
func (b *BMC) FailDIMM(index int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	sys, _ := b.object(b.system)
	dimms := b.members(linkOf(sys, "Memory"))
	if index < 0 || index >= len(dimms) {
		return fmt.Errorf("fail DIMM %d: the system has %d memory devices", index, len(dimms))
	}
	p := dimms[index]
	dimm, _ := b.object(p)
	status := sub(dimm, "Status")
	if status["State"] != "Enabled" {
		return fmt.Errorf("fail DIMM %s: state is %v, not Enabled", p, status["State"])
	}
	status["State"], status["Health"] = "Disabled", "Critical"
	b.put(p, dimm)

	summary := sub(sys, "MemorySummary")
	capacity, _ := number(dimm["CapacityMiB"])
	if total, ok := number(summary["TotalSystemMemoryGiB"]); ok {
		summary["TotalSystemMemoryGiB"] = total - capacity/1024
	}
	sub(summary, "Status")["Health"], sub(summary, "Status")["HealthRollup"] = "Critical", "Critical"
	sub(sys, "Status")["Health"], sub(sys, "Status")["HealthRollup"] = "Critical", "Critical"
	b.put(b.system, sys)

	b.log.Debug("DIMM failed", "dimm", p)
	b.emit(event{
		eventType: "Alert",
		messageID: "ResourceEvent.1.3.ResourceStatusChangedCritical",
		message:   fmt.Sprintf("The health of resource `%s` has changed to Critical.", p),
		args:      []string{p, "Critical"},
		severity:  "Critical",
		origin:    p,
	})
	return nil
}

// SetFirmwareVersion changes the version firmware component id (a
// FirmwareInventory member: "BIOS", "BMC") reports, and for the BIOS the
// system's BiosVersion too, for the BMC its manager's FirmwareVersion, as
// a flash done by hand would.
func (b *BMC) SetFirmwareVersion(id, version string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := rootPath + "/UpdateService/FirmwareInventory/" + id
	if _, ok := b.object(p); !ok {
		return fmt.Errorf("set firmware %s: the BMC has no such firmware", id)
	}
	b.setFirmware(p, version)
	return nil
}
