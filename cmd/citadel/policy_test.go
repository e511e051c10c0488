package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const cpuPolicy = `{"name": "max-cpu", "properties": {"mode": "Indexed",
  "parameters": {"maxCores": {"type": "Integer", "defaultValue": 8}, "effect": {"type": "String", "allowedValues": ["Audit", "Deny"], "defaultValue": "Deny"}},
  "policyRule": {"if": {"allOf": [{"field": "type", "equals": "Microsoft.NetworkCloud/virtualMachines"},
    {"field": "Microsoft.NetworkCloud/virtualMachines/cpuCores", "greater": "[parameters('maxCores')]"}]},
  "then": {"effect": "[parameters('effect')]"}}}}`

const vmResource = `{"type": "Microsoft.NetworkCloud/virtualMachines", "name": "vm1", "location": "site1",
  "properties": {"cpuCores": 16, "memorySizeGB": 64}}`

// TestPolicyCheck validates files with the built-in Citadel aliases.
func TestPolicyCheck(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"good.json": cpuPolicy,
		"bad.json": `{"properties": {"policyRule": {"if": {"allOf": [{"field": "type", "equals": "x"},
			{"field": "Microsoft.NetworkCloud/virtualMachines/cpuCorez", "equals": 1}]}, "then": {"effect": "deny"}}}}`,
		"set.json": `{"properties": {"policyDefinitions": [{"policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/max-cpu"}]}}`,
	})
	var out bytes.Buffer
	good, bad, set := filepath.Join(dir, "good.json"), filepath.Join(dir, "bad.json"), filepath.Join(dir, "set.json")
	if err := runPolicy(t.Context(), []string{"check", good, set}, &out); err != nil {
		t.Fatalf("check good files: %v\n%s", err, out.String())
	}
	if want := good + ": ok\n" + set + ": ok\n"; out.String() != want {
		t.Errorf("check printed %q, want %q", out.String(), want)
	}
	out.Reset()
	err := runPolicy(t.Context(), []string{"check", good, bad}, &out)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 files") {
		t.Errorf("check with a bad file: error %v, want 1 of 2 files not valid", err)
	}
	want := bad + ": properties.policyRule.if.allOf[1].field: unknown alias 'Microsoft.NetworkCloud/virtualMachines/cpuCorez'\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("check printed %q, want the line %q", out.String(), want)
	}
}

// TestPolicyCheckAzureAliases checks the corpus's definitions with Azure's
// alias list.
func TestPolicyCheckAzureAliases(t *testing.T) {
	corpus := "../../../shared/corpora/azure-policy"
	if _, err := os.Stat(corpus); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("the Azure Policy corpus is missing (shared/corpora/azure-policy)")
	}
	files, err := filepath.Glob(filepath.Join(corpus, "policyDefinitions", "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no definitions: %v", err)
	}
	var out bytes.Buffer
	args := append([]string{"check", "--aliases", filepath.Join(corpus, "aliases", "policy-aliases.csv.gz")}, files...)
	if err := runPolicy(t.Context(), args, &out); err != nil {
		t.Errorf("check the corpus: %v\n%s", err, out.String())
	}
}

func TestPolicyEval(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"def.json":    cpuPolicy,
		"vm.json":     vmResource,
		"params.json": `{"maxCores": {"value": 32}}`,
		"tag.json": `{"properties": {"mode": "Indexed", "policyRule": {"if": {"field": "tags['owner']", "exists": false},
			"then": {"effect": "modify", "details": {"roleDefinitionIds": ["/providers/Microsoft.Authorization/roleDefinitions/r"],
			"operations": [{"operation": "add", "field": "tags['owner']", "value": "ops"}]}}}}}`,
	})
	eval := func(args ...string) map[string]any {
		t.Helper()
		var out bytes.Buffer
		if err := runPolicy(t.Context(), append([]string{"eval"}, args...), &out); err != nil {
			t.Fatalf("eval %v: %v", args, err)
		}
		var got map[string]any
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("eval printed %q: %v", out.String(), err)
		}
		return got
	}
	got := eval("--definition", filepath.Join(dir, "def.json"), "--resource", filepath.Join(dir, "vm.json"))
	reasons, _ := got["reasons"].([]any)
	if got["effect"] != "deny" || got["denied"] != true || len(reasons) != 2 {
		t.Fatalf("eval = %v, want a deny with two reasons", got)
	}
	r := reasons[1].(map[string]any)
	if r["Path"] != "properties.cpuCores" || r["Value"] != 16.0 || r["Operator"] != "greater" || r["Target"] != 8.0 ||
		r["Message"] != "Current value must be less than or equal to the target value." {
		t.Errorf("reason = %v", r)
	}

	got = eval("--definition", filepath.Join(dir, "def.json"), "--resource", filepath.Join(dir, "vm.json"), "--parameters", filepath.Join(dir, "params.json"))
	if got["matched"] != false || got["denied"] != false || got["complianceState"] != "Compliant" {
		t.Errorf("eval with maxCores 32 = %v, want compliant", got)
	}

	got = eval("--definition", filepath.Join(dir, "tag.json"), "--resource", filepath.Join(dir, "vm.json"))
	body, _ := got["body"].(map[string]any)
	if got["effect"] != "modify" || body["tags"].(map[string]any)["owner"] != "ops" {
		t.Errorf("eval modify = %v, want the body with tags.owner", got)
	}

	var out bytes.Buffer
	if err := runPolicy(t.Context(), []string{"eval", "--definition", filepath.Join(dir, "def.json")}, &out); err == nil {
		t.Errorf("eval without --resource: no error")
	}
}
