package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/redfishsim"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// The name of citadel up's cluster (its resource group is "citadel-site",
// its manager "citadel-cm"), and the API versions it speaks.
const (
	upCluster = "citadel"
	upAPI     = "2026-07-01"
	groupAPI  = "2021-04-01"
)

// updateBehaviorFlags adds the flags that say how a simulated site's
// machines take updates.
func updateBehaviorFlags(fs *flag.FlagSet) *host.UpdateBehavior {
	var b host.UpdateBehavior
	fs.DurationVar(&b.Duration, "update-duration", 5*time.Second, "how long a simulated machine takes to switch cluster versions")
	fs.Float64Var(&b.FailureRate, "update-failure-rate", 0, "the probability (0-1) that a simulated machine's update fails")
	return &b
}

// siteGroup is the resource group of a simulated site's cluster, and
// siteManager its cluster manager.
func siteGroup(cluster string) string   { return cluster + "-site" }
func siteManager(cluster string) string { return cluster + "-cm" }

// runUp runs the whole thing on this machine: the control plane, a
// simulated multi-rack site whose BMCs it manages over Redfish, and the
// cluster those machines form, deployed through the ARM API. It prints
// how to reach it with az and runs until interrupted.
func runUp(ctx context.Context, args []string, out io.Writer) error {
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("citadel up", flag.ContinueOnError)
	cfg.AddFlags(fs)
	racks := fs.Int("racks", 3, "compute racks of the simulated site (an aggregator rack comes with them)")
	perRack := fs.Int("machines-per-rack", 16, "machines in each compute rack (1-16)")
	updates := updateBehaviorFlags(fs)
	version := fs.String("cluster-version", "4.1.0", "the cluster version to deploy")
	level := fs.String("log-level", "warn", "the server's log level: debug, info, warn or error")
	simControl := fs.String("sim-control", defaultSimControl,
		"where to serve the simulated site's fault API for citadel sim: plain HTTP without authentication, loopback only (empty: off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *racks < 3 || *perRack < 1 || *perRack > 16 {
		return errors.New("a multi-rack site needs --racks 3 or more and --machines-per-rack from 1 to 16")
	}
	log, err := newLogger(os.Stderr, *level)
	if err != nil {
		return err
	}
	cfg.Logger = log
	simLn, err := listenSimControl(*simControl)
	if err != nil {
		return err
	}
	if simLn != nil {
		defer simLn.Close()
	}
	progress := func(format string, args ...any) { fmt.Fprintf(out, "citadel up: "+format+"\n", args...) }

	progress("starting the control plane (data in %s)", cfg.DataDir)
	s, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	creds, err := client.LoadCredentials(s.CredentialsFile)
	if err != nil {
		return err
	}
	c, err := client.New(creds)
	if err != nil {
		return err
	}

	if err := ensureImage(filepath.Join(cfg.DataDir, "images"), *version, progress); err != nil {
		return err
	}
	site, err := runSite(ctx, c, creds, s.AgentURL, filepath.Join(cfg.DataDir, "sim"),
		sim.Spec{Name: upCluster, ComputeRacks: *racks, MachinesPerRack: *perRack, Updates: *updates}, *version, progress)
	if err != nil {
		return err
	}
	defer site.Close()
	simURL := serveSimControl(simLn, site)
	operator, passwordFile, err := ensureOperator(ctx, s, c, creds)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, `
Citadel is up: %d machines in %d racks, cluster %q Running.

  portal            %sportal/  (user %s, password in %s)
  ARM endpoint      %s
  credentials       %s
  CA certificate    %s
  agent API         %s

Use it with az:

  export REQUESTS_CA_BUNDLE=%s
  az cloud register -n citadel --endpoint-resource-manager %s
  az cloud set -n citadel
  az login --service-principal -u %s -p "$(python3 -c 'import json; print(json.load(open("%s"))["clientSecret"])')" --tenant %s
  az resource list -g %s --resource-type Microsoft.NetworkCloud/bareMetalMachines -o table

`, len(site.Machines), *racks+1, upCluster, creds.ARMEndpoint, operator, passwordFile, creds.ARMEndpoint, s.CredentialsFile, creds.CACertFile, s.AgentURL,
		creds.CACertFile, creds.ARMEndpoint, creds.ClientID, s.CredentialsFile, creds.TenantID, siteGroup(upCluster))
	if simURL != "" {
		fmt.Fprintf(out, `Inject faults into the simulated site (fault API %s, plain HTTP on loopback):

  citadel sim machines --sim %s
  citadel sim fault --sim %s power-off --machine %sr1m1

`, simURL, simURL, simURL, upCluster)
	}
	fmt.Fprintf(out, "Press Ctrl-C to stop; a second run reuses %s.\n", cfg.DataDir)

	select {
	case <-ctx.Done():
		progress("stopping")
		return nil
	case err := <-s.Err():
		return err
	}
}

// runSite runs a simulated site against a control plane, through its
// public APIs only: it starts the BMCs (their state kept under dir),
// defines and deploys their cluster through ARM, and starts the agents
// with a bootstrap token from the cluster's issueAgentToken action.
func runSite(ctx context.Context, c *client.Client, creds client.Credentials, agentAPI, dir string, spec sim.Spec, version string,
	progress func(string, ...any)) (*sim.Site, error) {
	site, err := startSite(dir, creds, spec)
	if err != nil {
		return nil, err
	}
	progress("simulated site: an aggregator rack and %d compute racks, %d BMCs on 127.0.0.1", spec.ComputeRacks, len(site.Machines))
	if err := deploySite(ctx, c, creds, site, version, progress); err != nil {
		site.Close()
		return nil, err
	}
	if err := startAgents(ctx, c, creds, agentAPI, site, filepath.Join(dir, "agents"), progress); err != nil {
		site.Close()
		return nil, err
	}
	if err := provisionFabric(ctx, c, creds, agentAPI, site, progress); err != nil {
		site.Close()
		return nil, err
	}
	return site, nil
}

// startSite starts the simulated BMCs, which fetch images from the
// control plane and trust its CA, with a password kept under dir.
func startSite(dir string, creds client.Credentials, spec sim.Spec) (*sim.Site, error) {
	password, err := keptSecret(filepath.Join(dir, "bmc-password"))
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(creds.CACertFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	images := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return sim.Start(spec, sim.Options{
		StateDir: dir,
		BMC: redfishsim.Options{Username: "root", Password: password, PowerOnDelay: 500 * time.Millisecond,
			PowerOffDelay: 200 * time.Millisecond, FetchImages: true, HTTPClient: images},
	})
}

// startAgents runs the agent of every simulated machine, admitted with a
// bootstrap token from the cluster's issueAgentToken action (agents that
// kept a certificate in stateDir from an earlier run need none), and
// waits until the control plane has every one Ready.
func startAgents(ctx context.Context, c *client.Client, creds client.Credentials, agentAPI string, site *sim.Site, stateDir string,
	progress func(string, ...any)) error {
	nc := "/subscriptions/" + creds.SubscriptionID + "/resourceGroups/" + siteGroup(site.Spec.Name) + "/providers/Microsoft.NetworkCloud/"
	token, err := sim.IssueAgentToken(ctx, c, nc+"clusters/"+site.Spec.Name, time.Hour)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(creds.CACertFile)
	if err != nil {
		return err
	}
	// Hundreds of agents keep their connections; more open one per request.
	if err := site.StartAgents(sim.AgentOptions{Server: agentAPI, ServerCA: ca, Token: token, StateDir: stateDir,
		PerRequest: len(site.Machines) > 500,
		MachineID:  func(name string) string { return nc + "bareMetalMachines/" + name }}); err != nil {
		return err
	}
	progress("starting %d agents (they join with a bootstrap token, then report over mTLS)", len(site.Machines))
	for last := -1; ; {
		var list struct {
			Value []struct {
				Properties struct {
					LivenessState string `json:"livenessState"`
				} `json:"properties"`
			} `json:"value"`
		}
		if err := getJSON(ctx, c, nc+"bareMetalMachines?api-version="+upAPI, &list); err != nil {
			return err
		}
		ready := 0
		for _, m := range list.Value {
			if m.Properties.LivenessState == "Ready" {
				ready++
			}
		}
		if ready != last {
			progress("agents ready: %d of %d", ready, len(site.Machines))
			last = ready
		}
		if ready >= len(site.Machines) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// operatorUPN is the local user citadel up creates for the portal.
const operatorUPN = "operator@citadel.local"

// ensureOperator makes the site's operator: a local user, Owner of the
// subscription, who signs in to the portal with the password kept in the
// data directory. It returns the user and the password's file.
func ensureOperator(ctx context.Context, s *server.Server, c *client.Client, creds client.Credentials) (string, string, error) {
	passwordFile := filepath.Join(s.DataDir, "bootstrap", "operator-password")
	password, err := keptSecret(passwordFile)
	if err != nil {
		return "", "", err
	}
	u, _, err := s.Identity.PutUser(ctx, operatorUPN, "Site operator", password, nil)
	if err != nil {
		return "", "", err
	}
	scope := "/subscriptions/" + creds.SubscriptionID
	name := uuid.NewSHA1(uuid.NameSpaceURL, []byte("citadel:up:operator:"+u.ObjectID)).String()
	r, err := c.Do(ctx, http.MethodPut, scope+"/providers/Microsoft.Authorization/roleAssignments/"+name+"?api-version=2022-04-01",
		map[string]any{"properties": map[string]any{
			"roleDefinitionId": scope + "/providers/Microsoft.Authorization/roleDefinitions/" + authz.OwnerRole,
			"principalId":      u.ObjectID, "principalType": "User",
			"description": "citadel up: the site's operator",
		}})
	if err != nil {
		return "", "", err
	}
	if err := r.Expect(200, 201); err != nil {
		return "", "", fmt.Errorf("making %s Owner: %w", operatorUPN, err)
	}
	return operatorUPN, passwordFile, nil
}

// keptSecret reads a secret from path, creating it the first time.
func keptSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 16)
	rand.Read(raw)
	secret := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return secret, os.WriteFile(path, []byte(secret+"\n"), 0o600)
}

// ensureImage puts an install image for version into the image catalog
// when it has none. The simulated BMCs only fetch it, so it holds a line
// of text; a real site puts the OS image there.
func ensureImage(dir, version string, progress func(string, ...any)) error {
	path := filepath.Join(dir, "cluster-"+version+".iso")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	progress("adding a placeholder image for the simulated machines to the image catalog: %s", path)
	return os.WriteFile(path, []byte("citadel simulated host image "+version+"\n"), 0o644)
}

// deploySite creates the resource group and the cluster manager through
// the ARM API if they do not exist yet, defines the cluster of the site's
// machines and deploys it.
func deploySite(ctx context.Context, c *client.Client, creds client.Credentials, site *sim.Site, version string, progress func(string, ...any)) error {
	name := site.Spec.Name
	group := "/subscriptions/" + creds.SubscriptionID + "/resourceGroups/" + siteGroup(name)
	ncID := func(typ, name string) string { return group + "/providers/Microsoft.NetworkCloud/" + typ + "/" + name }
	put := func(what, path, api string, body any) error {
		if r, err := c.Do(ctx, http.MethodGet, path+"?api-version="+api, nil); err != nil {
			return err
		} else if r.Status == http.StatusOK {
			return nil
		}
		progress("creating %s", what)
		r, err := c.Do(ctx, http.MethodPut, path+"?api-version="+api, body)
		if err != nil {
			return err
		}
		if err := r.Expect(200, 201); err != nil {
			return fmt.Errorf("creating %s: %w", what, err)
		}
		_, err = c.Wait(ctx, r, nil)
		return err
	}
	if err := put("resource group "+siteGroup(name), group, groupAPI, map[string]any{"location": creds.Location}); err != nil {
		return err
	}
	cm := ncID("clusterManagers", siteManager(name))
	if err := put("cluster manager "+siteManager(name), cm, upAPI, map[string]any{"location": creds.Location, "properties": map[string]any{
		"fabricControllerId": group + "/providers/Microsoft.ManagedNetworkFabric/networkFabricControllers/" + name + "-nfc",
	}}); err != nil {
		return err
	}
	var manager struct {
		Properties struct {
			ManagerExtendedLocation struct{ Name string } `json:"managerExtendedLocation"`
		} `json:"properties"`
	}
	if err := getJSON(ctx, c, cm+"?api-version="+upAPI, &manager); err != nil {
		return err
	}
	cluster := ncID("clusters", name)
	props := site.ClusterProperties(version, group)
	props["computeDeploymentThreshold"] = map[string]any{"type": "PercentSuccess", "grouping": "PerCluster", "value": 90}
	props["updateStrategy"] = map[string]any{"strategyType": "Rack", "maxUnavailable": 2, "thresholdType": "PercentSuccess",
		"thresholdValue": 90, "waitTimeMinutes": 1}
	// The cluster is PUT on every run, so that its definition follows the
	// site's flags, and deployed: a deploy skips the machines already
	// provisioned, so a second run only checks.
	progress("defining cluster %s", name)
	r, err := c.Do(ctx, http.MethodPut, cluster+"?api-version="+upAPI, map[string]any{
		"location":         creds.Location,
		"extendedLocation": map[string]string{"name": manager.Properties.ManagerExtendedLocation.Name, "type": "CustomLocation"},
		"properties":       props,
	})
	if err != nil {
		return err
	}
	if err := r.Expect(200, 201); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	if _, err := c.Wait(ctx, r, nil); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	progress("deploying cluster %s: validating and imaging %d machines through their BMCs", name, len(site.Machines))
	r, err = c.Do(ctx, http.MethodPost, cluster+"/deploy?api-version="+upAPI, map[string]any{})
	if err != nil {
		return err
	}
	if err := r.Expect(202); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	start := time.Now()
	if _, err := c.Wait(ctx, r, func(p float64) { progress("deploy %3.0f%%", p) }); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	progress("cluster %s is Running (deployed in %v)", name, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func getJSON(ctx context.Context, c *client.Client, path string, v any) error {
	r, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := r.Expect(http.StatusOK); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return json.Unmarshal(r.Body, v)
}

// provisionFabric creates the site's network fabric through ARM (its
// controller, then the fabric, whose racks and devices the control plane
// lays out), gives each device the serial number of its simulated
// switch, starts the switches and provisions the fabric: each switch
// bootstraps with zero-touch provisioning and runs its configuration.
func provisionFabric(ctx context.Context, c *client.Client, creds client.Credentials, agentAPI string, site *sim.Site,
	progress func(string, ...any)) error {
	devices := site.Devices()
	if len(devices) == 0 {
		progress("no network fabric: the site is larger than one fabric's 8 racks of 16 machines")
		return nil
	}
	group := "/subscriptions/" + creds.SubscriptionID + "/resourceGroups/" + siteGroup(site.Spec.Name)
	nmf := group + "/providers/Microsoft.ManagedNetworkFabric/"
	do := func(what, method, path string, body any, want ...int) (*client.Response, error) {
		r, err := c.Do(ctx, method, path+"?api-version="+fabricAPI, body)
		if err != nil {
			return nil, err
		}
		if err := r.Expect(want...); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if _, err := c.Wait(ctx, r, nil); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return r, nil
	}
	nfc := nmf + "networkFabricControllers/" + site.Spec.Name + "-nfc"
	if _, err := do("fabric controller", http.MethodPut, nfc, map[string]any{"location": creds.Location,
		"properties": map[string]any{"ipv4AddressSpace": "10.250.0.0/19", "nfcSku": "Standard"}}, 200, 201); err != nil {
		return err
	}
	sku := "M4-A400-A100-C16-aa"
	if site.Spec.ComputeRacks > 4 {
		sku = "M8-A400-A100-C16-aa"
	}
	fabricID := nmf + "networkFabrics/" + site.FabricName()
	var fabric struct {
		Properties struct {
			ConfigurationState string `json:"configurationState"`
		} `json:"properties"`
	}
	if getJSON(ctx, c, fabricID+"?api-version="+fabricAPI, &fabric) != nil {
		progress("creating network fabric %s (%s, %d compute racks)", site.FabricName(), sku, site.Spec.ComputeRacks)
		if _, err := do("network fabric", http.MethodPut, fabricID, map[string]any{"location": creds.Location, "properties": map[string]any{
			"networkFabricSku": sku, "networkFabricControllerId": nfc, "fabricASN": 65048, "ipv4Prefix": "10.254.0.0/19",
			"rackCount": site.Spec.ComputeRacks, "serverCountPerRack": site.Spec.MachinesPerRack,
			"managementNetworkConfiguration": map[string]any{"infrastructureVpnConfiguration": map[string]any{"peeringOption": "OptionA"},
				"workloadVpnConfiguration": map[string]any{"peeringOption": "OptionA"}},
			"terminalServerConfiguration": map[string]any{"username": "admin", "password": "sim-terminal-server",
				"primaryIpv4Prefix": "10.254.32.0/30", "secondaryIpv4Prefix": "10.254.32.4/30"},
		}}, 200, 201); err != nil {
			return err
		}
	}
	for _, d := range devices {
		if _, err := do("serial number of "+d, http.MethodPatch, nmf+"networkDevices/"+d,
			map[string]any{"properties": map[string]any{"serialNumber": sim.DeviceSerial(d)}}, 200, 202); err != nil {
			return err
		}
	}
	ca, err := os.ReadFile(creds.CACertFile)
	if err != nil {
		return err
	}
	if err := site.StartSwitches(agentAPI, ca, 0, slog.Default()); err != nil {
		return err
	}
	if fabric.Properties.ConfigurationState == "Provisioned" {
		progress("network fabric %s is provisioned; its %d devices report again", site.FabricName(), len(devices))
		return nil
	}
	progress("provisioning network fabric %s: %d devices bootstrap with ZTP", site.FabricName(), len(devices))
	r, err := c.Do(ctx, http.MethodPost, fabricID+"/provision?api-version="+fabricAPI, map[string]any{})
	if err != nil {
		return err
	}
	if err := r.Expect(202); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if _, err := c.Wait(ctx, r, func(p float64) { progress("fabric provisioning %3.0f%%", p) }); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	progress("network fabric %s is provisioned", site.FabricName())
	return nil
}

// fabricAPI is the Microsoft.ManagedNetworkFabric api-version up uses.
const fabricAPI = "2025-07-15"
