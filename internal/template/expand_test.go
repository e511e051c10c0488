package template_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/template"
)

type obj = map[string]any
type arr = []any

const rgID = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/citadel-test"

// expand parses and expands a template written in the test.
func expand(t *testing.T, doc string, params obj) (*template.Deployment, error) {
	t.Helper()
	tmpl, err := template.Parse([]byte(doc))
	if err != nil {
		return nil, err
	}
	return template.Expand(tmpl, template.Options{Context: testContext, Parameters: params})
}

func mustExpand(t *testing.T, doc string, params obj) *template.Deployment {
	t.Helper()
	d, err := expand(t, doc, params)
	if err != nil {
		t.Fatalf("Expand() error = %v", err)
	}
	return d
}

// ids lists the IDs of a deployment's resources, in deployment order,
// relative to the test resource group.
func ids(d *template.Deployment) []string {
	var out []string
	for _, r := range d.Resources {
		out = append(out, strings.TrimPrefix(r.ID, rgID))
	}
	return out
}

func find(t *testing.T, d *template.Deployment, name string) *template.Resource {
	t.Helper()
	for _, r := range d.Resources {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no resource named %q in %v", name, ids(d))
	return nil
}

func deps(r *template.Resource) []string {
	var out []string
	for _, d := range r.DependsOn {
		out = append(out, strings.TrimPrefix(d, rgID))
	}
	return out
}

// wantError checks that err names the path and the reason.
func wantError(t *testing.T, err error, path, reason string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), reason) {
		t.Errorf("error = %v, want one at %q containing %q", err, path, reason)
	}
}

func TestCopyLoops(t *testing.T) {
	d := mustExpand(t, `{
	  // comments and trailing commas are accepted, as ARM does
	  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
	  "parameters": {"count": {"type": "int", "defaultValue": 5}},
	  "variables": {
	    "copy": [{"name": "names", "count": 2, "input": "[concat('n', copyIndex('names'))]"}],
	    "disks": {"copy": [{"name": "list", "count": 2, "input": {"lun": "[copyIndex('list')]"}}]},
	  },
	  "resources": [
	    {"type": "My.Rp/things", "apiVersion": "2020-01-01", "name": "[concat('t', copyIndex(1))]",
	     "copy": {"name": "things", "count": "[parameters('count')]", "mode": "Serial", "batchSize": 2},
	     "properties": {
	       "copy": [{"name": "disks", "count": "[add(copyIndex(), 1)]", "input": {"i": "[copyIndex()]", "lun": "[copyIndex('disks')]"}}],
	       "names": "[variables('names')]"
	     }},
	    {"type": "My.Rp/none", "apiVersion": "2020-01-01", "name": "[concat('none', copyIndex())]", "copy": {"name": "none", "count": 0}},
	    {"type": "My.Rp/after", "apiVersion": "2020-01-01", "name": "after", "dependsOn": ["things", "none"],
	     "properties": {"disks": "[variables('disks')]"}},
	  ],
	  "outputs": {"names": {"type": "array", "copy": {"count": 3, "input": "[concat('o', copyIndex())]"}}}
	}`, nil)
	if diff := cmp.Diff([]string{
		"/providers/My.Rp/things/t1", "/providers/My.Rp/things/t2", "/providers/My.Rp/things/t3",
		"/providers/My.Rp/things/t4", "/providers/My.Rp/things/t5", "/providers/My.Rp/after/after",
	}, ids(d)); diff != "" {
		t.Errorf("resources mismatch (-want +got):\n%s", diff)
	}
	// Serial with batchSize 2: each batch waits for the one before.
	if got, want := deps(find(t, d, "t3")), []string{"/providers/My.Rp/things/t1", "/providers/My.Rp/things/t2"}; !slices.Equal(got, want) {
		t.Errorf("t3 depends on %v, want %v", got, want)
	}
	if got := deps(find(t, d, "t2")); len(got) != 0 {
		t.Errorf("t2 depends on %v, want nothing (first batch)", got)
	}
	if got := find(t, d, "t5").Copy; got == nil || got.Index != 4 || got.Count != 5 || !got.Serial || got.BatchSize != 2 {
		t.Errorf("t5.Copy = %+v", got)
	}
	if got := len(deps(find(t, d, "after"))); got != 5 {
		t.Errorf("after depends on %d resources, want the 5 of the loop", got)
	}
	want := obj{
		"disks": arr{obj{"i": int64(1), "lun": int64(0)}, obj{"i": int64(1), "lun": int64(1)}},
		"names": arr{"n0", "n1"},
	}
	if diff := cmp.Diff(want, find(t, d, "t2").Body["properties"]); diff != "" {
		t.Errorf("t2 properties mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(obj{"list": arr{obj{"lun": int64(0)}, obj{"lun": int64(1)}}}, find(t, d, "after").Body["properties"].(obj)["disks"]); diff != "" {
		t.Errorf("variable copy mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(arr{"o0", "o1", "o2"}, d.Outputs["names"]); diff != "" {
		t.Errorf("output copy mismatch (-want +got):\n%s", diff)
	}

	_, err := expand(t, `{"resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "x", "copy": {"name": "c", "count": 801}}]}`, nil)
	wantError(t, err, "resources[0].copy.count", "between 0 and 800")
	_, err = expand(t, `{"resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "[copyIndex()]"}]}`, nil)
	wantError(t, err, "resources[0].name", "copy loop")
}

func TestConditions(t *testing.T) {
	d := mustExpand(t, `{
	  "parameters": {"deploySecond": {"type": "bool", "defaultValue": false}},
	  "resources": [
	    {"type": "My.Rp/t", "apiVersion": "1", "name": "first"},
	    {"type": "My.Rp/t", "apiVersion": "1", "name": "second", "condition": "[parameters('deploySecond')]", "dependsOn": ["first"],
	     "properties": {"never": "[div(1, 0)]"}},
	    {"type": "My.Rp/t", "apiVersion": "1", "name": "third", "dependsOn": ["second"]}
	  ]
	}`, nil)
	if diff := cmp.Diff([]string{"/providers/My.Rp/t/first", "/providers/My.Rp/t/third"}, ids(d)); diff != "" {
		t.Errorf("resources mismatch (-want +got):\n%s", diff)
	}
	// A dependency on a resource not deployed is satisfied, but still
	// waits for what that resource waited for.
	if got := deps(find(t, d, "third")); !slices.Equal(got, []string{"/providers/My.Rp/t/first"}) {
		t.Errorf("third depends on %v, want first (through second)", got)
	}
	d = mustExpand(t, `{
	  "parameters": {"deploySecond": {"type": "bool", "defaultValue": false}},
	  "resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "second", "condition": "[parameters('deploySecond')]"}]
	}`, obj{"deploySecond": true})
	if len(d.Resources) != 1 {
		t.Errorf("condition true: resources %v", ids(d))
	}
}

func TestDependencies(t *testing.T) {
	d := mustExpand(t, `{
	  "resources": [
	    {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "1", "name": "vnet",
	     "resources": [{"type": "subnets", "apiVersion": "1", "name": "a"},
	                   {"type": "subnets", "apiVersion": "1", "name": "b", "dependsOn": ["a"]}]},
	    {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "1", "name": "nic",
	     "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'b')]"]},
	    {"type": "Microsoft.Compute/virtualMachines", "apiVersion": "1", "name": "vm",
	     "dependsOn": ["Microsoft.Network/networkInterfaces/nic"],
	     "properties": {"storageUri": "[reference('store').primaryEndpoints.blob]", "key": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'store'), '1').keys[0].value]"}},
	    {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "1", "name": "store"}
	  ]
	}`, nil)
	if diff := cmp.Diff([]string{
		"/providers/Microsoft.Network/virtualNetworks/vnet",
		"/providers/Microsoft.Network/virtualNetworks/vnet/subnets/a",
		"/providers/Microsoft.Network/virtualNetworks/vnet/subnets/b",
		"/providers/Microsoft.Network/networkInterfaces/nic",
		"/providers/Microsoft.Storage/storageAccounts/store",
		"/providers/Microsoft.Compute/virtualMachines/vm",
	}, ids(d)); diff != "" {
		t.Errorf("deployment order mismatch (-want +got):\n%s", diff)
	}
	for name, want := range map[string][]string{
		"vnet/a": {"/providers/Microsoft.Network/virtualNetworks/vnet"}, // a nested child waits for its parent
		"vnet/b": {"/providers/Microsoft.Network/virtualNetworks/vnet", "/providers/Microsoft.Network/virtualNetworks/vnet/subnets/a"},
		"vm":     {"/providers/Microsoft.Network/networkInterfaces/nic", "/providers/Microsoft.Storage/storageAccounts/store"}, // reference() and listKeys() too
	} {
		if got := deps(find(t, d, name)); !slices.Equal(got, want) {
			t.Errorf("%s depends on %v, want %v", name, got, want)
		}
	}

	_, err := expand(t, `{"resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "x", "dependsOn": ["nothere"]}]}`, nil)
	wantError(t, err, "resources[0].dependsOn[0]", "'nothere' is not a resource")
	_, err = expand(t, `{"resources": [
	  {"type": "My.Rp/t", "apiVersion": "1", "name": "a", "dependsOn": ["c"]},
	  {"type": "My.Rp/t", "apiVersion": "1", "name": "b", "dependsOn": ["a"]},
	  {"type": "My.Rp/t", "apiVersion": "1", "name": "c", "dependsOn": ["b"]}]}`, nil)
	wantError(t, err, "resources[0]", "cycle: "+rgID+"/providers/My.Rp/t/a -> "+rgID+"/providers/My.Rp/t/c -> "+rgID+"/providers/My.Rp/t/b -> "+rgID+"/providers/My.Rp/t/a")
}

// nestedDoc is the docs' example of expressionEvaluationOptions: a
// variable defined in both templates.
const nestedDoc = `{
  "parameters": {"who": {"type": "string", "defaultValue": "parent"}},
  "variables": {"exampleVar": "from parent template"},
  "resources": [{
    "type": "Microsoft.Resources/deployments", "apiVersion": "2019-10-01", "name": "nested",
    "resourceGroup": "other-rg",
    "properties": {
      "expressionEvaluationOptions": {"scope": "%s"},
      "mode": "Incremental",
      "parameters": {"who": {"value": "[concat('from ', parameters('who'))]"}},
      "template": {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "parameters": {"who": {"type": "string", "defaultValue": "nested default"}},
        "variables": {"exampleVar": "from nested template"},
        "resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "[parameters('who')]", "properties": {"rg": "[resourceGroup().name]"}}],
        "outputs": {"testVar": {"type": "string", "value": "[variables('exampleVar')]"}}
      }
    }
  }]
}`

func TestNestedDeployments(t *testing.T) {
	for _, tc := range []struct {
		scope, testVar, name, rg string
	}{
		{"inner", "from nested template", "from parent", "other-rg"},
		{"outer", "from parent template", "parent", "citadel-test"},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			d := mustExpand(t, fmt.Sprintf(nestedDoc, tc.scope), nil)
			nested := d.Resources[0]
			if want := "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/other-rg/providers/Microsoft.Resources/deployments/nested"; nested.ID != want {
				t.Errorf("deployment ID = %s, want %s", nested.ID, want)
			}
			if _, ok := nested.Body["properties"].(obj)["template"]; ok {
				t.Errorf("the deployment's body holds its template; it should be in Deployment")
			}
			inner := nested.Deployment
			if inner == nil || len(inner.Resources) != 1 {
				t.Fatalf("nested deployment = %+v", inner)
			}
			r := inner.Resources[0]
			// The nested resources deploy in the target resource group, whatever the scope.
			if want := "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/other-rg/providers/My.Rp/t/" + tc.name; r.ID != want {
				t.Errorf("nested resource ID = %s, want %s", r.ID, want)
			}
			if got := r.Body["properties"].(obj)["rg"]; got != tc.rg {
				t.Errorf("resourceGroup().name in the nested template = %v, want %s", got, tc.rg)
			}
			if got := inner.Outputs["testVar"]; got != tc.testVar {
				t.Errorf("testVar = %v, want %s", got, tc.testVar)
			}
		})
	}
}

func TestLinkedTemplates(t *testing.T) {
	doc := `{"resources": [{"type": "Microsoft.Resources/deployments", "apiVersion": "2020-10-01", "name": "linked",
	  "properties": {"mode": "Incremental", "templateLink": {"relativePath": "nested/child.json"}, "parameters": {"n": {"value": "x"}}}}]}`
	child := `{"parameters": {"n": {"type": "string"}}, "resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "[parameters('n')]"}]}`
	tmpl, err := template.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	d, err := template.Expand(tmpl, template.Options{Context: testContext, Source: "templates/main.json", Load: func(loc string) ([]byte, error) {
		asked = append(asked, loc)
		return []byte(child), nil
	}})
	if err != nil {
		t.Fatalf("Expand() error = %v", err)
	}
	if !slices.Equal(asked, []string{"templates/nested/child.json"}) {
		t.Errorf("loaded %v, want the relativePath resolved against the template", asked)
	}
	if got := d.Resources[0].Deployment; got == nil || got.Resources[0].Name != "x" {
		t.Errorf("linked deployment = %+v", got)
	}
	d, err = template.Expand(tmpl, template.Options{Context: testContext, Source: "https://example.com/t/main.json",
		Load: func(string) ([]byte, error) { return nil, template.ErrNotAvailable }})
	if err != nil || d.Resources[0].TemplateLink != "https://example.com/t/nested/child.json" || d.Resources[0].Deployment != nil {
		t.Errorf("an unavailable link: %v, %+v; want it left unexpanded", err, d.Resources[0])
	}

	// In a template spec version, relative paths start from the version,
	// and a link to another version (by id) starts from that one.
	const spec = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Resources/templateSpecs/ts/versions/"
	specFiles := map[string]string{
		spec + "1.0/nested/child.json": `{"parameters": {"n": {"type": "string"}}, "resources": [{"type": "Microsoft.Resources/deployments", "apiVersion": "2020-10-01", "name": "grandchild",
		  "properties": {"mode": "Incremental", "templateLink": {"id": "` + spec + `2.0"}}}]}`,
		spec + "2.0/": `{"resources": [{"type": "Microsoft.Resources/deployments", "apiVersion": "2020-10-01", "name": "leaf",
		  "properties": {"mode": "Incremental", "templateLink": {"relativePath": "../leaf.json"}}}]}`,
		spec + "leaf.json": `{"resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "leaf"}]}`,
	}
	asked = nil
	d, err = template.Expand(tmpl, template.Options{Context: testContext, Source: spec + "1.0/", Load: func(loc string) ([]byte, error) {
		asked = append(asked, loc)
		if f, ok := specFiles[loc]; ok {
			return []byte(f), nil
		}
		return nil, fmt.Errorf("no %s", loc)
	}})
	if err != nil {
		t.Fatalf("Expand() in a template spec: %v", err)
	}
	if want := []string{spec + "1.0/nested/child.json", spec + "2.0/", spec + "leaf.json"}; !slices.Equal(asked, want) {
		t.Errorf("loaded %v, want %v", asked, want)
	}

	// Parameters from a parametersLink.
	tmpl, err = template.Parse([]byte(`{"resources": [{"type": "Microsoft.Resources/deployments", "apiVersion": "2020-10-01", "name": "linked",
	  "properties": {"mode": "Incremental", "templateLink": {"uri": "https://example.com/child.json"}, "parametersLink": {"uri": "https://example.com/child.parameters.json"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"https://example.com/child.json":            child,
		"https://example.com/child.parameters.json": `{"parameters": {"n": {"value": "from-link"}}}`,
	}
	d, err = template.Expand(tmpl, template.Options{Context: testContext, Load: func(loc string) ([]byte, error) { return []byte(files[loc]), nil }})
	if err != nil || d.Resources[0].Deployment == nil || d.Resources[0].Deployment.Resources[0].Name != "from-link" {
		t.Errorf("parametersLink: %v, %+v", err, d)
	}
}

func TestSymbolicNames(t *testing.T) {
	d := mustExpand(t, `{
	  "languageVersion": "2.0",
	  "resources": {
	    "kv": {"existing": true, "type": "Microsoft.KeyVault/vaults", "apiVersion": "2019-09-01", "name": "vault"},
	    "store": {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "1", "name": "[format('s{0}', copyIndex())]", "copy": {"name": "store", "count": 2}},
	    "lock": {"type": "Microsoft.Authorization/locks", "apiVersion": "1", "name": "lock", "scope": "[resourceId('Microsoft.Storage/storageAccounts', 's1')]",
	             "dependsOn": ["store[1]", "kv"], "properties": {"uri": "[reference('kv').vaultUri]"}},
	    "all": {"type": "My.Rp/t", "apiVersion": "1", "name": "all", "dependsOn": ["store"]}
	  }
	}`, nil)
	lock := find(t, d, "lock")
	if want := rgID + "/providers/Microsoft.Storage/storageAccounts/s1/providers/Microsoft.Authorization/locks/lock"; lock.ID != want {
		t.Errorf("lock ID = %s, want %s", lock.ID, want)
	}
	if got, want := deps(lock), []string{"/providers/Microsoft.KeyVault/vaults/vault", "/providers/Microsoft.Storage/storageAccounts/s1"}; !slices.Equal(got, want) {
		t.Errorf("lock depends on %v, want %v", got, want)
	}
	if got := deps(find(t, d, "all")); len(got) != 2 {
		t.Errorf("all depends on %v, want both store instances", got)
	}
	kv := find(t, d, "vault")
	if !kv.Existing || kv.SymbolicName != "kv" || kv.Body != nil {
		t.Errorf("existing kv = %+v, want Existing with no body", kv)
	}
	if ev, err := kv.Evaluate(nil); err != nil || !ev.Skip {
		t.Errorf("an existing resource evaluates to %+v, %v; want Skip", ev, err)
	}
	if got := lock.Body["properties"].(obj)["uri"]; got != "[reference('kv').vaultUri]" {
		t.Errorf("offline uri = %v, want the expression", got)
	}
	ev, err := lock.Evaluate(fakeRuntime{})
	if err != nil {
		t.Fatalf("Evaluate() error = %v", err)
	}
	if got := ev.Body["properties"].(obj)["uri"]; got != "https://vault.example/" {
		t.Errorf("uri with the runtime = %v", got)
	}
	_, err = expand(t, `{"resources": {"a": {"type": "My.Rp/t", "apiVersion": "1", "name": "a"}}}`, nil)
	wantError(t, err, "resources", "languageVersion 2.0")
}

func TestUserFunctions(t *testing.T) {
	d := mustExpand(t, `{
	  "languageVersion": "2.0",
	  "functions": [{"namespace": "my", "members": {
	    "greet": {"parameters": [{"name": "who", "type": "string"}], "output": {"type": "string", "value": "[format('Hello {0}{1}', parameters('who'), my.bang())]"}},
	    "bang": {"parameters": [], "output": {"type": "string", "value": "!"}}
	  }}],
	  "resources": {},
	  "outputs": {"g": {"type": "string", "value": "[my.greet('Evie')]"},
	              "m": {"type": "array", "value": "[map(createArray('a', 'b'), lambda('x', my.greet(lambdaVariables('x'))))]"}}
	}`, nil)
	if d.Outputs["g"] != "Hello Evie!" || !cmp.Equal(d.Outputs["m"], arr{"Hello a!", "Hello b!"}) {
		t.Errorf("outputs = %v", d.Outputs)
	}
	_, err := expand(t, `{"functions": [{"namespace": "my", "members": {"f": {"parameters": [{"name": "i", "type": "int"}], "output": {"type": "int", "value": "[parameters('i')]"}}}}],
	  "outputs": {"o": {"type": "int", "value": "[my.f('x')]"}}}`, nil)
	wantError(t, err, "outputs.o.value", "parameter 'i': expected a value of type int")
	_, err = expand(t, `{"variables": {"v": 1}, "functions": [{"namespace": "my", "members": {"f": {"output": {"type": "int", "value": "[variables('v')]"}}}}],
	  "outputs": {"o": {"type": "int", "value": "[my.f()]"}}}`, nil)
	wantError(t, err, "outputs.o.value", "variables() can't be used in a user-defined function")
	_, err = expand(t, `{"functions": [{"namespace": "my", "members": {
	  "a": {"output": {"type": "int", "value": "[my.b()]"}}, "b": {"output": {"type": "int", "value": "[my.a()]"}}}}]}`, nil)
	wantError(t, err, "functions", "calls itself")
}

func TestParameters(t *testing.T) {
	const doc = `{
	  "parameters": {
	    "name": {"type": "string", "minLength": 3, "maxLength": 8},
	    "size": {"type": "string", "defaultValue": "small", "allowedValues": ["small", "large"]},
	    "count": {"type": "int", "defaultValue": 2, "minValue": 1, "maxValue": 10},
	    "zones": {"type": "array", "defaultValue": [], "allowedValues": ["1", "2", "3"]},
	    "password": {"type": "securestring", "defaultValue": "s3cret-value", "allowedValues": ["s3cret-value"]},
	    "derived": {"type": "string", "defaultValue": "[concat(parameters('name'), '-', parameters('size'))]"},
	    "stamp": {"type": "string", "defaultValue": "[utcNow('yyyy')]"},
	    "opt": {"type": "object", "nullable": true}
	  },
	  "resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "[parameters('derived')]",
	                 "properties": {"secret": "[concat('pw=', parameters('password'))]", "opt": "[parameters('opt')]"}}],
	  "outputs": {"pw": {"type": "string", "value": "[parameters('password')]"}}
	}`
	d := mustExpand(t, doc, obj{"NAME": "web", "zones": arr{"1", "3"}})
	if got := find(t, d, "web-small"); got.Body["properties"].(obj)["opt"] != nil {
		t.Errorf("nullable opt = %v", got.Body)
	}
	if s, _ := d.Parameters["stamp"].(string); len(s) != 4 {
		t.Errorf("utcNow() in a default value gave %v", d.Parameters["stamp"])
	}
	red := d.Redacted()
	if red.Parameters["password"] != "********" || red.Outputs["pw"] != "********" ||
		red.Resources[0].Body["properties"].(obj)["secret"] != "pw=********" {
		t.Errorf("Redacted() shows secrets: %v %v %v", red.Parameters, red.Outputs, red.Resources[0].Body)
	}
	if d.Resources[0].Body["properties"].(obj)["secret"] != "pw=s3cret-value" {
		t.Errorf("Redacted() changed the deployment itself")
	}

	for _, tc := range []struct {
		params       obj
		path, reason string
	}{
		{obj{}, "parameters.name", "no value was given"},
		{obj{"name": "x"}, "parameters.name", "length 1 is less than the minimum length 3"},
		{obj{"name": "web", "size": "medium"}, "parameters.size", `the value "medium" is not one of the allowed values ["small","large"]`},
		{obj{"name": "web", "count": "2"}, "parameters.count", "expected a value of type int, not a string"},
		{obj{"name": "web", "count": int64(11)}, "parameters.count", "more than the maximum value 10"},
		{obj{"name": "web", "zones": arr{"4"}}, "parameters.zones", `the value "4" is not one of the allowed values`},
		{obj{"name": "web", "password": "guess"}, "parameters.password", "the value is not one of the allowed values"},
		{obj{"name": "web", "extra": 1}, "parameters.extra", "the template has no parameter 'extra'"},
	} {
		_, err := expand(t, doc, tc.params)
		wantError(t, err, tc.path, tc.reason)
		if err != nil && strings.Contains(err.Error(), "guess") {
			t.Errorf("the error %v shows a secure value", err)
		}
	}

	_, err := expand(t, `{"resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "[utcNow()]"}]}`, nil)
	wantError(t, err, "resources[0].name", "the function 'utcNow' is unknown or not allowed here")
	_, err = expand(t, `{"parameters": {"p": {"type": "string"}}, "outputs": {"o": {"type": "string", "value": "[noSuch(parameters('p'))]"}}}`, obj{"p": "x"})
	wantError(t, err, "outputs.o.value", "the function 'noSuch' is unknown")
	_, err = expand(t, `{"parameters": {"p": {"type": "text"}}}`, nil)
	wantError(t, err, "parameters.p.type", "not one of string, securestring")
	_, err = expand(t, `{"resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "[concat('a', 'b']"}]}`, nil)
	wantError(t, err, "resources[0].name", "is not valid")
}

func TestScopes(t *testing.T) {
	ctx := testContext
	for _, tc := range []struct {
		schema, typ, name, want string
	}{
		{"2018-05-01/subscriptionDeploymentTemplate.json#", "Microsoft.Resources/resourceGroups", "rg2",
			"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg2"},
		{"2018-05-01/subscriptionDeploymentTemplate.json#", "Microsoft.Authorization/policyDefinitions", "p",
			"/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Authorization/policyDefinitions/p"},
		{"2019-08-01/managementGroupDeploymentTemplate.json#", "Microsoft.Authorization/policyDefinitions", "p",
			"/providers/Microsoft.Management/managementGroups/" + ctx.ManagementGroup + "/providers/Microsoft.Authorization/policyDefinitions/p"},
		{"2019-08-01/tenantDeploymentTemplate.json#", "Microsoft.Management/managementGroups", "mg2",
			"/providers/Microsoft.Management/managementGroups/mg2"},
	} {
		doc := fmt.Sprintf(`{"$schema": "https://schema.management.azure.com/schemas/%s",
		  "resources": [{"type": %q, "apiVersion": "1", "name": %q}]}`, tc.schema, tc.typ, tc.name)
		d := mustExpand(t, doc, nil)
		if got := d.Resources[0].ID; got != tc.want {
			t.Errorf("%s %s: ID %s, want %s", tc.schema, tc.typ, got, tc.want)
		}
	}
	d := mustExpand(t, `{"resources": [{"type": "Microsoft.Storage/storageAccounts/providers/roleAssignments", "apiVersion": "1",
	  "name": "store/Microsoft.Authorization/ra1"}]}`, nil)
	if r := d.Resources[0]; r.Type != "Microsoft.Authorization/roleAssignments" ||
		r.ID != rgID+"/providers/Microsoft.Storage/storageAccounts/store/providers/Microsoft.Authorization/roleAssignments/ra1" {
		t.Errorf("older extension syntax: %s %s", r.Type, r.ID)
	}
	_, err := expand(t, `{"resources": [{"type": "My.Rp/t/child", "apiVersion": "1", "name": "only-one"}]}`, nil)
	wantError(t, err, "resources[0]", "needs 2 name segment(s)")

	// The context's scope wins over the template's $schema.
	tmpl, err := template.Parse([]byte(`{"resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "n"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx.Scope = template.SubscriptionScope
	d, err = template.Expand(tmpl, template.Options{Context: ctx})
	if err != nil || d.Scope != template.SubscriptionScope || d.Resources[0].ID != "/subscriptions/00000000-0000-0000-0000-000000000001/providers/My.Rp/t/n" {
		t.Errorf("Expand at subscription scope = %+v, %v", d, err)
	}
	ctx.Scope = "galaxy"
	if _, err := template.Expand(tmpl, template.Options{Context: ctx}); err == nil || !strings.Contains(err.Error(), `"galaxy"`) {
		t.Errorf("Expand at scope galaxy: error %v", err)
	}
}

// fakeRuntime answers reference(), list*(), providers() and secrets.
type fakeRuntime struct{}

func (fakeRuntime) Reference(id, apiVersion string, full bool) (any, error) {
	switch {
	case full:
		return obj{"id": id, "properties": obj{"apiVersion": apiVersion}}, nil
	case strings.HasSuffix(id, "/vaults/vault"):
		return obj{"vaultUri": "https://vault.example/"}, nil
	case strings.HasSuffix(id, "/deployments/first"):
		return obj{"outputs": obj{"principal": obj{"value": "principal-1"}}}, nil
	}
	return obj{"apiVersion": apiVersion}, nil
}

func (fakeRuntime) List(action, id, apiVersion string, body any) (any, error) {
	return obj{"action": action, "id": id, "keys": arr{obj{"value": "k1"}}}, nil
}

func (fakeRuntime) Providers(namespace, resourceType string) (any, error) {
	return obj{"namespace": namespace, "apiVersions": arr{"2021-01-01"}}, nil
}

func (fakeRuntime) Secret(vaultID, name, version string) (string, error) {
	if name == "missing" {
		return "", errors.New("no such secret")
	}
	return "secret-of-" + name, nil
}

func TestRuntime(t *testing.T) {
	d := mustExpand(t, `{
	  "resources": [
	    {"type": "Microsoft.Resources/deployments", "apiVersion": "2020-10-01", "name": "first",
	     "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
	       "template": {"resources": [], "outputs": {"principal": {"type": "string", "value": "principal-1"}}}}},
	    {"type": "Microsoft.Resources/deployments", "apiVersion": "2020-10-01", "name": "second",
	     "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
	       "parameters": {"principal": {"value": "[reference('first').outputs.principal.value]"},
	                      "password": {"reference": {"keyVault": {"id": "/kv"}, "secretName": "pw"}}},
	       "template": {
	         "parameters": {"principal": {"type": "string"}, "password": {"type": "securestring"}},
	         "resources": [{"type": "My.Rp/t", "apiVersion": "2021-01-01", "name": "[guid(parameters('principal'))]",
	                        "properties": {"pw": "[parameters('password')]"}}]}}},
	    {"type": "My.Rp/t", "apiVersion": "2021-01-01", "name": "user",
	     "properties": {"key": "[listKeys(resourceId('My.Rp/t', 'x'), '2021-01-01').keys[0].value]",
	                    "api": "[reference('first', '2020-10-01', 'Full').properties.apiVersion]",
	                    "plain": "[concat('a', 'b')]"}}
	  ],
	  "outputs": {"p": {"type": "string", "value": "[reference('first').outputs.principal.value]"}}
	}`, nil)
	second := find(t, d, "second")
	// The nested resource's name needs a runtime value: its expansion waits for the deployment.
	if second.Deployment != nil || !strings.Contains(second.Deferred, "only known during the deployment") {
		t.Errorf("second = %+v, want a deferred deployment", second)
	}
	if got, want := deps(second), []string{"/providers/Microsoft.Resources/deployments/first"}; !slices.Equal(got, want) {
		t.Errorf("second depends on %v, want %v (its reference())", got, want)
	}
	user := find(t, d, "user")
	props := user.Body["properties"].(obj)
	if props["key"] != "[listKeys(resourceId('My.Rp/t', 'x'), '2021-01-01').keys[0].value]" || props["plain"] != "ab" {
		t.Errorf("offline body = %v, want runtime values as expressions and the rest evaluated", props)
	}
	if d.Outputs["p"] != "[reference('first').outputs.principal.value]" {
		t.Errorf("offline output = %v", d.Outputs["p"])
	}

	rt := fakeRuntime{}
	ev, err := second.Evaluate(rt)
	if err != nil {
		t.Fatalf("Evaluate(second) error = %v", err)
	}
	if ev.Deployment == nil || len(ev.Deployment.Resources) != 1 {
		t.Fatalf("Evaluate(second).Deployment = %+v", ev.Deployment)
	}
	nested := ev.Deployment.Resources[0]
	if nested.Name != "2a18c3a0-0ab4-59d8-a2a9-f4f2b1a0c1b5" && !strings.HasSuffix(nested.ID, "/My.Rp/t/"+nested.Name) {
		t.Errorf("nested resource %s", nested.ID)
	}
	if nb, err := nested.Evaluate(rt); err != nil || nb.Body["properties"].(obj)["pw"] != "secret-of-pw" {
		t.Errorf("nested body = %+v, %v; want the Key Vault secret", nb, err)
	}
	ev, err = user.Evaluate(rt)
	if err != nil {
		t.Fatalf("Evaluate(user) error = %v", err)
	}
	want := obj{"key": "k1", "api": "2020-10-01", "plain": "ab"}
	if diff := cmp.Diff(want, ev.Body["properties"]); diff != "" {
		t.Errorf("runtime body mismatch (-want +got):\n%s", diff)
	}
	out, err := d.EvaluateOutputs(rt)
	if err != nil || out["p"] != "principal-1" {
		t.Errorf("EvaluateOutputs() = %v, %v", out, err)
	}

	_, err = expand(t, `{"resources": [{"type": "My.Rp/t", "apiVersion": "1", "name": "[reference('x').name]"}]}`, nil)
	wantError(t, err, "resources[0].name", "only known during the deployment")
	_, err = expand(t, `{"variables": {"v": "[listKeys('x', '1')]"}}`, nil)
	wantError(t, err, "variables.v", "only known during the deployment")
}

func TestEval(t *testing.T) {
	got, err := template.Eval("[concat(variables('b'), parameters('a'), resourceGroup().name)]", testContext,
		obj{"a": "[toUpper('x')]"}, obj{"b": "[[literal]"})
	if err != nil || got != "[literal]Xcitadel-test" {
		t.Errorf("Eval() = %v, %v", got, err)
	}
	got, err = template.Eval("[subscriptionResourceId('My.Rp/t', 'n')]", template.Context{SubscriptionID: "s"}, nil, nil)
	if err != nil || got != "/subscriptions/s/providers/My.Rp/t/n" {
		t.Errorf("Eval() at subscription scope = %v, %v", got, err)
	}
}
