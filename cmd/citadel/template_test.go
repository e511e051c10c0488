package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTemplateExpand runs `citadel template expand` on a template with a
// linked template, a parameter file and --parameter flags.
func TestTemplateExpand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	main := write("main.json", `{
	  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
	  "parameters": {
	    "prefix": {"type": "string"},
	    "count": {"type": "int", "defaultValue": 1},
	    "password": {"type": "securestring"}
	  },
	  "resources": [
	    {"type": "My.Rp/things", "apiVersion": "2021-01-01", "name": "[concat(parameters('prefix'), copyIndex())]",
	     "copy": {"name": "things", "count": "[parameters('count')]"},
	     "properties": {"secret": "[parameters('password')]", "key": "[listKeys(resourceId('My.Rp/keys', 'k'), '2021-01-01').key1]"}},
	    {"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "child", "dependsOn": ["things"],
	     "properties": {"mode": "Incremental", "templateLink": {"relativePath": "nested/child.json"},
	       "parameters": {"name": {"value": "[concat(parameters('prefix'), '-child')]"}}}},
	    {"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "remote",
	     "properties": {"mode": "Incremental", "templateLink": {"uri": "https://example.com/remote.json"}}}
	  ],
	  "outputs": {"first": {"type": "string", "value": "[concat(parameters('prefix'), '0')]"}}
	}`)
	write("nested/child.json", `{"parameters": {"name": {"type": "string"}},
	  "resources": [{"type": "My.Rp/children", "apiVersion": "2021-01-01", "name": "[parameters('name')]"}]}`)
	params := write("params.json", `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
	  "contentVersion": "1.0.0.0", "parameters": {"prefix": {"value": "web"}, "password": {"value": "hunter22"}}}`)

	var out bytes.Buffer
	err := runTemplate(t.Context(), []string{"expand", main, "--parameters", params, "--parameter", "count=2",
		"--subscription", "sub1", "--resource-group", "rg1", "--location", "westus"}, &out)
	if err != nil {
		t.Fatalf("expand: %v", err)
	}
	if strings.Contains(out.String(), "hunter22") {
		t.Errorf("expand printed a secure value:\n%s", out.String())
	}
	var got struct {
		Parameters map[string]any
		Resources  []struct {
			ID, Type, Name, TemplateLink string
			DependsOn                    []string
			Body                         map[string]any
			Deployment                   *struct{ Resources []struct{ ID string } }
		}
		Outputs map[string]any
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("expand printed %q: %v", out.String(), err)
	}
	var resourceIDs []string
	for _, r := range got.Resources {
		resourceIDs = append(resourceIDs, r.ID)
	}
	const rg = "/subscriptions/sub1/resourceGroups/rg1/providers/"
	if diff := cmp.Diff([]string{
		rg + "My.Rp/things/web0", rg + "My.Rp/things/web1",
		rg + "Microsoft.Resources/deployments/child", rg + "Microsoft.Resources/deployments/remote",
	}, resourceIDs); diff != "" {
		t.Errorf("resource IDs mismatch (-want +got):\n%s", diff)
	}
	props := got.Resources[0].Body["properties"].(map[string]any)
	if props["secret"] != "********" || props["key"] != "[listKeys(resourceId('My.Rp/keys', 'k'), '2021-01-01').key1]" {
		t.Errorf("properties = %v, want the secret masked and listKeys() left as its expression", props)
	}
	child := got.Resources[2]
	if len(child.DependsOn) != 2 || child.Deployment == nil || len(child.Deployment.Resources) != 1 || child.Deployment.Resources[0].ID != rg+"My.Rp/children/web-child" {
		t.Errorf("child deployment = %+v", child)
	}
	if remote := got.Resources[3]; remote.TemplateLink != "https://example.com/remote.json" || remote.Deployment != nil {
		t.Errorf("remote deployment = %+v, want its link left unexpanded", remote)
	}
	if got.Outputs["first"] != "web0" || got.Parameters["password"] != "********" {
		t.Errorf("outputs %v, parameters %v", got.Outputs, got.Parameters)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"expand"}, "usage: citadel template expand"},
		{[]string{"expand", main}, "no value was given and the parameter has no defaultValue"},
		{[]string{"expand", main, "--parameters", params, "--parameter", "count=two"}, "--parameter count: a int value is JSON"},
		{[]string{"expand", main, "--parameters", params, "--parameter", "count"}, "want name=value"},
		{[]string{"expand", main, "--parameters", params, "--parameter", "color=red"}, "the template has no parameter 'color'"},
		{[]string{"shrink"}, `unknown template command "shrink"`},
	} {
		if err := runTemplate(t.Context(), tc.args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestTemplateEval runs `citadel template eval` with a context file like
// the shared arm-expressions corpus's.
func TestTemplateEval(t *testing.T) {
	ctx := filepath.Join(t.TempDir(), "context.json")
	if err := os.WriteFile(ctx, []byte(`{
	  "parameters": {"first": 5, "name": "[toUpper('web')]"},
	  "variables": {"list": "[range(0, parameters('first'))]"},
	  "deployment": {"subscriptionId": "87d64d6d-6d17-4ad7-b507-16d9bc498781", "resourceGroup": "testRg"}
	}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"[add(parameters('first'), 3)]", "--context", ctx}, "8"},
		{[]string{"--context", ctx, "[createObject('n', parameters('name'), 'l', length(variables('list')))]"}, "{\n  \"l\": 5,\n  \"n\": \"WEB\"\n}"},
		{[]string{"[resourceId('customRg', 'My.Rp/parent/child', 'myParent', 'myChild')]", "--context", ctx},
			`"/subscriptions/87d64d6d-6d17-4ad7-b507-16d9bc498781/resourceGroups/customRg/providers/My.Rp/parent/myParent/child/myChild"`},
		{[]string{"[format('{0} > {1}', 'a&b', 2)]"}, `"a&b > 2"`},
	} {
		var out bytes.Buffer
		if err := runTemplate(t.Context(), append([]string{"eval"}, tc.args...), &out); err != nil {
			t.Errorf("eval %v: %v", tc.args, err)
			continue
		}
		if got := strings.TrimSpace(out.String()); got != tc.want {
			t.Errorf("eval %v printed %s, want %s", tc.args, got, tc.want)
		}
	}
	if err := runTemplate(t.Context(), []string{"eval", "[substring('ab', 5)]"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "substring") {
		t.Errorf("eval of a failing expression: error %v, want one naming substring", err)
	}
}
