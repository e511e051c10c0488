package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/server"
)

// TestConfigurationDrift changes a machine behind the control plane's back
// (its kernel installed by hand): in Audit mode the drift is reported on
// the machine and in the activity log and left alone; switched to Enforce,
// the machine is reimaged and comes back in sync.
func TestConfigurationDrift(t *testing.T) {
	t.Parallel()
	s := startRolloutSite(t, "dri", map[string]any{"strategyType": "Rack", "thresholdType": "PercentSuccess", "thresholdValue": 100},
		func(c *server.Config) { c.DriftCheck = 500 * time.Millisecond })
	type drift struct {
		Properties struct {
			DetailedStatus     string `json:"detailedStatus"`
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
	get := func() drift {
		var d drift
		ncGet(t, s.cp.Client, machine, &d)
		return d
	}
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
	time.Sleep(2 * time.Second) // Audit: several checks, no correction
	if d := get().Properties; d.ConfigurationDrift.Status != "Drifted" || d.ConfigurationDrift.Correction != "" || s.cl.Machine("drir2m1").BMC.Reimages() != 1 {
		t.Errorf("in Audit mode: %+v, %d reimages; want the drift reported and left alone", d, s.cl.Machine("drir2m1").BMC.Reimages())
	}

	// Enforce: the machine is reimaged, and its pristine OS is in sync.
	s.cl.props["configurationDriftMode"] = "Enforce"
	if st := ncOperation(t, s.cp.Client, http.MethodPut, s.clusterID+"?api-version="+ncAPI, s.cl.body(s.cp.Creds.SubscriptionID, s.cl.managerLocation)); st.Status != "Succeeded" {
		t.Fatalf("PUT cluster with configurationDriftMode Enforce: %+v", st)
	}
	enforced := time.Now()
	waitUntil(t, "the drift corrected", 60*time.Second, func() bool {
		p := get().Properties
		return p.ConfigurationDrift.Status == "InSync" && p.DetailedStatus == "Provisioned"
	})
	t.Logf("drift corrected %v after Enforce", time.Since(enforced).Round(time.Millisecond))
	if n := s.cl.Machine("drir2m1").BMC.Reimages(); n != 2 {
		t.Errorf("drir2m1 was reimaged %d times in all, want twice (deploy, correction)", n)
	}
	for _, m := range s.cl.Machines {
		if m.Name != "drir2m1" && m.BMC.Reimages() != 1 {
			t.Errorf("%s reimaged %d times: only the drifted machine should be", m.Name, m.BMC.Reimages())
		}
	}

	r, err := s.cp.Client.Do(t.Context(), http.MethodPut, s.clusterID+"?api-version="+ncAPI, func() map[string]any {
		s.cl.props["configurationDriftMode"] = "Sometimes"
		return s.cl.body(s.cp.Creds.SubscriptionID, s.cl.managerLocation)
	}())
	if err != nil || r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "configurationDriftMode must be Audit or Enforce") {
		t.Errorf("PUT cluster with configurationDriftMode Sometimes = %v %v, want 400", r, err)
	}
}
