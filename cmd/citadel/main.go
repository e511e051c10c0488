// Command citadel is the sovereign private-cloud control plane and its
// tools: `citadel up` runs it with a simulated multi-rack site, `citadel
// server` runs a replica, `citadel bench` measures one.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/citadel-cloud/citadel/internal/server"
)

const usage = `usage: citadel <command> [flags]

commands:
  up       run the control plane with a simulated multi-rack site, deployed and ready for az
  sim      inject faults into the simulated site of citadel up: machines, fault ...
  server   run a control-plane replica (ARM API over HTTPS, token issuer, controllers)
  bench    measure a running system (bench api)
  store    the embedded etcd cluster of the replicas: join-token, member list, member remove NAME
  audit    export the signed activity log, verify an export offline
  backup   take an encrypted backup of a running control plane (Owner only)
  restore  make a new data directory of a backup
  update   air-gapped updates: vendor keys, roots and signed bundles (offline); trust add, import, releases (Owner)
  image    the catalog of VM images: import (Owner), list, delete (Owner)
  identity create service principals and users, assign roles (on a stopped server's data dir)
  redfish  talk to a machine's BMC: inventory, power on|off|restart|status
  agent    run the node agent on this machine (join, inventory, heartbeats)
  storage-agent  run a storage appliance on this machine (volumes served over NBD with TLS-PSK)
  template expand an ARM template or evaluate an expression, offline
  policy   check Azure Policy definitions, evaluate a resource against one, offline

Run 'citadel <command> -h' for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "up":
		err = runUp(ctx, os.Args[2:], os.Stdout)
	case "sim":
		err = runSim(ctx, os.Args[2:], os.Stdout)
	case "server":
		err = runServer(ctx, os.Args[2:])
	case "bench":
		err = runBench(ctx, os.Args[2:], os.Stdout)
	case "store":
		err = runStore(ctx, os.Args[2:], os.Stdout)
	case "audit":
		err = runAudit(ctx, os.Args[2:], os.Stdout)
	case "backup":
		err = runBackup(ctx, os.Args[2:], os.Stdout)
	case "restore":
		err = runRestore(ctx, os.Args[2:], os.Stdout)
	case "update":
		err = runUpdate(ctx, os.Args[2:], os.Stdout)
	case "image":
		err = runImage(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "identity":
		err = runIdentity(ctx, os.Args[2:], os.Stdin, os.Stdout)
	case "redfish":
		err = runRedfish(ctx, os.Args[2:], os.Stdout)
	case "agent":
		err = runAgent(ctx, os.Args[2:])
	case "storage-agent":
		err = runStorageAgent(ctx, os.Args[2:])
	case "template":
		err = runTemplate(ctx, os.Args[2:], os.Stdout)
	case "policy":
		err = runPolicy(ctx, os.Args[2:], os.Stdout)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "citadel: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "citadel %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// tuneGC trades memory for latency unless the operator chose otherwise:
// the control plane's live heap is small, and collecting it at the
// default GOGC=100 put GC work on the request path (bench api on 2 cores:
// GET p99 7.4 ms at GOGC=100, 4.0 ms at 800). The memory limit keeps the
// heap bounded all the same.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(800)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(4 << 30)
	}
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func runServer(ctx context.Context, args []string) error {
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("citadel server", flag.ContinueOnError)
	cfg.AddFlags(fs)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(os.Stderr, *level)
	if err != nil {
		return err
	}
	cfg.Logger = log
	s, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err = <-s.Err():
	}
	return errorsJoin(err, s.Close())
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
