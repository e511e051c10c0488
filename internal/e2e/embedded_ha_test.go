package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEmbeddedHA runs three `citadel server` replicas on embedded etcd
// members joined with --join and the first one's join token (TLS between
// members and from each replica's client): a resource group written
// through one is read through another; a replica killed with SIGKILL
// leaves two members, a quorum, and the others keep serving writes; it
// comes back as the member it was. A wrong token is refused. A VM image
// imported through one replica is served by another, which copies it.
func TestEmbeddedHA(t *testing.T) {
	t.Parallel()
	bin := buildCitadel(t)
	first := &citadelProcess{bin: bin, dataDir: t.TempDir(), listen: freeAddr(t), args: []string{"--agent-listen", freeAddr(t)}}
	putClusterImage(t, first.dataDir)
	first.start(t)
	token := strings.TrimSpace(mustRead(t, filepath.Join(first.dataDir, "join-token")))
	join := "https://" + first.listen

	// A wrong secret with the right CA hash: the replica does not join.
	wrong := token[:strings.LastIndex(token, "::")+2] + "0123456789abcdef"
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "server", "--data-dir", t.TempDir(), "--listen", freeAddr(t), "--agent-listen", "",
		"--join", join, "--join-token", wrong).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "join token refused") {
		t.Fatalf("citadel server --join with a wrong token = %v\n%s\nwant a refusal", err, out)
	}

	replicas := []*citadelProcess{first}
	for range 2 {
		r := &citadelProcess{bin: bin, dataDir: t.TempDir(), listen: freeAddr(t), args: []string{"--join", join, "--join-token", token,
			"--agent-listen", freeAddr(t)}}
		putClusterImage(t, r.dataDir)
		r.start(t)
		replicas = append(replicas, r)
	}
	list, err := exec.CommandContext(t.Context(), bin, "store", "member", "list", "--data-dir", first.dataDir).CombinedOutput()
	if err != nil || strings.Count(string(list), "https://") < 6 {
		t.Fatalf("citadel store member list = %v\n%s\nwant three members, each with peer and client URLs", err, list)
	}
	if a, b := mustRead(t, filepath.Join(replicas[2].dataDir, "join-token")), mustRead(t, filepath.Join(first.dataDir, "join-token")); a != b {
		t.Errorf("the joined replica's join token differs from the first's")
	}

	c0, c2 := first.client(t), replicas[2].client(t)
	group := func(name string) string {
		return "/subscriptions/" + c0.Creds.SubscriptionID + "/resourceGroups/" + name + "?api-version=2021-04-01"
	}
	if r, err := c0.Do(t.Context(), http.MethodPut, group("embedded-ha"), map[string]any{"location": "local"}); err != nil || r.Status/100 != 2 {
		t.Fatalf("PUT group through replica 0 = %v, %v", r, err)
	}
	if r, err := c2.Do(t.Context(), http.MethodGet, group("embedded-ha"), nil); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET group through replica 2 = %v, %v", r, err)
	}

	checkFilesAcrossReplicas(t, bin, first, replicas[2], "https://"+replicas[2].args[len(replicas[2].args)-1])

	replicas[1].kill(t)
	if r, err := c2.Do(t.Context(), http.MethodPut, group("after-kill"), map[string]any{"location": "local"}); err != nil || r.Status/100 != 2 {
		t.Fatalf("PUT group through replica 2 with replica 1 dead = %v, %v", r, err)
	}
	if r, err := c0.Do(t.Context(), http.MethodGet, group("after-kill"), nil); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET group through replica 0 with replica 1 dead = %v, %v", r, err)
	}

	// Started again on its data dir, without --join, it is the member it
	// was and catches up.
	replicas[1].args = nil
	replicas[1].start(t)
	if r, err := replicas[1].client(t).Do(t.Context(), http.MethodGet, group("after-kill"), nil); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET group through the restarted replica 1 = %v, %v", r, err)
	}
}
