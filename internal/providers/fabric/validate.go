package fabric

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// validateConfiguration: {validateAction: Cabling | Configuration |
// Connectivity}. Cabling compares the expected cables with what LLDP
// hears, at the machines' NICs (their agents' inventory) and at the
// devices' ports; Configuration compares every device's running
// configuration with its intended one; Connectivity checks that every
// device runs its configuration and hears its neighbours.
type validationRequest struct {
	ValidateAction string `json:"validateAction"`
}

func validateValidation(_ context.Context, _ *resource.Resource, input json.RawMessage) error {
	var in validationRequest
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if !slices.Contains([]string{"Cabling", "Configuration", "Connectivity"}, in.ValidateAction) {
		return arm.FieldError("validateAction", "validateAction must be Cabling, Configuration or Connectivity, not '%s'.", in.ValidateAction)
	}
	return nil
}

// finding is one problem a validation found.
type finding struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

func (p *Provider) validateConfiguration(ctx context.Context, t *resource.Task) (any, error) {
	var in validationRequest
	if err := t.Input(&in); err != nil {
		return nil, err
	}
	devices, err := p.fabricDevices(ctx, t.Resource.ID)
	if err != nil {
		return nil, err
	}
	var findings []finding
	switch in.ValidateAction {
	case "Cabling":
		findings, err = p.checkCabling(ctx, t.Resource, devices)
	case "Configuration":
		findings = checkConfigurations(devices)
	case "Connectivity":
		findings, err = checkConnectivity(t.Resource, devices)
	}
	if err != nil {
		return nil, err
	}
	out := map[string]any{"configurationState": stateSucceeded}
	if len(findings) > 0 {
		msgs := make([]string, len(findings))
		for i, f := range findings {
			msgs[i] = f.Message
		}
		out["configurationState"] = stateFailed
		out["error"] = map[string]any{"code": in.ValidateAction + "ValidationFailed",
			"message": fmt.Sprintf("%s validation found %d problem(s): %s", in.ValidateAction, len(findings), strings.Join(msgs, "; ")),
			"details": findings}
	}
	t.Resource.Properties["lastOperation"] = map[string]any{"details": fmt.Sprintf("%s validation: %d problem(s) at %s", in.ValidateAction, len(findings), now())}
	return out, nil
}

// checkCabling judges the fabric's cables by what LLDP hears on them.
func (p *Provider) checkCabling(ctx context.Context, fabric *resource.Resource, devices []*resource.Resource) ([]finding, error) {
	topo, err := topology(fabric)
	if err != nil {
		return nil, err
	}
	var observed []network.Observation
	for _, d := range devices {
		for _, n := range deviceOf(d).Neighbors {
			observed = append(observed, network.Observation{At: network.Endpoint{Device: d.Name, Port: n.LocalPort},
				SystemName: n.SystemName, PortID: n.PortID})
		}
	}
	servers, err := p.serverObservations(ctx, fabric, topo)
	if err != nil {
		return nil, err
	}
	observed = append(observed, servers...)
	var out []finding
	for _, f := range network.ValidateCabling(topo, observed) {
		var ports []string
		for _, e := range f.Ports {
			ports = append(ports, e.String())
		}
		out = append(out, finding{Code: "Cabling" + strings.ToUpper(f.Kind[:1]) + f.Kind[1:], Message: f.Message, Target: strings.Join(ports, ", ")})
	}
	return out, nil
}

// serverObservations are what the machines' NICs hear, placed by the
// network rack their cluster's rack definition names and their slot.
func (p *Provider) serverObservations(ctx context.Context, fabric *resource.Resource, topo network.Topology) ([]network.Observation, error) {
	clusters, err := p.svc.ResourcesOfType(ctx, "Microsoft.NetworkCloud/clusters")
	if err != nil {
		return nil, err
	}
	rackOf := map[string]string{} // a cluster rack's ID → the fabric rack's name
	for _, c := range clusters {
		if !strings.EqualFold(str(c.Properties, "networkFabricId"), fabric.ID) {
			continue
		}
		var props struct {
			Compute []struct {
				NetworkRackID string `json:"networkRackId"`
			} `json:"computeRackDefinitions"`
		}
		decode(c.Properties, &props)
		id, err := arm.ParseID(c.ID)
		if err != nil {
			continue
		}
		for j, def := range props.Compute {
			// A cluster's racks are "{cluster}-rack{i}", 0 the aggregator.
			if name := fabricRackName(fabric.Name, def.NetworkRackID); name != "" {
				rack := fmt.Sprintf("%s/providers/Microsoft.NetworkCloud/racks/%s-rack%d", id.ResourceGroupID(), id.Name(), j+1)
				rackOf[strings.ToLower(rack)] = name
			}
		}
	}
	machines, err := p.svc.ResourcesOfType(ctx, "Microsoft.NetworkCloud/bareMetalMachines")
	if err != nil {
		return nil, err
	}
	var out []network.Observation
	for _, m := range machines {
		rack, ok := rackOf[strings.ToLower(str(m.Properties, "rackId"))]
		if !ok {
			continue
		}
		slot, _ := strconv.Atoi(fmt.Sprint(m.Properties["rackSlot"]))
		var inv agentapi.Inventory
		if decode(m.Properties["agentInventory"], &inv) != nil {
			continue
		}
		for i, nic := range inv.NICs {
			if nic.Neighbor == nil {
				continue
			}
			// The plan names a server's NICs by position: eth0 is its first.
			out = append(out, network.Observation{At: network.Endpoint{Rack: rack, Slot: slot, Port: fmt.Sprintf("eth%d", i)},
				SystemName: nic.Neighbor.SystemName, PortID: nic.Neighbor.PortID})
		}
	}
	return out, nil
}

// fabricRackName is the plan's name of the network rack networkRackID
// ("{fabric}-CompRack2" → "CompRack2"), or "" when it is not the
// fabric's.
func fabricRackName(fabric, networkRackID string) string {
	name := nameOf(networkRackID)
	if !strings.HasPrefix(strings.ToLower(name), strings.ToLower(fabric)+"-") {
		return ""
	}
	return name[len(fabric)+1:]
}

// checkConfigurations lists the devices that run something else than
// they were given.
func checkConfigurations(devices []*resource.Resource) []finding {
	var out []finding
	for _, d := range devices {
		ds := deviceOf(d)
		switch {
		case ds.Intended == nil:
			out = append(out, finding{Code: "NotProvisioned", Message: d.Name + " has no configuration", Target: d.ID})
		case ds.Applied < ds.Intended.Revision:
			out = append(out, finding{Code: "NotApplied", Message: fmt.Sprintf("%s runs revision %d of its configuration, not %d", d.Name, ds.Applied, ds.Intended.Revision), Target: d.ID})
		case ds.Drift.Status == "Drifted":
			out = append(out, finding{Code: "Drifted", Message: d.Name + " drifted: " + strings.Join(ds.Drift.Items, "; "), Target: d.ID})
		}
	}
	return out
}

// checkConnectivity checks that every device runs its configuration and
// that both ends of every device-to-device cable hear each other.
func checkConnectivity(fabric *resource.Resource, devices []*resource.Resource) ([]finding, error) {
	topo, err := topology(fabric)
	if err != nil {
		return nil, err
	}
	byName := map[string]deviceState{}
	for _, d := range devices {
		byName[strings.ToLower(d.Name)] = deviceOf(d)
	}
	var out []finding
	for _, d := range devices {
		if ds := byName[strings.ToLower(d.Name)]; ds.Intended == nil || ds.Applied < ds.Intended.Revision {
			out = append(out, finding{Code: "Unreachable", Message: d.Name + " does not run its configuration", Target: d.ID})
		}
	}
	hears := func(at network.Endpoint, far network.Endpoint) bool {
		host := ""
		for _, dev := range topo.Devices {
			if dev.Name == far.Device {
				host = dev.Hostname
			}
		}
		return slices.ContainsFunc(byName[strings.ToLower(at.Device)].Neighbors, func(n agentapi.Neighbor) bool {
			return n.LocalPort == at.Port && strings.EqualFold(n.SystemName, host) && n.PortID == far.Port
		})
	}
	for _, l := range topo.Links {
		if l.A.Device == "" || l.B.Device == "" || l.A.Port == "Management0" || l.B.Port == "Management0" {
			continue // servers and management ports are the cabling check's
		}
		if !hears(l.A, l.B) || !hears(l.B, l.A) {
			out = append(out, finding{Code: "LinkDown", Message: fmt.Sprintf("%s and %s do not hear each other", l.A, l.B)})
		}
	}
	return out, nil
}

// sortIntent orders the intent's lists by name, so that rendering does
// not depend on the order resources were read in.
func sortIntent(in *network.Intent) {
	slices.SortFunc(in.L2Domains, func(a, b network.L2Domain) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(in.L3Domains, func(a, b network.L3Domain) int { return cmp.Compare(a.Name, b.Name) })
	for _, d := range in.L3Domains {
		slices.SortFunc(d.Networks, func(a, b network.InternalNetwork) int { return cmp.Compare(a.Name, b.Name) })
		slices.SortFunc(d.ExternalNetworks, func(a, b network.ExternalNetwork) int { return cmp.Compare(a.Name, b.Name) })
	}
	slices.SortFunc(in.ACLs, func(a, b network.ACL) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(in.RoutePolicies, func(a, b network.RoutePolicy) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(in.PrefixLists, func(a, b network.PrefixList) int { return cmp.Compare(a.Name, b.Name) })
}

func itoa(i int) string { return strconv.Itoa(i) }
