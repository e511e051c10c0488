package redfishsim

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// field is a member a client may PATCH: a string with its valid values
// (nil: any string), or an object with writable members of its own.
type field struct {
	values  []string
	members map[string]field
}

// bootSources is the BootSource enumeration of the DMTF schema.
var bootSources = []string{"None", "Pxe", "Floppy", "Cd", "Usb", "Hdd", "BiosSetup", "Utilities", "Diags", "UefiShell", "UefiTarget", "SDCard", "UefiHttp", "RemoteDrive", "UefiBootNext", "Recovery"}

// systemFields are the writable members of the host system: the asset tag
// and the boot override. Everything else in the tree is read-only, but for
// the Attributes of the BIOS settings object (stageBIOS).
var systemFields = map[string]field{
	"AssetTag": {},
	"Boot": {members: map[string]field{
		"BootSourceOverrideTarget":     {values: bootSources},
		"BootSourceOverrideEnabled":    {values: []string{"Disabled", "Once", "Continuous"}},
		"BootSourceOverrideMode":       {values: []string{"Legacy", "UEFI"}},
		"UefiTargetBootSourceOverride": {},
		"BootNext":                     {},
		"HttpBootUri":                  {},
	}},
}

// patch applies a PATCH: all of it or, when any member is refused, none of
// it. If-Match, when sent, must name the current ETag.
func (b *BMC) patch(w http.ResponseWriter, r *http.Request, p string, body []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle()
	current, ok := b.res[p]
	if !ok {
		return methodNotAllowed(w, p, b.allow(p))
	}
	if m := r.Header.Get("If-Match"); m != "" && !etagMatches(m, etag(current)) {
		return refuse(http.StatusPreconditionFailed, msg("PreconditionFailed"))
	}
	in, err := decodeObject(body)
	if err != nil {
		return refuse(http.StatusBadRequest, msg("MalformedJSON"))
	}
	if len(in) == 0 {
		return refuse(http.StatusBadRequest, msg("EmptyJSON"))
	}
	var fields map[string]field
	if p == b.system {
		fields = systemFields
	}
	obj, _ := b.object(p)
	var msgs []message
	if p == b.biosSettings {
		msgs = b.stageBIOS(obj, in)
	} else {
		msgs = apply(obj, in, fields)
	}
	if len(msgs) > 0 {
		return refuse(http.StatusBadRequest, msgs...)
	}
	b.put(p, obj)
	b.log.DebugContext(r.Context(), "resource patched", "path", p)
	w.Header().Set("ETag", etag(b.res[p]))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apply writes the members of in into obj where fields allows it and
// returns a message for each member it refuses. A member the resource has is
// not writable; one it lacks is unknown. OData annotations are ignored.
func apply(obj, in map[string]any, fields map[string]field) []message {
	var msgs []message
	for _, k := range slices.Sorted(maps.Keys(in)) {
		v := in[k]
		f, writable := fields[k]
		_, present := obj[k]
		switch {
		case strings.HasPrefix(k, "@odata."):
		case !present:
			msgs = append(msgs, msg("PropertyUnknown", k))
		case !writable:
			msgs = append(msgs, msg("PropertyNotWritable", k))
		case f.members != nil:
			nested, isObj := v.(map[string]any)
			if !isObj {
				msgs = append(msgs, msg("PropertyValueTypeError", jsonText(v), k))
				continue
			}
			msgs = append(msgs, apply(sub(obj, k), nested, f.members)...)
		default:
			s, isString := v.(string)
			allowed := f.values
			if annotated, ok := obj[k+"@Redfish.AllowableValues"]; ok {
				allowed = stringList(annotated)
			}
			switch {
			case !isString:
				msgs = append(msgs, msg("PropertyValueTypeError", jsonText(v), k))
			case allowed != nil && !slices.Contains(allowed, s):
				msgs = append(msgs, msg("PropertyValueNotInList", jsonText(s), k))
			default:
				obj[k] = s
			}
		}
	}
	return msgs
}

// etagMatches reports whether an If-Match header names tag; "*" matches
// anything and weak tags compare by their value, as clients send Dell's weak
// tags back verbatim.
func etagMatches(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
