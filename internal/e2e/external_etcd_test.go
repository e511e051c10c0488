package e2e

import (
	"net/http"
	"os/exec"
	"testing"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestExternalEtcd runs the control plane on an external etcd (Debian's
// etcd-server), as a highly available deployment does, instead of the
// embedded one.
func TestExternalEtcd(t *testing.T) {
	bin := requireTool(t, "etcd", "etcd-server")
	client, peer := "http://"+freeAddr(t), "http://"+freeAddr(t)
	cmd := exec.Command(bin, "--data-dir", t.TempDir(), "--name", "e2e",
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "e2e="+peer, "--log-level", "error")
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	// store.Open waits for the first read, so the etcd just started may
	// still be coming up.
	cp := servertest.Start(t, func(c *server.Config) { c.EtcdEndpoints = []string{client} })
	group := "/subscriptions/" + cp.Creds.SubscriptionID + "/resourceGroups/on-external-etcd?api-version=2021-04-01"
	if r, err := cp.Client.Do(t.Context(), http.MethodPut, group, map[string]any{"location": "local"}); err != nil || r.Expect(201) != nil {
		t.Fatalf("PUT group on external etcd = %v, %v", r, err)
	}
	if r, err := cp.Client.Do(t.Context(), http.MethodGet, group, nil); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET group on external etcd = %v, %v", r, err)
	}
	// The store's size comes from the external member's status; its quota
	// is that cluster's own setting, which the control plane does not know.
	checkStoreMetrics(t, cp, 0)
}

// TestStoreMetrics: /metrics says how much of its quota the embedded
// store uses.
func TestStoreMetrics(t *testing.T) {
	t.Parallel()
	checkStoreMetrics(t, servertest.Start(t), 8<<30)
}

// checkStoreMetrics requires cp's /metrics to give the store's size and
// the part in use (etcd's estimates as of its last commit, which on a
// fresh store can put the second above the first), and quota (0: none
// given).
func checkStoreMetrics(t *testing.T, cp *servertest.ControlPlane, quota float64) {
	t.Helper()
	clients := []*client.Client{cp.Client}
	get := func(name string) float64 {
		t.Helper()
		v, err := metric(clients, name)
		if err != nil {
			t.Fatal(err)
		}
		return v[0]
	}
	size, inUse, q := get("citadel_store_db_size_bytes"), get("citadel_store_db_size_in_use_bytes"), get("citadel_store_quota_bytes")
	if size <= 0 || inUse <= 0 || q != quota {
		t.Errorf("store metrics: size %v, in use %v, quota %v; want a size, the part in use, quota %v", size, inUse, q, quota)
	}
}
