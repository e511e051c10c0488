package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent"
	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/machine"
)

// A fleet is many machines with an agent and nothing else: unlike a Site
// they have no BMC (their addresses answer nothing) and their clusters are
// defined but never deployed. Liveness needs only the agents, so a fleet
// is how the benchmark and the tests put thousands of machines in front of
// a control plane.

// The API versions a fleet is defined with.
const (
	fleetAPI      = "2026-07-01"
	fleetGroupAPI = "2021-04-01"
)

// MaxPerCluster is the most machines one multi-rack cluster of a fleet
// holds: the aggregator's 3 controllers and 16 compute racks of 16.
const MaxPerCluster = 3 + 16*16

// minPerCluster is the fewest: the aggregator's 3 controllers and 3
// compute racks of one, the least a multi-rack cluster has.
const minPerCluster = 3 + 3

// FleetSpec is the shape of a fleet.
type FleetSpec struct {
	// Group names the resource group the fleet's cluster manager and
	// clusters are defined in.
	Group string
	// Machines is how many machines the fleet has at least, in clusters
	// of PerCluster (from 6 to MaxPerCluster); the last cluster holds the
	// rest, and 6 if fewer are left.
	Machines, PerCluster int
	// Version is the clusters' version.
	Version string
}

// Fleet is a defined fleet: JSON, so that the process that defines it
// can hand it to the one that runs its agents.
type Fleet struct {
	// Clusters are the clusters' ARM IDs.
	Clusters []string       `json:"clusters"`
	Machines []FleetMachine `json:"machines"`
}

// FleetMachine is a machine of a fleet: the ARM ID of its
// bareMetalMachine, which its agent names, and the bootstrap token of its
// cluster.
type FleetMachine struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// DefineFleet creates a fleet through the ARM API, as any client could:
// the resource group, a cluster manager and the clusters, each with a
// bootstrap token from its issueAgentToken action, valid for an hour. The
// clusters are not deployed, so the control plane never reaches for their
// BMCs. The control plane's image catalog must hold an install image for
// spec.Version, as a deployment would need it; putting one there is the
// caller's job, since only the caller knows where the control plane keeps
// its data. progress, if not nil, hears of each cluster.
func DefineFleet(ctx context.Context, c *client.Client, location string, spec FleetSpec,
	progress func(format string, a ...any)) (Fleet, error) {
	var f Fleet
	if spec.Group == "" || spec.Version == "" || spec.Machines < 1 || spec.PerCluster < minPerCluster || spec.PerCluster > MaxPerCluster {
		return f, fmt.Errorf("fleet spec %+v: a group, a version, machines, and from %d to %d per cluster are needed",
			spec, minPerCluster, MaxPerCluster)
	}
	if progress == nil {
		progress = func(string, ...any) {}
	}
	group := "/subscriptions/" + c.Creds.SubscriptionID + "/resourceGroups/" + spec.Group
	nc := group + "/providers/Microsoft.NetworkCloud/"
	if err := put(ctx, c, group+"?api-version="+fleetGroupAPI, map[string]any{"location": location}); err != nil {
		return f, fmt.Errorf("resource group %s: %w", spec.Group, err)
	}
	cm := nc + "clusterManagers/cm?api-version=" + fleetAPI
	if err := put(ctx, c, cm, map[string]any{"location": location, "properties": map[string]any{
		"fabricControllerId": group + "/providers/Microsoft.ManagedNetworkFabric/networkFabricControllers/nfc"}}); err != nil {
		return f, fmt.Errorf("cluster manager: %w", err)
	}
	r, err := c.Do(ctx, http.MethodGet, cm, nil)
	if err != nil {
		return f, fmt.Errorf("cluster manager: %w", err)
	}
	var manager struct {
		Properties struct {
			ManagerExtendedLocation struct{ Name string } `json:"managerExtendedLocation"`
		} `json:"properties"`
	}
	if err := r.Expect(http.StatusOK); err != nil {
		return f, fmt.Errorf("cluster manager: %w", err)
	}
	if err := json.Unmarshal(r.Body, &manager); err != nil {
		return f, fmt.Errorf("cluster manager: %w", err)
	}
	for i := 0; len(f.Machines) < spec.Machines; i++ {
		name := fmt.Sprintf("cell%d", i)
		cluster := nc + "clusters/" + name
		props, names := fleetCluster(name, i, min(spec.Machines-len(f.Machines), spec.PerCluster), group)
		props["clusterVersion"] = spec.Version
		progress("defining cluster %s of %d machines", name, len(names))
		if err := put(ctx, c, cluster+"?api-version="+fleetAPI, map[string]any{"location": location,
			"extendedLocation": map[string]string{"name": manager.Properties.ManagerExtendedLocation.Name, "type": "CustomLocation"},
			"properties":       props}); err != nil {
			return f, fmt.Errorf("cluster %s: %w", name, err)
		}
		token, err := IssueAgentToken(ctx, c, cluster, time.Hour)
		if err != nil {
			return f, err
		}
		f.Clusters = append(f.Clusters, cluster)
		for _, n := range names {
			f.Machines = append(f.Machines, FleetMachine{ID: nc + "bareMetalMachines/" + n, Token: token})
		}
	}
	return f, nil
}

// put creates or updates the resource at path (its query included) and
// waits for it.
func put(ctx context.Context, c *client.Client, path string, body any) error {
	r, err := c.Do(ctx, http.MethodPut, path, body)
	if err != nil {
		return err
	}
	if err := r.Expect(http.StatusOK, http.StatusCreated); err != nil {
		return err
	}
	_, err = c.Wait(ctx, r, nil)
	return err
}

// IssueAgentToken is a bootstrap token for every machine of the cluster
// with ARM ID cluster, from its issueAgentToken action: the action's
// result, which the operation's status holds, is the only place the
// token is ever shown.
func IssueAgentToken(ctx context.Context, c *client.Client, cluster string, validFor time.Duration) (string, error) {
	r, err := c.Do(ctx, http.MethodPost, cluster+"/issueAgentToken?api-version="+fleetAPI,
		map[string]any{"validForMinutes": int(validFor / time.Minute)})
	if err != nil {
		return "", fmt.Errorf("cluster %s: issueAgentToken: %w", cluster, err)
	}
	if err := r.Expect(http.StatusAccepted); err != nil {
		return "", fmt.Errorf("cluster %s: issueAgentToken: %w", cluster, err)
	}
	op, err := c.Wait(ctx, r, nil)
	if err != nil {
		return "", fmt.Errorf("cluster %s: issueAgentToken: %w", cluster, err)
	}
	var token struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(op.Properties, &token); err != nil || token.Token == "" {
		return "", fmt.Errorf("cluster %s: issueAgentToken returned no token: %s", cluster, op.Properties)
	}
	return token.Token, nil
}

// fleetCluster is the definition of cluster number i with n machines
// (at least 3 + 3, whatever n says): the aggregator's controllers, then
// compute racks of up to 16, at least 3 of them. Each machine has an
// identity of its own; its BMC address is on 127.2.i.0/24 and answers
// nothing. It returns the machines' names too.
func fleetCluster(name string, i, n int, group string) (map[string]any, []string) {
	var names []string
	mc := func(rack, slot int) map[string]any {
		id := fmt.Sprintf("%sr%dm%d", name, rack, slot)
		names = append(names, id)
		k := len(names)
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
	return map[string]any{"clusterType": "MultiRack",
		"networkFabricId":                  group + "/providers/Microsoft.ManagedNetworkFabric/networkFabrics/" + name,
		"aggregatorOrSingleRackDefinition": agg, "computeRackDefinitions": compute}, names
}

// FleetAgentsSpec is what a process that runs a fleet's agents is given
// (`citadel bench fleet-agents SPEC-FILE`, which stops the agent of a
// machine when its standard input says "kill <machine ID>"): the agent
// APIs of the control plane's replicas, their CA, and the fleet.
type FleetAgentsSpec struct {
	Servers []string `json:"servers"`
	CA      string   `json:"ca"`
	Fleet   Fleet    `json:"fleet"`
}

// FleetAgentOptions say how a fleet's agents run.
type FleetAgentOptions struct {
	// Servers are the agent APIs, of the control plane's replicas: the
	// agent of the fleet's machine i talks to Servers[i%len(Servers)].
	// ServerCA is the CA of their certificates.
	Servers  []string
	ServerCA []byte
	// Transport is the base every agent's transport is made from, which
	// shares its dialer; nil is a default one. Thousands of agents stay
	// within the open-file limit with keep-alives disabled: each agent has
	// a TLS identity of its own, so they cannot share connections.
	Transport *http.Transport
	// NoWatch turns the agents' long poll of their desired state off: a
	// heartbeat's answer says when to fetch it.
	NoWatch bool
	Logger  *slog.Logger
}

// FleetAgents run the real agent code for each machine of a fleet, on a
// simulated host with a fixed inventory.
type FleetAgents struct {
	fleet Fleet
	opts  FleetAgentOptions
	index map[string]int // machine ID to its index in fleet.Machines

	mu      sync.Mutex
	stopped map[string]bool
	cancels map[string]context.CancelFunc
}

// fleetInventory is what every fleet machine's agent finds on its host.
var fleetInventory = agentapi.Inventory{CPU: agentapi.CPU{Model: "Intel Xeon Gold 6548Y+", Sockets: 2, Cores: 64, Threads: 128},
	MemoryBytes: 512 << 30}

// NewFleetAgents prepares the agents of f's machines; Run runs them.
func NewFleetAgents(f Fleet, opts FleetAgentOptions) *FleetAgents {
	if opts.Transport == nil {
		opts.Transport = &http.Transport{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &FleetAgents{fleet: f, opts: opts, index: map[string]int{}, stopped: map[string]bool{}, cancels: map[string]context.CancelFunc{}}
	for i, m := range f.Machines {
		a.index[m.ID] = i
	}
	return a
}

// Run starts an agent per machine, a hundred every 50 ms since machines
// power on over a while, not in one instant, and returns when ctx ends
// and every agent has stopped.
func (a *FleetAgents) Run(ctx context.Context) error {
	if len(a.opts.Servers) == 0 {
		return errors.New("fleet agents: no server")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, m := range a.fleet.Machines {
		actx, cancel := context.WithCancel(ctx) // ends with ctx, or earlier with Stop
		a.mu.Lock()
		stopped := a.stopped[m.ID]
		a.cancels[m.ID] = cancel
		a.mu.Unlock()
		if !stopped {
			ag := agent.New(agent.Config{Server: a.opts.Servers[i%len(a.opts.Servers)], ServerCA: a.opts.ServerCA, Machine: m.ID,
				Token: m.Token, Host: host.NewSim(fleetInventory), Transport: a.opts.Transport, NoWatch: a.opts.NoWatch,
				Logger: a.opts.Logger})
			wg.Go(func() {
				if err := ag.Run(actx); err != nil {
					a.opts.Logger.ErrorContext(ctx, "agent ended", "machine", m.ID, "err", err)
				}
			})
		}
		if i%100 == 99 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	<-ctx.Done()
	return nil
}

// Stop stops the agent of the machine with ARM ID id, as a crash would;
// it does not start again.
func (a *FleetAgents) Stop(id string) error {
	if _, ok := a.index[id]; !ok {
		return fmt.Errorf("%w: %q", ErrNoMachine, id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped[id] = true
	if cancel, ok := a.cancels[id]; ok {
		cancel()
	}
	return nil
}
