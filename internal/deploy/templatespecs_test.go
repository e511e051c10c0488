package deploy

import (
	"strings"
	"testing"
)

func TestArtifactPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"nested/child.json", "nested/child.json", true},
		{`nested\child.json`, "nested/child.json", true}, // packed by az on Windows
		{"./a/../b.json", "b.json", true},
		{"a/./b//c.json", "a/b/c.json", true},
		{"../x.json", "", false},
		{"a/../../x.json", "", false},
		{"/etc/x.json", "", false},
		{`C:\x.json`, "", false},
		{"", "", false},
		{".", "", false},
	}
	for _, tc := range tests {
		got, ok := artifactPath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("artifactPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSplitSpecLocation(t *testing.T) {
	const v = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Resources/templateSpecs/ts/versions/1.0"
	tests := []struct {
		loc, version, artifact string
		ok                     bool
	}{
		{v + "/", v, "", true},
		{v + "/nested/child.json", v, "nested/child.json", true},
		{strings.ToLower(v) + "/a.json", strings.ToLower(v), "a.json", true},
		{v, "", "", false}, // a relative path that left the version: ".../versions/{file}"
		{"/subscriptions/s/resourceGroups/g/providers/Microsoft.Resources/templateSpecs/ts/other/1.0/", "", "", false},
		{"https://example.com/main.json", "", "", false},
		{"nested/child.json", "", "", false},
	}
	for _, tc := range tests {
		id, artifact, ok := splitSpecLocation(tc.loc)
		if ok != tc.ok || ok && (!strings.EqualFold(id.String(), tc.version) || artifact != tc.artifact) {
			t.Errorf("splitSpecLocation(%q) = %s, %q, %v; want %s, %q, %v", tc.loc, id, artifact, ok, tc.version, tc.artifact, tc.ok)
		}
	}
}

// FuzzSpecLocation: a location inside a version splits into a template
// spec version's ID and the path that ends the location; a cleaned
// artifact path never leaves the version.
func FuzzSpecLocation(f *testing.F) {
	f.Add("/subscriptions/s/resourceGroups/g/providers/Microsoft.Resources/templateSpecs/ts/versions/1.0/a/b.json")
	f.Add("/subscriptions/s/resourceGroups/g/providers/Microsoft.Resources/templateSpecs/ts/versions/1.0/")
	f.Add("../x.json")
	f.Fuzz(func(t *testing.T, loc string) {
		if id, artifact, ok := splitSpecLocation(loc); ok {
			if !strings.EqualFold(id.Type(), templateSpecVersionsType) || !strings.HasSuffix(loc, "/"+artifact) {
				t.Errorf("%q splits into %s and %q", loc, id, artifact)
			}
		}
		if p, ok := artifactPath(loc); ok && (p == ".." || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/")) {
			t.Errorf("artifactPath(%q) = %q leaves the version", loc, p)
		}
	})
}
