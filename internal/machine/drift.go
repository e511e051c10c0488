package machine

import (
	"cmp"
	"maps"
	"slices"
)

// Configuration is what a machine runs, as its agent reports it, with the
// release the control plane gave it.
type Configuration struct {
	Name, Cluster, SKU string
	// Release is the cluster version the machine was given (provisioned
	// or updated to); Running is the one its agent says it runs.
	Release, Running  string
	Kernel, OS, Agent string
	// Network is a digest of the machine's network interfaces.
	Network string
}

// DriftItem is one way a machine differs from what it should run.
type DriftItem struct {
	Item     string `json:"item"`
	Desired  string `json:"desired"`
	Observed string `json:"observed"`
}

// The items drift is checked on.
const (
	DriftRelease = "clusterVersion"
	DriftKernel  = "kernel"
	DriftOS      = "osVersion"
	DriftAgent   = "agentVersion"
	DriftNetwork = "networkConfiguration"
)

// DetectDrift finds, for each machine, how it differs from what it should
// run: the release it runs against the one it was given; its kernel, OS
// and agent against what most machines of its cluster on the same release
// run (one image, one agent per release); its network configuration
// against what most machines of its SKU have. Where no value has a
// majority, the item is not judged. Machines in sync have no entry.
func DetectDrift(ms []Configuration) map[string][]DriftItem {
	type group struct{ key, item string }
	values := map[group][]string{}
	add := func(g group, v string) {
		if v != "" {
			values[g] = append(values[g], v)
		}
	}
	release := func(m Configuration) string { return m.Cluster + "\x00" + m.Release }
	for _, m := range ms {
		add(group{release(m), DriftKernel}, m.Kernel)
		add(group{release(m), DriftOS}, m.OS)
		add(group{release(m), DriftAgent}, m.Agent)
		add(group{m.SKU, DriftNetwork}, m.Network)
	}
	desired := map[group]string{}
	for g, vs := range values {
		if v, ok := majority(vs); ok {
			desired[g] = v
		}
	}
	out := map[string][]DriftItem{}
	for _, m := range ms {
		var items []DriftItem
		if m.Running != m.Release {
			items = append(items, DriftItem{Item: DriftRelease, Desired: m.Release, Observed: m.Running})
		}
		for _, c := range []struct {
			g        group
			observed string
		}{
			{group{release(m), DriftKernel}, m.Kernel},
			{group{release(m), DriftOS}, m.OS},
			{group{release(m), DriftAgent}, m.Agent},
			{group{m.SKU, DriftNetwork}, m.Network},
		} {
			if want, ok := desired[c.g]; ok && c.observed != want {
				items = append(items, DriftItem{Item: c.g.item, Desired: want, Observed: c.observed})
			}
		}
		if len(items) > 0 {
			out[m.Name] = items
		}
	}
	return out
}

// majority is the value more than half of vs hold.
func majority(vs []string) (string, bool) {
	counts := map[string]int{}
	for _, v := range vs {
		counts[v]++
	}
	best := slices.MaxFunc(slices.Collect(maps.Keys(counts)), func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[a], counts[b]), cmp.Compare(b, a))
	})
	return best, counts[best]*2 > len(vs)
}
