package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentcall"
	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestImages runs the VM image catalog with the citadel binary: an Owner
// imports raw and qcow2 images, one content under two names stored once;
// a bad OS type or name is refused with the field; a Reader lists but
// neither imports nor deletes, a Contributor does not import; a
// machine's agent fetches an image by its sha256 over mTLS; deleting the
// last name of a content removes its file; each import and delete is in
// the activity log.
func TestImages(t *testing.T) {
	t.Parallel()
	bin := buildCitadel(t)
	cp := servertest.Start(t)
	dir := t.TempDir()
	file := func(name string, content []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	citadel := func(args ...string) (string, int) { return alRunCitadel(t, bin, args...) }
	creds := []string{"--credentials", cp.CredentialsFile}
	ok := func(args ...string) string {
		t.Helper()
		args = append(args, creds...)
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
	sum := func(b []byte) string {
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}

	ubuntu := bytes.Repeat([]byte("an ubuntu raw disk "), 70_000) // 1.3 MB: the upload reports progress
	windows := append([]byte("QFI\xfb\x00\x00\x00\x03"), bytes.Repeat([]byte("a windows qcow2 disk "), 100)...)
	ubuntuFile, windowsFile := file("ubuntu.raw", ubuntu), file("windows.qcow2", windows)

	out := ok("image", "import", ubuntuFile, "--name", "registry.example/ubuntu:22.04")
	for _, want := range []string{"uploaded ", "of 1.3 MiB (100%)", "imported image registry.example/ubuntu:22.04: Linux, UEFI, raw, 1.3 MiB, sha256:" + sum(ubuntu)} {
		if !strings.Contains(out, want) {
			t.Errorf("image import printed:\n%s\nwant %q", out, want)
		}
	}
	out = ok("image", "import", "--name", "windows:2022", "--os-type", "windows", "--boot-method", "BIOS", windowsFile)
	if want := "imported image windows:2022: Windows, BIOS, qcow2"; !strings.Contains(out, want) {
		t.Errorf("image import printed:\n%s\nwant %q", out, want)
	}
	ok("image", "import", ubuntuFile, "--name", "Ubuntu:Latest")
	entries, err := os.ReadDir(filepath.Join(cp.DataDir, "vmimages"))
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, e := range entries {
		stored = append(stored, e.Name())
	}
	if want := []string{sum(ubuntu), sum(windows)}; !slices.Equal(stored, slices.Sorted(slices.Values(want))) {
		t.Errorf("the replica's image files = %v, want %v: one file per content", stored, want)
	}

	refused("osType \"macOS\" must be Linux or Windows", append([]string{"image", "import", ubuntuFile, "--name", "mac:15", "--os-type", "macOS"}, creds...)...)
	refused("name \"ubuntu 22.04\" has white space", append([]string{"image", "import", ubuntuFile, "--name", "ubuntu 22.04"}, creds...)...)

	out = ok("image", "list")
	for _, want := range []string{"NAME", "registry.example/ubuntu:22.04", "Ubuntu:Latest", "windows:2022", "qcow2", sum(windows)} {
		if !strings.Contains(out, want) {
			t.Errorf("image list printed:\n%s\nwant %q", out, want)
		}
	}

	// A machine's agent fetches an image by its sha256, with its
	// certificate from the node CA; nobody else does.
	machineID := "/subscriptions/" + cp.Creds.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.NetworkCloud/bareMetalMachines/m1"
	agentClient := imAgentClient(t, cp, machineID)
	anonymous := imAgentClient(t, cp, "")
	fetch := func(c *http.Client, sha string) (int, []byte) {
		t.Helper()
		resp, err := c.Get(cp.AgentURL + agentapi.PathArtifacts + sha)
		if err != nil {
			t.Fatalf("GET the artifact %s: %v", sha, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, content := range [][]byte{ubuntu, windows} {
		if code, got := fetch(agentClient, sum(content)); code != http.StatusOK || !bytes.Equal(got, content) {
			t.Errorf("the agent's GET of image %s = %d with %d bytes, want 200 with the %d imported", sum(content), code, len(got), len(content))
		}
	}
	if code, _ := fetch(anonymous, sum(ubuntu)); code != http.StatusForbidden {
		t.Errorf("GET of an image without a client certificate = %d, want 403", code)
	}
	if code, _ := fetch(agentClient, sum([]byte("never imported"))); code != http.StatusNotFound {
		t.Errorf("GET of an image never imported = %d, want 404", code)
	}

	// Roles: a Reader lists, and neither imports nor deletes; a
	// Contributor does not import.
	sub := cp.Creds.SubscriptionID
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
	readerCreds := credsOf(alNewPrincipal(t, cp, "images-reader"), authz.ReaderRole)
	contributorCreds := credsOf(alNewPrincipal(t, cp, "images-contributor"), authz.ContributorRole)
	rbacEventually(t, "the Reader lists images", func() error {
		out, code := citadel(append([]string{"image", "list"}, readerCreds...)...)
		if code != 0 || !strings.Contains(out, "windows:2022") {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
	refused("AuthorizationFailed", append([]string{"image", "import", windowsFile, "--name", "reader:1"}, readerCreds...)...)
	refused("AuthorizationFailed", append([]string{"image", "delete", "windows:2022"}, readerCreds...)...)
	rbacEventually(t, "the Contributor lists images", func() error {
		out, code := citadel(append([]string{"image", "list"}, contributorCreds...)...)
		if code != 0 || !strings.Contains(out, "windows:2022") {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
	refused("only an Owner may", append([]string{"image", "import", windowsFile, "--name", "contributor:1"}, contributorCreds...)...)
	if _, err := cp.Images.Lookup(t.Context(), "reader:1"); err == nil {
		t.Errorf("the Reader's refused import is in the catalog")
	}

	// Deleting: the file stays while another name uses its content.
	out = ok("image", "delete", "registry.example/ubuntu:22.04")
	if !strings.Contains(out, "deleted image registry.example/ubuntu:22.04") {
		t.Errorf("image delete printed:\n%s", out)
	}
	if code, _ := fetch(agentClient, sum(ubuntu)); code != http.StatusOK {
		t.Errorf("the agent's GET of an image Ubuntu:Latest still uses = %d, want 200", code)
	}
	ok("image", "delete", "ubuntu:latest")
	if _, err := cp.Images.Open(sum(ubuntu)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of the image no name uses = %v, want os.ErrNotExist", err)
	}
	if code, _ := fetch(agentClient, sum(ubuntu)); code != http.StatusNotFound {
		t.Errorf("the agent's GET of a deleted image = %d, want 404", code)
	}
	refused("ImageNotFound", append([]string{"image", "delete", "ubuntu:latest"}, creds...)...)
	out = ok("image", "list")
	if strings.Contains(out, "ubuntu") || !strings.Contains(out, "windows:2022") {
		t.Errorf("image list after the deletes printed:\n%s\nwant windows:2022 alone", out)
	}

	// The activity log has the imports and deletes, refusals among them.
	rbacEventually(t, "the activity log has every import and delete", func() error {
		events := alEvents(t, alQuery(t, cp.Client, sub, url.Values{"$filter": {alFilter(time.Now().Add(-time.Hour), time.Time{})}}))
		count := map[string]int{}
		for _, e := range events {
			if strings.HasPrefix(e.OperationName, "Citadel.Images/") {
				count[e.OperationName+" "+e.Status+" "+e.StatusCode]++
			}
		}
		want := map[string]int{
			"Citadel.Images/import/action Succeeded Created":   3,
			"Citadel.Images/import/action Failed BadRequest":   2,
			"Citadel.Images/import/action Failed Forbidden":    2,
			"Citadel.Images/images/delete Succeeded NoContent": 2,
			"Citadel.Images/images/delete Failed NotFound":     1,
			"Citadel.Images/images/delete Failed Forbidden":    1,
		}
		if !maps.Equal(count, want) {
			return fmt.Errorf("records by action and status = %v, want %v", count, want)
		}
		return nil
	})
}

// imAgentClient is an HTTP client of the agent API with the client
// certificate the node CA issues for machine, or with none when machine
// is empty.
func imAgentClient(t *testing.T, cp *servertest.ControlPlane, machine string) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(cp.Creds.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if machine != "" {
		key, err := agentcall.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		csr, err := agentcall.CSR(key, machine)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, err := cp.Agents.Admit(machine, csr)
		if err != nil {
			t.Fatalf("Admit(%s) = %v", machine, err)
		}
		block, _ := pem.Decode(certPEM)
		if block == nil {
			t.Fatalf("Admit(%s) returned no PEM certificate", machine)
		}
		cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{block.Bytes}, PrivateKey: key}}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: time.Minute}
	t.Cleanup(c.CloseIdleConnections)
	return c
}
