package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/citadel-cloud/citadel/internal/client"
)

// TestCitadelUp runs `citadel up` as a newcomer does, with a small site,
// logs in with az as it says, lists the machines, stops it with Ctrl-C
// and runs it again on the same data directory.
func TestCitadelUp(t *testing.T) {
	requireAz(t)
	t.Parallel()
	bin := buildCitadel(t)
	dir, addr, agentAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	up := func(t *testing.T) *exec.Cmd {
		t.Helper()
		return startUntil(t, bin, "Citadel is up: 9 machines in 4 racks",
			"up", "--data-dir", dir, "--listen", addr, "--agent-listen", agentAddr, "--racks", "3", "--machines-per-rack", "2")
	}

	first := up(t)
	creds, err := client.LoadCredentials(filepath.Join(dir, "bootstrap", "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	az := newAzCLIFor(t, creds)
	defer az.logTimings(t)
	az.login(t, creds)
	var machines []struct {
		Name string `json:"name"`
	}
	az.json(t, &machines, "resource", "list", "-g", "citadel-site", "--resource-type", "Microsoft.NetworkCloud/bareMetalMachines")
	if len(machines) != 9 {
		t.Errorf("az resource list: %d machines, want 9: %+v", len(machines), machines)
	}
	var m struct {
		Properties struct {
			DetailedStatus string `json:"detailedStatus"`
			PowerState     string `json:"powerState"`
			LivenessState  string `json:"livenessState"`
			AgentVersion   string `json:"agentVersion"`
		} `json:"properties"`
	}
	az.json(t, &m, "resource", "show", "-g", "citadel-site", "-n", "citadelr1m1", "--resource-type", "Microsoft.NetworkCloud/bareMetalMachines")
	if p := m.Properties; p.DetailedStatus != "Provisioned" || p.PowerState != "On" || p.LivenessState != "Ready" || p.AgentVersion == "" {
		t.Errorf("citadelr1m1 = %+v, want Provisioned, On and its agent Ready", m.Properties)
	}
	interrupt(t, first)

	second := up(t) // the same data directory: same credentials, same BMC addresses
	az.json(t, &m, "resource", "show", "-g", "citadel-site", "-n", "citadelr1m1", "--resource-type", "Microsoft.NetworkCloud/bareMetalMachines")
	if m.Properties.DetailedStatus != "Provisioned" {
		t.Errorf("after the second run, citadelr1m1 = %+v, want Provisioned", m.Properties)
	}
	interrupt(t, second)
}
