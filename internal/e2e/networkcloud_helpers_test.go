package e2e

import (
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
	props map[string]any // cluster properties on top of the site's rack definitions
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
