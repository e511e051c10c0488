package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/citadel-cloud/citadel/internal/armexpr"
	"github.com/citadel-cloud/citadel/internal/policy"
)

const policyUsage = `usage: citadel policy <command> [flags]

Check and try Azure Policy definitions offline:

  check [--aliases FILE] DEFINITION.json...
        validate policy definitions and initiatives (the ARM resource shape
        or bare properties); print every problem with its file and JSON path
  eval --definition D.json --resource R.json [--parameters P.json] [--aliases FILE]
        [--api-version V]
        evaluate a resource against a definition; print the effect and why, as JSON

Citadel's own aliases are built in; --aliases adds Azure's alias list (the
CSV of Get-AzPolicyAlias, alias,defaultPath; gzip accepted).
`

func runPolicy(_ context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, policyUsage)
		return errors.New("missing policy command")
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], out)
	case "eval":
		return policyEval(args[1:], out)
	}
	fmt.Fprint(os.Stderr, policyUsage)
	return fmt.Errorf("unknown policy command %q", args[0])
}

// loadAliases is Citadel's aliases, and Azure's when file is set.
func loadAliases(file string) (*policy.Aliases, error) {
	if file == "" {
		return policy.NewAliases(policy.CitadelAliases()), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--aliases: %w", err)
	}
	defer f.Close()
	azure, err := policy.ReadAliasCSV(f)
	if err != nil {
		return nil, fmt.Errorf("--aliases %s: %w", file, err)
	}
	return policy.NewAliases(policy.CitadelAliases(), azure), nil
}

func policyCheck(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel policy check", flag.ContinueOnError)
	aliasFile := fs.String("aliases", "", "Azure's alias list, CSV alias,defaultPath (gzip accepted)")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return errors.New("usage: citadel policy check [--aliases FILE] DEFINITION.json...")
	}
	aliases, err := loadAliases(*aliasFile)
	if err != nil {
		return err
	}
	bad := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if policy.IsSetDefinition(data) {
			_, err = policy.ParseSetDefinition(data)
		} else {
			_, err = policy.ParseDefinition(data, aliases)
		}
		if inv, ok := errors.AsType[*policy.InvalidError](err); ok {
			bad++
			for _, fe := range inv.Errors {
				fmt.Fprintf(out, "%s: %s\n", file, fe)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		fmt.Fprintf(out, "%s: ok\n", file)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d files are not valid", bad, len(files))
	}
	return nil
}

// evalOutput is what policy eval prints.
type evalOutput struct {
	Effect    policy.Effect     `json:"effect"`
	Matched   bool              `json:"matched"`
	State     string            `json:"complianceState,omitempty"`
	Denied    bool              `json:"denied"`
	Error     string            `json:"error,omitempty"`
	Reasons   []reasonOutput    `json:"reasons,omitempty"`
	Changes   []policy.Change   `json:"changes,omitempty"`
	Conflict  string            `json:"conflict,omitempty"`
	Existence *policy.Existence `json:"existence,omitempty"`
	Body      map[string]any    `json:"body,omitempty"` // the resource after append or modify
}

type reasonOutput struct {
	policy.Reason
	Message string
}

func policyEval(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel policy eval", flag.ContinueOnError)
	defFile := fs.String("definition", "", "the policy definition (JSON)")
	resFile := fs.String("resource", "", "the resource, its ARM JSON")
	paramsFile := fs.String("parameters", "", `assignment parameters: {"name": {"value": ...}}, or a parameters file`)
	aliasFile := fs.String("aliases", "", "Azure's alias list, CSV alias,defaultPath (gzip accepted)")
	apiVersion := fs.String("api-version", "", "the request's api-version, for requestContext().apiVersion")
	if rest, err := parseInterleaved(fs, args); err != nil {
		return err
	} else if len(rest) > 0 || *defFile == "" || *resFile == "" {
		return errors.New("usage: citadel policy eval --definition D.json --resource R.json [--parameters P.json] [--aliases FILE]")
	}
	aliases, err := loadAliases(*aliasFile)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*defFile)
	if err != nil {
		return err
	}
	def, err := policy.ParseDefinition(data, aliases)
	if err != nil {
		return fmt.Errorf("%s:\n%w", *defFile, err)
	}
	resource, err := readJSONObject(*resFile)
	if err != nil {
		return err
	}
	params := map[string]any{}
	if *paramsFile != "" {
		if params, err = readParameters(*paramsFile); err != nil {
			return err
		}
	}
	a, err := policy.NewAssignment("/providers/Microsoft.Authorization/policyAssignments/citadel-policy-eval", def, params)
	if err != nil {
		return err
	}
	pctx := &policy.Context{APIVersion: *apiVersion}
	r := a.Evaluate(resource, pctx)[0]
	o := evalOutput{Effect: r.Effect, Matched: r.Matched, State: r.State, Denied: r.Denies(), Changes: r.Changes,
		Conflict: r.Conflict, Existence: r.Existence}
	if r.Err != nil {
		o.Error = r.Err.Error()
	}
	for _, reason := range r.Reasons {
		o.Reasons = append(o.Reasons, reasonOutput{Reason: reason, Message: reason.Message()})
	}
	if len(r.Changes) > 0 {
		o.Body = policy.EvaluateRequest([]*policy.Assignment{a}, resource, pctx).Body
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

func readJSONObject(file string) (map[string]any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	v, err := armexpr.ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not a JSON object", file)
	}
	return obj, nil
}

// readParameters reads assignment parameters, {"name": {"value": v}}, or
// a parameters file that has them under "parameters".
func readParameters(file string) (map[string]any, error) {
	obj, err := readJSONObject(file)
	if err != nil {
		return nil, err
	}
	if inner, ok := obj["parameters"].(map[string]any); ok {
		obj = inner
	}
	params := make(map[string]any, len(obj))
	for name, v := range obj {
		wrapper, ok := v.(map[string]any)
		value, has := wrapper["value"]
		if !ok || !has {
			return nil, fmt.Errorf("%s: parameter %s: want {\"value\": ...}", file, name)
		}
		params[name] = value
	}
	return params, nil
}
