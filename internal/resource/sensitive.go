package resource

import (
	"maps"
	"strings"
)

// Sensitive values (a BMC's password) are stored with the resource, where
// its provider reads them, and never shown: responses leave them out. A
// PUT or PATCH that leaves one out keeps the stored value at the same
// place, so that a client can send back what it read (az resource update
// and tag GET and then PUT the whole resource) without erasing it.
//
// A path names a property under properties: names joined by '.', where a
// name ending in "[]" steps into each element of an array, as in
// "racks[].credentials.password". Elements of an array pair up by index.

// Shown is what clients see of a resource's properties: props without
// the type's sensitive values (a what-if compares a template with it).
func (t *Type) Shown(props map[string]any) map[string]any {
	return withoutSensitive(props, t.Sensitive)
}

// withoutSensitive returns props without the values at paths. It copies
// the maps and arrays on the way to a value it removes and shares the
// rest, so the stored properties are not changed.
func withoutSensitive(props map[string]any, paths []string) map[string]any {
	var v any = props
	for _, p := range paths {
		v = without(v, strings.Split(p, "."))
	}
	out, _ := v.(map[string]any)
	return out
}

func without(v any, path []string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	name, each := strings.CutSuffix(path[0], "[]")
	child, ok := m[name]
	if !ok {
		return v
	}
	out := maps.Clone(m)
	switch {
	case len(path) == 1:
		delete(out, name)
	case each:
		list, ok := child.([]any)
		if !ok {
			return v
		}
		copied := make([]any, len(list))
		for i, e := range list {
			copied[i] = without(e, path[1:])
		}
		out[name] = copied
	default:
		out[name] = without(child, path[1:])
	}
	return out
}

// keepSensitive puts the stored value back at each path where props, a
// client's body, has none.
func keepSensitive(props, old map[string]any, paths []string) {
	for _, p := range paths {
		keep(props, old, strings.Split(p, "."))
	}
}

func keep(v, old any, path []string) {
	m, ok := v.(map[string]any)
	om, ok2 := old.(map[string]any)
	if !ok || !ok2 {
		return
	}
	name, each := strings.CutSuffix(path[0], "[]")
	switch {
	case len(path) == 1:
		if _, has := m[name]; !has {
			if ov, ok := om[name]; ok {
				m[name] = ov
			}
		}
	case each:
		list, _ := m[name].([]any)
		olist, _ := om[name].([]any)
		for i := range min(len(list), len(olist)) {
			keep(list[i], olist[i], path[1:])
		}
	default:
		keep(m[name], om[name], path[1:])
	}
}
