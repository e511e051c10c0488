package policy

import (
	"errors"
	"strings"
)

// fieldKind is what a field name refers to.
type fieldKind int

const (
	fieldName     fieldKind = iota // name, kind, type, id: a top-level string
	fieldFullName                  // the name with its parents' names
	fieldLocation                  // location, normalised
	fieldTags                      // the tags object
	fieldTag                       // one tag, by name
	fieldPath                      // a top-level path: identity.type, identity.userAssignedIdentities
	fieldAlias                     // an alias, its path depending on the resource type
	fieldMissing                   // an alias a resource provider mode defines: it never reads a value here
)

// field is a resolved field name.
type field struct {
	kind    fieldKind
	name    string   // the top-level key, or the tag name
	path    jsonPath // fieldPath
	aliases []*aliasPath
	written string
}

// resolveField resolves a field name: one of the built-in fields (name,
// fullName, kind, type, location, id, identity.*, tags, tags['x'], tags.x,
// tags[x]) or an alias.
func resolveField(s string, aliases *Aliases) (*field, error) {
	lower := strings.ToLower(s)
	switch lower {
	case "name", "kind", "type", "id":
		return &field{kind: fieldName, name: lower, written: s}, nil
	case "fullname":
		return &field{kind: fieldFullName, written: s}, nil
	case "location":
		return &field{kind: fieldLocation, name: "location", written: s}, nil
	case "tags":
		return &field{kind: fieldTags, written: s}, nil
	}
	if tag, ok := tagName(s); ok {
		return &field{kind: fieldTag, name: tag, written: s}, nil
	}
	if strings.HasPrefix(lower, "identity.") {
		path, err := compilePath(s)
		if err != nil {
			return nil, err
		}
		return &field{kind: fieldPath, path: path, written: s}, nil
	}
	if !strings.Contains(s, "/") {
		return nil, errors.New("unknown field")
	}
	if aliases == nil {
		aliases = emptyAliases
	}
	paths, err := aliases.resolve(s)
	if err != nil {
		return nil, err
	}
	return &field{kind: fieldAlias, aliases: paths, written: s}, nil
}

var emptyAliases = NewAliases()

// tagName reads tags['name'] (with ” for a quote), tags[name] and
// tags.name.
func tagName(s string) (string, bool) {
	if len(s) < 5 || !strings.EqualFold(s[:4], "tags") {
		return "", false
	}
	rest := s[4:]
	if name, ok := strings.CutPrefix(rest, "."); ok && name != "" {
		return name, true
	}
	inner, ok := strings.CutPrefix(rest, "[")
	if !ok || !strings.HasSuffix(inner, "]") {
		return "", false
	}
	inner = inner[:len(inner)-1]
	if len(inner) >= 2 && inner[0] == '\'' && inner[len(inner)-1] == '\'' {
		inner = strings.ReplaceAll(inner[1:len(inner)-1], "''", "'")
	}
	return inner, inner != ""
}

// isCollection reports whether the field selects array members ([*]).
func (f *field) isCollection() bool {
	if f.kind != fieldAlias {
		return false
	}
	for _, p := range f.aliases {
		if p.path.isCollection() {
			return true
		}
	}
	return false
}

// modifiable reports whether modify may change the field on a resource of
// this type.
func (f *field) modifiable(resourceType string) bool {
	switch f.kind {
	case fieldTag, fieldTags:
		return true
	case fieldPath: // identity.type, on virtual machines and their scale sets only
		return strings.EqualFold(resourceType, "Microsoft.Compute/virtualMachines") ||
			strings.EqualFold(resourceType, "Microsoft.Compute/virtualMachineScaleSets")
	case fieldAlias:
		p := pathFor(f.aliases, resourceType)
		return p != nil && p.modifiable
	}
	return false
}

// bodyPath is the JSON path of the field in a resource of this type; nil
// when the field is not a property of that type.
func (f *field) bodyPath(resourceType string) jsonPath {
	switch f.kind {
	case fieldName, fieldLocation:
		return jsonPath{f.name}
	case fieldTags:
		return jsonPath{"tags"}
	case fieldTag:
		return jsonPath{"tags", f.name}
	case fieldPath:
		return f.path
	case fieldAlias:
		if p := pathFor(f.aliases, resourceType); p != nil {
			return p.path
		}
	}
	return nil
}

// read returns what the field selects in a resource: one value (nil and
// false when missing), or for a [*] alias the selected members. Bindings,
// innermost last, narrow a counted array to its current member.
func (f *field) read(res map[string]any, bindings []binding, buf []any) (values []any, collection, found bool) {
	switch f.kind {
	case fieldName:
		v, ok := lookupKey(res, f.name)
		return append(buf, v), false, ok && v != nil
	case fieldFullName:
		v := fullName(res)
		return append(buf, v), false, v != nil
	case fieldLocation:
		v, ok := lookupKey(res, "location")
		if s, isString := v.(string); isString {
			v = normalizeLocation(s)
		}
		return append(buf, v), false, ok && v != nil
	case fieldTags:
		v, ok := lookupKey(res, "tags")
		return append(buf, v), false, ok && v != nil
	case fieldTag:
		tags, _ := lookupKey(res, "tags")
		obj, _ := tags.(map[string]any)
		v, ok := lookupKey(obj, f.name)
		return append(buf, v), false, ok && v != nil
	case fieldPath:
		values, found := selectPath(res, f.path, buf)
		if !found {
			return append(buf, nil), false, false
		}
		return values, false, true
	case fieldAlias:
		typ, _ := lookupKey(res, "type")
		typeName, _ := typ.(string)
		p := pathFor(f.aliases, typeName)
		if p == nil {
			if f.isCollection() {
				return buf, true, true
			}
			return append(buf, nil), false, false
		}
		var root any = res
		path := p.path
		for i := len(bindings) - 1; i >= 0; i-- {
			if bindings[i].prefix != nil && path.hasPrefix(bindings[i].prefix) {
				root, path = bindings[i].member, path[len(bindings[i].prefix):]
				break
			}
		}
		if p.path.isCollection() {
			values, _ := selectPath(root, path, buf)
			return values, true, true
		}
		values, found := selectPath(root, path, buf)
		if !found {
			return append(buf, nil), false, false
		}
		return values, false, true
	}
	return append(buf, nil), false, false
}

// fullName is the resource's name with its parents' names
// ("server/database"), read from its ID when it has one.
func fullName(res map[string]any) any {
	id, _ := lookupKey(res, "id")
	if s, ok := id.(string); ok {
		if _, rest, found := cutLastFold(s, "/providers/"); found {
			segs := strings.Split(strings.Trim(rest, "/"), "/")
			var names []string
			for i := 2; i < len(segs); i += 2 {
				names = append(names, segs[i])
			}
			if len(names) > 0 {
				return strings.Join(names, "/")
			}
		}
	}
	name, _ := lookupKey(res, "name")
	return name
}

func cutLastFold(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(strings.ToLower(s), strings.ToLower(sep))
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// normalizeLocation makes "East US 2" read as "eastus2", as Azure
// normalises locations before evaluating them.
func normalizeLocation(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, " ", ""))
}
