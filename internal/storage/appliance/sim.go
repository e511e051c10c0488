package appliance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/citadel-cloud/citadel/internal/storage"
)

// SimConfig is a simulated appliance's shape.
type SimConfig struct {
	CapacityMiB int64
	// UsedFraction is the part of each volume's size counted as written
	// (0 to 1).
	UsedFraction float64
	// Host and Ports are what exports report; nothing listens there.
	Host  string
	Ports PortRange
}

// Sim is the driver of the fleet simulator: the nbd driver's semantics in
// memory, without files or processes. It is safe for concurrent use.
type Sim struct {
	cfg SimConfig

	mu       sync.Mutex
	cat      catalog
	degraded string // the reason the appliance is degraded; "" when available
}

// NewSim returns an empty simulated appliance.
func NewSim(cfg SimConfig) *Sim { return &Sim{cfg: cfg, cat: newCatalog()} }

// SetDegraded makes the appliance report itself Degraded with message,
// as fault injection does; an empty message makes it Available again.
func (s *Sim) SetDegraded(message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.degraded = message
}

// Name is "sim".
func (s *Sim) Name() string { return "sim" }

// Health is Degraded with SetDegraded's message, or Available.
func (s *Sim) Health() (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.degraded != "" {
		return storage.HealthDegraded, s.degraded
	}
	return storage.HealthAvailable, ""
}

// Capacity counts UsedFraction of each volume as used.
func (s *Sim) Capacity() (Capacity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Capacity{CapacityMiB: s.cfg.CapacityMiB, ProvisionedMiB: s.cat.provisionedMiB()}
	for _, v := range s.cat.Volumes {
		c.UsedMiB += s.allocatedMiB(v)
	}
	c.FreeMiB = max(c.CapacityMiB-c.UsedMiB, 0)
	return c, nil
}

func (s *Sim) allocatedMiB(v *volumeRecord) int64 {
	return int64(s.cfg.UsedFraction * float64(v.SizeMiB))
}

// Volumes lists the volumes.
func (s *Sim) Volumes() ([]storage.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []storage.Volume{}
	for _, serial := range slices.Sorted(maps.Keys(s.cat.Volumes)) {
		v := s.cat.Volumes[serial]
		out = append(out, v.volume(serial, s.cfg.Host, s.allocatedMiB(v)))
	}
	return out, nil
}

// Volume returns one volume.
func (s *Sim) Volume(serial string) (storage.Volume, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.cat.Volumes[serial]
	if !ok {
		return storage.Volume{}, false, nil
	}
	return v.volume(serial, s.cfg.Host, s.allocatedMiB(v)), true, nil
}

// PutVolume creates or grows the volume.
func (s *Sim) PutVolume(_ context.Context, serial string, sizeMiB int64) (storage.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.cat.Volumes[serial]
	if !ok {
		v = &volumeRecord{}
		s.cat.Volumes[serial] = v
	}
	v.SizeMiB = sizeMiB
	return v.volume(serial, s.cfg.Host, s.allocatedMiB(v)), nil
}

// DeleteVolume forgets the volume.
func (s *Sim) DeleteVolume(_ context.Context, serial string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cat.Volumes, serial)
	return nil
}

// PutExport records the export with a port of the range.
func (s *Sim) PutExport(_ context.Context, serial, name string, spec storage.ExportSpec) (storage.Export, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.cat.Volumes[serial]
	if !ok {
		return storage.Export{}, fmt.Errorf("volume %q: not found", serial)
	}
	e, ok := v.Exports[name]
	if ok && e.sameKey(spec) {
		return e.export(serial, name, s.cfg.Host), nil
	}
	port := 0
	if ok {
		port = e.Port
	} else {
		p, err := s.cat.freePort(s.cfg.Ports, func(int) bool { return true })
		if err != nil {
			return storage.Export{}, fmt.Errorf("volume %q: export %q: %w", serial, name, err)
		}
		port = p
	}
	if v.Exports == nil {
		v.Exports = map[string]*exportRecord{}
	}
	e = &exportRecord{PSKIdentity: spec.PSKIdentity, PSK: spec.PSK, Port: port}
	v.Exports[name] = e
	return e.export(serial, name, s.cfg.Host), nil
}

// DeleteExport forgets the export.
func (s *Sim) DeleteExport(_ context.Context, serial, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.cat.Volumes[serial]; ok {
		delete(v.Exports, name)
	}
	return nil
}

// Close does nothing: nothing is served.
func (s *Sim) Close() error { return nil }
