package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentcall"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// checkFilesAcrossReplicas: a VM image imported through replica from is
// served to a machine's agent by replica to, which lacks it and copies it
// from a replica that has it; the copy is then to's own. A machine's
// certificate cannot call the replicas' own file endpoint.
func checkFilesAcrossReplicas(t *testing.T, bin string, from, to *citadelProcess, toAgentAPI string) {
	t.Helper()
	c := from.client(t)
	f, err := sim.DefineFleet(t.Context(), c, c.Creds.Location, sim.FleetSpec{Group: "files", Machines: 6, PerCluster: 6, Version: haFleetVersion}, nil)
	if err != nil {
		t.Fatalf("defining a cluster: %v", err)
	}
	image := bytes.Repeat([]byte("an image imported on one replica "), 50_000)
	file := filepath.Join(t.TempDir(), "image.raw")
	if err := os.WriteFile(file, image, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := alRunCitadel(t, bin, "image", "import", file, "--name", "shared:1", "--credentials", filepath.Join(from.dataDir, "bootstrap", "admin.json")); code != 0 {
		t.Fatalf("citadel image import = exit %d:\n%s", code, out)
	}
	sum := sha256.Sum256(image)
	sha := hex.EncodeToString(sum[:])
	copied := filepath.Join(to.dataDir, "vmimages", sha)
	if _, err := os.Stat(copied); err == nil {
		t.Fatal("the image is on the other replica before anybody asked for it")
	}

	// A machine joins through replica to, as its agent would.
	ca, err := os.ReadFile(c.Creds.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	anon := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	key, err := agentcall.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	machine := f.Machines[0]
	csr, err := agentcall.CSR(key, machine.ID)
	if err != nil {
		t.Fatal(err)
	}
	var cert agentapi.Certificate
	if err := agentcall.Do(t.Context(), anon, toAgentAPI, http.MethodPost, agentapi.PathJoin,
		agentapi.JoinRequest{Token: machine.Token, Machine: machine.ID, CSR: string(csr)}, &cert); err != nil {
		t.Fatalf("join: %v", err)
	}
	block, _ := pem.Decode([]byte(cert.Certificate))
	agent := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
		Certificates: []tls.Certificate{{Certificate: [][]byte{block.Bytes}, PrivateKey: key}}}}}
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := agent.Get(toAgentAPI + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := get(agentapi.PathReplicaFiles + sha); code != http.StatusForbidden {
		t.Errorf("a machine's GET of the replicas' file endpoint = %d %s, want 403", code, b)
	}
	if code, b := get(agentapi.PathArtifacts + sha); code != http.StatusOK || !bytes.Equal(b, image) {
		t.Fatalf("the agent's GET of the image through the replica that lacked it = %d with %d bytes, want 200 with the %d imported", code, len(b), len(image))
	}
	if b, err := os.ReadFile(copied); err != nil || !bytes.Equal(b, image) {
		t.Errorf("the replica keeps no copy of the image it served: %v", err)
	}
	if code, _ := get(agentapi.PathArtifacts + hex.EncodeToString(make([]byte, 32))); code != http.StatusNotFound {
		t.Errorf("GET of a file no replica has = %d, want 404", code)
	}
}
