package appliance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/citadel-cloud/citadel/internal/storage"
)

// Driver keeps an appliance's volumes and serves their exports: nbd with
// sparse files and qemu-storage-daemon, sim in memory. The Server checks
// each request against the API's rules first (valid names, volumes never
// shrink, an exported volume is not deleted, room for what is created) and
// calls a driver's mutations one at a time; reads may come at any time.
type Driver interface {
	// Name is what Status reports: "nbd" or "sim".
	Name() string
	Capacity() (Capacity, error)
	// Health is storage.HealthAvailable, or storage.HealthDegraded with
	// the reason.
	Health() (health, message string)
	// Volumes lists the volumes by serial number, each with its exports
	// by name.
	Volumes() ([]storage.Volume, error)
	// Volume returns one volume, or false when there is none.
	Volume(serial string) (storage.Volume, bool, error)
	// PutVolume creates the volume at sizeMiB or grows it to that; at
	// its current size it makes sure its exports are served. An error
	// wrapping ErrInsufficient means the space is not there.
	PutVolume(ctx context.Context, serial string, sizeMiB int64) (storage.Volume, error)
	// DeleteVolume deletes a volume that has no exports; deleting what
	// is not there succeeds.
	DeleteVolume(ctx context.Context, serial string) error
	// PutExport exports an existing volume as name to whoever holds
	// spec's key. The same spec again returns the export as it is;
	// another key re-creates it, on the same port.
	PutExport(ctx context.Context, serial, name string, spec storage.ExportSpec) (storage.Export, error)
	// DeleteExport ends an export; ending what is not there succeeds.
	DeleteExport(ctx context.Context, serial, name string) error
	// Close stops serving the exports. Volumes and exports stay for the
	// next start.
	Close() error
}

// Capacity is an appliance's space as its driver sees it, in MiB.
type Capacity struct {
	CapacityMiB    int64
	UsedMiB        int64 // what the volumes' written blocks take
	ProvisionedMiB int64 // the sum of the volumes' sizes
	// FreeMiB is what a new volume, or a volume's growth, may take at
	// most: the capacity not used, or less when the disk has less.
	FreeMiB int64
}

// ErrInsufficient is a driver's refusal of a volume it has no room for.
var ErrInsufficient = errors.New("insufficient space")

const mib = 1 << 20

// PortRange is the TCP ports the exports are given, First to Last
// inclusive. It is a flag.Value: "10809-11808".
type PortRange struct{ First, Last int }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// Set parses "first-last".
func (r *PortRange) Set(s string) error {
	first, last, ok := strings.Cut(s, "-")
	a, errA := strconv.Atoi(strings.TrimSpace(first))
	b, errB := strconv.Atoi(strings.TrimSpace(last))
	if !ok || errA != nil || errB != nil {
		return fmt.Errorf("port range %q must look like 10809-11808", s)
	}
	r.First, r.Last = a, b
	return r.Validate()
}

// Validate reports a range that is empty or outside 1-65535.
func (r PortRange) Validate() error {
	if r.First < 1 || r.Last > 65535 || r.First > r.Last {
		return fmt.Errorf("port range %s must be within 1-65535, first <= last", r)
	}
	return nil
}

// catalog is what a driver keeps about its volumes and exports; the nbd
// driver persists it as state.json.
type catalog struct {
	Volumes map[string]*volumeRecord `json:"volumes"`
}

type volumeRecord struct {
	SizeMiB int64                    `json:"sizeMiB"`
	Exports map[string]*exportRecord `json:"exports,omitempty"`
}

type exportRecord struct {
	PSKIdentity string `json:"pskIdentity"`
	PSK         string `json:"psk"`
	Port        int    `json:"port"`
}

func newCatalog() catalog { return catalog{Volumes: map[string]*volumeRecord{}} }

func (c *catalog) provisionedMiB() int64 {
	var n int64
	for _, v := range c.Volumes {
		n += v.SizeMiB
	}
	return n
}

// freePort is the lowest port of r that no export has and usable accepts.
func (c *catalog) freePort(r PortRange, usable func(port int) bool) (int, error) {
	taken := map[int]bool{}
	for _, v := range c.Volumes {
		for _, e := range v.Exports {
			taken[e.Port] = true
		}
	}
	for p := r.First; p <= r.Last; p++ {
		if !taken[p] && usable(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port in %s", r)
}

// volume is v as the API shows it.
func (v *volumeRecord) volume(serial, host string, allocatedMiB int64) storage.Volume {
	out := storage.Volume{SerialNumber: serial, SizeMiB: v.SizeMiB, AllocatedMiB: allocatedMiB, Exports: []storage.Export{}}
	for _, name := range slices.Sorted(maps.Keys(v.Exports)) {
		out.Exports = append(out.Exports, v.Exports[name].export(serial, name, host))
	}
	return out
}

func (e *exportRecord) export(serial, name, host string) storage.Export {
	return storage.Export{Name: name, Host: host, Port: e.Port, ExportName: serial, PSKIdentity: e.PSKIdentity}
}

func (e *exportRecord) sameKey(spec storage.ExportSpec) bool {
	return e.PSKIdentity == spec.PSKIdentity && strings.EqualFold(e.PSK, spec.PSK)
}
