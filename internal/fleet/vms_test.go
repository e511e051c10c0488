package fleet

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

const testGroup = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.NetworkCloud/"

func machineID(name string) string { return testGroup + "bareMetalMachines/" + name }
func vmID(name string) string      { return testGroup + "virtualMachines/" + name }

// newResources is a resource service on a real store with the two types
// the fleet reads and writes, the machines' VM list hidden as the
// NetworkCloud provider declares it.
func newResources(t *testing.T) *resource.Service {
	t.Helper()
	svc := resource.NewService(resource.Config{Store: storetest.Start(t), Location: "local",
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	svc.Register(
		&resource.Type{Namespace: "Microsoft.NetworkCloud", Name: "bareMetalMachines", APIVersions: []string{"2025-02-01"},
			Tracked: true, SystemManaged: true, Sensitive: []string{"virtualMachines"}},
		&resource.Type{Namespace: "Microsoft.NetworkCloud", Name: "virtualMachines", APIVersions: []string{"2025-02-01"}, Tracked: true},
	)
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return svc
}

func mustParse(t *testing.T, s string) arm.ID {
	t.Helper()
	id, err := arm.ParseID(s)
	if err != nil {
		t.Fatalf("ParseID(%q): %v", s, err)
	}
	return id
}

// put stores a resource with props, as its provider would.
func put(t *testing.T, svc *resource.Service, id string, props map[string]any) {
	t.Helper()
	if _, err := svc.Upsert(t.Context(), mustParse(t, id), func(r *resource.Resource, _ bool) error {
		for k, v := range props {
			r.Properties[k] = v
		}
		return nil
	}); err != nil {
		t.Fatalf("Upsert(%s): %v", id, err)
	}
}

// TestWriteVMs: a VM's status is written when it changes, only to a VM
// placed on the reporting machine, and never to one that is gone.
func TestWriteVMs(t *testing.T) {
	svc := newResources(t)
	s := New(Config{Resources: svc, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	m1 := peer{id: mustParse(t, machineID("m1")), name: machineID("m1")}
	put(t, svc, vmID("a"), map[string]any{"bareMetalMachineId": machineID("m1"), "detailedStatus": "Provisioning"})
	put(t, svc, vmID("moved"), map[string]any{"bareMetalMachineId": machineID("m2"), "powerState": "On", "detailedStatus": "Running"})

	type view struct {
		ETag  string
		Props map[string]any
	}
	read := func(name string) view {
		t.Helper()
		r, err := svc.Lookup(t.Context(), mustParse(t, vmID(name)))
		if err != nil {
			t.Fatalf("Lookup(%s): %v", name, err)
		}
		props := map[string]any{}
		for _, k := range []string{"powerState", "detailedStatus", "detailedStatusMessage", "reportedRestarts", "reportedReimages"} {
			if v, ok := r.Properties[k]; ok {
				props[k] = v
			}
		}
		return view{r.ETag, props}
	}
	on := agentapi.VMStatus{ID: vmID("a"), Power: "On", Restarts: 1}
	running := map[string]any{"powerState": "On", "detailedStatus": "Running", "detailedStatusMessage": "The virtual machine is running.",
		"reportedRestarts": float64(1), "reportedReimages": float64(0)}

	// The first report is written.
	s.writeVMs(t.Context(), m1, []agentapi.VMStatus{on})
	first := read("a")
	if diff := cmp.Diff(running, first.Props); diff != "" {
		t.Fatalf("VM a after its first report (-want +got):\n%s", diff)
	}

	// The same report again is not: what changed the resource since
	// (here by hand) stays.
	put(t, svc, vmID("a"), map[string]any{"detailedStatusMessage": "changed since"})
	changedSince := read("a")
	s.writeVMs(t.Context(), m1, []agentapi.VMStatus{on})
	if got := read("a"); got.ETag != changedSince.ETag {
		t.Errorf("writeVMs(unchanged status) wrote VM a: etag %s, want %s", got.ETag, changedSince.ETag)
	}

	// A change is written, with the error the VM reports.
	failed := agentapi.VMStatus{ID: vmID("a"), Power: "Off", Restarts: 1, Reimages: 2, Error: "image not staged"}
	s.writeVMs(t.Context(), m1, []agentapi.VMStatus{failed})
	want := map[string]any{"powerState": "Off", "detailedStatus": "Error", "detailedStatusMessage": "image not staged",
		"reportedRestarts": float64(1), "reportedReimages": float64(2)}
	if diff := cmp.Diff(want, read("a").Props); diff != "" {
		t.Errorf("VM a after it failed (-want +got):\n%s", diff)
	}

	// A VM its host stopped for its move says so, in its message and
	// its hidden evicted property.
	s.writeVMs(t.Context(), m1, []agentapi.VMStatus{{ID: vmID("a"), Power: "Off", Restarts: 1, Reimages: 2, Evicted: true}})
	r, err := svc.Lookup(t.Context(), mustParse(t, vmID("a")))
	if err != nil {
		t.Fatal(err)
	}
	if r.Properties["evicted"] != true || r.Properties["detailedStatusMessage"] != "The virtual machine is stopped to move to another machine." {
		t.Errorf("VM a stopped for its move: evicted %v, message %q", r.Properties["evicted"], r.Properties["detailedStatusMessage"])
	}

	// A VM placed on another machine is not written by m1, nor is one
	// that is gone created; both are checked again at the next report.
	moved := read("moved")
	gone := agentapi.VMStatus{ID: vmID("gone"), Power: "On"}
	for range 2 {
		s.writeVMs(t.Context(), m1, []agentapi.VMStatus{failed, {ID: vmID("moved"), Power: "Off"}, gone})
	}
	if got := read("moved"); got.ETag != moved.ETag {
		t.Errorf("m1's report of a VM on m2 wrote it: %v, want %v", got.Props, moved.Props)
	}
	if _, err := svc.Lookup(t.Context(), mustParse(t, vmID("gone"))); err == nil {
		t.Errorf("m1's report of a VM that is gone created it")
	}
	s.mu.Lock()
	remembered := len(s.vms[m1.name])
	s.mu.Unlock()
	if remembered != 1 {
		t.Errorf("the fleet remembers %d VMs of m1, want 1 (a; not the moved VM or the gone one)", remembered)
	}

	// Once the VM is placed on m1 (it moved back), m1's report is
	// written.
	put(t, svc, vmID("moved"), map[string]any{"bareMetalMachineId": machineID("m1")})
	s.writeVMs(t.Context(), m1, []agentapi.VMStatus{failed, {ID: vmID("moved"), Power: "Off"}})
	if got := read("moved").Props["detailedStatus"]; got != "Stopped" {
		t.Errorf("VM moved back to m1: detailedStatus %v, want Stopped", got)
	}

	// Statuses that changed together are written together, in one
	// transaction.
	put(t, svc, vmID("b"), map[string]any{"bareMetalMachineId": machineID("m1")})
	s.writeVMs(t.Context(), m1, []agentapi.VMStatus{on, {ID: vmID("moved"), Power: "On"}, {ID: vmID("b"), Power: "On"}})
	if a, moved, b := read("a"), read("moved"), read("b"); a.ETag != b.ETag || moved.ETag != b.ETag || b.Props["powerState"] != "On" {
		t.Errorf("three VMs' statuses written at etags %s, %s, %s (b %v), want one write", a.ETag, moved.ETag, b.ETag, b.Props)
	}
	s.writeVMs(t.Context(), m1, []agentapi.VMStatus{failed})

	// Another replica (or this one restarted) knows nothing of what was
	// written, reads it and finds nothing to write.
	before := read("a")
	New(Config{Resources: svc, Logger: s.cfg.Logger}).writeVMs(t.Context(), m1, []agentapi.VMStatus{failed})
	if got := read("a"); got.ETag != before.ETag {
		t.Errorf("a new replica wrote VM a's unchanged status: etag %s, want %s", got.ETag, before.ETag)
	}
}

// TestDesiredVMs: the machine's hidden virtualMachines list, which
// responses leave out, reaches its agent's desired state through the
// projection, which reads the stored resource.
func TestDesiredVMs(t *testing.T) {
	svc := newResources(t)
	vms := []agentapi.VM{{ID: vmID("a"), Name: "a", Power: "On", Cores: 2, MemoryMiB: 4096, UserData: "#cloud-config\npassword: secret\n",
		Image: agentapi.Artifact{Name: "ubuntu", Kind: "vmImage", SHA256: "ab", Size: 2},
		NICs:  []agentapi.VMNIC{{Name: "eth0", VLAN: 501, MAC: "02:00:00:00:00:01", IPv4: "10.0.0.5/24"}}}}
	var list any
	if err := roundTrip(vms, &list); err != nil {
		t.Fatal(err)
	}
	put(t, svc, machineID("m1"), map[string]any{"cordonStatus": "Uncordoned", "virtualMachines": list})

	mirror, err := resource.MirrorProjection[machineProps](t.Context(), svc, "Microsoft.NetworkCloud/bareMetalMachines")
	if err != nil {
		t.Fatalf("MirrorProjection: %v", err)
	}
	props, rev, ok := mirror.Get(mustParse(t, machineID("m1")))
	if !ok {
		t.Fatalf("the projection has no machine m1")
	}
	if diff := cmp.Diff(vms, props.desired(rev).VMs); diff != "" {
		t.Errorf("desired VMs (-want +got):\n%s", diff)
	}
	typ, _ := svc.TypeOf("Microsoft.NetworkCloud/bareMetalMachines")
	r, err := svc.Lookup(t.Context(), mustParse(t, machineID("m1")))
	if err != nil {
		t.Fatal(err)
	}
	if shown := typ.Shown(r.Properties); shown["virtualMachines"] != nil {
		t.Errorf("a response shows the machine's virtualMachines: %v", shown["virtualMachines"])
	}
}

func roundTrip(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
