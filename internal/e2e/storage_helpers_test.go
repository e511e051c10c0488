package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/storage"
)

const (
	applianceUser = "pureuser"
	appliancePass = "appliance-Secret-1"
)

// requireQemu skips a test without the QEMU tools the nbd driver and its
// client need (Debian qemu-system-common, qemu-utils), unless CI is set.
func requireQemu(t *testing.T) {
	t.Helper()
	requireTool(t, "qemu-storage-daemon", "qemu-system-common")
	requireTool(t, "qemu-io", "qemu-utils")
}

// applianceProcess is `citadel storage-agent` with the nbd driver, as its
// own process, so that a test can kill and restart it.
type applianceProcess struct {
	bin, dir, listen, serial string
	capacityMiB              int64
	cmd                      *exec.Cmd
	owner                    *testing.T // the test the process lives as long as, not a subtest that restarts it
	ports                    string     // its NBD port range
}

var appliancePorts atomic.Int32

func startAppliance(t *testing.T, bin, serial string, capacityMiB int64) *applianceProcess {
	t.Helper()
	first := 21000 + 100*int(appliancePorts.Add(1)%30) // a range of its own, so that its exports get their ports back after a restart
	a := &applianceProcess{bin: bin, dir: t.TempDir(), listen: freeAddr(t), serial: serial, capacityMiB: capacityMiB, owner: t,
		ports: fmt.Sprintf("%d-%d", first, first+99)}
	a.start()
	return a
}

func (a *applianceProcess) start() {
	a.owner.Helper()
	a.cmd = startUntil(a.owner, a.bin, "storage agent started", "storage-agent", "--listen", a.listen, "--data-dir", a.dir,
		"--username", applianceUser, "--password", appliancePass, "--serial-number", a.serial,
		"--capacity-mib", fmt.Sprint(a.capacityMiB), "--nbd-ports", a.ports, "--log-level", "info")
}

// kill stops the service with SIGKILL: its NBD daemons die with it.
func (a *applianceProcess) kill(t *testing.T) {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
}

// connection is the appliance's management connection string, pinning
// the certificate it keeps in its data directory.
func (a *applianceProcess) connection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.dir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("tls.crt holds no PEM block")
	}
	sum := sha256.Sum256(block.Bytes)
	return "https://" + a.listen + "?fingerprint=" + hex.EncodeToString(sum[:])
}

// client is a management client of the appliance, as the control plane has.
func (a *applianceProcess) client(t *testing.T) *storage.Client {
	t.Helper()
	conn, err := storage.ParseConnection(a.connection(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := storage.Dial(conn, applianceUser, appliancePass, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// config is the appliance's entry in a rack definition.
func (a *applianceProcess) config(t *testing.T, name string, slot int) map[string]any {
	return map[string]any{
		"storageApplianceName": name, "rackSlot": slot, "serialNumber": a.serial,
		"adminCredentials":           map[string]string{"username": applianceUser, "password": appliancePass},
		"managementConnectionString": a.connection(t),
	}
}

// stVolume is the part of a volume the tests look at.
type stVolume struct {
	ID         string `json:"id"`
	Properties struct {
		SizeMiB                    int64    `json:"sizeMiB"`
		AllocatedSizeMiB           int64    `json:"allocatedSizeMiB"`
		AssignedStorageApplianceID string   `json:"assignedStorageApplianceId"`
		AttachedTo                 []string `json:"attachedTo"`
		Attachments                []map[string]any
		DetailedStatus             string `json:"detailedStatus"`
		DetailedStatusMessage      string `json:"detailedStatusMessage"`
		SerialNumber               string `json:"serialNumber"`
		ProvisioningState          string `json:"provisioningState"`
	} `json:"properties"`
}

// stAttachment is the attach action's result.
type stAttachment struct {
	NBDURI      string `json:"nbdUri"`
	Host        string `json:"host"`
	Port        int    `json:"port"`
	ExportName  string `json:"exportName"`
	PSKIdentity string `json:"tlsPskIdentity"`
	PSK         string `json:"tlsPsk"`
}

// qemuIO runs qemu-io commands against the attachment's export over NBD
// with TLS-PSK, with key as the key, and returns its output and whether
// every command succeeded.
func qemuIO(t *testing.T, a stAttachment, key string, cmds ...string) (string, bool) {
	t.Helper()
	dir, err := os.MkdirTemp("", "psk") // qemu's option syntax cannot take the ',' of a subtest's TempDir
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "keys.psk"), []byte(a.PSKIdentity+":"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--object", "tls-creds-psk,id=tls0,endpoint=client,dir=" + dir + ",username=" + a.PSKIdentity,
		"--image-opts", fmt.Sprintf("driver=nbd,server.type=inet,server.host=%s,server.port=%d,export=%s,tls-creds=tls0", a.Host, a.Port, a.ExportName)}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.CommandContext(t.Context(), "qemu-io", args...).CombinedOutput()
	ok := err == nil && !strings.Contains(string(out), "failed") && !strings.Contains(string(out), "error")
	return string(out), ok
}

// stWait polls the resource id until ok says yes, for at most a minute.
func stWait[T any](t *testing.T, c *client.Client, id string, what string, ok func(v T) bool) T {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var v T
		r, err := c.Do(t.Context(), http.MethodGet, id+"?api-version="+ncAPI, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == http.StatusOK {
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Fatal(err)
			}
			if ok(v) {
				return v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after a minute: %d %s", what, r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storageExportSpec is a throwaway export key.
func storageExportSpec() storage.ExportSpec {
	return storage.ExportSpec{PSKIdentity: "orphan", PSK: strings.Repeat("5a", 32)}
}
