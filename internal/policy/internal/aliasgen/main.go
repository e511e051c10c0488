// Command aliasgen writes internal/policy/citadel_aliases.csv: a policy
// alias for every property path of Citadel's own resource types, read from
// the bicep types of shared/specs. go generate in internal/policy runs it.
//
//	go run ./internal/aliasgen -specs ../../../shared/specs -o citadel_aliases.csv
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func main() {
	specs := flag.String("specs", "../../../shared/specs", "the shared/specs folder")
	out := flag.String("o", "citadel_aliases.csv", "the CSV file to write")
	flag.Parse()
	b, err := generate(*specs)
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "aliasgen:", err)
		os.Exit(1)
	}
}

// generate returns the CSV rows "alias,path,modifiable" for every
// resource type of specs/*/*/bicep-types/types.json, sorted by alias.
func generate(specs string) ([]byte, error) {
	files, err := filepath.Glob(filepath.Join(specs, "*", "*", "bicep-types", "types.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no bicep types under %s", specs)
	}
	var rows [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var types []bicepType
		if err := json.Unmarshal(b, &types); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		g := &generator{types: types}
		if err := g.resourceTypes(); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		rows = append(rows, g.rows...)
	}
	slices.SortFunc(rows, func(a, b []string) int {
		return strings.Compare(strings.ToLower(a[0]), strings.ToLower(b[0]))
	})
	rows = slices.CompactFunc(rows, func(a, b []string) bool { return strings.EqualFold(a[0], b[0]) })
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(rows); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// bicepType is one entry of a bicep types.json: only what aliases need.
type bicepType struct {
	Kind       string              `json:"$type"`
	Name       string              `json:"name"`
	Body       *ref                `json:"body"`
	Properties map[string]property `json:"properties"`
	ItemType   *ref                `json:"itemType"`
}

type property struct {
	Type  ref `json:"type"`
	Flags int `json:"flags"`
}

type ref struct {
	Ref string `json:"$ref"` // "#/12"
}

// flagReadOnly is the bicep property flag of a property the service sets.
const flagReadOnly = 2

// builtinFields are the top-level properties policy rules read as fields,
// not aliases.
var builtinFields = []string{"id", "name", "type", "apiVersion", "location", "tags"}

type generator struct {
	types []bicepType
	rows  [][]string
}

func (g *generator) get(r ref) (int, bicepType, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(r.Ref, "#/"))
	if err != nil || i < 0 || i >= len(g.types) {
		return 0, bicepType{}, fmt.Errorf("bad type reference %q", r.Ref)
	}
	return i, g.types[i], nil
}

func (g *generator) resourceTypes() error {
	for _, t := range g.types {
		if t.Kind != "ResourceType" {
			continue
		}
		name, _, _ := strings.Cut(t.Name, "@")
		_, body, err := g.get(*t.Body)
		if err != nil {
			return err
		}
		for _, key := range sortedKeys(body.Properties) {
			p := body.Properties[key]
			if slices.Contains(builtinFields, key) {
				continue
			}
			if key == "properties" {
				// The properties envelope: its members are named without it.
				i, pt, err := g.get(p.Type)
				if err != nil {
					return err
				}
				if err := g.object(name+"/", "properties.", i, pt, p.Flags&flagReadOnly != 0, nil); err != nil {
					return err
				}
				continue
			}
			if err := g.property(name+"/"+key, key, p, false, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// property emits the alias of one property and of everything under it.
func (g *generator) property(alias, path string, p property, readOnly bool, seen []int) error {
	readOnly = readOnly || p.Flags&flagReadOnly != 0
	g.rows = append(g.rows, []string{alias, path, strconv.FormatBool(!readOnly)})
	i, t, err := g.get(p.Type)
	if err != nil {
		return err
	}
	return g.below(alias, path, i, t, readOnly, seen)
}

// below emits the aliases under a value of type t: the members of an
// object, the [*] members of an array.
func (g *generator) below(alias, path string, i int, t bicepType, readOnly bool, seen []int) error {
	switch t.Kind {
	case "ObjectType":
		return g.object(alias+".", path+".", i, t, readOnly, seen)
	case "ArrayType":
		alias, path = alias+"[*]", path+"[*]"
		g.rows = append(g.rows, []string{alias, path, strconv.FormatBool(!readOnly)})
		j, item, err := g.get(*t.ItemType)
		if err != nil {
			return err
		}
		return g.below(alias, path, j, item, readOnly, seen)
	}
	return nil
}

// object emits the aliases of an object's properties; a type already
// being walked (a recursive model) stops the walk.
func (g *generator) object(aliasPrefix, pathPrefix string, i int, t bicepType, readOnly bool, seen []int) error {
	if slices.Contains(seen, i) {
		return nil
	}
	seen = append(seen, i)
	for _, key := range sortedKeys(t.Properties) {
		if err := g.property(aliasPrefix+key, pathPrefix+key, t.Properties[key], readOnly, seen); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]property) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
