// The VLAN tests need a kernel with 802.1Q VLAN links and VLAN-filtering
// bridges. CI's kernel has neither and cannot load modules, so there they
// skip; a stock Debian kernel has both, as modules. TestVLANsInVM boots
// Debian's cloud kernel in QEMU with an initramfs holding this very test
// binary, which runs the VLAN tests there, so that CI runs them after all.

package hostnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// inVM is set in the test binary that TestVLANsInVM runs in its VM, whose
// kernel must have all the tests need: there a test fails rather than
// skips.
var inVM = os.Getenv("CITADEL_HOSTNET_IN_VM") == "1"

// vmModules are the modules the VLAN tests need, each after those it
// depends on.
var vmModules = []string{"llc", "stp", "bridge", "garp", "mrp", "8021q", "veth"}

// vmInit is the VM's /init. It runs the TestApply tests, those that need
// a kernel, and prints their exit status for TestVLANsInVM to read.
const vmInit = `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
for m in /mods/*; do insmod "$m"; done
echo "=== TESTS"
CITADEL_HOSTNET_IN_VM=1 /hostnet.test -test.v -test.count=1 -test.timeout=150s '-test.run=^TestApply'
echo "=== EXIT $?"
poweroff -f
`

// TestVLANsInVM runs the VLAN tests in a VM when this kernel cannot run
// them. It needs QEMU, a Debian cloud kernel with its modules, busybox
// and cpio, which scripts/test installs; without them it skips, or under
// CI=true fails.
func TestVLANsInVM(t *testing.T) {
	if inVM {
		t.Skip("skipping: already in the VM")
	}
	why := netAdminMissing()
	if why == "" {
		if missing := missingVLANs(t, newNamespace(t).h); missing != "" {
			why = "this kernel has no " + missing
		} else {
			t.Skip("skipping: this kernel runs the VLAN tests itself")
		}
	}
	vm, missing := findVM()
	switch {
	case len(missing) == 0:
	case os.Getenv("CI") == "true":
		t.Fatalf("the VLAN tests cannot run here (%s) nor in a VM, which needs %s (CI=true, so this fails rather than skips)", why, strings.Join(missing, ", "))
	default:
		t.Skipf("skipping: the VLAN tests cannot run here (%s) nor in a VM, which needs %s", why, strings.Join(missing, ", "))
	}

	start := time.Now()
	initrd := vm.initramfs(t)
	built := time.Since(start)
	ctx, cancel := context.WithTimeout(t.Context(), vmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vm.qemu, "-accel", vm.accel, "-nographic", "-no-reboot", "-nic", "none",
		"-m", "1024", "-smp", "2", "-kernel", vm.kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	console := terminalControl.ReplaceAllString(out.String(), "")
	t.Logf("VM (%s, initramfs built in %v, ran %v) serial console:\n%s", vm.accel, built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond), console)

	switch status := exitStatus.FindStringSubmatch(console); {
	case ctx.Err() != nil:
		t.Errorf("the VM did not finish within %v", vmTimeout)
	case err != nil:
		t.Errorf("qemu: %v", err)
	case status == nil:
		t.Errorf("the VM printed no exit status of the VLAN tests")
	case status[1] != "0":
		t.Errorf("the VLAN tests failed in the VM with exit status %s: see its console above", status[1])
	}
}

// vmTimeout bounds the VM's run. Without KVM it takes 10 to 20 s on two
// idle cores, and a minute on two busy ones.
const vmTimeout = 3 * time.Minute

var (
	exitStatus      = regexp.MustCompile(`(?m)^=== EXIT (\d+)$`)
	terminalControl = regexp.MustCompile(`\x1b(\[[0-9;?]*)?[A-Za-z]|\r`) // the firmware's, and line ends' CR
	lddPath         = regexp.MustCompile(`(/\S+) \(0x`)
)

// vm is what TestVLANsInVM needs from the host: QEMU, a kernel, and what
// goes in the initramfs.
type vm struct {
	qemu, accel  string
	kernel       string   // /boot/vmlinuz-<version>
	modules      []string // the kernel's files of vmModules, besides those built in
	busybox, ip  string
	cpio, binary string
}

// findVM finds what TestVLANsInVM needs, or names each thing missing.
func findVM() (*vm, []string) {
	v := &vm{accel: "tcg"}
	var missing []string
	look := func(name, pkg string) string {
		path, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", name, pkg))
		}
		return path
	}
	v.qemu = look("qemu-system-x86_64", "qemu-system-x86")
	v.busybox = look("busybox", "busybox-static")
	v.cpio = look("cpio", "cpio")
	v.ip = look("ip", "iproute2")
	look("ldd", "libc-bin")
	modinfo := look("modinfo", "kmod")
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		v.accel = "kvm"
	}
	if exe, err := os.Executable(); err != nil {
		missing = append(missing, fmt.Sprintf("this test binary: %v", err))
	} else {
		v.binary = exe
	}

	kernels, _ := filepath.Glob("/boot/vmlinuz-*-cloud-amd64")
	var version string
	for _, k := range kernels { // the last, in name order, with modules
		if ver := strings.TrimPrefix(filepath.Base(k), "vmlinuz-"); exists(filepath.Join("/lib/modules", ver)) {
			v.kernel, version = k, ver
		}
	}
	if v.kernel == "" {
		return v, append(missing, "/boot/vmlinuz-*-cloud-amd64 and its /lib/modules (Debian package linux-image-cloud-amd64)")
	}
	if f, err := os.Open(v.kernel); err != nil {
		missing = append(missing, fmt.Sprintf("a readable kernel: %v", err))
	} else {
		f.Close()
	}
	if modinfo == "" {
		return v, missing
	}
	for _, m := range vmModules {
		out, err := exec.Command(modinfo, "-k", version, "-F", "filename", m).Output()
		switch file := strings.TrimSpace(string(out)); {
		case err != nil:
			missing = append(missing, fmt.Sprintf("module %s of %s: modinfo: %v", m, version, err))
		case file != "(builtin)":
			v.modules = append(v.modules, file)
		}
	}
	return v, missing
}

// initramfs builds the VM's initramfs, a cpio archive, and returns its
// path. It holds busybox, ip, this test binary, the libraries each loads,
// the modules and vmInit.
func (v *vm) initramfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	put := func(src, dst string) {
		t.Helper()
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dst), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	put(v.busybox, "bin/busybox")
	put(v.ip, "sbin/ip")
	put(v.binary, "hostnet.test")
	for _, exe := range []string{v.busybox, v.ip, v.binary} {
		for _, lib := range libraries(t, exe) {
			put(lib, lib)
		}
	}
	for i, m := range v.modules {
		put(m, fmt.Sprintf("mods/%d-%s", i, filepath.Base(m))) // numbered, so that /init loads them in order
	}
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "var"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, applet := range []string{"sh", "mount", "insmod", "poweroff"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../run", filepath.Join(root, "var/run")); err != nil { // where ip netns keeps its names
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(vmInit), 0o755); err != nil {
		t.Fatal(err)
	}

	var names bytes.Buffer
	err := filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintln(&names, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "initramfs.cpio")
	cmd := exec.Command(v.cpio, "--create", "--format=newc", "--owner=0:0", "--quiet", "-O", archive)
	cmd.Dir, cmd.Stdin = root, &names
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	return archive
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// libraries lists the shared libraries exe loads, by ldd: none if it is
// static.
func libraries(t *testing.T, exe string) []string {
	t.Helper()
	out, err := exec.Command("ldd", exe).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("not a dynamic executable")) {
		t.Fatalf("ldd %s: %v: %s", exe, err, out)
	}
	var libs []string
	for _, m := range lddPath.FindAllSubmatch(out, -1) {
		libs = append(libs, string(m[1]))
	}
	return libs
}
