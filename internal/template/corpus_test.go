package template_test

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/template"
)

// templatesDir holds the shared corpus of real templates: quickstarts,
// Azure Stack samples and Bicep-compiled baselines.
const templatesDir = "../../../shared/corpora/arm-templates"

// corpusTemplates lists the corpus's azuredeploy.json files; it skips the
// test when the corpus is missing, except under CI, where that is a
// failure.
func corpusTemplates(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(templatesDir, "*", "azuredeploy.json"))
	if len(files) == 0 {
		msg := "the ARM template corpus is missing (shared/corpora/arm-templates)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return files
}

// testContext is where the corpus deploys.
var testContext = template.Context{
	TenantID:        "11111111-1111-1111-1111-111111111111",
	SubscriptionID:  "00000000-0000-0000-0000-000000000001",
	ResourceGroup:   "citadel-test",
	ManagementGroup: "mg-test",
	Location:        "eastus",
	DeploymentName:  "corpus",
	Zones:           []string{"1", "2", "3"},
}

// genPlaceholder matches the GEN-* placeholders of quickstart parameter
// files, which their CI substitutes.
var genPlaceholder = regexp.MustCompile(`^GEN-([A-Z-]+?)(?:-(\d+))?$`)

// substitute replaces a GEN-* placeholder with a value of its kind,
// unique to the parameter like the quickstart CI's.
func substitute(name string, v any) any {
	s, ok := v.(string)
	m := genPlaceholder.FindStringSubmatch(s)
	if !ok || m == nil {
		return v
	}
	switch {
	case m[1] == "UNIQUE":
		n, _ := strconv.Atoi(m[2])
		if n == 0 {
			n = 12
		}
		return (strings.ToLower(name) + strings.Repeat("x", n))[:n]
	case strings.Contains(m[1], "PASSWORD") || strings.Contains(m[1], "SECRET"):
		return "Pa55w0rd-Citadel!"
	case m[1] == "SSH-PUB-KEY":
		return "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCcitadel test@citadel"
	case strings.Contains(m[1], "ID"):
		return "22222222-2222-2222-2222-222222222222"
	}
	return "citadel-" + strings.ToLower(m[1])
}

// corpusParameters reads a template's parameter file, substitutes its
// placeholders, and gives every required parameter still without a value
// a placeholder of its type.
func corpusParameters(t testing.TB, tmpl *template.Template, dir string) map[string]any {
	t.Helper()
	params := map[string]any{}
	if data, err := os.ReadFile(filepath.Join(dir, "azuredeploy.parameters.json")); err == nil {
		if params, err = template.ParseParameters(data); err != nil {
			t.Fatalf("ParseParameters() error = %v", err)
		}
	}
	for name, v := range params {
		params[name] = substitute(name, v)
	}
	for name, p := range tmpl.Parameters {
		if _, ok := params[name]; ok || p.HasDefault || p.Nullable {
			continue
		}
		switch {
		case len(p.AllowedValues) > 0:
			params[name] = p.AllowedValues[0]
		case p.Type == "int":
			params[name] = int64(1)
			if p.MinValue != nil {
				params[name] = *p.MinValue
			}
		case p.Type == "bool":
			params[name] = false
		case p.Type == "array":
			params[name] = []any{}
		case p.Type == "object" || p.Type == "secureobject":
			params[name] = map[string]any{}
		default:
			params[name] = "citadel" + strings.ToLower(name)
		}
	}
	return params
}

// corpusLoader reads a linked template from the template's folder: the
// longest tail of the link's path that names a file there.
func corpusLoader(dir string) func(string) ([]byte, error) {
	return func(loc string) ([]byte, error) {
		p := loc
		if u, err := url.Parse(loc); err == nil && u.IsAbs() {
			p = u.Path
		}
		segs := strings.Split(path.Clean(strings.TrimPrefix(p, "/")), "/")
		for i := range segs {
			if data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(strings.Join(segs[i:], "/")))); err == nil {
				return data, nil
			}
		}
		return nil, fmt.Errorf("no file of %s in %s", loc, dir)
	}
}

// expandTemplateFile parses and expands one corpus template.
func expandTemplateFile(t testing.TB, file string) (*template.Deployment, error) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s) error = %v", file, err)
	}
	dir := filepath.Dir(file)
	return template.Expand(tmpl, template.Options{
		Context:    testContext,
		Parameters: corpusParameters(t, tmpl, dir),
		Source:     filepath.ToSlash(file),
		Load:       corpusLoader(dir),
	})
}

// invalidTemplates are the corpus templates no deployment can expand,
// with the error ARM gives too. Both are Bicep compile baselines, written
// to exercise the compiler, not to deploy.
var invalidTemplates = map[string]string{
	// [for (x, i) in range(1, 2): x / i] divides 1 by 0.
	"bicep-baseline--Modules_CRLF": "resources.propertyLoopInsideParameterValueWithIndexes.properties.parameters.objParam.value.copy[1].input: the template language function 'div' failed: attempted to divide by zero",
	// vnetConfigurations has 2 elements and is indexed with [index-1] and
	// [index*2]: no integer index satisfies both.
	"bicep-baseline--Loops_LF--symbolicnames": "resources.combinedDependencies.properties.resolutionVirtualNetworks",
}

func TestCorpusTemplates(t *testing.T) {
	files := corpusTemplates(t)
	passed := 0
	for _, file := range files {
		name := filepath.Base(filepath.Dir(file))
		t.Run(name, func(t *testing.T) {
			if want, ok := invalidTemplates[name]; ok {
				_, err := expandTemplateFile(t, file)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Expand(%s) error = %v, want %q", name, err, want)
				}
				t.Logf("invalid as expected: %v", err)
				return
			}
			d, err := expandTemplateFile(t, file)
			if err != nil {
				t.Fatalf("Expand(%s) error = %v", name, err)
			}
			t.Logf("%d resources", checkIDs(t, d))
			passed++
		})
	}
	t.Logf("%d of %d corpus templates expand; %d are invalid as ARM would find them", passed, len(files), len(invalidTemplates))
}

// checkIDs checks that every resource, nested ones included, has an ID
// with no expression left in it; it returns how many there are.
func checkIDs(t *testing.T, d *template.Deployment) int {
	t.Helper()
	n := 0
	for _, r := range d.Resources {
		n++
		if !strings.HasPrefix(r.ID, "/") || strings.Contains(r.ID, "[") {
			t.Errorf("resource %s %q has ID %q", r.Type, r.Name, r.ID)
		}
		if r.Deployment != nil {
			n += checkIDs(t, r.Deployment)
		}
	}
	return n
}
