package sim

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestFleetCluster checks the shape of a fleet's cluster: as many machines
// as asked, six at least, each with MAC addresses of its own.
func TestFleetCluster(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{1, 6}, {6, 6}, {7, 7}, {50, 50}, {MaxPerCluster, MaxPerCluster}} {
		props, names := fleetCluster("cell3", 3, tc.n, "/subscriptions/s/resourceGroups/fleet")
		if len(names) != tc.want {
			t.Errorf("fleetCluster(n=%d) has %d machines, want %d", tc.n, len(names), tc.want)
		}
		racks := append([]any{props["aggregatorOrSingleRackDefinition"]}, props["computeRackDefinitions"].([]any)...)
		macs := map[string]bool{}
		for _, r := range racks {
			for _, m := range r.(map[string]any)["bareMetalMachineConfigurationData"].([]any) {
				for _, k := range []string{"bmcMacAddress", "bootMacAddress"} {
					mac := m.(map[string]any)[k].(string)
					if macs[mac] {
						t.Errorf("fleetCluster(n=%d): MAC address %s twice", tc.n, mac)
					}
					macs[mac] = true
				}
			}
		}
		if len(macs) != 2*tc.want {
			t.Errorf("fleetCluster(n=%d) has %d MAC addresses, want %d", tc.n, len(macs), 2*tc.want)
		}
	}
}

// TestFleet defines a fleet through the ARM API, passes it through JSON
// as the benchmark does, runs its agents with keep-alives until every
// machine is Ready, and stops one agent: its machine becomes NotReady.
func TestFleet(t *testing.T) {
	cp := servertest.Start(t, func(c *server.Config) {
		c.AgentHeartbeat = time.Second
		c.Liveness = liveness.Config{NotReadyAfter: 2 * time.Second, FailedAfter: time.Minute, PartitionWindow: time.Minute, AskEvery: time.Second}
	})
	if err := os.WriteFile(filepath.Join(cp.DataDir, "images", "cluster-4.1.0.iso"), []byte("citadel host OS 4.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := DefineFleet(t.Context(), cp.Client, cp.Creds.Location, FleetSpec{Group: "fleet", Machines: 20, PerCluster: 8, Version: "4.1.0"},
		t.Logf)
	if err != nil {
		t.Fatalf("DefineFleet: %v", err)
	}
	if len(f.Clusters) != 3 || len(f.Machines) != 22 {
		t.Fatalf("DefineFleet of 20 machines by 8 = %d clusters and %d machines, want 3 and 22 (the last cluster has 6)", len(f.Clusters), len(f.Machines))
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Fleet
	if err := json.Unmarshal(b, &back); err != nil || len(back.Machines) != len(f.Machines) || back.Machines[0] != f.Machines[0] {
		t.Fatalf("Fleet through JSON = %+v, %v, want %+v", back, err, f)
	}

	ca, err := os.ReadFile(cp.Creds.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	agents := NewFleetAgents(back, FleetAgentOptions{Servers: []string{cp.AgentURL}, ServerCA: ca,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	victim := back.Machines[5].ID
	if err := agents.Stop("no-such-machine"); !errors.Is(err, ErrNoMachine) {
		t.Errorf("Stop(no-such-machine) = %v, want ErrNoMachine", err)
	}
	done := make(chan error)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- agents.Run(ctx) }()
	tracker := cp.Fleet.Tracker()
	waitFor(t, "every machine Ready", 30*time.Second, func() bool { return tracker.Stats().ByState[liveness.Ready] == len(back.Machines) })
	if err := agents.Stop(victim); err != nil {
		t.Fatalf("Stop(%s) = %v", victim, err)
	}
	waitFor(t, "the stopped machine NotReady", 30*time.Second, func() bool { st, _ := tracker.State(victim); return st == liveness.NotReady })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil once ctx ends", err)
	}
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
