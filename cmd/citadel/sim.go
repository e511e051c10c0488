package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// defaultSimControl is where citadel up serves the simulated site's fault
// API, and where citadel sim looks for it.
const defaultSimControl = "127.0.0.1:8445"

const simUsage = `usage: citadel sim <command> [flags]

Run a simulated multi-rack site against a control plane, through its ARM
and agent APIs:

  run [--credentials FILE] [--control-plane URL] [--agent-api URL] [--name N]
      [--racks 3] [--machines-per-rack 16] [--aggregator SKU] [--state-dir D]
      [--sim-control 127.0.0.1:8446]

Inject faults into a simulated site (citadel up's or citadel sim run's),
through its fault API (--sim, default http://` + defaultSimControl + `):

  machines                       list the machines: rack, slot, power, whether the agent runs
  fault FAULT --machine NAME     power-off, power-on, agent-crash, agent-start,
                                 agent-hang, agent-resume, fail-dimm, drift, update-fail
  fault bios-drift --machine NAME
                                 change one of the SKU's BIOS settings by hand (Enabled to Disabled)
  fault FAULT --rack N           rack-power-off, rack-power-on, partition, heal
                                 (rack 0 is the aggregator)
  fault FAULT                    san-degrade, san-recover (the aggregator's storage appliance)
  fault cable-swap --machine A --peer B
                                 swap the first cables of two machines (validateConfiguration Cabling finds it)
  fault switch-drift --device D  change a network device's running configuration by hand
`

func runSim(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, simUsage)
		return errors.New("missing sim command")
	}
	fs := flag.NewFlagSet("citadel sim "+args[0], flag.ContinueOnError)
	api := fs.String("sim", "http://"+defaultSimControl, "the fault API of the simulated site (citadel up --sim-control)")
	switch args[0] {
	case "run":
		return runSimSite(ctx, args[1:], out)
	case "machines":
		if rest, err := parseInterleaved(fs, args[1:]); err != nil {
			return err
		} else if len(rest) > 0 {
			return fmt.Errorf("unexpected arguments %q", rest)
		}
		return simMachines(ctx, *api, out)
	case "fault":
		f := sim.Fault{}
		fs.StringVar(&f.Machine, "machine", "", "the machine of a machine fault")
		fs.StringVar(&f.Peer, "peer", "", "the second machine of a cable-swap")
		fs.StringVar(&f.Device, "device", "", "the network device of a switch-drift")
		rack := fs.Int("rack", 0, "the rack of a rack fault (0 is the aggregator)")
		rest, err := parseInterleaved(fs, args[1:])
		if err != nil {
			return err
		}
		if len(rest) != 1 {
			return errors.New("usage: citadel sim fault FAULT [--machine NAME] [--peer NAME] [--rack N] [--device NAME] [--sim URL]")
		}
		f.Kind = rest[0]
		fs.Visit(func(fl *flag.Flag) {
			if fl.Name == "rack" {
				f.Rack = rack
			}
		})
		return simFault(ctx, *api, f, out)
	}
	fmt.Fprint(os.Stderr, simUsage)
	return fmt.Errorf("unknown sim command %q", args[0])
}

func simMachines(ctx context.Context, api string, out io.Writer) error {
	var ms []sim.MachineStatus
	if err := simCall(ctx, http.MethodGet, api+"/machines", nil, &ms); err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "MACHINE\tRACK\tSLOT\tPOWER\tAGENT")
	for _, m := range ms {
		agent := "stopped"
		if m.AgentRunning {
			agent = "running"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\n", m.Name, m.Rack, m.Slot, m.Power, agent)
	}
	return w.Flush()
}

func simFault(ctx context.Context, api string, f sim.Fault, out io.Writer) error {
	var r sim.FaultResult
	if err := simCall(ctx, http.MethodPost, api+"/faults", f, &r); err != nil {
		return fmt.Errorf("%s: %w", f.Kind, err)
	}
	target := r.Machine
	switch {
	case r.Rack != nil:
		target = fmt.Sprintf("rack %d", *r.Rack)
	case r.Device != "":
		target = r.Device
	}
	_, err := fmt.Fprintf(out, "%s %s: %s\n", r.Kind, target, r.Done)
	return err
}

// simCall sends in as JSON and decodes a 200 answer into out; another
// answer becomes an error that carries the API's message.
func simCall(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the fault API (is citadel up running with --sim-control?): %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("%d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), e.Error)
	}
	return json.Unmarshal(b, out)
}

// listenSimControl listens at addr for the site's fault API, or returns
// nil when addr is empty. The API is plain HTTP without authentication,
// so addr must be a loopback address: only this machine may inject
// faults.
func listenSimControl(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--sim-control: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--sim-control %s: the fault API has no authentication, so it listens on loopback only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--sim-control: %w", err)
	}
	return ln, nil
}

// serveSimControl serves the site's fault API on ln until ln closes and
// returns its URL; with no listener it returns "".
func serveSimControl(ln net.Listener, site *sim.Site) string {
	if ln == nil {
		return ""
	}
	srv := &http.Server{Handler: site.FaultHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String()
}

// runSimSite is citadel sim run: a simulated site of its own, defined,
// deployed and reporting to a control plane that runs elsewhere.
func runSimSite(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel sim run", flag.ContinueOnError)
	credsFile := fs.String("credentials", "citadel-data/bootstrap/admin.json", "the control plane's credentials file (citadel server writes it)")
	controlPlane := fs.String("control-plane", "", "the ARM endpoint, https://host:port/ (default: the credentials file's)")
	agentAPI := fs.String("agent-api", "", "the agent API, https://host:port (default: the ARM endpoint's host, port 8444)")
	name := fs.String("name", "sim", "the cluster's name; its machines are named after it")
	racks := fs.Int("racks", 3, "compute racks (an aggregator rack comes with them)")
	perRack := fs.Int("machines-per-rack", 16, "machines in each compute rack (1-16)")
	aggregator := fs.String("aggregator", "", "the aggregator rack's SKU (default: the built-in citadel-aggregator)")
	updates := updateBehaviorFlags(fs)
	version := fs.String("cluster-version", "4.1.0", "the cluster version to deploy: its image must be in the control plane's catalog")
	stateDir := fs.String("state-dir", "citadel-sim", "where the site keeps its BMCs' certificate and addresses and its agents' keys")
	control := fs.String("sim-control", "127.0.0.1:8446", "where to serve the fault API (loopback only; empty: off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *racks < 3 || *perRack < 1 || *perRack > 16 {
		return errors.New("a multi-rack site needs --racks 3 or more and --machines-per-rack from 1 to 16")
	}
	creds, err := client.LoadCredentials(*credsFile)
	if err != nil {
		return err
	}
	if *controlPlane != "" {
		creds.ARMEndpoint = strings.TrimSuffix(*controlPlane, "/") + "/"
	}
	if *agentAPI == "" {
		u, err := url.Parse(creds.ARMEndpoint)
		if err != nil {
			return err
		}
		*agentAPI = "https://" + net.JoinHostPort(u.Hostname(), "8444")
	}
	c, err := client.New(creds)
	if err != nil {
		return err
	}
	ln, err := listenSimControl(*control)
	if err != nil {
		return err
	}
	if ln != nil {
		defer ln.Close()
	}
	progress := func(format string, args ...any) { fmt.Fprintf(out, "citadel sim: "+format+"\n", args...) }
	site, err := runSite(ctx, c, creds, *agentAPI, *stateDir,
		sim.Spec{Name: *name, ComputeRacks: *racks, MachinesPerRack: *perRack, AggregatorRack: *aggregator, Updates: *updates}, *version, progress)
	if err != nil {
		return err
	}
	defer site.Close()
	if u := serveSimControl(ln, site); u != "" {
		progress("fault API on %s: citadel sim fault --sim %s power-off --machine %sr1m1", u, u, *name)
	}
	progress("%d machines up; Ctrl-C stops them", len(site.Machines))
	<-ctx.Done()
	return nil
}
