package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestUpdates runs the air-gapped update flow with the citadel binary: the
// vendor makes keys, a root and bundles offline; the operator installs the
// root of trust and imports the bundles into a running control plane,
// which keeps the artifacts and lists the releases. A changed artifact,
// an older release, another vendor's bundle and an expired one are
// refused with the reason; only an Owner installs trust or imports, a
// Reader lists; each import and refusal is in the activity log.
func TestUpdates(t *testing.T) {
	t.Parallel()
	bin := buildCitadel(t)
	cp := servertest.Start(t)
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	citadel := func(args ...string) (string, int) { return alRunCitadel(t, bin, args...) }
	ok := func(args ...string) string {
		t.Helper()
		out, code := citadel(args...)
		if code != 0 {
			t.Fatalf("citadel %s = exit %d:\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	refused := func(want string, args ...string) {
		t.Helper()
		out, code := citadel(args...)
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("citadel %s = exit %d:\n%s\nwant a refusal containing %q", strings.Join(args, " "), code, out, want)
		}
	}
	creds := []string{"--credentials", cp.CredentialsFile}

	// The vendor, offline.
	ok("update", "keys", "--out", file("vendor-keys.json"))
	ok("update", "root", "--keys", file("vendor-keys.json"), "--expires", "8760h", "--out", file("root.json"))
	agent := []byte("\x7fELF the agent 4.2.0")
	bios := bytes.Repeat([]byte("bios 2.19.1 "), 100_000) // 1.2 MB: the upload reports progress
	os.WriteFile(file("agent"), agent, 0o644)
	os.WriteFile(file("bios.bin"), bios, 0o644)
	build := func(keys, root, out, clusterVersion, version string, extra ...string) string {
		t.Helper()
		return ok(append([]string{"update", "bundle", "build", "--keys", keys, "--root", root, "--cluster-version", clusterVersion,
			"--version", version, "--notes", "release " + clusterVersion,
			"--target", "agent:agent-linux-amd64:" + clusterVersion + "=" + file("agent"),
			"--target", "firmware:firmware/r760/bios.bin:2.19.1:R760:BIOS=" + file("bios.bin"),
			"--out", out}, extra...)...)
	}
	out := build(file("vendor-keys.json"), file("root.json"), file("4.2.0.tar"), "4.2.0", "1")
	for _, want := range []string{"target 1 of 2: agent-linux-amd64", "target 2 of 2: firmware/r760/bios.bin", "bundle written"} {
		if !strings.Contains(out, want) {
			t.Errorf("bundle build printed:\n%s\nwant %q", out, want)
		}
	}

	// The operator: nothing imports before the root of trust is installed.
	refused("no root of trust is installed", append([]string{"update", "import", file("4.2.0.tar")}, creds...)...)
	out = ok(append([]string{"update", "trust", "add", file("root.json")}, creds...)...)
	if !strings.Contains(out, "root version 1") {
		t.Errorf("trust add printed:\n%s", out)
	}
	ok(append([]string{"update", "trust", "add", file("root.json")}, creds...)...) // again: a no-op

	out = ok(append([]string{"update", "import", file("4.2.0.tar")}, creds...)...)
	for _, want := range []string{"uploaded", "(100%)", "imported release 4.2.0 (2 artifacts)", "firmware/r760/bios.bin"} {
		if !strings.Contains(out, want) {
			t.Errorf("import printed:\n%s\nwant %q", out, want)
		}
	}
	out = ok(append([]string{"update", "releases"}, creds...)...)
	if !strings.Contains(out, "CLUSTER VERSION") || !strings.Contains(out, "4.2.0") || !strings.Contains(out, "release 4.2.0") {
		t.Errorf("releases printed:\n%s", out)
	}
	for _, content := range [][]byte{agent, bios} {
		sum := sha256.Sum256(content)
		f, err := cp.Releases.Open(hex.EncodeToString(sum[:]))
		if err != nil {
			t.Fatalf("the artifact is not on the replica: %v", err)
		}
		got, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(got, content) {
			t.Errorf("the replica's artifact file differs from what was signed")
		}
	}

	// Refusals.
	build(file("vendor-keys.json"), file("root.json"), file("4.3.0.tar"), "4.3.0", "2")
	tampered, _ := os.ReadFile(file("4.3.0.tar"))
	i := bytes.Index(tampered, []byte("the agent 4.2.0"))
	tampered[i] ^= 0x20
	os.WriteFile(file("tampered.tar"), tampered, 0o644)
	refused("sha256 does not match", append([]string{"update", "import", file("tampered.tar")}, creds...)...)
	ok(append([]string{"update", "import", file("4.3.0.tar")}, creds...)...)
	refused("rollback", append([]string{"update", "import", file("4.2.0.tar")}, creds...)...)

	ok("update", "keys", "--out", file("other-keys.json"))
	ok("update", "root", "--keys", file("other-keys.json"), "--out", file("other-root.json"))
	build(file("other-keys.json"), file("other-root.json"), file("other.tar"), "4.4.0", "3")
	refused("unknownRoot", append([]string{"update", "import", file("other.tar")}, creds...)...)
	refused("root of trust is already installed", append([]string{"update", "trust", "add", file("other-root.json")}, creds...)...)

	out = build(file("vendor-keys.json"), file("root.json"), file("expired.tar"), "4.4.0", "3", "--expires-in=-1h")
	if !strings.Contains(out, "warning: the bundle is expired") {
		t.Errorf("bundle build --expires-in=-1h printed:\n%s", out)
	}
	refused("expired", append([]string{"update", "import", file("expired.tar")}, creds...)...)

	// Roles: a Reader lists, a Contributor does not import.
	sub := cp.Creds.SubscriptionID
	reader, contributor := alNewPrincipal(t, cp, "updates-reader"), alNewPrincipal(t, cp, "updates-contributor")
	credsOf := func(p alPrincipal, role string) []string {
		r, err := cp.Client.Do(t.Context(), http.MethodPut, "/subscriptions/"+sub+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString()+"?api-version=2022-04-01",
			map[string]any{"properties": map[string]any{"roleDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
				"principalId": p.ObjectID, "principalType": "ServicePrincipal"}})
		if err != nil || r.Status >= 300 {
			t.Fatalf("assign %s to %s: %v %v", role, p.Name, r, err)
		}
		b, _ := json.Marshal(p.Client.Creds)
		return []string{"--credentials", alWriteFile(t, p.Name+".json", b)}
	}
	readerCreds, contributorCreds := credsOf(reader, authz.ReaderRole), credsOf(contributor, authz.ContributorRole)
	rbacEventually(t, "the Reader lists releases", func() error {
		out, code := citadel(append([]string{"update", "releases"}, readerCreds...)...)
		if code != 0 || !strings.Contains(out, "4.3.0") {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
	refused("AuthorizationFailed", append([]string{"update", "trust", "add", file("root.json")}, readerCreds...)...)
	refused("only an Owner may", append([]string{"update", "import", file("4.3.0.tar")}, contributorCreds...)...)

	// The activity log has the imports, the refusals among them.
	rbacEventually(t, "the activity log has every import", func() error {
		events := alEvents(t, alQuery(t, cp.Client, sub, url.Values{"$filter": {alFilter(time.Now().Add(-time.Hour), time.Time{})}}))
		count := map[string]int{}
		for _, e := range events {
			if e.OperationName == "Citadel.Updates/import/action" {
				count[e.Status+" "+e.StatusCode]++
			}
		}
		if count["Succeeded Created"] != 2 || count["Failed BadRequest"] != 4 || count["Failed Forbidden"] != 1 || count["Failed Conflict"] != 1 {
			return fmt.Errorf("import records by status = %v, want 2 Succeeded, 4 refused bundles, 1 Forbidden, 1 without trust", count)
		}
		return nil
	})
}
