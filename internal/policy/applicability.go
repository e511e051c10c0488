package policy

import "strings"

// Applicability: a definition whose if condition requires the resource
// type to be one of some literal types (a "field": "type" condition with
// equals or in, under allOf) does not apply to resources of other types;
// Azure leaves those out of compliance, and a write need not evaluate it.

// ruleTypes returns the lower-case types c can match, and whether c
// restricts the type at all.
func ruleTypes(c *condition) (types []string, restricted bool) {
	if c == nil {
		return nil, false
	}
	switch c.logic {
	case "allOf":
		for _, item := range c.items {
			t, ok := ruleTypes(item)
			switch {
			case !ok:
			case !restricted:
				types, restricted = t, true
			default:
				types = intersect(types, t)
			}
		}
		return types, restricted
	case "anyOf":
		for _, item := range c.items {
			t, ok := ruleTypes(item)
			if !ok {
				return nil, false
			}
			types = append(types, t...)
		}
		return types, len(c.items) > 0
	case "":
		return leafTypes(c)
	}
	return nil, false // not: whatever it negates, it restricts nothing we can tell
}

// leafTypes reads `"field": "type", "equals"|"in": <literal>`.
func leafTypes(c *condition) ([]string, bool) {
	f := c.operand.field
	if f == nil || f.expr != nil || !strings.EqualFold(f.written, "type") || c.op == nil || c.op.negated ||
		c.target == nil || !c.target.static {
		return nil, false
	}
	switch c.op.kind {
	case opEquals:
		if s, ok := c.target.lit.(string); ok {
			return []string{strings.ToLower(s)}, true
		}
	case opIn:
		list, ok := c.target.lit.([]any)
		if !ok {
			return nil, false
		}
		var out []string
		for _, v := range list {
			s, ok := v.(string)
			if !ok {
				return nil, false
			}
			out = append(out, strings.ToLower(s))
		}
		return out, true
	}
	return nil, false
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
				break
			}
		}
	}
	return out
}

// AppliesTo reports whether the definition can apply to resources of the
// type: false when its if condition requires another type.
func (d *Definition) AppliesTo(resourceType string) bool {
	if !d.typed {
		return true
	}
	for _, t := range d.types {
		if strings.EqualFold(t, resourceType) {
			return true
		}
	}
	return false
}

// AppliesTo reports whether any definition of the assignment can apply
// to resources of the type.
func (a *Assignment) AppliesTo(resourceType string) bool {
	for _, m := range a.members {
		if m.def.AppliesTo(resourceType) {
			return true
		}
	}
	return false
}

// Affects reports whether the assignment can refuse or change a request
// of the kind: a create or update (deny, append, modify) or a delete
// (denyAction). The others only report compliance, so a request need not
// evaluate them. An effect that could not be decided counts, as it
// denies.
func (a *Assignment) Affects(delete bool) bool {
	for _, m := range a.members {
		if m.effErr != nil {
			return true
		}
		switch {
		case delete && m.effect == DenyAction:
			return true
		case !delete && (m.effect == Deny || m.effect == Append || m.effect == Modify):
			return true
		}
	}
	return false
}
