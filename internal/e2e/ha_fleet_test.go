package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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
	fleet  sim.Fleet
	group  string // the resource group's ID
	agents *sim.FleetAgents

	mu      sync.Mutex
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

// startHAFleet defines machines machines in cells of perCell through c
// and runs their agents, agent i talking first to agentAPIs[i%3] (they
// move to their cell's owner), and waits until every machine is Ready.
func startHAFleet(t *testing.T, c *client.Client, agentAPIs []string, machines, perCell int) *haFleet {
	t.Helper()
	start := time.Now()
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
	h := &haFleet{fleet: f, group: "/subscriptions/" + c.Creds.SubscriptionID + "/resourceGroups/" + group, stopped: map[string]bool{}}
	h.agents = sim.NewFleetAgents(f, sim.FleetAgentOptions{Servers: agentAPIs, ServerCA: ca, NoWatch: true,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))})
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{})
	go func() { defer close(done); h.agents.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	defined := time.Since(start)
	waitUntil(t, fmt.Sprintf("%d machines Ready", machines), 3*time.Minute, func() bool {
		states, err := h.liveness(t.Context(), c)
		return err == nil && len(states) == len(f.Machines) && h.notReady(states) == nil
	})
	t.Logf("%d machines in %d cells defined in %v, their agents all Ready %v later", len(f.Machines), len(f.Clusters),
		defined.Round(time.Millisecond), (time.Since(start) - defined).Round(time.Millisecond))
	return h
}

// liveness is every machine's livenessState, by machine ID, as the store
// has it.
func (h *haFleet) liveness(ctx context.Context, c *client.Client) (map[string]string, error) {
	out := map[string]string{}
	next := h.group + "/providers/Microsoft.NetworkCloud/bareMetalMachines?api-version=2026-07-01"
	for next != "" {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
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
				Properties struct {
					LivenessState string `json:"livenessState"`
				}
			}
			NextLink string `json:"nextLink"`
		}
		if err := json.Unmarshal(r.Body, &page); err != nil {
			return nil, err
		}
		for _, m := range page.Value {
			out[m.ID] = m.Properties.LivenessState
		}
		next = strings.TrimPrefix(page.NextLink, strings.TrimSuffix(c.Creds.ARMEndpoint, "/"))
	}
	return out, nil
}

// stopOnePerCell stops the agent of one machine of each cell (of a
// compute rack, so that no rack looks cut off), and returns them.
func (h *haFleet) stopOnePerCell(t *testing.T) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, cluster := range h.fleet.Clusters {
		name := cluster[strings.LastIndex(cluster, "/")+1:]
		id := h.group + "/providers/Microsoft.NetworkCloud/bareMetalMachines/" + name + "r1m1"
		if err := h.agents.Stop(id); err != nil {
			t.Fatal(err)
		}
		h.stopped[id] = true
		out = append(out, id)
	}
	return out
}

// notReady lists the machines whose state is not Ready, with it, but for
// those whose agents were stopped.
func (h *haFleet) notReady(states map[string]string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for id, s := range states {
		if s != "Ready" && !h.stopped[id] {
			out = append(out, fmt.Sprintf("%s: %s", id[strings.LastIndex(id, "/")+1:], s))
		}
	}
	slices.Sort(out)
	return out
}

// watch samples every machine's liveness through c every 2 s until stop
// closes, and returns what it saw of machines that were not Ready (a
// failover must not make any machine whose agent runs look silent), the
// samples that could not be taken, and the last sample.
func (h *haFleet) watch(t *testing.T, c *client.Client, stop <-chan struct{}) func() (samples int, bad, errs []string, last map[string]string) {
	var samples int
	var bad, errs []string
	var last map[string]string
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for {
			at := time.Since(start).Round(time.Second)
			if states, err := h.liveness(t.Context(), c); err != nil {
				errs = append(errs, fmt.Sprintf("at %v: %v", at, err))
			} else {
				samples, last = samples+1, states
				for _, m := range h.notReady(states) {
					bad = append(bad, fmt.Sprintf("at %v: %s", at, m))
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return func() (int, []string, []string, map[string]string) {
		<-done
		return samples, bad, errs, last
	}
}

// cellsOwned is how many cells each replica holds the liveness of, from
// its metrics.
func cellsOwned(clients []*client.Client) ([]int, error) {
	out := make([]int, len(clients))
	for i, c := range clients {
		resp, err := c.HTTP.Get(c.Creds.ARMEndpoint + "metrics")
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "citadel_fleet_cells_owned "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				out[i] = int(f)
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
