package deploy

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNormalizeBody checks the reading of az 2.45's deployment bodies: the
// template under an unquoted key, with comments and trailing commas.
func TestNormalizeBody(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"strict", `{"properties":{"mode":"Incremental","template":{"a":1}}}`, `{"properties":{"mode":"Incremental","template":{"a":1}}}`, false},
		{"az 2.45", `{"properties": {"mode": "Incremental", "parameters": {}, template:{
  // a comment
  "resources": [], /* another */
}}}`, `{"properties":{"mode":"Incremental","parameters":{},"template":{"resources":[]}}}`, false},
		{"key inside a string stays", `{"properties":{"description":"{ template: x }","template":{}}}`, `{"properties":{"description":"{ template: x }","template":{}}}`, false},
		{"escaped quote before", `{"properties":{"d":"a\", template: b", template:{}}}`, `{"properties":{"d":"a\", template: b","template":{}}}`, false},
		{"not JSON", `{"properties": template}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalizeBody([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("normalizeBody = %s, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("normalizeBody = %s: not strict JSON: %v", got, err)
			}
			json.Unmarshal([]byte(tt.want), &w)
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("normalizeBody mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzNormalizeBody: any input either fails or becomes strict JSON.
func FuzzNormalizeBody(f *testing.F) {
	f.Add([]byte(`{"properties": {"mode": "Incremental", template:{ // c
"resources": [],}}}`))
	f.Add([]byte(`{"a":"template:"}`))
	f.Add([]byte(`[template:1]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := normalizeBody(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("normalizeBody(%q) = %q: not JSON", in, out)
		}
	})
}

// TestDiff checks what-if's property deltas: only what the template sets
// is compared; secrets and server-owned properties are not.
func TestDiff(t *testing.T) {
	tests := []struct {
		name          string
		before, after map[string]any
		want          []delta
	}{
		{"same", map[string]any{"location": "Local", "properties": map[string]any{"a": 1.0, "server": "x"}},
			map[string]any{"location": "local", "properties": map[string]any{"a": 1.0}}, nil},
		{"modified leaf", map[string]any{"properties": map[string]any{"a": 1.0}},
			map[string]any{"properties": map[string]any{"a": 2.0}},
			[]delta{{Path: "properties.a", PropertyChangeType: "Modify", Before: 1.0, After: 2.0}}},
		{"new property", map[string]any{"properties": map[string]any{}},
			map[string]any{"tags": map[string]any{"env": "dev"}, "properties": map[string]any{"b": "x"}},
			[]delta{{Path: "properties.b", PropertyChangeType: "Create", After: "x"}, {Path: "tags", PropertyChangeType: "Create", After: map[string]any{"env": "dev"}}}},
		{"array", map[string]any{"properties": map[string]any{"l": []any{"a", "b"}}},
			map[string]any{"properties": map[string]any{"l": []any{"a", "c", "d"}}},
			[]delta{{Path: "properties.l", PropertyChangeType: "Array", Children: []delta{
				{Path: "1", PropertyChangeType: "Modify", Before: "b", After: "c"},
				{Path: "2", PropertyChangeType: "Create", After: "d"},
			}}}},
		{"names ignored", map[string]any{"id": "/x", "name": "x"}, map[string]any{"id": "/X", "name": "X", "type": "t", "apiVersion": "v"}, nil},
		{"property case", map[string]any{"properties": map[string]any{"FabricControllerId": "f"}},
			map[string]any{"properties": map[string]any{"fabricControllerId": "f"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, diff("", tt.before, tt.after)); diff != "" {
				t.Errorf("diff mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
