package resource

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/store"
)

// Claim is one item of a pool that a resource holds alone: an IP address
// of a network, say, where the pool is the network's lower-cased ID and
// the item the address. Pools and items are opaque strings.
//
// A type's Validate appends to Write.Claims what the resource holds once
// the write commits. The claims are made in the write's own transaction,
// so two resources never hold one item: when another writer takes an
// item first the write conflicts and runs again from the start, and
// Validate, reading the pool afresh (Service.Claimed), picks another one
// or refuses. The items a resource held before and no longer claims are
// released with the write, and all of them when it is deleted.
type Claim struct {
	Pool string `json:"pool"`
	Item string `json:"item"`
}

// The store keys of claims. claims/{pool}/{item}, both path-escaped, holds
// the ID of the resource that holds the item. claims-below/{store key of a
// resource} changes whenever a resource below it gains or releases a
// claim: the resource's deletion, which releases its descendants' claims,
// is guarded by it.
//
// claims-in/{pool} changes whenever an item of a pool owned by a resource
// (ClaimIn) is claimed: the owner's deletion, when its type says
// OwnsPool, is guarded by it, and the claim by the owner's revision, so
// that an item is never claimed in a pool whose owner is going away.
const (
	claimKeys      = "claims/"
	claimsBelowKey = "claims-below/"
	claimsInKey    = "claims-in/"
)

// maxClaimRetries bounds how many times a write runs again because
// another writer took an item it claimed. Each such retry means another
// write made progress, so under contention a pool fills (and Validate
// says so) long before this.
const maxClaimRetries = 100

// errClaimTaken is the conflict of a write whose claim another writer took
// first. It is a store.ErrConflict.
var errClaimTaken = fmt.Errorf("%w: an item claimed was taken by another writer", store.ErrConflict)

func poolPrefix(pool string) string { return claimKeys + url.PathEscape(pool) + "/" }

func claimKey(c Claim) string { return poolPrefix(c.Pool) + url.PathEscape(c.Item) }

// Claimed returns the claimed items of pool, each with the ID of the
// resource that holds it (compare IDs without regard to case).
func (s *Service) Claimed(ctx context.Context, pool string) (map[string]string, error) {
	prefix := poolPrefix(pool)
	page, err := s.store.List(ctx, prefix, "", 0)
	if err != nil {
		return nil, fmt.Errorf("claims of pool %q: %w", pool, err)
	}
	out := make(map[string]string, len(page.KVs))
	for _, kv := range page.KVs {
		item, err := url.PathUnescape(strings.TrimPrefix(kv.Key, prefix))
		if err != nil {
			return nil, fmt.Errorf("claims of pool %q: key %q: %w", pool, kv.Key, err)
		}
		out[item] = string(kv.Value)
	}
	return out, nil
}

// ClaimIn claims item of the pool of resource owner (its lower-cased ID,
// PoolOf), as Validate read owner: the write commits only if owner is
// unchanged since, and owner's deletion (its type's OwnsPool) conflicts
// with the claim.
func (w *Write) ClaimIn(owner *Resource, item string) {
	pool := PoolOf(owner.ID)
	w.Claims = append(w.Claims, Claim{Pool: pool, Item: item})
	if rev, ok := etagRevision(owner.ETag); ok {
		if w.owners == nil {
			w.owners = map[string]store.Op{}
		}
		w.owners[pool] = store.Unchanged(resources.Key(storeKey(mustParseID(owner.ID))), rev)
	}
}

// PoolOf is the pool that the resource id owns (Write.ClaimIn).
func PoolOf(id string) string { return strings.ToLower(id) }

// poolGuard is the write the deletion of resource id, whose type owns its
// pool, is guarded by: claims-in/{pool} as it is now, before its
// ValidateDelete reads the pool's claims.
func (s *Service) poolGuard(ctx context.Context, id arm.ID) (store.Op, error) {
	kv, err := s.store.Get(ctx, claimsInKey+url.PathEscape(PoolOf(id.String())))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Unchanged(claimsInKey+url.PathEscape(PoolOf(id.String())), 0), nil
	case err != nil:
		return store.Op{}, err
	}
	return store.Unchanged(kv.Key, kv.Revision), nil
}

// Held lists the items of pool that the stored resource holds before this
// write: what Validate keeps (a machine keeps its address across updates)
// rather than claiming anew.
func (w *Write) Held(pool string) []string {
	var out []string
	for _, c := range w.held {
		if c.Pool == pool {
			out = append(out, c.Item)
		}
	}
	return out
}

// normalizeClaims drops repeated claims and refuses empty ones, which are
// a provider's mistake.
func normalizeClaims(cs []Claim) ([]Claim, error) {
	var out []Claim
	for _, c := range cs {
		if c.Pool == "" || c.Item == "" {
			return nil, arm.Errorf(http.StatusInternalServerError, "InternalError", "claim %+v has no pool or item", c)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// claimChange is what a write does to its resource's claims: the store
// writes, and the keys it creates, which another writer may take first.
type claimChange struct {
	ops     []store.Op
	created []string
}

// applyClaims records in rec the claims Validate made in w, and returns
// the writes that move the resource's claims from those it held to them.
func applyClaims(w *Write, rec *record) (claimChange, error) {
	old := w.held
	claims, err := normalizeClaims(w.Claims)
	if err != nil {
		return claimChange{}, err
	}
	rec.Claims = claims
	var cc claimChange
	guarded := map[string]bool{}
	for _, c := range claims {
		if !slices.Contains(old, c) {
			k := claimKey(c)
			cc.ops = append(cc.ops, store.Create(k, []byte(rec.Resource.ID)))
			cc.created = append(cc.created, k)
			if guard, ok := w.owners[c.Pool]; ok && !guarded[c.Pool] {
				guarded[c.Pool] = true
				cc.ops = append(cc.ops, guard, store.Put(claimsInKey+url.PathEscape(c.Pool), []byte(rec.Resource.ID)))
			}
		}
	}
	for _, c := range old {
		if !slices.Contains(claims, c) {
			cc.ops = append(cc.ops, store.Delete(claimKey(c)))
		}
	}
	if len(cc.ops) > 0 {
		cc.ops = append(cc.ops, touchAncestors(w.ID)...)
	}
	return cc, nil
}

// touchAncestors marks every resource above id (a child resource's
// parents) as having a descendant whose claims changed.
func touchAncestors(id arm.ID) []store.Op {
	var ops []store.Op
	owner := []byte(id.String())
	for len(id.Types) > 1 {
		id, _ = id.Parent()
		ops = append(ops, store.Put(claimsBelowKey+storeKey(id), owner))
	}
	return ops
}

// commitClaims commits ops, which make the claims of cc, and says whether
// a conflict came from an item another writer took first (errClaimTaken),
// so that retryConflicts runs the write again as often as that takes.
func (s *Service) commitClaims(ctx context.Context, cc claimChange, ops []store.Op) (int64, error) {
	rev, err := s.store.Txn(ctx, ops...)
	if !errors.Is(err, store.ErrConflict) || len(cc.created) == 0 {
		return rev, err
	}
	for _, k := range cc.created {
		if _, gerr := s.store.Get(ctx, k); gerr == nil {
			return 0, errClaimTaken
		}
	}
	return 0, err
}

// deleteOps removes every descendant of the resource id of type t (their
// IDs all start with id's) and releases the claims they hold, and own,
// the resource's own claims. t is nil for a type no longer served.
//
// A descendant that gains a claim after the read here changes id's
// claims-below key, which the delete is guarded by: the delete conflicts
// and reads again rather than leave an item held by nobody.
func (s *Service) deleteOps(ctx context.Context, t *Type, id arm.ID, own []Claim) ([]store.Op, error) {
	var ops []store.Op
	released := slices.Clone(own)
	var below []*Type
	if t != nil {
		below = s.types.descendants(t)
	}
	if len(below) > 0 {
		marker := claimsBelowKey + storeKey(id)
		kv, err := s.store.Get(ctx, marker)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ops = append(ops, store.Unchanged(marker, 0)) // no descendant has held a claim
		case err != nil:
			return nil, err
		default:
			ops = append(ops, store.Unchanged(marker, kv.Revision), store.Delete(marker))
			for _, d := range below {
				items, _, err := resources.List(ctx, s.store, typePrefix(d)+id.Key()+"/", "", 0)
				if err != nil {
					return nil, err
				}
				for _, it := range items {
					released = append(released, it.Value.Claims...)
				}
			}
		}
		for _, d := range below {
			ops = append(ops, store.DeletePrefix(resources.Key(typePrefix(d)+id.Key()+"/")))
		}
	}
	seen := map[string]bool{}
	for _, c := range released {
		if k := claimKey(c); !seen[k] {
			seen[k] = true
			ops = append(ops, store.Delete(k))
		}
	}
	if len(released) > 0 {
		ops = append(ops, touchAncestors(id)...)
	}
	return ops, nil
}

// claimBackoff waits a little before a write runs again after losing an
// item to another writer, longer the more often it lost, so that writers
// contending for the last items of a pool do not all retry at once.
func claimBackoff(lost int) {
	limit := time.Duration(min(lost, 10)) * time.Millisecond
	time.Sleep(rand.N(limit + time.Millisecond))
}
