package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/store"
)

const storeUsage = `usage: citadel store <command> [flags]

The embedded etcd cluster of the replicas, from a replica's machine (it
reads the member's certificate under --data-dir; the replica must run):

  join-token           print the token other replicas join with (citadel server --join URL --join-token TOKEN)
  member list          the cluster's members
  member remove NAME   take a member (name or hex ID) out of the cluster, for a replica gone for good
`

func runStore(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, storeUsage)
		return errors.New("missing store command")
	}
	cmd := args[0]
	if cmd == "member" && len(args) > 1 {
		cmd, args = "member "+args[1], args[1:]
	}
	fs := flag.NewFlagSet("citadel store "+cmd, flag.ContinueOnError)
	dataDir := fs.String("data-dir", server.DefaultConfig().DataDir, "the replica's data directory")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch cmd {
	case "join-token":
		b, err := os.ReadFile(filepath.Join(*dataDir, server.JoinTokenFile))
		if err != nil {
			return fmt.Errorf("%w (a replica on embedded etcd writes it when it starts)", err)
		}
		fmt.Fprintln(out, strings.TrimSpace(string(b)))
		return nil
	case "member list", "member remove":
	default:
		fmt.Fprint(os.Stderr, storeUsage)
		return fmt.Errorf("unknown store command %q", cmd)
	}
	endpoints, tlsCfg, err := store.MemberClient(filepath.Join(*dataDir, "etcd"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := store.Open(ctx, store.Config{Endpoints: endpoints, TLS: tlsCfg,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer st.Close()
	if cmd == "member remove" {
		if fs.NArg() != 1 {
			return errors.New("usage: citadel store member remove NAME")
		}
		if err := st.RemoveMember(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(out, "removed %s\n", fs.Arg(0))
		return nil
	}
	members, err := st.Members(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tPEER URLS\tCLIENT URLS")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%x\t%s\t%s\n", m.Name, m.ID, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","))
	}
	return tw.Flush()
}
