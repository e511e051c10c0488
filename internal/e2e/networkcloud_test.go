package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/redfishsim"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// TestNetworkCloud drives a multi-rack cluster through the real az CLI
// against simulated BMCs: 1 aggregator rack (3 controllers and a SAN) and
// 3 compute racks of 4 machines. It defines the cluster manager and the
// cluster, checks the topology rules and the system-managed resources,
// deploys (one machine has half its memory and fails validation), runs
// every machine action, and checks the disruption guard and its override.
func TestNetworkCloud(t *testing.T) {
	requireAz(t)
	t.Parallel()
	start := time.Now()
	cp := servertest.Start(t)
	ncImage(t, cp.DataDir)
	az := newAzCLI(t, cp)
	t.Cleanup(func() {
		az.logTimings(t)
		t.Logf("TestNetworkCloud took %v", time.Since(start).Round(time.Millisecond))
	})
	c := cp.Creds
	sub := c.SubscriptionID
	rg := "/subscriptions/" + sub + "/resourceGroups/nc"
	ncID := func(typ, name string) string { return rg + "/providers/Microsoft.NetworkCloud/" + typ + "/" + name }

	const (
		badMemory = "nc1r3m4" // has 256 of the SKU's 512 GiB
		slowOff   = "nc1r2m1" // takes 6 s to shut down: longer than az takes to start on a busy machine
	)
	cl := newNCCluster(t, cp, sim.Spec{Name: "nc1", ComputeRacks: 3, MachinesPerRack: 4}, nil, func(name string, m *redfishsim.Machine, o *redfishsim.Options) {
		switch name {
		case badMemory:
			m.DIMMs = m.DIMMs[:8]
		case slowOff:
			o.PowerOffDelay = 6 * time.Second
		}
	})
	cl.props["computeDeploymentThreshold"] = map[string]any{"type": "PercentSuccess", "grouping": "PerCluster", "value": 80}
	cl.props["updateStrategy"] = map[string]any{"strategyType": "Rack", "maxUnavailable": 1, "thresholdType": "PercentSuccess",
		"thresholdValue": 80, "waitTimeMinutes": 1}
	clusterID := ncID("clusters", "nc1")
	machineID := func(name string) string { return ncID("bareMetalMachines", name) }
	showMachine := func(t *testing.T, name string) ncMachine {
		t.Helper()
		var m ncMachine
		az.json(t, &m, "resource", "show", "--ids", machineID(name))
		return m
	}
	action := func(t *testing.T, name, act, body string) {
		t.Helper()
		args := []string{"resource", "invoke-action", "--ids", machineID(name), "--action", act}
		if body != "" {
			args = append(args, "--request-body", body)
		}
		az.ok(t, args...)
	}
	// jsonArg passes v to az in a file (@path), which keeps the logs short.
	bodies := t.TempDir()
	jsonArg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.CreateTemp(bodies, "body-*.json")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		return "@" + f.Name()
	}

	must := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.Fatalf("step %q failed; the later steps depend on it", name)
		}
	}
	must("login", func(t *testing.T) {
		az.login(t, c)
		az.ok(t, "group", "create", "-n", "nc", "-l", "local")
	})

	var customLocation string
	must("cluster manager", func(t *testing.T) {
		var cm struct {
			Properties struct {
				DetailedStatus          string `json:"detailedStatus"`
				ManagerExtendedLocation struct {
					Name, Type string
				} `json:"managerExtendedLocation"`
				ClusterVersions []struct {
					TargetClusterVersion string `json:"targetClusterVersion"`
				} `json:"clusterVersions"`
			} `json:"properties"`
		}
		az.json(t, &cm, "resource", "create", "-g", "nc", "-n", "cm1", "--resource-type", "Microsoft.NetworkCloud/clusterManagers",
			"--is-full-object", "-p", jsonArg(map[string]any{"location": "local", "properties": map[string]any{
				"fabricControllerId": "/subscriptions/" + sub + "/resourceGroups/fabric/providers/Microsoft.ManagedNetworkFabric/networkFabricControllers/nfc1"}}))
		customLocation = cm.Properties.ManagerExtendedLocation.Name
		if cm.Properties.DetailedStatus != "Available" || !strings.HasSuffix(customLocation, "/providers/Microsoft.ExtendedLocation/customLocations/cm1-clustermanager") {
			t.Fatalf("cluster manager: detailedStatus %q, managerExtendedLocation %q; want Available and its custom location", cm.Properties.DetailedStatus, customLocation)
		}
		if len(cm.Properties.ClusterVersions) != 1 || cm.Properties.ClusterVersions[0].TargetClusterVersion != ncVersion {
			t.Errorf("clusterVersions = %+v, want the image catalog's %s", cm.Properties.ClusterVersions, ncVersion)
		}
		var loc azResource
		az.json(t, &loc, "resource", "show", "--ids", customLocation)
		if loc.Type != "Microsoft.ExtendedLocation/customLocations" {
			t.Errorf("custom location type = %q", loc.Type)
		}
	})

	t.Run("cluster refused", func(t *testing.T) {
		create := func(name string, body map[string]any) []string {
			return []string{"resource", "create", "-g", "nc", "-n", name, "--resource-type", "Microsoft.NetworkCloud/clusters",
				"--is-full-object", "-p", jsonArg(body)}
		}
		// Two compute racks short of a multi-rack cluster.
		two := cl.body(sub, customLocation)
		props := two["properties"].(map[string]any)
		props["computeRackDefinitions"] = props["computeRackDefinitions"].([]any)[:1]
		az.fail(t, []string{"InvalidRequestContent", "a MultiRack cluster needs at least 3 compute racks; found 1"}, create("nc2", two)...)
		// An extended location that is no custom location of a manager.
		az.fail(t, []string{"extendedLocation.name", "was not found"}, create("nc3", cl.body(sub, rg+"/providers/Microsoft.ExtendedLocation/customLocations/nosuch"))...)
		// A version the image catalog does not hold.
		body := cl.body(sub, customLocation)
		body["properties"].(map[string]any)["clusterVersion"] = "9.9.9"
		az.fail(t, []string{"properties.clusterVersion", "9.9.9"}, create("nc4", body)...)
		az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "--ids", ncID("clusters", "nc2"))
	})

	must("cluster", func(t *testing.T) {
		var got struct {
			Properties struct {
				DetailedStatus          string                `json:"detailedStatus"`
				ClusterManagerID        string                `json:"clusterManagerId"`
				ClusterExtendedLocation struct{ Name string } `json:"clusterExtendedLocation"`
				ClusterCapacity         struct {
					TotalCoreCount int `json:"totalCoreCount"`
				} `json:"clusterCapacity"`
			} `json:"properties"`
		}
		az.json(t, &got, "resource", "create", "-g", "nc", "-n", "nc1", "--resource-type", "Microsoft.NetworkCloud/clusters",
			"--is-full-object", "-p", jsonArg(cl.body(sub, customLocation)))
		p := got.Properties
		if p.DetailedStatus != "PendingDeployment" || !strings.EqualFold(p.ClusterManagerID, ncID("clusterManagers", "cm1")) ||
			!strings.HasSuffix(p.ClusterExtendedLocation.Name, "/customLocations/nc1-cluster") {
			t.Errorf("cluster = %+v, want PendingDeployment, managed by cm1, with its custom location", p)
		}
		if want := 3*32 + 12*64; p.ClusterCapacity.TotalCoreCount != want {
			t.Errorf("clusterCapacity.totalCoreCount = %d, want %d", p.ClusterCapacity.TotalCoreCount, want)
		}
		for typ, want := range map[string]int{"racks": 4, "bareMetalMachines": 15, "storageAppliances": 1} {
			var list []azResource
			az.json(t, &list, "resource", "list", "-g", "nc", "--resource-type", "Microsoft.NetworkCloud/"+typ)
			if len(list) != want {
				t.Errorf("az resource list %s: %d, want %d", typ, len(list), want)
			}
		}
		m := showMachine(t, "nc1c1")
		if m.Properties.DetailedStatus != "Preparing" || !slices.Contains(m.Properties.MachineRoles, "control-plane") ||
			!strings.HasSuffix(m.ExtendedLocation.Name, "/customLocations/nc1-cluster") {
			t.Errorf("machine nc1c1 = %+v, want Preparing, a control-plane role, in the cluster's custom location", m)
		}
	})

	t.Run("identities unique across the boundary", func(t *testing.T) {
		other := newNCCluster(t, cp, sim.Spec{Name: "nc5", ComputeRacks: 3, MachinesPerRack: 1}, nil, nil)
		body := other.body(sub, customLocation)
		rack := body["properties"].(map[string]any)["computeRackDefinitions"].([]any)[0].(map[string]any)
		rack["bareMetalMachineConfigurationData"].([]any)[0].(map[string]any)["serialNumber"] = "nc1r1m1" // lower case: same serial
		az.fail(t, []string{`serial number "nc1r1m1" is already used by`, machineID("nc1r1m1")}, "resource", "create", "-g", "nc", "-n", "nc5", "--resource-type", "Microsoft.NetworkCloud/clusters",
			"--is-full-object", "-p", jsonArg(body))
	})

	t.Run("system managed", func(t *testing.T) {
		const msg = "All customer initiated requests will be rejected as the life cycle of this resource is managed by the system."
		az.fail(t, []string{msg}, "resource", "create", "-g", "nc", "-n", "myrack", "--resource-type", "Microsoft.NetworkCloud/racks",
			"-l", "local", "-p", `{"rackSkuId":"citadel-compute-8"}`)
		az.fail(t, []string{msg}, "resource", "delete", "--ids", machineID("nc1r1m1"), "--verbose")
		// PATCH of tags and of the writable machineDetails works.
		// (az 2.45 has no resource patch, and its resource tag and update
		// send PUT.)
		az.ok(t, "rest", "--method", "patch", "--url", machineID("nc1r1m1")+"?api-version="+ncAPI, "--body",
			`{"tags":{"team":"ops"},"properties":{"machineDetails":"row 4, left"}}`)
		var m struct {
			Tags       map[string]string `json:"tags"`
			Properties struct {
				MachineDetails string `json:"machineDetails"`
				SerialNumber   string `json:"serialNumber"`
			} `json:"properties"`
		}
		az.json(t, &m, "resource", "show", "--ids", machineID("nc1r1m1"))
		if m.Tags["team"] != "ops" || m.Properties.MachineDetails != "row 4, left" || m.Properties.SerialNumber != "NC1R1M1" {
			t.Errorf("after PATCH: %+v, want tag team=ops, the new machineDetails and the serial kept", m)
		}
		// Read-only properties in a body are ignored (arm-contract §2.5).
		az.ok(t, "rest", "--method", "patch", "--url", machineID("nc1r1m1")+"?api-version="+ncAPI, "--body",
			`{"properties":{"serialNumber":"X"}}`)
		az.json(t, &m, "resource", "show", "--ids", machineID("nc1r1m1"))
		if m.Properties.SerialNumber != "NC1R1M1" {
			t.Errorf("a PATCH changed the read-only serialNumber to %q", m.Properties.SerialNumber)
		}
	})

	must("passwords never shown", func(t *testing.T) {
		for _, id := range []string{clusterID, machineID("nc1r1m1"), ncID("storageAppliances", "nc1-san")} {
			out := az.ok(t, "resource", "show", "--ids", id, "-o", "json")
			if strings.Contains(out, bmcPass) || strings.Contains(out, "pure-pass") || strings.Contains(out, `"password"`) {
				t.Errorf("az resource show %s shows a password:\n%s", id, azCut(out, 2000))
			}
		}
		var m struct {
			Properties struct {
				BMCCredentials map[string]string `json:"bmcCredentials"`
			} `json:"properties"`
		}
		az.json(t, &m, "resource", "show", "--ids", machineID("nc1r1m1"))
		if m.Properties.BMCCredentials["username"] != bmcUser {
			t.Errorf("bmcCredentials = %v, want the username shown", m.Properties.BMCCredentials)
		}
		// az resource tag GETs the cluster and PUTs it back without the
		// passwords: they are kept (the deploy below logs in with them).
		az.ok(t, "resource", "tag", "--ids", clusterID, "--tags", "env=lab")
	})

	must("deploy", func(t *testing.T) {
		az.ok(t, "resource", "invoke-action", "--ids", clusterID, "--action", "deploy", "--request-body", "{}")
		var got struct {
			Properties struct {
				DetailedStatus        string          `json:"detailedStatus"`
				DetailedStatusMessage string          `json:"detailedStatusMessage"`
				ActionStates          []ncActionState `json:"actionStates"`
			} `json:"properties"`
		}
		az.json(t, &got, "resource", "show", "--ids", clusterID)
		if got.Properties.DetailedStatus != "Running" || !strings.Contains(got.Properties.DetailedStatusMessage, badMemory) {
			t.Errorf("cluster after deploy: %s (%s), want Running, naming the failed %s", got.Properties.DetailedStatus, got.Properties.DetailedStatusMessage, badMemory)
		}
		if len(got.Properties.ActionStates) == 0 || got.Properties.ActionStates[0].Status != "Completed" {
			t.Errorf("cluster actionStates = %+v, want the deploy Completed", got.Properties.ActionStates)
		}
		bad := showMachine(t, badMemory)
		if bad.Properties.DetailedStatus != "Error" || !strings.Contains(bad.Properties.DetailedStatusMessage, "memory: 256 GiB enabled, the SKU needs 512 GiB") ||
			bad.Properties.HardwareValidationStatus["result"] != "Fail" {
			t.Errorf("%s: %s (%s), validation %v; want Error naming the memory", badMemory, bad.Properties.DetailedStatus, bad.Properties.DetailedStatusMessage, bad.Properties.HardwareValidationStatus)
		}
		for _, b := range cl.Machines {
			name := b.Name
			if name == badMemory {
				if b.BMC.Reimages() != 0 {
					t.Errorf("%s was reimaged %d times, want never", name, b.BMC.Reimages())
				}
				continue
			}
			var m ncMachine // read with the Go client: 14 az starts would add 8 s
			ncGet(t, cp.Client, machineID(name), &m)
			p := m.Properties
			if p.DetailedStatus != "Provisioned" || p.PowerState != "On" || p.ReadyState != "True" || p.MachineClusterVersion != ncVersion ||
				!strings.HasSuffix(p.OSImage, "/images/cluster-"+ncVersion+".iso") || p.HardwareValidationStatus["result"] != "Pass" ||
				p.ServiceTag != b.Hardware.SerialNumber || len(p.HardwareInventory.Interfaces) == 0 {
				t.Errorf("%s after deploy: %+v", name, p)
			}
			if s, ok := m.state("Microsoft.NetworkCloud/clusters/deploy/action"); !ok || s.Status != "Completed" || len(s.StepStates) < 3 {
				t.Errorf("%s: deploy actionState = %+v", name, s)
			}
			if b.BMC.Reimages() != 1 || b.BMC.PowerState() != "On" || b.BMC.MediaImage() != "" ||
				!strings.HasSuffix(b.BMC.BootedImage(), "cluster-"+ncVersion+".iso") {
				t.Errorf("%s BMC: %d reimages, power %s, media %q, booted %q; want one reimage, On, ejected, booted the image",
					name, b.BMC.Reimages(), b.BMC.PowerState(), b.BMC.MediaImage(), b.BMC.BootedImage())
			}
		}
	})

	t.Run("machine actions", func(t *testing.T) {
		const name = "nc1r1m1"
		b := cl.Machine(name)
		check := func(t *testing.T, what, actionType, power, ready, cordon string) {
			t.Helper()
			m := showMachine(t, name)
			p := m.Properties
			if p.PowerState != power || p.ReadyState != ready || p.CordonStatus != cordon {
				t.Errorf("after %s: power %s, ready %s, cordon %s; want %s, %s, %s", what, p.PowerState, p.ReadyState, p.CordonStatus, power, ready, cordon)
			}
			if s, ok := m.state("Microsoft.NetworkCloud/bareMetalMachines/" + actionType + "/action"); !ok || s.Status != "Completed" {
				t.Errorf("after %s: actionState %+v, want Completed", what, s)
			}
		}
		action(t, name, "powerOff", `{"skipShutdown":"True"}`)
		check(t, "powerOff", "powerOff", "Off", "False", "Uncordoned")
		if b.BMC.PowerState() != "Off" {
			t.Errorf("BMC power = %s after powerOff, want Off", b.BMC.PowerState())
		}
		resets := b.BMC.ResetCount()
		action(t, name, "powerOff", `{"skipShutdown":"False"}`)
		if b.BMC.ResetCount() != resets {
			t.Errorf("powerOff of an Off machine reset the BMC")
		}
		action(t, name, "start", "")
		check(t, "start", "start", "On", "True", "Uncordoned")
		resets = b.BMC.ResetCount()
		action(t, name, "restart", "")
		check(t, "restart", "restart", "On", "True", "Uncordoned")
		if b.BMC.ResetCount() <= resets {
			t.Errorf("restart did not reset the BMC")
		}
		action(t, name, "reimage", "")
		check(t, "reimage", "reimage", "On", "True", "Uncordoned")
		if b.BMC.Reimages() != 2 {
			t.Errorf("BMC reimages = %d after deploy and reimage, want 2", b.BMC.Reimages())
		}
		action(t, name, "cordon", `{"evacuate":"True"}`)
		check(t, "cordon", "cordon", "On", "False", "Cordoned")
		action(t, name, "uncordon", "")
		check(t, "uncordon", "uncordon", "On", "True", "Uncordoned")
		az.fail(t, []string{"skipShutdown", "Maybe"}, "resource", "invoke-action", "--ids", machineID(name), "--action", "powerOff",
			"--request-body", `{"skipShutdown":"Maybe"}`)
		az.fail(t, []string{"evacuate"}, "resource", "invoke-action", "--ids", machineID(name), "--action", "restart",
			"--request-body", `{"evacuate":"True"}`)
	})

	t.Run("disruption guard", func(t *testing.T) {
		action(t, "nc1r1m1", "powerOff", `{"skipShutdown":"True"}`)
		resets := cl.Machine("nc1r1m2").BMC.ResetCount()
		az.fail(t, []string{"refused by the disruption guard (rule maxUnavailable, machines nc1r1m1)"}, "resource", "invoke-action", "--ids", machineID("nc1r1m2"),
			"--action", "restart")
		if resets != cl.Machine("nc1r1m2").BMC.ResetCount() {
			t.Error("a refused restart reset the BMC")
		}
		// Another rack has its own budget.
		action(t, "nc1r2m2", "restart", "")
		// safeguardMode None overrides, and the activity log says so.
		action(t, "nc1r1m2", "restart", `{"safeguardMode":"None"}`)
		if cl.Machine("nc1r1m2").BMC.ResetCount() <= resets {
			t.Error("the overridden restart did not reset the BMC")
		}
		alFlush(t, cp)
		var events []struct {
			Properties map[string]string `json:"properties"`
		}
		az.json(t, &events, "monitor", "activity-log", "list", "--offset", "1h", "--resource-id", machineID("nc1r1m2"))
		if !slices.ContainsFunc(events, func(e struct {
			Properties map[string]string `json:"properties"`
		}) bool {
			return e.Properties["safeguardMode"] == "None" && strings.Contains(e.Properties["safeguardOverride"], "restart")
		}) {
			t.Errorf("the activity log of nc1r1m2 has no record of the override: %+v", events)
		}
		action(t, "nc1r1m1", "start", "")

		// Control-plane quorum: two of three controllers may not be down.
		action(t, "nc1c1", "powerOff", `{"skipShutdown":"True"}`)
		az.fail(t, []string{"refused by the disruption guard (rule controlPlaneQuorum, machines nc1c1)"}, "resource", "invoke-action", "--ids", machineID("nc1c2"),
			"--action", "reimage")
		action(t, "nc1c1", "start", "")
		action(t, "nc1c2", "restart", "")
	})

	t.Run("another operation in progress", func(t *testing.T) {
		r, err := cp.Client.Do(t.Context(), http.MethodPost, machineID(slowOff)+"/powerOff?api-version="+ncAPI, map[string]string{"skipShutdown": "False"})
		if err != nil || r.Status != http.StatusAccepted {
			t.Fatalf("POST powerOff = %v %v, want 202", r, err)
		}
		// az prints the message of a failed action without its code.
		az.fail(t, []string{"Another operation is in progress"}, "resource", "invoke-action", "--ids", machineID(slowOff), "--action", "start")
		again, err := cp.Client.Do(t.Context(), http.MethodPost, machineID(slowOff)+"/restart?api-version="+ncAPI, nil)
		if err != nil || again.Status != http.StatusConflict || !strings.Contains(string(again.Body), `"code":"AnotherOperationInProgress"`) {
			t.Errorf("POST restart during the powerOff = %v %v, want 409 AnotherOperationInProgress", again, err)
		}
		st := ncWait(t, cp.Client, r)
		if st.Status != "Succeeded" || !strings.EqualFold(st.ResourceID, machineID(slowOff)) || st.PercentComplete != 100 || st.EndTime == "" {
			t.Errorf("operation status = %+v, want Succeeded for %s at 100%%", st, slowOff)
		}
		action(t, slowOff, "start", "")
	})

	t.Run("replace", func(t *testing.T) {
		const name = "nc1r1m3"
		old := cl.Machine(name)
		spare, err := cl.Spare("nc1r1m3spare", machine.SKUCompute)
		if err != nil {
			t.Fatal(err)
		}
		action(t, name, "replace", jsonArg(map[string]any{
			"serialNumber": spare.Hardware.SerialNumber, "bmcMacAddress": spare.Hardware.BMCMAC(), "bootMacAddress": spare.Hardware.BootMAC(),
			"bmcConnectionString": spare.ConnectionString(), "bmcCredentials": map[string]string{"username": bmcUser, "password": bmcPass},
			"storagePolicy": "DiscardAll",
		}))
		m := showMachine(t, name)
		p := m.Properties
		if p.SerialNumber != spare.Hardware.SerialNumber || p.BootMACAddress != spare.Hardware.BootMAC() || p.DetailedStatus != "Provisioned" ||
			p.HardwareValidationStatus["result"] != "Pass" || p.ReadyState != "True" {
			t.Errorf("after replace: %+v", p)
		}
		if spare.BMC.Reimages() != 1 || old.BMC.Reimages() != 1 {
			t.Errorf("reimages: spare %d, old %d; want the spare imaged once and the old machine left alone", spare.BMC.Reimages(), old.BMC.Reimages())
		}
	})

	t.Run("unreachable BMC", func(t *testing.T) {
		const name = "nc1r2m3"
		cl.Machine(name).BMC.SetUnreachable(true)
		az.fail(t, []string{"The restart of '" + name + "' failed", "cannot be reached"}, "resource", "invoke-action", "--ids", machineID(name), "--action", "restart")
		cl.Machine(name).BMC.SetUnreachable(false)
		m := showMachine(t, name)
		if s, _ := m.state("Microsoft.NetworkCloud/bareMetalMachines/restart/action"); s.Status != "Failed" || !strings.Contains(s.Message, "cannot be reached") {
			t.Errorf("actionState after the failed restart = %+v, want Failed saying why", s)
		}
		action(t, name, "restart", "")
	})

	t.Run("cluster update keeps replaced hardware", func(t *testing.T) {
		az.ok(t, "resource", "tag", "--ids", clusterID, "--tags", "env=lab2")
		if m := showMachine(t, "nc1r1m3"); m.Properties.SerialNumber != "NC1R1M3SPARE" || m.Properties.DetailedStatus != "Provisioned" {
			t.Errorf("after a cluster PUT, nc1r1m3 = %s, %s; want the replacement's serial, Provisioned", m.Properties.SerialNumber, m.Properties.DetailedStatus)
		}
	})

	t.Run("delete", func(t *testing.T) {
		az.fail(t, []string{"ClusterManagerInUse"}, "resource", "delete", "--ids", ncID("clusterManagers", "cm1"))
		az.ok(t, "resource", "delete", "--ids", clusterID)
		var list []azResource
		az.json(t, &list, "resource", "list", "-g", "nc")
		for _, r := range list {
			if r.Type != "Microsoft.NetworkCloud/clusterManagers" && r.Type != "Microsoft.ExtendedLocation/customLocations" {
				t.Errorf("%s is left after the cluster's delete", r.ID)
			}
		}
		az.ok(t, "resource", "delete", "--ids", ncID("clusterManagers", "cm1"))
		az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "--ids", customLocation)
	})
}

// ncDefine creates a cluster manager and the cluster cl under resource
// group rg with the admin client, and returns the cluster's ID.
func ncDefine(t testing.TB, c *client.Client, rg string, cl *ncCluster) string {
	t.Helper()
	sub := c.Creds.SubscriptionID
	rgID := "/subscriptions/" + sub + "/resourceGroups/" + rg
	if r, err := c.Do(t.Context(), http.MethodPut, rgID+"?api-version=2021-04-01", map[string]any{"location": "local"}); err != nil || r.Status >= 300 {
		t.Fatalf("PUT group: %v %v", r, err)
	}
	cmID := rgID + "/providers/Microsoft.NetworkCloud/clusterManagers/" + cl.Spec.Name + "-cm"
	if st := ncOperation(t, c, http.MethodPut, cmID+"?api-version="+ncAPI, map[string]any{"location": "local", "properties": map[string]any{
		"fabricControllerId": rgID + "/providers/Microsoft.ManagedNetworkFabric/networkFabricControllers/nfc"}}); st.Status != "Succeeded" {
		t.Fatalf("PUT cluster manager: %+v", st)
	}
	var cm struct {
		Properties struct {
			ManagerExtendedLocation struct{ Name string } `json:"managerExtendedLocation"`
		} `json:"properties"`
	}
	ncGet(t, c, cmID, &cm)
	cl.managerLocation = cm.Properties.ManagerExtendedLocation.Name
	clusterID := rgID + "/providers/Microsoft.NetworkCloud/clusters/" + cl.Spec.Name
	if st := ncOperation(t, c, http.MethodPut, clusterID+"?api-version="+ncAPI, cl.body(sub, cl.managerLocation)); st.Status != "Succeeded" {
		t.Fatalf("PUT cluster: %+v", st)
	}
	return clusterID
}

// ncClusterLocation is the extendedLocation of what is created in the
// cluster (its volumes, say).
func ncClusterLocation(t testing.TB, c *client.Client, clusterID string) map[string]string {
	t.Helper()
	var cluster struct {
		Properties struct {
			ClusterExtendedLocation map[string]string `json:"clusterExtendedLocation"`
		} `json:"properties"`
	}
	ncGet(t, c, clusterID, &cluster)
	return cluster.Properties.ClusterExtendedLocation
}

// TestNetworkCloudRestartMidReimage stops the control plane while a
// machine is booting its new image and starts it again on the same data:
// the reimage resumes and ends.
func TestNetworkCloudRestartMidReimage(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	onDir := func(c *server.Config) { c.DataDir, c.Listen = dir, addr }
	first := servertest.Start(t, onDir)
	ncImage(t, first.DataDir)
	const slow = "rsr1m1"
	cl := newNCCluster(t, first, sim.Spec{Name: "rs", ComputeRacks: 3, MachinesPerRack: 1}, nil, func(name string, _ *redfishsim.Machine, o *redfishsim.Options) {
		if name == slow {
			o.PowerOnDelay = 3 * time.Second
		}
	})
	clusterID := ncDefine(t, first.Client, "rs", cl)
	// The slow machine keeps the deploy at 5 of 6 machines for 3 s.
	st := ncOperation(t, first.Client, http.MethodPost, clusterID+"/deploy?api-version="+ncAPI, map[string]any{})
	if st.Status != "Succeeded" {
		t.Fatalf("deploy: %+v", st)
	}
	if !slices.ContainsFunc(st.Progress, func(p float64) bool { return p > 50 && p < 100 }) || st.Progress[len(st.Progress)-1] != 100 ||
		!slices.IsSorted(st.Progress) {
		t.Errorf("deploy percentComplete went %v, want it to rise through 5/6 of the machines to 100", st.Progress)
	}
	machineID := strings.Replace(clusterID, "clusters/rs", "bareMetalMachines/"+slow, 1)
	bmc := cl.Machine(slow).BMC

	r, err := first.Client.Do(t.Context(), http.MethodPost, machineID+"/reimage?api-version="+ncAPI, map[string]any{})
	if err != nil || r.Status != http.StatusAccepted {
		t.Fatalf("POST reimage = %v %v, want 202", r, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for bmc.MediaImage() == "" || bmc.PowerState() != "PoweringOn" {
		if time.Now().After(deadline) {
			t.Fatalf("the reimage did not reach the boot: media %q, power %s", bmc.MediaImage(), bmc.PowerState())
		}
		time.Sleep(10 * time.Millisecond)
	}
	first.Close()

	second := servertest.Start(t, onDir)
	st = ncWait(t, second.Client, r)
	var m ncMachine
	ncGet(t, second.Client, machineID, &m)
	s, _ := m.state("Microsoft.NetworkCloud/bareMetalMachines/reimage/action")
	// The next leader runs the reimage again; the client waits for the
	// boot in progress before it resets the machine.
	if st.Status != "Succeeded" || m.Properties.DetailedStatus != "Provisioned" || s.Status != "Completed" ||
		bmc.PowerState() != "On" || bmc.MediaImage() != "" || bmc.Reimages() != 3 {
		t.Errorf("after the restart: operation %+v, machine %s (%s), actionState %+v, BMC %s with media %q after %d reimages; "+
			"want Succeeded, Provisioned, Completed, On, ejected, 3 reimages (deploy, the interrupted boot, the resumed one)",
			st, m.Properties.DetailedStatus, m.Properties.DetailedStatusMessage, s, bmc.PowerState(), bmc.MediaImage(), bmc.Reimages())
	}
	t.Logf("after the restart the reimage ended %s (%d reimages by the BMC); machine %s: %s",
		st.Status, bmc.Reimages(), m.Properties.DetailedStatus, m.Properties.DetailedStatusMessage)
}

// ncOperatorSKUs is an operator's SKU file: a one-socket AMD machine, a
// compute rack of four of them and an aggregator rack for such racks.
const ncOperatorSKUs = `{
  "machineSkus": [{
    "id": "acme-compute-1s-96c", "vendor": "Supermicro", "model": "AS-1125HS-TNR", "generation": "Genoa", "hardwareVersion": "1",
    "cpuModel": "AMD EPYC 9654", "cpuSockets": 1, "cpuCores": 96, "totalThreads": 192, "cpuFeatures": ["avx512f", "avx512_bf16"],
    "memoryCapacityGB": 768,
    "disks": [{"capacityGB": 3576, "type": "SSD", "connection": "PCIE"}],
    "networkInterfaces": [{"vendor": "Broadcom", "model": "BCM57508", "portCount": 2, "portSpeed": 100, "physicalSlot": 1}],
    "firmware": [{"component": "BIOS", "minVersion": "1.5"}, {"component": "BMC", "minVersion": "01.02.03"}],
    "biosSettings": {"BootMode": "Uefi", "SMTControl": "Enabled", "NumaNodesPerSocket": 1}
  }],
  "rackSkus": [{
    "id": "acme-aggregator", "description": "Aggregator for AMD compute racks", "rackType": "Aggregator",
    "controllerMachines": [{"rackSlot": 1, "machineSkuId": "citadel-controller-2s-32c-gen5"},
      {"rackSlot": 2, "machineSkuId": "citadel-controller-2s-32c-gen5"}, {"rackSlot": 3, "machineSkuId": "citadel-controller-2s-32c-gen5"}],
    "storageAppliances": [{"rackSlot": 4, "model": "NetApp AFF A400", "capacityGB": 50000}],
    "maxClusterSlots": 8, "supportedRackSkuIds": ["acme-compute-4"]
  }, {
    "id": "acme-compute-4", "description": "Four AMD compute servers", "rackType": "Compute",
    "computeMachines": [{"rackSlot": 1, "machineSkuId": "acme-compute-1s-96c"}, {"rackSlot": 2, "machineSkuId": "acme-compute-1s-96c"},
      {"rackSlot": 3, "machineSkuId": "acme-compute-1s-96c"}, {"rackSlot": 4, "machineSkuId": "acme-compute-1s-96c"}]
  }]
}`

// TestNetworkCloudOperatorSKUs starts the control plane with an operator's
// SKU file: the rack SKU catalog lists the built-in SKUs and the
// operator's, and a cluster of the operator's racks deploys on machines
// built to its machine SKU.
func TestNetworkCloudOperatorSKUs(t *testing.T) {
	t.Parallel()
	skuFile := filepath.Join(t.TempDir(), "skus.json")
	if err := os.WriteFile(skuFile, []byte(ncOperatorSKUs), 0o644); err != nil {
		t.Fatal(err)
	}
	cp := servertest.Start(t, func(c *server.Config) { c.SKUFile = skuFile })
	ncImage(t, cp.DataDir)
	skus := "/subscriptions/" + cp.Creds.SubscriptionID + "/providers/Microsoft.NetworkCloud/rackSkus"

	var list struct {
		Value []struct {
			Name       string `json:"name"`
			Properties struct {
				RackType        string `json:"rackType"`
				ComputeMachines []struct {
					RackSlot   int `json:"rackSlot"`
					Properties struct {
						MachineSKUID string         `json:"machineSkuId"`
						CPUFeatures  []string       `json:"cpuFeatures"`
						BIOSSettings map[string]any `json:"biosSettings"`
					} `json:"properties"`
				} `json:"computeMachines"`
			} `json:"properties"`
		} `json:"value"`
	}
	ncGet(t, cp.Client, skus, &list)
	var names []string
	for _, v := range list.Value {
		names = append(names, v.Name)
		switch v.Name {
		case "acme-compute-4":
			if v.Properties.RackType != "Compute" || len(v.Properties.ComputeMachines) != 4 ||
				v.Properties.ComputeMachines[0].Properties.MachineSKUID != "acme-compute-1s-96c" ||
				v.Properties.ComputeMachines[0].Properties.BIOSSettings["SMTControl"] != "Enabled" {
				t.Errorf("acme-compute-4 = %+v, want 4 slots of acme-compute-1s-96c with its BIOS settings", v.Properties)
			}
		case "citadel-compute-8":
			if m := v.Properties.ComputeMachines; len(m) != 8 || !slices.Contains(m[0].Properties.CPUFeatures, "amx_tile") {
				t.Errorf("citadel-compute-8 = %+v, want 8 slots of AMX machines", v.Properties)
			}
		}
	}
	slices.Sort(names)
	if want := []string{"acme-aggregator", "acme-compute-4", "citadel-aggregator", "citadel-compute-16", "citadel-compute-8", "citadel-hyperconverged", "citadel-single"}; !slices.Equal(names, want) {
		t.Errorf("rack SKUs = %v, want %v", names, want)
	}
	if r, err := cp.Client.Do(t.Context(), http.MethodGet, skus+"/nosuch?api-version="+ncAPI, nil); err != nil || r.Status != http.StatusNotFound {
		t.Errorf("GET rackSkus/nosuch = %v %v, want 404", r, err)
	}

	catalog := machine.Builtin()
	if err := catalog.Load(strings.NewReader(ncOperatorSKUs)); err != nil {
		t.Fatal(err)
	}
	cl := newNCCluster(t, cp, sim.Spec{Name: "op", ComputeRacks: 3, MachinesPerRack: 2,
		AggregatorRack: "acme-aggregator", ComputeRack: "acme-compute-4", ComputeMachine: "acme-compute-1s-96c"}, catalog, nil)
	clusterID := ncDefine(t, cp.Client, "op", cl)
	if st := ncOperation(t, cp.Client, http.MethodPost, clusterID+"/deploy?api-version="+ncAPI, map[string]any{}); st.Status != "Succeeded" {
		t.Fatalf("deploy: %+v", st)
	}
	var m ncMachine
	ncGet(t, cp.Client, strings.Replace(clusterID, "clusters/op", "bareMetalMachines/opr1m1", 1), &m)
	if m.Properties.MachineSKUID != "acme-compute-1s-96c" || m.Properties.DetailedStatus != "Provisioned" ||
		!strings.Contains(m.Properties.HardwareInventory.AdditionalHostInformation, "96 cores (AMD EPYC 9654)") {
		t.Errorf("opr1m1 = %s, %s, %q; want the operator's SKU, Provisioned, its CPU in the inventory",
			m.Properties.MachineSKUID, m.Properties.DetailedStatus, m.Properties.HardwareInventory.AdditionalHostInformation)
	}
}
