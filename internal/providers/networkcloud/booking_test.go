package networkcloud

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// TestBookingsBatched: bookings of one machine that come while another
// is written are written together in the next write, each checked
// against the room the ones before it left: the machine fills up and is
// never overbooked, and only the VMs booked are told of it.
func TestBookingsBatched(t *testing.T) {
	e := newMoveEnv(t)
	m := e.machines[0]
	e.book(t, 0) // nothing on it
	room, _ := e.p.room(machine.SKUCompute)
	const cores = 10
	n, fits := room/cores+3, room/cores

	entered, gate := make(chan struct{}), make(chan struct{})
	type outcome struct {
		booked   bool
		revision int64
		err      error
	}
	var mu sync.Mutex
	told := map[string]int{}
	out := make([]outcome, n)
	vm := func(i int) string { return fmt.Sprintf("%s/providers/%s/b%d", testGroup, vmType, i) }
	run := func(i int) {
		spec := func(*resource.Resource) (agentapi.VM, error) {
			return agentapi.VM{ID: vm(i), Name: fmt.Sprint("b", i), Power: "On", Cores: cores, MemoryMiB: 1024}, nil
		}
		chosen := func(r *resource.Resource) (*resource.Resource, error) {
			if i == 0 {
				close(entered)
				<-gate // the first write waits until the others queue behind it
			}
			mu.Lock()
			told[vm(i)]++
			mu.Unlock()
			return r, nil
		}
		_, booked, revision, err := e.p.book(t.Context(), vm(i), m, 0, spec, chosen)
		out[i] = outcome{booked, revision, err}
	}
	var wg sync.WaitGroup
	wg.Go(func() { run(0) })
	queued := func() int {
		e.p.bookings.mu.Lock()
		defer e.p.bookings.mu.Unlock()
		return len(e.p.bookings.waiting[strings.ToLower(m)])
	}
	<-entered
	for i := 1; i < n; i++ {
		wg.Go(func() { run(i) })
	}
	for deadline := time.Now().Add(10 * time.Second); queued() < n-1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d bookings queued, want %d", queued(), n-1)
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()

	booked, writes := 0, map[int64]bool{}
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("booking b%d: %v", i, o.err)
		}
		if o.booked {
			booked++
			writes[o.revision] = true
			if told[vm(i)] != 1 {
				t.Errorf("b%d booked after telling it of the machine %d times, want once", i, told[vm(i)])
			}
		} else if told[vm(i)] != 0 {
			t.Errorf("b%d not booked, but told of the machine", i)
		}
	}
	if booked != fits {
		t.Errorf("%d of %d booked, want %d (room for %d cores)", booked, n, fits, room)
	}
	if len(writes) != 2 {
		t.Errorf("bookings written in %d writes, want 2 (the first alone, then the rest together)", len(writes))
	}
	r, err := e.p.lookup(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, x := range hostedVMs(r) {
		used += x.Cores
	}
	if len(hostedVMs(r)) != fits || used > room {
		t.Errorf("machine lists %d VMs of %d cores, room %d; want %d", len(hostedVMs(r)), used, room, fits)
	}
}
