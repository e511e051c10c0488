package policy

import (
	"bufio"
	"compress/gzip"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

//go:generate go run ./internal/aliasgen -specs ../../../shared/specs -o citadel_aliases.csv

// Alias names a property of a resource type for policy rules: the alias
// Microsoft.Compute/virtualMachines/storageProfile.osDisk.managedDisk.id
// is the JSON path properties.storageProfile.osDisk.managedDisk.id of a
// virtual machine. An alias or path with [*] selects every member of an
// array.
type Alias struct {
	Name         string
	ResourceType string // the type whose body Path reads
	Path         string
	// Modifiable is whether the modify effect may change the property;
	// false for read-only properties.
	Modifiable bool
}

//go:embed citadel_aliases.csv
var citadelAliasesCSV string

// citadelExtensionAliasesCSV are the aliases of the properties Citadel
// adds to its types beside the spec's (a machine's configurationDrift),
// written by hand: the generator reads only the spec.
//
//go:embed citadel_extension_aliases.csv
var citadelExtensionAliasesCSV string

var citadelAliases = sync.OnceValue(func() []Alias {
	aliases, err := ReadAliasCSV(strings.NewReader(citadelAliasesCSV + citadelExtensionAliasesCSV))
	if err != nil {
		panic("policy: the embedded alias lists are not valid: " + err.Error())
	}
	return aliases
})

// CitadelAliases are the aliases of Citadel's own resource types
// (Microsoft.NetworkCloud, Microsoft.ManagedNetworkFabric and the
// Microsoft.AzureStackHCI VM types), generated from their bicep types: one
// for every property path, arrays with [*].
func CitadelAliases() []Alias { return citadelAliases() }

// ReadAliasCSV reads aliases as Azure's Get-AzPolicyAlias dump lists them:
// CSV rows "alias,defaultPath" without a header, gzip-compressed or not.
// A third column, "false", marks a property the modify effect may not
// change (Citadel's own file has it; Azure's does not, so its aliases count
// as modifiable). The resource type of an alias is its name without the
// last segment; a namespace-wide alias such as Microsoft.Compute/licenseType
// belongs to the type of the next row, as the dump lists the aliases of
// one type together.
func ReadAliasCSV(r io.Reader) ([]Alias, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("alias CSV: %w", err)
		}
		defer gz.Close()
		r = gz
	} else {
		r = br
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	var out []Alias
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("alias CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < 2 || len(rec) > 3 {
			return nil, fmt.Errorf("alias CSV line %d: want alias,path[,modifiable], got %d fields", line, len(rec))
		}
		name, path := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		typ, _, ok := cutLast(name, "/")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("alias CSV line %d: %q is not Namespace/type/path", line, name)
		}
		if _, err := compilePath(path); err != nil {
			return nil, fmt.Errorf("alias CSV line %d: %w", line, err)
		}
		a := Alias{Name: name, Path: path, Modifiable: true}
		if strings.Contains(typ, "/") {
			a.ResourceType = typ
		}
		if len(rec) == 3 {
			a.Modifiable = !strings.EqualFold(strings.TrimSpace(rec[2]), "false")
		}
		out = append(out, a)
	}
	next := ""
	for i := len(out) - 1; i >= 0; i-- {
		if out[i].ResourceType == "" {
			out[i].ResourceType = next
		} else {
			next = out[i].ResourceType
		}
	}
	return out, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// Aliases is the alias registry a policy engine resolves field names with.
// It is immutable and safe for concurrent use.
type Aliases struct {
	byName     map[string][]*aliasPath // lower-case alias name → its path per resource type
	namespaces map[string]bool         // lower-case namespaces with at least one alias
}

// aliasPath is where an alias reads in one resource type's body.
type aliasPath struct {
	resourceType string
	path         jsonPath
	modifiable   bool
}

// NewAliases builds a registry from lists of aliases, typically
// CitadelAliases() and the Azure dump read with ReadAliasCSV. A name given
// twice for the same resource type keeps its first path.
func NewAliases(lists ...[]Alias) *Aliases {
	reg := &Aliases{byName: map[string][]*aliasPath{}, namespaces: map[string]bool{}}
	for _, list := range lists {
		for _, a := range list {
			key := strings.ToLower(a.Name)
			dup := false
			for _, p := range reg.byName[key] {
				dup = dup || strings.EqualFold(p.resourceType, a.ResourceType)
			}
			if dup {
				continue
			}
			path, err := compilePath(a.Path)
			if err != nil {
				continue // ReadAliasCSV and the generator only make valid paths
			}
			reg.byName[key] = append(reg.byName[key], &aliasPath{resourceType: a.ResourceType, path: path, modifiable: a.Modifiable})
			ns, _, _ := strings.Cut(key, "/")
			reg.namespaces[ns] = true
		}
	}
	return reg
}

// Len is the number of alias names the registry knows.
func (r *Aliases) Len() int { return len(r.byName) }

// errUnknownAlias is resolve's answer for an alias of a namespace the
// registry knows that is not one of its aliases.
var errUnknownAlias = errors.New("unknown alias")

// resolve returns the paths of an alias. An alias of a namespace the
// registry has no alias for at all (a resource provider newer than the
// alias list, say) is taken to follow the convention of nearly all
// aliases: Namespace/type/prop.path is properties.prop.path of the type.
func (r *Aliases) resolve(name string) ([]*aliasPath, error) {
	key := strings.ToLower(name)
	if paths, ok := r.byName[key]; ok {
		return paths, nil
	}
	ns, _, _ := strings.Cut(key, "/")
	typ, prop, _ := cutLast(name, "/")
	if r.namespaces[ns] || !strings.Contains(typ, "/") || prop == "" {
		return nil, errUnknownAlias
	}
	path, err := compilePath("properties." + prop)
	if err != nil {
		return nil, err
	}
	return []*aliasPath{{resourceType: typ, path: path, modifiable: true}}, nil
}

// pathFor picks the path of an alias for a resource type; nil when the
// alias does not apply to that type.
func pathFor(paths []*aliasPath, resourceType string) *aliasPath {
	for _, p := range paths {
		if p.resourceType == "" || strings.EqualFold(p.resourceType, resourceType) {
			return p
		}
	}
	return nil
}

// jsonPath is a compiled path into a resource body: keys, with "[*]" for
// every member of an array.
type jsonPath []string

const each = "[*]"

// compilePath splits "properties.rules[*].ports[*]" into its keys and [*]
// markers.
func compilePath(s string) (jsonPath, error) {
	var out jsonPath
	for part := range strings.SplitSeq(s, ".") {
		key, stars := part, 0
		for strings.HasSuffix(key, each) {
			key, stars = strings.TrimSuffix(key, each), stars+1
		}
		if key == "" || strings.ContainsAny(key, "[]") {
			return nil, fmt.Errorf("the path %q has an empty or malformed segment %q", s, part)
		}
		out = append(out, key)
		for range stars {
			out = append(out, each)
		}
	}
	return out, nil
}

func (p jsonPath) String() string {
	var b strings.Builder
	for i, seg := range p {
		if i > 0 && seg != each {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// isCollection reports whether the path selects array members rather than
// one value.
func (p jsonPath) isCollection() bool {
	for _, seg := range p {
		if seg == each {
			return true
		}
	}
	return false
}

// hasPrefix reports whether q starts with p, keys compared ignoring case.
func (p jsonPath) hasPrefix(q jsonPath) bool {
	if len(q) > len(p) {
		return false
	}
	for i := range q {
		if !strings.EqualFold(p[i], q[i]) {
			return false
		}
	}
	return true
}

// lookupKey reads obj[key], exactly then ignoring case, as ARM property
// names are case-insensitive.
func lookupKey(obj map[string]any, key string) (any, bool) {
	if v, ok := obj[key]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// selectPath appends to out the values path selects under v: one value
// (found or not) for a plain path, every member reached for a path with
// [*], flattened. Members without the property are skipped.
func selectPath(v any, path jsonPath, out []any) (values []any, found bool) {
	for i, seg := range path {
		if seg == each {
			arr, ok := v.([]any)
			if !ok {
				return out, false
			}
			for _, m := range arr {
				out, _ = selectPath(m, path[i+1:], out)
			}
			return out, true
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return out, false
		}
		if v, ok = lookupKey(obj, seg); !ok {
			return out, false
		}
	}
	if v == nil {
		return out, false
	}
	return append(out, v), true
}
