package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
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
	"github.com/citadel-cloud/citadel/internal/sim"
)

const (
	ncAPI     = "2026-07-01"
	ncVersion = "4.1.0" // the cluster version whose image the tests install
	bmcUser   = "root"
	bmcPass   = "calvin-bmc"
)

// ncImage puts the OS image of ncVersion into the control plane's image
// catalog.
func ncImage(t testing.TB, dataDir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dataDir, "images", "cluster-"+ncVersion+".iso"), []byte("citadel host OS "+ncVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ncCluster is a simulated site and the cluster it forms.
type ncCluster struct {
	*sim.Site
	props           map[string]any // cluster properties on top of the site's rack definitions
	managerLocation string         // its cluster manager's custom location, once ncDefine made it
}

// newNCCluster starts the BMCs of a simulated site whose BMCs fetch
// images from the control plane cp, as real BMCs do. catalog, if not nil,
// holds the operator's SKUs; change, if not nil, alters a machine's
// hardware or BMC options by name.
func newNCCluster(t testing.TB, cp *servertest.ControlPlane, spec sim.Spec, catalog *machine.Catalog,
	change func(name string, m *redfishsim.Machine, o *redfishsim.Options)) *ncCluster {
	t.Helper()
	site, err := sim.Start(spec, sim.Options{
		Catalog: catalog, Change: change,
		BMC: redfishsim.Options{
			Username: bmcUser, Password: bmcPass, PowerOnDelay: 20 * time.Millisecond, PowerOffDelay: 20 * time.Millisecond,
			FetchImages: true, HTTPClient: cp.HTTPClient(t),
			Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	return &ncCluster{Site: site, props: map[string]any{}}
}

// body is the cluster's PUT body (az resource create --is-full-object).
func (c *ncCluster) body(sub, customLocation string) map[string]any {
	props := c.ClusterProperties(ncVersion, "/subscriptions/"+sub+"/resourceGroups/fabric")
	maps.Copy(props, c.props)
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
		StepName  string `json:"stepName"`
		Status    string `json:"status"`
		StartTime string `json:"startTime"`
		EndTime   string `json:"endTime"`
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
// its operation.
func ncOperation(t testing.TB, c *client.Client, method, path string, body any) ncStatus {
	t.Helper()
	r, err := c.Do(t.Context(), method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status >= 300 {
		t.Fatalf("%s %s = %d %s", method, path, r.Status, r.Body)
	}
	return ncWait(t, c, r)
}

// ncStatus is an ended operation and the percentComplete values polling
// saw on the way, in order.
type ncStatus struct {
	client.Operation
	Progress []float64
}

// ncWait follows the operation r started, for at most two minutes.
func ncWait(t testing.TB, c *client.Client, r *client.Response) ncStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var st ncStatus
	op, err := c.Wait(ctx, r, func(p float64) { st.Progress = append(st.Progress, p) })
	if op == nil || ctx.Err() != nil {
		t.Fatalf("operation of %s: %v", r.Header.Get("Azure-AsyncOperation"), err)
	}
	st.Operation = *op
	return st
}

// setAppliances declares the storage appliances of the cluster's
// aggregator rack in place of the site's own.
func (c *ncCluster) setAppliances(sub string, appliances ...map[string]any) {
	agg := c.ClusterProperties(ncVersion, "/subscriptions/"+sub+"/resourceGroups/fabric")["aggregatorOrSingleRackDefinition"].(map[string]any)
	agg["storageApplianceConfigurationData"] = appliances
	c.props["aggregatorOrSingleRackDefinition"] = agg
}
