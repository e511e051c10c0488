package audit

import (
	"bytes"
	"encoding/json"
	"maps"
)

// The stored form of one write's events.
//
// The events a write records (a long-running request's Started and
// Accepted) share a key, one per line: the first event's stored form,
// then each next one as the top-level fields in which its stored form
// differs from the one before, null for a field it lacks. Accepted
// differs from Started in its id, time and status, so the pair costs
// little more than one event on etcd's commit path. A record's bytes are
// always an event's own stored form: what the chain hashes and exports
// carry is the same with or without this grouping.

// encodeEvents is the value under the key of a write's events.
func encodeEvents(events []Event) []byte {
	out := encodeEvent(events[0])
	prev := topLevel(out)
	for _, e := range events[1:] {
		cur := topLevel(encodeEvent(e))
		delta := map[string]json.RawMessage{}
		for k, v := range cur {
			if !bytes.Equal(prev[k], v) {
				delta[k] = v
			}
		}
		for k := range prev {
			if _, ok := cur[k]; !ok {
				delta[k] = json.RawMessage("null")
			}
		}
		b, err := json.Marshal(delta)
		if err != nil {
			panic("audit: encode event delta: " + err.Error()) // raw messages of our own encoding
		}
		out = append(append(out, '\n'), b...)
		prev = cur
	}
	return out
}

// eventLines expands a stored value into its events' stored forms, in
// order. A line that cannot be expanded (a tampered value) is left as it
// is, so that its record fails to decode and shows in verification; the
// lines after it are expanded from the last good one.
func eventLines(value []byte) [][]byte {
	lines := bytes.Split(value, []byte{'\n'})
	cur := topLevel(lines[0])
	for i, line := range lines[1:] {
		var delta map[string]json.RawMessage
		if json.Unmarshal(line, &delta) != nil {
			continue
		}
		next := maps.Clone(cur)
		if next == nil {
			next = map[string]json.RawMessage{}
		}
		for k, v := range delta {
			if string(v) == "null" {
				delete(next, k)
			} else {
				next[k] = v
			}
		}
		b, err := json.Marshal(next)
		if err != nil {
			continue
		}
		e, err := decodeEvent(b)
		if err != nil {
			continue
		}
		lines[i+1], cur = encodeEvent(e), next
	}
	return lines
}

// topLevel splits a stored event into its top-level fields; nil for a
// value that is not a JSON object.
func topLevel(b []byte) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}
