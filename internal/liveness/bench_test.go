package liveness

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

var sizes = []int{10_000, 50_000}

// fleet is n machines in racks of 16, each heard from at t0.
func fleet(n int) (*Tracker, []string) {
	tr := New(Config{})
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("/subscriptions/sub/resourceGroups/rg/providers/Microsoft.NetworkCloud/bareMetalMachines/m%05d", i)
		tr.Register(names[i], fmt.Sprintf("rack%04d", i/16))
		tr.Heartbeat(names[i], t0)
	}
	return tr, names
}

// BenchmarkHeartbeat is one heartbeat of a Ready machine, from all cores
// at once, as the agent API receives them.
func BenchmarkHeartbeat(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("machines=%d", n), func(b *testing.B) {
			tr, names := fleet(n)
			var goroutine atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(goroutine.Add(1)) * 7919
				for pb.Next() {
					i++
					tr.Heartbeat(names[i*31%n], t0.Add(time.Duration(i)*time.Microsecond))
				}
			})
		})
	}
}

// BenchmarkTick is one evaluation of the whole fleet: quiet (every machine
// Ready) and silent (every rack partitioned, the worst case: every machine
// is looked at twice).
func BenchmarkTick(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("machines=%d/quiet", n), func(b *testing.B) {
			tr, _ := fleet(n)
			now := t0.Add(10 * time.Second)
			b.ReportAllocs()
			for b.Loop() {
				if changes, _ := tr.Tick(now); len(changes) != 0 {
					b.Fatalf("Tick made %d transitions, want none", len(changes))
				}
			}
		})
		b.Run(fmt.Sprintf("machines=%d/silent", n), func(b *testing.B) {
			tr, _ := fleet(n)
			now := t0.Add(time.Minute)
			if changes, _ := tr.Tick(now); len(changes) != n+n/16 {
				b.Fatalf("first Tick made %d transitions, want %d", len(changes), n+n/16)
			}
			b.ReportAllocs()
			for b.Loop() {
				tr.Tick(now)
			}
		})
	}
}

// bytesPerMachine is the heap a tracker of n machines in racks of 16
// takes, per machine, names included.
func bytesPerMachine(n int) float64 {
	names := make([]string, n)
	racks := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("/subscriptions/sub/resourceGroups/rg/providers/Microsoft.NetworkCloud/bareMetalMachines/m%05d", i)
		racks[i] = fmt.Sprintf("rack%04d", i/16)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := New(Config{})
	for i := range n {
		tr.Register(names[i], racks[i])
		tr.Heartbeat(names[i], t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tr)
	runtime.KeepAlive(names)
	runtime.KeepAlive(racks)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// TestMemoryPerMachine keeps a machine's share of the control plane's 16 KiB
// small.
func TestMemoryPerMachine(t *testing.T) {
	const n, budget = 50_000, 1024
	per := bytesPerMachine(n)
	t.Logf("%d machines: %.0f bytes per machine, names of %d bytes included", n, per, len("/subscriptions/sub/resourceGroups/rg/providers/Microsoft.NetworkCloud/bareMetalMachines/m00000"))
	if per > budget {
		t.Errorf("%.0f bytes per machine, want at most %d", per, budget)
	}
}

// BenchmarkRegister is a replica starting: 50,000 machines registered and
// heard from. It reports the heap they take, per machine.
func BenchmarkRegister(b *testing.B) {
	const n = 50_000
	_, names := fleet(n)
	b.ReportAllocs()
	for b.Loop() {
		tr := New(Config{})
		for i, name := range names {
			tr.Register(name, fmt.Sprintf("rack%04d", i/16))
			tr.Heartbeat(name, t0)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/machine")
	b.ReportMetric(bytesPerMachine(n), "B/machine")
}
