package e2e

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
		cmd := exec.Command(bin, "up", "--data-dir", dir, "--listen", addr, "--agent-listen", agentAddr, "--racks", "3", "--machines-per-rack", "2")
		cmd.Stderr = t.Output()
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				t.Log(sc.Text())
				if strings.HasPrefix(sc.Text(), "Citadel is up: 9 machines in 4 racks") {
					ready <- true
				}
			}
			close(ready)
		}()
		select {
		case ok := <-ready:
			if !ok {
				t.Fatal("citadel up ended before it was up")
			}
		case <-time.After(3 * time.Minute):
			t.Fatal("citadel up was not up after 3 minutes")
		}
		return cmd
	}
	stop := func(t *testing.T, cmd *exec.Cmd) {
		t.Helper()
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("citadel up after Ctrl-C: %v, want a clean exit", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("citadel up did not stop within 30 s of Ctrl-C")
		}
	}

	first := up(t)
	creds, err := client.LoadCredentials(filepath.Join(dir, "bootstrap", "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	az := newAzCLIFor(t, creds)
	defer az.logTimings(t)
	az.ok(t, "cloud", "register", "-n", "citadel", "--endpoint-resource-manager", creds.ARMEndpoint)
	az.ok(t, "cloud", "set", "-n", "citadel")
	az.ok(t, "login", "--service-principal", "-u", creds.ClientID, "-p", creds.ClientSecret, "--tenant", creds.TenantID)
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
	stop(t, first)

	second := up(t) // the same data directory: same credentials, same BMC addresses
	az.json(t, &m, "resource", "show", "-g", "citadel-site", "-n", "citadelr1m1", "--resource-type", "Microsoft.NetworkCloud/bareMetalMachines")
	if m.Properties.DetailedStatus != "Provisioned" {
		t.Errorf("after the second run, citadelr1m1 = %+v, want Provisioned", m.Properties)
	}
	stop(t, second)
}
