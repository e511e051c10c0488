package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// BenchmarkVMFailover powers off a machine that runs VMs and times how
// long after its last heartbeat all of them run again on other machines,
// with the control plane's default liveness rules (NotReady after 30 s of
// silence, Failed on its BMC's word after 40 s), on a site of 3 compute
// racks of 4 machines running 24 VMs. Each iteration fails another
// machine and powers it on again afterwards, untimed.
//
//	go test ./internal/e2e -run '^$' -bench VMFailover -benchtime 3x
func BenchmarkVMFailover(b *testing.B) {
	s := startVMSite(b, sim.Spec{Name: "bf", ComputeRacks: 3, MachinesPerRack: 4}, func(c *server.Config) {
		c.Liveness = liveness.Config{} // the defaults
	})
	vms := s.createVMs(b, "vm", 24, 16, 4, nil)
	var afterHeartbeat, afterFailed []time.Duration
	i := 0
	for b.Loop() {
		failed, _ := s.vmHost(b, vms[i*5%len(vms)])
		i++
		var lost []string
		for _, name := range vms {
			if h, _ := s.vmHost(b, name); h == failed {
				lost = append(lost, name)
			}
		}
		if err := s.cl.PowerOff(failed); err != nil {
			b.Fatal(err)
		}
		id := s.machineID(failed)
		var failedAt time.Time
		waitUntil(b, "the VMs of "+failed+" running elsewhere", 3*time.Minute, func() bool {
			if st, _ := s.cp.Fleet.Tracker().State(id); st == liveness.Failed && failedAt.IsZero() {
				failedAt = time.Now()
			}
			for _, name := range lost {
				if h, power := s.vmHost(b, name); h == failed || power != "On" {
					return false
				}
			}
			return true
		})
		_, last := s.cp.Fleet.Tracker().State(id)
		afterHeartbeat = append(afterHeartbeat, time.Since(last))
		afterFailed = append(afterFailed, time.Since(failedAt))

		b.StopTimer()
		if err := s.cl.PowerOn(failed); err != nil {
			b.Fatal(err)
		}
		waitUntil(b, failed+" Ready again", time.Minute, func() bool {
			st, _ := s.cp.Fleet.Tracker().State(id)
			return st == liveness.Ready
		})
		b.StartTimer()
	}
	median := func(ds []time.Duration) float64 { slices.Sort(ds); return ds[len(ds)/2].Seconds() }
	b.ReportMetric(median(afterHeartbeat), "s-after-last-heartbeat")
	b.ReportMetric(median(afterFailed), "s-after-failed")
}
