package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

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
	cmd := startUntil(t, bin, "6 machines up", "sim", "run", "--credentials", cp.CredentialsFile, "--agent-api", cp.AgentURL,
		"--name", "remote", "--racks", "3", "--machines-per-rack", "1", "--state-dir", t.TempDir(), "--sim-control", "")
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
	interrupt(t, cmd)
}
