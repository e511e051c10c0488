package template_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/citadel-cloud/citadel/internal/template"
)

// FuzzParse checks that the template parser never panics, on the corpus
// templates and what the fuzzer derives from them.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(nestedDoc, "inner")))
	f.Add([]byte(`{"languageVersion": "2.0", "resources": {"a": {"type": "My.Rp/t", "apiVersion": "1", "name": "[concat('a', copyIndex())]", "copy": {"name": "a", "count": 2}}}}`))
	f.Add([]byte(`{"functions": [{"namespace": "n", "members": {"f": {"output": {"type": "int", "value": "[n.f()]"}}}}]}`))
	files, _ := filepath.Glob(filepath.Join(templatesDir, "*", "azuredeploy.json"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil && len(data) < 64<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		template.Parse(data) //nolint:errcheck // only panics matter
	})
}
