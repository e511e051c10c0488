package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/citadel-cloud/citadel/internal/agent/vm"
	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// Linux is the real machine, read from /proc, /sys and /etc under a root
// directory. It keeps nothing between calls, so every Inventory sees the
// machine as it is now (a link gone down, a disk pulled).
type Linux struct {
	root    string
	desired string // where Apply writes the desired state
	// nets, if set (WithNetworks), configures the workload networks.
	nets *networks
	// vms, if set (WithVMs), runs the machine's VMs.
	vms vm.Driver
}

// NewLinux returns the machine whose filesystem is at root: "/" in
// production, a directory laid out like /proc, /sys and /etc in tests.
// Apply writes to <root>/run/citadel/desired.json unless DesiredAt says
// otherwise.
func NewLinux(root string) *Linux {
	return &Linux{root: root, desired: filepath.Join(root, "run", "citadel", "desired.json")}
}

// DesiredAt makes Apply write the desired state to path instead (tests
// that read the real machine but must not write to its /run).
func (l *Linux) DesiredAt(path string) *Linux {
	l.desired = path
	return l
}

// Inventory reads the machine. Only /proc/cpuinfo and /proc/meminfo must
// exist: the rest may be missing, as on a VM or in a container, and
// leaves its part of the inventory empty.
func (l *Linux) Inventory(ctx context.Context) (agentapi.Inventory, error) {
	if err := ctx.Err(); err != nil {
		return agentapi.Inventory{}, err
	}
	var inv agentapi.Inventory
	var err error
	if inv.CPU, err = parseFile(l.path("proc/cpuinfo"), parseCPUInfo); err != nil {
		return agentapi.Inventory{}, err
	}
	if inv.MemoryBytes, err = parseFile(l.path("proc/meminfo"), parseMemInfo); err != nil {
		return agentapi.Inventory{}, err
	}
	if inv.OS, err = l.readOS(); err != nil {
		return agentapi.Inventory{}, err
	}
	if inv.Disks, err = readDisks(l.path("sys/block")); err != nil {
		return agentapi.Inventory{}, err
	}
	if inv.NICs, err = readNICs(l.path("sys/class/net")); err != nil {
		return agentapi.Inventory{}, err
	}
	if l.root == "/" {
		addAddresses(inv.NICs) // the kernel's, not files: only on the machine itself
	}
	if inv.GPUs, err = readGPUs(l.path("sys/bus/pci/devices")); err != nil {
		return agentapi.Inventory{}, err
	}
	inv.Hostname = readAttr(l.path("proc/sys/kernel/hostname"))
	if inv.Runtime, err = l.readRuntime(); err != nil {
		return agentapi.Inventory{}, err
	}
	return inv, nil
}

// path is the file at p (a path below /) on the machine.
func (l *Linux) path(p string) string {
	return filepath.Join(l.root, p)
}

// readOS reads /etc/os-release, or /usr/lib/os-release where os-release(5)
// says to look when the first is missing, and the kernel release.
func (l *Linux) readOS() (agentapi.OS, error) {
	var o agentapi.OS
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		var err error
		o, err = parseFile(l.path(p), parseOSRelease)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return agentapi.OS{}, err
		}
		break
	}
	o.Kernel = readAttr(l.path("proc/sys/kernel/osrelease"))
	return o, nil
}

// parseFile parses the file at path with parse. Its errors name the file.
func parseFile[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err // an *fs.PathError, which names the file
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// readAttr returns the trimmed content of a small file such as a sysfs
// attribute, or "" if it cannot be read. Attributes come and go with
// drivers: a virtio NIC has a speed of -1, and reading the speed of a
// link that is down fails with EINVAL.
func readAttr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readDir lists dir; a missing dir has no entries.
func readDir(dir string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}

// notDisks are the prefixes of block devices that are not whole disks:
// loop, RAM and compressed-RAM devices, device-mapper and MD (RAID)
// volumes built from disks that are listed themselves, and optical drives.
var notDisks = []string{"loop", "ram", "zram", "dm-", "md", "sr"}

// readDisks lists the whole disks in sysBlock (/sys/block), which has no
// partitions. It leaves out devices without media (size 0) and the hidden
// per-path devices of NVMe multipath.
func readDisks(sysBlock string) ([]agentapi.Disk, error) {
	entries, err := readDir(sysBlock)
	if err != nil {
		return nil, err
	}
	var disks []agentapi.Disk
	for _, e := range entries {
		name := e.Name()
		if hasAnyPrefix(name, notDisks) {
			continue
		}
		dir := filepath.Join(sysBlock, name)
		// size is in 512-byte sectors whatever the disk's block size.
		sectors, _ := strconv.ParseUint(readAttr(filepath.Join(dir, "size")), 10, 64)
		if sectors == 0 || readAttr(filepath.Join(dir, "hidden")) == "1" {
			continue
		}
		disks = append(disks, agentapi.Disk{
			Name:  name,
			Model: readAttr(filepath.Join(dir, "device", "model")),
			// SCSI and NVMe disks have device/serial (NVMe also wwid);
			// virtio disks have serial on the block device.
			Serial:     firstNonEmpty(readAttr(filepath.Join(dir, "device", "serial")), readAttr(filepath.Join(dir, "device", "wwid")), readAttr(filepath.Join(dir, "serial"))),
			SizeBytes:  sectors * 512,
			Rotational: readAttr(filepath.Join(dir, "queue", "rotational")) == "1",
		})
	}
	return disks, nil
}

// readNICs lists the physical network interfaces in sysNet
// (/sys/class/net): those with a device behind them, which leaves out
// loopback, bridges, bonds, VLANs and tunnels.
func readNICs(sysNet string) ([]agentapi.NIC, error) {
	entries, err := readDir(sysNet)
	if err != nil {
		return nil, err
	}
	var nics []agentapi.NIC
	for _, e := range entries {
		dir := filepath.Join(sysNet, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "device")); err != nil {
			continue
		}
		nic := agentapi.NIC{
			Name: e.Name(),
			MAC:  readAttr(filepath.Join(dir, "address")),
			Up:   readAttr(filepath.Join(dir, "operstate")) == "up",
		}
		// speed is -1 or unreadable when the driver does not know it.
		if speed, err := strconv.Atoi(readAttr(filepath.Join(dir, "speed"))); err == nil && speed > 0 {
			nic.SpeedMbps = speed
		}
		nics = append(nics, nic)
	}
	return nics, nil
}

// addAddresses fills in each NIC's global unicast addresses from the
// kernel.
func addAddresses(nics []agentapi.NIC) {
	for i := range nics {
		iface, err := net.InterfaceByName(nics[i].Name)
		if err != nil {
			continue
		}
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() {
				nics[i].Addresses = append(nics[i].Addresses, n.String())
			}
		}
	}
}

// readGPUs lists the PCI devices in sysPCI (/sys/bus/pci/devices) of
// class display controller (0x03xxxx) or processing accelerator
// (0x12xxxx), but for a BMC's display chip.
func readGPUs(sysPCI string) ([]agentapi.GPU, error) {
	entries, err := readDir(sysPCI)
	if err != nil {
		return nil, err
	}
	var gpus []agentapi.GPU
	for _, e := range entries {
		dir := filepath.Join(sysPCI, e.Name())
		class := readAttr(filepath.Join(dir, "class"))
		if !hasAnyPrefix(class, []string{"0x03", "0x12"}) {
			continue
		}
		vendor := readAttr(filepath.Join(dir, "vendor"))
		if bmcDisplay[strings.ToLower(vendor)] {
			continue // the BMC's own VGA chip, not an accelerator
		}
		gpus = append(gpus, agentapi.GPU{
			PCIAddress: e.Name(),
			VendorID:   vendor,
			DeviceID:   readAttr(filepath.Join(dir, "device")),
			Vendor:     vendorName(vendor),
			Class:      class,
		})
	}
	return gpus, nil
}

// bmcDisplay are the vendors of the display chips BMCs put on the host's
// PCI bus for their remote console: ASPEED (most BMCs) and Matrox (HPE
// iLO's G200).
var bmcDisplay = map[string]bool{"0x1a03": true, "0x102b": true}

// vendorName names the PCI vendors whose GPUs and accelerators Citadel
// meets; any other is reported by its id.
func vendorName(id string) string {
	switch strings.ToLower(id) {
	case "0x10de":
		return "NVIDIA"
	case "0x1002":
		return "AMD"
	case "0x8086":
		return "Intel"
	case "0x1af4":
		return "Red Hat (virtio)"
	}
	return id
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// Apply writes the desired state to /run/citadel/desired.json (or where
// DesiredAt said), where the machine's own tools (and its operators) find
// what the control plane wants of it: whether it is cordoned, which OS
// image it should run, which VMs (without their cloud-init documents).
// The image itself arrives through the BMC; the VMs run with RunVMs. A
// desired cluster version whose artifacts are all staged becomes the
// machine's (/var/lib/citadel/runtime.json): the node image it boots
// next and the agent it runs are those staged.
func (l *Linux) Apply(ctx context.Context, d agentapi.Desired) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	shown := d
	shown.VMs = redactVMs(d.VMs) // the file is world-readable; user data may hold secrets
	if err := writeJSON(l.desired, shown); err != nil {
		return err
	}
	if err := l.nets.apply(ctx, d.Networks); err != nil {
		return err
	}
	if d.ClusterVersion == "" {
		return nil
	}
	for _, a := range d.Artifacts {
		if !l.Staged(a.SHA256) {
			return fmt.Errorf("host: the artifact %s (%s) of %s is not staged", a.Name, a.SHA256, d.ClusterVersion)
		}
	}
	return writeJSON(l.path(runtimeFile), runtimeDoc{ClusterVersion: d.ClusterVersion})
}

// Where a Linux machine keeps the release it runs and its artifacts.
const (
	runtimeFile  = "var/lib/citadel/runtime.json"
	artifactsDir = "var/lib/citadel/artifacts"
)

type runtimeDoc struct {
	ClusterVersion string `json:"clusterVersion"`
}

// readRuntime reads the release the machine runs and the artifacts it
// holds; a machine that never took one has neither.
func (l *Linux) readRuntime() (agentapi.Runtime, error) {
	var rt agentapi.Runtime
	b, err := os.ReadFile(l.path(runtimeFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return rt, err
	default:
		var doc runtimeDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			return rt, fmt.Errorf("host: %s: %w", runtimeFile, err)
		}
		rt.ClusterVersion = doc.ClusterVersion
	}
	entries, err := readDir(l.path(artifactsDir))
	if err != nil {
		return rt, err
	}
	for _, e := range entries {
		if sha256Hex.MatchString(e.Name()) {
			rt.Staged = append(rt.Staged, e.Name())
		}
	}
	return rt, nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Staged reports whether the artifact with that digest is kept.
func (l *Linux) Staged(digest string) bool {
	if !sha256Hex.MatchString(digest) {
		return false
	}
	_, err := os.Stat(filepath.Join(l.path(artifactsDir), digest))
	return err == nil
}

// Stage keeps content as the artifact a, under its digest, if its length
// and sha256 are a's; otherwise nothing is kept.
func (l *Linux) Stage(ctx context.Context, a agentapi.Artifact, content io.Reader) error {
	if !sha256Hex.MatchString(a.SHA256) {
		return fmt.Errorf("host: artifact %s: %q is not a sha256", a.Name, a.SHA256)
	}
	dir := l.path(artifactsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".staging-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, nothing to remove
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(content, a.Size+1))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("host: staging %s: %w", a.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != a.Size || got != a.SHA256 {
		return fmt.Errorf("host: artifact %s: got %d bytes with sha256 %s, want %d bytes with %s", a.Name, n, got, a.Size, a.SHA256)
	}
	return os.Rename(f.Name(), filepath.Join(dir, a.SHA256))
}

// writeJSON writes v to path atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
