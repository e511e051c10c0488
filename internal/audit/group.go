package audit

import "bytes"

// The stored form of one write's events.
//
// The events a write records (a long-running request's Started and
// Accepted) share a key, one event's stored form per line (compact JSON
// has no newline). One key rather than one per event keeps etcd's index,
// which holds every key until retention archives it, smaller. Each line
// is a record of its own: what the chain hashes and exports carry is the
// event's stored form, with or without the grouping.

// encodeEvents is the value under the key of a write's events.
func encodeEvents(events []Event) []byte {
	b := make([]byte, 0, 800*len(events)) // a typical event is 700-800 bytes
	for i, e := range events {
		if i > 0 {
			b = append(b, '\n')
		}
		b = appendEvent(b, e)
	}
	return b
}

// eventLines splits a stored value into its events' stored forms.
func eventLines(value []byte) [][]byte { return bytes.Split(value, []byte{'\n'}) }
