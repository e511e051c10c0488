package redfishsim

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// params reads the members of an action or create request body and collects
// the Base messages for missing, mistyped and unknown members, so that a
// refusal names every problem at once and changes nothing.
type params struct {
	action string // e.g. "ComputerSystem.Reset"; empty for a create request
	in     map[string]any
	read   map[string]bool
	msgs   []message
}

// newParams decodes body, which must be a JSON object or empty.
func newParams(action string, body []byte) (*params, error) {
	p := &params{action: action, in: map[string]any{}, read: map[string]bool{}}
	if len(strings.TrimSpace(string(body))) == 0 {
		return p, nil
	}
	in, err := decodeObject(body)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, msg("MalformedJSON"))
	}
	p.in = in
	return p, nil
}

// value returns member name, noting a missing required member.
func (p *params) value(name string, required bool) (any, bool) {
	p.read[name] = true
	v, ok := p.in[name]
	if !ok && required {
		if p.action == "" {
			p.msgs = append(p.msgs, msg("CreateFailedMissingReqProperties", name))
		} else {
			p.msgs = append(p.msgs, msg("ActionParameterMissing", p.action, name))
		}
	}
	return v, ok
}

func (p *params) typeError(name string, v any) {
	if p.action == "" {
		p.msgs = append(p.msgs, msg("PropertyValueTypeError", jsonText(v), name))
	} else {
		p.msgs = append(p.msgs, msg("ActionParameterValueTypeError", jsonText(v), name, p.action))
	}
}

// notInList notes a value outside allowed; allowed nil accepts any value.
func (p *params) notInList(name, v string, allowed []string) bool {
	if allowed == nil || slices.Contains(allowed, v) {
		return false
	}
	p.msgs = append(p.msgs, msg("PropertyValueNotInList", jsonText(v), name))
	return true
}

// str reads a string member; allowed, when not nil, lists its valid values.
func (p *params) str(name string, required bool, allowed []string) string {
	v, ok := p.value(name, required)
	if !ok {
		return ""
	}
	s, isString := v.(string)
	if !isString {
		p.typeError(name, v)
		return ""
	}
	if p.notInList(name, s, allowed) {
		return ""
	}
	return s
}

// boolean reads a boolean member that defaults to def.
func (p *params) boolean(name string, def bool) bool {
	v, ok := p.value(name, false)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		p.typeError(name, v)
		return def
	}
	return b
}

// strs reads an array of strings; allowed, when not nil, lists the valid
// elements.
func (p *params) strs(name string, allowed []string) []string {
	v, ok := p.value(name, false)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, isString := e.(string)
		if !isString {
			isList = false
			break
		}
		if p.notInList(name, s, allowed) {
			return nil
		}
		out = append(out, s)
	}
	if !isList {
		p.typeError(name, v)
		return nil
	}
	return out
}

// headers reads an HttpHeaders member: an array of objects of strings.
func (p *params) headers(name string) http.Header {
	v, ok := p.value(name, false)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	h := http.Header{}
	for _, e := range list {
		obj, isObj := e.(map[string]any)
		for k, s := range obj {
			s, isString := s.(string)
			if !isString || k == "" {
				isObj = false
				break
			}
			h.Add(k, s)
		}
		if !isObj {
			isList = false
			break
		}
	}
	if !isList {
		p.typeError(name, v)
		return nil
	}
	return h
}

// err notes the members nobody read as unknown and returns the refusal, if
// any.
func (p *params) err() error {
	for _, k := range slices.Sorted(maps.Keys(p.in)) {
		if p.read[k] || strings.HasPrefix(k, "@odata.") {
			continue
		}
		if p.action == "" {
			p.msgs = append(p.msgs, msg("PropertyUnknown", k))
		} else {
			p.msgs = append(p.msgs, msg("ActionParameterUnknown", p.action, k))
		}
	}
	if len(p.msgs) > 0 {
		return refuse(http.StatusBadRequest, p.msgs...)
	}
	return nil
}
