// Package ledger records the thin-provisioned capacity of Citadel's
// storage appliances in etcd: per appliance, the size of every volume
// placed on it, so that however many volumes are created at once, what an
// appliance promises never exceeds its limit (each reservation is a
// compare-and-swap of the appliance's entry).
package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/citadel-cloud/citadel/internal/store"
)

// Ledger is the record of every appliance's volumes.
type Ledger struct {
	store *store.Store
}

// pool is one appliance's entry: volume serial number → MiB.
type pool struct {
	Volumes map[string]int64 `json:"volumes"`
}

var pools = store.NewCollection[pool]("storage/pools/")

// New keeps the ledger in st.
func New(st *store.Store) *Ledger { return &Ledger{store: st} }

// ErrOvercommitted is returned by Reserve when the volume does not fit.
var ErrOvercommitted = errors.New("the storage appliance's thin-provisioning limit would be exceeded")

// Reserve records the volume serial at sizeMiB on appliance, replacing
// what it had (a grow), unless the appliance's volumes would then add up
// to more than limitMiB. Reserving the same size again changes nothing.
func (l *Ledger) Reserve(ctx context.Context, appliance, serial string, sizeMiB, limitMiB int64) error {
	return l.update(ctx, appliance, func(p *pool) error {
		if p.Volumes[serial] == sizeMiB {
			return errUnchanged
		}
		total := sizeMiB
		for s, mib := range p.Volumes {
			if s != serial {
				total += mib
			}
		}
		if total > limitMiB {
			return fmt.Errorf("%w: %d MiB would be provisioned of %d MiB allowed", ErrOvercommitted, total, limitMiB)
		}
		p.Volumes[serial] = sizeMiB
		return nil
	})
}

// Release forgets the volume serial on appliance.
func (l *Ledger) Release(ctx context.Context, appliance, serial string) error {
	return l.update(ctx, appliance, func(p *pool) error {
		if _, ok := p.Volumes[serial]; !ok {
			return errUnchanged
		}
		delete(p.Volumes, serial)
		return nil
	})
}

// Volumes is what the ledger holds for appliance: serial number → MiB.
func (l *Ledger) Volumes(ctx context.Context, appliance string) (map[string]int64, error) {
	it, err := pools.Get(ctx, l.store, key(appliance))
	if errors.Is(err, store.ErrNotFound) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	return it.Value.Volumes, nil
}

// Provisioned is the sum of the sizes of appliance's volumes.
func (l *Ledger) Provisioned(ctx context.Context, appliance string) (int64, error) {
	vs, err := l.Volumes(ctx, appliance)
	var total int64
	for _, mib := range vs {
		total += mib
	}
	return total, err
}

var errUnchanged = errors.New("unchanged")

func (l *Ledger) update(ctx context.Context, appliance string, change func(p *pool) error) error {
	k := key(appliance)
	for {
		it, err := pools.Get(ctx, l.store, k)
		absent := errors.Is(err, store.ErrNotFound)
		if err != nil && !absent {
			return err
		}
		p := pool{Volumes: maps.Clone(it.Value.Volumes)}
		if p.Volumes == nil {
			p.Volumes = map[string]int64{}
		}
		if err := change(&p); errors.Is(err, errUnchanged) {
			return nil
		} else if err != nil {
			return err
		}
		op := pools.Update(k, p, it.Revision)
		if absent {
			op = pools.Create(k, p)
		}
		if _, err := l.store.Txn(ctx, op); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

// key is the appliance's resource ID, which is case-insensitive.
func key(appliance string) string { return strings.ToLower(appliance) }
