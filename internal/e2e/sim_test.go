package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestCitadelSim runs `citadel sim run` against a control plane that
// runs elsewhere: through the ARM API it defines and deploys its cluster
// and gets a bootstrap token, and its agents report over the agent API.
func TestCitadelSim(t *testing.T) {
	t.Parallel()
	bin := buildCitadel(t)
	cp := servertest.Start(t)
	ncImage(t, cp.DataDir)
	cmd := exec.Command(bin, "sim", "run", "--credentials", cp.CredentialsFile, "--agent-api", cp.AgentURL,
		"--name", "remote", "--racks", "3", "--machines-per-rack", "1", "--state-dir", t.TempDir(), "--sim-control", "")
	cmd.Stderr = t.Output()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Log(sc.Text())
			if strings.Contains(sc.Text(), "6 machines up") {
				up <- true
			}
		}
		close(up)
	}()
	select {
	case ok := <-up:
		if !ok {
			t.Fatal("citadel sim run ended before its machines were up")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("citadel sim run: machines not up after 2 minutes")
	}
	path := "/subscriptions/" + cp.Creds.SubscriptionID + "/resourceGroups/remote-site/providers/Microsoft.NetworkCloud/bareMetalMachines?api-version=" + ncAPI
	r, err := cp.Client.Do(t.Context(), http.MethodGet, path, nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("list machines: %v %v", r, err)
	}
	var list struct {
		Value []struct {
			Name       string `json:"name"`
			Properties struct {
				DetailedStatus string `json:"detailedStatus"`
				LivenessState  string `json:"livenessState"`
			} `json:"properties"`
		} `json:"value"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Value) != 6 {
		t.Fatalf("%d machines, want 6", len(list.Value))
	}
	for _, m := range list.Value {
		if m.Properties.DetailedStatus != "Provisioned" || m.Properties.LivenessState != "Ready" {
			t.Errorf("%s = %+v, want Provisioned and Ready", m.Name, m.Properties)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("citadel sim run after Ctrl-C: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("citadel sim run did not stop within 30 s of Ctrl-C")
	}
}
