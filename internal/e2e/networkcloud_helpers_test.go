package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/redfishsim"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

const (
	ncAPI     = "2026-07-01"
	ncVersion = "4.1.0" // the cluster version whose image the tests install
	bmcUser   = "root"
	bmcPass   = "calvin-bmc"
)

// ncBMC is one simulated machine: its hardware, its BMC and where the BMC
// listens.
type ncBMC struct {
	Machine redfishsim.Machine
	BMC     *redfishsim.BMC
	Server  *redfishsim.Server
}

// ncFleet is the simulated hardware of a cluster: one BMC per machine,
// over TLS with self-signed certificates that the connection strings pin.
type ncFleet struct {
	cat   *machine.Catalog
	fleet *redfishsim.Fleet
	opts  redfishsim.Options
	// aggregatorRack, computeRack and computeMachine are the SKUs of the
	// racks newNCCluster defines; empty means the built-in ones.
	aggregatorRack, computeRack, computeMachine string
}

// ncImage puts the OS image of ncVersion into the control plane's image
// catalog.
func ncImage(t testing.TB, dataDir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dataDir, "images", "cluster-"+ncVersion+".iso"), []byte("citadel host OS "+ncVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newNCFleet starts an empty fleet whose BMCs fetch images from the
// control plane cp, as real BMCs do.
func newNCFleet(t testing.TB, cp *servertest.ControlPlane) *ncFleet {
	t.Helper()
	f := &ncFleet{cat: machine.Builtin(), fleet: redfishsim.NewFleet(true), opts: redfishsim.Options{
		Username: bmcUser, Password: bmcPass, PowerOnDelay: 20 * time.Millisecond, PowerOffDelay: 20 * time.Millisecond,
		FetchImages: true, HTTPClient: cp.HTTPClient(t),
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}}
	t.Cleanup(f.fleet.Close)
	return f
}

// add starts the BMC of a machine of SKU sku; change, if not nil, alters
// its hardware or options first.
func (f *ncFleet) add(t testing.TB, sku, serial string, change func(*redfishsim.Machine, *redfishsim.Options)) *ncBMC {
	t.Helper()
	s, ok := f.cat.Machine(sku)
	if !ok {
		t.Fatalf("no machine SKU %s", sku)
	}
	m, opts := redfishsim.ForSKU(s, serial), f.opts
	if change != nil {
		change(&m, &opts)
	}
	b := redfishsim.New(m, opts)
	srv, err := f.fleet.Add(b)
	if err != nil {
		t.Fatal(err)
	}
	return &ncBMC{Machine: m, BMC: b, Server: srv}
}

// connection is the machine's bmcConnectionString, pinning its BMC's
// certificate.
func (b *ncBMC) connection() string {
	return "redfish+" + b.Server.URL + "?fingerprint=" + b.Server.Fingerprint
}

// config is the machine's entry in a rack definition.
func (b *ncBMC) config(name string, slot int) map[string]any {
	return map[string]any{
		"machineName": name, "rackSlot": slot, "serialNumber": b.Machine.SerialNumber,
		"bmcMacAddress": b.Machine.BMCMAC(), "bootMacAddress": b.Machine.BootMAC(),
		"bmcConnectionString": b.connection(), "bmcCredentials": map[string]string{"username": bmcUser, "password": bmcPass},
		"machineDetails": "simulated " + b.Machine.Model,
	}
}

// ncRack is a rack definition under construction.
type ncRack struct {
	sku, serial string
	machines    []map[string]any
	appliances  []map[string]any
}

func (r *ncRack) definition(fabricRG string) map[string]any {
	d := map[string]any{
		"rackSkuId": r.sku, "rackSerialNumber": r.serial, "rackLocation": "Hall 1, row " + r.serial,
		"networkRackId":                     fabricRG + "/providers/Microsoft.ManagedNetworkFabric/networkRacks/" + strings.ToLower(r.serial),
		"bareMetalMachineConfigurationData": r.machines,
	}
	if len(r.appliances) > 0 {
		d["storageApplianceConfigurationData"] = r.appliances
	}
	return d
}

// ncCluster is a cluster definition and the BMCs of its machines, by
// machine name.
type ncCluster struct {
	name  string
	racks []*ncRack // the aggregator first
	bmcs  map[string]*ncBMC
	props map[string]any // extra cluster properties
}

// newNCCluster defines a MultiRack cluster of an aggregator rack (three
// controllers and a storage appliance) and computeRacks compute racks of
// perRack machines each, and starts their BMCs. Machine names are
// {name}c{n} for controllers and {name}r{rack}m{slot} for compute; change,
// if not nil, alters a machine's hardware or BMC options by name.
func newNCCluster(t testing.TB, f *ncFleet, name string, computeRacks, perRack int, change func(name string, m *redfishsim.Machine, o *redfishsim.Options)) *ncCluster {
	t.Helper()
	c := &ncCluster{name: name, bmcs: map[string]*ncBMC{}, props: map[string]any{}}
	by := func(n string) func(*redfishsim.Machine, *redfishsim.Options) {
		if change == nil {
			return nil
		}
		return func(m *redfishsim.Machine, o *redfishsim.Options) { change(n, m, o) }
	}
	agg := &ncRack{sku: cmp.Or(f.aggregatorRack, machine.RackSKUAggregator), serial: strings.ToUpper(name) + "-AGG"}
	for slot := 1; slot <= 3; slot++ {
		n := fmt.Sprintf("%sc%d", name, slot)
		b := f.add(t, machine.SKUController, strings.ToUpper(n), by(n))
		c.bmcs[n] = b
		agg.machines = append(agg.machines, b.config(n, slot))
	}
	agg.appliances = []map[string]any{{"storageApplianceName": name + "-san", "rackSlot": 4, "serialNumber": strings.ToUpper(name) + "-SAN",
		"adminCredentials": map[string]string{"username": "pureuser", "password": "pure-pass"}}}
	c.racks = append(c.racks, agg)
	rackSKU, machineSKU := machine.RackSKUCompute8, machine.SKUCompute
	if perRack > 8 {
		rackSKU = machine.RackSKUCompute16
	}
	if f.computeRack != "" {
		rackSKU, machineSKU = f.computeRack, f.computeMachine
	}
	for r := 1; r <= computeRacks; r++ {
		rack := &ncRack{sku: rackSKU, serial: fmt.Sprintf("%s-R%d", strings.ToUpper(name), r)}
		for slot := 1; slot <= perRack; slot++ {
			n := fmt.Sprintf("%sr%dm%d", name, r, slot)
			b := f.add(t, machineSKU, strings.ToUpper(n), by(n))
			c.bmcs[n] = b
			rack.machines = append(rack.machines, b.config(n, slot))
		}
		c.racks = append(c.racks, rack)
	}
	return c
}

// body is the cluster's PUT body (az resource create --is-full-object).
func (c *ncCluster) body(sub, customLocation string) map[string]any {
	fabricRG := "/subscriptions/" + sub + "/resourceGroups/fabric"
	var compute []any
	for _, r := range c.racks[1:] {
		compute = append(compute, r.definition(fabricRG))
	}
	props := map[string]any{
		"clusterType": "MultiRack", "clusterVersion": ncVersion,
		"networkFabricId":                  fabricRG + "/providers/Microsoft.ManagedNetworkFabric/networkFabrics/fabric1",
		"aggregatorOrSingleRackDefinition": c.racks[0].definition(fabricRG),
		"computeRackDefinitions":           compute,
	}
	for k, v := range c.props {
		props[k] = v
	}
	return map[string]any{
		"location":         "local",
		"extendedLocation": map[string]string{"name": customLocation, "type": "CustomLocation"},
		"properties":       props,
	}
}

// ncMachine is the part of a bareMetalMachine the tests look at.
type ncMachine struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Tags       map[string]string `json:"tags"`
	Properties struct {
		DetailedStatus           string            `json:"detailedStatus"`
		DetailedStatusMessage    string            `json:"detailedStatusMessage"`
		PowerState               string            `json:"powerState"`
		ReadyState               string            `json:"readyState"`
		CordonStatus             string            `json:"cordonStatus"`
		SerialNumber             string            `json:"serialNumber"`
		BootMACAddress           string            `json:"bootMacAddress"`
		MachineRoles             []string          `json:"machineRoles"`
		MachineSKUID             string            `json:"machineSkuId"`
		OSImage                  string            `json:"osImage"`
		MachineClusterVersion    string            `json:"machineClusterVersion"`
		RackID                   string            `json:"rackId"`
		ServiceTag               string            `json:"serviceTag"`
		HardwareValidationStatus map[string]string `json:"hardwareValidationStatus"`
		HardwareInventory        struct {
			AdditionalHostInformation string `json:"additionalHostInformation"`
			Interfaces                []any  `json:"interfaces"`
		} `json:"hardwareInventory"`
		ActionStates []ncActionState `json:"actionStates"`
	} `json:"properties"`
	ExtendedLocation struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"extendedLocation"`
}

type ncActionState struct {
	ActionType string `json:"actionType"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	StepStates []struct {
		StepName string `json:"stepName"`
		Status   string `json:"status"`
	} `json:"stepStates"`
}

// state is the latest entry of actionStates for actionType.
func (m *ncMachine) state(actionType string) (ncActionState, bool) {
	for _, s := range m.Properties.ActionStates {
		if strings.EqualFold(s.ActionType, actionType) {
			return s, true
		}
	}
	return ncActionState{}, false
}

// ncGet reads a resource with the admin client into v.
func ncGet(t testing.TB, c *client.Client, id string, v any) {
	t.Helper()
	r, err := c.Do(t.Context(), http.MethodGet, id+"?api-version="+ncAPI, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", id, r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatal(err)
	}
}

// ncOperation starts an action or PUT with the admin client and waits for
// its operation, returning the final OperationStatusResult.
func ncOperation(t testing.TB, c *client.Client, method, path string, body any) ncStatus {
	t.Helper()
	r, err := c.Do(t.Context(), method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status >= 300 {
		t.Fatalf("%s %s = %d %s", method, path, r.Status, r.Body)
	}
	link := r.Header.Get("Azure-AsyncOperation")
	if link == "" {
		link = r.Header.Get("Location")
	}
	if link == "" {
		return ncStatus{Status: "Succeeded"}
	}
	return ncPoll(t, c, link, 2*time.Minute)
}

// ncStatus is an OperationStatusResult.
type ncStatus struct {
	ID              string  `json:"id"`
	ResourceID      string  `json:"resourceId"`
	Name            string  `json:"name"`
	Status          string  `json:"status"`
	PercentComplete float64 `json:"percentComplete"`
	StartTime       string  `json:"startTime"`
	EndTime         string  `json:"endTime"`
	Error           *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	// Progress lists the percentComplete values polling saw, in order.
	Progress []float64 `json:"-"`
}

// ncPoll polls an operation status URL until the operation ends.
func ncPoll(t testing.TB, c *client.Client, link string, timeout time.Duration) ncStatus {
	t.Helper()
	path := link
	if i := strings.Index(link, "/subscriptions/"); i >= 0 {
		path = link[i:]
	}
	deadline := time.Now().Add(timeout)
	var progress []float64
	for {
		r, err := c.Do(t.Context(), http.MethodGet, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		var st ncStatus
		if r.Status == http.StatusOK && json.Unmarshal(r.Body, &st) == nil {
			if n := len(progress); n == 0 || progress[n-1] != st.PercentComplete {
				progress = append(progress, st.PercentComplete)
			}
			if st.Status != "" && st.Status != "InProgress" && st.Status != "Accepted" && st.Status != "Running" {
				st.Progress = progress
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation %s did not end in %v: %d %s", path, timeout, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
