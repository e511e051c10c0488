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
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/citadel-cloud/citadel/internal/sim"
)

// defaultSimControl is where citadel up serves the simulated site's fault
// API, and where citadel sim looks for it.
const defaultSimControl = "127.0.0.1:8445"

const simUsage = `usage: citadel sim <command> [--sim URL] [flags]

Inject faults into the simulated site of citadel up, through its fault API
(--sim, default http://` + defaultSimControl + `):

  machines                       list the machines: rack, slot, power, whether the agent runs
  fault FAULT --machine NAME     power-off, power-on, agent-crash, agent-start,
                                 agent-hang, agent-resume, fail-dimm, drift
  fault FAULT --rack N           rack-power-off, rack-power-on, partition, heal
                                 (rack 0 is the aggregator)
`

func runSim(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, simUsage)
		return errors.New("missing sim command")
	}
	fs := flag.NewFlagSet("citadel sim "+args[0], flag.ContinueOnError)
	api := fs.String("sim", "http://"+defaultSimControl, "the fault API of the simulated site (citadel up --sim-control)")
	switch args[0] {
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
		rack := fs.Int("rack", 0, "the rack of a rack fault (0 is the aggregator)")
		rest, err := parseInterleaved(fs, args[1:])
		if err != nil {
			return err
		}
		if len(rest) != 1 {
			return errors.New("usage: citadel sim fault FAULT [--machine NAME] [--rack N] [--sim URL]")
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
	if r.Rack != nil {
		target = fmt.Sprintf("rack %d", *r.Rack)
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
