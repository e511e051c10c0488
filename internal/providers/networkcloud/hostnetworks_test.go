package networkcloud

import (
	"slices"
	"testing"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// TestSyncHostNetworks: each machine is given its cluster's networks, and
// a machine whose networks did not change is not written: one with no
// hostNetworks at all has the networks of a cluster without any.
func TestSyncHostNetworks(t *testing.T) {
	e := newMoveEnv(t) // machines without hostNetworks, of a cluster without networks
	etags := func() []string {
		var out []string
		for _, id := range e.machines {
			m, err := e.p.lookup(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m.ETag)
		}
		return out
	}
	before := etags()
	if err := e.p.syncHostNetworks(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := etags(); !slices.Equal(before, after) {
		t.Errorf("machines written by a sync that changed nothing: etags %v → %v", before, after)
	}

	e.mustPut(t, networkID("l3Networks", "app"), map[string]any{"l3IsolationDomainId": l3Domain, "vlan": 501,
		"ipv4ConnectedPrefix": "10.1.0.0/24", "ipAllocationType": "IPV4", "clusterId": clusterID})
	if err := e.p.syncHostNetworks(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range e.machines {
		m, err := e.p.lookup(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var nets []agentapi.Network
		decode(m.Properties["hostNetworks"], &nets)
		if len(nets) != 1 || nets[0].Name != "app" || nets[0].VLAN != 501 {
			t.Errorf("%s: hostNetworks %v, want the cluster's network app on VLAN 501", m.Name, nets)
		}
	}
}
