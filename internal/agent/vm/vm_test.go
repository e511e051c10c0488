// The QEMU tests boot real VMs: Debian's cloud kernel with a busybox
// initramfs whose /init reads the VM's NoCloud seed and disk and prints
// what it found to the serial console, where the tests read it. A boot
// takes a few seconds without KVM.

package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/testvm"
)

// guestModules are the modules /init loads: the virtio disks and NIC and
// ISO 9660 for the seed. guestHost adds what they depend on.
var guestModules = []string{"virtio_pci", "virtio_blk", "virtio_net", "isofs"}

// guestInit is the VM's /init. It finds the seed by its label, prints
// the marker in its user-data and its hostname, prints each disk's
// serial and first 12 bytes, prints the boot disk's first 13 bytes and
// overwrites them, prints what hardware it has, and waits: it ignores the
// ACPI power button, so a power off takes the grace.
const guestInit = `#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /mods/*; do insmod "$m"; done
echo "=== BOOT"
n=0
until seed=$(findfs LABEL=cidata 2>/dev/null); do
	n=$((n+1))
	[ $n -gt 100 ] && echo "=== NO SEED" && cat /proc/partitions && dmesg | tail -n 30 && break
	sleep 0.1
done
mkdir -p /seed
mount -t iso9660 -o ro "$seed" /seed || echo "=== SEED NOT MOUNTED"
echo "=== MARKER $(grep -o 'CITADEL-MARKER-[0-9a-f]*' /seed/user-data)"
echo "=== META $(grep local-hostname /seed/meta-data)"
for s in /sys/block/vd*/serial; do
	n=${s%/serial}; n=${n##*/}
	echo "=== SERIAL-$n $(cat $s) $(head -c 12 /dev/$n | tr -c 'A-Za-z0-9!-' .)"
done
for d in /dev/vda /dev/vdb; do [ "$d" != "$seed" ] && disk=$d; done
echo "=== DISK $(head -c 13 $disk)"
printf 'DISK-WRITTEN!' | dd of=$disk conv=fsync 2>/dev/null
[ -d /sys/firmware/efi ] && echo "=== EFI"
[ -e /sys/class/tpm/tpm0 ] && echo "=== TPM"
for n in /sys/class/net/eth*; do [ -e "$n" ] && echo "=== NIC $(cat $n/address)"; done
echo "=== READY"
while :; do sleep 3600; done
`

const (
	pristine = "DISK-PRISTINE" // the image's first bytes
	written  = "DISK-WRITTEN!" // what the guest writes over them
	// bootTimeout bounds one boot: 3 to 10 s without KVM on two idle
	// cores, more on busy ones.
	bootTimeout = 90 * time.Second
)

var consoleLine = regexp.MustCompile(`(?m)^=== (\S+) ?(.*)$`)

// guestHost is what booting the tiny Linux needs from the host.
type guestHost struct {
	*testvm.Host
	qemuImg string
}

// needGuestHost returns the host's tools, or skips the test (fails it
// under CI=true) naming what is missing besides what extra names.
// scripts/test installs it all.
func needGuestHost(t *testing.T, extra ...string) *guestHost {
	t.Helper()
	h := &guestHost{Host: testvm.Find(guestModules...)}
	h.qemuImg = h.Look("qemu-img", "qemu-utils")
	h.Missing = append(h.Missing, extra...)
	h.Require(t, "booting VMs")
	return h
}

// newGuestQEMU returns a QEMU driver that boots the tiny Linux for the
// image "tiny", with a 1 MiB raw disk image starting with pristine.
func newGuestQEMU(t *testing.T, h *guestHost) *QEMU {
	t.Helper()
	initrd := h.Initramfs(t, guestInit, []string{"sh", "mount", "insmod", "findfs", "grep", "head", "dd", "sleep", "cat", "mkdir", "dmesg", "tail", "tr"}, nil)
	image := filepath.Join(t.TempDir(), "tiny.raw")
	if err := os.WriteFile(image, append([]byte(pristine), make([]byte, 1<<20-len(pristine))...), 0o644); err != nil {
		t.Fatal(err)
	}
	q, err := NewQEMU(QEMUConfig{
		Dir: t.TempDir(),
		Images: func(a agentapi.Artifact) (string, error) {
			if a.Name != "tiny" {
				return "", fmt.Errorf("no image %q", a.Name)
			}
			return image, nil
		},
		KernelBoot: func(a agentapi.Artifact) (Kernel, bool) {
			return Kernel{Path: h.Kernel, Initrd: initrd, Cmdline: testvm.Cmdline}, a.Name == "tiny"
		},
		Bridge:        func(vlan int) string { return fmt.Sprintf("cbr%d", vlan) },
		Accel:         "tcg", // the auto probe is for agents; some hosts' KVM fails guests that pass it
		QEMUBinary:    h.QEMU,
		QEMUImg:       h.qemuImg,
		ShutdownGrace: time.Second,
		Logger:        slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // stop what a failed test left running, after showing its consoles
		if t.Failed() {
			entries, _ := os.ReadDir(q.cfg.Dir)
			for _, e := range entries {
				console, _ := os.ReadFile(filepath.Join(q.cfg.Dir, e.Name(), fileConsole))
				t.Logf("the console of VM %s:\n%s", e.Name(), console)
			}
		}
		if _, err := q.Reconcile(context.Background(), nil); err != nil { // t.Context() is done by now
			t.Errorf("Reconcile(none) at cleanup: %v", err)
		}
	})
	return q
}

// boot is one boot's report on the console.
type boot map[string]string // "MARKER" → "CITADEL-MARKER-…"

// boots parses the console into its boots.
func boots(console []byte) []boot {
	var out []boot
	text := strings.ReplaceAll(string(console), "\r", "")
	for _, m := range consoleLine.FindAllStringSubmatch(text, -1) {
		if m[1] == "BOOT" {
			out = append(out, boot{})
		}
		if len(out) > 0 {
			out[len(out)-1][m[1]] = m[2]
		}
	}
	return out
}

// waitReady waits until the VM's nth boot is ready and returns it.
func waitReady(t *testing.T, q *QEMU, id string, n int) boot {
	t.Helper()
	deadline := time.Now().Add(bootTimeout)
	for {
		console, err := q.Console(id)
		if err != nil {
			t.Fatalf("Console: %v", err)
		}
		if b := boots(console); len(b) >= n {
			if _, ok := b[n-1]["READY"]; ok {
				return b[n-1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("boot %d was not ready within %v; the console:\n%s", n, bootTimeout, console)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reconcile reconciles want and returns the status of its only VM.
func reconcile(t *testing.T, q *QEMU, v agentapi.VM) agentapi.VMStatus {
	t.Helper()
	got, err := q.Reconcile(t.Context(), []agentapi.VM{v})
	if err != nil || len(got) != 1 {
		t.Fatalf("Reconcile: %v, %v", got, err)
	}
	return got[0]
}

func wantStatus(t *testing.T, got agentapi.VMStatus, power string, restarts, reimages int) {
	t.Helper()
	if got.Power != power || got.Restarts != restarts || got.Reimages != reimages || got.Error != "" {
		t.Fatalf("status %+v, want power %s, %d restarts, %d reimages and no error", got, power, restarts, reimages)
	}
}

// running reports whether pid is a live process, no zombie.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

func randomMarker(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "CITADEL-MARKER-" + hex.EncodeToString(b)
}

// TestQEMU takes one VM through its life: start, power off, start,
// restart, reimage and removal, checking the real process and what the
// guest saw each time.
func TestQEMU(t *testing.T) {
	t.Parallel()
	h := needGuestHost(t)
	q := newGuestQEMU(t, h)
	marker := randomMarker(t)
	v := testVM("tiny-1")
	v.Image.Name = "tiny"
	v.UserData = "#cloud-config\n# " + marker + "\n"
	in := q.vm(key(v.ID))
	step := time.Now()
	took := func(what string) {
		t.Logf("%s took %v", what, time.Since(step).Round(time.Millisecond))
		step = time.Now()
	}

	// The first start is cut short, as when the agent dies while QEMU
	// waits for it to attach the NICs: the next Reconcile finishes it.
	args, err := q.prepare(t.Context(), v, in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(q.cfg.QEMUBinary, args...)
	cmd.Dir = in.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu: %v: %s", err, out)
	}
	if status, err := qmpStatus(t.Context(), in.path(fileQMP)); err != nil || status != "prelaunch" {
		t.Fatalf("a VM started by hand is %q, %v; want prelaunch", status, err)
	}
	wantStatus(t, reconcile(t, q, v), On, 0, 0)
	pid := in.pid()
	if !running(pid) {
		t.Fatalf("after a start, pid %d does not run", pid)
	}
	b := waitReady(t, q, v.ID, 1)
	took("start and boot")
	if b["MARKER"] != marker || b["META"] != `local-hostname: "tiny-1"` || b["DISK"] != pristine {
		t.Fatalf("boot 1 saw %v, want marker %s, hostname tiny-1 and a pristine disk", b, marker)
	}

	// A restarted agent, a new driver on the same directory, finds the
	// VM running and leaves it be.
	q, err = NewQEMU(q.cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, reconcile(t, q, v), On, 0, 0)
	if again := in.pid(); again != pid {
		t.Fatalf("a second Reconcile changed the pid from %d to %d", pid, again)
	}
	if status, err := qmpStatus(t.Context(), in.path(fileQMP)); err != nil || status != "running" {
		t.Fatalf("the VM is %q, %v; want running", status, err)
	}

	// Power off: the guest ignores the power button, so QEMU quits
	// after the grace.
	v.Power = Off
	for st := reconcile(t, q, v); st.Power != Off; st = reconcile(t, q, v) {
		if time.Since(step) > 15*time.Second {
			t.Fatalf("the VM is still %+v %v after its power off", st, time.Since(step))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if running(pid) {
		t.Fatalf("after the power off, pid %d still runs", pid)
	}
	took("power off (a grace of 1s)")

	v.Power = On
	wantStatus(t, reconcile(t, q, v), On, 0, 0)
	pid2 := in.pid()
	if pid2 == pid || !running(pid2) {
		t.Fatalf("after the start, pid %d (before %d)", pid2, pid)
	}
	b = waitReady(t, q, v.ID, 2)
	took("start and boot")
	if b["MARKER"] != marker || b["DISK"] != written {
		t.Fatalf("boot 2 saw %v, want marker %s and the disk it wrote", b, marker)
	}

	v.Restarts = 1
	wantStatus(t, reconcile(t, q, v), On, 1, 0)
	b = waitReady(t, q, v.ID, 3)
	took("restart")
	if got := in.pid(); got != pid2 {
		t.Fatalf("after the restart, pid %d, want the same %d", got, pid2)
	}
	if b["MARKER"] != marker {
		t.Fatalf("boot 3 saw %v, want marker %s", b, marker)
	}

	v.Reimages = 1
	wantStatus(t, reconcile(t, q, v), On, 1, 1)
	pid3 := in.pid()
	if pid3 == pid2 || running(pid2) {
		t.Fatalf("after the reimage, pid %d (before %d, which runs: %v)", pid3, pid2, running(pid2))
	}
	b = waitReady(t, q, v.ID, 4)
	took("reimage")
	if b["DISK"] != pristine {
		t.Fatalf("boot 4, after the reimage, saw %v, want a pristine disk", b)
	}

	got, err := q.Reconcile(t.Context(), nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("Reconcile(none) = %v, %v; want no statuses", got, err)
	}
	if running(pid3) {
		t.Errorf("after its removal, the VM's pid %d still runs", pid3)
	}
	if exists(in.dir) {
		t.Errorf("after its removal, the VM's directory %s is still there", in.dir)
	}
	if _, err := q.Console(v.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Console of a removed VM: err = %v, want ErrNotFound", err)
	}
	took("removal")
}

// TestQEMUDevices boots a UEFI Windows VM, which gets OVMF and a TPM
// from swtpm (the guest is the tiny Linux all the same), with a NIC on a
// bridge when this host lets the test make one.
func TestQEMUDevices(t *testing.T) {
	t.Parallel()
	var extra []string
	if !exists(ovmfPairs[0][0]) && !exists(ovmfPairs[1][0]) {
		extra = append(extra, "OVMF (Debian package ovmf)")
	}
	if _, err := exec.LookPath("swtpm"); err != nil {
		extra = append(extra, "swtpm (Debian package swtpm)")
	}
	h := needGuestHost(t, extra...)
	q := newGuestQEMU(t, h)
	v := testVM("tiny-uefi")
	v.Image.Name, v.BootMethod, v.OSType = "tiny", "UEFI", "Windows"
	v.UserData = randomMarker(t)

	// The bridge of VLAN 4000+: made here, in the host's namespace (QEMU
	// makes its taps there), unique to this run.
	var br *netlink.Bridge
	vlan := 4000 + os.Getpid()%90
	bridge := fmt.Sprintf("cbr%d", vlan)
	if _, err := netlink.LinkByName(bridge); err == nil {
		t.Logf("no NIC: %s exists already", bridge)
	} else if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge, MTU: 1400}}); err != nil {
		t.Logf("no NIC: this host does not let the test make a bridge: %v", err)
	} else {
		t.Cleanup(func() {
			if l, err := netlink.LinkByName(bridge); err == nil {
				if err := netlink.LinkDel(l); err != nil {
					t.Errorf("remove bridge %s: %v", bridge, err)
				}
			}
		})
		l, err := netlink.LinkByName(bridge)
		if err != nil {
			t.Fatal(err)
		}
		br = l.(*netlink.Bridge)
		v.NICs = []agentapi.VMNIC{{Name: "nic0", VLAN: vlan, MAC: "02:00:00:c1:7a:de"}}
	}

	start := time.Now()
	wantStatus(t, reconcile(t, q, v), On, 0, 0)
	b := waitReady(t, q, v.ID, 1)
	t.Logf("a UEFI boot with a TPM took %v", time.Since(start).Round(time.Millisecond))
	if _, efi := b["EFI"]; !efi {
		t.Errorf("the guest saw no UEFI: %v", b)
	}
	if _, tpm := b["TPM"]; !tpm {
		t.Errorf("the guest saw no TPM: %v", b)
	}
	in := q.vm(key(v.ID))
	if br != nil {
		if b["NIC"] != v.NICs[0].MAC {
			t.Errorf("the guest saw NIC %q, want MAC %s", b["NIC"], v.NICs[0].MAC)
		}
		tap, err := netlink.LinkByName(tapName(in.key, 0))
		if err != nil {
			t.Fatalf("the VM's tap: %v", err)
		}
		if a := tap.Attrs(); a.MasterIndex != br.Index || a.MTU != 1400 || a.OperState == netlink.OperDown {
			t.Errorf("tap %s: master %d, mtu %d, state %v; want master %d (%s), mtu 1400, up", a.Name, a.MasterIndex, a.MTU, a.OperState, br.Index, bridge)
		}
	}
	tpm := in.tpmPID()
	if tpm == 0 {
		t.Fatalf("no swtpm runs for the VM")
	}

	if _, err := q.Reconcile(t.Context(), nil); err != nil {
		t.Fatalf("Reconcile(none): %v", err)
	}
	if running(tpm) {
		t.Errorf("the VM's swtpm %d still runs after its removal", tpm)
	}
	if br != nil {
		if _, err := netlink.LinkByName(tapName(in.key, 0)); err == nil {
			t.Errorf("the VM's tap is still there after its removal")
		}
	}
}
