package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/releases"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/update"
)

const updateUsage = `usage: citadel update <command> [flags]

vendor, offline:
  keys --out FILE [--root-keys N --root-threshold N]
        make signing keys; the file is the vendor's secret
  root --keys FILE --out FILE [--expires 8760h]
        sign the first root.json, which operators install as their root of trust
  root --keys NEW --previous ROOT --previous-keys OLD --out FILE
        sign the root that follows ROOT (a key rotation); ship it in bundles with --root
  bundle build --keys FILE --root ROOT [--root ROOT ...] --cluster-version V --version N
        --target KIND:NAME:VERSION[:SKU:COMPONENT]=FILE ... --out FILE [--notes TEXT]
        sign a release into a bundle; KIND is nodeImage, agent, firmware (with SKU),
        switchImage or policyPack; --version grows from bundle to bundle

operator, against a running server (Owner; --credentials as for backup):
  trust add ROOT     install the vendor's root.json as the root of trust, once
  import FILE        upload a bundle: the server verifies it, keeps its artifacts, records it
  releases           list the imported releases [--artifacts]
`

func runUpdate(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, updateUsage)
		return errors.New("missing update command")
	}
	switch args[0] {
	case "keys":
		return updateKeys(args[1:], out)
	case "root":
		return updateRoot(args[1:], out)
	case "bundle":
		if len(args) > 1 && args[1] == "build" {
			return updateBundleBuild(args[2:], out)
		}
	case "trust":
		if len(args) > 1 && args[1] == "add" {
			return updateTrustAdd(ctx, args[2:], out)
		}
	case "import":
		return updateImport(ctx, args[1:], out)
	case "releases":
		return updateReleases(ctx, args[1:], out)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(out, updateUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, updateUsage)
	return fmt.Errorf("unknown update command %q", strings.Join(args[:min(2, len(args))], " "))
}

// writeNew writes data to a new file: a vendor's keys and roots are never
// overwritten by mistake.
func writeNew(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

func updateKeys(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel update keys", flag.ContinueOnError)
	file := fs.String("out", "", "file to write the keys to (required; not overwritten)")
	rootKeys := fs.Int("root-keys", 1, "number of root keys")
	threshold := fs.Int("root-threshold", 1, "how many root keys must sign a root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--out is required")
	}
	keys, err := update.GenerateKeys(*rootKeys, *threshold)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return err
	}
	if err := writeNew(*file, append(b, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "keys written: %s (%d root keys, %d of them sign a root; one targets, snapshot and timestamp key)\n"+
		"keep it secret and offline: whoever holds it can sign bundles\n", *file, *rootKeys, *threshold)
	return nil
}

func readKeys(name string) (update.Keys, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return update.Keys{}, err
	}
	k, err := update.ParseKeys(b)
	if err != nil {
		return update.Keys{}, fmt.Errorf("%s: %w", name, err)
	}
	return k, nil
}

func updateRoot(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel update root", flag.ContinueOnError)
	keysFile := fs.String("keys", "", "the keys the root delegates to (required)")
	file := fs.String("out", "", "file to write the root.json to (required; not overwritten)")
	expires := fs.Duration("expires", 365*24*time.Hour, "how long the root is valid; bundles are refused once it expires, unless a later root replaces it")
	previous := fs.String("previous", "", "for a rotation: the root.json this one follows")
	previousKeys := fs.String("previous-keys", "", "for a rotation: the keys of the previous root, whose root keys sign this one too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keysFile == "" || *file == "" {
		return errors.New("--keys and --out are required")
	}
	if (*previous == "") != (*previousKeys == "") {
		return errors.New("a rotation needs both --previous and --previous-keys")
	}
	keys, err := readKeys(*keysFile)
	if err != nil {
		return err
	}
	var root []byte
	if *previous == "" {
		root, err = update.NewRoot(keys, time.Now().Add(*expires))
	} else {
		var prev []byte
		var old update.Keys
		if prev, err = os.ReadFile(*previous); err != nil {
			return err
		}
		if old, err = readKeys(*previousKeys); err != nil {
			return err
		}
		root, err = update.RotateRoot(prev, old.Root, keys, time.Now().Add(*expires))
	}
	if err != nil {
		return err
	}
	version, err := update.ParseRoot(root)
	if err != nil {
		return err
	}
	if err := writeNew(*file, root, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "root version %d written: %s, valid until %s\n", version, *file, time.Now().Add(*expires).UTC().Format(time.RFC3339))
	return nil
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// parseTarget parses KIND:NAME:VERSION[:SKU:COMPONENT]=FILE: firmware
// names the machine SKU it is for and the BMC firmware inventory member
// it flashes.
func parseTarget(s string) (update.Target, string, error) {
	spec, file, ok := strings.Cut(s, "=")
	parts := strings.Split(spec, ":")
	if !ok || file == "" || len(parts) != 3 && len(parts) != 5 {
		return update.Target{}, "", fmt.Errorf("--target %q: want KIND:NAME:VERSION[:SKU:COMPONENT]=FILE", s)
	}
	t := update.Target{Kind: update.Kind(parts[0]), Name: parts[1], Version: parts[2]}
	if len(parts) == 5 {
		t.MachineSKU, t.Component = parts[3], parts[4]
	}
	return t, file, nil
}

func updateBundleBuild(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel update bundle build", flag.ContinueOnError)
	keysFile := fs.String("keys", "", "the vendor's keys (required)")
	var roots, targets listFlag
	fs.Var(&roots, "root", "a root.json of the chain, oldest first, from the oldest an operator may still trust to the newest (at least one)")
	clusterVersion := fs.String("cluster-version", "", "the release's Citadel version, e.g. 4.2.0 (required)")
	version := fs.Int64("version", 0, "the bundle's metadata version, at least 1, greater than the last bundle's (required)")
	notes := fs.String("notes", "", "release notes")
	fs.Var(&targets, "target", "an artifact, KIND:NAME:VERSION[:SKU:COMPONENT]=FILE (repeat for each; firmware names its machine SKU and firmware component)")
	file := fs.String("out", "", "file to write the bundle to (required; not overwritten)")
	expiresIn := fs.Duration("expires-in", update.DefaultTimestampLifetime,
		"how long the bundle may wait to be imported (timestamp.json's lifetime); zero or less makes an expired bundle, for tests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keysFile == "" || len(roots) == 0 || *clusterVersion == "" || *version == 0 || *file == "" {
		return errors.New("--keys, --root, --cluster-version, --version and --out are required")
	}
	keys, err := readKeys(*keysFile)
	if err != nil {
		return err
	}
	now := time.Now()
	opts := update.BuildOptions{Keys: keys, ClusterVersion: *clusterVersion, Notes: *notes, Version: *version, Now: now,
		TimestampExpires: now.Add(*expiresIn)}
	for _, r := range roots {
		b, err := os.ReadFile(r)
		if err != nil {
			return err
		}
		opts.Roots = append(opts.Roots, b)
	}
	for i, s := range targets {
		t, name, err := parseTarget(s)
		if err != nil {
			return err
		}
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		t.Size = st.Size()
		t.Content = &announced{r: f, line: fmt.Sprintf("target %d of %d: %s (%s %s, %s) from %s\n",
			i+1, len(targets), t.Name, t.Kind, t.Version, mib(t.Size), name), out: out}
		opts.Targets = append(opts.Targets, t)
	}

	f, err := os.OpenFile(*file, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	err = update.Build(f, opts)
	if err == nil {
		err = f.Sync()
	}
	var b *update.Bundle
	if err == nil {
		b, err = selfVerify(f, opts.Roots[0], now, *expiresIn <= 0, out)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*file) // a bundle that failed half-way, or does not verify, must not ship
		return err
	}
	st, err := os.Stat(*file)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bundle written: %s (%s): release %s, %d artifacts, metadata version %d, root version %d\n",
		*file, mib(st.Size()), *clusterVersion, len(targets), *version, b.State.Root)
	return nil
}

// selfVerify checks a bundle just built as an operator who trusts the
// oldest root of its chain will: a key that does not match the newest
// root shows here, not at the customer's site. An expired bundle made on
// purpose only has its expiry reported.
func selfVerify(f *os.File, oldest []byte, now time.Time, expiredOnPurpose bool, out io.Writer) (*update.Bundle, error) {
	b, err := update.Verify(f, oldest, update.State{}, now)
	if e, ok := errors.AsType[*update.Error](err); ok && e.Reason == update.Expired && expiredOnPurpose {
		fmt.Fprintf(out, "warning: the bundle is expired (--expires-in): every import refuses it: %s\n", e.Msg)
		return &update.Bundle{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the bundle does not verify against the oldest --root (are --keys those of the newest root?): %w", err)
	}
	return b, nil
}

// announced prints a line when its reader is first read: Build reads the
// targets one after the other.
type announced struct {
	r    io.Reader
	line string
	out  io.Writer
	done bool
}

func (a *announced) Read(p []byte) (int, error) {
	if !a.done {
		fmt.Fprint(a.out, a.line)
		a.done = true
	}
	return a.r.Read(p)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// updateClient is an admin client of the server in --credentials.
func updateClient(creds func() (client.Credentials, error)) (*client.Client, error) {
	cr, err := creds()
	if err != nil {
		return nil, err
	}
	return client.New(cr)
}

// serverRefusal is the error for an ARM error envelope in body.
func serverRefusal(what string, status int, body []byte) error {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details []struct {
				Code   string `json:"code"`
				Target string `json:"target"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error.Message == "" {
		return fmt.Errorf("the server refused the %s: %d %s", what, status, strings.TrimSpace(string(body)))
	}
	code := env.Error.Code
	for _, d := range env.Error.Details {
		code += ", " + d.Code
	}
	return fmt.Errorf("the server refused the %s (%s): %s", what, code, env.Error.Message)
}

func updateTrustAdd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel update trust add", flag.ContinueOnError)
	creds := credentialsFlag(fs)
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return errors.New("usage: citadel update trust add ROOT.json [--credentials FILE]")
	}
	root, err := os.ReadFile(files[0])
	if err != nil {
		return err
	}
	c, err := updateClient(creds)
	if err != nil {
		return err
	}
	r, err := c.Send(ctx, http.MethodPut, "/citadel/updates/trust", nil, root)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return serverRefusal("root of trust", r.Status, r.Body)
	}
	var v struct {
		RootVersion int64 `json:"rootVersion"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	fmt.Fprintf(out, "root of trust installed: bundles are verified against root version %d\n", v.RootVersion)
	return nil
}

func updateImport(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel update import", flag.ContinueOnError)
	creds := credentialsFlag(fs)
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return errors.New("usage: citadel update import BUNDLE [--credentials FILE]")
	}
	c, err := updateClient(creds)
	if err != nil {
		return err
	}
	status, answer, err := upload(ctx, c, files[0], "/citadel/updates/bundles", "application/x-tar", server.MaxBundleSize, out,
		"the server is verifying the bundle")
	if err != nil {
		return err
	}
	if status != http.StatusCreated {
		return serverRefusal("bundle", status, answer)
	}
	var rel releases.Release
	if err := json.Unmarshal(answer, &rel); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	fmt.Fprintf(out, "imported release %s (%d artifacts)", rel.ClusterVersion, len(rel.Artifacts))
	if rel.Notes != "" {
		fmt.Fprintf(out, ": %s", rel.Notes)
	}
	fmt.Fprintln(out)
	return printArtifacts(out, rel.Artifacts)
}

func printArtifacts(out io.Writer, as []releases.ArtifactInfo) error {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	for _, a := range as {
		sku := a.MachineSKU
		if sku == "" {
			sku = "-"
		} else if a.Component != "" {
			sku += "/" + a.Component
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\tsha256:%s\n", a.Kind, a.Name, a.Version, sku, mib(a.Size), a.SHA256)
	}
	return w.Flush()
}

func updateReleases(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel update releases", flag.ContinueOnError)
	creds := credentialsFlag(fs)
	artifacts := fs.Bool("artifacts", false, "list each release's artifacts too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := updateClient(creds)
	if err != nil {
		return err
	}
	list, err := operatorList[releases.Release](ctx, c, "/citadel/updates/releases", "list of releases")
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(out, "no releases imported")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "CLUSTER VERSION\tIMPORTED\tARTIFACTS\tSIZE\tNOTES")
	for _, rel := range list {
		var size int64
		for _, a := range rel.Artifacts {
			size += a.Size
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", rel.ClusterVersion, rel.Imported.UTC().Format(time.RFC3339), len(rel.Artifacts), mib(size), rel.Notes)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if *artifacts {
		for _, rel := range list {
			fmt.Fprintf(out, "\n%s:\n", rel.ClusterVersion)
			if err := printArtifacts(out, rel.Artifacts); err != nil {
				return err
			}
		}
	}
	return nil
}
