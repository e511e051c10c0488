package host

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

func simInventory() agentapi.Inventory {
	return agentapi.Inventory{
		Hostname:    "bm-r01-c01",
		CPU:         agentapi.CPU{Model: "Intel(R) Xeon(R) Platinum 8480+", Sockets: 2, Cores: 112, Threads: 224, Flags: []string{"amx_tile", "avx512f"}},
		MemoryBytes: 16 * 64 << 30,
		Disks:       []agentapi.Disk{{Name: "nvme0n1", SizeBytes: 7_680_000_000_000}},
		NICs:        []agentapi.NIC{{Name: "eno1", MAC: "b4:96:91:aa:bb:01", SpeedMbps: 25000, Up: true}},
		GPUs:        []agentapi.GPU{{PCIAddress: "0000:17:00.0", VendorID: "0x10de", DeviceID: "0x2330", Vendor: "NVIDIA", Class: "0x030200"}},
		OS:          agentapi.OS{Name: "Citadel Host OS", Version: "4.1", Kernel: "6.12.0-citadel"},
	}
}

func TestSimCopies(t *testing.T) {
	in := simInventory()
	s := NewSim(in)
	in.CPU.Flags[0] = "changed by the caller"
	in.Disks[0].Name = "changed by the caller"

	got, err := s.Inventory(t.Context())
	if err != nil {
		t.Fatalf("Inventory() error: %v", err)
	}
	if diff := cmp.Diff(simInventory(), got); diff != "" {
		t.Fatalf("Inventory() after the caller changed NewSim's argument (-want +got):\n%s", diff)
	}
	got.NICs[0].Up = false
	got.GPUs[0].Vendor = "changed by the caller"
	if again, _ := s.Inventory(t.Context()); !cmp.Equal(again, simInventory()) {
		t.Errorf("Inventory() after the caller changed a result = %+v, want it unchanged", again)
	}
}

func TestSimSetInventory(t *testing.T) {
	s := NewSim(simInventory())
	// A DIMM fails: the machine boots with one less.
	failed := simInventory()
	failed.MemoryBytes -= 64 << 30
	s.SetInventory(failed)
	failed.MemoryBytes = 0

	got, err := s.Inventory(t.Context())
	if err != nil {
		t.Fatalf("Inventory() error: %v", err)
	}
	if want := uint64(15 * 64 << 30); got.MemoryBytes != want {
		t.Errorf("Inventory().MemoryBytes = %d after a DIMM failed, want %d", got.MemoryBytes, want)
	}
}

func TestSimConcurrent(t *testing.T) {
	s := NewSim(simInventory())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				if i%2 == 0 {
					inv := simInventory()
					inv.MemoryBytes = uint64(j)
					s.SetInventory(inv)
					continue
				}
				inv, err := s.Inventory(t.Context())
				if err != nil {
					t.Errorf("Inventory() error: %v", err)
					return
				}
				inv.CPU.Flags[0] = "mine"
			}
		})
	}
	wg.Wait()
}

func TestSimCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := NewSim(simInventory()).Inventory(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Inventory(canceled) error = %v, want context.Canceled", err)
	}
}

func TestSimUpdates(t *testing.T) {
	ctx := t.Context()
	s := NewSim(simInventory())
	runtime := func() agentapi.Runtime {
		inv, _ := s.Inventory(ctx)
		return inv.Runtime
	}
	apply := func(version string) {
		t.Helper()
		if err := s.Apply(ctx, agentapi.Desired{ClusterVersion: version,
			Artifacts: []agentapi.Artifact{{Name: "node-image", SHA256: version + "-digest"}}}); err != nil {
			t.Fatal(err)
		}
	}
	apply("4.1.0") // the version its OS image was installed with: taken at once
	if rt := runtime(); rt.ClusterVersion != "4.1.0" || len(rt.Staged) != 0 {
		t.Errorf("after the first desired state: %+v, want 4.1.0 and nothing staged", rt)
	}
	s.SetUpdateBehavior(UpdateBehavior{Duration: 20 * time.Millisecond})
	apply("4.2.0")
	if rt := runtime(); rt.ClusterVersion != "4.2.0" || rt.UpdateError != "" || !slices.Contains(rt.Staged, "4.2.0-digest") {
		t.Errorf("after an update: %+v, want 4.2.0 with its artifact", rt)
	}

	s.FailNextUpdate()
	apply("4.3.0")
	rt := runtime()
	if rt.ClusterVersion != "4.2.0" || rt.UpdateVersion != "4.3.0" || !strings.Contains(rt.UpdateError, "failed") {
		t.Errorf("after a failed update: %+v, want 4.2.0 kept and the failure of 4.3.0", rt)
	}
	apply("4.3.0") // asked again: still failed, until the desired version changes
	if rt := runtime(); rt.UpdateError == "" {
		t.Errorf("the failed update was retried on its own: %+v", rt)
	}
	apply("4.2.0") // rolled back
	if rt := runtime(); rt.ClusterVersion != "4.2.0" || rt.UpdateError != "" || rt.UpdateVersion != "" {
		t.Errorf("after the rollback: %+v, want 4.2.0 and no failure", rt)
	}
	apply("4.3.0") // tried again, succeeds
	if rt := runtime(); rt.ClusterVersion != "4.3.0" {
		t.Errorf("after the retry: %+v, want 4.3.0", rt)
	}

	s.SetUpdateBehavior(UpdateBehavior{FailureRate: 1})
	apply("4.4.0")
	if rt := runtime(); rt.UpdateError == "" {
		t.Errorf("FailureRate 1 let the update through: %+v", rt)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Apply(cancelled, agentapi.Desired{ClusterVersion: "4.5.0"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply on a canceled context = %v", err)
	}
}
