package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// writeTree writes files, by slash-separated path below root, making
// their directories. A path ending in "/" is an empty directory.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Sysfs trees of a server: the files the kernel writes, with their
// trailing newlines and padding.
var (
	sysBlock = map[string]string{
		"nvme0n1/size":              "7501476528\n",
		"nvme0n1/hidden":            "0\n",
		"nvme0n1/device/model":      "SAMSUNG MZQL27T6HBLA-00A07               \n",
		"nvme0n1/device/serial":     "S6CKNE0T900123      \n",
		"nvme0n1/device/wwid":       "eui.36434d3054900123002538",
		"nvme0n1/queue/rotational":  "0\n",
		"nvme0c0n1/size":            "7501476528\n", // NVMe multipath's per-path device
		"nvme0c0n1/hidden":          "1\n",
		"sda/size":                  "31251759104\n",
		"sda/device/model":          "ST16000NM001G-2K\n",
		"sda/device/wwid":           "naa.5000c500d5a3c1f7\n",
		"sda/queue/rotational":      "1\n",
		"sdb/size":                  "0\n", // a card reader without a card
		"sdb/device/model":          "SD/MMC\n",
		"vda/size":                  "536870912\n",
		"vda/serial":                "vol-0a1b2c",
		"vda/queue/rotational":      "0\n",
		"loop0/size":                "1024\n",
		"ram0/size":                 "8192\n",
		"zram0/size":                "8388608\n",
		"dm-0/size":                 "7501476528\n",
		"md127/size":                "7501476528\n",
		"sr0/size":                  "2097151\n",
		"sr0/device/model":          "Virtual CDROM0\n",
		"sr0/queue/rotational":      "1\n",
		"nvme1n1/size":              "not a number\n",
		"nvme1n1/device/model":      "broken\n",
		"nvme1n1/queue/rotational/": "",
	}
	wantDisks = []agentapi.Disk{
		{Name: "nvme0n1", Model: "SAMSUNG MZQL27T6HBLA-00A07", Serial: "S6CKNE0T900123", SizeBytes: 7501476528 * 512},
		{Name: "sda", Model: "ST16000NM001G-2K", Serial: "naa.5000c500d5a3c1f7", SizeBytes: 31251759104 * 512, Rotational: true},
		{Name: "vda", Serial: "vol-0a1b2c", SizeBytes: 536870912 * 512},
	}

	sysNet = map[string]string{
		"eno1/device/uevent": "PCI_SLOT_NAME=0000:31:00.0\n",
		"eno1/address":       "b4:96:91:aa:bb:01\n",
		"eno1/speed":         "25000\n",
		"eno1/operstate":     "up\n",
		"eno2/device/":       "",
		"eno2/address":       "b4:96:91:aa:bb:02\n",
		"eno2/operstate":     "down\n", // and no speed
		"ens2/device/":       "",
		"ens2/address":       "02:fc:00:00:00:01\n",
		"ens2/speed":         "-1\n", // virtio
		"ens2/operstate":     "up\n",
		"lo/address":         "00:00:00:00:00:00\n",
		"lo/operstate":       "unknown\n",
		"br0/address":        "b4:96:91:aa:bb:01\n",
		"br0/operstate":      "up\n",
		"bonding_masters":    "\n",
	}
	wantNICs = []agentapi.NIC{
		{Name: "eno1", MAC: "b4:96:91:aa:bb:01", SpeedMbps: 25000, Up: true},
		{Name: "eno2", MAC: "b4:96:91:aa:bb:02"},
		{Name: "ens2", MAC: "02:fc:00:00:00:01", Up: true},
	}

	sysPCI = map[string]string{
		"0000:17:00.0/class":  "0x030200\n", // NVIDIA H100
		"0000:17:00.0/vendor": "0x10de\n",
		"0000:17:00.0/device": "0x2330\n",
		"0000:3a:00.0/class":  "0x120000\n", // AMD MI300X
		"0000:3a:00.0/vendor": "0x1002\n",
		"0000:3a:00.0/device": "0x74a1\n",
		"0000:00:02.0/class":  "0x030000\n", // virtio-gpu
		"0000:00:02.0/vendor": "0x1af4\n",
		"0000:00:02.0/device": "0x1050\n",
		"0000:00:1f.0/class":  "0x060100\n", // Intel ISA bridge
		"0000:00:1f.0/vendor": "0x8086\n",
		"0000:00:1f.0/device": "0x1b81\n",
		"0000:4b:00.0/class":  "0x038000\n", // Intel Data Center GPU Max
		"0000:4b:00.0/vendor": "0x8086\n",
		"0000:4b:00.0/device": "0x0bd5\n",
		"0000:65:00.0/class":  "0x030000\n", // the BMC's ASPEED VGA: not a GPU
		"0000:65:00.0/vendor": "0x1a03\n",
		"0000:65:00.0/device": "0x2000\n",
		"0000:66:00.0/vendor": "0x10de\n", // no class
	}
	wantGPUs = []agentapi.GPU{
		{PCIAddress: "0000:00:02.0", VendorID: "0x1af4", DeviceID: "0x1050", Vendor: "Red Hat (virtio)", Class: "0x030000"},
		{PCIAddress: "0000:17:00.0", VendorID: "0x10de", DeviceID: "0x2330", Vendor: "NVIDIA", Class: "0x030200"},
		{PCIAddress: "0000:3a:00.0", VendorID: "0x1002", DeviceID: "0x74a1", Vendor: "AMD", Class: "0x120000"},
		{PCIAddress: "0000:4b:00.0", VendorID: "0x8086", DeviceID: "0x0bd5", Vendor: "Intel", Class: "0x038000"},
	}
)

func TestReadSysfs(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		read  func(dir string) (any, error)
		want  any
	}{
		{"disks", sysBlock, func(dir string) (any, error) { return readDisks(dir) }, wantDisks},
		{"nics", sysNet, func(dir string) (any, error) { return readNICs(dir) }, wantNICs},
		{"gpus", sysPCI, func(dir string) (any, error) { return readGPUs(dir) }, wantGPUs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tt.files)
			got, err := tt.read(dir)
			if err != nil {
				t.Fatalf("read(%s) error: %v", dir, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("read mismatch (-want +got):\n%s", diff)
			}
		})
		t.Run(tt.name+" missing", func(t *testing.T) {
			got, err := tt.read(filepath.Join(t.TempDir(), "absent"))
			if err != nil {
				t.Fatalf("read of a missing directory: %v, want no error", err)
			}
			if !isNilSlice(got) {
				t.Errorf("read of a missing directory = %#v, want nil", got)
			}
		})
	}
}

func isNilSlice(v any) bool {
	switch s := v.(type) {
	case []agentapi.Disk:
		return s == nil
	case []agentapi.NIC:
		return s == nil
	case []agentapi.GPU:
		return s == nil
	}
	return false
}

// serverRoot lays out the filesystem of a two-socket server under a
// temporary directory.
func serverRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"proc/cpuinfo":              cpuinfo(4, func(n int) string { return []string{"0", "1"}[n/2] }, 2, "fpu amx_tile avx512f"),
		"proc/meminfo":              "MemTotal:       1056300000 kB\nMemFree:         1000000000 kB\n",
		"proc/sys/kernel/hostname":  "bm-r01-c01\n",
		"proc/sys/kernel/osrelease": "6.12.0-citadel\n",
		"etc/os-release":            "PRETTY_NAME=\"Citadel Host OS 4.1\"\nVERSION_ID=\"4.1\"\n",
	}
	for prefix, tree := range map[string]map[string]string{"sys/block/": sysBlock, "sys/class/net/": sysNet, "sys/bus/pci/devices/": sysPCI} {
		for name, content := range tree {
			files[prefix+name] = content
		}
	}
	writeTree(t, root, files)
	return root
}

func TestLinuxInventory(t *testing.T) {
	root := serverRoot(t)
	got, err := NewLinux(root).Inventory(t.Context())
	if err != nil {
		t.Fatalf("Inventory() error: %v", err)
	}
	want := agentapi.Inventory{
		Hostname: "bm-r01-c01",
		CPU: agentapi.CPU{Model: "Intel(R) Xeon(R) Platinum 8480+", Sockets: 2, Cores: 4, Threads: 4,
			Flags: []string{"amx_tile", "avx512f", "fpu"}},
		MemoryBytes: 1056300000 * 1024,
		Disks:       wantDisks,
		NICs:        wantNICs,
		GPUs:        wantGPUs,
		OS:          agentapi.OS{Name: "Citadel Host OS 4.1", Version: "4.1", Kernel: "6.12.0-citadel"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Inventory() mismatch (-want +got):\n%s", diff)
	}
}

// A VM or container may have no /sys, /etc/os-release nor hostname: the
// inventory has what there is.
func TestLinuxInventoryMinimal(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"proc/cpuinfo":       "processor : 0\nmodel name : QEMU Virtual CPU\n",
		"proc/meminfo":       "MemTotal: 1024 kB\n",
		"usr/lib/os-release": "NAME=Linux\n",
	})
	got, err := NewLinux(root).Inventory(t.Context())
	if err != nil {
		t.Fatalf("Inventory() error: %v", err)
	}
	want := agentapi.Inventory{
		CPU:         agentapi.CPU{Model: "QEMU Virtual CPU", Sockets: 1, Cores: 1, Threads: 1},
		MemoryBytes: 1 << 20,
		OS:          agentapi.OS{Name: "Linux"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Inventory() mismatch (-want +got):\n%s", diff)
	}
}

func TestLinuxInventoryErrors(t *testing.T) {
	tests := []struct {
		name     string
		remove   string // from serverRoot
		replace  map[string]string
		wantIn   string
		notExist bool
	}{
		{name: "no cpuinfo", remove: "proc/cpuinfo", wantIn: "proc/cpuinfo", notExist: true},
		{name: "no meminfo", remove: "proc/meminfo", wantIn: "proc/meminfo", notExist: true},
		{name: "bad cpuinfo", replace: map[string]string{"proc/cpuinfo": "garbage\n"}, wantIn: "proc/cpuinfo: no processor"},
		{name: "bad meminfo", replace: map[string]string{"proc/meminfo": "MemTotal: x kB\n"}, wantIn: "proc/meminfo: MemTotal"},
		{name: "sysfs not a directory", remove: "sys/class/net", replace: map[string]string{"sys/class/net": "file"}, wantIn: "sys/class/net"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := serverRoot(t)
			if tt.remove != "" {
				if err := os.RemoveAll(filepath.Join(root, tt.remove)); err != nil {
					t.Fatal(err)
				}
			}
			writeTree(t, root, tt.replace)
			got, err := NewLinux(root).Inventory(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("Inventory() = %+v, %v; want an error naming %q", got, err, tt.wantIn)
			}
			if tt.notExist && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Inventory() error %v, want fs.ErrNotExist", err)
			}
		})
	}
}

func TestLinuxInventoryCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := NewLinux(serverRoot(t)).Inventory(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Inventory(canceled) error = %v, want context.Canceled", err)
	}
}

func TestLinuxStaging(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"proc/cpuinfo": "processor : 0\nmodel name : QEMU Virtual CPU\n",
		"proc/meminfo": "MemTotal: 1024 kB\n",
	})
	l := NewLinux(root)
	content := []byte("node image 4.2.0")
	sum := sha256.Sum256(content)
	art := agentapi.Artifact{Name: "node-image", Kind: "nodeImage", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))}
	ctx := t.Context()

	// A desired version whose artifacts are not staged is refused.
	desired := agentapi.Desired{ClusterVersion: "4.2.0", Artifacts: []agentapi.Artifact{art}}
	if err := l.Apply(ctx, desired); err == nil || !strings.Contains(err.Error(), "not staged") {
		t.Fatalf("Apply before staging = %v, want not staged", err)
	}
	// Changed content is not kept.
	for _, bad := range [][]byte{[]byte("node image 4.2.1"), append(content, 'x'), content[:3]} {
		if err := l.Stage(ctx, art, bytes.NewReader(bad)); err == nil {
			t.Errorf("Stage(%q) kept content whose digest is not the artifact's", bad)
		}
	}
	if l.Staged(art.SHA256) || l.Staged("../../etc/passwd") {
		t.Fatal("a refused artifact, or a path, counts as staged")
	}
	if err := l.Stage(ctx, agentapi.Artifact{Name: "x", SHA256: "../x", Size: 1}, bytes.NewReader([]byte("x"))); err == nil {
		t.Error("Stage took a digest that is a path")
	}
	if err := l.Stage(ctx, art, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, desired); err != nil {
		t.Fatal(err)
	}
	inv, err := l.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (agentapi.Runtime{ClusterVersion: "4.2.0", Staged: []string{art.SHA256}}); !cmp.Equal(want, inv.Runtime) {
		t.Errorf("runtime = %+v, want %+v", inv.Runtime, want)
	}
	entries, _ := os.ReadDir(filepath.Join(root, artifactsDir))
	if len(entries) != 1 {
		t.Errorf("artifacts directory holds %d entries, want the one staged (no leftovers of refused ones)", len(entries))
	}
}
