// Package testvm boots a tiny Linux in QEMU for tests: Debian's cloud
// kernel with a busybox initramfs holding the modules, files and /init
// a test gives it. Tests use it to run what this host's kernel cannot
// (hostnet's VLAN tests) and to give the agent's VM driver a real guest.
// It needs QEMU, the kernel (Debian package linux-image-cloud-amd64),
// busybox and cpio, which scripts/test installs; a test without them
// skips, or under CI=true fails. Only tests may import it.
package testvm

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
)

// Cmdline is a kernel command line for a guest whose console is the
// serial port and which powers off rather than waits when it panics.
const Cmdline = "console=ttyS0 quiet panic=-1"

var (
	lddPath         = regexp.MustCompile(`(/\S+) \(0x`)
	terminalControl = regexp.MustCompile(`\x1b(\[[0-9;?]*)?[A-Za-z]|\r`) // the firmware's, and line ends' CR
)

// Host is what booting the tiny Linux needs from this host.
type Host struct {
	QEMU    string   // qemu-system-x86_64
	Kernel  string   // /boot/vmlinuz-<version>-cloud-amd64
	Modules []string // the files of the modules asked for and those they depend on, in load order; none built in
	// Missing names each thing booting needs that this host lacks, with
	// the Debian package it comes in. Look adds to it, and so may a test
	// with needs of its own.
	Missing []string

	busybox, cpio, ldd string
}

// Find finds what booting the tiny Linux needs, with the kernel modules
// named and those they depend on. It does not fail: what it does not find
// is in Missing, for Require.
func Find(modules ...string) *Host {
	h := &Host{}
	h.QEMU = h.Look("qemu-system-x86_64", "qemu-system-x86")
	h.busybox = h.Look("busybox", "busybox-static")
	h.cpio = h.Look("cpio", "cpio")
	h.ldd = h.Look("ldd", "libc-bin")
	modinfo := h.Look("modinfo", "kmod")

	kernels, _ := filepath.Glob("/boot/vmlinuz-*-cloud-amd64")
	var version string
	for _, k := range kernels { // the last, in name order, with modules
		ver := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
		if _, err := os.Stat(filepath.Join("/lib/modules", ver)); err == nil {
			h.Kernel, version = k, ver
		}
	}
	if h.Kernel == "" {
		h.Missing = append(h.Missing, "/boot/vmlinuz-*-cloud-amd64 and its /lib/modules (Debian package linux-image-cloud-amd64)")
		return h
	}
	if f, err := os.Open(h.Kernel); err != nil {
		h.Missing = append(h.Missing, fmt.Sprintf("a readable kernel: %v", err))
	} else {
		f.Close()
	}
	if modinfo == "" {
		return h
	}
	seen := map[string]bool{}
	var add func(m string) error
	add = func(m string) error {
		if seen[m] {
			return nil
		}
		seen[m] = true
		deps, err := exec.Command(modinfo, "-k", version, "-F", "depends", m).Output()
		if err != nil {
			return fmt.Errorf("module %s of %s: modinfo: %w", m, version, err)
		}
		for d := range strings.SplitSeq(strings.TrimSpace(string(deps)), ",") {
			if d != "" {
				if err := add(d); err != nil {
					return err
				}
			}
		}
		file, err := exec.Command(modinfo, "-k", version, "-F", "filename", m).Output()
		if err != nil {
			return fmt.Errorf("module %s of %s: modinfo: %w", m, version, err)
		}
		if f := strings.TrimSpace(string(file)); f != "(builtin)" {
			h.Modules = append(h.Modules, f)
		}
		return nil
	}
	for _, m := range modules {
		if err := add(m); err != nil {
			h.Missing = append(h.Missing, err.Error())
		}
	}
	return h
}

// Look returns the path of the program name, or adds it to Missing as in
// Debian package pkg.
func (h *Host) Look(name, pkg string) string {
	path, err := exec.LookPath(name)
	if err != nil {
		h.Missing = append(h.Missing, fmt.Sprintf("%s (Debian package %s)", name, pkg))
	}
	return path
}

// Require skips t, or under CI=true fails it, when anything is Missing,
// saying that what (such as "booting VMs") needs it.
func (h *Host) Require(t *testing.T, what string) {
	t.Helper()
	switch missing := strings.Join(h.Missing, ", "); {
	case missing == "":
	case os.Getenv("CI") == "true":
		t.Fatalf("%s needs %s (CI=true, so this fails rather than skips; scripts/test installs them)", what, missing)
	default:
		t.Skipf("skipping: %s needs %s, which scripts/test installs", what, missing)
	}
}

// Initramfs builds an initramfs, a cpio archive, in a temporary
// directory of t's and returns its path. It holds busybox as /bin/busybox
// with links to it for applets, the modules in /mods in load order, the
// files (path in the guest → path on this host) with the libraries each
// loads, and init as /init.
func (h *Host) Initramfs(t *testing.T, init string, applets []string, files map[string]string) string {
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
	put(h.busybox, "bin/busybox")
	for _, lib := range h.libraries(t, h.busybox) {
		put(lib, lib)
	}
	for dst, src := range files {
		put(src, dst)
		for _, lib := range h.libraries(t, src) {
			put(lib, lib)
		}
	}
	for i, m := range h.Modules {
		put(m, fmt.Sprintf("mods/%02d-%s", i, filepath.Base(m))) // numbered, so that /init loads them in order
	}
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "var"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, applet := range applets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../run", filepath.Join(root, "var/run")); err != nil { // where ip netns keeps its names
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(init), 0o755); err != nil {
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
	cmd := exec.Command(h.cpio, "--create", "--format=newc", "--owner=0:0", "--quiet", "-O", archive)
	cmd.Dir, cmd.Stdin = root, &names
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	return archive
}

// libraries lists the shared libraries exe loads, by ldd: none if it is
// static, as busybox-static's busybox is.
func (h *Host) libraries(t *testing.T, exe string) []string {
	t.Helper()
	out, err := exec.Command(h.ldd, exe).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("not a dynamic executable")) {
		t.Fatalf("ldd %s: %v: %s", exe, err, out)
	}
	var libs []string
	for _, m := range lddPath.FindAllSubmatch(out, -1) {
		libs = append(libs, string(m[1]))
	}
	return libs
}

// Run runs QEMU with args until it exits or ctx ends and returns what it
// wrote, which with -nographic is the serial console, without terminal
// control sequences and CRs.
func (h *Host) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, h.QEMU, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return terminalControl.ReplaceAllString(out.String(), ""), err
}
