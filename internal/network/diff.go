package network

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// The kinds of configuration difference.
const (
	// DiffMissing: the device lacks an intended entry (Field "") or an
	// intended field of an entry it has.
	DiffMissing = "missing"
	// DiffUnexpected: the device has an entry (Field "") or a field that
	// is not intended.
	DiffUnexpected = "unexpected"
	// DiffChanged: a field has another value than intended.
	DiffChanged = "changed"
)

// ConfigDiff is one difference between a device's intended and running
// configuration: configuration drift, or a change not applied yet.
type ConfigDiff struct {
	Kind  string // DiffMissing, DiffUnexpected or DiffChanged
	Table string
	Key   string
	Field string // "" when the whole entry is missing or unexpected
	// Intended and Running are the field's values; "" on the side that
	// lacks it, and both "" for a whole entry.
	Intended, Running string
}

// DiffConfig lists how running differs from intended, ordered by table,
// key and field. An entry that only one side has is one difference, not
// one per field; an entry both have differs field by field.
func DiffConfig(intended, running ConfigDB) []ConfigDiff {
	var out []ConfigDiff
	for _, table := range unionKeys(intended, running) {
		want, got := intended[table], running[table]
		for _, key := range unionKeys(want, got) {
			wantFields, inWant := want[key]
			gotFields, inGot := got[key]
			switch {
			case !inGot:
				out = append(out, ConfigDiff{Kind: DiffMissing, Table: table, Key: key})
			case !inWant:
				out = append(out, ConfigDiff{Kind: DiffUnexpected, Table: table, Key: key})
			default:
				out = diffFields(out, table, key, wantFields, gotFields)
			}
		}
	}
	return out
}

func diffFields(out []ConfigDiff, table, key string, want, got map[string]string) []ConfigDiff {
	if maps.Equal(want, got) {
		return out // the usual case: no need to sort the fields
	}
	for _, field := range unionKeys(want, got) {
		w, inWant := want[field]
		g, inGot := got[field]
		d := ConfigDiff{Table: table, Key: key, Field: field, Intended: w, Running: g}
		switch {
		case !inGot:
			d.Kind = DiffMissing
		case !inWant:
			d.Kind = DiffUnexpected
		case w != g:
			d.Kind = DiffChanged
		default:
			continue
		}
		out = append(out, d)
	}
	return out
}

// unionKeys is the keys of a and b, sorted, each once.
func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// String is the difference on one line, such as
//
//	VLAN|Vlan501 mtu: intended 1500, running 9000
//	VLAN|Vlan501 mtu: intended 1500, missing from running
//	VLAN_MEMBER|Vlan501|Ethernet8: missing from running
//	VLAN|Vlan999: unexpected, not intended
//
// A value that is empty or holds spaces, commas or unprintable characters
// is quoted.
func (d ConfigDiff) String() string {
	var b strings.Builder
	b.WriteString(d.Table + "|" + d.Key)
	if d.Field != "" {
		b.WriteString(" " + d.Field)
	}
	b.WriteString(": ")
	switch {
	case d.Kind == DiffMissing && d.Field == "":
		b.WriteString("missing from running")
	case d.Kind == DiffUnexpected && d.Field == "":
		b.WriteString("unexpected, not intended")
	case d.Kind == DiffMissing:
		b.WriteString("intended " + quoteValue(d.Intended) + ", missing from running")
	case d.Kind == DiffUnexpected:
		b.WriteString("not intended, running " + quoteValue(d.Running))
	default:
		b.WriteString("intended " + quoteValue(d.Intended) + ", running " + quoteValue(d.Running))
	}
	return b.String()
}

func quoteValue(s string) string {
	if s == "" || strings.ContainsAny(s, " ,") || strconv.Quote(s) != `"`+s+`"` {
		return strconv.Quote(s)
	}
	return s
}
