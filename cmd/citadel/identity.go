package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/server"
)

const identityUsage = `usage: citadel identity <command> [flags]

The first administrative steps, on a stopped server's data directory:

  create-sp   --name N [--role R --scope S] [--out FILE]   a service principal (prints its secret once;
                                                           --out writes a credentials file for it)
  create-user --upn U [--display-name D] [--role R --scope S]
                                                           a local user; the password is read from stdin
  add-secret  --app-id A [--expires 2027-01-01T00:00:00Z]  another client secret (printed once)
  add-certificate --app-id A --cert FILE                   a certificate for client assertions (PEM)
  create-group --name N [--role R --scope S]               a group; its roles apply to its members, nested too
  add-member  --group OID --member OID                     a user, service principal or group joins a group
  assign      --principal-id OID --type User|ServicePrincipal|Group --role R --scope S
                                                           a built-in role (name or GUID) at a scope ("/" = all)
`

func runIdentity(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, identityUsage)
		return errors.New("missing identity command")
	}
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("citadel identity "+args[0], flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the server's data directory")
	name := fs.String("name", "", "display name of the service principal")
	upn := fs.String("upn", "", "user principal name, e.g. alice@citadel.local")
	display := fs.String("display-name", "", "display name of the user")
	role := fs.String("role", "", "built-in role to assign, e.g. Reader, Owner, Auditor")
	scope := fs.String("scope", "", `scope of the role, e.g. /subscriptions/{id} or "/"`)
	principal := fs.String("principal-id", "", "object id of the principal")
	kind := fs.String("type", "ServicePrincipal", "principal type")
	appID := fs.String("app-id", "", "application id of the service principal")
	expires := fs.String("expires", "", "expiry of the secret, RFC 3339 (default: never)")
	certFile := fs.String("cert", "", "PEM certificate file")
	group := fs.String("group", "", "object id of the group")
	member := fs.String("member", "", "object id of the new member")
	outFile := fs.String("out", "", "with create-sp: write a credentials file (mode 0600) for the new principal")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if (*role == "") != (*scope == "") {
		return errors.New("--role and --scope go together")
	}
	admin, err := server.OpenAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer admin.Close()
	result := map[string]any{}
	switch args[0] {
	case "create-sp":
		if *name == "" {
			return errors.New("--name is required")
		}
		sp, secret, err := admin.CreateServicePrincipal(ctx, *name)
		if err != nil {
			return err
		}
		result["appId"], result["objectId"], result["clientSecret"] = sp.AppID, sp.ObjectID, secret
		*principal, *kind = sp.ObjectID, "ServicePrincipal"
		if *outFile != "" {
			creds, err := client.LoadCredentials(filepath.Join(cfg.DataDir, "bootstrap", "admin.json"))
			if err != nil {
				return err
			}
			creds.ClientID, creds.ClientSecret = sp.AppID, secret
			if err := creds.Write(*outFile); err != nil {
				return err
			}
			result["credentialsFile"] = *outFile
		}
	case "create-user":
		if *upn == "" {
			return errors.New("--upn is required")
		}
		password, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		u, err := admin.CreateUser(ctx, *upn, *display, strings.TrimRight(password, "\r\n"))
		if err != nil {
			return err
		}
		result["upn"], result["objectId"] = u.UPN, u.ObjectID
		*principal, *kind = u.ObjectID, "User"
	case "add-secret":
		var exp time.Time
		if *expires != "" {
			if exp, err = time.Parse(time.RFC3339, *expires); err != nil {
				return fmt.Errorf("--expires: %w", err)
			}
		}
		id, secret, err := admin.AddSecret(ctx, *appID, exp)
		if err != nil {
			return err
		}
		result["appId"], result["secretId"], result["clientSecret"] = *appID, id, secret
	case "add-certificate":
		pem, err := os.ReadFile(*certFile)
		if err != nil {
			return err
		}
		if err := admin.AddCertificate(ctx, *appID, pem); err != nil {
			return err
		}
		result["appId"] = *appID
	case "create-group":
		if *name == "" {
			return errors.New("--name is required")
		}
		g, err := admin.CreateGroup(ctx, *name)
		if err != nil {
			return err
		}
		result["objectId"], result["displayName"] = g.ObjectID, g.DisplayName
		*principal, *kind = g.ObjectID, "Group"
	case "add-member":
		if *group == "" || *member == "" {
			return errors.New("--group and --member are required")
		}
		if err := admin.AddMember(ctx, *group, *member); err != nil {
			return err
		}
		result["group"], result["member"] = *group, *member
	case "assign":
		if *principal == "" || *role == "" {
			return errors.New("--principal-id, --role and --scope are required")
		}
	default:
		fmt.Fprint(os.Stderr, identityUsage)
		return fmt.Errorf("unknown identity command %q", args[0])
	}
	if *role != "" {
		id, err := admin.Assign(ctx, *principal, *kind, *role, *scope)
		if err != nil {
			return err
		}
		result["roleAssignmentId"] = id
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(result)
}
