package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// haFleet is a fleet of simulated machines whose agents heartbeat to the
// replicas of a highly available control plane while it fails over.
type haFleet struct {
	fleet sim.Fleet
	group string // the resource group's ID

	mu      sync.Mutex
	agents  io.Writer       // the agents' process's standard input: "kill <machine ID>" stops one
	stopped map[string]bool // the machines whose agents were stopped, by ID
}

// haFleetVersion is the fleet's cluster version: each replica's image
// catalog holds a placeholder install image for it (putClusterImage).
const haFleetVersion = "4.1.0"

// putClusterImage puts a placeholder install image of haFleetVersion in
// the image catalog of the replica whose data dir is dataDir, before it
// starts: clusters of a version the catalog lacks are refused.
func putClusterImage(t *testing.T, dataDir string) {
	t.Helper()
	dir := filepath.Join(dataDir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster-"+haFleetVersion+".iso"), []byte("placeholder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startHAFleet defines machines machines in cells of perCell through the
// first of clients (one per replica) and runs their agents in a process of their own (`citadel bench
// fleet-agents`, built without the race detector, as real machines are
// not in the test's process), agent i talking first to agentAPIs[i%3]
// (they move to their cell's owner), and waits until the replicas hold
// every machine Ready.
func startHAFleet(t *testing.T, bin string, clients []*client.Client, agentAPIs []string, machines, perCell int) *haFleet {
	t.Helper()
	start := time.Now()
	c := clients[0]
	group := "ha-fleet"
	f, err := sim.DefineFleet(t.Context(), c, c.Creds.Location, sim.FleetSpec{Group: group, Machines: machines, PerCluster: perCell,
		Version: haFleetVersion}, nil)
	if err != nil {
		t.Fatalf("defining the fleet: %v", err)
	}
	ca, err := os.ReadFile(c.Creds.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(sim.FleetAgentsSpec{Servers: agentAPIs, CA: string(ca), Fleet: f})
	specFile := filepath.Join(t.TempDir(), "agents.json")
	if err := os.WriteFile(specFile, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "bench", "fleet-agents", specFile)
	cmd.Stderr = t.Output()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() }) // closing its input stops every agent
	h := &haFleet{fleet: f, group: "/subscriptions/" + c.Creds.SubscriptionID + "/resourceGroups/" + group, agents: stdin, stopped: map[string]bool{}}
	defined := time.Since(start)
	waitUntil(t, fmt.Sprintf("%d machines Ready", machines), 5*time.Minute, func() bool {
		ready, err := metric(clients, `citadel_fleet_machines{state="Ready"}`)
		total := 0.0
		for _, n := range ready {
			total += n
		}
		return err == nil && int(total) == len(f.Machines)
	})
	t.Logf("%d machines in %d cells defined in %v, their agents all Ready %v later", len(f.Machines), len(f.Clusters),
		defined.Round(time.Millisecond), (time.Since(start) - defined).Round(time.Millisecond))
	return h
}

// machineState is what a machine's resource says of its liveness, and
// its ETag, which changes with every write.
type machineState struct {
	Liveness, Message, ETag string
}

// machines reads every machine's state through c.
func (h *haFleet) machines(ctx context.Context, c *client.Client) (map[string]machineState, error) {
	out := map[string]machineState{}
	next := h.group + "/providers/Microsoft.NetworkCloud/bareMetalMachines?api-version=2026-07-01"
	for next != "" {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		r, err := c.Do(ctx, http.MethodGet, next, nil)
		cancel()
		if err != nil {
			return nil, err
		}
		if r.Status != http.StatusOK {
			return nil, fmt.Errorf("listing the machines: %d %s", r.Status, r.Body)
		}
		var page struct {
			Value []struct {
				ID         string
				ETag       string `json:"etag"`
				Properties struct {
					LivenessState   string `json:"livenessState"`
					LivenessMessage string `json:"livenessMessage"`
				}
			}
			NextLink string `json:"nextLink"`
		}
		if err := json.Unmarshal(r.Body, &page); err != nil {
			return nil, err
		}
		for _, m := range page.Value {
			out[m.ID] = machineState{Liveness: m.Properties.LivenessState, Message: m.Properties.LivenessMessage, ETag: m.ETag}
		}
		next = strings.TrimPrefix(page.NextLink, strings.TrimSuffix(c.Creds.ARMEndpoint, "/"))
	}
	return out, nil
}

// stopOnePerCell stops the agent of one more machine of each cell (of a
// compute rack, one slot after another, so that no rack looks cut off),
// and returns them.
func (h *haFleet) stopOnePerCell(t *testing.T) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	slot := len(h.stopped)/len(h.fleet.Clusters) + 1
	for _, cluster := range h.fleet.Clusters {
		name := cluster[strings.LastIndex(cluster, "/")+1:]
		id := fmt.Sprintf("%s/providers/Microsoft.NetworkCloud/bareMetalMachines/%sr1m%d", h.group, name, slot)
		if _, err := fmt.Fprintf(h.agents, "kill %s\n", id); err != nil {
			t.Fatal(err)
		}
		h.stopped[id] = true
		out = append(out, id)
	}
	return out
}

// notReady lists the machines whose state is not Ready, with it, but for
// those whose agents were stopped.
func (h *haFleet) notReady(states map[string]machineState) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for id, s := range states {
		if s.Liveness != "Ready" && !h.stopped[id] {
			out = append(out, fmt.Sprintf("%s: %s", id[strings.LastIndex(id, "/")+1:], s.Liveness))
		}
	}
	slices.Sort(out)
	return out
}

// check compares the machines after a failover with before it: every
// machine whose agent runs is Ready and, unless acted on, its resource
// was not written at all (a liveness transition, even one undone, is a
// write); the machines whose agents died (dead) are NotReady or Failed.
func (h *haFleet) check(t *testing.T, before, after map[string]machineState, dead []string, acted map[string]bool) {
	t.Helper()
	if bad := h.notReady(after); len(bad) > 0 {
		t.Errorf("machines not Ready after the failover (%d): %v", len(bad), bad[:min(len(bad), 20)])
	}
	var written []string
	h.mu.Lock()
	for id, b := range before {
		if a := after[id]; !h.stopped[id] && !acted[id] && a.ETag != b.ETag {
			written = append(written, fmt.Sprintf("%s (%s: %s)", id[strings.LastIndex(id, "/")+1:], a.Liveness, a.Message))
		}
	}
	h.mu.Unlock()
	if len(written) > 0 {
		slices.Sort(written)
		t.Errorf("machines whose agents run were written during the failover (%d): %v", len(written), written[:min(len(written), 20)])
	}
	for _, id := range dead {
		if s := after[id].Liveness; s != "NotReady" && s != "Failed" {
			t.Errorf("machine %s, whose agent stopped at the fault, is %q at the end", id, s)
		}
	}
	t.Logf("%d machines: %d unchanged, %d acted on, %d dead", len(after), len(after)-len(written)-len(acted)-len(h.stopped), len(acted), len(h.stopped))
}

// cellsOwned is how many cells each replica holds the liveness of.
func cellsOwned(clients []*client.Client) ([]int, error) {
	v, err := metric(clients, "citadel_fleet_cells_owned")
	out := make([]int, len(v))
	for i, f := range v {
		out[i] = int(f)
	}
	return out, err
}

// metric is the value of a metric (its name, with its labels as
// Prometheus writes them) on each replica.
func metric(clients []*client.Client, name string) ([]float64, error) {
	out := make([]float64, len(clients))
	for i, c := range clients {
		resp, err := c.HTTP.Get(c.Creds.ARMEndpoint + "metrics")
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				out[i], _ = strconv.ParseFloat(v, 64)
			}
		}
		resp.Body.Close()
	}
	return out, nil
}

// timeToOwn measures how long after since the replicas of clients own
// all cells between them, polling for at most a minute (then -1).
func timeToOwn(clients []*client.Client, cells int, since time.Time) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		for time.Since(since) < time.Minute {
			if owned, err := cellsOwned(clients); err == nil {
				total := 0
				for _, n := range owned {
					total += n
				}
				if total == cells {
					out <- time.Since(since)
					return
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		out <- -1
	}()
	return out
}
