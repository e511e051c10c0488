package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/citadel-cloud/citadel/internal/jsonstr"
)

// ConfigDB is a SONiC device's configuration in config_db.json's shape:
// table → key → field → value, e.g. VLAN → "Vlan501" → "mtu" → "1500".
// Every value is a string; a list field's name ends in "@" and its value
// joins the items with commas, as SONiC does ("members@":
// "Ethernet0,Ethernet4").
type ConfigDB map[string]map[string]map[string]string

// ParseConfigDB reads a config_db.json document strictly: the document,
// each table and each entry are JSON objects, every field value is a
// string, no name appears twice in one object, and nothing follows the
// document. A device's running configuration comes through here, so
// anything else is rejected rather than guessed at.
func ParseConfigDB(data []byte) (ConfigDB, error) {
	if len(bytes.TrimLeft(data, jsonSpace)) == 0 {
		return nil, errors.New("parse config_db: empty document")
	}
	p := configParser{dec: json.NewDecoder(bytes.NewReader(data))}
	db := ConfigDB{}
	err := p.object("the document", func(table string) error {
		entries := map[string]map[string]string{}
		db[table] = entries
		return p.object("table "+strconv.Quote(table), func(key string) error {
			fields := map[string]string{}
			entries[key] = fields
			where := "entry " + strconv.Quote(table+"|"+key)
			return p.object(where, func(field string) error {
				tok, err := p.dec.Token()
				if err != nil {
					return err
				}
				v, ok := tok.(string)
				if !ok {
					return fmt.Errorf("%s field %q: value %v is not a string", where, field, tok)
				}
				fields[field] = v
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("parse config_db: %w", err)
	}
	if rest := bytes.TrimLeft(data[p.dec.InputOffset():], jsonSpace); len(rest) > 0 {
		return nil, fmt.Errorf("parse config_db: data after the document at offset %d", len(data)-len(rest))
	}
	return db, nil
}

// jsonSpace is JSON's whitespace.
const jsonSpace = " \t\r\n"

type configParser struct{ dec *json.Decoder }

// object reads a JSON object, calling member for each name with the
// decoder at its value.
func (p configParser) object(where string, member func(name string) error) error {
	tok, err := p.dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%s: %v is not an object", where, describeToken(tok))
	}
	seen := map[string]bool{}
	for p.dec.More() {
		tok, err := p.dec.Token()
		if err != nil {
			return err
		}
		name := tok.(string) // the decoder only yields strings as names
		if seen[name] {
			return fmt.Errorf("%s: %q appears twice", where, name)
		}
		seen[name] = true
		if err := member(name); err != nil {
			return err
		}
	}
	_, err = p.dec.Token() // the closing brace
	return err
}

func describeToken(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			return "an array"
		}
	case nil:
		return "null"
	case string:
		return strconv.Quote(tok)
	}
	return fmt.Sprint(tok)
}

// JSON is the document as config_db.json: keys sorted at every level,
// two-space indentation and a final newline, so equal configurations are
// equal bytes; strings escaped as encoding/json escapes them, but for
// HTML characters, which stay readable.
func (c ConfigDB) JSON() []byte {
	b := make([]byte, 0, 64*c.entries()+16)
	b = append(b, '{')
	for i, table := range slices.Sorted(maps.Keys(c)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n  "...)
		b = jsonstr.Append(b, table, false)
		b = append(b, ": {"...)
		entries := c[table]
		for j, key := range slices.Sorted(maps.Keys(entries)) {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n    "...)
			b = jsonstr.Append(b, key, false)
			b = append(b, ": {"...)
			fields := entries[key]
			for k, field := range slices.Sorted(maps.Keys(fields)) {
				if k > 0 {
					b = append(b, ',')
				}
				b = append(b, "\n      "...)
				b = jsonstr.Append(b, field, false)
				b = append(b, ": "...)
				b = jsonstr.Append(b, fields[field], false)
			}
			if len(fields) > 0 {
				b = append(b, "\n    "...)
			}
			b = append(b, '}')
		}
		if len(entries) > 0 {
			b = append(b, "\n  "...)
		}
		b = append(b, '}')
	}
	if len(c) > 0 {
		b = append(b, '\n')
	}
	return append(b, "}\n"...)
}

func (c ConfigDB) entries() int {
	n := 0
	for _, t := range c {
		n += len(t)
	}
	return n
}

// Clone is a deep copy: changing it leaves c as it was.
func (c ConfigDB) Clone() ConfigDB {
	if c == nil {
		return nil
	}
	out := make(ConfigDB, len(c))
	for table, entries := range c {
		t := make(map[string]map[string]string, len(entries))
		for key, fields := range entries {
			f := make(map[string]string, len(fields))
			for k, v := range fields {
				f[k] = v
			}
			t[key] = f
		}
		out[table] = t
	}
	return out
}

// set makes an entry, replacing any entry of that key.
func (c ConfigDB) set(table, key string, fields map[string]string) {
	t := c[table]
	if t == nil {
		t = map[string]map[string]string{}
		c[table] = t
	}
	if fields == nil {
		fields = map[string]string{}
	}
	t[key] = fields
}
