package e2e

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/update"
)

// TestConfigurationDrift changes machines behind the control plane's back
// (a kernel installed by hand, firmware flashed back, a BIOS setting
// changed in setup): in Audit mode the drift is reported on the machine
// and in the activity log and left alone; switched to Enforce, the machine
// whose kernel drifted is reimaged, the one whose BIOS drifted has the
// setting staged on its BMC and is restarted (not reimaged) through the
// disruption guard, the one whose BIOS firmware was flashed back has its
// BMC flash the imported release's package again, and all come back in
// sync; for firmware no imported release has, Enforce says what to
// import.
func TestConfigurationDrift(t *testing.T) {
	t.Parallel()
	s := startRolloutSite(t, "dri", map[string]any{"strategyType": "Rack", "thresholdType": "PercentSuccess", "thresholdValue": 100},
		func(c *server.Config) {
			c.DriftCheck, c.FirmwareCheck, c.PolicyScan = 500*time.Millisecond, time.Second, time.Second
		})
	sub := "/subscriptions/" + s.cp.Creds.SubscriptionID
	// Citadel's built-in definition, assigned: drift shows in compliance.
	if r, err := s.cp.Client.Do(t.Context(), http.MethodPut, sub+"/providers/Microsoft.Authorization/policyAssignments/machine-drift?api-version=2022-06-01",
		map[string]any{"properties": map[string]any{"policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/be7d8a43-15ca-5bbb-bda2-5f8608d67f12"}}); err != nil || r.Status != http.StatusCreated {
		t.Fatalf("assigning the built-in drift policy: %v %v", r, err)
	}
	nonCompliant := func() []string {
		r, err := s.cp.Client.Do(t.Context(), http.MethodPost, sub+"/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults?api-version=2019-10-01&$filter="+
			url.QueryEscape("complianceState eq 'NonCompliant'"), nil)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("policy states: %v %v", r, err)
		}
		var states struct {
			Value []struct {
				ResourceID string `json:"resourceId"`
			} `json:"value"`
		}
		json.Unmarshal(r.Body, &states)
		var ids []string
		for _, v := range states.Value {
			ids = append(ids, strings.ToLower(v.ResourceID))
		}
		return ids
	}
	type drift struct {
		Properties struct {
			DetailedStatus     string `json:"detailedStatus"`
			MachineSKUID       string `json:"machineSkuId"`
			ConfigurationDrift struct {
				Status string `json:"status"`
				Items  []struct {
					Item, Desired, Observed string
				} `json:"items"`
				Correction string `json:"correction"`
			} `json:"configurationDrift"`
		} `json:"properties"`
	}
	machine := s.machineID("drir2m1")
	getOf := func(id string) drift {
		var d drift
		ncGet(t, s.cp.Client, id, &d)
		return d
	}
	get := func() drift { return getOf(machine) }
	waitUntil(t, "drift checked", 20*time.Second, func() bool { return get().Properties.ConfigurationDrift.Status == "InSync" })

	start := time.Now()
	if err := s.cl.Drift("drir2m1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the drift detected", 20*time.Second, func() bool { return get().Properties.ConfigurationDrift.Status == "Drifted" })
	t.Logf("drift detected in %v", time.Since(start).Round(time.Millisecond))
	d := get().Properties.ConfigurationDrift
	if len(d.Items) != 1 || d.Items[0].Item != "kernel" || d.Items[0].Observed != "6.14.2-local" || d.Items[0].Desired != "6.12.0-citadel" {
		t.Errorf("drift = %+v, want the kernel 6.14.2-local instead of 6.12.0-citadel", d)
	}
	alFlush(t, s.cp)
	events := alEvents(t, alQuery(t, s.cp.Client, s.cp.Creds.SubscriptionID, url.Values{"$filter": {alFilter(start, time.Time{}, "resourceUri eq '"+machine+"'")}}))
	found := false
	for _, e := range events {
		found = found || e.OperationName == "Citadel.Platform/configurationDrift/action" && e.Level == "Warning"
	}
	if !found {
		t.Errorf("no drift event in the activity log for %s: %+v", machine, events)
	}
	waitUntil(t, "the drifted machine non-compliant", 30*time.Second, func() bool {
		return slices.Equal(nonCompliant(), []string{strings.ToLower(machine)})
	})

	// A BIOS setting changed by hand in setup, read from the BMC with the
	// firmware (every second here).
	tuned := s.machineID("drir3m1")
	tunedBMC := s.cl.Machine("drir3m1").BMC
	resets := tunedBMC.ResetCount()
	attr, from, to, err := s.cl.DriftBIOS("drir3m1")
	if err != nil {
		t.Fatal(err)
	}

	// Firmware older than the SKU's baseline (BIOS 2.1.0, BMC 7.10.30.00),
	// flashed back by hand: the BIOS on drir1m1, with a release imported
	// that has a BIOS package for the SKU above the baseline; the BMC on
	// drir1m2, for which no release has a package.
	flashed, flashedBMC := s.machineID("drir1m1"), s.machineID("drir1m2")
	bios, bmc := s.cl.Machine("drir1m1").BMC, s.cl.Machine("drir1m2").BMC
	sku := getOf(flashed).Properties.MachineSKUID
	s.importFirmware(t, "4.1.1", sku, "BIOS", "2.5.0")
	biosResets := bios.ResetCount()
	if err := bios.SetFirmwareVersion("BIOS", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := bmc.SetFirmwareVersion("BMC", "7.0.0"); err != nil {
		t.Fatal(err)
	}

	time.Sleep(2 * time.Second) // Audit: several checks, no correction
	if d := get().Properties; d.ConfigurationDrift.Status != "Drifted" || d.ConfigurationDrift.Correction != "" || s.cl.Machine("drir2m1").BMC.Reimages() != 1 {
		t.Errorf("in Audit mode: %+v, %d reimages; want the drift reported and left alone", d, s.cl.Machine("drir2m1").BMC.Reimages())
	}
	waitUntil(t, "the BIOS drift seen", 20*time.Second, func() bool { return getOf(tuned).Properties.ConfigurationDrift.Status == "Drifted" })
	d = getOf(tuned).Properties.ConfigurationDrift
	if len(d.Items) != 1 || d.Items[0].Item != "bios/"+attr || d.Items[0].Desired != fmt.Sprint(from) || d.Items[0].Observed != fmt.Sprint(to) || d.Correction != "" {
		t.Errorf("drir3m1's drift = %+v, want only bios/%s %v instead of %v, not corrected", d, attr, to, from)
	}
	if got := tunedBMC.BIOSAttributes()[attr]; got != to || tunedBMC.ResetCount() != resets || len(tunedBMC.PendingBIOSAttributes()) != 0 {
		t.Errorf("in Audit mode drir3m1's BIOS has %s %v, %v pending, %d resets since; want it left alone", attr, got, tunedBMC.PendingBIOSAttributes(), tunedBMC.ResetCount()-resets)
	}

	waitUntil(t, "the old firmware seen", 20*time.Second, func() bool {
		return getOf(flashed).Properties.ConfigurationDrift.Status == "Drifted" && getOf(flashedBMC).Properties.ConfigurationDrift.Status == "Drifted"
	})
	if d := getOf(flashed).Properties.ConfigurationDrift; len(d.Items) != 1 || d.Items[0].Item != "firmware/BIOS" || d.Items[0].Observed != "1.0.0" || d.Correction != "" {
		t.Errorf("drir1m1's drift = %+v, want its BIOS 1.0.0 below the baseline, not corrected", d)
	}
	if d := getOf(flashedBMC).Properties.ConfigurationDrift; len(d.Items) != 1 || d.Items[0].Item != "firmware/BMC" || d.Items[0].Observed != "7.0.0" {
		t.Errorf("drir1m2's drift = %+v, want its BMC 7.0.0 below the baseline", d)
	}
	if got := bios.FirmwareVersion("BIOS"); got != "1.0.0" {
		t.Errorf("in Audit mode drir1m1's BIOS firmware became %s; want it left at 1.0.0", got)
	}

	// Enforce: the machine is reimaged, and its pristine OS is in sync.
	s.cl.props["configurationDriftMode"] = "Enforce"
	if st := ncOperation(t, s.cp.Client, http.MethodPut, s.clusterID+"?api-version="+ncAPI, s.cl.body(s.cp.Creds.SubscriptionID, s.cl.managerLocation)); st.Status != "Succeeded" {
		t.Fatalf("PUT cluster with configurationDriftMode Enforce: %+v", st)
	}
	enforced := time.Now()
	// drir3m1's correction shows from the restart's request until the BMC
	// is read again, at the first check after the restart (0.5 s here).
	var correction string
	watchTuned := func() bool {
		d := getOf(tuned).Properties.ConfigurationDrift
		correction = cmp.Or(d.Correction, correction)
		return d.Status == "InSync"
	}
	var last drift
	deadline := time.Now().Add(60 * time.Second)
	for last = get(); last.Properties.ConfigurationDrift.Status != "InSync" || last.Properties.DetailedStatus != "Provisioned"; last = get() {
		if time.Now().After(deadline) {
			t.Fatalf("the drift not corrected within 60 s: %+v", last.Properties)
		}
		watchTuned()
		time.Sleep(25 * time.Millisecond)
	}
	t.Logf("drift corrected %v after Enforce", time.Since(enforced).Round(time.Millisecond))
	if n := s.cl.Machine("drir2m1").BMC.Reimages(); n != 2 {
		t.Errorf("drir2m1 was reimaged %d times in all, want twice (deploy, correction)", n)
	}
	for _, m := range s.cl.Machines {
		if m.Name != "drir2m1" && m.BMC.Reimages() != 1 {
			t.Errorf("%s reimaged %d times: only the machine whose OS drifted should be", m.Name, m.BMC.Reimages())
		}
	}
	// The BIOS setting: staged on the BMC, applied by a restart the control
	// plane requested, and read back in sync; no reimage.
	waitUntil(t, "the BIOS setting corrected", 30*time.Second, watchTuned)
	t.Logf("BIOS drift corrected within %v after Enforce", time.Since(enforced).Round(time.Millisecond))
	if correction != "The BIOS settings were staged and a restart was requested to apply them." {
		t.Errorf("drir3m1's correction = %q, want the BIOS settings staged and a restart requested", correction)
	}
	if got := tunedBMC.BIOSAttributes()[attr]; got != from || tunedBMC.ResetCount() == resets || tunedBMC.Reimages() != 1 || len(tunedBMC.PendingBIOSAttributes()) != 0 {
		t.Errorf("drir3m1 after the correction: %s %v, %v pending, %d resets, %d reimages; want %v applied by a reset, no reimage",
			attr, got, tunedBMC.PendingBIOSAttributes(), tunedBMC.ResetCount()-resets, tunedBMC.Reimages(), from)
	}
	alFlush(t, s.cp)
	restarts := 0
	for _, e := range alEvents(t, alQuery(t, s.cp.Client, s.cp.Creds.SubscriptionID, url.Values{"$filter": {alFilter(enforced, time.Time{}, "resourceUri eq '"+tuned+"'")}})) {
		if e.OperationName == "Microsoft.NetworkCloud/bareMetalMachines/restart/action" && e.Status == "Succeeded" && e.Caller == "Citadel" {
			restarts++
		}
	}
	if restarts != 1 {
		t.Errorf("the activity log has %d restarts of drir3m1 by Citadel that succeeded, want 1", restarts)
	}

	// The BIOS firmware: flashed by drir1m1's BMC from the imported
	// release, without a reset or a reimage, and read back in sync.
	waitUntil(t, "the BIOS firmware flashed", 30*time.Second, func() bool {
		return getOf(flashed).Properties.ConfigurationDrift.Status == "InSync"
	})
	t.Logf("firmware drift corrected within %v after Enforce", time.Since(enforced).Round(time.Millisecond))
	if got := bios.FirmwareVersion("BIOS"); got != "2.5.0" || bios.Reimages() != 1 || bios.ResetCount() != biosResets {
		t.Errorf("drir1m1's BIOS firmware %s, %d reimages, %d resets since; want 2.5.0 flashed, no reimage, no reset",
			got, bios.Reimages(), bios.ResetCount()-biosResets)
	}
	alFlush(t, s.cp)
	flashes := 0
	for _, p := range alQuery(t, s.cp.Client, s.cp.Creds.SubscriptionID, url.Values{"$filter": {alFilter(enforced, time.Time{}, "resourceUri eq '"+flashed+"'")}}) {
		for _, raw := range p.Items {
			var e struct {
				OperationName struct{ Value string }
				Level         string
				Description   string
			}
			json.Unmarshal(raw, &e)
			if e.OperationName.Value == "Citadel.Platform/configurationDrift/action" && e.Level == "Informational" &&
				strings.HasPrefix(e.Description, "drir1m1's BIOS firmware was flashed to 2.5.0 (firmware/bios-2.5.0.bin of release 4.1.1)") {
				flashes++
			}
		}
	}
	if flashes != 1 {
		t.Errorf("the activity log has %d events of drir1m1's BIOS firmware flashed, want 1", flashes)
	}

	// The BMC firmware: no release has a package; Enforce says what to
	// import, and leaves it.
	want := "No imported release has BMC firmware 7.10.30.00 or newer for machine SKU " + sku +
		": import a release with a firmware target for machine SKU " + sku + " and component BMC."
	waitUntil(t, "the missing firmware noted", 20*time.Second, func() bool {
		return getOf(flashedBMC).Properties.ConfigurationDrift.Correction == want
	})
	if err := bmc.SetFirmwareVersion("BMC", "7.10.30.00"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the BMC firmware back to the baseline", 20*time.Second, func() bool {
		return getOf(flashedBMC).Properties.ConfigurationDrift.Status == "InSync"
	})
	waitUntil(t, "the machines compliant again", 30*time.Second, func() bool { return len(nonCompliant()) == 0 })

	r, err := s.cp.Client.Do(t.Context(), http.MethodPut, s.clusterID+"?api-version="+ncAPI, func() map[string]any {
		s.cl.props["configurationDriftMode"] = "Sometimes"
		return s.cl.body(s.cp.Creds.SubscriptionID, s.cl.managerLocation)
	}())
	if err != nil || r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "configurationDriftMode must be Audit or Enforce") {
		t.Errorf("PUT cluster with configurationDriftMode Sometimes = %v %v, want 400", r, err)
	}
}

// importFirmware signs and imports a release of clusterVersion whose one
// artifact is a simulated firmware package (package redfishsim) for the
// component of machine SKU sku, at version.
func (s *rolloutSite) importFirmware(t testing.TB, clusterVersion, sku, component, version string) {
	t.Helper()
	s.bundles++
	pkg := append([]byte("citadel-firmware "+component+" "+version+"\n"), make([]byte, 4<<10)...)
	rand.Read(pkg[len(pkg)-4<<10:])
	var bundle bytes.Buffer
	if err := update.Build(&bundle, update.BuildOptions{Keys: s.keys, Roots: [][]byte{s.root}, ClusterVersion: clusterVersion,
		Notes: "Citadel " + clusterVersion, Version: s.bundles, Targets: []update.Target{{
			Name: "firmware/" + strings.ToLower(component) + "-" + version + ".bin", Kind: update.KindFirmware, Version: version,
			MachineSKU: sku, Component: component, Size: int64(len(pkg)), Content: bytes.NewReader(pkg),
		}}}); err != nil {
		t.Fatal(err)
	}
	s.call(t, http.MethodPost, "/citadel/updates/bundles", bundle.Bytes(), 201)
}
