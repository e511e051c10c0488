package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agentauth"
	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
	"github.com/citadel-cloud/citadel/internal/sim"
	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/update"
)

// rolloutSite is a deployed cluster whose agents run, on a control plane
// that trusts a vendor's root.
type rolloutSite struct {
	cp        *servertest.ControlPlane
	cl        *ncCluster
	clusterID string
	keys      update.Keys
	root      []byte
	bundles   int64 // the metadata version of the last bundle built
}

// rolloutOptions make a control plane whose agents report often and whose
// machines' updates take a moment. A machine gets a minute to update: the
// suite runs these beside tests that saturate the machine, and the
// failures the tests look at are reported by the agents, not timed out.
func rolloutOptions(c *server.Config) {
	c.AgentHeartbeat = 500 * time.Millisecond
	c.Liveness = liveness.Config{NotReadyAfter: 3 * time.Second, FailedAfter: 6 * time.Second, PartitionWindow: 3 * time.Second, AskEvery: time.Second}
	c.MachineUpdateTimeout = time.Minute
}

// startRolloutSite starts one of 12 machines (three control-plane
// machines in the aggregator rack, three compute racks of three), whose
// updates take 300 ms.
func startRolloutSite(t testing.TB, name string, strategy map[string]any, options ...func(*server.Config)) *rolloutSite {
	t.Helper()
	return startSiteOf(t, sim.Spec{Name: name, ComputeRacks: 3, MachinesPerRack: 3, Updates: host.UpdateBehavior{Duration: 300 * time.Millisecond}},
		strategy, 300*time.Millisecond, append([]func(*server.Config){rolloutOptions}, options...)...)
}

// startSiteOf starts a control plane that trusts a vendor's root and the
// site of spec on it, with strategy, agents heartbeating every interval
// (0: as the control plane asks).
func startSiteOf(t testing.TB, spec sim.Spec, strategy map[string]any, interval time.Duration, options ...func(*server.Config)) *rolloutSite {
	t.Helper()
	cp := servertest.Start(t, options...)
	ncImage(t, cp.DataDir)
	keys, err := update.GenerateKeys(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	root, err := update.NewRoot(keys, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s := &rolloutSite{cp: cp, keys: keys, root: root}
	s.call(t, http.MethodPut, "/citadel/updates/trust", root, 200)
	return s.withCluster(t, spec, strategy, interval)
}

// withCluster deploys another cluster, of spec, on the same control plane
// and starts its agents.
func (s *rolloutSite) withCluster(t testing.TB, spec sim.Spec, strategy map[string]any, interval time.Duration) *rolloutSite {
	t.Helper()
	cl := newNCCluster(t, s.cp, spec, nil, nil)
	cl.props["updateStrategy"] = strategy
	clusterID := ncDefine(t, s.cp.Client, spec.Name, cl)
	if st := ncOperation(t, s.cp.Client, http.MethodPost, clusterID+"/deploy?api-version="+ncAPI, map[string]any{}); st.Status != "Succeeded" {
		t.Fatalf("deploy %s: %+v", spec.Name, st)
	}
	c := &rolloutSite{cp: s.cp, cl: cl, clusterID: clusterID, keys: s.keys, root: s.root, bundles: s.bundles}
	c.startAgents(t, interval)
	return c
}

// startAgents starts every machine's agent, heartbeating every interval
// (0: as the control plane asks), and waits until all are Ready.
func (s *rolloutSite) startAgents(t testing.TB, interval time.Duration) {
	t.Helper()
	ca, err := os.ReadFile(s.cp.Creds.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := s.cp.Agents.IssueToken(t.Context(), agentauth.Grant{Cluster: s.clusterID}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cl.StartAgents(sim.AgentOptions{Server: s.cp.AgentURL, ServerCA: ca, Token: token, Interval: interval,
		MachineID: s.machineID, StateDir: t.TempDir(), PerRequest: len(s.cl.Machines) > 500}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "every agent Ready", 120*time.Second, func() bool {
		for _, m := range s.cl.Machines {
			if st, _ := s.cp.Fleet.Tracker().State(s.machineID(m.Name)); st != liveness.Ready {
				return false
			}
		}
		return true
	})
}

func (s *rolloutSite) machineID(name string) string {
	return strings.Replace(s.clusterID, "clusters/"+s.cl.Spec.Name, "bareMetalMachines/"+name, 1)
}

// call sends body to one of the control plane's non-ARM endpoints and
// checks the status.
func (s *rolloutSite) call(t testing.TB, method, path string, body []byte, want int) []byte {
	t.Helper()
	r, err := s.cp.Client.Do(t.Context(), method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Expect(want); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r.Body
}

// importRelease signs a release of version (a node image, the agent and a
// firmware package) and imports it.
func (s *rolloutSite) importRelease(t testing.TB, version string) {
	t.Helper()
	s.bundles++
	target := func(name string, kind update.Kind, sku string) update.Target {
		b := make([]byte, 64<<10)
		rand.Read(b)
		a := update.Target{Name: name, Kind: kind, Version: version, MachineSKU: sku, Size: int64(len(b)), Content: bytes.NewReader(b)}
		if kind == update.KindFirmware {
			a.Component = "BIOS"
		}
		return a
	}
	var bundle bytes.Buffer
	if err := update.Build(&bundle, update.BuildOptions{Keys: s.keys, Roots: [][]byte{s.root}, ClusterVersion: version,
		Notes: "Citadel " + version, Version: s.bundles, Targets: []update.Target{
			target("node-image-"+version+".img", update.KindNodeImage, ""),
			target("citadel-agent-"+version, update.KindAgent, ""),
			target("firmware/bios-"+version+".bin", update.KindFirmware, "citadel-compute-8"),
		}}); err != nil {
		t.Fatal(err)
	}
	s.call(t, http.MethodPost, "/citadel/updates/bundles", bundle.Bytes(), 201)
}

// rolloutCluster is the part of the cluster the tests look at.
type rolloutCluster struct {
	Properties struct {
		ClusterVersion           string `json:"clusterVersion"`
		DetailedStatus           string `json:"detailedStatus"`
		DetailedStatusMessage    string `json:"detailedStatusMessage"`
		AvailableUpgradeVersions []struct {
			TargetClusterVersion string `json:"targetClusterVersion"`
		} `json:"availableUpgradeVersions"`
		ActionStates []ncActionState `json:"actionStates"`
	} `json:"properties"`
}

func (s *rolloutSite) cluster(t testing.TB) rolloutCluster {
	t.Helper()
	var c rolloutCluster
	ncGet(t, s.cp.Client, s.clusterID, &c)
	return c
}

// versions maps each machine to the version it runs, as its resource
// says, with "*" appended while the update holds it (cordoned, with a
// target) and "!" when it is cordoned.
func (s *rolloutSite) versions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range s.cl.Machines {
		var r struct {
			Properties struct {
				MachineClusterVersion string          `json:"machineClusterVersion"`
				CordonStatus          string          `json:"cordonStatus"`
				UpdateTarget          json.RawMessage `json:"updateTarget"`
			} `json:"properties"`
		}
		ncGet(t, s.cp.Client, s.machineID(m.Name), &r)
		v := r.Properties.MachineClusterVersion
		if len(r.Properties.UpdateTarget) > 0 && string(r.Properties.UpdateTarget) != "null" {
			v += "*"
		}
		if r.Properties.CordonStatus == "Cordoned" {
			v += "!"
		}
		out[m.Name] = v
	}
	return out
}

// watchUnavailable checks, at every write to every machine until the
// test ends, that no rack has more than maxUnavailable machines held by
// an update, and returns the most it saw in one rack.
func watchUnavailable(t *testing.T, st *store.Store, maxUnavailable int) func() int {
	var mu sync.Mutex
	most := 0
	held := map[string]string{} // machine key → rack, while held
	events := st.Watch(t.Context(), "resources/microsoft.networkcloud/baremetalmachines|", 0)
	go func() {
		for ev := range events {
			var rec struct {
				Resource struct {
					Properties struct {
						RackID       string          `json:"rackId"`
						UpdateTarget json.RawMessage `json:"updateTarget"`
					} `json:"properties"`
				} `json:"resource"`
			}
			json.Unmarshal(ev.KV.Value, &rec)
			p := rec.Resource.Properties
			mu.Lock()
			if !ev.Deleted && len(p.UpdateTarget) > 0 && string(p.UpdateTarget) != "null" {
				held[ev.KV.Key] = p.RackID
			} else {
				delete(held, ev.KV.Key)
			}
			perRack := map[string]int{}
			for _, rack := range held {
				perRack[rack]++
				if perRack[rack] > maxUnavailable {
					t.Errorf("rack %s has %d machines down for the update at revision %d, more than maxUnavailable %d", rack, perRack[rack], ev.KV.Revision, maxUnavailable)
				}
				most = max(most, perRack[rack])
			}
			mu.Unlock()
		}
	}()
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// TestClusterUpdate rolls a cluster out to a signed release rack by rack,
// with an invariant checker on every machine write, then has a rack fail
// its threshold: the update stops and that rack is rolled back.
func TestClusterUpdate(t *testing.T) {
	t.Parallel()
	s := startRolloutSite(t, "upd", map[string]any{"strategyType": "Rack", "thresholdType": "CountSuccess", "thresholdValue": 3, "maxUnavailable": 2})
	most := watchUnavailable(t, s.cp.Store, 2)
	// VMs on the compute machines move off each machine before it updates.
	vs := vmsOn(t, s)
	vms := vs.createVMs(t, "vm", 6, 16, 4, nil)
	checked := vs.watchVMs(t)

	s.importRelease(t, "4.2.0")
	if c := s.cluster(t); len(c.Properties.AvailableUpgradeVersions) != 1 || c.Properties.AvailableUpgradeVersions[0].TargetClusterVersion != "4.2.0" {
		t.Fatalf("availableUpgradeVersions after the import = %+v, want 4.2.0", c.Properties.AvailableUpgradeVersions)
	}
	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			body map[string]any
			want string
		}{
			{map[string]any{"targetClusterVersion": "4.9.0"}, "No imported release is 4.9.0"},
			{map[string]any{"targetClusterVersion": "4.1.0"}, "is not newer"},
			{map[string]any{"targetClusterVersion": "4.2.0", "safeguardMode": "Some"}, "safeguardMode must be All or None"},
			{map[string]any{}, "targetClusterVersion is required"},
		} {
			r, err := s.cp.Client.Do(t.Context(), http.MethodPost, s.clusterID+"/updateVersion?api-version="+ncAPI, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), tc.want) {
				t.Errorf("updateVersion %v = %d %s, want 400 %q", tc.body, r.Status, r.Body, tc.want)
			}
		}
	})

	t.Run("safeguard", func(t *testing.T) {
		livenessState := func() string {
			var m struct {
				Properties struct {
					LivenessState string `json:"livenessState"`
				} `json:"properties"`
			}
			ncGet(t, s.cp.Client, s.machineID("updr3m3"), &m)
			return m.Properties.LivenessState
		}
		s.cl.StopAgent("updr3m3")
		// The safeguard reads the machines' resources, which follow the
		// tracker's transition: an update asked for before the resource
		// shows it would start.
		waitUntil(t, "updr3m3 not Ready", 30*time.Second, func() bool { return livenessState() != "Ready" })
		r, err := s.cp.Client.Do(t.Context(), http.MethodPost, s.clusterID+"/updateVersion?api-version="+ncAPI, map[string]any{"targetClusterVersion": "4.2.0"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "UpdateSafeguardNotMet") || !strings.Contains(string(r.Body), "updr3m3") {
			t.Errorf("updateVersion with updr3m3 down = %d %s, want 409 UpdateSafeguardNotMet naming it", r.Status, r.Body)
		}
		if err := s.cl.StartAgent("updr3m3"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "updr3m3 Ready again", 20*time.Second, func() bool { return livenessState() == "Ready" })
	})

	start := time.Now()
	st := ncOperation(t, s.cp.Client, http.MethodPost, s.clusterID+"/updateVersion?api-version="+ncAPI, map[string]any{"targetClusterVersion": "4.2.0"})
	t.Logf("12 machines in 4 racks updated in %v (300 ms a machine)", time.Since(start).Round(time.Millisecond))
	if st.Status != "Succeeded" {
		t.Fatalf("updateVersion 4.2.0: %+v", st)
	}
	for name, v := range s.versions(t) {
		if v != "4.2.0" {
			t.Errorf("%s after the update: %q, want 4.2.0, uncordoned, no target", name, v)
		}
	}
	c := s.cluster(t)
	if p := c.Properties; p.ClusterVersion != "4.2.0" || p.DetailedStatus != "Running" || len(p.AvailableUpgradeVersions) != 0 {
		t.Errorf("cluster after the update = %+v, want Running 4.2.0 with nothing more to upgrade to", p)
	}
	if got := most(); got != 2 {
		t.Errorf("at most %d machines of a rack were down at once, want maxUnavailable 2 used", got)
	}
	twice, hosts := checked()
	if len(twice) > 0 {
		t.Errorf("VMs ran on two machines at once: %v", twice)
	}
	for _, name := range vms {
		if len(hosts[name]) < 2 {
			t.Errorf("%s ran only on %v: it did not move off its machine for the machine's update", name, hosts[name])
		}
	}
	vs.runningOnce(t, vms)
	steps := ""
	for _, a := range c.Properties.ActionStates {
		if strings.HasSuffix(a.ActionType, "/updateVersion/action") {
			for _, s := range a.StepStates {
				steps += s.StepName + "; "
			}
		}
	}
	if want := "Update rack upd-rack0; Update rack upd-rack1; Update rack upd-rack2; Update rack upd-rack3; "; steps != want {
		t.Errorf("updateVersion's steps = %q, want %q", steps, want)
	}

	t.Run("a rack that fails its threshold is rolled back", func(t *testing.T) {
		s.importRelease(t, "4.3.0")
		if err := s.cl.FailNextUpdate("updr2m2"); err != nil {
			t.Fatal(err)
		}
		st := ncOperation(t, s.cp.Client, http.MethodPost, s.clusterID+"/updateVersion?api-version="+ncAPI, map[string]any{"targetClusterVersion": "4.3.0"})
		if st.Status != "Failed" || st.Error.Code != "UpdateThresholdNotMet" || !strings.Contains(st.Error.Message, "rack upd-rack2") ||
			!strings.Contains(st.Error.Message, "rolled back to 4.2.0") {
			t.Fatalf("updateVersion 4.3.0 with updr2m2 failing = %+v, want UpdateThresholdNotMet at rack upd-rack2, rolled back", st)
		}
		want := map[string]string{}
		for _, m := range s.cl.Machines {
			switch m.Rack {
			case 0, 1:
				want[m.Name] = "4.3.0"
			default: // rack 2 rolled back, rack 3 never started
				want[m.Name] = "4.2.0"
			}
		}
		got := s.versions(t)
		for name := range want {
			if got[name] != want[name] {
				t.Errorf("%s after the failed update: %q, want %q", name, got[name], want[name])
			}
		}
		if p := s.cluster(t).Properties; p.ClusterVersion != "4.2.0" || p.DetailedStatus != "Degraded" {
			t.Errorf("cluster after the failed update = %s %s (%s), want Degraded on 4.2.0", p.DetailedStatus, p.ClusterVersion, p.DetailedStatusMessage)
		}
		// The same update again goes on from the failed rack.
		if st := ncOperation(t, s.cp.Client, http.MethodPost, s.clusterID+"/updateVersion?api-version="+ncAPI, map[string]any{"targetClusterVersion": "4.3.0"}); st.Status != "Succeeded" {
			why := ""
			if st.Error != nil {
				why = st.Error.Code + ": " + st.Error.Message
			}
			t.Fatalf("updateVersion 4.3.0 again: %s %s (progress %v)", st.Status, why, st.Progress)
		}
		if p := s.cluster(t).Properties; p.ClusterVersion != "4.3.0" || p.DetailedStatus != "Running" {
			t.Errorf("cluster after the retried update = %s %s, want Running 4.3.0", p.DetailedStatus, p.ClusterVersion)
		}
	})
	if got := most(); got > 2 {
		t.Errorf("at most %d machines of a rack down at once, want at most 2", got)
	}
}

// TestClusterUpdatePauseAndRestart pauses an update after each rack and
// continues it, and restarts the control plane in the middle of a rack:
// the update goes on where it was.
func TestClusterUpdatePauseAndRestart(t *testing.T) {
	t.Parallel()
	dir, addr, agentAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	onDir := func(c *server.Config) { c.DataDir, c.Listen, c.AgentListen = dir, addr, agentAddr }
	s := startRolloutSite(t, "pau", map[string]any{"strategyType": "PauseAfterRack", "thresholdType": "PercentSuccess", "thresholdValue": 100, "maxUnavailable": 1}, onDir)
	s.importRelease(t, "4.2.0")

	r, err := s.cp.Client.Do(t.Context(), http.MethodPost, s.clusterID+"/updateVersion?api-version="+ncAPI, map[string]any{"targetClusterVersion": "4.2.0"})
	if err != nil || r.Expect(202) != nil {
		t.Fatalf("updateVersion: %v %v", r, err)
	}
	waitStatus := func(t *testing.T, cp *servertest.ControlPlane, want string) rolloutCluster {
		t.Helper()
		var c rolloutCluster
		waitUntil(t, "the cluster "+want, 60*time.Second, func() bool {
			ncGet(t, cp.Client, s.clusterID, &c)
			return c.Properties.DetailedStatus == want
		})
		return c
	}
	c := waitStatus(t, s.cp, "UpdatePaused")
	if !strings.Contains(c.Properties.DetailedStatusMessage, "paused after rack pau-rack0") {
		t.Errorf("paused: %q, want after rack pau-rack0", c.Properties.DetailedStatusMessage)
	}
	if r, _ := s.cp.Client.Do(t.Context(), http.MethodPost, s.clusterID+"/updateVersion?api-version="+ncAPI, map[string]any{"targetClusterVersion": "4.2.0"}); r.Status != http.StatusConflict {
		t.Errorf("updateVersion while paused = %d %s, want 409", r.Status, r.Body)
	}

	// Continue, and stop the control plane while rack 1 is on its way.
	s.call(t, http.MethodPost, s.clusterID+"/continueUpdateVersion?api-version="+ncAPI, []byte(`{"machineGroupTargetingMode":"AlphaByRack"}`), 202)
	waitUntil(t, "rack 1 under way", 30*time.Second, func() bool { return s.versions(t)["paur1m2"] == "4.2.0" })
	s.cp.Close()
	second := servertest.Start(t, append([]func(*server.Config){rolloutOptions}, onDir)...)
	s.cp = second
	c = waitStatus(t, second, "UpdatePaused")
	if !strings.Contains(c.Properties.DetailedStatusMessage, "paused after rack pau-rack1") {
		t.Errorf("paused again: %q, want after rack pau-rack1", c.Properties.DetailedStatusMessage)
	}
	for _, name := range []string{"paur1m1", "paur1m2", "paur1m3"} {
		if v := s.versions(t)[name]; v != "4.2.0" {
			t.Errorf("%s after the restart: %q, want 4.2.0", name, v)
		}
	}
	s.call(t, http.MethodPost, s.clusterID+"/continueUpdateVersion?api-version="+ncAPI, []byte(`{}`), 202)
	waitUntil(t, "paused after rack 2", 60*time.Second, func() bool {
		return strings.Contains(s.cluster(t).Properties.DetailedStatusMessage, "paused after rack pau-rack2")
	})
	s.call(t, http.MethodPost, s.clusterID+"/continueUpdateVersion?api-version="+ncAPI, []byte(`{}`), 202)
	c = waitStatus(t, second, "Running")
	if c.Properties.ClusterVersion != "4.2.0" {
		t.Errorf("cluster after the last rack = %+v, want 4.2.0", c.Properties)
	}
	for name, v := range s.versions(t) {
		if v != "4.2.0" {
			t.Errorf("%s: %q, want 4.2.0", name, v)
		}
	}
}
