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

// All returns the resources and the mirror's version, which changes
// whenever they do.
func (tm *TypeMirror) All() ([]*Resource, uint64) {
	items, version := tm.m.All()
	out := make([]*Resource, len(items))
	for i := range items {
		out[i] = &items[i].Value.Resource
	}
	return out, version
}

// Version changes whenever the resources do.
func (tm *TypeMirror) Version() uint64 { return tm.m.Version() }

// Get returns the resource with id, with its ETag, as the mirror has it.
func (tm *TypeMirror) Get(id arm.ID) (*Resource, bool) {
	it, ok := tm.m.Get(id.Key())
	if !ok {
		return nil, false
	}
	r := it.Value.Resource
	r.ETag = etag(it.Revision)
	return &r, true
}
