package host

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// realInventory reads the machine the test runs on, or skips the test if
// it is not Linux.
func realInventory(tb testing.TB) agentapi.Inventory {
	tb.Helper()
	if _, err := os.Stat("/proc/cpuinfo"); errors.Is(err, fs.ErrNotExist) {
		tb.Skip("skipping: no /proc/cpuinfo, so this is not a Linux machine to read")
	}
	inv, err := NewLinux("/").Inventory(tb.Context())
	if err != nil {
		tb.Fatalf("NewLinux(\"/\").Inventory() error: %v", err)
	}
	return inv
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLinuxRealMachine reads this machine and checks the result against
// what /proc, /sys and the kernel say, read another way where there is
// one (CPU topology, /proc/partitions, netlink, /proc/version).
func TestLinuxRealMachine(t *testing.T) {
	inv := realInventory(t)
	t.Logf("inventory: %+v", inv)

	t.Run("cpu", func(t *testing.T) {
		info := readString(t, "/proc/cpuinfo")
		if want := len(regexp.MustCompile(`(?m)^processor\s*:`).FindAllString(info, -1)); inv.CPU.Threads != want {
			t.Errorf("CPU.Threads = %d, want %d processor lines", inv.CPU.Threads, want)
		}
		var model string
		if m := regexp.MustCompile(`(?m)^model name\s*:(.*)$`).FindStringSubmatch(info); m != nil {
			model = strings.TrimSpace(m[1])
		}
		if inv.CPU.Model != model {
			t.Errorf("CPU.Model = %q, want %q", inv.CPU.Model, model)
		}
		var flags []string
		if m := regexp.MustCompile(`(?m)^flags\s*:(.*)$`).FindStringSubmatch(info); m != nil {
			flags = strings.Fields(m[1])
		}
		for _, f := range flags {
			if _, found := slices.BinarySearch(inv.CPU.Flags, f); !found {
				t.Errorf("CPU.Flags = %v, lacks %q", inv.CPU.Flags, f)
			}
		}
		if !slices.IsSorted(inv.CPU.Flags) {
			t.Errorf("CPU.Flags = %v, want them sorted", inv.CPU.Flags)
		}
		if !strings.Contains(info, "physical id") {
			return
		}
		// The kernel's topology of each online CPU: packages are sockets,
		// and a core is a package, die and core id.
		ids, err := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/topology/physical_package_id")
		if err != nil || len(ids) != inv.CPU.Threads {
			t.Logf("skipping the topology check: %d CPUs with a topology, %d threads", len(ids), inv.CPU.Threads)
			return
		}
		sockets, cores := map[string]bool{}, map[string]bool{}
		for _, p := range ids {
			dir := filepath.Dir(p)
			pkg := strings.TrimSpace(readString(t, p))
			die, _ := os.ReadFile(filepath.Join(dir, "die_id"))
			sockets[pkg] = true
			cores[pkg+"/"+strings.TrimSpace(string(die))+"/"+strings.TrimSpace(readString(t, filepath.Join(dir, "core_id")))] = true
		}
		if inv.CPU.Sockets != len(sockets) || inv.CPU.Cores != len(cores) {
			t.Errorf("CPU sockets, cores = %d, %d; the kernel's topology has %d, %d", inv.CPU.Sockets, inv.CPU.Cores, len(sockets), len(cores))
		}
	})

	t.Run("memory", func(t *testing.T) {
		m := regexp.MustCompile(`(?m)^MemTotal:\s+(\d+) kB$`).FindStringSubmatch(readString(t, "/proc/meminfo"))
		if m == nil {
			t.Fatal("no MemTotal in /proc/meminfo")
		}
		kb, _ := strconv.ParseUint(m[1], 10, 64)
		if inv.MemoryBytes != kb*1024 {
			t.Errorf("MemoryBytes = %d, want MemTotal %d kB = %d", inv.MemoryBytes, kb, kb*1024)
		}
	})

	t.Run("host and os", func(t *testing.T) {
		if name, err := os.Hostname(); err == nil && inv.Hostname != name {
			t.Errorf("Hostname = %q, want %q", inv.Hostname, name)
		}
		// "Linux version 6.18.44-fc-v1272 (builder@...) ..."
		if f := strings.Fields(readString(t, "/proc/version")); len(f) < 3 || inv.OS.Kernel != f[2] {
			t.Errorf("OS.Kernel = %q, want the release in /proc/version %q", inv.OS.Kernel, f)
		}
		for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			if inv.OS.Name == "" || !strings.Contains(string(b), inv.OS.Name) {
				t.Errorf("OS.Name = %q, want a name from %s", inv.OS.Name, p)
			}
			break
		}
	})

	t.Run("nics", func(t *testing.T) {
		entries, _ := os.ReadDir("/sys/class/net")
		var physical []string
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join("/sys/class/net", e.Name(), "device")); err == nil {
				physical = append(physical, e.Name())
			}
		}
		var got []string
		for _, nic := range inv.NICs {
			got = append(got, nic.Name)
			if _, err := os.Stat(filepath.Join("/sys/class/net", nic.Name, "device")); err != nil {
				t.Errorf("NIC %s has no device: %v", nic.Name, err)
			}
			iface, err := net.InterfaceByName(nic.Name)
			if err != nil {
				t.Errorf("NIC %s: %v", nic.Name, err)
				continue
			}
			if nic.MAC != iface.HardwareAddr.String() {
				t.Errorf("NIC %s MAC = %q, netlink says %q", nic.Name, nic.MAC, iface.HardwareAddr)
			}
			if nic.Up && iface.Flags&net.FlagUp == 0 {
				t.Errorf("NIC %s is up, netlink says it is administratively down (%v)", nic.Name, iface.Flags)
			}
		}
		if !slices.Equal(got, physical) {
			t.Errorf("NICs = %v, want the interfaces with a device %v", got, physical)
		}
	})

	t.Run("disks", func(t *testing.T) {
		// /proc/partitions: "major minor #blocks name", blocks of 1 KiB.
		kib := map[string]uint64{}
		for line := range strings.Lines(readString(t, "/proc/partitions")) {
			if f := strings.Fields(line); len(f) == 4 {
				if n, err := strconv.ParseUint(f[2], 10, 64); err == nil {
					kib[f[3]] = n
				}
			}
		}
		isVirtual := func(name string) bool {
			p, err := filepath.EvalSymlinks(filepath.Join("/sys/block", name))
			return err != nil || strings.Contains(p, "/devices/virtual/")
		}
		for _, d := range inv.Disks {
			if isVirtual(d.Name) {
				t.Errorf("disk %s is a virtual device", d.Name)
			}
			if n, ok := kib[d.Name]; ok && d.SizeBytes != n*1024 {
				t.Errorf("disk %s SizeBytes = %d, /proc/partitions says %d KiB", d.Name, d.SizeBytes, n)
			}
		}
		entries, _ := os.ReadDir("/sys/block")
		for _, e := range entries {
			if !isVirtual(e.Name()) && !strings.HasPrefix(e.Name(), "sr") && kib[e.Name()] > 0 && len(inv.Disks) == 0 {
				t.Errorf("Disks is empty, but /sys/block has %s of %d KiB", e.Name(), kib[e.Name()])
			}
		}
	})

	t.Run("gpus", func(t *testing.T) {
		classes, _ := filepath.Glob("/sys/bus/pci/devices/*/class")
		want := 0
		for _, p := range classes {
			if c := readString(t, p); strings.HasPrefix(c, "0x03") || strings.HasPrefix(c, "0x12") {
				want++
			}
		}
		if len(inv.GPUs) != want {
			t.Errorf("GPUs = %+v, want %d display or accelerator devices", inv.GPUs, want)
		}
		for _, g := range inv.GPUs {
			dir := filepath.Join("/sys/bus/pci/devices", g.PCIAddress)
			if v := strings.TrimSpace(readString(t, filepath.Join(dir, "vendor"))); g.VendorID != v || g.Vendor == "" {
				t.Errorf("GPU %s vendor = %q (%q), want %q", g.PCIAddress, g.VendorID, g.Vendor, v)
			}
		}
	})
}

func BenchmarkLinuxInventory(b *testing.B) {
	realInventory(b)
	l := NewLinux("/")
	for b.Loop() {
		if _, err := l.Inventory(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
