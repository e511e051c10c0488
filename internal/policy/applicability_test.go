package policy

import "testing"

// TestAppliesTo checks which types a definition can apply to, from the
// type conditions of its rule.
func TestAppliesTo(t *testing.T) {
	tests := []struct {
		name, rule string
		yes, no    []string
	}{
		{"equals", `{"field":"type","equals":"Microsoft.Compute/virtualMachines"}`, []string{"microsoft.compute/VIRTUALMACHINES"}, []string{"Microsoft.Network/virtualNetworks"}},
		{"allOf with in", `{"allOf":[{"field":"type","in":["A/b","A/c"]},{"field":"location","equals":"x"}]}`, []string{"A/b", "A/c"}, []string{"A/d"}},
		{"allOf intersects", `{"allOf":[{"field":"type","in":["A/b","A/c"]},{"field":"type","equals":"A/c"}]}`, []string{"A/c"}, []string{"A/b"}},
		{"anyOf unites", `{"anyOf":[{"field":"type","equals":"A/b"},{"field":"type","equals":"A/c"}]}`, []string{"A/b", "A/c"}, []string{"A/d"}},
		{"anyOf with an open branch", `{"anyOf":[{"field":"type","equals":"A/b"},{"field":"location","equals":"x"}]}`, []string{"A/b", "Z/z"}, nil},
		{"not", `{"not":{"field":"type","equals":"A/b"}}`, []string{"A/b", "A/c"}, nil},
		{"notEquals", `{"field":"type","notEquals":"A/b"}`, []string{"A/b", "A/c"}, nil},
		{"parameter", `{"field":"type","equals":"[parameters('t')]"}`, []string{"A/b"}, nil},
		{"no type", `{"field":"location","equals":"x"}`, []string{"A/b"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"properties":{"mode":"All","parameters":{"t":{"type":"String","defaultValue":"A/b"}},"policyRule":{"if":` + tt.rule + `,"then":{"effect":"audit"}}}}`
			d, err := ParseDefinition([]byte(doc), NewAliases(CitadelAliases()))
			if err != nil {
				t.Fatal(err)
			}
			for _, typ := range tt.yes {
				if !d.AppliesTo(typ) {
					t.Errorf("AppliesTo(%s) = false, want true", typ)
				}
			}
			for _, typ := range tt.no {
				if d.AppliesTo(typ) {
					t.Errorf("AppliesTo(%s) = true, want false", typ)
				}
			}
		})
	}
}
