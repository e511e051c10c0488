package vm

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// QEMUConfig configures the QEMU driver.
type QEMUConfig struct {
	// Dir keeps the VMs' state: a directory per VM named by its key (see
	// the files below). Its path must be short, as QEMU's QMP socket path
	// is at most 107 bytes.
	Dir string
	// Images returns the file of an image artifact, which the agent
	// stages: a raw (or fixed VHD) or qcow2 disk image. A VM's disk is a
	// qcow2 overlay on it, so the file must stay while a VM uses it; a
	// VM with an OS disk on the SAN gets a copy written to that instead.
	Images func(image agentapi.Artifact) (path string, err error)
	// KernelBoot, if set, may say that an image boots a kernel directly
	// instead of from its disk (which is still attached): the tests' tiny
	// Linux, or a distribution's kernel and initramfs.
	KernelBoot func(image agentapi.Artifact) (k Kernel, ok bool)
	// Bridge names the bridge of a VLAN, where a VM's NIC on it joins
	// (hostnet's "cbr<vlan>"). A NIC whose bridge does not exist keeps
	// its VM from starting.
	Bridge func(vlan int) string
	// Accel is QEMU's accelerator, "kvm" or "tcg"; "" probes KVM once
	// and falls back to TCG.
	Accel string
	// QEMUBinary and QEMUImg default to "qemu-system-x86_64" and
	// "qemu-img" on the PATH. Both need TLS (gnutls) for the VMs' disks
	// on the SAN, as Debian's do.
	QEMUBinary string
	QEMUImg    string
	// OVMFCode and OVMFVars are the UEFI firmware and its variables'
	// template, which UEFI VMs need; empty takes the first pair present
	// of ovmfPairs (Debian's ovmf package).
	OVMFCode, OVMFVars string
	// SWTPM is the swtpm binary that gives Windows VMs their TPM; empty
	// takes "swtpm" from the PATH.
	SWTPM string
	// ShutdownGrace is how long a VM to power off has to shut down after
	// its ACPI power button press before QEMU quits under it: 0 means a
	// minute, a negative value quits at once.
	ShutdownGrace time.Duration
	// PCIDevices is where the host's PCI devices are listed, for the
	// GPUs passed through to VMs; empty is sysfs's.
	PCIDevices string
	Logger     *slog.Logger
}

// Kernel is a kernel that QEMU boots directly, its initramfs and its
// command line (which should name the serial console, console=ttyS0,
// for the console log).
type Kernel struct {
	Path, Initrd, Cmdline string
}

// ovmfPairs are where Debian's ovmf package puts the firmware and its
// variables' template, newest layout first.
var ovmfPairs = [][2]string{
	{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
}

const (
	defaultShutdownGrace = time.Minute
	// exitWait bounds the wait for a QEMU to go after quit, and again
	// after SIGKILL.
	exitWait = 10 * time.Second
	// consoleMax is the most of a console log Console returns; at a
	// start, a longer log is cut to its last half.
	consoleMax = 1 << 20
	// maxSocketPath is the longest path of a unix socket.
	maxSocketPath = 107
)

// The files of a VM's directory.
const (
	fileState   = "state.json" // a record
	fileDisk    = "disk.qcow2" // the overlay on the image, unless the VM has an OS disk
	fileSeed    = "seed.iso"   // the NoCloud seed
	fileConsole = "console.log"
	fileQMP     = "qmp.sock"
	filePID     = "pid"        // QEMU's, written by QEMU
	fileVars    = "efivars.fd" // a UEFI VM's variables
	fileTPM     = "tpm"        // a Windows VM's TPM state, a directory
	fileTPMSock = "tpm.sock"
	fileTPMPID  = "tpm.pid"     // swtpm's
	fileLog     = "qemu.log"    // QEMU's output until it daemonizes
	fileKeys    = "keys"        // the keys of its disks on the SAN: keys/<index>/keys.psk, "identity:hexkey"
	fileHead    = "os-head.raw" // the first MiB of its OS disk, while the driver checks that it is blank
)

// QEMU runs each VM as a qemu-system-x86_64 process of its own, detached
// from the agent so that the VMs outlive an agent restart: Reconcile finds
// them again by their pid files and QMP sockets. Power actions go through
// QMP: power off presses the ACPI power button and quits after the grace,
// restart resets, reimage recreates the disk from the image, or writes
// the image to the OS disk again (and resets the UEFI variables and the
// TPM).
//
// A VM is a q35 machine with its cores and memory, its disk and its
// NoCloud seed as virtio disks, its NICs as virtio NICs on taps on their
// VLANs' bridges, and its serial console appended to console.log. A UEFI
// VM boots OVMF, without Secure Boot; a Windows VM also gets a TPM 2.0
// from swtpm. Windows 11's Secure Boot is not offered, and a Windows
// image needs the virtio drivers.
//
// Its volumes on the SAN (VM.Disks) are virtio disks after the seed, in
// their order, with the volumes' serials (a virtio disk shows the guest
// the first 20 bytes: /dev/disk/by-id/virtio-<serial>), reached over NBD
// with TLS-PSK (see disks.go). A Persistent OS disk replaces the overlay
// as the disk it boots from: the driver writes the image to it before a
// start when it is blank (its first MiB all zero) and again at each
// reimage. An export that cannot be reached, or refuses the key, keeps
// the VM from starting and is in its status.
//
// Changes to a running VM's cores, memory, NICs and disks (a disk's
// export, or its key, after its volume moved) apply at its next start:
// a power off and on, or a reimage, not a restart.
type QEMU struct {
	cfg QEMUConfig
	log *slog.Logger

	mu        sync.Mutex        // one Reconcile at a time
	errs      map[string]string // each VM's error at the last Reconcile, to log changes only
	accelOnce sync.Once
	accel     string
}

// NewQEMU returns a QEMU driver with cfg, making cfg.Dir.
func NewQEMU(cfg QEMUConfig) (*QEMU, error) {
	if cfg.Dir == "" || cfg.Images == nil {
		return nil, errors.New("vm: QEMUConfig needs Dir and Images")
	}
	if cfg.Accel != "" && cfg.Accel != "kvm" && cfg.Accel != "tcg" {
		return nil, fmt.Errorf("vm: accel %q: want kvm, tcg or empty", cfg.Accel)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("vm: dir: %w", err)
	}
	cfg.Dir = dir
	if n := len(filepath.Join(dir, key(""), fileQMP)); n > maxSocketPath {
		return nil, fmt.Errorf("vm: dir %s is too long: its VMs' QMP sockets would be %d bytes, more than %d", dir, n, maxSocketPath)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	if cfg.QEMUBinary == "" {
		cfg.QEMUBinary = "qemu-system-x86_64"
	}
	if cfg.QEMUImg == "" {
		cfg.QEMUImg = "qemu-img"
	}
	if cfg.SWTPM == "" {
		cfg.SWTPM = "swtpm"
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = defaultShutdownGrace
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &QEMU{cfg: cfg, log: log.With("component", "vm_qemu"), errs: map[string]string{}}, nil
}

// Reconcile implements Driver. It works on the VMs in parallel; a power
// off that waits for its guest returns at once and finishes at a later
// Reconcile, once the guest is down or its grace is over.
func (q *QEMU) Reconcile(ctx context.Context, want []agentapi.VM) ([]agentapi.VMStatus, error) {
	if err := checkWant(want); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]agentapi.VMStatus, len(want))
	wanted := make(map[string]bool, len(want))
	var wg sync.WaitGroup
	for i, v := range want {
		wanted[key(v.ID)] = true
		wg.Go(func() { out[i] = q.reconcile(ctx, v) })
	}
	wg.Wait()
	errs := make(map[string]string, len(out))
	for _, st := range out {
		if st.Error != "" && st.Error != q.errs[st.ID] {
			q.log.WarnContext(ctx, "vm not as desired", "vm", st.ID, "power", st.Power, "err", st.Error)
		}
		if st.Error != "" {
			errs[st.ID] = st.Error
		}
	}
	q.errs = errs

	entries, err := os.ReadDir(q.cfg.Dir)
	if err != nil {
		return out, fmt.Errorf("vm: %w", err)
	}
	var failed []error
	for _, e := range entries {
		if e.IsDir() && isKey(e.Name()) && !wanted[e.Name()] {
			if err := q.remove(ctx, q.vm(e.Name())); err != nil {
				failed = append(failed, err)
			}
		}
	}
	return out, errors.Join(failed...)
}

// Console implements Driver: the last MiB of the VM's console log.
func (q *QEMU) Console(id string) ([]byte, error) {
	in := q.vm(key(id))
	f, err := os.Open(in.path(fileConsole))
	switch {
	case errors.Is(err, fs.ErrNotExist) && !exists(in.dir):
		return nil, fmt.Errorf("vm %q: %w", id, ErrNotFound)
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil // never started
	case err != nil:
		return nil, fmt.Errorf("vm %q: console: %w", id, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > consoleMax {
		if _, err := f.Seek(-consoleMax, io.SeekEnd); err != nil {
			return nil, fmt.Errorf("vm %q: console: %w", id, err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("vm %q: console: %w", id, err)
	}
	return b, nil
}

// instance is one VM's directory.
type instance struct {
	key, dir string
}

func (q *QEMU) vm(k string) instance { return instance{key: k, dir: filepath.Join(q.cfg.Dir, k)} }

func (in instance) path(file string) string { return filepath.Join(in.dir, file) }

// record is what the driver keeps of a VM between Reconciles, in its
// state file.
type record struct {
	ID string `json:"id"`
	// Restarts and Reimages are the counts done.
	Restarts int `json:"restarts"`
	Reimages int `json:"reimages"`
	// PowerdownBy is when a power off that waits for the guest gives up
	// and quits; zero when none is under way.
	PowerdownBy time.Time `json:"powerdownBy,omitzero"`
	// Imaging is the serial of the OS disk the image is being written
	// to, "" when no write is under way: one that did not finish is
	// done again before the VM starts.
	Imaging string `json:"imaging,omitempty"`
}

// load reads the VM's record. A new VM's record takes its counts from
// v: a VM is not restarted for requests made before it ran here.
func (in instance) load(v agentapi.VM) (record, error) {
	b, err := os.ReadFile(in.path(fileState))
	if errors.Is(err, fs.ErrNotExist) {
		return record{ID: v.ID, Restarts: v.Restarts, Reimages: v.Reimages}, nil
	}
	if err != nil {
		return record{}, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("%s: %w", in.path(fileState), err)
	}
	return r, nil
}

func (in instance) save(r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(in.dir, 0o700); err != nil {
		return err
	}
	tmp := in.path(fileState + ".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, in.path(fileState))
}

// reconcile brings one VM to v and reports it.
func (q *QEMU) reconcile(ctx context.Context, v agentapi.VM) agentapi.VMStatus {
	in := q.vm(key(v.ID))
	st := agentapi.VMStatus{ID: v.ID, Power: Off}
	rec, err := in.load(v)
	if err == nil {
		err = q.converge(ctx, v, in, &rec)
		if serr := in.save(rec); serr != nil && err == nil {
			err = serr
		}
	}
	if in.pid() != 0 {
		st.Power = On
	}
	st.Restarts, st.Reimages = rec.Restarts, rec.Reimages
	if err != nil {
		st.Error = err.Error()
	}
	return st
}

// converge acts on one VM: a reimage, a restart, then its power. It
// updates rec with what it did.
func (q *QEMU) converge(ctx context.Context, v agentapi.VM, in instance, rec *record) error {
	if err := check(v); err != nil {
		return err
	}
	pid := in.pid()
	status := ""
	if pid != 0 {
		var err error
		if status, err = qmpStatus(ctx, in.path(fileQMP)); err != nil {
			if pid = in.pid(); pid != 0 { // else it just ended
				return err
			}
		}
	}
	if pid == 0 {
		rec.PowerdownBy = time.Time{}
	} else {
		// A start the agent did not finish leaves QEMU waiting to
		// run (-S): finish it, or end it.
		switch {
		case status != "prelaunch":
		case v.Power == On:
			if err := q.resume(ctx, v, in); err != nil {
				return err
			}
		default:
			if err := q.stop(ctx, in, pid); err != nil {
				return err
			}
			pid = 0
		}
	}

	if v.Reimages > rec.Reimages {
		image, err := q.image(v.Image)
		if err != nil {
			return err
		}
		disks, err := in.disks(v.Disks)
		if err != nil {
			return err
		}
		if pid != 0 {
			if err := q.stop(ctx, in, pid); err != nil {
				return err
			}
			pid = 0
		}
		for _, f := range []string{fileDisk, fileVars, fileTPM} {
			if err := os.RemoveAll(in.path(f)); err != nil {
				return fmt.Errorf("reimage: %w", err)
			}
		}
		if d, ok := osDisk(disks); ok {
			err = q.imageOS(ctx, v, in, d, image, rec)
		} else {
			err = q.newDisk(ctx, in, image)
		}
		if err != nil {
			return err
		}
		q.log.InfoContext(ctx, "vm reimaged", "vm", v.ID, "key", in.key, "image", v.Image.Name)
		rec.Reimages, rec.Restarts, rec.PowerdownBy = v.Reimages, max(rec.Restarts, v.Restarts), time.Time{}
	}
	if v.Restarts > rec.Restarts {
		if pid != 0 && v.Power == On {
			if _, err := qmp(ctx, in.path(fileQMP), "system_reset", nil); err != nil {
				return err
			}
			q.log.InfoContext(ctx, "vm restarted", "vm", v.ID, "key", in.key)
		}
		rec.Restarts = v.Restarts // one that is off is not restarted
	}

	switch {
	case v.Power == On && pid == 0:
		if err := q.provisionOS(ctx, v, in, rec); err != nil {
			return err
		}
		return q.start(ctx, v, in)
	case v.Power == On:
		rec.PowerdownBy = time.Time{} // its guest may still go down; the next Reconcile starts it again
	case pid != 0:
		return q.powerOff(ctx, v, in, pid, rec)
	}
	return nil
}

// powerOff presses the VM's power button, and quits QEMU once the grace
// is over.
func (q *QEMU) powerOff(ctx context.Context, v agentapi.VM, in instance, pid int, rec *record) error {
	switch {
	case q.cfg.ShutdownGrace < 0:
	case rec.PowerdownBy.IsZero():
		if _, err := qmp(ctx, in.path(fileQMP), "system_powerdown", nil); err != nil {
			return err
		}
		rec.PowerdownBy = time.Now().Add(q.cfg.ShutdownGrace)
		q.log.InfoContext(ctx, "vm shutting down", "vm", v.ID, "key", in.key, "grace", q.cfg.ShutdownGrace)
		return nil
	case time.Now().Before(rec.PowerdownBy):
		return nil
	default:
		q.log.InfoContext(ctx, "vm did not shut down within its grace", "vm", v.ID, "key", in.key, "grace", q.cfg.ShutdownGrace)
	}
	if err := q.stop(ctx, in, pid); err != nil {
		return err
	}
	rec.PowerdownBy = time.Time{}
	q.log.InfoContext(ctx, "vm powered off", "vm", v.ID, "key", in.key)
	return nil
}

// remove stops a VM no longer wanted and removes its directory.
func (q *QEMU) remove(ctx context.Context, in instance) error {
	if pid := in.pid(); pid != 0 {
		if err := q.stop(ctx, in, pid); err != nil {
			return fmt.Errorf("vm %s: remove: %w", in.key, err)
		}
	}
	if pid := in.tpmPID(); pid != 0 { // a start's that did not finish
		if err := kill(ctx, pid, in.path(fileTPMSock)); err != nil {
			return fmt.Errorf("vm %s: remove: swtpm: %w", in.key, err)
		}
	}
	if err := os.RemoveAll(in.dir); err != nil {
		return fmt.Errorf("vm %s: remove: %w", in.key, err)
	}
	q.log.InfoContext(ctx, "vm removed", "key", in.key)
	return nil
}

// stop ends the VM's QEMU at once: QMP quit, and SIGKILL if that does
// not end it. Its swtpm, if any, ends with it.
func (q *QEMU) stop(ctx context.Context, in instance, pid int) error {
	_, qerr := qmp(ctx, in.path(fileQMP), "quit", nil)
	if err := waitExit(ctx, pid, in.path(fileQMP), exitWait); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stop: %w", err)
		}
		q.log.WarnContext(ctx, "qemu did not quit, killing it", "key", in.key, "pid", pid, "qmp_err", qerr)
		if err := kill(ctx, pid, in.path(fileQMP)); err != nil {
			return fmt.Errorf("stop: qemu: %w", err)
		}
	}
	if pid := in.tpmPID(); pid != 0 {
		if err := waitExit(ctx, pid, in.path(fileTPMSock), exitWait); err != nil {
			if err := kill(ctx, pid, in.path(fileTPMSock)); err != nil {
				return fmt.Errorf("stop: swtpm: %w", err)
			}
		}
	}
	return nil
}

// kill sends pid SIGKILL and waits for it to go.
func kill(ctx context.Context, pid int, socket string) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	if err := waitExit(ctx, pid, socket, exitWait); err != nil {
		return fmt.Errorf("after SIGKILL: %w", err)
	}
	return nil
}

// waitExit waits up to d for the process pid, which names socket, to
// end.
func waitExit(ctx context.Context, pid int, socket string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for alive(pid, socket) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("wait for %d to end: %w", pid, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d is still there after %v", pid, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// pid is the VM's running QEMU process, 0 if none runs.
func (in instance) pid() int { return in.process(filePID, fileQMP) }

// tpmPID is the VM's running swtpm process, 0 if none runs.
func (in instance) tpmPID() int { return in.process(fileTPMPID, fileTPMSock) }

// process is the live process whose pid is in the VM's file pidFile and
// whose command line names the VM's socket, 0 if none.
func (in instance) process(pidFile, socket string) int {
	b, err := os.ReadFile(in.path(pidFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !alive(pid, in.path(socket)) {
		return 0
	}
	return pid
}

// alive reports whether pid is a live process, no zombie, whose command
// line names socket: the check of the command line keeps a reused pid
// from passing.
func alive(pid int, socket string) bool {
	if pid <= 0 {
		return false
	}
	proc := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(proc + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may hold
	// anything: find its last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(proc + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte(optValue(socket)))
}

// image is the file of an image artifact.
func (q *QEMU) image(a agentapi.Artifact) (string, error) {
	path, err := q.cfg.Images(a)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", a.Name, err)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("image %s: %w", a.Name, err)
	}
	return path, nil
}

// newDisk makes the VM's disk: a qcow2 overlay on image, so that the
// image is shared and a reimage is a new overlay.
func (q *QEMU) newDisk(ctx context.Context, in instance, image string) error {
	format, err := imageFormat(image)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	abs, err := filepath.Abs(image)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if err := os.MkdirAll(in.dir, 0o700); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	tmp := in.path(fileDisk + ".tmp")
	out, err := exec.CommandContext(ctx, q.cfg.QEMUImg, "create", "-q", "-f", "qcow2", "-b", abs, "-F", format, tmp).CombinedOutput()
	if err != nil {
		return fmt.Errorf("disk: qemu-img create: %w: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Rename(tmp, in.path(fileDisk)); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	return nil
}

// imageFormat is "qcow2" for a qcow2 image and "raw" for any other: a
// raw disk, or a fixed VHD, whose footer QEMU ignores.
func imageFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if string(magic) == "QFI\xfb" {
		return "qcow2", nil
	}
	return "raw", nil
}

// start launches the VM's QEMU and lets it run.
func (q *QEMU) start(ctx context.Context, v agentapi.VM, in instance) error {
	args, err := q.prepare(ctx, v, in)
	if err != nil {
		return err
	}
	if v.OSType == "Windows" {
		if err := q.startTPM(ctx, in); err != nil {
			return err
		}
		args = append(args, "-chardev", "socket,id=tpm,path="+optValue(in.path(fileTPMSock)),
			"-tpmdev", "emulator,id=tpm0,chardev=tpm", "-device", "tpm-crb,tpmdev=tpm0")
	}
	log, err := os.Create(in.path(fileLog))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, q.cfg.QEMUBinary, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = in.dir, log, log
	// QEMU forks the VM's process off once it is set up (-daemonize)
	// and that process leaves the agent's session, so an agent restart
	// does not end it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(in.path(fileLog))
		if pid := in.tpmPID(); pid != 0 {
			_ = kill(ctx, pid, in.path(fileTPMSock)) // it would wait for this QEMU forever
		}
		if derr := diskError(out, args, v.Disks); derr != nil {
			return fmt.Errorf("start: %w", derr)
		}
		return fmt.Errorf("start: qemu: %w: %s", err, bytes.TrimSpace(out))
	}
	if err := q.resume(ctx, v, in); err != nil {
		return err
	}
	q.log.InfoContext(ctx, "vm started", "vm", v.ID, "key", in.key, "pid", in.pid(), "accel", q.accelerator(ctx), "took", time.Since(t0))
	return nil
}

// prepare checks that v can start, makes its files (the disk if it has
// none and no OS disk, its disks' keys, the seed, the UEFI variables) and
// returns QEMU's arguments.
func (q *QEMU) prepare(ctx context.Context, v agentapi.VM, in instance) ([]string, error) {
	if err := os.MkdirAll(in.dir, 0o700); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	var firmware []string
	switch v.BootMethod {
	case "", "BIOS":
	case "UEFI":
		code, vars, err := q.ovmf()
		if err != nil {
			return nil, err
		}
		if !exists(in.path(fileVars)) {
			if err := copyFile(vars, in.path(fileVars)); err != nil {
				return nil, fmt.Errorf("uefi variables: %w", err)
			}
		}
		firmware = []string{
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + optValue(code),
			"-drive", "if=pflash,format=raw,unit=1,file=" + optValue(in.path(fileVars)),
		}
	default:
		return nil, fmt.Errorf("boot method %q: want UEFI or BIOS", v.BootMethod)
	}
	switch v.OSType {
	case "", "Linux":
	case "Windows":
		if _, err := exec.LookPath(q.cfg.SWTPM); err != nil {
			return nil, errors.New("windows VMs need swtpm (Debian package swtpm), which is not installed")
		}
	default:
		return nil, fmt.Errorf("os type %q: want Linux or Windows", v.OSType)
	}
	nics, err := q.nicArgs(v, in)
	if err != nil {
		return nil, err
	}
	gpus, err := gpuArgs(v.GPUs, cmp.Or(q.cfg.PCIDevices, defaultPCIDevices))
	if err != nil {
		return nil, err
	}
	disks, err := in.disks(v.Disks)
	if err != nil {
		return nil, err
	}
	bootDisk := []string{
		"-drive", "if=none,id=disk,format=qcow2,discard=unmap,file=" + optValue(in.path(fileDisk)),
		"-device", "virtio-blk-pci,drive=disk,bootindex=1", // 0 is a direct kernel boot's
	}
	var dataDisks []string
	for _, d := range disks {
		if !d.OS {
			dataDisks = append(dataDisks, d.args(false)...)
		}
	}
	if d, ok := osDisk(disks); ok {
		bootDisk = d.args(true)
		if err := in.removeOverlay(); err != nil {
			return nil, err
		}
	} else if !exists(in.path(fileDisk)) {
		image, err := q.image(v.Image)
		if err != nil {
			return nil, err
		}
		if err := q.newDisk(ctx, in, image); err != nil {
			return nil, err
		}
	}
	iso, err := buildISO(seedLabel, seedFiles(v, in.key), time.Now())
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := os.WriteFile(in.path(fileSeed), iso, 0o600); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := trimConsole(in.path(fileConsole)); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}

	accel := q.accelerator(ctx)
	cpu := "max"
	if accel == "kvm" {
		cpu = "host"
	}
	args := []string{
		"-name", optValue(v.Name),
		"-uuid", vmUUID(v.ID),
		"-machine", "q35", "-accel", accel, "-cpu", cpu,
		"-smp", strconv.Itoa(v.Cores), "-m", strconv.Itoa(v.MemoryMiB),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-daemonize", "-pidfile", in.path(filePID),
		"-qmp", "unix:" + optValue(in.path(fileQMP)) + ",server=on,wait=off",
		"-chardev", "file,id=console,append=on,path=" + optValue(in.path(fileConsole)),
		"-serial", "chardev:console",
		"-S", // resume attaches the NICs, then lets it run
	}
	args = append(args, bootDisk...)
	args = append(args, "-drive", "if=none,id=seed,format=raw,readonly=on,file="+optValue(in.path(fileSeed)),
		"-device", "virtio-blk-pci,drive=seed")
	args = append(args, dataDisks...)
	args = append(args, firmware...)
	args = append(args, nics...)
	args = append(args, gpus...)
	if q.cfg.KernelBoot != nil {
		if k, ok := q.cfg.KernelBoot(v.Image); ok {
			args = append(args, "-kernel", k.Path)
			if k.Initrd != "" {
				args = append(args, "-initrd", k.Initrd)
			}
			if k.Cmdline != "" {
				args = append(args, "-append", k.Cmdline)
			}
		}
	}
	return args, nil
}

// nicArgs checks the VM's NICs, their MACs and bridges, and returns
// their QEMU arguments: each a virtio NIC on a tap that QEMU makes and
// resume puts on the bridge.
func (q *QEMU) nicArgs(v agentapi.VM, in instance) ([]string, error) {
	var args []string
	vhost := ""
	if exists("/dev/vhost-net") {
		vhost = ",vhost=on"
	}
	for i, n := range v.NICs {
		if mac, err := net.ParseMAC(n.MAC); err != nil || len(mac) != 6 {
			return nil, fmt.Errorf("nic %q: mac %q: want six bytes, as 02:00:00:00:00:01", n.Name, n.MAC)
		}
		if _, err := q.bridge(n); err != nil {
			return nil, err
		}
		id := "nic" + strconv.Itoa(i)
		args = append(args,
			"-netdev", "tap,id="+id+",ifname="+tapName(in.key, i)+",script=no,downscript=no"+vhost,
			"-device", "virtio-net-pci,netdev="+id+",mac="+n.MAC)
	}
	return args, nil
}

// bridge is the bridge of the NIC's VLAN, which must exist.
func (q *QEMU) bridge(n agentapi.VMNIC) (netlink.Link, error) {
	if q.cfg.Bridge == nil {
		return nil, fmt.Errorf("nic %q: this machine has no bridges for VLANs", n.Name)
	}
	name := q.cfg.Bridge(n.VLAN)
	br, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("nic %q: bridge %s of VLAN %d: %w", n.Name, name, n.VLAN, err)
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("nic %q: %s of VLAN %d is a %s, not a bridge", n.Name, name, n.VLAN, br.Type())
	}
	return br, nil
}

// tapName is the name of the tap of a VM's ith NIC, "cv" and the start
// of its key: an interface name is at most 15 bytes.
func tapName(k string, i int) string { return "cv" + k[:10] + strconv.Itoa(i) }

// resume puts a started VM's taps on their bridges, with the bridge's
// MTU, and lets the VM run.
func (q *QEMU) resume(ctx context.Context, v agentapi.VM, in instance) error {
	for i, n := range v.NICs {
		br, err := q.bridge(n)
		if err != nil {
			return err
		}
		tap, err := netlink.LinkByName(tapName(in.key, i))
		if err == nil {
			err = netlink.LinkSetMTU(tap, br.Attrs().MTU)
		}
		if err == nil {
			err = netlink.LinkSetMaster(tap, br)
		}
		if err == nil {
			err = netlink.LinkSetUp(tap)
		}
		if err != nil {
			return fmt.Errorf("nic %q: tap %s on %s: %w", n.Name, tapName(in.key, i), br.Attrs().Name, err)
		}
	}
	_, err := qmp(ctx, in.path(fileQMP), "cont", nil)
	return err
}

// ovmf finds the UEFI firmware.
func (q *QEMU) ovmf() (code, vars string, err error) {
	if q.cfg.OVMFCode != "" || q.cfg.OVMFVars != "" {
		if !exists(q.cfg.OVMFCode) || !exists(q.cfg.OVMFVars) {
			return "", "", fmt.Errorf("uefi VMs need OVMF: %s or %s is missing", q.cfg.OVMFCode, q.cfg.OVMFVars)
		}
		return q.cfg.OVMFCode, q.cfg.OVMFVars, nil
	}
	for _, p := range ovmfPairs {
		if exists(p[0]) && exists(p[1]) {
			return p[0], p[1], nil
		}
	}
	return "", "", errors.New("uefi VMs need OVMF (Debian package ovmf), which is not installed")
}

// startTPM starts the swtpm that is a Windows VM's TPM 2.0, keeping its
// state in the VM's directory. It ends when its QEMU hangs up.
func (q *QEMU) startTPM(ctx context.Context, in instance) error {
	if pid := in.tpmPID(); pid != 0 { // left by a start that did not finish
		if err := kill(ctx, pid, in.path(fileTPMSock)); err != nil {
			return fmt.Errorf("tpm: swtpm: %w", err)
		}
	}
	state := in.path(fileTPM)
	if err := os.MkdirAll(state, 0o700); err != nil {
		return fmt.Errorf("tpm: %w", err)
	}
	cmd := exec.CommandContext(ctx, q.cfg.SWTPM, "socket", "--tpm2", "--daemon", "--terminate",
		"--tpmstate", "dir="+optValue(state), "--ctrl", "type=unixio,path="+optValue(in.path(fileTPMSock)),
		"--pid", "file="+optValue(in.path(fileTPMPID)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tpm: swtpm: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// accelerator is the accelerator VMs run with: the configured one, or
// KVM if it works here, else TCG.
func (q *QEMU) accelerator(ctx context.Context) string {
	q.accelOnce.Do(func() {
		q.accel = q.cfg.Accel
		if q.accel == "" {
			q.accel = "tcg"
			if err := probeKVM(ctx, q.cfg.QEMUBinary); err == nil {
				q.accel = "kvm"
			} else {
				q.log.InfoContext(ctx, "vms run without kvm", "reason", err)
			}
		}
	})
	return q.accel
}

// probeKVM checks that KVM is there and that QEMU can set up a VM with
// it: on some hosts /dev/kvm opens but a VCPU cannot be set up. A guest
// that fails only once it runs gets past this; set Accel to "tcg" there.
func probeKVM(ctx context.Context, qemu string) error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	f.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-machine", "q35", "-accel", "kvm", "-cpu", "host",
		"-nodefaults", "-no-user-config", "-display", "none", "-S", "-qmp", "stdio")
	cmd.Stdin = strings.NewReader(`{"execute":"qmp_capabilities"}` + "\n" + `{"execute":"quit"}` + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("qemu with kvm: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// optValue escapes a value for a QEMU option list, where a comma
// separates options.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// vmUUID is the VM's SMBIOS UUID, from its ID, so that it stays the same
// across starts.
func vmUUID(id string) string {
	s := sha256.Sum256([]byte("citadel-vm-uuid:" + id))
	s[6] = s[6]&0x0f | 0x40 // version 4 layout, variant 1
	s[8] = s[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

// trimConsole cuts a console log longer than consoleMax to its last half,
// at a line start.
func trimConsole(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() <= consoleMax) {
		return nil
	}
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b = b[len(b)-consoleMax/2:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return os.WriteFile(path, b, 0o600)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
