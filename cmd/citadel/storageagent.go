package main

import (
	"context"
	"flag"
	"os"

	"github.com/citadel-cloud/citadel/internal/storage/appliance"
)

// runStorageAgent runs the storage appliance service on this machine:
// the management API over HTTPS, volumes as sparse files under
// --data-dir, exports served over NBD with TLS-PSK (--driver nbd), or
// everything in memory (--driver sim).
func runStorageAgent(ctx context.Context, args []string) error {
	cfg := appliance.DefaultConfig()
	fs := flag.NewFlagSet("citadel storage-agent", flag.ContinueOnError)
	cfg.AddFlags(fs)
	fs.Lookup("password").Usage += " (default $CITADEL_STORAGE_PASSWORD)"
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Password == "" {
		cfg.Password = os.Getenv("CITADEL_STORAGE_PASSWORD")
	}
	log, err := newLogger(os.Stderr, *level)
	if err != nil {
		return err
	}
	cfg.Logger = log
	svc, err := appliance.Start(ctx, cfg)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "storage agent started", "connection_string", svc.ConnectionString(), "driver", cfg.Driver,
		"serial_number", cfg.SerialNumber, "data_dir", cfg.DataDir)
	return svc.Run(ctx)
}
