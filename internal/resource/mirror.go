package resource

import (
	"context"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/store"
)

// TypeMirror keeps every resource of one type in memory, current through a
// watch: for types that every request consults (role assignments, locks).
type TypeMirror struct {
	m *store.Mirror[record]
}

// MirrorType starts mirroring the resources of type fullName until ctx
// ends and waits for the first load.
func (s *Service) MirrorType(ctx context.Context, fullName string) (*TypeMirror, error) {
	c := store.NewCollection[record](resources.Key(strings.ToLower(fullName) + "|"))
	m := store.NewMirror(ctx, s.store, c)
	if err := m.Wait(ctx); err != nil {
		return nil, err
	}
	return &TypeMirror{m: m}, nil
}

// All returns the resources, with their ETags, and the mirror's version,
// which changes whenever they do.
func (tm *TypeMirror) All() ([]*Resource, uint64) {
	items, version := tm.m.All()
	out := make([]*Resource, len(items))
	for i := range items {
		r := items[i].Value.Resource
		r.ETag = etag(items[i].Revision)
		out[i] = &r
	}
	return out, version
}

// Version changes whenever the resources do.
func (tm *TypeMirror) Version() uint64 { return tm.m.Version() }

// Projection keeps, for every resource of one type, only the properties
// that decode into P (a struct of the few a reader needs), current
// through a watch: a fraction of TypeMirror's memory for large fleets.
type Projection[P any] struct {
	m *store.Mirror[projected[P]]
}

// projected is the part of a stored record a Projection decodes.
type projected[P any] struct {
	Resource struct {
		ID         string `json:"id"`
		Properties P      `json:"properties"`
	} `json:"resource"`
}

// MirrorProjection starts a Projection of the resources of type fullName
// until ctx ends and waits for the first load.
func MirrorProjection[P any](ctx context.Context, s *Service, fullName string) (*Projection[P], error) {
	c := store.NewCollection[projected[P]](resources.Key(strings.ToLower(fullName) + "|"))
	m := store.NewMirror(ctx, s.store, c)
	if err := m.Wait(ctx); err != nil {
		return nil, err
	}
	return &Projection[P]{m: m}, nil
}

// Get returns the projected properties of the resource with id and the
// store revision it was last written at (its ETag's).
func (p *Projection[P]) Get(id arm.ID) (props P, revision int64, ok bool) {
	it, ok := p.m.Get(id.Key())
	if !ok {
		return props, 0, false
	}
	return it.Value.Resource.Properties, it.Revision, true
}

// Until waits until ok holds of the projected properties of the resource
// with id and the revision they were written at (zero values while there
// is no such resource), and returns them. It waits for the projection to
// change rather than polling, so a caller that waits for an agent's
// report (a VM running, a machine's desired state moving on) learns of it
// as soon as the watch delivers it and costs nothing meanwhile. It
// returns ctx's error when ctx ends first.
func (p *Projection[P]) Until(ctx context.Context, id arm.ID, ok func(props P, revision int64) bool) (P, int64, error) {
	key := id.Key()
	for {
		changed := p.m.Changed(key) // before the read, so that no change goes unseen
		it, _ := p.m.Get(key)
		if props := it.Value.Resource.Properties; ok(props, it.Revision) {
			return props, it.Revision, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			var zero P
			return zero, 0, ctx.Err()
		}
	}
}

// Version changes whenever the projected resources do (see All).
func (p *Projection[P]) Version() uint64 { return p.m.Version() }

// Projected is one resource of a Projection: its ID, projected
// properties and the revision they were written at.
type Projected[P any] struct {
	ID         string
	Properties P
	Revision   int64
}

// All returns every projected resource, in no particular order, and the
// projection's version, which changes whenever they do: a scheduler reads
// a fleet's machines from it rather than from the store.
func (p *Projection[P]) All() ([]Projected[P], uint64) {
	items, version := p.m.All()
	out := make([]Projected[P], len(items))
	for i, it := range items {
		out[i] = Projected[P]{ID: it.Value.Resource.ID, Properties: it.Value.Resource.Properties, Revision: it.Revision}
	}
	return out, version
}
