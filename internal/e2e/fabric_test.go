package e2e

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// fabricAPI is the Microsoft.ManagedNetworkFabric api-version the tests use.
const fabricAPI = "2025-07-15"

// TestFabric provisions a 4-rack network fabric through az, with its
// simulated devices bootstrapping by ZTP, then stages isolation domains
// and commits them in batches (Start, Rollback, Start, Continue), catches
// a hand edit on a device and corrects it with refreshConfiguration,
// finds a swapped cable with validateConfiguration, and holds changes
// under a Configuration lock.
func TestFabric(t *testing.T) {
	t.Parallel()
	requireAz(t)
	s := startSiteOf(t, sim.Spec{Name: "fab", ComputeRacks: 4, MachinesPerRack: 2}, map[string]any{"strategyType": "Rack", "thresholdType": "PercentSuccess", "thresholdValue": 100}, 0,
		rolloutOptions, func(c *server.Config) { c.DeviceReport, c.DriftCheck = time.Second, time.Second })
	az := newAzCLI(t, s.cp)
	t.Cleanup(func() { az.logTimings(t) })
	c := s.cp.Creds
	az.login(t, c)
	sub := c.SubscriptionID
	group := "/subscriptions/" + sub + "/resourceGroups/fabric"
	nmf := group + "/providers/Microsoft.ManagedNetworkFabric/"
	fabricID := nmf + "networkFabrics/" + s.cl.FabricName()
	create := func(id string, body map[string]any) {
		t.Helper()
		az.ok(t, createArgs(id, jsonArg(t, body))...)
	}
	action := func(id, name string, body any) map[string]any {
		t.Helper()
		var out struct {
			Properties map[string]any `json:"properties"`
		}
		az.json(t, &out, "resource", "invoke-action", "--ids", id, "--action", name, "--api-version", fabricAPI, "--request-body", jsonArg(t, body))
		return out.Properties
	}
	az.ok(t, "group", "create", "-n", "fabric", "-l", "local")

	create(nmf+"networkFabricControllers/nfc1", map[string]any{"location": "local", "properties": map[string]any{"ipv4AddressSpace": "10.250.0.0/19"}})
	fabricBody := map[string]any{"location": "local", "properties": map[string]any{
		"networkFabricSku": "M4-A400-A100-C16-aa", "networkFabricControllerId": nmf + "networkFabricControllers/nfc1",
		"fabricASN": 65048, "ipv4Prefix": "10.254.0.0/19", "rackCount": 4, "serverCountPerRack": 2,
		"managementNetworkConfiguration": map[string]any{"infrastructureVpnConfiguration": map[string]any{"peeringOption": "OptionA"},
			"workloadVpnConfiguration": map[string]any{"peeringOption": "OptionA"}},
		"terminalServerConfiguration": map[string]any{"username": "admin", "password": "ts-secret",
			"primaryIpv4Prefix": "10.254.32.0/30", "secondaryIpv4Prefix": "10.254.32.4/30"},
	}}
	t.Run("bad fabric refused", func(t *testing.T) {
		props := map[string]any{}
		json.Unmarshal([]byte(jsonArg(t, fabricBody["properties"])), &props)
		props["rackCount"] = 5
		bad := map[string]any{"location": "local", "properties": props}
		az.fail(t, []string{"properties.rackCount", "more than SKU M4-A400-A100-C16-aa allows (4)"}, createArgs(nmf+"networkFabrics/toobig", jsonArg(t, bad))...)
	})
	create(fabricID, fabricBody)

	// The fabric laid out its racks and devices: an aggregator rack and
	// four compute racks, three devices each.
	devices := s.cl.Devices()
	if len(devices) != 15 {
		t.Fatalf("the simulated fabric has %d devices, want 15", len(devices))
	}
	var fabric struct {
		Properties struct {
			Racks               []string `json:"racks"`
			ConfigurationState  string   `json:"configurationState"`
			AdministrativeState string   `json:"administrativeState"`
		} `json:"properties"`
	}
	az.json(t, &fabric, "resource", "show", "--ids", fabricID, "--api-version", fabricAPI)
	if len(fabric.Properties.Racks) != 5 {
		t.Fatalf("fabric racks = %v, want 5", fabric.Properties.Racks)
	}
	if strings.Contains(jsonArg(t, fabric), "ts-secret") {
		t.Error("the terminal server's password is shown")
	}
	// Each device gets its serial number (the first with az, the rest
	// through the API), then the fabric is provisioned: the devices
	// bootstrap with ZTP and run their configuration.
	for i, d := range devices {
		if i == 0 {
			// A device is the system's (az resource update, a PUT, is
			// refused): its serial number is PATCHed.
			az.ok(t, "rest", "--method", "patch", "--url", nmf+"networkDevices/"+d+"?api-version="+fabricAPI,
				"--body", jsonArg(t, map[string]any{"properties": map[string]any{"serialNumber": sim.DeviceSerial(d)}}))
			continue
		}
		if r, err := s.cp.Client.Do(t.Context(), http.MethodPatch, nmf+"networkDevices/"+d+"?api-version="+fabricAPI,
			map[string]any{"properties": map[string]any{"serialNumber": sim.DeviceSerial(d)}}); err != nil || r.Status != http.StatusOK {
			t.Fatalf("serial number of %s: %v %v", d, r, err)
		}
	}
	ca, err := os.ReadFile(s.cp.Creds.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cl.StartSwitches(s.cp.AgentURL, ca, 0, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))); err != nil {
		t.Fatal(err)
	}
	action(fabricID, "provision", map[string]any{})
	az.json(t, &fabric, "resource", "show", "--ids", fabricID, "--api-version", fabricAPI)
	if fabric.Properties.ConfigurationState != "Provisioned" || fabric.Properties.AdministrativeState != "Enabled" {
		t.Fatalf("fabric after provision: %+v", fabric.Properties)
	}
	tor := s.cl.FabricName() + "-CompRack1-TOR1"
	ce := s.cl.FabricName() + "-AggrRack-CE1"
	if host := s.cl.Switch(ce).Running()["DEVICE_METADATA"]["localhost"]["bgp_asn"]; host != "65048" {
		t.Errorf("%s runs BGP AS %q, want the fabric's 65048", ce, host)
	}
	for _, d := range devices {
		if sw := s.cl.Switch(d); sw.Device() == "" || sw.AppliedRevision() < 1 {
			t.Fatalf("device %s did not bootstrap: state %s", d, sw.State())
		}
	}
	if host := s.cl.Switch(tor).Running()["DEVICE_METADATA"]["localhost"]["hostname"]; host != strings.ToLower(tor) {
		t.Errorf("%s runs hostname %q", tor, host)
	}

	// An L2 isolation domain, staged and enabled, then committed in two
	// batches: Start gives it to the CEs only, Rollback takes it back,
	// Start and Continue give it to every device.
	l2 := nmf + "l2IsolationDomains/l2a"
	create(l2, map[string]any{"location": "local", "properties": map[string]any{"networkFabricId": fabricID, "vlanId": 501, "mtu": 1500}})
	az.fail(t, []string{"properties.vlanId", "from 100 to 4094"}, createArgs(nmf+"l2IsolationDomains/l2bad",
		jsonArg(t, map[string]any{"location": "local", "properties": map[string]any{"networkFabricId": fabricID, "vlanId": 5000}}))...)
	action(l2, "updateAdministrativeState", map[string]any{"state": "Enable"})
	var domain struct {
		Properties struct{ ConfigurationState, AdministrativeState string } `json:"properties"`
	}
	az.json(t, &domain, "resource", "show", "--ids", l2, "--api-version", fabricAPI)
	if domain.Properties.ConfigurationState != "PendingCommit" || domain.Properties.AdministrativeState != "Enabled" {
		t.Fatalf("l2 domain before the commit: %+v", domain.Properties)
	}
	hasVLAN := func(device string) bool { _, ok := s.cl.Switch(device).Running()["VLAN"]["Vlan501"]; return ok }
	tor2 := s.cl.FabricName() + "-CompRack1-TOR2"
	action(fabricID, "commitConfiguration", map[string]any{"commitStage": "Start", "devices": []string{nmf + "networkDevices/" + tor}})
	if !hasVLAN(tor) || hasVLAN(tor2) {
		t.Errorf("after Start on %s: it runs Vlan501 %v, %s runs it %v; want only the batch", tor, hasVLAN(tor), tor2, hasVLAN(tor2))
	}
	var batches struct {
		Properties struct {
			ActiveCommitBatches []string `json:"activeCommitBatches"`
		} `json:"properties"`
	}
	az.json(t, &batches, "resource", "show", "--ids", fabricID, "--api-version", fabricAPI)
	if len(batches.Properties.ActiveCommitBatches) != 1 {
		t.Errorf("activeCommitBatches = %v, want one", batches.Properties.ActiveCommitBatches)
	}
	action(fabricID, "commitConfiguration", map[string]any{"commitStage": "Rollback"})
	if hasVLAN(tor) {
		t.Errorf("%s still runs Vlan501 after the Rollback", tor)
	}
	action(fabricID, "commitConfiguration", map[string]any{"commitStage": "Start"})
	if hasVLAN(tor) {
		t.Errorf("%s runs Vlan501 after a Start on the CEs", tor)
	}
	action(fabricID, "commitConfiguration", map[string]any{"commitStage": "Continue"})
	if !hasVLAN(tor) || !hasVLAN(tor2) {
		t.Fatalf("the ToRs do not run Vlan501 after Continue: %v", s.cl.Switch(tor).Running()["VLAN"])
	}
	az.json(t, &domain, "resource", "show", "--ids", l2, "--api-version", fabricAPI)
	if domain.Properties.ConfigurationState != "Succeeded" {
		t.Errorf("l2 domain after the commit: %+v", domain.Properties)
	}

	// An L3 isolation domain with an internal network: the ToRs route its
	// subnet (the gateway is the subnet's first address) in its VRF.
	l3 := nmf + "l3IsolationDomains/l3a"
	create(l3, map[string]any{"location": "local", "properties": map[string]any{"networkFabricId": fabricID}})
	internal := l3 + "/internalNetworks/in601"
	az.ok(t, "resource", "create", "--id", internal, "--api-version", fabricAPI, "-p",
		jsonArg(t, map[string]any{"vlanId": 601, "connectedIPv4Subnets": []any{map[string]any{"prefix": "10.60.1.0/24"}}}))
	// Its option A external network: a VLAN sub-interface on each CE's
	// provider-edge port and an eBGP session in the domain's VRF.
	external := l3 + "/externalNetworks/ext701"
	az.ok(t, "resource", "create", "--id", external, "--api-version", fabricAPI, "-p", jsonArg(t, map[string]any{"peeringOption": "OptionA",
		"optionAProperties": map[string]any{"vlanId": 701, "peerASN": 65200, "primaryIpv4Prefix": "10.70.0.0/31"}}))
	for _, id := range []string{l3, internal, external} {
		action(id, "updateAdministrativeState", map[string]any{"state": "Enable"})
	}
	action(fabricID, "commitConfiguration", map[string]any{})
	if _, ok := s.cl.Switch(tor).Running()["VLAN_INTERFACE"]["Vlan601|10.60.1.1/24"]; !ok {
		t.Errorf("%s does not route 10.60.1.0/24 on Vlan601: %v", tor, s.cl.Switch(tor).Running()["VLAN_INTERFACE"])
	}
	if _, ok := s.cl.Switch(ce).Running()["VLAN_SUB_INTERFACE"]["Ethernet112.701|10.70.0.0/31"]; !ok {
		t.Errorf("%s does not reach the provider edge on Ethernet112.701: %v", ce, s.cl.Switch(ce).Running()["VLAN_SUB_INTERFACE"])
	}

	// The cluster's networks on those domains reach every machine's
	// agent: a VLAN and a bridge each on its host.
	location := ncClusterLocation(t, s.cp.Client, s.clusterID)
	ncNetworks := "/subscriptions/" + sub + "/resourceGroups/" + s.cl.Spec.Name + "/providers/Microsoft.NetworkCloud/"
	az.ok(t, createNC(ncNetworks+"l2Networks/net501", jsonArg(t, map[string]any{"location": "local", "extendedLocation": location,
		"properties": map[string]any{"l2IsolationDomainId": l2}}))...)
	az.ok(t, createNC(ncNetworks+"l3Networks/net601", jsonArg(t, map[string]any{"location": "local", "extendedLocation": location,
		"properties": map[string]any{"l3IsolationDomainId": l3, "vlan": 601, "ipAllocationType": "IPV4", "ipv4ConnectedPrefix": "10.60.1.0/24"}}))...)
	waitUntil(t, "the cluster's networks on every host", 30*time.Second, func() bool {
		for _, m := range s.cl.Machines {
			d, err := s.cl.Desired(m.Name)
			if err != nil || len(d.Networks) != 2 || d.Networks[0].VLAN != 501 || d.Networks[1].VLAN != 601 {
				return false
			}
		}
		return true
	})

	// A hand edit on a ToR is caught within 20 s and undone by
	// refreshConfiguration.
	type device struct {
		Properties struct {
			ConfigurationState string `json:"configurationState"`
			ConfigurationDrift struct {
				Status string   `json:"status"`
				Items  []string `json:"items"`
			} `json:"configurationDrift"`
		} `json:"properties"`
	}
	getDevice := func(name string) device {
		var d device
		r, err := s.cp.Client.Do(t.Context(), http.MethodGet, nmf+"networkDevices/"+name+"?api-version="+fabricAPI, nil)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("GET device %s: %v %v", name, r, err)
		}
		json.Unmarshal(r.Body, &d)
		return d
	}
	start := time.Now()
	if _, err := s.cl.DriftSwitch(tor); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the drift detected", 20*time.Second, func() bool { return getDevice(tor).Properties.ConfigurationDrift.Status == "Drifted" })
	t.Logf("device drift detected in %v", time.Since(start).Round(time.Millisecond))
	d := getDevice(tor)
	if d.Properties.ConfigurationState != "DeferredControl" || len(d.Properties.ConfigurationDrift.Items) != 1 ||
		!strings.Contains(d.Properties.ConfigurationDrift.Items[0], "mtu") {
		t.Errorf("drifted device: %+v", d.Properties)
	}
	deviceID := nmf + "networkDevices/" + tor
	waitUntil(t, "the drift in the activity log", 20*time.Second, func() bool {
		events := alEvents(t, alQuery(t, s.cp.Client, sub, url.Values{"$filter": {alFilter(start, time.Time{}, "resourceUri eq '"+deviceID+"'")}}))
		return slices.ContainsFunc(events, func(e alEvent) bool {
			return e.OperationName == "Citadel.Platform/configurationDrift/action" && e.Level == "Warning"
		})
	})
	action(nmf+"networkDevices/"+tor, "refreshConfiguration", map[string]any{})
	if d := getDevice(tor); d.Properties.ConfigurationDrift.Status != "InSync" || d.Properties.ConfigurationState != "Provisioned" {
		t.Errorf("device after refreshConfiguration: %+v", d.Properties)
	}
	t.Logf("drift corrected %v after it was made", time.Since(start).Round(time.Millisecond))

	// validateConfiguration names a drifted device; the fabric's
	// refreshConfiguration corrects every drifted one.
	if _, err := s.cl.DriftSwitch(ce); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the CE's drift detected", 20*time.Second, func() bool { return getDevice(ce).Properties.ConfigurationDrift.Status == "Drifted" })
	if out := action(fabricID, "validateConfiguration", map[string]any{"validateAction": "Configuration"}); out["configurationState"] != "Failed" ||
		!strings.Contains(jsonArg(t, out["error"]), ce+" drifted") {
		t.Errorf("configuration validation with %s drifted: %v", ce, out)
	}
	action(fabricID, "refreshConfiguration", map[string]any{})
	if d := getDevice(ce); d.Properties.ConfigurationDrift.Status != "InSync" {
		t.Errorf("%s after the fabric's refreshConfiguration: %+v", ce, d.Properties)
	}
	if out := action(fabricID, "validateConfiguration", map[string]any{"validateAction": "Configuration"}); out["configurationState"] != "Succeeded" {
		t.Errorf("configuration validation after the refresh: %v", out)
	}

	// Two machines' cables swapped at the ToR: the cabling check names
	// both ports.
	if out := action(fabricID, "validateConfiguration", map[string]any{"validateAction": "Cabling"}); out["configurationState"] != "Succeeded" {
		t.Fatalf("cabling before the swap: %v", out)
	}
	if err := s.cl.SwapCables("fabr1m1", "fabr1m2"); err != nil {
		t.Fatal(err)
	}
	var msg string
	waitUntil(t, "the swapped cables found", 30*time.Second, func() bool {
		out := action(fabricID, "validateConfiguration", map[string]any{"validateAction": "Cabling"})
		b, _ := json.Marshal(out["error"])
		msg = string(b)
		return strings.Contains(msg, "swapped") // once both machines reported what they hear
	})
	for _, want := range []string{"swapped", "Ethernet8", "Ethernet12"} {
		if !strings.Contains(msg, want) {
			t.Errorf("cabling error %s does not name %q", msg, want)
		}
	}
	if out := action(fabricID, "validateConfiguration", map[string]any{"validateAction": "Connectivity"}); out["configurationState"] != "Succeeded" {
		t.Errorf("connectivity: %v", out)
	}

	// A Configuration lock holds every change until it is lifted.
	action(fabricID, "lockFabric", map[string]any{"lockType": "Configuration", "action": "Lock"})
	az.fail(t, []string{"FabricLocked"}, createArgs(nmf+"l2IsolationDomains/l2b",
		jsonArg(t, map[string]any{"location": "local", "properties": map[string]any{"networkFabricId": fabricID, "vlanId": 502}}))...)
	az.fail(t, []string{"holds a Configuration lock"}, "resource", "invoke-action", "--ids", fabricID, "--action", "commitConfiguration",
		"--api-version", fabricAPI, "--request-body", "{}")
	action(fabricID, "lockFabric", map[string]any{"lockType": "Configuration", "action": "Unlock"})
	create(nmf+"l2IsolationDomains/l2b", map[string]any{"location": "local", "properties": map[string]any{"networkFabricId": fabricID, "vlanId": 502}})

	// A reboot with ZTP: the device bootstraps again and runs its
	// configuration.
	action(nmf+"networkDevices/"+ce, "reboot", map[string]any{"rebootType": "GracefulRebootWithZTP"})
	if sw := s.cl.Switch(ce); sw.State() != "running" || !slices.Contains(devices, ce) {
		t.Errorf("%s after a reboot with ZTP: %s", ce, sw.State())
	}
	// Without ZTP, the device comes back with what it ran.
	rev := s.cl.Switch(tor).AppliedRevision()
	action(nmf+"networkDevices/"+tor, "reboot", map[string]any{"rebootType": "UngracefulRebootWithoutZTP"})
	waitUntil(t, tor+" back after its reboot", 20*time.Second, func() bool { return s.cl.Switch(tor).State() == "running" })
	if got := s.cl.Switch(tor).AppliedRevision(); got != rev {
		t.Errorf("%s runs revision %d after a reboot without ZTP, want %d", tor, got, rev)
	}

	// Deprovisioned, the fabric's devices are refused until it is
	// provisioned again: they wait for a bootstrap.
	action(fabricID, "deprovision", map[string]any{})
	az.json(t, &fabric, "resource", "show", "--ids", fabricID, "--api-version", fabricAPI)
	if fabric.Properties.ConfigurationState != "Deprovisioned" {
		t.Errorf("fabric after deprovision: %+v", fabric.Properties)
	}
	waitUntil(t, "the devices waiting for a bootstrap", 20*time.Second, func() bool {
		return !slices.ContainsFunc(devices, func(d string) bool { return s.cl.Switch(d).State() != "ztp" })
	})
}

// createArgs are az's arguments to create the top-level resource id of
// the fabric's namespace from body.
func createArgs(id, body string) []string {
	parts := strings.Split(id, "/") // "", subscriptions, sub, resourceGroups, rg, providers, ns, type, name
	return []string{"resource", "create", "-g", parts[4], "-n", parts[8], "--resource-type", parts[6] + "/" + parts[7],
		"--api-version", fabricAPI, "--is-full-object", "-p", body}
}

// createNC are az's arguments to create the NetworkCloud resource id
// from body.
func createNC(id, body string) []string {
	parts := strings.Split(id, "/")
	return []string{"resource", "create", "-g", parts[4], "-n", parts[8], "--resource-type", parts[6] + "/" + parts[7],
		"--api-version", ncAPI, "--is-full-object", "-p", body}
}
