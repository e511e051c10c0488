package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// BenchmarkClusterUpdate updates 1,036 simulated machines on one control
// plane, their agents heartbeating every 5 s: four multi-rack clusters
// (an aggregator rack of 3 and 16 compute racks of 16, the most an
// aggregator serves), updated at once, each rack by rack, whole racks at
// a time, each machine's update taking 2 s. It reports the controller's
// overhead per rack: how much longer a cluster's update took than its
// batches' update time (3 control-plane batches and one per compute
// rack), divided among its racks; the median and the worst of the four.
// Then it drifts one machine and reports how long the default 10 s check
// takes to see it.
//
//	go test ./internal/e2e -run '^$' -bench ClusterUpdate -benchtime 1x -timeout 30m
func BenchmarkClusterUpdate(b *testing.B) {
	const clusters, racks, perRack, updateTime = 4, 16, 16, 2 * time.Second
	strategy := map[string]any{"strategyType": "Rack", "thresholdType": "PercentSuccess", "thresholdValue": 100, "maxUnavailable": perRack}
	spec := func(i int) sim.Spec {
		return sim.Spec{Name: fmt.Sprintf("bu%d", i), ComputeRacks: racks, MachinesPerRack: perRack, Updates: host.UpdateBehavior{Duration: updateTime}}
	}
	first := startSiteOf(b, spec(0), strategy, 0, func(c *server.Config) {
		c.AgentHeartbeat = 5 * time.Second
		c.Liveness = liveness.Config{NotReadyAfter: 15 * time.Second, FailedAfter: 30 * time.Second}
	})
	sites := []*rolloutSite{first}
	for i := 1; i < clusters; i++ {
		sites = append(sites, first.withCluster(b, spec(i), strategy, 0))
	}
	machineTime := time.Duration(3+racks) * updateTime
	for b.Loop() {
		first.importRelease(b, "4.2.0")
		overheads := make([]time.Duration, clusters)
		var wg sync.WaitGroup
		for i, s := range sites {
			wg.Go(func() {
				t0 := time.Now()
				st := ncOperation(b, s.cp.Client, http.MethodPost, s.clusterID+"/updateVersion?api-version="+ncAPI, map[string]any{"targetClusterVersion": "4.2.0"})
				if st.Status != "Succeeded" {
					b.Errorf("updateVersion of %s: %+v", s.cl.Spec.Name, st)
				}
				overheads[i] = (time.Since(t0) - machineTime) / (racks + 1)
			})
		}
		wg.Wait()
		slices.Sort(overheads)
		b.ReportMetric(overheads[clusters/2].Seconds(), "s-overhead/rack(median)")
		b.ReportMetric(overheads[clusters-1].Seconds(), "s-overhead/rack(max)")
	}

	name := "bu2r7m9"
	t0 := time.Now()
	if err := sites[2].cl.Drift(name); err != nil {
		b.Fatal(err)
	}
	waitUntil(b, "drift detected", 60*time.Second, func() bool {
		var d struct {
			Properties struct {
				ConfigurationDrift struct{ Status string } `json:"configurationDrift"`
			} `json:"properties"`
		}
		ncGet(b, first.cp.Client, sites[2].machineID(name), &d)
		return d.Properties.ConfigurationDrift.Status == "Drifted"
	})
	b.ReportMetric(time.Since(t0).Seconds(), "s-drift-detected")
}
