package liveness

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrent heartbeats from many goroutines while Tick runs, BMCs
// report, and other machines are registered and forgotten, with racks and
// single machines falling silent in turn. Run it with -race. Each
// transition is one compare-and-swap, so it must be reported exactly once:
// for every machine, the transitions into and out of each state add up to
// where it ended (Ready) less where it began (Unknown).
func TestConcurrent(t *testing.T) {
	const racks, perRack, beaters, ticks = 20, 16, 8, 600
	tr := New(Config{})
	var names []string
	rackOf := map[string]int{}
	for r := range racks {
		for i := range perRack {
			name := fmt.Sprintf("m-%02d-%02d", r, i)
			tr.Register(name, fmt.Sprintf("r%02d", r))
			names = append(names, name)
			rackOf[name] = r
		}
	}
	// The clock, in seconds since t0, moves with Tick. Over phases of 200 s
	// one rack in four is silent (a partition) and one machine in five of
	// the others (NotReady, then Failed on the BMC's word).
	var clock atomic.Int64
	now := func() time.Time { return t0.Add(time.Duration(clock.Load()) * time.Second) }
	silent := func(i int) bool {
		phase := int(clock.Load() / 200)
		return (rackOf[names[i]]+phase)%4 == 0 || (i+phase)%5 == 0
	}

	var (
		mu   sync.Mutex
		all  []Transition
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for g := range beaters {
		wg.Go(func() {
			var mine []Transition
			for i := g; ; i += beaters {
				select {
				case <-stop:
					mu.Lock()
					all = append(all, mine...)
					mu.Unlock()
					return
				default:
				}
				if i >= len(names) { // a pass done: let the others run
					i %= len(names)
					time.Sleep(20 * time.Microsecond)
				}
				if silent(i) {
					tr.State(names[i])
					continue
				}
				if change, ok := tr.Heartbeat(names[i], now()); ok {
					mine = append(mine, change)
				}
			}
		})
	}
	wg.Go(func() { // churn, unrelated to the machines checked
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("churn-%d", i%50)
			tr.Register(name, "r-churn")
			tr.Heartbeat(name, now())
			if i%3 == 0 {
				tr.Forget(name)
			}
			if i%100 == 0 {
				tr.Stats()
				time.Sleep(50 * time.Microsecond)
			}
		}
	})

	partitioned := map[string]bool{}
	var ticked []Transition
	tick := func() {
		changes, ask := tr.Tick(now())
		for _, c := range changes {
			if c.Machine == "" {
				partitioned[c.Rack] = c.To == Unreachable
			} else if c.To == Failed && partitioned[c.Rack] {
				t.Errorf("at %v: %v while its rack is partitioned", c.At, c)
			}
			if c.Rack != "r-churn" {
				ticked = append(ticked, c)
			}
		}
		for _, m := range ask {
			tr.ReportBMC(m, Evidence{At: now(), PowerOff: true})
		}
	}
	for range ticks {
		clock.Add(1)
		tick()
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	wg.Wait()

	// Everyone heartbeats once more: all is Ready again.
	clock.Add(1)
	for _, name := range names {
		if change, ok := tr.Heartbeat(name, now()); ok {
			all = append(all, change)
		}
	}
	tick()
	all = append(all, ticked...)

	net := map[string]*[numStates]int{}
	count := map[State]int{}
	for _, c := range all {
		key := c.Machine
		if key == "" {
			key = "rack " + c.Rack
		}
		if net[key] == nil {
			net[key] = new([numStates]int)
		}
		net[key][c.To]++
		net[key][c.From]--
		count[c.To]++
	}
	for _, name := range names {
		want := [numStates]int{Unknown: -1, Ready: 1}
		if got := net[name]; got == nil || *got != want {
			t.Errorf("machine %s: transitions in less out by state = %v, want %v", name, got, want)
		}
		if s, _ := tr.State(name); s != Ready {
			t.Errorf("State(%s) = %v, want Ready", name, s)
		}
	}
	for r := range racks {
		key := fmt.Sprintf("rack r%02d", r)
		if got := net[key]; got != nil && *got != ([numStates]int{}) {
			t.Errorf("%s: transitions in less out by state = %v, want none", key, got)
		}
	}
	t.Logf("%d transitions; into each state: %v", len(all), count)
	for _, s := range []State{NotReady, Unreachable, Failed} {
		if count[s] == 0 {
			t.Errorf("no machine became %v: the test did not exercise it", s)
		}
	}
}
