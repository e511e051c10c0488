package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestBackupRestore takes a backup of a running control plane with
// `citadel backup`, restores it with `citadel restore` into a new data
// directory and starts a server on it: resources, operations, identities,
// the CA and the activity log with its chain are as they were when the
// backup was taken, and nothing written after it is. Only an Owner may
// take a backup, and a wrong passphrase or a used data directory are
// refused.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	bin := buildCitadel(t)
	cp := servertest.Start(t)
	c := cp.Client
	sub := "/subscriptions/" + cp.Creds.SubscriptionID
	group := sub + "/resourceGroups/bk"
	if r, err := c.Do(t.Context(), http.MethodPut, group+"?api-version=2021-04-01", map[string]any{"location": "local"}); err != nil || r.Expect(201) != nil {
		t.Fatalf("create group: %v %v", err, r)
	}
	prefix := group + "/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/prefix1?api-version=2025-07-15"
	r, err := c.Do(t.Context(), http.MethodPut, prefix, map[string]any{"location": "local", "properties": map[string]any{"ipPrefixRules": []any{
		map[string]any{"action": "Permit", "sequenceNumber": 1, "networkPrefix": "10.0.0.0/8"}}}})
	if err != nil || r.Status/100 != 2 {
		t.Fatalf("create prefix: %v %v", err, r)
	}
	operation := strings.TrimPrefix(r.Header.Get("Azure-AsyncOperation"), strings.TrimSuffix(cp.Creds.ARMEndpoint, "/"))
	ncWait(t, c, r)
	sp := alNewPrincipal(t, cp, "bk-reader")
	dir := t.TempDir()
	pass := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	citadel := func(args ...string) (string, error) {
		out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
		return string(out), err
	}

	// A principal without Owner's rights is refused, and the refusal is
	// recorded.
	spCreds := cp.Creds
	spCreds.ClientID, spCreds.ClientSecret = sp.Client.Creds.ClientID, sp.Client.Creds.ClientSecret
	spFile := filepath.Join(dir, "sp.json")
	b, _ := json.Marshal(spCreds)
	os.WriteFile(spFile, b, 0o600)
	if out, err := citadel("backup", "--credentials", spFile, "--out", filepath.Join(dir, "refused.age"), "--passphrase-file", pass); err == nil ||
		!strings.Contains(out, "AuthorizationFailed") {
		t.Errorf("citadel backup as a principal without a role = %v:\n%s\nwant AuthorizationFailed", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "refused.age")); err == nil {
		t.Error("a refused backup left a file")
	}

	backup := filepath.Join(dir, "citadel.backup")
	if out, err := citadel("backup", "--credentials", cp.CredentialsFile, "--out", backup, "--passphrase-file", pass); err != nil ||
		!strings.Contains(out, "backup written") {
		t.Fatalf("citadel backup = %v:\n%s", err, out)
	}
	if raw, _ := os.ReadFile(backup); bytes.Contains(raw, []byte("BEGIN")) || bytes.Contains(raw, []byte("ipPrefixRules")) {
		t.Error("the backup file holds plaintext")
	}
	after := sub + "/resourceGroups/after-backup?api-version=2021-04-01"
	if r, err := c.Do(t.Context(), http.MethodPut, after, map[string]any{"location": "local"}); err != nil || r.Expect(201) != nil {
		t.Fatalf("create group: %v %v", err, r)
	}

	restored := filepath.Join(dir, "restored")
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("not the passphrase at all"), 0o600)
	if out, err := citadel("restore", "--in", backup, "--data-dir", restored, "--passphrase-file", wrong); err == nil || !strings.Contains(out, "cannot be decrypted") {
		t.Errorf("restore with a wrong passphrase = %v:\n%s", err, out)
	}
	if out, err := citadel("restore", "--in", backup, "--data-dir", cp.DataDir, "--passphrase-file", pass); err == nil || !strings.Contains(out, "not empty") {
		t.Errorf("restore into a used data directory = %v:\n%s", err, out)
	}
	if out, err := citadel("restore", "--in", backup, "--data-dir", restored, "--passphrase-file", pass); err != nil {
		t.Fatalf("citadel restore = %v:\n%s", err, out)
	}

	cp2 := servertest.Start(t, func(cfg *server.Config) { cfg.DataDir = restored })
	c2 := cp2.Client
	for path, want := range map[string]int{group + "?api-version=2021-04-01": 200, prefix: 200, after: 404} {
		if r, err := c2.Do(t.Context(), http.MethodGet, path, nil); err != nil || r.Status != want {
			t.Errorf("GET %s on the restored control plane = %v %v, want %d", path, r, err, want)
		}
	}
	if r, err := c2.Do(t.Context(), http.MethodGet, operation, nil); err != nil || r.Status != 200 || !strings.Contains(string(r.Body), "Succeeded") {
		t.Errorf("GET the prefix's operation on the restored control plane = %v %v, want Succeeded", r, err)
	}
	// The identity provider: the principal's secret and the signing keys.
	spCreds.ARMEndpoint = cp2.Creds.ARMEndpoint
	spc, err := client.New(spCreds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spc.Token(t.Context()); err != nil {
		t.Errorf("the principal cannot get a token from the restored control plane: %v", err)
	}
	// The CA: clients that trusted it trust the restored server.
	ca1, _ := os.ReadFile(cp.Creds.CACertFile)
	ca2, _ := os.ReadFile(cp2.Creds.CACertFile)
	if len(ca1) == 0 || !bytes.Equal(ca1, ca2) {
		t.Error("the restored control plane has another CA")
	}
	// The activity log: its chain and signing key, verified offline.
	export := filepath.Join(dir, "audit.json")
	if out, err := citadel("audit", "export", "--credentials", cp2.CredentialsFile, "--out", export); err != nil {
		t.Fatalf("citadel audit export = %v:\n%s", err, out)
	}
	if out, err := citadel("audit", "verify", export, "--public-key", filepath.Join(cp.DataDir, "audit", "audit-signing.pub")); err != nil {
		t.Errorf("the restored activity log does not verify with the original key: %v:\n%s", err, out)
	}
	raw, _ := os.ReadFile(export)
	if !bytes.Contains(raw, []byte("/resourceGroups/bk")) {
		t.Error("the restored activity log has no record of the group created before the backup")
	}
	if !bytes.Contains(raw, []byte("Citadel.Backup/backups/action")) || !bytes.Contains(raw, []byte("bk-reader")) {
		t.Error("the activity log has no record of the refused backup")
	}
}
