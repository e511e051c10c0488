package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent"
	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentauth"
	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// TestAgentsAndLiveness runs the real agent code on a simulated site of an
// aggregator and 3 compute racks of 4 machines, with the liveness rules
// shortened: every agent joins and reports; a bad, expired or reused
// token and a revoked certificate are refused; an agent killed makes its
// machine NotReady and, once its BMC says the power is off, Failed; a rack
// cut off is Unreachable and none of its machines is declared Failed.
func TestAgentsAndLiveness(t *testing.T) {
	t.Parallel()
	cp := servertest.Start(t, func(c *server.Config) {
		c.AgentHeartbeat, c.AgentCertTTL = time.Second, 30*time.Second
		c.Liveness = liveness.Config{NotReadyAfter: 2 * time.Second, FailedAfter: 3 * time.Second,
			PartitionWindow: 3 * time.Second, AskEvery: time.Second}
	})
	ncImage(t, cp.DataDir)
	cl := newNCCluster(t, cp, sim.Spec{Name: "lv", ComputeRacks: 3, MachinesPerRack: 4}, nil, nil)
	clusterID := ncDefine(t, cp.Client, "lv", cl)
	if st := ncOperation(t, cp.Client, http.MethodPost, clusterID+"/deploy?api-version="+ncAPI, map[string]any{}); st.Status != "Succeeded" {
		t.Fatalf("deploy: %+v", st)
	}
	machineID := func(name string) string {
		return strings.Replace(clusterID, "clusters/lv", "bareMetalMachines/"+name, 1)
	}
	ca, err := os.ReadFile(cp.Creds.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	token, _, err := cp.Agents.IssueToken(ctx, agentauth.Grant{Cluster: clusterID}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// machineState reads what the resource says of a machine's liveness.
	type state struct {
		Properties struct {
			LivenessState  string             `json:"livenessState"`
			ReadyState     string             `json:"readyState"`
			AgentVersion   string             `json:"agentVersion"`
			OAMIPv4Address string             `json:"oamIpv4Address"`
			AgentInventory agentapi.Inventory `json:"agentInventory"`
		} `json:"properties"`
	}
	liveState := func(name string) string {
		var s state
		ncGet(t, cp.Client, machineID(name), &s)
		return s.Properties.LivenessState
	}

	agentState := t.TempDir()
	if err := cl.StartAgents(sim.AgentOptions{Server: cp.AgentURL, ServerCA: ca, Token: token, Interval: 300 * time.Millisecond,
		MachineID: machineID, StateDir: agentState}); err != nil {
		t.Fatal(err)
	}
	t.Run("every agent joins and reports", func(t *testing.T) {
		waitUntil(t, "15 machines Ready", 30*time.Second, func() bool { return cp.Fleet.Tracker().Stats().ByState[liveness.Ready] == 15 })
		// The tracker knows first; the machine's resource follows its writes.
		var s state
		waitUntil(t, "lvr1m1's resource shows what its agent reported", 10*time.Second, func() bool {
			ncGet(t, cp.Client, machineID("lvr1m1"), &s)
			return s.Properties.LivenessState == "Ready" && s.Properties.AgentVersion != "" && s.Properties.OAMIPv4Address != ""
		})
		p := s.Properties
		if p.LivenessState != "Ready" || p.ReadyState != "True" || p.AgentVersion != agent.Version ||
			p.AgentInventory.CPU.Model != "Intel Xeon Gold 6548Y+" || !slices.Contains(p.AgentInventory.CPU.Flags, "amx_tile") ||
			p.AgentInventory.MemoryBytes != 512<<30 || len(p.AgentInventory.NICs) != 4 || p.OAMIPv4Address != "10.1.1.10/24" {
			t.Errorf("lvr1m1 = %+v, want Ready with its agent's version, OAM address and the inventory of its SKU", p)
		}
	})

	t.Run("certificates renewed before they expire, across a node CA rotation", func(t *testing.T) {
		// Certificates last 30 s here; an agent renews with a third left.
		// The node CA is replaced first: the agent's certificate from the
		// old one keeps working, and its renewal comes from the new one.
		first, err := os.ReadFile(filepath.Join(agentState, "lvr1m2", "agent.crt"))
		if err != nil {
			t.Fatal(err)
		}
		oldCA := string(cp.Agents.CACertPEM())
		if err := cp.Agents.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the new node CA in use", 5*time.Second, func() bool { return string(cp.Agents.CACertPEM()) != oldCA })
		var renewed []byte
		waitUntil(t, "lvr1m2 renewed its certificate", 25*time.Second, func() bool {
			renewed, _ = os.ReadFile(filepath.Join(agentState, "lvr1m2", "agent.crt"))
			return len(renewed) > 0 && string(renewed) != string(first)
		})
		// Heartbeats on the renewed certificates keep the machines Ready:
		// one the server refused would stay silent. A machine the loaded
		// box left silent a moment (the suite runs beside heavy tests)
		// comes back.
		for _, name := range []string{"lvr1m2", "lvr1m1", "lvr3m4"} {
			waitUntil(t, name+" Ready on its renewed certificate", 15*time.Second, func() bool { return liveState(name) == "Ready" })
		}
		if err := parsePEMCert(t, renewed).CheckSignatureFrom(parsePEMCert(t, cp.Agents.CACertPEM())); err != nil {
			t.Errorf("the renewed certificate is not from the new node CA: %v", err)
		}
	})

	t.Run("desired state", func(t *testing.T) {
		const name = "lvr2m2"
		if st := ncOperation(t, cp.Client, http.MethodPost, machineID(name)+"/cordon?api-version="+ncAPI, map[string]string{"evacuate": "False"}); st.Status != "Succeeded" {
			t.Fatalf("cordon: %+v", st)
		}
		waitUntil(t, name+"'s agent applies the cordon", 10*time.Second, func() bool {
			d, err := cl.Desired(name)
			return err == nil && d.Cordoned && strings.HasSuffix(d.OSImage, ".iso")
		})
		if st := ncOperation(t, cp.Client, http.MethodPost, machineID(name)+"/uncordon?api-version="+ncAPI, map[string]any{}); st.Status != "Succeeded" {
			t.Fatalf("uncordon: %+v", st)
		}
		waitUntil(t, name+"'s agent applies the uncordon", 10*time.Second, func() bool {
			d, err := cl.Desired(name)
			return err == nil && !d.Cordoned
		})
	})

	t.Run("join refused", func(t *testing.T) {
		expired, _, _ := cp.Agents.IssueToken(ctx, agentauth.Grant{Cluster: clusterID}, time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		for _, tc := range []struct{ name, token string }{
			{"bad token", "not-a-token"},
			{"expired token", expired},
			{"token already used by this machine", token},
		} {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := agent.New(agent.Config{Server: cp.AgentURL, ServerCA: ca, Machine: machineID("lvr1m2"), Token: tc.token,
				Host: host.NewSim(agentapi.Inventory{})}).Run(ctx)
			cancel()
			if err == nil || !strings.Contains(err.Error(), "403") {
				t.Errorf("%s: agent.Run = %v, want a refused join (403)", tc.name, err)
			}
		}
	})

	// The machine revoked below comes back as this very host, read by the
	// real Linux host driver.
	t.Run("revoked certificate refused", func(t *testing.T) {
		const name = "lvr3m4"
		if err := cp.Agents.Revoke(ctx, machineID(name)); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, name+" NotReady after its revocation", 15*time.Second, func() bool { return liveState(name) == "NotReady" })
		desiredFile := filepath.Join(t.TempDir(), "desired.json")
		fresh, _, _ := cp.Agents.IssueToken(ctx, agentauth.Grant{Cluster: clusterID, Machine: machineID(name)}, time.Hour)
		cl.StopAgent(name)
		restarted := agent.New(agent.Config{Server: cp.AgentURL, ServerCA: ca, Machine: machineID(name), Token: fresh,
			Host: host.NewLinux("/").DesiredAt(desiredFile), Interval: 300 * time.Millisecond})
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		go restarted.Run(runCtx)
		waitUntil(t, name+" Ready again after joining with a new token", 15*time.Second, func() bool { return liveState(name) == "Ready" })
		var s state
		ncGet(t, cp.Client, machineID(name), &s)
		cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
		meminfo, _ := os.ReadFile("/proc/meminfo")
		var memKB uint64
		for _, line := range strings.Split(string(meminfo), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				fmt.Sscan(v, &memKB)
			}
		}
		waitUntil(t, name+"'s Linux host writes its desired state", 10*time.Second, func() bool {
			var applied agentapi.Desired
			b, err := os.ReadFile(desiredFile)
			return err == nil && json.Unmarshal(b, &applied) == nil && applied.Revision > 0 && applied.OSImage != ""
		})
		inv := s.Properties.AgentInventory
		if inv.CPU.Threads != strings.Count(string(cpuinfo), "\nprocessor")+1 || inv.MemoryBytes != memKB*1024 || inv.OS.Kernel == "" {
			t.Errorf("%s reported %d threads, %d bytes, kernel %q; /proc says %d processors and MemTotal %d kB",
				name, inv.CPU.Threads, inv.MemoryBytes, inv.OS.Kernel, strings.Count(string(cpuinfo), "\nprocessor")+1, memKB)
		}
	})

	t.Run("agent killed, then power off", func(t *testing.T) {
		const name = "lvr1m1"
		cl.StopAgent(name)
		waitUntil(t, name+" NotReady", 10*time.Second, func() bool { return liveState(name) == "NotReady" })
		// The BMC says the machine is on: silence alone is not a failure.
		time.Sleep(4 * time.Second)
		if got := liveState(name); got != "NotReady" {
			t.Fatalf("%s with its BMC On after the grace: %s, want NotReady", name, got)
		}
		if err := cl.Machine(name).BMC.SetPowerState("Off"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, name+" Failed once its BMC reports Off", 15*time.Second, func() bool { return liveState(name) == "Failed" })
	})

	t.Run("rack partition", func(t *testing.T) {
		const rack = 2
		cl.Partition(rack, true)
		rackID := strings.Replace(clusterID, "clusters/lv", "racks/lv-rack2", 1)
		rackState := func() string {
			var r state
			ncGet(t, cp.Client, rackID, &r)
			return r.Properties.LivenessState
		}
		waitUntil(t, "rack 2 Unreachable", 15*time.Second, func() bool { return rackState() == "Unreachable" })
		time.Sleep(5 * time.Second) // past the grace, with every BMC of the rack unreachable
		for _, m := range cl.Machines {
			if m.Rack != rack {
				continue
			}
			if got := liveState(m.Name); got != "Unreachable" {
				t.Errorf("%s in the cut-off rack: %s, want Unreachable and never Failed", m.Name, got)
			}
		}
		cl.Partition(rack, false)
		waitUntil(t, "rack 2 back", 20*time.Second, func() bool {
			return rackState() == "Ready" && liveState("lvr2m1") == "Ready"
		})
	})
}

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("not PEM: %q", b)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
