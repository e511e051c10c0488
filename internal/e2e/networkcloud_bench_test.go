package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/servertest"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// BenchmarkNetworkCloudDeploy deploys a cluster of an aggregator rack
// (3 controllers) and 4 compute racks of 16 machines, 67 simulated BMCs
// over TLS, end to end: the deploy action from POST to its operation's
// end, each machine validated and imaged through its BMC. Each iteration
// defines a new cluster on fresh BMCs; only the deploy is timed.
//
//	go test ./internal/e2e -run '^$' -bench NetworkCloudDeploy -benchtime 5x
func BenchmarkNetworkCloudDeploy(b *testing.B) {
	cp := servertest.Start(b)
	ncImage(b, cp.DataDir)
	const racks, perRack = 4, 16
	machines := 3 + racks*perRack
	var total time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		name := fmt.Sprintf("bd%d", i)
		cl := newNCCluster(b, cp, sim.Spec{Name: name, ComputeRacks: racks, MachinesPerRack: perRack}, nil, nil)
		clusterID := ncDefine(b, cp.Client, name, cl)
		b.StartTimer()
		t0 := time.Now()
		st := ncOperation(b, cp.Client, http.MethodPost, clusterID+"/deploy?api-version="+ncAPI, map[string]any{})
		total += time.Since(t0)
		if st.Status != "Succeeded" {
			b.Fatalf("deploy: %+v", st)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(i), "ms/deploy")
	b.ReportMetric(float64(machines*i)/total.Seconds(), "machines/s")
}
