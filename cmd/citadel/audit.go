package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"

	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/client"
)

const auditUsage = `usage: citadel audit <command> [flags]

commands:
  export --out FILE [--from T] [--to T]   fetch the signed activity log from a running server
  verify FILE [--public-key FILE]         check an export offline; exits 1 if anything was tampered with
`

func runAudit(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, auditUsage)
		return errors.New("missing audit command")
	}
	switch args[0] {
	case "export":
		return auditExport(ctx, args[1:], out)
	case "verify":
		return auditVerify(args[1:], out)
	}
	fmt.Fprint(os.Stderr, auditUsage)
	return fmt.Errorf("unknown audit command %q", args[0])
}

// credentialsFlag is how every command that talks to a running server
// finds it: --credentials, else $CITADEL_CREDENTIALS, else the file the
// server writes under its default data directory.
func credentialsFlag(fs *flag.FlagSet) func() (client.Credentials, error) {
	path := fs.String("credentials", "", "credentials file of the server (default $CITADEL_CREDENTIALS, else ./citadel-data/bootstrap/admin.json)")
	return func() (client.Credentials, error) {
		p := *path
		if p == "" {
			p = os.Getenv("CITADEL_CREDENTIALS")
		}
		if p == "" {
			p = "citadel-data/bootstrap/admin.json"
		}
		return client.LoadCredentials(p)
	}
}

func auditExport(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel audit export", flag.ContinueOnError)
	creds := credentialsFlag(fs)
	file := fs.String("out", "", "file to write the export to (required)")
	from := fs.String("from", "", "first time to include, RFC 3339 (default: the start)")
	to := fs.String("to", "", "last time to include, RFC 3339 (default: now)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--out is required")
	}
	cr, err := creds()
	if err != nil {
		return err
	}
	c, err := client.New(cr)
	if err != nil {
		return err
	}
	q := url.Values{"api-version": {"2026-01-01"}}
	if *from != "" {
		q.Set("from", *from)
	}
	if *to != "" {
		q.Set("to", *to)
	}
	resp, err := c.Do(ctx, http.MethodGet, "/providers/Citadel.Audit/export?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if err := resp.Expect(http.StatusOK); err != nil {
		return err
	}
	if err := os.WriteFile(*file, resp.Body, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (%d bytes)\n", *file, len(resp.Body))
	return nil
}

// errTampered makes verify exit non-zero after printing its report.
var errTampered = errors.New("the export failed verification")

func auditVerify(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel audit verify", flag.ContinueOnError)
	pubFile := fs.String("public-key", "", "trusted public key (PEM, the server's <data-dir>/audit/audit-signing.pub); default: the key in the file, reported as self-asserted")
	archive := fs.String("archive", "", "directory of archive segments (<data-dir>/audit/archive) to verify with the export: the whole history from record 1")
	unsignedTail := fs.Bool("allow-unsigned-tail", false, "accept newest records that no checkpoint covers (an export from the server is always covered)")
	// Flags may come before or after the file name.
	var files []string
	for rest := args; len(rest) > 0; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		rest = fs.Args()
		if len(rest) > 0 {
			files, rest = append(files, rest[0]), rest[1:]
		}
	}
	if len(files) != 1 {
		return errors.New("usage: citadel audit verify FILE [--public-key FILE] [--allow-unsigned-tail]")
	}
	v := audit.Verifier{Strict: !*unsignedTail}
	if *pubFile != "" {
		b, err := os.ReadFile(*pubFile)
		if err != nil {
			return err
		}
		if v.Key, err = audit.ParsePublicKey(b); err != nil {
			return fmt.Errorf("%s: %w", *pubFile, err)
		}
	}
	var inputs []io.Reader
	if *archive != "" {
		segments, err := filepath.Glob(filepath.Join(*archive, "segment-*.jsonl"))
		if err != nil {
			return err
		}
		sort.Strings(segments) // names carry zero-padded sequence numbers
		files = append(segments, files...)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		inputs = append(inputs, f)
	}
	var rep audit.Report
	var err error
	if len(inputs) == 1 {
		rep, err = v.Verify(inputs[0])
	} else {
		rep, err = v.VerifySegments(inputs...)
	}
	if err != nil {
		return err
	}
	fmt.Fprint(out, rep.String())
	if !rep.OK() {
		return errTampered
	}
	return nil
}
