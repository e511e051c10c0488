// Package internal_test checks the house rules of ARCHITECTURE.md: which
// package may import which.
package internal_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/citadel-cloud/citadel/"

// imports maps each package (relative to the module) to what its non-test
// files import.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "../")))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out[pkg] = append(out[pkg], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func isStdlib(p string) bool { return !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") }

func TestImports(t *testing.T) {
	// Pure packages do no I/O: the standard library (no net, os or
	// database) and other pure packages only.
	pure := map[string]bool{"internal/arm": true, "internal/network": true, "internal/authz": true, "internal/machine": true,
		"internal/liveness": true, "internal/agentapi": true, "internal/armexpr": true, "internal/template": true, "internal/policy": true,
		"internal/compliance": true, "internal/scheduler": true, "internal/jsonstr": true}
	// The agent and the fleet simulator reach the control plane through
	// its public APIs only, like a real machine.
	outside := func(pkg string) bool {
		return strings.HasPrefix(pkg, "internal/agent/") || pkg == "internal/agent" || pkg == "internal/sim"
	}
	controlPlane := []string{"internal/store", "internal/resource", "internal/server", "internal/fleet", "internal/agentauth", "internal/identity"}
	impure := []string{"net", "net/http", "os", "os/exec", "database/sql", "io/fs"}
	all := imports(t)
	if !slices.ContainsFunc(all["internal/store"], func(p string) bool { return strings.HasPrefix(p, "go.etcd.io/etcd") }) {
		t.Fatalf("the walk did not see internal/store importing etcd; found packages %d", len(all))
	}
	for pkg, imps := range all {
		for _, imp := range imps {
			local := strings.TrimPrefix(imp, module)
			switch {
			case strings.HasPrefix(imp, "go.etcd.io/etcd") && pkg != "internal/store":
				t.Errorf("%s imports %s: only internal/store may import etcd", pkg, imp)
			case pure[pkg] && !isStdlib(imp) && !pure[local]:
				t.Errorf("pure package %s imports %s", pkg, imp)
			case pure[pkg] && isStdlib(imp) && slices.Contains(impure, imp):
				t.Errorf("pure package %s imports %s, which does I/O", pkg, imp)
			case (pkg == "internal/frontdoor" || strings.HasPrefix(pkg, "internal/providers/")) && local == "internal/store":
				t.Errorf("%s imports internal/store: mutations go through the resource framework", pkg)
			case local == "internal/server" && pkg != "cmd/citadel" && pkg != "internal/servertest":
				t.Errorf("%s imports internal/server: only main and servertest assemble a server", pkg)
			case local == "internal/redfishsim" && pkg != "cmd/citadel" && !strings.HasPrefix(pkg, "internal/sim"):
				t.Errorf("%s imports internal/redfishsim: the control plane drives simulated BMCs over HTTP like real ones", pkg)
			case outside(pkg) && slices.Contains(controlPlane, local):
				t.Errorf("%s imports %s: agents and the simulator talk to the control plane over its APIs", pkg, local)
			case local == "internal/servertest" || local == "internal/store/storetest" || local == "internal/testvm":
				t.Errorf("%s imports %s in non-test code", pkg, local)
			}
		}
	}
}
