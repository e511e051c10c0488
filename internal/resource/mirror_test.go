package resource_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/resource"
)

// TestProjectionUntil: Until returns at once what already holds, waits
// for a write that makes it hold, and ends with its context; All lists
// what the projection holds.
func TestProjectionUntil(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	ctx := t.Context()
	type slot struct {
		RackSlot int `json:"rackSlot"`
	}
	p, err := resource.MirrorProjection[slot](ctx, e.svc, ns+"/sysWidgets")
	if err != nil {
		t.Fatalf("MirrorProjection: %v", err)
	}
	id := mustID(t, sysID("rg", "s1"))
	setSlot := func(n int) {
		if _, err := e.svc.Upsert(ctx, id, func(r *resource.Resource, _ bool) error {
			r.Properties["rackSlot"] = n
			return nil
		}); err != nil {
			t.Errorf("Upsert(rackSlot %d) = %v", n, err)
		}
	}

	if _, rev, err := p.Until(ctx, id, func(_ slot, rev int64) bool { return rev == 0 }); err != nil || rev != 0 {
		t.Errorf("Until(absent) = %d, %v, want 0 at once", rev, err)
	}

	go func() {
		time.Sleep(50 * time.Millisecond)
		setSlot(1)
		setSlot(3)
	}()
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, rev, err := p.Until(wait, id, func(s slot, _ int64) bool { return s.RackSlot == 3 })
	if err != nil || got.RackSlot != 3 || rev == 0 {
		t.Fatalf("Until(rackSlot 3) = %+v at %d, %v, want slot 3 at a revision", got, rev, err)
	}

	all, _ := p.All()
	if !slices.ContainsFunc(all, func(x resource.Projected[slot]) bool {
		return strings.EqualFold(x.ID, id.String()) && x.Properties.RackSlot == 3 && x.Revision == rev
	}) {
		t.Errorf("All() = %+v, want %s with slot 3 at %d", all, id, rev)
	}

	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, _, err := p.Until(short, id, func(s slot, _ int64) bool { return s.RackSlot == 4 }); err != context.DeadlineExceeded {
		t.Errorf("Until(never) = %v, want %v", err, context.DeadlineExceeded)
	}
}
