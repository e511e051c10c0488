package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/citadel-cloud/citadel/internal/armexpr"
	"github.com/citadel-cloud/citadel/internal/template"
)

const templateUsage = `usage: citadel template <command> [flags]

Work with ARM templates offline, without deploying:

  expand TEMPLATE.json           print the resources (IDs, types, API versions, evaluated
                                 bodies, dependencies) and outputs as JSON
        [--parameters P.json] [--parameter name=value ...]
  eval 'EXPRESSION'              print the value of one expression as JSON
        [--context C.json]       {"parameters": {...}, "variables": {...},
                                  "deployment": {"subscriptionId": ..., "resourceGroup": ...}}

Both take the deployment's context: --subscription, --resource-group,
--location, --deployment-name, --tenant, --management-group, --scope. Values only a
running deployment knows (reference(), list*()) print as their expressions;
secure parameters print as ********. Linked templates are read from local
files (templateLink.relativePath); links to URIs stay unexpanded.
`

func runTemplate(_ context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, templateUsage)
		return errors.New("missing template command")
	}
	switch args[0] {
	case "expand":
		return templateExpand(args[1:], out)
	case "eval":
		return templateEval(args[1:], out)
	}
	fmt.Fprint(os.Stderr, templateUsage)
	return fmt.Errorf("unknown template command %q", args[0])
}

// contextFlags are the deployment context flags both commands take.
func contextFlags(fs *flag.FlagSet) *template.Context {
	c := &template.Context{}
	fs.StringVar(&c.SubscriptionID, "subscription", "00000000-0000-0000-0000-000000000000", "the subscription ID")
	fs.StringVar(&c.ResourceGroup, "resource-group", "citadel", "the resource group (resource group deployments)")
	fs.StringVar(&c.Location, "location", "local", "the resource group's location (the deployment's, at other scopes)")
	fs.StringVar(&c.DeploymentName, "deployment-name", "citadel-template", "the deployment's name")
	fs.StringVar(&c.TenantID, "tenant", "00000000-0000-0000-0000-000000000000", "the tenant ID")
	fs.StringVar(&c.ManagementGroup, "management-group", "citadel", "the management group (management group deployments)")
	fs.Func("scope", "resourceGroup, subscription, managementGroup or tenant (default: the template's $schema)", func(s string) error {
		c.Scope = template.Scope(s)
		return nil
	})
	return c
}

// parameterFlags collects repeated --parameter name=value flags.
type parameterFlags []string

func (p *parameterFlags) String() string     { return strings.Join(*p, ",") }
func (p *parameterFlags) Set(v string) error { *p = append(*p, v); return nil }

func templateExpand(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel template expand", flag.ContinueOnError)
	ctx := contextFlags(fs)
	paramsFile := fs.String("parameters", "", "a parameter file (deploymentParameters JSON)")
	var pairs parameterFlags
	fs.Var(&pairs, "parameter", "a parameter value as name=value (repeatable; JSON for non-string types)")
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("usage: citadel template expand TEMPLATE.json [flags]")
	}
	file := rest[0]
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	t, err := template.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	params := map[string]any{}
	if *paramsFile != "" {
		data, err := os.ReadFile(*paramsFile)
		if err != nil {
			return err
		}
		if params, err = template.ParseParameters(data); err != nil {
			return fmt.Errorf("%s: %w", *paramsFile, err)
		}
	}
	for _, pair := range pairs {
		name, value, err := parameterPair(t, pair)
		if err != nil {
			return err
		}
		params[name] = value
	}
	d, err := template.Expand(t, template.Options{
		Context:    *ctx,
		Parameters: params,
		Source:     filepath.ToSlash(file),
		Load:       loadLocal,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return printJSON(out, d.Redacted())
}

// parameterPair reads name=value: the value as written for string
// parameters, as JSON for the others.
func parameterPair(t *template.Template, pair string) (string, any, error) {
	name, value, ok := strings.Cut(pair, "=")
	if !ok || name == "" {
		return "", nil, fmt.Errorf("--parameter %q: want name=value", pair)
	}
	var p *template.Parameter
	for n, decl := range t.Parameters {
		if strings.EqualFold(n, name) {
			p = decl
		}
	}
	if p == nil || p.Type == "string" || p.Type == "securestring" {
		return name, value, nil // an unknown name is for Expand to refuse
	}
	v, err := armexpr.ParseJSON([]byte(value))
	if err != nil {
		return "", nil, fmt.Errorf("--parameter %s: a %s value is JSON: %w", name, p.Type, err)
	}
	return name, v, nil
}

// loadLocal reads linked templates from local files; links to URIs and
// template spec versions stay unexpanded.
func loadLocal(location string) ([]byte, error) {
	if u, err := url.Parse(location); err == nil && u.Scheme != "" && len(u.Scheme) > 1 || strings.HasSuffix(location, "/") {
		return nil, template.ErrNotAvailable // a URI, or a template spec version (templateLink.id)
	}
	return os.ReadFile(filepath.FromSlash(location))
}

func templateEval(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel template eval", flag.ContinueOnError)
	ctx := contextFlags(fs)
	contextFile := fs.String("context", "", "a JSON file with parameters, variables and deployment values")
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("usage: citadel template eval 'EXPRESSION' [--context C.json]")
	}
	var params, vars map[string]any
	if *contextFile != "" {
		data, err := os.ReadFile(*contextFile)
		if err != nil {
			return err
		}
		v, err := armexpr.ParseJSON(data)
		if err != nil {
			return fmt.Errorf("%s: %w", *contextFile, err)
		}
		c, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: the context is a JSON object", *contextFile)
		}
		params, _ = c["parameters"].(map[string]any)
		vars, _ = c["variables"].(map[string]any)
		dep, _ := c["deployment"].(map[string]any)
		if s, ok := dep["subscriptionId"].(string); ok {
			ctx.SubscriptionID = s
		}
		if s, ok := dep["resourceGroup"].(string); ok {
			ctx.ResourceGroup = s
		}
	}
	v, err := template.Eval(rest[0], *ctx, params, vars)
	if err != nil {
		return err
	}
	return printJSON(out, v)
}

// printJSON prints indented JSON, with <, > and & as they are.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
