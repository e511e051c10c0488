package networkcloud

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Every machine of a cluster carries the cluster's L2 and L3 networks:
// a VLAN on its uplink and a bridge for each, which its agent configures
// (the linux host with netlink) and VMs attach to. The networks are
// written to each machine as hostNetworks, so that a change reaches its
// agent as any change of its desired state does.

// syncHostNetworks gives each machine the networks of its cluster, and
// writes only the machines whose networks changed.
func (p *Provider) syncHostNetworks(ctx context.Context) error {
	byCluster, err := p.clusterNetworks(ctx)
	if err != nil {
		return err
	}
	machines, err := p.svc.ResourcesOfType(ctx, machineType)
	if err != nil {
		return err
	}
	for _, m := range machines {
		want := byCluster[strings.ToLower(str(m.Properties, "clusterId"))]
		if want == nil {
			want = []agentapi.Network{}
		}
		var have []agentapi.Network
		decode(m.Properties["hostNetworks"], &have)
		if reflect.DeepEqual(have, want) || len(have) == 0 && len(want) == 0 {
			continue // none and an empty list are the same to an agent: not a change
		}
		id, err := arm.ParseID(m.ID)
		if err != nil {
			return err
		}
		if err := p.updateProps(ctx, id, func(props map[string]any) { props["hostNetworks"] = jsonValue(want) }); err != nil {
			return err
		}
	}
	return nil
}

// clusterNetworks lists each cluster's L2 and L3 networks, by the
// cluster's lower-cased ID, in VLAN order. An L2 network takes its
// isolation domain's VLAN and MTU.
func (p *Provider) clusterNetworks(ctx context.Context) (map[string][]agentapi.Network, error) {
	out := map[string][]agentapi.Network{}
	add := func(n *resource.Resource, vlan, mtu int) {
		if vlan == 0 || n.ProvisioningState() != resource.StateSucceeded {
			return
		}
		c := strings.ToLower(str(n.Properties, "clusterId"))
		out[c] = append(out[c], agentapi.Network{Name: n.Name, VLAN: vlan, MTU: mtu})
	}
	l2s, err := p.svc.ResourcesOfType(ctx, Namespace+"/l2Networks")
	if err != nil {
		return nil, err
	}
	for _, n := range l2s {
		id, err := arm.ParseID(str(n.Properties, "l2IsolationDomainId"))
		if err != nil {
			continue
		}
		domain, err := p.svc.Lookup(ctx, id)
		if err != nil {
			continue // the domain is gone: nothing to carry
		}
		add(n, int(num(domain.Properties, "vlanId")), int(num(domain.Properties, "mtu")))
	}
	l3s, err := p.svc.ResourcesOfType(ctx, Namespace+"/l3Networks")
	if err != nil {
		return nil, err
	}
	for _, n := range l3s {
		add(n, int(num(n.Properties, "vlan")), 0)
	}
	for c, nets := range out {
		slices.SortStableFunc(nets, func(a, b agentapi.Network) int {
			return cmp.Or(cmp.Compare(a.VLAN, b.VLAN), cmp.Compare(a.Name, b.Name))
		})
		// Two networks on one VLAN are one segment: the host carries it once.
		out[c] = slices.CompactFunc(nets, func(a, b agentapi.Network) bool { return a.VLAN == b.VLAN })
	}
	return out, nil
}
