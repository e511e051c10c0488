package main

import (
	"context"
	"errors"
	"flag"
	"os"

	"github.com/citadel-cloud/citadel/internal/agent"
	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agent/hostnet"
	"github.com/citadel-cloud/citadel/internal/agent/vm"
)

// runAgent runs the node agent on this machine, with the real Linux host.
func runAgent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("citadel agent", flag.ContinueOnError)
	server := fs.String("server", "", "the control plane's agent API, https://host:port")
	caFile := fs.String("ca-file", "", "PEM file of the CA the agent API's certificate chains to")
	machine := fs.String("machine", "", "the ARM ID of this machine's bareMetalMachine resource")
	token := fs.String("token", os.Getenv("CITADEL_BOOTSTRAP_TOKEN"), "the one-time bootstrap token (first start only; default $CITADEL_BOOTSTRAP_TOKEN)")
	stateDir := fs.String("state-dir", "/var/lib/citadel-agent", "where the agent keeps its key and certificate")
	root := fs.String("root", "/", "the filesystem root to read /proc, /sys and /etc under")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	vmDir := fs.String("vm-dir", "", "where the agent keeps the state of the VMs it runs with QEMU, one directory each (keep the path short: QEMU's sockets live below it); empty: run no VMs")
	vmAccel := fs.String("vm-accel", "", "QEMU's accelerator for the VMs: kvm, tcg, or empty to use KVM when /dev/kvm works")
	uplink := fs.String("uplink", "", "the NIC cabled to the top-of-rack switches, on which the agent configures the cluster's workload networks (a VLAN and a bridge each) with netlink; empty: leave networking alone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *server == "" || *caFile == "" || *machine == "" {
		return errors.New("--server, --ca-file and --machine are required")
	}
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	log, err := newLogger(os.Stderr, *level)
	if err != nil {
		return err
	}
	h := host.NewLinux(*root)
	if *uplink != "" {
		if h, err = h.WithNetworks(*uplink, nil); err != nil {
			return err
		}
	}
	if *vmDir != "" {
		// A VM's image is the artifact the agent staged for it; its NICs
		// join the bridges of the networks --uplink configures.
		d, err := vm.NewQEMU(vm.QEMUConfig{Dir: *vmDir, Images: h.StagedPath, Bridge: hostnet.Bridge, Accel: *vmAccel, Logger: log})
		if err != nil {
			return err
		}
		h = h.WithVMs(d)
	} else if *vmAccel != "" {
		return errors.New("--vm-accel needs --vm-dir")
	}
	return agent.New(agent.Config{
		Server: *server, ServerCA: ca, Machine: *machine, Token: *token, StateDir: *stateDir,
		Host: h, Logger: log,
	}).Run(ctx)
}
