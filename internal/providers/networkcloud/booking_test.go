package networkcloud

import (
	"errors"
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
// never overbooked, and exactly the VMs booked name it as their host.
func TestBookingsBatched(t *testing.T) {
	e := newMoveEnv(t)
	m := e.machines[0]
	e.book(t, 0) // nothing on it
	room, _ := e.p.room(machine.SKUCompute)
	const cores = 10
	n, fits := room/cores+3, room/cores
	vm := func(i int) string { return fmt.Sprintf("%s/providers/%s/b%d", testGroup, vmType, i) }
	for i := range n {
		e.upsert(t, vm(i), map[string]any{"clusterId": clusterID})
	}

	entered, gate := make(chan struct{}), make(chan struct{})
	type outcome struct {
		booked   bool
		revision int64
		err      error
	}
	out := make([]outcome, n)
	run := func(i int) {
		spec := func(*resource.Resource) (agentapi.VM, error) {
			if i == 0 {
				close(entered)
				<-gate // the first write waits until the others queue behind it
			}
			return agentapi.VM{ID: vm(i), Name: fmt.Sprint("b", i), Power: "On", Cores: cores, MemoryMiB: 1024}, nil
		}
		message := func(m *resource.Resource) string { return "on " + m.Name }
		b := e.p.book(t.Context(), vm(i), m, 0, spec, message)
		out[i] = outcome{b.booked, b.revision, b.err}
	}
	var wg sync.WaitGroup
	wg.Go(func() { run(0) })
	<-entered
	for i := 1; i < n; i++ {
		wg.Go(func() { run(i) })
	}
	queued := func() int {
		e.p.bookings.mu.Lock()
		defer e.p.bookings.mu.Unlock()
		return len(e.p.bookings.waiting[strings.ToLower(m)])
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
		r, err := e.p.lookup(t.Context(), vm(i))
		if err != nil {
			t.Fatal(err)
		}
		host, message := str(r.Properties, "bareMetalMachineId"), str(r.Properties, "detailedStatusMessage")
		if o.booked {
			booked++
			writes[o.revision] = true
			if host != m || message != "on m1" {
				t.Errorf("b%d booked; its host %q (%q), want %s", i, host, message, m)
			}
		} else if host != "" {
			t.Errorf("b%d not booked, but names host %q", i, host)
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

// TestBookingOfVMGone: a VM deleted, or being deleted, is not booked,
// and an entry it left on the machine (booked before a crash) goes.
func TestBookingOfVMGone(t *testing.T) {
	e := newMoveEnv(t)
	m := e.machines[0]
	ghost := testGroup + "/providers/" + vmType + "/ghost"
	deleting := testGroup + "/providers/" + vmType + "/deleting"
	e.upsert(t, deleting, map[string]any{"clusterId": clusterID, "provisioningState": resource.StateDeleting})
	e.book(t, 0, agentapi.VM{ID: ghost, Name: "ghost", Cores: 2, MemoryMiB: 1024})
	message := func(*resource.Resource) string { return "" }
	for _, vm := range []string{ghost, deleting} {
		spec := func(*resource.Resource) (agentapi.VM, error) {
			return agentapi.VM{ID: vm, Cores: 2, MemoryMiB: 1024}, nil
		}
		if b := e.p.book(t.Context(), vm, m, 0, spec, message); b.booked || !errors.Is(b.err, errVMGone) {
			t.Errorf("booking %s: booked %v, %v; want errVMGone", vm, b.booked, b.err)
		}
	}
	r, err := e.p.lookup(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if list := hostedVMs(r); len(list) != 0 {
		t.Errorf("machine lists %v, want nothing", list)
	}
}
