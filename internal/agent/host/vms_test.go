package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agent/vm"
	"github.com/citadel-cloud/citadel/internal/agentapi"
)

func testVM(name string) agentapi.VM {
	return agentapi.VM{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/virtualMachines/" + name,
		Name: name, Power: "On", Cores: 1, MemoryMiB: 512, BootMethod: "UEFI", OSType: "Linux",
		Image:    agentapi.Artifact{Name: "ubuntu", Kind: "vmImage", SHA256: strings.Repeat("ab", 32), Size: 4},
		UserData: "#cloud-config\npassword: secret\n", NetworkData: "version: 2\n"}
}

// TestSimRunsVMs: a simulated machine runs the VMs of its desired state,
// which report On once their boot time is over, and removes those no
// longer wanted.
func TestSimRunsVMs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(simInventory())
		s.VMs().SetBootTime(20 * time.Second)
		d := agentapi.Desired{Revision: 1, VMs: []agentapi.VM{testVM("a"), testVM("b")}}
		d.VMs[1].Power = "Off"
		if err := s.Apply(t.Context(), d); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		run := func(step string, want ...agentapi.VMStatus) {
			t.Helper()
			got, err := s.RunVMs(t.Context(), s.Desired().VMs)
			if err != nil {
				t.Fatalf("%s: RunVMs: %v", step, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: RunVMs (-want +got):\n%s", step, diff)
			}
		}
		a, b := d.VMs[0].ID, d.VMs[1].ID
		run("booting", agentapi.VMStatus{ID: a, Power: "Off"}, agentapi.VMStatus{ID: b, Power: "Off"})
		time.Sleep(20 * time.Second)
		run("up", agentapi.VMStatus{ID: a, Power: "On"}, agentapi.VMStatus{ID: b, Power: "Off"})
		if console, err := s.Console(a); err != nil || !bytes.Contains(console, []byte("a is up")) {
			t.Errorf("Console(a) = %q, %v, want its boot", console, err)
		}

		if err := s.Apply(t.Context(), agentapi.Desired{Revision: 2, VMs: d.VMs[1:]}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		run("a removed", agentapi.VMStatus{ID: b, Power: "Off"})
		if _, err := s.Console(a); !errors.Is(err, vm.ErrNotFound) {
			t.Errorf("Console(a) after its removal: %v, want ErrNotFound", err)
		}
	})
}

// TestLinuxVMs: without a driver, a Linux machine reports each wanted VM
// as unable to run; with one, it runs them. The desired state it writes
// for its tools leaves out the VMs' cloud-init documents.
func TestLinuxVMs(t *testing.T) {
	root := t.TempDir()
	l := NewLinux(root)
	want := []agentapi.VM{testVM("a")}
	got, err := l.RunVMs(t.Context(), want)
	if err != nil || len(got) != 1 || got[0].ID != want[0].ID || got[0].Power != "Off" || !strings.Contains(got[0].Error, "no VM driver") {
		t.Errorf("RunVMs without a driver = %+v, %v, want the VM Off, saying there is no VM driver", got, err)
	}
	if got, err := l.RunVMs(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("RunVMs(none) without a driver = %+v, %v, want nothing", got, err)
	}

	l.WithVMs(vm.NewSim())
	got, err = l.RunVMs(t.Context(), want)
	if diff := cmp.Diff([]agentapi.VMStatus{{ID: want[0].ID, Power: "On"}}, got); err != nil || diff != "" {
		t.Errorf("RunVMs with a driver: %v (-want +got):\n%s", err, diff)
	}

	if err := l.Apply(t.Context(), agentapi.Desired{Revision: 3, VMs: want}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(root, "run", "citadel", "desired.json"))
	if err != nil {
		t.Fatal(err)
	}
	var written agentapi.Desired
	if err := json.Unmarshal(b, &written); err != nil {
		t.Fatal(err)
	}
	redacted := testVM("a")
	redacted.UserData, redacted.NetworkData = "", ""
	if diff := cmp.Diff([]agentapi.VM{redacted}, written.VMs); diff != "" {
		t.Errorf("desired.json's VMs (-want +got):\n%s", diff)
	}
	if want[0].UserData == "" {
		t.Errorf("Apply cleared the caller's user data")
	}
}

// TestStagedPath: a VM's image is the file of the artifact staged.
func TestStagedPath(t *testing.T) {
	l := NewLinux(t.TempDir())
	content := []byte("disk image")
	sum := sha256.Sum256(content)
	img := agentapi.Artifact{Name: "ubuntu", Kind: "vmImage", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))}
	if p, err := l.StagedPath(img); err == nil {
		t.Errorf("StagedPath(not staged) = %q, want an error", p)
	}
	if err := l.Stage(t.Context(), img, bytes.NewReader(content)); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	p, err := l.StagedPath(img)
	if err != nil {
		t.Fatalf("StagedPath(staged): %v", err)
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, content) {
		t.Errorf("StagedPath(staged) = %q holding %q, %v; want the image", p, b, err)
	}
}
