package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// BenchmarkClusterUpdate updates a simulated multi-rack of 995 machines
// (an aggregator rack of 3 and 62 compute racks of 16, their agents
// heartbeating every 5 s) rack by rack, whole racks at a time, each
// machine's update taking 2 s, and reports the controller's overhead per
// rack: how much longer the update took than its batches' update time,
// divided among the racks. Then it drifts one machine and reports how long detection takes
// with the default 10 s check.
//
//	go test ./internal/e2e -run '^$' -bench ClusterUpdate -benchtime 1x -timeout 30m
func BenchmarkClusterUpdate(b *testing.B) {
	const racks, perRack, updateTime = 62, 16, 2 * time.Second
	s := startSiteOf(b, sim.Spec{Name: "bu", ComputeRacks: racks, MachinesPerRack: perRack, Updates: host.UpdateBehavior{Duration: updateTime}},
		map[string]any{"strategyType": "Rack", "thresholdType": "PercentSuccess", "thresholdValue": 100, "maxUnavailable": perRack}, 0,
		func(c *server.Config) {
			c.AgentHeartbeat = 5 * time.Second
			c.Liveness = liveness.Config{NotReadyAfter: 15 * time.Second, FailedAfter: 30 * time.Second}
		})
	for b.Loop() {
		s.importRelease(b, "4.2.0")
		t0 := time.Now()
		st := ncOperation(b, s.cp.Client, http.MethodPost, s.clusterID+"/updateVersion?api-version="+ncAPI, map[string]any{"targetClusterVersion": "4.2.0"})
		total := time.Since(t0)
		if st.Status != "Succeeded" {
			b.Fatalf("updateVersion: %+v", st)
		}
		// The aggregator's three control-plane machines go one at a
		// time; each compute rack goes whole.
		machineTime := time.Duration(3+racks) * updateTime
		b.ReportMetric(total.Seconds(), "s/update")
		b.ReportMetric((total-machineTime).Seconds()/float64(racks+1), "s-overhead/rack")
	}

	// Drift with the default check interval and heartbeats every 5 s.
	name := "bur30m7"
	t0 := time.Now()
	if err := s.cl.Drift(name); err != nil {
		b.Fatal(err)
	}
	waitUntil(b, "drift detected", 60*time.Second, func() bool {
		var d struct {
			Properties struct {
				ConfigurationDrift struct{ Status string } `json:"configurationDrift"`
			} `json:"properties"`
		}
		ncGet(b, s.cp.Client, s.machineID(name), &d)
		return d.Properties.ConfigurationDrift.Status == "Drifted"
	})
	b.ReportMetric(time.Since(t0).Seconds(), "s-drift-detected")
}
