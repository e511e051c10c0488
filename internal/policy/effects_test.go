package policy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/policy"
)

const roles = `"roleDefinitionIds": ["/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"]`

func assign(t testing.TB, params, rule string, values map[string]any) *policy.Assignment {
	t.Helper()
	a, err := policy.NewAssignment("/providers/Microsoft.Authorization/policyAssignments/a1", definition(t, params, rule), values)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestEffects(t *testing.T) {
	const match = `{"field": "type", "equals": "Microsoft.Test/resourceType"}`
	tests := []struct {
		name, rule string
		effect     policy.Effect
		matched    bool
		state      string
		changes    []policy.Change
		conflict   string
	}{
		{"deny", `{"if": ` + match + `, "then": {"effect": "Deny"}}`, policy.Deny, true, policy.NonCompliant, nil, ""},
		{"audit", `{"if": ` + match + `, "then": {"effect": "audit"}}`, policy.Audit, true, policy.NonCompliant, nil, ""},
		{"audit, compliant", `{"if": {"field": "name", "equals": "other"}, "then": {"effect": "audit"}}`, policy.Audit, false, policy.Compliant, nil, ""},
		{"disabled", `{"if": ` + match + `, "then": {"effect": "Disabled"}}`, policy.Disabled, false, "", nil, ""},
		{"manual", `{"if": ` + match + `, "then": {"effect": "manual", "details": {"defaultState": "NonCompliant"}}}`, policy.Manual, true, policy.NonCompliant, nil, ""},
		{"manual, unknown by default", `{"if": ` + match + `, "then": {"effect": "manual"}}`, policy.Manual, true, policy.Unknown, nil, ""},
		{"denyAction", `{"if": ` + match + `, "then": {"effect": "denyAction", "details": {"actionNames": ["delete"]}}}`, policy.DenyAction, true, policy.NonCompliant, nil, ""},
		{"append a tag", `{"if": {"field": "tags.owner", "exists": false}, "then": {"effect": "append",
			"details": [{"field": "tags['owner']", "value": "ops"}]}}`, policy.Append, true, policy.NonCompliant,
			[]policy.Change{{Operation: "add", Field: "tags['owner']", Path: "tags.owner", Value: "ops"}}, ""},
		{"append a member to a [*] array", `{"if": ` + match + `, "then": {"effect": "append",
			"details": [{"field": "Microsoft.Test/resourceType/stringArray[*]", "value": "d"}]}}`, policy.Append, true, policy.NonCompliant,
			[]policy.Change{{Operation: "add", Field: "Microsoft.Test/resourceType/stringArray[*]", Path: "properties.stringArray[*]", Value: "d"}}, ""},
		{"append over a different value denies", `{"if": ` + match + `, "then": {"effect": "append",
			"details": [{"field": "Microsoft.Test/resourceType/str", "value": "other"}]}}`, policy.Deny, true, policy.NonCompliant, nil,
			`properties.policyRule.then.details[0]: Microsoft.Test/resourceType/str is "Hello-World42", the policy appends "other"`},
		{"modify with an operation condition", `{"if": ` + match + `, "then": {"effect": "modify",
			"details": {` + roles + `, "conflictEffect": "audit", "operations": [
				{"operation": "addOrReplace", "field": "Microsoft.Test/resourceType/num", "value": 7, "condition": "[greater(requestContext().apiVersion, '2020')]"},
				{"operation": "add", "field": "Microsoft.Test/resourceType/flag", "value": false, "condition": "[false()]"},
				{"operation": "add", "field": "tags.env", "value": "dev"}]}}}`, policy.Modify, true, policy.NonCompliant,
			[]policy.Change{{Operation: "addOrReplace", Field: "Microsoft.Test/resourceType/num", Path: "properties.num", Value: int64(7)},
				{Operation: "add", Field: "tags.env", Path: "tags.env", Value: "dev"}}, ""},
		{"modify a read-only alias: conflictEffect", `{"if": ` + match + `, "then": {"effect": "modify",
			"details": {` + roles + `, "conflictEffect": "audit", "operations": [{"operation": "addOrReplace", "field": "Microsoft.Test/resourceType/state", "value": "x"}]}}}`,
			policy.Audit, true, policy.NonCompliant, nil,
			"properties.policyRule.then.details.operations[0]: Microsoft.Test/resourceType/state is not modifiable on Microsoft.Test/resourceType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := assign(t, "", tt.rule, nil)
			r := a.Evaluate(resource(t), &policy.Context{APIVersion: "2024-01-01"})[0]
			if r.Err != nil || r.Effect != tt.effect || r.Matched != tt.matched || r.State != tt.state || r.Conflict != tt.conflict {
				t.Errorf("Evaluate = %s matched %v state %q conflict %q err %v; want %s %v %q %q", r.Effect, r.Matched, r.State, r.Conflict, r.Err,
					tt.effect, tt.matched, tt.state, tt.conflict)
			}
			if diff := cmp.Diff(tt.changes, r.Changes, cmp.Comparer(func(a, b policy.Change) bool {
				return a.Operation == b.Operation && a.Field == b.Field && a.Path == b.Path && cmp.Equal(a.Value, b.Value)
			})); diff != "" {
				t.Errorf("Changes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestModifyRemove is effect-modify's example 2: remove the env tag and
// set environment instead.
func TestModifyRemove(t *testing.T) {
	a := assign(t, `{"tagValue": {"type": "String"}}`, `{"if": {"field": "tags['env']", "exists": "true"}, "then": {"effect": "modify",
		"details": {`+roles+`, "conflictEffect": "deny", "operations": [{"operation": "Remove", "field": "tags['env']"},
			{"operation": "addOrReplace", "field": "tags['environment']", "value": "[parameters('tagValue')]"}]}}}`,
		map[string]any{"tagValue": "production"})
	body := resource(t)
	d := policy.EvaluateRequest([]*policy.Assignment{a}, body, nil)
	if len(d.Denied()) != 0 {
		t.Fatalf("Denied() = %+v, want none", d.Denied())
	}
	want := map[string]any{"environment": "production", "it's": "quoted"}
	if diff := cmp.Diff(want, d.Body["tags"]); diff != "" {
		t.Errorf("tags after modify (-want +got):\n%s", diff)
	}
	if _, ok := body["tags"].(map[string]any)["env"]; !ok {
		t.Errorf("EvaluateRequest changed the caller's body")
	}
	// The result reported is modify's, from the original body.
	if r := d.Results[0]; r.Effect != policy.Modify || !r.Matched {
		t.Errorf("result = %s matched %v, want modify matched", r.Effect, r.Matched)
	}
}

func TestApplyChanges(t *testing.T) {
	tests := []struct {
		name    string
		changes []policy.Change
		check   string // a JSON path of the body ...
		want    any    // ... and its value after the changes
	}{
		{"add leaves a present value", []policy.Change{{Operation: "add", Path: "properties.num", Value: int64(1)}}, "num", int64(5)},
		{"addOrReplace sets", []policy.Change{{Operation: "addOrReplace", Path: "properties.num", Value: int64(1)}}, "num", int64(1)},
		{"remove deletes", []policy.Change{{Operation: "remove", Path: "properties.num"}}, "num", nil},
		{"add to [*] appends a member", []policy.Change{{Operation: "add", Path: "properties.stringArray[*]", Value: "d"}}, "stringArray", []any{"a", "b", "c", "d"}},
		{"addOrReplace on [*] replaces the members", []policy.Change{{Operation: "addOrReplace", Path: "properties.stringArray[*]", Value: "z"}}, "stringArray", []any{"z"}},
		{"add to a missing [*] creates the array", []policy.Change{{Operation: "add", Path: "properties.newArray[*]", Value: "n"}}, "newArray", []any{"n"}},
		{"X[*].p on every member", []policy.Change{{Operation: "addOrReplace", Path: "properties.objectArray[*].property", Value: "v"}}, "objectArray",
			[]any{map[string]any{"property": "v", "nestedArray": []any{int64(1), int64(2)}}, map[string]any{"property": "v", "nestedArray": []any{int64(3), int64(4)}}}},
		{"absent parent: skipped", []policy.Change{{Operation: "add", Path: "properties.absent.x", Value: "v"}}, "absent", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := resource(t)
			if err := policy.ApplyChanges(body, tt.changes); err != nil {
				t.Fatal(err)
			}
			got := body["properties"].(map[string]any)[tt.check]
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("properties.%s (-want +got):\n%s", tt.check, diff)
			}
		})
	}
	body := map[string]any{"name": "x"}
	if err := policy.ApplyChanges(body, []policy.Change{{Operation: "add", Path: "tags.env", Value: "dev"}}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"name": "x", "tags": map[string]any{"env": "dev"}}, body); diff != "" {
		t.Errorf("tags are created (-want +got):\n%s", diff)
	}
	if err := policy.ApplyChanges(body, []policy.Change{{Operation: "replace", Path: "tags.env"}}); err == nil {
		t.Errorf("ApplyChanges(replace) = nil, want an error")
	}
}

// TestEvaluateRequest checks the order of Azure: modify first, then deny
// on the modified body.
func TestEvaluateRequest(t *testing.T) {
	modify := assign(t, "", `{"if": {"field": "tags.costCenter", "exists": false}, "then": {"effect": "modify",
		"details": {`+roles+`, "operations": [{"operation": "add", "field": "tags.costCenter", "value": "[resourceGroup().tags.costCenter]"}]}}}`, nil)
	denyUntagged := assign(t, "", `{"if": {"field": "tags.costCenter", "exists": false}, "then": {"effect": "deny"}}`, nil)
	denyLocation := assign(t, `{"allowed": {"type": "Array"}}`, `{"if": {"field": "location", "notIn": "[parameters('allowed')]"}, "then": {"effect": "deny"}}`,
		map[string]any{"allowed": []any{"westeurope"}})
	audit := assign(t, "", `{"if": {"field": "Microsoft.Test/resourceType/num", "greater": 1}, "then": {"effect": "audit"}}`, nil)
	ctx := &policy.Context{ResourceGroup: map[string]any{"name": "rg1", "tags": map[string]any{"costCenter": "cc-7"}}}

	d := policy.EvaluateRequest([]*policy.Assignment{modify, denyUntagged, audit}, resource(t), ctx)
	if denied := d.Denied(); len(denied) != 0 {
		t.Errorf("Denied() = %+v, want none: modify adds the tag before deny looks", denied)
	}
	if got := d.Body["tags"].(map[string]any)["costCenter"]; got != "cc-7" {
		t.Errorf("tags.costCenter = %v, want cc-7 from the resource group", got)
	}
	// The decision keeps the results that matched: modify and audit; the
	// deny finds the modified body compliant.
	if len(d.Results) != 2 || d.Results[0].Effect != policy.Modify || d.Results[1].Effect != policy.Audit || !d.Results[1].Matched {
		t.Errorf("results = %+v, want modify's and audit's, matched", d.Results)
	}

	d = policy.EvaluateRequest([]*policy.Assignment{modify, denyLocation}, resource(t), ctx)
	denied := d.Denied()
	if len(denied) != 1 || denied[0].Reasons[0].Expression != "location" || denied[0].Reasons[0].Value != "eastus2" {
		t.Errorf("Denied() = %+v, want the location policy, reading the normalised eastus2", denied)
	}
}

func TestIfNotExists(t *testing.T) {
	a := assign(t, `{"effect": {"type": "String", "defaultValue": "DeployIfNotExists", "allowedValues": ["AuditIfNotExists", "DeployIfNotExists", "Disabled"]}}`,
		`{"if": {"field": "type", "equals": "Microsoft.Test/resourceType"}, "then": {"effect": "[parameters('effect')]", "details": {
			"type": "Microsoft.Insights/diagnosticSettings", "name": "[concat(field('name'), '-diag')]", "existenceScope": "subscription",
			"evaluationDelay": "AfterProvisioning", `+roles+`,
			"existenceCondition": {"allOf": [{"field": "Microsoft.Insights/diagnosticSettings/logs.enabled", "equals": "true"},
				{"value": "[field('location')]", "equals": "eastus2"}]},
			"deployment": {"properties": {"mode": "incremental", "template": {"resources": []},
				"parameters": {"resourceName": {"value": "[field('name')]"}, "fixed": {"value": 3}}}}}}}`, nil)
	r := a.Evaluate(resource(t), nil)[0]
	if r.Err != nil || r.Effect != policy.DeployIfNotExists || !r.Matched || r.Existence == nil {
		t.Fatalf("Evaluate = %+v, want deployIfNotExists with an existence check", r)
	}
	x := r.Existence
	if x.Type != "Microsoft.Insights/diagnosticSettings" || x.Name != "r1-diag" || x.ExistenceScope != "Subscription" || x.EvaluationDelay != "AfterProvisioning" {
		t.Errorf("Existence = %+v", x)
	}
	params := x.Deployment["properties"].(map[string]any)["parameters"]
	if diff := cmp.Diff(map[string]any{"resourceName": map[string]any{"value": "r1"}, "fixed": map[string]any{"value": int64(3)}}, params); diff != "" {
		t.Errorf("deployment parameters (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		related map[string]any
		want    bool
	}{
		{map[string]any{"type": "Microsoft.Insights/diagnosticSettings", "properties": map[string]any{"logs": map[string]any{"enabled": true}}}, true},
		{map[string]any{"type": "Microsoft.Insights/diagnosticSettings", "properties": map[string]any{"logs": map[string]any{"enabled": false}}}, false},
	} {
		got, err := x.Satisfied(tt.related)
		if err != nil || got != tt.want {
			t.Errorf("Satisfied(%v) = %v, %v; want %v", tt.related, got, err, tt.want)
		}
	}
}

func TestEvaluateDelete(t *testing.T) {
	a := assign(t, "", `{"if": {"field": "tags.env", "equals": "prod"}, "then": {"effect": "denyAction", "details": {"actionNames": ["delete"]}}}`, nil)
	if got := policy.EvaluateDelete([]*policy.Assignment{a}, resource(t), nil); len(got) != 1 {
		t.Errorf("EvaluateDelete = %+v, want the denyAction result", got)
	}
	if d := policy.EvaluateRequest([]*policy.Assignment{a}, resource(t), nil); len(d.Denied()) != 0 {
		t.Errorf("a write is denied by denyAction: %+v", d.Denied())
	}
}

func TestInitiative(t *testing.T) {
	tagDef := definition(t, `{"tagName": {"type": "String"}, "effect": {"type": "String", "allowedValues": ["Audit", "Deny"]}}`,
		`{"if": {"field": "[concat('tags[', parameters('tagName'), ']')]", "exists": false}, "then": {"effect": "[parameters('effect')]"}}`)
	locDef := definition(t, `{"locations": {"type": "Array"}}`,
		`{"if": {"field": "location", "notIn": "[parameters('locations')]"}, "then": {"effect": "deny"}}`)
	defs := map[string]*policy.Definition{"/defs/tag": tagDef, "/defs/loc": locDef}
	set, err := policy.ParseSetDefinition([]byte(`{"properties": {
		"parameters": {"owner": {"type": "String", "defaultValue": "owner"}, "regions": {"type": "Array"}},
		"policyDefinitionGroups": [{"name": "tagging", "category": "Tags"}, {"name": "residency"}],
		"policyDefinitions": [
			{"policyDefinitionId": "/defs/tag", "policyDefinitionReferenceId": "requireOwner", "groupNames": ["tagging"],
			 "parameters": {"tagName": {"value": "[parameters('owner')]"}, "effect": {"value": "Audit"}}},
			{"policyDefinitionId": "/defs/loc", "policyDefinitionReferenceId": "allowedLocations", "groupNames": ["residency"],
			 "parameters": {"locations": {"value": "[union(parameters('regions'), createArray('global'))]"}}}
		]}}`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := policy.NewSetAssignment("/a/set", set, map[string]any{"regions": []any{"eastus2"}}, func(id string) (*policy.Definition, bool) {
		d, ok := defs[strings.ToLower(id)]
		return d, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	results := a.Evaluate(resource(t), nil)
	if len(results) != 2 {
		t.Fatalf("Evaluate gave %d results, want one per member", len(results))
	}
	if r := results[0]; r.ReferenceID != "requireOwner" || r.Effect != policy.Audit || !r.Matched || r.GroupNames[0] != "tagging" || r.SetDefinitionID != set.ID {
		t.Errorf("requireOwner = %+v, want an audit match in group tagging", r)
	}
	if r := results[1]; r.ReferenceID != "allowedLocations" || r.Matched {
		t.Errorf("allowedLocations = %+v, want compliant: eastus2 is passed down", r)
	}

	_, err = policy.NewSetAssignment("/a/set", set, map[string]any{"regions": []any{"x"}}, func(string) (*policy.Definition, bool) { return nil, false })
	if err == nil || !strings.Contains(err.Error(), "/defs/tag is not known") {
		t.Errorf("NewSetAssignment without the members: %v", err)
	}
	_, err = policy.ParseSetDefinition([]byte(`{"policyDefinitions": [{"policyDefinitionId": "/d", "groupNames": ["nope"],
		"parameters": {"p": {"value": "[field('name')]"}}}]}`))
	for _, want := range []string{
		`policyDefinitions[0].groupNames[0]: "nope" is not one of the policyDefinitionGroups`,
		`policyDefinitions[0].parameters.p.value: the function 'field' is not allowed in a value an initiative passes to its members`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSetDefinition error = %v, want %q", err, want)
		}
	}
}

func TestModes(t *testing.T) {
	rule := `{"if": {"field": "name", "like": "*"}, "then": {"effect": "audit"}}`
	for _, tt := range []struct {
		mode string
		res  map[string]any
		want bool
	}{
		{"Indexed", map[string]any{"type": "Microsoft.Network/routeTables", "name": "rt"}, true},
		{"Indexed", map[string]any{"type": "Microsoft.Network/routeTables/routes", "name": "r"}, false},
		{"indexed", map[string]any{"type": "Microsoft.Resources/subscriptions/resourceGroups", "name": "rg", "location": "x"}, false},
		{"All", map[string]any{"type": "Microsoft.Resources/subscriptions/resourceGroups", "name": "rg"}, true},
		{"Microsoft.KeyVault.Data", map[string]any{"type": "Microsoft.KeyVault/vaults", "name": "kv"}, false},
	} {
		d, err := policy.ParseDefinition([]byte(`{"mode": "`+tt.mode+`", "policyRule": `+rule+`}`), testAliases)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := policy.NewAssignment("/a", d, nil)
		if r := a.Evaluate(tt.res, nil)[0]; r.Matched != tt.want {
			t.Errorf("mode %s on %v: Matched = %v, want %v", tt.mode, tt.res["type"], r.Matched, tt.want)
		}
	}
}

// TestSharedVerdicts checks that assignments of one definition with the
// same parameter values, evaluated once per resource, still report each
// its own IDs, and that different values or a rule reading policy() are
// evaluated on their own.
func TestSharedVerdicts(t *testing.T) {
	def := definition(t, `{"name": {"type": "String"}}`,
		`{"if": {"field": "name", "equals": "[parameters('name')]"}, "then": {"effect": "deny"}}`)
	byAssignment := definition(t, "",
		`{"if": {"value": "[policy().assignmentId]", "contains": "deny-me"}, "then": {"effect": "deny"}}`)
	newAssignment := func(id string, d *policy.Definition, params map[string]any) *policy.Assignment {
		a, err := policy.NewAssignment(id, d, params)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	res := resource(t)
	name := res["name"].(string)
	assignments := []*policy.Assignment{
		newAssignment("/a/first", def, map[string]any{"name": name}),
		newAssignment("/a/second", def, map[string]any{"name": name}),
		newAssignment("/a/other-name", def, map[string]any{"name": "other"}),
		newAssignment("/a/keep", byAssignment, nil),
		newAssignment("/a/deny-me", byAssignment, nil),
	}
	want := map[string]bool{"/a/first": true, "/a/second": true, "/a/other-name": false, "/a/keep": false, "/a/deny-me": true}
	check := func(t *testing.T, results []policy.Result) {
		t.Helper()
		if len(results) != len(want) {
			t.Fatalf("%d results, want %d", len(results), len(want))
		}
		for i, r := range results {
			if id := assignments[i].ID; r.AssignmentID != id || r.Matched != want[id] {
				t.Errorf("result %d = %s matched %v, want %s matched %v", i, r.AssignmentID, r.Matched, id, want[id])
			}
		}
	}
	t.Run("EvaluateRequest", func(t *testing.T) { // the matches only
		var got []string
		for _, r := range policy.EvaluateRequest(assignments, res, nil).Results {
			got = append(got, r.AssignmentID)
		}
		if want := []string{"/a/first", "/a/second", "/a/deny-me"}; !slices.Equal(got, want) {
			t.Errorf("EvaluateRequest matched %v, want %v", got, want)
		}
	})
	t.Run("EvaluateEach", func(t *testing.T) {
		var flat []policy.Result
		for i, rs := range policy.EvaluateEach(assignments, res, nil) {
			if len(rs) != 1 {
				t.Fatalf("assignment %d: %d results, want 1", i, len(rs))
			}
			flat = append(flat, rs...)
		}
		check(t, flat)
	})
}
