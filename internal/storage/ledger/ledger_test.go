package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

func TestLedger(t *testing.T) {
	ctx := context.Background()
	l := New(storetest.Start(t))
	const sa = "/subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/storageAppliances/SA1"
	steps := []struct {
		name    string
		do      func() error
		wantErr error
		want    int64 // provisioned after
	}{
		{"first", func() error { return l.Reserve(ctx, sa, "v1", 600, 1000) }, nil, 600},
		{"again, same size", func() error { return l.Reserve(ctx, sa, "v1", 600, 1000) }, nil, 600},
		{"does not fit", func() error { return l.Reserve(ctx, sa, "v2", 401, 1000) }, ErrOvercommitted, 600},
		{"fits exactly", func() error { return l.Reserve(ctx, sa, "v2", 400, 1000) }, nil, 1000},
		{"grow beyond", func() error { return l.Reserve(ctx, sa, "v1", 601, 1000) }, ErrOvercommitted, 1000},
		{"release", func() error { return l.Release(ctx, sa, "v2") }, nil, 600},
		{"release again", func() error { return l.Release(ctx, sa, "v2") }, nil, 600},
		{"grow", func() error { return l.Reserve(ctx, sa, "v1", 900, 1000) }, nil, 900},
		{"case-insensitive appliance", func() error {
			return l.Reserve(ctx, "/SUBSCRIPTIONS/s/resourcegroups/g/providers/microsoft.networkcloud/storageappliances/sa1", "v3", 101, 1000)
		}, ErrOvercommitted, 900},
	}
	for _, s := range steps {
		err := s.do()
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
		got, err := l.Provisioned(ctx, sa)
		if err != nil || got != s.want {
			t.Fatalf("%s: Provisioned = %d, %v, want %d", s.name, got, err, s.want)
		}
	}
}

// TestLedgerConcurrent is a property test: however many reservations race
// for one appliance, what the ledger holds never exceeds the limit and is
// exactly the reservations that succeeded.
func TestLedgerConcurrent(t *testing.T) {
	ctx := context.Background()
	l := New(storetest.Start(t))
	for round := range 3 {
		sa := fmt.Sprintf("sa%d", round)
		r := rand.New(rand.NewPCG(uint64(round), 7))
		limit := int64(1000 + r.IntN(4000))
		sizes := make([]int64, 40)
		for i := range sizes {
			sizes[i] = int64(1 + r.IntN(400))
		}
		var mu sync.Mutex
		var won int64
		var wg sync.WaitGroup
		for i, size := range sizes {
			wg.Go(func() {
				err := l.Reserve(ctx, sa, fmt.Sprintf("v%d", i), size, limit)
				switch {
				case err == nil:
					mu.Lock()
					won += size
					mu.Unlock()
				case !errors.Is(err, ErrOvercommitted):
					t.Errorf("Reserve: %v", err)
				}
			})
		}
		wg.Wait()
		got, err := l.Provisioned(ctx, sa)
		if err != nil {
			t.Fatal(err)
		}
		if got != won || got > limit {
			t.Errorf("round %d: provisioned %d MiB, reservations that succeeded %d MiB, limit %d MiB", round, got, won, limit)
		}
		// Whatever was refused did not fit when it was refused; at the
		// end, the smallest refused one must not fit either, or a refusal
		// was spurious.
		vs, _ := l.Volumes(ctx, sa)
		for i, size := range sizes {
			if _, ok := vs[fmt.Sprintf("v%d", i)]; !ok && got+size <= limit {
				t.Errorf("round %d: v%d (%d MiB) was refused but fits: %d of %d MiB provisioned", round, i, size, got, limit)
			}
		}
	}
}
