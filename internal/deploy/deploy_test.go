package deploy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

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
