package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestRestartReusesEverything restarts a server on its data directory: the
// CA, the credentials, the tenant and subscription, the signing keys (so
// tokens issued before still work) and the resources all carry over.
func TestRestartReusesEverything(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	onDir := func(c *server.Config) { c.DataDir, c.Listen = dir, addr }

	first := servertest.Start(t, onDir)
	token := first.Token(t)
	group := "/subscriptions/" + first.Creds.SubscriptionID + "/resourceGroups/kept?api-version=2021-04-01"
	if r, err := first.Client.Do(t.Context(), http.MethodPut, group, map[string]any{"location": "local"}); err != nil || r.Expect(201) != nil {
		t.Fatalf("PUT group: %v %v", r, err)
	}
	ca, err := os.ReadFile(first.Creds.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	credsFile, err := os.ReadFile(filepath.Join(dir, "bootstrap", "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, "bootstrap", "admin.json")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("admin.json mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	first.Close()

	second := servertest.Start(t, onDir)
	if again, _ := os.ReadFile(second.Creds.CACertFile); string(again) != string(ca) {
		t.Error("the CA certificate changed on restart")
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "bootstrap", "admin.json")); string(again) != string(credsFile) {
		t.Errorf("admin.json changed on restart:\n%s\nwant\n%s", again, credsFile)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, second.Creds.ARMEndpoint+group[1:], nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := second.HTTPClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET group with a token from before the restart = %d, want 200", resp.StatusCode)
	}
}
