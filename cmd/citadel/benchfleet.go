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
	"sync"
	"syscall"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent"
	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentauth"
	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/fleet"
	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/server"
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

// benchAgents is what the agents' process is given: the agent API and
// each machine's ID and token.
type benchAgents struct {
	Server    string        `json:"server"`
	CA        string        `json:"ca"`
	Heartbeat time.Duration `json:"heartbeat"`
	Machines  []benchAgent  `json:"machines"`
}

type benchAgent struct {
	ID    string `json:"id"`
	Token string `json:"token"`
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
	spec, err := defineFleet(ctx, c, srv, creds, *nodes, progress)
	if err != nil {
		return err
	}
	report := fleetReport{Nodes: *nodes, Clusters: (*nodes + clusterMachines - 1) / clusterMachines, HeartbeatSeconds: heartbeat.Seconds(),
		HeapBaseMiB: heapBase}
	ca, err := os.ReadFile(creds.CACertFile)
	if err != nil {
		return err
	}
	spec.Server, spec.CA, spec.Heartbeat = srv.AgentURL, string(ca), *heartbeat
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
	progress("starting %d agents in a second process", *nodes)
	start := time.Now()
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { commands.Close(); child.Wait() }()
	tracker := srv.Fleet.Tracker()
	for last := -1; ; {
		ready := tracker.Stats().ByState[liveness.Ready]
		if ready == *nodes {
			break
		}
		if ready/1000 != last/1000 {
			progress("%d of %d machines Ready after %v", ready, *nodes, time.Since(start).Round(time.Second))
			last = ready
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("only %d of %d machines Ready after 10 minutes", ready, *nodes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	report.RegisterSeconds = time.Since(start).Seconds()
	report.RegisterPerSecond = float64(*nodes) / report.RegisterSeconds
	progress("all %d Ready in %.1f s; steady phase of %v", *nodes, report.RegisterSeconds, *steady)

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
	report.BytesPerMachine = (report.HeapWithFleetMiB - report.HeapBaseMiB) * (1 << 20) / float64(*nodes)

	// Kill some agents, one per rack so that no rack looks cut off, and
	// time their machines' NotReady.
	var victims []benchAgent
	for _, m := range spec.Machines {
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
		pending = slices.DeleteFunc(pending, func(v benchAgent) bool {
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

// clusterMachines is the most machines one multi-rack cluster holds: an
// aggregator's 3 controllers and 16 compute racks of 16.
const clusterMachines = 3 + 16*16

// defineFleet creates the clusters of n machines through the ARM API,
// without deploying them (their BMC addresses answer nothing: liveness
// needs only the agents), and a bootstrap token per cluster.
func defineFleet(ctx context.Context, c *client.Client, srv *server.Server, creds client.Credentials, n int,
	progress func(string, ...any)) (benchAgents, error) {
	var spec benchAgents
	if err := ensureImage(filepath.Join(srv.DataDir, "images"), "4.1.0", func(string, ...any) {}); err != nil {
		return spec, err
	}
	group := "/subscriptions/" + creds.SubscriptionID + "/resourceGroups/fleet"
	nc := group + "/providers/Microsoft.NetworkCloud/"
	if r, err := c.Do(ctx, http.MethodPut, group+"?api-version="+groupAPI, map[string]any{"location": creds.Location}); err != nil || r.Expect(200, 201) != nil {
		return spec, fmt.Errorf("resource group: %v %v", r, err)
	}
	r, err := c.Do(ctx, http.MethodPut, nc+"clusterManagers/cm?api-version="+upAPI, map[string]any{"location": creds.Location,
		"properties": map[string]any{"fabricControllerId": group + "/providers/Microsoft.ManagedNetworkFabric/networkFabricControllers/nfc"}})
	if err != nil {
		return spec, err
	}
	if _, err := c.Wait(ctx, r, nil); err != nil {
		return spec, err
	}
	var cm struct {
		Properties struct {
			ManagerExtendedLocation struct{ Name string } `json:"managerExtendedLocation"`
		} `json:"properties"`
	}
	if err := getJSON(ctx, c, nc+"clusterManagers/cm?api-version="+upAPI, &cm); err != nil {
		return spec, err
	}
	for i := 0; len(spec.Machines) < n; i++ {
		name := fmt.Sprintf("cell%d", i)
		props, ids := fleetCluster(name, i, min(n-len(spec.Machines), clusterMachines), group)
		progress("defining cluster %s of %d machines", name, len(ids))
		r, err := c.Do(ctx, http.MethodPut, nc+"clusters/"+name+"?api-version="+upAPI, map[string]any{"location": creds.Location,
			"extendedLocation": map[string]string{"name": cm.Properties.ManagerExtendedLocation.Name, "type": "CustomLocation"},
			"properties":       props})
		if err != nil {
			return spec, err
		}
		if err := r.Expect(200, 201); err != nil {
			return spec, fmt.Errorf("cluster %s: %w", name, err)
		}
		if _, err := c.Wait(ctx, r, nil); err != nil {
			return spec, fmt.Errorf("cluster %s: %w", name, err)
		}
		token, _, err := srv.Agents.IssueToken(ctx, agentauth.Grant{Cluster: nc + "clusters/" + name}, time.Hour)
		if err != nil {
			return spec, err
		}
		for _, id := range ids {
			spec.Machines = append(spec.Machines, benchAgent{ID: nc + "bareMetalMachines/" + id, Token: token})
		}
	}
	return spec, nil
}

// fleetCluster is the definition of cluster number i with n machines
// (at least 3 + 3): the aggregator's controllers, then compute racks of
// up to 16. Each machine has an identity of its own; its BMC address is
// on 127.2.i.0/24 and answers nothing.
func fleetCluster(name string, i, n int, group string) (map[string]any, []string) {
	var ids []string
	mc := func(rack, slot int) map[string]any {
		id := fmt.Sprintf("%sr%dm%d", name, rack, slot)
		ids = append(ids, id)
		k := len(ids)
		mac := func(port int) string {
			return fmt.Sprintf("02:%02x:%02x:%02x:00:%02x", i>>8, i&0xff, k&0xff, port+(k>>8)*8)
		}
		return map[string]any{"machineName": id, "rackSlot": slot, "serialNumber": strings.ToUpper(id),
			"bmcMacAddress": mac(0), "bootMacAddress": mac(1),
			"bmcConnectionString": fmt.Sprintf("redfish+https://127.2.%d.%d:%d?insecure=true", i%256, k%256, 443+k/256),
			"bmcCredentials":      map[string]string{"username": "root", "password": "unused"}}
	}
	rack := func(sku, serial string) map[string]any {
		return map[string]any{"rackSkuId": sku, "rackSerialNumber": serial, "bareMetalMachineConfigurationData": []any{},
			"networkRackId": group + "/providers/Microsoft.ManagedNetworkFabric/networkRacks/" + strings.ToLower(serial)}
	}
	agg := rack(machine.RackSKUAggregator, strings.ToUpper(name)+"-AGG")
	for slot := 1; slot <= 3; slot++ {
		agg["bareMetalMachineConfigurationData"] = append(agg["bareMetalMachineConfigurationData"].([]any), mc(0, slot))
	}
	agg["storageApplianceConfigurationData"] = []any{map[string]any{"rackSlot": 4, "serialNumber": strings.ToUpper(name) + "-SAN",
		"adminCredentials": map[string]string{"username": "pureuser", "password": "unused"}}}
	compute := []any{}
	left := max(n-3, 3)
	perRack := min(16, (left+2)/3) // at least 3 racks
	for r := 1; left > 0 || r <= 3; r++ {
		cr := rack(machine.RackSKUCompute16, fmt.Sprintf("%s-R%d", strings.ToUpper(name), r))
		for slot := 1; slot <= perRack && left > 0; slot++ {
			cr["bareMetalMachineConfigurationData"] = append(cr["bareMetalMachineConfigurationData"].([]any), mc(r, slot))
			left--
		}
		compute = append(compute, cr)
	}
	return map[string]any{"clusterType": "MultiRack", "clusterVersion": "4.1.0",
		"networkFabricId":                  group + "/providers/Microsoft.ManagedNetworkFabric/networkFabrics/" + name,
		"aggregatorOrSingleRackDefinition": agg, "computeRackDefinitions": compute}, ids
}

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
	var spec benchAgents
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	base := &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 4}
	inv := agentapi.Inventory{CPU: agentapi.CPU{Model: "Intel Xeon Gold 6548Y+", Sockets: 2, Cores: 64, Threads: 128}, MemoryBytes: 512 << 30}
	cancels := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	for i, m := range spec.Machines {
		actx, cancel := context.WithCancel(ctx)
		cancels[m.ID] = cancel
		a := agent.New(agent.Config{Server: spec.Server, ServerCA: []byte(spec.CA), Machine: m.ID, Token: m.Token,
			Host: host.NewSim(inv), Transport: base, NoWatch: true, Logger: log})
		wg.Go(func() {
			if err := a.Run(actx); err != nil {
				log.Error("agent ended", "machine", m.ID, "err", err)
			}
		})
		if i%100 == 99 {
			time.Sleep(50 * time.Millisecond) // machines power on over a while, not in one instant
		}
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "kill "); ok {
			if cancel, ok := cancels[id]; ok {
				cancel()
			}
		}
	}
	for _, cancel := range cancels {
		cancel()
	}
	wg.Wait()
	return nil
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
