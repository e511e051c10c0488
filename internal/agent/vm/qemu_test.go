package vm

import (
	"bufio"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// TestQEMUNotStarted covers the VMs QEMU cannot start: each gets its
// reason in its status and no process. None of them reaches QEMU, which
// this test does not need.
func TestQEMUNotStarted(t *testing.T) {
	image := filepath.Join(t.TempDir(), "image.raw")
	if err := os.WriteFile(image, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name   string
		cfg    func(c *QEMUConfig)
		edit   func(v *agentapi.VM)
		errHas string
		// invalid says the VM is wrong whatever its power, not just
		// unable to start.
		invalid bool
	}{
		{name: "power", edit: func(v *agentapi.VM) { v.Power = "Halfway" }, errHas: `power "Halfway": want On or Off`, invalid: true},
		{name: "memory", edit: func(v *agentapi.VM) { v.MemoryMiB = 0 }, errHas: "memoryMiB 0: want at least 1", invalid: true},
		{name: "boot method", edit: func(v *agentapi.VM) { v.BootMethod = "Floppy" }, errHas: `boot method "Floppy": want UEFI or BIOS`},
		{name: "os type", edit: func(v *agentapi.VM) { v.OSType = "Plan9" }, errHas: `os type "Plan9": want Linux or Windows`},
		{
			name:   "no OVMF",
			cfg:    func(c *QEMUConfig) { c.OVMFCode, c.OVMFVars = missing, missing },
			edit:   func(v *agentapi.VM) { v.BootMethod = "UEFI" },
			errHas: "uefi VMs need OVMF",
		},
		{
			name:   "no swtpm",
			cfg:    func(c *QEMUConfig) { c.SWTPM = missing },
			edit:   func(v *agentapi.VM) { v.OSType = "Windows" },
			errHas: "windows VMs need swtpm (Debian package swtpm), which is not installed",
		},
		{
			name:   "no bridges",
			edit:   func(v *agentapi.VM) { v.NICs = []agentapi.VMNIC{{Name: "n", VLAN: 7, MAC: "02:00:00:00:00:01"}} },
			errHas: `nic "n": this machine has no bridges for VLANs`,
		},
		{
			name:   "bridge missing",
			cfg:    func(c *QEMUConfig) { c.Bridge = func(vlan int) string { return "cvnone" } },
			edit:   func(v *agentapi.VM) { v.NICs = []agentapi.VMNIC{{Name: "n", VLAN: 7, MAC: "02:00:00:00:00:01"}} },
			errHas: `nic "n": bridge cvnone of VLAN 7:`,
		},
		{
			name:   "bad MAC",
			cfg:    func(c *QEMUConfig) { c.Bridge = func(vlan int) string { return "lo" } },
			edit:   func(v *agentapi.VM) { v.NICs = []agentapi.VMNIC{{Name: "n", VLAN: 7, MAC: "02:00"}} },
			errHas: `nic "n": mac "02:00": want six bytes`,
		},
		{
			name:   "not a bridge",
			cfg:    func(c *QEMUConfig) { c.Bridge = func(vlan int) string { return "lo" } },
			edit:   func(v *agentapi.VM) { v.NICs = []agentapi.VMNIC{{Name: "n", VLAN: 7, MAC: "02:00:00:00:00:01"}} },
			errHas: `nic "n": lo of VLAN 7 is a device, not a bridge`,
		},
		{
			name:   "disk without a URI",
			edit:   func(v *agentapi.VM) { d := testDisk("os-1", true); d.URI = ""; v.Disks = []agentapi.VMDisk{d} },
			errHas: "disk 0 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/os-1): no uri: want nbd://host:port/export",
		},
		{
			name:   "two OS disks",
			edit:   func(v *agentapi.VM) { v.Disks = []agentapi.VMDisk{testDisk("os-1", true), testDisk("os-2", true)} },
			errHas: "disk 1 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/os-2): a second OS disk",
		},
		{
			name:   "disk key not hex",
			edit:   func(v *agentapi.VM) { d := testDisk("data-1", false); d.PSK = "secret"; v.Disks = []agentapi.VMDisk{d} },
			errHas: "disk 0 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/data-1): psk: want the key in hex",
		},
		{
			name: "no image",
			cfg: func(c *QEMUConfig) {
				c.Images = func(agentapi.Artifact) (string, error) { return "", errors.New("not staged") }
			},
			errHas: "image tiny: not staged",
		},
		{
			name:   "image gone",
			cfg:    func(c *QEMUConfig) { c.Images = func(agentapi.Artifact) (string, error) { return missing, nil } },
			errHas: "image tiny: stat " + missing,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := QEMUConfig{
				Dir:        t.TempDir(),
				Images:     func(agentapi.Artifact) (string, error) { return image, nil },
				QEMUBinary: missing, QEMUImg: missing, // never reached
				Accel:  "tcg",
				Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
			}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			q, err := NewQEMU(cfg)
			if err != nil {
				t.Fatal(err)
			}
			v := testVM("a")
			v.Image.Name = "tiny"
			if tt.edit != nil {
				tt.edit(&v)
			}
			got, err := q.Reconcile(t.Context(), []agentapi.VM{v})
			if err != nil || len(got) != 1 {
				t.Fatalf("Reconcile = %v, %v; want one status", got, err)
			}
			if got[0].Power != Off || !strings.Contains(got[0].Error, tt.errHas) {
				t.Errorf("status %+v, want Off with an error saying %q", got[0], tt.errHas)
			}

			// The same VM wanted Off is as desired: nothing to start.
			if !tt.invalid {
				v.Power = Off
				got, err = q.Reconcile(t.Context(), []agentapi.VM{v})
				if err != nil || len(got) != 1 || got[0] != (agentapi.VMStatus{ID: v.ID, Power: Off}) {
					t.Errorf("Reconcile(the VM Off) = %+v, %v; want Off and no error", got, err)
				}
			}
			if _, err := q.Console(v.ID); err != nil {
				t.Errorf("Console of a VM never started: %v", err)
			}
			if _, err := q.Reconcile(t.Context(), nil); err != nil {
				t.Fatalf("Reconcile(none): %v", err)
			}
			if entries, _ := os.ReadDir(cfg.Dir); len(entries) != 0 {
				t.Errorf("after Reconcile(none), %s holds %d entries, want none", cfg.Dir, len(entries))
			}
			if _, err := q.Console(v.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("Console of a removed VM: err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestNewQEMU(t *testing.T) {
	images := func(agentapi.Artifact) (string, error) { return "", nil }
	for _, cfg := range []QEMUConfig{
		{Images: images},
		{Dir: t.TempDir()},
		{Dir: t.TempDir(), Images: images, Accel: "hvf"},
		{Dir: "/tmp/" + strings.Repeat("d", 90), Images: images},
	} {
		if _, err := NewQEMU(cfg); err == nil {
			t.Errorf("NewQEMU(%+v) = nil error, want one", cfg)
		}
	}
}

// TestAccelerator checks that an unset accelerator resolves to one QEMU
// knows: TCG on a host without a working KVM.
func TestAccelerator(t *testing.T) {
	q, err := NewQEMU(QEMUConfig{Dir: t.TempDir(), Images: func(agentapi.Artifact) (string, error) { return "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	got := q.accelerator(t.Context())
	if got != "kvm" && got != "tcg" {
		t.Errorf("accelerator() = %q, want kvm or tcg", got)
	}
	if _, err := os.Stat("/dev/kvm"); err != nil && got != "tcg" {
		t.Errorf("accelerator() = %q without /dev/kvm, want tcg", got)
	}
}

func TestQEMURejectsDuplicates(t *testing.T) {
	q, err := NewQEMU(QEMUConfig{Dir: t.TempDir(), Images: func(agentapi.Artifact) (string, error) { return "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	v := testVM("a")
	if _, err := q.Reconcile(t.Context(), []agentapi.VM{v, v}); err == nil {
		t.Errorf("Reconcile(a VM twice) = nil error, want one")
	}
}

// TestQEMULeavesOthersAlone checks that Reconcile removes only the
// directories it makes, named by keys.
func TestQEMULeavesOthersAlone(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"images", "0123456789abcdeg", "0123456789abcdef0"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	q, err := NewQEMU(QEMUConfig{Dir: dir, Images: func(agentapi.Artifact) (string, error) { return "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, key("gone")), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Reconcile(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if diff := cmp.Diff([]string{"0123456789abcdef0", "0123456789abcdeg", "images"}, left); diff != "" {
		t.Errorf("what Reconcile(none) left (-want +got):\n%s", diff)
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // the return value
		err      string
	}{
		{name: "return", in: `{"return": {"status": "running", "running": true}}` + "\n", want: `{"status": "running", "running": true}`},
		{name: "events first", in: `{"event": "RESET", "data": {}}` + "\n" + `{"event": "STOP"}` + "\n" + `{"return": {}}` + "\n", want: `{}`},
		{name: "error", in: `{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}` + "\n", err: "CommandNotFound: The command nope has not been found"},
		{name: "hang up", in: `{"event": "SHUTDOWN"}` + "\n", err: "unexpected EOF"},
		{name: "garbage", in: "not json\n", err: "decode a reply"},
		{name: "neither", in: `{"id": 1}` + "\n", err: "a reply with neither return nor error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readReply(bufio.NewReader(strings.NewReader(tt.in)))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("readReply(%q) = %s, %v; want an error saying %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("readReply(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
	_, err := readReply(bufio.NewReader(strings.NewReader(tests[2].in)))
	if qe, ok := errors.AsType[*qmpError](err); !ok || qe.Class != "CommandNotFound" {
		t.Errorf("readReply(an error) = %v, want a *qmpError of class CommandNotFound", err)
	}
}

// FuzzReadReply checks that no reply QEMU could send panics the reader,
// and that a return comes back as sent.
func FuzzReadReply(f *testing.F) {
	f.Add([]byte(`{"QMP": {"version": {}}}` + "\n" + `{"return": {}}` + "\n"))
	f.Add([]byte(`{"event": "X"}` + "\n" + `{"error": {"class": "c", "desc": "d"}}` + "\n"))
	f.Add([]byte(`{"return": [1, 2]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readReply(bufio.NewReader(strings.NewReader(string(in))))
		if err == nil && !json.Valid(got) {
			t.Errorf("readReply(%q) = %q, which is no JSON", in, got)
		}
	})
}

func TestVMUUID(t *testing.T) {
	a, b := vmUUID("/x/a"), vmUUID("/x/b")
	if a == b || a != vmUUID("/x/a") || len(a) != 36 || a[14] != '4' {
		t.Errorf("vmUUID = %s and %s: want two stable version 4 UUIDs", a, b)
	}
}

func TestTrimConsole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	line := strings.Repeat("x", 99) + "\n"
	if err := os.WriteFile(path, []byte(strings.Repeat(line, consoleMax/100+10)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := trimConsole(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if len(b) > consoleMax/2 || len(b) < consoleMax/2-100 || !strings.HasPrefix(string(b), line) {
		t.Errorf("after trimConsole, %d bytes starting %.10q; want about %d from a line start", len(b), b, consoleMax/2)
	}
}
