package policy_test

import (
	"testing"

	"github.com/citadel-cloud/citadel/internal/policy"
)

// FuzzParseDefinition feeds arbitrary documents to the loader, and what
// loads to the evaluator: errors are errors, never panics.
func FuzzParseDefinition(f *testing.F) {
	for _, seed := range []string{
		`{"properties": {"mode": "All", "policyRule": {"if": {"field": "type", "equals": "x"}, "then": {"effect": "deny"}}}}`,
		`{"mode": "Indexed", "parameters": {"e": {"type": "String", "defaultValue": "Audit"}}, "policyRule": {"if": {"anyOf": [{"not": {"field": "tags['a']", "exists": true}},
			{"count": {"field": "Microsoft.Test/resourceType/objectArray[*]", "where": {"field": "Microsoft.Test/resourceType/objectArray[*].property", "like": "v*"}}, "greater": 0}]},
			"then": {"effect": "[parameters('e')]"}}}`,
		`{"policyRule": {"if": {"count": {"value": "[range(0, 3)]", "name": "i", "where": {"value": "[current('i')]", "in": [1, 2]}}, "equals": 2},
			"then": {"effect": "modify", "details": {"roleDefinitionIds": ["r"], "operations": [{"operation": "addOrReplace", "field": "tags.x", "value": "[field('name')]"}]}}}}`,
		`{"policyRule": {"if": {"value": "[substring(field('name'), 0, 3)]", "match": "??#"}, "then": {"effect": "append", "details": [{"field": "Microsoft.Test/resourceType/stringArray[*]", "value": "z"}]}}}`,
		`{"policyRule": {"if": {"field": "name", "equals": "r1"}, "then": {"effect": "deployIfNotExists", "details": {"type": "a/b", "roleDefinitionIds": ["r"],
			"existenceCondition": {"field": "name", "like": "*"}, "deployment": {"properties": {"mode": "incremental", "template": {}, "parameters": {"p": {"value": "[field('id')]"}}}}}}}}`,
		`[1, 2]`, `{`, `{"policyRule": 7}`,
	} {
		f.Add([]byte(seed))
	}
	res := resource(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := policy.ParseDefinition(data, testAliases)
		if err != nil {
			if d != nil {
				t.Fatalf("ParseDefinition returned a definition and the error %v", err)
			}
			return
		}
		a, err := policy.NewAssignment("/a", d, nil)
		if err != nil {
			return
		}
		body := policy.EvaluateRequest([]*policy.Assignment{a}, res, &policy.Context{APIVersion: "2024-01-01"}).Body
		if body == nil {
			t.Fatal("EvaluateRequest returned no body")
		}
	})
}
