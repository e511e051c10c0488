package sim

import (
	"errors"
	"testing"
)

// TestSiteVMs: each machine's simulated host has a VM driver of its own,
// which the site hands out once its agents run.
func TestSiteVMs(t *testing.T) {
	s, _ := faultSite(t, false)
	if _, err := s.VMs("fr1m1"); !errors.Is(err, ErrNoAgents) {
		t.Errorf("VMs before the agents start: %v, want ErrNoAgents", err)
	}
	s2, _ := faultSite(t, true)
	one, err := s2.VMs("fr1m1")
	if err != nil || one == nil {
		t.Fatalf("VMs(fr1m1) = %v, %v", one, err)
	}
	if other, _ := s2.VMs("fr2m1"); other == one {
		t.Errorf("two machines share a VM driver")
	}
	if _, err := s2.VMs("nope"); !errors.Is(err, ErrNoMachine) {
		t.Errorf("VMs(nope): %v, want ErrNoMachine", err)
	}
}
