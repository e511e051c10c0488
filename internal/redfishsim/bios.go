package redfishsim

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The BIOS: Systems/{id}/Bios holds the attributes the BIOS runs with and
// is read-only; its settings object (@Redfish.Settings, Bios/Settings)
// takes PATCHes of Attributes, which wait there, pending, until the host
// next boots, as on real BMCs. A BIOS changed by hand in setup
// (SetBIOSAttribute) changes at once.

// defaultBIOS are the attributes of a generated BIOS that Machine does not
// set: Dell's names, with their factory defaults.
var defaultBIOS = map[string]any{
	"BootMode": "Uefi", "LogicalProc": "Enabled", "ProcVirtualization": "Enabled", "ProcTurboMode": "Enabled",
	"SriovGlobalEnable": "Disabled", "SysProfile": "PerfOptimized", "AdminPhone": "",
}

// biosResources puts a generated system's Bios, with m's attributes over
// the defaults, and its empty settings object.
func (g *generator) biosResources(sys string, attrs map[string]any) {
	all := maps.Clone(defaultBIOS)
	maps.Copy(all, attrs)
	bios := sys + "/Bios"
	g.put(bios, obj{"@odata.type": "#Bios.v1_2_3.Bios", "Id": "Bios", "Name": "BIOS Configuration Current Settings",
		"AttributeRegistry": "BiosAttributeRegistry.v1_0_0", "Attributes": all,
		"@Redfish.Settings": obj{"@odata.type": "#Settings.v1_4_0.Settings", "SettingsObject": link(bios + "/Settings"),
			"SupportedApplyTimes": []string{"OnReset"}}})
	g.put(bios+"/Settings", obj{"@odata.type": "#Bios.v1_2_3.Bios", "Id": "Settings", "Name": "BIOS Configuration Pending Settings",
		"AttributeRegistry": "BiosAttributeRegistry.v1_0_0", "Attributes": obj{}})
}

// stageBIOS writes a PATCH of the settings object into settings: each
// attribute the BIOS has, with a value of its type, becomes pending; an
// apply time other than OnReset, the only one simulated, is refused. It
// returns a message for each member it refuses. The caller holds b.mu.
func (b *BMC) stageBIOS(settings, in map[string]any) []message {
	bios, _ := b.object(b.bios)
	current := child(bios, "Attributes")
	var msgs []message
	for _, k := range slices.Sorted(maps.Keys(in)) {
		v := in[k]
		switch {
		case strings.HasPrefix(k, "@odata."):
		case k == "@Redfish.SettingsApplyTime":
			if at := child(in, k)["ApplyTime"]; at != "OnReset" {
				msgs = append(msgs, msg("PropertyValueNotInList", jsonText(at), k+"/ApplyTime"))
			}
		case k != "Attributes":
			if _, present := settings[k]; present {
				msgs = append(msgs, msg("PropertyNotWritable", k))
			} else {
				msgs = append(msgs, msg("PropertyUnknown", k))
			}
		default:
			attrs, ok := v.(map[string]any)
			if !ok {
				msgs = append(msgs, msg("PropertyValueTypeError", jsonText(v), k))
				continue
			}
			pending := sub(settings, "Attributes")
			for _, name := range slices.Sorted(maps.Keys(attrs)) {
				was, known := current[name]
				switch {
				case !known:
					msgs = append(msgs, msg("PropertyUnknown", "Attributes/"+name))
				case !sameKind(was, attrs[name]):
					msgs = append(msgs, msg("PropertyValueTypeError", jsonText(attrs[name]), "Attributes/"+name))
				default:
					pending[name] = attrs[name]
				}
			}
		}
	}
	return msgs
}

// sameKind says whether v may replace an attribute's value was: both
// strings, both numbers or both booleans; any of them where was is null.
func sameKind(was, v any) bool {
	kind := func(x any) string {
		switch x.(type) {
		case string:
			return "string"
		case json.Number, float64:
			return "number"
		case bool:
			return "boolean"
		case nil:
			return "null"
		}
		return "other"
	}
	k := kind(v)
	return k != "other" && k != "null" && (kind(was) == "null" || kind(was) == k)
}

// applyBIOS is the BIOS taking its pending settings as the host boots.
// The caller holds b.mu.
func (b *BMC) applyBIOS() {
	if b.biosSettings == "" {
		return
	}
	settings, _ := b.object(b.biosSettings)
	pending := child(settings, "Attributes")
	if len(pending) == 0 {
		return
	}
	bios, _ := b.object(b.bios)
	maps.Copy(sub(bios, "Attributes"), pending)
	b.put(b.bios, bios)
	settings["Attributes"] = map[string]any{}
	b.put(b.biosSettings, settings)
	b.log.Debug("BIOS settings applied", "system", b.system, "attributes", slices.Sorted(maps.Keys(pending)))
}

// SetBIOSAttribute changes a BIOS attribute at once, as someone in the
// BIOS setup would: the value (a string, number or boolean) is what the
// Bios resource reports from then on.
func (b *BMC) SetBIOSAttribute(name string, value any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bios, ok := b.object(b.bios)
	if !ok {
		return fmt.Errorf("set BIOS attribute %s: the system has no Bios resource", name)
	}
	attrs := child(bios, "Attributes")
	if _, ok := attrs[name]; !ok {
		return fmt.Errorf("set BIOS attribute %s: the BIOS has no such attribute", name)
	}
	switch value.(type) {
	case string, bool, float64, int, json.Number:
	default:
		return fmt.Errorf("set BIOS attribute %s: %v (%T) is not a string, number or boolean", name, value, value)
	}
	attrs[name] = value
	b.put(b.bios, bios)
	b.log.Debug("BIOS attribute changed by hand", "system", b.system, "attribute", name, "value", value)
	return nil
}

// BIOSAttributes are the attributes the BIOS runs with now; numbers are
// json.Number. Nil when the system has no Bios resource.
func (b *BMC) BIOSAttributes() map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle()
	bios, _ := b.object(b.bios)
	return child(bios, "Attributes")
}

// PendingBIOSAttributes are the attributes staged in the settings object
// for the next boot.
func (b *BMC) PendingBIOSAttributes() map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle()
	settings, _ := b.object(b.biosSettings)
	return child(settings, "Attributes")
}
