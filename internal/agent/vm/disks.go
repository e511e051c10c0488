package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// A VM's volumes on the SAN (agentapi.VMDisk) are NBD exports of the
// storage appliance, each with TLS and a pre-shared key of its own.
// QEMU reaches each with its NBD block driver and a tls-creds-psk
// object whose directory holds the disk's keys.psk; the guest sees a
// virtio disk with the volume's serial. qemu-img reaches an OS disk
// the same way to check that it is blank and to write the VM's image to
// it.

const (
	// blankBytes is how much of an OS disk must read as zeros for it to
	// count as blank, a new volume: a boot sector and a partition table.
	blankBytes = 1 << 20
	// virtioSerial is the most of a serial a virtio disk shows its
	// guest (VIRTIO_BLK_ID_BYTES): /sys/block/vdX/serial, and the name
	// /dev/disk/by-id/virtio-<serial> udev gives it.
	virtioSerial = 20
	// reconnectDelay is how long, in seconds, a VM's I/O on a disk
	// waits for QEMU to reconnect to its export after the connection
	// drops, before it fails: the appliance restarts an export's daemon
	// when its volume grows, and a restarted appliance serves its
	// exports again on the same ports.
	reconnectDelay = 30
)

// disk is one of a VM's disks as QEMU and qemu-img reach it.
type disk struct {
	agentapi.VMDisk
	index  int
	export nbdExport
	keys   string // the directory of its keys.psk
}

// name names the disk in errors.
func (d disk) name() string { return diskName(d.index, d.VMDisk) }

// disks checks the VM's disks and writes their keys, each into a
// directory of its own: each export has its own key, which one keys.psk
// could hold only for distinct identities. It removes the keys of disks
// no longer listed.
func (in instance) disks(want []agentapi.VMDisk) ([]disk, error) {
	if err := checkDisks(want); err != nil {
		return nil, err
	}
	root := in.path(fileKeys)
	if len(want) == 0 {
		if err := os.RemoveAll(root); err != nil {
			return nil, fmt.Errorf("disk keys: %w", err)
		}
		return nil, nil
	}
	out := make([]disk, len(want))
	for i, d := range want {
		e, _ := parseNBD(d.URI) // checkDisks parsed it
		out[i] = disk{VMDisk: d, index: i, export: e, keys: filepath.Join(root, strconv.Itoa(i))}
		if err := os.MkdirAll(out[i].keys, 0o700); err != nil {
			return nil, fmt.Errorf("%s: keys: %w", out[i].name(), err)
		}
		psk := filepath.Join(out[i].keys, "keys.psk")
		if err := os.WriteFile(psk, []byte(d.PSKIdentity+":"+d.PSK+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("%s: keys: %w", out[i].name(), err)
		}
		if err := os.Chmod(psk, 0o600); err != nil { // WriteFile keeps the mode of a file that exists
			return nil, fmt.Errorf("%s: keys: %w", out[i].name(), err)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("disk keys: %w", err)
	}
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err != nil || n >= len(want) {
			if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				return nil, fmt.Errorf("disk keys: %w", err)
			}
		}
	}
	return out, nil
}

// osDisk is the VM's OS disk, if it has one.
func osDisk(disks []disk) (disk, bool) {
	for _, d := range disks {
		if d.OS {
			return d, true
		}
	}
	return disk{}, false
}

// tlsObject is the -object (or --object) that authenticates QEMU to the
// disk's export as id.
func (d disk) tlsObject(id string) string {
	return "tls-creds-psk,id=" + id + ",endpoint=client,dir=" + optValue(d.keys) + ",username=" + optValue(d.PSKIdentity)
}

// nbdOptions are the options of QEMU's NBD block driver that reach the
// disk's export with the TLS object tls, each with prefix: "file." for
// the protocol under a raw format node.
func (d disk) nbdOptions(prefix, tls string) string {
	opts := []string{
		"driver=nbd",
		"server.type=inet",
		"server.host=" + optValue(d.export.Host),
		"server.port=" + strconv.Itoa(d.export.Port),
		"export=" + optValue(d.export.Name),
		"tls-creds=" + tls,
	}
	return prefix + strings.Join(opts, ","+prefix)
}

// driveID is the QEMU drive id of a VM's ith disk.
func driveID(i int) string { return "vol" + strconv.Itoa(i) }

// args are QEMU's arguments that attach the disk: its TLS object, its
// drive and a virtio disk with its serial, the first to boot if boot.
// Writes are discarded to the export (the appliance's volumes are thin)
// and a dropped connection is retried for reconnectDelay.
func (d disk) args(boot bool) []string {
	id := driveID(d.index)
	tls := id + "-tls"
	dev := "virtio-blk-pci,drive=" + id + ",serial=" + optValue(guestSerial(d.Serial))
	if boot {
		dev += ",bootindex=1"
	}
	return []string{
		"-object", d.tlsObject(tls),
		"-drive", "if=none,id=" + id + ",format=raw,discard=unmap," + d.nbdOptions("file.", tls) +
			",file.reconnect-delay=" + strconv.Itoa(reconnectDelay),
		"-device", dev,
	}
}

// guestSerial is what of serial a virtio disk can show its guest.
func guestSerial(serial string) string {
	if len(serial) > virtioSerial {
		return serial[:virtioSerial]
	}
	return serial
}

// provisionOS writes the VM's image to its OS disk, if it has one, when
// the disk is blank (a new volume) or when the last write to it did not
// finish (rec.Imaging).
func (q *QEMU) provisionOS(ctx context.Context, v agentapi.VM, in instance, rec *record) error {
	disks, err := in.disks(v.Disks)
	if err != nil {
		return err
	}
	d, ok := osDisk(disks)
	if !ok {
		return nil
	}
	if rec.Imaging != d.Serial {
		blank, err := q.blank(ctx, in, d)
		if err != nil || !blank {
			return err
		}
	}
	image, err := q.image(v.Image)
	if err != nil {
		return err
	}
	return q.imageOS(ctx, v, in, d, image, rec)
}

// imageOS writes image to the VM's OS disk d. rec.Imaging, saved before
// the write starts, says that it is under way, so that a write cut short
// (by a crash of the agent, say) is done again rather than booted: its
// first MiB, written first, would no longer be blank.
func (q *QEMU) imageOS(ctx context.Context, v agentapi.VM, in instance, d disk, image string, rec *record) error {
	rec.Imaging = d.Serial
	if err := in.save(*rec); err != nil {
		return fmt.Errorf("%s: write the image: %w", d.name(), err)
	}
	t0 := time.Now()
	if err := q.writeImage(ctx, d, image); err != nil {
		return err
	}
	rec.Imaging = ""
	q.log.InfoContext(ctx, "vm os disk imaged", "vm", v.ID, "key", in.key, "volume", d.Volume, "image", v.Image.Name, "took", time.Since(t0))
	return nil
}

// blank reports whether the disk's first blankBytes are all zero, as a
// new volume's are: qemu-img copies them over NBD to a file, read here.
func (q *QEMU) blank(ctx context.Context, in instance, d disk) (bool, error) {
	head := in.path(fileHead)
	defer os.Remove(head)
	src := "driver=raw,size=" + strconv.Itoa(blankBytes) + "," + d.nbdOptions("file.", "tls0")
	cmd := exec.CommandContext(ctx, q.cfg.QEMUImg, "convert", "-O", "raw",
		"--object", d.tlsObject("tls0"), "--image-opts", src, head)
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("%s at %s: read its first MiB: %s", d.name(), d.URI, qemuMessage(out, err, src))
	}
	b, err := os.ReadFile(head)
	if err != nil {
		return false, fmt.Errorf("%s: read its first MiB: %w", d.name(), err)
	}
	return len(b) == blankBytes && len(bytes.TrimLeft(b, "\x00")) == 0, nil
}

// writeImage writes image to the disk, from its start, and flushes it
// to the appliance's disk: -t writeback, as convert's default
// (cache=unsafe) skips the flush at its end. An image larger than the
// volume fails ("output file is smaller than input file").
func (q *QEMU) writeImage(ctx context.Context, d disk, image string) error {
	format, err := imageFormat(image)
	if err != nil {
		return fmt.Errorf("%s: write the image: %w", d.name(), err)
	}
	dst := "driver=raw," + d.nbdOptions("file.", "tls0")
	cmd := exec.CommandContext(ctx, q.cfg.QEMUImg, "convert", "-n", "-t", "writeback", "-f", format,
		"--object", d.tlsObject("tls0"), image, "--target-image-opts", dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s at %s: write the image: %s", d.name(), d.URI, qemuMessage(out, err, dst))
	}
	return nil
}

// qemuMessage is what a QEMU tool that failed with err said, without its
// quote of the options opts it could not open, which are long and say
// nothing the caller does not: "qemu-img: Could not open '<opts>': TLS
// handshake failed" is "TLS handshake failed".
func qemuMessage(out []byte, err error, opts string) string {
	msg := string(bytes.TrimSpace(out))
	for _, quote := range []string{"'" + opts + "': ", opts + ": "} {
		if _, after, ok := strings.Cut(msg, quote); ok {
			msg, _, _ = strings.Cut(after, "\n")
			return msg
		}
	}
	if msg == "" {
		return err.Error()
	}
	return msg
}

// diskError is the error of a start that failed on one of the VM's
// disks, naming it, or nil: QEMU quotes the whole -drive option of the
// disk it could not open.
func diskError(out []byte, args []string, disks []agentapi.VMDisk) error {
	for j := 1; j < len(args); j++ {
		if args[j-1] != "-drive" {
			continue
		}
		for i, d := range disks {
			if !strings.HasPrefix(args[j], "if=none,id="+driveID(i)+",") || !bytes.Contains(out, []byte(args[j]+": ")) {
				continue
			}
			return fmt.Errorf("%s at %s: %s", diskName(i, d), d.URI, qemuMessage(out, errors.New("qemu failed"), args[j]))
		}
	}
	return nil
}

// removeOverlay removes the ephemeral disk of a VM that boots from its
// OS disk, left from before it had one.
func (in instance) removeOverlay() error {
	if err := os.Remove(in.path(fileDisk)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disk: %w", err)
	}
	return nil
}
