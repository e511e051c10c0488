package armexpr_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// seedExpressions are typical expressions, plus the corpus's when it is
// there.
func seedExpressions() []string {
	seeds := []string{
		"[concat('a', parameters('b'))]",
		"[resourceId('Microsoft.Network/virtualNetworks/subnets', variables('vnet'), 'default')]",
		"[reference(parameters('name'), '2020-01-01', 'Full').properties.x[0]['y']]",
		"[map(range(0, 3), lambda('i', format('{0}-{1}', 'x', lambdaVariables('i'))))]",
		"[__bicep.isEven(-1)]",
		"['it''s']",
	}
	if data, err := os.ReadFile(corpusPath); err == nil {
		if v, err := armexpr.ParseJSON(data); err == nil {
			for _, e := range v.([]any) {
				seeds = append(seeds, e.(map[string]any)["expression"].(string))
			}
		}
	}
	return seeds
}

// FuzzParse checks that the parser never panics and that a parsed
// expression's canonical form parses to the same expression.
func FuzzParse(f *testing.F) {
	for _, s := range seedExpressions() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := armexpr.Parse(s)
		if err != nil {
			return
		}
		canonical := e.String()
		again, err := armexpr.Parse(canonical)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its canonical form %q fails: %v", s, canonical, err)
		}
		if got := again.String(); got != canonical {
			t.Fatalf("Parse(%q).String() = %q, which re-parses as %q", s, canonical, got)
		}
	})
}

// FuzzParseJSON checks that the JSON decoder never panics and that what
// it decodes survives a round trip through encoding/json.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2.5, "x", true, null]}`, "// c\n[1,]", `{"a": {"b": /* c */ -1e3}}`, `"\ud83d\ude00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := armexpr.ParseJSON(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("ParseJSON(%q) = %v, which does not marshal: %v", data, v, err)
		}
		again, err := armexpr.ParseJSON(b)
		if err != nil || !armexpr.Equal(v, again) {
			t.Fatalf("ParseJSON(%q) = %v; after a round trip %v (%v)", data, v, again, err)
		}
	})
}

const benchExpression = "[concat(toLower(parameters('prefix')), '-', uniqueString(resourceGroup().id, parameters('name')), '-', padLeft(copyIndex(1), 3, '0'))]"

func benchFunctions() *armexpr.Functions {
	rg := map[string]any{"id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"}
	params := map[string]any{"prefix": "VM", "name": "web"}
	return armexpr.Builtins().With(map[string]armexpr.Func{
		"parameters":    armexpr.Eager(1, 1, func(a []any) (any, error) { return params[a[0].(string)], nil }),
		"resourceGroup": armexpr.Eager(0, 0, func([]any) (any, error) { return rg, nil }),
		"copyIndex":     armexpr.Eager(0, 1, func([]any) (any, error) { return int64(8), nil }),
	})
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := armexpr.Parse(benchExpression); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEval(b *testing.B) {
	e, err := armexpr.Parse(benchExpression)
	if err != nil {
		b.Fatal(err)
	}
	fns := benchFunctions()
	for b.Loop() {
		if _, err := e.Eval(fns); err != nil {
			b.Fatal(err)
		}
	}
}
