package policy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/armexpr"
	"github.com/citadel-cloud/citadel/internal/policy"
)

// testAliases are the aliases of the example resource of Azure's
// "author policies for arrays" article.
var testAliases = policy.NewAliases([]policy.Alias{
	{Name: "Microsoft.Test/resourceType/stringArray", ResourceType: "Microsoft.Test/resourceType", Path: "properties.stringArray", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/stringArray[*]", ResourceType: "Microsoft.Test/resourceType", Path: "properties.stringArray[*]", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/missingArray", ResourceType: "Microsoft.Test/resourceType", Path: "properties.missingArray", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/missingArray[*]", ResourceType: "Microsoft.Test/resourceType", Path: "properties.missingArray[*]", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/missingArray[*].property", ResourceType: "Microsoft.Test/resourceType", Path: "properties.missingArray[*].property", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/objectArray[*]", ResourceType: "Microsoft.Test/resourceType", Path: "properties.objectArray[*]", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/objectArray[*].property", ResourceType: "Microsoft.Test/resourceType", Path: "properties.objectArray[*].property", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/objectArray[*].nestedArray", ResourceType: "Microsoft.Test/resourceType", Path: "properties.objectArray[*].nestedArray", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/objectArray[*].nestedArray[*]", ResourceType: "Microsoft.Test/resourceType", Path: "properties.objectArray[*].nestedArray[*]", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/num", ResourceType: "Microsoft.Test/resourceType", Path: "properties.num", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/str", ResourceType: "Microsoft.Test/resourceType", Path: "properties.str", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/date", ResourceType: "Microsoft.Test/resourceType", Path: "properties.date", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/obj", ResourceType: "Microsoft.Test/resourceType", Path: "properties.obj", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/obj.k", ResourceType: "Microsoft.Test/resourceType", Path: "properties.obj.k", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/flag", ResourceType: "Microsoft.Test/resourceType", Path: "properties.flag", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/missing", ResourceType: "Microsoft.Test/resourceType", Path: "properties.missing", Modifiable: true},
	{Name: "Microsoft.Test/resourceType/state", ResourceType: "Microsoft.Test/resourceType", Path: "properties.state", Modifiable: false},
})

const testResource = `{
  "id": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Test/resourceType/r1",
  "name": "r1", "type": "Microsoft.Test/resourceType", "location": "East US 2", "kind": "k1",
  "tags": {"env": "prod", "it's": "quoted"},
  "properties": {
    "stringArray": ["a", "b", "c"],
    "objectArray": [{"property": "value1", "nestedArray": [1, 2]}, {"property": "value2", "nestedArray": [3, 4]}],
    "num": 5, "str": "Hello-World42", "date": "2024-01-15T00:00:00Z", "obj": {"k": "v"}, "flag": true, "state": "Running"
  }
}`

func parseJSON(t testing.TB, s string) any {
	t.Helper()
	v, err := armexpr.ParseJSON([]byte(s))
	if err != nil {
		t.Fatalf("ParseJSON(%s): %v", s, err)
	}
	return v
}

func resource(t testing.TB) map[string]any { return parseJSON(t, testResource).(map[string]any) }

// definition loads a definition of mode All from its rule and parameters.
func definition(t testing.TB, params, rule string) *policy.Definition {
	t.Helper()
	if params == "" {
		params = "{}"
	}
	doc := fmt.Sprintf(`{"properties": {"mode": "All", "parameters": %s, "policyRule": %s}}`, params, rule)
	d, err := policy.ParseDefinition([]byte(doc), testAliases)
	if err != nil {
		t.Fatalf("ParseDefinition(%s): %v", rule, err)
	}
	return d
}

// evaluate evaluates an if condition (audit) against the test resource.
func evaluate(t testing.TB, cond string) policy.Result {
	t.Helper()
	d := definition(t, "", `{"if": `+cond+`, "then": {"effect": "audit"}}`)
	a, err := policy.NewAssignment("/a", d, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.Evaluate(resource(t), &policy.Context{})[0]
}

func TestOperators(t *testing.T) {
	const alias = `"field": "Microsoft.Test/resourceType/`
	tests := []struct {
		cond string
		want bool
	}{
		{`{"field": "type", "equals": "microsoft.test/RESOURCETYPE"}`, true},
		{`{"field": "name", "equals": "r2"}`, false},
		{`{` + alias + `num", "equals": 5}`, true},
		{`{` + alias + `num", "equals": "5"}`, true},
		{`{` + alias + `flag", "equals": "true"}`, true},
		{`{` + alias + `missing", "equals": "x"}`, false},
		{`{"field": "kind", "notEquals": "k2"}`, true},
		{`{` + alias + `missing", "notEquals": "x"}`, true},
		{`{` + alias + `str", "like": "hello-*"}`, true},
		{`{` + alias + `str", "like": "*world*"}`, true},
		{`{` + alias + `str", "like": "Hello"}`, false},
		{`{` + alias + `str", "notLike": "bye*"}`, true},
		{`{` + alias + `missing", "notLike": "*"}`, true},
		{`{` + alias + `str", "match": "?????-?????##"}`, true},
		{`{` + alias + `str", "match": "hello-world##"}`, false},
		{`{` + alias + `str", "match": "Hello.World##"}`, true},
		{`{` + alias + `str", "matchInsensitively": "hello-world##"}`, true},
		{`{` + alias + `str", "notMatch": "hello-world##"}`, true},
		{`{` + alias + `str", "notMatch": "Hello-World##"}`, false},
		{`{` + alias + `str", "notMatchInsensitively": "HELLO-WORLD##"}`, false},
		{`{` + alias + `str", "notMatchInsensitively": "HELLO-WORLD#"}`, true},
		{`{` + alias + `str", "contains": "LO-wo"}`, true},
		{`{` + alias + `str", "notContains": "xyz"}`, true},
		{`{` + alias + `stringArray", "contains": "B"}`, true},
		{`{"field": "location", "in": ["westus", "eastus2"]}`, true},
		{`{"field": "location", "notIn": ["westus", "eastus2"]}`, false},
		{`{` + alias + `missing", "in": ["x"]}`, false},
		{`{` + alias + `missing", "notIn": ["x"]}`, true},
		{`{"field": "tags", "containsKey": "ENV"}`, true},
		{`{"field": "tags", "notContainsKey": "owner"}`, true},
		{`{` + alias + `num", "less": 6}`, true},
		{`{` + alias + `num", "lessOrEquals": 5}`, true},
		{`{` + alias + `num", "greater": 5}`, false},
		{`{` + alias + `num", "greaterOrEquals": 5}`, true},
		{`{` + alias + `date", "greater": "2024-01-01T00:00:00+00:00"}`, true},
		{`{` + alias + `str", "less": "hello-x"}`, true},
		{`{` + alias + `missing", "greater": 1}`, false},
		{`{` + alias + `missing", "exists": false}`, true},
		{`{` + alias + `str", "exists": "true"}`, true},
		{`{"field": "tags['env']", "equals": "PROD"}`, true},
		{`{"field": "tags.env", "equals": "prod"}`, true},
		{`{"field": "tags[env]", "equals": "prod"}`, true},
		{`{"field": "tags['it''s']", "equals": "quoted"}`, true},
		{`{"field": "[concat('tags[', 'env', ']')]", "equals": "prod"}`, true},
		{`{"field": "fullName", "equals": "r1"}`, true},
		{`{"field": "id", "like": "/subscriptions/s1/*"}`, true},
		{`{"value": "[field('Microsoft.Test/resourceType/num')]", "greater": 4}`, true},
		{`{"value": "[less(1, 2)]", "equals": "true"}`, true},
		{`{"value": "[field('Microsoft.Test/resourceType/missing')]", "equals": ""}`, true},
		{`{"not": {"field": "name", "equals": "r1"}}`, false},
		{`{"allOf": [{"field": "name", "equals": "r1"}, {"field": "kind", "equals": "k1"}]}`, true},
		{`{"anyof": [{"field": "name", "equals": "x"}, {"field": "kind", "equals": "k1"}]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			r := evaluate(t, tt.cond)
			if r.Err != nil || r.Matched != tt.want {
				t.Errorf("Evaluate(%s) = %v, %v; want %v", tt.cond, r.Matched, r.Err, tt.want)
			}
		})
	}
}

// TestArrayAliases checks the [*] semantics of Azure's "author policies
// for arrays": a field condition holds for every selected value, field()
// returns them as an array.
func TestArrayAliases(t *testing.T) {
	const p = "Microsoft.Test/resourceType/"
	tests := []struct {
		cond string
		want bool
	}{
		{`{"field": "` + p + `stringArray[*]", "in": ["a", "b", "c"]}`, true},
		{`{"field": "` + p + `stringArray[*]", "equals": "a"}`, false},
		{`{"field": "` + p + `stringArray[*]", "notEquals": "z"}`, true},
		{`{"not": {"field": "` + p + `stringArray[*]", "notEquals": "a"}}`, true},
		{`{"field": "` + p + `objectArray[*].property", "like": "value*"}`, true},
		{`{"field": "` + p + `objectArray[*].nestedArray[*]", "less": 5}`, true},
		{`{"field": "` + p + `objectArray[*].nestedArray[*]", "less": 4}`, false},
		{`{"field": "` + p + `missingArray", "exists": false}`, true},
		{`{"field": "` + p + `missingArray[*]", "equals": "anything"}`, true}, // no member to fail
		{`{"field": "` + p + `missingArray[*].property", "exists": true}`, true},
		{`{"value": "[field('` + p + `missingArray')]", "equals": ""}`, true},
		{`{"value": "[length(field('` + p + `missingArray[*]'))]", "equals": 0}`, true},
		{`{"value": "[field('` + p + `stringArray[*]')]", "equals": "[createArray('a', 'b', 'c')]"}`, true},
		{`{"value": "[field('` + p + `objectArray[*].property')]", "equals": "[createArray('value1', 'value2')]"}`, true},
		{`{"value": "[field('` + p + `objectArray[*].nestedArray')]", "equals": "[createArray(createArray(1, 2), createArray(3, 4))]"}`, true},
		{`{"value": "[field('` + p + `objectArray[*].nestedArray[*]')]", "equals": "[createArray(1, 2, 3, 4)]"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			r := evaluate(t, tt.cond)
			if r.Err != nil || r.Matched != tt.want {
				t.Errorf("Evaluate(%s) = %v, %v; want %v", tt.cond, r.Matched, r.Err, tt.want)
			}
		})
	}
}

func TestCount(t *testing.T) {
	const p = "Microsoft.Test/resourceType/"
	tests := []struct {
		name, cond string
		want       bool
	}{
		{"field count", `{"count": {"field": "` + p + `stringArray[*]"}, "equals": 3}`, true},
		{"nested arrays flatten", `{"count": {"field": "` + p + `objectArray[*].nestedArray[*]"}, "equals": 4}`, true},
		{"missing array", `{"count": {"field": "` + p + `missingArray[*]"}, "equals": 0}`, true},
		{"where on the member", `{"count": {"field": "` + p + `stringArray[*]", "where": {"field": "` + p + `stringArray[*]", "equals": "a"}}, "equals": 1}`, true},
		{"where allOf across a member", `{"count": {"field": "` + p + `objectArray[*]", "where": {"allOf": [
			{"field": "` + p + `objectArray[*].property", "equals": "value2"},
			{"field": "` + p + `objectArray[*].nestedArray[*]", "greater": 2}]}}, "equals": 1}`, true},
		{"where reads outside the array", `{"count": {"field": "` + p + `objectArray[*]", "where": {"field": "tags.env", "equals": "prod"}}, "equals": 2}`, true},
		{"nested count", `{"count": {"field": "` + p + `objectArray[*]", "where": {"count": {"field": "` + p + `objectArray[*].nestedArray[*]",
			"where": {"field": "` + p + `objectArray[*].nestedArray[*]", "equals": 3}}, "greater": 0}}, "equals": 1}`, true},
		{"field() of the counted alias is one member", `{"count": {"field": "` + p + `stringArray[*]", "where": {"field": "` + p + `stringArray[*]",
			"equals": "[field('` + p + `stringArray[*]')]"}}, "equals": 0}`, true},
		{"first(field()) is the member", `{"count": {"field": "` + p + `stringArray[*]", "where": {"field": "` + p + `stringArray[*]",
			"equals": "[first(field('` + p + `stringArray[*]'))]"}}, "equals": 3}`, true},
		{"current(alias)", `{"count": {"field": "` + p + `objectArray[*]", "where": {"value": "[current('` + p + `objectArray[*].property')]", "like": "*2"}}, "equals": 1}`, true},
		{"value count with name", `{"count": {"value": ["b", "x", "c"], "name": "v", "where": {"field": "` + p + `stringArray", "contains": "[current('v')]"}}, "equals": 2}`, true},
		{"value count default current()", `{"count": {"value": [1, 2, 3], "where": {"value": "[current()]", "greater": 1}}, "equals": 2}`, true},
		{"value count over parameters-free expression", `{"count": {"value": "[range(0, 10)]", "where": {"value": "[mod(current(), 2)]", "equals": 0}}, "equals": 5}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := evaluate(t, tt.cond)
			if r.Err != nil || r.Matched != tt.want {
				t.Errorf("Evaluate(%s) = %v, %v (reasons %+v); want %v", tt.cond, r.Matched, r.Err, r.Reasons, tt.want)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	r := evaluate(t, `{"allOf": [{"field": "type", "equals": "Microsoft.Test/resourceType"},
		{"anyOf": [{"field": "location", "equals": "westus"}, {"field": "Microsoft.Test/resourceType/num", "greater": 3}]}]}`)
	want := []policy.Reason{
		{Condition: "properties.policyRule.if.allOf[0]", Kind: "Field", Expression: "type", Path: "type",
			Value: "Microsoft.Test/resourceType", Operator: "equals", Target: "Microsoft.Test/resourceType", Result: true},
		{Condition: "properties.policyRule.if.allOf[1].anyOf[1]", Kind: "Field", Expression: "Microsoft.Test/resourceType/num",
			Path: "properties.num", Value: int64(5), Operator: "greater", Target: int64(3), Result: true},
	}
	if !r.Matched {
		t.Fatalf("Matched = false, want true")
	}
	if diff := cmp.Diff(want, r.Reasons); diff != "" {
		t.Errorf("Reasons (-want +got):\n%s", diff)
	}
	if got := r.Reasons[1].Message(); got != "Current value must be less than or equal to the target value." {
		t.Errorf("Message() = %q", got)
	}
	if got := r.Reasons[0].Message(); got != "Current value must not be equal to the target value." {
		t.Errorf("Message() = %q", got)
	}
}

func TestEvaluationErrors(t *testing.T) {
	for _, cond := range []string{
		`{"value": "[substring(field('name'), 0, 3)]", "equals": "r1x"}`, // name too short: a function error
		`{"field": "Microsoft.Test/resourceType/num", "greater": "abc"}`, // number against string
		`{"field": "location", "in": "[parameters('notAnArray')]"}`,
	} {
		d := definition(t, `{"notAnArray": {"type": "String", "defaultValue": "x"}}`, `{"if": `+cond+`, "then": {"effect": "audit"}}`)
		a, err := policy.NewAssignment("/a", d, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := a.Evaluate(resource(t), nil)[0]
		if r.Err == nil || !r.Denies() {
			t.Errorf("Evaluate(%s) err = %v, Denies() = %v; want an error that denies", cond, r.Err, r.Denies())
		}
	}
	// if() evaluates lazily: the guard of the docs.
	r := evaluate(t, `{"value": "[if(greaterOrEquals(length(field('name')), 3), substring(field('name'), 0, 3), 'not')]", "equals": "not"}`)
	if r.Err != nil || !r.Matched {
		t.Errorf("if() guard: %v, %v; want a match", r.Matched, r.Err)
	}
}

func TestParameters(t *testing.T) {
	d := definition(t, `{
		"effect": {"type": "String", "allowedValues": ["Audit", "Deny", "Disabled"], "defaultValue": "Audit"},
		"locations": {"type": "Array", "allowedValues": ["eastus2", "westus"], "defaultValue": ["eastus2"]},
		"count": {"type": "Integer"}
	}`, `{"if": {"allOf": [{"field": "location", "in": "[parameters('locations')]"},
		{"field": "Microsoft.Test/resourceType/num", "greater": "[parameters('count')]"}]},
		"then": {"effect": "[parameters('effect')]"}}`)
	tests := []struct {
		params  map[string]any
		wantErr string
		effect  policy.Effect
		matched bool
	}{
		{map[string]any{"count": int64(1)}, "", policy.Audit, true},
		{map[string]any{"count": int64(9)}, "", policy.Audit, false},
		{map[string]any{"count": int64(1), "effect": "Deny"}, "", policy.Deny, true},
		{map[string]any{"count": int64(1), "locations": []any{"westus"}}, "", policy.Audit, false},
		{map[string]any{"count": int64(1), "effect": "Disabled"}, "", policy.Disabled, false},
		{map[string]any{}, `"count" has no value`, "", false},
		{map[string]any{"count": "1"}, "not of type Integer", "", false},
		{map[string]any{"count": int64(1), "effect": "audit"}, "not one of the allowed values", "", false}, // case-sensitive
		{map[string]any{"count": int64(1), "locations": []any{"northeurope"}}, "not one of the allowed values", "", false},
		{map[string]any{"count": int64(1), "other": "x"}, `"other" is not declared`, "", false},
	}
	for _, tt := range tests {
		a, err := policy.NewAssignment("/a", d, tt.params)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewAssignment(%v) error = %v, want %q", tt.params, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("NewAssignment(%v): %v", tt.params, err)
		}
		r := a.Evaluate(resource(t), nil)[0]
		if r.Err != nil || r.Effect != tt.effect || r.Matched != tt.matched {
			t.Errorf("Evaluate with %v = %s matched %v (%v), want %s matched %v", tt.params, r.Effect, r.Matched, r.Err, tt.effect, tt.matched)
		}
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"unknown alias", `{"properties": {"mode": "All", "policyRule": {"if": {"allOf": [{"field": "type", "equals": "x"},
			{"field": "Microsoft.Test/resourceType/nope", "equals": "x"}]}, "then": {"effect": "deny"}}}}`,
			[]string{"properties.policyRule.if.allOf[1].field: unknown alias 'Microsoft.Test/resourceType/nope'"}},
		{"unknown alias in field()", `{"properties": {"policyRule": {"if": {"value": "[field('Microsoft.Test/resourceType/nope')]", "equals": "x"}, "then": {"effect": "deny"}}}}`,
			[]string{"properties.policyRule.if.value: unknown alias 'Microsoft.Test/resourceType/nope'"}},
		{"bare properties", `{"mode": "indexed", "policyRule": {"if": {"field": "Microsoft.Test/resourceType/nope", "equals": "x"}, "then": {"effect": "deny"}}}`,
			[]string{"policyRule.if.field: unknown alias 'Microsoft.Test/resourceType/nope'"}},
		{"everything at once", `{"properties": {"mode": "Some", "parameters": {"p": {"type": "Strin"}, "q": {"type": "Integer", "defaultValue": "1"}},
			"policyRule": {"if": {"anyOf": [
				{"field": "name", "equals": "a", "like": "b"},
				{"field": "name", "in": "a"},
				{"value": "[parameters('missing')]", "equals": "x"},
				{"value": "[resourceId('a', 'b')]", "equals": "x"},
				{"value": "[current()]", "equals": "x"},
				{"count": {"field": "Microsoft.Test/resourceType/stringArray"}, "equals": 1},
				{"field": "name", "exists": "maybe"},
				{"value": "[concat('a',]", "equals": "x"},
				{"bogus": 1}
			]}, "then": {"effect": "denyy"}}}}`,
			[]string{
				`properties.mode: mode "Some" is not All, Indexed or a resource provider mode`,
				`properties.parameters.p.type: type "Strin" is not one of String, Array, Object, Boolean, Integer, Float, DateTime`,
				`properties.parameters.q.defaultValue: the value "1" is not of type Integer`,
				`properties.policyRule.if.anyOf[0]: a condition needs exactly one operator; it has 2`,
				`properties.policyRule.if.anyOf[1].in: in takes an array, got "a"`,
				`properties.policyRule.if.anyOf[2].value: the parameter 'missing' is not declared in parameters`,
				`properties.policyRule.if.anyOf[3].value: the function 'resourceId' is unknown or not allowed in a policy rule`,
				`properties.policyRule.if.anyOf[4].value: the function 'current' is not allowed outside count.where`,
				`properties.policyRule.if.anyOf[5].count.field: count.field must be an array alias, with [*]: "Microsoft.Test/resourceType/stringArray"`,
				`properties.policyRule.if.anyOf[6].exists: exists takes true or false, got "maybe"`,
				`properties.policyRule.if.anyOf[7].value: the language expression`,
				`properties.policyRule.if.anyOf[8].bogus: unknown property "bogus": a condition has one of field, value or count and one operator`,
				`properties.policyRule.if.anyOf[8]: a condition needs exactly one of field, value or count; it has 0`,
				`properties.policyRule.if.anyOf[8]: a condition needs exactly one operator; it has 0`,
				`properties.policyRule.then.effect: the effect "denyy" is not one of`,
			}},
		{"effect details", `{"properties": {"parameters": {"effect": {"type": "String", "allowedValues": ["Modify", "Disabled"]}},
			"policyRule": {"if": {"field": "name", "equals": "x"}, "then": {"effect": "[parameters('effect')]",
			"details": {"operations": [{"operation": "replace", "field": "tags.a", "value": "b"}, {"operation": "remove", "field": "name"},
				{"operation": "add", "field": "tags.a", "value": "b", "condition": "[equals(field('name'), 'x')]"}]}}}}}`,
			[]string{
				`properties.policyRule.then.details.roleDefinitionIds: roleDefinitionIds must be a non-empty array of role definition IDs`,
				`properties.policyRule.then.details.operations[0].operation: operation "replace" is not addOrReplace, add or remove`,
				`properties.policyRule.then.details.operations[1].field: name can't be changed: use an alias or tags`,
				`properties.policyRule.then.details.operations[2].condition: the function 'field' is not allowed in a modify operation's condition`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.ParseDefinition([]byte(tt.doc), testAliases)
			inv, ok := errors.AsType[*policy.InvalidError](err)
			if !ok {
				t.Fatalf("ParseDefinition error = %v, want an *InvalidError", err)
			}
			var got []string
			for _, fe := range inv.Errors {
				got = append(got, fe.Error())
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range min(len(got), len(tt.want)) {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestPolicyFunctions(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ctx := &policy.Context{APIVersion: "2024-01-01", Now: now,
		Identity:      map[string]any{"idtyp": "user"},
		ResourceGroup: map[string]any{"name": "rg1", "location": "eastus2", "tags": map[string]any{"cost": "42"}},
		Subscription:  map[string]any{"subscriptionId": "s1"}}
	tests := []string{
		`{"value": "[requestContext().apiVersion]", "greaterOrEquals": "2023-01-01"}`,
		`{"value": "[tryGet(requestContext().identity, 'idtyp')]", "equals": "user"}`,
		`{"value": "[resourceGroup().tags.cost]", "equals": "42"}`,
		`{"value": "[subscription().subscriptionId]", "equals": "s1"}`,
		`{"value": "[policy().assignmentId]", "equals": "/a"}`,
		`{"value": "[utcNow()]", "equals": "2026-03-01T12:00:00.0000000Z"}`,
		`{"value": "[addDays(utcNow(), 30)]", "equals": "2026-03-31T12:00:00.0000000Z"}`,
		`{"value": "[ipRangeContains('10.0.0.0/8', '10.1.2.0/24')]", "equals": true}`,
		`{"value": "[ipRangeContains('10.0.0.1-10.0.0.9', '10.0.0.10')]", "equals": false}`,
		`{"value": "[ipRangeContains('2001:db8::/32', '2001:db8::1')]", "equals": true}`,
	}
	for _, cond := range tests {
		d := definition(t, "", `{"if": `+cond+`, "then": {"effect": "audit"}}`)
		a, err := policy.NewAssignment("/a", d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := a.Evaluate(resource(t), ctx)[0]; r.Err != nil || !r.Matched {
			t.Errorf("Evaluate(%s) = %v, %v; want a match", cond, r.Matched, r.Err)
		}
	}
	d := definition(t, "", `{"if": {"value": "[ipRangeContains('10.0.0.0/8', '::1')]", "equals": true}, "then": {"effect": "audit"}}`)
	a, _ := policy.NewAssignment("/a", d, nil)
	if r := a.Evaluate(resource(t), ctx)[0]; r.Err == nil {
		t.Errorf("ipRangeContains across families: no error")
	}
}

// TestContextLoad: a context's Load runs once, when a rule first calls
// resourceGroup() or subscription(), and not for rules that call
// neither (the caller reads the group and the subscription from the
// store only then).
func TestContextLoad(t *testing.T) {
	loads := 0
	ctx := &policy.Context{Load: func(c *policy.Context) {
		loads++
		c.ResourceGroup = map[string]any{"name": "rg1", "tags": map[string]any{"cost": "42"}}
		c.Subscription = map[string]any{"subscriptionId": "s1"}
	}}
	check := func(cond string, wantLoads int) {
		t.Helper()
		a, err := policy.NewAssignment("/a", definition(t, "", `{"if": `+cond+`, "then": {"effect": "audit"}}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := a.Evaluate(resource(t), ctx)[0]; r.Err != nil || !r.Matched {
			t.Errorf("Evaluate(%s) = %v, %v; want a match", cond, r.Matched, r.Err)
		}
		if loads != wantLoads {
			t.Errorf("after %s: %d loads, want %d", cond, loads, wantLoads)
		}
	}
	check(`{"field": "location", "exists": true}`, 0)
	check(`{"value": "[resourceGroup().tags.cost]", "equals": "42"}`, 1)
	check(`{"value": "[subscription().subscriptionId]", "equals": "s1"}`, 1)
}
