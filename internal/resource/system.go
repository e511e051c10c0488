package resource

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/store"
)

// SystemCaller is the caller the control plane itself writes as: for
// resources users cannot create (deny assignments, the racks and machines
// a cluster declares, custom locations) and for its controllers' changes.
var SystemCaller = Caller{ObjectID: "00000000-0000-0000-0000-000000000000", Name: "Citadel", Type: "System"}

// systemManagedMessage is how NetworkCloud refuses a user's PUT or DELETE
// of a resource whose life cycle the system manages (SPEC descriptions of
// racks, bareMetalMachines and storageAppliances).
const systemManagedMessage = "All customer initiated requests will be rejected as the life cycle of this resource is managed by the system."

func refuseSystemManaged(id arm.ID) error {
	return arm.Errorf(http.StatusMethodNotAllowed, "SystemManagedResource", "%s Resource: '%s'.", systemManagedMessage, id)
}

// Lookup reads one stored resource.
func (s *Service) Lookup(ctx context.Context, id arm.ID) (*Resource, error) {
	it, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	r := it.Value.Resource
	r.ETag, r.Busy = etag(it.Revision), it.Value.OperationID != ""
	return &r, nil
}

// Resources lists every stored resource of type fullName directly in
// scope (a resource group or a parent resource; a subscription for every
// group in it), in key order.
func (s *Service) Resources(ctx context.Context, scope arm.ID, fullName string) ([]*Resource, error) {
	return s.resourcesUnder(ctx, strings.ToLower(fullName)+"|"+scope.Key()+"/", func(id arm.ID) bool {
		return len(id.Types) == len(scope.Types)+1 // not a deeper descendant that shares the prefix
	})
}

// ResourcesOfType lists every stored resource of type fullName, wherever
// it is, in key order: for work that looks at everything (a policy scan).
func (s *Service) ResourcesOfType(ctx context.Context, fullName string) ([]*Resource, error) {
	return s.resourcesUnder(ctx, strings.ToLower(fullName)+"|", func(arm.ID) bool { return true })
}

func (s *Service) resourcesUnder(ctx context.Context, prefix string, keep func(arm.ID) bool) ([]*Resource, error) {
	var out []*Resource
	after := ""
	for {
		items, more, err := resources.List(ctx, s.store, prefix, after, defaultPageSize)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			id, err := arm.ParseID(it.Value.Resource.ID)
			if err != nil || !keep(id) {
				continue
			}
			r := it.Value.Resource
			r.ETag, r.Busy = etag(it.Revision), it.Value.OperationID != ""
			out = append(out, &r)
		}
		if !more || len(items) == 0 {
			return out, nil
		}
		after = items[len(items)-1].Name
	}
}

// ErrUnchanged, returned by an Upsert's change function, leaves the
// resource as it is (or uncreated) without an error.
var ErrUnchanged = errors.New("resource unchanged")

// Upsert creates or changes the resource id on the system's behalf: change
// gets the stored resource (or, when created is true, a new one with its
// id, name, type and the service's location filled in) and edits it in
// place. It retries with a fresh read when somebody else wrote the
// resource meanwhile, so change must be safe to call more than once. An
// operation in flight on the resource is kept.
func (s *Service) Upsert(ctx context.Context, id arm.ID, change func(r *Resource, created bool) error) (*Resource, error) {
	t, ok := s.types.lookup(id.Type())
	if !ok {
		return nil, arm.Errorf(http.StatusInternalServerError, "InternalError", "type %s is not registered", id.Type())
	}
	key := storeKey(id)
	for {
		it, err := resources.Get(ctx, s.store, key)
		created := errors.Is(err, store.ErrNotFound)
		if err != nil && !created {
			return nil, err
		}
		now := s.now().UTC()
		rec := it.Value
		if created {
			rec = record{
				Resource:    Resource{ID: id.String(), Name: id.Name(), Type: t.FullName(), Properties: map[string]any{}},
				CreatedTime: now,
			}
			if t.Tracked {
				rec.Resource.Location = s.location
			}
		}
		rec.Resource.Properties = maps.Clone(rec.Resource.Properties)
		if err := change(&rec.Resource, created); errors.Is(err, ErrUnchanged) {
			if created {
				return nil, nil
			}
			r := it.Value.Resource
			r.ETag = etag(it.Revision)
			return &r, nil
		} else if err != nil {
			return nil, err
		}
		var old *Resource
		if !created {
			old = &it.Value.Resource
		}
		rec.systemWrite(old, now)
		rev, err := s.store.Txn(ctx, resources.Update(key, rec, it.Revision))
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r := rec.Resource
		r.ETag = etag(rev)
		return &r, nil
	}
}

// UpsertAll changes several stored resources at once on the system's
// behalf: change gets each of ids' resources as stored (nil for one that
// does not exist: UpsertAll creates none), edits those it changes in
// place and says which it changed (by index; ErrUnchanged leaves them
// all). They are written in one transaction, which holds only if none
// of ids' resources changed, came or went since they were read;
// otherwise UpsertAll reads them again and change runs again, so it must
// be safe to call more than once. It returns the resources as stored
// after it, nil for those that do not exist. Operations in flight on them
// are kept.
func (s *Service) UpsertAll(ctx context.Context, ids []arm.ID, change func(rs []*Resource) (changed []bool, err error)) ([]*Resource, error) {
	names, keys := make([]string, len(ids)), make([]string, len(ids))
	for i, id := range ids {
		if _, ok := s.types.lookup(id.Type()); !ok {
			return nil, arm.Errorf(http.StatusInternalServerError, "InternalError", "type %s is not registered", id.Type())
		}
		names[i] = storeKey(id)
		keys[i] = resources.Key(names[i])
	}
	for {
		stored, err := s.store.GetMany(ctx, keys, 0)
		if err != nil {
			return nil, err
		}
		recs, orig := make([]record, len(ids)), make([]Resource, len(ids))
		revs := make([]int64, len(ids))
		rs := make([]*Resource, len(ids))
		for i, key := range keys {
			kv, ok := stored[key]
			if !ok {
				continue
			}
			it, err := resources.Decode(kv)
			if err != nil {
				return nil, err
			}
			recs[i], orig[i], revs[i] = it.Value, it.Value.Resource, it.Revision
			recs[i].Resource.Properties = maps.Clone(recs[i].Resource.Properties)
			rs[i] = &recs[i].Resource
		}
		changed, err := change(rs)
		if errors.Is(err, ErrUnchanged) {
			changed = nil
		} else if err != nil {
			return nil, err
		}
		now := s.now().UTC()
		ops := make([]store.Op, len(ids))
		for i, name := range names {
			if rs[i] == nil || i >= len(changed) || !changed[i] {
				ops[i] = store.Unchanged(keys[i], revs[i]) // revision 0: still absent
				continue
			}
			recs[i].systemWrite(&orig[i], now)
			ops[i] = resources.Update(name, recs[i], revs[i])
		}
		rev := int64(0)
		if slices.Contains(changed, true) {
			rev, err = s.store.Txn(ctx, ops...)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		out := make([]*Resource, len(ids))
		for i, r := range rs {
			switch {
			case r == nil:
			case rev > 0 && i < len(changed) && changed[i]:
				c := *r
				c.ETag = etag(rev)
				out[i] = &c
			default:
				c := orig[i]
				c.ETag = etag(revs[i])
				out[i] = &c
			}
		}
		return out, nil
	}
}

// systemWrite readies rec, changed on the system's behalf from old (nil:
// created), to be written at now: Succeeded unless it says otherwise,
// its systemData and changed time.
func (rec *record) systemWrite(old *Resource, now time.Time) {
	if _, ok := rec.Resource.Properties["provisioningState"]; !ok {
		rec.Resource.Properties["provisioningState"] = StateSucceeded
	}
	rec.Resource.SystemData = systemData(old, SystemCaller, now)
	rec.ChangedTime = now
}

// Remove deletes the resource id and everything below it on the system's
// behalf. Removing what is not there succeeds.
func (s *Service) Remove(ctx context.Context, id arm.ID) error {
	t, ok := s.types.lookup(id.Type())
	if !ok {
		return arm.Errorf(http.StatusInternalServerError, "InternalError", "type %s is not registered", id.Type())
	}
	return s.remove(ctx, t, id)
}

// remove deletes the resource id of type t and everything below it, and
// releases their claims, with extra in the same transaction. It reads
// again and retries when somebody changes them meanwhile.
func (s *Service) remove(ctx context.Context, t *Type, id arm.ID, extra ...store.Op) error {
	key := storeKey(id)
	for attempt := 0; ; attempt++ {
		it, err := resources.Get(ctx, s.store, key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		ops, err := s.deleteOps(ctx, t, id, it.Value.Claims)
		if err != nil {
			return err
		}
		ops = append(ops, resources.DeleteAt(key, it.Revision)) // revision 0: still absent
		if _, err = s.store.Txn(ctx, append(ops, extra...)...); !errors.Is(err, store.ErrConflict) || attempt == 9 {
			return err
		}
	}
}
