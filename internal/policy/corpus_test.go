package policy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/citadel-cloud/citadel/internal/armexpr"
	"github.com/citadel-cloud/citadel/internal/policy"
)

// corpusDir holds the Azure Policy corpus of shared/.
const corpusDir = "../../../shared/corpora/azure-policy"

// corpus returns the corpus directory; it skips the test when the corpus
// is missing, except under CI, where that is a failure.
func corpus(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(corpusDir, "MANIFEST.tsv")); err != nil {
		msg := "the Azure Policy corpus is missing (shared/corpora/azure-policy): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return corpusDir
}

var azureAliases = sync.OnceValues(func() (*policy.Aliases, error) {
	f, err := os.Open(filepath.Join(corpusDir, "aliases", "policy-aliases.csv.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	list, err := policy.ReadAliasCSV(f)
	if err != nil {
		return nil, err
	}
	return policy.NewAliases(policy.CitadelAliases(), list), nil
})

// corpusAliases is the registry a server with Azure's alias list has.
func corpusAliases(t testing.TB) *policy.Aliases {
	t.Helper()
	corpus(t)
	a, err := azureAliases()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// jsonFiles lists the .json files under dir, recursively.
func jsonFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			out = append(out, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCorpusLoads(t *testing.T) {
	dir := corpus(t)
	aliases := corpusAliases(t)
	if n := aliases.Len(); n < 60000 {
		t.Errorf("the registry has %d aliases, want the ~65,000 of Azure's list and Citadel's", n)
	}
	defs := map[string]*policy.Definition{}
	var files []string
	files = append(files, jsonFiles(t, filepath.Join(dir, "policyDefinitions"))...)
	files = append(files, jsonFiles(t, filepath.Join(dir, "samples"))...)
	for _, f := range jsonFiles(t, filepath.Join(dir, "eval-cases")) {
		if filepath.Base(f) == "azurepolicy.json" {
			files = append(files, f)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		def, err := policy.ParseDefinition(data, aliases)
		if err != nil {
			t.Errorf("%s:\n%v", f, err)
			continue
		}
		defs[strings.ToLower(def.ID)] = def
	}
	sets := jsonFiles(t, filepath.Join(dir, "policySetDefinitions"))
	bound := 0
	for _, f := range sets {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		set, err := policy.ParseSetDefinition(data)
		if err != nil {
			t.Errorf("%s:\n%v", f, err)
			continue
		}
		lookup := func(id string) (*policy.Definition, bool) {
			d, ok := defs[strings.ToLower(id)]
			return d, ok
		}
		if !slices.ContainsFunc(set.Members, func(m *policy.Member) bool { _, ok := lookup(m.DefinitionID); return !ok }) {
			a, err := policy.NewSetAssignment("/a/"+set.Name, set, nil, lookup)
			if err != nil {
				t.Errorf("%s: NewSetAssignment: %v", f, err)
				continue
			}
			if got := len(a.Evaluate(map[string]any{"type": "Microsoft.Compute/virtualMachines"}, nil)); got != len(set.Members) {
				t.Errorf("%s: %d results, want one per member (%d)", f, got, len(set.Members))
			}
			bound++
		}
	}
	t.Logf("loaded %d definitions and %d initiatives (%d with all their members in the corpus, assigned and evaluated)", len(files), len(sets), bound)
	if len(files) < 100 || len(sets) < 6 {
		t.Errorf("found %d definitions and %d initiatives, want the corpus's 104 and 6", len(files), len(sets))
	}
}

// azureEmptyArray are eval cases whose expected result (in the file name)
// is not Azure's: with virtualNetworkRules empty, the condition
// "virtualNetworkRules[*].id exists false" holds over no member, as Azure's
// own built-in "Cosmos DB should use a virtual network service endpoint"
// relies on, so the vault is audited.
var azureEmptyArray = map[string]string{
	"kv-iprules-with-allow-none.json": "audit",
	"kv-iprules-with-deny-none.json":  "audit",
}

// TestEvalCases evaluates the policies of eval-cases against their test
// resources; the file name ends with the expected effect, none when the
// rule does not match.
func TestEvalCases(t *testing.T) {
	dir := filepath.Join(corpus(t), "eval-cases")
	aliases := corpusAliases(t)
	n := 0
	for _, f := range jsonFiles(t, dir) {
		if filepath.Base(f) != "azurepolicy.json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		def, err := policy.ParseDefinition(data, aliases)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		a, err := policy.NewAssignment("/assignments/test", def, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tf := range jsonFiles(t, filepath.Join(filepath.Dir(f), "tests")) {
			name := filepath.Base(tf)
			want := strings.TrimSuffix(name[strings.LastIndex(name, "-")+1:], ".json")
			if w, ok := azureEmptyArray[name]; ok {
				want = w
			}
			t.Run(name, func(t *testing.T) {
				res := readResource(t, tf)
				r := a.Evaluate(res, nil)[0]
				got := "none"
				if r.Matched {
					got = strings.ToLower(string(r.Effect))
				}
				if r.Err != nil || got != want {
					t.Errorf("Evaluate(%s) = %s (err %v, reasons %+v), want %s", name, got, r.Err, r.Reasons, want)
				}
			})
			n++
		}
	}
	t.Logf("%d eval cases", n)
	if n < 12 {
		t.Errorf("found %d eval cases, want the corpus's", n)
	}
}

func readResource(t testing.TB, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := armexpr.ParseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}
