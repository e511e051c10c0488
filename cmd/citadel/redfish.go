package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/redfish"
)

const redfishUsage = `usage: citadel redfish <command> --endpoint URL --username U --password P [flags]

Talk to one machine's BMC directly, for an operator at the rack:

  inventory                      print the host system's hardware inventory as JSON
  power on|off|restart|status    switch the host system's power and wait until it settles
        [--force] [--timeout 5m] [--graceful-timeout 2m]

Trust the BMC's certificate with --ca-file FILE, --fingerprint SHA256 or
--insecure (default: the system roots). --system ID picks the system when
the BMC has several.
`

func runRedfish(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, redfishUsage)
		return errors.New("missing redfish command")
	}
	switch args[0] {
	case "inventory":
		return redfishInventory(ctx, args[1:], out)
	case "power":
		return redfishPower(ctx, args[1:], out, os.Stderr)
	}
	fmt.Fprint(os.Stderr, redfishUsage)
	return fmt.Errorf("unknown redfish command %q", args[0])
}

// bmcFlags are the flags every redfish command shares.
type bmcFlags struct {
	cfg      redfish.Config
	caFile   string
	system   string
	logLevel string
}

func newBMCFlags(fs *flag.FlagSet) *bmcFlags {
	f := &bmcFlags{cfg: redfish.DefaultConfig()}
	f.cfg.AddFlags(fs)
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of the CA to trust for the BMC's certificate")
	fs.StringVar(&f.system, "system", "", "the system, by Id or @odata.id (default: the host system)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	return f
}

// parseInterleaved reads flags before and after the positional
// arguments, which it returns.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for rest := args; len(rest) > 0; {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		rest = fs.Args()
		if len(rest) > 0 {
			positional, rest = append(positional, rest[0]), rest[1:]
		}
	}
	return positional, nil
}

// dial connects to the BMC and finds the system to act on.
func (f *bmcFlags) dial(ctx context.Context) (*redfish.Client, string, error) {
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, "", fmt.Errorf("--ca-file: %w", err)
		}
		f.cfg.CACertPEM = pem
	}
	if err := f.cfg.Validate(); err != nil {
		return nil, "", err
	}
	log, err := newLogger(os.Stderr, f.logLevel)
	if err != nil {
		return nil, "", err
	}
	f.cfg.Logger = log
	c, err := redfish.Dial(ctx, f.cfg)
	if err != nil {
		return nil, "", err
	}
	sys, err := findSystem(ctx, c, f.system)
	if err != nil {
		return nil, "", errors.Join(err, closeBMC(ctx, c))
	}
	return c, sys, nil
}

// findSystem returns the host system, or the one named by its Id or
// @odata.id.
func findSystem(ctx context.Context, c *redfish.Client, name string) (string, error) {
	if name == "" {
		return c.HostSystem(ctx)
	}
	ids, err := c.Systems(ctx)
	if err != nil {
		return "", err
	}
	want := strings.TrimSuffix(name, "/")
	for _, id := range ids {
		if got := strings.TrimSuffix(id, "/"); got == want || path.Base(got) == want {
			return id, nil
		}
	}
	return "", fmt.Errorf("--system %q: the BMC has %s", name, strings.Join(ids, ", "))
}

// closeBMC logs out even when ctx has ended.
func closeBMC(ctx context.Context, c *redfish.Client) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return c.Close(ctx)
}

func redfishInventory(ctx context.Context, args []string, out io.Writer) (err error) {
	fs := flag.NewFlagSet("citadel redfish inventory", flag.ContinueOnError)
	f := newBMCFlags(fs)
	if rest, err := parseInterleaved(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q", rest)
	}
	c, sys, err := f.dial(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeBMC(ctx, c)) }()
	inv, err := c.Inventory(ctx, sys)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

func redfishPower(ctx context.Context, args []string, out, progress io.Writer) (err error) {
	fs := flag.NewFlagSet("citadel redfish power", flag.ContinueOnError)
	f := newBMCFlags(fs)
	force := fs.Bool("force", false, "off and restart: cut the power without asking the OS first")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long the whole command may take")
	graceful := fs.Duration("graceful-timeout", 2*time.Minute, "off and restart: how long the OS has to shut down before the power is cut")
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("usage: citadel redfish power on|off|restart|status [flags]")
	}
	action := rest[0]
	switch {
	case action != "on" && action != "off" && action != "restart" && action != "status":
		return fmt.Errorf("unknown power action %q: want on, off, restart or status", action)
	case *timeout <= 0 || *graceful <= 0:
		return errors.New("--timeout and --graceful-timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	f.cfg.PowerTimeout = *timeout
	c, sys, err := f.dial(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeBMC(ctx, c)) }()
	s, err := c.System(ctx, sys)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "%s is %s\n", sys, s.PowerState)
	t0 := time.Now()
	switch action {
	case "status":
		_, err = fmt.Fprintln(out, s.PowerState)
		return err
	case "on":
		fmt.Fprintf(progress, "powering on, waiting up to %v\n", *timeout)
		err = c.PowerOn(ctx, sys)
	case "off":
		if *force {
			fmt.Fprintln(progress, "forcing the power off")
		} else {
			fmt.Fprintf(progress, "shutting down, forcing the power off after %v\n", *graceful)
		}
		err = c.PowerOff(ctx, sys, *force, *graceful)
	case "restart":
		if *force && s.PowerState != redfish.Off {
			fmt.Fprintln(progress, "forcing a restart")
			if err = c.Reset(ctx, sys, "ForceRestart"); err == nil {
				err = c.WaitPowerState(ctx, sys, redfish.On, *timeout)
			}
		} else {
			fmt.Fprintf(progress, "restarting, forcing the power off after %v if the OS does not shut down\n", *graceful)
			err = c.Restart(ctx, sys, *graceful)
		}
	}
	if err != nil {
		return err
	}
	s, err = c.System(ctx, sys)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "%s is %s after %v\n", sys, s.PowerState, time.Since(t0).Round(time.Second))
	_, err = fmt.Fprintln(out, s.PowerState)
	return err
}
