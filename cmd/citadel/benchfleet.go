package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/fleet"
	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// fleetReport is what `citadel bench fleet` prints.
type fleetReport struct {
	Nodes            int     `json:"nodes"`
	Clusters         int     `json:"clusters"`
	HeartbeatSeconds float64 `json:"heartbeatSeconds"`
	// RegisterSeconds is from the agents' start until every machine is
	// Ready; RegisterPerSecond the rate of that.
	RegisterSeconds   float64 `json:"registerSeconds"`
	RegisterPerSecond float64 `json:"registerPerSecond"`
	// HeartbeatP50Ms and HeartbeatP99Ms are the control plane's handling
	// time of a heartbeat (its histogram, interpolated).
	HeartbeatP50Ms float64 `json:"heartbeatP50Ms"`
	HeartbeatP99Ms float64 `json:"heartbeatP99Ms"`
	// Heartbeats and EtcdWrites are counted over the steady phase.
	SteadySeconds       float64 `json:"steadySeconds"`
	Heartbeats          uint64  `json:"heartbeats"`
	EtcdWrites          int64   `json:"etcdWrites"`
	EtcdWritesPerBeat   float64 `json:"etcdWritesPerHeartbeat"`
	Killed              int     `json:"killed"`
	NotReadyP50Seconds  float64 `json:"notReadyP50Seconds"`
	NotReadyP99Seconds  float64 `json:"notReadyP99Seconds"`
	HeapBaseMiB         float64 `json:"heapBaseMiB"`
	HeapWithFleetMiB    float64 `json:"heapWithFleetMiB"`
	BytesPerMachine     float64 `json:"bytesPerMachine"`
	ControlPlaneCPUPerc float64 `json:"controlPlaneCpuPercentSteady"`
}

// runBenchFleet starts a control plane and N agents in a second process
// (so that the control plane's memory and CPU are its own), and measures
// registration, heartbeat handling, etcd writes per heartbeat, how fast a
// killed machine is NotReady, and memory per machine.
func runBenchFleet(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel bench fleet", flag.ContinueOnError)
	nodes := fs.Int("nodes", 1000, "simulated machines")
	heartbeat := fs.Duration("heartbeat", 10*time.Second, "the agents' heartbeat interval")
	steady := fs.Duration("steady", 30*time.Second, "how long the steady phase, which counts heartbeats and etcd writes, lasts")
	kill := fs.Int("kill", 20, "agents killed to time how fast their machines are NotReady")
	if err := fs.Parse(args); err != nil {
		return err
	}
	progress := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "bench fleet: "+format+"\n", a...) }
	srv, creds, stop, err := startBenchServer(ctx, func(c *server.Config) { c.AgentHeartbeat = *heartbeat })
	if err != nil {
		return err
	}
	defer stop()
	c, err := client.New(creds)
	if err != nil {
		return err
	}

	// The base is the control plane before any machine exists: what a
	// machine costs includes its resources, held in the machines' mirror.
	heapBase := heapMiB()
	if err := ensureImage(filepath.Join(srv.DataDir, "images"), fleetVersion, func(string, ...any) {}); err != nil {
		return err
	}
	defined, err := sim.DefineFleet(ctx, c, creds.Location,
		sim.FleetSpec{Group: "fleet", Machines: *nodes, PerCluster: sim.MaxPerCluster, Version: fleetVersion}, progress)
	if err != nil {
		return err
	}
	n := len(defined.Machines) // the last cluster has 6 machines at least
	report := fleetReport{Nodes: n, Clusters: len(defined.Clusters), HeartbeatSeconds: heartbeat.Seconds(), HeapBaseMiB: heapBase}
	ca, err := os.ReadFile(creds.CACertFile)
	if err != nil {
		return err
	}
	spec := sim.FleetAgentsSpec{Servers: []string{srv.AgentURL}, CA: string(ca), Fleet: defined}
	specFile := filepath.Join(srv.DataDir, "agents.json")
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(specFile, b, 0o600); err != nil {
		return err
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.CommandContext(ctx, self, "bench", "fleet-agents", specFile)
	child.Stderr = os.Stderr
	commands, err := child.StdinPipe()
	if err != nil {
		return err
	}
	progress("starting %d agents in a second process", n)
	start := time.Now()
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { commands.Close(); child.Wait() }()
	tracker := srv.Fleet.Tracker()
	for last := -1; ; {
		ready := tracker.Stats().ByState[liveness.Ready]
		if ready == n {
			break
		}
		if ready/1000 != last/1000 {
			progress("%d of %d machines Ready after %v", ready, n, time.Since(start).Round(time.Second))
			last = ready
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("only %d of %d machines Ready after 10 minutes", ready, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	report.RegisterSeconds = time.Since(start).Seconds()
	report.RegisterPerSecond = float64(n) / report.RegisterSeconds
	progress("all %d Ready in %.1f s; steady phase of %v", n, report.RegisterSeconds, *steady)

	// Steady: every agent heartbeats; nothing should be written.
	time.Sleep(*heartbeat) // let the joins' own writes settle
	before := heartbeatBuckets(srv)
	rev0, err := srv.Store.Revision(ctx)
	if err != nil {
		return err
	}
	cpu0 := cpuTime()
	t0 := time.Now()
	time.Sleep(*steady)
	rev1, err := srv.Store.Revision(ctx)
	if err != nil {
		return err
	}
	report.SteadySeconds = time.Since(t0).Seconds()
	report.ControlPlaneCPUPerc = 100 * (cpuTime() - cpu0).Seconds() / report.SteadySeconds
	steadyBuckets := heartbeatBuckets(srv).minus(before)
	report.Heartbeats = steadyBuckets.total()
	report.EtcdWrites = rev1 - rev0
	if report.Heartbeats > 0 {
		report.EtcdWritesPerBeat = float64(report.EtcdWrites) / float64(report.Heartbeats)
	}
	report.HeartbeatP50Ms, report.HeartbeatP99Ms = steadyBuckets.quantile(0.5)*1000, steadyBuckets.quantile(0.99)*1000
	report.HeapWithFleetMiB = heapMiB()
	report.BytesPerMachine = (report.HeapWithFleetMiB - report.HeapBaseMiB) * (1 << 20) / float64(n)

	// Kill some agents, one per rack so that no rack looks cut off, and
	// time their machines' NotReady.
	var victims []sim.FleetMachine
	for _, m := range defined.Machines {
		if len(victims) < *kill && strings.HasSuffix(m.ID, "m1") && !strings.Contains(m.ID, "r0m") {
			victims = append(victims, m)
		}
	}
	killedAt := time.Now()
	for _, v := range victims {
		fmt.Fprintf(commands, "kill %s\n", v.ID)
	}
	var detect []float64
	for pending := slices.Clone(victims); len(pending) > 0; {
		pending = slices.DeleteFunc(pending, func(v sim.FleetMachine) bool {
			if st, _ := tracker.State(v.ID); st == liveness.NotReady {
				detect = append(detect, time.Since(killedAt).Seconds())
				return true
			}
			return false
		})
		if time.Since(killedAt) > 5*time.Minute {
			return fmt.Errorf("%d killed machines still not NotReady after 5 minutes", len(pending))
		}
		time.Sleep(100 * time.Millisecond)
	}
	report.Killed = len(victims)
	slices.Sort(detect)
	if len(detect) > 0 {
		report.NotReadyP50Seconds = detect[len(detect)/2]
		report.NotReadyP99Seconds = detect[min(len(detect)-1, int(math.Ceil(0.99*float64(len(detect))))-1)]
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// fleetVersion is the version of the fleet's clusters.
const fleetVersion = "4.1.0"

// runFleetAgents is the agents' side of bench fleet: it runs an agent per
// machine of the spec file, each opening a connection per request (TLS
// sessions resumed), and stops the agents named on its standard input
// ("kill <machine id>").
func runFleetAgents(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: citadel bench fleet-agents SPEC-FILE")
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var spec sim.FleetAgentsSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	agents := sim.NewFleetAgents(spec.Fleet, sim.FleetAgentOptions{Servers: spec.Servers, ServerCA: []byte(spec.CA),
		Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 4}, NoWatch: true, Logger: log})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel() // the bench closed our standard input: stop every agent
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "kill "); ok {
				if err := agents.Stop(id); err != nil {
					log.ErrorContext(ctx, "kill", "err", err)
				}
			}
		}
	}()
	return agents.Run(ctx)
}

// buckets are a histogram's cumulative counts by upper bound.
type buckets struct {
	upper []float64
	count []uint64
}

// heartbeatBuckets reads the heartbeat handling histogram.
func heartbeatBuckets(srv *server.Server) buckets {
	var b buckets
	families, _ := srv.Metrics.Gather()
	for _, f := range families {
		if f.GetName() != fleet.HeartbeatHistogram || len(f.GetMetric()) == 0 {
			continue
		}
		for _, bk := range f.GetMetric()[0].GetHistogram().GetBucket() {
			b.upper = append(b.upper, bk.GetUpperBound())
			b.count = append(b.count, bk.GetCumulativeCount())
		}
	}
	return b
}

// minus is what was counted since earlier.
func (b buckets) minus(earlier buckets) buckets {
	out := buckets{upper: b.upper, count: slices.Clone(b.count)}
	for i := range out.count {
		if i < len(earlier.count) {
			out.count[i] -= earlier.count[i]
		}
	}
	return out
}

func (b buckets) total() uint64 {
	if len(b.count) == 0 {
		return 0
	}
	return b.count[len(b.count)-1]
}

// quantile interpolates within the bucket holding the q-th sample, as
// Prometheus's histogram_quantile does; in seconds.
func (b buckets) quantile(q float64) float64 {
	rank := q * float64(b.total())
	lower, below := 0.0, 0.0
	for i, c := range b.count {
		if float64(c) >= rank {
			if float64(c) == below {
				return b.upper[i]
			}
			return lower + (b.upper[i]-lower)*(rank-below)/(float64(c)-below)
		}
		lower, below = b.upper[i], float64(c)
	}
	return lower
}

func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
