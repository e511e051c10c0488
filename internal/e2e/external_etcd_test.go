package e2e

import (
	"net/http"
	"os/exec"
	"testing"

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
}
