// The VLAN tests need a kernel with 802.1Q VLAN links and VLAN-filtering
// bridges. CI's kernel has neither and cannot load modules, so there they
// skip; a stock Debian kernel has both, as modules. TestVLANsInVM boots
// Debian's cloud kernel in QEMU with an initramfs holding this very test
// binary, which runs the VLAN tests there, so that CI runs them after all.

package hostnet

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/testvm"
)

// inVM is set in the test binary that TestVLANsInVM runs in its VM, whose
// kernel must have all the tests need: there a test fails rather than
// skips.
var inVM = os.Getenv("CITADEL_HOSTNET_IN_VM") == "1"

// vmModules are the modules the VLAN tests need.
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
// them. It needs QEMU, a Debian cloud kernel with its modules, busybox,
// cpio and ip, which scripts/test installs; without them it skips, or
// under CI=true fails.
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
	h := testvm.Find(vmModules...)
	ip := h.Look("ip", "iproute2")
	exe, err := os.Executable()
	if err != nil {
		h.Missing = append(h.Missing, fmt.Sprintf("this test binary: %v", err))
	}
	h.Require(t, fmt.Sprintf("the VLAN tests cannot run here (%s), and running them in a VM", why))
	accel := "tcg"
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		accel = "kvm"
	}

	start := time.Now()
	initrd := h.Initramfs(t, vmInit, []string{"sh", "mount", "insmod", "poweroff"},
		map[string]string{"sbin/ip": ip, "hostnet.test": exe})
	built := time.Since(start)
	ctx, cancel := context.WithTimeout(t.Context(), vmTimeout)
	defer cancel()
	console, err := h.Run(ctx, "-accel", accel, "-nographic", "-no-reboot", "-nic", "none",
		"-m", "1024", "-smp", "2", "-kernel", h.Kernel, "-initrd", initrd, "-append", testvm.Cmdline)
	t.Logf("VM (%s, initramfs built in %v, ran %v) serial console:\n%s", accel, built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond), console)

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

var exitStatus = regexp.MustCompile(`(?m)^=== EXIT (\d+)$`)
