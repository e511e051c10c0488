// Package vm runs a machine's virtual machines for its agent. The agent
// hands Reconcile the VMs its desired state lists; the driver starts,
// stops, restarts and reimages them until what runs matches, removes the
// ones no longer listed, and reports each one's power state for the
// heartbeat.
//
// QEMU is the real driver: one qemu-system-x86_64 process per running
// VM, which outlives the agent. Sim keeps the same contract in memory,
// for the fleet simulator and tests.
//
// The agent and the simulator import it. It talks to the host only
// (processes, files, netlink), never to the control plane.
package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// Driver runs VMs.
type Driver interface {
	// Reconcile makes the running VMs match want: it starts what should
	// be On, stops what should be Off or is no longer wanted (removing
	// its files), restarts or reimages a VM whose count rose, and returns
	// the status of each wanted VM, in want's order. It is level-based
	// and idempotent: the agent calls it on every desired state and at
	// every heartbeat. A VM's own failure is in its status; the error is
	// for the rest (want itself, or a VM it could not remove).
	Reconcile(ctx context.Context, want []agentapi.VM) ([]agentapi.VMStatus, error)
	// Console is the VM's serial console log so far (consoles/default).
	Console(id string) ([]byte, error)
}

// The power states of agentapi.VM and agentapi.VMStatus.
const (
	On  = "On"
	Off = "Off"
)

// ErrNotFound is Console's error for a VM the driver does not have.
var ErrNotFound = errors.New("no such VM")

// key names a VM in the driver's files and in what the guest sees (its
// directory, cloud-init's instance-id, its taps): the first 8 bytes of
// the SHA-256 of its ID, in hex. An ARM ID is too long and holds slashes.
func key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8])
}

// isKey reports whether name is a key, so that the driver removes only
// directories it made.
func isKey(name string) bool {
	if len(name) != 16 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// checkWant rejects a want that names a VM twice: it would have two
// statuses.
func checkWant(want []agentapi.VM) error {
	seen := make(map[string]bool, len(want))
	for _, v := range want {
		if v.ID == "" {
			return errors.New("a VM has no ID")
		}
		if seen[v.ID] {
			return fmt.Errorf("vm %q is listed twice", v.ID)
		}
		seen[v.ID] = true
	}
	return nil
}

// check reports what makes v unrunnable by any driver.
func check(v agentapi.VM) error {
	switch {
	case v.Power != On && v.Power != Off:
		return fmt.Errorf("power %q: want %s or %s", v.Power, On, Off)
	case v.Cores < 1:
		return fmt.Errorf("cores %d: want at least 1", v.Cores)
	case v.MemoryMiB < 1:
		return fmt.Errorf("memoryMiB %d: want at least 1", v.MemoryMiB)
	}
	return nil
}

// nbdPort is the NBD port an export's URI may leave out.
const nbdPort = 10809

// nbdExport is where a disk's volume is: an export of an NBD server over
// TCP.
type nbdExport struct {
	Host string
	Port int
	Name string
}

// parseNBD reads an export's URI, nbd://host[:port]/name, as QEMU does.
// Only TCP is taken: the appliances are on the storage network.
func parseNBD(uri string) (nbdExport, error) {
	const want = "want nbd://host:port/export"
	u, err := url.Parse(uri)
	switch {
	case uri == "":
		return nbdExport{}, fmt.Errorf("no uri: %s", want)
	case err != nil:
		return nbdExport{}, fmt.Errorf("uri %q: %s", uri, want)
	case u.Scheme != "nbd" && u.Scheme != "nbd+tcp", u.Opaque != "", u.User != nil, u.RawQuery != "", u.Fragment != "", u.Hostname() == "":
		return nbdExport{}, fmt.Errorf("uri %q: %s", uri, want)
	}
	e := nbdExport{Host: u.Hostname(), Port: nbdPort, Name: strings.TrimPrefix(u.Path, "/")}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nbdExport{}, fmt.Errorf("uri %q: port %q: %s", uri, p, want)
		}
		e.Port = n
	}
	return e, nil
}

// checkDisks reports what keeps a VM's disks from being attached, the
// same for every driver: an export it cannot reach by its URI, a disk
// without the serial the guest finds it by, credentials that cannot be
// written to QEMU's keys.psk (identity:hexkey lines), or more than one
// OS disk.
func checkDisks(disks []agentapi.VMDisk) error {
	boot := -1 // the OS disk's index
	for i, d := range disks {
		_, err := parseNBD(d.URI)
		switch {
		case err != nil:
		case !printable(d.Serial, maxSerial):
			err = fmt.Errorf("serial %q: want 1 to %d printable ASCII characters", d.Serial, maxSerial)
		case !printable(d.PSKIdentity, 255) || strings.ContainsAny(d.PSKIdentity, ": "):
			err = fmt.Errorf("psk identity %q: want 1 to 255 printable ASCII characters but ':' and space", d.PSKIdentity)
		case d.PSK == "" || !isHex(d.PSK):
			err = errors.New("psk: want the key in hex")
		case d.OS && boot >= 0:
			err = fmt.Errorf("a second OS disk, after %s: a VM boots from one", diskName(boot, disks[boot]))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", diskName(i, d), err)
		}
		if d.OS {
			boot = i
		}
	}
	return nil
}

// maxSerial is the longest serial a disk may have: a UUID, which the
// control plane's serials are. A virtio disk shows the guest only its
// first virtioSerial bytes.
const maxSerial = 36

// diskName names a VM's ith disk in errors.
func diskName(i int, d agentapi.VMDisk) string {
	return fmt.Sprintf("disk %d (volume %s)", i, d.Volume)
}

// printable reports whether s is 1 to n bytes of printable ASCII,
// which needs no quoting in keys.psk or for QEMU (but for commas, which
// optValue escapes).
func printable(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
